/* metrics.c: see metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <string.h>

FILE *metrics_open(const char *out_dir, Err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", out_dir);
    FILE *f = fopen(path, "a");
    if (!f)
        err_set(err, "cannot open '%s' for appending: %s", path, strerror(errno));
    return f;
}

void metrics_eval(FILE *f, int64_t iter, float train_loss, float val_loss) {
    if (!f)
        return;
    fprintf(f, "{\"iter\": %lld, \"train_loss\": %.6f, \"val_loss\": %.6f}\n", (long long)iter,
            train_loss, val_loss);
    fflush(f);
}

void metrics_step(FILE *f, const MetricsStep *s, const ArenaStats *mem) {
    if (!f)
        return;
    char mfu_text[32];
    if (s->mfu >= 0)
        snprintf(mfu_text, sizeof mfu_text, "%.4f", s->mfu);
    else
        snprintf(mfu_text, sizeof mfu_text, "null");
    fprintf(f,
            "{\"iter\": %lld, \"loss\": %.6f, \"lr\": %.6e, \"grad_norm\": %.6f, "
            "\"ms_per_iter\": %.3f, \"tokens_per_s\": %.1f, \"loss_scale\": %.1f, "
            "\"skipped\": %lld, \"mfu\": %s, \"mem_peak\": {",
            (long long)s->iter, s->loss, s->lr, s->grad_norm, s->ms_per_iter, s->tokens_per_s,
            s->loss_scale, (long long)s->skipped, mfu_text);
    for (int c = 0; c < ARENA_CAT_COUNT; c++)
        fprintf(f, "\"%s\": %zu%s", arena_category_name((ArenaCategory)c), mem->cat_peak_bytes[c],
                c + 1 < ARENA_CAT_COUNT ? ", " : "");
    fprintf(f, "}}\n");
    fflush(f);
}
