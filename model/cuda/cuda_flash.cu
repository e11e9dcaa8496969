/* cuda_flash.cu: fused causal self-attention on the GPU (attention=flash), FlashAttention-2's
 * algorithm: f16 in and out, f32 softmax statistics and accumulators. The (T,T) probabilities
 * never exist; forward saves O and the f32 log-sum-exp per row (lse, (B,NH,T)), backward
 * recomputes the probabilities from them tile by tile, with D[b,h,t] = dout_t . out_t in the
 * workspace. Every output element is written by one thread in a fixed order: no atomics, the
 * results are deterministic.
 *
 * Two sets of kernels behind the same launchers (backend.h signatures):
 *
 * Head size 64, every row 16-byte aligned: tensor cores (flash_tc_*, the section "head size
 * 64 on tensor cores" below; the primitives are cuda_mma.cuh's). Blocks of 4 warps own 64
 * rows (16 per warp) and stream 64-row tiles through double-buffered shared memory by
 * cp.async; S = Q Kᵀ, O += P V (and backward's products) are mma.m16n8k16 with f32
 * accumulate; the online softmax runs on the accumulator fragments in registers. Backward is
 * a dK/dV kernel (per key tile, over the query tiles at or below the diagonal) and a dQ
 * kernel (per query tile, over the key tiles up to the diagonal). Dynamic shared memory per
 * block: forward 45 KiB, dK/dV 37 KiB, dQ 36 KiB (within 48 KiB without opt-in).
 * docs/results/flash_tensor_cores.md has the design, registers and estimates.
 *
 * Other head sizes: plain CUDA (grid (B*NH, ceil(T / FLASH_TILE)), one thread per row):
 *   flash_forward_kernel   thread = query row t: q in registers; key/value tiles staged in
 *                          shared memory (f32); online softmax (running max m, sum l, the
 *                          output accumulator rescaled by exp(m_old - m_new) once per tile);
 *                          out = acc / l, lse = m + log(l).
 *   flash_rowdot_kernel    D[b,h,t] = dout_t . out_t (the workspace), one thread per row (both
 *                          sets).
 *   flash_dkdv_kernel      thread = key row j: k, v in registers, dk, dv accumulated in the
 *                          thread's row of shared memory, over query tiles at or below the
 *                          diagonal staged in shared memory (q, dout, lse, D):
 *                          p = exp(scale q.k - lse), dv += p dout, ds = p (dout.v - D),
 *                          dk += scale ds q.
 *   flash_dq_kernel        thread = query row t: q, dq in registers; over the key tiles up to
 *                          the diagonal: dq += scale ds k (recomputing p and dout.v).
 * Splitting dK/dV and dQ into two kernels costs recomputing q.k and dout.v once more but needs
 * no atomics and no f32 dQ buffer.
 * Head size: the row width is a compile-time HSP (16, 32 or 64, the smallest >= HS) with the
 * columns HS..HSP-1 zero-filled, so any HS <= GPT_FLASH_CUDA_MAX_HS (64) works, odd ones
 * included; larger heads are refused by gpt_config_check and ASSERTed here. Odd T: rows past T
 * in the last tile load zeros and write nothing. Shared memory per block at HSP 64: forward
 * 16 KiB, dK/dV 33 KiB, dQ 24.4 KiB (all within the default 48 KiB).
 *
 * No inline PTX here (cuda_mma.cuh has it), launched with CUDA_LAUNCH, so the CUDA simulator
 * (tests/cudasim/) runs the same source. Not here: the naive attention (cuda_attention.cu),
 * cuDNN's SDPA. */
#include <math.h>

#include "cuda_common.cuh"
#include "cuda_mma.cuh"

namespace CUDA_X_NS {

#define FLASH_TILE 32 /* rows per tile = threads per block */
#define FLASH_ROWDOT_THREADS 128

/* q/k/v of head h, row t of sequence b in the (B,T,3C) qkv: qkv + (b*T + t)*3C + part*C + h*HS */
template <int HSP>
__device__ __forceinline__ void flash_load_row(float *dst, const floatX *src, int HS) {
#pragma unroll
    for (int d = 0; d < HSP; d++)
        dst[d] = d < HS ? x2f(src[d]) : 0.0f;
}

template <int HSP>
__global__ void flash_forward_kernel(floatX *out, float *lse, const floatX *qkv, int T, int C,
                                     int NH, float scale) {
    __shared__ float ks[FLASH_TILE][HSP];
    __shared__ float vs[FLASH_TILE][HSP];
    int HS = C / NH, bh = blockIdx.x, b = bh / NH, h = bh % NH;
    int r = threadIdx.x, i0 = blockIdx.y * FLASH_TILE, t = i0 + r;
    int last = i0 + FLASH_TILE - 1 < T - 1 ? i0 + FLASH_TILE - 1 : T - 1; /* tile's last row */
    const floatX *base = qkv + (int64_t)b * T * 3 * C + h * HS;
    float q[HSP], acc[HSP];
    float m = -INFINITY, l = 0.0f;
    if (t < T)
        flash_load_row<HSP>(q, base + (int64_t)t * 3 * C, HS);
#pragma unroll
    for (int d = 0; d < HSP; d++)
        acc[d] = 0.0f;
    for (int j0 = 0; j0 <= last; j0 += FLASH_TILE) {
        __syncthreads(); /* the previous tile is no longer read */
        int j = j0 + r;
        if (j < T) {
            flash_load_row<HSP>(ks[r], base + (int64_t)j * 3 * C + C, HS);
            flash_load_row<HSP>(vs[r], base + (int64_t)j * 3 * C + 2 * C, HS);
        } else {
            for (int d = 0; d < HSP; d++)
                ks[r][d] = vs[r][d] = 0.0f;
        }
        __syncthreads();
        if (t >= T || j0 > t)
            continue;
        int n = t - j0 + 1 < FLASH_TILE ? t - j0 + 1 : FLASH_TILE; /* causal: keys <= t */
        float s[FLASH_TILE];
        float mt = -INFINITY;
        for (int jj = 0; jj < n; jj++) {
            float dot = 0.0f;
#pragma unroll
            for (int d = 0; d < HSP; d++)
                dot += q[d] * ks[jj][d];
            s[jj] = dot * scale;
            mt = fmaxf(mt, s[jj]);
        }
        float mn = fmaxf(m, mt);
        float alpha = expf(m - mn); /* 0 on the first tile (m = -inf) */
        l *= alpha;
#pragma unroll
        for (int d = 0; d < HSP; d++)
            acc[d] *= alpha;
        for (int jj = 0; jj < n; jj++) {
            float p = expf(s[jj] - mn);
            l += p;
#pragma unroll
            for (int d = 0; d < HSP; d++)
                acc[d] += p * vs[jj][d];
        }
        m = mn;
    }
    if (t < T) {
        float inv = 1.0f / l;
        floatX *o = out + ((int64_t)b * T + t) * C + h * HS;
        for (int d = 0; d < HS; d++)
            o[d] = f2x<floatX>(acc[d] * inv);
        lse[(int64_t)bh * T + t] = m + logf(l);
    }
}

/* D[b,h,t] = sum_d dout[b,t,h*HS+d] * out[b,t,h*HS+d] (f32), rows = B*NH*T; grid-stride */
__global__ void flash_rowdot_kernel(float *D, const floatX *dout, const floatX *out, int64_t rows,
                                    int T, int C, int NH) {
    int HS = C / NH;
    for (int64_t row = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; row < rows;
         row += (int64_t)gridDim.x * blockDim.x) {
        int64_t t = row % T, bh = row / T, h = bh % NH, b = bh / NH;
        const floatX *dy = dout + (b * T + t) * C + h * HS, *o = out + (b * T + t) * C + h * HS;
        float s = 0.0f;
        for (int d = 0; d < HS; d++)
            s += x2f(dy[d]) * x2f(o[d]);
        D[row] = s;
    }
}

template <int HSP>
__global__ void flash_dkdv_kernel(floatX *dqkv, const floatX *dout, const float *lse,
                                  const float *D, const floatX *qkv, int T, int C, int NH,
                                  float scale) {
    __shared__ float qs[FLASH_TILE][HSP];
    __shared__ float dys[FLASH_TILE][HSP];
    __shared__ float ls[FLASH_TILE], Ds[FLASH_TILE];
    __shared__ float dks[FLASH_TILE][HSP + 1]; /* each thread's own row: +1 spreads the banks */
    __shared__ float dvs[FLASH_TILE][HSP + 1];
    int HS = C / NH, bh = blockIdx.x, b = bh / NH, h = bh % NH;
    int c = threadIdx.x, j0 = blockIdx.y * FLASH_TILE, j = j0 + c;
    const floatX *base = qkv + (int64_t)b * T * 3 * C + h * HS;
    const floatX *dybase = dout + (int64_t)b * T * C + h * HS;
    float k[HSP], v[HSP];
    if (j < T) {
        flash_load_row<HSP>(k, base + (int64_t)j * 3 * C + C, HS);
        flash_load_row<HSP>(v, base + (int64_t)j * 3 * C + 2 * C, HS);
    }
    for (int d = 0; d < HSP; d++)
        dks[c][d] = dvs[c][d] = 0.0f;
    /* causal: query rows t >= j0 */
    for (int i0 = j0; i0 < T; i0 += FLASH_TILE) {
        __syncthreads();
        int t = i0 + c;
        if (t < T) {
            flash_load_row<HSP>(qs[c], base + (int64_t)t * 3 * C, HS);
            flash_load_row<HSP>(dys[c], dybase + (int64_t)t * C, HS);
            ls[c] = lse[(int64_t)bh * T + t];
            Ds[c] = D[(int64_t)bh * T + t];
        }
        __syncthreads();
        if (j >= T)
            continue;
        int n = T - i0 < FLASH_TILE ? T - i0 : FLASH_TILE;
        for (int rr = j > i0 ? j - i0 : 0; rr < n; rr++) { /* rows t = i0 + rr >= j */
            float sdot = 0.0f, pdot = 0.0f;
#pragma unroll
            for (int d = 0; d < HSP; d++) {
                sdot += qs[rr][d] * k[d];
                pdot += dys[rr][d] * v[d];
            }
            float p = expf(sdot * scale - ls[rr]);
            float ds = p * (pdot - Ds[rr]) * scale;
#pragma unroll
            for (int d = 0; d < HSP; d++) {
                dvs[c][d] += p * dys[rr][d];
                dks[c][d] += ds * qs[rr][d];
            }
        }
    }
    if (j < T) {
        floatX *dk = dqkv + ((int64_t)b * T + j) * 3 * C + C + h * HS;
        for (int d = 0; d < HS; d++) {
            dk[d] = f2x<floatX>(dks[c][d]);
            dk[C + d] = f2x<floatX>(dvs[c][d]);
        }
    }
}

template <int HSP>
__global__ void flash_dq_kernel(floatX *dqkv, const floatX *dout, const float *lse, const float *D,
                                const floatX *qkv, int T, int C, int NH, float scale) {
    __shared__ float ks[FLASH_TILE][HSP];
    __shared__ float vs[FLASH_TILE][HSP];
    __shared__ float dys[FLASH_TILE][HSP + 1]; /* each thread's own dout row */
    int HS = C / NH, bh = blockIdx.x, b = bh / NH, h = bh % NH;
    int r = threadIdx.x, i0 = blockIdx.y * FLASH_TILE, t = i0 + r;
    int last = i0 + FLASH_TILE - 1 < T - 1 ? i0 + FLASH_TILE - 1 : T - 1;
    const floatX *base = qkv + (int64_t)b * T * 3 * C + h * HS;
    float q[HSP], dq[HSP];
    float lt = 0.0f, Dt = 0.0f;
    if (t < T) {
        flash_load_row<HSP>(q, base + (int64_t)t * 3 * C, HS);
        flash_load_row<HSP>(dys[r], dout + ((int64_t)b * T + t) * C + h * HS, HS);
        lt = lse[(int64_t)bh * T + t];
        Dt = D[(int64_t)bh * T + t];
    }
#pragma unroll
    for (int d = 0; d < HSP; d++)
        dq[d] = 0.0f;
    for (int j0 = 0; j0 <= last; j0 += FLASH_TILE) {
        __syncthreads();
        int j = j0 + r;
        if (j < T) {
            flash_load_row<HSP>(ks[r], base + (int64_t)j * 3 * C + C, HS);
            flash_load_row<HSP>(vs[r], base + (int64_t)j * 3 * C + 2 * C, HS);
        }
        __syncthreads();
        if (t >= T || j0 > t)
            continue;
        int n = t - j0 + 1 < FLASH_TILE ? t - j0 + 1 : FLASH_TILE;
        for (int jj = 0; jj < n; jj++) {
            float sdot = 0.0f, pdot = 0.0f;
#pragma unroll
            for (int d = 0; d < HSP; d++) {
                sdot += q[d] * ks[jj][d];
                pdot += dys[r][d] * vs[jj][d];
            }
            float p = expf(sdot * scale - lt);
            float ds = p * (pdot - Dt) * scale;
#pragma unroll
            for (int d = 0; d < HSP; d++)
                dq[d] += ds * ks[jj][d];
        }
    }
    if (t < T) {
        floatX *o = dqkv + ((int64_t)b * T + t) * 3 * C + h * HS;
        for (int d = 0; d < HS; d++)
            o[d] = f2x<floatX>(dq[d]);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* head size 64 on tensor cores (mma.m16n8k16, f16 in, f32 accumulate)                       */
/*
 * Every kernel here is the same pattern: a block of FT_WARPS warps owns FT_ROWS rows of one
 * (b, h) ("fixed" rows: 16 per warp, their fragments held in registers) and streams 64-row
 * tiles of two other matrices through double-buffered shared memory (cp.async, the next tile
 * loading while this one is used). Two products do all the arithmetic:
 *   ft_mma_abt: X (16x64, A fragments) times a tile transposed  -> 16x64 f32 (S = Q Kᵀ ...)
 *   ft_mma_pv:  P (16x64 f32, rounded to f16 A fragments) times a tile -> += 16x64 f32
 * forward: fixed Q, streams K, V:  S = Q Kᵀ, online softmax on S's fragments, O += P V
 * dQ:      fixed Q, dO, streams K, V: S, dP = dO Vᵀ, dS = P (dP - D) scale, dQ += dS K
 * dK/dV:   fixed K, V, streams Q, dO: Sᵀ = K Qᵀ, dPᵀ = V dOᵀ, dV += Pᵀ dO, dK += dSᵀ Q
 * Accumulator element c of n-tile n of a lane (groupID g = lane/4, t = lane%4): row
 * g + 8 (c >= 2) of the warp's 16, column 8n + 2t + (c & 1). Shared rows are FT_PITCH halves
 * (144 bytes): the 8 rows one ldmatrix matrix reads start 16 bytes apart modulo 128, so they
 * fall in distinct banks. Tiles past T are zero-filled (never NaN: 0 * NaN would leak). */
#define FT_HS 64
#define FT_ROWS 64
#define FT_WARPS 4
#define FT_THREADS (FT_WARPS * 32)
#define FT_MIN_BLOCKS 2 /* per SM: lets ptxas use up to 255 registers (65536 / (2 * 128)) */
#define FT_PITCH (FT_HS + 8)
#define FT_TILE (FT_ROWS * FT_PITCH)  /* halves per shared tile */
#define FT_FWD_SMEM (5 * FT_TILE * 2) /* Q, K x2, V x2 */
#define FT_DQ_SMEM (4 * FT_TILE * 2)  /* K x2, V x2 (Q, dO staged in the second buffers) */
#define FT_DKDV_SMEM (4 * FT_TILE * 2 + 4 * FT_ROWS * 4) /* Q x2, dO x2, lse x2, D x2 */

/* rows row0..row0+63 of a matrix whose row r starts at src + r * stride into a shared tile by
 * 16-byte cp.async (rows >= T: zeros, stored directly) */
__device__ static void ft_tile_load(floatX *dst, const floatX *src, int64_t stride, int row0,
                                    int T) {
    for (int i = threadIdx.x; i < FT_ROWS * (FT_HS / 8); i += FT_THREADS) {
        int r = i / (FT_HS / 8), c = (i % (FT_HS / 8)) * 8;
        floatX *d = dst + r * FT_PITCH + c;
        if (row0 + r < T) {
            cp_async_16(d, src + (int64_t)(row0 + r) * stride + c);
        } else {
            uint32_t *z = (uint32_t *)d;
            z[0] = z[1] = z[2] = z[3] = 0u;
        }
    }
}

/* A fragments of the warp's 16 rows of a tile, k = the 64 columns in 4 steps of 16 */
__device__ static void ft_frag_a(uint32_t a[4][4], const floatX *tile, int warp) {
    int lane = threadIdx.x & 31, m = lane >> 3, r = lane & 7;
#pragma unroll
    for (int kk = 0; kk < 4; kk++)
        ldmatrix_x4(a[kk],
                    tile + (warp * 16 + (m & 1) * 8 + r) * FT_PITCH + kk * 16 + (m >> 1) * 8);
}

/* s = x tileᵀ: x the warp's 16 rows (A fragments), the tile's 64 rows the columns of s */
__device__ static void ft_mma_abt(float s[8][4], const uint32_t x[4][4], const floatX *tile) {
    int lane = threadIdx.x & 31, m = lane >> 3, r = lane & 7;
#pragma unroll
    for (int n = 0; n < 8; n++)
        s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int np = 0; np < 4; np++)
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
            uint32_t b[4]; /* matrices: rows np*16 + {0, 8}, columns kk*16 + {0, 8} */
            ldmatrix_x4(b, tile + (np * 16 + (m >> 1) * 8 + r) * FT_PITCH + kk * 16 + (m & 1) * 8);
            uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
            mma_m16n8k16<floatX>(s[2 * np], x[kk], b0, s[2 * np]);
            mma_m16n8k16<floatX>(s[2 * np + 1], x[kk], b1, s[2 * np + 1]);
        }
}

__device__ __forceinline__ uint32_t ft_pack(float lo, float hi) {
    return cuda_pack2<floatX>(lo, hi);
}

/* acc += p tile: p (16 x 64, accumulator layout) rounded to f16 as the A operand (its n-tiles
 * 2kk, 2kk+1 are A's k-step kk), the tile's 64 rows the k dimension (ldmatrix .trans) */
__device__ static void ft_mma_pv(float acc[8][4], const float p[8][4], const floatX *tile) {
    int lane = threadIdx.x & 31, m = lane >> 3, r = lane & 7;
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
        uint32_t a[4] = {ft_pack(p[2 * kk][0], p[2 * kk][1]), ft_pack(p[2 * kk][2], p[2 * kk][3]),
                         ft_pack(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                         ft_pack(p[2 * kk + 1][2], p[2 * kk + 1][3])};
#pragma unroll
        for (int dp = 0; dp < 4; dp++) {
            uint32_t b[4]; /* matrices: rows kk*16 + {0, 8}, columns dp*16 + {0, 8} */
            ldmatrix_x4_trans(b, tile + (kk * 16 + (m & 1) * 8 + r) * FT_PITCH + dp * 16 +
                                     (m >> 1) * 8);
            uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
            mma_m16n8k16<floatX>(acc[2 * dp], a, b0, acc[2 * dp]);
            mma_m16n8k16<floatX>(acc[2 * dp + 1], a, b1, acc[2 * dp + 1]);
        }
    }
}

/* the sum or max of v over the 4 lanes of a quad (one accumulator row) */
__device__ __forceinline__ float ft_quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float ft_quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

/* one key tile of the online softmax on the fragments: s = scale * scores (keys > row masked
 * on the diagonal tile), m, l the running max and this lane's partial sum per row half,
 * o rescaled; s becomes p = exp(s - m) */
__device__ static void ft_softmax_step(float s[8][4], float o[8][4], float m[2], float l[2],
                                       const int row[2], int j0, float scale, bool diagonal) {
    int t = threadIdx.x & 3;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        float mx = -INFINITY;
#pragma unroll
        for (int n = 0; n < 8; n++)
#pragma unroll
            for (int c = 2 * h; c < 2 * h + 2; c++) {
                int key = j0 + 8 * n + 2 * t + (c & 1);
                s[n][c] = diagonal && key > row[h] ? -INFINITY : s[n][c] * scale;
                mx = fmaxf(mx, s[n][c]);
            }
        float mn = fmaxf(m[h], ft_quad_max(mx));   /* finite: key j0 <= row on every tile */
        float alpha = expf(m[h] - mn), sum = 0.0f; /* 0 on the first tile (m = -inf) */
#pragma unroll
        for (int n = 0; n < 8; n++)
#pragma unroll
            for (int c = 2 * h; c < 2 * h + 2; c++) {
                s[n][c] = expf(s[n][c] - mn);
                sum += s[n][c];
                o[n][c] *= alpha;
            }
        l[h] = l[h] * alpha + sum;
        m[h] = mn;
    }
}

/* grid (B*NH, ceil(T/64)), FT_THREADS threads, FT_FWD_SMEM dynamic shared bytes; the block
 * for the last query tile (the most key tiles) starts first */
__global__ void __launch_bounds__(FT_THREADS, FT_MIN_BLOCKS)
    flash_tc_forward_kernel(floatX *out, float *lse, const floatX *qkv, int T, int C, int NH,
                            float scale) {
    CUDA_DYNAMIC_SHARED(floatX, smem);
    floatX *qs = smem, *ks = smem + FT_TILE, *vs = smem + 3 * FT_TILE;
    int bh = blockIdx.x, b = bh / NH, h = bh % NH;
    int qt = (int)gridDim.y - 1 - (int)blockIdx.y, i0 = qt * FT_ROWS;
    int warp = threadIdx.x >> 5, g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
    const floatX *base = qkv + (int64_t)b * T * 3 * C + h * FT_HS;
    int64_t stride = 3 * (int64_t)C;
    ft_tile_load(qs, base, stride, i0, T);
    ft_tile_load(ks, base + C, stride, 0, T);
    ft_tile_load(vs, base + 2 * C, stride, 0, T);
    cp_async_commit();
    uint32_t qf[4][4];
    float o[8][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    int row[2] = {i0 + warp * 16 + g, i0 + warp * 16 + g + 8};
#pragma unroll
    for (int n = 0; n < 8; n++)
        o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    for (int j = 0; j <= qt; j++) {
        int cur = j & 1;
        if (j < qt) { /* the next K, V tile loads while this one is used */
            ft_tile_load(ks + (cur ^ 1) * FT_TILE, base + C, stride, (j + 1) * FT_ROWS, T);
            ft_tile_load(vs + (cur ^ 1) * FT_TILE, base + 2 * C, stride, (j + 1) * FT_ROWS, T);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        if (j == 0)
            ft_frag_a(qf, qs, warp);
        float s[8][4];
        ft_mma_abt(s, qf, ks + cur * FT_TILE);
        ft_softmax_step(s, o, m, l, row, j * FT_ROWS, scale, j == qt);
        ft_mma_pv(o, s, vs + cur * FT_TILE);
        __syncthreads(); /* buffer cur is the next iteration's prefetch target */
    }
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
        float sum = ft_quad_sum(l[hh]);
        if (row[hh] >= T)
            continue;
        float inv = 1.0f / sum;
        floatX *orow = out + ((int64_t)b * T + row[hh]) * C + h * FT_HS + 2 * t;
#pragma unroll
        for (int n = 0; n < 8; n++)
            *(uint32_t *)(orow + 8 * n) =
                cuda_pack2<floatX>(o[n][2 * hh] * inv, o[n][2 * hh + 1] * inv);
        if (t == 0)
            lse[(int64_t)bh * T + row[hh]] = m[hh] + logf(sum);
    }
}

/* stores a warp's 16x64 f32 accumulator as f16 rows row[0], row[1] (those < T) of a matrix
 * whose row r starts at dst + r * stride */
__device__ static void ft_store_rows(floatX *dst, int64_t stride, const float acc[8][4],
                                     const int row[2], int T) {
    int t = threadIdx.x & 3;
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
        if (row[hh] >= T)
            continue;
        floatX *d = dst + (int64_t)row[hh] * stride + 2 * t;
#pragma unroll
        for (int n = 0; n < 8; n++)
            *(uint32_t *)(d + 8 * n) = cuda_pack2<floatX>(acc[n][2 * hh], acc[n][2 * hh + 1]);
    }
}

/* dQ of one 64-row query tile: grid (B*NH, ceil(T/64)), the last tile first */
__global__ void __launch_bounds__(FT_THREADS, FT_MIN_BLOCKS)
    flash_tc_dq_kernel(floatX *dqkv, const floatX *dout, const float *lse, const float *D,
                       const floatX *qkv, int T, int C, int NH, float scale) {
    CUDA_DYNAMIC_SHARED(floatX, smem);
    floatX *ks = smem, *vs = smem + 2 * FT_TILE;
    int bh = blockIdx.x, b = bh / NH, h = bh % NH;
    int qt = (int)gridDim.y - 1 - (int)blockIdx.y, i0 = qt * FT_ROWS;
    int warp = threadIdx.x >> 5, g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
    const floatX *base = qkv + (int64_t)b * T * 3 * C + h * FT_HS;
    int64_t stride = 3 * (int64_t)C;
    /* Q and dO pass through the second buffers once, into registers */
    ft_tile_load(ks + FT_TILE, base, stride, i0, T);
    ft_tile_load(vs + FT_TILE, dout + (int64_t)b * T * C + h * FT_HS, C, i0, T);
    ft_tile_load(ks, base + C, stride, 0, T);
    ft_tile_load(vs, base + 2 * C, stride, 0, T);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    uint32_t qf[4][4], yf[4][4];
    ft_frag_a(qf, ks + FT_TILE, warp);
    ft_frag_a(yf, vs + FT_TILE, warp);
    __syncthreads();
    int row[2] = {i0 + warp * 16 + g, i0 + warp * 16 + g + 8};
    float lr[2], Dr[2], dq[8][4];
    for (int hh = 0; hh < 2; hh++) {
        lr[hh] = row[hh] < T ? lse[(int64_t)bh * T + row[hh]] : 0.0f;
        Dr[hh] = row[hh] < T ? D[(int64_t)bh * T + row[hh]] : 0.0f;
    }
#pragma unroll
    for (int n = 0; n < 8; n++)
        dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.0f;
    for (int j = 0; j <= qt; j++) {
        int cur = j & 1;
        if (j < qt) {
            ft_tile_load(ks + (cur ^ 1) * FT_TILE, base + C, stride, (j + 1) * FT_ROWS, T);
            ft_tile_load(vs + (cur ^ 1) * FT_TILE, base + 2 * C, stride, (j + 1) * FT_ROWS, T);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        float s[8][4], dp[8][4];
        ft_mma_abt(s, qf, ks + cur * FT_TILE);
        ft_mma_abt(dp, yf, vs + cur * FT_TILE);
#pragma unroll
        for (int n = 0; n < 8; n++)
#pragma unroll
            for (int c = 0; c < 4; c++) {
                int key = j * FT_ROWS + 8 * n + 2 * t + (c & 1), hh = c >> 1;
                float p = key <= row[hh] ? expf(s[n][c] * scale - lr[hh]) : 0.0f;
                s[n][c] = p * (dp[n][c] - Dr[hh]) * scale; /* dS */
            }
        ft_mma_pv(dq, s, ks + cur * FT_TILE);
        __syncthreads();
    }
    ft_store_rows(dqkv + (int64_t)b * T * 3 * C + h * FT_HS, stride, dq, row, T);
}

/* lse and D of query rows i0..i0+63 into shared memory (rows >= T: 0); plain loads (the
 * rows of one (b, h) are not 16-byte aligned in general) */
__device__ static void ft_rows_load(float *ls, float *Ds, const float *lse, const float *D,
                                    int64_t off, int i0, int T) {
    int i = threadIdx.x % FT_ROWS;
    bool in = i0 + i < T;
    if (threadIdx.x < FT_ROWS)
        ls[i] = in ? lse[off + i0 + i] : 0.0f;
    else if (threadIdx.x < 2 * FT_ROWS)
        Ds[i] = in ? D[off + i0 + i] : 0.0f;
}

/* dK, dV of one 64-row key tile: grid (B*NH, ceil(T/64)); key tile 0 (every query tile
 * below it) first */
__global__ void __launch_bounds__(FT_THREADS, FT_MIN_BLOCKS)
    flash_tc_dkdv_kernel(floatX *dqkv, const floatX *dout, const float *lse, const float *D,
                         const floatX *qkv, int T, int C, int NH, float scale) {
    CUDA_DYNAMIC_SHARED(floatX, smem);
    floatX *qs = smem, *ys = smem + 2 * FT_TILE;
    float *ls = (float *)(smem + 4 * FT_TILE), *Ds = ls + 2 * FT_ROWS; /* [2][FT_ROWS] each */
    int bh = blockIdx.x, b = bh / NH, h = bh % NH;
    int kt = blockIdx.y, j0 = kt * FT_ROWS, ntiles = (int)gridDim.y;
    int warp = threadIdx.x >> 5, g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
    const floatX *base = qkv + (int64_t)b * T * 3 * C + h * FT_HS;
    const floatX *ybase = dout + (int64_t)b * T * C + h * FT_HS;
    int64_t stride = 3 * (int64_t)C, off = (int64_t)bh * T;
    ft_tile_load(qs + FT_TILE, base + C, stride, j0, T); /* K, V staged in the second buffers */
    ft_tile_load(ys + FT_TILE, base + 2 * C, stride, j0, T);
    ft_tile_load(qs, base, stride, j0, T); /* the first query tile is the diagonal one */
    ft_tile_load(ys, ybase, C, j0, T);
    ft_rows_load(ls, Ds, lse, D, off, j0, T);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    uint32_t kf[4][4], vf[4][4];
    ft_frag_a(kf, qs + FT_TILE, warp);
    ft_frag_a(vf, ys + FT_TILE, warp);
    __syncthreads();
    int key[2] = {j0 + warp * 16 + g, j0 + warp * 16 + g + 8};
    float dk[8][4], dv[8][4];
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
        for (int c = 0; c < 4; c++)
            dk[n][c] = dv[n][c] = 0.0f;
    for (int i = kt; i < ntiles; i++) {
        int cur = (i - kt) & 1, nxt = cur ^ 1;
        if (i + 1 < ntiles) {
            ft_tile_load(qs + nxt * FT_TILE, base, stride, (i + 1) * FT_ROWS, T);
            ft_tile_load(ys + nxt * FT_TILE, ybase, C, (i + 1) * FT_ROWS, T);
            ft_rows_load(ls + nxt * FT_ROWS, Ds + nxt * FT_ROWS, lse, D, off, (i + 1) * FT_ROWS, T);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        float st[8][4], dpt[8][4]; /* Sᵀ, dPᵀ: rows the warp's keys, columns this tile's queries */
        ft_mma_abt(st, kf, qs + cur * FT_TILE);
        ft_mma_abt(dpt, vf, ys + cur * FT_TILE);
#pragma unroll
        for (int n = 0; n < 8; n++)
#pragma unroll
            for (int c = 0; c < 4; c++) {
                int qi = 8 * n + 2 * t + (c & 1), q = i * FT_ROWS + qi;
                float lq = ls[cur * FT_ROWS + qi], Dq = Ds[cur * FT_ROWS + qi];
                float p = q >= key[c >> 1] && q < T ? expf(st[n][c] * scale - lq) : 0.0f;
                st[n][c] = p;
                dpt[n][c] = p * (dpt[n][c] - Dq) * scale; /* dSᵀ */
            }
        ft_mma_pv(dv, st, ys + cur * FT_TILE);
        ft_mma_pv(dk, dpt, qs + cur * FT_TILE);
        __syncthreads();
    }
    ft_store_rows(dqkv + (int64_t)b * T * 3 * C + C + h * FT_HS, stride, dk, key, T);
    ft_store_rows(dqkv + (int64_t)b * T * 3 * C + 2 * C + h * FT_HS, stride, dv, key, T);
}

/* ---------------------------------------------------------------------------------------- */
/* launchers (backend.h signatures)                                                          */

static dim3 flash_grid(int64_t B, int64_t T, int64_t NH) {
    return dim3((unsigned)(B * NH), (unsigned)((T + FLASH_TILE - 1) / FLASH_TILE), 1);
}

static void flash_check_sizes(int64_t B, int64_t T, int64_t C, int64_t NH) {
    ASSERT_MSG(C % NH == 0 && C / NH <= GPT_FLASH_CUDA_MAX_HS,
               "flash attention on CUDA: head size must be <= 64");
    ASSERT_MSG(3 * C * T <= INT32_MAX, "flash attention: T * 3C overflows int");
    ASSERT_MSG(B * NH <= INT32_MAX && (T + FLASH_TILE - 1) / FLASH_TILE <= 65535,
               "flash attention: grid (B*NH, T/32) too large");
}

/* the tensor-core kernels take head size 64 with every row start 16-byte aligned (cp.async) */
static bool flash_tc_fits(int64_t HS, const void *a, const void *b) {
    return HS == FT_HS && ((uintptr_t)a | (uintptr_t)b) % 16 == 0;
}

static dim3 flash_tc_grid(int64_t B, int64_t T, int64_t NH) {
    return dim3((unsigned)(B * NH), (unsigned)((T + FT_ROWS - 1) / FT_ROWS), 1);
}

void cuda_flash_attention_forward(void *out, void *lse_, void *workspace, const void *qkv,
                                  int64_t B, int64_t T, int64_t C, int64_t NH, void *stream) {
    flash_check_sizes(B, T, C, NH);
    float *lse = (float *)lse_;
    cudaStream_t s = cuda_stream(stream);
    int64_t HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    dim3 grid = flash_grid(B, T, NH);
    floatX *o = (floatX *)out;
    const floatX *x = (const floatX *)qkv;
    if (flash_tc_fits(HS, qkv, out))
        CUDA_LAUNCH(flash_tc_forward_kernel, flash_tc_grid(B, T, NH), FT_THREADS, FT_FWD_SMEM, s, o,
                    lse, x, (int)T, (int)C, (int)NH, scale);
    else if (HS <= 16)
        CUDA_LAUNCH(flash_forward_kernel<16>, grid, FLASH_TILE, 0, s, o, lse, x, (int)T, (int)C,
                    (int)NH, scale);
    else if (HS <= 32)
        CUDA_LAUNCH(flash_forward_kernel<32>, grid, FLASH_TILE, 0, s, o, lse, x, (int)T, (int)C,
                    (int)NH, scale);
    else
        CUDA_LAUNCH(flash_forward_kernel<64>, grid, FLASH_TILE, 0, s, o, lse, x, (int)T, (int)C,
                    (int)NH, scale);
    CUDA_LAUNCH_CHECK();
}

void cuda_flash_attention_backward(void *dqkv, void *lse_, void *workspace_, const void *dout,
                                   const void *out, const void *qkv, int64_t B, int64_t T,
                                   int64_t C, int64_t NH, void *stream) {
    flash_check_sizes(B, T, C, NH);
    const float *lse = (const float *)lse_;
    float *workspace = (float *)workspace_;
    cudaStream_t s = cuda_stream(stream);
    int64_t HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    dim3 grid = flash_grid(B, T, NH);
    floatX *dx = (floatX *)dqkv;
    const floatX *dy = (const floatX *)dout, *x = (const floatX *)qkv;
    int64_t rows = B * NH * T;
    CUDA_LAUNCH(flash_rowdot_kernel, cuda_blocks_for(rows, FLASH_ROWDOT_THREADS),
                FLASH_ROWDOT_THREADS, 0, s, workspace, dy, (const floatX *)out, rows, (int)T,
                (int)C, (int)NH);
    CUDA_LAUNCH_CHECK();
    if (flash_tc_fits(HS, qkv, dout) && flash_tc_fits(HS, dqkv, qkv)) {
        dim3 tg = flash_tc_grid(B, T, NH);
        CUDA_LAUNCH(flash_tc_dkdv_kernel, tg, FT_THREADS, FT_DKDV_SMEM, s, dx, dy, lse, workspace,
                    x, (int)T, (int)C, (int)NH, scale);
        CUDA_LAUNCH_CHECK();
        CUDA_LAUNCH(flash_tc_dq_kernel, tg, FT_THREADS, FT_DQ_SMEM, s, dx, dy, lse, workspace, x,
                    (int)T, (int)C, (int)NH, scale);
    } else if (HS <= 16) {
        CUDA_LAUNCH(flash_dkdv_kernel<16>, grid, FLASH_TILE, 0, s, dx, dy, lse, workspace, x,
                    (int)T, (int)C, (int)NH, scale);
        CUDA_LAUNCH_CHECK();
        CUDA_LAUNCH(flash_dq_kernel<16>, grid, FLASH_TILE, 0, s, dx, dy, lse, workspace, x, (int)T,
                    (int)C, (int)NH, scale);
    } else if (HS <= 32) {
        CUDA_LAUNCH(flash_dkdv_kernel<32>, grid, FLASH_TILE, 0, s, dx, dy, lse, workspace, x,
                    (int)T, (int)C, (int)NH, scale);
        CUDA_LAUNCH_CHECK();
        CUDA_LAUNCH(flash_dq_kernel<32>, grid, FLASH_TILE, 0, s, dx, dy, lse, workspace, x, (int)T,
                    (int)C, (int)NH, scale);
    } else {
        CUDA_LAUNCH(flash_dkdv_kernel<64>, grid, FLASH_TILE, 0, s, dx, dy, lse, workspace, x,
                    (int)T, (int)C, (int)NH, scale);
        CUDA_LAUNCH_CHECK();
        CUDA_LAUNCH(flash_dq_kernel<64>, grid, FLASH_TILE, 0, s, dx, dy, lse, workspace, x, (int)T,
                    (int)C, (int)NH, scale);
    }
    CUDA_LAUNCH_CHECK();
}

} // namespace CUDA_X_NS
