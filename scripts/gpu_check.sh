#!/usr/bin/env bash
# gpu_check.sh: the GPU evidence in one command, written into RESULTS_DIR:
#   1. the machine: commit, GPU name / driver / memory (nvidia-smi), nvcc version;
#   2. build (CUDA) and `make test-gpu` (CUDA backend against the CPU reference);
#   3. scripts/check_no_malloc.sh (no device allocation outside the arena);
#   4. compute-sanitizer memcheck on test-gpu and on a few small training steps;
#   5. configs/small_4070.conf on tinyshakespeare (GPT-2 BPE tokens; char tokens only if the
#      GPT-2 vocabulary cannot be found, said in the summary) for STEPS iterations, once per
#      recompute mode in MODES, with nvidia-smi's per-process memory sampled every second;
#      then 5 iterations with CUDA_MODULE_LOADING=EAGER (where the unaccounted memory goes);
#   6. summary.md: pass/fail per stage, final train/val loss, ms/iter, tokens/s, MFU, arena
#      peak and nvidia-smi's peak process memory per mode, vs nanoGPT's 6582 MiB / 4464 MiB.
# Meant to finish well within 10 minutes on an H100 (defaults: 300 steps, 2 modes).
#
# Usage: scripts/gpu_check.sh RESULTS_DIR
# Environment: STEPS (300), MODES ("none full"), EVAL_INTERVAL (100), EVAL_ITERS (20),
#   DATA_DIR (a prepared llm.c-format dataset; default: datasets/shakespeare_gpt2, prepared
#   here when missing), TEXT (tinyshakespeare.txt; default: the shared copy),
#   GPU_CHECK_DEVICE (cuda; "cpu" runs only the training part on the CPU, to try the script
#   on a machine without a GPU -- its numbers are not GPU evidence), EXTRA_ARGS (more
#   --key=value overrides for the training runs, e.g. smaller sizes for such a try).
# Exit status: 0 when every stage passed, 1 otherwise (the summary says which failed).
set -uo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 RESULTS_DIR" >&2
    exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
cd "$root"

STEPS="${STEPS:-300}"
MODES="${MODES:-none full}"
EVAL_INTERVAL="${EVAL_INTERVAL:-100}"
EVAL_ITERS="${EVAL_ITERS:-20}"
EXTRA_ARGS="${EXTRA_ARGS:-}"
DEVICE="${GPU_CHECK_DEVICE:-cuda}"
CONF=configs/small_4070.conf
# nanoGPT on the RTX 4070 for this config (DESIGN.md): card total and Python process
NANOGPT_CARD_MIB=6582
NANOGPT_PROC_MIB=4464

declare -A status
fail=0
stage() { # name rc
    if [ "$2" -eq 0 ]; then status[$1]=pass; else status[$1]="FAIL (rc $2)"; fail=1; fi
    echo "gpu_check: $1: ${status[$1]}"
}

# --- 1. machine -----------------------------------------------------------------------------
{
    echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)"
    echo "branch: $(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)"
    echo "dirty: $(git status --porcelain 2>/dev/null | grep -v '^??' | wc -l) modified tracked files"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $(uname -srm)"
    echo "cpus: $(nproc)"
} >"$out/machine.txt"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi >"$out/nvidia-smi.txt" 2>&1
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv \
        >>"$out/machine.txt" 2>&1
    gpu_name="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
else
    echo "nvidia-smi: not found" >>"$out/machine.txt"
    gpu_name=""
fi
NVCC="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
"$NVCC" --version >>"$out/machine.txt" 2>&1 || true

# --- 2. build and test-gpu ------------------------------------------------------------------
make -j"$(nproc)" CUDA=1 arenagpt >"$out/build.log" 2>&1
stage build $?
if [ "$DEVICE" = cuda ]; then
    make CUDA=1 test-gpu >"$out/test-gpu.log" 2>&1
    stage test-gpu $?
fi

# --- 3. no stray device allocation ----------------------------------------------------------
bash scripts/check_no_malloc.sh >"$out/check_no_malloc.log" 2>&1
stage check_no_malloc $?

# --- data -----------------------------------------------------------------------------------
TEXT="${TEXT:-}"
for t in "$TEXT" "$root/../shared/data/tinyshakespeare.txt" "$root/shared/data/tinyshakespeare.txt" \
    /work/shared/data/tinyshakespeare.txt; do
    if [ -n "$t" ] && [ -f "$t" ]; then TEXT="$t"; break; fi
done
DATA_DIR="${DATA_DIR:-datasets/shakespeare_gpt2}"
tokens="gpt2"
if [ ! -f "$DATA_DIR/train.bin" ]; then
    if [ -f .cache/gpt2/encoder.json ] || bash scripts/fetch_vocab.sh >"$out/prepare.log" 2>&1; then
        ./arenagpt prepare --input="$TEXT" --out="$DATA_DIR" --tokenizer=gpt2 >>"$out/prepare.log" 2>&1
    else
        tokens="char (the GPT-2 vocabulary was not available)"
        DATA_DIR=datasets/shakespeare_char_gpu_check
        ./arenagpt prepare --input="$TEXT" --out="$DATA_DIR" --tokenizer=char >>"$out/prepare.log" 2>&1
    fi
    stage prepare $?
elif [ -f "$DATA_DIR/tokenizer_llmc.bin" ]; then
    tokens="gpt2"
else
    tokens="as prepared in $DATA_DIR (no GPT-2 tokenizer file there: char)"
fi
echo "data: $DATA_DIR, tokens: $tokens, text: $TEXT" >>"$out/machine.txt"

# --- 4. compute-sanitizer -------------------------------------------------------------------
if [ "$DEVICE" = cuda ]; then
    SAN="$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)"
    if [ -x "$SAN" ]; then
        "$SAN" --tool memcheck --error-exitcode 99 --leak-check full \
            build/cuda/tests/gpu/test_cuda_backend >"$out/memcheck-test-gpu.log" 2>&1
        stage memcheck-test-gpu $?
        for mode in none full; do
            "$SAN" --tool memcheck --error-exitcode 99 ./arenagpt train "$CONF" --device=cuda \
                --data_dir="$DATA_DIR" --out_dir="$out/memcheck-$mode-out" --recompute=$mode \
                --batch_size=2 --block_size=64 --gradient_accumulation_steps=2 --max_iters=3 \
                --eval_interval=2 --eval_iters=1 --log_interval=1 \
                >"$out/memcheck-train-$mode.log" 2>&1
            stage memcheck-train-$mode $?
        done
    else
        status[memcheck]="not run (compute-sanitizer not found)"
        fail=1
    fi
fi

# --- 5. training runs -----------------------------------------------------------------------
for mode in $MODES; do
    log="$out/train-$mode.log"
    smi_log="$out/nvidia-smi-$mode.csv"
    smi_pid=""
    if command -v nvidia-smi >/dev/null 2>&1 && [ "$DEVICE" = cuda ]; then
        nvidia-smi --query-gpu=timestamp,memory.used,memory.total,utilization.gpu \
            --format=csv -l 1 >"$smi_log" 2>&1 &
        smi_pid=$!
    fi
    start=$(date +%s)
    ./arenagpt train "$CONF" --device="$DEVICE" --data_dir="$DATA_DIR" \
        --out_dir="$out/train-$mode-out" --recompute="$mode" --max_iters="$STEPS" \
        --eval_interval="$EVAL_INTERVAL" --eval_iters="$EVAL_ITERS" --log_interval=10 \
        ${EXTRA_ARGS:-} >"$log" 2>&1 &
    train_pid=$!
    # per-process memory of the trainer, as nvidia-smi shows it
    if [ -n "$smi_pid" ]; then
        while kill -0 "$train_pid" 2>/dev/null; do
            nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null |
                awk -F', *' -v p="$train_pid" '$1 == p { print $2 }' >>"$out/proc-mem-$mode.txt"
            sleep 1
        done
    fi
    wait "$train_pid"
    rc=$?
    [ -n "$smi_pid" ] && kill "$smi_pid" 2>/dev/null
    echo "wall: $(($(date +%s) - start)) s" >>"$log"
    stage train-$mode $rc
done

# --- 5b. where the unaccounted remainder goes: the same config with eager module loading ------
# (a few iterations: kernel code is then loaded with the context, so the reconciliation's
# unaccounted line should shrink to ~0 and the context line grow by the same amount)
if [ "$DEVICE" = cuda ]; then
    CUDA_MODULE_LOADING=EAGER ./arenagpt train "$CONF" --device=cuda --data_dir="$DATA_DIR" \
        --out_dir="$out/train-eager-out" --recompute=none --max_iters=5 --eval_interval=5 \
        --eval_iters=1 --log_interval=1 ${EXTRA_ARGS:-} >"$out/train-none-eager.log" 2>&1
    stage train-none-eager $?
fi

# --- 6. summary -----------------------------------------------------------------------------
# MFU from tokens/s and gpt.c's FLOP count (matmul FLOPs, 2 per multiply-add, attention over
# the full T x T): training = 3 x forward (+ the forward that recompute=full repeats).
peak_tflops() {
    case "$1" in
    *H200*) echo 989.4 ;;
    *H100*PCIe*) echo 756.5 ;;
    *H100*NVL*) echo 835.0 ;;
    *H100*) echo 989.4 ;;
    *A100*) echo 312.0 ;;
    *"RTX 4070 Ti"* | *"RTX 4070 SUPER"*) echo 0 ;;
    *"RTX 4070"*) echo 58.3 ;;
    *) echo 0 ;;
    esac
}
peak="$(peak_tflops "$gpu_name")"
conf_val() { awk -F'=' -v k="$1" '$1 ~ "^"k"[ ]*$" { gsub(/[ \047]/, "", $2); print $2 }' "$CONF"; }
L=$(conf_val n_layer); C=$(conf_val n_embd); T=$(conf_val block_size); Vp=$(conf_val vocab_size)

{
    echo "# GPU check: $(git rev-parse --short HEAD 2>/dev/null)"
    echo
    echo "- GPU: ${gpu_name:-none} ($(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1 || echo n/a)); device used: $DEVICE"
    echo "- config: $CONF, $STEPS iterations, eval every $EVAL_INTERVAL (eval_iters $EVAL_ITERS)"
    echo "- data: $DATA_DIR, tokens: $tokens"
    echo "- peak dense f16 tensor TFLOP/s used for MFU: ${peak} (0 = unknown GPU, MFU n/a)"
    echo
    echo "## stages"
    echo
    for k in "${!status[@]}"; do echo "- $k: ${status[$k]}"; done | sort
    echo
    echo "## training"
    echo
    echo "| recompute | final train loss | final val loss | ms/iter (median) | tokens/s (median) | MFU | arena peak MiB | nvidia-smi process peak MiB |"
    echo "|---|---|---|---|---|---|---|---|"
    for mode in $MODES; do
        log="$out/train-$mode.log"
        [ -f "$log" ] || continue
        evalline=$(grep -E '^step [0-9]+: train loss' "$log" | tail -1)
        tl=$(sed -E 's/.*train loss ([0-9.naif]+).*/\1/' <<<"$evalline")
        vl=$(sed -E 's/.*val loss ([0-9.naif]+).*/\1/' <<<"$evalline")
        # iteration lines after the first log interval (warm-up excluded when there are more)
        iters=$(grep -E '^iter [0-9]+/' "$log")
        [ "$(wc -l <<<"$iters")" -gt 1 ] && iters=$(tail -n +2 <<<"$iters")
        median='{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "n/a" }'
        ms=$(sed -nE 's/.* ([0-9.]+) ms\/iter.*/\1/p' <<<"$iters" | sort -g | awk "$median")
        tps=$(sed -nE 's/.* ([0-9.]+) tok\/s.*/\1/p' <<<"$iters" | sort -g | awk "$median")
        apeak=$(grep -E '^iter [0-9]+/' "$log" | tail -1 | sed -E 's/.*arena peak ([0-9.]+) MiB.*/\1/')
        ppeak=$(sort -g "$out/proc-mem-$mode.txt" 2>/dev/null | tail -1)
        mfu=$(awk -v tps="$tps" -v peak="$peak" -v L="$L" -v C="$C" -v T="$T" -v Vp="$Vp" -v mode="$mode" 'BEGIN {
            if (peak + 0 <= 0 || tps == "n/a") { print "n/a"; exit }
            fwd = L * (2 * 12 * C * C + 4 * T * C) + 2 * C * Vp
            rec = (mode == "full") ? L * (2 * 8 * C * C + 4 * T * C) : (mode == "selective" ? L * 4 * T * C : 0)
            printf "%.1f%%", 100 * tps * (3 * fwd + rec) / (peak * 1e12) }')
        echo "| $mode | ${tl:-n/a} | ${vl:-n/a} | ${ms:-n/a} | ${tps:-n/a} | $mfu | ${apeak:-n/a} | ${ppeak:-n/a} |"
    done
    echo
    echo "nanoGPT on an RTX 4070, same config (fp16 AMP): $NANOGPT_CARD_MIB MiB on the card, $NANOGPT_PROC_MIB MiB in the process."
    echo
    echo "## memory: plan vs measured, reconciliation (from the training logs)"
    for mode in $MODES none-eager; do
        log="$out/train-$mode.log"
        [ -f "$log" ] || continue
        echo
        echo "### recompute $mode"
        echo
        echo '```'
        sed -n '/^memory plan/,/^$/p' "$log" | head -40
        sed -n '/plan vs measured/,/^$/p' "$log" | head -30
        sed -n '/^device memory/,/^$/p' "$log" | head -30
        echo '```'
    done
    echo
    echo "Raw logs: build.log, test-gpu.log, memcheck-*.log, train-*.log, nvidia-smi*.{txt,csv}, proc-mem-*.txt, machine.txt."
} >"$out/summary.md"

echo "gpu_check: summary in $out/summary.md"
exit $fail
