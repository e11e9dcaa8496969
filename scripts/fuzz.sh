#!/usr/bin/env bash
# fuzz.sh: runs each libFuzzer target (build/fuzz/bin/fuzz_*, `make fuzz-build`) for SECONDS on
# its committed seed corpus tests/fuzz/corpus/<name>/ (read only: new inputs go to
# build/fuzz/corpus/<name>/), then prints one line per target with the executions run and
# the corpus size. Any crash, leak, timeout (10 s per input), out-of-memory (2 GiB) or
# sanitizer report fails the target (its input is kept in build/fuzz/artifacts/), and the
# script exits 1. The summary is also written to build/fuzz/summary.txt.
# Usage: scripts/fuzz.sh SECONDS BIN...
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:?usage: scripts/fuzz.sh SECONDS BIN...}
shift
mkdir -p build/fuzz/artifacts build/fuzz/logs
# scratch files of the targets (tests/fuzz/fuzz_common.c) go to memory when it can
[ -d /dev/shm ] && [ -w /dev/shm ] && export TMPDIR=/dev/shm
summary=build/fuzz/summary.txt
: >"$summary"
total=0
failed=()
printf '%-22s %12s %8s %8s %s\n' target executions exec/s corpus result | tee -a "$summary"
for bin in "$@"; do
    name=$(basename "$bin")
    name=${name#fuzz_}
    seeds=tests/fuzz/corpus/$name
    work=build/fuzz/corpus/$name
    log=build/fuzz/logs/$name.log
    mkdir -p "$work"
    if [ ! -d "$seeds" ]; then
        echo "fuzz: no seed corpus $seeds for $bin" >&2
        failed+=("$name")
        continue
    fi
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
        "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="build/fuzz/artifacts/$name-" \
        "$work" "$seeds" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    corpus=$(find "$work" -type f | wc -l)
    result=ok
    if [ $rc -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log"; then
        result="FAILED (rc $rc, log $log)"
        failed+=("$name")
        grep -m5 -E 'ERROR|runtime error|SUMMARY|==[0-9]+==' "$log" >&2
    fi
    total=$((total + ${execs:-0}))
    printf '%-22s %12s %8s %8s %s\n' "$name" "${execs:-0}" "${rate:-0}" "$corpus" "$result" | tee -a "$summary"
done
printf '%-22s %12s\n' total "$total" | tee -a "$summary"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]}" | tee -a "$summary"
    exit 1
fi
echo "fuzz: ${#@} targets, $total executions, 0 failures ($secs s each)" | tee -a "$summary"
