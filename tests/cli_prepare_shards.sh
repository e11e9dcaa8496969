#!/usr/bin/env bash
# cli_prepare_shards.sh: `arenagpt prepare` in the sharded layout from the command line: a
# folder of plain text, JSON Lines, gzip and zstd files (made with the gzip and zstd tools)
# -> llm.c-named shards and tokenizer.bin; the same shards for 1 and 2 threads; Ctrl-C
# (SIGINT) in a long run exits 130 leaving whole shards only, and --resume then gives the
# shards of an uninterrupted run, byte for byte; a fresh run over them is refused; a full disk
# (ENOSPC from tests/faults/fail_io.c) names the shard, leaves no partial file, and --resume
# completes the run; --strict, parquet, a truncated .gz, empty input and misplaced keys give
# clear errors and exit codes; train and eval read the shards from data_dir. Needs the GPT-2
# vocabulary and a C compiler (for the fault shim).
# Usage: tests/cli_prepare_shards.sh path/to/arenagpt
. "$(dirname "$0")/lib_cli.sh" cli_prepare_shards "$1"
cd "$ROOT" || exit 1
vocab=${ARENAGPT_VOCAB_DIR:-.cache/gpt2}
text=${ARENAGPT_SHAKESPEARE:-.cache/tinyshakespeare.txt}
if [ ! -f "$vocab/encoder.json" ] || [ ! -f "$text" ]; then
    if [ "${ARENAGPT_REQUIRE_DATA:-0}" = 1 ]; then
        bad "no GPT-2 vocabulary at $vocab or no $text, although make test's set-up has run"
    else
        echo "cli_prepare_shards: skip (no GPT-2 vocabulary or tinyshakespeare; run scripts/setup.sh)"
    fi
    cli_done
    exit $?
fi
P=("$BIN" prepare --vocab_dir="$vocab")

expect() { # rc what command...: runs it, output in $TMP/out.txt
    local want=$1 what=$2
    shift 2
    "$@" >"$TMP/out.txt" 2>&1
    local rc=$?
    if [ "$rc" = "$want" ]; then ok; else bad "$what: exit $rc, expected $want: $(tail -3 "$TMP/out.txt")"; fi
}
has() { # what pattern: the last output holds pattern
    if grep -qF -- "$2" "$TMP/out.txt"; then ok; else bad "$1: no '$2' in: $(tail -3 "$TMP/out.txt")"; fi
}

# --- a small mixed corpus
mkdir -p "$TMP/in/sub"
head -c 300000 "$text" >"$TMP/in/a.txt"
tail -c 200000 "$text" | gzip -c >"$TMP/in/b.txt.gz"
printf '{"text": "Hello world.", "id": 1}\n{"text": "caf\\u00e9 \\ud83d\\ude00"}\nnot json\n{"url": "x"}\n' >"$TMP/in/sub/c.jsonl"
head -c 100000 "$text" | zstd -q -c >"$TMP/in/sub/d.txt.zst"
for t in 1 2; do
    expect 0 "folder, $t threads" "${P[@]}" --input="$TMP/in" --out="$TMP/o$t" --name=mix \
        --shard_tokens=40000 --val_tokens=50000 --threads=$t
done
has "summary" "2 bad JSON lines skipped"
has "summary" "sub/c.jsonl:3: not valid JSON"
names=$(cd "$TMP/o1" && ls | tr '\n' ' ')
# 184,635 tokens: val 40,000 + 10,000, train 3 x 40,000 + 14,635
has "token count" "5 documents, 184635 tokens (val 50000) in 6 shards"
want="mix_prepare.state mix_train_000002.bin mix_train_000003.bin mix_train_000004.bin mix_train_000005.bin mix_val_000000.bin mix_val_000001.bin tokenizer.bin tokenizer_llmc.bin "
[ "$names" = "$want" ] && ok || bad "shard names: '$names', expected '$want'"
read -r magic version ntok < <(od -A n -t d4 -N 12 "$TMP/o1/mix_val_000001.bin")
[ "$magic $version $ntok" = "20240520 1 10000" ] && ok || bad "val shard 1 header: $magic $version $ntok"
read -r _ _ last < <(od -A n -t d4 -N 12 "$TMP/o1/mix_train_000005.bin")
[ "$last" = 14635 ] && ok || bad "last train shard: $last tokens, expected 14635"
read -r first < <(od -A n -t u2 -j 1024 -N 2 "$TMP/o1/mix_val_000000.bin")
[ "$first" = 50256 ] && ok || bad "the first document does not start with <|endoftext|> ($first)"
for f in "$TMP"/o1/*.bin; do
    cmp -s "$f" "$TMP/o2/$(basename "$f")" || bad "$(basename "$f") differs between 1 and 2 threads"
done
ok
# a glob and a comma-separated list name the same files
expect 0 "glob and list" "${P[@]}" --input="$TMP/in/*.txt*,$TMP/in/sub" --out="$TMP/o3" \
    --name=mix --shard_tokens=40000 --val_tokens=50000
for f in "$TMP"/o1/mix_*.bin; do
    cmp -s "$f" "$TMP/o3/$(basename "$f")" || bad "$(basename "$f"): the glob gives other shards"
done

# --- a full disk while shard 3 is written (tests/faults/fail_io.c: ENOSPC at its 2nd write):
# exit 1 naming the shard, no partial file, the shards before it kept; --resume completes
if cc -shared -fPIC -o "$TMP/fail_io.so" tests/faults/fail_io.c -ldl 2>"$TMP/cc.txt"; then
    expect 1 "disk full" env LD_PRELOAD="$TMP/fail_io.so" FAIL_IO_ARM=mix_train_000003.bin FAIL_IO_AT=2 \
        FAIL_IO_MODE=enospc "${P[@]}" --input="$TMP/in" --out="$TMP/full" --name=mix \
        --shard_tokens=40000 --val_tokens=50000
    has "disk full names the shard" "mix_train_000003.bin.tmp: write failed: No space left on device"
    ls "$TMP/full" | grep -q '\.tmp$' && bad "disk full left a partial file: $(ls "$TMP/full")" || ok
    [ -e "$TMP/full/mix_train_000002.bin" ] && [ ! -e "$TMP/full/mix_train_000003.bin" ] && ok ||
        bad "disk full: shards kept: $(ls "$TMP/full")"
    expect 0 "resume after a full disk" "${P[@]}" --input="$TMP/in" --out="$TMP/full" --name=mix \
        --shard_tokens=40000 --val_tokens=50000 --resume
    for f in "$TMP"/o1/mix_*.bin; do
        cmp -s "$f" "$TMP/full/$(basename "$f")" || bad "$(basename "$f"): differs after the full disk and resume"
    done
else
    bad "cannot build the fault shim: $(cat "$TMP/cc.txt")"
fi

# --- training and eval read the shards from data_dir
expect 0 "train on shards" "$BIN" train --data_dir="$TMP/o1" --device=cpu --n_layer=1 --n_head=2 \
    --n_embd=32 --block_size=16 --batch_size=2 --max_iters=2 --eval_iters=1 --eval_interval=1 \
    --out_dir="$TMP/run" --vocab_size=50304
has "train tokens" "(134635 train tokens, 50000 val tokens)"
expect 0 "eval on the val shards" "$BIN" eval --init_from="$TMP/run" --data_dir="$TMP/o1" --eval_batches=1
has "eval names the val shards" "_val_[0-9][0-9][0-9][0-9][0-9][0-9].bin"

# --- Ctrl-C in a long run, then --resume: the shards of an uninterrupted run
for i in $(seq 1 16); do cat "$text"; done >"$TMP/long.txt" # 18 MB, 5.4M tokens
args=(--input="$TMP/long.txt" --name=long --shard_tokens=300000 --doc_sep='\n\n')
"${P[@]}" "${args[@]}" --out="$TMP/int" --threads=1 >"$TMP/int.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do [ -e "$TMP/int/long_val_000000.bin" ] && break; sleep 0.05; done
kill -INT "$pid"
wait "$pid"
rc=$?
if [ "$rc" = 130 ]; then
    ok
    grep -q "interrupted: .* complete shards kept" "$TMP/int.log" && ok || bad "no interruption message: $(cat "$TMP/int.log")"
    ls "$TMP/int" | grep -q '\.tmp$' && bad "a partial shard is left: $(ls "$TMP/int")" || ok
else
    bad "SIGINT: exit $rc, expected 130 (the run ended before the signal?): $(tail -2 "$TMP/int.log")"
fi
cp "$TMP/int/long_val_000000.bin" "$TMP/first_shard.bin"
expect 1 "fresh run over existing shards" "${P[@]}" "${args[@]}" --out="$TMP/int"
has "refusal names --resume" "--resume continues that run"
expect 0 "resume" "${P[@]}" "${args[@]}" --out="$TMP/int" --resume --threads=2
has "resume summary" "resumed after"
expect 0 "uninterrupted" "${P[@]}" "${args[@]}" --out="$TMP/full"
n=0
for f in "$TMP"/full/long_*.bin; do
    n=$((n + 1))
    cmp -s "$f" "$TMP/int/$(basename "$f")" || bad "$(basename "$f"): resumed run differs"
done
[ "$(ls "$TMP"/int/long_*.bin | wc -l)" = "$n" ] && [ "$n" -gt 10 ] && ok || bad "shard count $n"
cmp -s "$TMP/first_shard.bin" "$TMP/int/long_val_000000.bin" && ok || bad "resume rewrote shard 0"
rm -f "$TMP/long.txt" && rm -rf "$TMP/int" "$TMP/full"

# --- bad input and misplaced keys
printf '{"text": "ok"}\n{"text": 3}\n' >"$TMP/bad.jsonl"
expect 1 "strict" "${P[@]}" --input="$TMP/bad.jsonl" --out="$TMP/x1" --strict
has "strict names file and line" "bad.jsonl:2: \"text\" is not a string"
head -c 5000 "$text" | gzip -c | head -c 1000 >"$TMP/cut.txt.gz"
expect 1 "truncated gzip" "${P[@]}" --input="$TMP/cut.txt.gz" --out="$TMP/x2"
has "truncated gzip" "cut.txt.gz: truncated gzip stream"
: >"$TMP/empty.jsonl"
expect 1 "empty input" "${P[@]}" --input="$TMP/empty.jsonl" --out="$TMP/x3"
has "empty input" "empty input"
printf 'PAR1' >"$TMP/f.parquet"
expect 1 "parquet" "${P[@]}" --input="$TMP/f.parquet" --out="$TMP/x4"
has "parquet hint" "pandas.read_parquet"
expect 2 "threads on a single text file" "${P[@]}" --input="$text" --out="$TMP/x5" --threads=2
has "says to add --name" "add --name=NAME"
expect 2 "val_fraction in the sharded layout" "${P[@]}" --input="$TMP/in" --out="$TMP/x6" --val_fraction=0.2
expect 2 "char tokenizer in the sharded layout" "${P[@]}" --input="$TMP/in" --out="$TMP/x7" --tokenizer=char
expect 2 "unknown doc_sep escape" "${P[@]}" --input="$TMP/in" --out="$TMP/x8" --doc_sep='\q'
expect 1 "missing input" "${P[@]}" --input="$TMP/nope/*.jsonl" --out="$TMP/x9"
has "missing input named" "nope/*.jsonl"
cli_done
