#!/usr/bin/env bash
# prepare_shakespeare.sh: tokenizes tinyshakespeare into OUTDIR (train.bin, val.bin,
# tokenizer.bin) with `arenagpt prepare`. Takes the text from ../shared/data when present,
# otherwise downloads it once into .cache/ (char-rnn's copy).
# Usage: scripts/prepare_shakespeare.sh OUTDIR [--tokenizer=gpt2|char] [other prepare keys]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || [[ "$1" == --* ]]; then
    echo "usage: scripts/prepare_shakespeare.sh OUTDIR [--tokenizer=gpt2|char] [--key=value ...]" >&2
    exit 2
fi
out="$1"
shift

URL=https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt
SHA256=86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed
input=../shared/data/tinyshakespeare.txt
if [ ! -f "$input" ]; then
    input=.cache/tinyshakespeare.txt
    if [ ! -f "$input" ]; then
        mkdir -p .cache
        echo "prepare_shakespeare: downloading tinyshakespeare"
        if ! curl -fsSL --retry 3 -o "$input.tmp" "$URL"; then
            rm -f "$input.tmp"
            echo "prepare_shakespeare: download failed (offline?). Put the 1,115,394-byte" >&2
            echo "  tinyshakespeare text at $PWD/$input (or ../shared/data/tinyshakespeare.txt)" >&2
            echo "  and run this again." >&2
            exit 1
        fi
        mv "$input.tmp" "$input"
    fi
fi
got="$(sha256sum "$input" | cut -d' ' -f1)"
if [ "$got" != "$SHA256" ]; then
    echo "prepare_shakespeare: warning: $input has sha256 $got, not the usual tinyshakespeare" >&2
fi

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
