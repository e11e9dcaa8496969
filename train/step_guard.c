/* step_guard.c: see step_guard.h. */
#include "step_guard.h"

#include <math.h>
#include <stdio.h>

void step_guard_first_nonfinite_grad(const Gpt *g, char *name, size_t len, int64_t *index) {
    name[0] = 0;
    *index = -1;
    if (g->device != GPT_DEVICE_CPU) /* device memory: the norm alone says it */
        return;
    for (int i = 0; i < g->n_params; i++) {
        const Tensor *t = g->params[i].grad;
        if (!t->data || t->dtype != ARENA_DTYPE_F32)
            continue;
        const float *d = t->data;
        for (int64_t k = 0; k < g->params[i].numel; k++)
            if (!isfinite(d[k])) {
                snprintf(name, len, "%s", t->name);
                *index = k;
                return;
            }
    }
}

int step_guard_after_step(StepGuard *sg, const Gpt *g, int64_t it, float loss, float norm,
                          double learning_rate, int64_t *skipped, Err *err) {
    if (isfinite(loss) && isfinite(norm)) {
        sg->in_a_row = 0;
        return 0;
    }
    (*skipped)++;
    sg->in_a_row++;
    char name[ARENA_NAME_LEN];
    int64_t index;
    step_guard_first_nonfinite_grad(g, name, sizeof name, &index);
    char what[ARENA_NAME_LEN + 160];
    int off = isfinite(loss) ? snprintf(what, sizeof what, "gradient norm %g", (double)norm)
                             : snprintf(what, sizeof what, "the loss is %g", (double)loss);
    if (name[0])
        snprintf(what + off, sizeof what - (size_t)off,
                 ", first non-finite tensor '%s' (element %lld)", name, (long long)index);
    else if (g->device == GPT_DEVICE_CPU) /* a GPU's gradients are not searched */
        snprintf(what + off, sizeof what - (size_t)off, ", no non-finite gradient");
    printf("iter %lld: step skipped: %s (%lld in a row, %lld skipped in all; AdamW's step "
           "count not advanced)\n",
           (long long)(it + 1), what, (long long)sg->in_a_row, (long long)*skipped);
    fflush(stdout);
    if (sg->in_a_row < STEP_GUARD_MAX_SKIPS)
        return 1;
    return err_set(err,
                   "iter %lld: diverged: %d steps in a row had a non-finite loss or "
                   "gradient (last: %s); stopped without saving anything new; lower "
                   "learning_rate (now %g) or check the data",
                   (long long)(it + 1), STEP_GUARD_MAX_SKIPS, what, learning_rate);
}
