#!/usr/bin/env bash
# mem_golden.sh: the memory plans a user sees, pinned byte for byte. For each config in
# CONFIGS x recompute none/selective/full x device cpu/cuda with attention=naive (plus
# attention=cudnn on the cuda layout, attention=flash on both, and the cuda layout in
# bfloat16 with flash), `arenagpt mem CONFIG --format=json` is
# tests/golden/mem/<config>_<device>[_bf16][_<attention>]_<mode>.json (naive is named: the
# cuda layout's default attention is flash, pinned by its own files).
# That JSON holds the tensors live at the peak; the order of every allocation and release is
# pinned too, by the trace (--trace_file) of tiny with 2 layers per device and mode
# (trace_<device>_<mode>.json). Default: compares the binary's output with those files (exit 1
# on any difference, with the diff). --update rewrites them: a change to what `mem` reports (a
# tensor name, a size, an order) must be on purpose, and committed with the change.
# Usage: scripts/mem_golden.sh path/to/arenagpt [--update]
set -u
BIN=${1:?usage: mem_golden.sh ARENAGPT [--update]}
UPDATE=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=$ROOT/tests/golden/mem
CONFIGS="tiny small_4070 gpt2_124m"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
n=0

compare() { # name.json (produced in $TMP), description
    n=$((n + 1))
    if [ "$UPDATE" = --update ]; then
        cp "$TMP/$1" "$DIR/$1"
    elif ! cmp -s "$DIR/$1" "$TMP/$1"; then
        echo "mem_golden: $1 differs from tests/golden/mem/$1 ($2):"
        diff "$DIR/$1" "$TMP/$1" | head -20
        fail=1
    fi
}

plan() { # name, then the arguments of `arenagpt mem`; the JSON report goes to $TMP/name.json
    local name=$1
    shift
    if ! "$BIN" mem "$@" --format=json >"$TMP/$name.json" 2>"$TMP/err"; then
        echo "mem_golden: arenagpt mem $* failed:"
        cat "$TMP/err"
        fail=1
        return 1
    fi
}

for rc in none selective full; do
    for dev in cpu cuda; do
        name=trace_${dev}_${rc}
        plan "$name.report" "$ROOT/configs/tiny.conf" --n_layer=2 --device=$dev --recompute=$rc \
            --attention=naive --trace_file="$TMP/$name.json" &&
            compare "$name.json" "mem tiny --n_layer=2 --trace_file"
    done
done
for cfg in $CONFIGS; do
    for rc in none selective full; do
        for dev in cpu cuda; do
            name=${cfg}_${dev}_${rc}
            plan "$name" "$ROOT/configs/$cfg.conf" --device=$dev --recompute=$rc --attention=naive &&
                compare "$name.json" "mem $cfg --device=$dev --recompute=$rc --attention=naive"
        done
        # the fused-attention plan (f32 log-sum-exp instead of the T x T probabilities)
        name=${cfg}_cuda_cudnn_${rc}
        plan "$name" "$ROOT/configs/$cfg.conf" --device=cuda --recompute=$rc --attention=cudnn &&
            compare "$name.json" "mem $cfg --device=cuda --recompute=$rc --attention=cudnn"
        # our fused kernels: the same saved set as cudnn, their own backward scratch
        for dev in cpu cuda; do
            name=${cfg}_${dev}_flash_${rc}
            plan "$name" "$ROOT/configs/$cfg.conf" --device=$dev --recompute=$rc --attention=flash &&
                compare "$name.json" "mem $cfg --device=$dev --recompute=$rc --attention=flash"
        done
        # bfloat16: the float16 bytes in bf16, with f32 weight gradients (its default)
        name=${cfg}_cuda_bf16_flash_${rc}
        plan "$name" "$ROOT/configs/$cfg.conf" --device=cuda --dtype=bfloat16 --recompute=$rc \
            --attention=flash &&
            compare "$name.json" "mem $cfg --device=cuda --dtype=bfloat16 --recompute=$rc --attention=flash"
    done
done
if [ "$UPDATE" != --update ]; then
    # every committed file is still produced (none left over from a removed case)
    for f in "$DIR"/*.json; do
        [ -e "$TMP/$(basename "$f")" ] || { echo "mem_golden: stale $f"; fail=1; }
    done
fi
if [ $fail -eq 0 ]; then
    if [ "$UPDATE" = --update ]; then
        echo "mem_golden: $n files written to tests/golden/mem/"
    else
        echo "mem_golden: $n plans byte-identical to tests/golden/mem/"
    fi
fi
exit $fail
