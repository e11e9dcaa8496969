/* cpu_attention.c: naive causal self-attention on the CPU: the (B,NH,T,T) probabilities are
 * materialised (saved for backward), scaled by 1/sqrt(HS). OpenMP over (b, h, t) rows in
 * forward and over (b, h) pairs in backward (dk and dv accumulate over rows t, so rows of one
 * head stay on one thread and in order). Plain loops: no BLAS inside OpenMP regions. */
#include <math.h>
#include <string.h>

#include "cpu_kernels.h"

void cpu_attention_forward(void *out_, void *att_, void *workspace, const void *qkv_, int64_t B,
                           int64_t T, int64_t C, int64_t NH, void *stream) {
    float *out = out_, *att = att_;
    const float *qkv = qkv_;
    int64_t HS = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel for collapse(3) schedule(static)
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < NH; h++)
            for (int64_t t = 0; t < T; t++) {
                const float *q = qkv + (b * T + t) * C3 + h * HS;
                float *p = att + ((b * NH + h) * T + t) * T;
                float maxv = -INFINITY;
                for (int64_t t2 = 0; t2 <= t; t2++) {
                    const float *k = qkv + (b * T + t2) * C3 + C + h * HS;
                    float s = 0.0f;
#pragma omp simd reduction(+ : s)
                    for (int64_t i = 0; i < HS; i++)
                        s += q[i] * k[i];
                    s *= scale;
                    p[t2] = s;
                    if (s > maxv)
                        maxv = s;
                }
                float sum = 0.0f;
                for (int64_t t2 = 0; t2 <= t; t2++) {
                    float e = expf(p[t2] - maxv);
                    p[t2] = e;
                    sum += e;
                }
                float inv = 1.0f / sum;
                for (int64_t t2 = 0; t2 <= t; t2++)
                    p[t2] *= inv;
                for (int64_t t2 = t + 1; t2 < T; t2++)
                    p[t2] = 0.0f;
                float *o = out + (b * T + t) * C + h * HS;
                for (int64_t i = 0; i < HS; i++)
                    o[i] = 0.0f;
                for (int64_t t2 = 0; t2 <= t; t2++) {
                    const float *v = qkv + (b * T + t2) * C3 + 2 * C + h * HS;
                    float pv = p[t2];
#pragma omp simd
                    for (int64_t i = 0; i < HS; i++)
                        o[i] += pv * v[i];
                }
            }
}

/* Per row t (one head): datt[t2] = dy . v[t2], dv[t2] += p[t2] dy,
 * dpre[t2] = p[t2] (datt[t2] - sum_j p[j] datt[j]) * scale, dq += dpre[t2] k[t2],
 * dk[t2] += dpre[t2] q. dpre overwrites p in the att row (att is clobbered). */
void cpu_attention_backward(void *dqkv_, void *att_, void *workspace, const void *dout_,
                            const void *out, const void *qkv_, int64_t B, int64_t T, int64_t C,
                            int64_t NH, void *stream) {
    float *dqkv = dqkv_, *att = att_;
    const float *dout = dout_, *qkv = qkv_;
    int64_t HS = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < NH; h++) {
            for (int64_t t = 0; t < T; t++) {
                float *d = dqkv + (b * T + t) * C3 + h * HS;
                memset(d, 0, (size_t)HS * sizeof(float));
                memset(d + C, 0, (size_t)HS * sizeof(float));
                memset(d + 2 * C, 0, (size_t)HS * sizeof(float));
            }
            for (int64_t t = 0; t < T; t++) {
                float *p = att + ((b * NH + h) * T + t) * T;
                const float *dy = dout + (b * T + t) * C + h * HS;
                const float *q = qkv + (b * T + t) * C3 + h * HS;
                float *dq = dqkv + (b * T + t) * C3 + h * HS;
                /* pass 1: dv, and s = sum p datt (datt is recomputed in pass 2: the dot
                 * products are cheap and no scratch row is needed) */
                float s = 0.0f;
                for (int64_t t2 = 0; t2 <= t; t2++) {
                    const float *v = qkv + (b * T + t2) * C3 + 2 * C + h * HS;
                    float *dv = dqkv + (b * T + t2) * C3 + 2 * C + h * HS;
                    float pv = p[t2], da = 0.0f;
#pragma omp simd reduction(+ : da)
                    for (int64_t i = 0; i < HS; i++) {
                        dv[i] += pv * dy[i];
                        da += dy[i] * v[i];
                    }
                    s += pv * da;
                }
                /* pass 2 */
                for (int64_t t2 = 0; t2 <= t; t2++) {
                    const float *k = qkv + (b * T + t2) * C3 + C + h * HS;
                    const float *v = qkv + (b * T + t2) * C3 + 2 * C + h * HS;
                    float *dk = dqkv + (b * T + t2) * C3 + C + h * HS;
                    float da = 0.0f;
#pragma omp simd reduction(+ : da)
                    for (int64_t i = 0; i < HS; i++)
                        da += dy[i] * v[i];
                    float dpre = p[t2] * (da - s) * scale;
                    p[t2] = dpre;
#pragma omp simd
                    for (int64_t i = 0; i < HS; i++) {
                        dq[i] += dpre * k[i];
                        dk[i] += dpre * q[i];
                    }
                }
            }
        }
}

/* Per head: scores of the last query against every cached key (twice: their maximum first,
 * then the exponentials), the weighted sum of v, normalised at the end. No scratch. */
static float decode_score(const float *q, const float *k, int64_t HS, float scale) {
    float s = 0.0f;
    for (int64_t i = 0; i < HS; i++)
        s += q[i] * k[i];
    return s * scale;
}

void cpu_attention_decode(void *out_, const void *qkv_, int64_t T, int64_t C, int64_t NH,
                          void *stream) {
    float *out = out_;
    const float *qkv = qkv_;
    int64_t HS = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel for schedule(static)
    for (int64_t h = 0; h < NH; h++) {
        const float *q = qkv + (T - 1) * C3 + h * HS;
        float mx = -INFINITY;
        for (int64_t t2 = 0; t2 < T; t2++) {
            float sc = decode_score(q, qkv + t2 * C3 + C + h * HS, HS, scale);
            mx = sc > mx ? sc : mx;
        }
        float *o = out + h * HS, sum = 0.0f;
        for (int64_t i = 0; i < HS; i++)
            o[i] = 0.0f;
        for (int64_t t2 = 0; t2 < T; t2++) {
            float w = expf(decode_score(q, qkv + t2 * C3 + C + h * HS, HS, scale) - mx);
            const float *v = qkv + t2 * C3 + 2 * C + h * HS;
            sum += w;
            for (int64_t i = 0; i < HS; i++)
                o[i] += w * v[i];
        }
        for (int64_t i = 0; i < HS; i++)
            o[i] /= sum;
    }
}
