#!/usr/bin/env bash
# The chaos test of issue 9: the 60-user load of run.sh while a random worker of the master is
# SIGKILLed every 0.5 s and the master gets one SIGHUP (a third of the way in). The client retries
# only idempotent requests that failed at the connection level; other failures are client-visible
# errors (allowed). Afterwards the checker must find 0 violations in the history and in every
# session folder (re-run offline once the server has stopped). Latency is printed, not judged.
#
# Usage: scripts/load/chaos.sh [extra prefork-load flags]   (USERS=60 THINK_MS=1000 RAMP_UP_S=10 KEEP=1 NO_BUILD=1)
set -euo pipefail
# shellcheck source=scripts/load/lib.sh
source "$(dirname "$0")/lib.sh"

[[ -n "${NO_BUILD:-}" ]] || build
start_server
log "machine: $(machine)"
rc=0
"$LOAD_BIN" --url "$SERVER_URL" --users "${USERS:-60}" --think-ms "${THINK_MS:-1000}" --ramp-up-s "${RAMP_UP_S:-10}" \
    --duration-limit "${DURATION_LIMIT:-600}" --data "$REPO_ROOT/tests/fixtures" \
    --record "$WORK/history.jsonl" --instance "$WORK/instance" \
    --chaos --master-pid "$SERVER_PID" --kill-interval-ms 500 "$@" || rc=$?
log "server log: $(grep -c 'was sent SIGKILL' "$WORK/server.log" || true) SIGKILLed workers reported by the master, $(grep -c 'Booting worker' "$WORK/server.log" || true) workers booted"
stop_server
log "offline check of the history and the folders, server stopped"
"$LOAD_BIN" check --chaos --record "$WORK/history.jsonl" --instance "$WORK/instance" || rc=$((rc == 0 ? 1 : rc))
log "exit status $rc"
exit "$rc"
