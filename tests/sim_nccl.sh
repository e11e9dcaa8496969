#!/usr/bin/env bash
# sim_nccl.sh: data parallel on CUDA under mpirun, on the CUDA simulator: each rank is its own
# process with its own simulated GPU (CUDASIM_DEVICE_COUNT=2: one per rank), and NCCL is the
# simulator's stand-in (build/sim/libnccl.so.2, collectives over MPI), loaded by the same
# dlopen as a real libnccl.so.2. A tiny model (sim_train.sh's), 4 optimizer steps:
#   - the stand-in's own checks (build/sim/tests/cudasim/nccl/test_nccl_sim, 2 ranks);
#   - 2 ranks x gradient_accumulation_steps 1 train the losses of 1 rank x 2 (LOSS_RTOL), in
#     float16 and in bfloat16 with bf16 gradients (LOSS_RTOL_BF16: ncclBfloat16);
#   - zero_stage=1 gives the model of zero_stage=0 (PARAM_ATOL);
#   - each rank's measured arena equals its plan to the byte, at both stages;
#   - ZeRO-1: 3 steps, then a resume to 4, give the uninterrupted run's model.bin bit for bit
#     (the f32 master and AdamW shards gathered into the state and scattered back);
#   - NCCL missing (CUDASIM_NCCL names no file): every rank refuses, naming libnccl.so.2 and
#     the package, exit non-zero within JOB_TIMEOUT_S;
#   - more ranks on a host than it has GPUs: the rank without one says so, the job ends.
# Skips without mpirun or with a binary built without MPI (fails once the set-up has run).
# Usage: tests/sim_nccl.sh path/to/build/sim/arenagpt   (make test-sim runs it)
set -u
. "$(dirname "$0")/lib_cli.sh" sim_nccl "$1"
. "$ROOT/tests/lib_sim.sh"

# One rank accumulates the second micro-batch's gradient into the f16 gradient (one rounding);
# two ranks round each micro-batch's gradient to f16 and the all-reduce sums them (another
# rounding, and NCCL's own order on a GPU): one f16 ulp (~5e-4 relative) on single gradient
# elements. The losses after 4 steps differed by 1.7e-6 relative (measured); metrics.jsonl
# prints 6 decimals.
LOSS_RTOL=1e-4
# the same with bf16 gradients, whose unit roundoff is 8x f16's (measured 6.6e-6 after 4 steps)
LOSS_RTOL_BF16=8e-4
# zero_stage=1 takes the gradient norm as a sum of per-shard sums (another f32 order): a clip
# coefficient a few ulps away; the f32 master weights differed by 1e-7 after 4 steps (measured).
PARAM_ATOL=1e-6
# a refused or failed run must end the job this fast (a hang would run to the timeout)
JOB_TIMEOUT_S=300

sim_ranks_ready
MPI="timeout $JOB_TIMEOUT_S mpirun $MPI_ARGS"

# 0. the stand-in's own checks
STANDIN_TEST=$SIM_DIR/tests/cudasim/nccl/test_nccl_sim
$MPI -np 2 "$STANDIN_TEST" >"$TMP/standin.log" 2>&1 && ok || bad "test_nccl_sim: $(tail -20 "$TMP/standin.log")"

sim_data_and_conf gradient_accumulation_steps=1 eval_interval=100 max_iters=4
run2() { $MPI -np 2 "$BIN" train "$TMP/tiny.conf" "$@"; }

losses() { grep '"loss"' "$1" | sed 's/.*"iter": \([0-9]*\), "loss": \([^,]*\),.*/\1 \2/'; }
# max |a - b| over the weights of two llm.c model files (after the 1024-byte header); NaN fails
model_diff() {
    paste <(od -An -v -f -w4 -j 1024 "$1") <(od -An -v -f -w4 -j 1024 "$2") |
        awk 'tolower($0) ~ /nan|inf/ { bad = 1 } { d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d }
             END { if (bad || NR == 0) print "nan"; else printf "%g\n", m }'
}
within() { awk -v x="$1" -v t="$2" 'BEGIN { exit !(x != "nan" && x + 0 <= t + 0) }'; }
# the 4 losses of two metrics files agree within rtol (NaN fails); else prints them side by side
losses_close() {
    if paste <(losses "$1") <(losses "$2") |
        awk -v rtol="$3" 'NF != 4 || $1 != $3 || !($2 == $2 + 0) || !($4 == $4 + 0) { exit 1 }
            { d = $2 - $4; if (d < 0) d = -d; r = $2 < 0 ? -$2 : $2; if (!(d <= rtol * r)) exit 1; n++ }
            END { exit !(n == 4) }'; then return 0; fi
    paste <(losses "$1") <(losses "$2")
    return 1
}

# 1. two ranks = one rank with twice the accumulation
"$BIN" train "$TMP/tiny.conf" --gradient_accumulation_steps=2 --out_dir="$TMP/one" >"$TMP/one.log" 2>&1 || bad "one rank: $(tail -5 "$TMP/one.log")"
run2 --out_dir="$TMP/two" >"$TMP/two.log" 2>&1 || bad "two ranks: $(tail -20 "$TMP/two.log")"
grep -q "^ranks: 2 (.*NCCL 2" "$TMP/two.log" && ok || bad "the ranks line names NCCL: $(grep '^ranks' "$TMP/two.log")"
grep -q "GPU: NVIDIA GeForce RTX 4070 (simulated)" "$TMP/two.log" && ok || bad "rank 0 on the simulated card"
losses_close "$TMP/one/metrics.jsonl" "$TMP/two/metrics.jsonl" "$LOSS_RTOL" && ok ||
    bad "losses of 2 ranks differ from 1 rank x 2 accumulation beyond $LOSS_RTOL (above)"
grep -q "rank 1: measured peak .* equal in every category" "$TMP/two.log" &&
    grep -q "plan == measured on every rank: yes, to the byte" "$TMP/two.log" && ok || bad "per-rank plan == measured (zero_stage 0)"

# 1b. bfloat16 with bf16 gradients: the all-reduce in ncclBfloat16
BF=(--dtype=bfloat16 --grad_dtype=bfloat16)
"$BIN" train "$TMP/tiny.conf" "${BF[@]}" --gradient_accumulation_steps=2 --out_dir="$TMP/one_bf" >"$TMP/one_bf.log" 2>&1 || bad "one rank, bf16: $(tail -5 "$TMP/one_bf.log")"
run2 "${BF[@]}" --out_dir="$TMP/two_bf" >"$TMP/two_bf.log" 2>&1 || bad "two ranks, bf16: $(tail -20 "$TMP/two_bf.log")"
losses_close "$TMP/one_bf/metrics.jsonl" "$TMP/two_bf/metrics.jsonl" "$LOSS_RTOL_BF16" && ok ||
    bad "bf16: losses of 2 ranks differ from 1 rank x 2 accumulation beyond $LOSS_RTOL_BF16 (above)"
grep -q "plan == measured on every rank: yes, to the byte" "$TMP/two_bf.log" && ok || bad "per-rank plan == measured (bf16)"

# 2. ZeRO-1: the same model (the f32 master weights in model.bin); each rank's peak is the plan's
run2 --zero_stage=1 --out_dir="$TMP/z1" >"$TMP/z1.log" 2>&1 || bad "zero_stage=1: $(tail -20 "$TMP/z1.log")"
d=$(model_diff "$TMP/two/model.bin" "$TMP/z1/model.bin")
within "$d" "$PARAM_ATOL" && ok || bad "zero_stage=1 model differs from zero_stage=0 by $d (> $PARAM_ATOL)"
grep -q "master.shard" "$TMP/z1.log" && ok || bad "the sharded master in the plan"
grep -q "rank 1: measured peak .* equal in every category" "$TMP/z1.log" &&
    grep -q "plan == measured on every rank: yes, to the byte" "$TMP/z1.log" && ok || bad "per-rank plan == measured (zero_stage 1)"

# 2b. ZeRO-1 resume: bit-exact
run2 --zero_stage=1 --max_iters=3 --out_dir="$TMP/r" >"$TMP/r1.log" 2>&1 || bad "zero_stage=1, 3 steps: $(tail -20 "$TMP/r1.log")"
run2 --zero_stage=1 --init_from=resume --out_dir="$TMP/r" >"$TMP/r2.log" 2>&1 || bad "zero_stage=1 resume: $(tail -20 "$TMP/r2.log")"
grep -q "resumed from .*state_00000003.bin at iteration 3" "$TMP/r2.log" && ok || bad "zero_stage=1 resume message"
cmp -s "$TMP/z1/model.bin" "$TMP/r/model.bin" && ok || bad "zero_stage=1: resumed model.bin differs from the uninterrupted run's"

# 3. NCCL missing: a clear refusal on every rank, non-zero exit, no hang
CUDASIM_NCCL="$TMP/absent/libnccl.so.2" run2 --out_dir="$TMP/nn" >"$TMP/nn.log" 2>&1
rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] && ok || bad "NCCL missing: exit $rc, expected a refusal (124: the timeout)"
grep -q "rank 1: data parallel on cuda needs NCCL, and libnccl.so.2 cannot be loaded" "$TMP/nn.log" &&
    grep -q "the libnccl2 package" "$TMP/nn.log" && ok || bad "NCCL missing: no message naming libnccl.so.2 and libnccl2: $(tail -5 "$TMP/nn.log")"

# 4. two ranks on a host with one GPU: the second has none
CUDASIM_DEVICE_COUNT=1 run2 --out_dir="$TMP/dc" >"$TMP/dc.log" 2>&1
rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] && ok || bad "one GPU for 2 ranks: exit $rc, expected a refusal"
grep -q "rank 1 of the ranks on its host, which has 1 CUDA device(s): start at most 1 rank(s) per host" "$TMP/dc.log" &&
    ok || bad "one GPU for 2 ranks: $(tail -5 "$TMP/dc.log")"

cli_done
