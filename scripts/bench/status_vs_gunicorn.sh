#!/usr/bin/env bash
# Issue 9, benchmark 1: GET /api/session/status for an analysed session (the disk-derived state
# check) on prefork with 6 workers, and on gunicorn with 6 sync workers and with 6 gthread workers
# serving flask_app.py, which performs the same check on the same folder. Same load tool (wrk),
# same connection counts, same duration; prints req/s, p50, p99, server CPU per request (master +
# workers, from /proc) and errors per run, and the ratios.
#
# Usage: scripts/bench/status_vs_gunicorn.sh [options]
#   -d, --duration SECONDS     per measured run (default 10; env BENCH_DURATION)
#   -c, --connections "LIST"   connection counts (default "8 64 256"; env BENCH_CONNECTIONS)
#   -w, --workers N            workers for every server (default 6)
#       --threads N            gthread threads per worker (default 4)
#       --wrk-threads N        wrk threads (default 2; the machine has 2 cores)
#       --timeout SECONDS      wrk's per-request timeout; slower answers count as errors (default 5)
#       --warmup SECONDS       unmeasured load before each server's runs (default 2)
#       --servers "LIST"       any of: prefork sync gthread (default all three)
#       --max-timewait N       before each measured run, wait (at most 65 s) until at most N
#                              loopback sockets are in TIME-WAIT (default 2000; -1 = never wait)
#       --synthetic            skip the API: use a synthetic Python-system folder (no manifest.json)
#       --ping                 also measure prefork's GET /ping (same server, same connections): the
#                              floor every request pays (HTTP, TCP, metrics), for scale
#       --baseline BIN         also run this other prefork binary (an older build: "before") on the
#                              same session, right before the current one, and print the CPU per
#                              request and p99 of both (with --ping, /ping too)
#       --no-build             use the existing target/release/prefork
#       --keep                 keep the scratch folder (instance dir, logs, raw results)
#
# Only 127.0.0.1 is ever targeted; each wrk run is bounded by `timeout`; every server this script
# starts is stopped on exit (trap), however the script ends.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${BENCH_DURATION:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-"8 64 256"}
WORKERS=6
THREADS=4
WRK_THREADS=2
WRK_TIMEOUT=5
WARMUP=2
SERVERS="prefork sync gthread"
BUILD=1
KEEP=0
SYNTHETIC=0
PING=0
MAX_TIMEWAIT=2000
BASELINE=""
STATUS_PATH=/api/session/status

while (($# > 0)); do
    case $1 in
        -d | --duration) DURATION=$2; shift 2 ;;
        -c | --connections) CONNECTIONS=$2; shift 2 ;;
        -w | --workers) WORKERS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --wrk-threads) WRK_THREADS=$2; shift 2 ;;
        --timeout) WRK_TIMEOUT=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --servers) SERVERS=$2; shift 2 ;;
        --synthetic) SYNTHETIC=1; shift ;;
        --ping) PING=1; shift ;;
        --max-timewait) MAX_TIMEWAIT=$2; shift 2 ;;
        --baseline) BASELINE=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) bench_die "unknown option $1 (see --help)" ;;
    esac
done
for n in "$DURATION" "$WORKERS" "$THREADS" "$WRK_THREADS" "$WRK_TIMEOUT" "$WARMUP" $CONNECTIONS; do
    [[ "$n" =~ ^[0-9]+$ ]] || bench_die "not a whole number: $n"
done
[[ "$MAX_TIMEWAIT" =~ ^-?[0-9]+$ ]] || bench_die "not a whole number: $MAX_TIMEWAIT"
if [[ -n "$BASELINE" ]]; then
    [[ -x "$BASELINE" ]] || bench_die "--baseline: no executable at $BASELINE"
    BASELINE=$(cd "$(dirname "$BASELINE")" && pwd)/$(basename "$BASELINE")
    [[ " $SERVERS " == *" prefork "* ]] && SERVERS="baseline $SERVERS"
fi

mkdir -p "$BENCH_DIR/.work"
WORK=$(mktemp -d "$BENCH_DIR/.work/status-XXXXXX")
INSTANCE="$WORK/instance"
RESULTS="$WORK/results.tsv"
mkdir -p "$INSTANCE/uploads"

cleanup() {
    bench_stop_all
    if ((KEEP == 0)); then
        rm -rf "$WORK"
    else
        bench_log "kept $WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BENCH_DIR/setup.sh"
command -v jq >/dev/null || bench_die "jq is needed (apt-get install jq)"
if [[ " $SERVERS " == *" prefork "* ]]; then
    if ((BUILD == 1)); then bench_build_prefork; fi
    [[ -x "$(bench_prefork_bin)" ]] || bench_die "no prefork binary at $(bench_prefork_bin) (drop --no-build)"
fi

# ---- the analysed session ----------------------------------------------------------------------

# Through our own HTTP API, as a user would (bench_workflow: create, upload Kano, analyse, ITN...).
# Succeeds when the session ends up analysed, even if a later step (report) is not served yet.
session_via_api() {
    local base=$1
    bench_workflow "$base" || true
    bench_log "workflow through prefork: ${BENCH_WF_STEPS:-no session}"
    [[ -n "$BENCH_WF_SID" ]] || return 1
    bench_call GET "$base$STATUS_PATH" "$BENCH_WF_SID"
    [[ "$BENCH_CODE" == 200 ]] && jq -e '.analysis_complete == true' "$BENCH_BODY_FILE" >/dev/null || return 1
    SID=$BENCH_WF_SID
}

# A folder as the Python system leaves it after an analysis (no manifest.json): both servers then
# take their no-manifest path, which stats the files that define the state.
session_synthetic() {
    local sid dir csv zip
    sid=$(bench_random_sid)
    dir="$INSTANCE/uploads/$sid"
    mkdir -p "$dir"
    csv=$(bench_kano_file kano_wards.csv) || exit 1
    zip=$(bench_kano_file kano_wards_shapefile.zip) || exit 1
    cp "$csv" "$dir/raw_data.csv"
    cp "$zip" "$dir/raw_shapefile.zip"
    cp "$csv" "$dir/unified_dataset.csv"
    printf 'WardName,composite_score,overall_rank\nSynthetic,0.5,1\n' >"$dir/analysis_vulnerability_rankings.csv"
    echo "$sid"
}

SID=""
SESSION_MODE=""
if [[ " $SERVERS " == *" prefork "* ]] && ((SYNTHETIC == 0)); then
    bench_log "preparing an analysed session through prefork's HTTP API"
    if bench_start_prefork "$INSTANCE" 2 "$WORK/prefork-setup.log"; then
        session_via_api "http://$BENCH_HOST:$BENCH_PORT" || SID=""
        bench_stop_server "$BENCH_PID"
    fi
    [[ -n "$SID" ]] && SESSION_MODE="created through prefork's HTTP API (POST /api/session, /upload_both_files with Kano, /run_analysis)"
fi
if [[ -z "$SID" ]]; then
    SID=$(session_synthetic)
    why="prefork's API could not create and analyse a session"
    ((SYNTHETIC == 0)) || why="--synthetic"
    SESSION_MODE="SYNTHETIC folder ($why): raw_data.csv, raw_shapefile.zip, unified_dataset.csv, analysis_vulnerability_rankings.csv, no manifest.json"
fi
bench_log "session $SID: $SESSION_MODE"

# ---- load --------------------------------------------------------------------------------------

# run_wrk PORT PATH CONNECTIONS SECONDS : prints the BENCH_RESULT line (or nothing on failure).
run_wrk() {
    local port=$1 path=$2 conns=$3 secs=$4 threads=$WRK_THREADS
    ((threads > conns)) && threads=$conns
    BENCH_SID=$SID BENCH_PATH=$path timeout -k 5 $((secs + WRK_TIMEOUT + 30)) \
        wrk -t "$threads" -c "$conns" -d "${secs}s" --timeout "${WRK_TIMEOUT}s" \
        -s "$BENCH_DIR/status.lua" "http://$BENCH_HOST:$port" 2>&1 | grep -m1 '^BENCH_RESULT' || true
}

field() { # field LINE NAME
    local re="(^| )$2=([^ ]*)"
    if [[ $1 =~ $re ]]; then echo "${BASH_REMATCH[2]}"; fi
}

printf 'server\tpath\tconnections\trps\tp50_ms\tp99_ms\tcpu_us_req\terrors\tdetail\n' >"$RESULTS"
declare -A BODY=()
PREFORK_PATH=$STATUS_PATH

TICKS=$(getconf CLK_TCK)
# cpu_per_request TICKS_BEFORE TICKS_AFTER REQUESTS : microseconds of server CPU per request.
cpu_per_request() {
    awk -v a="$1" -v b="$2" -v n="$3" -v hz="$TICKS" 'BEGIN {
        if (n ~ /^[0-9]+$/ && n > 0) printf "%.1f", (b - a) * 1e6 / hz / n; else print "-" }'
}

measure() { # measure LABEL PORT PATH MASTER_PID
    local label=$1 port=$2 path=$3 master=$4 c line tw cpu0 cpu1
    if ((WARMUP > 0)); then
        run_wrk "$port" "$path" 8 "$WARMUP" >/dev/null
    fi
    for c in $CONNECTIONS; do
        tw=$(bench_timewait_count)
        if ((MAX_TIMEWAIT >= 0 && tw > MAX_TIMEWAIT)); then
            bench_log "$label: waiting for $tw TIME-WAIT sockets to drain below $MAX_TIMEWAIT (at most 65 s)"
            tw=$(bench_drain_timewait "$MAX_TIMEWAIT" 65)
        fi
        bench_log "$label: $c connections, ${DURATION}s ($tw sockets in TIME-WAIT)"
        cpu0=$(bench_cpu_ticks "$master")
        line=$(run_wrk "$port" "$path" "$c" "$DURATION")
        cpu1=$(bench_cpu_ticks "$master")
        if [[ -z "$line" ]]; then
            bench_log "$label: wrk produced no result at $c connections"
            printf '%s\t%s\t%s\t-\t-\t-\t-\t-\twrk failed\n' "$label" "$path" "$c" >>"$RESULTS"
            continue
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$path" "$c" \
            "$(field "$line" rps)" "$(field "$line" p50_ms)" "$(field "$line" p99_ms)" \
            "$(cpu_per_request "$cpu0" "$cpu1" "$(field "$line" requests)")" "$(field "$line" errors)" \
            "connect=$(field "$line" connect) read=$(field "$line" read) write=$(field "$line" write) timeout=$(field "$line" timeout) non2xx=$(field "$line" non2xx) max_ms=$(field "$line" max_ms) timewait_at_start=$tw" \
            >>"$RESULTS"
    done
}

for server in $SERVERS; do
    case $server in
        prefork)
            bench_start_prefork "$INSTANCE" "$WORKERS" "$WORK/prefork.log" || bench_die "prefork did not start"
            label="prefork"
            ;;
        baseline)
            BENCH_PREFORK_BIN=$BASELINE bench_start_prefork "$INSTANCE" "$WORKERS" "$WORK/baseline.log" ||
                bench_die "the baseline prefork did not start"
            label="prefork-baseline"
            ;;
        sync)
            bench_start_gunicorn "$INSTANCE" "$WORKERS" sync 1 "$WORK/gunicorn-sync.log" || bench_die "gunicorn sync did not start"
            label="gunicorn-sync"
            ;;
        gthread)
            bench_start_gunicorn "$INSTANCE" "$WORKERS" gthread "$THREADS" "$WORK/gunicorn-gthread.log" || bench_die "gunicorn gthread did not start"
            label="gunicorn-gthread"
            ;;
        *) bench_die "unknown server $server (prefork, sync or gthread)" ;;
    esac
    path=$STATUS_PATH
    code=$(curl -sS -m 10 -o "$WORK/$label.json" -w '%{http_code}' -H "X-Session-ID: $SID" "http://$BENCH_HOST:$BENCH_PORT$path" || true)
    if [[ "$code" != 200 ]]; then
        if [[ "$server" == baseline ]]; then
            bench_die "the baseline answers $path with HTTP $code: $(cat "$WORK/$label.json")"
        elif [[ "$server" == prefork ]]; then
            bench_log "WARNING: prefork answers $path with HTTP $code: its column measures GET /ping instead (NOT comparable)"
            path=/ping
            PREFORK_PATH=/ping
        else
            bench_die "$label answers $path with HTTP $code: $(cat "$WORK/$label.json")"
        fi
    else
        BODY[$label]=$(cat "$WORK/$label.json")
        bench_log "$label answers: ${BODY[$label]}"
    fi
    measure "$label" "$BENCH_PORT" "$path" "$BENCH_PID"
    if [[ "$server" == prefork || "$server" == baseline ]] && ((PING == 1)); then
        measure "$label-ping" "$BENCH_PORT" /ping "$BENCH_PID"
    fi
    bench_stop_server "$BENCH_PID"
done

# ---- report ------------------------------------------------------------------------------------

# The api.md contract keys with their values (flags, ids) or just their type (worker_pid); the
# server may add fields ("add fields freely"), which are listed but not compared.
CONTRACT='["status","session_id","data_loaded","csv_loaded","shapefile_loaded","analysis_complete","itn_complete","analysis_id","worker_pid"]'
shape() { jq -cS --argjson k "$CONTRACT" '. as $o | reduce $k[] as $f ({}; .[$f] = (if $o | has($f) then $o[$f] else "MISSING" end)) | .worker_pid |= type' <<<"$1"; }
extra() { jq -r --argjson k "$CONTRACT" 'keys - $k | join(",")' <<<"$1"; }
other=${BODY[gunicorn-sync]:-${BODY[gunicorn-gthread]:-}}
if [[ -n "${BODY[prefork]:-}" && -n "$other" ]]; then
    if [[ "$(shape "${BODY[prefork]}")" == "$(shape "$other")" ]]; then
        same="yes (every contract key present with equal values; prefork adds: $(extra "${BODY[prefork]}"))"
    else
        same="NO: prefork $(shape "${BODY[prefork]}") vs flask $(shape "$other")"
    fi
else
    same="not checked (a server did not serve $STATUS_PATH)"
fi

echo
echo "== GET $STATUS_PATH, analysed session; $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "session: $SESSION_MODE"
echo "workers: $WORKERS each (gthread: $THREADS threads); wrk: $WRK_THREADS threads, ${DURATION}s per run, timeout ${WRK_TIMEOUT}s"
echo "JSON answers equivalent: $same"
if [[ "$PREFORK_PATH" != "$STATUS_PATH" ]]; then
    echo "WARNING: prefork did not serve $STATUS_PATH; its rows measure GET /ping and the ratios are NOT a like-for-like comparison"
fi
echo
column -t -s $'\t' "$RESULTS"

echo
printf '%-12s %-20s %-20s %-20s %-22s %-22s\n' connections "CPU/req sync/prefork" "req/s prefork/sync" "p99 sync/prefork" "req/s prefork/gthread" "p99 gthread/prefork"
value() { awk -F'\t' -v s="$1" -v c="$2" -v k="$3" 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next } $1 == s && $3 == c { print $col[k] }' "$RESULTS"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.1fx", a / b; else print "-" }'; }
for c in $CONNECTIONS; do
    p_rps=$(value prefork "$c" rps); p_p99=$(value prefork "$c" p99_ms); p_cpu=$(value prefork "$c" cpu_us_req)
    s_rps=$(value gunicorn-sync "$c" rps); s_p99=$(value gunicorn-sync "$c" p99_ms); s_cpu=$(value gunicorn-sync "$c" cpu_us_req)
    g_rps=$(value gunicorn-gthread "$c" rps); g_p99=$(value gunicorn-gthread "$c" p99_ms)
    printf '%-12s %-20s %-20s %-20s %-22s %-22s\n' "$c" "$(ratio "$s_cpu" "$p_cpu")" "$(ratio "$p_rps" "$s_rps")" \
        "$(ratio "$s_p99" "$p_p99")" "$(ratio "$p_rps" "$g_rps")" "$(ratio "$g_p99" "$p_p99")"
done
if [[ -n "$BASELINE" ]]; then
    echo
    echo "before ($BASELINE) -> after ($(bench_prefork_bin)): server CPU per request, p99"
    for c in $CONNECTIONS; do
        for pair in "prefork-baseline prefork $STATUS_PATH" "prefork-baseline-ping prefork-ping /ping"; do
            read -r before after what <<<"$pair"
            b_cpu=$(value "$before" "$c" cpu_us_req); a_cpu=$(value "$after" "$c" cpu_us_req)
            [[ -n "$b_cpu" && -n "$a_cpu" ]] || continue
            printf '%-5s conns %-22s CPU %s -> %s us/req (%s less), p99 %s -> %s ms\n' "$c" "$what" \
                "$b_cpu" "$a_cpu" "$(ratio "$b_cpu" "$a_cpu")" \
                "$(value "$before" "$c" p99_ms)" "$(value "$after" "$c" p99_ms)"
        done
    done
fi
if [[ " $CONNECTIONS " == *" 64 "* ]]; then
    p_cpu=$(value prefork 64 cpu_us_req); s_cpu=$(value gunicorn-sync 64 cpu_us_req)
    p_p99=$(value prefork 64 p99_ms); s_p99=$(value gunicorn-sync 64 p99_ms)
    verdict=$(awk -v pc="$p_cpu" -v sc="$s_cpu" -v pp="$p_p99" -v sp="$s_p99" 'BEGIN {
        if (pc !~ /^[0-9.]+$/ || sc !~ /^[0-9.]+$/ || pp !~ /^[0-9.]+$/ || sp !~ /^[0-9.]+$/ || pc == 0 || pp == 0) { print "not evaluated"; exit }
        a = (pc <= 28) ? "met" : "MISSED"; b = (sc / pc >= 20) ? "met" : "MISSED"; c = (sp / pp >= 10) ? "met" : "MISSED"
        printf "server CPU <= 28 us/request: %s (%.1f us); >= 20x less CPU than sync: %s (%.1fx); p99 <= 1/10 of sync: %s (%.1fx)", a, pc, b, sc / pc, c, sp / pp }')
    echo
    echo "target at 64 connections: $verdict"
fi
