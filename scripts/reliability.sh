#!/usr/bin/env bash
# reliability.sh: the fault-injection runs (`make reliability` builds what they need first) and
# a summary: inputs tried, faults injected, failures. Exits 1 on any failure. On the CPU,
# with a small model (1 layer, n_embd 16, char tokens) on the first 60 kB of tinyshakespeare
# ($ARENAGPT_SHAKESPEARE; `make reliability` passes the Makefile's SHAKESPEARE).
#   1. out of memory at every allocation: ARENAGPT_TEST_ALLOC_FAIL_AT=k for k = 1, 2, ... until
#      a run no longer reaches k, for train, eval and sample (the ASan+UBSan build:
#      LeakSanitizer proves everything was freed). Each run must exit 1 with the arena's
#      report and no sanitizer report; train must leave no file a loader of ours accepts other
#      than complete checkpoints equal to the uninterrupted run's (no temporary files at all).
#   2. disk full / I/O error in a checkpoint save: tests/faults/fail_io.c fails call n of the
#      second save (model.bin, then state_*.bin) for every n, ENOSPC and EIO alternately. The
#      run must exit 1 naming the file (or, where the failed call cannot lose data, finish
#      with the uninterrupted run's result); the previous checkpoint must be byte-identical
#      and resume to the uninterrupted run's final model, bit for bit. Then the same save in
#      an out_dir that became unwritable (every file creation fails with EACCES).
#   3. SIGKILL: at random times of a run, and inside a checkpoint save (the shim's kill mode at
#      call n of a save); init_from=resume (scratch when no checkpoint was complete) must
#      continue from the newest complete checkpoint and end with the uninterrupted run's
#      model.bin bit for bit and its logged losses.
#   4. NaN/inf in gradients and the loss (ARENAGPT_TEST_NONFINITE): skipped and counted, the
#      log names the step and the first non-finite tensor, weights and AdamW m, v unchanged,
#      STEP_GUARD_MAX_SKIPS in a row stop the run ("diverged") with no new checkpoint.
#   5. bad files (models of another bias setting, corrupted and truncated checkpoints, short
#      shards, model and tokenizer files, a missing file, an unknown key) given to train, eval
#      and sample under ASan+UBSan: refused with the expected status and message, no leak.
#   6. valgrind memcheck on a short training run (2 OpenMP threads, 3 steps, 2 saves): zero
#      errors and no definite, indirect or possible leaks (tests/valgrind.supp: OpenMP/OpenBLAS
#      runtime only).
# Usage: scripts/reliability.sh [SUMMARY_FILE]   (RELIABILITY_KILLS: random-time kills, 16)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/arenagpt
ASAN_BIN=$ROOT/build/asan/arenagpt
VG_BIN=$ROOT/build/valgrind/arenagpt
SHIM=$ROOT/build/faults/fail_io.so
SUMMARY=${1:-$ROOT/build/reliability/summary.txt}
KILLS=${RELIABILITY_KILLS:-16}
for f in "$BIN" "$ASAN_BIN" "$VG_BIN" "$SHIM"; do
    [ -x "$f" ] || [ -f "$f" ] || { echo "reliability: missing $f (run make reliability)" >&2; exit 2; }
done
W=$ROOT/build/reliability
rm -rf "$W"
mkdir -p "$W"
t_start=$(date +%s)

declare -A INPUTS FAULTS FAILS
PARTS=(oom disk kill nonfinite refusals valgrind)
for p in "${PARTS[@]}"; do INPUTS[$p]=0; FAULTS[$p]=0; FAILS[$p]=0; done
fail() { # part message
    FAILS[$1]=$((FAILS[$1] + 1))
    echo "reliability: FAILED ($1): $2" | tee -a "$W/failures.txt" >&2
}

# the text: $ARENAGPT_SHAKESPEARE (the Makefile's SHAKESPEARE), else a stand-in, unless the
# set-up has run (ARENAGPT_REQUIRE_DATA=1): then a missing file is an error
TEXT=${ARENAGPT_SHAKESPEARE:-$ROOT/.cache/tinyshakespeare.txt}
if [ -f "$TEXT" ]; then
    head -c 60000 "$TEXT" >"$W/text.txt"
elif [ "${ARENAGPT_REQUIRE_DATA:-0}" = 1 ]; then
    echo "reliability: $TEXT is missing (run scripts/setup.sh)" >&2
    exit 1
else
    echo "reliability: $TEXT is missing: a stand-in text is used"
    for i in $(seq 1 1500); do echo "To be, or not to be, that is the question $((i % 7)):"; done >"$W/text.txt"
fi
"$BIN" prepare --input="$W/text.txt" --out="$W/data" --tokenizer=char >"$W/prepare.log" 2>&1 ||
    { echo "reliability: prepare failed: $(tail -2 "$W/prepare.log")" >&2; exit 1; }
cat >"$W/small.conf" <<CONF
data_dir = '$W/data'
device = 'cpu'
threads = 1
n_layer = 1
n_head = 2
n_embd = 16
block_size = 16
vocab_size = 65
batch_size = 4
gradient_accumulation_steps = 1
learning_rate = 3e-3
warmup_iters = 2
eval_interval = 2
eval_iters = 1
log_interval = 1
keep_checkpoints = 10
seed = 7
CONF
CONF=$W/small.conf
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

# the logged losses of steps after iteration $2 (all when absent)
losses_after() { sed -n 's/^iter \([0-9]*\)\/[0-9]*: \(loss [^,]*\),.*/\1 \2/p' "$1" | awk -v a="${2:-0}" '$1 > a'; }
# every *.tmp* file left in a directory
tmp_files() { find "$1" -name '*.tmp*' 2>/dev/null; }

# ---------------------------------------------------------------------------------------------
echo "== 1. out of memory at every allocation (ASan build): train, then eval and sample"
# oom_sweep NAME ARGS...: runs the ASan binary with ARENAGPT_TEST_ALLOC_FAIL_AT=k for k = 1, 2,
# ... until a run makes fewer than k allocations; every refused run must exit 1 with the
# arena's report and no sanitizer report. Sets n_allocs. (train's out_dir checks follow.)
oom_sweep() {
    local name=$1 k=1 rc
    shift
    while :; do
        rm -rf "$W/oom/run"
        ARENAGPT_TEST_ALLOC_FAIL_AT=$k ASAN_OPTIONS=detect_leaks=1 "$ASAN_BIN" "$@" >"$W/oom.log" 2>&1
        rc=$?
        INPUTS[oom]=$((INPUTS[oom] + 1))
        if [ $rc = 0 ] && ! grep -q "allocation budget" "$W/oom.log"; then
            n_allocs=$((k - 1))
            return # the run made fewer than k allocations: every one has been refused once
        fi
        FAULTS[oom]=$((FAULTS[oom] + 1))
        if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error' "$W/oom.log"; then
            fail oom "$name k=$k: sanitizer report: $(grep -m1 -E 'ERROR|runtime error' "$W/oom.log")"
        elif [ $rc != 1 ]; then
            fail oom "$name k=$k: exit status $rc (expected 1)"
        elif ! grep -q "arena: cannot allocate .* past the allocation budget of $((k - 1)) allocations; held now:" "$W/oom.log"; then
            fail oom "$name k=$k: no arena report: $(tail -1 "$W/oom.log")"
        fi
        if [ "$name" = train ]; then
            [ -z "$(tmp_files "$W/oom/run")" ] || fail oom "train k=$k: temporary files left: $(tmp_files "$W/oom/run")"
            local left=0
            for f in "$W/oom/run"/model.bin "$W/oom/run"/state_*.bin; do
                [ -e "$f" ] || continue
                left=1
                cmp -s "$f" "$W/oom_ref/$(basename "$f")" || fail oom "train k=$k: $f differs from the complete checkpoint"
            done
            oom_left=$((oom_left + left))
        fi
        k=$((k + 1))
        [ $k -le 5000 ] || { fail oom "$name: more than 5000 allocations?"; return; }
    done
}
# every train run writes to the same out_dir path (the state file holds the config, out_dir included)
mkdir -p "$W/oom"
"$ASAN_BIN" train "$CONF" --max_iters=2 --checkpoint_interval=2 --out_dir="$W/oom/run" >"$W/oom_ref.log" 2>&1 ||
    fail oom "the uninterrupted run failed: $(tail -2 "$W/oom_ref.log")"
mv "$W/oom/run" "$W/oom_ref"
oom_left=0 # refused train runs that left (complete) checkpoint files
oom_sweep train train "$CONF" --max_iters=2 --checkpoint_interval=2 --out_dir="$W/oom/run"
oom_train=$n_allocs
oom_sweep eval eval --init_from="$W/oom_ref/model.bin" --data="$W/data/val.bin" --block_size=16 \
    --batch_size=4 --eval_batches=2 --device=cpu --threads=1
oom_eval=$n_allocs
oom_sweep sample sample --init_from="$W/oom_ref/model.bin" --tokenizer_file="$W/data/tokenizer.bin" \
    --block_size=16 --device=cpu --threads=1 --max_new_tokens=3 --num_samples=1 --prompt=To
oom_sample=$n_allocs
echo "   allocations refused one at a time: train $oom_train, eval $oom_eval, sample $oom_sample: ${FAULTS[oom]} faults, ${FAILS[oom]} failures"
echo "   refused train runs that left checkpoint files (each equal to the complete run's): $oom_left"

# ---------------------------------------------------------------------------------------------
echo "== 2. disk full / I/O error at every output call of a checkpoint save"
run_ref() { # dir max_iters [extra args]: an uninterrupted run
    local d=$1 n=$2
    shift 2
    "$BIN" train "$CONF" --max_iters="$n" --checkpoint_interval=2 --out_dir="$d" "$@" >"$d.log" 2>&1
}
mkdir -p "$W/disk"
# every run writes to the same out_dir path (the state file holds the config, out_dir included)
d=$W/disk/run
run_ref "$d" 4 || fail disk "the uninterrupted run failed"
mv "$d" "$W/disk/ref"
mv "$d.log" "$W/disk/ref.log"
# how many output calls the second save (iteration 4) makes
FAIL_IO_ARM=model.bin.tmp FAIL_IO_ARM_NTH=2 FAIL_IO_DISARM=state_ FAIL_IO_AT=0 \
    FAIL_IO_COUNT_FILE="$W/disk/count" LD_PRELOAD=$SHIM \
    "$BIN" train "$CONF" --max_iters=4 --checkpoint_interval=2 --out_dir="$W/disk/count_run" >/dev/null 2>&1
n_calls=$(cat "$W/disk/count" 2>/dev/null || echo 0)
[ "$n_calls" -gt 0 ] || fail disk "the shim saw no output calls in the save"
cmp -s "$W/disk/count_run/model.bin" "$W/disk/ref/model.bin" || fail disk "the counting run differs from the uninterrupted one"
tolerated=0
for n in $(seq 1 "$n_calls"); do
    mode=enospc
    [ $((n % 2)) = 0 ] && mode=eio
    FAIL_IO_ARM=model.bin.tmp FAIL_IO_ARM_NTH=2 FAIL_IO_DISARM=state_ FAIL_IO_AT=$n FAIL_IO_MODE=$mode \
        LD_PRELOAD=$SHIM "$BIN" train "$CONF" --max_iters=4 --checkpoint_interval=2 --out_dir="$d" >"$d.log" 2>&1
    rc=$?
    INPUTS[disk]=$((INPUTS[disk] + 1))
    FAULTS[disk]=$((FAULTS[disk] + 1))
    cmp -s "$d/state_00000002.bin" "$W/disk/ref/state_00000002.bin" ||
        fail disk "n=$n: the previous checkpoint state_00000002.bin changed or is gone"
    [ -z "$(tmp_files "$d")" ] || fail disk "n=$n: temporary files left: $(tmp_files "$d")"
    if [ $rc = 0 ]; then
        # the failed call could not lose data (the directory fsync after a rename)
        tolerated=$((tolerated + 1))
        cmp -s "$d/model.bin" "$W/disk/ref/model.bin" && cmp -s "$d/state_00000004.bin" "$W/disk/ref/state_00000004.bin" ||
            fail disk "n=$n: exit 0 but the checkpoint differs from the uninterrupted run's"
        rm -rf "$d" "$d.log"
        continue
    fi
    msg=$(grep 'arenagpt train:' "$d.log" | tail -1)
    want="No space left on device"
    [ $mode = eio ] && want="Input/output error"
    if [ $rc != 1 ]; then
        fail disk "n=$n: exit status $rc (expected 1)"
    elif ! grep -q "$d/" <<<"$msg" || ! grep -q "$want" <<<"$msg"; then
        fail disk "n=$n ($mode): the error does not name the file and the cause: $msg"
    fi
    [ ! -e "$d/state_00000004.bin" ] || fail disk "n=$n: a failed save left state_00000004.bin"
    # the previous checkpoint loads and resumes to the uninterrupted result
    "$BIN" train "$CONF" --max_iters=4 --checkpoint_interval=2 --out_dir="$d" --init_from=resume >"$d.resume.log" 2>&1 ||
        fail disk "n=$n: resume failed: $(tail -1 "$d.resume.log")"
    grep -q "resumed from $d/state_00000002.bin at iteration 2" "$d.resume.log" || fail disk "n=$n: did not resume from iteration 2"
    cmp -s "$d/model.bin" "$W/disk/ref/model.bin" || fail disk "n=$n: resumed model.bin differs from the uninterrupted run's"
    rm -rf "$d" "$d.log" "$d.resume.log"
done
# an out_dir that became unwritable: every file creation of the save fails with EACCES
FAIL_IO_ARM=model.bin.tmp FAIL_IO_ARM_NTH=2 FAIL_IO_DENY_CREATE=1 LD_PRELOAD=$SHIM \
    "$BIN" train "$CONF" --max_iters=4 --checkpoint_interval=2 --out_dir="$d" >"$d.log" 2>&1
rc=$?
INPUTS[disk]=$((INPUTS[disk] + 1))
FAULTS[disk]=$((FAULTS[disk] + 1))
msg=$(grep 'arenagpt train:' "$d.log" | tail -1)
[ $rc = 1 ] && grep -q "$d/model.bin" <<<"$msg" && grep -q "Permission denied" <<<"$msg" ||
    fail disk "unwritable out_dir: status $rc, message: $msg"
cmp -s "$d/state_00000002.bin" "$W/disk/ref/state_00000002.bin" || fail disk "unwritable out_dir: the previous checkpoint changed"
"$BIN" train "$CONF" --max_iters=4 --checkpoint_interval=2 --out_dir="$d" --init_from=resume >"$d.resume.log" 2>&1 &&
    cmp -s "$d/model.bin" "$W/disk/ref/model.bin" || fail disk "unwritable out_dir: the resumed run differs"
rm -rf "$d" "$d.log" "$d.resume.log"
echo "   $n_calls output calls in one save, each failed once: ${FAULTS[disk]} faults ($tolerated harmless), ${FAILS[disk]} failures"

# ---------------------------------------------------------------------------------------------
echo "== 3. SIGKILL at random points and inside checkpoint saves, then resume"
mkdir -p "$W/kill"
KILL_ITERS=12
t0=$(date +%s%N)
run_ref "$W/kill/ref" $KILL_ITERS || fail kill "the uninterrupted run failed"
ref_ms=$((($(date +%s%N) - t0) / 1000000))
RANDOM=14 # the kill times are reproducible
resume_check() { # dir label
    local d=$1 label=$2 last newest from
    # the last save the run reported complete, and the newest state file (a save can complete
    # between its rename and its report)
    last=$(sed -n 's/^checkpoint: .* and \(.*state_[0-9]*\.bin\) (iteration \([0-9]*\))$/\2/p' "$d.log" | tail -1)
    newest=$(find "$d" -name 'state_*.bin' -printf '%f\n' 2>/dev/null | sort | tail -1 | sed 's/state_0*\([0-9][0-9]*\)\.bin/\1/')
    if [ -n "$newest" ]; then
        [ "$newest" -ge "${last:-0}" ] || fail kill "$label: checkpoint $last was reported but the newest state file is $newest"
        "$BIN" train "$CONF" --max_iters=$KILL_ITERS --checkpoint_interval=2 --out_dir="$d" --init_from=resume >"$d.resume.log" 2>&1 ||
            { fail kill "$label: resume failed: $(tail -1 "$d.resume.log")"; return; }
        from=$(sed -n 's/^resumed from .* at iteration \([0-9]*\)$/\1/p' "$d.resume.log")
        [ "$from" = "$newest" ] || fail kill "$label: resumed at iteration $from, the last complete checkpoint is $newest"
    else
        [ -z "$last" ] || fail kill "$label: checkpoint $last was reported complete but no state file exists"
        from=0
        "$BIN" train "$CONF" --max_iters=$KILL_ITERS --checkpoint_interval=2 --out_dir="$d" >"$d.resume.log" 2>&1 ||
            { fail kill "$label: the scratch rerun failed"; return; }
    fi
    cmp -s "$d/model.bin" "$W/kill/ref/model.bin" || fail kill "$label: final model.bin differs from the uninterrupted run's"
    [ -z "$(tmp_files "$d")" ] || fail kill "$label: temporary files of the interrupted save are left: $(tmp_files "$d")"
    diff <(losses_after "$W/kill/ref.log" "$from") <(losses_after "$d.resume.log") >/dev/null ||
        fail kill "$label: losses after iteration $from differ from the uninterrupted run's"
    [ -n "$(losses_after "$d.resume.log")" ] || [ "$from" = $KILL_ITERS ] || fail kill "$label: no losses logged"
}
for i in $(seq 1 "$KILLS"); do
    d=$W/kill/t$i
    delay_ms=$((RANDOM % (ref_ms + 1)))
    "$BIN" train "$CONF" --max_iters=$KILL_ITERS --checkpoint_interval=2 --out_dir="$d" >"$d.log" 2>&1 &
    pid=$!
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    kill -KILL $pid 2>/dev/null
    wait $pid 2>/dev/null
    INPUTS[kill]=$((INPUTS[kill] + 1))
    FAULTS[kill]=$((FAULTS[kill] + 1))
    resume_check "$d" "kill at ${delay_ms} ms"
    rm -rf "$d" "$d.log" "$d.resume.log"
done
# inside the save of iteration 4 (the second one): 9 output calls spread over the save, the
# first and the last included
in_save=0
step=$(((n_calls - 1) / 8))
[ $step -ge 1 ] || step=1
for n in $( (seq 1 "$step" "$n_calls"; echo "$n_calls") | sort -un); do
    d=$W/kill/s$n
    { FAIL_IO_ARM=model.bin.tmp FAIL_IO_ARM_NTH=2 FAIL_IO_DISARM=state_ FAIL_IO_AT=$n FAIL_IO_MODE=kill \
        LD_PRELOAD=$SHIM "$BIN" train "$CONF" --max_iters=$KILL_ITERS --checkpoint_interval=2 --out_dir="$d" >"$d.log" 2>&1; } 2>/dev/null
    rc=$?
    INPUTS[kill]=$((INPUTS[kill] + 1))
    FAULTS[kill]=$((FAULTS[kill] + 1))
    in_save=$((in_save + 1))
    [ $rc = 137 ] || fail kill "save call $n: the run was not killed (status $rc)"
    resume_check "$d" "kill at output call $n of a save"
    rm -rf "$d" "$d.log" "$d.resume.log"
done
echo "   ${FAULTS[kill]} kills ($in_save inside a checkpoint save), ${FAILS[kill]} failures (uninterrupted run: $ref_ms ms)"

# ---------------------------------------------------------------------------------------------
echo "== 4. NaN/inf in gradients and the loss"
mkdir -p "$W/nf"
nf_run() { # name spec max_iters: runs with the injection, checkpoint every step
    INPUTS[nonfinite]=$((INPUTS[nonfinite] + 1))
    ARENAGPT_TEST_NONFINITE=$2 "$BIN" train "$CONF" --max_iters="$3" --checkpoint_interval=1 \
        --out_dir="$W/nf/$1" >"$W/nf/$1.log" 2>&1
}
# the weights + AdamW m, v of a state file (the bytes before the checksum, after the header,
# config and loader state): total parameters * 3 floats
n_params=$(sed -n 's/^parameters: \([0-9,]*\) total.*/\1/p' "$W/disk/ref.log" | tr -d ,)
params_of() { tail -c $((n_params * 12 + 8)) "$1" | head -c $((n_params * 12)); }
# data where every window is the same: one repeated character
head -c 20000 /dev/zero | tr '\0' a >"$W/const.txt"
"$BIN" prepare --input="$W/const.txt" --out="$W/const" --tokenizer=char >/dev/null 2>&1 || fail nonfinite "prepare (constant text)"
# a) one NaN gradient (parameter 5), one inf loss: skipped, counted, named; the run finishes
nf_run a "grad:3:nan:5,loss:5:inf" 6
rc=$?
FAULTS[nonfinite]=$((FAULTS[nonfinite] + 2))
[ $rc = 0 ] || fail nonfinite "a: exit status $rc (expected 0): $(tail -1 "$W/nf/a.log")"
grep -q "^iter 3: step skipped: gradient norm nan, first non-finite tensor 'grad.h.0.ln_2.weight' (element 0) (1 in a row, 1 skipped in all" "$W/nf/a.log" ||
    fail nonfinite "a: no skip line naming step 3 and the tensor grad.h.0.ln_2.weight"
grep -q "^iter 5: step skipped: the loss is inf, no non-finite gradient (1 in a row, 2 skipped in all" "$W/nf/a.log" ||
    fail nonfinite "a: no skip line for the inf loss of step 5"
grep -q '"iter": 6, .*"skipped": 2' "$W/nf/a/metrics.jsonl" || fail nonfinite "a: metrics do not count 2 skipped steps"
[ ! -e "$W/nf/a/state_00000003.bin" ] || fail nonfinite "a: a checkpoint was written right after a skipped step"
# b) inf in two tensors (parameters 7 and 3): the first in parameter order is named
nf_run b "grad:2:inf:7,grad:2:inf:3" 3
rc=$?
FAULTS[nonfinite]=$((FAULTS[nonfinite] + 2))
[ $rc = 0 ] && grep -q "^iter 2: step skipped: .*first non-finite tensor 'grad.h.0.attn.c_attn.weight'" "$W/nf/b.log" ||
    fail nonfinite "b: the first non-finite tensor (parameter 3) is not the one named: $(grep skipped "$W/nf/b.log")"
# AdamW's step count does not advance: on data where every batch is the same, with a constant
# learning rate, "skip step 1, then step 2" must equal "step 1" alone, bit for bit (AdamW's bias
# corrections depend on the step count)
INPUTS[nonfinite]=$((INPUTS[nonfinite] + 3))
FAULTS[nonfinite]=$((FAULTS[nonfinite] + 1))
ARENAGPT_TEST_NONFINITE=grad:1 "$BIN" train "$CONF" --data_dir="$W/const" --decay_lr=False --max_iters=2 \
    --checkpoint_interval=2 --out_dir="$W/nf/step_skip" >"$W/nf/step_skip.log" 2>&1 || fail nonfinite "step count: skip run failed"
"$BIN" train "$CONF" --data_dir="$W/const" --decay_lr=False --max_iters=1 --checkpoint_interval=1 \
    --out_dir="$W/nf/step_one" >"$W/nf/step_one.log" 2>&1 || fail nonfinite "step count: one-step run failed"
cmp -s "$W/nf/step_skip/model.bin" "$W/nf/step_one/model.bin" &&
    cmp -s <(params_of "$W/nf/step_skip/state_00000002.bin") <(params_of "$W/nf/step_one/state_00000001.bin") ||
    fail nonfinite "step count: skipping step 1 then taking step 2 differs from taking step 1 alone (weights, m or v)"
"$BIN" train "$CONF" --data_dir="$W/const" --decay_lr=False --max_iters=2 --checkpoint_interval=2 \
    --out_dir="$W/nf/step_two" >/dev/null 2>&1
cmp -s "$W/nf/step_one/model.bin" "$W/nf/step_two/model.bin" &&
    fail nonfinite "step count: the check cannot tell one step from two"
# c) STEP_GUARD_MAX_SKIPS (5) in a row: "diverged", exit 1, nothing new saved
nf_run c "grad:3,grad:4:inf,loss:5,grad:6,loss:7:inf" 10
rc=$?
FAULTS[nonfinite]=$((FAULTS[nonfinite] + 5))
[ $rc = 1 ] || fail nonfinite "c: exit status $rc (expected 1)"
grep -q "arenagpt train: iter 7: diverged: 5 steps in a row" "$W/nf/c.log" || fail nonfinite "c: no diverged error: $(tail -1 "$W/nf/c.log")"
newest=$(ls "$W/nf/c"/state_*.bin | tail -1)
[ "$(basename "$newest")" = state_00000002.bin ] || fail nonfinite "c: a checkpoint was saved during the skips: $newest"
[ -z "$(tmp_files "$W/nf/c")" ] || fail nonfinite "c: temporary files left"
# d) 4 in a row then good steps: the run recovers and finishes
nf_run d "grad:2,grad:3,loss:4,grad:5" 8
rc=$?
FAULTS[nonfinite]=$((FAULTS[nonfinite] + 4))
[ $rc = 0 ] && grep -q "^iter 5: step skipped: .*(4 in a row, 4 skipped in all" "$W/nf/d.log" &&
    grep -q '"iter": 8, .*"skipped": 4' "$W/nf/d/metrics.jsonl" ||
    fail nonfinite "d: 4 skips in a row did not recover: $(tail -1 "$W/nf/d.log")"
# e) a malformed injection spec is refused
INPUTS[nonfinite]=$((INPUTS[nonfinite] + 1))
ARENAGPT_TEST_NONFINITE=grad:x "$BIN" train "$CONF" --max_iters=2 --out_dir="$W/nf/e" >"$W/nf/e.log" 2>&1
[ $? = 2 ] && grep -q "ARENAGPT_TEST_NONFINITE: item 'grad:x'" "$W/nf/e.log" || fail nonfinite "e: malformed spec not refused"
echo "   ${FAULTS[nonfinite]} non-finite values injected in ${INPUTS[nonfinite]} runs, ${FAILS[nonfinite]} failures"

# ---------------------------------------------------------------------------------------------
echo "== 5. bad files refused cleanly under ASan+UBSan (no crash, no leak)"
mkdir -p "$W/bad"
B=$W/bad
FIX=$ROOT/tests/fixtures/bias_tanh_model.bin # a bias model: refused with bias=False
cp -r "$W/disk/ref" "$B/ckpt_flip"
python3 - "$B/ckpt_flip/state_00000004.bin" <<'PY' || fail refusals "cannot corrupt a checkpoint"
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0x40
open(p, 'wb').write(b)
PY
cp -r "$W/disk/ref" "$B/ckpt_trunc"
truncate -s -100 "$B/ckpt_trunc/state_00000004.bin"
head -c 3000 "$W/data/val.bin" >"$B/short_shard.bin"
head -c 2000 "$W/oom_ref/model.bin" >"$B/short_model.bin"
head -c 700 "$W/data/tokenizer.bin" >"$B/short_tokenizer.bin"
# refused CASE STATUS MESSAGE ARGS...: the ASan binary must exit STATUS with MESSAGE in its output
refused() {
    local name=$1 want=$2 msg=$3 rc
    shift 3
    INPUTS[refusals]=$((INPUTS[refusals] + 1))
    FAULTS[refusals]=$((FAULTS[refusals] + 1))
    ASAN_OPTIONS=detect_leaks=1 "$ASAN_BIN" "$@" >"$B/$name.log" 2>&1
    rc=$?
    if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error' "$B/$name.log"; then
        fail refusals "$name: sanitizer report: $(grep -m1 -E 'ERROR|runtime error' "$B/$name.log")"
    elif [ $rc != "$want" ] || ! grep -q -- "$msg" "$B/$name.log"; then
        fail refusals "$name: status $rc (expected $want), $(grep arenagpt "$B/$name.log" | tail -1)"
    fi
}
S="--device=cpu --threads=1"
refused sample_bias_model 1 "but the model has bias=False" sample $S --init_from="$FIX" --bias=False \
    --tokenizer_file="$W/data/tokenizer.bin" --max_new_tokens=2
refused eval_bias_model 1 "but the model has bias=False" eval $S --init_from="$FIX" --bias=False \
    --data="$W/const/val.bin" --block_size=16 --batch_size=2 --eval_batches=1
refused train_bias_model 1 "but the model has bias=False" train "$CONF" --init_from="$FIX" --bias=False \
    --max_iters=1 --out_dir="$B/t1"
refused resume_corrupted 1 "fails its checksum" train "$CONF" --max_iters=6 --checkpoint_interval=2 \
    --out_dir="$B/ckpt_flip" --init_from=resume
refused resume_truncated 1 "truncated or corrupted" train "$CONF" --max_iters=6 --checkpoint_interval=2 \
    --out_dir="$B/ckpt_trunc" --init_from=resume
refused eval_short_shard 1 "short_shard.bin" eval $S --init_from="$W/oom_ref/model.bin" --data="$B/short_shard.bin" \
    --block_size=16 --batch_size=2 --eval_batches=1
refused eval_short_model 1 "short_model.bin" eval $S --init_from="$B/short_model.bin" --data="$W/data/val.bin" \
    --block_size=16 --batch_size=2 --eval_batches=1
refused sample_short_tokenizer 1 "short_tokenizer.bin" sample $S --init_from="$W/oom_ref/model.bin" \
    --tokenizer_file="$B/short_tokenizer.bin" --block_size=16 --max_new_tokens=2
refused sample_no_tokenizer 1 "missing_tokenizer.bin" sample $S --init_from="$W/oom_ref/model.bin" \
    --tokenizer_file="$B/missing_tokenizer.bin" --block_size=16 --max_new_tokens=2
refused train_unknown_key 2 "did you mean 'n_layer'" train "$CONF" --n_layers=2 --out_dir="$B/t2"
mkdir -p "$B/short_data"
cp "$B/short_shard.bin" "$B/short_data/train.bin"
cp "$B/short_shard.bin" "$B/short_data/val.bin"
refused train_short_shards 1 "short_data/train.bin" train "$CONF" --data_dir="$B/short_data" --max_iters=1 --out_dir="$B/t3"
echo "   ${INPUTS[refusals]} bad files and values refused, ${FAILS[refusals]} failures"

# ---------------------------------------------------------------------------------------------
echo "== 6. valgrind memcheck on a short training run"
INPUTS[valgrind]=1
if command -v valgrind >/dev/null; then
    # two OpenMP threads, three steps and two checkpoint saves
    env -u OMP_NUM_THREADS -u OPENBLAS_NUM_THREADS valgrind --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite,indirect,possible --show-leak-kinds=definite,indirect,possible \
        --suppressions="$ROOT/tests/valgrind.supp" \
        "$VG_BIN" train "$CONF" --threads=2 --max_iters=3 --checkpoint_interval=2 --out_dir="$W/vg" >"$W/valgrind.log" 2>&1
    rc=$?
    vg_errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$W/valgrind.log" | tail -1)
    [ $rc = 0 ] && [ "$vg_errors" = 0 ] || fail valgrind "status $rc, ${vg_errors:-?} errors (log $W/valgrind.log)"
    grep -q '^iter 3/3' "$W/valgrind.log" || fail valgrind "the training run did not finish (log $W/valgrind.log)"
    echo "   memcheck: ${vg_errors:-?} errors; $(grep -E 'definitely lost|possibly lost|suppressed:' "$W/valgrind.log" | grep -v 'ERROR SUMMARY' | sed 's/==[0-9]*== *//' | paste -sd';')"
else
    fail valgrind "valgrind is not installed (scripts/setup.sh --dev)"
fi

# ---------------------------------------------------------------------------------------------
secs=$(($(date +%s) - t_start))
ti=0 tf=0 tx=0
for p in "${PARTS[@]}"; do ti=$((ti + INPUTS[$p])); tf=$((tf + FAULTS[$p])); tx=$((tx + FAILS[$p])); done
{
    printf '%-34s %8s %8s %9s\n' "fault" inputs faults failures
    printf '%-34s %8s %8s %9s\n' "out of memory (every allocation)" "${INPUTS[oom]}" "${FAULTS[oom]}" "${FAILS[oom]}"
    printf '%-34s %8s %8s %9s\n' "disk full / EIO in a save" "${INPUTS[disk]}" "${FAULTS[disk]}" "${FAILS[disk]}"
    printf '%-34s %8s %8s %9s\n' "SIGKILL + resume" "${INPUTS[kill]}" "${FAULTS[kill]}" "${FAILS[kill]}"
    printf '%-34s %8s %8s %9s\n' "NaN/inf in gradients and loss" "${INPUTS[nonfinite]}" "${FAULTS[nonfinite]}" "${FAILS[nonfinite]}"
    printf '%-34s %8s %8s %9s\n' "bad files refused (ASan)" "${INPUTS[refusals]}" "${FAULTS[refusals]}" "${FAILS[refusals]}"
    printf '%-34s %8s %8s %9s\n' "valgrind memcheck (training run)" "${INPUTS[valgrind]}" - "${FAILS[valgrind]}"
    printf '%-34s %8s %8s %9s\n' "total" "$ti" "$tf" "$tx"
    echo "reliability: $ti inputs tried, $tf faults injected, $tx failures ($secs s)"
} | tee "$SUMMARY"
[ "$tx" = 0 ]
