#!/usr/bin/env bash
# bench_offload.sh: optimizer_offload's CPU AdamW update time per parameter on this machine.
# Builds scripts/bench_offload.c with the release objects (make: -O3 -march=native, OpenMP) and
# times offload_adamw_host (f16 gradients widened, AdamW on the f32 master, m, v with the CPU
# backend's kernel, the master rounded to f16) over N_PARAMS parameters, at each thread count
# in THREADS. Prints the machine, the load average before and after, and one line per thread
# count. The GPU <-> pinned-memory transfers are not in it (they need a GPU).
# Usage: scripts/bench_offload.sh [N_PARAMS] [REPS] [THREADS]   (defaults 16777216, 7, "1 2")
# docs/results/offload_bench.md records its raw output.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-16777216}
REPS=${2:-7}
THREADS=${3:-"1 2"}
BIN=build/release/bench_offload
make -s CUDA=0 "$BIN" >/dev/null
echo "== machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores visible"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for t in $THREADS; do
    OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=1 "$BIN" "$N" "$REPS" | grep '^params'
done
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
