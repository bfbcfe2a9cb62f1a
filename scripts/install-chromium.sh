#!/bin/sh
# Install Debian's chromium (the annotator's browser tests drive it through Playwright) when it is missing.
# Idempotent: does nothing when `chromium` is on PATH. Uses sudo only when not root. Playwright's own browser
# download (`playwright install`) is not used: it fetches a build from outside the package registries.
set -eu
if command -v chromium >/dev/null 2>&1; then
    echo "chromium: already installed ($(command -v chromium))"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium: no apt-get here; install chromium by hand (the browser tests skip without it)" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium
