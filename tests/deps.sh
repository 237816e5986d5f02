#!/bin/sh
# Install the Debian packages the build and the tests need, when missing.
# Quiet and quick when everything is there.
set -e
need="gcc make pkg-config libssl-dev libhttp-parser-dev libcmocka-dev \
python3 python3-websockets valgrind"
missing=""
for p in $need; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
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
