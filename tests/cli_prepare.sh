#!/usr/bin/env bash
# cli_prepare.sh: `arenagpt prepare` from the command line: exit codes (0 ok, 1 data error,
# 2 usage error), the files it writes, and the llm.c shard header. $1 is the arenagpt binary.
set -uo pipefail
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail=0
expect() { # expected_rc description command...
    local want=$1 what=$2
    shift 2
    "$@" >"$tmp/out.txt" 2>"$tmp/err.txt"
    local rc=$?
    if [ "$rc" != "$want" ]; then
        echo "FAIL: $what: exit $rc, expected $want"
        cat "$tmp/out.txt" "$tmp/err.txt"
        fail=1
    else
        echo "ok: $what"
    fi
}

printf 'First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n' >"$tmp/in.txt"
expect 0 "char prepare" "$bin" prepare --input="$tmp/in.txt" --out="$tmp/char" --tokenizer=char
for f in train.bin val.bin tokenizer.bin; do
    [ -s "$tmp/char/$f" ] || { echo "FAIL: char: $f missing"; fail=1; }
done
# header: 20240520, 1, ntok; size = 1024 + 2 * ntok
read -r magic version ntok < <(od -A n -t d4 -N 12 "$tmp/char/train.bin")
size=$(stat -c %s "$tmp/char/train.bin")
if [ "$magic" != 20240520 ] || [ "$version" != 1 ] || [ "$size" != $((1024 + 2 * ntok)) ]; then
    echo "FAIL: train.bin header $magic $version $ntok for $size bytes"
    fail=1
fi
# a char is a token: train + val tokens = characters of the text
read -r _ _ nval < <(od -A n -t d4 -N 12 "$tmp/char/val.bin")
if [ $((ntok + nval)) != "$(wc -m <"$tmp/in.txt")" ]; then
    echo "FAIL: char tokens $ntok + $nval != characters"
    fail=1
fi
vocab=${ARENAGPT_VOCAB_DIR:-.cache/gpt2} # the Makefile's VOCAB_DIR
if [ -f "$vocab/encoder.json" ]; then
    expect 0 "gpt2 prepare" "$bin" prepare --input="$tmp/in.txt" --out="$tmp/gpt2" --vocab_dir="$vocab"
    [ -s "$tmp/gpt2/tokenizer_llmc.bin" ] || { echo "FAIL: gpt2: tokenizer_llmc.bin missing"; fail=1; }
elif [ "${ARENAGPT_REQUIRE_DATA:-0}" = 1 ]; then
    echo "FAIL: gpt2 prepare: no GPT-2 vocabulary at $vocab, although make test's set-up has run"
    fail=1
else
    echo "skip: gpt2 prepare (no GPT-2 vocabulary at $vocab; run scripts/setup.sh)"
fi
expect 2 "no --out" "$bin" prepare --input="$tmp/in.txt"
expect 2 "unknown tokenizer" "$bin" prepare --input="$tmp/in.txt" --out="$tmp/x" --tokenizer=bpe
expect 2 "val_fraction 1" "$bin" prepare --input="$tmp/in.txt" --out="$tmp/x" --val_fraction=1
expect 1 "missing input" "$bin" prepare --input="$tmp/nope.txt" --out="$tmp/x" --tokenizer=char
grep -q "nope.txt" "$tmp/err.txt" || { echo "FAIL: the error does not name the input"; fail=1; }
expect 1 "missing vocabulary" "$bin" prepare --input="$tmp/in.txt" --out="$tmp/x" --vocab_dir="$tmp/none"
exit $fail
