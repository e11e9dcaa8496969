/* schedule.c: nanoGPT's learning-rate schedule (schedule.h). */
#include "schedule.h"

#include <math.h>

float schedule_lr(int64_t it, float learning_rate, int64_t warmup_iters, int64_t lr_decay_iters,
                  float min_lr, int decay_lr) {
    if (!decay_lr)
        return learning_rate;
    if (it < warmup_iters)
        return learning_rate * (float)(it + 1) / (float)(warmup_iters + 1);
    if (it > lr_decay_iters)
        return min_lr;
    double ratio = (double)(it - warmup_iters) / (double)(lr_decay_iters - warmup_iters);
    if (ratio < 0.0)
        ratio = 0.0;
    if (ratio > 1.0)
        ratio = 1.0;
    double coeff = 0.5 * (1.0 + cos(M_PI * ratio));
    return (float)(min_lr + coeff * (learning_rate - min_lr));
}
