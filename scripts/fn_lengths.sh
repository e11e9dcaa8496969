#!/usr/bin/env bash
# fn_lengths.sh: lists the functions over LIMIT lines (default 80) in the C and CUDA sources of
# model/ and train/ (or the files given), longest first: lines, file:line, name, and the
# reason the code gives for the length. A function may be long on purpose; it then says why
# in a comment that starts with "long:" in the comment block right above it, e.g.
#   /* long: one flat list of the config keys, one line each */
# Lines are counted from the first line of the signature to the closing brace (clang-format
# layout: a definition starts at column 0, its body ends at a line that is only "}").
# Usage: scripts/fn_lengths.sh [--check] [--limit=N] [FILE...]
#   --check   exit 1 when a listed function gives no reason
set -u
LIMIT=80
CHECK=0
FILES=()
for a in "$@"; do
    case "$a" in
    --check) CHECK=1 ;;
    --limit=*) LIMIT=${a#--limit=} ;;
    -h | --help)
        sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) FILES+=("$a") ;;
    esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
if [ ${#FILES[@]} -eq 0 ]; then
    mapfile -t FILES < <(ls model/*.c model/cpu/*.c model/cuda/*.c model/cuda/*.cu train/*.c \
        2>/dev/null)
fi
for f in "${FILES[@]}"; do
    [ -r "$f" ] || { echo "fn_lengths: $f: no such readable file" >&2; exit 2; }
done
awk -v limit="$LIMIT" '
function reset() { sig = ""; start = 0 }
FNR == 1 { reset(); in_body = 0; comment = ""; in_comment = 0 }
{
    line = $0
    if (in_body) {
        if (line == "}") {
            n = FNR - start + 1
            if (n > limit)
                printf "%d\t%s:%d\t%s\t%s\n", n, FILENAME, start, name, why
            in_body = 0
            reset()
        }
        next
    }
    # the comment block right above a definition (its "long:" reason)
    if (line ~ /^\/\*/) { comment = line; in_comment = (line !~ /\*\//); next }
    if (in_comment) { comment = comment " " line; if (line ~ /\*\//) in_comment = 0; next }
    if (start == 0) {
        if (line ~ /^[A-Za-z_]/ && line !~ /;[ \t]*$/ && line !~ /^(typedef|struct|enum|union)[ \t]/) {
            start = FNR; sig = line
        } else {
            if (line !~ /^$/ && line !~ /^#/) comment = ""
            next
        }
    } else {
        sig = sig " " line
    }
    if (sig ~ /;[ \t]*$/ || sig ~ /\{.*\}[ \t]*$/) { reset(); comment = ""; next } # one-liners
    if (sig ~ /\{[ \t]*$/) {
        if (sig ~ /\(/ && sig !~ /=[^(]*\{[ \t]*$/) {
            s = sig; sub(/\(.*/, "", s); n = split(s, w, /[ \t*&]+/); name = w[n]
            why = "NO REASON GIVEN"
            if (match(comment, /long: [^*]*/)) {
                why = substr(comment, RSTART + 6, RLENGTH - 6); sub(/[ \t]+$/, "", why)
            }
            in_body = 1
            comment = ""
        } else {
            reset(); comment = ""
        }
    }
}' "${FILES[@]}" | sort -t$'\t' -k1,1nr >"${TMPDIR:-/tmp}/fn_lengths.$$"
status=0
if [ -s "${TMPDIR:-/tmp}/fn_lengths.$$" ]; then
    printf 'lines\tfunction\treason\n'
    while IFS=$'\t' read -r n where name why; do
        printf '%s\t%s %s\t%s\n' "$n" "$where" "$name" "$why"
        [ "$why" = "NO REASON GIVEN" ] && status=1
    done <"${TMPDIR:-/tmp}/fn_lengths.$$"
else
    echo "fn_lengths: no function over $LIMIT lines"
fi
rm -f "${TMPDIR:-/tmp}/fn_lengths.$$"
[ $CHECK -eq 1 ] && exit $status
exit 0
