#!/usr/bin/env bash
# bench_cpu.sh: CPU training-step throughput, ours against PyTorch, in the same run.
# For configs/tiny.conf and the 4070 model (configs/small_4070.conf with batch_size 4,
# block_size 64): builds scripts/bench_step.c with make (the release objects: -O3 -march=native,
# OpenBLAS), times forward + backward + AdamW (global-norm clip) on random tokens, then times
# the same model in PyTorch (scripts/bench_torch_cpu.py with Debian's /usr/bin/python3) with
# the same thread count. Prints the machine, the BLAS both sides use, and one line per side.
# Usage: scripts/bench_cpu.sh [THREADS] [STEPS] [ROUNDS]   (defaults 2, 10, 3)
# BENCH_SMOKE=1 (make bench-smoke): tiny only, one round of one step, no warm-up; the PyTorch
# side is skipped, with a line saying so, when /usr/bin/python3 cannot import torch (CI).
# Each side reports the median and the minimum step time of STEPS steps (after 2 warm-up
# steps); the two sides alternate for ROUNDS rounds so that load from other processes on the
# machine hits both alike (the load average is printed before and after). Each side also
# prints its process CPU time per step (all threads), less disturbed by that load than wall
# time. OMP_WAIT_POLICY defaults to passive for both sides.
# The raw output is what docs/results/cpu_bench.md records.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-2}
STEPS=${2:-10}
ROUNDS=${3:-3}
PY=/usr/bin/python3
# passive: a waiting OpenMP thread sleeps instead of spinning, so a loaded machine does not
# turn every barrier of either side into a time slice lost to spinning
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

# the Makefile's target: the release objects arenagpt is linked from, so a new library source
# cannot break this benchmark unnoticed (make bench-smoke runs it in make test)
BIN=build/release/scripts/bench_step
make --no-print-directory -s "$BIN"
WARMUP=2
if [ "${BENCH_SMOKE:-0}" = 1 ]; then # make bench-smoke: one round of one step, tiny only
    STEPS=1 ROUNDS=1 WARMUP=0
fi
HAVE_TORCH=1
if ! $PY -c 'import torch' 2>/dev/null; then
    HAVE_TORCH=0
    if [ "${BENCH_SMOKE:-0}" != 1 ]; then
        echo "bench_cpu: $PY cannot import torch: install python3-torch (Debian) for the PyTorch side" >&2
        exit 1
    fi
fi

echo "== machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores visible, threads $THREADS"
echo "== commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (dirty)')"
echo "== ours: gcc $(gcc -dumpfullversion), BLAS: $(ldd "$BIN" | grep -o 'libopenblas[^ ]*' | head -1)"
if [ "$HAVE_TORCH" = 1 ]; then
    echo "== torch: $($PY -c 'import torch; print(torch.__version__)'), BLAS: $($PY -c '
import torch
a = torch.randn(64, 64); (a @ a).sum()
libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l})
print(" ".join(libs))')"
else
    echo "== torch: not importable by $PY: the PyTorch side is skipped (smoke run only)"
fi
echo "== libblas.so.3 alternative: $(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | sed -n 's/^Value: //p')"

bench() { # label config overrides...: ROUNDS rounds, ours then PyTorch in each
    local label=$1
    shift
    local out model
    for r in $(seq 1 "$ROUNDS"); do
        out=$("$BIN" "$@" --threads="$THREADS" --bench_steps="$STEPS" --bench_warmup="$WARMUP")
        model=$(head -1 <<<"$out")
        [ "$r" = 1 ] && echo "[$label] $model"
        tail -n +2 <<<"$out" | sed "s/^/[$label] round $r /"
        read -r _ _ L _ NH _ C _ V _ T _ B _ BIAS _ GELU _ <<<"$model"
        [ "$HAVE_TORCH" = 1 ] || continue
        $PY scripts/bench_torch_cpu.py --n_layer "$L" --n_head "$NH" --n_embd "$C" \
            --vocab_size "$V" --block_size "$T" --batch_size "$B" --bias "$BIAS" --gelu "$GELU" \
            --threads "$THREADS" --steps "$STEPS" --warmup "$WARMUP" | sed "s/^/[$label] round $r /"
    done
}

echo "== load before: $(cut -d' ' -f1-3 /proc/loadavg)"
bench tiny configs/tiny.conf
[ "${BENCH_SMOKE:-0}" = 1 ] ||
    bench 4070 configs/small_4070.conf --batch_size=4 --block_size=64
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
