#!/usr/bin/env bash
# check_no_malloc.sh: every byte of device memory comes from the arena. The arena's device
# backing and its pinned host backing (alloc/arena_cuda.cu) are the only source allowed to
# allocate device or pinned memory;
# this fails (exit 1) on a device allocation call anywhere else, listing file:line. The CUDA
# simulator (tests/cudasim/) is not the product: it implements cudaMalloc and tests it.
# Runtime API (cudaMalloc, cudaMallocAsync, cudaMallocManaged, cudaMallocPitch, cudaMalloc3D,
# cudaMallocArray, cudaMallocFromPoolAsync; pinned host memory: cudaMallocHost, cudaHostAlloc) and
# driver API (cuMemAlloc*, cuMemCreate) calls
# are matched by name followed by "(", so prose in comments does not count.
# Usage: scripts/check_no_malloc.sh [REPO_ROOT]   (default: the repository of this script)
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$root"
allowed='alloc/arena_cuda.cu'
pattern='\b(cudaMalloc(Async|Managed|Pitch|3D|Array|FromPoolAsync|Host)?|cudaHostAlloc|cuMemAlloc[A-Za-z_]*|cuMemCreate)[[:space:]]*\('
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files --cached --others --exclude-standard \
        '*.c' '*.h' '*.cu' '*.cuh' '*.cc' '*.cpp' '*.hpp')
else
    mapfile -t files < <(find . -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o \
        -name '*.cuh' -o -name '*.cc' -o -name '*.cpp' -o -name '*.hpp' \) -not -path './build/*' |
        sed 's|^\./||')
fi
bad=0
for f in "${files[@]}"; do
    [ "$f" = "$allowed" ] && continue
    case "$f" in tests/cudasim/*) continue ;; esac
    [ -f "$f" ] || continue
    if hits=$(grep -nE "$pattern" "$f"); then
        while IFS= read -r line; do
            echo "check_no_malloc: $f:$line" >&2
        done <<<"$hits"
        bad=1
    fi
done
if [ "$bad" -ne 0 ]; then
    echo "check_no_malloc: device memory must come from the arena (only $allowed allocates)" >&2
    exit 1
fi
echo "check_no_malloc: ${#files[@]} source files, no device allocation outside $allowed"
