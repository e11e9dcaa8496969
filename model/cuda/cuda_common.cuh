/* cuda_common.cuh: what every CUDA file of the backend shares (private to model/cuda/):
 * the checked-call macros, the sticky first error, the library handles, the backend
 * workspace, and small fp16/reduction helpers.
 *
 * Error policy: the kernels of the backend table return void, so a failing CUDA, cuBLAS or
 * cuDNN call does not abort: the first failure (call text, error string, file:line) is kept
 * in a sticky record that gpt_cuda_last_error() returns, and printed once to stderr. Every
 * kernel launch is followed by CUDA_LAUNCH_CHECK() (cudaGetLastError). Programmer errors
 * (unsupported dtype, impossible sizes) are ASSERTs.
 *
 * Not here: the kernels themselves (cuda_*.cu) or any device allocation: all device memory
 * comes from the arena (alloc/arena_cuda.cu is the only cudaMalloc). */
#ifndef ARENAGPT_CUDA_COMMON_CUH
#define ARENAGPT_CUDA_COMMON_CUH

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "../../alloc/base.h"
#include "../backend.h"
#include "cuda_backend.h"
}

/* Records the first failure (later ones are counted, not kept). */
void cuda_error_record(const char *call, const char *msg, const char *file, int line);

#define CUDA_CHECK(call)                                                                           \
    do {                                                                                           \
        cudaError_t cuda_check_e_ = (call);                                                        \
        if (cuda_check_e_ != cudaSuccess)                                                          \
            cuda_error_record(#call, cudaGetErrorString(cuda_check_e_), __FILE__, __LINE__);       \
    } while (0)

#define CUBLAS_CHECK(call)                                                                         \
    do {                                                                                           \
        cublasStatus_t cublas_check_s_ = (call);                                                   \
        if (cublas_check_s_ != CUBLAS_STATUS_SUCCESS)                                              \
            cuda_error_record(#call, cublasGetStatusString(cublas_check_s_), __FILE__, __LINE__);  \
    } while (0)

/* After every kernel launch. */
#define CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

/* Every kernel launch is written CUDA_LAUNCH(kernel, grid, block, shared_bytes, stream, args...)
 * instead of kernel<<<grid, block, shared_bytes, stream>>>(args...), which is not C++: under
 * nvcc it is exactly that launch; a host compiler building the kernels for the CUDA simulator
 * (tests/cudasim/) gets the simulator's definition from its cuda_runtime.h, which comes first
 * on the include path. The kernels themselves have no other difference between the two. */
#ifndef CUDA_LAUNCH
#define CUDA_LAUNCH(kernel, grid, block, shared_bytes, stream, ...)                                \
    kernel<<<(grid), (block), (shared_bytes), (stream)>>>(__VA_ARGS__)
#endif

/* A kernel's dynamic shared memory is declared CUDA_DYNAMIC_SHARED(type, name): under nvcc the
 * `extern __shared__ type name[]` it stands for; the simulator gives the launch's buffer. */
#ifndef CUDA_DYNAMIC_SHARED
#define CUDA_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

static inline cudaStream_t cuda_stream(void *stream) { return (cudaStream_t)stream; }

/* Handles created by cuda_backend_init (cuda_backend.cu). */
cublasLtHandle_t cuda_cublaslt(void);
cublasHandle_t cuda_cublas(void);
/* The backend workspace (`ws.backend` in the arena), or NULL / 0 before it is set; while a
 * part is reserved, the rest (what the libraries and the other kernels may use). */
void *cuda_workspace(size_t *bytes);
/* Reserves `bytes` (rounded up to 256) at the top of the backend workspace for one caller's
 * scratch, leaving the rest to cuBLASLt/cuBLAS and cuda_workspace's other users; NULL (nothing
 * reserved) when there is no workspace, a reservation is held, or bytes is more than half of
 * it. Stream-ordered use only: the caller releases it with cuda_workspace_unreserve after
 * its last launch that touches the scratch. */
void *cuda_workspace_reserve(size_t bytes);
void cuda_workspace_unreserve(void);
/* Gives cuBLAS the backend workspace (or none). Needed after every cublasSetStream, which
 * resets cuBLAS to its own workspace pool. */
void cuda_cublas_workspace_apply(void);

/* Blocks of 1-D kernels: enough to cover n with `threads` per block, capped (grid-stride
 * loops do the rest). */
static inline unsigned cuda_blocks_for(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    if (b < 1)
        b = 1;
    if (b > 65535LL * 8)
        b = 65535LL * 8;
    return (unsigned)b;
}

/* --- device helpers ----------------------------------------------------------------- */
__device__ __forceinline__ float cuda_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float cuda_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets
 * the result. shared: 32 floats. */
__device__ __forceinline__ float cuda_block_sum(float v, float *shared) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    v = cuda_warp_sum(v);
    __syncthreads(); /* shared may still be read by a previous call */
    if (lane == 0)
        shared[warp] = v;
    __syncthreads();
    float r = lane < nwarps ? shared[lane] : 0.0f;
    return cuda_warp_sum(r);
}

__device__ __forceinline__ float cuda_block_max(float v, float *shared) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    v = cuda_warp_max(v);
    __syncthreads();
    if (lane == 0)
        shared[warp] = v;
    __syncthreads();
    float r = lane < nwarps ? shared[lane] : -INFINITY;
    return cuda_warp_max(r);
}

/* --- 128-bit access ------------------------------------------------------------------ */
/* Packed128<T>: 16 bytes of T (8 values of a 16-bit storage type such as __half, 4 floats),
 * loaded and stored as one 128-bit access (ld.global.v4 / st.global.v4 under nvcc). The
 * address must be 16-byte aligned: the arena aligns every tensor to 256 bytes, so a row of a
 * tensor whose row length is a multiple of size (C % 8 == 0 for f16) stays aligned; callers
 * check cuda_aligned128 and take their scalar path otherwise. Templated on the storage type so
 * that a bf16 layout can reuse it. */
template <class T> struct alignas(16) Packed128 {
    static constexpr int size = 16 / (int)sizeof(T);
    T v[16 / sizeof(T)];
};

template <class T> __device__ __forceinline__ Packed128<T> load128(const T *p) {
    Packed128<T> r;
    *reinterpret_cast<int4 *>(&r) = *reinterpret_cast<const int4 *>(p);
    return r;
}

template <class T> __device__ __forceinline__ void store128(T *p, const Packed128<T> &v) {
    *reinterpret_cast<int4 *>(p) = *reinterpret_cast<const int4 *>(&v);
}

/* Whether every row of `cols` elements of T starting at p can be read with Packed128. */
template <class T> static inline int cuda_aligned128(const void *p, int64_t cols) {
    return ((uintptr_t)p % 16) == 0 && (cols * (int64_t)sizeof(T)) % 16 == 0;
}

/* P consecutive f16 values as f32, and back (rounded once): one 128-bit access for P = 8 (p
 * 16-byte aligned), one 16-bit access for P = 1 (the fallback path of every packed kernel). */
template <int P> __device__ __forceinline__ void cuda_load_f32(float *x, const __half *p) {
    if constexpr (P == 8) {
        Packed128<__half> v = load128(p);
        for (int j = 0; j < 8; j++)
            x[j] = __half2float(v.v[j]);
    } else {
        static_assert(P == 1, "packets of 8 or 1 f16 values");
        x[0] = __half2float(*p);
    }
}

template <int P> __device__ __forceinline__ void cuda_store_f32(__half *p, const float *x) {
    if constexpr (P == 8) {
        Packed128<__half> v;
        for (int j = 0; j < 8; j++)
            v.v[j] = __float2half_rn(x[j]);
        store128(p, v);
    } else {
        static_assert(P == 1, "packets of 8 or 1 f16 values");
        *p = __float2half_rn(x[0]);
    }
}

/* --- kernels of the table, by file (signatures as backend.h, without the table) ------- */
/* The weight-gradient kernels (encoder, LayerNorm and matmul backward, squared norm, AdamW)
 * exist twice: as declared here for f16 gradients, and with the suffix _g32 for f32 ones
 * (grad_dtype=float32, the table gpt_backend_cuda_grad_f32); same signatures otherwise. */
/* cuda_layers.cu */
void cuda_encoder_forward(void *out, const int32_t *inp, const void *wte, const void *wpe,
                          int64_t B, int64_t T, int64_t C, void *stream);
void cuda_encoder_backward(void *dwte, void *dwpe, const void *dout, const int32_t *inp, int64_t B,
                           int64_t T, int64_t C, void *stream);
void cuda_layernorm_forward(void *out, float *mean, float *rstd, const void *inp,
                            const void *weight, const void *bias, int64_t N, int64_t C,
                            void *stream);
void cuda_layernorm_backward(void *dinp, void *dweight, void *dbias, const void *dout,
                             const void *inp, const void *weight, const float *mean,
                             const float *rstd, int64_t N, int64_t C, void *stream);
void cuda_encoder_backward_g32(void *dwte, void *dwpe, const void *dout, const int32_t *inp,
                               int64_t B, int64_t T, int64_t C, void *stream);
void cuda_layernorm_backward_g32(void *dinp, void *dweight, void *dbias, const void *dout,
                                 const void *inp, const void *weight, const float *mean,
                                 const float *rstd, int64_t N, int64_t C, void *stream);
void cuda_gelu_forward(void *out, const void *inp, int64_t N, int gelu, void *stream);
void cuda_gelu_backward(void *dinp, const void *inp, const void *dout, int64_t N, int gelu,
                        void *stream);
/* dbias[c] += sum over rows of dout[:, c] (f16 in, f32 sums, f16 accumulate). */
void cuda_bias_backward(__half *dbias, const __half *dout, int64_t N, int64_t OC,
                        cudaStream_t stream);
/* The same into f32 gradients (grad_dtype=float32). */
void cuda_bias_backward_f32(float *dbias, const __half *dout, int64_t N, int64_t OC,
                            cudaStream_t stream);
/* out[r, c] += bias[c] (used when cuBLASLt's bias epilogue is not available). */
void cuda_bias_add(__half *out, const __half *bias, int64_t N, int64_t OC, cudaStream_t stream);

/* cuda_matmul.cu */
void cuda_matmul_forward(void *out, const void *inp, const void *weight, const void *bias,
                         const void *residual, int64_t N, int64_t IC, int64_t OC, void *stream);
void cuda_matmul_backward(void *dinp, void *dweight, void *dbias, const void *dout, const void *inp,
                          const void *weight, int64_t N, int64_t IC, int64_t OC, void *stream);
void cuda_matmul_backward_g32(void *dinp, void *dweight, void *dbias, const void *dout,
                              const void *inp, const void *weight, int64_t N, int64_t IC,
                              int64_t OC, void *stream);
/* Column-major D (m x n, ldd) = alpha * op(A) op(B) + beta * C, all f16, f32 compute,
 * `batch` matrices at the given element strides (0 for one). C may equal D. */
void cuda_gemm_f16(int transa, int transb, int64_t m, int64_t n, int64_t k, float alpha,
                   const __half *A, int64_t lda, int64_t strideA, const __half *B, int64_t ldb,
                   int64_t strideB, float beta, const __half *Cm, int64_t ldc, int64_t strideC,
                   __half *D, int64_t ldd, int64_t strideD, int batch, const __half *bias,
                   cudaStream_t stream);

/* cuda_attention.cu (backend.h's GptAttentionKernels signature; naive: saved = att) */
void cuda_attention_forward(void *out, void *att, void *workspace, const void *qkv, int64_t B,
                            int64_t T, int64_t C, int64_t NH, void *stream);
void cuda_attention_backward(void *dqkv, void *att, void *workspace, const void *dout,
                             const void *out, const void *qkv, int64_t B, int64_t T, int64_t C,
                             int64_t NH, void *stream);

/* one decoding step (backend.h's attention_decode) */
void cuda_attention_decode(void *out, const void *qkv, int64_t T, int64_t C, int64_t NH,
                           void *stream);

/* cuda_flash.cu (the same signature; saved = lse f32 (B,NH,T), backward workspace = D) */
void cuda_flash_attention_forward(void *out, void *lse, void *workspace, const void *qkv, int64_t B,
                                  int64_t T, int64_t C, int64_t NH, void *stream);
void cuda_flash_attention_backward(void *dqkv, void *lse, void *workspace, const void *dout,
                                   const void *out, const void *qkv, int64_t B, int64_t T,
                                   int64_t C, int64_t NH, void *stream);

/* cuda_loss.cu */
void cuda_crossentropy_forward(void *logits, float *losses, const int32_t *targets, int64_t N,
                               int64_t V, int64_t Vp, float dscale, void *stream);

/* cuda_optim.cu */
void cuda_norm_squared_accumulate(float *acc, const void *grad, int64_t n, void *stream);
void cuda_reduce_sum(float *out, const float *in, int64_t n, void *stream);
void cuda_adamw_update(void *param, float *master, const void *grad, float *m, float *v, int64_t n,
                       float lr, float beta1, float beta2, float eps, float weight_decay,
                       float grad_mul, float bias_correction1, float bias_correction2,
                       void *stream);
void cuda_norm_squared_accumulate_g32(float *acc, const void *grad, int64_t n, void *stream);
void cuda_norm_squared_multi(float *acc, const GptOptimTensor *list, int n, void *stream);
void cuda_norm_squared_multi_g32(float *acc, const GptOptimTensor *list, int n, void *stream);
void cuda_adamw_update_multi(const GptOptimTensor *list, int n, float lr, float beta1, float beta2,
                             float eps, float grad_mul, float bc1, float bc2, void *stream);
void cuda_adamw_update_multi_g32(const GptOptimTensor *list, int n, float lr, float beta1,
                                 float beta2, float eps, float grad_mul, float bc1, float bc2,
                                 void *stream);
void cuda_adamw_update_g32(void *param, float *master, const void *grad, float *m, float *v,
                           int64_t n, float lr, float beta1, float beta2, float eps,
                           float weight_decay, float grad_mul, float bias_correction1,
                           float bias_correction2, void *stream);

/* Accumulating weight-gradient stores: dst += v, rounded once to dst's type. */
__device__ __forceinline__ void cuda_grad_add(__half *dst, float v) {
    *dst = __float2half_rn(__half2float(*dst) + v);
}
__device__ __forceinline__ void cuda_grad_add(float *dst, float v) { *dst += v; }
/* A weight gradient as f32. */
__device__ __forceinline__ float cuda_grad_load(const __half *g) { return __half2float(*g); }
__device__ __forceinline__ float cuda_grad_load(const float *g) { return *g; }

#endif
