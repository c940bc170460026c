#!/usr/bin/env bash
# Issue 17: the 60-user chaos run across two independent instances (two masters, two runtime
# dirs) on ONE shared instance directory, as two hosts on one NFS export; with STORE=s3, on ONE
# S3 bucket instead (moto_server on loopback, started here; each instance keeps its own
# --instance-dir for runtime state and cache, as two hosts; the bucket is walked afterwards). prefork-load launches
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
#          STORE=s3 (moto_server from target/moto-venv or PATH; `pip install "moto[server]"`)
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
store_args=(--instance "$WORK/instance")
if [[ "${STORE:-local}" == s3 ]]; then
    MOTO="$TARGET_DIR/moto-venv/bin/moto_server"
    [[ -x "$MOTO" ]] || MOTO="$(command -v moto_server || true)"
    [[ -n "$MOTO" ]] || die "STORE=s3 needs moto_server (python3 -m venv target/moto-venv && target/moto-venv/bin/pip install 'moto[server]')"
    MOTO_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    set +m
    (exec setsid "$MOTO" -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 </dev/null) &
    MOTO_PID=$!
    stop_moto() { kill -KILL -- "-$MOTO_PID" 2>/dev/null || true; }
    trap 'stop_instances; stop_moto; cleanup' EXIT
    deadline=$((SECONDS + 60))
    until curl -fsS -X PUT "http://127.0.0.1:$MOTO_PORT/prefork-load" -o /dev/null 2>/dev/null; do
        ((SECONDS < deadline)) || die "moto_server did not answer: $(cat "$WORK/moto.log")"
        sleep 0.2
    done
    export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_ACCESS_KEY_ID=testing \
        AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true
    instance="$PREFORK_BIN -w $W -b 127.0.0.1:{port} --store s3://prefork-load/two --instance-dir $WORK/host-{n}"
    store_args=(--bucket "http://127.0.0.1:$MOTO_PORT/prefork-load/two")
    log "two instances ($W workers each) on s3://prefork-load/two (moto_server $MOTO_PORT); machine: $(machine)"
else
    # {port} and {n} are filled in by prefork-load; the instances run in $WORK (no config/default.toml).
    instance="$PREFORK_BIN -w $W -b 127.0.0.1:{port} --instance-dir $WORK/instance --runtime-dir $WORK/run-{n}"
    log "two instances ($W workers each) on $WORK/instance; machine: $(machine)"
fi
rc=0
"$LOAD_BIN" --launch "$instance" --launch "$instance" --launch-cwd "$WORK" --launch-logs "$WORK" \
    --users "${USERS:-60}" --think-ms "${THINK_MS:-1000}" --ramp-up-s "${RAMP_UP_S:-10}" \
    --duration-limit "${DURATION_LIMIT:-600}" --data "$REPO_ROOT/tests/fixtures" \
    --record "$WORK/history.jsonl" "${store_args[@]}" \
    --chaos --kill-interval-ms 500 --instance-kill-every-s "${INSTANCE_EVERY_S:-4}" \
    --instance-down-ms "${INSTANCE_DOWN_MS:-1000}" --reclicks "${RECLICKS:-20}" "$@" || rc=$?
# prefork-load has stopped both instances; the offline re-check must agree.
"$LOAD_BIN" check --chaos --record "$WORK/history.jsonl" "${store_args[@]}" || rc=$((rc == 0 ? 1 : rc))
log "exit status $rc"
exit "$rc"
