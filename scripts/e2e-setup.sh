#!/usr/bin/env bash
# Installs what the browser end-to-end test (tests/it/browser_e2e.rs) needs, on a fresh machine:
# Debian's Chromium (/usr/bin/chromium) and playwright-core from npm (tests/e2e/node_modules).
# Idempotent and cheap when everything is there: apt and npm are only asked when something is
# missing. Test tools' own browser downloads (`npx playwright install`) are never used: this
# machine's network reaches only the package registries.
#
# Environment: CHROMIUM (default /usr/bin/chromium) names the browser to use.
set -euo pipefail
cd "$(dirname "$0")/.."

chromium="${CHROMIUM:-/usr/bin/chromium}"
e2e_dir="tests/e2e"

# Two test runs (say, two target dirs on one machine) must not run apt or `npm ci` at once.
exec 9>"${TMPDIR:-/tmp}/prefork-e2e-setup.lock"
flock -w 600 9 || { echo "e2e-setup: timed out waiting for another setup to finish" >&2; exit 1; }

say() { echo "e2e-setup: $*" >&2; }

if [[ ! -x "$chromium" ]]; then
    if [[ "$chromium" != /usr/bin/chromium ]]; then
        say "CHROMIUM=$chromium is not an executable file"
        exit 1
    fi
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            as_root=(sudo -n env DEBIAN_FRONTEND=noninteractive)
        else
            say "/usr/bin/chromium is missing and installing it needs root:"
            say "  apt-get update && apt-get install -y chromium"
            exit 1
        fi
    else
        as_root=(env DEBIAN_FRONTEND=noninteractive)
    fi
    say "installing Debian's chromium (apt-get)"
    start=$(date +%s)
    "${as_root[@]}" apt-get update -q >&2
    "${as_root[@]}" apt-get install -y -q --no-install-recommends chromium >&2
    say "chromium installed in $(( $(date +%s) - start )) s"
fi
# A browser that is present but cannot start (missing libraries) fails here, not mid-test.
# (Debian's launcher script prints a harmless shell warning on stderr; only stdout is kept.)
version="$("$chromium" --version 2>/dev/null)" || {
    say "$chromium does not run:"
    "$chromium" --version >&2 || true
    exit 1
}
say "browser: $version"

for tool in node npm; do
    if ! command -v "$tool" >/dev/null; then
        say "$tool is missing: the browser driver (tests/e2e/run.mjs) runs on Node.js >= 20 with npm"
        exit 1
    fi
done

installed="$e2e_dir/node_modules/.package-lock.json"
if [[ ! -f "$e2e_dir/node_modules/playwright-core/package.json" || ! -f "$installed" \
      || "$e2e_dir/package-lock.json" -nt "$installed" ]]; then
    say "installing playwright-core (npm ci in $e2e_dir)"
    start=$(date +%s)
    (cd "$e2e_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
    say "npm ci done in $(( $(date +%s) - start )) s"
fi
say "node $(node --version), playwright-core $(node -p "require('./$e2e_dir/node_modules/playwright-core/package.json').version")"
