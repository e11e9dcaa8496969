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
 * The run's dtype is the header's precision (device, param_dtype, has_master: CheckpointPrecision):
 * float32 on the CPU (f32 params, no master), float16 or bfloat16 on CUDA (16-bit params of
 * that dtype, f32 master). Every version 1 file has recorded it, so the states written before
 * bfloat16 existed name their dtype (float32 or float16) and load as they did.
 * Refused on load, with the reason: bad magic/version, truncated or oversized file, bad
 * checksum, a model shape different from the run's, a precision the run cannot resume.
 *
 * Resuming in another precision (checkpoint_resume_precision decides):
 *   - CUDA float16 <-> bfloat16: converted. The state's weights are the f32 master, m and v are
 *     f32: they load as they are and the 16-bit params are rounded from the master into the
 *     run's dtype (gpt_param_write_f32). The caller restarts the loss scaler (float16: its
 *     initial scale; bfloat16: none, scale 1) and says so.
 *   - another device (a CPU float32 state on CUDA, or the reverse): refused, naming the
 *     --device and --dtype that resume it, or --init_from=<its model.bin> to start afresh
 *     from its weights. */
#ifndef ARENAGPT_CHECKPOINT_H
#define ARENAGPT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../model/gpt.h"
#include "config.h"

#define CHECKPOINT_VERSION 1

/* What a state file records of the run's precision (its header's fields). */
typedef struct CheckpointPrecision {
    int32_t device;      /* GptDevice */
    int32_t param_dtype; /* ArenaDtype of the params: f32 (CPU), f16 or bf16 (CUDA) */
    int32_t has_master;  /* 1: f32 master weights beside 16-bit params (CUDA) */
} CheckpointPrecision;

/* checkpoint_resume_precision's answers (a refusal is -1). */
enum {
    CHECKPOINT_RESUME_SAME = 0,   /* the run's own precision: loads as saved */
    CHECKPOINT_RESUME_CONVERT = 1 /* CUDA float16 <-> bfloat16: params re-rounded from master */
};

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
/* Loads into a built g (same shape, checked; a precision checkpoint_resume_precision allows,
 * converted) and fills p and extra (extra_bytes must equal what was saved). p is the progress
 * as saved: after a conversion the caller resets the loss scaler. */
int checkpoint_load(const char *path, const TrainConfig *cfg, Gpt *g, CheckpointProgress *p,
                    void *extra, size_t extra_bytes, Err *err);
/* The precision of g (what checkpoint_save records). */
CheckpointPrecision checkpoint_precision_of(const Gpt *g);
/* The dtype a precision is: "float32", "float16", "bfloat16", or "an unknown precision". */
const char *checkpoint_dtype_name(const CheckpointPrecision *p);
/* Whether a state of precision saved resumes in a run of precision run: CHECKPOINT_RESUME_SAME,
 * CHECKPOINT_RESUME_CONVERT, or -1 with err (naming path, both dtypes and devices, and what to
 * do). checkpoint_load applies it; the caller asks it first to know a conversion is coming. */
int checkpoint_resume_precision(const char *path, const CheckpointPrecision *saved,
                                const CheckpointPrecision *run, Err *err);
/* The precision recorded in path's header (checksum not checked: it describes, loads nothing). */
int checkpoint_read_precision(const char *path, CheckpointPrecision *out, Err *err);
/* The config text a checkpoint was made with (config_write's format; malloc'd, the caller
 * frees it). Checks the header only, not the checksum: it describes the run, loads nothing. */
int checkpoint_read_config(const char *path, char **text_out, Err *err);

#endif
