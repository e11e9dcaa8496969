/* test_cudasim.cc: the CUDA simulator's own tests (tests/cudasim/): each intrinsic against
 * what CUDA defines, the sm_89 launch limits, barrier divergence and warp-mask errors named
 * with their kernel, the adversarial schedule (a kernel missing its barrier gives a wrong
 * result, the same kernel with the barrier the right one), and the simulated device memory
 * (copy kinds checked, memory info, properties, the static shared size of a kernel, no NVML),
 * and the toolkit's half type on the host (rounding to nearest even, its operators); the
 * tensor-core primitives of model/cuda/cuda_mma.cuh (mma.m16n8k16 f16 and bf16, ldmatrix
 * x1/x2/x4 with and without .trans, cp.async) against scalar references built from the PTX
 * ISA's fragment tables, and their refusals (a lane missing, lanes at different shapes, a
 * misaligned row address, a read of cp.async's destination before the wait); streams and
 * events (a created stream's work has not happened before a wait and has after it, a wait runs
 * exactly the work up to the event's record, the legacy stream runs blocking streams' work but
 * not non-blocking ones', launches copy their arguments, cudaFree runs queued work first,
 * pageable host copies are staged, bad handles and flags are refused, a cuBLAS GEMM is its
 * stream's work).
 *
 * C++ because the kernels are written here, compiled like the backend's .cu files against the
 * simulator's cuda_runtime.h. */
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "model/cuda/cuda_mma.cuh" /* the tensor-core primitives, as the kernels call them */
#include <cublas_v2.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

extern "C" { /* Debian's cmocka 1.1.5 header has no C++ linkage of its own */
#include <cmocka.h>
}

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" void cudasim_fault_clear(void);

/* launch error, and the message of that error naming the kernel */
static void expect_refused(cudaError_t want, const char *kernel) {
    cudaError_t e = cudaGetLastError();
    assert_int_equal(e, want);
    const char *msg = cudaGetErrorString(e);
    if (!strstr(msg, kernel))
        fail_msg("error '%s' does not name %s", msg, kernel);
    assert_int_equal(cudaGetLastError(), cudaSuccess); /* not sticky */
}

/* a device fault: sticky, named, then cleared for the next test */
static void expect_fault(const char *kernel, const char *what) {
    cudaError_t e = cudaGetLastError();
    assert_int_equal(e, cudaErrorLaunchFailure);
    const char *msg = cudaGetErrorString(e);
    if (!strstr(msg, kernel) || !strstr(msg, what))
        fail_msg("error '%s' does not name %s and '%s'", msg, kernel, what);
    assert_int_equal(cudaDeviceSynchronize(), cudaErrorLaunchFailure); /* sticky */
    cudasim_fault_clear();
}

template <typename T> static T *dev_alloc(size_t n) {
    void *p = NULL;
    assert_int_equal(cudaMalloc(&p, n * sizeof(T)), cudaSuccess);
    return (T *)p;
}

/* ------------------------------------------------------------------------------------- */
/* kernels                                                                               */

#define RACE_THREADS 256

/* out[i] = the value thread i+1 wrote (wrapping); with sync = 0 the barrier is missing */
__global__ void neighbour_kernel(int *out, int salt, int sync) {
    __shared__ int s[RACE_THREADS];
    int i = threadIdx.x;
    s[i] = i * 7 + salt;
    if (sync)
        __syncthreads();
    out[i] = s[(i + 1) % RACE_THREADS];
}

__global__ void warp_ops_kernel(float *sum, int *bcast, int *up, int *down, int *seg,
                                unsigned *ballot, int *any, int *all) {
    int lane = threadIdx.x % 32;
    float v = (float)(threadIdx.x + 1);
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    sum[threadIdx.x] = v;
    bcast[threadIdx.x] = __shfl_sync(0xffffffffu, (int)threadIdx.x * 3, 5);
    up[threadIdx.x] = __shfl_up_sync(0xffffffffu, (int)threadIdx.x, 3);
    down[threadIdx.x] = __shfl_down_sync(0xffffffffu, (int)threadIdx.x, 2);
    seg[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 4, 8);
    ballot[threadIdx.x] = __ballot_sync(0xffffffffu, lane % 3 == 0);
    any[threadIdx.x] = __any_sync(0xffffffffu, lane == 7);
    all[threadIdx.x] = __all_sync(0xffffffffu, lane < 31);
}

/* lanes 0..15 shuffle among themselves with a half mask; the others do not take part */
__global__ void half_mask_kernel(int *out) {
    int lane = threadIdx.x % 32;
    out[threadIdx.x] = -1;
    if (lane < 16)
        out[threadIdx.x] = __shfl_xor_sync(0x0000ffffu, lane, 1);
}

__global__ void block_votes_kernel(int *out, int k) {
    int t = threadIdx.x;
    out[0 * blockDim.x + t] = __syncthreads_or(t == k);
    out[1 * blockDim.x + t] = __syncthreads_and(t != k);
    out[2 * blockDim.x + t] = __syncthreads_count(t % 4 == 0);
}

__global__ void atomic_kernel(int *count, float *fsum, unsigned *hi, int *lo, int *owner,
                              int *last) {
    int t = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    atomicAdd(count, 1);
    atomicAdd(fsum, 0.5f);
    atomicMax((int *)hi, t);
    atomicMin(lo, t + 5);
    atomicCAS(owner, -1, t); /* only the first thread to come sees -1 */
    atomicExch(last, 1);
    __syncwarp(); /* a warp barrier over the full mask */
}

/* dynamic shared memory: row = blockIdx.y; each thread writes its slot, reads the mirror */
__global__ void dynamic_shared_kernel(float *out, float *unwritten, int n) {
    CUDA_DYNAMIC_SHARED(float, buf);
    int t = threadIdx.x + threadIdx.y * blockDim.x;
    buf[t] = (float)(t + 100 * blockIdx.y);
    __syncthreads();
    out[blockIdx.y * n + t] = buf[n - 1 - t];
    if (t == 0)
        unwritten[blockIdx.y] = buf[n]; /* one past what the threads wrote, inside the launch's */
}

__global__ void empty_kernel(int *p) {
    if (p)
        p[threadIdx.x] = 1;
}

#define BIG_STATIC 4096
__global__ void static_shared_kernel(float *out) {
    __shared__ float big[BIG_STATIC / sizeof(float)];
    big[threadIdx.x] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = big[0];
}

__global__ void divergent_kernel(int *out) {
    if (threadIdx.x == 3)
        return;
    __syncthreads();
    out[threadIdx.x] = 1;
}

__global__ void lane_exits_kernel(float *out) {
    if (threadIdx.x == 5)
        return;
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}

__global__ void mixed_barrier_kernel(int *out) {
    if (threadIdx.x < 32)
        __syncthreads();
    else
        out[threadIdx.x] = __syncthreads_or(1);
}

__global__ void index_kernel(int *out) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    int w = gridDim.x * blockDim.x;
    out[y * w + x] = y * 1000 + x;
}

/* --- tensor-core primitives ----------------------------------------------------------- */
/* the PTX ISA's fragment tables for mma.m16n8k16 (f16/bf16 inputs, f32 accumulate), written
 * out per element here, independently of the simulator's gather (groupID g = lane >> 2,
 * threadID_in_group t = lane % 4) */
__device__ static int frag_a_row(int lane, int i) { return (lane >> 2) + ((i % 4) >= 2 ? 8 : 0); }
__device__ static int frag_a_col(int lane, int i) {
    return 2 * (lane & 3) + (i & 1) + (i >= 4 ? 8 : 0);
}
__device__ static int frag_b_row(int lane, int i) {
    return 2 * (lane & 3) + (i & 1) + (i >= 2 ? 8 : 0);
}
__device__ static int frag_c_row(int lane, int i) { return (lane >> 2) + (i >= 2 ? 8 : 0); }
__device__ static int frag_c_col(int lane, int i) { return 2 * (lane & 3) + (i & 1); }

template <typename T16> __device__ static uint32_t pack2(T16 lo, T16 hi) {
    uint16_t l, h;
    memcpy(&l, &lo, 2);
    memcpy(&h, &hi, 2);
    return (uint32_t)l | ((uint32_t)h << 16);
}

/* D (16x8) = A (16x16 row-major) * B (16x8 row-major) + C, one warp, registers filled from
 * global memory element by element by the table */
template <typename T16>
__global__ void mma_table_kernel(float *D, const T16 *A, const T16 *B, const float *C) {
    int l = threadIdx.x;
    uint32_t a[4], b[2];
    float c[4], d[4];
    for (int r = 0; r < 4; r++)
        a[r] = pack2(A[frag_a_row(l, 2 * r) * 16 + frag_a_col(l, 2 * r)],
                     A[frag_a_row(l, 2 * r + 1) * 16 + frag_a_col(l, 2 * r + 1)]);
    for (int r = 0; r < 2; r++)
        b[r] = pack2(B[frag_b_row(l, 2 * r) * 8 + (l >> 2)],
                     B[frag_b_row(l, 2 * r + 1) * 8 + (l >> 2)]);
    for (int i = 0; i < 4; i++)
        c[i] = C[frag_c_row(l, i) * 8 + frag_c_col(l, i)];
    mma_m16n8k16<T16>(d, a, b, c);
    for (int i = 0; i < 4; i++)
        D[frag_c_row(l, i) * 8 + frag_c_col(l, i)] = d[i];
}

/* ldmatrix of num 8x8 matrices of `src` (num*64 elements, matrix m row r at (8m + r) * 8),
 * through shared memory rows `pitch` elements apart; out[lane * 4 + m] = register m. (Not a
 * template: g++ ignores the section attribute of a template's static locals, so the simulator
 * would not see such a __shared__ array as shared memory.) */
__global__ void ldmatrix_kernel(uint32_t *out, const uint16_t *src, int pitch, int misalign,
                                int num, int trans) {
    __shared__ __align__(16) uint16_t s[4 * 8 * 24];
    int l = threadIdx.x;
    for (int i = l; i < num * 64; i += 32)
        s[(i / 8) * pitch + i % 8] = src[i];
    __syncwarp();
    uint32_t r[4] = {0, 0, 0, 0};
    const uint16_t *row = s + (l % (8 * num)) * pitch + (l == 9 ? misalign : 0);
    if (num == 1)
        trans ? ldmatrix_x1_trans(r, row) : ldmatrix_x1(r, row);
    else if (num == 2)
        trans ? ldmatrix_x2_trans(r, row) : ldmatrix_x2(r, row);
    else
        trans ? ldmatrix_x4_trans(r, row) : ldmatrix_x4(r, row);
    for (int m = 0; m < 4; m++)
        out[l * 4 + m] = r[m];
}

/* the flash kernels' use: A (16x16) row-major in shared memory by ldmatrix_x4; Bn (8 rows n,
 * 16 k each: Kᵀ's layout) by ldmatrix_x2; Bk (16 rows k, 8 n each: V's layout) by
 * ldmatrix_x2_trans. D1 = A Bnᵀ, D2 = A Bk, stored by the C table. Rows are 24 elements
 * (48 bytes) apart, a padded pitch. */
__global__ void ldmatrix_mma_kernel(float *D1, float *D2, const __half *A, const __half *Bn,
                                    const __half *Bk) {
    __shared__ __align__(16) __half sa[16 * 24], sn[8 * 24], sk[16 * 24];
    int l = threadIdx.x;
    for (int i = l; i < 256; i += 32)
        sa[(i / 16) * 24 + i % 16] = A[i];
    for (int i = l; i < 128; i += 32) {
        sn[(i / 16) * 24 + i % 16] = Bn[i];
        sk[(i / 8) * 24 + i % 8] = Bk[i];
    }
    __syncwarp();
    uint32_t a[4], bn[2], bk[2];
    int m = l / 8, r = l % 8;
    ldmatrix_x4(a, sa + ((m & 1) * 8 + r) * 24 + (m >> 1) * 8);
    ldmatrix_x2(bn, sn + r * 24 + (m & 1) * 8); /* lanes 16..31: ignored, any valid row */
    ldmatrix_x2_trans(bk, sk + ((m & 1) * 8 + r) * 24);
    float z[4] = {0, 0, 0, 0}, d1[4], d2[4];
    mma_m16n8k16<__half>(d1, a, bn, z);
    mma_m16n8k16<__half>(d2, a, bk, z);
    for (int i = 0; i < 4; i++) {
        D1[frag_c_row(l, i) * 8 + frag_c_col(l, i)] = d1[i];
        D2[frag_c_row(l, i) * 8 + frag_c_col(l, i)] = d2[i];
    }
}

/* lane 7 leaves before the mma (missing = 1), or lanes 16..31 ask for bf16 (missing = 0) */
__global__ void mma_divergent_kernel(float *out, int missing) {
    uint32_t a[4] = {0, 0, 0, 0}, b[2] = {0, 0};
    float c[4] = {0, 0, 0, 0};
    if (missing && threadIdx.x == 7)
        return;
    if (threadIdx.x < 16 || missing)
        mma_m16n8k16<__half>(c, a, b, c);
    else
        mma_m16n8k16<__nv_bfloat16>(c, a, b, c);
    out[threadIdx.x] = c[0];
}

/* cp.async: each thread copies 16 bytes; before[i] is shared memory read before the wait
 * (stale: the 0x7e7e fill), after[i] after wait + barrier (the copy) */
__global__ void cp_async_kernel(uint16_t *before, uint16_t *after, const uint16_t *src,
                                int src_offset) {
    __shared__ __align__(16) uint16_t s[64 * 8];
    int t = threadIdx.x;
    for (int i = 0; i < 8; i++)
        s[t * 8 + i] = 0x7e7e;
    __syncthreads();
    cp_async_16(s + t * 8, src + t * 8 + src_offset);
    for (int i = 0; i < 8; i++)
        before[t * 8 + i] = s[t * 8 + i];
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    for (int i = 0; i < 8; i++)
        after[t * 8 + i] = s[((t + 1) % 64) * 8 + i]; /* a neighbour's copy, after the barrier */
}

/* two groups: wait<1> completes the first (always); the second may or may not have landed */
__global__ void cp_async_groups_kernel(uint16_t *first, const uint16_t *src) {
    __shared__ __align__(16) uint16_t s[2 * 32 * 8];
    int t = threadIdx.x;
    cp_async_16(s + t * 8, src + t * 8);
    cp_async_commit();
    cp_async_16(s + 256 + t * 8, src + 256 + t * 8);
    cp_async_commit();
    cp_async_wait<1>();
    for (int i = 0; i < 8; i++)
        first[t * 8 + i] = s[t * 8 + i];
    cp_async_wait<0>();
}

/* out[0..n) = value (the streams' tests) */
__global__ void fill_kernel(int *out, int n, int value) {
    for (int i = (int)threadIdx.x; i < n; i += (int)blockDim.x)
        out[i] = value;
}

/* ------------------------------------------------------------------------------------- */
/* tests                                                                                 */

static void test_cudasim_missing_barrier_changes_result(void **state) {
    int *d = dev_alloc<int>(RACE_THREADS);
    int h[RACE_THREADS];
    /* many launches: each gets its own order (forward, reverse or shuffled) from the seed */
    for (int launch = 0; launch < 12; launch++) {
        int salt = 1000 * (launch + 1);
        CUDA_LAUNCH(neighbour_kernel, 1, RACE_THREADS, 0, NULL, d, salt, 1);
        assert_int_equal(cudaGetLastError(), cudaSuccess);
        assert_int_equal(cudaMemcpy(h, d, sizeof(h), cudaMemcpyDeviceToHost), cudaSuccess);
        for (int i = 0; i < RACE_THREADS; i++)
            assert_int_equal(h[i], ((i + 1) % RACE_THREADS) * 7 + salt);
        /* without the barrier some thread reads its neighbour's slot before it is written
         * (the value of the previous launch): whatever the order, one read is stale */
        salt += 1;
        CUDA_LAUNCH(neighbour_kernel, 1, RACE_THREADS, 0, NULL, d, salt, 0);
        assert_int_equal(cudaGetLastError(), cudaSuccess);
        assert_int_equal(cudaMemcpy(h, d, sizeof(h), cudaMemcpyDeviceToHost), cudaSuccess);
        int wrong = 0;
        for (int i = 0; i < RACE_THREADS; i++)
            wrong += h[i] != ((i + 1) % RACE_THREADS) * 7 + salt;
        assert_true(wrong > 0);
    }
    assert_int_equal(cudaFree(d), cudaSuccess);
}

static void test_cudasim_warp_intrinsics(void **state) {
    const int n = 64; /* two warps */
    float *sum = dev_alloc<float>(n);
    int *bc = dev_alloc<int>(n), *up = dev_alloc<int>(n), *dn = dev_alloc<int>(n),
        *sg = dev_alloc<int>(n), *an = dev_alloc<int>(n), *al = dev_alloc<int>(n);
    unsigned *bl = dev_alloc<unsigned>(n);
    CUDA_LAUNCH(warp_ops_kernel, 1, n, 0, NULL, sum, bc, up, dn, sg, bl, an, al);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    float hs[64];
    int hb[64], hu[64], hd[64], hg[64], ha[64], hl[64];
    unsigned hbl[64];
    cudaMemcpy(hs, sum, sizeof(hs), cudaMemcpyDeviceToHost);
    cudaMemcpy(hb, bc, sizeof(hb), cudaMemcpyDeviceToHost);
    cudaMemcpy(hu, up, sizeof(hu), cudaMemcpyDeviceToHost);
    cudaMemcpy(hd, dn, sizeof(hd), cudaMemcpyDeviceToHost);
    cudaMemcpy(hg, sg, sizeof(hg), cudaMemcpyDeviceToHost);
    cudaMemcpy(ha, an, sizeof(ha), cudaMemcpyDeviceToHost);
    cudaMemcpy(hl, al, sizeof(hl), cudaMemcpyDeviceToHost);
    cudaMemcpy(hbl, bl, sizeof(hbl), cudaMemcpyDeviceToHost);
    unsigned every_third = 0;
    for (int l = 0; l < 32; l += 3)
        every_third |= 1u << l;
    for (int t = 0; t < n; t++) {
        int w = t / 32, lane = t % 32;
        /* xor butterfly: every lane has the sum of its warp's values 32w+1 .. 32w+32 */
        assert_true(hs[t] == (float)(32 * 32 * w + 32 * 33 / 2));
        assert_int_equal(hb[t], (32 * w + 5) * 3);          /* from lane 5 */
        assert_int_equal(hu[t], lane >= 3 ? t - 3 : t);     /* own value below delta */
        assert_int_equal(hd[t], lane + 2 < 32 ? t + 2 : t); /* own value past the end */
        assert_int_equal(hg[t], 32 * w + (lane ^ 4));       /* within groups of 8 */
        assert_int_equal(hbl[t], every_third);
        assert_int_equal(ha[t], 1);
        assert_int_equal(hl[t], 0);
    }
    int *hm = dev_alloc<int>(n), hh[64];
    CUDA_LAUNCH(half_mask_kernel, 1, n, 0, NULL, hm);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    cudaMemcpy(hh, hm, sizeof(hh), cudaMemcpyDeviceToHost);
    for (int t = 0; t < n; t++)
        assert_int_equal(hh[t], t % 32 < 16 ? (t % 32) ^ 1 : -1);
    cudaFree(sum), cudaFree(bc), cudaFree(up), cudaFree(dn), cudaFree(sg), cudaFree(an),
        cudaFree(al), cudaFree(bl), cudaFree(hm);
}

static void test_cudasim_block_reductions_and_atomics(void **state) {
    const int n = 96;
    int *d = dev_alloc<int>(3 * n), h[3 * 96];
    for (int k = 0; k <= n; k += n) { /* k = n: no thread is k */
        CUDA_LAUNCH(block_votes_kernel, 1, n, 0, NULL, d, k);
        assert_int_equal(cudaGetLastError(), cudaSuccess);
        cudaMemcpy(h, d, sizeof(h), cudaMemcpyDeviceToHost);
        for (int t = 0; t < n; t++) {
            assert_int_equal(h[t], k < n);
            assert_int_equal(h[n + t], k >= n);
            assert_int_equal(h[2 * n + t], n / 4);
        }
    }
    int *cnt = dev_alloc<int>(1), *lo = dev_alloc<int>(1), *own = dev_alloc<int>(1),
        *last = dev_alloc<int>(1);
    float *fs = dev_alloc<float>(1);
    unsigned *hi = dev_alloc<unsigned>(1);
    cudaMemset(cnt, 0, sizeof(int));
    cudaMemset(fs, 0, sizeof(float));
    cudaMemset(hi, 0, sizeof(unsigned));
    cudaMemset(lo, 0x7f, sizeof(int));
    cudaMemset(own, 0xff, sizeof(int)); /* -1 */
    cudaMemset(last, 0, sizeof(int));
    CUDA_LAUNCH(atomic_kernel, 7, 64, 0, NULL, cnt, fs, hi, lo, own, last);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    int hlo, hown, hlast;
    cudaMemcpy(&hlo, lo, sizeof(int), cudaMemcpyDeviceToHost);
    cudaMemcpy(&hown, own, sizeof(int), cudaMemcpyDeviceToHost);
    cudaMemcpy(&hlast, last, sizeof(int), cudaMemcpyDeviceToHost);
    assert_int_equal(hlo, 5);
    assert_true(hown >= 0 && hown < 64); /* some thread of the first block won */
    assert_int_equal(hlast, 1);
    int hc;
    float hf;
    unsigned hh;
    cudaMemcpy(&hc, cnt, sizeof(hc), cudaMemcpyDeviceToHost);
    cudaMemcpy(&hf, fs, sizeof(hf), cudaMemcpyDeviceToHost);
    cudaMemcpy(&hh, hi, sizeof(hh), cudaMemcpyDeviceToHost);
    assert_int_equal(hc, 7 * 64);
    assert_true(hf == 0.5f * 7 * 64);
    assert_int_equal(hh, 7 * 64 - 1);
    cudaFree(d), cudaFree(cnt), cudaFree(fs), cudaFree(hi), cudaFree(lo), cudaFree(own),
        cudaFree(last);
}

static void test_cudasim_dynamic_shared_and_indexing(void **state) {
    const int bx = 8, by = 4, n = bx * by, rows = 3;
    float *out = dev_alloc<float>(rows * n), *unw = dev_alloc<float>(rows), h[96], hu[3];
    dim3 grid(1, rows), block(bx, by);
    CUDA_LAUNCH(dynamic_shared_kernel, grid, block, (n + 1) * sizeof(float), NULL, out, unw, n);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    cudaMemcpy(h, out, sizeof(h), cudaMemcpyDeviceToHost);
    cudaMemcpy(hu, unw, sizeof(hu), cudaMemcpyDeviceToHost);
    for (int r = 0; r < rows; r++) {
        for (int t = 0; t < n; t++)
            assert_true(h[r * n + t] == (float)(n - 1 - t + 100 * r));
        assert_true(isnan(hu[r])); /* shared memory nobody wrote reads as NaN */
    }
    int *o = dev_alloc<int>(6 * 4 * 5), ho[120];
    dim3 g2(3, 2), b2(2, 2);
    CUDA_LAUNCH(index_kernel, g2, b2, 0, NULL, o);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    cudaMemcpy(ho, o, 6 * 4 * sizeof(int), cudaMemcpyDeviceToHost);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 6; x++)
            assert_int_equal(ho[y * 6 + x], y * 1000 + x);
    cudaFree(out), cudaFree(unw), cudaFree(o);
}

static void test_cudasim_launch_limits(void **state) {
    CUDA_LAUNCH(empty_kernel, 1, 1025, 0, NULL, (int *)NULL);
    expect_refused(cudaErrorInvalidConfiguration, "empty_kernel");
    CUDA_LAUNCH(empty_kernel, 1, dim3(32, 1, 65), 0, NULL, (int *)NULL);
    expect_refused(cudaErrorInvalidConfiguration, "empty_kernel");
    CUDA_LAUNCH(empty_kernel, dim3(1, 65536), 32, 0, NULL, (int *)NULL);
    expect_refused(cudaErrorInvalidConfiguration, "empty_kernel");
    CUDA_LAUNCH(empty_kernel, 0, 32, 0, NULL, (int *)NULL);
    expect_refused(cudaErrorInvalidConfiguration, "empty_kernel");
    /* 1024 threads and 48 KiB of dynamic shared memory are allowed ... */
    CUDA_LAUNCH(empty_kernel, 2, 1024, 48 * 1024, NULL, (int *)NULL);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    /* ... but static + dynamic over 48 KiB is not: the static part counts */
    cudaFuncAttributes fa;
    assert_int_equal(cudaFuncGetAttributes(&fa, (const void *)static_shared_kernel), cudaSuccess);
    assert_int_equal(fa.sharedSizeBytes, BIG_STATIC);
    assert_int_equal(cudaFuncGetAttributes(&fa, (const void *)empty_kernel), cudaSuccess);
    assert_int_equal(fa.sharedSizeBytes, 0);
    float *o = dev_alloc<float>(32);
    CUDA_LAUNCH(static_shared_kernel, 1, 32, 48 * 1024 - BIG_STATIC, NULL, o);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    CUDA_LAUNCH(static_shared_kernel, 1, 32, 48 * 1024 - BIG_STATIC + 4, NULL, o);
    expect_refused(cudaErrorInvalidValue, "static_shared_kernel");
    cudaFree(o);
}

static void test_cudasim_divergence_is_reported(void **state) {
    int *d = dev_alloc<int>(64);
    CUDA_LAUNCH(divergent_kernel, 1, 64, 0, NULL, d);
    expect_fault("divergent_kernel", "barrier divergence");
    CUDA_LAUNCH(lane_exits_kernel, 1, 32, 0, NULL, (float *)d);
    expect_fault("lane_exits_kernel", "exited");
    CUDA_LAUNCH(mixed_barrier_kernel, 1, 64, 0, NULL, d);
    expect_fault("mixed_barrier_kernel", "__syncthreads_or");
    /* after a fault every call fails until cleared; a clean launch then works again */
    CUDA_LAUNCH(empty_kernel, 1, 32, 0, NULL, d);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    cudaFree(d);
}

static void test_cudasim_memory(void **state) {
    size_t free0, total;
    assert_int_equal(cudaMemGetInfo(&free0, &total), cudaSuccess);
    cudaDeviceProp p;
    assert_int_equal(cudaGetDeviceProperties(&p, 0), cudaSuccess);
    assert_non_null(strstr(p.name, "simulated"));
    assert_int_equal(p.major * 10 + p.minor, 89);
    assert_true(p.totalGlobalMem == total);
    /* an allocation shows in the free count, rounded up to the 2 MiB granule */
    void *a = NULL;
    assert_int_equal(cudaMalloc(&a, 3 << 20), cudaSuccess);
    size_t free1;
    cudaMemGetInfo(&free1, &total);
    assert_true(free0 - free1 == (size_t)4 << 20);
    /* copies check each side */
    char host[64] = {0};
    assert_int_equal(cudaMemcpy(host, a, sizeof(host), cudaMemcpyHostToDevice),
                     cudaErrorInvalidValue);
    assert_int_equal(cudaGetLastError(), cudaErrorInvalidValue);
    assert_int_equal(cudaMemcpy(a, host, sizeof(host), cudaMemcpyDeviceToHost),
                     cudaErrorInvalidValue);
    cudaGetLastError();
    /* a range running past the allocation's end */
    assert_int_equal(cudaMemcpy((char *)a + (3 << 20) - 8, host, 16, cudaMemcpyHostToDevice),
                     cudaErrorInvalidValue);
    cudaGetLastError();
    assert_int_equal(cudaMemcpy(a, host, sizeof(host), cudaMemcpyHostToDevice), cudaSuccess);
    assert_int_equal(cudaMemcpy(host, a, sizeof(host), cudaMemcpyDefault), cudaSuccess);
    /* more than the card has */
    void *b = NULL;
    assert_int_equal(cudaMalloc(&b, total), cudaErrorMemoryAllocation);
    assert_null(b);
    assert_non_null(strstr(cudaGetErrorString(cudaGetLastError()), "free"));
    assert_int_equal(cudaFree(host), cudaErrorInvalidValue);
    cudaGetLastError();
    assert_int_equal(cudaFree(a), cudaSuccess);
    cudaMemGetInfo(&free1, &total);
    assert_true(free1 == free0);
}

/* The toolkit's cuda_fp16.h on the host: conversions round to nearest even, as on the GPU,
 * and its operators are the f32 operation rounded once (exact for these operands' products
 * and sums, which f32 holds exactly). */
static uint16_t half_bits(__half h) {
    uint16_t b;
    memcpy(&b, &h, sizeof b);
    return b;
}

static void test_cudasim_half_on_host(void **state) {
    assert_int_equal(half_bits(__float2half_rn(1.0f)), 0x3c00);
    assert_int_equal(half_bits(__float2half_rn(1.0f + 1.0f / 2048)), 0x3c00); /* tie: even */
    assert_int_equal(half_bits(__float2half_rn(1.0f + 3.0f / 2048)), 0x3c02); /* tie: even */
    assert_int_equal(half_bits(__float2half_rn(1.0f + 3.0f / 4096)), 0x3c01); /* nearest */
    assert_int_equal(half_bits(__float2half_rn(65504.0f)), 0x7bff);           /* largest */
    assert_int_equal(half_bits(__float2half_rn(65520.0f)), 0x7c00);           /* tie: inf */
    assert_int_equal(half_bits(__float2half_rn(-65520.0f)), 0xfc00);
    assert_int_equal(half_bits(__float2half_rn(5.9604645e-8f)), 0x0001); /* 2^-24 subnormal */
    assert_int_equal(half_bits(__float2half_rn(2.9802322e-8f)), 0x0000); /* 2^-25: tie to 0 */
    assert_int_equal(half_bits(__float2half_rn(-0.0f)), 0x8000);
    assert_true(isnan(__half2float(__float2half_rn(NAN))));
    assert_true(__half2float(__ushort_as_half(0x3555)) == 0.333251953125f);
    __half a = __float2half_rn(1.5f), b = __float2half_rn(2.25f);
    assert_true(__half2float(a * b) == 3.375f);
    assert_true(__half2float(a + b) == 3.75f);
    assert_true(__half2float(b - a) == 0.75f);
    assert_true(__half2float(b / a) == 1.5f);
    assert_true(a < b && !(b < a));
    /* an f16 sum that must round: 2048 + 1 is a tie between 2048 and 2050, to even 2048 */
    assert_true(__half2float(__float2half_rn(2048.0f) + __float2half_rn(1.0f)) == 2048.0f);
}

/* The toolkit's cuda_bf16.h on the host, as cuda_fp16.h above: 8 significant bits, f32's
 * exponent range; conversions round to nearest even, NaN stays NaN, the operators are the f32
 * operation rounded once. */
static uint16_t bf16_raw(__nv_bfloat16 h) {
    uint16_t b;
    memcpy(&b, &h, sizeof b);
    return b;
}

static void test_cudasim_bf16_on_host(void **state) {
    assert_int_equal(bf16_raw(__float2bfloat16_rn(1.0f)), 0x3f80);
    assert_int_equal(bf16_raw(__float2bfloat16_rn(1.0f + 1.0f / 256)), 0x3f80); /* tie: even */
    assert_int_equal(bf16_raw(__float2bfloat16_rn(1.0f + 3.0f / 256)), 0x3f82); /* tie: even */
    assert_int_equal(bf16_raw(__float2bfloat16_rn(1.0f + 3.0f / 512)), 0x3f81); /* nearest */
    assert_int_equal(bf16_raw(__float2bfloat16_rn(65520.0f)), 0x4780); /* finite: f32's range */
    assert_int_equal(bf16_raw(__float2bfloat16_rn(3.3895314e38f)), 0x7f7f); /* largest */
    assert_int_equal(bf16_raw(__float2bfloat16_rn(3.4028235e38f)), 0x7f80); /* rounds to inf */
    assert_int_equal(bf16_raw(__float2bfloat16_rn(-INFINITY)), 0xff80);
    assert_int_equal(bf16_raw(__float2bfloat16_rn(9.1835496e-41f)), 0x0001); /* 2^-133 */
    assert_int_equal(bf16_raw(__float2bfloat16_rn(-0.0f)), 0x8000);
    assert_true(isnan(__bfloat162float(__float2bfloat16_rn(NAN))));
    assert_true(__bfloat162float(__float2bfloat16_rn(0.333333f)) == 0.333984375f);
    __nv_bfloat16 a = __float2bfloat16_rn(1.5f), b = __float2bfloat16_rn(2.25f);
    assert_true(__bfloat162float(a * b) == 3.375f);
    assert_true(__bfloat162float(a + b) == 3.75f);
    assert_true(__bfloat162float(b - a) == 0.75f);
    assert_true(a < b && !(b < a));
    /* a bf16 sum that must round: 256 + 1 is a tie between 256 and 258, to even 256 */
    assert_true(__bfloat162float(__float2bfloat16_rn(256.0f) + __float2bfloat16_rn(1.0f)) ==
                256.0f);
}

/* f16 and bf16 bits of a float (round to nearest even), and back */
static uint16_t f16_bits(float f) { return half_bits(__float2half_rn(f)); }
static float f16_value(uint16_t b) { return __half2float(__ushort_as_half(b)); }
static uint16_t bf16_bits(float f) {
    __nv_bfloat16 h = __float2bfloat16_rn(f);
    uint16_t b;
    memcpy(&b, &h, 2);
    return b;
}
static float bf16_value(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The simulated mma sums exact products in f32 in a fixed order: it may differ from the exact
 * sum by at most one f32 rounding per addition, 16 of them, each <= 2^-24 of the running
 * magnitude (<= |c| + sum |a b|). A GPU's tensor core is within the same kind of bound in
 * another order. */
#define MMA_SUM_ROUNDINGS 17.0
#define F32_HALF_ULP (1.0 / 16777216.0)

static void mma_check(const float *D, const float *A, const float *B, const float *C) {
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 8; j++) {
            double e = C[i * 8 + j], mag = fabs(e);
            for (int k = 0; k < 16; k++) {
                e += (double)A[i * 16 + k] * B[k * 8 + j];
                mag += fabs((double)A[i * 16 + k] * B[k * 8 + j]);
            }
            double tol = MMA_SUM_ROUNDINGS * F32_HALF_ULP * mag;
            if (!(fabs(D[i * 8 + j] - e) <= tol))
                fail_msg("mma D[%d][%d] = %.9g, expected %.9g (tolerance %.3g)", i, j, D[i * 8 + j],
                         e, tol);
        }
}

template <typename T16> static void mma_case(uint16_t (*bits)(float), float (*value)(uint16_t)) {
    uint16_t hA[256], hB[128];
    float fA[256], fB[128], hC[128], hD[128];
    for (int i = 0; i < 256; i++) { /* distinct values: a misplaced element shows */
        hA[i] = bits((float)((i * 37) % 61 - 30) / 16.0f + (float)i / 1024.0f);
        fA[i] = value(hA[i]);
    }
    for (int i = 0; i < 128; i++) {
        hB[i] = bits((float)((i * 53) % 47 - 23) / 8.0f - (float)i / 512.0f);
        fB[i] = value(hB[i]);
        hC[i] = (float)(i % 13) - 6.5f;
    }
    T16 *A = dev_alloc<T16>(256), *B = dev_alloc<T16>(128);
    float *C = dev_alloc<float>(128), *D = dev_alloc<float>(128);
    cudaMemcpy(A, hA, sizeof hA, cudaMemcpyHostToDevice);
    cudaMemcpy(B, hB, sizeof hB, cudaMemcpyHostToDevice);
    cudaMemcpy(C, hC, sizeof hC, cudaMemcpyHostToDevice);
    CUDA_LAUNCH(mma_table_kernel<T16>, 1, 32, 0, NULL, D, (const T16 *)A, (const T16 *)B,
                (const float *)C);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    cudaMemcpy(hD, D, sizeof hD, cudaMemcpyDeviceToHost);
    mma_check(hD, fA, fB, hC);
    cudaFree(A), cudaFree(B), cudaFree(C), cudaFree(D);
}

static void test_cudasim_mma_fragments(void **state) {
    mma_case<__half>(f16_bits, f16_value);
    mma_case<__nv_bfloat16>(bf16_bits, bf16_value);
}

/* every lane's registers of ldmatrix x1/x2/x4, plain and .trans, by the PTX ISA's table */
template <int NUM, bool TRANS> static void ldmatrix_case(const uint16_t *src, int pitch) {
    uint32_t *out = dev_alloc<uint32_t>(128), h[128];
    CUDA_LAUNCH(ldmatrix_kernel, 1, 32, 0, NULL, out, src, pitch, 0, NUM, (int)TRANS);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    cudaMemcpy(h, out, sizeof h, cudaMemcpyDeviceToHost);
    for (int l = 0; l < 32; l++)
        for (int m = 0; m < NUM; m++) {
            int g = l / 4, t = l % 4; /* element (row, col) of matrix m is m*64 + row*8 + col */
            uint32_t lo = TRANS ? m * 64 + (2 * t) * 8 + g : m * 64 + g * 8 + 2 * t;
            uint32_t hi = TRANS ? m * 64 + (2 * t + 1) * 8 + g : m * 64 + g * 8 + 2 * t + 1;
            if (h[l * 4 + m] != (lo | hi << 16))
                fail_msg("ldmatrix x%d%s lane %d register %d: 0x%08x, expected 0x%08x", NUM,
                         TRANS ? ".trans" : "", l, m, h[l * 4 + m], lo | hi << 16);
        }
    cudaFree(out);
}

static void test_cudasim_ldmatrix_layouts(void **state) {
    uint16_t h[256];
    for (int i = 0; i < 256; i++)
        h[i] = (uint16_t)i;
    uint16_t *src = dev_alloc<uint16_t>(256);
    cudaMemcpy(src, h, sizeof h, cudaMemcpyHostToDevice);
    for (int pitch = 8; pitch <= 24; pitch += 16) { /* packed rows and a padded pitch */
        ldmatrix_case<1, false>(src, pitch);
        ldmatrix_case<2, false>(src, pitch);
        ldmatrix_case<4, false>(src, pitch);
        ldmatrix_case<1, true>(src, pitch);
        ldmatrix_case<2, true>(src, pitch);
        ldmatrix_case<4, true>(src, pitch);
    }
    /* a row address off by one element (2 bytes) is refused, naming the lane */
    uint32_t *out = dev_alloc<uint32_t>(128);
    CUDA_LAUNCH(ldmatrix_kernel, 1, 32, 0, NULL, out, (const uint16_t *)src, 8, 1, 4, 0);
    expect_fault("ldmatrix_kernel", "lane 9's row address");
    cudaFree(out), cudaFree(src);
}

/* ldmatrix feeding mma as the flash kernels do: A by x4, Kᵀ-like B by x2, V-like B by
 * x2.trans, against the f64 products of the same f16 values */
static void test_cudasim_ldmatrix_mma(void **state) {
    uint16_t hA[256], hBn[128], hBk[128];
    float fA[256], fBt[128], fBk[128], zero[128] = {0}, hD[128];
    for (int i = 0; i < 256; i++) {
        hA[i] = f16_bits((float)((i * 29) % 31 - 15) / 8.0f);
        fA[i] = f16_value(hA[i]);
    }
    for (int i = 0; i < 128; i++) { /* Bn: row n, column k; as B (k, n) it is Bn[n][k] */
        hBn[i] = f16_bits((float)((i * 17) % 23 - 11) / 4.0f);
        hBk[i] = f16_bits((float)((i * 7) % 19 - 9) / 2.0f);
        fBk[i] = f16_value(hBk[i]);
    }
    for (int k = 0; k < 16; k++)
        for (int n = 0; n < 8; n++)
            fBt[k * 8 + n] = f16_value(hBn[n * 16 + k]);
    __half *A = dev_alloc<__half>(256), *Bn = dev_alloc<__half>(128), *Bk = dev_alloc<__half>(128);
    float *D1 = dev_alloc<float>(128), *D2 = dev_alloc<float>(128);
    cudaMemcpy(A, hA, sizeof hA, cudaMemcpyHostToDevice);
    cudaMemcpy(Bn, hBn, sizeof hBn, cudaMemcpyHostToDevice);
    cudaMemcpy(Bk, hBk, sizeof hBk, cudaMemcpyHostToDevice);
    CUDA_LAUNCH(ldmatrix_mma_kernel, 1, 32, 0, NULL, D1, D2, A, Bn, Bk);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    cudaMemcpy(hD, D1, sizeof hD, cudaMemcpyDeviceToHost);
    mma_check(hD, fA, fBt, zero);
    cudaMemcpy(hD, D2, sizeof hD, cudaMemcpyDeviceToHost);
    mma_check(hD, fA, fBk, zero);
    cudaFree(A), cudaFree(Bn), cudaFree(Bk), cudaFree(D1), cudaFree(D2);
}

static void test_cudasim_mma_divergence(void **state) {
    float *out = dev_alloc<float>(32);
    CUDA_LAUNCH(mma_divergent_kernel, 1, 32, 0, NULL, out, 1);
    expect_fault("mma_divergent_kernel", "exited");
    CUDA_LAUNCH(mma_divergent_kernel, 1, 32, 0, NULL, out, 0);
    expect_fault("mma_divergent_kernel", "shape");
    /* a block of 16 threads has no full warp for an mma */
    CUDA_LAUNCH(mma_divergent_kernel, 1, 16, 0, NULL, out, 0);
    expect_fault("mma_divergent_kernel", "does not have");
    cudaFree(out);
}

static void test_cudasim_cp_async(void **state) {
    uint16_t h[1024], before[512], after[512];
    for (int i = 0; i < 1024; i++)
        h[i] = (uint16_t)(i * 3 + 1);
    uint16_t *src = dev_alloc<uint16_t>(1024), *b = dev_alloc<uint16_t>(512);
    uint16_t *a = dev_alloc<uint16_t>(512);
    cudaMemcpy(src, h, sizeof h, cudaMemcpyHostToDevice);
    CUDA_LAUNCH(cp_async_kernel, 1, 64, 0, NULL, b, a, (const uint16_t *)src, 0);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    cudaMemcpy(before, b, sizeof before, cudaMemcpyDeviceToHost);
    cudaMemcpy(after, a, sizeof after, cudaMemcpyDeviceToHost);
    for (int t = 0; t < 64; t++)
        for (int i = 0; i < 8; i++) {
            assert_int_equal(before[t * 8 + i], 0x7e7e); /* read before the wait: stale */
            assert_int_equal(after[t * 8 + i], h[((t + 1) % 64) * 8 + i]);
        }
    for (int run = 0; run < 4; run++) { /* wait<1>: the older group has always landed */
        CUDA_LAUNCH(cp_async_groups_kernel, 1, 32, 0, NULL, b, (const uint16_t *)src);
        assert_int_equal(cudaGetLastError(), cudaSuccess);
        cudaMemcpy(before, b, 256 * sizeof(uint16_t), cudaMemcpyDeviceToHost);
        for (int i = 0; i < 256; i++)
            assert_int_equal(before[i], h[i]);
    }
    /* a source 8 bytes off the 16-byte alignment is refused */
    CUDA_LAUNCH(cp_async_kernel, 1, 64, 0, NULL, b, a, (const uint16_t *)src, 4);
    expect_fault("cp_async_kernel", "aligned");
    cudaFree(src), cudaFree(a), cudaFree(b);
}

/* NVML is absent on the simulated card, whatever the machine has; other libraries load */
static void test_cudasim_no_nvml(void **state) {
    assert_null(dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL));
    void *m = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
    assert_non_null(m);
    dlclose(m);
}

/* ------------------------------------------------------------------------------------- */
/* streams and events: a created stream's work waits until something waits for it         */

#define SN 32 /* ints per buffer in the streams' tests */

/* 1 when the device buffer d holds SN copies of v (read by cudaMemcpy: a legacy-stream
 * operation, so it runs the blocking streams' queues first, never the non-blocking ones') */
static int dev_all(const int *d, int v) {
    int h[SN];
    assert_int_equal(cudaMemcpy(h, d, sizeof(h), cudaMemcpyDeviceToHost), cudaSuccess);
    for (int i = 0; i < SN; i++)
        if (h[i] != v)
            return 0;
    return 1;
}

static cudaStream_t stream_new(unsigned flags) {
    cudaStream_t s = NULL;
    assert_int_equal(cudaStreamCreateWithFlags(&s, flags), cudaSuccess);
    assert_non_null(s);
    return s;
}

static cudaEvent_t event_new(void) {
    cudaEvent_t e = NULL;
    assert_int_equal(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), cudaSuccess);
    return e;
}

/* a kernel and a memset on a non-blocking stream have not happened before a wait, have after
 * cudaStreamSynchronize; cudaStreamDestroy completes the work left */
static void test_cudasim_stream_deferred_until_sync(void **state) {
    int *d = dev_alloc<int>(SN);
    assert_int_equal(cudaMemset(d, 0, SN * sizeof(int)), cudaSuccess);
    cudaStream_t s = stream_new(cudaStreamNonBlocking);
    assert_int_equal(cudaStreamQuery(s), cudaSuccess); /* nothing queued */
    CUDA_LAUNCH(fill_kernel, 1, 32, 0, s, d, SN, 7);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    assert_true(dev_all(d, 0));
    assert_int_equal(cudaStreamQuery(s), cudaErrorNotReady);
    assert_int_equal(cudaGetLastError(), cudaSuccess); /* not ready is no error */
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    assert_true(dev_all(d, 7));
    assert_int_equal(cudaStreamQuery(s), cudaSuccess);
    assert_int_equal(cudaMemsetAsync(d, 0x01, SN * sizeof(int), s), cudaSuccess);
    assert_true(dev_all(d, 7));
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    assert_true(dev_all(d, 0x01010101));
    CUDA_LAUNCH(fill_kernel, 1, 32, 0, s, d, SN, 8);
    assert_true(dev_all(d, 0x01010101));
    assert_int_equal(cudaStreamDestroy(s), cudaSuccess);
    assert_true(dev_all(d, 8));
    cudaFree(d);
}

/* cudaStreamWaitEvent(NULL, e) runs the work up to e's record and no more; the event's query
 * is not ready until then */
static void test_cudasim_stream_wait_event_runs_to_record(void **state) {
    int *d1 = dev_alloc<int>(SN), *d2 = dev_alloc<int>(SN);
    cudaMemset(d1, 0, SN * sizeof(int)), cudaMemset(d2, 0, SN * sizeof(int));
    cudaStream_t s = stream_new(cudaStreamNonBlocking);
    cudaEvent_t e = event_new(), never = event_new();
    assert_int_equal(cudaEventQuery(never), cudaSuccess); /* never recorded: complete */
    CUDA_LAUNCH(fill_kernel, 1, 32, 0, s, d1, SN, 1);
    assert_int_equal(cudaEventRecord(e, s), cudaSuccess);
    CUDA_LAUNCH(fill_kernel, 1, 32, 0, s, d2, SN, 2);
    assert_int_equal(cudaEventQuery(e), cudaErrorNotReady);
    assert_true(dev_all(d1, 0) && dev_all(d2, 0));
    assert_int_equal(cudaStreamWaitEvent(NULL, e, 0), cudaSuccess);
    assert_true(dev_all(d1, 1));
    assert_true(dev_all(d2, 0)); /* recorded after e: still queued */
    assert_int_equal(cudaEventQuery(e), cudaSuccess);
    assert_int_equal(cudaStreamQuery(s), cudaErrorNotReady);
    assert_int_equal(cudaEventRecord(e, s), cudaSuccess);
    assert_int_equal(cudaEventSynchronize(e), cudaSuccess);
    assert_true(dev_all(d2, 2));
    assert_int_equal(cudaEventRecord(e, NULL), cudaSuccess); /* an immediate stream's record */
    assert_int_equal(cudaEventQuery(e), cudaSuccess);
    cudaEventDestroy(e), cudaEventDestroy(never), cudaStreamDestroy(s);
    cudaFree(d1), cudaFree(d2);
}

/* work on the legacy stream first runs the blocking streams' queues, not the non-blocking
 * ones' */
static void test_cudasim_legacy_stream_and_blocking_streams(void **state) {
    int *d1 = dev_alloc<int>(SN), *d2 = dev_alloc<int>(SN);
    cudaMemset(d1, 0, SN * sizeof(int)), cudaMemset(d2, 0, SN * sizeof(int));
    cudaStream_t b = NULL, nb = stream_new(cudaStreamNonBlocking);
    assert_int_equal(cudaStreamCreate(&b), cudaSuccess);
    CUDA_LAUNCH(fill_kernel, 1, 32, 0, b, d1, SN, 5);
    CUDA_LAUNCH(fill_kernel, 1, 32, 0, nb, d2, SN, 6);
    assert_int_equal(cudaStreamQuery(b), cudaErrorNotReady);
    CUDA_LAUNCH(empty_kernel, 1, 1, 0, NULL, (int *)NULL); /* a legacy-stream launch */
    assert_int_equal(cudaStreamQuery(b), cudaSuccess);
    assert_int_equal(cudaStreamQuery(nb), cudaErrorNotReady);
    assert_true(dev_all(d1, 5));
    assert_true(dev_all(d2, 0));
    CUDA_LAUNCH(fill_kernel, 1, 32, 0, b, d1, SN, 9);
    assert_true(dev_all(d1, 9)); /* cudaMemcpy is a legacy-stream operation too */
    assert_true(dev_all(d2, 0));
    assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
    assert_true(dev_all(d2, 6));
    cudaStreamDestroy(b), cudaStreamDestroy(nb);
    cudaFree(d1), cudaFree(d2);
}

/* a wait queued on deferred stream A for an event of deferred stream B runs B's work up to the
 * record when A's queue reaches it; the wait takes the record the event had at the call */
static void test_cudasim_wait_between_created_streams(void **state) {
    int *db = dev_alloc<int>(SN), *db2 = dev_alloc<int>(SN), *da = dev_alloc<int>(SN);
    cudaMemset(db, 0, SN * sizeof(int)), cudaMemset(db2, 0, SN * sizeof(int));
    cudaMemset(da, 0, SN * sizeof(int));
    cudaStream_t a = stream_new(cudaStreamNonBlocking), b = stream_new(cudaStreamNonBlocking);
    cudaEvent_t e = event_new();
    CUDA_LAUNCH(fill_kernel, 1, 32, 0, b, db, SN, 3);
    cudaEventRecord(e, b);
    assert_int_equal(cudaStreamWaitEvent(a, e, 0), cudaSuccess);
    assert_int_equal(cudaMemcpyAsync(da, db, SN * sizeof(int), cudaMemcpyDeviceToDevice, a),
                     cudaSuccess);
    CUDA_LAUNCH(fill_kernel, 1, 32, 0, b, db2, SN, 4);
    cudaEventRecord(e, b); /* a new record: a's wait keeps the old one */
    assert_int_equal(cudaStreamQuery(b), cudaErrorNotReady);
    assert_true(dev_all(db, 0) && dev_all(da, 0));
    assert_int_equal(cudaStreamSynchronize(a), cudaSuccess);
    assert_true(dev_all(db, 3));
    assert_true(dev_all(da, 3)); /* the copy ran after b's fill */
    assert_true(dev_all(db2, 0));
    assert_int_equal(cudaStreamQuery(b), cudaErrorNotReady);
    assert_int_equal(cudaStreamSynchronize(b), cudaSuccess);
    assert_true(dev_all(db2, 4));
    cudaEventDestroy(e), cudaStreamDestroy(a), cudaStreamDestroy(b);
    cudaFree(db), cudaFree(db2), cudaFree(da);
}

/* a refusal: the error, its message naming `call`, and the last error it set */
static void expect_handle_refused(cudaError_t got, cudaError_t want, const char *call) {
    assert_int_equal(got, want);
    const char *msg = cudaGetErrorString(cudaGetLastError());
    if (!strstr(msg, call))
        fail_msg("error '%s' does not name %s", msg, call);
}

/* handles never created or destroyed, and flags not simulated, are refused */
static void test_cudasim_stream_event_handles_refused(void **state) {
    const cudaError_t BAD = cudaErrorInvalidResourceHandle;
    cudaStream_t s = stream_new(cudaStreamNonBlocking), junk = (cudaStream_t)0x1230;
    cudaEvent_t e = event_new();
    int *d = dev_alloc<int>(SN);
    assert_int_equal(cudaStreamDestroy(s), cudaSuccess);
    assert_int_equal(cudaEventDestroy(e), cudaSuccess);
    expect_handle_refused(cudaStreamSynchronize(junk), BAD, "cudaStreamSynchronize");
    expect_handle_refused(cudaStreamSynchronize(s), BAD, "cudaStreamSynchronize");
    expect_handle_refused(cudaStreamQuery(s), BAD, "cudaStreamQuery");
    expect_handle_refused(cudaStreamDestroy(s), BAD, "cudaStreamDestroy");
    expect_handle_refused(cudaStreamDestroy(NULL), BAD, "cudaStreamDestroy");
    expect_handle_refused(cudaMemsetAsync(d, 0, 4, s), BAD, "cudaMemsetAsync");
    expect_handle_refused(cudaMemcpyAsync(d, d, 4, cudaMemcpyDeviceToDevice, junk), BAD,
                          "cudaMemcpyAsync");
    CUDA_LAUNCH(fill_kernel, 1, 32, 0, s, d, SN, 1);
    expect_handle_refused(cudaPeekAtLastError(), BAD, "fill_kernel");
    expect_handle_refused(cudaEventRecord(e, NULL), BAD, "cudaEventRecord");
    expect_handle_refused(cudaEventQuery(e), BAD, "cudaEventQuery");
    expect_handle_refused(cudaEventSynchronize(e), BAD, "cudaEventSynchronize");
    expect_handle_refused(cudaEventDestroy(e), BAD, "cudaEventDestroy");
    expect_handle_refused(cudaStreamWaitEvent(NULL, e, 0), BAD, "cudaStreamWaitEvent");
    cudaEvent_t live = event_new();
    expect_handle_refused(cudaEventRecord(live, s), BAD, "cudaEventRecord");
    expect_handle_refused(cudaStreamWaitEvent(junk, live, 0), BAD, "cudaStreamWaitEvent");
    cudaStream_t t = NULL;
    expect_handle_refused(cudaStreamCreateWithFlags(&t, 0x8), cudaErrorInvalidValue,
                          "cudaStreamCreateWithFlags");
    assert_null(t);
    cudaEvent_t f = NULL;
    expect_handle_refused(cudaEventCreateWithFlags(&f, cudaEventInterprocess),
                          cudaErrorInvalidValue, "cudaEventCreateWithFlags");
    assert_int_equal(cudaGetLastError(), cudaSuccess); /* none of them is sticky */
    cudaEventDestroy(live);
    cudaFree(d);
}

/* a launch copies its arguments: changing the variable after a launch on a created stream
 * (and a second launch whose arguments take the first's place on the host stack) does not
 * change what the first kernel sees */
static void test_cudasim_launch_copies_arguments(void **state) {
    int *d1 = dev_alloc<int>(SN), *d2 = dev_alloc<int>(SN);
    cudaStream_t s = stream_new(cudaStreamNonBlocking);
    int v = 5;
    int *target = d1;
    CUDA_LAUNCH(fill_kernel, 1, 32, 0, s, target, SN, v);
    v = 9;
    target = d2;
    CUDA_LAUNCH(fill_kernel, 1, 32, 0, s, target, SN, v);
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    assert_true(dev_all(d1, 5));
    assert_true(dev_all(d2, 9));
    cudaStreamDestroy(s);
    cudaFree(d1), cudaFree(d2);
}

/* cudaFree synchronizes the device: the queued work runs before any memory goes */
static void test_cudasim_free_runs_queued_work(void **state) {
    int *d = dev_alloc<int>(SN), *other = dev_alloc<int>(1), *pin = NULL;
    assert_int_equal(cudaHostAlloc((void **)&pin, SN * sizeof(int), cudaHostAllocDefault),
                     cudaSuccess);
    memset(pin, 0, SN * sizeof(int));
    cudaStream_t s = stream_new(cudaStreamNonBlocking);
    CUDA_LAUNCH(fill_kernel, 1, 32, 0, s, d, SN, 4);
    assert_int_equal(cudaMemcpyAsync(pin, d, SN * sizeof(int), cudaMemcpyDeviceToHost, s),
                     cudaSuccess);
    assert_int_equal(pin[0], 0); /* pinned memory: the copy is the stream's work */
    assert_int_equal(cudaFree(other), cudaSuccess);
    for (int i = 0; i < SN; i++)
        assert_int_equal(pin[i], 4);
    CUDA_LAUNCH(fill_kernel, 1, 32, 0, s, d, SN, 5); /* writes d: runs before d is freed */
    assert_int_equal(cudaFree(d), cudaSuccess);
    assert_int_equal(cudaStreamQuery(s), cudaSuccess);
    cudaStreamDestroy(s);
    cudaFreeHost(pin);
}

/* pageable host memory is staged, as CUDA does: the source of a host-to-device copy is read at
 * the call, and a copy to pageable memory is done when the call returns */
static void test_cudasim_async_copy_pageable_host(void **state) {
    int *d = dev_alloc<int>(SN), h[SN];
    cudaStream_t s = stream_new(cudaStreamNonBlocking);
    for (int i = 0; i < SN; i++)
        h[i] = 1;
    assert_int_equal(cudaMemcpyAsync(d, h, sizeof(h), cudaMemcpyHostToDevice, s), cudaSuccess);
    for (int i = 0; i < SN; i++)
        h[i] = 2;
    assert_int_equal(cudaStreamQuery(s), cudaErrorNotReady);
    CUDA_LAUNCH(fill_kernel, 1, 16, 0, s, d, SN / 2, 3);
    assert_int_equal(cudaMemcpyAsync(h, d, sizeof(h), cudaMemcpyDeviceToHost, s), cudaSuccess);
    for (int i = 0; i < SN; i++)
        assert_int_equal(h[i], i < SN / 2 ? 3 : 1);
    assert_int_equal(cudaStreamQuery(s), cudaSuccess);
    cudaStreamDestroy(s);
    cudaFree(d);
}

/* a fault in queued work is a sticky device error, reported by the call that ran it */
static void test_cudasim_queued_fault_is_sticky(void **state) {
    int *d = dev_alloc<int>(64);
    cudaStream_t s = stream_new(cudaStreamNonBlocking);
    CUDA_LAUNCH(divergent_kernel, 1, 64, 0, s, d);
    assert_int_equal(cudaGetLastError(), cudaSuccess); /* accepted at the launch */
    assert_int_equal(cudaStreamSynchronize(s), cudaErrorLaunchFailure);
    expect_fault("divergent_kernel", "barrier divergence");
    assert_int_equal(cudaStreamDestroy(s), cudaSuccess);
    cudaFree(d);
}

/* a cuBLAS GEMM on a created stream is that stream's work (tests/cudasim/cublas_sim.cc): D is
 * unchanged until the stream runs; a stream the runtime does not know is refused */
static void test_cudasim_cublas_on_created_stream(void **state) {
    const int n = 4; /* D (f32, n x n) = A (f16, n x n, all 1) x B (all 1): n everywhere */
    __half *ab = dev_alloc<__half>(n * n);
    float *dm = dev_alloc<float>(n * n), h[n * n], one = 1.0f, zero = 0.0f;
    __half ones[n * n];
    for (int i = 0; i < n * n; i++)
        ones[i] = __float2half_rn(1.0f);
    cudaMemcpy(ab, ones, sizeof(ones), cudaMemcpyHostToDevice);
    cudaMemset(dm, 0, sizeof(h));
    cudaStream_t s = stream_new(cudaStreamNonBlocking);
    cublasHandle_t hd = NULL;
    assert_int_equal(cublasCreate(&hd), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(cublasSetStream(hd, s), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(cublasGemmStridedBatchedEx(hd, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, ab,
                                                CUDA_R_16F, n, 0, ab, CUDA_R_16F, n, 0, &zero, dm,
                                                CUDA_R_32F, n, 0, 1, CUBLAS_COMPUTE_32F,
                                                CUBLAS_GEMM_DEFAULT),
                     CUBLAS_STATUS_SUCCESS);
    cudaMemcpy(h, dm, sizeof(h), cudaMemcpyDeviceToHost);
    assert_true(h[0] == 0.0f && h[n * n - 1] == 0.0f);
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    cudaMemcpy(h, dm, sizeof(h), cudaMemcpyDeviceToHost);
    for (int i = 0; i < n * n; i++)
        assert_true(h[i] == (float)n);
    assert_int_equal(cudaStreamDestroy(s), cudaSuccess);
    assert_int_equal(cublasGemmStridedBatchedEx(hd, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, ab,
                                                CUDA_R_16F, n, 0, ab, CUDA_R_16F, n, 0, &zero, dm,
                                                CUDA_R_32F, n, 0, 1, CUBLAS_COMPUTE_32F,
                                                CUBLAS_GEMM_DEFAULT),
                     CUBLAS_STATUS_EXECUTION_FAILED); /* its stream is destroyed */
    cublasDestroy(hd);
    cudaFree(ab), cudaFree(dm);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cudasim_missing_barrier_changes_result),
        cmocka_unit_test(test_cudasim_warp_intrinsics),
        cmocka_unit_test(test_cudasim_block_reductions_and_atomics),
        cmocka_unit_test(test_cudasim_dynamic_shared_and_indexing),
        cmocka_unit_test(test_cudasim_launch_limits),
        cmocka_unit_test(test_cudasim_divergence_is_reported),
        cmocka_unit_test(test_cudasim_memory),
        cmocka_unit_test(test_cudasim_no_nvml),
        cmocka_unit_test(test_cudasim_half_on_host),
        cmocka_unit_test(test_cudasim_bf16_on_host),
        cmocka_unit_test(test_cudasim_mma_fragments),
        cmocka_unit_test(test_cudasim_ldmatrix_layouts),
        cmocka_unit_test(test_cudasim_ldmatrix_mma),
        cmocka_unit_test(test_cudasim_mma_divergence),
        cmocka_unit_test(test_cudasim_cp_async),
        cmocka_unit_test(test_cudasim_stream_deferred_until_sync),
        cmocka_unit_test(test_cudasim_stream_wait_event_runs_to_record),
        cmocka_unit_test(test_cudasim_legacy_stream_and_blocking_streams),
        cmocka_unit_test(test_cudasim_wait_between_created_streams),
        cmocka_unit_test(test_cudasim_stream_event_handles_refused),
        cmocka_unit_test(test_cudasim_launch_copies_arguments),
        cmocka_unit_test(test_cudasim_free_runs_queued_work),
        cmocka_unit_test(test_cudasim_async_copy_pageable_host),
        cmocka_unit_test(test_cudasim_queued_fault_is_sticky),
        cmocka_unit_test(test_cudasim_cublas_on_created_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
