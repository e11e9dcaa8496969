/* loader.h: batches of token windows from shards (llm.c format, or nanoGPT's headerless
 * uint16 .bin when told), for training (random windows) and evaluation (sequential ones).
 *
 * A path may be one file or a glob ("data/fineweb_train_*.bin"); matching files are taken in
 * sorted order. Files are memory-mapped read-only; every token is checked against vocab_size
 * once, at open. A window never straddles two shards.
 *
 * Random windows (nanoGPT's get_batch): each of the B rows starts at a position drawn
 * uniformly from all starts that leave room for T+1 tokens (in one shard: [0, ntok-T-1]);
 * inputs are tokens [s, s+T), targets [s+1, s+T+1). The draws come from the project Rng seeded
 * with `seed`; DataLoaderState saves and restores the stream exactly (resume).
 *
 * Sequential windows (eval): shard by shard, window i of a shard covers inputs
 * [i*T, i*T+T) and targets [i*T+1, i*T+T+1), for i < (ntok-1)/T; the global window index
 * runs through the shards in order.
 *
 * Errors (Err, never exit): no file matching the path, unreadable files, wrong magic or
 * version, a size that disagrees with ntok (or an odd size in the nanoGPT format), a shard
 * shorter than one window (T+1 tokens), token ids >= vocab_size (naming file, position and
 * value). Output buffers are the caller's; the loader allocates with malloc/mmap only its
 * own bookkeeping and the file mappings (host memory outside the model arena).
 * Shape legend: B batch, T time (block_size). */
#ifndef ARENAGPT_LOADER_H
#define ARENAGPT_LOADER_H

#include <stdint.h>

#include "../alloc/base.h"
#include "rng.h"

typedef struct DataLoader DataLoader;

/* Everything that moves as batches are drawn: plain data, save it byte for byte. */
typedef struct DataLoaderState {
    Rng rng;
    int64_t n_batches; /* random batches drawn so far */
} DataLoaderState;

/* path: one shard file or a glob of shards; nanogpt_format: 1 = headerless uint16 .bin.
 * vocab_size: tokens >= it are an error naming the file, position and value (<= 0: no check). */
DataLoader *data_loader_open(const char *path, int nanogpt_format, int64_t B, int64_t T,
                             int64_t vocab_size, uint64_t seed, Err *err);
/* nanoGPT get_batch: B random windows, targets shifted by one. */
int data_loader_next(DataLoader *dl, int32_t *inputs /* (B,T) */, int32_t *targets /* (B,T) */,
                     Err *err);
/* Number of sequential windows (see above). */
int64_t data_loader_n_windows(const DataLoader *dl);
/* B consecutive sequential windows starting at first_window; an error if they run past
 * data_loader_n_windows(). */
int data_loader_window(DataLoader *dl, int64_t first_window, int32_t *inputs /* (B,T) */,
                       int32_t *targets /* (B,T) */, Err *err);
int64_t data_loader_n_tokens(const DataLoader *dl);
int data_loader_n_shards(const DataLoader *dl);
void data_loader_get_state(const DataLoader *dl, DataLoaderState *st);
void data_loader_set_state(DataLoader *dl, const DataLoaderState *st);
void data_loader_free(DataLoader *dl);

#endif
