#!/usr/bin/env bash
# offload_table.sh: the README's optimizer_offload table, from `arenagpt mem --fit` (plans on
# the CPU; no GPU is needed or used). For GPT-2 124M, medium (24L, 16H, 1024), large (36L, 20H,
# 1280) and XL (48L, 25H, 1600), block 1024, vocabulary 50304, attention flash, on 8, 12 and
# 24 GiB cards (the rtx4070 table entry's 1 GiB context reserve for 8 and 12, rtx4090's for
# 24): per recompute mode, without and with offload, the largest batch whose device arena fits
# with the device arena's bytes at that batch, and the host arena's bytes (the same at every
# batch: the optimizer state and the update's staging). Prints each command, then the table.
# Usage: scripts/offload_table.sh [ARENAGPT]   (default ./arenagpt)
set -euo pipefail
BIN=${1:-./arenagpt}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
models=("124M 12 12 768" "medium 24 16 1024" "large 36 20 1280" "XL 48 25 1600")
cards=("8 rtx4070" "12 rtx4070" "24 rtx4090")
for m in "${models[@]}"; do
    read -r name L H C <<<"$m"
    for card in "${cards[@]}"; do
        read -r gb gpu <<<"$card"
        cmd=("$BIN" mem --device=cuda --n_layer="$L" --n_head="$H" --n_embd="$C" --block_size=1024
            --vocab_size=50304 --attention=flash --fit="${gb}GiB" --gpu="$gpu" --format=json)
        echo "\$ ${cmd[*]}"
        "${cmd[@]}" >"$TMP/$name-$gb.json"
    done
done
echo
python3 - "$TMP" <<'PY'
import json, sys
d = sys.argv[1]
gib = 1024.0 ** 3
modes = [(r, o) for r in ("none", "selective", "full") for o in (False, True)]
print("| model | card | " + " | ".join(f"{r}, offload {'on' if o else 'off'}" for r, o in modes)
      + " | host arena (offload on) |")
print("|---|---|" + "---|" * len(modes) + "---|")
for name in ["124M", "medium", "large", "XL"]:
    for gb in [8, 12, 24]:
        doc = json.load(open(f"{d}/{name}-{gb}.json"))
        by = {(m["recompute"], m["optimizer_offload"]): m for m in doc["modes"]
              if m["attention"] == "flash"}
        cells, host = [], "-"
        for key in modes:
            m = by[key]
            b = m["max_batch_size"]
            cells.append(f"B {b}, {m['high_water_bytes'] / gib:.2f} GiB" if b else "does not fit")
            if key[1]:
                host = f"{m['host_high_water_bytes'] / gib:.2f} GiB"
        print(f"| {name} | {gb} GB | " + " | ".join(cells) + f" | {host} |")
PY
