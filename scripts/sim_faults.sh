#!/usr/bin/env bash
# sim_faults.sh: proves that the CUDA simulator catches what it is for. Applies deliberate
# faults, one at a time, to a COPY of the source tree (the checkout is never touched), rebuilds
# the simulated backend test there (build/sim/ is copied along, so only what a fault touches is
# recompiled) and runs it: every fault must make it fail. Prints one line per fault and exits
# non-zero if any fault went unnoticed.
#   1. out of bounds: the element-wise kernels' tail loop (FOR_TAIL in cuda_layers.cu: GELU's
#      values after the last whole 128-bit packet) runs to i <= n (one past the tensor's end):
#      AddressSanitizer stops at the poisoned byte after the tensor;
#   2. a missing barrier: cuda_block_sum loses the __syncthreads() between writing the warps'
#      partial sums and reading them: the adversarial schedule makes some reductions wrong;
#   3. a swapped transpose: the matmul forward GEMM reads the weight untransposed;
#   4. an output never written: layernorm_forward_kernel does not store mean and rstd, so
#      they keep the NaN bytes a fresh tensor is filled with;
#   5. two lanes' fragments swapped: the simulator's mma.m16n8k16 reads lane 1's registers as
#      lane 0's and lane 0's as lane 1's (what a kernel assuming the wrong fragment layout
#      computes): the tensor-core flash kernels' results go wrong;
#   6. a missing transpose: the tensor-core flash kernels load the P V operand (V, dO, Q, K
#      tiles) by ldmatrix without .trans;
#   7. a read before cp.async's wait: the tensor-core forward waits for no copy group before
#      the barrier, so it computes on shared tiles whose copies have not landed;
#   8. an unwaited gradient sum: data parallel's update does not wait for the sums that ran on
#      NCCL's second stream during the backward (model/cuda/nccl_comm.c's reduce_wait loses
#      its cudaStreamWaitEvent): the simulator runs that stream's work only when something
#      waits for it, so the update reads unsummed gradients and tests/sim_overlap.sh's
#      bit-for-bit comparison fails (needs mpirun; said and skipped without it).
# Usage: scripts/sim_faults.sh   (make sim-faults, part of make test-sim; a run's output is
# kept in docs/results/sim_faults.txt)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$ROOT" || exit 2
# run from make (make sim-faults, make test-sim), the builds share its job slots; alone, 2 jobs
jobs=()
[ -z "${MAKEFLAGS:-}" ] && jobs=(-j2)
make -s "${jobs[@]}" build/sim/tests/gpu/test_cuda_backend >/dev/null || { echo "sim_faults: the clean build fails"; exit 2; }
# the clean tree passes first: a fault must be what makes it fail
ARENAGPT_ROOT=$ROOT ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
    ./build/sim/tests/gpu/test_cuda_backend >"$TMP/clean.log" 2>&1 || {
    echo "sim_faults: the clean simulated test fails (see below)"; tail -20 "$TMP/clean.log"; exit 2; }
echo "clean tree: build/sim/tests/gpu/test_cuda_backend passes"

# fault NAME FILE PYTHON-EXPRESSION-ON-s [TARGETS COMMAND]: copy, edit (the edit must change
# the file), rebuild TARGETS (make targets; default the simulated backend test) and run
# COMMAND in the copy (default that test)
caught=0
missed=0
BACKEND_TEST=build/sim/tests/gpu/test_cuda_backend
fault() {
    local name=$1 file=$2 edit=$3 tree=$TMP/$1
    local targets=${4:-$BACKEND_TEST} command=${5:-./$BACKEND_TEST}
    mkdir -p "$tree"
    tar -C "$ROOT" --exclude=./.git --exclude=./build -cf - . | tar -C "$tree" -xf -
    mkdir -p "$tree/build" && cp -a "$ROOT/build/sim" "$tree/build/sim"
    python3 - "$tree/$file" "$edit" <<'PY' || { echo "$name: the fault could not be applied to $file"; missed=$((missed + 1)); return; }
import sys
p, edit = sys.argv[1], sys.argv[2]
s = open(p).read()
t = eval(edit)
if t == s:
    sys.exit("edit changed nothing")
open(p, "w").write(t)
PY
    local t0=$SECONDS
    # shellcheck disable=SC2086 # targets: a list of make targets
    if ! make -s -C "$tree" "${jobs[@]}" $targets >"$tree/build.log" 2>&1; then
        echo "$name: CAUGHT at build time ($((SECONDS - t0)) s)"; caught=$((caught + 1)); return
    fi
    (cd "$tree" && ARENAGPT_ROOT=$tree ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
        timeout 300 bash -c "$command" >"$tree/run.log" 2>&1) 2>/dev/null
    local rc=$?
    if [ "$rc" = 0 ]; then
        echo "$name: MISSED: the simulated test still passes"; missed=$((missed + 1)); return
    fi
    local how
    how=$(grep -m1 -E "ERROR: AddressSanitizer|FAILED  \] [0-9]+ test|: FAILED: " "$tree/run.log")
    echo "$name: CAUGHT (exit $rc, $((SECONDS - t0)) s): $how"
    caught=$((caught + 1))
    grep -m3 -E "^\[  FAILED  \] test_|SUMMARY: AddressSanitizer|^    #[0-9] .* in [a-z_]*kernel" "$tree/run.log" | sed 's/^/    /'
}

fault out_of_bounds model/cuda/cuda_layers.cu \
    's.replace("blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n);    \\", "blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i <= (n);   \\")'
fault missing_barrier model/cuda/cuda_common.cuh \
    's.replace("        shared[warp] = v;\n    __syncthreads();\n    float r = lane < nwarps ? shared[lane] : 0.0f;", "        shared[warp] = v;\n    float r = lane < nwarps ? shared[lane] : 0.0f;")'
fault swapped_transpose model/cuda/cuda_matmul.cu \
    's.replace("cuda_gemm_x(1, 0, OC, N, IC,", "cuda_gemm_x(0, 0, OC, N, IC,")'

fault unwritten_output model/cuda/cuda_layers.cu \
    's.replace("    if (lane == 0) {\n        mean[row] = m;\n        rstd[row] = r;\n    }\n", "")'

fault mma_lanes_swapped tests/cudasim/cudasim_mma.cc \
    's.replace("const MmaLane *ln = (const MmaLane *)lanes[l];\n        int g = l >> 2, t = l & 3;\n        for (int i = 0; i < 8; i++)", "const MmaLane *ln = (const MmaLane *)lanes[l < 2 ? 1 - l : l];\n        int g = l >> 2, t = l & 3;\n        for (int i = 0; i < 8; i++)")'
fault ldmatrix_untransposed model/cuda/cuda_flash.cu \
    's.replace("ldmatrix_x4_trans(b,", "ldmatrix_x4(b,")'
fault cp_async_unwaited model/cuda/cuda_flash.cu \
    's.replace("            cp_async_commit();\n            cp_async_wait<1>();\n        } else {\n            cp_async_wait<0>();\n        }\n        __syncthreads();\n        if (j == 0)", "            cp_async_commit();\n        }\n        __syncthreads();\n        if (j == 0)")'

if command -v mpirun >/dev/null 2>&1 && [ -f build/sim/libnccl.so.2 ]; then
    fault unwaited_sums model/cuda/nccl_comm.c \
        's.replace("cudaStreamWaitEvent(n->stream, n->done, 0)", "cudaSuccess")' \
        "build/sim/arenagpt build/sim/libnccl.so.2" "bash tests/sim_overlap.sh build/sim/arenagpt"
else
    echo "unwaited_sums: skipped: needs mpirun and build/sim/libnccl.so.2 (scripts/setup.sh, make sim)"
fi

echo "sim_faults: $caught caught, $missed missed"
[ "$missed" = 0 ]
