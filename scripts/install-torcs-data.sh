#!/bin/sh
# Install Debian's torcs-data (the 17 TORCS cars the cars benchmark renders) when it is missing.
# Idempotent: does nothing when /usr/share/games/torcs/cars exists. Uses sudo only when not root.
set -eu
if [ -d /usr/share/games/torcs/cars ]; then
    echo "torcs-data: already installed (/usr/share/games/torcs/cars)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "torcs-data: no apt-get here; install TORCS' data by hand and pass --torcs-root DIR" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update
$SUDO apt-get install -y torcs-data
