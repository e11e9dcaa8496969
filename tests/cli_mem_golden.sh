#!/usr/bin/env bash
# cli_mem_golden.sh: `arenagpt mem --format=json` is byte-identical to the plans committed in
# tests/golden/mem/ (scripts/mem_golden.sh; --update there rewrites them on purpose).
# Usage: tests/cli_mem_golden.sh path/to/arenagpt   (the Makefile's test-cli passes it)
set -u
BIN=${1:?usage: cli_mem_golden.sh ARENAGPT}
exec bash "$(cd "$(dirname "$0")/.." && pwd)/scripts/mem_golden.sh" "$BIN"
