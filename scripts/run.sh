#!/usr/bin/env bash
# run.sh (make run): the main job on a fresh machine: set-up, tinyshakespeare tokenized with
# GPT-2 BPE, training (configs/small_4070.conf on a GPU; configs/tiny.conf on the CPU, a few
# minutes), the memory report (the train command prints the plan and the measured peaks; then
# `mem --compare` for the recompute modes), a sample, plots, and where everything is.
# Usage: scripts/run.sh   (env: RUN_CONFIG=... to pick another config, RUN_ITERS=N to shorten)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --plots
make -s arenagpt
data=datasets/shakespeare
if [ ! -f "$data/train.bin" ] || [ ! -f "$data/tokenizer.bin" ]; then
    bash scripts/prepare_shakespeare.sh "$data"
fi

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    config=${RUN_CONFIG:-configs/small_4070.conf}
    device=cuda
    iters=${RUN_ITERS:-500}
else
    config=${RUN_CONFIG:-configs/tiny.conf}
    device=cpu
    iters=${RUN_ITERS:-600}
fi
out=out/run
rm -rf "$out"
mkdir -p "$out"
echo "== arenagpt train $config on $device ($iters iterations)"
./arenagpt train "$config" --device="$device" --data_dir="$data" --out_dir="$out" \
    --max_iters="$iters" --lr_decay_iters="$iters" --eval_interval=$((iters / 5)) --eval_iters=20 \
    --log_interval=$((iters / 20)) --trace_file="$out/trace.json" | tee "$out/train.log"

echo
echo "== arenagpt mem $config --compare (what recompute would save, planned)"
./arenagpt mem "$config" --device="$device" --compare | tee "$out/mem_compare.txt"
./arenagpt mem "$config" --device="$device" --compare --format=json >"$out/mem_compare.json"
./arenagpt mem "$config" --device="$device" --trace_file="$out/plan_trace.json" >/dev/null

echo
echo "== arenagpt sample"
./arenagpt sample --init_from="$out" --data_dir="$data" --device="$device" --prompt="ROMEO:" \
    --max_new_tokens=80 --num_samples=1 --temperature=0.8 --top_k=200 | tee "$out/sample.txt"

plots=""
if /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
    /usr/bin/python3 scripts/plot.py loss "$out/metrics.jsonl" "$out/loss.png" >/dev/null
    /usr/bin/python3 scripts/plot.py memory "$out/mem_compare.json" "$out/memory.png" >/dev/null
    /usr/bin/python3 scripts/plot.py timeline "$out/plan_trace.json" "$out/timeline.png" >/dev/null
    plots="$out/loss.png, $out/memory.png, $out/timeline.png"
fi

first=$(grep -m1 '"val_loss"' "$out/metrics.jsonl" | sed 's/.*"val_loss": \([0-9.]*\).*/\1/')
last=$(grep '"val_loss"' "$out/metrics.jsonl" | tail -1 | sed 's/.*"val_loss": \([0-9.]*\).*/\1/')
echo
echo "== summary"
echo "  trained $config on $device for $iters iterations: val loss $first -> $last"
echo "  $(grep 'plan == measured' "$out/train.log" | sed 's/^ *//')"
echo "  model (llm.c format):  $out/model.bin   checkpoints: $out/state_*.bin"
echo "  metrics:               $out/metrics.jsonl"
echo "  training log:          $out/train.log"
echo "  memory:                $out/mem_compare.txt, $out/mem_compare.json"
echo "  arena timelines:       $out/trace.json (the run), $out/plan_trace.json (one planned step); open in Perfetto"
[ -n "$plots" ] && echo "  plots:                 $plots"
echo "  sample:                $out/sample.txt"
