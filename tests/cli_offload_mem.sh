#!/usr/bin/env bash
# cli_offload_mem.sh: what `mem` plans with optimizer_offload=True (no GPU needed): two arenas,
# the optimizer state moved whole from the device's to the host's (the same bytes, the same
# names) and the host arena's staging; --compare and --fit carry offload as a toggle with the
# host bytes; --fit holds the host arena against /proc/meminfo; the done-when shapes (GPT-2 XL
# on a 12 GiB card, GPT-2 large on an 8 GiB card, recompute full, batch >= 1); CSV (one arena)
# and the CPU layout are refused; the memory page carries the host arena.
# Usage: tests/cli_offload_mem.sh path/to/arenagpt
set -u
. "$(dirname "$0")/lib_cli.sh" cli_offload_mem "$1"
C4070=$ROOT/configs/small_4070.conf
XL=(--n_layer=48 --n_head=25 --n_embd=1600 --block_size=1024 --vocab_size=50304)
LARGE=(--n_layer=36 --n_head=20 --n_embd=1280 --block_size=1024 --vocab_size=50304)

# 1. the table: both arenas; the JSON: the optimizer's bytes move whole to the host
"$BIN" mem "$C4070" --device=cuda --optimizer_offload=True >"$TMP/t.txt" 2>&1 || bad "mem offload: $(tail -2 "$TMP/t.txt")"
grep -q "^device arena (optimizer_offload" "$TMP/t.txt" && grep -q "^host arena (optimizer_offload" "$TMP/t.txt" && ok || bad "the table does not show both arenas"
grep -qE "^ +master\.wte +optimizer +f32" "$TMP/t.txt" && ok || bad "the host arena does not list master.wte"
grep -q "host arena .* (pinned) against this machine's MemAvailable" "$TMP/t.txt" && ok || bad "no host memory line"
"$BIN" mem "$C4070" --device=cuda --format=json >"$TMP/off.json" 2>&1 || bad "mem json"
"$BIN" mem "$C4070" --device=cuda --optimizer_offload=True --format=json >"$TMP/on.json" 2>&1 || bad "mem json offload"
python3 - "$TMP/off.json" "$TMP/on.json" <<'PY' && ok || bad "offload JSON: the optimizer state did not move whole to the host arena"
import json, sys
off, on = (json.load(open(p)) for p in sys.argv[1:])
cat = lambda d, c: d["categories"][c]["peak_bytes"]
assert cat(on, "optimizer") == 0, "device optimizer bytes"
assert cat(on["host"], "optimizer") == cat(off, "optimizer") > 0, "host optimizer bytes"
for c in ("params", "grads", "activations"):
    assert cat(on, c) == cat(off, c), c
names = lambda d, p: sorted(t["name"] for t in d["tensors"] if t["name"].startswith(p))
assert names(on["host"], "master.") == names(off, "master."), "master names"
assert names(on["host"], "adam.") == names(off, "adam."), "adam names"
ws = on["host"]["categories"]["workspace"]["peak_bytes"]
assert ws > 0 and on["host"]["high_water_bytes"] == cat(off, "optimizer") + ws, "host staging"
PY

# 2. refusals: CSV (one arena), the CPU layout
"$BIN" mem "$C4070" --device=cuda --optimizer_offload=True --format=csv >"$TMP/csv.txt" 2>&1
st=$?
[ "$st" = 2 ] && grep -q "csv writes one arena" "$TMP/csv.txt" && ok || bad "csv with offload: status $st"
"$BIN" mem "$C4070" --device=cpu --optimizer_offload=True >"$TMP/cpu.txt" 2>&1
st=$?
[ "$st" = 2 ] && grep -q "optimizer_offload=True needs --device=cuda" "$TMP/cpu.txt" && ok || bad "cpu with offload: status $st: $(tail -1 "$TMP/cpu.txt")"

# 3. --compare: offload off and on beside recompute and attention, with the host bytes
"$BIN" mem "$C4070" --device=cuda --compare --format=json >"$TMP/cmp.json" 2>&1 || bad "compare json"
python3 - "$TMP/cmp.json" <<'PY' && ok || bad "--compare: offload is not a toggle with host bytes"
import json, sys
modes = json.load(open(sys.argv[1]))["modes"]
on = [m for m in modes if m["optimizer_offload"]]
off = [m for m in modes if not m["optimizer_offload"]]
assert len(on) == len(off) == 9, (len(on), len(off))
for a, b in zip(off, on):
    assert (a["recompute"], a["attention"]) == (b["recompute"], b["attention"])
    assert b["categories"]["optimizer"]["peak_bytes"] == 0 and "host" not in a
    assert b["host"]["categories"]["optimizer"]["peak_bytes"] == a["categories"]["optimizer"]["peak_bytes"]
    assert b["high_water_bytes"] < a["high_water_bytes"]
PY
"$BIN" mem "$C4070" --device=cuda --compare >"$TMP/cmp.txt" 2>&1 || bad "compare table"
grep -qE "^full +flash +on " "$TMP/cmp.txt" && grep -q "host MiB" "$TMP/cmp.txt" && ok || bad "--compare table: no offload rows"

# 4. done when: XL on a 12 GiB card and large on an 8 GiB card, recompute full, batch >= 1
"$BIN" mem "${XL[@]}" --device=cuda --optimizer_offload=True --recompute=full --batch_size=1 \
    --gradient_accumulation_steps=1 >"$TMP/xl.txt" 2>&1 || bad "mem XL"
grep -q "on rtx4070 (12.00 GiB): arena .*: fits" "$TMP/xl.txt" && ok || bad "XL offload full batch 1 does not fit rtx4070: $(grep 'on rtx4070' "$TMP/xl.txt")"
for spec in "XL 12GiB" "LARGE 8GiB"; do
    read -r shape fit <<<"$spec"
    [ "$shape" = XL ] && args=("${XL[@]}") || args=("${LARGE[@]}")
    "$BIN" mem "${args[@]}" --device=cuda --attention=flash --fit="$fit" --format=json >"$TMP/fit.json" 2>&1 || bad "fit $spec"
    python3 - "$TMP/fit.json" <<'PY' && ok || bad "--fit $spec: offload and recompute full do not fit batch >= 1"
import json, sys
doc = json.load(open(sys.argv[1]))
by = {(m["recompute"], m["attention"], m["optimizer_offload"]): m for m in doc["modes"]}
on = by[("full", "flash", True)]
assert on["max_batch_size"] >= 1 and on["host_high_water_bytes"] > 0, on
assert on["high_water_bytes"] <= doc["fit_bytes"] - doc["reserve_bytes"], on
assert by[("full", "flash", False)]["max_batch_size"] == 0  # without offload it does not fit
assert by[("full", "flash", False)]["host_high_water_bytes"] == 0
PY
done
"$BIN" mem "${LARGE[@]}" --device=cuda --attention=flash --fit=8GiB >"$TMP/fit.txt" 2>&1 || bad "fit large text"
grep -qE "recompute full +attention flash offload on +batch_size" "$TMP/fit.txt" && grep -q "host arena .* MemAvailable" "$TMP/fit.txt" && ok || bad "--fit text: no offload row with its host line"

# 5. the memory page carries the host arena
"$BIN" mem "$C4070" --device=cuda --optimizer_offload=True --html="$TMP/m.html" >/dev/null 2>&1 || bad "mem --html offload"
grep -q '"host": {' "$TMP/m.html" && grep -q 'id="host-section"' "$TMP/m.html" && ok || bad "the page has no host arena"
"$BIN" mem "$C4070" --device=cuda --html="$TMP/m0.html" >/dev/null 2>&1 || bad "mem --html"
grep -q '"host": null' "$TMP/m0.html" && ok || bad "the page without offload has a host arena"
cli_done
