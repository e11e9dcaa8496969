/* corpus_prepare.h: a corpus (data/corpus.h) -> GPT-2 token shards, streaming, in parallel,
 * in input order.
 *
 * Documents: a JSON Lines record's text field (data/jsonl.h) is one document; a plain text
 * file is one document, or, with doc_sep, the pieces between occurrences of doc_sep (the
 * separator itself is dropped). Empty documents are skipped. Every document is preceded by
 * the tokenizer's end-of-text id (50256), as llm.c's FineWeb shards are; the stream of ids is
 * that: for each document in file order, eot then tokenizer_encode(text).
 *
 * Work: the reader (the calling thread) cuts the stream into pieces: a whole document (up
 * to a separator or the end of the file), or, for a document longer than CORPUS_ITEM_BYTES, a
 * piece cut where the GPT-2 pre-tokenizer is known to split (just after an ASCII graphic
 * character that is followed by ASCII whitespace: no pre-token spans that point and the
 * pattern never looks behind, so the ids of the pieces are the ids of the whole). A piece's
 * end depends only on the bytes from its start (never on the thread count or on buffers).
 * Pieces of one file are grouped into items of about CORPUS_ITEM_BYTES (JSON Lines: whole
 * lines, as much); items never span two files. A pool of `threads` workers (each with its own
 * tokenizer copy) encodes items; the caller writes them in order, so the ids are the same for
 * any thread count.
 *
 * Bad JSON lines (not JSON, not an object, no text_key, not a string) are skipped and counted;
 * with strict the run stops at the first with "FILE:LINE: reason". Blank lines are ignored.
 *
 * Shards (llm.c format, data/shard.h): shard k is <out>/<name>_val_%06d.bin while the first
 * val_tokens ids are written, then <name>_train_%06d.bin; each holds shard_tokens ids except
 * the last val shard (the split ends there) and the last train shard. Each shard is written
 * atomically (shard.h); after each shard, <out>/<name>_prepare.state (text, written
 * atomically) records where the next shard starts in the input, so resume continues from
 * there and writes the same shards an uninterrupted run writes. A fresh run refuses an out
 * directory that already has that name's state or first shard.
 *
 * Memory, whatever the corpus size: (2 * threads + 2) items, each about CORPUS_ITEM_BYTES of
 * text plus its ids (4 bytes per token), the reader's buffer (CORPUS_ITEM_LIMIT_BYTES + the
 * separator, more only while a stretch has no cut point, up to CORPUS_MAX_ITEM_BYTES), one
 * decompressor (data/corpus.h), and per thread a tokenizer copy (~6 MiB) with its pre-token
 * cache (data/tokenizer.c: cleared at 2M pre-tokens or 64 MiB of keys or of ids, so at most a
 * 96 MiB slot table and two 64 MiB pools; on web-like text the pools stay near 20 MiB). A
 * JSON line or a text stretch without a cut point longer than CORPUS_MAX_ITEM_BYTES is an
 * error. */
#ifndef ARENAGPT_CORPUS_PREPARE_H
#define ARENAGPT_CORPUS_PREPARE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "../alloc/base.h"
#include "tokenizer.h"

#define CORPUS_ITEM_BYTES (1u << 20)
#define CORPUS_ITEM_LIMIT_BYTES (4u << 20)
#define CORPUS_MAX_ITEM_BYTES (256u << 20)

typedef struct CorpusPrepareStats {
    int64_t total_bytes; /* of the input files on disk */
    int64_t file_bytes;  /* of them read so far */
    int64_t text_bytes;  /* decompressed bytes read by this run (a resume: since it started) */
    int64_t docs, bad_lines, tokens;
    int64_t shards;         /* complete shards written (resumed ones included) */
    int64_t resumed_shards; /* shards a resume found done */
    int64_t resumed_tokens; /* and their tokens */
    int n_files, files_done;
    char first_bad[ERR_MSG_LEN]; /* "FILE:LINE: reason" of the first bad line, or "" */
} CorpusPrepareStats;

typedef struct CorpusPrepareOptions {
    const char *inputs;   /* corpus_list's comma-separated files, folders, patterns */
    const char *out_dir;  /* must exist */
    const char *name;     /* shard name prefix */
    const char *text_key; /* JSON Lines field */
    const char *doc_sep;  /* plain text document separator; NULL or "" = one per file */
    int64_t shard_tokens; /* 1..SHARD_MAX_NTOK */
    int64_t val_tokens;   /* >= 1 */
    int threads;          /* >= 1 */
    int strict;
    int resume;
    const Tokenizer *tok;        /* GPT-2 (has an end-of-text id) */
    volatile sig_atomic_t *stop; /* set: discard the current shard and return 1; may be NULL */
    void (*progress)(void *ctx, const CorpusPrepareStats *st); /* after each item; may be NULL */
    void *progress_ctx;
} CorpusPrepareOptions;

/* Returns 0 when done, 1 when *stop was set (complete shards and the state kept, the shard
 * being written removed), -1 on an error (err names the file; the shard being written is
 * removed). st is filled in every case. */
int corpus_prepare_run(const CorpusPrepareOptions *o, CorpusPrepareStats *st, Err *err);

/* <dir>/<name>_<val|train>_<index as %06d>.bin */
int corpus_shard_path(char *buf, size_t len, const char *dir, const char *name, int is_val,
                      int64_t index);

#endif
