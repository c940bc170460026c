#!/usr/bin/env bash
# Installs what the benchmarks need, idempotently, on a fresh Debian/Ubuntu machine as root:
#   - wrk (the load generator) and curl from apt, when missing;
#   - a virtualenv in scripts/bench/.venv with the pinned gunicorn + Flask of requirements.txt.
# Re-running it is cheap: the virtualenv is rebuilt only when requirements.txt changed.
#   --with-pandas   also install requirements-heavy.txt (pandas), for memory.sh --flask-imports.
# Environment: PYTHON (default python3), BENCH_VENV (default scripts/bench/.venv).
set -euo pipefail

WITH_PANDAS=0
for arg in "$@"; do
    case $arg in
        --with-pandas) WITH_PANDAS=1 ;;
        *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PYTHON=${PYTHON:-python3}
APT_UPDATED=0

as_root() {
    if ((EUID == 0)); then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        bench_die "need root (or sudo) to run: $*"
    fi
}

apt_install() {
    command -v apt-get >/dev/null || bench_die "no apt-get: install $* by hand"
    if ((APT_UPDATED == 0)); then
        bench_log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        APT_UPDATED=1
    fi
    bench_log "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v "$PYTHON" >/dev/null || missing+=(python3)
if ((${#missing[@]} > 0)); then
    apt_install "${missing[@]}"
fi
# Debian splits venv/ensurepip out of python3.
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    apt_install python3-venv
fi

stamp="$BENCH_VENV/.requirements.sha256"
want=$(sha256sum "$BENCH_DIR/requirements.txt" | cut -d' ' -f1)
if [[ -x "$BENCH_VENV/bin/gunicorn" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    bench_log "virtualenv $BENCH_VENV is up to date"
else
    bench_log "creating virtualenv $BENCH_VENV"
    rm -rf "$BENCH_VENV"
    "$PYTHON" -m venv "$BENCH_VENV"
    "$BENCH_VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$BENCH_DIR/requirements.txt"
    printf '%s\n' "$want" >"$stamp"
fi

if ((WITH_PANDAS == 1)); then
    heavy_stamp="$BENCH_VENV/.requirements-heavy.sha256"
    heavy=$(sha256sum "$BENCH_DIR/requirements-heavy.txt" | cut -d' ' -f1)
    if [[ ! -f "$heavy_stamp" || "$(cat "$heavy_stamp")" != "$heavy" ]]; then
        bench_log "installing requirements-heavy.txt (pandas)"
        "$BENCH_VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$BENCH_DIR/requirements-heavy.txt"
        printf '%s\n' "$heavy" >"$heavy_stamp"
    fi
fi

bench_log "ready: $(wrk --version 2>&1 | awk 'NR == 1 { print $1, $2 }' || true); $("$BENCH_VENV/bin/gunicorn" --version); flask $("$BENCH_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("flask"))')"
