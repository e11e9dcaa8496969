/* cpu_layers.c: CPU reference kernels for the elementwise and row-wise layers: token and
 * position encoder, LayerNorm, GELU. fp32, OpenMP with static schedules; reductions over rows
 * (weight gradients) run per column block so results do not depend on timing. */
#include <math.h>
#include <string.h>

#include "cpu_kernels.h"

void cpu_encoder_forward(void *out_, const int32_t *inp, const void *wte_, const void *wpe_,
                         int64_t B, int64_t T, int64_t C, void *stream) {
    float *out = out_;
    const float *wte = wte_, *wpe = wpe_;
#pragma omp parallel for schedule(static)
    for (int64_t bt = 0; bt < B * T; bt++) {
        int64_t t = bt % T;
        float *o = out + bt * C;
        const float *we = wte + (int64_t)inp[bt] * C;
        const float *pe = wpe + t * C;
#pragma omp simd
        for (int64_t i = 0; i < C; i++)
            o[i] = we[i] + pe[i];
    }
}

/* Columns are split among threads; each thread walks all tokens in order, so the
 * accumulation order per element is fixed. */
void cpu_encoder_backward(void *dwte_, void *dwpe_, const void *dout_, const int32_t *inp,
                          int64_t B, int64_t T, int64_t C, void *stream) {
    float *dwte = dwte_, *dwpe = dwpe_;
    const float *dout = dout_;
#pragma omp parallel
    {
#pragma omp for schedule(static) nowait
        for (int64_t t = 0; t < T; t++) {
            float *dp = dwpe + t * C;
            for (int64_t b = 0; b < B; b++) {
                const float *d = dout + (b * T + t) * C;
#pragma omp simd
                for (int64_t i = 0; i < C; i++)
                    dp[i] += d[i];
            }
        }
        const int64_t CB = 16; /* channels per work item */
#pragma omp for schedule(static)
        for (int64_t c0 = 0; c0 < C; c0 += CB) {
            int64_t c1 = c0 + CB < C ? c0 + CB : C;
            for (int64_t bt = 0; bt < B * T; bt++) {
                float *dw = dwte + (int64_t)inp[bt] * C;
                const float *d = dout + bt * C;
                for (int64_t i = c0; i < c1; i++)
                    dw[i] += d[i];
            }
        }
    }
}

void cpu_layernorm_forward(void *out_, float *mean, float *rstd, const void *inp_,
                           const void *weight_, const void *bias_, int64_t N, int64_t C,
                           void *stream) {
    float *out = out_;
    const float *inp = inp_, *weight = weight_, *bias = bias_;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < C; i++)
            s += x[i];
        float m = s / (float)C;
        float v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int64_t i = 0; i < C; i++) {
            float d = x[i] - m;
            v += d * d;
        }
        v /= (float)C;
        float r = 1.0f / sqrtf(v + CPU_LAYERNORM_EPS);
        float *o = out + n * C;
        if (bias) {
#pragma omp simd
            for (int64_t i = 0; i < C; i++)
                o[i] = (x[i] - m) * r * weight[i] + bias[i];
        } else {
#pragma omp simd
            for (int64_t i = 0; i < C; i++)
                o[i] = (x[i] - m) * r * weight[i];
        }
        mean[n] = m;
        rstd[n] = r;
    }
}

void cpu_layernorm_backward(void *dinp_, void *dweight_, void *dbias_, const void *dout_,
                            const void *inp_, const void *weight_, const float *mean,
                            const float *rstd, int64_t N, int64_t C, void *stream) {
    float *dinp = dinp_, *dweight = dweight_, *dbias = dbias_;
    const float *dout = dout_, *inp = inp_, *weight = weight_;
#pragma omp parallel
    {
        /* dinp: rows are independent */
#pragma omp for schedule(static) nowait
        for (int64_t n = 0; n < N; n++) {
            const float *x = inp + n * C, *d = dout + n * C;
            float m = mean[n], r = rstd[n];
            float sd = 0.0f, sdx = 0.0f;
#pragma omp simd reduction(+ : sd, sdx)
            for (int64_t i = 0; i < C; i++) {
                float dn = weight[i] * d[i];
                sd += dn;
                sdx += dn * (x[i] - m) * r;
            }
            sd /= (float)C;
            sdx /= (float)C;
            float *di = dinp + n * C;
#pragma omp simd
            for (int64_t i = 0; i < C; i++) {
                float dn = weight[i] * d[i];
                float xhat = (x[i] - m) * r;
                di[i] += (dn - sd - xhat * sdx) * r;
            }
        }
        /* dweight, dbias: per column block, rows in order */
        const int64_t CB = 16;
#pragma omp for schedule(static)
        for (int64_t c0 = 0; c0 < C; c0 += CB) {
            int64_t c1 = c0 + CB < C ? c0 + CB : C;
            float accw[16], accb[16];
            for (int64_t i = 0; i < c1 - c0; i++)
                accw[i] = accb[i] = 0.0f;
            for (int64_t n = 0; n < N; n++) {
                const float *x = inp + n * C, *d = dout + n * C;
                float m = mean[n], r = rstd[n];
                for (int64_t i = c0; i < c1; i++) {
                    accw[i - c0] += (x[i] - m) * r * d[i];
                    accb[i - c0] += d[i];
                }
            }
            for (int64_t i = c0; i < c1; i++) {
                dweight[i] += accw[i - c0];
                if (dbias)
                    dbias[i] += accb[i - c0];
            }
        }
    }
}

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */
#define INV_SQRT2 0.7071067811865476f
#define INV_SQRT_2PI 0.3989422804014327f

void cpu_gelu_forward(void *out_, const void *inp_, int64_t N, int gelu, void *stream) {
    float *out = out_;
    const float *inp = inp_;
    if (gelu == 0) {
#pragma omp parallel for simd schedule(static)
        for (int64_t i = 0; i < N; i++) {
            float x = inp[i];
            float u = GELU_SCALE * (x + 0.044715f * x * x * x);
            out[i] = 0.5f * x * (1.0f + tanhf(u));
        }
    } else {
#pragma omp parallel for simd schedule(static)
        for (int64_t i = 0; i < N; i++) {
            float x = inp[i];
            out[i] = 0.5f * x * (1.0f + erff(x * INV_SQRT2));
        }
    }
}

void cpu_gelu_backward(void *dinp_, const void *inp_, const void *dout_, int64_t N, int gelu,
                       void *stream) {
    float *dinp = dinp_;
    const float *inp = inp_, *dout = dout_;
    if (gelu == 0) {
#pragma omp parallel for simd schedule(static)
        for (int64_t i = 0; i < N; i++) {
            float x = inp[i];
            float u = GELU_SCALE * (x + 0.044715f * x * x * x);
            float th = tanhf(u);
            float sech2 = 1.0f - th * th;
            float du = GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
            float grad = 0.5f * (1.0f + th) + 0.5f * x * sech2 * du;
            dinp[i] = grad * dout[i];
        }
    } else {
#pragma omp parallel for simd schedule(static)
        for (int64_t i = 0; i < N; i++) {
            float x = inp[i];
            float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2));
            float pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
            dinp[i] = (cdf + x * pdf) * dout[i];
        }
    }
}
