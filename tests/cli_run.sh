#!/usr/bin/env bash
# cli_run.sh: a training run as a user watches it: output line by line when redirected; Ctrl-C
# (SIGINT) honoured within seconds during an eval and between micro-steps, saving the last
# completed step with the loaders' RNG as before the interrupted work, so that resuming gives
# the uninterrupted run's losses; eval progress (rate, ETA) on a terminal, one summary line in
# a log; always_save_checkpoint = False saves only when the val loss improved (nanoGPT).
# Usage: tests/cli_run.sh path/to/arenagpt
set -u
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TEXT=$ROOT/../shared/data/tinyshakespeare.txt
TMP=$(mktemp -d)
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "cli_run: FAILED: $*"; fail=$((fail + 1)); }
STOP_SECONDS=5 # SIGINT to exit, on a loaded 2-core machine (one eval batch takes milliseconds)

if [ ! -f "$TEXT" ]; then
    for i in $(seq 1 3000); do echo "To be, or not to be, that is the question $((i % 7)):"; done >"$TMP/text.txt"
    TEXT=$TMP/text.txt
fi
"$BIN" prepare --input="$TEXT" --out="$TMP/data" --tokenizer=char >/dev/null 2>&1 || bad "prepare"
cat >"$TMP/small.conf" <<CONF
data_dir = '$TMP/data'
device = 'cpu'
n_layer = 2
n_head = 2
n_embd = 32
block_size = 32
vocab_size = 65
batch_size = 8
gradient_accumulation_steps = 2
learning_rate = 3e-3
warmup_iters = 2
lr_decay_iters = 200
min_lr = 3e-4
eval_interval = 4
eval_iters = 2
log_interval = 1
seed = 7
CONF
losses() { grep '"loss"' "$1" | sed 's/, "ms_per_iter.*//'; }
evals() { grep '"val_loss"' "$1" | sort -u; }
# waits until file $2 has text $3 (at most 30 s), then SIGINTs $1 and checks it ends in time
interrupt() {
    local pid=$1 file=$2 text=$3
    for _ in $(seq 1 300); do grep -q "$text" "$file" 2>/dev/null && break; sleep 0.1; done
    grep -q "$text" "$file" || bad "'$text' never appeared in $(basename "$file") (output not line-buffered?): $(cat "$file" | head -3)"
    sleep 0.5
    kill -INT "$pid"
    local t0=$SECONDS
    for _ in $(seq 1 $((STOP_SECONDS * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        bad "SIGINT not honoured within $STOP_SECONDS s ($(basename "$file"))"
        kill -KILL "$pid"
    else
        ok
    fi
    wait "$pid"
    local st=$?
    [ "$st" = 0 ] && grep -q "stopped by signal" "$file" && ok || bad "stop: status $st: $(tail -2 "$file")"
}

# A: 8 uninterrupted steps
"$BIN" train "$TMP/small.conf" --max_iters=8 --out_dir="$TMP/a" >"$TMP/a.log" 2>&1 || bad "train A"
# B: 4 steps; resumed with an eval that would take hours, interrupted during it; resumed to 8
"$BIN" train "$TMP/small.conf" --max_iters=4 --out_dir="$TMP/b" >"$TMP/b1.log" 2>&1 || bad "train B1"
"$BIN" train "$TMP/small.conf" --max_iters=8 --out_dir="$TMP/b" --init_from=resume --eval_iters=10000000 >"$TMP/b2.log" 2>&1 &
pid=$!
pids="$pids $pid"
interrupt "$pid" "$TMP/b2.log" "resumed from"
"$BIN" train "$TMP/small.conf" --max_iters=8 --out_dir="$TMP/b" --init_from=resume >"$TMP/b3.log" 2>&1 || bad "train B3"
diff <(losses "$TMP/a/metrics.jsonl") <(losses "$TMP/b/metrics.jsonl") >/dev/null && ok || bad "losses after an interrupted eval differ from the uninterrupted run"
diff <(evals "$TMP/a/metrics.jsonl") <(evals "$TMP/b/metrics.jsonl") >/dev/null && ok || bad "eval losses after an interrupted eval differ (loader RNG not restored?)"
# C: the same, interrupted between the micro-steps of a step with many of them
"$BIN" train "$TMP/small.conf" --max_iters=4 --out_dir="$TMP/c" >"$TMP/c1.log" 2>&1 || bad "train C1"
"$BIN" train "$TMP/small.conf" --max_iters=8 --out_dir="$TMP/c" --init_from=resume --eval_interval=1000 \
    --gradient_accumulation_steps=100000 >"$TMP/c2.log" 2>&1 &
pid=$!
pids="$pids $pid"
interrupt "$pid" "$TMP/c2.log" "resumed from"
"$BIN" train "$TMP/small.conf" --max_iters=8 --out_dir="$TMP/c" --init_from=resume >"$TMP/c3.log" 2>&1 || bad "train C3"
diff <(losses "$TMP/a/metrics.jsonl") <(losses "$TMP/c/metrics.jsonl") >/dev/null && ok || bad "losses after an interrupted step differ from the uninterrupted run"
diff <(evals "$TMP/a/metrics.jsonl") <(evals "$TMP/c/metrics.jsonl") >/dev/null && ok || bad "eval losses after an interrupted step differ"

# eval progress: on a terminal a live line with the rate and ETA; in a log one summary line
script -qfec "'$BIN' train '$TMP/small.conf' --max_iters=0 --eval_iters=400 --out_dir='$TMP/p'" /dev/null >"$TMP/tty.log" 2>&1 || bad "train on a terminal"
grep -q "eval .*batches.*ETA" "$TMP/tty.log" && ok || bad "no eval progress line on a terminal: $(tr '\r' '\n' <"$TMP/tty.log" | grep -i eval | head -3)"
"$BIN" train "$TMP/small.conf" --max_iters=0 --eval_iters=400 --out_dir="$TMP/p" >"$TMP/p.log" 2>&1 || bad "train to a log"
grep -q $'\r' "$TMP/p.log" && bad "progress updates written to a log file" || ok
grep -q "^step 0: train loss .* (eval .* s, 800 batches, .* batches/s)" "$TMP/p.log" && ok || bad "no eval summary line in the log: $(grep '^step 0' "$TMP/p.log")"

# always_save_checkpoint = False: a checkpoint only when the val loss improved
"$BIN" train "$TMP/small.conf" --max_iters=12 --eval_interval=1 --eval_iters=1 --learning_rate=1e-2 \
    --min_lr=1e-2 --decay_lr=False --always_save_checkpoint=False --out_dir="$TMP/s" >"$TMP/s.log" 2>&1 || bad "train always_save_checkpoint=False"
python3 - "$TMP/s.log" <<'PY' && ok || bad "always_save_checkpoint = False: saves do not follow the val loss"
import re, sys
best, saved, skipped = float("inf"), 0, 0
val = {}
for line in open(sys.argv[1]):
    m = re.match(r"step (\d+): train loss \S+, val loss (\S+)", line)
    if m:
        it, v = int(m.group(1)), float(m.group(2))
        improved = v < best
        best = min(best, v)
        val[it] = improved
    m = re.match(r"checkpoint: .*\(iteration (\d+)\)", line)
    if m:
        it = int(m.group(1))
        assert val.get(it), f"saved at {it} without an improvement"
        saved += 1
    m = re.match(r"checkpoint: skipped at iteration (\d+)", line)
    if m:
        it = int(m.group(1))
        assert not val.get(it, True), f"skipped at {it} although it improved"
        skipped += 1
assert saved >= 1 and skipped >= 1, (saved, skipped)
PY

echo "cli_run: $pass passed, $fail failed"
[ "$fail" = 0 ]
