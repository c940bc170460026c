#!/usr/bin/env bash
# Issue 17: the 60-user chaos run across two independent instances (two masters, two runtime
# dirs) on ONE shared instance directory, as two hosts on one NFS export. Each user's requests
# alternate between the instances; random workers of both masters are SIGKILLed every 0.5 s.
# The checker must find 0 violations in the history and in every session folder, and every user
# must have been answered by both instances.
#
# Usage: scripts/load/two-instances.sh [extra prefork-load flags]   (USERS=60 THINK_MS=1000 KEEP=1 NO_BUILD=1)
set -euo pipefail
# shellcheck source=scripts/load/lib.sh
source "$(dirname "$0")/lib.sh"

[[ -n "${NO_BUILD:-}" ]] || build
# Instance A through lib.sh (its work dir holds the shared instance/), then instance B by hand.
start_server
A_PID="$SERVER_PID" A_URL="$SERVER_URL"
mkdir -p "$WORK/b"
set +m
(cd "$WORK/b" && exec setsid "$PREFORK_BIN" -w "$WORKERS" -b 127.0.0.1:0 \
    --instance-dir "$WORK/instance" --runtime-dir "$WORK/b/run" >"$WORK/b/server.log" 2>&1 </dev/null) &
B_PID=$!
stop_b() { kill -TERM -- "-$B_PID" 2>/dev/null || true; sleep 1; kill -KILL -- "-$B_PID" 2>/dev/null || true; }
trap 'stop_b; cleanup' EXIT
deadline=$((SECONDS + 60)) line=""
while ((SECONDS < deadline)); do
    line="$(grep -m1 -o 'Listening at: http://127.0.0.1:[0-9]*' "$WORK/b/server.log" 2>/dev/null || true)"
    [[ -n "$line" ]] && grep -qs "All $WORKERS workers are ready" "$WORK/b/server.log" && break
    sleep 0.1
done
[[ -n "$line" ]] || die "instance B did not start: $(cat "$WORK/b/server.log")"
B_URL="${line#Listening at: }"
log "instance A $A_PID $A_URL, instance B $B_PID $B_URL, shared $WORK/instance; machine: $(machine)"
rc=0
"$LOAD_BIN" --url "$A_URL" --url "$B_URL" --users "${USERS:-60}" --think-ms "${THINK_MS:-1000}" \
    --ramp-up-s "${RAMP_UP_S:-10}" --duration-limit "${DURATION_LIMIT:-600}" --data "$REPO_ROOT/tests/fixtures" \
    --record "$WORK/history.jsonl" --instance "$WORK/instance" \
    --chaos --master-pid "$A_PID" --master-pid "$B_PID" --kill-interval-ms 500 "$@" || rc=$?
stop_b
stop_server
"$LOAD_BIN" check --chaos --record "$WORK/history.jsonl" --instance "$WORK/instance" || rc=$((rc == 0 ? 1 : rc))
log "exit status $rc"
exit "$rc"
