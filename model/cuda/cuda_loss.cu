/* cuda_loss.cu: the fused softmax + cross-entropy of the chunked loss head on the GPU.
 *
 * One block per row of the chunk's f16 logits (N, Vp): max and sum of exp over the first V
 * columns in f32 (block reductions), loss = log(sum) + max - logit[target] (f32). With
 * dscale != 0 the row is overwritten in place by dscale * (softmax - onehot(target)) in f16,
 * and the padded columns V..Vp-1 by 0, so the full-vocabulary probabilities never exist
 * anywhere else. A target outside [0, V) gives a NaN loss and no one-hot (contract: never).
 *
 * Not here: the logits GEMM and the dlogits GEMMs (cuda_matmul.cu, driven by gpt.c). */
#include <math.h>

#include "cuda_common.cuh"

#define CE_THREADS 512

__global__ void crossentropy_kernel(__half *logits, float *losses, const int32_t *targets,
                                    int64_t V, int64_t Vp, float dscale) {
    __shared__ float red[32];
    int64_t row = blockIdx.x;
    __half *l = logits + row * Vp;
    float mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x)
        mx = fmaxf(mx, __half2float(l[i]));
    mx = cuda_block_max(mx, red);
    float sum = 0.0f;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x)
        sum += expf(__half2float(l[i]) - mx);
    sum = cuda_block_sum(sum, red);
    int64_t tg = targets[row];
    int valid = tg >= 0 && tg < V;
    if (threadIdx.x == 0)
        losses[row] = valid ? logf(sum) + mx - __half2float(l[tg]) : NAN;
    if (dscale == 0.0f)
        return;
    __syncthreads(); /* l[tg] is read above before any thread overwrites it */
    float inv = 1.0f / sum;
    for (int64_t i = threadIdx.x; i < Vp; i += blockDim.x) {
        float d = 0.0f;
        if (i < V) {
            d = expf(__half2float(l[i]) - mx) * inv;
            if (i == tg)
                d -= 1.0f;
            d *= dscale;
        }
        l[i] = __float2half_rn(d);
    }
}

void cuda_crossentropy_forward(void *logits, float *losses, const int32_t *targets, int64_t N,
                               int64_t V, int64_t Vp, float dscale, void *stream) {
    if (N <= 0)
        return;
    ASSERT(N <= 0x7fffffffLL);
    CUDA_LAUNCH(crossentropy_kernel, (unsigned)N, CE_THREADS, 0, cuda_stream(stream),
                (__half *)logits, losses, targets, V, Vp, dscale);
    CUDA_LAUNCH_CHECK();
}
