#!/usr/bin/env bash
# cli_mpi.sh: data parallel under mpirun on the CPU (train/dist.h, model/dist.h), on
# configs/tiny.conf's model with tinyshakespeare in characters (vocab_size 66: the parameter
# count is then not a multiple of 3), 4 optimizer steps:
#   - 2 ranks x gradient_accumulation_steps 1 train the losses of 1 rank x 2 (LOSS_RTOL);
#   - the eval's batches are shared out among the ranks: the eval losses of 2 ranks are 1
#     rank's (LOSS_RTOL);
#   - grad_reduce_overlap True (each layer's gradient sum started during the last backward)
#     and False (after it) give the same model.bin, bit for bit;
#   - zero_stage=1 gives the model of zero_stage=0 (PARAM_ATOL), each rank's measured peak
#     equals the plan and `mem --world_size=2 --zero_stage=1`, to the byte; on 3 ranks (the
#     last shard padded) it gives the model of 1 rank x 3 accumulation;
#   - resume with the same world size is bit-exact (model.bin); a state written by 2 ranks
#     resumes on 1 (resharded, said);
#   - a bad value on one rank, configs that differ across ranks and a rank killed mid-run each
#     end the whole job within JOB_TIMEOUT_S, naming the rank and the cause; SIGTERM to one
#     rank stops every rank at the next step with a checkpoint;
#   - zero_stage=2 is refused before any rank starts.
# Without mpirun the test skips (fails once the set-up has run: scripts/setup.sh installs Open
# MPI); with a binary built without MPI it checks that a launch by mpirun is refused.
# Usage: tests/cli_mpi.sh path/to/arenagpt
set -u
. "$(dirname "$0")/lib_cli.sh" cli_mpi "$1"

# The 2-rank gradient sum is the same f32 additions as one rank's accumulation over the two
# micro-batches, rounded in another order: losses agree to about 1e-7 relative per step, and
# metrics.jsonl prints 6 decimals.
LOSS_RTOL=1e-5
# zero_stage=1 takes the gradient norm as a sum of per-shard sums (another f32 order) and so a
# clip coefficient a few ulps away; after 4 AdamW steps of lr <= 1e-3 the weights differ by
# about 1e-8 (measured 4e-8 after 6 steps).
PARAM_ATOL=1e-6
# a failed or killed rank must end the job this fast (a hang would run to the timeout)
JOB_TIMEOUT_S=120

if ! command -v mpirun >/dev/null 2>&1; then
    if [ "${ARENAGPT_REQUIRE_DATA:-0}" = 1 ]; then
        bad "mpirun not found: scripts/setup.sh installs openmpi-bin"
    else
        echo "cli_mpi: skipped: mpirun not found (scripts/setup.sh installs openmpi-bin)"
    fi
    cli_done
    exit $?
fi
MPI="mpirun --allow-run-as-root --oversubscribe"

# a binary built without MPI (MPI=0: the GPU bundle) refuses to be one of several ranks
if ! ldd "$BIN" | grep -q libmpi; then
    timeout "$JOB_TIMEOUT_S" $MPI -np 2 "$BIN" train "$ROOT/configs/tiny.conf" >"$TMP/nompi.log" 2>&1
    [ $? != 0 ] && grep -q "built without MPI" "$TMP/nompi.log" && ok || bad "no-MPI build under mpirun: $(tail -3 "$TMP/nompi.log")"
    cli_done
    exit $?
fi

TEXT=${ARENAGPT_SHAKESPEARE:-$ROOT/.cache/tinyshakespeare.txt}
if [ ! -f "$TEXT" ]; then
    if [ "${ARENAGPT_REQUIRE_DATA:-0}" = 1 ]; then bad "test data missing: $TEXT"; else echo "cli_mpi: skipped: no $TEXT"; fi
    cli_done
    exit $?
fi
"$BIN" prepare --input="$TEXT" --out="$TMP/data" --tokenizer=char >"$TMP/prep.log" 2>&1 || bad "prepare: $(tail -2 "$TMP/prep.log")"

CONF=("$ROOT/configs/tiny.conf" --data_dir="$TMP/data" --vocab_size=66 --eval_interval=2
      --eval_iters=3 --log_interval=1 --threads=1)
run1() { "$BIN" train "${CONF[@]}" "$@"; }
run2() { timeout "$JOB_TIMEOUT_S" $MPI -np 2 "$BIN" train "${CONF[@]}" "$@"; }
run3() { timeout "$JOB_TIMEOUT_S" $MPI -np 3 "$BIN" train "${CONF[@]}" "$@"; }

losses() { grep '"loss"' "$1" | sed 's/.*"iter": \([0-9]*\), "loss": \([^,]*\),.*/\1 \2/'; }
# max |a - b| over the weights of two llm.c model files (after the 1024-byte header); NaN fails
model_diff() {
    paste <(od -An -v -f -w4 -j 1024 "$1") <(od -An -v -f -w4 -j 1024 "$2") |
        awk 'tolower($0) ~ /nan|inf/ { bad = 1 } { d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d }
             END { if (bad || NR == 0) print "nan"; else printf "%g\n", m }'
}
within() { awk -v x="$1" -v t="$2" 'BEGIN { exit !(x != "nan" && x + 0 <= t + 0) }'; }

# 1. two ranks = one rank with twice the accumulation
run1 --max_iters=4 --gradient_accumulation_steps=2 --out_dir="$TMP/one" >"$TMP/one.log" 2>&1 || bad "one rank: $(tail -3 "$TMP/one.log")"
run2 --max_iters=4 --gradient_accumulation_steps=1 --out_dir="$TMP/two" >"$TMP/two.log" 2>&1 || bad "two ranks: $(tail -5 "$TMP/two.log")"
grep -q "x 2 ranks)" "$TMP/two.log" && grep -q "^tokens per iteration: 1024 " "$TMP/two.log" && ok || bad "global batch line"
n=$(losses "$TMP/two/metrics.jsonl" | wc -l)
[ "$n" = 4 ] && ok || bad "rank 0 alone writes metrics: $n loss lines, expected 4"
if paste <(losses "$TMP/one/metrics.jsonl") <(losses "$TMP/two/metrics.jsonl") |
    awk -v rtol="$LOSS_RTOL" 'NF != 4 || $1 != $3 || !($2 == $2 + 0) || !($4 == $4 + 0) { exit 1 }
        { d = $2 - $4; if (d < 0) d = -d; r = $2 < 0 ? -$2 : $2; if (!(d <= rtol * r)) exit 1; n++ }
        END { exit !(n == 4) }'; then ok; else
    bad "losses of 2 ranks differ from 1 rank x 2 accumulation beyond $LOSS_RTOL:"
    paste <(losses "$TMP/one/metrics.jsonl") <(losses "$TMP/two/metrics.jsonl")
fi
grep -q "rank 1: measured peak .* equal in every category" "$TMP/two.log" &&
    grep -q "plan == measured on every rank: yes, to the byte" "$TMP/two.log" && ok || bad "per-rank plan == measured (zero_stage 0)"
# the eval's 3 batches shared out (rank 0 two, rank 1 one) and summed: one process's losses
evals() { grep '"val_loss"' "$1" | sed 's/.*"iter": \([0-9]*\), "train_loss": \([^,]*\), "val_loss": \([^}]*\)}/\1 \2 \3/'; }
if paste <(evals "$TMP/one/metrics.jsonl") <(evals "$TMP/two/metrics.jsonl") |
    awk -v rtol="$LOSS_RTOL" 'NF != 6 || $1 != $4 { exit 1 }
        { for (i = 2; i <= 3; i++) { a = $i; b = $(i + 3); if (!(a == a + 0) || !(b == b + 0)) exit 1
          d = a - b; if (d < 0) d = -d; r = a < 0 ? -a : a; if (!(d <= rtol * r)) exit 1 } n++ }
        END { exit !(n == 3) }'; then ok; else
    bad "eval losses of 2 ranks differ from 1 rank's beyond $LOSS_RTOL:"
    paste <(evals "$TMP/one/metrics.jsonl") <(evals "$TMP/two/metrics.jsonl")
fi

# 1b. the sums started during the last micro-step's backward (the default) and the same sums
# after it (grad_reduce_overlap=False): the same model, bit for bit
run2 --max_iters=3 --gradient_accumulation_steps=2 --out_dir="$TMP/ov1" >"$TMP/ov1.log" 2>&1 || bad "overlapped sums: $(tail -5 "$TMP/ov1.log")"
run2 --max_iters=3 --gradient_accumulation_steps=2 --grad_reduce_overlap=False --out_dir="$TMP/ov0" >"$TMP/ov0.log" 2>&1 || bad "sums after the backward: $(tail -5 "$TMP/ov0.log")"
cmp -s "$TMP/ov1/model.bin" "$TMP/ov0/model.bin" && [ -s "$TMP/ov1/model.bin" ] && ok || bad "grad_reduce_overlap=False gives another model.bin than True"
grep -q "gradient sums: each layer's during the last backward" "$TMP/ov1.log" &&
    grep -q "gradient sums: all after the last backward" "$TMP/ov0.log" && ok || bad "the ranks line names when the gradient sums run"

# 2. ZeRO-1: the same model; each rank's peak is the plan's and mem's
run2 --max_iters=4 --zero_stage=1 --out_dir="$TMP/z1" >"$TMP/z1.log" 2>&1 || bad "zero_stage=1: $(tail -5 "$TMP/z1.log")"
d=$(model_diff "$TMP/two/model.bin" "$TMP/z1/model.bin")
within "$d" "$PARAM_ATOL" && ok || bad "zero_stage=1 model differs from zero_stage=0 by $d (> $PARAM_ATOL)"
grep -q "adam.m.shard" "$TMP/z1.log" && ! grep -q "adam.m.wte" "$TMP/z1.log" && ok || bad "sharded optimizer tensors in the plan"
grep -q "plan == measured on every rank: yes, to the byte" "$TMP/z1.log" && ok || bad "per-rank plan == measured (zero_stage 1)"
peak_train=$(sed -n 's/^  rank 1: measured peak \([0-9]*\) bytes.*/\1/p' "$TMP/z1.log")
"$BIN" mem "${CONF[0]}" --data_dir="$TMP/data" --vocab_size=66 --device=cpu --world_size=2 --zero_stage=1 \
    --format=json >"$TMP/mem.json" 2>"$TMP/mem.err" || bad "mem --world_size=2: $(cat "$TMP/mem.err")"
peak_mem=$(grep -o '"peak_bytes": [0-9]*' "$TMP/mem.json" | head -1 | tr -dc '0-9')
[ -n "$peak_train" ] && [ "$peak_train" = "$peak_mem" ] && ok || bad "mem's per-rank peak '$peak_mem' != rank 1's measured '$peak_train'"
grep -q '"world_size": 2' "$TMP/mem.json" && ok || bad "mem json names the world"
# --compare with a world: the stages side by side; --fit: the largest batch per rank grows
# when the AdamW state is sharded (GPT-2 124M's CUDA layout on 8 ranks, 12 GiB cards)
"$BIN" mem "$ROOT/configs/gpt2_124m.conf" --device=cuda --world_size=8 --compare --format=json >"$TMP/cmp.json" 2>&1 || bad "mem --compare --world_size=8: $(head -3 "$TMP/cmp.json")"
opt0=$(grep '"zero_stage": 0' "$TMP/cmp.json" | grep -o '"optimizer": [0-9]*' | tr -dc '0-9')
opt1=$(grep '"zero_stage": 1' "$TMP/cmp.json" | grep -o '"optimizer": [0-9]*' | tr -dc '0-9')
# 12 bytes per parameter (124,373,760), and an eighth of it rounded up to 256 bytes per shard
[ "$opt0" = 1492485120 ] && [ "$opt1" = 186561024 ] && ok || bad "per-rank optimizer bytes: stage 0 '$opt0', stage 1 '$opt1'"
fit() { "$BIN" mem "$ROOT/configs/gpt2_124m.conf" --device=cuda --world_size=8 --zero_stage="$1" \
    --recompute=full --fit=12GiB --format=json | grep -o '"max_batch_size": [0-9]*' | head -1 | tr -dc '0-9'; }
b0=$(fit 0)
b1=$(fit 1)
[ -n "$b0" ] && [ -n "$b1" ] && [ "$b1" -gt "$b0" ] && ok || bad "--fit per rank: zero_stage 1 batch '$b1' not above stage 0's '$b0'"
run1 --max_iters=4 --gradient_accumulation_steps=3 --out_dir="$TMP/one3" >"$TMP/one3.log" 2>&1 || bad "one rank x 3: $(tail -3 "$TMP/one3.log")"
run3 --max_iters=4 --zero_stage=1 --out_dir="$TMP/z3" >"$TMP/z3.log" 2>&1 || bad "3 ranks, zero_stage=1: $(tail -5 "$TMP/z3.log")"
d=$(model_diff "$TMP/one3/model.bin" "$TMP/z3/model.bin")
within "$d" "$PARAM_ATOL" && ok || bad "3 ranks zero_stage=1 (padded shard) differ from 1 rank x 3 by $d (> $PARAM_ATOL)"

# 3. resume: same world size bit-exact; another world size resharded
run2 --max_iters=2 --zero_stage=1 --out_dir="$TMP/r" >"$TMP/r1.log" 2>&1 || bad "resume, first half: $(tail -5 "$TMP/r1.log")"
run2 --max_iters=4 --zero_stage=1 --out_dir="$TMP/r" --init_from=resume >"$TMP/r2.log" 2>&1 || bad "resume: $(tail -5 "$TMP/r2.log")"
cmp -s "$TMP/z1/model.bin" "$TMP/r/model.bin" && ok || bad "resumed zero_stage=1 model is not bit-exact"
run1 --max_iters=3 --gradient_accumulation_steps=2 --zero_stage=1 --out_dir="$TMP/r" --init_from=resume >"$TMP/r3.log" 2>&1 || bad "resume on 1 rank: $(tail -3 "$TMP/r3.log")"
grep -q "written by 2 rank(s), this run has 1: the optimizer state is resharded" "$TMP/r3.log" && ok || bad "reshard message"

# 4. faults end the job, naming the rank
t0=$(date +%s)
timeout "$JOB_TIMEOUT_S" $MPI -np 1 "$BIN" train "${CONF[@]}" --out_dir="$TMP/f" : -np 1 "$BIN" train "${CONF[@]}" --out_dir="$TMP/f" --n_layer=four >"$TMP/f1.log" 2>&1
rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -q "rank 1): .*n_layer" "$TMP/f1.log" && grep -q "rank 1 of 2 failed" "$TMP/f1.log" && ok || bad "bad value on rank 1 (rc $rc): $(head -3 "$TMP/f1.log")"
timeout "$JOB_TIMEOUT_S" $MPI -np 1 "$BIN" train "${CONF[@]}" --out_dir="$TMP/f" : -np 1 "$BIN" train "${CONF[@]}" --out_dir="$TMP/f" --learning_rate=2e-3 >"$TMP/f2.log" 2>&1
rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -q "config differs across ranks: rank(s) 1 differ from rank 0" "$TMP/f2.log" && ok || bad "configs differ (rc $rc): $(head -3 "$TMP/f2.log")"
# rank 1 is killed (SIGKILL) KILL_AFTER_S into the run: mid-training (start-up takes ~2 s; the
# run is far longer than the kill and the timeout, so a fast machine cannot finish it first)
KILL_AFTER_S=8
timeout "$JOB_TIMEOUT_S" $MPI -np 2 sh -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then
      (sleep '"$KILL_AFTER_S"'; kill -9 $$) & fi; exec "$0" "$@"' \
    "$BIN" train "${CONF[@]}" --max_iters=100000 --out_dir="$TMP/k" >"$TMP/f3.log" 2>&1
rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -q "rank 1 .*exited on signal 9" "$TMP/f3.log" && ok || bad "killed rank (rc $rc): $(tail -5 "$TMP/f3.log")"
echo "cli_mpi: the three faults ended their jobs in $(($(date +%s) - t0)) s"

# SIGTERM to one rank: every rank stops at the next step, rank 0 saves the state, exit 0
$MPI -np 2 "$BIN" train "${CONF[@]}" --max_iters=100000 --out_dir="$TMP/s" >"$TMP/s.log" 2>&1 &
mp=$!
for _ in $(seq 1 $((JOB_TIMEOUT_S * 5))); do grep -q "^iter 1/" "$TMP/s.log" && break; sleep 0.2; done
kill -TERM "$(pgrep -P "$mp" | tail -1)"
for _ in $(seq 1 $((JOB_TIMEOUT_S * 5))); do kill -0 "$mp" 2>/dev/null || break; sleep 0.2; done
kill -9 "$mp" 2>/dev/null # still running: a hang, which fails below
wait "$mp"
rc=$?
[ "$rc" = 0 ] && grep -q "stopped by signal 15 between steps" "$TMP/s.log" && ls "$TMP/s"/state_*.bin >/dev/null 2>&1 && ok || bad "SIGTERM to one rank (rc $rc): $(tail -3 "$TMP/s.log")"

# 5. stages that are not built are refused before anything runs
"$BIN" train "${CONF[@]}" --zero_stage=2 >"$TMP/z2.log" 2>&1
[ $? = 2 ] && grep -q "zero_stage = 2 is not supported" "$TMP/z2.log" && ok || bad "zero_stage=2 refusal: $(cat "$TMP/z2.log")"

cli_done
