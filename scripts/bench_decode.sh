#!/usr/bin/env bash
# bench_decode.sh: sampling with the KV cache against sampling without it, in the same run on
# the CPU: greedy tokens from the same random-weight model (scripts/bench_decode.c), which
# must be the same tokens; prints ms per token for each and the speed-up. For configs/tiny.conf
# at block_size 64 generating past a full window (where both run the uncached forward), and
# the 4070 model's shape (configs/small_4070.conf) at block_size 256 within the window.
# Usage: scripts/bench_decode.sh [THREADS]   (default 2)
# BENCH_SMOKE=1 (make bench-smoke): tiny only, a few tokens.
# The raw output is what docs/results/decode_bench.md records.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-2}
BIN=build/release/scripts/bench_decode
make --no-print-directory -s "$BIN"
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "${BENCH_SMOKE:-0}" = 1 ]; then
    echo "== tiny (smoke)"
    "$BIN" configs/tiny.conf --device=cpu --threads="$THREADS" --block_size=16 --bench_tokens=8
    exit 0
fi
echo "== tiny: block_size 64, 96 tokens"
"$BIN" configs/tiny.conf --device=cpu --threads="$THREADS" --block_size=64 --bench_tokens=96
echo "== small_4070 shape: block_size 256, 160 tokens (within the window)"
"$BIN" configs/small_4070.conf --device=cpu --threads="$THREADS" --block_size=256 \
    --vocab_size=50304 --bench_tokens=160
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
