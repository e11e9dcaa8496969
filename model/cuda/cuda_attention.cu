/* cuda_attention.cu: naive causal self-attention on the GPU (attention=naive): the (B,NH,T,T)
 * probabilities are materialised in `att` (f16), scores and products are strided-batched
 * cuBLASLt GEMMs over the heads of one sequence (q, k, v of head h sit at channel offsets
 * h*HS, C + h*HS, 2C + h*HS of each qkv row, so heads are HS elements apart), the softmax and
 * its backward are row kernels with f32 arithmetic.
 *
 * Forward:  att = softmax_causal(scale * Q K^T) (0 above the diagonal), y = att V.
 * Backward: dV = att^T dy; dP = dy V^T through the same batched GEMM, a group of heads at a
 *           time, into scratch reserved at the top of the backend workspace (no arena tensor:
 *           the plan does not change); then a warp per row of att computes D = sum(P dP) and
 *           overwrites the row with P (dP - D) (128-bit access when T % 8 == 0); dQ = scale *
 *           dS K, dK = scale * dS^T Q.
 *           Without a workspace that holds two heads' (T,T) f16 (kernel tests before it is
 *           set, or a very long T), the fallback: one block per row computes dP on the fly,
 *           each thread dotting its own row of v (attention_dscores_kernel).
 *
 * Limits (fallback only): it keeps T + HS f32 values per row in dynamic shared memory, next
 * to the kernel's static `red` (32 floats); both must fit the device's per-block limit (48 KiB
 * without opt-in): T <= 12192 with HS 64 (gpt_cuda_attention_max_seq_len). A longer sequence
 * is refused there with a recorded error before any work. Not here: cuDNN fused attention. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cuda_common.cuh"

namespace CUDA_X_NS {

#define SOFTMAX_ROWS_PER_BLOCK 8
#define DSCORE_THREADS 128

/* att rows (b,h,t1): p = softmax over t2 <= t1 of the scores (already scaled), 0 beyond. */
__global__ void causal_softmax_kernel(floatX *att, int64_t rows, int64_t T) {
    int lane = threadIdx.x % 32;
    int64_t row = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32;
    if (row >= rows)
        return;
    int64_t t1 = row % T;
    floatX *a = att + row * T;
    float mx = -INFINITY;
    for (int64_t t2 = lane; t2 <= t1; t2 += 32)
        mx = fmaxf(mx, x2f(a[t2]));
    mx = cuda_warp_max(mx);
    float sum = 0.0f;
    for (int64_t t2 = lane; t2 <= t1; t2 += 32)
        sum += expf(x2f(a[t2]) - mx);
    sum = cuda_warp_sum(sum);
    float inv = 1.0f / sum;
    for (int64_t t2 = lane; t2 < T; t2 += 32)
        a[t2] = t2 <= t1 ? f2x<floatX>(expf(x2f(a[t2]) - mx) * inv) : f2x<floatX>(0.0f);
}

/* One block per row (b,h,t1): dp[t2] = dy[t1] . v[t2] for t2 <= t1, D = sum_t2 p dp, then
 * att[t1,t2] = p (dp - D) (0 above the diagonal). dy is the head's slice of dout (ld C), v the
 * head's slice of qkv (ld 3C). */
__global__ void attention_dscores_kernel(floatX *att, const floatX *dout, const floatX *qkv,
                                         int64_t T, int64_t C, int64_t NH) {
    CUDA_DYNAMIC_SHARED(float, smem);
    __shared__ float red[32];
    int64_t HS = C / NH;
    float *dp = smem;     /* (T) */
    float *dy = smem + T; /* (HS) */
    int64_t row = blockIdx.x;
    int64_t t1 = row % T, bh = row / T, h = bh % NH, b = bh / NH;
    const floatX *dyg = dout + (b * T + t1) * C + h * HS;
    for (int64_t d = threadIdx.x; d < HS; d += blockDim.x)
        dy[d] = x2f(dyg[d]);
    __syncthreads();
    floatX *a = att + row * T;
    const floatX *v = qkv + b * T * 3 * C + 2 * C + h * HS;
    float part = 0.0f;
    for (int64_t t2 = threadIdx.x; t2 <= t1; t2 += blockDim.x) {
        const floatX *vr = v + t2 * 3 * C;
        float s = 0.0f;
        for (int64_t d = 0; d < HS; d++)
            s += dy[d] * x2f(vr[d]);
        dp[t2] = s;
        part += x2f(a[t2]) * s;
    }
    float D = cuda_block_sum(part, red);
    for (int64_t t2 = threadIdx.x; t2 < T; t2 += blockDim.x)
        a[t2] = t2 <= t1 ? f2x<floatX>(x2f(a[t2]) * (dp[t2] - D)) : f2x<floatX>(0.0f);
}

/* Rows (b, h, t1) of one group of heads, att and dp (hn, T, T) each: D = sum over t2 <= t1 of
 * P dP, then att[t1, t2] = P (dP - D), 0 above the diagonal. One warp per row, packets of PK
 * values (T % PK == 0); f32 arithmetic. */
template <int PK>
__global__ void softmax_backward_kernel(floatX *att, const floatX *dp, int64_t rows, int64_t T) {
    int lane = threadIdx.x % 32;
    int64_t row = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32;
    if (row >= rows)
        return;
    int64_t t1 = row % T;
    floatX *a = att + row * T;
    const floatX *d = dp + row * T;
    float p[PK], g[PK], part = 0.0f;
    for (int64_t c = lane * PK; c <= t1; c += 32 * PK) {
        cuda_load_f32<PK>(p, a + c);
        cuda_load_f32<PK>(g, d + c);
        for (int j = 0; j < PK; j++)
            if (c + j <= t1)
                part += p[j] * g[j];
    }
    float D = cuda_warp_sum(part);
    for (int64_t c = lane * PK; c < T; c += 32 * PK) {
        if (c <= t1) {
            cuda_load_f32<PK>(p, a + c);
            cuda_load_f32<PK>(g, d + c);
        }
        for (int j = 0; j < PK; j++)
            p[j] = c + j <= t1 ? p[j] * (g[j] - D) : 0.0f;
        cuda_store_f32<PK>(a + c, p);
    }
}

/* The device's per-block shared memory limit and the static shared memory the compiler gave
 * attention_dscores_kernel (`red`), as cudaFuncGetAttributes reports it. */
static void dscores_shared(int *limit, size_t *static_bytes) {
    int dev = 0;
    cudaFuncAttributes fa;
    memset(&fa, 0, sizeof(fa));
    *limit = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(limit, cudaDevAttrMaxSharedMemoryPerBlock, dev));
    CUDA_CHECK(cudaFuncGetAttributes(&fa, (const void *)attention_dscores_kernel));
    *static_bytes = fa.sharedSizeBytes;
}

} // namespace CUDA_X_NS

/* The limit less the static part, in f32 values, less the HS values of dy. Defined by the
 * float16 compile: the bf16 kernel's shared memory is the same f32 rows. */
#ifndef CUDA_STORAGE_BF16
extern "C" int64_t gpt_cuda_attention_max_seq_len(int64_t HS) {
    int limit;
    size_t static_bytes;
    CUDA_X_NS::dscores_shared(&limit, &static_bytes);
    return ((int64_t)limit - (int64_t)static_bytes) / (int64_t)sizeof(float) - HS;
}
#endif

namespace CUDA_X_NS {

void cuda_attention_forward(void *out, void *att, void *workspace, const void *qkv, int64_t B,
                            int64_t T, int64_t C, int64_t NH, void *stream) {
    cudaStream_t s = cuda_stream(stream);
    int64_t HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    const floatX *q = (const floatX *)qkv;
    floatX *a = (floatX *)att, *y = (floatX *)out;
    ASSERT(NH <= INT32_MAX);
    for (int64_t b = 0; b < B; b++) {
        const floatX *qb = q + b * T * 3 * C;
        floatX *ab = a + b * NH * T * T;
        /* scores^T per head (column-major T2 x T1) = K (as HS x T2)^T . Q (HS x T1) */
        cuda_gemm_x(1, 0, T, T, HS, scale, qb + C, 3 * C, HS, qb, 3 * C, HS, 0.0f, NULL, T, T * T,
                    ab, T, T * T, (int)NH, NULL, s);
    }
    int64_t rows = B * NH * T;
    unsigned blocks = (unsigned)((rows + SOFTMAX_ROWS_PER_BLOCK - 1) / SOFTMAX_ROWS_PER_BLOCK);
    CUDA_LAUNCH(causal_softmax_kernel, blocks, 32 * SOFTMAX_ROWS_PER_BLOCK, 0, s, a, rows, T);
    CUDA_LAUNCH_CHECK();
    for (int64_t b = 0; b < B; b++) {
        const floatX *qb = q + b * T * 3 * C;
        /* y^T per head (HS x T1, ld C) = V^T (HS x T2, ld 3C) . P^T (T2 x T1, ld T) */
        cuda_gemm_x(0, 0, HS, T, T, 1.0f, qb + 2 * C, 3 * C, HS, a + b * NH * T * T, T, T * T, 0.0f,
                    NULL, C, HS, y + b * T * C, C, HS, (int)NH, NULL, s);
    }
}

/* dS = P (dP - D) into att for batch element b, heads in groups of hpg whose dP (hpg, T, T)
 * fits the reserved scratch. */
static void dscores_gemm(floatX *a, floatX *scratch, int64_t hpg, const floatX *dy, const floatX *q,
                         int64_t b, int64_t T, int64_t C, int64_t NH, cudaStream_t s) {
    int64_t HS = C / NH;
    const floatX *qb = q + b * T * 3 * C, *dyb = dy + b * T * C;
    int packed = cuda_aligned128<floatX>(a, T) && cuda_aligned128<floatX>(scratch, T);
    for (int64_t h0 = 0; h0 < NH; h0 += hpg) {
        int64_t hn = NH - h0 < hpg ? NH - h0 : hpg;
        /* dP^T per head (column-major T2 x T1, ld T) = V (as HS x T2)^T . dy (HS x T1) */
        cuda_gemm_x(1, 0, T, T, HS, 1.0f, qb + 2 * C + h0 * HS, 3 * C, HS, dyb + h0 * HS, C, HS,
                    0.0f, NULL, T, T * T, scratch, T, T * T, (int)hn, NULL, s);
        int64_t rows = hn * T;
        unsigned blocks = (unsigned)((rows + SOFTMAX_ROWS_PER_BLOCK - 1) / SOFTMAX_ROWS_PER_BLOCK);
        floatX *ah = a + (b * NH + h0) * T * T;
        if (packed)
            CUDA_LAUNCH(softmax_backward_kernel<8>, blocks, 32 * SOFTMAX_ROWS_PER_BLOCK, 0, s, ah,
                        scratch, rows, T);
        else
            CUDA_LAUNCH(softmax_backward_kernel<1>, blocks, 32 * SOFTMAX_ROWS_PER_BLOCK, 0, s, ah,
                        scratch, rows, T);
        CUDA_LAUNCH_CHECK();
    }
}

/* The fallback's limit check: records the error and returns 0 when T does not fit. */
static int dscores_fits(int64_t T, int64_t HS) {
    size_t smem = (size_t)(T + HS) * sizeof(float);
    int64_t max_T = gpt_cuda_attention_max_seq_len(HS);
    if (T <= max_T)
        return 1;
    int limit;
    size_t static_bytes;
    dscores_shared(&limit, &static_bytes);
    char msg[200];
    snprintf(msg, sizeof(msg),
             "sequence length %lld needs %zu bytes of shared memory per row (%zu dynamic + "
             "%zu static), over the %d per block: at most %lld fit (head size %lld)",
             (long long)T, smem + static_bytes, smem, static_bytes, limit, (long long)max_T,
             (long long)HS);
    cuda_error_record("cuda_attention_backward", msg, __FILE__, __LINE__);
    return 0;
}

void cuda_attention_backward(void *dqkv, void *att, void *workspace, const void *dout,
                             const void *out, const void *qkv, int64_t B, int64_t T, int64_t C,
                             int64_t NH, void *stream) {
    cudaStream_t s = cuda_stream(stream);
    int64_t HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    const floatX *q = (const floatX *)qkv, *dy = (const floatX *)dout;
    floatX *a = (floatX *)att, *dq = (floatX *)dqkv;
    /* the dP scratch: as many heads as fit half the workspace (the rest stays cuBLAS's) */
    size_t ws_bytes = 0, head_bytes = (size_t)(T * T) * sizeof(floatX);
    cuda_workspace(&ws_bytes);
    int64_t hpg = (int64_t)(ws_bytes / 2 / 256 * 256 / head_bytes); /* reserve rounds to 256 */
    hpg = hpg < NH ? hpg : NH;
    floatX *scratch = hpg >= 1 ? (floatX *)cuda_workspace_reserve((size_t)hpg * head_bytes) : NULL;
    if (!scratch && !dscores_fits(T, HS))
        return;
    /* dV^T per head (HS x T2, ld 3C) = dy^T (HS x T1, ld C) . P (T1 x T2): opB = T on P^T */
    for (int64_t b = 0; b < B; b++)
        cuda_gemm_x(0, 1, HS, T, T, 1.0f, dy + b * T * C, C, HS, a + b * NH * T * T, T, T * T, 0.0f,
                    NULL, 3 * C, HS, dq + b * T * 3 * C + 2 * C, 3 * C, HS, (int)NH, NULL, s);
    if (scratch) {
        for (int64_t b = 0; b < B; b++)
            dscores_gemm(a, scratch, hpg, dy, q, b, T, C, NH, s);
        cuda_workspace_unreserve();
    } else {
        int64_t rows = B * NH * T;
        ASSERT(rows <= 0x7fffffffLL);
        CUDA_LAUNCH(attention_dscores_kernel, (unsigned)rows, DSCORE_THREADS,
                    (size_t)(T + HS) * sizeof(float), s, a, dy, q, T, C, NH);
        CUDA_LAUNCH_CHECK();
    }
    for (int64_t b = 0; b < B; b++) {
        const floatX *qb = q + b * T * 3 * C;
        floatX *ab = a + b * NH * T * T;
        floatX *dqb = dq + b * T * 3 * C;
        /* dQ^T (HS x T1) = scale * K^T (HS x T2, ld 3C) . dS^T (T2 x T1, ld T) */
        cuda_gemm_x(0, 0, HS, T, T, scale, qb + C, 3 * C, HS, ab, T, T * T, 0.0f, NULL, 3 * C, HS,
                    dqb, 3 * C, HS, (int)NH, NULL, s);
        /* dK^T (HS x T2) = scale * Q^T (HS x T1, ld 3C) . dS (T1 x T2): opB = T on dS^T */
        cuda_gemm_x(0, 1, HS, T, T, scale, qb, 3 * C, HS, ab, T, T * T, 0.0f, NULL, 3 * C, HS,
                    dqb + C, 3 * C, HS, (int)NH, NULL, s);
    }
}

/* ---- one decoding step (sample's KV cache) ---- */

#define DECODE_MAX_DIMS_PER_LANE 4 /* head sizes up to 128 */

__device__ __forceinline__ float decode_score(const floatX *q, const floatX *k, int HS,
                                              float scale) {
    float s = 0.0f;
    for (int i = 0; i < HS; i++)
        s += x2f(q[i]) * x2f(k[i]);
    return s * scale;
}

/* One warp per head: the last row's query against every cached key. The maximum first, then
 * 32 keys at a time: each lane turns one score into a weight, the warp shares the 32 weights
 * in shared memory, and each lane adds them into its output dimensions (lane + 32 r). */
__global__ void attention_decode_kernel(floatX *out, const floatX *qkv, int T, int C, int NH,
                                        float scale) {
    __shared__ float w[32];
    int h = blockIdx.x, lane = threadIdx.x, HS = C / NH, C3 = 3 * C;
    const floatX *q = qkv + (int64_t)(T - 1) * C3 + h * HS;
    const floatX *k0 = qkv + C + h * HS, *v0 = qkv + 2 * C + h * HS;
    float mx = -INFINITY;
    for (int t = lane; t < T; t += 32)
        mx = fmaxf(mx, decode_score(q, k0 + (int64_t)t * C3, HS, scale));
    mx = cuda_warp_max(mx);
    float sum = 0.0f, acc[DECODE_MAX_DIMS_PER_LANE] = {0.0f};
    for (int t0 = 0; t0 < T; t0 += 32) {
        int t = t0 + lane;
        float wt = t < T ? expf(decode_score(q, k0 + (int64_t)t * C3, HS, scale) - mx) : 0.0f;
        sum += wt;
        __syncthreads(); /* the previous group's weights are read by every lane */
        w[lane] = wt;
        __syncthreads();
        int n = T - t0 < 32 ? T - t0 : 32;
        for (int j = 0; j < n; j++) {
            const floatX *v = v0 + (int64_t)(t0 + j) * C3;
#pragma unroll
            for (int r = 0; r < DECODE_MAX_DIMS_PER_LANE; r++)
                if (lane + 32 * r < HS)
                    acc[r] += w[j] * x2f(v[lane + 32 * r]);
        }
    }
    sum = cuda_warp_sum(sum);
#pragma unroll
    for (int r = 0; r < DECODE_MAX_DIMS_PER_LANE; r++)
        if (lane + 32 * r < HS)
            out[h * HS + lane + 32 * r] = f2x<floatX>(acc[r] / sum);
}

void cuda_attention_decode(void *out, const void *qkv, int64_t T, int64_t C, int64_t NH,
                           void *stream) {
    int64_t HS = C / NH;
    if (HS > 32 * DECODE_MAX_DIMS_PER_LANE || T > INT32_MAX / (3 * C)) {
        char msg[160];
        snprintf(msg, sizeof msg, "head size %lld (at most %d) or T %lld too large", (long long)HS,
                 32 * DECODE_MAX_DIMS_PER_LANE, (long long)T);
        cuda_error_record("cuda_attention_decode", msg, __FILE__, __LINE__);
        return;
    }
    CUDA_LAUNCH(attention_decode_kernel, (unsigned)NH, 32, 0, cuda_stream(stream), (floatX *)out,
                (const floatX *)qkv, (int)T, (int)C, (int)NH, 1.0f / sqrtf((float)HS));
    CUDA_LAUNCH_CHECK();
}

} // namespace CUDA_X_NS
