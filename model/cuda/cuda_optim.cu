/* cuda_optim.cu: the optimizer's kernels on the GPU: the squared norm of an f16 (or f32) gradient
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
 * f16 param is the master rounded to nearest. Without a master, param is f32 and updated.
 *
 * Gradients are f16, or f32 with grad_dtype=float32: the squared norm has a loader per type
 * and the AdamW kernel is a template on it (the _g32 entry points read f32).
 *
 * Multi-tensor entries (norm_squared_multi, adamw_update_multi): up to MULTI_MAX tensors per
 * launch, their pointers and element offsets passed by value in the kernel's parameters; the
 * tensors' elements are indexed as one concatenated range (a binary search over the offsets
 * finds an element's tensor), so gpt_update's 2 x n_params launches become a few: one
 * reduction over all the gradients, one AdamW launch per MULTI_MAX tensors. */
#include <string.h>

#include "cuda_common.cuh"

namespace CUDA_X_NS {

#define REDUCE_THREADS 1024     /* the one-block pass (and the final sum of the partials) */
#define REDUCE_PART_THREADS 256 /* first-pass blocks */
#define REDUCE_MAX_PARTS 1024   /* partials: at most one per thread of the final block */
#define REDUCE_MIN_PER_THREAD 8 /* elements per first-pass thread before another block pays */
#define ADAMW_THREADS 256

struct LoadSquareHalf {
    const floatX *p;
    __device__ float operator()(int64_t i) const {
        float x = x2f(p[i]);
        return x * x;
    }
};

struct LoadSquareF32 {
    const float *p;
    __device__ float operator()(int64_t i) const {
        float x = p[i];
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
    LoadSquareHalf load = {(const floatX *)grad};
    reduce(acc, load, n, 1, cuda_stream(stream));
}

void cuda_norm_squared_accumulate_g32(float *acc, const void *grad, int64_t n, void *stream) {
    if (n <= 0)
        return;
    LoadSquareF32 load = {(const float *)grad};
    reduce(acc, load, n, 1, cuda_stream(stream));
}

void cuda_reduce_sum(float *out, const float *in, int64_t n, void *stream) {
    LoadF32 load = {in};
    reduce(out, load, n, 0, cuda_stream(stream));
}

template <typename Tg>
__global__ void adamw_kernel(void *param, float *master, const Tg *grad, float *m, float *v,
                             int64_t n, float lr, float beta1, float beta2, float eps, float wd,
                             float grad_mul, float bc1, float bc2) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float g = cuda_grad_load(&grad[i]) * grad_mul;
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
            ((floatX *)param)[i] = f2x<floatX>(p);
        } else {
            float *pf = (float *)param;
            pf[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * pf[i]);
        }
    }
}

template <typename Tg>
static void adamw_update(void *param, float *master, const Tg *grad, float *m, float *v, int64_t n,
                         float lr, float beta1, float beta2, float eps, float weight_decay,
                         float grad_mul, float bias_correction1, float bias_correction2,
                         void *stream) {
    if (n <= 0)
        return;
    CUDA_LAUNCH(adamw_kernel<Tg>, cuda_blocks_for(n, ADAMW_THREADS), ADAMW_THREADS, 0,
                cuda_stream(stream), param, master, grad, m, v, n, lr, beta1, beta2, eps,
                weight_decay, grad_mul, bias_correction1, bias_correction2);
    CUDA_LAUNCH_CHECK();
}

void cuda_adamw_update(void *param, float *master, const void *grad, float *m, float *v, int64_t n,
                       float lr, float beta1, float beta2, float eps, float weight_decay,
                       float grad_mul, float bias_correction1, float bias_correction2,
                       void *stream) {
    adamw_update(param, master, (const floatX *)grad, m, v, n, lr, beta1, beta2, eps, weight_decay,
                 grad_mul, bias_correction1, bias_correction2, stream);
}

void cuda_adamw_update_g32(void *param, float *master, const void *grad, float *m, float *v,
                           int64_t n, float lr, float beta1, float beta2, float eps,
                           float weight_decay, float grad_mul, float bias_correction1,
                           float bias_correction2, void *stream) {
    adamw_update(param, master, (const float *)grad, m, v, n, lr, beta1, beta2, eps, weight_decay,
                 grad_mul, bias_correction1, bias_correction2, stream);
}

/* ---- multi-tensor ---- */

#define MULTI_MAX                                                                                  \
    48 /* tensors per launch: their pointers take 2.7 KiB of the 4 KiB of kernel
                        parameters every architecture allows */

template <typename Tg> struct MultiList {
    void *param[MULTI_MAX];
    float *master[MULTI_MAX];
    const Tg *grad[MULTI_MAX];
    float *m[MULTI_MAX];
    float *v[MULTI_MAX];
    float wd[MULTI_MAX];
    int64_t start[MULTI_MAX + 1]; /* element offsets: tensor k is [start[k], start[k+1]) */
    int count;
};

/* The tensor holding concatenated element i (start[0] = 0 <= i < start[count]). */
template <typename Tg>
__device__ __forceinline__ int multi_find(const MultiList<Tg> &l, int64_t i) {
    int lo = 0, hi = l.count - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (l.start[mid] <= i)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

template <typename Tg> struct LoadSquareMulti {
    MultiList<Tg> l;
    __device__ float operator()(int64_t i) const {
        int k = multi_find(l, i);
        float x = cuda_grad_load(&l.grad[k][i - l.start[k]]);
        return x * x;
    }
};

template <typename Tg>
__global__ void adamw_multi_kernel(MultiList<Tg> l, float lr, float beta1, float beta2, float eps,
                                   float grad_mul, float bc1, float bc2) {
    int64_t n = l.start[l.count];
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int k = multi_find(l, i);
        int64_t j = i - l.start[k];
        float g = cuda_grad_load(&l.grad[k][j]) * grad_mul;
        float mi = beta1 * l.m[k][j] + (1.0f - beta1) * g;
        float vi = beta2 * l.v[k][j] + (1.0f - beta2) * g * g;
        l.m[k][j] = mi;
        l.v[k][j] = vi;
        float mhat = mi / bc1;
        float vhat = vi / bc2;
        if (l.master[k]) {
            float p = l.master[k][j];
            p -= lr * (mhat / (sqrtf(vhat) + eps) + l.wd[k] * p);
            l.master[k][j] = p;
            ((floatX *)l.param[k])[j] = f2x<floatX>(p);
        } else {
            float *pf = (float *)l.param[k];
            pf[j] -= lr * (mhat / (sqrtf(vhat) + eps) + l.wd[k] * pf[j]);
        }
    }
}

/* The next up to MULTI_MAX tensors of list from *at (empty ones skipped) into l. */
template <typename Tg>
static void multi_fill(MultiList<Tg> *l, const GptOptimTensor *list, int n, int *at) {
    memset(l, 0, sizeof(*l));
    for (; *at < n && l->count < MULTI_MAX; (*at)++) {
        const GptOptimTensor *t = &list[*at];
        if (t->n <= 0)
            continue;
        int k = l->count++;
        l->param[k] = t->param;
        l->master[k] = t->master;
        l->grad[k] = (const Tg *)t->grad;
        l->m[k] = t->m;
        l->v[k] = t->v;
        l->wd[k] = t->weight_decay;
        l->start[k + 1] = l->start[k] + t->n;
    }
}

template <typename Tg>
static void norm_squared_multi(float *acc, const GptOptimTensor *list, int n, void *stream) {
    int at = 0;
    while (at < n) {
        LoadSquareMulti<Tg> load;
        multi_fill(&load.l, list, n, &at);
        if (load.l.count)
            reduce(acc, load, load.l.start[load.l.count], 1, cuda_stream(stream));
    }
}

template <typename Tg>
static void adamw_update_multi(const GptOptimTensor *list, int n, float lr, float beta1,
                               float beta2, float eps, float grad_mul, float bc1, float bc2,
                               void *stream) {
    int at = 0;
    while (at < n) {
        MultiList<Tg> l;
        multi_fill(&l, list, n, &at);
        if (!l.count)
            continue;
        int64_t total = l.start[l.count];
        CUDA_LAUNCH(adamw_multi_kernel<Tg>, cuda_blocks_for(total, ADAMW_THREADS), ADAMW_THREADS, 0,
                    cuda_stream(stream), l, lr, beta1, beta2, eps, grad_mul, bc1, bc2);
        CUDA_LAUNCH_CHECK();
    }
}

void cuda_norm_squared_multi(float *acc, const GptOptimTensor *list, int n, void *stream) {
    norm_squared_multi<floatX>(acc, list, n, stream);
}

void cuda_norm_squared_multi_g32(float *acc, const GptOptimTensor *list, int n, void *stream) {
    norm_squared_multi<float>(acc, list, n, stream);
}

void cuda_adamw_update_multi(const GptOptimTensor *list, int n, float lr, float beta1, float beta2,
                             float eps, float grad_mul, float bc1, float bc2, void *stream) {
    adamw_update_multi<floatX>(list, n, lr, beta1, beta2, eps, grad_mul, bc1, bc2, stream);
}

void cuda_adamw_update_multi_g32(const GptOptimTensor *list, int n, float lr, float beta1,
                                 float beta2, float eps, float grad_mul, float bc1, float bc2,
                                 void *stream) {
    adamw_update_multi<float>(list, n, lr, beta1, beta2, eps, grad_mul, bc1, bc2, stream);
}

} // namespace CUDA_X_NS
