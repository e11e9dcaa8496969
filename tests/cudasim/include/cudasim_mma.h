/* cudasim_mma.h (CUDA simulator): the simulator's definitions of the warp-level tensor-core
 * primitives that model/cuda/cuda_mma.cuh declares (there they are inline PTX). Included by
 * cuda_mma.cuh when the simulator's cuda_runtime.h came first on the include path; the kernels
 * call the same names either way.
 *
 *   mma_m16n8k16<T16>(d, a, b, c)   mma.sync.aligned.m16n8k16.row.col.f32.T16.T16.f32
 *   ldmatrix_x1/x2/x4(r, row)       ldmatrix.sync.aligned.m8n8.x{1,2,4}.shared.b16
 *   ldmatrix_x1/x2/x4_trans(r, row) the same with .trans
 *   cp_async_16(dst, src)           cp.async.cg.shared.global [dst], [src], 16
 *   cp_async_commit()               cp.async.commit_group
 *   cp_async_wait<N>()              cp.async.wait_group N
 *
 * mma and ldmatrix are warp collectives (cudasim::warp_collective): all 32 lanes hand in their
 * registers or row address and each gets back exactly the registers of the PTX ISA's fragment
 * tables (tests/cudasim/cudasim.cc, "Matrix Fragments for mma.m16n8k16 with floating point
 * type" and "ldmatrix"). Numerics of mma: the f16/bf16 products are exact in f32 and are
 * summed in f32 in a fixed order (c, then k = 0..15); a tensor core's order and internal
 * precision are unspecified, so a GPU result may differ from this one by a few f32 roundings
 * of the partial sums (about 16 * 2^-24 * sum |a*b| per output, plus |c| * 2^-24).
 * cp.async is recorded per thread and copied at the wait or at a seeded earlier point. */
#ifndef CUDASIM_MMA_H
#define CUDASIM_MMA_H

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include <type_traits>

namespace cudasim {

enum MmaInputType { MMA_INPUT_F16 = 0, MMA_INPUT_BF16 = 1 };

/* one lane's operands of an mma (pointers into the lane's own registers) */
struct MmaLane {
    const uint32_t *a; /* 4 registers, 2 inputs each (low half first) */
    const uint32_t *b; /* 2 registers */
    const float *c;    /* 4 */
    float *d;          /* 4, may be c */
};

/* one lane's part of an ldmatrix: its row address and where its registers go */
struct LdmatrixLane {
    const void *row;
    uint32_t *r;
};

const char *mma_collective(void *const lanes[32], int shape);
const char *ldmatrix_collective(void *const lanes[32], int shape);

/* the shape of an ldmatrix: matrices (1, 2, 4) and .trans */
static inline int ldmatrix_shape(int num, bool trans) { return num | (trans ? 8 : 0); }

template <int NUM, bool TRANS> static inline void ldmatrix(uint32_t *r, const void *row) {
    LdmatrixLane me = {row, r};
    warp_collective(ldmatrix_collective, &me, ldmatrix_shape(NUM, TRANS),
                    TRANS ? "ldmatrix.trans" : "ldmatrix");
}

} // namespace cudasim

template <typename T16>
static inline void mma_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2],
                                const float c[4]) {
    static_assert(std::is_same<T16, __half>::value || std::is_same<T16, __nv_bfloat16>::value,
                  "mma_m16n8k16: inputs are __half or __nv_bfloat16");
    cudasim::MmaLane me = {a, b, c, d};
    int type = std::is_same<T16, __half>::value ? cudasim::MMA_INPUT_F16 : cudasim::MMA_INPUT_BF16;
    cudasim::warp_collective(cudasim::mma_collective, &me, type, "mma.m16n8k16");
}

static inline void ldmatrix_x1(uint32_t r[1], const void *row) {
    cudasim::ldmatrix<1, false>(r, row);
}
static inline void ldmatrix_x2(uint32_t r[2], const void *row) {
    cudasim::ldmatrix<2, false>(r, row);
}
static inline void ldmatrix_x4(uint32_t r[4], const void *row) {
    cudasim::ldmatrix<4, false>(r, row);
}
static inline void ldmatrix_x1_trans(uint32_t r[1], const void *row) {
    cudasim::ldmatrix<1, true>(r, row);
}
static inline void ldmatrix_x2_trans(uint32_t r[2], const void *row) {
    cudasim::ldmatrix<2, true>(r, row);
}
static inline void ldmatrix_x4_trans(uint32_t r[4], const void *row) {
    cudasim::ldmatrix<4, true>(r, row);
}

static inline void cp_async_16(void *dst_shared, const void *src_global) {
    cudasim::cp_async(dst_shared, src_global, 16);
}
static inline void cp_async_commit(void) { cudasim::cp_async_commit(); }
template <int N> static inline void cp_async_wait(void) {
    static_assert(N >= 0 && N <= 7, "cp.async.wait_group takes 0..7 here");
    cudasim::cp_async_wait(N);
}

#endif
