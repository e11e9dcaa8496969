#!/usr/bin/env bash
# cli_mem.sh: what `mem` plans and says: device=auto plans the CUDA layout (its first line names
# the layout), --device=cpu the CPU's; a config that names device = 'cuda' is refused by train
# on a machine without a GPU, and device=auto says in one line that it trains on the CPU;
# --compare with --fit is refused; --fit sets aside --reserve (default: the `gpu` table's
# context estimate) and says so; a refused plan says it was refused; planning never starts
# CUDA (nor does a CPU run).
# Usage: tests/cli_mem.sh path/to/arenagpt
set -u
. "$(dirname "$0")/lib_cli.sh" cli_mem "$1"
GIB=1073741824
C4070=$ROOT/configs/small_4070.conf
has_gpu=0
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && has_gpu=1

# 1. the layout: auto plans the product's target (CUDA, float16); cpu plans f32
"$BIN" mem "$C4070" >"$TMP/auto.txt" 2>&1 || bad "mem small_4070 (auto)"
head -1 "$TMP/auto.txt" | grep -q "layout: cuda.*float16" && ok || bad "auto: first line does not name the cuda float16 layout: $(head -1 "$TMP/auto.txt")"
grep -q "master.wte" "$TMP/auto.txt" && ok || bad "auto: not the cuda layout (no master weights)"
"$BIN" mem "$C4070" --device=cpu >"$TMP/cpu.txt" 2>&1 || bad "mem small_4070 --device=cpu"
head -1 "$TMP/cpu.txt" | grep -q "layout: cpu.*float32" && ok || bad "cpu: first line: $(head -1 "$TMP/cpu.txt")"
# attention unset: flash on the cuda layout (head size 64 here), naive on the cpu; a head size
# over the CUDA flash kernels' 64 stays naive; a set value is kept
grep -q "^plan: .*attention flash," "$TMP/auto.txt" && ok || bad "cuda default attention is not flash: $(grep '^plan:' "$TMP/auto.txt")"
grep -q "^plan: .*attention naive," "$TMP/cpu.txt" && ok || bad "cpu default attention is not naive: $(grep '^plan:' "$TMP/cpu.txt")"
"$BIN" mem "$C4070" --n_head=3 >"$TMP/hs128.txt" 2>&1 && grep -q "^plan: .*attention naive," "$TMP/hs128.txt" &&
    ok || bad "cuda, head size 128: not naive: $(grep '^plan:' "$TMP/hs128.txt")"
"$BIN" mem "$C4070" --attention=naive >"$TMP/set.txt" 2>&1 && grep -q "^plan: .*attention naive," "$TMP/set.txt" &&
    ok || bad "cuda, attention=naive set: not kept: $(grep '^plan:' "$TMP/set.txt")"

# 2. train: the 4070 config asks for cuda; auto without a GPU says it uses the CPU
if [ "$has_gpu" = 0 ]; then
    "$BIN" train "$C4070" --max_iters=0 --out_dir="$TMP/o" >"$TMP/t.txt" 2>&1
    st=$?
    [ "$st" = 2 ] && grep -q "arenagpt mem" "$TMP/t.txt" && ok || bad "train small_4070 without a GPU: status $st: $(tail -2 "$TMP/t.txt")"
    printf 'To be or not to be\n%.0s' $(seq 1 400) >"$TMP/text.txt"
    "$BIN" prepare --input="$TMP/text.txt" --out="$TMP/data" --tokenizer=char >/dev/null 2>&1 || bad "prepare"
    "$BIN" train --data_dir="$TMP/data" --n_layer=1 --n_head=2 --n_embd=16 --block_size=8 \
        --batch_size=2 --gradient_accumulation_steps=1 --max_iters=0 --eval_iters=1 \
        --out_dir="$TMP/o" >"$TMP/t2.txt" 2>&1 || bad "train auto on the CPU: $(tail -2 "$TMP/t2.txt")"
    [ "$(grep -c "no GPU.*training on the CPU" "$TMP/t2.txt")" = 1 ] && ok || bad "train auto: no one-line CPU notice: $(head -3 "$TMP/t2.txt")"
fi

# 3. --compare and --fit together are refused, not silently one of them
"$BIN" mem "$C4070" --compare --fit=12GiB >"$TMP/cf.txt" 2>&1
st=$?
[ "$st" = 2 ] && grep -q -- "--compare" "$TMP/cf.txt" && ok || bad "--compare --fit: status $st: $(head -2 "$TMP/cf.txt")"

# keys that would otherwise do nothing: gpu names the card the plan is held against;
# memory_limit bounds --compare and --fit; CSV and trace_file are one plan's, refused with them
"$BIN" mem "$C4070" --gpu=h100-sxm >"$TMP/g.txt" 2>&1 && grep -q "on h100-sxm (80.00 GiB): arena .*: fits" "$TMP/g.txt" && ok || bad "gpu=h100-sxm: $(tail -1 "$TMP/g.txt")"
"$BIN" mem "$C4070" --compare --memory_limit=200MiB >"$TMP/cl.txt" 2>&1
[ $? = 1 ] && grep -q "recompute none" "$TMP/cl.txt" && ok || bad "--compare ignores memory_limit: $(tail -1 "$TMP/cl.txt")"
"$BIN" mem "$C4070" --fit=12GiB --memory_limit=2GiB >"$TMP/fl.txt" 2>&1 && grep -q "2147483648 bytes (2.00 GiB: memory_limit)" "$TMP/fl.txt" && ok || bad "--fit ignores memory_limit"
"$BIN" mem "$C4070" --compare --format=csv >"$TMP/cc.txt" 2>&1
[ $? = 2 ] && ok || bad "--compare --format=csv not refused"
"$BIN" mem "$C4070" --fit=12GiB --trace_file="$TMP/t.json" >"$TMP/ct.txt" 2>&1
[ $? = 2 ] && ok || bad "--fit --trace_file not refused"

# 4. --fit reserves the context + libraries: the default from the gpu table (rtx4070: 1 GiB)
"$BIN" mem "$C4070" --fit=12GiB >"$TMP/fit.txt" 2>&1 || bad "mem --fit"
grep -q "reserved $GIB bytes" "$TMP/fit.txt" && grep -q "rtx4070" "$TMP/fit.txt" && ok || bad "--fit does not say what it reserved and why: $(grep -i reserv "$TMP/fit.txt")"
"$BIN" mem "$C4070" --fit=12GiB --format=json >"$TMP/fit.json" 2>&1 || bad "mem --fit json"
"$BIN" mem "$C4070" --fit=12GiB --reserve=0 --format=json >"$TMP/fit0.json" 2>&1 || bad "mem --fit --reserve=0 json"
"$BIN" mem "$C4070" --fit=12GiB --reserve=3GiB --format=json >"$TMP/fit3.json" 2>&1 || bad "mem --fit --reserve=3GiB json"
python3 - "$TMP/fit.json" "$TMP/fit0.json" "$TMP/fit3.json" <<'PY' && ok || bad "--fit JSON: reserve not applied"
import json, sys
d, z, t = (json.load(open(p)) for p in sys.argv[1:4])
assert d["reserve_bytes"] == 1 << 30 and z["reserve_bytes"] == 0 and t["reserve_bytes"] == 3 << 30, (d["reserve_bytes"], z["reserve_bytes"])
assert d["gpu"] == "rtx4070" and d["reserve_source"], d
for doc in (d, z, t):
    for m in doc["modes"]:
        assert m["high_water_bytes"] <= doc["fit_bytes"] - doc["reserve_bytes"], m
for a, b, c in zip(z["modes"], d["modes"], t["modes"]):
    assert a["max_batch_size"] >= b["max_batch_size"] >= c["max_batch_size"], (a, b, c)
assert any(a["max_batch_size"] > c["max_batch_size"] for a, c in zip(z["modes"], t["modes"]))
PY
"$BIN" mem "$C4070" --fit=12GiB --reserve=2GiB >"$TMP/fit2.txt" 2>&1
grep -q "reserved $((2 * GIB)) bytes" "$TMP/fit2.txt" && grep -q "reserve" "$TMP/fit2.txt" && ok || bad "--reserve=2GiB not reported: $(grep -i reserv "$TMP/fit2.txt")"
"$BIN" mem "$C4070" --fit=1GiB --reserve=2GiB >"$TMP/fitbad.txt" 2>&1
st=$?
[ "$st" = 2 ] && grep -q "reserve" "$TMP/fitbad.txt" && ok || bad "--reserve above --fit: status $st: $(cat "$TMP/fitbad.txt" | head -3)"

# 5. a refused plan says so after its partial report
"$BIN" mem "$C4070" --memory_limit=200MiB >"$TMP/ref.txt" 2>&1
st=$?
[ "$st" = 1 ] && ok || bad "refused plan: status $st"
grep -q "the reservation this run needs" "$TMP/ref.txt" && bad "refused plan still prints 'the reservation this run needs'" || ok
grep -qi "refused" "$TMP/ref.txt" && [ "$(grep -ci "partial" "$TMP/ref.txt")" -ge 1 ] && ok || bad "refused plan: no refused/partial wording: $(grep -i "high-water\|refus" "$TMP/ref.txt")"

# 6. the loss head: the automatic chunk at the 4070 config runs in at most 8 chunks (at least
# 1024 rows), and mem shows its workspace and wte traffic; --compare sets 2-4 chunk sizes side
# by side with their planned peaks, the larger chunk costing more memory and less traffic
"$BIN" mem "$C4070" --format=json >"$TMP/lh.json" 2>&1 || bad "mem --format=json"
chunk=$(sed -n 's/^  "loss_chunk": \([0-9]*\),$/\1/p' "$TMP/lh.json")
[ -n "$chunk" ] && [ "$chunk" -ge 1024 ] && ok || bad "4070 loss_chunk '$chunk' < 1024 rows"
grep -q "\"loss_head\": {\"chunk\": $chunk, \"chunks\": [1-8], \"automatic\": true, \"logits_bytes\": $((chunk * 50304 * 2))," \
    "$TMP/lh.json" && ok || bad "loss_head member: $(grep loss_head "$TMP/lh.json")"
grep -q "^loss head: [1-8] chunks of $chunk rows (automatic.*ws.logits $((chunk * 50304 * 2)) bytes.*GB per micro-step" \
    "$TMP/auto.txt" && ok || bad "table: no loss head line: $(grep -i "loss" "$TMP/auto.txt")"
"$BIN" mem "$C4070" --compare >"$TMP/lc.txt" 2>&1 || bad "mem --compare"
rows=$(sed -n '/^loss head (recompute/,/^(wte GB/p' "$TMP/lc.txt" | grep -cE '^ +[0-9]+ +[0-9]+ ')
[ "$rows" -ge 2 ] && [ "$rows" -le 4 ] && ok || bad "--compare: $rows loss-head rows: $(tail -6 "$TMP/lc.txt")"
grep -qE "^ +$chunk +[0-9]+ .*\(automatic\)" "$TMP/lc.txt" && ok || bad "--compare: no automatic chunk row"
"$BIN" mem "$C4070" --compare --format=json >"$TMP/lc.json" 2>&1 || bad "mem --compare --format=json"
/usr/bin/python3 - "$TMP/lc.json" <<'PY' && ok || bad "--compare JSON loss_chunks"
import json, sys
d = json.load(open(sys.argv[1]))
c = d["loss_chunks"]
assert 2 <= len(c) <= 4, c
assert sum(x["automatic"] for x in c) == 1, c
c.sort(key=lambda x: x["chunk"])
for a, b in zip(c, c[1:]):  # a larger chunk: more workspace at the peak, less wte traffic
    assert b["peak_bytes"] > a["peak_bytes"] and b["wte_traffic_bytes"] < a["wte_traffic_bytes"], (a, b)
assert c[-1]["extra_wte_traffic_bytes"] == 0, c[-1]
PY

# 7. mem and a CPU run never load the CUDA driver (no context, no cuBLAS handles)
if ldd "$BIN" 2>/dev/null | grep -q libcudart; then
    LD_DEBUG=files "$BIN" mem "$C4070" --device=cuda >/dev/null 2>"$TMP/ld1.txt"
    grep -q "libcuda.so.*dynamically loaded by .*libcudart" "$TMP/ld1.txt" && bad "mem --device=cuda started the CUDA runtime" || ok
    LD_DEBUG=files "$BIN" mem "$C4070" >/dev/null 2>"$TMP/ld2.txt"
    grep -q "libcuda.so.*dynamically loaded by .*libcudart" "$TMP/ld2.txt" && bad "mem (auto) started the CUDA runtime" || ok
    LD_DEBUG=files "$BIN" train --device=cpu --data_dir="$TMP/none" >/dev/null 2>"$TMP/ld3.txt"
    grep -q "libcuda.so.*dynamically loaded by .*libcudart" "$TMP/ld3.txt" && bad "train --device=cpu started the CUDA runtime" || ok
fi

cli_done
