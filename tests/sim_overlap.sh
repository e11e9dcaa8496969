#!/usr/bin/env bash
# sim_overlap.sh: the gradient sums that overlap the backward (grad_reduce_overlap, model/dist.h)
# on CUDA under mpirun, on the CUDA simulator (2 ranks, each its own simulated GPU, the
# stand-in NCCL; sim_train.sh's tiny model), 2 micro-steps per step, 3 steps:
#   - the sums started during the last micro-step's backward on NCCL's second stream (the
#     default) and the same sums after the backward on the model's stream give the same
#     model.bin, bit for bit, in float16 and in bfloat16 with bf16 gradients;
#   - the overlapped run's arena equals its plan on every rank, to the byte.
# The simulator runs a created stream's work only when something waits for it, so an update
# that does not wait for the sums reads unsummed gradients and the first check fails
# (scripts/sim_faults.sh removes the wait to show it).
# Skips without mpirun or with a binary built without MPI (fails once the set-up has run).
# Usage: tests/sim_overlap.sh path/to/build/sim/arenagpt   (make test-sim runs it)
set -u
. "$(dirname "$0")/lib_cli.sh" sim_overlap "$1"
. "$ROOT/tests/lib_sim.sh"
# a failed run must end the job this fast (a hang would run to the timeout)
JOB_TIMEOUT_S=300

sim_ranks_ready
MPI="timeout $JOB_TIMEOUT_S mpirun $MPI_ARGS"

sim_data_and_conf gradient_accumulation_steps=2 eval_interval=100 max_iters=3
run2() { $MPI -np 2 "$BIN" train "$TMP/tiny.conf" "$@"; }

# same_model NAME ARGS...: overlapped and not, the same model.bin
same_model() {
    local name=$1
    shift
    run2 "$@" --out_dir="$TMP/$name.on" >"$TMP/$name.on.log" 2>&1 || bad "$name, overlapped: $(tail -20 "$TMP/$name.on.log")"
    run2 "$@" --grad_reduce_overlap=False --out_dir="$TMP/$name.off" >"$TMP/$name.off.log" 2>&1 ||
        bad "$name, after the backward: $(tail -20 "$TMP/$name.off.log")"
    [ -s "$TMP/$name.on/model.bin" ] && cmp -s "$TMP/$name.on/model.bin" "$TMP/$name.off/model.bin" && ok ||
        bad "$name: the sums during the backward give another model.bin than after it"
    grep -q "gradient sums: each layer's during the last backward" "$TMP/$name.on.log" && ok ||
        bad "$name: the ranks line: $(grep '^ranks' "$TMP/$name.on.log")"
    grep -q "plan == measured on every rank: yes, to the byte" "$TMP/$name.on.log" && ok ||
        bad "$name: per-rank plan == measured, overlapped"
}
same_model f16
same_model bf16 --dtype=bfloat16 --grad_dtype=bfloat16

cli_done
