/* cuda_optim.cu: the optimizer's kernels on the GPU: the squared norm of an f16 gradient
 * (accumulated into one f32), the sum of f32 per-token losses, and AdamW on one tensor with
 * f32 master weights and moments writing the f16 parameter copy.
 *
 * Reductions run in one block in a fixed order (no atomics), so they are deterministic; they
 * are small next to a training step (about 60 MB of gradients for the 30M model).
 * A non-finite gradient (fp16 overflow under loss scaling) makes the squared norm inf/NaN,
 * which is what the caller checks before calling adamw_update (GradScaler's skip).
 *
 * AdamW is the CPU reference's formula (cpu_adamw_update) term for term: g = grad * grad_mul;
 * m, v updated; p -= lr * (m/bc1 / (sqrt(v/bc2) + eps) + wd * p) on the f32 master, then the
 * f16 param is the master rounded to nearest. Without a master, param is f32 and updated.
 *
 * Gradients are f16, or f32 with grad_dtype=float32: the norm and AdamW kernels are templates
 * on the gradient type (the _g32 entry points read f32). */
#include "cuda_common.cuh"

#define REDUCE_THREADS 1024
#define ADAMW_THREADS 256

template <typename Tg> __global__ void norm_squared_kernel(float *acc, const Tg *g, int64_t n) {
    __shared__ float red[32];
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float x = cuda_grad_load(&g[i]);
        s += x * x;
    }
    s = cuda_block_sum(s, red);
    if (threadIdx.x == 0)
        *acc += s;
}

void cuda_norm_squared_accumulate(float *acc, const void *grad, int64_t n, void *stream) {
    if (n <= 0)
        return;
    CUDA_LAUNCH(norm_squared_kernel<__half>, 1, REDUCE_THREADS, 0, cuda_stream(stream), acc,
                (const __half *)grad, n);
    CUDA_LAUNCH_CHECK();
}

void cuda_norm_squared_accumulate_g32(float *acc, const void *grad, int64_t n, void *stream) {
    if (n <= 0)
        return;
    CUDA_LAUNCH(norm_squared_kernel<float>, 1, REDUCE_THREADS, 0, cuda_stream(stream), acc,
                (const float *)grad, n);
    CUDA_LAUNCH_CHECK();
}

__global__ void reduce_sum_kernel(float *out, const float *in, int64_t n) {
    __shared__ float red[32];
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        s += in[i];
    s = cuda_block_sum(s, red);
    if (threadIdx.x == 0)
        *out = s;
}

void cuda_reduce_sum(float *out, const float *in, int64_t n, void *stream) {
    CUDA_LAUNCH(reduce_sum_kernel, 1, REDUCE_THREADS, 0, cuda_stream(stream), out, in, n);
    CUDA_LAUNCH_CHECK();
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
            ((__half *)param)[i] = __float2half_rn(p);
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
    adamw_update(param, master, (const __half *)grad, m, v, n, lr, beta1, beta2, eps, weight_decay,
                 grad_mul, bias_correction1, bias_correction2, stream);
}

void cuda_adamw_update_g32(void *param, float *master, const void *grad, float *m, float *v,
                           int64_t n, float lr, float beta1, float beta2, float eps,
                           float weight_decay, float grad_mul, float bias_correction1,
                           float bias_correction2, void *stream) {
    adamw_update(param, master, (const float *)grad, m, v, n, lr, beta1, beta2, eps, weight_decay,
                 grad_mul, bias_correction1, bias_correction2, stream);
}
