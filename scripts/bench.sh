#!/usr/bin/env bash
# bench.sh (make bench): the benchmarks that run without a GPU: CPU training step against
# PyTorch (scripts/bench_cpu.sh), GPT-2 BPE encoding speed (scripts/bench_tokenizer.sh) and
# sampling with and without the KV cache (scripts/bench_decode.sh). Their outputs are what
# docs/results/cpu_bench.md, tokenizer_bench.md and decode_bench.md record.
# The GPU benchmark and checks are scripts/gpu_check.sh RESULTS_DIR (needs a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bench_tokenizer.sh
bash scripts/bench_cpu.sh "$@"
bash scripts/bench_decode.sh "${1:-2}"
