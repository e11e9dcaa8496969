/* checkpoint.h: training state for resume: our own versioned, checksummed file beside the
 * llm.c model file. It holds what the model file does not: the f32 weights the optimizer
 * updates (the master copy on the GPU, the params on the CPU), AdamW m and v, the step, the
 * loss scaler, the data loaders' RNG states (an opaque blob the caller packs), and the config
 * it was made with (to refuse a mismatched resume).
 *
 * File layout (little-endian), `out_dir/state_<iter 8 digits>.bin`:
 *   CheckpointHeader (magic "AGPTSTAT", version, sizes, model shape, layout, progress)
 *   config text (config_write format, header.config_bytes)
 *   loader blob (header.extra_bytes)
 *   per parameter, in gpt.h order: weights f32 (numel), m f32 (numel), v f32 (numel)
 *   uint64 FNV-1a of every byte before it
 * Written atomically: a temp file in out_dir, fsync, rename, fsync of the directory; the
 * previous checkpoint stays valid until the new one is complete. The last `keep` are kept.
 * Refused on load, with the reason: bad magic/version, truncated or oversized file, bad
 * checksum, a model shape or device precision different from the run's. */
#ifndef ARENAGPT_CHECKPOINT_H
#define ARENAGPT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../model/gpt.h"
#include "config.h"

#define CHECKPOINT_VERSION 1

typedef struct CheckpointProgress {
    int64_t iter;        /* optimizer steps done */
    int64_t skipped;     /* steps skipped by the loss scaler */
    int64_t clean_steps; /* steps since the last scale change */
    float loss_scale;
    float best_val_loss;
} CheckpointProgress;

/* Saves to out_dir/state_<iter>.bin atomically and removes older state files beyond `keep`.
 * path_out (may be NULL) receives the final path. */
int checkpoint_save(const char *out_dir, const TrainConfig *cfg, Gpt *g,
                    const CheckpointProgress *p, const void *extra, size_t extra_bytes, int keep,
                    char *path_out, size_t path_len, Err *err);
/* Removes the temporary files an interrupted save leaves in out_dir (a process killed between
 * creating and renaming them): "state_*.bin.tmp" and "model.bin.tmp.*". Train calls it
 * before its first save; nothing else writes those names. Each removal is reported on f
 * (when not NULL); returns the number removed. */
int checkpoint_remove_stale_temps(const char *out_dir, FILE *f);
/* The newest state file in out_dir; -1 with err when there is none. */
int checkpoint_find_latest(const char *out_dir, char *path, size_t len, Err *err);
/* Loads into a built g (same shape and device layout, checked) and fills p and extra
 * (extra_bytes must equal what was saved). */
int checkpoint_load(const char *path, const TrainConfig *cfg, Gpt *g, CheckpointProgress *p,
                    void *extra, size_t extra_bytes, Err *err);
/* The config text a checkpoint was made with (config_write's format; malloc'd, the caller
 * frees it). Checks the header only, not the checksum: it describes the run, loads nothing. */
int checkpoint_read_config(const char *path, char **text_out, Err *err);

#endif
