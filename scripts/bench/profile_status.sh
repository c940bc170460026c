#!/usr/bin/env bash
# Where a prefork worker's time goes on GET /api/session/status: starts prefork (6 workers), makes
# an analysed session through the API, puts the same wrk load on it as status_vs_gunicorn.sh
# (64 connections) and records the workers with `perf record -g` meanwhile. Prints the hottest
# symbols and a rough split into buckets (blocking-pool hand-offs, allocator, JSON, network, ...).
# Needs `perf` (Debian: apt-get install linux-perf) and a release build with line tables (the
# workspace's release profile has them).
#
# Then the floor: a second wrk run of the same load under `perf stat` counts the system calls the
# workers make per request (each syscall's tracepoint), and prices each kind from the profile
# (its share of the samples x the server CPU per request of that run, from /proc).
#
# Usage: scripts/bench/profile_status.sh [-d SECONDS] [-c CONNECTIONS] [--path PATH] [--no-build] [--keep]
#   --path PATH   the route to load (default /api/session/status; /ping for the floor of HTTP alone)
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=8
CONNS=64
BUILD=1
KEEP=0
LOAD_PATH=/api/session/status
while (($# > 0)); do
    case $1 in
        -d | --duration) DURATION=$2; shift 2 ;;
        -c | --connections) CONNS=$2; shift 2 ;;
        --path) LOAD_PATH=$2; shift 2 ;;
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

BENCH_SID=$BENCH_WF_SID BENCH_PATH=$LOAD_PATH timeout -k 5 $((DURATION + 45)) wrk -t 2 -c "$CONNS" -d "$((DURATION + 4))s" \
    --timeout 5s -s "$BENCH_DIR/status.lua" "$base" >"$WORK/wrk.out" 2>&1 &
WRK_PID=$!
sleep 2 # let the load reach steady state before sampling
timeout -k 5 $((DURATION + 30)) perf record -q -F 999 -g -o "$WORK/perf.data" -p "$workers" -- sleep "$DURATION" \
    >/dev/null 2>&1 || bench_log "perf record failed (see perf_event_paranoid)"
wait "$WRK_PID" || true
WRK_PID=""

echo "== profile of prefork workers under GET $LOAD_PATH, $CONNS connections; $(date -u '+%Y-%m-%d %H:%M UTC')"
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

# ---- the floor: system calls per request, and what each kind costs ------------------------------

SYSCALLS="recvfrom sendto writev write readv read epoll_wait openat openat2 close statx newfstatat futex"
events=""
for sc in $SYSCALLS; do events="$events -e syscalls:sys_enter_$sc"; done
STAT_SECS=$DURATION
cpu0=$(bench_cpu_ticks "$BENCH_PID")
# shellcheck disable=SC2086 # $events is a list of options
timeout -k 5 $((STAT_SECS + 30)) perf stat -x, $events -p "$workers" -o "$WORK/stat.csv" -- sleep $((STAT_SECS + 3)) \
    >/dev/null 2>&1 &
STAT_PID=$!
sleep 1
BENCH_SID=$BENCH_WF_SID BENCH_PATH=$LOAD_PATH timeout -k 5 $((STAT_SECS + 45)) wrk -t 2 -c "$CONNS" -d "${STAT_SECS}s" \
    --timeout 5s -s "$BENCH_DIR/status.lua" "$base" >"$WORK/wrk-stat.out" 2>&1 || true
wait "$STAT_PID" || bench_log "perf stat failed"
cpu1=$(bench_cpu_ticks "$BENCH_PID")
line=$(grep -m1 '^BENCH_RESULT' "$WORK/wrk-stat.out" || true)
requests=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$line")
echo
echo "-- system calls per request (perf stat on the workers over a ${STAT_SECS}s wrk run of $requests requests; counts include the few made between requests: heartbeat, metrics flush)"
if [[ -n "$requests" && "$requests" -gt 0 && -s "$WORK/stat.csv" ]]; then
    cpu_us=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (b - a) * 1e6 / hz / n }')
    echo "server CPU (master + workers, /proc) in that run: $cpu_us us/request"
    # Each kind's share of the profile's samples: those whose kernel call chain passes through
    # the syscall's entry (its x64 stub, or the inner function that the stub may be inlined into).
    perf script -i "$WORK/perf.data" -F ip,sym 2>/dev/null | awk '
        BEGIN {
            entry["__x64_sys_recvfrom"] = "recvfrom"; entry["__sys_recvfrom"] = "recvfrom"
            entry["__x64_sys_sendto"] = "sendto"; entry["__sys_sendto"] = "sendto"
            entry["__x64_sys_writev"] = "writev"; entry["do_writev"] = "writev"
            entry["__x64_sys_write"] = "write"; entry["ksys_write"] = "write"
            entry["__x64_sys_readv"] = "readv"; entry["do_readv"] = "readv"
            entry["__x64_sys_read"] = "read"; entry["ksys_read"] = "read"
            entry["__x64_sys_epoll_wait"] = "epoll_wait"; entry["do_epoll_wait"] = "epoll_wait"
            entry["__x64_sys_openat"] = "openat"; entry["__x64_sys_openat2"] = "openat2"
            entry["__x64_sys_close"] = "close"; entry["__x64_sys_statx"] = "statx"
            entry["__x64_sys_newfstatat"] = "newfstatat"; entry["__x64_sys_futex"] = "futex"
        }
        /^$/ { if (n) { total++; for (s in hit) count[s]++ } delete hit; n = 0; next }
        { n++; if ($2 in entry) hit[entry[$2]] = 1 }
        END { for (s in count) printf "%s %.6f\n", s, count[s] / total }' >"$WORK/shares.txt"
    awk -F, -v n="$requests" -v cpu="$cpu_us" '
        FNR == NR { share[$1] = $2; next }
        $3 ~ /syscalls:sys_enter_/ && $1 ~ /^[0-9]+$/ {
            name = $3; sub(/syscalls:sys_enter_/, "", name)
            per = $1 / n; total += per
            kernel = (name in share) ? share[name] * cpu : 0
            printf "  %-11s %6.2f per request   %5.1f%% of samples  ~%5.1f us/request  ~%5.2f us each\n", name, per, 100 * share[name], kernel, (per > 0 ? kernel / per : 0)
            sum_us += kernel
        }
        END { printf "  %-11s %6.2f per request                      ~%5.1f us/request in these system calls (of %s)\n", "all listed", total, sum_us, cpu }
    ' FS=' ' "$WORK/shares.txt" FS=, "$WORK/stat.csv"
else
    echo "(no count: wrk or perf stat produced nothing)"
fi
