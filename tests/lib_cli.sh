# lib_cli.sh: what the CLI tests share. A test starts with
#     . "$(dirname "$0")/lib_cli.sh" cli_name "$1"
# and gets BIN (the arenagpt binary given as $1, as an absolute path), ROOT (the repository),
# TMP (a fresh temp directory, removed at exit), ok and bad (count one check; bad prints it as
# FAILED with its text), and ends with cli_done (prints "cli_name: N passed, N failed" and
# returns non-zero when a check failed).
CLI_NAME=$1
BIN=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
    echo "$CLI_NAME: FAILED: $*"
    fail=$((fail + 1))
}
cli_done() {
    echo "$CLI_NAME: $pass passed, $fail failed"
    [ "$fail" = 0 ]
}
