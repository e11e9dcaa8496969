#!/usr/bin/env bash
# sim_multi_gpu_check.sh: the smoke of scripts/multi_gpu_check.sh (the data-parallel
# measurement for a machine with several GPUs), on the CUDA simulator: 2 simulated GPUs, the
# stand-in NCCL, sim_train.sh's tiny model, 3 steps. Checked: every run ends and has its row
# (a number of ms/iter and tokens/s, a loss, a peak), plan == measured on every run, the
# ratios are numbers, and the overlapped and after-the-backward runs end with the same
# model.bin. The simulator's times mean nothing; only that the script works is tested.
# Skips without mpirun or with a binary built without MPI (fails once the set-up has run).
# Usage: tests/sim_multi_gpu_check.sh path/to/build/sim/arenagpt   (make test-sim runs it)
set -u
. "$(dirname "$0")/lib_cli.sh" sim_multi_gpu_check "$1"
. "$ROOT/tests/lib_sim.sh"

sim_ranks_ready

sim_data_and_conf gradient_accumulation_steps=1 eval_interval=100
BIN="$BIN" CONF="$TMP/tiny.conf" STEPS=3 WARMUP=1 MPIRUN_ARGS="$MPI_ARGS" \
    timeout 600 bash "$ROOT/scripts/multi_gpu_check.sh" "$TMP/out" 2 >"$TMP/check.log" 2>&1 ||
    bad "multi_gpu_check.sh: exit $?: $(tail -5 "$TMP/check.log")"
S=$TMP/out/summary.md
[ -s "$S" ] || bad "no summary.md"
for r in one z0 z0_after z1; do
    grep -q "^multi_gpu_check: $r: exit 0," "$TMP/check.log" && ok || bad "run $r: $(grep "^multi_gpu_check: $r:" "$TMP/check.log")"
    # | run | ranks | ms/iter | tokens/s | last loss | peak | plan == measured |
    awk -F'|' -v r="$r" '$2 == " " r " " { n = 0; for (i = 4; i <= 7; i++) if ($i + 0 > 0) n++
        ok = n == 4 && $8 == " yes " } END { exit !ok }' "$S" && ok || bad "the row of $r: $(grep "^| $r " "$S")"
done
grep -q "^- scaling: .* = [0-9.]*$" "$S" && grep -q "^- the overlap: .* = [0-9.]*$" "$S" &&
    grep -q "^- zero_stage 1: .* = [0-9.]*$" "$S" && ok || bad "the ratios: $(grep '^- ' "$S")"
grep -q "^- z0 and z0_after: the same model.bin, bit for bit" "$S" && ok || bad "z0 and z0_after: $(grep '^- z0 and' "$S")"

cli_done
