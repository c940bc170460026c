#!/usr/bin/env bash
# Issue 17: the 60-user chaos run across two independent instances (two masters, two runtime
# dirs) on ONE shared instance directory, as two hosts on one NFS export. prefork-load launches
# both instances itself (`--launch`, each in its own process group on a fixed loopback port), so
# its chaos mode can SIGKILL a whole instance (master + workers) and start it again, besides
# killing single workers every 0.5 s. Each user's requests alternate between the instances; a
# connection refused by the dead instance goes to the other one (a load balancer's failover).
# Afterwards every session is read back from both instances. The checker must find 0 violations
# in the history and in every session folder, and every user must have crossed both instances.
#
# Usage: scripts/load/two-instances.sh [extra prefork-load flags]
#   knobs: USERS=60 THINK_MS=1000 RAMP_UP_S=10 WORKERS_PER_INSTANCE=3 INSTANCE_EVERY_S=4
#          INSTANCE_DOWN_MS=1000 RECLICKS=20 (a user clicks a failed step again up to 20 times:
#          a worker dies every 0.5 s, so long requests are often cut short)
#          KEEP=1 (keep the work dir) NO_BUILD=1 (skip cargo build --release)
set -euo pipefail
# shellcheck source=scripts/load/lib.sh
source "$(dirname "$0")/lib.sh"

[[ -n "${NO_BUILD:-}" ]] || build
WORK="$(mktemp -d "${TMPDIR:-/tmp}/prefork-load.XXXXXX")"
# prefork-load stops its instances itself; if it was killed first, their process groups (whose
# ids it wrote to instance-N.log.pid) are stopped here.
stop_instances() {
    local f pid
    for f in "$WORK"/instance-*.log.pid; do
        [[ -f "$f" ]] || continue
        pid="$(cat "$f")"
        [[ "$pid" =~ ^[0-9]+$ ]] && kill -KILL -- "-$pid" 2>/dev/null || true
    done
}
trap 'stop_instances; cleanup' EXIT
trap 'exit 130' INT TERM
W="${WORKERS_PER_INSTANCE:-3}"
# {port} and {n} are filled in by prefork-load; the instances run in $WORK (no config/default.toml).
instance="$PREFORK_BIN -w $W -b 127.0.0.1:{port} --instance-dir $WORK/instance --runtime-dir $WORK/run-{n}"
log "two instances ($W workers each) on $WORK/instance; machine: $(machine)"
rc=0
"$LOAD_BIN" --launch "$instance" --launch "$instance" --launch-cwd "$WORK" --launch-logs "$WORK" \
    --users "${USERS:-60}" --think-ms "${THINK_MS:-1000}" --ramp-up-s "${RAMP_UP_S:-10}" \
    --duration-limit "${DURATION_LIMIT:-600}" --data "$REPO_ROOT/tests/fixtures" \
    --record "$WORK/history.jsonl" --instance "$WORK/instance" \
    --chaos --kill-interval-ms 500 --instance-kill-every-s "${INSTANCE_EVERY_S:-4}" \
    --instance-down-ms "${INSTANCE_DOWN_MS:-1000}" --reclicks "${RECLICKS:-20}" "$@" || rc=$?
# prefork-load has stopped both instances; the offline re-check must agree.
"$LOAD_BIN" check --chaos --record "$WORK/history.jsonl" --instance "$WORK/instance" || rc=$((rc == 0 ? 1 : rc))
log "exit status $rc"
exit "$rc"
