#!/bin/sh
# Install one Debian package when it is missing:  apt-install.sh PACKAGE PRESENT HINT
# PRESENT is a path or a command whose existence means the package is there (then nothing happens);
# HINT says what to do by hand where there is no apt-get. Uses sudo only when not root.
set -eu
PACKAGE=$1 PRESENT=$2 HINT=$3
if [ -e "$PRESENT" ] || command -v "$PRESENT" >/dev/null 2>&1; then
    echo "$PACKAGE: already installed ($PRESENT)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "$PACKAGE: no apt-get here; $HINT" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "$PACKAGE"
