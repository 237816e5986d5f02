#!/bin/sh
# Run every test as its own process and print one closing line:
# "N passed, N failed". Usage: run_all.sh [unit|integration]
# VALGRIND=1 runs the C test binaries under valgrind (leaks are failures).
BUILD=${BUILD:-build}
what=${1:-all}
pass=0
fail=0
failed=""
PY=/usr/bin/python3
VG=""
if [ "${VALGRIND:-0}" = 1 ]; then
    VG="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
--errors-for-leak-kinds=definite,indirect --error-exitcode=99"
fi
export WS_TEST_VALGRIND="${VALGRIND:-0}"

run() {
    name=$1; shift
    echo "=== $name"
    if timeout 600 "$@"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1)); failed="$failed $name"
        echo "FAILED: $name"
    fi
}

if [ "$what" = all ] || [ "$what" = unit ]; then
    for t in "$BUILD"/tests/test_*; do
        case $t in *.o|*.d) continue ;; esac
        [ -x "$t" ] || continue
        run "$(basename "$t")" $VG "$t"
    done
fi
if [ "$what" = all ] || [ "$what" = integration ]; then
    for t in "$BUILD"/tests/itest_*; do
        case $t in *.o|*.d) continue ;; esac
        [ -x "$t" ] || continue
        run "$(basename "$t")" $VG "$t"
    done
    run readme_example env BUILD="$BUILD" LDFLAGS="${SANITIZE_LDFLAGS:-}" \
        sh tests/readme_example.sh
    run install_test sh tests/install_test.sh
    for t in tests/integration/test_*.py; do
        [ -f "$t" ] || continue
        run "$(basename "$t")" env BUILD="$BUILD" $PY "$t"
    done
    # The echo suite and Autobahn's cases again with ws_echo inside its own
    # epoll loop, through the per-descriptor embedding (--embed epoll).
    for t in test_echo.py test_autobahn.py; do
        run "$t[embed=epoll]" env BUILD="$BUILD" WS_ECHO_EMBED=epoll \
            $PY "tests/integration/$t"
    done
    # Real browsers: tests/browser/*.test.mjs (chromium + playwright-core).
    if [ -f tests/browser/run.sh ]; then
        run browser_chat env BUILD="$BUILD" sh tests/browser/run.sh
    fi
fi
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
