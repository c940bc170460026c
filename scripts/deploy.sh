#!/bin/sh
# Deploy prefork to staging or production.
#
#   scripts/deploy.sh [--dry-run] [--no-build] [--binary PATH] staging|production
#
# Steps: build the release binary; copy binary + config/ENV.toml into a new release directory
# on the target; flip TARGET/current to it; install/refresh the systemd unit; upgrade the running
# master with USR2 (scripts/upgrade.sh) or start it; wait for /ping through the real port; if the
# health check fails, flip back to the previous release and upgrade/restart onto it.
#
# Target (DEPLOY_TARGET, else the default for the environment below):
#   user@host:/opt/prefork   over ssh + rsync, systemd on the host (the unit is config/prefork.service)
#   /some/local/dir          a local directory, no systemd: the server is started in the background
#                            with its pid file, logs and instance dir under that directory
#                            (this is what the tests use)
# A session store on S3 (several hosts behind a load balancer, README "Running more than one
# host"): PREFORK_STORE=s3://BUCKET/PREFIX and the AWS_* settings live in the target's
# EnvironmentFile /etc/prefork/env (mode 0600, never in the unit or the config); before the
# switch the new binary checks, on the target and with that file, that the store is reachable
# (--check-config), and the deploy stops if it is not. Local targets: export them before running.
# Other environment:
#   DEPLOY_HEALTH_URL   health URL (default http://127.0.0.1:8000/ping, or from DEPLOY_BIND)
#   DEPLOY_BIND         local targets: address to listen on (PREFORK_BIND), e.g. 127.0.0.1:18000
#   DEPLOY_TIMEOUT      seconds for each wait (default 60)
# --dry-run prints every step and changes nothing.
set -eu

usage() { echo "usage: $0 [--dry-run] [--no-build] [--binary PATH] staging|production" >&2; exit 2; }

DRY=0
BUILD=1
BINARY=""
ENVIRONMENT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --no-build) BUILD=0 ;;
        --binary) [ $# -ge 2 ] || usage; BINARY=$2; BUILD=0; shift ;;
        staging|production) ENVIRONMENT=$1 ;;
        *) usage ;;
    esac
    shift
done
[ -n "$ENVIRONMENT" ] || usage

ROOT=$(cd "$(dirname "$0")/.." && pwd)
case "$ENVIRONMENT" in
    staging) DEFAULT_TARGET="deploy@staging.mrpt.internal:/opt/prefork" ;;
    production) DEFAULT_TARGET="deploy@mrpt.internal:/opt/prefork" ;;
esac
TARGET=${DEPLOY_TARGET:-$DEFAULT_TARGET}
TIMEOUT=${DEPLOY_TIMEOUT:-60}
CONFIG="$ROOT/config/$ENVIRONMENT.toml"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)-$$
BINARY=${BINARY:-$ROOT/target/release/prefork}

case "$TARGET" in
    *:*) MODE=ssh; HOST=${TARGET%%:*}; DIR=${TARGET#*:} ;;
    *) MODE=local; HOST=""; DIR=$TARGET ;;
esac
if [ "$MODE" = local ]; then
    BIND=${DEPLOY_BIND:-}
    HEALTH_URL=${DEPLOY_HEALTH_URL:-http://${BIND:-127.0.0.1:8000}/ping}
    PIDFILE="$DIR/run/prefork.pid"
else
    HEALTH_URL=${DEPLOY_HEALTH_URL:-http://127.0.0.1:8000/ping}
    PIDFILE=/run/prefork/prefork.pid
fi
RELEASE="$DIR/releases/$STAMP"

say() { echo "deploy[$ENVIRONMENT]: $*"; }
# Runs a command on the target (locally, or through ssh), or only prints it with --dry-run.
on_target() {
    if [ "$MODE" = ssh ]; then
        say "+ ssh $HOST $*"
        [ "$DRY" -eq 1 ] || ssh "$HOST" "$@"
    else
        say "+ $*"
        [ "$DRY" -eq 1 ] || sh -c "$*"
    fi
}
copy_to_target() {
    if [ "$MODE" = ssh ]; then
        say "+ rsync -a $1 $HOST:$2"
        [ "$DRY" -eq 1 ] || rsync -a "$1" "$HOST:$2"
    else
        say "+ cp $1 $2"
        [ "$DRY" -eq 1 ] || cp "$1" "$2"
    fi
}
local_step() {
    say "+ $*"
    [ "$DRY" -eq 1 ] || "$@"
}

[ "$DRY" -eq 1 ] && say "dry run: nothing is built, copied, started or stopped"
say "target $TARGET ($MODE), release $STAMP, health $HEALTH_URL"

# 1. Build and validate.
if [ "$BUILD" -eq 1 ]; then
    local_step cargo build --release --bin prefork --manifest-path "$ROOT/Cargo.toml"
fi
if [ "$DRY" -eq 0 ]; then
    [ -x "$BINARY" ] || { say "no binary at $BINARY"; exit 1; }
fi
local_step "$BINARY" --check-config -c "$CONFIG"

# 2. Copy binary + config into a new release directory.
on_target "mkdir -p '$RELEASE' '$DIR/run' '$DIR/log' '$DIR/instance' '$DIR/bin'"
copy_to_target "$BINARY" "$RELEASE/prefork"
copy_to_target "$CONFIG" "$RELEASE/prefork.toml"
copy_to_target "$ROOT/scripts/upgrade.sh" "$DIR/bin/upgrade.sh"

# 2b. The session store must be reachable from the target with the target's credentials (the
# service's EnvironmentFile): a wrong bucket, endpoint or key stops the deploy here, before any
# switch. Local targets inherit this environment: the check of step 1 covered them.
if [ "$MODE" = ssh ]; then
    on_target "sudo systemd-run --quiet --pipe --wait --collect -p User=prefork -p EnvironmentFile=-/etc/prefork/env '$RELEASE/prefork' --check-config -c '$RELEASE/prefork.toml'"
fi

# 3. Flip current -> the new release (atomically: rename over the old link), keep the previous.
PREVIOUS=""
if [ "$DRY" -eq 0 ] && [ "$MODE" = local ] && [ -L "$DIR/current" ]; then
    PREVIOUS=$(readlink "$DIR/current")
elif [ "$DRY" -eq 0 ] && [ "$MODE" = ssh ]; then
    PREVIOUS=$(ssh "$HOST" "readlink '$DIR/current' 2>/dev/null || true")
fi
say "previous release: ${PREVIOUS:-none}"
flip() {
    on_target "ln -sfn '$1' '$DIR/current.new' && mv -T '$DIR/current.new' '$DIR/current'"
}
flip "$RELEASE"

# 4. Unit (systemd targets only), then upgrade in place or start.
running() {
    if [ "$MODE" = ssh ]; then
        ssh "$HOST" "test -s '$PIDFILE' && kill -0 \$(cat '$PIDFILE')" 2>/dev/null
    else
        [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
    fi
}
start_local() {
    on_target "cd '$DIR' && PREFORK_PID='$PIDFILE' PREFORK_INSTANCE_DIR='$DIR/instance' \
PREFORK_ERROR_LOGFILE='$DIR/log/error.log' PREFORK_ACCESS_LOGFILE='$DIR/log/access.log' \
${BIND:+PREFORK_BIND='$BIND'} nohup '$DIR/current/prefork' -c '$DIR/current/prefork.toml' \
</dev/null >>'$DIR/log/stdout.log' 2>&1 &"
}
activate() {
    if [ "$MODE" = ssh ]; then
        on_target "sudo install -m 0644 '$RELEASE/prefork.toml' /etc/prefork/prefork.toml"
        if [ "$DRY" -eq 1 ] || running; then
            on_target "'$DIR/bin/upgrade.sh' '$PIDFILE' '$HEALTH_URL' || sudo systemctl restart prefork"
        else
            on_target "sudo systemctl restart prefork"
        fi
    elif [ "$DRY" -eq 0 ] && running; then
        on_target "'$DIR/bin/upgrade.sh' '$PIDFILE' '$HEALTH_URL'"
    else
        [ "$DRY" -eq 1 ] && say "(if no master is running: start it; else: $DIR/bin/upgrade.sh $PIDFILE $HEALTH_URL)"
        start_local
    fi
}
if [ "$MODE" = ssh ]; then
    copy_to_target "$ROOT/config/prefork.service" "/tmp/prefork.service.$STAMP"
    on_target "sudo install -m 0644 /tmp/prefork.service.$STAMP /etc/systemd/system/prefork.service && sudo systemctl daemon-reload && sudo systemctl enable prefork"
else
    say "local target: no systemd unit to install"
fi

healthy() {
    if [ "$DRY" -eq 1 ]; then
        say "+ poll $HEALTH_URL until 200 (up to ${TIMEOUT}s)"
        return 0
    fi
    i=0
    while [ $i -lt $((TIMEOUT * 5)) ]; do
        if curl -fsS -o /dev/null --max-time 5 "$HEALTH_URL"; then return 0; fi
        sleep 0.2
        i=$((i + 1))
    done
    return 1
}

if activate && healthy; then
    say "healthy: $HEALTH_URL"
    say "deployed $STAMP"
    exit 0
fi

# 5. Roll back.
say "health check FAILED on $HEALTH_URL"
if [ -z "$PREVIOUS" ]; then
    say "no previous release to roll back to; stopping the failed one"
    if [ "$MODE" = local ] && running; then on_target "kill -TERM \$(cat '$PIDFILE')"; fi
    exit 1
fi
say "rolling back to $PREVIOUS"
flip "$PREVIOUS"
if [ "$MODE" = local ]; then
    if running; then
        on_target "'$DIR/bin/upgrade.sh' '$PIDFILE' '$HEALTH_URL'" || true
    else
        start_local
    fi
else
    on_target "'$DIR/bin/upgrade.sh' '$PIDFILE' '$HEALTH_URL' || sudo systemctl restart prefork" || true
fi
if healthy; then say "rolled back to $PREVIOUS (healthy)"; else say "rollback is NOT healthy either"; fi
exit 1
