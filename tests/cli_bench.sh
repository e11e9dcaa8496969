#!/usr/bin/env bash
# cli_bench.sh: every benchmark script (scripts/bench*.sh) runs at its smallest size
# (BENCH_SMOKE=1: one step, one round, a small text) and prints the lines its results page
# records, so a benchmark that no longer builds or runs fails make test instead of rotting.
# The figures themselves are not checked (the machine is shared); their presence and form are.
# Usage: tests/cli_bench.sh path/to/arenagpt   (run from anywhere; the scripts use the
# repository's ./arenagpt and build build/release/scripts/bench_step with make)
set -u
. "$(dirname "$0")/lib_cli.sh" cli_bench "$1"
export BENCH_SMOKE=1
cd "$ROOT" || exit 1
MS='[0-9]+\.[0-9] min [0-9]+\.[0-9]'

if bash scripts/bench.sh 1 >"$TMP/bench.out" 2>&1; then ok; else bad "scripts/bench.sh exited non-zero: $(tail -5 "$TMP/bench.out")"; fi
grep -Eq '^run 1: wall [0-9.]+ s' "$TMP/bench.out" && ok || bad "bench.sh: no tokenizer run line"
grep -Eq 'encoded [0-9]+ tokens in [0-9.]+ s' "$TMP/bench.out" && ok ||
    bad "bench.sh: prepare printed no encoding time"
grep -Eq "^\[tiny\] round 1 ours ms/step median $MS tok/s" "$TMP/bench.out" && ok ||
    bad "bench.sh: no timed step of ours for tiny: $(grep -v '^==' "$TMP/bench.out" | tail -3)"
grep -Eq '^\[tiny\] round 1 memory plan peak ([0-9]+) high-water [0-9]+, measured peak \1 ' \
    "$TMP/bench.out" && ok || bad "bench.sh: planned and measured peak differ or are missing"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    grep -Eq "^\[tiny\] round 1 torch ms/step median $MS tok/s" "$TMP/bench.out" && ok ||
        bad "bench.sh: torch is importable but no PyTorch step line"
    grep -Eq "^\[tiny\] round 1 torch cpu time ms/step median $MS \(all threads\)" "$TMP/bench.out" && ok ||
        bad "bench.sh: no PyTorch CPU-time line"
else
    grep -q '^== torch: not importable' "$TMP/bench.out" && ok ||
        bad "bench.sh: torch is missing and the skip is not said"
fi

if bash scripts/bench_flash_cpu.sh 1 >"$TMP/flash.out" 2>&1; then ok; else bad "scripts/bench_flash_cpu.sh exited non-zero: $(tail -5 "$TMP/flash.out")"; fi
for kind in naive flash; do
    grep -Eq "^\[$kind\] round 1 ours ms/step median $MS" "$TMP/flash.out" && ok ||
        bad "bench_flash_cpu.sh: no timed step for attention $kind"
done

if bash scripts/bench_decode.sh 1 >"$TMP/decode.out" 2>&1; then ok; else bad "scripts/bench_decode.sh exited non-zero: $(tail -5 "$TMP/decode.out")"; fi
grep -Eq '^cached ms/token [0-9.]+ uncached ms/token [0-9.]+ speed-up [0-9.]+x tokens [0-9]+ identical yes$' \
    "$TMP/decode.out" && ok || bad "bench_decode.sh: no line with both timings and identical tokens"

# a benchmark that fails must fail the script (not print a partial log and exit 0)
if BENCH_SMOKE=0 bash scripts/bench_flash_cpu.sh 1 1 1 0 >"$TMP/bad.out" 2>&1; then
    bad "bench_flash_cpu.sh with batch size 0 exited 0"
else
    grep -q 'batch_size' "$TMP/bad.out" && ok || bad "bench_flash_cpu.sh B=0: no message naming batch_size: $(tail -2 "$TMP/bad.out")"
fi
cli_done
