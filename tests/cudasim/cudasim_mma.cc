/* cudasim_mma.cc: the CUDA simulator's warp-level tensor-core collectives (the operations
 * behind tests/cudasim/include/cudasim_mma.h): mma.m16n8k16 with f16 or bf16 inputs and f32
 * accumulate, and ldmatrix .m8n8 .x1/.x2/.x4 with and without .trans. Each runs once all 32
 * lanes of the warp have arrived (cudasim.cc's warp_collective), reads every lane's operands
 * and writes every lane's result registers.
 *
 * The register layouts are the PTX ISA's ("Matrix Fragments for mma.m16n8k16 with floating
 * point type"; "Warp-level matrix load instruction: ldmatrix"), with groupID = lane >> 2 and
 * threadID_in_group = lane % 4; the low 16 bits of a register hold the element of lower
 * column (or row) index:
 *   A (16x16, row): a_i for i = 0..7, register i/2: row groupID (+8 when i % 4 >= 2),
 *                   column 2*threadID_in_group + (i & 1) (+8 when i >= 4)
 *   B (16x8, col):  b_i for i = 0..3, register i/2: row 2*threadID_in_group + (i & 1)
 *                   (+8 when i >= 2), column groupID
 *   C, D (16x8 f32): c_i, i = 0..3: row groupID (+8 when i >= 2), column
 *                   2*threadID_in_group + (i & 1)
 *   ldmatrix: lanes 8m..8m+7 give the addresses of rows 0..7 of matrix m (16 bytes each,
 *   16-byte aligned, in shared memory); lane l receives in register m the elements
 *   (row l/4, columns 2(l%4), 2(l%4)+1) of matrix m, or with .trans those of its transpose
 *   (rows 2(l%4), 2(l%4)+1 of column l/4). Addresses of lanes past the last matrix are
 *   ignored, as on the GPU. What counts as shared memory: the launch's dynamic buffer and the
 *   cudasim_shared section; g++ ignores that section attribute for the static locals of a
 *   template, so a template kernel's __shared__ arrays are refused here (the tensor-core
 *   kernels use dynamic shared memory).
 *
 * mma numerics: products of f16/bf16 values are exact in f32; D = C + sum_k A B is summed in
 * f32 in the fixed order c, k = 0..15 (see cudasim_mma.h for the tolerance against a GPU). */
#include <cuda_runtime.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "include/cudasim_mma.h"

namespace cudasim {
bool shared_range(const void *p, size_t n); /* cudasim.cc */
}

/* exact conversions of the 16-bit inputs (no rounding is involved in widening) */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023u, bits;
    if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13); /* inf, NaN */
    } else if (exp == 0) {
        float v = (float)man * (1.0f / 16777216.0f); /* man * 2^-24, exact */
        return sign ? -v : v;
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float input_value(uint32_t reg, int high, int type) {
    uint16_t h = (uint16_t)(high ? reg >> 16 : reg & 0xffffu);
    return type == cudasim::MMA_INPUT_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

namespace cudasim {

const char *mma_collective(void *const lanes[32], int type) {
    float A[16][16], B[16][8], C[16][8];
    for (int l = 0; l < 32; l++) {
        const MmaLane *ln = (const MmaLane *)lanes[l];
        int g = l >> 2, t = l & 3;
        for (int i = 0; i < 8; i++) {
            int row = g + ((i % 4) >= 2 ? 8 : 0), col = 2 * t + (i & 1) + (i >= 4 ? 8 : 0);
            A[row][col] = input_value(ln->a[i / 2], i & 1, type);
        }
        for (int i = 0; i < 4; i++) {
            int row = 2 * t + (i & 1) + (i >= 2 ? 8 : 0);
            B[row][g] = input_value(ln->b[i / 2], i & 1, type);
            C[g + (i >= 2 ? 8 : 0)][2 * t + (i & 1)] = ln->c[i];
        }
    }
    /* every input is read before any output is written: d may be the same registers as c */
    for (int l = 0; l < 32; l++) {
        const MmaLane *ln = (const MmaLane *)lanes[l];
        int g = l >> 2, t = l & 3;
        for (int i = 0; i < 4; i++) {
            int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
            float acc = C[row][col];
            for (int k = 0; k < 16; k++)
                acc += A[row][k] * B[k][col];
            ln->d[i] = acc;
        }
    }
    return NULL;
}

const char *ldmatrix_collective(void *const lanes[32], int shape) {
    static char msg[160];
    int num = shape & 7, trans = (shape & 8) != 0;
    uint16_t m[4][8][8];
    for (int mi = 0; mi < num; mi++)
        for (int r = 0; r < 8; r++) {
            const void *row = ((const LdmatrixLane *)lanes[8 * mi + r])->row;
            if ((uintptr_t)row % 16) {
                snprintf(msg, sizeof msg,
                         "lane %d's row address %p is not 16-byte aligned (matrix %d, row %d)",
                         8 * mi + r, row, mi, r);
                return msg;
            }
            if (!shared_range(row, 16)) {
                snprintf(msg, sizeof msg,
                         "lane %d's row address %p is not shared memory (the launch's dynamic "
                         "buffer or a non-template kernel's __shared__ array)",
                         8 * mi + r, row);
                return msg;
            }
            memcpy(m[mi][r], row, 16);
        }
    for (int l = 0; l < 32; l++) {
        uint32_t *out = ((const LdmatrixLane *)lanes[l])->r;
        int g = l >> 2, t = l & 3;
        for (int mi = 0; mi < num; mi++) {
            uint16_t lo = trans ? m[mi][2 * t][g] : m[mi][g][2 * t];
            uint16_t hi = trans ? m[mi][2 * t + 1][g] : m[mi][g][2 * t + 1];
            out[mi] = (uint32_t)lo | ((uint32_t)hi << 16);
        }
    }
    return NULL;
}

} // namespace cudasim
