#!/usr/bin/env bash
# sim_offload.sh: `arenagpt train --device=cuda --optimizer_offload=True` end to end on the CUDA
# simulator (build/sim/arenagpt, ASan and leak checking on): a tiny model trains with the f32
# master weights, m and v in the pinned host arena and AdamW on the CPU, and
#   - equals the same run without offload, bit for bit: the same logged losses and norms and
#     a byte-identical model.bin (written from the f32 master weights), also through an fp16
#     overflow that skips a step and halves the loss scale;
#   - plan == measured in both arenas (device and host), to the byte, also for a fine-tune
#     step from a run's model.bin with recompute full (what scripts/gpu_check.sh runs);
#   - a checkpoint written with offload resumes with or without it to the same losses;
#   - a refused pinned reservation (CUDASIM_FAIL_HOST_ALLOC), a host arena refusal
#     (ARENAGPT_TEST_HOST_ALLOC_FAIL_AT: names the tensor) and a failed transfer
#     (CUDASIM_FAIL_PINNED_COPY) each end with a clear error, exit 1 and no leak;
#   - the CPU backend refuses optimizer_offload (exit 2).
# Usage: tests/sim_offload.sh path/to/build/sim/arenagpt   (make test-sim runs it)
set -u
. "$(dirname "$0")/lib_cli.sh" sim_offload "$1"
. "$ROOT/tests/lib_sim.sh"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1

sim_data_and_conf
run() { # out_dir, log name, then arguments
    local out=$1 log=$2
    shift 2
    "$BIN" train "$TMP/tiny.conf" --out_dir="$TMP/$out" "$@" >"$TMP/$log.log" 2>&1
}
# what a run logged per step, without the timings
steps() { grep '^iter ' "$1" | sed -E 's/, [0-9.]+ ms.*//; s/ \(.*//'; }
metrics() { grep '"loss"' "$1" | sed 's/, "ms_per_iter.*//'; }

# 1. with and without offload: the same steps, the same model file
run off off --max_iters=3 || bad "train without offload: $(tail -5 "$TMP/off.log")"
run on on --max_iters=3 --optimizer_offload=True || bad "train with offload: $(tail -5 "$TMP/on.log")"
grep -q "plan == measured: yes, to the byte" "$TMP/on.log" && ok || bad "device plan == measured"
grep -q "host plan == measured: yes, to the byte" "$TMP/on.log" && ok || bad "host plan == measured"
grep -q "memory measured (host arena, pinned backing" "$TMP/on.log" && ok || bad "no host arena report"
grep -qE "^ +master\.h\.[0-9]+\.mlp\.c_fc\.weight +optimizer +f32" "$TMP/on.log" && ok || bad "the host arena does not list the master weights"
[ -n "$(steps "$TMP/on.log")" ] && diff <(steps "$TMP/off.log") <(steps "$TMP/on.log") >"$TMP/d1" && ok || {
    bad "offload's steps differ from the device update's:"
    cat "$TMP/d1"
}
cmp -s "$TMP/off/model.bin" "$TMP/on/model.bin" && ok || bad "model.bin differs with offload"

# 1b. a fine-tune step from a run's model (what scripts/gpu_check.sh runs on a GPU)
run ft ft --max_iters=1 --init_from="$TMP/off" --optimizer_offload=True --recompute=full || bad "fine-tune with offload: $(tail -5 "$TMP/ft.log")"
grep -q "initialised from .*off/model.bin" "$TMP/ft.log" && grep -q "host plan == measured: yes, to the byte" "$TMP/ft.log" && ok || bad "fine-tune: no init line or host plan != measured"

# 1c. bfloat16 with bf16 gradients: the host step rounds the params to bf16 and widens the
# gradients from bf16, exactly as the device update does: the same steps, the same model file
run boff boff --max_iters=2 --dtype=bfloat16 --grad_dtype=bfloat16 || bad "bf16 without offload: $(tail -5 "$TMP/boff.log")"
run bon bon --max_iters=2 --dtype=bfloat16 --grad_dtype=bfloat16 --optimizer_offload=True || bad "bf16 with offload: $(tail -5 "$TMP/bon.log")"
grep -q "host plan == measured: yes, to the byte" "$TMP/bon.log" && [ -n "$(steps "$TMP/bon.log")" ] &&
    diff <(steps "$TMP/boff.log") <(steps "$TMP/bon.log") >"$TMP/d1c" && cmp -s "$TMP/boff/model.bin" "$TMP/bon/model.bin" && ok || {
    bad "bf16: offload's steps or model differ from the device update's (or host plan != measured):"
    cat "$TMP/d1c"
}

# 2. an fp16 overflow (learning rate 0.5: deterministic) skips a step and halves the scale,
# with offload exactly as without
run soff soff --max_iters=4 --learning_rate=0.5 --warmup_iters=0 || bad "lr 0.5 without offload"
run son son --max_iters=4 --learning_rate=0.5 --warmup_iters=0 --optimizer_offload=True || bad "lr 0.5 with offload: $(tail -5 "$TMP/son.log")"
grep -qE '^iter [0-9]+/4: .*norm (inf|nan), .*skipped [1-9]' "$TMP/son.log" && ok || bad "offload: no skipped step at lr 0.5: $(grep '^iter ' "$TMP/son.log")"
grep -q "host plan == measured: yes, to the byte" "$TMP/son.log" && ok || bad "host plan == measured with skipped steps"
diff <(steps "$TMP/soff.log") <(steps "$TMP/son.log") >"$TMP/d2" && ok || {
    bad "the skipped-step run differs with offload:"
    cat "$TMP/d2"
}
cmp -s "$TMP/soff/model.bin" "$TMP/son/model.bin" && ok || bad "model.bin differs with offload (skipped step)"

# 3. checkpoint with offload at 2, resume to 4 with and without it: the uninterrupted losses
run r r --max_iters=2 --optimizer_offload=True || bad "train to 2 with offload"
cp -r "$TMP/r" "$TMP/r2"
run r r1 --max_iters=3 --optimizer_offload=True --init_from=resume || bad "resume with offload: $(tail -5 "$TMP/r1.log")"
run r2 r2 --max_iters=3 --init_from=resume || bad "resume without offload: $(tail -5 "$TMP/r2.log")"
for d in r r2; do
    diff <(metrics "$TMP/on/metrics.jsonl") <(metrics "$TMP/$d/metrics.jsonl") >"$TMP/d3" && ok || {
        bad "resumed ($d) losses differ from the uninterrupted offload run:"
        cat "$TMP/d3"
    }
done

# 4. injected failures: a clear error, exit 1, no leak (ASan's leak check is on)
CUDASIM_FAIL_HOST_ALLOC=1 run f1 f1 --max_iters=2 --optimizer_offload=True
rc=$?
[ "$rc" = 1 ] && grep -q "optimizer_offload: cudaHostAlloc of the pinned host arena reservation ([0-9]* bytes) failed" "$TMP/f1.log" && ok || bad "refused cudaHostAlloc: exit $rc: $(tail -3 "$TMP/f1.log")"
ARENAGPT_TEST_HOST_ALLOC_FAIL_AT=5 run f2 f2 --max_iters=2 --optimizer_offload=True
rc=$?
[ "$rc" = 1 ] && grep -q "host arena (optimizer_offload): .*adam.m.wpe" "$TMP/f2.log" && ok || bad "host arena refusal: exit $rc: $(tail -3 "$TMP/f2.log")"
CUDASIM_FAIL_PINNED_COPY=3 run f3 f3 --max_iters=2 --optimizer_offload=True
rc=$?
[ "$rc" = 1 ] && grep -q "gpt_update (optimizer_offload, gradients to the host): device error: .*injected failure" "$TMP/f3.log" && ok || bad "failed transfer: exit $rc: $(tail -3 "$TMP/f3.log")"
grep -q "LeakSanitizer" "$TMP"/f*.log && bad "a leak after an injected failure" || ok

# 5. the CPU backend refuses offload
"$BIN" train "$TMP/tiny.conf" --device=cpu --optimizer_offload=True --out_dir="$TMP/c" >"$TMP/c.log" 2>&1
rc=$?
[ "$rc" = 2 ] && grep -q "optimizer_offload=True needs --device=cuda" "$TMP/c.log" && ok || bad "device=cpu: exit $rc: $(tail -2 "$TMP/c.log")"

cli_done
