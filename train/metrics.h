/* metrics.h: out_dir/metrics.jsonl, one JSON object per line, appended (a resumed run
 * continues the file), flushed after each line so that a plot or a `tail -f` sees it at once.
 *   eval lines: {"iter", "train_loss", "val_loss"}
 *   step lines: {"iter", "loss", "lr", "grad_norm", "ms_per_iter", "tokens_per_s",
 *                "loss_scale", "skipped", "mfu" (null when unknown), "mem_peak": {category:
 *                bytes, ...}} */
#ifndef ARENAGPT_METRICS_H
#define ARENAGPT_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "../alloc/arena.h"

typedef struct MetricsStep {
    int64_t iter; /* steps done */
    float loss, lr, grad_norm, loss_scale;
    double ms_per_iter, tokens_per_s;
    int64_t skipped;
    double mfu; /* < 0: unknown */
} MetricsStep;

/* Opens out_dir/metrics.jsonl for appending; NULL with err when it cannot. */
FILE *metrics_open(const char *out_dir, Err *err);
void metrics_eval(FILE *f, int64_t iter, float train_loss, float val_loss);
void metrics_step(FILE *f, const MetricsStep *s, const ArenaStats *mem);

#endif
