/* step_guard.h: what training does with a non-finite step without a loss scaler (the CPU's
 * fp32, and bfloat16 on the GPU):
 * a step whose loss or gradient norm is NaN/inf is skipped (no parameter or AdamW state
 * changes, and AdamW's step count does not advance: the caller passes it + 1 - skipped),
 * counted, and logged with the iteration and the first non-finite gradient tensor;
 * STEP_GUARD_MAX_SKIPS skips in a row stop the run with a "diverged" error, and no
 * checkpoint is written while a run of skips is going on. With float16 on the GPU,
 * non-finite steps are the loss scaler's business (cmd_train.c). */
#ifndef ARENAGPT_STEP_GUARD_H
#define ARENAGPT_STEP_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "../model/gpt.h"

#define STEP_GUARD_MAX_SKIPS 5 /* skipped steps in a row before the run is declared diverged */

typedef struct StepGuard {
    int64_t in_a_row; /* skips since the last good step */
} StepGuard;

/* After the unscaled step of iteration it (logged as iter it + 1) with this loss and gradient norm (the update was not
 * made when either is non-finite): 0 for a good step; 1 for a skipped one (counted in
 * *skipped, logged on stdout); -1 with err ("diverged") at STEP_GUARD_MAX_SKIPS in a row.
 * learning_rate is only quoted in the message. */
int step_guard_after_step(StepGuard *sg, const Gpt *g, int64_t it, float loss, float norm,
                          double learning_rate, int64_t *skipped, Err *err);
/* The name of the first parameter (gpt.h order) whose gradient holds a NaN/inf, and the
 * index of that element; "" when none or on a GPU (it reads f32 host gradients). */
void step_guard_first_nonfinite_grad(const Gpt *g, char *name, size_t len, int64_t *index);

#endif
