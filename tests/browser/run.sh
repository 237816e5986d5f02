#!/bin/sh
# Run the node tests (tests/browser/*.test.mjs) with node's test runner:
# install playwright-core and npm ws from package-lock.json when missing,
# then drive Debian's chromium against $BUILD/ws_chat and $BUILD/ws_echo
# (its graceful shutdown), and npm ws against $BUILD/ws_echo (BUILD is
# relative to the repository root, default build).
set -e
cd "$(dirname "$0")"
for tool in node npm; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "browser tests: $tool is missing (make deps)" >&2; exit 1; }
done
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || {
    echo "browser tests: chromium is missing (make deps)" >&2; exit 1; }
if [ ! -f node_modules/playwright-core/package.json ] ||
    [ ! -f node_modules/ws/package.json ]; then
    npm install --no-audit --no-fund --loglevel=error
fi
exec node --test --test-reporter=spec ./*.test.mjs
