#!/bin/sh
# The README's echo server must keep compiling and linking against the
# library as built: extract the first C block and build it.
set -e
BUILD=${BUILD:-build}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
awk '/^```c$/ {on=1; next} /^```$/ && on {exit} on' README.md > "$dir/echo.c"
test -s "$dir/echo.c"
${CC:-cc} -std=c11 -Wall -Wextra -Werror -I. "$dir/echo.c" "$BUILD/libws.a" \
    -lhttp_parser -lssl -lcrypto -lz -o "$dir/echo" $LDFLAGS
echo "README example builds ($(wc -l < "$dir/echo.c") lines)"
