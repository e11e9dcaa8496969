#!/usr/bin/env bash
# gpu_bundle.sh: the GPU bundle (make gpu-bundle) checked without a GPU, as CI can.
#
#   tests/gpu_bundle.sh --check-libs BUNDLE
#       For every ELF file of the bundle: its `ldd` list, and the highest glibc symbol version
#       it needs. Fails when a library is not found, or is neither inside the bundle nor one of
#       the system libraries a GPU machine has without Debian's -dev packages (libc, libm,
#       libdl, libpthread, librt, libgcc_s, libstdc++, libgomp, the dynamic loader) or the
#       CUDA runtime libraries (libcudart, libcublas, libcublasLt), or when a file needs a
#       glibc newer than 2.35. Prints the lists (make gpu-bundle puts them in MANIFEST.txt).
#
#   tests/gpu_bundle.sh BUNDLE
#       Copies the bundle to a temporary folder outside the repository, checks its libraries
#       from there with LD_LIBRARY_PATH empty, and runs its gpu_check.sh end to end on the CPU
#       (GPU_CHECK_DEVICE=cpu: reduced sizes) within DRY_RUN_LIMIT_S seconds of CPU. Checks that the
#       results folder holds exactly summary.md and logs.tar.gz, that no stage failed, that
#       the summary has the check's, the table's and the PyTorch baseline's sections with
#       numbers in them, and that the training out_dirs stayed out of the results folder.
set -uo pipefail

ALLOWED='^(linux-vdso\.so|ld-linux-x86-64\.so|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libgcc_s\.so|libstdc\+\+\.so|libgomp\.so|libcudart\.so|libcublas\.so|libcublasLt\.so)'
GLIBC_MAX=2.35
# the dry run's limit: 2 minutes of CPU time (user + system of everything it runs; its wall
# time is about that on an idle machine and grows with the machine's load), and a wall-clock
# limit that only catches a hang
DRY_RUN_LIMIT_S=120
DRY_RUN_HANG_S=600

check_libs() { # bundle dir -> 0 when every ELF file's libraries are allowed
    local dir bad=0 f
    dir="$(cd "$1" && pwd)"
    while IFS= read -r f; do
        [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
        local rel=${f#"$dir"/}
        local need
        need=$(objdump -T "$f" 2>/dev/null | grep -oE 'GLIBC_[0-9]+\.[0-9]+(\.[0-9]+)?' | sed 's/GLIBC_//' | sort -uV | tail -1)
        echo "ldd $rel (needs glibc ${need:-any}):"
        if [ -n "$need" ] && [ "$(printf '%s\n%s\n' "$need" "$GLIBC_MAX" | sort -V | tail -1)" != "$GLIBC_MAX" ]; then
            echo "  FAILED: needs glibc $need, newer than $GLIBC_MAX"
            bad=1
        fi
        local line
        while IFS= read -r line; do
            [ -n "$line" ] || continue
            local name path
            name=$(awk '{ print $1 }' <<<"$line")
            name=${name##*/}
            path=$(sed -nE 's/.*=> ([^ ]+) .*/\1/p' <<<"$line")
            if grep -q 'not found' <<<"$line"; then
                echo "  FAILED: $name not found"
                bad=1
            elif [ -n "$path" ] && [ "${path#"$dir"/}" != "$path" ]; then
                echo "  $name => (bundle) ${path#"$dir"/}"
            elif grep -qE "$ALLOWED" <<<"$name"; then
                echo "  $name (system)"
            else
                echo "  FAILED: $name => $path: neither in the bundle nor an allowed system library"
                bad=1
            fi
        done < <(ldd "$f" 2>&1 | sed 's/^\s*//' | grep -v '^statically linked')
    done < <(find "$dir" -type f | sort)
    return $bad
}

if [ "${1:-}" = --check-libs ]; then
    [ $# -eq 2 ] || {
        echo "usage: $0 --check-libs BUNDLE" >&2
        exit 2
    }
    check_libs "$2"
    exit $?
fi
[ $# -eq 1 ] || {
    echo "usage: $0 [--check-libs] BUNDLE" >&2
    exit 2
}
[ -x "$1/gpu_check.sh" ] || {
    echo "gpu_bundle: $1 is not a bundle (no gpu_check.sh): make gpu-bundle" >&2
    exit 2
}
fail=0
bad() {
    echo "gpu_bundle: FAILED: $*"
    fail=1
}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/gpu_bundle_test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
repo="$(cd "$(dirname "$0")/.." && pwd)"
case "$TMP/" in "$repo"/*) bad "the temporary folder $TMP is inside the repository" ;; esac
cp -a "$1" "$TMP/bundle"
export LD_LIBRARY_PATH=
check_libs "$TMP/bundle" >"$TMP/libs.txt" || bad "libraries: $(grep FAILED "$TMP/libs.txt" | head -3)"
echo "gpu_bundle: libraries of the copy in $TMP/bundle: $(grep -c '^ldd' "$TMP/libs.txt") files checked"

# user + system seconds of this shell's finished children: `times` must run in this shell (not
# in a pipeline or a $(...) subshell, which have children of their own), so it writes a file
cpu_file_s() { tail -1 "$1" | awk '{ split($1, u, "m"); split($2, s, "m"); printf "%.0f\n", u[1] * 60 + u[2] + s[1] * 60 + s[2] }'; }
t0=$(date +%s)
times >"$TMP/times0"
(cd "$TMP" && GPU_CHECK_DEVICE=cpu GPU_CHECK_WORK="$TMP/work" timeout -k 5 $DRY_RUN_HANG_S \
    "$TMP/bundle/gpu_check.sh" "$TMP/results" all) >"$TMP/dry.log" 2>&1
rc=$?
times >"$TMP/times1"
dt=$(($(date +%s) - t0))
cpu=$(($(cpu_file_s "$TMP/times1") - $(cpu_file_s "$TMP/times0")))
echo "gpu_bundle: dry run (GPU_CHECK_DEVICE=cpu gpu_check.sh RESULTS all): $dt s wall, $cpu s CPU, exit $rc"
[ $rc -eq 0 ] || bad "dry run exit $rc: $(grep -E 'FAIL|TIMEOUT' "$TMP/dry.log" | head -5)"
[ $cpu -le $DRY_RUN_LIMIT_S ] || bad "dry run used $cpu s of CPU, over $DRY_RUN_LIMIT_S s"
files=$(cd "$TMP/results" 2>/dev/null && ls -A | sort | paste -sd ' ' -)
[ "$files" = "logs.tar.gz summary.md" ] || bad "results folder holds '$files', not 'logs.tar.gz summary.md'"
S="$TMP/results/summary.md"
# the PyTorch baseline runs where a python3 with PyTorch is (Debian's python3-torch here); where
# there is none the check must say so and skip it
have_torch=0
for p in python3 /usr/bin/python3; do
    command -v "$p" >/dev/null 2>&1 && "$p" -c 'import torch, numpy' 2>/dev/null && have_torch=1
done
if [ $have_torch -eq 1 ]; then
    torch_want=('^\| torch-eager \| pass' '^\| torch-compile \| pass' '^\| PyTorch eager \| [0-9]+ \|'
        '^- recompute full vs PyTorch compile: tokens/s [0-9.]+' 'PyTorch fell back: no torch.compile')
else
    echo "gpu_bundle: no python3 with PyTorch here: the check must skip the baseline and say so"
    torch_want=('^\| torch \| skipped \(no python3 with PyTorch')
fi
for want in "${torch_want[@]}" '^## stages' '^## check' '^## table' '^## torch' '^\| env \| pass' \
    '^\| train-none \| pass' '^\| train-full \| pass' '^\| table-4070-none-naive \| pass' \
    '^\| table-124m-full-naive-[0-9]+ \| pass' '^\| ours-full \| pass' '^- loss at the eval points \(step: train / val\): 0: [0-9]+\.[0-9]+ / [0-9]+\.[0-9]+' \
    '^- ms/iter [0-9.]+, tokens/s [0-9.]+' 'plan == measured: yes, to the byte' \
    '^\| arenagpt recompute full \| [0-9]+ \|' \
    '^\| 4070 \| full \| naive \| cfg \| [0-9.]+/[0-9.]+ \|' 'sanitize \| skipped \(compute-sanitizer: GPU_CHECK_DEVICE=cpu'; do
    grep -qE "$want" "$S" 2>/dev/null || bad "summary.md lacks /$want/"
done
tar -tzf "$TMP/results/logs.tar.gz" >"$TMP/tar.txt" 2>/dev/null || bad "logs.tar.gz does not list"
tar_want=(logs/env.txt logs/train-none.log logs/fit.log)
[ $have_torch -eq 1 ] && tar_want+=(logs/torch-eager.log)
for want in "${tar_want[@]}"; do
    grep -qx "$want" "$TMP/tar.txt" || bad "logs.tar.gz lacks $want"
done
find "$TMP/results" -name 'model.bin' -o -name 'state_*.bin' | grep -q . && bad "training output inside the results folder"
if [ $fail -ne 0 ]; then
    echo "--- dry run output (tail)"
    tail -40 "$TMP/dry.log"
    echo "--- summary.md"
    cat "$S" 2>/dev/null | head -80
    exit 1
fi
echo "gpu_bundle: ok (libraries, and the check end to end from a copy outside the repository)"
