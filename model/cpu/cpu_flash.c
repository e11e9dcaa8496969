/* cpu_flash.c: fused causal self-attention on the CPU (attention=flash), FlashAttention-2's
 * algorithm in f32: the (T,T) probabilities never exist. Forward keeps per query row a running
 * maximum m and sum l of exp(score - m) over key tiles (online softmax), rescales the output
 * accumulator when m grows, and saves O and lse = m + log(l) per row. Backward recomputes each
 * probability from the saved lse, p = exp(score - lse), tile by tile, with
 * D = rowsum(dO * O) (the workspace) in place of sum_j p_j dP_j:
 *   dV_j += p dO_i, dP = dO_i . V_j, dS = p (dP - D_i), dQ_i += scale dS K_j,
 *   dK_j += scale dS Q_i.
 *
 * Tiling: key tiles of CPU_FLASH_TILE_K rows (16 KiB at HS 64) are reused by a tile of
 * CPU_FLASH_TILE_Q query rows while they sit in cache; causal tiles above the diagonal are
 * skipped. OpenMP over (b, h) pairs, static schedule: one head is one thread's, so dQ, dK,
 * dV accumulate without races and in a fixed order (deterministic for any thread count).
 * Scores are scaled by 1/sqrt(HS). No head-size limit on the CPU; no scratch besides the
 * caller's workspace (D, f32 (B,NH,T)). */
#include <math.h>
#include <string.h>

#include "cpu_kernels.h"

#define CPU_FLASH_TILE_Q 64
#define CPU_FLASH_TILE_K 64

static inline float dotf(const float *a, const float *b, int64_t n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static inline void axpyf(float *y, float a, const float *x, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

void cpu_flash_attention_forward(void *out_, void *lse_, void *workspace, const void *qkv_,
                                 int64_t B, int64_t T, int64_t C, int64_t NH, void *stream) {
    float *out = out_, *lse = lse_;
    const float *qkv = qkv_;
    int64_t HS = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < NH; h++) {
            const float *qh = qkv + b * T * C3 + h * HS; /* row t at qh + t*C3 */
            const float *kh = qh + C, *vh = qh + 2 * C;
            float *oh = out + b * T * C + h * HS; /* row t at oh + t*C */
            float *lh = lse + (b * NH + h) * T;
            for (int64_t i0 = 0; i0 < T; i0 += CPU_FLASH_TILE_Q) {
                int64_t i1 = i0 + CPU_FLASH_TILE_Q < T ? i0 + CPU_FLASH_TILE_Q : T;
                float m[CPU_FLASH_TILE_Q], l[CPU_FLASH_TILE_Q];
                for (int64_t t = i0; t < i1; t++) {
                    m[t - i0] = -INFINITY;
                    l[t - i0] = 0.0f;
                    memset(oh + t * C, 0, (size_t)HS * sizeof(float));
                }
                /* causal: the key tiles up to the tile's last row */
                for (int64_t j0 = 0; j0 < i1; j0 += CPU_FLASH_TILE_K) {
                    int64_t j1 = j0 + CPU_FLASH_TILE_K < i1 ? j0 + CPU_FLASH_TILE_K : i1;
                    for (int64_t t = i0 < j0 ? j0 : i0; t < i1; t++) {
                        const float *q = qh + t * C3;
                        float *o = oh + t * C;
                        int64_t jend = t + 1 < j1 ? t + 1 : j1; /* keys j0 .. min(j1, t+1) */
                        float s[CPU_FLASH_TILE_K];
                        float mt = -INFINITY;
                        for (int64_t j = j0; j < jend; j++) {
                            s[j - j0] = scale * dotf(q, kh + j * C3, HS);
                            if (s[j - j0] > mt)
                                mt = s[j - j0];
                        }
                        float mo = m[t - i0];
                        float mn = mo > mt ? mo : mt;
                        float alpha = expf(mo - mn); /* 0 on the first tile (mo = -inf) */
                        float sum = 0.0f;
                        if (alpha != 1.0f)
                            for (int64_t d = 0; d < HS; d++)
                                o[d] *= alpha;
                        for (int64_t j = j0; j < jend; j++) {
                            float p = expf(s[j - j0] - mn);
                            sum += p;
                            axpyf(o, p, vh + j * C3, HS);
                        }
                        l[t - i0] = l[t - i0] * alpha + sum;
                        m[t - i0] = mn;
                    }
                }
                for (int64_t t = i0; t < i1; t++) {
                    float inv = 1.0f / l[t - i0];
                    float *o = oh + t * C;
                    for (int64_t d = 0; d < HS; d++)
                        o[d] *= inv;
                    lh[t] = m[t - i0] + logf(l[t - i0]);
                }
            }
        }
}

void cpu_flash_attention_backward(void *dqkv_, void *lse_, void *workspace_, const void *dout_,
                                  const void *out_, const void *qkv_, int64_t B, int64_t T,
                                  int64_t C, int64_t NH, void *stream) {
    float *dqkv = dqkv_, *workspace = workspace_;
    const float *dout = dout_, *out = out_, *qkv = qkv_, *lse = lse_;
    int64_t HS = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < NH; h++) {
            const float *qh = qkv + b * T * C3 + h * HS;
            const float *kh = qh + C, *vh = qh + 2 * C;
            float *dqh = dqkv + b * T * C3 + h * HS;
            float *dkh = dqh + C, *dvh = dqh + 2 * C;
            const float *doh = dout + b * T * C + h * HS, *oh = out + b * T * C + h * HS;
            const float *lh = lse + (b * NH + h) * T;
            float *Dh = workspace + (b * NH + h) * T;
            for (int64_t t = 0; t < T; t++) {
                Dh[t] = dotf(doh + t * C, oh + t * C, HS);
                memset(dqh + t * C3, 0, (size_t)HS * sizeof(float));
                memset(dkh + t * C3, 0, (size_t)HS * sizeof(float));
                memset(dvh + t * C3, 0, (size_t)HS * sizeof(float));
            }
            /* FlashAttention-2's order: a key tile stays while every query row at or below
             * the diagonal passes over it (in tiles, for the cache) */
            for (int64_t j0 = 0; j0 < T; j0 += CPU_FLASH_TILE_K) {
                int64_t j1 = j0 + CPU_FLASH_TILE_K < T ? j0 + CPU_FLASH_TILE_K : T;
                for (int64_t i0 = j0; i0 < T; i0 += CPU_FLASH_TILE_Q) {
                    int64_t i1 = i0 + CPU_FLASH_TILE_Q < T ? i0 + CPU_FLASH_TILE_Q : T;
                    for (int64_t t = i0; t < i1; t++) {
                        const float *q = qh + t * C3, *dy = doh + t * C;
                        float *dq = dqh + t * C3;
                        float lt = lh[t], Dt = Dh[t];
                        int64_t jend = t + 1 < j1 ? t + 1 : j1;
                        for (int64_t j = j0; j < jend; j++) {
                            const float *k = kh + j * C3, *v = vh + j * C3;
                            float p = expf(scale * dotf(q, k, HS) - lt);
                            axpyf(dvh + j * C3, p, dy, HS);
                            float ds = p * (dotf(dy, v, HS) - Dt) * scale;
                            axpyf(dq, ds, k, HS);
                            axpyf(dkh + j * C3, ds, q, HS);
                        }
                    }
                }
            }
        }
}
