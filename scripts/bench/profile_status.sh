#!/usr/bin/env bash
# Where a prefork worker's time goes on GET /api/session/status: starts prefork (6 workers), makes
# an analysed session through the API, puts the same wrk load on it as status_vs_gunicorn.sh
# (64 connections) and records the workers with `perf record -g` meanwhile. Prints the hottest
# symbols and a rough split into buckets (blocking-pool hand-offs, allocator, JSON, network, ...).
# Needs `perf` (Debian: apt-get install linux-perf) and a release build with line tables (the
# workspace's release profile has them).
#
# Usage: scripts/bench/profile_status.sh [-d SECONDS] [-c CONNECTIONS] [--no-build] [--keep]
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=8
CONNS=64
BUILD=1
KEEP=0
while (($# > 0)); do
    case $1 in
        -d | --duration) DURATION=$2; shift 2 ;;
        -c | --connections) CONNS=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) bench_die "unknown option $1 (see --help)" ;;
    esac
done
[[ "$DURATION" =~ ^[0-9]+$ && "$CONNS" =~ ^[0-9]+$ ]] || bench_die "duration and connections are whole numbers"
command -v perf >/dev/null || bench_die "perf is needed (apt-get install linux-perf)"

mkdir -p "$BENCH_DIR/.work"
WORK=$(mktemp -d "$BENCH_DIR/.work/profile-XXXXXX")
WRK_PID=""
cleanup() {
    [[ -n "$WRK_PID" ]] && kill "$WRK_PID" 2>/dev/null
    bench_stop_all
    if ((KEEP == 0)); then rm -rf "$WORK"; else bench_log "kept $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BENCH_DIR/setup.sh"
if ((BUILD == 1)); then bench_build_prefork; fi

bench_start_prefork "$WORK/instance" 6 "$WORK/prefork.log" || bench_die "prefork did not start"
base="http://$BENCH_HOST:$BENCH_PORT"
bench_workflow "$base" || bench_log "workflow not fully 2xx: $BENCH_WF_STEPS"
[[ -n "$BENCH_WF_SID" ]] || bench_die "could not create a session through the API"
workers=$(bench_children "$BENCH_PID" | tr ' ' ',')

BENCH_SID=$BENCH_WF_SID timeout -k 5 $((DURATION + 45)) wrk -t 2 -c "$CONNS" -d "$((DURATION + 4))s" \
    --timeout 5s -s "$BENCH_DIR/status.lua" "$base" >"$WORK/wrk.out" 2>&1 &
WRK_PID=$!
sleep 2 # let the load reach steady state before sampling
timeout -k 5 $((DURATION + 30)) perf record -q -F 999 -g -o "$WORK/perf.data" -p "$workers" -- sleep "$DURATION" \
    >/dev/null 2>&1 || bench_log "perf record failed (see perf_event_paranoid)"
wait "$WRK_PID" || true
WRK_PID=""

echo "== profile of prefork workers under GET /api/session/status, $CONNS connections; $(date -u '+%Y-%m-%d %H:%M UTC')"
grep -m1 '^BENCH_RESULT' "$WORK/wrk.out" || echo "(wrk produced no result)"
echo
echo "-- hottest symbols (self time)"
perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9.]+%' | awk 'NR <= 25' | cut -c1-150 || true
echo
echo "-- buckets (inclusive time of the samples whose call chain contains the pattern; they overlap)"
perf script -i "$WORK/perf.data" -F ip,sym 2>/dev/null | awk '
    /^$/ { if (n) { total++; for (b in hit) count[b]++; } delete hit; n = 0; next }
    {
        n++
        if ($0 ~ /blocking::pool|spawn_blocking|futex/) hit["blocking pool / futex hand-offs"] = 1
        if ($0 ~ /malloc|_int_free|cfree|unlink_chunk|realloc/) hit["allocator (malloc/free)"] = 1
        if ($0 ~ /serde_json/) hit["serde_json (manifest parse, answer)"] = 1
        if ($0 ~ /tcp_|sock_|writev|recvfrom|readv/) hit["network syscalls"] = 1
        if ($0 ~ /statx|newfstatat|do_sys_open|openat|vfs_read|ksys_read/) hit["filesystem syscalls"] = 1
        if ($0 ~ /hyper::/) hit["hyper (HTTP)"] = 1
    }
    END { for (b in count) printf "%6.1f%%  %s\n", 100 * count[b] / total, b }' | sort -rn || true
