#!/usr/bin/env bash
# cli_bench_prepare.sh: a short run of scripts/bench_prepare.sh (--smoke: 2 MiB of generated
# text): the 1-thread, 2-thread and JSON Lines (zstd) prepares write the same shards and, when
# node and the pinned tiktoken are installed (scripts/bench_prepare/, npm ci), arenagpt's
# token count equals tiktoken's plus one <|endoftext|> per document.
# Usage: tests/cli_bench_prepare.sh path/to/arenagpt
. "$(dirname "$0")/lib_cli.sh" cli_bench_prepare "$1"
cd "$ROOT" || exit 1
if [ ! -f "${ARENAGPT_VOCAB_DIR:-.cache/gpt2}/encoder.json" ] && [ "${ARENAGPT_REQUIRE_DATA:-0}" != 1 ]; then
    echo "cli_bench_prepare: skip (no GPT-2 vocabulary; run scripts/setup.sh)"
    cli_done
    exit $?
fi
if ARENAGPT_BIN="$BIN" bash scripts/bench_prepare.sh --smoke >"$TMP/log" 2>&1; then ok; else bad "bench_prepare.sh --smoke: $(tail -5 "$TMP/log")"; fi
grep -q "^check: the three runs wrote the same shards" "$TMP/log" && ok || bad "no shard check in the log"
if grep -q "^tiktoken: not run" "$TMP/log"; then
    echo "cli_bench_prepare: tiktoken not installed (scripts/bench_prepare: npm ci): its comparison not run"
else
    grep -q "^check: arenagpt's .* = tiktoken's" "$TMP/log" && ok || bad "no tiktoken check: $(tail -3 "$TMP/log")"
fi
cli_done
