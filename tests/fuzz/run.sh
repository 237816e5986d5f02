#!/bin/sh
# Run one libFuzzer target of tests/fuzz/ for `make fuzz` (see the
# Makefile's fuzzing block), from the repository root:
#   sh tests/fuzz/run.sh NAME FUZZ_DIR SECONDS [DICT] [LIBFUZZER OPTIONS]
# The seeds of tests/fuzz/corpus/NAME are copied to FUZZ_DIR/corpus/NAME,
# which the fuzzer then grows; crash files and libFuzzer's own files go to
# FUZZ_DIR/artifacts/NAME/ (its working directory). Nothing is written to
# the source tree. SECONDS=0 only replays the seeds. Exit status 0 when the
# target ran clean, 1 on a crash, a leak or an invariant failure.
set -u
name=$1
dir=$2
secs=$3
dict=${4:-}
opts=${5:-}

top=$(pwd)
case $dir in /*) ;; *) dir=$top/$dir ;; esac
bin=$dir/fuzz_$name
work=$dir/corpus/$name
art=$dir/artifacts/$name
log=$dir/$name.log

rm -rf "$work"
mkdir -p "$work" "$art"
if [ -d "tests/fuzz/corpus/$name" ]; then
    cp tests/fuzz/corpus/"$name"/* "$work"/ 2>/dev/null
fi
if [ "$secs" -gt 0 ]; then
    limit="-max_total_time=$secs"
else
    limit="-runs=0"
fi
set -- "$limit" -print_final_stats=1 -timeout=10 -artifact_prefix="$art/"
if [ -n "$dict" ]; then
    set -- "$@" -dict="$top/$dict"
fi

stamp=$dir/.start-$name
touch "$stamp"
echo "  FUZZ $name (${secs}s)"
UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export UBSAN_OPTIONS
# shellcheck disable=SC2086 # opts is a list of libFuzzer options
(cd "$art" && "$bin" "$@" $opts "$work") >"$log" 2>&1
rc=$?

stat() {
    sed -n "s/^stat::$1: *//p" "$log" | tail -n 1
}
cov=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 |
    sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+).*/cov \1, ft \2, corpus \3/')
echo "       $(stat number_of_executed_units) runs," \
    "$(stat average_exec_per_sec)/s, ${cov:-no coverage line}," \
    "$(stat new_units_added) new units"
if [ "$rc" -ne 0 ]; then
    echo "  FUZZ $name FAILED (exit $rc); log: $log" >&2
    grep -E 'ERROR|invariant failed|SUMMARY|#[0-9]+ 0x.* in ' "$log" |
        head -n 30 >&2
    find "$art" -type f -newer "$stamp" \
        \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
        -o -name 'oom-*' \) -exec echo "  reproduce: $bin" {} \; >&2
    exit 1
fi
exit 0
