#!/usr/bin/env bash
# cli_flash.sh: attention=flash from the command line on the CPU: train (plan == measured, the
# same losses as naive within f32 noise), eval and sample accept it; `mem --compare` and
# `--fit` list every recompute x attention combination (table and JSON); the CUDA head-size
# limit and cudnn on the CPU are refused with a message.
# Usage: tests/cli_flash.sh path/to/arenagpt
set -u
. "$(dirname "$0")/lib_cli.sh" cli_flash "$1"

for i in $(seq 1 2000); do echo "To be, or not to be, that is the question $((i % 7)):"; done >"$TMP/text.txt"
"$BIN" prepare --input="$TMP/text.txt" --out="$TMP/data" --tokenizer=char >"$TMP/prep.log" 2>&1 || bad "prepare"
# block_size 70 crosses the CPU kernel's 64-row tiles; head size 12
cat >"$TMP/small.conf" <<CONF
data_dir = '$TMP/data'
device = 'cpu'
n_layer = 2
n_head = 3
n_embd = 36
block_size = 70
vocab_size = 65
batch_size = 4
learning_rate = 3e-3
eval_interval = 3
eval_iters = 2
log_interval = 1
seed = 7
CONF

# f32 flash vs naive: the losses agree to f32 noise (the kernels differ by ~1e-7 relative)
LOSS_TOL=1e-4
for a in naive flash; do
    "$BIN" train "$TMP/small.conf" --max_iters=3 --attention=$a --out_dir="$TMP/$a" >"$TMP/$a.log" 2>&1 ||
        bad "train attention=$a: $(tail -3 "$TMP/$a.log")"
done
grep -q "plan == measured: yes, to the byte" "$TMP/flash.log" && ok || bad "flash: plan == measured"
grep -q "attention flash" "$TMP/flash.log" && ok || bad "flash: the plan header names the attention"
losses() { grep -o '"loss": [0-9.e+-]*' "$1" | awk '{print $2}'; }
if [ -n "$(losses "$TMP/naive/metrics.jsonl")" ] &&
    paste <(losses "$TMP/naive/metrics.jsonl") <(losses "$TMP/flash/metrics.jsonl") |
    awk -v tol=$LOSS_TOL 'NF != 2 || !($1 - $2 <= tol && $2 - $1 <= tol) { bad = 1 } END { exit bad }'; then
    ok
else
    bad "flash losses differ from naive's:"
    paste <(losses "$TMP/naive/metrics.jsonl") <(losses "$TMP/flash/metrics.jsonl")
fi

# eval and sample with the model naive trained
"$BIN" eval --init_from="$TMP/naive/model.bin" --data="$TMP/data/val.bin" --batch_size=2 \
    --block_size=70 --eval_batches=2 --device=cpu >"$TMP/en.txt" 2>&1 || bad "eval naive"
"$BIN" eval --init_from="$TMP/naive/model.bin" --data="$TMP/data/val.bin" --batch_size=2 \
    --block_size=70 --eval_batches=2 --device=cpu --attention=flash >"$TMP/ef.txt" 2>&1 ||
    bad "eval flash: $(cat "$TMP/ef.txt")"
ln=$(grep -o '^loss [0-9.]*' "$TMP/en.txt" | awk '{print $2}')
lf=$(grep -o '^loss [0-9.]*' "$TMP/ef.txt" | awk '{print $2}')
if [ -n "$ln" ] && [ -n "$lf" ] && awk -v a="$ln" -v b="$lf" -v tol=$LOSS_TOL 'BEGIN { exit !(a - b <= tol && b - a <= tol) }'; then
    ok
else
    bad "eval loss flash '$lf' vs naive '$ln'"
fi
"$BIN" sample --init_from="$TMP/naive/model.bin" --data_dir="$TMP/data" --prompt="To be" \
    --max_new_tokens=10 --num_samples=1 --temperature=0 --device=cpu --attention=flash \
    >"$TMP/s.txt" 2>&1 || bad "sample flash: $(cat "$TMP/s.txt")"
[ "$(head -c 5 "$TMP/s.txt")" = "To be" ] && ok || bad "sample flash does not start with the prompt"
# sampling holds no gradients and no optimizer state: its memory line says so
grep -Eq '^sample: arena peak by category: params [1-9][0-9]*, grads 0, optimizer 0,' "$TMP/s.txt" &&
    ok || bad "sample: no inference memory line: $(cat "$TMP/s.txt")"

# mem: the attention axis (the modes without optimizer_offload; tests/cli_offload_mem.sh has
# the offload toggle)
"$BIN" mem "$ROOT/configs/small_4070.conf" --device=cuda --compare >"$TMP/cmp.txt" 2>&1 || bad "mem --compare"
n=$(grep -cE '^(none|selective|full) +(naive|flash|cudnn) +off ' "$TMP/cmp.txt")
n_on=$(grep -cE '^(none|selective|full) +(naive|flash|cudnn) +on ' "$TMP/cmp.txt")
[ "$n" = 9 ] && [ "$n_on" = 9 ] && ok || bad "mem --compare on cuda: $n + $n_on rows, want 9 + 9 (3 recompute x 3 attention, optimizer_offload off and on)"
"$BIN" mem "$ROOT/configs/small_4070.conf" --device=cpu --compare >"$TMP/cmpc.txt" 2>&1 || bad "mem --compare cpu"
n=$(grep -cE '^(none|selective|full) +(naive|flash) ' "$TMP/cmpc.txt")
[ "$n" = 6 ] && ! grep -qE '^none +cudnn' "$TMP/cmpc.txt" && ok || bad "mem --compare on cpu: $n rows, want 6 and no cudnn"
check_json() { # file python-expression-over-d
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"
}
"$BIN" mem "$ROOT/configs/small_4070.conf" --device=cuda --compare --format=json >"$TMP/cmp.json" 2>&1 || bad "mem --compare json"
check_json "$TMP/cmp.json" "len([m for m in d['modes'] if not m['optimizer_offload']]) == 9 and all({'recompute', 'attention', 'peak_bytes', 'categories', 'attention_backward_extra_per_token'} <= set(m) for m in [m for m in d['modes'] if not m['optimizer_offload']]) and {(m['recompute'], m['attention']) for m in [m for m in d['modes'] if not m['optimizer_offload']]} == {(r, a) for r in ('none', 'selective', 'full') for a in ('naive', 'flash', 'cudnn')}" &&
    ok || bad "mem --compare json modes"
# recompute none: flash saves L x (B*NH*T*T f16 probabilities - B*NH*T f32 lse) of activations
check_json "$TMP/cmp.json" "[m['categories']['activations']['peak_bytes'] for m in [m for m in d['modes'] if not m['optimizer_offload']] if m['recompute'] == 'none' and m['attention'] == 'naive'][0] - [m['categories']['activations']['peak_bytes'] for m in [m for m in d['modes'] if not m['optimizer_offload']] if m['recompute'] == 'none' and m['attention'] == 'flash'][0] == 6 * (16 * 6 * 512 * 512 * 2 - 16 * 6 * 512 * 4)" &&
    ok || bad "mem --compare json: flash's saving is not L x (att - lse)"
"$BIN" mem "$ROOT/configs/small_4070.conf" --device=cuda --fit=12GiB --format=json >"$TMP/fit.json" 2>&1 || bad "mem --fit json"
check_json "$TMP/fit.json" "len([m for m in d['modes'] if not m['optimizer_offload']]) == 9 and all(m['max_batch_size'] > 0 and 'attention' in m for m in [m for m in d['modes'] if not m['optimizer_offload']]) and [m['max_batch_size'] for m in [m for m in d['modes'] if not m['optimizer_offload']] if m['recompute'] == 'none' and m['attention'] == 'flash'][0] > [m['max_batch_size'] for m in [m for m in d['modes'] if not m['optimizer_offload']] if m['recompute'] == 'none' and m['attention'] == 'naive'][0]" &&
    ok || bad "mem --fit json modes"

# refusals
"$BIN" mem --device=cuda --attention=flash --n_embd=130 --n_head=2 >"$TMP/r1.txt" 2>&1
[ $? = 2 ] && grep -q "head sizes up to 64" "$TMP/r1.txt" && ok || bad "cuda flash with head size 65 not refused: $(cat "$TMP/r1.txt")"
"$BIN" mem --device=cpu --attention=cudnn >"$TMP/r2.txt" 2>&1
[ $? = 2 ] && grep -q "cudnn needs --device=cuda" "$TMP/r2.txt" && ok || bad "cudnn on cpu not refused: $(cat "$TMP/r2.txt")"

cli_done
