#!/usr/bin/env bash
# Per-request latency (status, upload, analysis, ITN) over HTTP end to end: the local session
# store vs the S3 store (`--store s3://...`) on moto_server on loopback. Prints p50/p90 of each
# and the S3/local ratio. ROUNDS=N (default 10).
#
#   scripts/bench/store_latency.sh
#
# Needs the release build (built when missing) and moto_server: target/moto-venv/bin/moto_server
# (the tests install it there), else on PATH, else it is installed into target/moto-venv.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -x "$(bench_prefork_bin)" ]] || bench_build_prefork
MOTO="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/moto-venv/bin/moto_server"
if [[ ! -x "$MOTO" ]]; then
    if command -v moto_server >/dev/null; then
        MOTO=$(command -v moto_server)
    else
        bench_log "installing moto[server] into ${MOTO%/bin/moto_server}"
        python3 -m venv "${MOTO%/bin/moto_server}"
        "${MOTO%/moto_server}/pip" install --quiet 'moto[server]'
    fi
fi
exec python3 "$BENCH_DIR/store_latency.py" "$(bench_prefork_bin)" "$MOTO"
