#!/usr/bin/env bash
# The 60-user load test of issue 9 against a release build with 6 workers on 127.0.0.1:
# each user creates its own session and walks the whole workflow with think time. Prints the
# per-route table; exit status 0 only with 0 errors, exactly one analysis per user, p99 < 500 ms
# for every route except the analysis, and a clean history + folder check (also re-run offline
# after the server has stopped).
#
# Usage: scripts/load/run.sh [extra prefork-load flags]   (USERS=60 THINK_MS=1000 RAMP_UP_S=10 KEEP=1 NO_BUILD=1
#        PREFORK_BIN=another/prefork)
set -euo pipefail
# shellcheck source=scripts/load/lib.sh
source "$(dirname "$0")/lib.sh"

[[ -n "${NO_BUILD:-}" ]] || build
start_server
log "machine: $(machine)"
rc=0
"$LOAD_BIN" --url "$SERVER_URL" --users "${USERS:-60}" --think-ms "${THINK_MS:-1000}" --ramp-up-s "${RAMP_UP_S:-10}" \
    --duration-limit "${DURATION_LIMIT:-600}" --data "$REPO_ROOT/tests/fixtures" \
    --record "$WORK/history.jsonl" --instance "$WORK/instance" "$@" || rc=$?
stop_server
log "offline check of the history and the folders, server stopped"
"$LOAD_BIN" check --record "$WORK/history.jsonl" --instance "$WORK/instance" || rc=$((rc == 0 ? 1 : rc))
log "exit status $rc"
exit "$rc"
