#!/usr/bin/env bash
# cli_eval.sh: `arenagpt eval` against PyTorch. For each line of tests/fixtures/eval_expected.txt
# (written by scripts/make_fixture.py: the mean cross-entropy of a fixture model over the first
# N*B windows of eval_shard.bin, stride T, computed in float64), runs the binary on the same
# model file and shard and compares the printed `loss <value>`. Then the error paths: exit 1
# for model/data errors, 2 for usage errors, and the same output twice (deterministic).
# Usage: tests/cli_eval.sh path/to/arenagpt   (the Makefile's test-cli passes it)
set -u
BIN=${1:?usage: cli_eval.sh ARENAGPT}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FX=$ROOT/tests/fixtures
# fp32 against float64 on a loss of ~4 (test_fixture.c's LOSS_RTOL 1e-5 of it), plus the
# 6-decimal rounding of both printed values
TOL=5e-5
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
say() { echo "cli_eval: $*"; }

run_eval() { # case bias gelu B T N [more args] -> stdout of arenagpt eval
    local c=$1 bias=$2 gelu=$3 B=$4 T=$5 N=$6
    shift 6
    "$BIN" eval --init_from="$FX/${c}_model.bin" --data="$FX/eval_shard.bin" --bias="$bias" \
        --gelu="$gelu" --batch_size="$B" --block_size="$T" --eval_batches="$N" --device=cpu \
        --threads=1 "$@"
}

while read -r c bias gelu B T N want; do
    case "$c" in '#'*|'') continue ;; esac
    out=$(run_eval "$c" "$bias" "$gelu" "$B" "$T" "$N" 2>"$TMP/err")
    rc=$?
    got=$(sed -n 's/^loss \([0-9.]*\)$/\1/p' <<<"$out")
    if [ $rc -ne 0 ] || [ -z "$got" ]; then
        say "FAIL $c: exit $rc, output '$out', stderr: $(cat "$TMP/err")"
        fail=1
        continue
    fi
    if awk -v a="$got" -v e="$want" -v t="$TOL" 'BEGIN { d = a - e; if (d < 0) d = -d; exit !(d <= t) }'; then
        say "ok   $c B=$B T=$T N=$N: loss $got (PyTorch $want)"
    else
        say "FAIL $c B=$B T=$T N=$N: loss $got, PyTorch $want (tolerance $TOL)"
        fail=1
    fi
    # inference holds parameters, activations and workspace only: the memory line says so
    mem=$(grep '^eval: arena peak by category:' "$TMP/err")
    if grep -Eq 'params [1-9][0-9]*, grads 0, optimizer 0, activations [0-9]+, workspace [1-9]' \
        <<<"$mem"; then
        say "ok   $c: $mem"
    else
        say "FAIL $c: no inference memory line (params > 0, grads 0, optimizer 0) in: $(cat "$TMP/err")"
        fail=1
    fi
    # deterministic: a second run prints the same line
    again=$(run_eval "$c" "$bias" "$gelu" "$B" "$T" "$N" 2>/dev/null)
    if [ "$again" != "$out" ]; then
        say "FAIL $c: second run printed '$again', first '$out'"
        fail=1
    fi
done <"$FX/eval_expected.txt"

# the same tokens as a headerless nanoGPT .bin give the same loss
read -r c bias gelu B T N want < <(grep -v '^#' "$FX/eval_expected.txt" | head -1)
tail -c +1025 "$FX/eval_shard.bin" >"$TMP/nano.bin"
a=$(run_eval "$c" "$bias" "$gelu" "$B" "$T" "$N" 2>/dev/null)
b=$("$BIN" eval --init_from="$FX/${c}_model.bin" --data="$TMP/nano.bin" --data_format=nanogpt \
    --bias="$bias" --gelu="$gelu" --batch_size="$B" --block_size="$T" --eval_batches="$N" \
    --device=cpu --threads=1 2>/dev/null)
if [ -n "$a" ] && [ "$a" = "$b" ]; then
    say "ok   nanoGPT-format shard: $b"
else
    say "FAIL nanoGPT-format shard: '$b', llm.c shard: '$a'"
    fail=1
fi

expect_exit() { # want_rc message_part description args...
    local want=$1 part=$2 what=$3
    shift 3
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ $rc -ne "$want" ]; then
        say "FAIL $what: exit $rc, expected $want; stderr: $(cat "$TMP/err")"
        fail=1
    elif ! grep -qF -- "$part" "$TMP/err"; then
        say "FAIL $what: exit $rc but stderr lacks '$part': $(cat "$TMP/err")"
        fail=1
    else
        say "ok   $what: exit $rc: $(head -c 200 "$TMP/err")"
    fi
}

M=$FX/nobias_tanh_model.bin
S=$FX/eval_shard.bin
E=("$BIN" eval --batch_size=2 --eval_batches=1 --block_size=8 --device=cpu)
X=("$BIN" eval --device=cpu) # for the cases that set the sizes themselves
expect_exit 1 "cannot open model file" "missing model file" "${E[@]}" --init_from="$TMP/none.bin" --data="$S"
expect_exit 1 "no such file" "missing shard" "${E[@]}" --init_from="$M" --data="$TMP/none.bin"
expect_exit 1 "12 windows of block_size 16 (200 tokens), but the evaluation needs 400" "shard too short" "${X[@]}" \
    --init_from="$M" --data="$S" --block_size=16 --batch_size=4 --eval_batches=100
head -c 1000 "$M" >"$TMP/trunc.bin"
expect_exit 1 "shorter than the 1024-byte" "model file shorter than its header" "${E[@]}" \
    --init_from="$TMP/trunc.bin" --data="$S"
head -c 20000 "$M" >"$TMP/trunc.bin"
expect_exit 1 "truncated" "truncated model" "${E[@]}" --init_from="$TMP/trunc.bin" --data="$S"
expect_exit 1 "bad magic 20240326" "model file given as shard" "${E[@]}" \
    --init_from="$M" --data="$M"
expect_exit 1 "bias=False" "bias model read as bias-free" "${E[@]}" \
    --init_from="$FX/bias_tanh_model.bin" --data="$S" --bias=False
# a shard whose tokens reach beyond the padded model's V = 57 (they are drawn below 57, so
# rewrite one token to 60: a valid row of wte (Vp = 64) but not a real token)
cp "$S" "$TMP/big.bin"
printf '\x3c\x00' | dd of="$TMP/big.bin" bs=1 seek=1030 conv=notrunc status=none
expect_exit 1 "token 60 at position 3 is >= vocab_size 57" "token >= V" "${E[@]}" \
    --init_from="$FX/padvocab_nobias_tanh_model.bin" --data="$TMP/big.bin"
expect_exit 2 "exceeds the model's maxT 16" "block_size above maxT" "${X[@]}" --init_from="$M" \
    --data="$S" --block_size=32 --batch_size=1 --eval_batches=1
expect_exit 2 "needs a model file" "no model file" "${E[@]}" --data="$S"
expect_exit 2 "no shard given" "no shard" "${E[@]}" --init_from="$M"

exit $fail
