/* corpus.h: the files of a text corpus and reading each as a stream of bytes.
 *
 * corpus_list expands what the user gave (one or more comma-separated items, each a file, a
 * folder or a glob pattern) into a sorted, de-duplicated list of regular files. A folder
 * contributes every regular file under it (recursively) whose name does not start with '.'.
 * Each file's format comes from its name without a trailing .gz or .zst: .jsonl, .ndjson or
 * .json are JSON Lines, anything else plain text. A .parquet file is refused with the hint
 * CORPUS_PARQUET_HINT (the list is refused as a whole, before any work).
 *
 * corpus_stream_* read one file as bytes, decompressing it when its first bytes are a gzip
 * (1f 8b; concatenated members are read one after another) or zstd (28 b5 2f fd; several
 * frames likewise) magic; anything else is read as it is. A compressed stream that ends
 * before its end marker is an error ("truncated"), as is corrupt compressed data. Memory is
 * CORPUS_STREAM_IN_BYTES of input buffer plus the decompressor's state (zlib: ~44 KiB; zstd:
 * its window, at most 128 MiB for frames that ask for that, 8 MiB for the usual level 3). */
#ifndef ARENAGPT_CORPUS_H
#define ARENAGPT_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "../alloc/base.h"

#define CORPUS_STREAM_IN_BYTES (256u << 10)
#define CORPUS_PARQUET_HINT                                                                        \
    "parquet is not read directly; convert it to JSON Lines first, e.g. python3 -c \"import "      \
    "sys, pandas; pandas.read_parquet(sys.argv[1], columns=['text']).to_json(sys.argv[2], "        \
    "orient='records', lines=True, force_ascii=False)\" IN.parquet OUT.jsonl"

typedef enum CorpusFormat { CORPUS_FORMAT_TEXT = 1, CORPUS_FORMAT_JSONL = 2 } CorpusFormat;

typedef struct CorpusFile {
    char *path;
    int64_t bytes; /* on disk (compressed size for .gz/.zst) */
    int64_t mtime; /* seconds */
    CorpusFormat format;
} CorpusFile;

typedef struct CorpusList {
    CorpusFile *files; /* (n) sorted by path */
    int n;
    int64_t total_bytes; /* sum of files[i].bytes */
} CorpusList;

/* inputs: comma-separated files, folders, glob patterns. An item that matches nothing, or a
 * list with no file at all, is an error naming it. */
int corpus_list(const char *inputs, CorpusList *out, Err *err);
void corpus_list_free(CorpusList *l);
/* The format of a file by its name (see above). */
CorpusFormat corpus_format_of(const char *path);

typedef struct CorpusStream CorpusStream;

CorpusStream *corpus_stream_open(const char *path, Err *err);
/* Up to n decompressed bytes into buf: returns the count, 0 at the end of the stream, -1 on a
 * read error, corrupt data or a truncated stream (err names the file). */
int64_t corpus_stream_read(CorpusStream *s, uint8_t *buf, size_t n, Err *err);
/* Bytes of the file consumed so far (compressed bytes for a compressed file). */
int64_t corpus_stream_file_bytes(const CorpusStream *s);
void corpus_stream_close(CorpusStream *s);

#endif
