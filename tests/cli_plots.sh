#!/usr/bin/env bash
# cli_plots.sh: `train --plots=True` draws the loss curve at the end with the interpreter that
# has matplotlib (Debian's /usr/bin/python3), whichever python3 is first on PATH.
# Usage: tests/cli_plots.sh path/to/arenagpt
set -u
. "$(dirname "$0")/lib_cli.sh" cli_plots "$1"
if ! /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
    echo "cli_plots: skipped: /usr/bin/python3 has no matplotlib (scripts/setup.sh --plots installs it)"
    exit 0
fi
head -1 "$ROOT/scripts/plot.py" | grep -qx '#!/usr/bin/python3' && ok || bad "plot.py's shebang is not /usr/bin/python3"
# a python3 without matplotlib first on PATH
mkdir -p "$TMP/bin"
printf '#!/bin/sh\necho "python3 without matplotlib" >&2\nexit 1\n' >"$TMP/bin/python3"
chmod +x "$TMP/bin/python3"
for i in $(seq 1 300); do echo "to be or not to be $((i % 3))"; done >"$TMP/text.txt"
"$BIN" prepare --input="$TMP/text.txt" --out="$TMP/data" --tokenizer=char >/dev/null 2>&1 || bad "prepare"
PATH="$TMP/bin:$PATH" "$BIN" train --data_dir="$TMP/data" --device=cpu --n_layer=1 --n_head=2 --n_embd=16 \
    --block_size=8 --vocab_size=16 --batch_size=2 --gradient_accumulation_steps=1 --max_iters=4 \
    --eval_interval=2 --eval_iters=1 --plots=True --out_dir="$TMP/o" >"$TMP/t.log" 2>&1 || bad "train --plots=True: $(tail -3 "$TMP/t.log")"
[ "$(head -c 4 "$TMP/o/loss.png" 2>/dev/null | od -An -c | tr -d ' ')" = "211PNG" ] && ok || bad "no loss.png: $(tail -3 "$TMP/t.log")"
grep -q "loss.png" "$TMP/t.log" && ok || bad "train does not say where the plot is"
"$BIN" train --help | grep -q -- "--plots " && ok || bad "no plots key in train --help"
cli_done
