#!/usr/bin/env bash
# sim_kernel_times.sh: the per-kernel-family timer (scripts/kernel_times.c, what gpu_check.sh's
# kernels group runs on a card) runs every family on the simulated CUDA backend at a tiny shape
# without a device error or a sanitizer report, prints one timed line per family, and refuses
# a bad --reps. The times themselves are simulator times and mean nothing.
# Usage: tests/sim_kernel_times.sh path/to/build/sim/arenagpt   (make test-sim runs it; the
# timer is build/sim/scripts/kernel_times, next to the binary's folder)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KT=$(cd "$(dirname "$1")" && pwd)/scripts/kernel_times
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "sim_kernel_times: FAILED: $*"; fail=$((fail + 1)); }
[ -x "$KT" ] || { echo "sim_kernel_times: $KT missing (make sim builds it)"; exit 1; }

"$KT" "$ROOT/configs/tiny.conf" --device=cuda --reps=1 --batch_size=2 --block_size=16 \
    --n_layer=1 --vocab_size=512 --threads=1 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc = 0 ] && ok || bad "exit $rc: $(tail -3 "$TMP/err")"
grep -q '^shapes B 2 T 16 C 128 NH 4 L 1 Vp 512 loss_chunk 32 device cuda reps 1$' "$TMP/out" && ok ||
    bad "no shapes line: $(head -1 "$TMP/out")"
for f in encoder layernorm matmul gelu attention_naive attention_flash loss_head optimizer_wte; do
    grep -Eq "^family $f ms [0-9]+\.[0-9]{3} \(host clock\)$" "$TMP/out" && ok || bad "no timed line for $f"
done
grep -qi "error\|AddressSanitizer" "$TMP/err" && bad "stderr: $(grep -i 'error' "$TMP/err" | head -2)" || ok

"$KT" "$ROOT/configs/tiny.conf" --device=cuda --reps=0 >"$TMP/out0" 2>&1
[ $? = 2 ] && grep -q -- "--reps=0" "$TMP/out0" && ok || bad "--reps=0 not refused: $(cat "$TMP/out0")"
echo "sim_kernel_times: $pass passed, $fail failed"
[ "$fail" = 0 ]
