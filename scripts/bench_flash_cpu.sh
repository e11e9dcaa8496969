#!/usr/bin/env bash
# bench_flash_cpu.sh: attention=flash against attention=naive on the CPU, in the same run: a
# training step (zero_grad, forward with the fused loss head, backward, AdamW) of the 4070
# model (configs/small_4070.conf) at block_size 512, batch_size B (default 4: the full 16 x 512
# batch needs 2.4 GB and a minute a step on 2 cores). Builds scripts/bench_step.c with make
# like bench_cpu.sh; the two kinds alternate for ROUNDS rounds so machine load hits both alike.
# Each bench_step line gives the median and minimum step time of STEPS steps after 1 warm-up
# step, the process CPU time per step (all threads; OMP_WAIT_POLICY=passive, so waiting threads
# do not spin), and the arena's planned and measured peak. The raw output is what
# docs/results/flash_cpu_bench.md records (flash_cpu_bench.log).
# Usage: scripts/bench_flash_cpu.sh [THREADS] [STEPS] [ROUNDS] [B]   (defaults 2, 3, 2, 4)
# BENCH_SMOKE=1 (make bench-smoke): one round of one step per kind at block_size 64, B 1.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-2}
STEPS=${2:-3}
ROUNDS=${3:-2}
B=${4:-4}
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS OMP_WAIT_POLICY=passive

BIN=build/release/scripts/bench_step # the Makefile's target (release objects)
make --no-print-directory -s "$BIN"
T=512
WARMUP=1
if [ "${BENCH_SMOKE:-0}" = 1 ]; then # make bench-smoke: one step of each kind at T 64, B 1
    STEPS=1 ROUNDS=1 B=1 T=64 WARMUP=0
fi

echo "== machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores visible, threads $THREADS"
echo "== commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (dirty)')"
echo "== load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
    for a in naive flash; do
        "$BIN" configs/small_4070.conf --device=cpu --block_size="$T" --batch_size="$B" \
            --attention=$a --threads="$THREADS" --bench_steps="$STEPS" --bench_warmup="$WARMUP" |
            sed "s/^/[$a] round $r /"
    done
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
