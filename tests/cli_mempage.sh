#!/usr/bin/env bash
# cli_mempage.sh: the memory page from the command line (the page in a browser is
# tests/browser/memory_page.mjs): `mem --html` writes one self-contained file that names no
# network address; a bad --nanogpt_json (missing, not JSON, wrong format, another config) is
# refused with the file's name and exit 1; the committed nanoGPT file for the config is picked
# by default and is ignored, with a note, when the batch is overridden; `train` writes
# out_dir/memory.html with plan vs measured.
# Usage: tests/cli_mempage.sh path/to/arenagpt
set -u
. "$(dirname "$0")/lib_cli.sh" cli_mempage "$1"
cd "$ROOT" || exit 1
CONF=configs/small_4070.conf

# 1. the page: written, offline (no http(s) address, no external script or style)
"$BIN" mem $CONF --device=cuda --html="$TMP/m.html" >"$TMP/out" 2>&1 || bad "mem --html: $(tail -2 "$TMP/out")"
[ -s "$TMP/m.html" ] && ok || bad "no page written"
grep -qiE 'https?://|<script[^>]* src=|<link[^>]* href=' "$TMP/m.html" && bad "the page names a network address" || ok
grep -qE '"format": ?"arenagpt-nanogpt-memory/1"' "$TMP/m.html" && ok || bad "the committed nanoGPT file was not embedded"
grep -q '/\*@ARENAGPT_DATA@\*/' "$TMP/m.html" && bad "the data marker is still in the page" || ok
# the same page whatever the report format: json output stays pure JSON
"$BIN" mem $CONF --device=cuda --html="$TMP/j.html" --format=json >"$TMP/j.json" 2>/dev/null || bad "mem --html --format=json"
head -c1 "$TMP/j.json" | grep -q '{' && ok || bad "--format=json output does not start with {"

# 2. nanogpt_json: bad files are refused, naming the file
expect_fail() { # text, args...
    local text=$1
    shift
    "$BIN" mem $CONF --device=cuda --html="$TMP/x.html" "$@" >"$TMP/out" 2>&1
    local st=$?
    if [ $st = 1 ] && grep -qF -- "$text" "$TMP/out"; then ok; else
        bad "mem $* -> status $st, want 1 and '$text':"
        sed 's/^/    /' "$TMP/out"
    fi
}
expect_fail "cannot open nanogpt_json '$TMP/none.json'" --nanogpt_json="$TMP/none.json"
printf '{"format": "arenagpt-nanogpt-memory/1", "config": {"n_layer": 6,}' >"$TMP/broken.json"
expect_fail "nanogpt_json '$TMP/broken.json': not valid JSON" --nanogpt_json="$TMP/broken.json"
printf '{"format": "something-else", "config": {}}' >"$TMP/other_format.json"
expect_fail "expected 'arenagpt-nanogpt-memory/1'" --nanogpt_json="$TMP/other_format.json"
expect_fail "is for n_layer = 12, this run has n_layer = 6" --nanogpt_json=configs/nanogpt/gpt2_124m.json

# 3. the default file describes batch_size 16: another batch shows a note instead of its figures
"$BIN" mem $CONF --device=cuda --batch_size=8 --html="$TMP/b8.html" >/dev/null 2>&1 || bad "mem --batch_size=8 --html"
grep -q '"nanogpt": null, "nanogpt_note": ".*batch_size = 16, this run has batch_size = 8' "$TMP/b8.html" && ok ||
    bad "no note for a nanoGPT file of another batch_size"

# 4. train writes out_dir/memory.html with plan vs measured (CPU, char data)
for i in $(seq 1 400); do echo "To be, or not to be, that is the question $((i % 7)):"; done >"$TMP/text.txt"
"$BIN" prepare --input="$TMP/text.txt" --out="$TMP/data" --tokenizer=char >/dev/null 2>&1 || bad "prepare"
"$BIN" train --data_dir="$TMP/data" --device=cpu --n_layer=1 --n_head=2 --n_embd=16 --block_size=16 \
    --vocab_size=65 --batch_size=2 --gradient_accumulation_steps=1 --max_iters=2 --eval_interval=2 \
    --eval_iters=1 --out_dir="$TMP/run" >"$TMP/train.log" 2>&1 || bad "train: $(tail -3 "$TMP/train.log")"
[ -s "$TMP/run/memory.html" ] && ok || bad "train wrote no out_dir/memory.html"
grep -q "memory page: $TMP/run/memory.html" "$TMP/train.log" && ok || bad "train does not say where the page is"
peak=$(sed -n 's/^  peak (sum) *\([0-9]*\) *\([0-9]*\) equal$/\2/p' "$TMP/train.log")
[ -n "$peak" ] && grep -q "\"measured_peak_bytes\": $peak," "$TMP/run/memory.html" && ok ||
    bad "the train page's measured peak is not the log's ($peak)"
grep -q '"source": "train"' "$TMP/run/memory.html" && ok || bad "the train page does not say it comes from a run"

cli_done
