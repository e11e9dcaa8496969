/* cuda_optim.cu: the optimizer's kernels on the GPU: the squared norm of an f16 gradient
 * (accumulated into one f32), the sum of f32 per-token losses, and AdamW on one tensor with
 * f32 master weights and moments writing the f16 parameter copy.
 *
 * Reductions are deterministic (no atomics) and run in two passes: REDUCE_PART_THREADS-thread
 * blocks each sum a grid-strided share into one f32 partial in the backend workspace (the
 * arena's `ws.backend`, free between cuBLAS calls: everything runs in order on one stream),
 * then one block sums the partials in a fixed order. The number of blocks depends only on n
 * (and the workspace size), so the same inputs give the same bits. Without a workspace (kernel
 * tests before gpt_cuda_workspace_set) one block does it all, in one pass.
 * A non-finite gradient (fp16 overflow under loss scaling) makes the squared norm inf/NaN,
 * which is what the caller checks before calling adamw_update (GradScaler's skip).
 *
 * AdamW is the CPU reference's formula (cpu_adamw_update) term for term: g = grad * grad_mul;
 * m, v updated; p -= lr * (m/bc1 / (sqrt(v/bc2) + eps) + wd * p) on the f32 master, then the
 * f16 param is the master rounded to nearest. Without a master, param is f32 and updated. */
#include "cuda_common.cuh"

#define REDUCE_THREADS 1024     /* the one-block pass (and the final sum of the partials) */
#define REDUCE_PART_THREADS 256 /* first-pass blocks */
#define REDUCE_MAX_PARTS 1024   /* partials: at most one per thread of the final block */
#define REDUCE_MIN_PER_THREAD 8 /* elements per first-pass thread before another block pays */
#define ADAMW_THREADS 256

struct LoadSquareHalf {
    const __half *p;
    __device__ float operator()(int64_t i) const {
        float x = __half2float(p[i]);
        return x * x;
    }
};

struct LoadF32 {
    const float *p;
    __device__ float operator()(int64_t i) const { return p[i]; }
};

/* out[blockIdx.x] (= or +=, by `accumulate`) the sum of load(i) over this block's grid-strided
 * share of [0, n), summed by each thread in index order, then across the block in a fixed
 * tree. */
template <typename Load>
__global__ void reduce_partial_kernel(float *out, Load load, int64_t n, int accumulate) {
    __shared__ float red[32];
    float s = 0.0f;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        s += load(i);
    s = cuda_block_sum(s, red);
    if (threadIdx.x == 0)
        out[blockIdx.x] = accumulate ? out[blockIdx.x] + s : s;
}

/* How many first-pass blocks for n elements: 1 (a single pass into the output) for small n or
 * without a workspace, else enough for REDUCE_MIN_PER_THREAD elements a thread, capped by
 * REDUCE_MAX_PARTS and by the partials the workspace holds. */
static unsigned reduce_parts(int64_t n, float **partials) {
    size_t ws_bytes = 0;
    *partials = (float *)cuda_workspace(&ws_bytes);
    int64_t parts = n / ((int64_t)REDUCE_PART_THREADS * REDUCE_MIN_PER_THREAD);
    if (parts > REDUCE_MAX_PARTS)
        parts = REDUCE_MAX_PARTS;
    if (parts > (int64_t)(ws_bytes / sizeof(float)))
        parts = (int64_t)(ws_bytes / sizeof(float));
    return !*partials || parts < 2 ? 1u : (unsigned)parts;
}

/* *out (= or +=) sum of load(i) for i in [0, n) */
template <typename Load>
static void reduce(float *out, Load load, int64_t n, int accumulate, cudaStream_t stream) {
    float *partials;
    unsigned parts = reduce_parts(n, &partials);
    if (parts == 1) {
        CUDA_LAUNCH(reduce_partial_kernel<Load>, 1, REDUCE_THREADS, 0, stream, out, load, n,
                    accumulate);
        CUDA_LAUNCH_CHECK();
        return;
    }
    CUDA_LAUNCH(reduce_partial_kernel<Load>, parts, REDUCE_PART_THREADS, 0, stream, partials, load,
                n, 0);
    CUDA_LAUNCH_CHECK();
    LoadF32 from_partials = {partials};
    CUDA_LAUNCH(reduce_partial_kernel<LoadF32>, 1, REDUCE_THREADS, 0, stream, out, from_partials,
                (int64_t)parts, accumulate);
    CUDA_LAUNCH_CHECK();
}

void cuda_norm_squared_accumulate(float *acc, const void *grad, int64_t n, void *stream) {
    if (n <= 0)
        return;
    LoadSquareHalf load = {(const __half *)grad};
    reduce(acc, load, n, 1, cuda_stream(stream));
}

void cuda_reduce_sum(float *out, const float *in, int64_t n, void *stream) {
    LoadF32 load = {in};
    reduce(out, load, n, 0, cuda_stream(stream));
}

__global__ void adamw_kernel(void *param, float *master, const __half *grad, float *m, float *v,
                             int64_t n, float lr, float beta1, float beta2, float eps, float wd,
                             float grad_mul, float bc1, float bc2) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float g = __half2float(grad[i]) * grad_mul;
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1;
        float vhat = vi / bc2;
        if (master) {
            float p = master[i];
            p -= lr * (mhat / (sqrtf(vhat) + eps) + wd * p);
            master[i] = p;
            ((__half *)param)[i] = __float2half_rn(p);
        } else {
            float *pf = (float *)param;
            pf[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * pf[i]);
        }
    }
}

void cuda_adamw_update(void *param, float *master, const void *grad, float *m, float *v, int64_t n,
                       float lr, float beta1, float beta2, float eps, float weight_decay,
                       float grad_mul, float bias_correction1, float bias_correction2,
                       void *stream) {
    if (n <= 0)
        return;
    CUDA_LAUNCH(adamw_kernel, cuda_blocks_for(n, ADAMW_THREADS), ADAMW_THREADS, 0,
                cuda_stream(stream), param, master, (const __half *)grad, m, v, n, lr, beta1, beta2,
                eps, weight_decay, grad_mul, bias_correction1, bias_correction2);
    CUDA_LAUNCH_CHECK();
}
