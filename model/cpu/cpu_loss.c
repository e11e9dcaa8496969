/* cpu_loss.c: the fused softmax + cross-entropy of one chunk of the loss head, and the
 * optimizer-side reductions and AdamW. Padded vocabulary columns (>= V) take no part in the
 * softmax and get zero gradient. */
#include <math.h>

#include "cpu_kernels.h"

void cpu_crossentropy_forward(void *logits_, float *losses, const int32_t *targets, int64_t N,
                              int64_t V, int64_t Vp, float dscale, void *stream) {
    float *logits = logits_;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        float *l = logits + n * Vp;
        int64_t tg = targets[n];
        float maxv = -INFINITY;
        for (int64_t i = 0; i < V; i++)
            maxv = l[i] > maxv ? l[i] : maxv;
        float lt = l[tg];
        float sum = 0.0f;
        if (dscale != 0.0f) {
            /* one exp per logit: keep exp(l - max) in place, then scale */
#pragma omp simd reduction(+ : sum)
            for (int64_t i = 0; i < V; i++) {
                float e = expf(l[i] - maxv);
                l[i] = e;
                sum += e;
            }
            float k = dscale / sum;
#pragma omp simd
            for (int64_t i = 0; i < V; i++)
                l[i] *= k;
            l[tg] -= dscale;
            for (int64_t i = V; i < Vp; i++)
                l[i] = 0.0f;
        } else {
#pragma omp simd reduction(+ : sum)
            for (int64_t i = 0; i < V; i++)
                sum += expf(l[i] - maxv);
        }
        losses[n] = logf(sum) + maxv - lt;
    }
}

/* Fixed blocks summed in order: the result does not depend on thread timing. */
#define NORM_BLOCKS 64

void cpu_norm_squared_accumulate(float *acc, const void *x_, int64_t n, void *stream) {
    const float *x = x_;
    double part[NORM_BLOCKS];
    int64_t per = (n + NORM_BLOCKS - 1) / NORM_BLOCKS;
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < NORM_BLOCKS; blk++) {
        int64_t i0 = blk * per, i1 = i0 + per < n ? i0 + per : n;
        double s = 0.0;
        for (int64_t i = i0; i < i1; i++)
            s += (double)x[i] * (double)x[i];
        part[blk] = s;
    }
    double s = 0.0;
    for (int64_t blk = 0; blk < NORM_BLOCKS; blk++)
        s += part[blk];
    *acc += (float)s;
}

void cpu_reduce_sum(float *out, const float *x, int64_t n, void *stream) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i];
    *out = (float)s;
}

void cpu_adamw_update(float *param, const float *grad, float *m, float *v, int64_t n, float lr,
                      float beta1, float beta2, float eps, float weight_decay, float grad_mul,
                      float bias_correction1, float bias_correction2) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i] * grad_mul;
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bias_correction1;
        float vhat = vi / bias_correction2;
        param[i] -= lr * (mhat / (sqrtf(vhat) + eps) + weight_decay * param[i]);
    }
}
