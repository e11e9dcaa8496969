#!/usr/bin/env bash
# cli_load.sh: loading what the user points at. `sample` and `eval` take a run directory with no
# config file: the model's shape from model.bin, bias, gelu, block_size and the data from the
# run's stored config. model_dtype = bfloat16 writes llm.c's version 5 model.bin (bf16 values,
# half the bytes), which eval and sample load. Model paths that are not llm.c model files are
# named: a training state,
# a PyTorch zip checkpoint, a directory without a model, a pretrained model name absent from
# the Hugging Face cache.
# Usage: tests/cli_load.sh path/to/arenagpt
set -u
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "cli_load: FAILED: $*"; fail=$((fail + 1)); }
expect() { # want_status want_text args...
    local want=$1 text=$2
    shift 2
    (cd "$TMP/elsewhere" && "$BIN" "$@") >"$TMP/out" 2>&1
    local got=$?
    if [ "$got" != "$want" ] || ! grep -qF -- "$text" "$TMP/out"; then
        bad "arenagpt $* -> status $got (want $want and '$text'):"
        sed 's/^/    /' "$TMP/out" | head -8
    else
        ok
    fi
}
mkdir -p "$TMP/elsewhere"
for i in $(seq 1 400); do echo "to be or not to be, that is the question $((i % 5))"; done >"$TMP/text.txt"
"$BIN" prepare --input="$TMP/text.txt" --out="$TMP/data" --tokenizer=char >/dev/null 2>&1 || bad "prepare"
# a run whose bias, gelu and block_size differ from the defaults
cat >"$TMP/run.conf" <<CONF
data_dir = '$TMP/data'
device = 'cpu'
n_layer = 1
n_head = 2
n_embd = 16
block_size = 16
bias = True
gelu = 'erf'
batch_size = 4
gradient_accumulation_steps = 1
max_iters = 4
eval_interval = 4
eval_iters = 1
CONF
"$BIN" train "$TMP/run.conf" --out_dir="$TMP/run" >"$TMP/train.log" 2>&1 || bad "train: $(tail -2 "$TMP/train.log")"

# sample and eval from the run directory alone, from another working directory
expect 0 "to be" sample --init_from="$TMP/run" --device=cpu --prompt="to be" --max_new_tokens=5 --num_samples=1
expect 0 "loss " eval --init_from="$TMP/run" --device=cpu --eval_batches=2 --batch_size=2
explicit=$(cd "$TMP/elsewhere" && "$BIN" eval --init_from="$TMP/run/model.bin" --data="$TMP/data/val.bin" \
    --block_size=16 --bias=True --gelu=erf --device=cpu --eval_batches=2 --batch_size=2 2>/dev/null)
[ -n "$explicit" ] && [ "$explicit" = "$(grep '^loss' "$TMP/out")" ] && ok || bad "eval from the run directory ($(grep '^loss' "$TMP/out")) differs from the explicit form ($explicit)"

# model_dtype = bfloat16: the same run's model.bin as llm.c's version 5, 2 bytes a value
"$BIN" train "$TMP/run.conf" --out_dir="$TMP/run16" --model_dtype=bfloat16 >"$TMP/train16.log" 2>&1 \
    || bad "train --model_dtype=bfloat16: $(tail -2 "$TMP/train16.log")"
grep -q "model.bin (llm.c GPT-2 format, version 5, bf16)" "$TMP/train16.log" && ok || bad "train did not say version 5"
header=$(od -An -t d4 -N 32 "$TMP/run16/model.bin" | tr -s ' ' | sed 's/^ //')
[ "$header" = "$(od -An -t d4 -N 32 "$TMP/run/model.bin" | tr -s ' ' | sed 's/^ //' | sed 's/^20240326 3 /20240326 5 /')" ] \
    && case "$header" in "20240326 5 "*) true ;; *) false ;; esac && ok || bad "bf16 model.bin header: $header"
s32=$(stat -c %s "$TMP/run/model.bin")
s16=$(stat -c %s "$TMP/run16/model.bin")
[ $((s16 - 1024)) -eq $(((s32 - 1024) / 2)) ] && ok || bad "bf16 model.bin is $s16 bytes, fp32 $s32"
expect 0 "to be" sample --init_from="$TMP/run16" --device=cpu --prompt="to be" --max_new_tokens=5 --num_samples=1
expect 0 "loss " eval --init_from="$TMP/run16" --device=cpu --eval_batches=2 --batch_size=2
expect 0 "loss " eval --init_from="$TMP/run16/model.bin" --data="$TMP/data/val.bin" --block_size=16 \
    --bias=True --gelu=erf --device=cpu --eval_batches=2 --batch_size=2
expect 2 "model_dtype = 'float16': expected one of float32, bfloat16" train "$TMP/run.conf" \
    --out_dir="$TMP/run_x" --model_dtype=float16

# nanoGPT's sample.py way: init_from = resume is the run in out_dir
expect 0 "to be" sample --init_from=resume --out_dir="$TMP/run" --device=cpu --prompt="to be" --max_new_tokens=5 --num_samples=1
expect 2 "exceeds the model's maxT 16" sample --init_from="$TMP/run" --device=cpu --block_size=32

# paths that are not model files
state=$(ls "$TMP/run"/state_*.bin | tail -1)
expect 2 "a training state" sample --init_from="$state" --device=cpu
expect 2 "pass the run directory" eval --init_from="$state" --device=cpu
printf 'PK\003\004rest-of-a-zip' >"$TMP/ckpt.pt"
expect 2 "a PyTorch zip checkpoint, not supported" sample --init_from="$TMP/ckpt.pt" --device=cpu
expect 2 "a PyTorch zip checkpoint, not supported" train --init_from="$TMP/ckpt.pt" --data_dir="$TMP/data" --device=cpu
mkdir -p "$TMP/empty"
expect 2 "no model.bin" sample --init_from="$TMP/empty" --device=cpu
# nanoGPT's names come from the local Hugging Face cache only (tests/cli_hf.sh finds one): an
# empty cache prints the command that fetches them
mkdir -p "$TMP/home"
HOME="$TMP/home" HF_HOME= HF_HUB_CACHE= XDG_CACHE_HOME= \
    expect 2 "hf download gpt2 config.json model.safetensors vocab.json merges.txt" sample --init_from=gpt2 --device=cpu
HOME="$TMP/home" HF_HOME= HF_HUB_CACHE= XDG_CACHE_HOME= \
    expect 2 "not in the local Hugging Face cache" train --init_from=gpt2-medium --data_dir="$TMP/data" --device=cpu

echo "cli_load: $pass passed, $fail failed"
[ "$fail" = 0 ]
