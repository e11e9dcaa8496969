#!/usr/bin/env bash
# cli_bench_offload.sh: the smoke of scripts/bench_offload.sh (optimizer_offload's CPU AdamW
# benchmark): a small run builds, times and prints its per-parameter figure, and bad arguments
# are refused with a message. The full run and its results: docs/results/offload_bench.md.
# Usage: tests/cli_bench_offload.sh [ARENAGPT]   (the argument of test-cli; unused)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "cli_bench_offload: FAILED: $*"; fail=$((fail + 1)); }
out=$(bash "$ROOT/scripts/bench_offload.sh" 65536 2 1 2>&1)
echo "$out" | grep -qE '^params 65536 reps 2 threads 1: median [0-9.]+ s, min [0-9.]+ s per update; [0-9.]+ ns/param' && ok || bad "no timing line: $out"
ns=$(echo "$out" | sed -nE 's/.*; ([0-9.]+) ns\/param.*/\1/p')
awk -v x="$ns" 'BEGIN { exit !(x > 0) }' && ok || bad "ns/param '$ns' is not positive"
"$ROOT/build/release/bench_offload" 0 2 >/dev/null 2>"$ROOT/build/bench_offload.err"
[ $? = 2 ] && grep -q "N_PARAMS 0 must be > 0" "$ROOT/build/bench_offload.err" && ok || bad "N_PARAMS 0 not refused"
rm -f "$ROOT/build/bench_offload.err"
echo "cli_bench_offload: $pass passed, $fail failed"
[ "$fail" = 0 ]
