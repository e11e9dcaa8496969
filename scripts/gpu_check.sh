#!/usr/bin/env bash
# gpu_check.sh: the GPU evidence in one command, from the GPU bundle (`make gpu-bundle` writes
# build/gpu-bundle/ with this script in it; docs/GPU.md). Needs nothing outside the bundle but
# the NVIDIA driver, the CUDA 13 runtime libraries (libcudart, libcublas, libcublasLt), and for
# some stages compute-sanitizer and a python3 with PyTorch.
#
# Usage: gpu_check.sh RESULTS_DIR [GROUP ...]
#   GROUP: check, sanitize, table, torch, kernels, or all (the default).
#   Run from the repository (scripts/gpu_check.sh) it builds the bundle first (make gpu-bundle)
#   and runs the bundle's copy: `make gpu-check` does that.
#
# What every run does first (stage env): prints the bundle's commit, the GPU, the driver, the
# CUDA driver and runtime versions (gpu_probe), nvcc's version if there is one, whether the
# binaries find every library, and whether compute-sanitizer accepts the device (the sanitize
# stages are skipped with that reason when it does not). Then the groups, in this order:
#   check     the GPU tests (every tests/test_* of the bundle); the 4070 config
#             (configs/small_4070.conf, tinyshakespeare GPT-2 tokens) trained STEPS steps with
#             recompute none and full: loss at each eval point, ms/iter, tokens/s and MFU as
#             train prints them (MFU names its peak: the project's GPU table), the memory plan
#             vs measured per category and the reconciliation with cudaMemGetInfo/NVML; then
#             5 steps with CUDA_MODULE_LOADING=EAGER (where the unaccounted remainder goes);
#             STEPS steps in dtype=bfloat16 (recompute none); one fine-tune step with optimizer_offload=True (recompute full) from a model
#             trained 2 steps: plan == measured in the device and the host arena.
#   sanitize  compute-sanitizer memcheck (leak check) on the GPU tests, then short training
#             runs: memcheck (recompute full), racecheck, initcheck, synccheck (each where the
#             sanitizer supports it), memcheck (recompute none), in that order of priority.
#   table     the memory table: the 4070 config, every recompute mode x every attention kind
#             the binary offers, TABLE_STEPS steps each; then GPT-2 124M at T=1024 with the
#             largest batch that fits memory_limit=12GiB (arenagpt mem --fit), recompute none
#             and full. Per run: arena peak per category (plan and measured), process memory
#             (NVML in the run's own report, and nvidia-smi sampled), ms/iter, tokens/s.
#   torch     scripts/torch_baseline.py (nanoGPT's model and step in PyTorch) eager and with
#             torch.compile, then ours on the same config (recompute none and full), one after
#             the other after warm-up: tokens/s and peak process memory, ours / theirs.
#   kernels   time per kernel family of one micro-step (kernel_times: CUDA events) at the 4070
#             config, with the automatic loss-head chunk and with the old 166-row chunk, to
#             check docs/results/gpu_estimate.md (a roofline estimate) against the card.
#   all       check, sanitize, table, torch, kernels.
# RESULTS_DIR gets two files: summary.md and logs.tar.gz (every stage's log, nvidia-smi samples).
# Training out_dirs and the logs before packing live in a work folder outside RESULTS_DIR
# (GPU_CHECK_WORK, default a new mktemp -d folder).
#
# Time: every stage has its own timeout; a stage that fails or times out is recorded and the
# next one runs. The whole command keeps inside GPU_CHECK_BUDGET_S seconds (default 560 when
# groups are named, for a machine that allows 10 minutes per command; 0, no limit, for `all`):
# a stage gets at most what is left minus the time to write the results, and a stage with too
# little left is skipped and said so.
# The time of every stage is printed as it ends, and is in summary.md.
#
# Environment: GPU_CHECK_DEVICE=cuda (default) or cpu: the same stages end to end on the CPU
#   with reduced sizes (a tiny model, a few steps), to try the script where there is no GPU;
#   the GPU-only stages are then skipped with that reason, and no number is GPU evidence.
#   STEPS, TABLE_STEPS, TORCH_STEPS, TORCH_WARMUP, EVAL_INTERVAL, EVAL_ITERS, MODES: sizes;
#   PYTHON: the python3 with PyTorch (default: the first of python3, /usr/bin/python3 that has
#   it, and CUDA when the device is cuda); COMPUTE_SANITIZER: its path; EXTRA_ARGS: more
#   --key=value for every training run.
# Exit status: 0 when no stage failed (skipped stages are not failures), 1 otherwise, 2 usage.
set -uo pipefail

usage() {
    echo "usage: $0 RESULTS_DIR [check|sanitize|table|torch|kernels|all ...]" >&2
    exit 2
}
[ $# -ge 1 ] || usage
here="$(cd "$(dirname "$0")" && pwd)"

# --- the repository's copy: build the bundle, run the bundle's copy ------------------------------
if [ ! -x "$here/arenagpt" ] && [ -f "$here/../Makefile" ]; then
    make -C "$here/.." gpu-bundle >&2 || {
        echo "gpu_check: make gpu-bundle failed" >&2
        exit 1
    }
    exec "$here/../build/gpu-bundle/gpu_check.sh" "$@"
fi
B="$here" # the bundle
[ -x "$B/arenagpt" ] || {
    echo "gpu_check: $B/arenagpt is missing: run it from a bundle (make gpu-bundle)" >&2
    exit 2
}

RESULTS_ARG="$1"
shift
GROUPS_ASKED=("$@")
[ ${#GROUPS_ASKED[@]} -eq 0 ] && GROUPS_ASKED=(all)
RUN_GROUPS=()
for g in "${GROUPS_ASKED[@]}"; do
    case "$g" in
    check | sanitize | table | torch | kernels) RUN_GROUPS+=("$g") ;;
    all) RUN_GROUPS+=(check sanitize table torch kernels) ;;
    *)
        echo "gpu_check: unknown group '$g' (expected check, sanitize, table, torch, kernels or all)" >&2
        usage
        ;;
    esac
done
mkdir -p "$RESULTS_ARG" || exit 2
RESULTS="$(cd "$RESULTS_ARG" && pwd)"
DEVICE="${GPU_CHECK_DEVICE:-cuda}"
case "$DEVICE" in cuda | cpu) ;; *)
    echo "gpu_check: GPU_CHECK_DEVICE=$DEVICE: expected cuda or cpu" >&2
    exit 2
    ;;
esac
WORK="${GPU_CHECK_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}"
case "$WORK/" in "$RESULTS"/*)
    echo "gpu_check: GPU_CHECK_WORK ($WORK) must be outside RESULTS_DIR ($RESULTS)" >&2
    exit 2
    ;;
esac
LOGS="$WORK/logs"
mkdir -p "$LOGS" "$WORK/out" || exit 2
START=$(date +%s)
# a time budget by default only for a chosen group or groups (one 10-minute command each on a
# lent machine); `all` (a user's own card, the dry run) runs without one unless asked
BUDGET_S="${GPU_CHECK_BUDGET_S:-$([ "${GROUPS_ASKED[*]}" = all ] && echo 0 || echo 560)}"
RESERVE_S=20 # kept for the summary and the tarball
DATA="$B/data/shakespeare_gpt2"

# sizes: the GPU's, or the CPU dry run's (a tiny model: the stages run, the numbers mean nothing)
if [ "$DEVICE" = cuda ]; then
    CONF="$B/configs/small_4070.conf"
    BIG_CONF="$B/configs/gpt2_124m.conf"
    SIZE_ARGS=()
    BIG_ARGS=()
    FIT=12GiB
    STEPS="${STEPS:-300}"
    EVAL_INTERVAL="${EVAL_INTERVAL:-100}"
    EVAL_ITERS="${EVAL_ITERS:-20}"
    LOG_INTERVAL=10
    SHORT_LOG_INTERVAL=5 # the table's 20-step runs: 4 log lines, the first one left out
    TABLE_STEPS="${TABLE_STEPS:-20}"
    TORCH_STEPS="${TORCH_STEPS:-50}"
    TORCH_WARMUP="${TORCH_WARMUP:-10}"
    T_TEST=300 T_TRAIN=150 T_SAN=240 T_TABLE=60 T_BIG=120 T_TORCH=240 T_KERNELS=120
    KERNEL_REPS="${KERNEL_REPS:-10}"
else
    CONF="$B/configs/tiny.conf"
    BIG_CONF="$B/configs/tiny.conf"
    SIZE_ARGS=(--n_layer=2 --n_head=2 --n_embd=64 --block_size=32 --batch_size=2
        --gradient_accumulation_steps=1)
    BIG_ARGS=(--n_layer=2 --n_head=2 --n_embd=64 --block_size=32)
    FIT=256MiB
    STEPS="${STEPS:-4}"
    EVAL_INTERVAL="${EVAL_INTERVAL:-2}"
    EVAL_ITERS="${EVAL_ITERS:-1}"
    LOG_INTERVAL=1
    SHORT_LOG_INTERVAL=1
    TABLE_STEPS="${TABLE_STEPS:-2}"
    TORCH_STEPS="${TORCH_STEPS:-2}"
    TORCH_WARMUP="${TORCH_WARMUP:-1}"
    T_TEST=60 T_TRAIN=60 T_SAN=60 T_TABLE=60 T_BIG=60 T_TORCH=90 T_KERNELS=60
    KERNEL_REPS="${KERNEL_REPS:-1}"
fi
MODES="${MODES:-none full}"
# the short runs (table, ours next to PyTorch): one evaluation of one batch, no checkpoint but
# the final one
SHORT=(--eval_interval=100000 --eval_iters=1 --checkpoint_interval=100000)
read -r -a EXTRA <<<"${EXTRA_ARGS:-}"

# --- stage bookkeeping ---------------------------------------------------------------------------
ST_NAME=()
ST_STATUS=()
ST_SECS=()
failed=0
record() { # name status seconds
    ST_NAME+=("$1")
    ST_STATUS+=("$2")
    ST_SECS+=("$3")
    case "$2" in FAIL* | TIMEOUT*) failed=1 ;; esac
    printf 'gpu_check: [%s] %s (%s s, %s s since start)\n' "$1" "$2" "$3" "$(($(date +%s) - START))"
}
status_of() { # name -> its status, or "not run"
    local i
    for i in "${!ST_NAME[@]}"; do [ "${ST_NAME[$i]}" = "$1" ] && {
        echo "${ST_STATUS[$i]}"
        return
    }; done
    echo "not run"
}
amend_last() { # status: replaces the last stage's status (a refusal that is not a failure)
    ST_STATUS[${#ST_STATUS[@]} - 1]="$1"
    echo "gpu_check: [${ST_NAME[${#ST_NAME[@]} - 1]}] is $1"
    local st
    failed=0
    for st in "${ST_STATUS[@]}"; do case "$st" in FAIL* | TIMEOUT*) failed=1 ;; esac; done
}
time_left() { # seconds left for stages, or a large number without a budget
    if [ "$BUDGET_S" -le 0 ]; then echo 999999; else echo $((BUDGET_S - RESERVE_S - ($(date +%s) - START))); fi
}

# nvidia-smi's per-process memory, sampled every half second into a file, summed over the
# compute processes (on a machine where only this check runs, that is the run's process)
SAMPLER=""
sampler_start() { # file
    SAMPLER=""
    [ "$DEVICE" = cuda ] && command -v nvidia-smi >/dev/null 2>&1 || return 0
    (
        while :; do
            nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null |
                awk -F', *' '$2 ~ /^[0-9]+$/ { s += $2; n++ } END { if (n) print s }'
            sleep 0.5
        done
    ) >"$1" 2>/dev/null &
    SAMPLER=$!
}
sampler_stop() {
    if [ -n "$SAMPLER" ]; then
        kill "$SAMPLER" 2>/dev/null
        wait "$SAMPLER" 2>/dev/null
    fi
    SAMPLER=""
}

# run_stage NAME LIMIT_S CMD...: output to $LOGS/NAME.log, timeout, time, status
run_stage() {
    local name="$1" limit="$2"
    shift 2
    local left
    left=$(time_left)
    if [ "$left" -lt 15 ]; then
        record "$name" "skipped (the command's time budget of ${BUDGET_S} s is spent)" 0
        return 0
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    local t0 rc
    t0=$(date +%s)
    sampler_start "$LOGS/$name.smi"
    timeout -k 10 "$limit" "$@" >"$LOGS/$name.log" 2>&1
    rc=$?
    sampler_stop
    local dt=$(($(date +%s) - t0))
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        record "$name" "TIMEOUT after ${limit} s" "$dt"
    elif [ $rc -eq 0 ]; then
        record "$name" pass "$dt"
    else
        record "$name" "FAIL (exit $rc): $(grep -v '^\s*$' "$LOGS/$name.log" | tail -1 | cut -c1-160)" "$dt"
    fi
    return $rc
}
skip_stage() { # name reason
    record "$1" "skipped ($2)" 0
}

train() { # NAME LIMIT_S CONFIG ARGS...: arenagpt train with its out_dir under the work folder
    # (the dry run's reduced sizes are added unless NO_SIZE_ARGS=1: the runs that size the batch)
    local name="$1" limit="$2" conf="$3" size=("${SIZE_ARGS[@]}")
    shift 3
    [ "${NO_SIZE_ARGS:-0}" = 1 ] && size=()
    run_stage "$name" "$limit" "$B/arenagpt" train "$conf" --device="$DEVICE" --data_dir="$DATA" \
        --out_dir="$WORK/out/$name" "${size[@]}" "$@" "${EXTRA[@]}"
    local rc=$?
    rm -rf "$WORK/out/$name" # checkpoints are not evidence; the log is
    return $rc
}

# --- reading the logs ----------------------------------------------------------------------------
any_file() { # paths (globs, expanded or not): 0 when one of them exists
    local f
    for f in "$@"; do [ -e "$f" ] && return 0; done
    return 1
}
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "n/a" }'; }
iter_lines() { # log: the iteration lines, the first one (warm-up) left out when there are more
    local it
    it=$(grep -E '^iter [0-9]+/' "$1" 2>/dev/null)
    [ "$(grep -c . <<<"$it")" -gt 1 ] && it=$(tail -n +2 <<<"$it")
    printf '%s\n' "$it"
}
ms_iter() { iter_lines "$1" | sed -nE 's/.* ([0-9.]+) ms\/iter.*/\1/p' | median; }
tok_s() { iter_lines "$1" | sed -nE 's/.* ([0-9.]+) tok\/s.*/\1/p' | median; }
mfu() { iter_lines "$1" | sed -nE 's/.*mfu ([0-9.]+)%.*/\1/p' | median | sed -E 's/^([0-9.]+)$/\1%/'; }
peak_line() { grep -m1 -E '^GPU: ' "$1" 2>/dev/null | sed -E 's/^GPU: //'; }
smi_peak() { sort -g "$1" 2>/dev/null | tail -1 | grep . || echo n/a; }
proc_now() { sed -nE 's/.*this process now \(what nvidia-smi shows\) +([0-9.]+) MiB.*/\1/p' "$1" 2>/dev/null | tail -1 | grep . || echo n/a; }
cat_cols() { # log: "plan/measured" MiB per category and the peak, from the plan-vs-measured block
    awk '/^memory: plan vs measured/ { on = 1; next }
         on && /^  (params|grads|optimizer|activations|workspace|peak \(sum\)) / {
             split($0, f, " +"); p = f[3]; m = f[4]; if (f[3] == "(sum)") { p = f[4]; m = f[5] }
             printf "%s%.1f/%.1f", sep, p / 1048576, m / 1048576; sep = " | " }
         on && /plan == measured/ { exit }' "$1" 2>/dev/null
}
dev_now() { # log: cudaMemGetInfo's device-wide use at the end of the run (the reconciliation's "now")
    sed -nE 's/^  now +([0-9.]+) MiB.*/\1/p' "$1" 2>/dev/null | tail -1 | grep . || echo n/a
}
plan_equal() { grep -m1 -E '^  plan == measured:' "$1" 2>/dev/null | sed -E 's/^  plan == measured: //' | grep . || echo n/a; }
eval_points() { # log: "step: train/val" for every eval point
    grep -E '^step [0-9]+: train loss' "$1" 2>/dev/null |
        sed -E 's/^step ([0-9]+): train loss ([0-9.naifNIF]+), val loss ([0-9.naifNIF]+).*/\1: \2 \/ \3/' |
        paste -sd ';' - | sed 's/;/; /g'
}
kv() { # file key: the value of key=value on the RESULT line
    grep -m1 'torch_baseline: RESULT' "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | grep . || echo n/a
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }

# --- the summary and the tarball (also written when the command is stopped) ----------------------
ENV_TXT="$LOGS/env.txt"
summary_written=0
write_results() {
    [ $summary_written -eq 1 ] && return
    summary_written=1
    sampler_stop
    local s="$RESULTS/summary.md"
    {
        echo "# arenagpt GPU check"
        echo
        echo "- groups: ${RUN_GROUPS[*]}; device: $DEVICE$([ "$DEVICE" = cpu ] && echo ' (dry run on the CPU: reduced sizes, no figure here is GPU evidence)')"
        sed -n 's/^\(commit\|built\): /- bundle \1: /p' "$B/MANIFEST.txt" 2>/dev/null
        grep -E '^(gpu|driver|cuda|nvcc|sanitizer|libraries|host|date): ' "$ENV_TXT" 2>/dev/null | sed 's/^/- /'
        echo "- total time: $(($(date +%s) - START)) s (budget ${BUDGET_S} s; 0 = none)"
        echo
        echo "## stages"
        echo
        echo "| stage | status | seconds |"
        echo "|---|---|---|"
        local i
        for i in "${!ST_NAME[@]}"; do
            echo "| ${ST_NAME[$i]} | ${ST_STATUS[$i]//|/\\|} | ${ST_SECS[$i]} |"
        done
        summary_check
        summary_table
        summary_torch
        summary_kernels
        echo
        echo "Logs: logs.tar.gz (logs/<stage>.log, logs/<stage>.smi: nvidia-smi process MiB every 0.5 s, logs/env.txt)."
    } >"$s"
    tar -C "$WORK" -czf "$RESULTS/logs.tar.gz" logs 2>/dev/null
    # the return limit is 16 MiB a file: keep each log's head and tail if the logs are larger
    if [ "$(stat -c %s "$RESULTS/logs.tar.gz" 2>/dev/null || echo 0)" -gt $((15 * 1024 * 1024)) ]; then
        local f
        for f in "$LOGS"/*; do
            if [ "$(stat -c %s "$f")" -gt $((1024 * 1024)) ]; then
                { head -c 400000 "$f"; echo; echo "[... cut by gpu_check.sh to fit the return limit ...]"; tail -c 400000 "$f"; } >"$f.cut"
                mv "$f.cut" "$f"
            fi
        done
        tar -C "$WORK" -czf "$RESULTS/logs.tar.gz" logs 2>/dev/null
    fi
    echo "gpu_check: results in $RESULTS (summary.md, logs.tar.gz); work folder $WORK"
}
on_signal() {
    echo "gpu_check: stopped by a signal: writing what there is" >&2
    record interrupted "FAIL (stopped by a signal)" 0
    write_results
    exit 1
}
trap on_signal INT TERM

summary_check() {
    any_file "$LOGS"/train-*.log "$LOGS"/test-*.log || return 0
    echo
    echo "## check: GPU tests and training ($(basename "$CONF"), $STEPS steps)"
    echo
    local t
    for t in "$LOGS"/test-*.log; do
        [ -f "$t" ] || continue
        case "$(status_of "$(basename "$t" .log)")" in skipped*) continue ;; esac
        echo "- $(basename "$t" .log): $(grep -E '^\[  (PASSED|FAILED)  \]' "$t" | paste -sd ' ' - | grep . || echo 'no cmocka summary line (see the log)')"
    done
    local mode log
    for mode in $MODES; do
        log="$LOGS/train-$mode.log"
        [ -f "$log" ] || continue
        echo
        echo "### recompute $mode"
        echo
        echo "- GPU and the peak MFU is taken against (train's own line): $(peak_line "$log" | grep . || echo n/a)"
        echo "- loss at the eval points (step: train / val): $(eval_points "$log" | grep . || echo n/a)"
        echo "- ms/iter $(ms_iter "$log"), tokens/s $(tok_s "$log"), MFU $(mfu "$log" | grep . || echo n/a) (medians over the log lines after the first)"
        echo "- nvidia-smi process peak (sampled): $(smi_peak "$LOGS/train-$mode.smi") MiB; plan == measured: $(plan_equal "$log")"
        echo
        echo '```'
        sed -n '/^memory: plan vs measured/,/plan == measured/p' "$log"
        sed -n '/^device memory (reconciliation/,/CUDA_MODULE_LOADING=EAGER moves/p' "$log"
        echo '```'
    done
    log="$LOGS/train-bf16.log"
    if [ -f "$log" ]; then
        echo
        echo "### dtype bfloat16, recompute none"
        echo
        echo "- loss at the eval points (step: train / val): $(eval_points "$log" | grep . || echo n/a)"
        echo "- ms/iter $(ms_iter "$log"), tokens/s $(tok_s "$log"), MFU $(mfu "$log" | grep . || echo n/a) (medians over the log lines after the first)"
        echo "- nvidia-smi process peak (sampled): $(smi_peak "$LOGS/train-bf16.smi") MiB; plan == measured: $(plan_equal "$log")"
    fi
    log="$LOGS/train-offload.log"
    if [ -f "$log" ]; then
        echo
        echo "### optimizer_offload: one fine-tune step (optimizer state in pinned host memory)"
        echo
        echo '```'
        grep -E '^iter |plan == measured|^resumed|^init' "$log"
        echo '```'
    fi
    log="$LOGS/train-none-eager.log"
    if [ -f "$log" ]; then
        echo
        echo "### recompute none, CUDA_MODULE_LOADING=EAGER (5 steps)"
        echo
        echo '```'
        sed -n '/^device memory (reconciliation/,/CUDA_MODULE_LOADING=EAGER moves/p' "$log"
        echo '```'
    fi
}

summary_table() {
    any_file "$LOGS"/table-*.log || return 0
    echo
    echo "## table: memory per recompute mode and attention kind ($TABLE_STEPS steps each)"
    echo
    echo "Arena MiB as plan/measured per category; process MiB as the run's NVML report ('this process now') and nvidia-smi sampled (peak)."
    echo
    echo "| config | recompute | attention | batch | params | grads | optimizer | activations | workspace | peak | process (NVML) | process (nvidia-smi peak) | ms/iter | tokens/s | status |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    local log name i
    for i in "${!ST_NAME[@]}"; do # in the order they ran
        name=${ST_NAME[$i]}
        case "$name" in table-*) ;; *) continue ;; esac
        log="$LOGS/$name.log"
        local conf mode att batch
        IFS=- read -r _ conf mode att batch <<<"$name"
        local cols
        cols=$(cat_cols "$log")
        [ -n "$cols" ] || cols="n/a | n/a | n/a | n/a | n/a | n/a"
        echo "| $conf | $mode | $att | ${batch:-cfg} | $cols | $(proc_now "$log") | $(smi_peak "$LOGS/$name.smi") | $(ms_iter "$log") | $(tok_s "$log") | $(status_of "$name") |"
    done
    [ -f "$LOGS/fit.log" ] && {
        echo
        echo "Largest batch under memory_limit=$FIT (arenagpt mem --fit, $(basename "$BIG_CONF")):"
        echo
        echo '```'
        cat "$LOGS/fit.log"
        echo '```'
    }
}

summary_kernels() {
    any_file "$LOGS"/kernels-*.log || return 0
    echo
    echo "## kernels: time per kernel family of one micro-step ($(basename "$CONF"))"
    echo
    echo "Compare with docs/results/gpu_estimate.md (a roofline estimate; these are measurements on this device)."
    echo
    local log
    for log in "$LOGS"/kernels-*.log; do
        echo "- $(basename "$log" .log): $(grep '^shapes ' "$log" | head -1)"
    done
    echo
    echo "| family | $(for log in "$LOGS"/kernels-*.log; do printf '%s ms | ' "$(basename "$log" .log)"; done)"
    echo "|---|$(for log in "$LOGS"/kernels-*.log; do printf -- '---:|'; done)"
    local fam
    for fam in $(grep -ho '^family [a-z_]*' "$LOGS"/kernels-*.log | awk '{ print $2 }' | awk '!seen[$0]++'); do
        printf '| %s |' "$fam"
        for log in "$LOGS"/kernels-*.log; do
            printf ' %s |' "$(sed -n "s/^family $fam ms \([0-9.]*\).*/\1/p" "$log" | head -1 | grep . || echo n/a)"
        done
        echo
    done
}

summary_torch() {
    any_file "$LOGS"/torch-*.log "$LOGS"/ours-*.log || return 0
    echo
    echo "## torch: PyTorch baseline and ours, same config ($(basename "$CONF")), same machine"
    echo
    echo "| run | tokens/s | ms/iter | torch peak allocated MiB | torch peak reserved MiB | device used at the end MiB (cudaMemGetInfo) | process MiB (nvidia-smi peak) | status |"
    echo "|---|---|---|---|---|---|---|---|"
    local m f
    for m in eager compile; do
        f="$LOGS/torch-$m.log"
        [ -f "$f" ] || continue
        echo "| PyTorch $m | $(kv "$f" tokens_per_s) | $(kv "$f" ms_per_iter) | $(kv "$f" peak_allocated_mib) | $(kv "$f" peak_reserved_mib) | $(kv "$f" device_used_mib) | $(smi_peak "$LOGS/torch-$m.smi") | $(status_of "torch-$m") |"
    done
    for m in $MODES; do
        f="$LOGS/ours-$m.log"
        [ -f "$f" ] || continue
        echo "| arenagpt recompute $m | $(tok_s "$f") | $(ms_iter "$f") | arena peak $(grep -E '^iter ' "$f" | tail -1 | sed -nE 's/.*arena peak ([0-9.]+) MiB.*/\1/p') | - | $(dev_now "$f") | $(smi_peak "$LOGS/ours-$m.smi") | $(status_of "ours-$m") |"
    done
    echo
    echo "Ratios, ours / PyTorch (tokens/s: higher is better for us; process memory: lower is better for us):"
    echo
    for m in $MODES; do
        local o="$LOGS/ours-$m.log" th
        [ -f "$o" ] || continue
        for th in eager compile; do
            f="$LOGS/torch-$th.log"
            [ -f "$f" ] || continue
            echo "- recompute $m vs PyTorch $th: tokens/s $(ratio "$(tok_s "$o")" "$(kv "$f" tokens_per_s)"), process memory $(ratio "$(smi_peak "$LOGS/ours-$m.smi")" "$(smi_peak "$LOGS/torch-$th.smi")")"
        done
    done
    grep -h 'torch_baseline: FALLBACK' "$LOGS"/torch-*.log 2>/dev/null | sort -u | sed 's/^torch_baseline: FALLBACK /- PyTorch fell back: /'
}

# --- env: the machine, the versions, the libraries, the sanitizer -------------------------------
stage_env() {
    local t0
    t0=$(date +%s)
    {
        echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "host: $(uname -srm), $(nproc) CPUs, $(ldd --version 2>/dev/null | head -1)"
        if command -v nvidia-smi >/dev/null 2>&1; then
            echo "gpu: $(nvidia-smi --query-gpu=name,memory.total,compute_cap --format=csv,noheader 2>/dev/null | paste -sd ';' -)"
            echo "driver: $(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)"
            # the card as found (clocks, power, other processes), for the logs
            timeout 30 nvidia-smi >"$LOGS/nvidia-smi.txt" 2>&1
            timeout 30 nvidia-smi -q >"$LOGS/nvidia-smi-q.txt" 2>&1
        else
            echo "gpu: none seen (no nvidia-smi)"
        fi
        echo "cuda: $("$B/gpu_probe" 2>&1 | head -1 | sed 's/^gpu_probe: //')"
        local nv
        nv=$(command -v nvcc || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; })
        echo "nvcc: $([ -n "$nv" ] && "$nv" --version | grep -m1 release || echo 'not found (not needed)')"
    } >"$ENV_TXT"
    # the binaries' libraries: if the CUDA ones are not where the rpath says, look in the usual
    # places (the CUDA toolkit, PyTorch's nvidia wheels) before giving up
    local missing
    missing=$(ldd "$B/arenagpt" "$B/gpu_probe" "$B"/tests/* 2>/dev/null | grep 'not found' | sort -u)
    if [ -n "$missing" ]; then
        local d
        for d in /usr/local/cuda/lib64 /usr/local/cuda-13*/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
            $(ls -d /usr/local/lib/python3*/dist-packages/nvidia/*/lib /opt/*/.venv/lib/python3*/site-packages/nvidia/*/lib 2>/dev/null); do
            [ -d "$d" ] && ls "$d"/libcublas*.so* "$d"/libcudart*.so* >/dev/null 2>&1 &&
                export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
        done
        missing=$(ldd "$B/arenagpt" "$B/gpu_probe" "$B"/tests/* 2>/dev/null | grep 'not found' | sort -u)
    fi
    if [ -z "$missing" ]; then
        echo "libraries: all found${LD_LIBRARY_PATH:+ (LD_LIBRARY_PATH=$LD_LIBRARY_PATH)}" >>"$ENV_TXT"
    else
        echo "libraries: MISSING $(tr -s ' \t\n' ' ' <<<"$missing")" >>"$ENV_TXT"
    fi
    "$B/gpu_probe" >"$LOGS/gpu_probe.log" 2>&1
    local probe=$?
    # compute-sanitizer: does it accept this device? (memcheck on the probe's one kernel)
    SAN="${COMPUTE_SANITIZER:-$(command -v compute-sanitizer || { [ -x /usr/local/cuda/bin/compute-sanitizer ] && echo /usr/local/cuda/bin/compute-sanitizer; })}"
    SAN_OK=0
    if [ "$DEVICE" != cuda ]; then
        SAN_WHY="GPU_CHECK_DEVICE=$DEVICE: no GPU to sanitize"
    elif [ -z "$SAN" ] || [ ! -x "$SAN" ]; then
        SAN_WHY="compute-sanitizer not found"
    elif [ $probe -ne 0 ]; then
        SAN_WHY="no usable GPU (gpu_probe exit $probe)"
    else
        timeout -k 5 90 "$SAN" --tool memcheck --error-exitcode 99 "$B/gpu_probe" >"$LOGS/sanitizer-probe.log" 2>&1
        local rc=$?
        if [ $rc -eq 0 ] && grep -q 'ERROR SUMMARY: 0 errors' "$LOGS/sanitizer-probe.log"; then
            SAN_OK=1
            SAN_WHY="accepts the device ($("$SAN" --version 2>/dev/null | grep -m1 -i version))"
        else
            SAN_WHY="refuses the device (exit $rc): $(grep -v '^\s*$' "$LOGS/sanitizer-probe.log" | grep -m2 -iE 'not supported|error' | paste -sd ' ' - | cut -c1-200)"
        fi
    fi
    echo "sanitizer: $SAN_WHY" >>"$ENV_TXT"
    cat "$ENV_TXT" "$LOGS/gpu_probe.log"
    if [ "$DEVICE" = cuda ] && [ $probe -ne 0 ]; then
        record env "FAIL (no usable GPU: $(tail -1 "$LOGS/gpu_probe.log"))" $(($(date +%s) - t0))
        GPU_OK=0
    elif [ -n "$missing" ]; then
        record env "FAIL (libraries not found: $(tr -s ' \t\n' ' ' <<<"$missing" | cut -c1-160))" $(($(date +%s) - t0))
        GPU_OK=$([ $probe -eq 0 ] && echo 1 || echo 0)
    else
        record env pass $(($(date +%s) - t0))
        GPU_OK=$([ $probe -eq 0 ] && echo 1 || echo 0)
    fi
}

# --- the groups ----------------------------------------------------------------------------------
group_check() {
    local t name
    for t in "$B"/tests/*; do
        [ -x "$t" ] || continue
        name="test-$(basename "$t" | sed 's/^test_//')"
        if [ "$DEVICE" = cuda ]; then
            run_stage "$name" $T_TEST "$t"
        else
            # no GPU: the test binary must start (its libraries load) and say there is no GPU
            timeout -k 5 60 "$t" >"$LOGS/$name.log" 2>&1
            if grep -q 'no usable CUDA device' "$LOGS/$name.log"; then
                skip_stage "$name" "no GPU; the binary loads and says so"
            else
                record "$name" "FAIL (without a GPU it should say so: $(tail -1 "$LOGS/$name.log" | cut -c1-120))" 0
            fi
        fi
    done
    local mode
    for mode in $MODES; do
        train "train-$mode" $T_TRAIN "$CONF" --recompute="$mode" --max_iters="$STEPS" \
            --eval_interval="$EVAL_INTERVAL" --eval_iters="$EVAL_ITERS" --log_interval=$LOG_INTERVAL \
            --checkpoint_interval=100000 # checkpoint writes stay out of the timed steps
    done
    if [ "$DEVICE" = cuda ]; then
        CUDA_MODULE_LOADING=EAGER train train-none-eager 90 "$CONF" --recompute=none --max_iters=5 \
            --eval_interval=5 --eval_iters=1 --log_interval=1
        # dtype=bfloat16 (no loss scaler; f32 weight gradients, its default): the same steps
        train train-bf16 $T_TRAIN "$CONF" --dtype=bfloat16 --recompute=none --max_iters="$STEPS" \
            --eval_interval="$EVAL_INTERVAL" --eval_iters="$EVAL_ITERS" --log_interval=$LOG_INTERVAL \
            --checkpoint_interval=100000
    else
        skip_stage train-bf16 "dtype=bfloat16 runs on the GPU only (the CPU backend refuses it)"
    fi
    group_check_offload
}

# optimizer_offload: one fine-tune step, from a model trained 2 steps here, with the f32 master
# weights, m and v in pinned host memory and AdamW on the CPU (plan == measured in both arenas)
group_check_offload() {
    if [ "$DEVICE" != cuda ]; then
        skip_stage train-offload "optimizer_offload runs on the GPU only (the CPU backend refuses it)"
        return 0
    fi
    local base="$WORK/out/offload-base"
    run_stage train-offload-base 90 "$B/arenagpt" train "$CONF" --device=cuda --data_dir="$DATA" \
        --out_dir="$base" --max_iters=2 --eval_interval=2 --eval_iters=1 --log_interval=1 \
        "${EXTRA[@]}"
    run_stage train-offload $T_TRAIN "$B/arenagpt" train "$CONF" --device=cuda --data_dir="$DATA" \
        --out_dir="$WORK/out/offload" --init_from="$base" --optimizer_offload=True \
        --recompute=full --max_iters=1 --eval_interval=1 --eval_iters=1 --log_interval=1 \
        "${EXTRA[@]}"
    rm -rf "$base" "$WORK/out/offload"
}

san_train() { # TOOL RECOMPUTE [sanitizer flags]: a short training run under the sanitizer
    local tool="$1" mode="$2"
    shift 2
    run_stage "$tool-train-$mode" $T_SAN "$SAN" --tool "$tool" "$@" --error-exitcode 99 \
        "$B/arenagpt" train "$CONF" --device=cuda --data_dir="$DATA" \
        --out_dir="$WORK/out/san-$tool-$mode" --recompute="$mode" "${SAN_SMALL[@]}"
}

group_sanitize() {
    local t
    if [ "$SAN_OK" -ne 1 ]; then
        skip_stage sanitize "compute-sanitizer: $SAN_WHY"
        return
    fi
    SAN_SMALL=(--batch_size=2 --block_size=64 --gradient_accumulation_steps=2 --max_iters=2
        --eval_interval=2 --eval_iters=1 --log_interval=1)
    for t in "$B"/tests/*; do
        [ -x "$t" ] || continue
        run_stage "memcheck-test-$(basename "$t")" $T_SAN "$SAN" --tool memcheck --leak-check full \
            --error-exitcode 99 "$t"
    done
    # by priority, in case the time budget runs out: memcheck of a run that recomputes, the
    # other sanitizers, then memcheck of recompute none
    san_train memcheck full --leak-check full
    local tool
    for tool in racecheck initcheck synccheck; do
        san_train $tool full && continue
        if grep -qiE 'not supported|unsupported|unrecognized' "$LOGS/$tool-train-full.log"; then
            amend_last "skipped (this compute-sanitizer does not support $tool here: $(grep -m1 -iE 'not supported|unsupported|unrecognized' "$LOGS/$tool-train-full.log" | cut -c1-120))"
        fi
    done
    san_train memcheck none --leak-check full
    rm -rf "$WORK"/out/san-*
}

# the attention kinds this binary offers: the list its own refusal of an unknown kind gives
# ("expected one of naive, flash, cudnn"), else the words before "(" on the --attention help line
attention_kinds() {
    local text kinds
    text=$("$B/arenagpt" mem "$CONF" --attention=gpu_check_asks 2>&1)
    kinds=$(sed -nE 's/.*attention.*expected one of ([a-z_, ]+).*/\1/p' <<<"$text" | head -1 | tr -d ',')
    if [ -z "$kinds" ]; then
        text=$("$B/arenagpt" train --help 2>&1)
        kinds=$(grep -m1 -E '^ +--attention ' <<<"$text" | sed -E 's/^ +--attention +//; s/\(default [^)]*\)//' |
            grep -oE '(^|or |, )[a-z_]+ \(' | sed -E 's/^(or |, )//; s/ \($//' | awk '!seen[$0]++' | paste -sd ' ' -)
    fi
    echo "${kinds:-naive}"
}

group_table() {
    local kinds mode att
    kinds=$(attention_kinds)
    for mode in none selective full; do
        for att in $kinds; do
            train "table-4070-$mode-$att" $T_TABLE "$CONF" --recompute=$mode --attention=$att \
                --max_iters="$TABLE_STEPS" "${SHORT[@]}" --log_interval=$SHORT_LOG_INTERVAL
            # a kind the binary names but refuses to run (exit 2, the reason names it): not a failure
            if [ $? -eq 2 ] && grep -qE "attention ?= ?$att" "$LOGS/table-4070-$mode-$att.log"; then
                amend_last "skipped (refused: $(grep -m1 -E "attention ?= ?$att" "$LOGS/table-4070-$mode-$att.log" | sed 's/^arenagpt train: //' | cut -c1-120))"
            fi
        done
    done
    # GPT-2 124M at its block_size: the largest batch under the limit, per mode (a plan, no GPU)
    local t0
    t0=$(date +%s)
    "$B/arenagpt" mem "$BIG_CONF" --device="$DEVICE" "${BIG_ARGS[@]}" --fit=$FIT --format=json >"$LOGS/fit.log" 2>&1
    local rc=$?
    record fit "$([ $rc -eq 0 ] && echo pass || echo "FAIL (exit $rc)")" $(($(date +%s) - t0))
    for mode in none full; do
        local bs
        # one line per mode (per mode and attention kind where the JSON names kinds: naive's)
        local lines
        lines=$(grep -E "\"recompute\": \"$mode\"" "$LOGS/fit.log")
        grep -q '"attention"' <<<"$lines" && lines=$(grep '"attention": "naive"' <<<"$lines")
        bs=$(sed -nE 's/.*"max_batch_size": ([0-9]+).*/\1/p' <<<"$lines" | head -1)
        if [ -z "$bs" ] || [ "$bs" -lt 1 ]; then
            skip_stage "table-124m-$mode" "no batch fits $FIT (see fit.log)"
            continue
        fi
        # on the CPU dry run the batch is what fits the dry run's small limit, capped to stay quick
        [ "$DEVICE" = cpu ] && [ "$bs" -gt 4 ] && bs=4
        NO_SIZE_ARGS=1 train "table-124m-$mode-naive-$bs" $T_BIG "$BIG_CONF" "${BIG_ARGS[@]}" --recompute=$mode \
            --batch_size="$bs" --gradient_accumulation_steps=1 --memory_limit=$FIT \
            --max_iters="$TABLE_STEPS" "${SHORT[@]}" --log_interval=$SHORT_LOG_INTERVAL
    done
}

find_python() {
    local p
    for p in ${PYTHON:-python3 /usr/bin/python3}; do
        command -v "$p" >/dev/null 2>&1 || continue
        if [ "$DEVICE" = cuda ]; then
            "$p" -c 'import torch, numpy, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null && {
                echo "$p"
                return
            }
        else
            "$p" -c 'import torch, numpy' 2>/dev/null && {
                echo "$p"
                return
            }
        fi
    done
}

group_torch() {
    local py m
    py=$(find_python)
    if [ -z "$py" ]; then
        skip_stage torch "no python3 with PyTorch (and CUDA when the device is cuda) found"
    else
        echo "torch: $py, PyTorch $("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null)" >>"$ENV_TXT"
        for m in eager compile; do
            PYTHONUNBUFFERED=1 run_stage "torch-$m" $T_TORCH "$py" "$B/torch_baseline.py" "$CONF" \
                --data_dir="$DATA" --device="$DEVICE" --mode=$m --steps="$TORCH_STEPS" \
                --warmup="$TORCH_WARMUP" "${SIZE_ARGS[@]}"
        done
    fi
    # ours, right after, on the same config: as many steps as PyTorch's warm-up + timed ones
    local n=$((TORCH_STEPS + TORCH_WARMUP))
    for m in $MODES; do
        train "ours-$m" $T_TRAIN "$CONF" --recompute=$m --max_iters=$n "${SHORT[@]}" \
            --log_interval=$LOG_INTERVAL
    done
}

group_kernels() {
    run_stage kernels-auto $T_KERNELS "$B/kernel_times" "$CONF" --device="$DEVICE" \
        "${SIZE_ARGS[@]}" --reps="$KERNEL_REPS"
    if [ "$DEVICE" = cuda ]; then # the loss head as it was: 166-row chunks (32 MiB of f32 rows)
        run_stage kernels-chunk166 $T_KERNELS "$B/kernel_times" "$CONF" --device=cuda \
            --loss_chunk=166 --reps="$KERNEL_REPS"
    fi
}

# --- run -----------------------------------------------------------------------------------------
echo "gpu_check: bundle $B, device $DEVICE, groups ${RUN_GROUPS[*]}, results $RESULTS, work $WORK"
GPU_OK=0
stage_env
for g in "${RUN_GROUPS[@]}"; do
    echo "gpu_check: == group $g ($(($(date +%s) - START)) s since start)"
    if [ "$DEVICE" = cuda ] && [ "$GPU_OK" -ne 1 ]; then
        skip_stage "$g" "no usable GPU (see env)"
        continue
    fi
    "group_$g"
done
write_results
exit $failed
