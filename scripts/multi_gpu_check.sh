#!/usr/bin/env bash
# multi_gpu_check.sh: data parallel on one machine's GPUs, measured side by side in one run
# (README, "More than one GPU"). Needs arenagpt built with CUDA and Open MPI (`make` where
# openmpi-bin and libopenmpi-dev are installed), NCCL 2 (libnccl.so.2) and 2 or more GPUs.
#
# Usage: scripts/multi_gpu_check.sh RESULTS_DIR [NGPU]
#   NGPU: ranks, one GPU each (default: the GPUs nvidia-smi lists).
#   Environment: BIN (default ./arenagpt), CONF (configs/small_4070.conf), DATA_DIR (default:
#   the config's), STEPS (30), WARMUP (steps left out of the time, 5), ACCUM (micro-steps per
#   rank and step, 1), MPIRUN_ARGS (more mpirun flags, e.g. -H host1:4,host2:4).
#
# Runs, one after the other on the same GPUs, the same global batch in each:
#   one       1 rank, NGPU x ACCUM micro-steps per step
#   z0        NGPU ranks, zero_stage 0, the gradient sums overlapping the backward (default)
#   z0_after  NGPU ranks, zero_stage 0, grad_reduce_overlap=False (the sums after it)
#   z1        NGPU ranks, zero_stage 1
# RESULTS_DIR gets summary.md (per run: the median ms/iter over the steps after WARMUP,
# tokens/s, the last loss, each rank's arena peak and plan == measured; then the ratios:
# scaling = tokens/s of z0 / (NGPU x one's), what the overlap saves = ms/iter of z0_after /
# z0's, z1's arena peak / z0's; whether z0 and z0_after end with the same model.bin, as they
# must) and each run's log and metrics.jsonl. tests/sim_multi_gpu_check.sh runs it on the
# CUDA simulator (make test-sim), where its times mean nothing.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: scripts/multi_gpu_check.sh RESULTS_DIR [NGPU]}
N=${2:-$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')}
BIN=${BIN:-./arenagpt}
CONF=${CONF:-$ROOT/configs/small_4070.conf}
STEPS=${STEPS:-30}
WARMUP=${WARMUP:-5}
ACCUM=${ACCUM:-1}
read -r -a MPI_EXTRA <<<"${MPIRUN_ARGS:-}"
[ "$N" -ge 2 ] 2>/dev/null || { echo "multi_gpu_check: needs 2 or more GPUs (NGPU '$N')" >&2; exit 2; }
[ "$WARMUP" -lt "$STEPS" ] || { echo "multi_gpu_check: WARMUP $WARMUP must be below STEPS $STEPS" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "multi_gpu_check: mpirun not found (apt-get install openmpi-bin)" >&2; exit 2; }
mkdir -p "$OUT" || exit 2
ARGS=("$CONF" --device=cuda --max_iters="$STEPS" --log_interval=1 --eval_iters=1
      --checkpoint_interval=0 --keep_checkpoints=1)
[ -n "${DATA_DIR:-}" ] && ARGS+=(--data_dir="$DATA_DIR")

# run NAME RANKS ARGS...: one training run, its log and metrics in OUT
run() {
    local name=$1 ranks=$2
    shift 2
    local t0=$SECONDS
    if [ "$ranks" = 1 ]; then
        "$BIN" train "${ARGS[@]}" --out_dir="$OUT/$name" "$@" >"$OUT/$name.log" 2>&1
    else
        mpirun -np "$ranks" "${MPI_EXTRA[@]}" "$BIN" train "${ARGS[@]}" --out_dir="$OUT/$name" "$@" \
            >"$OUT/$name.log" 2>&1
    fi
    local rc=$?
    echo "multi_gpu_check: $name: exit $rc, $((SECONDS - t0)) s"
    [ "$rc" = 0 ] || tail -5 "$OUT/$name.log"
    cp "$OUT/$name/metrics.jsonl" "$OUT/$name.metrics.jsonl" 2>/dev/null
}
run one 1 --gradient_accumulation_steps=$((N * ACCUM))
run z0 "$N" --gradient_accumulation_steps="$ACCUM"
run z0_after "$N" --gradient_accumulation_steps="$ACCUM" --grad_reduce_overlap=False
run z1 "$N" --gradient_accumulation_steps="$ACCUM" --zero_stage=1

# field NAME KEY: KEY of every step line after WARMUP, one per line
field() { grep '"ms_per_iter"' "$OUT/$1.metrics.jsonl" 2>/dev/null |
    sed -n "s/.*\"iter\": \([0-9]*\),.*\"$2\": \([^,}]*\).*/\1 \2/p" | awk -v w="$WARMUP" '$1 > w { print $2 }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
last_loss() { grep '"ms_per_iter"' "$OUT/$1.metrics.jsonl" 2>/dev/null | tail -1 | sed -n 's/.*"loss": \([^,]*\),.*/\1/p'; }
# rank 0's measured arena peak: its line among the ranks', else the one process's
peak() { awk '/^  rank 0: measured peak/ { r = $5 } /^  peak \(sum\)/ { p = $4 } END { print r ? r : (p ? p : "-") }' "$OUT/$1.log"; }
plan_ok() {
    local want="plan == measured: yes, to the byte"
    [ "$1" != one ] && want="plan == measured on every rank: yes, to the byte"
    grep -q "$want" "$OUT/$1.log" && echo yes || echo no
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.3f", a / b; else print "-" }'; }

{
    echo "# Data parallel on $N GPUs"
    echo
    echo "- commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u '+%Y-%m-%d %H:%M UTC')"
    gpus=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | sort | uniq -c | tr -s ' ' | paste -sd';' -)
    echo "- GPUs (nvidia-smi: count, name, driver): ${gpus:-none listed (no nvidia-smi, or no GPU)}"
    echo "- train's view: $(grep -m1 '^GPU' "$OUT/z0.log" 2>/dev/null); $(grep -m1 '^ranks' "$OUT/z0.log" 2>/dev/null)"
    echo "- config: $CONF, $STEPS steps (time: median over the steps after $WARMUP), $ACCUM micro-step(s) per rank"
    echo
    echo "| run | ranks | ms/iter | tokens/s | last loss | arena peak (rank 0) | plan == measured |"
    echo "|---|---|---|---|---|---|---|"
    for r in one z0 z0_after z1; do
        ranks=$N
        [ "$r" = one ] && ranks=1
        echo "| $r | $ranks | $(field "$r" ms_per_iter | median) | $(field "$r" tokens_per_s | median) | $(last_loss "$r") | $(peak "$r") | $(plan_ok "$r") |"
    done
    echo
    tok1=$(field one tokens_per_s | median)
    echo "- scaling: tokens/s of $N ranks / ($N x 1 rank) = $(ratio "$(field z0 tokens_per_s | median)" "$(awk -v t="$tok1" -v n="$N" 'BEGIN { print t * n }')")"
    echo "- the overlap: ms/iter with the sums after the backward / overlapped = $(ratio "$(field z0_after ms_per_iter | median)" "$(field z0 ms_per_iter | median)")"
    echo "- zero_stage 1: arena peak / zero_stage 0's = $(ratio "$(peak z1)" "$(peak z0)")"
    if cmp -s "$OUT/z0/model.bin" "$OUT/z0_after/model.bin" && [ -s "$OUT/z0/model.bin" ]; then
        echo "- z0 and z0_after: the same model.bin, bit for bit"
    else
        echo "- z0 and z0_after: model.bin DIFFERS (it must not: the same sums in another order of time)"
    fi
} >"$OUT/summary.md"
cat "$OUT/summary.md"
