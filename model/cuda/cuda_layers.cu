/* cuda_layers.cu: the element-wise and row-wise layers of the CUDA backend in fp16 with f32
 * arithmetic: token + position encoder (forward, backward), LayerNorm (forward with f32
 * mean/rstd, backward), GELU (tanh and erf, forward and backward), and the column reductions
 * that give bias and LayerNorm weight gradients.
 *
 * Determinism: no atomics. Column reductions (dweight, dbias, dwpe) run one thread per
 * column over all rows in a fixed order; the token-embedding gradient is summed per distinct
 * token in position order: the positions are sorted by (token, position) in the backend
 * workspace (a bitonic sort of 64-bit keys), then one block per run of equal tokens sums its
 * rows. So the same inputs give the same bits, whatever the recompute mode.
 *
 * Accumulating outputs (+=) read the f16 value, add the f32 contribution and round once.
 * Signatures are backend.h's (outputs, saved, inputs, weights, sizes, stream). */
#include "cuda_common.cuh"

#define LN_EPS 1e-5f
#define ROWS_PER_BLOCK 8 /* warps per block in the one-warp-per-row kernels */

static inline const __half *H(const void *p) { return (const __half *)p; }
static inline __half *Hm(void *p) { return (__half *)p; }

/* ---------------------------------------------------------------------------------------- */
/* encoder                                                                                   */

__global__ void encoder_forward_kernel(__half *out, const int32_t *inp, const __half *wte,
                                       const __half *wpe, int64_t BT, int64_t T, int64_t C) {
    int64_t n = BT * C;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t bt = i / C, c = i % C, t = bt % T;
        int64_t tok = inp[bt];
        out[i] = __float2half_rn(__half2float(wte[tok * C + c]) + __half2float(wpe[t * C + c]));
    }
}

void cuda_encoder_forward(void *out, const int32_t *inp, const void *wte, const void *wpe,
                          int64_t B, int64_t T, int64_t C, void *stream) {
    int64_t n = B * T * C;
    CUDA_LAUNCH(encoder_forward_kernel, cuda_blocks_for(n, 256), 256, 0, cuda_stream(stream),
                Hm(out), inp, H(wte), H(wpe), B * T, T, C);
    CUDA_LAUNCH_CHECK();
}

/* dwpe[t,c] += sum_b dout[b,t,c] */
__global__ void encoder_backward_wpe_kernel(__half *dwpe, const __half *dout, int64_t B, int64_t T,
                                            int64_t C) {
    int64_t n = T * C;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float acc = 0.0f;
        for (int64_t b = 0; b < B; b++)
            acc += __half2float(dout[b * n + i]);
        dwpe[i] = __float2half_rn(__half2float(dwpe[i]) + acc);
    }
}

#define WTE_BLOCK 256
/* Without a backend workspace to sort in (kernel tests before gpt_cuda_workspace_set): one
 * block per position i. If token inp[i] occurs earlier, the block does nothing; else it sums
 * dout over every position j >= i holding the same token (in order) and adds the sum to
 * dwte[token] once. O((B*T)^2) token reads: the sorted path below is the one runs use. */
__global__ void encoder_backward_wte_scan_kernel(__half *dwte, const __half *dout,
                                                 const int32_t *inp, int64_t BT, int64_t C) {
    __shared__ int32_t toks[WTE_BLOCK];
    int64_t i = blockIdx.x;
    int32_t tok = inp[i];
    int seen = 0;
    for (int64_t j = threadIdx.x; j < i; j += blockDim.x)
        if (inp[j] == tok) {
            seen = 1;
            break;
        }
    if (__syncthreads_or(seen))
        return;
    for (int64_t c0 = 0; c0 < C; c0 += blockDim.x) {
        int64_t c = c0 + threadIdx.x;
        float acc = 0.0f;
        for (int64_t j0 = i; j0 < BT; j0 += blockDim.x) {
            int64_t j = j0 + threadIdx.x;
            __syncthreads();
            toks[threadIdx.x] = j < BT ? inp[j] : -1;
            __syncthreads();
            int64_t jn = BT - j0 < (int64_t)blockDim.x ? BT - j0 : (int64_t)blockDim.x;
            if (c < C)
                for (int64_t q = 0; q < jn; q++)
                    if (toks[q] == tok)
                        acc += __half2float(dout[(j0 + q) * C + c]);
        }
        if (c < C) {
            __half *dst = dwte + (int64_t)tok * C + c;
            *dst = __float2half_rn(__half2float(*dst) + acc);
        }
    }
}

/* The sorted path. key = token << 32 | position (tokens are >= 0, positions < 2^31), so keys
 * sorted ascending group each token's positions together, in position order. The key array
 * is padded to a power of two with ~0 (after every real key). */
#define SORT_THREADS 1024
#define SORT_LOCAL (2 * SORT_THREADS) /* keys a block sorts in shared memory */
#define KEY_PAD (~0ULL)

__global__ void wte_keys_kernel(uint64_t *keys, const int32_t *inp, int64_t BT, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        keys[i] = i < BT ? ((uint64_t)(uint32_t)inp[i] << 32) | (uint64_t)i : KEY_PAD;
}

/* One compare-exchange step (k, j) of the bitonic network over keys[0, n): element i and its
 * partner i ^ j, ascending where (i & k) == 0. Each pair is handled by its lower index. */
__device__ __forceinline__ void bitonic_pair(uint64_t *a, int64_t i, int64_t gi, int64_t j,
                                             int64_t k) {
    int64_t l = i ^ j;
    if (l <= i)
        return;
    uint64_t x = a[i], y = a[l];
    int ascending = (gi & k) == 0;
    if ((x > y) == ascending) {
        a[i] = y;
        a[l] = x;
    }
}

/* Steps with j >= SORT_LOCAL: across blocks, through global memory. */
__global__ void bitonic_global_step_kernel(uint64_t *keys, int64_t n, int64_t j, int64_t k) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        bitonic_pair(keys, i, i, j, k);
}

/* Every step with j < SORT_LOCAL inside one block's SORT_LOCAL keys (or all n when fewer), in
 * shared memory: with k = 0, the whole network for k = 2 .. local size (each block's keys
 * sorted, alternating direction by the global index as the next stage needs); with k > 0,
 * the steps j = local/2 .. 1 of stage k. */
__global__ void bitonic_local_kernel(uint64_t *keys, int64_t n, int64_t k_only) {
    __shared__ uint64_t s[SORT_LOCAL];
    int64_t local = n < SORT_LOCAL ? n : SORT_LOCAL;
    int64_t base = blockIdx.x * local;
    for (int64_t i = threadIdx.x; i < local; i += blockDim.x)
        s[i] = keys[base + i];
    __syncthreads();
    int64_t k_from = k_only ? k_only : 2, k_to = k_only ? k_only : local;
    for (int64_t k = k_from; k <= k_to; k <<= 1) {
        int64_t j_from = k_only ? local / 2 : k / 2;
        for (int64_t j = j_from; j > 0; j >>= 1) {
            for (int64_t i = threadIdx.x; i < local; i += blockDim.x)
                bitonic_pair(s, i, base + i, j, k);
            __syncthreads();
        }
    }
    for (int64_t i = threadIdx.x; i < local; i += blockDim.x)
        keys[base + i] = s[i];
}

/* One block per sorted index r; the first index of each run of equal tokens sums dout over
 * the run's positions (ascending) and adds the sum to dwte[token] once. */
__global__ void encoder_backward_wte_sorted_kernel(__half *dwte, const __half *dout,
                                                   const uint64_t *keys, int64_t BT, int64_t C) {
    int64_t r = blockIdx.x;
    uint32_t tok = (uint32_t)(keys[r] >> 32);
    if (r > 0 && (uint32_t)(keys[r - 1] >> 32) == tok)
        return;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        float acc = 0.0f;
        for (int64_t e = r; e < BT && (uint32_t)(keys[e] >> 32) == tok; e++)
            acc += __half2float(dout[(int64_t)(keys[e] & 0xffffffffULL) * C + c]);
        __half *dst = dwte + (int64_t)tok * C + c;
        *dst = __float2half_rn(__half2float(*dst) + acc);
    }
}

/* Sorts the (token, position) keys of inp[0, BT) into keys[0, n) (n = the power of two >= BT). */
static void wte_sort_keys(uint64_t *keys, const int32_t *inp, int64_t BT, int64_t n,
                          cudaStream_t s) {
    CUDA_LAUNCH(wte_keys_kernel, cuda_blocks_for(n, 256), 256, 0, s, keys, inp, BT, n);
    CUDA_LAUNCH_CHECK();
    int64_t local = n < SORT_LOCAL ? n : SORT_LOCAL;
    unsigned blocks = (unsigned)(n / local);
    CUDA_LAUNCH(bitonic_local_kernel, blocks, SORT_THREADS, 0, s, keys, n, (int64_t)0);
    CUDA_LAUNCH_CHECK();
    for (int64_t k = 2 * local; k <= n; k <<= 1) {
        for (int64_t j = k / 2; j >= local; j >>= 1) {
            CUDA_LAUNCH(bitonic_global_step_kernel, cuda_blocks_for(n, 256), 256, 0, s, keys, n, j,
                        k);
            CUDA_LAUNCH_CHECK();
        }
        CUDA_LAUNCH(bitonic_local_kernel, blocks, SORT_THREADS, 0, s, keys, n, k);
        CUDA_LAUNCH_CHECK();
    }
}

void cuda_encoder_backward(void *dwte, void *dwpe, const void *dout, const int32_t *inp, int64_t B,
                           int64_t T, int64_t C, void *stream) {
    cudaStream_t s = cuda_stream(stream);
    CUDA_LAUNCH(encoder_backward_wpe_kernel, cuda_blocks_for(T * C, 256), 256, 0, s, Hm(dwpe),
                H(dout), B, T, C);
    CUDA_LAUNCH_CHECK();
    ASSERT(B * T <= 0x7fffffffLL);
    int64_t BT = B * T, n = 1;
    while (n < BT)
        n <<= 1;
    size_t ws_bytes = 0;
    uint64_t *keys = (uint64_t *)cuda_workspace(&ws_bytes);
    if (!keys || (size_t)n * sizeof(uint64_t) > ws_bytes) {
        CUDA_LAUNCH(encoder_backward_wte_scan_kernel, (unsigned)BT, WTE_BLOCK, 0, s, Hm(dwte),
                    H(dout), inp, BT, C);
        CUDA_LAUNCH_CHECK();
        return;
    }
    wte_sort_keys(keys, inp, BT, n, s);
    CUDA_LAUNCH(encoder_backward_wte_sorted_kernel, (unsigned)BT, WTE_BLOCK, 0, s, Hm(dwte),
                H(dout), keys, BT, C);
    CUDA_LAUNCH_CHECK();
}

/* ---------------------------------------------------------------------------------------- */
/* LayerNorm                                                                                 */

__global__ void layernorm_forward_kernel(__half *out, float *mean, float *rstd, const __half *inp,
                                         const __half *weight, const __half *bias, int64_t N,
                                         int64_t C) {
    int lane = threadIdx.x % 32;
    int64_t row = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32;
    if (row >= N)
        return;
    const __half *x = inp + row * C;
    float s = 0.0f;
    for (int64_t c = lane; c < C; c += 32)
        s += __half2float(x[c]);
    float m = cuda_warp_sum(s) / (float)C;
    float v = 0.0f;
    for (int64_t c = lane; c < C; c += 32) {
        float d = __half2float(x[c]) - m;
        v += d * d;
    }
    float var = cuda_warp_sum(v) / (float)C;
    float r = 1.0f / sqrtf(var + LN_EPS);
    __half *o = out + row * C;
    for (int64_t c = lane; c < C; c += 32) {
        float y = (__half2float(x[c]) - m) * r * __half2float(weight[c]);
        if (bias)
            y += __half2float(bias[c]);
        o[c] = __float2half_rn(y);
    }
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}

void cuda_layernorm_forward(void *out, float *mean, float *rstd, const void *inp,
                            const void *weight, const void *bias, int64_t N, int64_t C,
                            void *stream) {
    unsigned blocks = (unsigned)((N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    CUDA_LAUNCH(layernorm_forward_kernel, blocks, 32 * ROWS_PER_BLOCK, 0, cuda_stream(stream),
                Hm(out), mean, rstd, H(inp), H(weight), H(bias), N, C);
    CUDA_LAUNCH_CHECK();
}

/* dinp += (dnorm - mean(dnorm) - norm * mean(dnorm * norm)) * rstd, dnorm = weight * dout */
__global__ void layernorm_backward_dinp_kernel(__half *dinp, const __half *dout, const __half *inp,
                                               const __half *weight, const float *mean,
                                               const float *rstd, int64_t N, int64_t C) {
    int lane = threadIdx.x % 32;
    int64_t row = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32;
    if (row >= N)
        return;
    const __half *x = inp + row * C, *dy = dout + row * C;
    float m = mean[row], r = rstd[row];
    float a = 0.0f, b = 0.0f;
    for (int64_t c = lane; c < C; c += 32) {
        float norm = (__half2float(x[c]) - m) * r;
        float dn = __half2float(weight[c]) * __half2float(dy[c]);
        a += dn;
        b += dn * norm;
    }
    float dn_mean = cuda_warp_sum(a) / (float)C;
    float dnn_mean = cuda_warp_sum(b) / (float)C;
    __half *dx = dinp + row * C;
    for (int64_t c = lane; c < C; c += 32) {
        float norm = (__half2float(x[c]) - m) * r;
        float dn = __half2float(weight[c]) * __half2float(dy[c]);
        float g = (dn - dn_mean - norm * dnn_mean) * r;
        dx[c] = __float2half_rn(__half2float(dx[c]) + g);
    }
}

#define COL_X 32 /* columns per block */
#define COL_Y 32 /* row groups per block */

/* Column sums over N rows, one block per COL_X columns, fixed order (deterministic).
 * with_norm = 0: dst0[c] += sum_r dout[r,c].
 * with_norm = 1: dst0[c] += sum_r dout[r,c] * (inp[r,c] - mean[r]) * rstd[r]  (LayerNorm
 *                weight), dst1[c] += sum_r dout[r,c] (bias; dst1 may be NULL). */
__global__ void column_sums_kernel(__half *dst0, __half *dst1, const __half *dout,
                                   const __half *inp, const float *mean, const float *rstd,
                                   int64_t N, int64_t C, int with_norm) {
    __shared__ float s0[COL_Y][COL_X + 1];
    __shared__ float s1[COL_Y][COL_X + 1];
    int64_t c = blockIdx.x * (int64_t)COL_X + threadIdx.x;
    float a0 = 0.0f, a1 = 0.0f;
    if (c < C) {
        for (int64_t r = threadIdx.y; r < N; r += COL_Y) {
            float dy = __half2float(dout[r * C + c]);
            if (with_norm) {
                float norm = (__half2float(inp[r * C + c]) - mean[r]) * rstd[r];
                a0 += dy * norm;
                a1 += dy;
            } else {
                a0 += dy;
            }
        }
    }
    s0[threadIdx.y][threadIdx.x] = a0;
    s1[threadIdx.y][threadIdx.x] = a1;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float t0 = 0.0f, t1 = 0.0f;
        for (int y = 0; y < COL_Y; y++) {
            t0 += s0[y][threadIdx.x];
            t1 += s1[y][threadIdx.x];
        }
        dst0[c] = __float2half_rn(__half2float(dst0[c]) + t0);
        if (with_norm && dst1)
            dst1[c] = __float2half_rn(__half2float(dst1[c]) + t1);
    }
}

void cuda_layernorm_backward(void *dinp, void *dweight, void *dbias, const void *dout,
                             const void *inp, const void *weight, const float *mean,
                             const float *rstd, int64_t N, int64_t C, void *stream) {
    cudaStream_t s = cuda_stream(stream);
    unsigned blocks = (unsigned)((N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    CUDA_LAUNCH(layernorm_backward_dinp_kernel, blocks, 32 * ROWS_PER_BLOCK, 0, s, Hm(dinp),
                H(dout), H(inp), H(weight), mean, rstd, N, C);
    CUDA_LAUNCH_CHECK();
    dim3 cb(COL_X, COL_Y);
    CUDA_LAUNCH(column_sums_kernel, (unsigned)((C + COL_X - 1) / COL_X), cb, 0, s, Hm(dweight),
                Hm(dbias), H(dout), H(inp), mean, rstd, N, C, 1);
    CUDA_LAUNCH_CHECK();
}

void cuda_bias_backward(__half *dbias, const __half *dout, int64_t N, int64_t OC,
                        cudaStream_t stream) {
    dim3 cb(COL_X, COL_Y);
    CUDA_LAUNCH(column_sums_kernel, (unsigned)((OC + COL_X - 1) / COL_X), cb, 0, stream, dbias,
                NULL, dout, NULL, NULL, NULL, N, OC, 0);
    CUDA_LAUNCH_CHECK();
}

__global__ void bias_add_kernel(__half *out, const __half *bias, int64_t N, int64_t OC) {
    int64_t n = N * OC;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        out[i] = __float2half_rn(__half2float(out[i]) + __half2float(bias[i % OC]));
}

void cuda_bias_add(__half *out, const __half *bias, int64_t N, int64_t OC, cudaStream_t stream) {
    CUDA_LAUNCH(bias_add_kernel, cuda_blocks_for(N * OC, 256), 256, 0, stream, out, bias, N, OC);
    CUDA_LAUNCH_CHECK();
}

/* ---------------------------------------------------------------------------------------- */
/* GELU                                                                                      */

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_CUBIC 0.044715f
#define INV_SQRT2 0.7071067811865476f
#define INV_SQRT_2PI 0.3989422804014327f

__device__ __forceinline__ float gelu_f(float x, int erf_kind) {
    if (erf_kind)
        return 0.5f * x * (1.0f + erff(x * INV_SQRT2));
    float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
}

__device__ __forceinline__ float gelu_grad_f(float x, int erf_kind) {
    if (erf_kind)
        return 0.5f * (1.0f + erff(x * INV_SQRT2)) + x * INV_SQRT_2PI * expf(-0.5f * x * x);
    float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
    float t = tanhf(u);
    float du = GELU_SCALE * (1.0f + 3.0f * GELU_CUBIC * x * x);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}

__global__ void gelu_forward_kernel(__half *out, const __half *inp, int64_t n, int erf_kind) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        out[i] = __float2half_rn(gelu_f(__half2float(inp[i]), erf_kind));
}

__global__ void gelu_backward_kernel(__half *dinp, const __half *inp, const __half *dout, int64_t n,
                                     int erf_kind) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        dinp[i] =
            __float2half_rn(gelu_grad_f(__half2float(inp[i]), erf_kind) * __half2float(dout[i]));
}

void cuda_gelu_forward(void *out, const void *inp, int64_t N, int gelu, void *stream) {
    CUDA_LAUNCH(gelu_forward_kernel, cuda_blocks_for(N, 256), 256, 0, cuda_stream(stream), Hm(out),
                H(inp), N, gelu);
    CUDA_LAUNCH_CHECK();
}

void cuda_gelu_backward(void *dinp, const void *inp, const void *dout, int64_t N, int gelu,
                        void *stream) {
    CUDA_LAUNCH(gelu_backward_kernel, cuda_blocks_for(N, 256), 256, 0, cuda_stream(stream),
                Hm(dinp), H(inp), H(dout), N, gelu);
    CUDA_LAUNCH_CHECK();
}
