#!/usr/bin/env bash
# bench_tokenizer.sh: times GPT-2 BPE encoding of tinyshakespeare with `arenagpt prepare`
# (RUNS runs, default 5) and prints a raw log: machine, commit, each run's prepare output
# (its "encoded N tokens in X s" line times reading, encoding and writing the shards, not
# building the tokenizer) and the whole command's wall time.
# Usage: scripts/bench_tokenizer.sh [RUNS] > docs/results/tokenizer_bench.log
# BENCH_SMOKE=1 (make bench-smoke): one run over the text's first 64 KiB.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
input=../shared/data/tinyshakespeare.txt
[ -f "$input" ] || input=.cache/tinyshakespeare.txt
[ -f "$input" ] || { echo "bench_tokenizer: no tinyshakespeare (run scripts/prepare_shakespeare.sh once)" >&2; exit 1; }
[ -x ./arenagpt ] || { echo "bench_tokenizer: run make first" >&2; exit 1; }
bash scripts/fetch_vocab.sh >/dev/null
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
if [ "${BENCH_SMOKE:-0}" = 1 ]; then # make bench-smoke: one run over the first 64 KiB
    runs=1
    head -c 65536 "$input" >"$out/input.txt"
    input=$out/input.txt
fi
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
echo "cpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p') ($(nproc) cores)"
echo "input: $input ($(stat -c %s "$input") bytes)"
for i in $(seq 1 "$runs"); do
    t0=$(date +%s.%N)
    ./arenagpt prepare --input="$input" --out="$out/data" --tokenizer=gpt2
    t1=$(date +%s.%N)
    echo "run $i: wall $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') s (whole command: vocabulary load, 2 passes, encode, write)"
done
