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
 * The 16-bit storage type (floatX): every kernel file is one source compiled twice, once as
 * itself (floatX = __half, namespace x_f16: dtype=float16) and once through its *_bf16.cu
 * twin, which defines CUDA_STORAGE_BF16 and includes it (floatX = __nv_bfloat16, namespace
 * x_bf16: dtype=bfloat16). Each compile wraps the file's code in its namespace, so the two
 * instances never share a symbol; cuda_backend.cu fills one table per namespace. Kernels
 * convert with x2f (to f32) and f2x<X> (from f32, round to nearest even) and never name
 * __half or __nv_bfloat16 themselves.
 *
 * Not here: the kernels themselves (cuda_*.cu) or any device allocation: all device memory
 * comes from the arena (alloc/arena_cuda.cu is the only cudaMalloc). */
#ifndef ARENAGPT_CUDA_COMMON_CUH
#define ARENAGPT_CUDA_COMMON_CUH

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* The storage type of this compile (see the top of the file), and its namespace. */
#ifdef CUDA_STORAGE_BF16
#define CUDA_X_NS x_bf16
#else
#define CUDA_X_NS x_f16
#endif

/* 16-bit values to f32 (exact) and f32 to the 16-bit type (round to nearest even). */
__host__ __device__ __forceinline__ float x2f(__half v) { return __half2float(v); }
__host__ __device__ __forceinline__ float x2f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class X> __host__ __device__ __forceinline__ X f2x(float v);
template <> __host__ __device__ __forceinline__ __half f2x<__half>(float v) {
    return __float2half_rn(v);
}
template <> __host__ __device__ __forceinline__ __nv_bfloat16 f2x<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}
/* Two f32 values as two 16-bit values of one 32-bit word (lo in the low 16 bits, as the mma
 * fragments and a little-endian store of two consecutive values want), each rounded to
 * nearest even. */
template <class X> __device__ __forceinline__ uint32_t cuda_pack2(float lo, float hi) {
    X a = f2x<X>(lo), b = f2x<X>(hi);
    uint16_t ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    return (uint32_t)ua | (uint32_t)ub << 16;
}
/* cuBLAS's name of a 16-bit type */
template <class X> static inline cudaDataType_t cuda_data_type(void);
template <> inline cudaDataType_t cuda_data_type<__half>(void) { return CUDA_R_16F; }
template <> inline cudaDataType_t cuda_data_type<__nv_bfloat16>(void) { return CUDA_R_16BF; }

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

/* P consecutive 16-bit values as f32, and back (rounded once): one 128-bit access for P = 8
 * (p 16-byte aligned), one 16-bit access for P = 1 (the fallback path of every packed
 * kernel). */
template <int P, class X> __device__ __forceinline__ void cuda_load_f32(float *x, const X *p) {
    if constexpr (P == 8) {
        Packed128<X> v = load128(p);
        for (int j = 0; j < 8; j++)
            x[j] = x2f(v.v[j]);
    } else {
        static_assert(P == 1, "packets of 8 or 1 16-bit values");
        x[0] = x2f(*p);
    }
}

template <int P, class X> __device__ __forceinline__ void cuda_store_f32(X *p, const float *x) {
    if constexpr (P == 8) {
        Packed128<X> v;
        for (int j = 0; j < 8; j++)
            v.v[j] = f2x<X>(x[j]);
        store128(p, v);
    } else {
        static_assert(P == 1, "packets of 8 or 1 16-bit values");
        *p = f2x<X>(x[0]);
    }
}

/* --- kernels of the table, by file (cuda_kernels.inc), once per storage type ----------- */
namespace x_f16 {
typedef __half floatX;
#include "cuda_kernels.inc"
} // namespace x_f16
namespace x_bf16 {
typedef __nv_bfloat16 floatX;
#include "cuda_kernels.inc"
} // namespace x_bf16

/* Accumulating weight-gradient stores: dst += v, rounded once to dst's type. */
template <class X> __device__ __forceinline__ void cuda_grad_add(X *dst, float v) {
    *dst = f2x<X>(x2f(*dst) + v);
}
__device__ __forceinline__ void cuda_grad_add(float *dst, float v) { *dst += v; }
/* A weight gradient as f32. */
template <class X> __device__ __forceinline__ float cuda_grad_load(const X *g) { return x2f(*g); }
__device__ __forceinline__ float cuda_grad_load(const float *g) { return *g; }

#endif
