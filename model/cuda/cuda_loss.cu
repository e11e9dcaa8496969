/* cuda_loss.cu: the fused softmax + cross-entropy of the chunked loss head on the GPU.
 *
 * One block per row of the chunk's f16 logits (N, Vp). Pass 1 reads the row once and keeps an
 * online (max, sum of exp) pair per thread over the first V columns in f32, rescaling the sum
 * when the max grows; the pairs are merged across the block. loss = log(sum) + max -
 * logit[target] (f32). With dscale != 0, pass 2 reads the row again and overwrites it, once,
 * with dscale * (softmax - onehot(target)) in f16, and the padded columns V..Vp-1 with 0, so
 * the full-vocabulary probabilities never exist anywhere else. A target outside [0, V) gives
 * a NaN loss and no one-hot (contract: never).
 *
 * Access: 128 bits (8 f16) per load and store when the logits are 16-byte aligned and
 * Vp % 8 == 0 (GPT-2's padded 50304 is; the arena aligns tensors to 256 bytes), one f16 at a
 * time otherwise (the same arithmetic: the results do not depend on the path).
 *
 * Not here: the logits GEMM and the dlogits GEMMs (cuda_matmul.cu, driven by gpt.c). */
#include <math.h>

#include "cuda_common.cuh"

namespace CUDA_X_NS {

#define CE_THREADS 512

/* (m1, s1) merged with (m2, s2): sums of exp(x - m) over two sets, under their joint max.
 * A set with no element has m = -inf, s = 0 (its factor is then 0, or 1 when both are). */
__device__ __forceinline__ void ce_merge(float &m, float &s, float m2, float s2) {
    float mx = fmaxf(m, m2);
    float a = m == mx ? 1.0f : expf(m - mx), b = m2 == mx ? 1.0f : expf(m2 - mx);
    s = s * a + s2 * b;
    m = mx;
}

/* The online pair of values x (already f32) into (m, s): one exp per value, one rescale. */
template <int P> __device__ __forceinline__ void ce_online(float &m, float &s, const float *x) {
    float pm = x[0];
    for (int j = 1; j < P; j++)
        pm = fmaxf(pm, x[j]);
    if (pm > m) {
        s = m == -INFINITY ? 0.0f : s * expf(m - pm);
        m = pm;
    }
    for (int j = 0; j < P; j++)
        s += expf(x[j] - m);
}

/* Merges every thread's pair; every thread gets the block's. shared: 64 floats. */
__device__ __forceinline__ void ce_block_merge(float &m, float &s, float *shared) {
    for (int o = 16; o > 0; o >>= 1) {
        float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
        ce_merge(m, s, m2, s2);
    }
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    if (lane == 0) {
        shared[warp] = m;
        shared[32 + warp] = s;
    }
    __syncthreads();
    m = -INFINITY;
    s = 0.0f;
    for (int w = 0; w < nwarps; w++) /* the same order in every thread: the same result */
        ce_merge(m, s, shared[w], shared[32 + w]);
}

template <int P>
__global__ void crossentropy_kernel(floatX *logits, float *losses, const int32_t *targets,
                                    int64_t V, int64_t Vp, float dscale) {
    __shared__ float red[64];
    int64_t row = blockIdx.x;
    floatX *l = logits + row * Vp;
    float m = -INFINITY, s = 0.0f, x[P];
    int64_t full = V / P * P; /* packets wholly inside the vocabulary */
    for (int64_t i = threadIdx.x * (int64_t)P; i < full; i += (int64_t)blockDim.x * P) {
        cuda_load_f32<P>(x, l + i);
        ce_online<P>(m, s, x);
    }
    for (int64_t i = full + threadIdx.x; i < V; i += blockDim.x) { /* the partial packet */
        float xi = x2f(l[i]);
        ce_online<1>(m, s, &xi);
    }
    ce_block_merge(m, s, red);
    int64_t tg = targets[row];
    int valid = tg >= 0 && tg < V;
    if (threadIdx.x == 0)
        losses[row] = valid ? logf(s) + m - x2f(l[tg]) : NAN;
    if (dscale == 0.0f)
        return;
    __syncthreads(); /* l[tg] is read above before any thread overwrites it */
    float inv = 1.0f / s;
    for (int64_t i = threadIdx.x * (int64_t)P; i < Vp; i += (int64_t)blockDim.x * P) {
        cuda_load_f32<P>(x, l + i);
        for (int j = 0; j < P; j++) {
            int64_t c = i + j;
            float d = 0.0f;
            if (c < V) {
                d = expf(x[j] - m) * inv;
                if (c == tg)
                    d -= 1.0f;
                d *= dscale;
            }
            x[j] = d;
        }
        cuda_store_f32<P>(l + i, x);
    }
}

void cuda_crossentropy_forward(void *logits, float *losses, const int32_t *targets, int64_t N,
                               int64_t V, int64_t Vp, float dscale, void *stream) {
    if (N <= 0)
        return;
    ASSERT(N <= 0x7fffffffLL);
    floatX *l = (floatX *)logits;
    if (cuda_aligned128<floatX>(logits, Vp))
        CUDA_LAUNCH(crossentropy_kernel<8>, (unsigned)N, CE_THREADS, 0, cuda_stream(stream), l,
                    losses, targets, V, Vp, dscale);
    else
        CUDA_LAUNCH(crossentropy_kernel<1>, (unsigned)N, CE_THREADS, 0, cuda_stream(stream), l,
                    losses, targets, V, Vp, dscale);
    CUDA_LAUNCH_CHECK();
}

} // namespace CUDA_X_NS
