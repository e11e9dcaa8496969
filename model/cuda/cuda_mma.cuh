/* cuda_mma.cuh: the warp-level tensor-core primitives the backend's kernels use (private to
 * model/cuda/), as small device functions so that no kernel holds inline PTX:
 *
 *   mma_m16n8k16<T16>(d, a, b, c)  D (16x8 f32) = A (16x16) * B (16x8) + C, T16 = __half or
 *                                  __nv_bfloat16 (f32 accumulate); a: 4 registers, b: 2,
 *                                  c, d: 4 floats per lane, in the PTX ISA's fragment layout
 *                                  ("Matrix Fragments for mma.m16n8k16 with floating point
 *                                  type"); d may be c. Needs sm_80 or later.
 *   ldmatrix_x1/x2/x4(r, row)      1, 2 or 4 8x8 matrices of 16-bit elements from shared
 *                                  memory: lanes 8m..8m+7 give the addresses of the rows of
 *                                  matrix m (16-byte aligned); lane l gets register m =
 *                                  elements (l/4, 2(l%4)) and (l/4, 2(l%4)+1) of matrix m.
 *   ldmatrix_x*_trans(r, row)      the same, each matrix transposed.
 *   cp_async_16(dst, src)          16 bytes global -> shared without passing through
 *                                  registers (both 16-byte aligned), asynchronous;
 *   cp_async_commit()              closes the thread's copies issued so far into a group;
 *   cp_async_wait<N>()             waits until at most N of its groups are in flight. Other
 *                                  threads' copies are visible only after a barrier.
 *
 * mma and ldmatrix are .sync.aligned: all 32 lanes of the warp execute the same one.
 *
 * Under nvcc each is one asm volatile statement. A host compiler building the kernels for the
 * CUDA simulator gets the simulator's definitions (tests/cudasim/include/cudasim_mma.h: warp
 * collectives with the same register layouts), chosen here by the simulator's cuda_runtime.h
 * having been included (it defines CUDASIM_H); the kernels are the same source either way. */
#ifndef ARENAGPT_CUDA_MMA_CUH
#define ARENAGPT_CUDA_MMA_CUH

#include <cuda_bf16.h> /* __nv_bfloat16 */
#include <cuda_fp16.h> /* __half */
#include <cuda_runtime.h>
#include <stdint.h>

#include <type_traits>

#ifdef CUDASIM_H
#include "cudasim_mma.h"
#else

template <typename T16>
__device__ __forceinline__ void mma_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2],
                                             const float c[4]) {
    static_assert(std::is_same<T16, __half>::value || std::is_same<T16, __nv_bfloat16>::value,
                  "mma_m16n8k16: inputs are __half or __nv_bfloat16");
    if constexpr (std::is_same<T16, __nv_bfloat16>::value)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
                     "{%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\n"
                     : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]),
                       "f"(c[1]), "f"(c[2]), "f"(c[3]));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
                     "{%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\n"
                     : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]),
                       "f"(c[1]), "f"(c[2]), "f"(c[3]));
}

__device__ __forceinline__ uint32_t cuda_shared_address(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void ldmatrix_x1(uint32_t r[1], const void *row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n"
                 : "=r"(r[0])
                 : "r"(cuda_shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t r[2], const void *row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(cuda_shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(cuda_shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x1_trans(uint32_t r[1], const void *row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n"
                 : "=r"(r[0])
                 : "r"(cuda_shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t r[2], const void *row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(cuda_shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void *row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(cuda_shared_address(row)));
}

__device__ __forceinline__ void cp_async_16(void *dst_shared, const void *src_global) {
    asm volatile(
        "cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(cuda_shared_address(dst_shared)),
        "l"(src_global)
        : "memory");
}
__device__ __forceinline__ void cp_async_commit(void) {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int N> __device__ __forceinline__ void cp_async_wait(void) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

#endif /* CUDASIM_H */

#endif
