#!/usr/bin/env bash
# cli_config.sh: the command line's contract: --help texts, exit status 2 with a message that
# names the key and the value for bad config input, and `mem` planning the 4070 model (the
# counts of the report) without a GPU.
# Usage: tests/cli_config.sh path/to/arenagpt
set -u
BIN=${1:?usage: cli_config.sh ARENAGPT}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
check() { # name, then a command that must succeed
    local name=$1
    shift
    if "$@"; then pass=$((pass + 1)); else echo "cli_config: FAILED: $name"; fail=$((fail + 1)); fi
}
expect_exit() { # want_status want_text args... : runs BIN args, checks status and stderr+stdout
    local want=$1 text=$2
    shift 2
    "$BIN" "$@" >"$TMP/out" 2>&1
    local got=$?
    if [ "$got" != "$want" ] || ! grep -qF -- "$text" "$TMP/out"; then
        echo "cli_config: FAILED: arenagpt $* -> status $got (want $want), output:"
        sed 's/^/    /' "$TMP/out"
        fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
}

expect_exit 0 "commands:" --help
expect_exit 2 "usage: arenagpt" # no command
expect_exit 2 "unknown command 'trian'" trian
for cmd in train mem eval sample prepare; do
    expect_exit 0 "usage: arenagpt $cmd" "$cmd" --help
done
expect_exit 0 "--recompute" mem --help
expect_exit 2 "did you mean 'n_embd'" train --n_embed=384
expect_exit 2 "batch_size = 'lots': expected an integer" mem --batch_size=lots
expect_exit 2 "n_embd = 100 is not divisible by n_head = 3" mem --n_embd=100 --n_head=3
expect_exit 2 "vocab_size = 70000 is out of range" mem --vocab_size=70000
expect_exit 2 "'prompt' is not used by 'train'" train --prompt=hi
expect_exit 2 "cannot open config file 'nope.conf'" mem nope.conf
printf 'n_layer = 2\nn_layer = 3\n' >"$TMP/dup.conf"
expect_exit 2 "dup.conf:2: duplicate key 'n_layer'" mem "$TMP/dup.conf"
expect_exit 2 "overflow" mem --batch_size=16777216 --block_size=1048576 --n_head=1024 --n_embd=65536

# the 4070 model planned without a GPU: the report's counts
expect_exit 0 "30,135,168 total, 29.94M non-embedding" mem "$ROOT/configs/small_4070.conf" --device=cuda
expect_exit 0 "weight decay: 26 tensors, 30,130,176 parameters; no decay: 13 tensors, 4,992" \
    mem "$ROOT/configs/small_4070.conf" --device=cuda
expect_exit 0 "full" mem "$ROOT/configs/small_4070.conf" --device=cuda --compare
# grad_dtype=float32: f32 weight gradients on CUDA, twice the grads category (120540672 bytes)
expect_exit 0 "params f16, grads f32" mem "$ROOT/configs/small_4070.conf" --device=cuda --grad_dtype=float32
expect_exit 0 "  grads             120540672" mem "$ROOT/configs/small_4070.conf" --device=cuda --grad_dtype=float32
expect_exit 2 "grad_dtype = 'bf16'" mem --grad_dtype=bf16
expect_exit 0 "largest batch_size" mem "$ROOT/configs/small_4070.conf" --device=cuda --fit=12GiB
expect_exit 0 '"total": 30135168' mem "$ROOT/configs/small_4070.conf" --device=cuda --format=json
expect_exit 0 "kind,name,category" mem "$ROOT/configs/small_4070.conf" --format=csv
# a budget below the plan: mem says it does not fit (status 1) and names the allocation
expect_exit 1 "memory limit of 104857600" mem "$ROOT/configs/small_4070.conf" --device=cuda --memory_limit=100MiB
# more recompute never needs more memory
hw() { "$BIN" mem "$ROOT/configs/small_4070.conf" --device=cuda --recompute="$1" --format=json |
    sed -n 's/.*"high_water_bytes": \([0-9]*\).*/\1/p' | head -1; }
none=$(hw none) sel=$(hw selective) full=$(hw full)
check "recompute ordering ($none >= $sel >= $full > 0)" test "$none" -ge "$sel" -a "$sel" -ge "$full" -a "$full" -gt 0

echo "cli_config: $pass passed, $fail failed"
[ "$fail" = 0 ]
