#!/usr/bin/env bash
# prepare_shakespeare.sh: tokenizes tinyshakespeare into OUTDIR (train.bin, val.bin,
# tokenizer.bin) with `arenagpt prepare`. The text is $SHAKESPEARE (default
# .cache/tinyshakespeare.txt), put there by scripts/fetch_shakespeare.sh when missing.
# Usage: scripts/prepare_shakespeare.sh OUTDIR [--tokenizer=gpt2|char] [other prepare keys]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || [[ "$1" == --* ]]; then
    echo "usage: scripts/prepare_shakespeare.sh OUTDIR [--tokenizer=gpt2|char] [--key=value ...]" >&2
    exit 2
fi
out="$1"
shift

input="${SHAKESPEARE:-.cache/tinyshakespeare.txt}"
bash scripts/fetch_shakespeare.sh "$input" >/dev/null

if [ ! -x ./arenagpt ]; then
    echo "prepare_shakespeare: ./arenagpt is missing; run make first" >&2
    exit 1
fi
tokenizer=gpt2
for a in "$@"; do
    case "$a" in --tokenizer=*) tokenizer="${a#--tokenizer=}" ;; esac
done
if [ "$tokenizer" = gpt2 ]; then
    bash scripts/fetch_vocab.sh >/dev/null
fi
exec ./arenagpt prepare --input="$input" --out="$out" "$@"
