#!/usr/bin/env bash
# kernel_audit.sh: scripts/kernel_audit.py can fail. On tests/kernel_audit/spill.cu (a kernel
# with a stack frame and no reason given; a kernel listed as needing 128-bit loads that has
# none) it must exit 1 naming both; on spill_explained.cu (the same spill with its reason
# above it; a kernel that loads int4) it must pass and report the reason. Needs nvcc.
# Usage: tests/kernel_audit.sh   (make kernel-audit runs it first)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "kernel_audit test: FAILED: $*"; fail=$((fail + 1)); }
D=tests/kernel_audit
printf '%s\n' "$D/spill.cu audit_scalar_kernel" "$D/spill_explained.cu audit_vector_kernel" >"$TMP/vector.txt"
: >"$TMP/allow.txt"
audit() { python3 scripts/kernel_audit.py --jobs 2 --keep-dir "$TMP/keep" --allow "$TMP/allow.txt" --vector "$TMP/vector.txt" "$@"; }

audit --out "$TMP/spill.md" "$D/spill.cu" >"$TMP/spill.out" 2>&1
[ $? = 1 ] && ok || bad "a spilling kernel without a reason passed: $(tail -3 "$TMP/spill.out")"
grep -q "FAIL: $D/spill.cu: audit_spill_kernel.*on sm_89: [1-9][0-9]* bytes stack" "$TMP/spill.out" && ok || bad "no sm_89 spill failure named: $(cat "$TMP/spill.out")"
grep -q "FAIL: $D/spill.cu: audit_spill_kernel.*on sm_90" "$TMP/spill.out" && ok || bad "no sm_90 spill failure"
grep -q "FAIL: $D/spill.cu: audit_scalar_kernel.*no 128-bit global load" "$TMP/spill.out" && ok || bad "scalar kernel passed the vector-load check"
grep -q "| \`audit_spill_kernel\` | [0-9]* | [0-9]* | [1-9]" "$TMP/spill.md" && ok || bad "report has no spill row: $(grep audit_spill "$TMP/spill.md")"

# the same spill allowed by the allow-list (the file's owner has not annotated it yet)
echo "$D/spill.cu audit_spill_kernel issue 0: the test's allow-list entry" >"$TMP/allow.txt"
printf '%s\n' "$D/spill_explained.cu audit_vector_kernel" >"$TMP/vector.txt"
audit --out "$TMP/allowed.md" "$D/spill.cu" >"$TMP/allowed.out" 2>&1
[ $? = 0 ] && ok || bad "allow-listed spill still failed: $(tail -3 "$TMP/allowed.out")"
grep -q "allow-list: issue 0" "$TMP/allowed.md" && ok || bad "report does not give the allow-list reason"

: >"$TMP/allow.txt"
audit --out "$TMP/ok.md" "$D/spill_explained.cu" >"$TMP/ok.out" 2>&1
[ $? = 0 ] && ok || bad "an explained spill and a vector kernel failed: $(cat "$TMP/ok.out")"
grep -q "annotated: the audit's own test needs a kernel with a stack frame" "$TMP/ok.md" && ok || bad "report does not give the annotation"
grep -q "| \`audit_vector_kernel\` | .* | yes |" "$TMP/ok.md" && ok || bad "vector kernel not reported as having 128-bit loads"

echo "kernel_audit test: $pass passed, $fail failed"
[ "$fail" = 0 ]
