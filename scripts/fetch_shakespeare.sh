#!/usr/bin/env bash
# fetch_shakespeare.sh: puts the tinyshakespeare text (char-rnn's input.txt, 1,115,394 bytes,
# sha256-checked) at DEST: copied from the project's shared data folder next to the repository
# when there is one, else downloaded. Idempotent: does nothing when DEST has the right checksum.
# Usage: scripts/fetch_shakespeare.sh [DEST]   (default: .cache/tinyshakespeare.txt, the
#        Makefile's SHAKESPEARE)
set -euo pipefail
cd "$(dirname "$0")/.."

URL=https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt
SHA256=86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed
SHARED=../shared/data/tinyshakespeare.txt
dest="${1:-.cache/tinyshakespeare.txt}"

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]; }

if sha_ok "$dest"; then
    echo "fetch_shakespeare: $dest present, checksum ok"
    exit 0
fi
mkdir -p "$(dirname "$dest")"
if sha_ok "$SHARED"; then
    cp "$SHARED" "$dest.tmp" && chmod 644 "$dest.tmp"
elif ! curl -fsSL --retry 3 -o "$dest.tmp" "$URL"; then
    rm -f "$dest.tmp"
    echo "fetch_shakespeare: download of $URL failed (offline?). Put the 1,115,394-byte" >&2
    echo "  tinyshakespeare text at $dest and run this again." >&2
    exit 1
fi
if ! sha_ok "$dest.tmp"; then
    echo "fetch_shakespeare: $dest.tmp has sha256 $(sha256sum "$dest.tmp" | cut -d' ' -f1)," >&2
    echo "  expected $SHA256 (char-rnn's tinyshakespeare); left it there, not at $dest" >&2
    exit 1
fi
mv "$dest.tmp" "$dest"
echo "fetch_shakespeare: $dest ok"
