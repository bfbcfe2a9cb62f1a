#!/bin/sh
# Install the pages' JavaScript (three.js, pinned exactly by js/package-lock.json) into js/node_modules with
# npm ci; Debian's npm is installed first when there is none. node_modules is never committed.
set -eu
cd "$(dirname "$0")/.."
sh scripts/apt-install.sh npm npm "install Node.js and npm by hand, then run make js (ganfactory view needs three.js)"
cd js
npm ci --no-audit --no-fund
