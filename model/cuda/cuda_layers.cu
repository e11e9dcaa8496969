/* cuda_layers.cu: the element-wise and row-wise layers of the CUDA backend in fp16 with f32
 * arithmetic: token + position encoder (forward, backward), LayerNorm (forward with f32
 * mean/rstd, backward), GELU (tanh and erf, forward and backward), and the column reductions
 * that give bias and LayerNorm weight gradients.
 *
 * Determinism: no atomics. Column reductions (dweight, dbias) sum row slices per column in a
 * fixed order, then the slices in order (column_sums; the slice count depends on the shapes
 * and the workspace size only); dwpe runs one thread per column over the batch; the token-embedding gradient is summed per distinct
 * token in position order: the positions are sorted by (token, position) in the backend
 * workspace (a bitonic sort of 64-bit keys), then one block per run of equal tokens sums its
 * rows. So the same inputs give the same bits, whatever the recompute mode.
 *
 * Accumulating outputs (+=) read the f16 value, add the f32 contribution and round once. The
 * weight gradients (dwte, dwpe, LayerNorm and bias gradients) are f16 or, with
 * grad_dtype=float32, f32 (the kernels are templates on their type; the _g32 entry points).
 * Access: the element-wise kernels (encoder forward, GELU, bias add) and the LayerNorm row
 * kernels read and write 128 bits (8 f16) per access through Packed128 (cuda_common.cuh) when
 * their tensors are 16-byte aligned and, for the row kernels, C % 8 == 0; otherwise the same
 * kernels run with packets of one value (template parameter P = 8 or 1). The element-wise
 * kernels give the same bits on both paths; the LayerNorm row sums add in another order (each
 * lane sums its packets), so the two paths may differ in the last bits, and which one runs
 * depends only on the shapes and the arena's alignment (deterministic).
 *
 * Signatures are backend.h's (outputs, saved, inputs, weights, sizes, stream). */
#include "cuda_common.cuh"

namespace CUDA_X_NS {

#define LN_EPS 1e-5f
#define ROWS_PER_BLOCK 8 /* warps per block in the one-warp-per-row kernels */

static inline const floatX *H(const void *p) { return (const floatX *)p; }
static inline floatX *Hm(void *p) { return (floatX *)p; }

static inline int aligned(const void *p) { return p == NULL || (uintptr_t)p % 16 == 0; }

/* Grid-stride indices of a packed element-wise kernel over n values: packet starts i (every P
 * values up to the last whole packet), then the n % P values left one at a time. */
#define FOR_PACKETS(i, n, P)                                                                       \
    for (int64_t i = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) * (P); i < (n) / (P) * (P);  \
         i += (int64_t)gridDim.x * blockDim.x * (P))
#define FOR_TAIL(i, n, P)                                                                          \
    for (int64_t i = (n) / (P) * (P) + blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n);    \
         i += (int64_t)gridDim.x * blockDim.x)

/* ---------------------------------------------------------------------------------------- */
/* encoder                                                                                   */

/* out = wte[token] + wpe[position]; P values per access (C % P == 0: a packet is in one row) */
template <int P>
__global__ void encoder_forward_kernel(floatX *out, const int32_t *inp, const floatX *wte,
                                       const floatX *wpe, int64_t BT, int64_t T, int64_t C) {
    int64_t n = BT * C;
    FOR_PACKETS(i, n, P) {
        int64_t bt = i / C, c = i % C, t = bt % T;
        int64_t tok = inp[bt];
        float a[P], b[P];
        cuda_load_f32<P>(a, wte + tok * C + c);
        cuda_load_f32<P>(b, wpe + t * C + c);
        for (int j = 0; j < P; j++)
            a[j] += b[j];
        cuda_store_f32<P>(out + i, a);
    }
}

void cuda_encoder_forward(void *out, const int32_t *inp, const void *wte, const void *wpe,
                          int64_t B, int64_t T, int64_t C, void *stream) {
    int64_t n = B * T * C;
    if (C % 8 == 0 && aligned(out) && aligned(wte) && aligned(wpe))
        CUDA_LAUNCH(encoder_forward_kernel<8>, cuda_blocks_for(n / 8, 256), 256, 0,
                    cuda_stream(stream), Hm(out), inp, H(wte), H(wpe), B * T, T, C);
    else
        CUDA_LAUNCH(encoder_forward_kernel<1>, cuda_blocks_for(n, 256), 256, 0, cuda_stream(stream),
                    Hm(out), inp, H(wte), H(wpe), B * T, T, C);
    CUDA_LAUNCH_CHECK();
}

/* dwpe[t,c] += sum_b dout[b,t,c] */
template <typename Tg>
__global__ void encoder_backward_wpe_kernel(Tg *dwpe, const floatX *dout, int64_t B, int64_t T,
                                            int64_t C) {
    int64_t n = T * C;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float acc = 0.0f;
        for (int64_t b = 0; b < B; b++)
            acc += x2f(dout[b * n + i]);
        cuda_grad_add(&dwpe[i], acc);
    }
}

#define WTE_BLOCK 256
/* Without a backend workspace to sort in (kernel tests before gpt_cuda_workspace_set): one
 * block per position i. If token inp[i] occurs earlier, the block does nothing; else it sums
 * dout over every position j >= i holding the same token (in order) and adds the sum to
 * dwte[token] once. O((B*T)^2) token reads: the sorted path below is the one runs use. */
template <typename Tg>
__global__ void encoder_backward_wte_scan_kernel(Tg *dwte, const floatX *dout, const int32_t *inp,
                                                 int64_t BT, int64_t C) {
    __shared__ int32_t toks[WTE_BLOCK];
    int64_t i = blockIdx.x;
    int32_t tok = inp[i];
    int seen = 0;
    for (int64_t j = threadIdx.x; j < i; j += blockDim.x)
        if (inp[j] == tok) {
            seen = 1;
            break;
        }
    if (__syncthreads_or(seen))
        return;
    for (int64_t c0 = 0; c0 < C; c0 += blockDim.x) {
        int64_t c = c0 + threadIdx.x;
        float acc = 0.0f;
        for (int64_t j0 = i; j0 < BT; j0 += blockDim.x) {
            int64_t j = j0 + threadIdx.x;
            __syncthreads();
            toks[threadIdx.x] = j < BT ? inp[j] : -1;
            __syncthreads();
            int64_t jn = BT - j0 < (int64_t)blockDim.x ? BT - j0 : (int64_t)blockDim.x;
            if (c < C)
                for (int64_t q = 0; q < jn; q++)
                    if (toks[q] == tok)
                        acc += x2f(dout[(j0 + q) * C + c]);
        }
        if (c < C)
            cuda_grad_add(dwte + (int64_t)tok * C + c, acc);
    }
}

/* The sorted path. key = token << 32 | position (tokens are >= 0, positions < 2^31), so keys
 * sorted ascending group each token's positions together, in position order. The key array
 * is padded to a power of two with ~0 (after every real key). */
#define SORT_THREADS 1024
#define SORT_LOCAL (2 * SORT_THREADS) /* keys a block sorts in shared memory */
#define KEY_PAD (~0ULL)

__global__ void wte_keys_kernel(uint64_t *keys, const int32_t *inp, int64_t BT, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        keys[i] = i < BT ? ((uint64_t)(uint32_t)inp[i] << 32) | (uint64_t)i : KEY_PAD;
}

/* One compare-exchange step (k, j) of the bitonic network over keys[0, n): element i and its
 * partner i ^ j, ascending where (i & k) == 0. Each pair is handled by its lower index. */
__device__ __forceinline__ void bitonic_pair(uint64_t *a, int64_t i, int64_t gi, int64_t j,
                                             int64_t k) {
    int64_t l = i ^ j;
    if (l <= i)
        return;
    uint64_t x = a[i], y = a[l];
    int ascending = (gi & k) == 0;
    if ((x > y) == ascending) {
        a[i] = y;
        a[l] = x;
    }
}

/* Steps with j >= SORT_LOCAL: across blocks, through global memory. */
__global__ void bitonic_global_step_kernel(uint64_t *keys, int64_t n, int64_t j, int64_t k) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        bitonic_pair(keys, i, i, j, k);
}

/* Every step with j < SORT_LOCAL inside one block's SORT_LOCAL keys (or all n when fewer), in
 * shared memory: with k = 0, the whole network for k = 2 .. local size (each block's keys
 * sorted, alternating direction by the global index as the next stage needs); with k > 0,
 * the steps j = local/2 .. 1 of stage k. */
__global__ void bitonic_local_kernel(uint64_t *keys, int64_t n, int64_t k_only) {
    __shared__ uint64_t s[SORT_LOCAL];
    int64_t local = n < SORT_LOCAL ? n : SORT_LOCAL;
    int64_t base = blockIdx.x * local;
    for (int64_t i = threadIdx.x; i < local; i += blockDim.x)
        s[i] = keys[base + i];
    __syncthreads();
    int64_t k_from = k_only ? k_only : 2, k_to = k_only ? k_only : local;
    for (int64_t k = k_from; k <= k_to; k <<= 1) {
        int64_t j_from = k_only ? local / 2 : k / 2;
        for (int64_t j = j_from; j > 0; j >>= 1) {
            for (int64_t i = threadIdx.x; i < local; i += blockDim.x)
                bitonic_pair(s, i, base + i, j, k);
            __syncthreads();
        }
    }
    for (int64_t i = threadIdx.x; i < local; i += blockDim.x)
        keys[base + i] = s[i];
}

/* One block per sorted index r; the first index of each run of equal tokens sums dout over
 * the run's positions (ascending) and adds the sum to dwte[token] once. */
template <typename Tg>
__global__ void encoder_backward_wte_sorted_kernel(Tg *dwte, const floatX *dout,
                                                   const uint64_t *keys, int64_t BT, int64_t C) {
    int64_t r = blockIdx.x;
    uint32_t tok = (uint32_t)(keys[r] >> 32);
    if (r > 0 && (uint32_t)(keys[r - 1] >> 32) == tok)
        return;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        float acc = 0.0f;
        for (int64_t e = r; e < BT && (uint32_t)(keys[e] >> 32) == tok; e++)
            acc += x2f(dout[(int64_t)(keys[e] & 0xffffffffULL) * C + c]);
        cuda_grad_add(dwte + (int64_t)tok * C + c, acc);
    }
}

/* Sorts the (token, position) keys of inp[0, BT) into keys[0, n) (n = the power of two >= BT). */
static void wte_sort_keys(uint64_t *keys, const int32_t *inp, int64_t BT, int64_t n,
                          cudaStream_t s) {
    CUDA_LAUNCH(wte_keys_kernel, cuda_blocks_for(n, 256), 256, 0, s, keys, inp, BT, n);
    CUDA_LAUNCH_CHECK();
    int64_t local = n < SORT_LOCAL ? n : SORT_LOCAL;
    unsigned blocks = (unsigned)(n / local);
    CUDA_LAUNCH(bitonic_local_kernel, blocks, SORT_THREADS, 0, s, keys, n, (int64_t)0);
    CUDA_LAUNCH_CHECK();
    for (int64_t k = 2 * local; k <= n; k <<= 1) {
        for (int64_t j = k / 2; j >= local; j >>= 1) {
            CUDA_LAUNCH(bitonic_global_step_kernel, cuda_blocks_for(n, 256), 256, 0, s, keys, n, j,
                        k);
            CUDA_LAUNCH_CHECK();
        }
        CUDA_LAUNCH(bitonic_local_kernel, blocks, SORT_THREADS, 0, s, keys, n, k);
        CUDA_LAUNCH_CHECK();
    }
}

template <typename Tg>
static void encoder_backward(Tg *dwte, Tg *dwpe, const void *dout, const int32_t *inp, int64_t B,
                             int64_t T, int64_t C, void *stream) {
    cudaStream_t s = cuda_stream(stream);
    CUDA_LAUNCH(encoder_backward_wpe_kernel<Tg>, cuda_blocks_for(T * C, 256), 256, 0, s, dwpe,
                H(dout), B, T, C);
    CUDA_LAUNCH_CHECK();
    ASSERT(B * T <= 0x7fffffffLL);
    int64_t BT = B * T, n = 1;
    while (n < BT)
        n <<= 1;
    size_t ws_bytes = 0;
    uint64_t *keys = (uint64_t *)cuda_workspace(&ws_bytes);
    if (!keys || (size_t)n * sizeof(uint64_t) > ws_bytes) {
        CUDA_LAUNCH(encoder_backward_wte_scan_kernel<Tg>, (unsigned)BT, WTE_BLOCK, 0, s, dwte,
                    H(dout), inp, BT, C);
        CUDA_LAUNCH_CHECK();
        return;
    }
    wte_sort_keys(keys, inp, BT, n, s);
    CUDA_LAUNCH(encoder_backward_wte_sorted_kernel<Tg>, (unsigned)BT, WTE_BLOCK, 0, s, dwte,
                H(dout), keys, BT, C);
    CUDA_LAUNCH_CHECK();
}

void cuda_encoder_backward(void *dwte, void *dwpe, const void *dout, const int32_t *inp, int64_t B,
                           int64_t T, int64_t C, void *stream) {
    encoder_backward(Hm(dwte), Hm(dwpe), dout, inp, B, T, C, stream);
}

void cuda_encoder_backward_g32(void *dwte, void *dwpe, const void *dout, const int32_t *inp,
                               int64_t B, int64_t T, int64_t C, void *stream) {
    encoder_backward((float *)dwte, (float *)dwpe, dout, inp, B, T, C, stream);
}

/* ---------------------------------------------------------------------------------------- */
/* LayerNorm                                                                                 */

/* One warp per row; each lane takes packets of P columns (C % P == 0). */
template <int P>
__global__ void layernorm_forward_kernel(floatX *out, float *mean, float *rstd, const floatX *inp,
                                         const floatX *weight, const floatX *bias, int64_t N,
                                         int64_t C) {
    int lane = threadIdx.x % 32;
    int64_t row = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32;
    if (row >= N)
        return;
    const floatX *x = inp + row * C;
    float s = 0.0f, xv[P];
    for (int64_t c = lane * P; c < C; c += 32 * P) {
        cuda_load_f32<P>(xv, x + c);
        for (int j = 0; j < P; j++)
            s += xv[j];
    }
    float m = cuda_warp_sum(s) / (float)C;
    float v = 0.0f;
    for (int64_t c = lane * P; c < C; c += 32 * P) {
        cuda_load_f32<P>(xv, x + c);
        for (int j = 0; j < P; j++)
            v += (xv[j] - m) * (xv[j] - m);
    }
    float var = cuda_warp_sum(v) / (float)C;
    float r = 1.0f / sqrtf(var + LN_EPS);
    floatX *o = out + row * C;
    for (int64_t c = lane * P; c < C; c += 32 * P) {
        float w[P], b[P];
        cuda_load_f32<P>(xv, x + c);
        cuda_load_f32<P>(w, weight + c);
        for (int j = 0; j < P; j++)
            xv[j] = (xv[j] - m) * r * w[j];
        if (bias) {
            cuda_load_f32<P>(b, bias + c);
            for (int j = 0; j < P; j++)
                xv[j] += b[j];
        }
        cuda_store_f32<P>(o + c, xv);
    }
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}

/* Whether a row kernel over (N, C) f16 tensors can take 128-bit packets. */
static int rows_packed(int64_t C, const void *a, const void *b, const void *c, const void *d,
                       const void *e) {
    return C % 8 == 0 && aligned(a) && aligned(b) && aligned(c) && aligned(d) && aligned(e);
}

void cuda_layernorm_forward(void *out, float *mean, float *rstd, const void *inp,
                            const void *weight, const void *bias, int64_t N, int64_t C,
                            void *stream) {
    unsigned blocks = (unsigned)((N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    if (rows_packed(C, out, inp, weight, bias, NULL))
        CUDA_LAUNCH(layernorm_forward_kernel<8>, blocks, 32 * ROWS_PER_BLOCK, 0,
                    cuda_stream(stream), Hm(out), mean, rstd, H(inp), H(weight), H(bias), N, C);
    else
        CUDA_LAUNCH(layernorm_forward_kernel<1>, blocks, 32 * ROWS_PER_BLOCK, 0,
                    cuda_stream(stream), Hm(out), mean, rstd, H(inp), H(weight), H(bias), N, C);
    CUDA_LAUNCH_CHECK();
}

/* dinp += (dnorm - mean(dnorm) - norm * mean(dnorm * norm)) * rstd, dnorm = weight * dout;
 * one warp per row, packets of P columns */
template <int P>
__global__ void layernorm_backward_dinp_kernel(floatX *dinp, const floatX *dout, const floatX *inp,
                                               const floatX *weight, const float *mean,
                                               const float *rstd, int64_t N, int64_t C) {
    int lane = threadIdx.x % 32;
    int64_t row = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32;
    if (row >= N)
        return;
    const floatX *x = inp + row * C, *dy = dout + row * C;
    float m = mean[row], r = rstd[row];
    float a = 0.0f, b = 0.0f, xv[P], w[P], g[P];
    for (int64_t c = lane * P; c < C; c += 32 * P) {
        cuda_load_f32<P>(xv, x + c);
        cuda_load_f32<P>(w, weight + c);
        cuda_load_f32<P>(g, dy + c);
        for (int j = 0; j < P; j++) {
            float dn = w[j] * g[j];
            a += dn;
            b += dn * ((xv[j] - m) * r);
        }
    }
    float dn_mean = cuda_warp_sum(a) / (float)C;
    float dnn_mean = cuda_warp_sum(b) / (float)C;
    floatX *dx = dinp + row * C;
    for (int64_t c = lane * P; c < C; c += 32 * P) {
        float d[P];
        cuda_load_f32<P>(xv, x + c);
        cuda_load_f32<P>(w, weight + c);
        cuda_load_f32<P>(g, dy + c);
        cuda_load_f32<P>(d, dx + c);
        for (int j = 0; j < P; j++) {
            float norm = (xv[j] - m) * r;
            d[j] += (w[j] * g[j] - dn_mean - norm * dnn_mean) * r;
        }
        cuda_store_f32<P>(dx + c, d);
    }
}

#define COL_X 32 /* columns per block */
#define COL_Y 32 /* row groups per block */
/* Blocks the first pass of a column sum aims for: a few per SM on an RTX 4070 (46 SMs) and
 * about two on an H100 (132); a shape-only figure, so the reduction order does not depend on
 * the card. */
#define COL_TARGET_BLOCKS 256

/* Column sums over the rows of one slice (blockIdx.y: rows [y * slice_rows, (y+1) *
 * slice_rows) of N), one block per COL_X columns, in a fixed order (deterministic).
 * with_norm = 0: s0[c] = sum_r dout[r,c].
 * with_norm = 1: s0[c] = sum_r dout[r,c] * (inp[r,c] - mean[r]) * rstd[r]  (LayerNorm weight),
 *                s1[c] = sum_r dout[r,c] (bias; dst1 may be NULL).
 * partial == NULL (one slice): dst0[c] += s0, dst1[c] += s1. Otherwise the slice's sums go to
 * partial[y * C + c] and partial[(slices + y) * C + c], for column_finish_kernel. */
template <typename Tg>
__global__ void column_sums_kernel(Tg *dst0, Tg *dst1, float *partial, const floatX *dout,
                                   const floatX *inp, const float *mean, const float *rstd,
                                   int64_t N, int64_t C, int64_t slice_rows, int with_norm) {
    __shared__ float s0[COL_Y][COL_X + 1];
    __shared__ float s1[COL_Y][COL_X + 1];
    int64_t c = blockIdx.x * (int64_t)COL_X + threadIdx.x;
    int64_t r0 = blockIdx.y * slice_rows, r1 = r0 + slice_rows < N ? r0 + slice_rows : N;
    float a0 = 0.0f, a1 = 0.0f;
    if (c < C) {
        for (int64_t r = r0 + threadIdx.y; r < r1; r += COL_Y) {
            float dy = x2f(dout[r * C + c]);
            if (with_norm) {
                float norm = (x2f(inp[r * C + c]) - mean[r]) * rstd[r];
                a0 += dy * norm;
                a1 += dy;
            } else {
                a0 += dy;
            }
        }
    }
    s0[threadIdx.y][threadIdx.x] = a0;
    s1[threadIdx.y][threadIdx.x] = a1;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float t0 = 0.0f, t1 = 0.0f;
        for (int y = 0; y < COL_Y; y++) {
            t0 += s0[y][threadIdx.x];
            t1 += s1[y][threadIdx.x];
        }
        if (partial) {
            partial[blockIdx.y * C + c] = t0;
            partial[(gridDim.y + blockIdx.y) * C + c] = t1;
        } else {
            cuda_grad_add(&dst0[c], t0);
            if (with_norm && dst1)
                cuda_grad_add(&dst1[c], t1);
        }
    }
}

/* The second pass: each column's slice sums added in slice order, then into the gradient. */
template <typename Tg>
__global__ void column_finish_kernel(Tg *dst0, Tg *dst1, const float *partial, int64_t slices,
                                     int64_t C, int with_norm) {
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < C;
         c += (int64_t)gridDim.x * blockDim.x) {
        float t0 = 0.0f, t1 = 0.0f;
        for (int64_t y = 0; y < slices; y++) {
            t0 += partial[y * C + c];
            t1 += partial[(slices + y) * C + c];
        }
        cuda_grad_add(&dst0[c], t0);
        if (with_norm && dst1)
            cuda_grad_add(&dst1[c], t1);
    }
}

/* dst0 (and dst1) += the column sums of column_sums_kernel. Enough row slices that the first
 * pass has about COL_TARGET_BLOCKS blocks, their sums in the backend workspace (2 x slices x C
 * floats); one slice (one pass) when there is no workspace or it is too small. */
template <typename Tg>
static void column_sums(Tg *dst0, Tg *dst1, const floatX *dout, const floatX *inp,
                        const float *mean, const float *rstd, int64_t N, int64_t C, int with_norm,
                        cudaStream_t s) {
    int64_t col_blocks = (C + COL_X - 1) / COL_X;
    int64_t slices = (COL_TARGET_BLOCKS + col_blocks - 1) / col_blocks;
    int64_t max_slices = (N + COL_Y - 1) / COL_Y; /* at least COL_Y rows a slice */
    slices = slices < max_slices ? slices : max_slices;
    size_t ws_bytes = 0;
    float *partial = (float *)cuda_workspace(&ws_bytes);
    if (!partial || (size_t)(2 * slices * C) * sizeof(float) > ws_bytes || slices < 2) {
        slices = 1;
        partial = NULL;
    }
    int64_t slice_rows = (N + slices - 1) / slices;
    dim3 grid((unsigned)col_blocks, (unsigned)slices), cb(COL_X, COL_Y);
    CUDA_LAUNCH(column_sums_kernel<Tg>, grid, cb, 0, s, dst0, dst1, partial, dout, inp, mean, rstd,
                N, C, slice_rows, with_norm);
    CUDA_LAUNCH_CHECK();
    if (partial) {
        CUDA_LAUNCH(column_finish_kernel<Tg>, cuda_blocks_for(C, 256), 256, 0, s, dst0, dst1,
                    partial, slices, C, with_norm);
        CUDA_LAUNCH_CHECK();
    }
}

template <typename Tg>
static void layernorm_backward(void *dinp, Tg *dweight, Tg *dbias, const void *dout,
                               const void *inp, const void *weight, const float *mean,
                               const float *rstd, int64_t N, int64_t C, void *stream) {
    cudaStream_t s = cuda_stream(stream);
    unsigned blocks = (unsigned)((N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    if (rows_packed(C, dinp, dout, inp, weight, NULL))
        CUDA_LAUNCH(layernorm_backward_dinp_kernel<8>, blocks, 32 * ROWS_PER_BLOCK, 0, s, Hm(dinp),
                    H(dout), H(inp), H(weight), mean, rstd, N, C);
    else
        CUDA_LAUNCH(layernorm_backward_dinp_kernel<1>, blocks, 32 * ROWS_PER_BLOCK, 0, s, Hm(dinp),
                    H(dout), H(inp), H(weight), mean, rstd, N, C);
    CUDA_LAUNCH_CHECK();
    column_sums<Tg>(dweight, dbias, H(dout), H(inp), mean, rstd, N, C, 1, s);
}

void cuda_layernorm_backward(void *dinp, void *dweight, void *dbias, const void *dout,
                             const void *inp, const void *weight, const float *mean,
                             const float *rstd, int64_t N, int64_t C, void *stream) {
    layernorm_backward(dinp, Hm(dweight), Hm(dbias), dout, inp, weight, mean, rstd, N, C, stream);
}

void cuda_layernorm_backward_g32(void *dinp, void *dweight, void *dbias, const void *dout,
                                 const void *inp, const void *weight, const float *mean,
                                 const float *rstd, int64_t N, int64_t C, void *stream) {
    layernorm_backward(dinp, (float *)dweight, (float *)dbias, dout, inp, weight, mean, rstd, N, C,
                       stream);
}

void cuda_bias_backward(floatX *dbias, const floatX *dout, int64_t N, int64_t OC,
                        cudaStream_t stream) {
    column_sums<floatX>(dbias, (floatX *)NULL, dout, NULL, NULL, NULL, N, OC, 0, stream);
}

void cuda_bias_backward_f32(float *dbias, const floatX *dout, int64_t N, int64_t OC,
                            cudaStream_t stream) {
    column_sums<float>(dbias, (float *)NULL, dout, NULL, NULL, NULL, N, OC, 0, stream);
}

/* out[r, c] += bias[c]; P values per access (OC % P == 0: a packet is in one row) */
template <int P>
__global__ void bias_add_kernel(floatX *out, const floatX *bias, int64_t N, int64_t OC) {
    int64_t n = N * OC;
    FOR_PACKETS(i, n, P) {
        float a[P], b[P];
        cuda_load_f32<P>(a, out + i);
        cuda_load_f32<P>(b, bias + i % OC);
        for (int j = 0; j < P; j++)
            a[j] += b[j];
        cuda_store_f32<P>(out + i, a);
    }
}

void cuda_bias_add(floatX *out, const floatX *bias, int64_t N, int64_t OC, cudaStream_t stream) {
    if (OC % 8 == 0 && aligned(out) && aligned(bias))
        CUDA_LAUNCH(bias_add_kernel<8>, cuda_blocks_for(N * OC / 8, 256), 256, 0, stream, out, bias,
                    N, OC);
    else
        CUDA_LAUNCH(bias_add_kernel<1>, cuda_blocks_for(N * OC, 256), 256, 0, stream, out, bias, N,
                    OC);
    CUDA_LAUNCH_CHECK();
}

/* ---------------------------------------------------------------------------------------- */
/* GELU                                                                                      */

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_CUBIC 0.044715f
#define INV_SQRT2 0.7071067811865476f
#define INV_SQRT_2PI 0.3989422804014327f

__device__ __forceinline__ float gelu_f(float x, int erf_kind) {
    if (erf_kind)
        return 0.5f * x * (1.0f + erff(x * INV_SQRT2));
    float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
}

__device__ __forceinline__ float gelu_grad_f(float x, int erf_kind) {
    if (erf_kind)
        return 0.5f * (1.0f + erff(x * INV_SQRT2)) + x * INV_SQRT_2PI * expf(-0.5f * x * x);
    float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
    float t = tanhf(u);
    float du = GELU_SCALE * (1.0f + 3.0f * GELU_CUBIC * x * x);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}

/* out = gelu(inp) over n values: packets of P, then the n % P values left */
template <int P>
__global__ void gelu_forward_kernel(floatX *out, const floatX *inp, int64_t n, int erf_kind) {
    FOR_PACKETS(i, n, P) {
        float x[P];
        cuda_load_f32<P>(x, inp + i);
        for (int j = 0; j < P; j++)
            x[j] = gelu_f(x[j], erf_kind);
        cuda_store_f32<P>(out + i, x);
    }
    FOR_TAIL(i, n, P) { out[i] = f2x<floatX>(gelu_f(x2f(inp[i]), erf_kind)); }
}

/* dinp = gelu'(inp) * dout (overwrites) */
template <int P>
__global__ void gelu_backward_kernel(floatX *dinp, const floatX *inp, const floatX *dout, int64_t n,
                                     int erf_kind) {
    FOR_PACKETS(i, n, P) {
        float x[P], dy[P];
        cuda_load_f32<P>(x, inp + i);
        cuda_load_f32<P>(dy, dout + i);
        for (int j = 0; j < P; j++)
            x[j] = gelu_grad_f(x[j], erf_kind) * dy[j];
        cuda_store_f32<P>(dinp + i, x);
    }
    FOR_TAIL(i, n, P) { dinp[i] = f2x<floatX>(gelu_grad_f(x2f(inp[i]), erf_kind) * x2f(dout[i])); }
}

void cuda_gelu_forward(void *out, const void *inp, int64_t N, int gelu, void *stream) {
    if (aligned(out) && aligned(inp))
        CUDA_LAUNCH(gelu_forward_kernel<8>, cuda_blocks_for((N + 7) / 8, 256), 256, 0,
                    cuda_stream(stream), Hm(out), H(inp), N, gelu);
    else
        CUDA_LAUNCH(gelu_forward_kernel<1>, cuda_blocks_for(N, 256), 256, 0, cuda_stream(stream),
                    Hm(out), H(inp), N, gelu);
    CUDA_LAUNCH_CHECK();
}

void cuda_gelu_backward(void *dinp, const void *inp, const void *dout, int64_t N, int gelu,
                        void *stream) {
    if (aligned(dinp) && aligned(inp) && aligned(dout))
        CUDA_LAUNCH(gelu_backward_kernel<8>, cuda_blocks_for((N + 7) / 8, 256), 256, 0,
                    cuda_stream(stream), Hm(dinp), H(inp), H(dout), N, gelu);
    else
        CUDA_LAUNCH(gelu_backward_kernel<1>, cuda_blocks_for(N, 256), 256, 0, cuda_stream(stream),
                    Hm(dinp), H(inp), H(dout), N, gelu);
    CUDA_LAUNCH_CHECK();
}

} // namespace CUDA_X_NS
