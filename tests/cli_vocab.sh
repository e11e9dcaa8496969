#!/usr/bin/env bash
# cli_vocab.sh: the vocabulary comes from the data, as nanoGPT reads it from meta.pkl: with
# vocab_size unset, train and mem (given the data) size the model to the dataset's
# tokenizer.bin; a vocab_size below the data's is refused, one above it is the padded size;
# sample refuses a tokenizer larger than the model's vocabulary; without data, 50304. The
# prepare hint for a char dataset names --tokenizer=char.
# Usage: tests/cli_vocab.sh path/to/arenagpt
set -u
. "$(dirname "$0")/lib_cli.sh" cli_vocab "$1"

# a char dataset: 14 symbols
for i in $(seq 1 300); do echo "to be or not to be $((i % 3))"; done >"$TMP/text.txt"
"$BIN" prepare --input="$TMP/text.txt" --out="$TMP/char" --tokenizer=char >"$TMP/prep.log" 2>&1 || bad "prepare"
# 10 distinct characters and the newline
nsym=$(grep -o "(vocab [0-9]*)" "$TMP/prep.log" | grep -o "[0-9]*")
[ "$nsym" = 11 ] && ok || bad "prepare: vocabulary $nsym, want 11"
# nanoGPT's shakespeare_char shape, scaled down, with no vocab_size
cat >"$TMP/c.conf" <<CONF
data_dir = '$TMP/char'
device = 'cpu'
n_layer = 1
n_head = 2
n_embd = 16
block_size = 8
batch_size = 2
gradient_accumulation_steps = 1
eval_iters = 1
max_iters = 2
CONF
"$BIN" train "$TMP/c.conf" --out_dir="$TMP/o" >"$TMP/t.log" 2>&1 || bad "train: $(tail -2 "$TMP/t.log")"
grep -q "vocab_size $nsym\b" "$TMP/t.log" && ok || bad "train: the model's vocab_size is not the data's $nsym: $(grep '^model:' "$TMP/t.log")"
grep -q "tokenizer.bin" "$TMP/t.log" && ok || bad "train does not say where the vocabulary came from"
"$BIN" mem "$TMP/c.conf" >"$TMP/m.log" 2>&1 || bad "mem with data"
grep -q "vocab_size $nsym\b" "$TMP/m.log" && ok || bad "mem with data_dir: $(grep '^model:' "$TMP/m.log")"
"$BIN" mem "$TMP/c.conf" --data_dir="$TMP/nothing-here" >"$TMP/m2.log" 2>&1 || bad "mem without data"
grep -q "vocab_size 50304\b" "$TMP/m2.log" && ok || bad "mem without data: $(grep '^model:' "$TMP/m2.log")"
# smaller than the data: refused; larger: the padded size
"$BIN" train "$TMP/c.conf" --out_dir="$TMP/o2" --vocab_size=5 >"$TMP/t2.log" 2>&1
st=$?
[ "$st" = 2 ] && grep -q "vocab_size = 5" "$TMP/t2.log" && grep -q "$nsym" "$TMP/t2.log" && ok || bad "vocab_size below the data's: status $st: $(tail -2 "$TMP/t2.log")"
"$BIN" mem "$TMP/c.conf" --vocab_size=5 >"$TMP/m3.log" 2>&1
[ $? = 2 ] && ok || bad "mem: vocab_size below the data's not refused"
"$BIN" train "$TMP/c.conf" --out_dir="$TMP/o3" --vocab_size=64 >"$TMP/t3.log" 2>&1 || bad "vocab_size 64"
grep -q "vocab_size 64\b" "$TMP/t3.log" && ok || bad "padded vocab_size 64 not kept"
# sample: a tokenizer larger than the model's vocabulary is refused
"$BIN" prepare --input="$TMP/text.txt" --out="$TMP/bpe" --tokenizer=gpt2 >/dev/null 2>&1 || bad "prepare gpt2"
"$BIN" sample --init_from="$TMP/o" --data_dir="$TMP/bpe" --device=cpu --max_new_tokens=2 --num_samples=1 >"$TMP/s.log" 2>&1
st=$?
[ "$st" != 0 ] && grep -q "50257" "$TMP/s.log" && grep -q "vocab" "$TMP/s.log" && ok || bad "sample with a larger tokenizer: status $st: $(tail -2 "$TMP/s.log")"

# the prepare hint of a char dataset gives --tokenizer=char
( cd "$TMP" && "$BIN" train "$ROOT/configs/shakespeare_char.conf" --device=cpu --max_iters=0 >"$TMP/h.log" 2>&1 )
grep -q "prepare .*--tokenizer=char" "$TMP/h.log" && ok || bad "char dataset hint: $(cat "$TMP/h.log")"

cli_done
