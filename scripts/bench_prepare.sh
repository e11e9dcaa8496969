#!/usr/bin/env bash
# bench_prepare.sh: the sharded `arenagpt prepare` against npm's tiktoken (OpenAI's tokenizer
# compiled to WebAssembly, `gpt2` encoding, pinned in scripts/bench_prepare/package-lock.json,
# installed there with npm ci) on the same generated text, in the same run; prints a raw log.
#
# The text (SIZE_MB, default 100, generated into a temp folder and removed at the end):
# documents of 5 to 60 lines drawn at random (seeded) from tinyshakespeare's lines, one word
# in 20 replaced by a made-up one (random letters, numbers, a URL-like or an accented word) so
# that pre-tokens keep missing the encoders' caches; documents separated by a blank line.
# Runs, each timed as a whole command (vocabulary load and shard writing included) with its
# peak RSS (/usr/bin/time):
#   arenagpt prepare --doc_sep='\n\n' on the text, --threads=1 and --threads=2
#   tiktoken: the same documents (split at the blank lines), one thread, timed around encoding
#   arenagpt prepare --threads=2 on the same documents as JSON Lines compressed with zstd
# The ids must agree: arenagpt's tokens = tiktoken's + one <|endoftext|> per document, and
# the text and JSON Lines runs write the same shards (the script fails otherwise).
# Usage: scripts/bench_prepare.sh [--smoke]   (--smoke: SIZE_MB=2 unless set, no tiktoken
#        install when node_modules is missing; what `make test` runs via tests/cli_bench_prepare.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=0
[ "${1:-}" = --smoke ] && smoke=1
size_mb=${SIZE_MB:-$([ $smoke = 1 ] && echo 2 || echo 100)}
bin=${ARENAGPT_BIN:-./arenagpt}
vocab=${ARENAGPT_VOCAB_DIR:-.cache/gpt2}
text=${ARENAGPT_SHAKESPEARE:-.cache/tinyshakespeare.txt}
[ -x "$bin" ] || { echo "bench_prepare: $bin not found: run make first" >&2; exit 1; }
[ -f "$vocab/encoder.json" ] && [ -f "$text" ] ||
    { echo "bench_prepare: needs $vocab/encoder.json and $text (scripts/setup.sh)" >&2; exit 1; }
py=/usr/bin/python3
[ -x "$py" ] || py=python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
echo "cpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p') ($(nproc) cores); load average: $(cut -d' ' -f1-3 /proc/loadavg)"

$py - "$text" "$work/corpus.txt" "$work/corpus.jsonl" "$size_mb" <<'PY'
import json, random, sys
src, out_txt, out_jsonl, size_mb = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rng = random.Random(1234)
lines = [l for l in open(src, encoding="utf-8").read().split("\n") if l.strip()]
letters = "abcdefghijklmnopqrstuvwxyz"
def made_up():
    k = rng.randrange(5)
    if k == 0: return "".join(rng.choice(letters) for _ in range(rng.randrange(3, 12)))
    if k == 1: return str(rng.randrange(10 ** rng.randrange(1, 9)))
    if k == 2: return "https://example.org/" + "".join(rng.choice(letters) for _ in range(8))
    if k == 3: return rng.choice(["café", "naïve", "Größe", "Привет", "日本語", "😀"]) + rng.choice(letters)
    return rng.choice(letters).upper() + "".join(rng.choice(letters) for _ in range(rng.randrange(2, 9)))
total, target = 0, size_mb << 20
with open(out_txt, "w", encoding="utf-8") as ft, open(out_jsonl, "w", encoding="utf-8") as fj:
    while total < target:
        doc = []
        for _ in range(rng.randrange(5, 61)):
            words = rng.choice(lines).split(" ")
            doc.append(" ".join(made_up() if rng.randrange(20) == 0 else w for w in words))
        d = "\n".join(doc)
        ft.write(d + "\n\n")
        fj.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
        total += len(d.encode("utf-8")) + 2
PY
bytes=$(stat -c %s "$work/corpus.txt")
echo "text: $bytes bytes of generated documents ($size_mb MiB asked)"
zstd -q -3 "$work/corpus.jsonl" -o "$work/corpus.jsonl.zst"
rm "$work/corpus.jsonl"
mkdir -p "$work/jsonl" && mv "$work/corpus.jsonl.zst" "$work/jsonl/"
echo "jsonl.zst: $(stat -c %s "$work/jsonl/corpus.jsonl.zst") bytes"

run() { # label out-dir args...: one timed prepare
    local label=$1 out=$2
    shift 2
    /usr/bin/time -f "$label: wall %e s, user %U s, sys %S s, peak RSS %M KiB" \
        "$bin" prepare --vocab_dir="$vocab" --out="$out" --name=bench --shard_tokens=10000000 \
        --val_tokens=100000 "$@" 2>&1 | sed "s/^prepare:/$label:/"
}
run "arenagpt 1 thread" "$work/o1" --input="$work/corpus.txt" --doc_sep='\n\n' --threads=1
run "arenagpt 2 threads" "$work/o2" --input="$work/corpus.txt" --doc_sep='\n\n' --threads=2
run "arenagpt 2 threads, jsonl.zst" "$work/o3" --input="$work/jsonl" --threads=2
for f in "$work"/o1/bench_*.bin; do
    cmp -s "$f" "$work/o2/$(basename "$f")" || { echo "bench_prepare: FAILED: $(basename "$f"): 1 and 2 threads differ"; exit 1; }
    cmp -s "$f" "$work/o3/$(basename "$f")" || { echo "bench_prepare: FAILED: $(basename "$f"): text and jsonl.zst differ"; exit 1; }
done
echo "check: the three runs wrote the same shards"
state=$(cat "$work/o1/bench_prepare.state")
ntok=$(echo "$state" | sed -n 's/^tokens //p')
ndocs=$(echo "$state" | sed -n 's/^docs //p')

tik=scripts/bench_prepare
if [ ! -d "$tik/node_modules/tiktoken" ] && command -v npm >/dev/null && [ $smoke = 0 ]; then
    npm ci --prefix "$tik" --no-audit --no-fund --loglevel=error >&2
fi
if ! command -v node >/dev/null || [ ! -d "$tik/node_modules/tiktoken" ]; then
    echo "tiktoken: not run (needs node and npm ci in $tik)"
    exit 0
fi
line=$(/usr/bin/time -f "tiktoken: wall %e s (node start, reading and splitting included), peak RSS %M KiB" \
    node "$tik/tiktoken_bench.mjs" "$work/corpus.txt" '\n\n' 2>"$work/tik.time")
echo "$line"
cat "$work/tik.time"
tt=$(echo "$line" | sed -n 's/.* documents, \([0-9]*\) tokens.*/\1/p')
td=$(echo "$line" | sed -n 's/.* bytes, \([0-9]*\) documents.*/\1/p')
if [ "$td" != "$ndocs" ] || [ "$((tt + td))" != "$ntok" ]; then
    echo "bench_prepare: FAILED: tiktoken $tt tokens in $td documents; arenagpt $ntok tokens (eot included) in $ndocs"
    exit 1
fi
echo "check: arenagpt's $ntok tokens = tiktoken's $tt + $td <|endoftext|> (one per document)"
