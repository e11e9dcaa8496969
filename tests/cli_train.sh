#!/usr/bin/env bash
# cli_train.sh: training from the command line on the CPU, end to end: prepare (char tokens)
# -> train -> plan == measured -> the loss falls -> sample; resume equivalence (4 + 4 steps
# with init_from=resume give the same losses, to the last printed digit, as 8 uninterrupted
# steps); SIGINT saves a checkpoint and exits 0; corrupted checkpoints are refused.
# Usage: tests/cli_train.sh path/to/arenagpt
set -u
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TEXT=$ROOT/../shared/data/tinyshakespeare.txt
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "cli_train: FAILED: $*"; fail=$((fail + 1)); }

if [ ! -f "$TEXT" ]; then
    # stand-in text (fewer than 65 symbols, learnable) when the shared data is not beside us
    for i in $(seq 1 3000); do echo "To be, or not to be, that is the question $((i % 7)):"; done >"$TMP/text.txt"
    TEXT=$TMP/text.txt
fi
"$BIN" prepare --input="$TEXT" --out="$TMP/data" --tokenizer=char >"$TMP/prep.log" 2>&1 || bad "prepare"
# a small model that trains in seconds on 2 cores
cat >"$TMP/small.conf" <<CONF
data_dir = '$TMP/data'
device = 'cpu'
n_layer = 2
n_head = 2
n_embd = 32
block_size = 32
vocab_size = 65
batch_size = 8
gradient_accumulation_steps = 2
learning_rate = 3e-3
warmup_iters = 2
lr_decay_iters = 200
min_lr = 3e-4
eval_interval = 4
eval_iters = 2
log_interval = 1
keep_checkpoints = 3
seed = 7
CONF

# 1. uninterrupted: 8 steps
"$BIN" train "$TMP/small.conf" --max_iters=8 --out_dir="$TMP/a" >"$TMP/a.log" 2>&1 || bad "train (uninterrupted): $(tail -3 "$TMP/a.log")"
grep -q "plan == measured: yes, to the byte" "$TMP/a.log" && ok || bad "plan == measured"
# 2. 4 steps, then resume to 8
"$BIN" train "$TMP/small.conf" --max_iters=4 --out_dir="$TMP/b" >"$TMP/b1.log" 2>&1 || bad "train (first half)"
"$BIN" train "$TMP/small.conf" --max_iters=8 --out_dir="$TMP/b" --init_from=resume >"$TMP/b2.log" 2>&1 || bad "train (resume): $(tail -3 "$TMP/b2.log")"
grep -q "resumed from .*state_00000004.bin at iteration 4" "$TMP/b2.log" && ok || bad "resume message"
losses() { grep '"loss"' "$1" | sed 's/, "ms_per_iter.*//'; }
if [ -n "$(losses "$TMP/a/metrics.jsonl")" ] && diff <(losses "$TMP/a/metrics.jsonl") <(losses "$TMP/b/metrics.jsonl") >"$TMP/diff"; then
    ok
else
    bad "resumed losses differ from the uninterrupted run:"; cat "$TMP/diff"
fi
evals() { grep '"val_loss"' "$1" | sort -u; }
diff <(evals "$TMP/a/metrics.jsonl") <(evals "$TMP/b/metrics.jsonl") >/dev/null && ok || bad "resumed eval losses differ"
cmp -s "$TMP/a/model.bin" "$TMP/b/model.bin" && ok || bad "final model files differ"

# 3. the loss falls well below ln(65) = 4.17 within 40 steps
"$BIN" train "$TMP/small.conf" --max_iters=40 --eval_interval=40 --out_dir="$TMP/c" >"$TMP/c.log" 2>&1 || bad "train 40"
last=$(grep '"val_loss"' "$TMP/c/metrics.jsonl" | tail -1 | sed 's/.*"val_loss": \([0-9.]*\).*/\1/')
awk -v l="$last" 'BEGIN { exit !(l < 3.4) }' && ok || bad "val loss after 40 steps is $last (want < 3.4)"
"$BIN" sample --init_from="$TMP/c" --data_dir="$TMP/data" --prompt="To be" --max_new_tokens=20 \
    --num_samples=1 --temperature=0 --device=cpu >"$TMP/s1.txt" 2>&1 || bad "sample"
"$BIN" sample --init_from="$TMP/c/model.bin" --data_dir="$TMP/data" --prompt="To be" --max_new_tokens=20 \
    --num_samples=1 --top_k=1 --temperature=0.8 --seed=3 --device=cpu >"$TMP/s2.txt" 2>&1 || bad "sample top_k 1"
cmp -s "$TMP/s1.txt" "$TMP/s2.txt" && ok || bad "temperature 0 and top_k 1 differ"
[ "$(head -c 5 "$TMP/s1.txt")" = "To be" ] && ok || bad "sample does not start with the prompt"

# 4. SIGINT: finish the step, save, exit 0; then resume from it
"$BIN" train "$TMP/small.conf" --max_iters=100000 --eval_interval=100000 --out_dir="$TMP/d" >"$TMP/d.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
    [ -s "$TMP/d/metrics.jsonl" ] && [ "$(grep -c '"loss"' "$TMP/d/metrics.jsonl")" -ge 2 ] && break
    sleep 0.1
done
kill -INT $pid
wait $pid
st=$?
[ "$st" = 0 ] && ok || bad "SIGINT exit status $st"
grep -q "stopped by signal" "$TMP/d.log" && ok || bad "no stop message"
ls "$TMP/d"/state_*.bin >/dev/null 2>&1 && ok || bad "no checkpoint after SIGINT"

# 5. a corrupted checkpoint is refused with a clear message
f=$(ls "$TMP/b"/state_*.bin | tail -1)
printf 'XXXX' | dd of="$f" bs=1 seek=2000 conv=notrunc status=none
"$BIN" train "$TMP/small.conf" --max_iters=9 --out_dir="$TMP/b" --init_from=resume >"$TMP/e.log" 2>&1
st=$?
[ "$st" = 1 ] && grep -q "checksum" "$TMP/e.log" && ok || bad "corrupted checkpoint: status $st, $(tail -1 "$TMP/e.log")"
"$BIN" train "$TMP/small.conf" --max_iters=9 --out_dir="$TMP/a" --init_from=resume --n_embd=64 >"$TMP/e2.log" 2>&1
grep -q "refusing to resume a different model" "$TMP/e2.log" && ok || bad "mismatched resume: $(grep arenagpt "$TMP/e2.log")"

# dtype = bfloat16 with device = auto where no GPU is usable: the CPU in float32, said in one
# line (this machine has no GPU; on one with a GPU the run is CUDA's and the line is absent)
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    "$BIN" train "$TMP/small.conf" --device=auto --dtype=bfloat16 --max_iters=1 --eval_interval=1 \
        --eval_iters=1 --out_dir="$TMP/auto" >"$TMP/auto.log" 2>&1 &&
        grep -q "no GPU found (device = auto): training on the CPU in float32, not bfloat16" "$TMP/auto.log" &&
        grep -q "arenagpt train: device cpu, dtype float32" "$TMP/auto.log" && ok ||
        bad "device auto + bfloat16 without a GPU: $(head -3 "$TMP/auto.log")"
fi

echo "cli_train: $pass passed, $fail failed"
[ "$fail" = 0 ]
