/* schedule.h: the learning-rate schedule of the training loop (nanoGPT's get_lr). A training
 * concern: the model only takes the rate it is given (gpt_update). */
#ifndef ARENAGPT_SCHEDULE_H
#define ARENAGPT_SCHEDULE_H

#include <stdint.h>

/* nanoGPT's get_lr: linear warmup over warmup_iters, cosine down to min_lr at
 * lr_decay_iters, min_lr after; learning_rate always when decay_lr = 0. */
float schedule_lr(int64_t it, float learning_rate, int64_t warmup_iters, int64_t lr_decay_iters,
                  float min_lr, int decay_lr);

#endif
