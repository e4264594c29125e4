#!/usr/bin/env bash
# Install the Debian packages the test-suite needs, if they are missing.
#
#   postgresql         server + client for the PostgreSQL integration tests
#   chromium           headless browser for the Playwright browser tests
#   fonts-dejavu-core  fonts so headless Chromium renders text
#   nodejs             `node --test` for the pages' unit tests (tests/js)
#
# Idempotent and quick when everything is present: `apt-get update` runs only
# when something has to be installed.  Browsers come from apt only (never
# `playwright install`).
set -euo pipefail

PACKAGES=(postgresql chromium fonts-dejavu-core nodejs)

log() { echo "system-deps: $*" >&2; }

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    if is_installed "$pkg"; then
        log "$pkg: already installed"
    else
        missing+=("$pkg")
    fi
done

# Sanity check on the binaries we actually use, even if dpkg says "installed".
if ! compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null; then
    log "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin"
    [[ " ${missing[*]-} " == *" postgresql "* ]] || missing+=(postgresql)
fi
if ! command -v node >/dev/null 2>&1; then
    log "node executable not found on PATH"
    [[ " ${missing[*]-} " == *" nodejs "* ]] || missing+=(nodejs)
fi
if ! command -v chromium >/dev/null 2>&1; then
    log "chromium executable not found on PATH"
    [[ " ${missing[*]-} " == *" chromium "* ]] || missing+=(chromium)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
    log "all system packages present"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    log "ERROR: missing ${missing[*]} and apt-get is not available; install them manually" >&2
    exit 1
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        log "ERROR: missing ${missing[*]}; re-run as root (or install sudo)"
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt/dpkg (e.g. a background install) instead of failing.
APT_OPTS=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)

retry() {
    local n=1 max=5
    until "$@"; do
        if (( n >= max )); then
            log "ERROR: '$*' failed $n times"
            return 1
        fi
        log "'$*' failed (attempt $n/$max; apt may be locked) - retrying in 15s"
        sleep 15
        n=$((n + 1))
    done
}

log "installing: ${missing[*]}"
log "running apt-get update"
retry "${SUDO[@]}" apt-get "${APT_OPTS[@]}" update -q </dev/null
retry "${SUDO[@]}" apt-get "${APT_OPTS[@]}" install -y -q --no-install-recommends "${missing[@]}" </dev/null

for pkg in "${missing[@]}"; do
    if ! is_installed "$pkg"; then
        log "ERROR: $pkg is still not installed"
        exit 1
    fi
done
log "done: installed ${missing[*]}"
