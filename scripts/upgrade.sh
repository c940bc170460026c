#!/bin/sh
# Zero-downtime binary upgrade of a running prefork master (gunicorn's USR2 sequence, made safe).
#
#   scripts/upgrade.sh [--dry-run] PIDFILE [HEALTH_URL]
#
# 1. USR2 to the master named in PIDFILE: it starts the binary at the path it was started by
#    (replace that file, or flip the symlink, first), handing over its listening sockets.
# 2. Wait for PIDFILE.2 (the new master) and PIDFILE.2.ready (all its workers are ready).
# 3. If HEALTH_URL is given, GET it a few times; every answer must be 2xx.
# 4. TERM the old master: it drains its workers and exits; the new master is promoted and
#    takes PIDFILE.
# Any failure before step 4 rolls back: the new master is stopped (TERM, then QUIT), the old one
# never stopped serving. Exit status: 0 upgraded, 1 failed and rolled back, 2 usage.
# UPGRADE_TIMEOUT (seconds, default 60) bounds each wait; UPGRADE_START_TIMEOUT (default 10)
# bounds the wait for PIDFILE.2, which a new master writes as soon as it starts (before its
# workers boot), so a binary that cannot start is noticed quickly.
set -eu

DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 [--dry-run] PIDFILE [HEALTH_URL]" >&2
    exit 2
fi
PIDFILE=$1
HEALTH_URL=${2:-}
TIMEOUT=${UPGRADE_TIMEOUT:-60}
START_TIMEOUT=${UPGRADE_START_TIMEOUT:-10}

say() { echo "upgrade: $*"; }
step() {
    say "+ $*"
    if [ "$DRY" -eq 0 ]; then "$@"; fi
}

if [ "$DRY" -eq 1 ]; then
    say "dry run: nothing is signalled"
    say "+ kill -USR2 \$(cat $PIDFILE)"
    say "+ wait up to ${TIMEOUT}s for $PIDFILE.2 and $PIDFILE.2.ready"
    [ -n "$HEALTH_URL" ] && say "+ curl -fsS $HEALTH_URL (5 times)"
    say "+ kill -TERM <old master>; wait until $PIDFILE names the new master"
    say "+ on failure before the TERM: kill -TERM <new master> (then -QUIT); the old master keeps serving"
    exit 0
fi

old=$(cat "$PIDFILE" 2>/dev/null || true)
case "$old" in ''|*[!0-9]*) say "no valid pid in $PIDFILE"; exit 1 ;; esac
kill -0 "$old" 2>/dev/null || { say "master $old is not running"; exit 1; }
if [ -e "$PIDFILE.2" ] && kill -0 "$(cat "$PIDFILE.2" 2>/dev/null || echo 0)" 2>/dev/null; then
    say "an upgrade is already in progress ($PIDFILE.2 names a live master)"
    exit 1
fi

new=""
rollback() {
    say "FAILED: $*"
    if [ -n "$new" ] && kill -0 "$new" 2>/dev/null; then
        say "rolling back: TERM new master $new"
        kill -TERM "$new" 2>/dev/null || true
        i=0
        while kill -0 "$new" 2>/dev/null && [ $i -lt $((TIMEOUT * 10)) ]; do sleep 0.1; i=$((i + 1)); done
        if kill -0 "$new" 2>/dev/null; then kill -QUIT "$new" 2>/dev/null || true; fi
    fi
    say "old master $old keeps serving"
    exit 1
}

step kill -USR2 "$old"
i=0
while :; do
    if [ -z "$new" ] && [ -s "$PIDFILE.2" ]; then
        new=$(cat "$PIDFILE.2")
        say "new master: $new"
    fi
    if [ -n "$new" ] && [ "$(cat "$PIDFILE.2.ready" 2>/dev/null || true)" = "$new" ]; then break; fi
    if [ -n "$new" ] && ! kill -0 "$new" 2>/dev/null; then rollback "new master $new died while booting"; fi
    if [ -z "$new" ] && [ $i -ge $((START_TIMEOUT * 10)) ]; then
        rollback "no $PIDFILE.2 after ${START_TIMEOUT}s: the new binary did not start (see the error log)"
    fi
    if [ $i -ge $((TIMEOUT * 10)) ]; then rollback "new master not ready after ${TIMEOUT}s"; fi
    sleep 0.1
    i=$((i + 1))
done
say "new master $new: all workers ready"

if [ -n "$HEALTH_URL" ]; then
    for n in 1 2 3 4 5; do
        curl -fsS -o /dev/null --max-time 10 "$HEALTH_URL" || rollback "health check $n/5 on $HEALTH_URL"
    done
    say "health check passed: $HEALTH_URL"
fi

step kill -TERM "$old"
i=0
while [ "$(cat "$PIDFILE" 2>/dev/null || true)" != "$new" ]; do
    if [ $i -ge $((TIMEOUT * 10)) ]; then
        say "old master $old did not hand over within ${TIMEOUT}s (check graceful_timeout)"
        exit 1
    fi
    sleep 0.1
    i=$((i + 1))
done
say "upgraded: master $old -> $new"
