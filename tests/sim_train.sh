#!/usr/bin/env bash
# sim_train.sh: `arenagpt train --device=cuda` end to end on the CUDA simulator (the
# build/sim/arenagpt binary: the CUDA backend compiled for the CPU, ASan on): a tiny model,
# a few steps on a small shard; the memory plan equals the measured arena to the byte; the
# device memory report with its reconciliation lines on the simulated card (no NVML); the loss
# scaler's state in the log; an fp16 overflow (a large learning rate) skips its step and
# halves the loss scale, which doubles after scaler_growth_interval clean steps; a checkpoint
# and a resume that gives the same losses as an uninterrupted run; memory_limit below the plan
# gives the arena's report and a clean exit; a card too small for the reservation gives the
# cudaMalloc report and a clean exit; dtype = bfloat16 trains without a loss scaler, plans
# exactly, and resumes to the same losses; a state resumes in the other 16-bit dtype.
# Usage: tests/sim_train.sh path/to/build/sim/arenagpt   (make test-sim runs it)
set -u
. "$(dirname "$0")/lib_cli.sh" sim_train "$1"
. "$ROOT/tests/lib_sim.sh"

sim_data_and_conf

# 1. uninterrupted: 5 steps
"$BIN" train "$TMP/tiny.conf" --max_iters=5 --out_dir="$TMP/a" >"$TMP/a.log" 2>&1 || bad "train: $(tail -5 "$TMP/a.log")"
grep -q "GPU: NVIDIA GeForce RTX 4070 (simulated)" "$TMP/a.log" && ok || bad "the simulated card is not named"
grep -q "plan == measured: yes, to the byte" "$TMP/a.log" && ok || bad "plan == measured"
for line in "NVML: libnvidia-ml.so.1 not loadable" "after context + libraries" \
    "arena reservation (cudaMemGetInfo delta)" "arena reservation (asked)" "unaccounted (device now"; do
    grep -qF "$line" "$TMP/a.log" && ok || bad "reconciliation line '$line' missing"
done
grep -q "^iter 5/5: .*scale 65536, skipped 0" "$TMP/a.log" && ok || bad "loss scaler state in the log"
[ -f "$TMP/a/model.bin" ] && ok || bad "no model.bin"

# 2. 3 steps (a checkpoint), then resume to 5: the same losses to the last printed digit
"$BIN" train "$TMP/tiny.conf" --max_iters=3 --out_dir="$TMP/b" >"$TMP/b1.log" 2>&1 || bad "train (first part): $(tail -5 "$TMP/b1.log")"
ls "$TMP/b"/state_00000003.bin >/dev/null 2>&1 && ok || bad "no checkpoint at iteration 3"
"$BIN" train "$TMP/tiny.conf" --max_iters=5 --out_dir="$TMP/b" --init_from=resume >"$TMP/b2.log" 2>&1 || bad "train (resume): $(tail -5 "$TMP/b2.log")"
grep -q "resumed from .*state_00000003.bin at iteration 3" "$TMP/b2.log" && ok || bad "resume message"
losses() { grep '"loss"' "$1" | sed 's/, "ms_per_iter.*//'; }
if [ -n "$(losses "$TMP/a/metrics.jsonl")" ] && diff <(losses "$TMP/a/metrics.jsonl") <(losses "$TMP/b/metrics.jsonl") >"$TMP/diff"; then
    ok
else
    bad "resumed losses differ from the uninterrupted run:"
    cat "$TMP/diff"
fi

# 3. loss scaling: at learning_rate 0.5 an fp16 gradient overflows within a few steps (the run
# is deterministic: the same kernels, data and seed); that step is skipped (norm inf, skipped
# +1) and the next step runs at half the scale
"$BIN" train "$TMP/tiny.conf" --max_iters=4 --learning_rate=0.5 --warmup_iters=0 --out_dir="$TMP/s" >"$TMP/s.log" 2>&1 || bad "train (lr 0.5): $(tail -5 "$TMP/s.log")"
inf_then_half=$(grep '^iter ' "$TMP/s.log" | sed -E 's/.*norm ([^,]+),.*scale ([0-9]+), skipped ([0-9]+).*/\1 \2 \3/' |
    awk 'p_inf && $2 == p_scale / 2 { ok = 1 } { p_inf = ($1 == "inf" || $1 == "nan"); p_scale = $2 } END { print ok + 0 }')
[ "$inf_then_half" = 1 ] && ok || bad "loss scaling: no overflowed step followed by a halved scale: $(grep '^iter ' "$TMP/s.log")"
grep -qE '^iter [0-9]+/4: .*norm (inf|nan), .*skipped [1-9]' "$TMP/s.log" && ok || bad "loss scaling: the overflowed step is not counted as skipped"

# 3b. ... and the scale grows back: with scaler_growth_interval = 2 it doubles after every 2
# clean steps (GradScaler's growth_interval), so steps 1-2 run at 65536, 3-4 at 131072, 5 at
# 262144
"$BIN" train "$TMP/tiny.conf" --max_iters=5 --scaler_growth_interval=2 --out_dir="$TMP/g" >"$TMP/g.log" 2>&1 || bad "train (growth interval 2): $(tail -5 "$TMP/g.log")"
scales=$(grep '^iter ' "$TMP/g.log" | sed -E 's/.*scale ([0-9]+), skipped.*/\1/' | tr '\n' ' ')
[ "$scales" = "65536 65536 131072 131072 262144 " ] && ok || bad "loss scale growth: scales per step '$scales', expected 65536 65536 131072 131072 262144"

# 4. memory_limit below the plan: the arena's refusal report, exit 1, no crash, no leak
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 "$BIN" train "$TMP/tiny.conf" --max_iters=2 --out_dir="$TMP/c" --memory_limit=1MiB >"$TMP/c.log" 2>&1
rc=$?
[ "$rc" = 1 ] && ok || bad "memory_limit: exit $rc, expected 1"
grep -q "past the memory limit of 1048576 bytes" "$TMP/c.log" && ok || bad "memory_limit: no arena report"

# 5. a card with too little free memory for the reservation (CUDASIM_MEMORY_BYTES: 270 MiB,
# of which the simulated context takes 256): the cudaMalloc report, exit 1, no crash
CUDASIM_MEMORY_BYTES=$((270 << 20)) ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 "$BIN" train "$TMP/tiny.conf" --max_iters=2 --out_dir="$TMP/d" >"$TMP/d.log" 2>&1
rc=$?
[ "$rc" = 1 ] && ok || bad "small card: exit $rc, expected 1"
grep -q "cudaMalloc of the arena reservation (.* bytes) failed: out of memory" "$TMP/d.log" && ok || bad "small card: no cudaMalloc report"

# 6. dtype = bfloat16: no loss scaler (the log has no scale), plan == measured, the first loss
# within bf16's rounding of float16's (same weights and data), a checkpoint and a resume that
# gives the same losses as the uninterrupted run
# (a nanoGPT config that says dtype = 'bfloat16', as nanoGPT's own default on such a card)
{ cat "$TMP/tiny.conf"; echo "dtype = 'bfloat16'"; } >"$TMP/bf16.conf"
"$BIN" train "$TMP/bf16.conf" --max_iters=5 --out_dir="$TMP/h" >"$TMP/h.log" 2>&1 || bad "train bf16: $(tail -5 "$TMP/h.log")"
grep -q "plan == measured: yes, to the byte" "$TMP/h.log" && ok || bad "bf16: plan == measured"
grep -q "device cuda, dtype bfloat16," "$TMP/h.log" && grep -q "grad.h.0.mlp.c_fc.weight .* f32 " "$TMP/h.log" && ok || bad "bf16: the dtype is not named, or its gradients are not f32"
grep -q "^iter 5/5: .*, skipped 0," "$TMP/h.log" && ! grep -q "^iter .*scale" "$TMP/h.log" && ok || bad "bf16: the log shows a loss scale or no skipped count: $(grep '^iter 5/5' "$TMP/h.log")"
first() { grep -m1 '"loss"' "$1" | sed 's/.*"loss": \([-0-9.e]*\).*/\1/'; }
# bf16's unit roundoff 2^-8 through a few roundings per layer: 2% of the loss
awk -v a="$(first "$TMP/a/metrics.jsonl")" -v b="$(first "$TMP/h/metrics.jsonl")" \
    'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && b > 0 && d <= 0.02 * a) }' && ok ||
    bad "bf16 first loss $(first "$TMP/h/metrics.jsonl") is not within 2% of float16's $(first "$TMP/a/metrics.jsonl")"
"$BIN" train "$TMP/tiny.conf" --dtype=bfloat16 --max_iters=3 --out_dir="$TMP/i" >"$TMP/i1.log" 2>&1 || bad "train bf16 (first part): $(tail -5 "$TMP/i1.log")"
"$BIN" train "$TMP/tiny.conf" --dtype=bfloat16 --max_iters=5 --out_dir="$TMP/i" --init_from=resume >"$TMP/i2.log" 2>&1 || bad "train bf16 (resume): $(tail -5 "$TMP/i2.log")"
if [ -n "$(losses "$TMP/h/metrics.jsonl")" ] && diff <(losses "$TMP/h/metrics.jsonl") <(losses "$TMP/i/metrics.jsonl") >"$TMP/diff"; then
    ok
else
    bad "bf16: resumed losses differ from the uninterrupted run:"
    cat "$TMP/diff"
fi

# bf16's step guard (no scaler): a NaN gradient at step 2 and a NaN loss at step 3 each skip
# their step, counted and logged, and the run goes on
ARENAGPT_TEST_NONFINITE=grad:2:nan:3,loss:3:nan "$BIN" train "$TMP/tiny.conf" --dtype=bfloat16 --max_iters=4 --out_dir="$TMP/n" >"$TMP/n.log" 2>&1 || bad "bf16 non-finite steps: $(tail -5 "$TMP/n.log")"
grep -q "^iter 2: step skipped: gradient norm nan" "$TMP/n.log" && grep -q "^iter 3: step skipped: the loss is nan" "$TMP/n.log" && grep -q "^iter 4/4: .*, skipped 2," "$TMP/n.log" && ok || bad "bf16: the non-finite steps are not skipped and counted: $(grep '^iter' "$TMP/n.log")"

# 7. a float16 state resumed as bfloat16 and a bfloat16 one as float16: converted from the f32
# master weights (one line says so), the loss scaler restarted for the new dtype, the run goes on
"$BIN" train "$TMP/tiny.conf" --dtype=bfloat16 --max_iters=6 --out_dir="$TMP/b" --init_from=resume >"$TMP/j.log" 2>&1 || bad "resume float16 as bf16: $(tail -5 "$TMP/j.log")"
grep -q "the state was written in float16, this run is bfloat16: .*no loss scaling: scale 1" "$TMP/j.log" && grep -qE '^iter 6/6: loss [0-9]' "$TMP/j.log" && ok || bad "float16 -> bfloat16 resume: $(grep -E 'state was|^iter' "$TMP/j.log")"
"$BIN" train "$TMP/tiny.conf" --dtype=float16 --max_iters=6 --out_dir="$TMP/i" --init_from=resume >"$TMP/k.log" 2>&1 || bad "resume bf16 as float16: $(tail -5 "$TMP/k.log")"
grep -q "the state was written in bfloat16, this run is float16: .*the loss scale starts again at 65536" "$TMP/k.log" && grep -qE '^iter 6/6: loss [0-9].*scale 65536' "$TMP/k.log" && ok || bad "bfloat16 -> float16 resume: $(grep -E 'state was|^iter' "$TMP/k.log")"

cli_done
