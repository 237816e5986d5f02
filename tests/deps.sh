#!/bin/sh
# Install the Debian packages that are missing: "build" for the library
# and the demos (make, make run), "all" for the tests as well (make test).
# Quiet and quick when everything is there.
set -e
need="gcc make pkg-config openssl libssl-dev zlib1g-dev libhttp-parser-dev libjansson-dev libhiredis-dev"
if [ "${1:-all}" = all ]; then
    need="$need libcmocka-dev python3 python3-websockets valgrind chromium libnss3-tools redis-server libevent-dev"
fi
missing=""
for p in $need; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
# node and npm are looked for as commands: a node from another source
# (one that bundles npm) conflicts with Debian's npm package.
if [ "${1:-all}" = all ]; then
    command -v node >/dev/null 2>&1 || missing="$missing nodejs"
    command -v npm >/dev/null 2>&1 || missing="$missing npm"
fi
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "deps: run as root, or install:$missing" >&2; exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
${SUDO:-} apt-get update -qq
${SUDO:-} apt-get install -y -qq --no-install-recommends $missing >/dev/null
