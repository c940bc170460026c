# shellcheck shell=bash
# Shared by run.sh and chaos.sh: build, start one prefork master with 6 workers on a free
# loopback port in its own process group, and stop that group (and only it) on exit.
# Every wait has a deadline.

LOAD_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$LOAD_DIR/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
# PREFORK_BIN=/path/to/prefork runs another build (a baseline) under the same load.
PREFORK_BIN="${PREFORK_BIN:-$TARGET_DIR/release/prefork}"
LOAD_BIN="$TARGET_DIR/release/prefork-load"
WORKERS="${WORKERS:-6}"
SERVER_PID=""
SERVER_URL=""
WORK=""

log() { printf '[load %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

build() {
    log "cargo build --release (target dir: $TARGET_DIR)"
    (cd "$REPO_ROOT" && cargo build --release -p prefork -p prefork-loadgen --bins) \
        || die "cargo build --release failed"
    [[ -x "$PREFORK_BIN" && -x "$LOAD_BIN" ]] || die "binaries missing in $TARGET_DIR/release"
}

# Stops the server's process group: TERM (graceful), then KILL after 15 s. Idempotent.
stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    local deadline=$((SECONDS + 15))
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
    while kill -0 "$SERVER_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

cleanup() {
    stop_server
    if [[ -n "$WORK" && -z "${KEEP:-}" ]]; then
        rm -rf "$WORK"
    elif [[ -n "$WORK" ]]; then
        log "kept $WORK (history.jsonl, instance/, server.log)"
    fi
}

# Starts prefork -w $WORKERS on 127.0.0.1:0 with a fresh instance dir, in a temp working
# directory (so no config/default.toml is picked up: the rule-based chat, no network).
start_server() {
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/prefork-load.XXXXXX")"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    set +m
    # Not a group leader, so setsid execs in place: $! is the master, and its pid is its group.
    (cd "$WORK" && exec setsid "$PREFORK_BIN" -w "$WORKERS" -b 127.0.0.1:0 \
        --instance-dir "$WORK/instance" >"$WORK/server.log" 2>&1 </dev/null) &
    SERVER_PID=$!
    local deadline=$((SECONDS + 60)) line=""
    while ((SECONDS < deadline)); do
        line="$(grep -m1 -o 'Listening at: http://127.0.0.1:[0-9]*' "$WORK/server.log" 2>/dev/null || true)"
        [[ -n "$line" ]] && break
        kill -0 "$SERVER_PID" 2>/dev/null || die "server exited: $(cat "$WORK/server.log")"
        sleep 0.1
    done
    [[ -n "$line" ]] || die "server did not listen within 60 s"
    SERVER_URL="${line#Listening at: }"
    while ((SECONDS < deadline)); do
        grep -qs "All $WORKERS workers are ready" "$WORK/server.log" && break
        sleep 0.1
    done
    grep -q "All $WORKERS workers are ready" "$WORK/server.log" || die "workers not ready within 60 s"
    # With `( ... ) &` the subshell execs setsid which execs prefork: the same pid throughout.
    [[ "$(cat "/proc/$SERVER_PID/comm" 2>/dev/null)" == prefork* ]] || die "pid $SERVER_PID is not prefork"
    log "prefork master $SERVER_PID, $WORKERS workers, $SERVER_URL, work dir $WORK"
}

machine() {
    printf '%s, %s cores, load average %s, %s\n' "$(uname -srm)" "$(nproc)" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" "$(date -u +%Y-%m-%dT%H:%MZ)"
}
