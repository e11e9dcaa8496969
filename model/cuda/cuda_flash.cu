/* cuda_flash.cu: fused causal self-attention on the GPU (attention=flash), FlashAttention-2's
 * algorithm in plain CUDA: f16 in and out, f32 arithmetic, softmax statistics and
 * accumulators. The (T,T) probabilities never exist; forward saves O and the f32 log-sum-exp
 * per row (lse, (B,NH,T)), backward recomputes the probabilities from them tile by tile.
 *
 * Kernels (grid: (B*NH, ceil(T / FLASH_TILE)), one thread per row of a FLASH_TILE-row tile):
 *   flash_forward_kernel   thread = query row t: q in registers; key/value tiles staged in
 *                          shared memory (f32); online softmax (running max m, sum l, the
 *                          output accumulator rescaled by exp(m_old - m_new) once per tile);
 *                          out = acc / l, lse = m + log(l).
 *   flash_rowdot_kernel    D[b,h,t] = dout_t . out_t (the workspace), one thread per row.
 *   flash_dkdv_kernel      thread = key row j: k, v in registers, dk, dv accumulated in the
 *                          thread's row of shared memory, over query tiles at or below the
 *                          diagonal staged in shared memory (q, dout, lse, D):
 *                          p = exp(scale q.k - lse), dv += p dout, ds = p (dout.v - D),
 *                          dk += scale ds q.
 *   flash_dq_kernel        thread = query row t: q, dq in registers; over the key tiles up to
 *                          the diagonal: dq += scale ds k (recomputing p and dout.v).
 * Splitting dK/dV and dQ into two kernels costs recomputing q.k and dout.v once more but needs
 * no atomics and no f32 dQ buffer, and every output is written by exactly one thread in a
 * fixed order (deterministic).
 *
 * Head size: the row width is a compile-time HSP (16, 32 or 64, the smallest >= HS) with the
 * columns HS..HSP-1 zero-filled, so any HS <= GPT_FLASH_CUDA_MAX_HS (64) works, odd ones
 * included; larger heads are refused by gpt_config_check and ASSERTed here. Odd T: rows past T
 * in the last tile load zeros and write nothing. Shared memory per block at HSP 64: forward
 * 16 KiB, dK/dV 33 KiB, dQ 24.4 KiB (all within the default 48 KiB).
 *
 * Plain CUDA only (no inline PTX, no tensor-core intrinsics), launched with CUDA_LAUNCH, so
 * the CUDA simulator (tests/cudasim/) runs the same source. Not here: the naive attention
 * (cuda_attention.cu), cuDNN's SDPA. */
#include <math.h>

#include "cuda_common.cuh"

#define FLASH_TILE 32 /* rows per tile = threads per block */
#define FLASH_ROWDOT_THREADS 128

/* q/k/v of head h, row t of sequence b in the (B,T,3C) qkv: qkv + (b*T + t)*3C + part*C + h*HS */
template <int HSP>
__device__ __forceinline__ void flash_load_row(float *dst, const __half *src, int HS) {
#pragma unroll
    for (int d = 0; d < HSP; d++)
        dst[d] = d < HS ? __half2float(src[d]) : 0.0f;
}

template <int HSP>
__global__ void flash_forward_kernel(__half *out, float *lse, const __half *qkv, int T, int C,
                                     int NH, float scale) {
    __shared__ float ks[FLASH_TILE][HSP];
    __shared__ float vs[FLASH_TILE][HSP];
    int HS = C / NH, bh = blockIdx.x, b = bh / NH, h = bh % NH;
    int r = threadIdx.x, i0 = blockIdx.y * FLASH_TILE, t = i0 + r;
    int last = i0 + FLASH_TILE - 1 < T - 1 ? i0 + FLASH_TILE - 1 : T - 1; /* tile's last row */
    const __half *base = qkv + (int64_t)b * T * 3 * C + h * HS;
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
        __half *o = out + ((int64_t)b * T + t) * C + h * HS;
        for (int d = 0; d < HS; d++)
            o[d] = __float2half_rn(acc[d] * inv);
        lse[(int64_t)bh * T + t] = m + logf(l);
    }
}

/* D[b,h,t] = sum_d dout[b,t,h*HS+d] * out[b,t,h*HS+d] (f32), rows = B*NH*T; grid-stride */
__global__ void flash_rowdot_kernel(float *D, const __half *dout, const __half *out, int64_t rows,
                                    int T, int C, int NH) {
    int HS = C / NH;
    for (int64_t row = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; row < rows;
         row += (int64_t)gridDim.x * blockDim.x) {
        int64_t t = row % T, bh = row / T, h = bh % NH, b = bh / NH;
        const __half *dy = dout + (b * T + t) * C + h * HS, *o = out + (b * T + t) * C + h * HS;
        float s = 0.0f;
        for (int d = 0; d < HS; d++)
            s += __half2float(dy[d]) * __half2float(o[d]);
        D[row] = s;
    }
}

template <int HSP>
__global__ void flash_dkdv_kernel(__half *dqkv, const __half *dout, const float *lse,
                                  const float *D, const __half *qkv, int T, int C, int NH,
                                  float scale) {
    __shared__ float qs[FLASH_TILE][HSP];
    __shared__ float dys[FLASH_TILE][HSP];
    __shared__ float ls[FLASH_TILE], Ds[FLASH_TILE];
    __shared__ float dks[FLASH_TILE][HSP + 1]; /* each thread's own row: +1 spreads the banks */
    __shared__ float dvs[FLASH_TILE][HSP + 1];
    int HS = C / NH, bh = blockIdx.x, b = bh / NH, h = bh % NH;
    int c = threadIdx.x, j0 = blockIdx.y * FLASH_TILE, j = j0 + c;
    const __half *base = qkv + (int64_t)b * T * 3 * C + h * HS;
    const __half *dybase = dout + (int64_t)b * T * C + h * HS;
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
        __half *dk = dqkv + ((int64_t)b * T + j) * 3 * C + C + h * HS;
        for (int d = 0; d < HS; d++) {
            dk[d] = __float2half_rn(dks[c][d]);
            dk[C + d] = __float2half_rn(dvs[c][d]);
        }
    }
}

template <int HSP>
__global__ void flash_dq_kernel(__half *dqkv, const __half *dout, const float *lse, const float *D,
                                const __half *qkv, int T, int C, int NH, float scale) {
    __shared__ float ks[FLASH_TILE][HSP];
    __shared__ float vs[FLASH_TILE][HSP];
    __shared__ float dys[FLASH_TILE][HSP + 1]; /* each thread's own dout row */
    int HS = C / NH, bh = blockIdx.x, b = bh / NH, h = bh % NH;
    int r = threadIdx.x, i0 = blockIdx.y * FLASH_TILE, t = i0 + r;
    int last = i0 + FLASH_TILE - 1 < T - 1 ? i0 + FLASH_TILE - 1 : T - 1;
    const __half *base = qkv + (int64_t)b * T * 3 * C + h * HS;
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
        __half *o = dqkv + ((int64_t)b * T + t) * 3 * C + h * HS;
        for (int d = 0; d < HS; d++)
            o[d] = __float2half_rn(dq[d]);
    }
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

void cuda_flash_attention_forward(void *out, void *lse_, void *workspace, const void *qkv,
                                  int64_t B, int64_t T, int64_t C, int64_t NH, void *stream) {
    flash_check_sizes(B, T, C, NH);
    float *lse = (float *)lse_;
    cudaStream_t s = cuda_stream(stream);
    int64_t HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    dim3 grid = flash_grid(B, T, NH);
    __half *o = (__half *)out;
    const __half *x = (const __half *)qkv;
    if (HS <= 16)
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
    __half *dx = (__half *)dqkv;
    const __half *dy = (const __half *)dout, *x = (const __half *)qkv;
    int64_t rows = B * NH * T;
    CUDA_LAUNCH(flash_rowdot_kernel, cuda_blocks_for(rows, FLASH_ROWDOT_THREADS),
                FLASH_ROWDOT_THREADS, 0, s, workspace, dy, (const __half *)out, rows, (int)T,
                (int)C, (int)NH);
    CUDA_LAUNCH_CHECK();
    if (HS <= 16) {
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
