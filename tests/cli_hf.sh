#!/usr/bin/env bash
# cli_hf.sh: Hugging Face GPT-2 weights through the CLI. The fixtures (scripts/make_fixture.py):
# tests/fixtures/hf/{f32,f16,bf16,sharded}/ hold one bias=True model in Hugging Face's names and
# Conv1D layout, hf_bias_tanh_model.bin the same weights as an llm.c model file, and
# hf_expected.txt the loss of an independent float64 PyTorch forward (Hugging Face's layout)
# for each folder. Checked: eval of each folder against PyTorch; F32 and sharded equal to the
# llm.c file exactly (the printed loss, and the exported bytes); export then import is
# bit-identical; nanoGPT's init_from=gpt2 found in a fake Hugging Face cache (HF_HUB_CACHE,
# HF_HOME) and the fetch command when absent; shape keys that contradict the weights refused;
# mem plans the model init_from names; train fine-tunes from the weights. llm.c's bf16 model
# file (llmc_bf16_model.bin, version 5: the same weights rounded to bf16 by PyTorch) evaluates
# exactly as hf/bf16, and so does export --model_dtype=bfloat16 (BF16) of the F32 weights.
# Usage: tests/cli_hf.sh path/to/arenagpt
set -u
. "$(dirname "$0")/lib_cli.sh" cli_hf "$1"
FX=$ROOT/tests/fixtures
# fp32 against float64 on a loss of ~4, plus the 6-decimal rounding of both printed values
# (as tests/cli_eval.sh)
TOL=5e-5

run_eval() { # init_from B T N -> the printed loss
    "$BIN" eval --init_from="$1" --data="$FX/eval_shard.bin" --batch_size="$2" --block_size="$3" \
        --eval_batches="$4" --device=cpu --threads=1 "${@:5}" 2>"$TMP/err" | sed -n 's/^loss //p'
}
expect() { # want_status want_text args...
    local want=$1 text=$2
    shift 2
    "$BIN" "$@" >"$TMP/out" 2>&1
    local got=$?
    if [ "$got" != "$want" ] || ! grep -qF -- "$text" "$TMP/out"; then
        bad "arenagpt $* -> status $got (want $want and '$text'): $(head -c 600 "$TMP/out")"
    else
        ok
    fi
}

# 1. each folder against PyTorch; F32 and sharded against the llm.c file, exactly
while read -r folder B T N want; do
    case "$folder" in '#'*|'') continue ;; esac
    got=$(run_eval "$FX/hf/$folder" "$B" "$T" "$N")
    if [ -z "$got" ]; then
        bad "eval hf/$folder: no loss: $(cat "$TMP/err")"
        continue
    fi
    awk -v a="$got" -v e="$want" -v t="$TOL" 'BEGIN { d = a - e; if (d < 0) d = -d; exit !(d <= t) }' \
        && ok || bad "hf/$folder B=$B T=$T N=$N: loss $got, PyTorch $want (tolerance $TOL)"
    if [ "$folder" = f32 ] || [ "$folder" = sharded ]; then
        llmc=$(run_eval "$FX/hf_bias_tanh_model.bin" "$B" "$T" "$N" --bias=True)
        [ -n "$llmc" ] && [ "$got" = "$llmc" ] && ok || bad "hf/$folder T=$T: loss $got, llm.c file $llmc"
    fi
    if [ "$folder" = bf16 ]; then # the same bf16 values in llm.c's version 5
        llmc=$(run_eval "$FX/llmc_bf16_model.bin" "$B" "$T" "$N" --bias=True)
        [ -n "$llmc" ] && [ "$got" = "$llmc" ] && ok || bad "hf/bf16 T=$T: loss $got, llm.c bf16 file $llmc"
    fi
done <"$FX/hf_expected.txt"
grep -q "bias True, gelu tanh" "$TMP/err" && ok || bad "eval did not take bias and gelu from the weights"

# 2. export then import: bit-identical, whatever the source
"$BIN" export --init_from="$FX/hf/f32" --out="$TMP/e1" >"$TMP/out" 2>&1 || bad "export: $(cat "$TMP/out")"
"$BIN" export --init_from="$TMP/e1" --out="$TMP/e2" >/dev/null 2>&1 || bad "export of an export"
"$BIN" export --init_from="$FX/hf_bias_tanh_model.bin" --bias=True --out="$TMP/e3" >/dev/null 2>&1 || bad "export llm.c"
"$BIN" export --init_from="$FX/hf/sharded" --out="$TMP/e4" >/dev/null 2>&1 || bad "export sharded"
for e in e2 e3 e4; do
    cmp -s "$TMP/e1/model.safetensors" "$TMP/$e/model.safetensors" && ok || bad "export $e differs from e1"
done
[ "$(run_eval "$TMP/e1" 2 16 3)" = "$(run_eval "$FX/hf/f32" 2 16 3)" ] && ok || bad "the export evaluates differently"
# model_dtype = bfloat16: BF16 tensors, the values PyTorch's rounding gives (hf/bf16's)
"$BIN" export --init_from="$FX/hf/f32" --out="$TMP/e5" --model_dtype=bfloat16 >"$TMP/out" 2>&1 \
    && grep -q '"dtype":"BF16"' "$TMP/e5/model.safetensors" && ! grep -q '"dtype":"F32"' "$TMP/e5/model.safetensors" \
    && grep -q '"torch_dtype":.*"bfloat16"' "$TMP/e5/config.json" && ok || bad "export bf16: $(cat "$TMP/out")"
[ "$(run_eval "$TMP/e5" 2 16 3)" = "$(run_eval "$FX/hf/bf16" 2 16 3)" ] && ok || bad "the bf16 export evaluates unlike hf/bf16"
expect 2 "model_dtype = 'float16': expected one of float32, bfloat16" export --init_from="$FX/hf/f32" \
    --out="$TMP/e6" --model_dtype=float16
grep -q '"activation_function":[[:space:]]*"gelu_new"' "$TMP/e1/config.json" && ok || bad "config.json: $(cat "$TMP/e1/config.json")"
ls "$TMP/e1" | grep -q tmp && bad "a temporary file was left in the export folder" || ok
expect 2 "--out=DIR is required" export --init_from="$FX/hf/f32"
expect 2 "export needs a model" export --out="$TMP/e5"

# 3. nanoGPT's names: the local Hugging Face cache, never the network
snap=$TMP/hub/models--gpt2/snapshots/0123abcd
mkdir -p "$snap" "$TMP/hub/models--gpt2/refs" "$TMP/home"
cp "$FX/hf/f32/config.json" "$FX/hf/f32/model.safetensors" "$snap/"
echo 0123abcd >"$TMP/hub/models--gpt2/refs/main"
want=$(run_eval "$FX/hf/f32" 2 16 3)
got=$(HOME="$TMP/home" HF_HUB_CACHE="$TMP/hub" run_eval gpt2 2 16 3)
[ -n "$got" ] && [ "$got" = "$want" ] && ok || bad "init_from=gpt2 in HF_HUB_CACHE: loss '$got' (want $want): $(cat "$TMP/err")"
mkdir -p "$TMP/hfhome"
mv "$TMP/hub" "$TMP/hfhome/hub"
got=$(HOME="$TMP/home" HF_HUB_CACHE= HF_HOME="$TMP/hfhome" run_eval gpt2 2 16 3)
[ "$got" = "$want" ] && ok || bad "init_from=gpt2 in HF_HOME/hub: loss '$got': $(cat "$TMP/err")"
HOME="$TMP/home" HF_HUB_CACHE= HF_HOME="$TMP/hfhome" XDG_CACHE_HOME= \
    expect 2 "hf download gpt2-xl config.json model.safetensors vocab.json merges.txt" eval --init_from=gpt2-xl --data="$FX/eval_shard.bin" --device=cpu

# sample's tokenizer: a Hugging Face folder's own vocab.json + merges.txt (GPT-2's files are
# encoder.json and vocab.bpe), checked against the model's vocabulary (57 here: refused)
VOCAB=${ARENAGPT_VOCAB_DIR:-$ROOT/.cache/gpt2}
if [ -f "$VOCAB/encoder.json" ]; then
    mkdir -p "$TMP/withvocab"
    cp "$FX/hf/f32/config.json" "$FX/hf/f32/model.safetensors" "$TMP/withvocab/"
    cp "$VOCAB/encoder.json" "$TMP/withvocab/vocab.json"
    cp "$VOCAB/vocab.bpe" "$TMP/withvocab/merges.txt"
    expect 1 "withvocab/vocab.json has 50257 tokens, more than the model's vocabulary (vocab_size 57" \
        sample --init_from="$TMP/withvocab" --device=cpu --max_new_tokens=2
fi

# 4. the shape comes from the weights: contradicting keys refused, naming both
expect 2 "n_layer = 3 (the command line) contradicts the weights" mem --init_from="$FX/hf/f32" --n_layer=3
expect 2 "n_head = 6 (the command line) contradicts the weights" mem --init_from="$FX/hf/f32" --n_head=6
expect 2 "n_embd = 24 (the command line) contradicts the weights" mem --init_from="$FX/hf/f16" --n_embd=24
expect 2 "vocab_size = 60 (the command line) contradicts the weights" mem --init_from="$FX/hf/f16" --vocab_size=60
expect 0 "n_layer 2, n_head 3, n_embd 18" mem --init_from="$FX/hf/f16" --n_layer=2 --vocab_size=57 --device=cpu
expect 0 "n_layer 2, n_head 3, n_embd 18" mem --init_from="$FX/hf/f16" --n_layer=2 --vocab_size=64 --device=cpu
expect 2 "exceeds the model's n_positions 16" mem --init_from="$FX/hf/f32" --block_size=32
expect 2 "gelu = erf contradicts" mem --init_from="$FX/hf/f32" --gelu=erf
expect 2 "dropout = 0.1 is not supported" train --init_from="$FX/hf/f32" --dropout=0.1
expect 2 "use --block_size=16 or less" eval --init_from="$FX/hf/f32/model.safetensors" --data="$FX/eval_shard.bin" --device=cpu --block_size=99
"$BIN" mem --init_from="$FX/hf/f32" --block_size=8 --batch_size=2 --format=json --device=cpu >"$TMP/mem.json" 2>&1 \
    && grep -q '"n_layer": 2, "n_head": 3, "n_embd": 18, "block_size": 8, "vocab_size": 64, "bias": true' "$TMP/mem.json" \
    && ok || bad "mem --init_from: $(head -c 400 "$TMP/mem.json")"

# 5. fine-tuning: train starts from the weights (its first eval equals eval's loss on that data)
for i in $(seq 1 300); do echo "abc def ghi $((i % 7))"; done >"$TMP/text.txt"
"$BIN" prepare --input="$TMP/text.txt" --out="$TMP/data" --tokenizer=char >/dev/null 2>&1 || bad "prepare"
"$BIN" train --init_from="$FX/hf/bf16" --data_dir="$TMP/data" --out_dir="$TMP/run" --device=cpu \
    --max_iters=2 --eval_interval=1 --eval_iters=1 --batch_size=2 --block_size=8 --threads=1 \
    >"$TMP/train.out" 2>&1 && grep -q "initialised from $FX/hf/bf16" "$TMP/train.out" && ok \
    || bad "train from hf/bf16: $(tail -5 "$TMP/train.out")"
"$BIN" export --init_from="$TMP/run" --out="$TMP/ft" >/dev/null 2>&1 && [ -s "$TMP/ft/model.safetensors" ] \
    && ok || bad "export of the fine-tuned run"
"$BIN" train --init_from="$FX/llmc_bf16_model.bin" --bias=True --data_dir="$TMP/data" --out_dir="$TMP/run5" \
    --device=cpu --max_iters=2 --eval_interval=1 --eval_iters=1 --batch_size=2 --block_size=8 --threads=1 \
    >"$TMP/train5.out" 2>&1 && grep -q "initialised from $FX/llmc_bf16_model.bin" "$TMP/train5.out" && ok \
    || bad "train from llmc_bf16_model.bin: $(tail -5 "$TMP/train5.out")"
cli_done
