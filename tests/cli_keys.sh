#!/usr/bin/env bash
# cli_keys.sh: every key --help lists acts, refuses clearly, or is marked as a nanoGPT no-op:
# defaults printed as written (6e-4), the recompute help naming all that selective drops,
# dtype acting on the layout (float16 on cuda) and refusing what no backend computes,
# model_dtype refusing a model file dtype llm.c has not (float16) and commands it is not for, the
# `gpu` key choosing a GPU table entry (an unknown one lists the valid keys).
# Usage: tests/cli_keys.sh path/to/arenagpt
set -u
BIN=${1:?usage: cli_keys.sh ARENAGPT}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "cli_keys: FAILED: $*"; fail=$((fail + 1)); }
expect_exit() { # want_status want_text args...
    local want=$1 text=$2
    shift 2
    "$BIN" "$@" >"$TMP/out" 2>&1
    local got=$?
    if [ "$got" != "$want" ] || ! grep -qF -- "$text" "$TMP/out"; then
        bad "arenagpt $* -> status $got (want $want and '$text'), output:"
        sed 's/^/    /' "$TMP/out" | head -20
    else
        ok
    fi
}

# defaults as written in nanoGPT's train.py
"$BIN" train --help >"$TMP/help" 2>&1
for kv in "learning_rate 6e-4" "min_lr 6e-5" "weight_decay 0.1" "beta2 0.95" "grad_clip 1.0"; do
    set -- $kv
    grep -E -- "--$1 .*\(default $2\)" "$TMP/help" >/dev/null && ok || bad "--help: $1 default not printed as $2: $(grep -- "--$1 " "$TMP/help")"
done
grep -q '0000000' "$TMP/help" && bad "--help prints a float with binary noise: $(grep '0000000' "$TMP/help")" || ok
# keys kept only so nanoGPT's config files load say so
for k in compile wandb_log wandb_project wandb_run_name dropout; do
    grep -- "--$k " "$TMP/help" | grep -q "accepted for nanoGPT configs, no effect" && ok || bad "--help: $k not marked as a nanoGPT no-op"
done
# selective recompute: everything it drops
"$BIN" mem --help | grep -- "--recompute " | grep -q "attention probabilities" && ok || bad "recompute help omits the attention probabilities"

# dtype: float16 and bfloat16 are CUDA layouts (bf16's gradients f32 unless grad_dtype says);
# float32 has no CUDA backend; the CPU has no bfloat16
expect_exit 0 "params f16" mem "$ROOT/configs/tiny.conf" --device=cuda --dtype=float16
expect_exit 2 "dtype = float32" mem "$ROOT/configs/tiny.conf" --device=cuda --dtype=float32
expect_exit 0 "dtype bfloat16, mixed precision (params bf16, grads f32, activations bf16" \
    mem "$ROOT/configs/tiny.conf" --device=cuda --dtype=bfloat16
expect_exit 0 "params bf16, grads bf16" mem "$ROOT/configs/tiny.conf" --device=cuda \
    --dtype=bfloat16 --grad_dtype=bfloat16
expect_exit 2 "dtype = bfloat16 with device = cpu" mem "$ROOT/configs/tiny.conf" --device=cpu \
    --dtype=bfloat16
expect_exit 2 "grad_dtype = float16 with dtype = bfloat16" mem "$ROOT/configs/tiny.conf" \
    --device=cuda --dtype=bfloat16 --grad_dtype=float16
expect_exit 0 "params f32" mem "$ROOT/configs/tiny.conf" --device=cpu --dtype=float32
# model_dtype: the model files train and export write, float32 or bfloat16 (no float16 file)
expect_exit 2 "model_dtype = 'float16': expected one of float32, bfloat16" train \
    "$ROOT/configs/tiny.conf" --model_dtype=float16
expect_exit 2 "'model_dtype' is not used by 'mem' (it belongs to: train, export)" mem \
    "$ROOT/configs/tiny.conf" --model_dtype=bfloat16

# gpu: one of the table's keys
expect_exit 2 "rtx4070" mem "$ROOT/configs/tiny.conf" --gpu=rtx9999
expect_exit 2 "gpu = 'rtx9999'" mem "$ROOT/configs/tiny.conf" --gpu=rtx9999
"$BIN" mem --help | grep -- "--gpu " | grep -q "rtx4070" && ok || bad "mem --help: no gpu key with its default"

echo "cli_keys: $pass passed, $fail failed"
[ "$fail" = 0 ]
