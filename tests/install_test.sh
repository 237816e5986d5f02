#!/bin/sh
# make install into a temporary DESTDIR, then build the README examples
# against the installed copy with nothing but pkg-config (never -I. or
# build/): the echo example statically and against libws.so, and run both.
# The library is built in its own tree under the temporary directory, so
# this works whatever BUILD, SANITIZE or make flags the caller uses.
# Exits non-zero on the first failure.
set -eu
cd "$(dirname "$0")/.."
CC=${CC:-cc}
PY=/usr/bin/python3
tmp=$(mktemp -d)
pid=""
cleanup() {
    [ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "install_test: $*" >&2
    exit 1
}

# Called from a make recipe: do not inherit its jobserver, its variables
# or a sanitizer (the programs below are linked without one).
unset MAKEFLAGS MFLAGS MAKELEVEL SANITIZE
make --no-print-directory -j2 BUILD="$tmp/build" install \
    DESTDIR="$tmp/root" PREFIX=/usr/local >"$tmp/make.log" 2>&1 ||
    { cat "$tmp/make.log" >&2; fail "make install failed"; }

lib=$tmp/root/usr/local/lib
for f in lib/libws.a lib/libws.so lib/libws.so.0 lib/libws.so.0.1.0 \
    include/ws/ws.h include/ws/net/error.h lib/pkgconfig/ws.pc; do
    [ -e "$tmp/root/usr/local/$f" ] || fail "not installed: $f"
done
[ "$(readlink "$lib/libws.so")" = libws.so.0 ] || fail "libws.so link"
[ "$(readlink "$lib/libws.so.0")" = libws.so.0.1.0 ] || fail "soname link"

# libevent_embed also needs libevent (the system's, looked up before
# pkg-config is pointed at the temporary root).
event_flags=$(pkg-config --cflags --libs libevent 2>/dev/null || echo -levent)
export PKG_CONFIG_PATH="$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$tmp/root"
[ "$(pkg-config --modversion ws)" = 0.1.0 ] || fail "pkg-config ws version"
cflags=$(pkg-config --cflags ws)
libs=$(pkg-config --libs ws)
slibs=$(pkg-config --static --libs ws)
echo "install_test: cflags: $cflags"
echo "install_test: libs: $libs"
echo "install_test: static libs: $slibs"

# Every example compiles against the installed header alone, as a user
# would build it. With both libws.a and libws.so installed, -lws picks the
# shared one; -l:libws.a asks for the archive by name.
static_libs=$(echo "$slibs" | sed 's/-lws\b/-l:libws.a/')
for ex in demo/examples/*.c; do
    name=$(basename "$ex" .c)
    extra=""
    [ "$name" != libevent_embed ] || extra=$event_flags
    # shellcheck disable=SC2086
    $CC -Wall -Wextra -Werror $cflags "$ex" \
        $static_libs $extra -o "$tmp/$name-static" || fail "static build: $name"
done
# shellcheck disable=SC2086
$CC -Wall -Wextra -Werror $cflags demo/examples/echo.c $libs \
    -o "$tmp/echo-shared" || fail "shared build: echo"

readelf -d "$tmp/echo-static" | grep -q 'NEEDED.*libws' &&
    fail "echo-static needs libws.so"
readelf -d "$tmp/echo-shared" | grep -q 'NEEDED.*\[libws\.so\.0\]' ||
    fail "echo-shared does not need libws.so.0"

# run_echo LABEL COMMAND...: start COMMAND on port 0, read the port from
# its banner, make one real WebSocket round trip, stop it with SIGTERM and
# expect exit status 0.
run_echo() {
    label=$1
    shift
    "$@" 0 2>"$tmp/err" &
    pid=$!
    port=""
    for _ in $(seq 100); do
        port=$(sed -n 's/^echo: listening on port \([0-9]*\)$/\1/p' "$tmp/err")
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$port" ] || fail "$label did not start: $(cat "$tmp/err")"
    timeout 20 $PY - "$port" <<'EOF' || fail "$label: no echo"
import asyncio, sys
import websockets.client

async def main(port):
    uri = "ws://127.0.0.1:%s/" % port
    async with websockets.client.connect(uri, open_timeout=10) as ws:
        await ws.send("installed")
        assert await asyncio.wait_for(ws.recv(), 10) == "installed"

asyncio.run(main(sys.argv[1]))
EOF
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    pid=""
    [ "$rc" -eq 0 ] || fail "$label exit status $rc"
    echo "install_test: $label: echo round trip, exit 0"
}
# The shared library exports exactly the functions ws/ws.h declares.
nm -D --defined-only "$lib/libws.so" | awk '{print $3}' | sort \
    >"$tmp/exported"
grep -o '\bws_[a-z0-9_]*(' ws/ws.h | tr -d '(' | sort -u >"$tmp/declared"
cmp -s "$tmp/exported" "$tmp/declared" ||
    fail "libws.so exports differ from ws/ws.h: $(diff "$tmp/declared" \
        "$tmp/exported" | tr '\n' ' ')"
echo "install_test: libws.so exports the $(wc -l <"$tmp/declared") functions of ws.h"

run_echo static "$tmp/echo-static"
run_echo shared env LD_LIBRARY_PATH="$lib" "$tmp/echo-shared"

# uninstall removes what install put there.
make --no-print-directory BUILD="$tmp/build" uninstall \
    DESTDIR="$tmp/root" PREFIX=/usr/local >"$tmp/make.log" 2>&1 ||
    { cat "$tmp/make.log" >&2; fail "make uninstall failed"; }
left=$(find "$tmp/root" -type f -o -type l)
[ -z "$left" ] || fail "left after uninstall: $left"
echo "install_test: ok"
