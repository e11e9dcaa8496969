#!/usr/bin/env bash
# mem_golden.sh: the memory plans a user sees, pinned byte for byte. For each config in
# CONFIGS x recompute none/selective/full x device cpu/cuda (plus attention=cudnn on the cuda
# layout), writes `arenagpt mem CONFIG --format=json` to tests/golden/mem/<name>.json
# (--update) or compares the binary's output with those files (default; exit 1 on any
# difference, with the diff). A change to what `mem` reports (a tensor name, a size, an
# order) shows here; when it is on purpose, rerun with --update and commit the new files.
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

check() { # name, then the arguments of `arenagpt mem`
    local name=$1
    shift
    if ! "$BIN" mem "$@" --format=json >"$TMP/$name.json" 2>"$TMP/err"; then
        echo "mem_golden: arenagpt mem $* failed:"
        cat "$TMP/err"
        fail=1
        return
    fi
    n=$((n + 1))
    if [ "$UPDATE" = --update ]; then
        cp "$TMP/$name.json" "$DIR/$name.json"
    elif ! cmp -s "$DIR/$name.json" "$TMP/$name.json"; then
        echo "mem_golden: $name differs from tests/golden/mem/$name.json (arenagpt mem $*):"
        diff "$DIR/$name.json" "$TMP/$name.json" | head -20
        fail=1
    fi
}

for cfg in $CONFIGS; do
    for rc in none selective full; do
        for dev in cpu cuda; do
            check "${cfg}_${dev}_${rc}" "$ROOT/configs/$cfg.conf" --device=$dev --recompute=$rc
        done
        # the fused-attention plan (f32 log-sum-exp instead of the T x T probabilities)
        check "${cfg}_cuda_cudnn_${rc}" "$ROOT/configs/$cfg.conf" --device=cuda --recompute=$rc \
            --attention=cudnn
    done
done
if [ "$UPDATE" != --update ]; then
    # every committed file is still produced (none left over from a removed case)
    for f in "$DIR"/*.json; do
        [ -e "$TMP/$(basename "$f")" ] || { echo "mem_golden: stale $f"; fail=1; }
    done
fi
if [ $fail -eq 0 ]; then
    if [ "$UPDATE" = --update ]; then echo "mem_golden: $n plans written"; else echo "mem_golden: $n plans byte-identical"; fi
fi
exit $fail
