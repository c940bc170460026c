# shellcheck shell=bash
# Shared functions of the benchmark scripts. Source it; it defines functions and a few variables
# and runs nothing. Every wait here has a deadline, and every server started through
# `bench_start_server` is stopped by `bench_stop_all` (the scripts install it as their EXIT trap).

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$BENCH_DIR/../.." && pwd)"
BENCH_VENV="${BENCH_VENV:-$BENCH_DIR/.venv}"
# Loopback only: the benchmarks never send traffic anywhere else.
BENCH_HOST=127.0.0.1

# pid -> name of every server master this shell started (or adopted after a USR2 upgrade), and
# pid -> the process group that master and its workers are in (the group setsid made at start).
declare -gA BENCH_SERVERS=()
declare -gA BENCH_PGIDS=()
# Set by bench_start_server / bench_wait_listening for the caller.
BENCH_PID=""
BENCH_PORT=""

bench_log() {
    printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2
}

bench_die() {
    bench_log "ERROR: $*"
    exit 1
}

# The prefork binary of a release build, honouring CARGO_TARGET_DIR like cargo does (or
# BENCH_PREFORK_BIN, set by a script that runs another build of prefork, such as a baseline).
bench_prefork_bin() {
    if [[ -n "${BENCH_PREFORK_BIN:-}" ]]; then
        printf '%s\n' "$BENCH_PREFORK_BIN"
    else
        printf '%s/release/prefork\n' "${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
    fi
}

bench_build_prefork() {
    bench_log "cargo build --release (target dir: ${CARGO_TARGET_DIR:-$REPO_ROOT/target})"
    (cd "$REPO_ROOT" && cargo build --release --bin prefork) || bench_die "cargo build --release failed"
    [[ -x "$(bench_prefork_bin)" ]] || bench_die "no binary at $(bench_prefork_bin)"
}

bench_require_venv() {
    [[ -x "$BENCH_VENV/bin/gunicorn" ]] || bench_die "no gunicorn in $BENCH_VENV: run scripts/bench/setup.sh first"
}

# A port the kernel reports free on 127.0.0.1 right now. Another process could take it before
# the server binds; the server then fails to bind and bench_wait_listening says so.
bench_free_port() {
    python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# A 32-character lowercase hex id, the format the server mints.
bench_random_sid() {
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n'
}

# bench_start_server NAME LOGFILE COMMAND... : starts COMMAND in a new session (so it leads its
# own process group and can be stopped with its workers), stdout+stderr to LOGFILE. Sets BENCH_PID.
bench_start_server() {
    local name=$1 log=$2
    shift 2
    # Without job control `&` keeps the child in our group, so setsid need not fork and $! is
    # the server itself.
    set +m
    setsid "$@" >"$log" 2>&1 </dev/null &
    BENCH_PID=$!
    BENCH_SERVERS[$BENCH_PID]=$name
    BENCH_PGIDS[$BENCH_PID]=$BENCH_PID
    bench_log "started $name (pid $BENCH_PID), log $log"
}

# bench_wait_listening LOGFILE PID DEADLINE_SECONDS : waits for the gunicorn-style line
# "Listening at: http://HOST:PORT (PID)" (prefork and gunicorn both print it) and sets BENCH_PORT.
bench_wait_listening() {
    local log=$1 pid=$2 deadline=$((SECONDS + $3)) line
    while ((SECONDS < deadline)); do
        line=$(grep -m1 -o 'Listening at: http://[^ ]*' "$log" 2>/dev/null || true)
        if [[ -n "$line" ]]; then
            BENCH_PORT=${line##*:}
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            bench_log "server $pid exited before listening; its log:"
            tail -n 20 "$log" >&2
            return 1
        fi
        sleep 0.1
    done
    bench_log "no 'Listening at' line in $log after $3 s"
    tail -n 20 "$log" >&2
    return 1
}

# bench_wait_ping PORT DEADLINE_SECONDS : GET /ping until it answers 200.
bench_wait_ping() {
    local port=$1 deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        if curl -fsS -m 2 -o /dev/null "http://$BENCH_HOST:$port/ping" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    bench_log "http://$BENCH_HOST:$port/ping did not answer 200 within $2 s"
    return 1
}

# bench_wait_workers PID COUNT DEADLINE_SECONDS : waits until the master has COUNT children, so a
# measurement never starts while workers are still booting. Returns 1 (quietly) on timeout.
bench_wait_workers() {
    local pid=$1 want=$2 deadline=$((SECONDS + $3))
    while ((SECONDS < deadline)); do
        (($(bench_children "$pid" | wc -w) >= want)) && return 0
        sleep 0.1
    done
    return 1
}

# The direct children of PID (a master's workers), space-separated.
# Read from /proc/*/stat rather than /proc/PID/task/*/children, which some kernels lack.
bench_children() {
    local parent=$1 f line rest pid kids=()
    for f in /proc/[0-9]*/stat; do
        { read -r line <"$f"; } 2>/dev/null || continue
        pid=${line%% *}
        # Fields after "pid (comm) " start with state then ppid; comm may contain spaces.
        rest=${line##*) }
        rest=${rest#* }
        [[ "${rest%% *}" == "$parent" ]] && kids+=("$pid")
    done
    echo "${kids[*]}"
}

# bench_adopt_server PID NAME : registers a master this shell did not start itself (the new master
# of a USR2 upgrade, forked by ours and so still in our process group) so it is stopped on exit.
# bench_cpu_ticks PID : CPU time (user + system, in clock ticks) used so far by a server: the
# master, its reaped children (cutime/cstime) and its live children (threads included). Read it
# before and after a run; the difference over the requests served is the server CPU per request.
bench_cpu_ticks() {
    local master=$1 total=0 pid stat rest f
    for pid in "$master" $(bench_children "$master"); do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${stat##*) }
        read -r -a f <<<"$rest"
        # After "pid (comm) ": f[0]=state ... f[11]=utime f[12]=stime f[13]=cutime f[14]=cstime
        total=$((total + f[11] + f[12] + f[13] + f[14]))
    done
    echo "$total"
}

bench_adopt_server() {
    local stat rest pgid
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    rest=${stat##*) }
    read -r _ _ pgid _ <<<"$rest"
    BENCH_SERVERS[$1]=$2
    BENCH_PGIDS[$1]=$pgid
}

# bench_stop_server PID : TERM the master (graceful, as an operator would), wait up to 10 s, then
# KILL its whole process group (workers included). Only ever signals groups this shell created.
bench_stop_server() {
    local pid=$1 deadline=$((SECONDS + 10)) pgid
    [[ -n "${BENCH_SERVERS[$pid]+x}" ]] || return 0
    pgid=${BENCH_PGIDS[$pid]}
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.1
        done
    fi
    # Workers orphaned by a master that died or ignored TERM still carry the group id; other
    # masters registered in the same group (USR2) are stopped by their own call first.
    local other shared=0
    for other in "${!BENCH_SERVERS[@]}"; do
        [[ "$other" != "$pid" && "${BENCH_PGIDS[$other]}" == "$pgid" ]] && kill -0 "$other" 2>/dev/null && shared=1
    done
    ((shared == 1)) || kill -KILL -- "-$pgid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "BENCH_SERVERS[$pid]" "BENCH_PGIDS[$pid]"
}

bench_stop_all() {
    local pid
    for pid in "${!BENCH_SERVERS[@]}"; do
        bench_log "stopping ${BENCH_SERVERS[$pid]} (pid $pid)"
        bench_stop_server "$pid"
    done
    rm -f "$BENCH_BODY_FILE" "$BENCH_POP_FILE"
}

# bench_start_prefork INSTANCE_DIR WORKERS LOGFILE [EXTRA FLAGS...] : starts the release binary on a
# free loopback port and waits until /ping answers and all workers exist. Sets BENCH_PID/BENCH_PORT.
bench_start_prefork() {
    local instance=$1 workers=$2 log=$3
    shift 3
    local port
    port=$(bench_free_port)
    bench_start_server prefork "$log" "$(bench_prefork_bin)" -w "$workers" -b "$BENCH_HOST:$port" \
        --instance-dir "$instance" "$@"
    bench_wait_listening "$log" "$BENCH_PID" 30 || return 1
    bench_wait_ping "$BENCH_PORT" 30 || return 1
    bench_wait_workers "$BENCH_PID" "$workers" 30 || bench_log "prefork: fewer than $workers workers after 30 s"
}

# bench_start_gunicorn INSTANCE_DIR WORKERS WORKER_CLASS THREADS LOGFILE : the Flask twin of the
# status route under gunicorn (importing $BENCH_FLASK_IMPORTS, if set). Sets BENCH_PID/BENCH_PORT.
bench_start_gunicorn() {
    local instance=$1 workers=$2 klass=$3 threads=$4 log=$5
    local port name="gunicorn-$klass"
    port=$(bench_free_port)
    bench_start_server "$name" "$log" env BENCH_INSTANCE_DIR="$instance" BENCH_FLASK_IMPORTS="${BENCH_FLASK_IMPORTS:-}" \
        "$BENCH_VENV/bin/gunicorn" --chdir "$BENCH_DIR" -w "$workers" -k "$klass" \
        --threads "$threads" -b "$BENCH_HOST:$port" flask_app:app
    bench_wait_listening "$log" "$BENCH_PID" 30 || return 1
    bench_wait_ping "$BENCH_PORT" 30 || return 1
    bench_wait_workers "$BENCH_PID" "$workers" 30 || bench_log "$name: fewer than $workers workers after 30 s"
}

# bench_vmrss_kb PID : resident set size in KiB from /proc/PID/status (empty if gone).
bench_vmrss_kb() {
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || true
}

# bench_pss_kb PID : proportional set size in KiB (shared pages divided among their sharers).
bench_pss_kb() {
    awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || true
}

# bench_kano_file NAME : path of a Kano input file (the repo's fixture, else the shared data).
bench_kano_file() {
    local f
    for f in "$REPO_ROOT/tests/fixtures/kano/$1" "/work/shared/data/kano/$1"; do
        [[ -f "$f" ]] && { echo "$f"; return 0; }
    done
    bench_log "no Kano file $1 under tests/fixtures/kano or /work/shared/data/kano"
    return 1
}

# bench_population_csv WARD_CSV : a population table (WardName, Population) for the wards of
# WARD_CSV, made once per shell; prints its path. Populations are made up (5,000-44,950).
BENCH_POP_FILE=""
bench_population_csv() {
    if [[ -z "$BENCH_POP_FILE" ]]; then
        BENCH_POP_FILE=$(mktemp "${TMPDIR:-/tmp}/bench-population.XXXXXX")
        python3 - "$1" "$BENCH_POP_FILE" <<'PY'
import csv, sys
with open(sys.argv[1], newline="", encoding="utf-8-sig") as src, open(sys.argv[2], "w", newline="") as dst:
    out = csv.writer(dst)
    out.writerow(["WardName", "Population"])
    for i, row in enumerate(csv.DictReader(src)):
        out.writerow([row["WardName"], 5000 + (i * 7919) % 40000])
PY
    fi
    echo "$BENCH_POP_FILE"
}

# bench_call METHOD URL SID [CURL ARGS...] : one request (bounded: 300 s); sets BENCH_CODE (000 on a
# connection failure) and leaves the body in $BENCH_BODY_FILE.
BENCH_CODE=""
BENCH_BODY_FILE=$(mktemp "${TMPDIR:-/tmp}/bench-body.XXXXXX")
bench_call() {
    local method=$1 url=$2 sid=$3
    shift 3
    local hdr=()
    [[ -n "$sid" ]] && hdr=(-H "X-Session-ID: $sid")
    BENCH_CODE=$(curl -sS -m 300 -o "$BENCH_BODY_FILE" -w '%{http_code}' -X "$method" "${hdr[@]}" "$@" "$url" 2>/dev/null) ||
        BENCH_CODE=${BENCH_CODE:-000}
}

# bench_workflow BASE_URL : one user's pass through the API that needs no LLM: create a session,
# upload Kano (CSV + shapefile) and a population table, status, analysis, ITN plan, session info,
# report, status.
# Sets BENCH_WF_SID (empty if no session could be made) and BENCH_WF_STEPS ("route=code ...");
# returns 0 only if every step answered 2xx.
BENCH_WF_SID=""
BENCH_WF_STEPS=""
bench_workflow() {
    local base=$1 csv zip ok=0 sid
    BENCH_WF_SID=""
    BENCH_WF_STEPS=""
    csv=$(bench_kano_file kano_wards.csv) || return 1
    zip=$(bench_kano_file kano_wards_shapefile.zip) || return 1
    step() { # step LABEL METHOD PATH [CURL ARGS...]
        local label=$1 method=$2 path=$3
        shift 3
        bench_call "$method" "$base$path" "$BENCH_WF_SID" "$@"
        BENCH_WF_STEPS+="$label=$BENCH_CODE "
        [[ "$BENCH_CODE" == 2?? ]] || ok=1
    }
    step session POST /api/session
    sid=$(jq -r '.session_id // empty' "$BENCH_BODY_FILE" 2>/dev/null || true)
    [[ "$sid" =~ ^[0-9a-f]{32}$ ]] || return 1
    BENCH_WF_SID=$sid
    step upload POST /upload_both_files -F "csv_file=@$csv" -F "shapefile=@$zip"
    # The Kano fixture has no population column and ITN planning needs one.
    bench_population_csv "$csv" >/dev/null
    step population POST /upload_population -F "population_file=@$BENCH_POP_FILE;filename=population.csv"
    step status GET /api/session/status
    step analysis POST /run_analysis -H 'Content-Type: application/json' -d '{}'
    step itn POST /api/itn/update-distribution -H 'Content-Type: application/json' -d '{"total_nets":100000}'
    step info GET /session_info
    step report POST /generate_report
    step status GET /api/session/status
    return $ok
}

# Loopback TCP sockets in TIME-WAIT (IPv4 and IPv6). A server that closes after every response
# (gunicorn sync) leaves one per request; tens of thousands of them make every later connect()
# on 127.0.0.1 slower while the kernel searches for a free ephemeral port.
bench_timewait_count() {
    awk 'FNR > 1 && $4 == "06" { n++ } END { print n + 0 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# bench_drain_timewait MAX DEADLINE_SECONDS : waits (bounded) until at most MAX remain, so each
# measured run starts with the same port space. Prints the count it ended with.
bench_drain_timewait() {
    local max=$1 deadline=$((SECONDS + $2)) n
    n=$(bench_timewait_count)
    while ((n > max && SECONDS < deadline)); do
        sleep 1
        n=$(bench_timewait_count)
    done
    echo "$n"
}
