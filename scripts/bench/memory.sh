#!/usr/bin/env bash
# Issue 9, benchmark 4: memory per worker, prefork vs gunicorn + Flask (sync and gthread).
# For each server: start it with N workers, let it settle, read VmRSS (/proc/PID/status) and Pss
# (/proc/PID/smaps_rollup; shared pages split among the processes sharing them) of the master and
# of each of its children; then drive it and read them again:
#   - prefork: W passes of the whole no-LLM workflow through the HTTP API (bench_workflow in
#     lib.sh: session, Kano upload, status, analysis, ITN, session info, report), W = workers,
#     then status load (wrk, 64 connections) so that every worker has served requests;
#   - gunicorn + Flask: the twin serves only the status route, so the same status load. Its figures
#     are therefore a floor for the real ChatMRPT, whose workers import pandas, geopandas, etc.;
#     the server `sync-pandas` (gunicorn sync, the twin importing pandas at startup, as ChatMRPT's
#     workers do) narrows that gap. It installs pandas into the virtualenv (setup.sh --with-pandas).
#
# Usage: scripts/bench/memory.sh [-w N] [--threads N] [--load-seconds S] [--no-build] [--keep]
#                                [--servers "prefork sync gthread sync-pandas"]
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WORKERS=6
THREADS=4
LOAD_SECONDS=5
SERVERS="prefork sync gthread sync-pandas"
BUILD=1
KEEP=0

while (($# > 0)); do
    case $1 in
        -w | --workers) WORKERS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --load-seconds) LOAD_SECONDS=$2; shift 2 ;;
        --servers) SERVERS=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) bench_die "unknown option $1 (see --help)" ;;
    esac
done
for n in "$WORKERS" "$THREADS" "$LOAD_SECONDS"; do
    [[ "$n" =~ ^[0-9]+$ ]] || bench_die "not a whole number: $n"
done

mkdir -p "$BENCH_DIR/.work"
WORK=$(mktemp -d "$BENCH_DIR/.work/memory-XXXXXX")
INSTANCE="$WORK/instance"
RESULTS="$WORK/memory.tsv"
mkdir -p "$INSTANCE/uploads"

cleanup() {
    bench_stop_all
    if ((KEEP == 0)); then rm -rf "$WORK"; else bench_log "kept $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ " $SERVERS " == *" sync-pandas "* ]]; then
    "$BENCH_DIR/setup.sh" --with-pandas
else
    "$BENCH_DIR/setup.sh"
fi
command -v jq >/dev/null || bench_die "jq is needed (apt-get install jq)"
if [[ " $SERVERS " == *" prefork "* ]]; then
    if ((BUILD == 1)); then bench_build_prefork; fi
    [[ -x "$(bench_prefork_bin)" ]] || bench_die "no prefork binary at $(bench_prefork_bin) (drop --no-build)"
fi

# A synthetic analysed folder for the status load when the API cannot make one (see
# status_vs_gunicorn.sh); both servers read the same folder.
SID=$(bench_random_sid)
mkdir -p "$INSTANCE/uploads/$SID"
csv=$(bench_kano_file kano_wards.csv)
cp "$csv" "$INSTANCE/uploads/$SID/raw_data.csv"
cp "$csv" "$INSTANCE/uploads/$SID/unified_dataset.csv"

kib_to_mib() { awk -v k="$1" 'BEGIN { if (k == "") print "-"; else printf "%.1f", k / 1024 }'; }

# snapshot LABEL PHASE MASTER_PID : one row of the table.
snapshot() {
    local label=$1 phase=$2 master=$3 kids pid rss pss rss_list=() pss_sum=0 rss_sum=0
    kids=$(bench_children "$master")
    for pid in $kids; do
        rss=$(bench_vmrss_kb "$pid")
        pss=$(bench_pss_kb "$pid")
        [[ -n "$rss" ]] || continue
        rss_list+=("$rss")
        rss_sum=$((rss_sum + rss))
        pss_sum=$((pss_sum + ${pss:-0}))
    done
    local n=${#rss_list[@]} min="" med="" max=""
    if ((n > 0)); then
        mapfile -t sorted < <(printf '%s\n' "${rss_list[@]}" | sort -n)
        min=${sorted[0]}
        med=${sorted[$((n / 2))]}
        max=${sorted[$((n - 1))]}
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$phase" "$n" \
        "$(kib_to_mib "$(bench_vmrss_kb "$master")")" "$(kib_to_mib "$min")" "$(kib_to_mib "$med")" \
        "$(kib_to_mib "$max")" "$(kib_to_mib "$rss_sum")" "$(kib_to_mib "$pss_sum")" >>"$RESULTS"
}

# Waits until the sum of the workers' RSS changes by less than 1% between two reads 0.5 s apart
# (at most 10 s), so an idle figure is not taken while workers are still initialising.
settle() {
    local master=$1 deadline=$((SECONDS + 10)) prev=0 now pid
    while ((SECONDS < deadline)); do
        now=0
        for pid in $(bench_children "$master"); do
            now=$((now + $(bench_vmrss_kb "$pid" || echo 0)))
        done
        if ((prev > 0 && now > 0)) && (((now > prev ? now - prev : prev - now) * 100 < prev)); then
            return 0
        fi
        prev=$now
        sleep 0.5
    done
}

status_load() { # status_load PORT SID
    BENCH_SID=$2 timeout -k 5 $((LOAD_SECONDS + 40)) wrk -t 2 -c 64 -d "${LOAD_SECONDS}s" --timeout 5s \
        -s "$BENCH_DIR/status.lua" "http://$BENCH_HOST:$1" 2>&1 | grep -m1 '^BENCH_RESULT' || true
}

printf 'server\tphase\tworkers\tmaster_rss_MiB\tworker_rss_min\tworker_rss_median\tworker_rss_max\tworkers_rss_sum\tworkers_pss_sum\n' >"$RESULTS"
NOTES=()

for server in $SERVERS; do
    case $server in
        prefork)
            label=prefork
            bench_start_prefork "$INSTANCE" "$WORKERS" "$WORK/prefork.log" || bench_die "prefork did not start"
            ;;
        sync)
            label=gunicorn-sync
            bench_start_gunicorn "$INSTANCE" "$WORKERS" sync 1 "$WORK/$label.log" || bench_die "$label did not start"
            ;;
        gthread)
            label=gunicorn-gthread
            bench_start_gunicorn "$INSTANCE" "$WORKERS" gthread "$THREADS" "$WORK/$label.log" || bench_die "$label did not start"
            ;;
        sync-pandas)
            label=gunicorn-sync+pandas
            BENCH_FLASK_IMPORTS=pandas bench_start_gunicorn "$INSTANCE" "$WORKERS" sync 1 "$WORK/$label.log" ||
                bench_die "$label did not start"
            ;;
        *) bench_die "unknown server $server (prefork, sync, gthread or sync-pandas)" ;;
    esac
    master=$BENCH_PID
    port=$BENCH_PORT
    settle "$master"
    snapshot "$label" idle "$master"

    if [[ $server == prefork ]]; then
        passes_ok=0
        steps=""
        for ((i = 0; i < WORKERS; i++)); do
            if bench_workflow "http://$BENCH_HOST:$port"; then passes_ok=$((passes_ok + 1)); fi
            steps=$BENCH_WF_STEPS
        done
        NOTES+=("prefork workflow: $passes_ok/$WORKERS passes fully 2xx; last pass: ${steps:-no session could be created}")
        load_sid=${BENCH_WF_SID:-$SID}
        bench_call GET "http://$BENCH_HOST:$port/api/session/status" "$load_sid"
        [[ "$BENCH_CODE" == 200 ]] || NOTES+=("prefork answered the status route with HTTP $BENCH_CODE: its status load was of no-route answers")
        phase=after-workflow
    else
        load_sid=$SID
        phase=after-status-load
    fi
    result=$(status_load "$port" "$load_sid")
    NOTES+=("$label status load: ${result:-wrk failed}")
    settle "$master"
    snapshot "$label" "$phase" "$master"
    bench_stop_server "$master"
done

echo
echo "== memory per worker; $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; $WORKERS workers (gthread: $THREADS threads)"
echo "RSS from /proc/PID/status VmRSS, PSS from /proc/PID/smaps_rollup; MiB"
echo
column -t -s $'\t' "$RESULTS"
echo
for note in "${NOTES[@]}"; do echo "- $note"; done
