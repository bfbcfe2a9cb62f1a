#!/bin/sh
# Install Debian's torcs-data (the 17 TORCS cars the cars benchmark renders) when it is missing.
exec sh "$(dirname "$0")/apt-install.sh" torcs-data /usr/share/games/torcs/cars \
    "install TORCS' data by hand and pass --torcs-root DIR"
