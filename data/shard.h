/* shard.h: writing token shards.
 *
 * llm.c's format (the default): 256 little-endian int32 header words [0] SHARD_MAGIC
 * (20240520), [1] SHARD_VERSION (1), [2] ntok, the rest 0; then ntok uint16 tokens.
 * nanoGPT's format: ntok uint16 tokens, no header (the reader must be told).
 *
 * The writer streams: tokens are appended in pieces, the header is filled in on close, and
 * the data goes to "<path>.tmp", renamed to path only when everything is written and
 * flushed to disk, so a reader never sees a partial shard (a failed write, a full disk
 * included, removes the temporary file). Reading is data/loader.h. */
#ifndef ARENAGPT_SHARD_H
#define ARENAGPT_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "../alloc/base.h"

#define SHARD_MAGIC 20240520
#define SHARD_VERSION 1
#define SHARD_HEADER_INTS 256
#define SHARD_HEADER_BYTES (SHARD_HEADER_INTS * 4)
#define SHARD_MAX_TOKEN 65535    /* tokens are uint16 */
#define SHARD_MAX_NTOK INT32_MAX /* the header's ntok is an int32 */

typedef struct ShardWriter ShardWriter;

/* nanogpt_format: 1 = headerless uint16 (nanoGPT's train.bin), 0 = llm.c shard. */
ShardWriter *shard_writer_open(const char *path, int nanogpt_format, Err *err);
/* Appends tokens; each must be in [0, 65535]. */
int shard_writer_append(ShardWriter *w, const int32_t *ids /* (n) */, size_t n, Err *err);
int64_t shard_writer_n_tokens(const ShardWriter *w);
/* Finishes the header, flushes, renames into place and frees w (also on failure). */
int shard_writer_close(ShardWriter *w, Err *err);
/* Drops the partial file and frees w. */
void shard_writer_abort(ShardWriter *w);

/* Where a split ("train" or "val") of a data directory is: <dir>/<split>.bin when that file
 * exists (prepare's single-file layout), else the glob pattern of <dir>/<any>_<split>_NNNNNN.bin
 * (six digits) when files match it (the sharded layout, llm.c's names: <name>_val_000000.bin),
 * else <dir>/<split>.bin, so that a message names the file expected. Returns -1 when buf is
 * too short. The loader (data/loader.h) opens a pattern as all its files in sorted order. */
int shard_split_path(char *buf, size_t len, const char *dir, const char *split);

/* One call: writes ids (n) as a shard at path. */
int shard_write(const char *path, int nanogpt_format, const int32_t *ids /* (n) */, size_t n,
                Err *err);

#endif
