#!/usr/bin/env bash
# Issue 9, benchmark 2 (scaffolding): p99 and failed requests while the master reloads under load.
# Same status load as status_vs_gunicorn.sh (wrk + status.lua, one analysed session), one run per
# case, in the same invocation:
#   <server> baseline   no signal
#   prefork  HUP        N HUPs spread over the run (every worker replaced each time)
#   prefork  USR2       one binary upgrade, operator flow: USR2, wait for the new master and its
#                       workers, TERM the old master (gunicorn's documented procedure)
#   gunicorn HUP        N HUPs, for sync and gthread workers
# A case the server does not support (no new master after USR2 within 30 s) is reported as such.
#
# Usage: scripts/bench/reload_under_load.sh [-d SECONDS] [-c CONNECTIONS] [--hups N]
#                                           [--servers "prefork sync gthread"] [--no-build] [--keep]
# Defaults: 12 s runs, 64 connections, 4 HUPs, 6 workers.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=12
CONNS=64
HUPS=4
WORKERS=6
THREADS=4
SERVERS="prefork sync gthread"
BUILD=1
KEEP=0
STATUS_PATH=/api/session/status

while (($# > 0)); do
    case $1 in
        -d | --duration) DURATION=$2; shift 2 ;;
        -c | --connections) CONNS=$2; shift 2 ;;
        --hups) HUPS=$2; shift 2 ;;
        -w | --workers) WORKERS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --servers) SERVERS=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) bench_die "unknown option $1 (see --help)" ;;
    esac
done
for n in "$DURATION" "$CONNS" "$HUPS" "$WORKERS" "$THREADS"; do
    [[ "$n" =~ ^[0-9]+$ ]] || bench_die "not a whole number: $n"
done
((DURATION >= 4)) || bench_die "--duration must be at least 4 s"

mkdir -p "$BENCH_DIR/.work"
WORK=$(mktemp -d "$BENCH_DIR/.work/reload-XXXXXX")
INSTANCE="$WORK/instance"
RESULTS="$WORK/reload.tsv"
mkdir -p "$INSTANCE/uploads"

cleanup() {
    bench_stop_all
    if ((KEEP == 0)); then rm -rf "$WORK"; else bench_log "kept $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BENCH_DIR/setup.sh"
command -v jq >/dev/null || bench_die "jq is needed (apt-get install jq)"
if [[ " $SERVERS " == *" prefork "* ]]; then
    if ((BUILD == 1)); then bench_build_prefork; fi
    [[ -x "$(bench_prefork_bin)" ]] || bench_die "no prefork binary at $(bench_prefork_bin) (drop --no-build)"
fi

# One analysed folder of the Python system's shape, read by every server (see
# status_vs_gunicorn.sh for the API-made variant; reloads do not depend on how it was made).
SID=$(bench_random_sid)
mkdir -p "$INSTANCE/uploads/$SID"
csv=$(bench_kano_file kano_wards.csv)
zip=$(bench_kano_file kano_wards_shapefile.zip)
cp "$csv" "$INSTANCE/uploads/$SID/raw_data.csv"
cp "$zip" "$INSTANCE/uploads/$SID/raw_shapefile.zip"
cp "$csv" "$INSTANCE/uploads/$SID/unified_dataset.csv"

field() { local re="(^| )$2=([^ ]*)"; if [[ $1 =~ $re ]]; then echo "${BASH_REMATCH[2]}"; fi; }

# start_wrk PORT PATH OUTFILE : wrk in the background for DURATION seconds; sets WRK_PID.
# Each run starts with at most 2000 loopback sockets in TIME-WAIT (see lib.sh), waiting up to 65 s.
start_wrk() {
    local tw
    tw=$(bench_timewait_count)
    if ((tw > 2000)); then
        bench_log "waiting for $tw TIME-WAIT sockets to drain (at most 65 s)"
        bench_drain_timewait 2000 65 >/dev/null
    fi
    BENCH_SID=$SID BENCH_PATH=$2 timeout -k 5 $((DURATION + 40)) wrk -t 2 -c "$CONNS" -d "${DURATION}s" \
        --timeout 5s -s "$BENCH_DIR/status.lua" "http://$BENCH_HOST:$1" >"$3" 2>&1 &
    WRK_PID=$!
}

# record LABEL CASE OUTFILE NOTE
record() {
    local line
    wait "$WRK_PID" || true
    line=$(grep -m1 '^BENCH_RESULT' "$3" || true)
    if [[ -z "$line" ]]; then
        printf '%s\t%s\t-\t-\t-\t-\t-\twrk failed; %s\n' "$1" "$2" "$4" >>"$RESULTS"
        return
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$(field "$line" rps)" "$(field "$line" p50_ms)" \
        "$(field "$line" p99_ms)" "$(field "$line" max_ms)" "$(field "$line" errors)" \
        "connect=$(field "$line" connect) read=$(field "$line" read) timeout=$(field "$line" timeout) non2xx=$(field "$line" non2xx); $4" >>"$RESULTS"
}

# The master's worker count once it is back to WORKERS (or whatever it is after 30 s).
settled_workers() {
    local deadline=$((SECONDS + 30)) n
    while :; do
        n=$(bench_children "$1" | wc -w)
        ((n == WORKERS || SECONDS >= deadline)) && break
        sleep 0.2
    done
    echo "$n"
}

# hup_run LABEL MASTER PORT PATH : N HUPs evenly spaced inside the run, none in the first or last
# second so each reload happens under full load.
hup_run() {
    local label=$1 master=$2 port=$3 path=$4 out="$WORK/$1-hup.out" i gap before after kept=0 pid
    before=" $(bench_children "$master") "
    gap=$(awk -v d="$DURATION" -v n="$HUPS" 'BEGIN { printf "%.2f", (d - 2) / (n > 0 ? n : 1) }')
    start_wrk "$port" "$path" "$out"
    sleep 1
    for ((i = 0; i < HUPS; i++)); do
        kill -HUP "$master"
        sleep "$gap"
    done
    wait "$WRK_PID" || true
    after=$(settled_workers "$master")
    for pid in $(bench_children "$master"); do
        [[ "$before" == *" $pid "* ]] && kept=$((kept + 1))
    done
    record "$label" "HUP x$HUPS" "$out" "workers afterwards: $after, of which $kept from before the HUPs"
}

# The new master of a USR2 upgrade: a child of the old master that has children of its own.
new_master_of() {
    local kid
    for kid in $(bench_children "$1"); do
        [[ -n "$(bench_children "$kid")" ]] && { echo "$kid"; return 0; }
    done
    return 1
}

# usr2_run MASTER PORT PATH LOG : sets UPGRADED_MASTER to the master serving afterwards (the new one if
# the upgrade happened, else the old one).
usr2_run() {
    local master=$1 port=$2 path=$3 log=$4 out="$WORK/prefork-usr2.out" new="" deadline note
    start_wrk "$port" "$path" "$out"
    sleep 1
    kill -USR2 "$master"
    deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)) && [[ -z "$new" ]]; do
        new=$(new_master_of "$master" || true)
        # A master that says it ignores USR2 ends the wait at once.
        grep -qiE 'usr2.*(not supported|ignored)' "$log" && break
        [[ -n "$new" ]] || sleep 0.1
    done
    if [[ -z "$new" ]]; then
        note="USR2 NOT SUPPORTED: no new master ($(grep -m1 -oiE 'usr2.*(not supported|ignored).*' "$log" || echo 'none within 30 s'))"
        new=$master
    else
        bench_adopt_server "$new" prefork-upgraded
        bench_wait_workers "$new" "$WORKERS" 30 || bench_log "new master $new: fewer than $WORKERS workers after 30 s"
        kill -TERM "$master"
        deadline=$((SECONDS + 30))
        while kill -0 "$master" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
        wait "$master" 2>/dev/null || true
        note="new master $new, old master $master $(kill -0 "$master" 2>/dev/null && echo 'STILL RUNNING' || echo exited)"
    fi
    record prefork "USR2 + TERM old" "$out" "$note"
    UPGRADED_MASTER=$new
}

printf 'server\tcase\trps\tp50_ms\tp99_ms\tmax_ms\terrors\tdetail\n' >"$RESULTS"

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
        *) bench_die "unknown server $server (prefork, sync or gthread)" ;;
    esac
    master=$BENCH_PID
    port=$BENCH_PORT
    path=$STATUS_PATH
    bench_call GET "http://$BENCH_HOST:$port$path" "$SID"
    if [[ "$BENCH_CODE" != 200 ]]; then
        [[ $server == prefork ]] || bench_die "$label answers $path with HTTP $BENCH_CODE"
        bench_log "WARNING: prefork answers $path with HTTP $BENCH_CODE; measuring GET /ping instead"
        path=/ping
    fi

    start_wrk "$port" "$path" "$WORK/$label-base.out"
    record "$label" baseline "$WORK/$label-base.out" "path $path"
    hup_run "$label" "$master" "$port" "$path"
    if [[ $server == prefork ]]; then
        usr2_run "$master" "$port" "$path" "$WORK/prefork.log"
        bench_log "serving master after USR2: $UPGRADED_MASTER"
    fi
    # After a USR2 the old master has exited; stop whatever is still registered.
    bench_stop_all
done

echo
echo "== reload under load: GET $STATUS_PATH, $CONNS connections, ${DURATION}s per case; $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores"
echo
column -t -s $'\t' "$RESULTS"
