/* test_cublas_sim.c: the CUDA simulator's host cuBLASLt and cuBLAS (cublas_sim.cc) against a
 * double-precision reference: column-major GEMMs at odd sizes for every transpose pair, padded
 * leading dimensions, strided batches, the bias epilogue, f32 output, and f16 rounding done
 * exactly once; then every refusal the simulator makes, each with the status the real library
 * documents; the same GEMMs in bf16. The f16 reference conversions use the compiler's IEEE
 * _Float16 (round to nearest even), the bf16 ones the bit arithmetic below (round to nearest
 * even), independent of the toolkit headers the simulator uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cublas_sim.h"
#include <cublasLt.h>
#include <cublas_v2.h>

/* f32 recursive summation of k products: |error| <= (k + SUM_SLACK) * 2^-24 * sum |a_p b_p|
 * (the classical gamma_k bound, unit roundoff 2^-24; the slack covers alpha, beta * C and bias,
 * each applied with one f32 rounding) */
#define F32_UNIT_ROUNDOFF 5.9604644775390625e-08 /* 2^-24 */
#define SUM_SLACK 4.0
/* rounding to f16 once: half an ulp, 2^-11 relative for normal numbers, plus half the smallest
 * subnormal (2^-25) in absolute terms */
#define F16_HALF_ULP_REL 4.8828125e-04             /* 2^-11 */
#define F16_HALF_SUBNORMAL 2.98023223876953125e-08 /* 2^-25 */
/* rounding to bf16 once: half an ulp of 8 significant bits, 2^-8 relative; bf16's smallest
 * subnormal is 2^-133, so half of it is far below every test value's tolerance */
#define BF16_HALF_ULP_REL 3.90625e-03 /* 2^-8 */
/* bytes of the aligned test buffers, and the alignment they get */
#define BUF_ALIGN 256

/* The 16-bit type of the GEMMs under test: 0 f16, 1 bf16 (the bf16 tests set it and put it
 * back); f2h and h2f convert to and from it, every 16-bit buffer holds it. */
static int g_bf16;

static uint16_t f2h(float f) {
    if (g_bf16) {
        uint32_t u;
        memcpy(&u, &f, sizeof(u));
        if ((u & 0x7fffffffu) > 0x7f800000u)
            return (uint16_t)((u >> 16) | 0x40u); /* NaN stays NaN */
        u += 0x7fffu + ((u >> 16) & 1u);          /* to nearest, ties to even */
        return (uint16_t)(u >> 16);
    }
    _Float16 h = (_Float16)f;
    uint16_t u;
    memcpy(&u, &h, sizeof(u));
    return u;
}

static float h2f(uint16_t u) {
    if (g_bf16) {
        uint32_t w = (uint32_t)u << 16;
        float f;
        memcpy(&f, &w, sizeof(f));
        return f;
    }
    _Float16 h;
    memcpy(&h, &u, sizeof(h));
    return (float)h;
}

static cudaDataType x16_type(void) { return g_bf16 ? CUDA_R_16BF : CUDA_R_16F; }

static uint32_t g_rng = 12345u;
static float rnd(void) { /* uniform in [-1, 1), exactly representable in f16 */
    g_rng = g_rng * 1664525u + 1013904223u;
    return h2f(f2h((float)((int)(g_rng >> 8) % 2048 - 1024) / 1024.0f));
}

static void *abuf(size_t bytes) {
    size_t n = (bytes + BUF_ALIGN - 1) / BUF_ALIGN * BUF_ALIGN;
    void *p = aligned_alloc(BUF_ALIGN, n ? n : BUF_ALIGN);
    assert_non_null(p);
    memset(p, 0xff, n ? n : BUF_ALIGN); /* NaN in f16 and f32: unwritten elements show */
    return p;
}

static uint16_t *h16(size_t n) { return abuf(n * sizeof(uint16_t)); }

static void fill16(uint16_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = f2h(rnd());
}

/* One GEMM's description for the reference. */
typedef struct {
    int ta, tb, m, n, k, batch;
    int64_t lda, ldb, ldc, ldd, sa, sb, sc, sd;
    float alpha, beta;
    int d_f32;             /* C and D f32 (else f16) */
    const uint16_t *A, *B; /* f16 */
    const void *C;         /* as D, may equal D; NULL when beta == 0 */
    const void *bias;      /* as D, m elements, or NULL */
} Ref;

static double getd(const void *p, int f32, int64_t i) {
    return f32 ? (double)((const float *)p)[i] : (double)h2f(((const uint16_t *)p)[i]);
}

/* Checks D (batch members at sd) against the double reference, element by element, with the
 * bound of the file's tolerances; elements between rows and ld (padding) must be untouched
 * (still the 0xff fill). C values are taken from c_before (C's contents before the call). */
static void check_gemm(const Ref *r, const void *D, const void *c_before) {
    int bad = 0;
    for (int b = 0; b < r->batch; b++)
        for (int j = 0; j < r->n; j++) {
            for (int i = 0; i < r->m; i++) {
                double s = 0.0, sabs = 0.0;
                for (int p = 0; p < r->k; p++) {
                    double a = h2f(r->A[b * r->sa + (r->ta ? p + i * r->lda : i + p * r->lda)]);
                    double bb = h2f(r->B[b * r->sb + (r->tb ? j + p * r->ldb : p + j * r->ldb)]);
                    s += a * bb;
                    sabs += fabs(a * bb);
                }
                double ref = r->alpha * s, mag = fabs(r->alpha) * sabs;
                if (r->beta != 0.0f) {
                    double c = getd(c_before, r->d_f32, b * r->sc + i + (int64_t)j * r->ldc);
                    ref += r->beta * c;
                    mag += fabs(r->beta * c);
                }
                if (r->bias) {
                    double bi = getd(r->bias, r->d_f32, i);
                    ref += bi;
                    mag += fabs(bi);
                }
                double tol = (r->k + SUM_SLACK) * F32_UNIT_ROUNDOFF * mag;
                if (!r->d_f32)
                    tol += (g_bf16 ? BF16_HALF_ULP_REL : F16_HALF_ULP_REL) * (fabs(ref) + tol) +
                           F16_HALF_SUBNORMAL;
                double got = getd(D, r->d_f32, b * r->sd + i + (int64_t)j * r->ldd);
                if (!(fabs(got - ref) <= tol)) {
                    if (bad++ == 0)
                        print_error("D[batch %d](%d,%d) = %.9g, reference %.9g, tolerance %.3g "
                                    "(m %d n %d k %d ta %d tb %d)\n",
                                    b, i, j, got, ref, tol, r->m, r->n, r->k, r->ta, r->tb);
                }
            }
            /* (interleaved members own each other's "padding") */
            int64_t pad_end = r->batch > 1 && r->sd < r->ldd * r->n ? r->m : r->ldd;
            for (int64_t i = r->m; i < pad_end; i++) {
                int64_t at = b * r->sd + i + (int64_t)j * r->ldd;
                int untouched = r->d_f32 ? ((const uint32_t *)D)[at] == 0xffffffffu
                                         : ((const uint16_t *)D)[at] == 0xffffu;
                if (!untouched && bad++ == 0)
                    print_error("D padding (%lld,%d) was written\n", (long long)i, j);
            }
        }
    if (bad)
        fail_msg("%d elements of D wrong", bad);
}

/* ---------------------------------------------------------------------------------------- */
/* cuBLASLt plumbing                                                                         */

typedef struct {
    cublasLtHandle_t lt;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, c, d;
    cublasLtMatmulPreference_t pref;
} Lt;

static cublasLtMatrixLayout_t layout(cudaDataType t, int64_t rows, int64_t cols, int64_t ld,
                                     int batch, int64_t stride) {
    cublasLtMatrixLayout_t l = NULL;
    assert_int_equal(cublasLtMatrixLayoutCreate(&l, t, (uint64_t)rows, (uint64_t)cols, ld),
                     CUBLAS_STATUS_SUCCESS);
    if (batch > 1) {
        int32_t bc = batch;
        assert_int_equal(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                          &bc, sizeof(bc)),
                         CUBLAS_STATUS_SUCCESS);
        assert_int_equal(
            cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                             &stride, sizeof(stride)),
            CUBLAS_STATUS_SUCCESS);
    }
    return l;
}

/* descriptors and layouts for r (bias pointer set when r->bias) */
static void lt_setup(Lt *s, const Ref *r) {
    memset(s, 0, sizeof(*s));
    assert_int_equal(cublasLtCreate(&s->lt), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(cublasLtMatmulDescCreate(&s->op, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                     CUBLAS_STATUS_SUCCESS);
    cublasOperation_t ta = r->ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                      tb = r->tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    assert_int_equal(
        cublasLtMatmulDescSetAttribute(s->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)),
        CUBLAS_STATUS_SUCCESS);
    assert_int_equal(
        cublasLtMatmulDescSetAttribute(s->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)),
        CUBLAS_STATUS_SUCCESS);
    if (r->bias) {
        cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
        assert_int_equal(
            cublasLtMatmulDescSetAttribute(s->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof(ep)),
            CUBLAS_STATUS_SUCCESS);
        const void *bp = r->bias;
        assert_int_equal(cublasLtMatmulDescSetAttribute(s->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                        &bp, sizeof(bp)),
                         CUBLAS_STATUS_SUCCESS);
    }
    cudaDataType dt = r->d_f32 ? CUDA_R_32F : x16_type();
    s->a = layout(x16_type(), r->ta ? r->k : r->m, r->ta ? r->m : r->k, r->lda, r->batch, r->sa);
    s->b = layout(x16_type(), r->tb ? r->n : r->k, r->tb ? r->k : r->n, r->ldb, r->batch, r->sb);
    s->c = layout(dt, r->m, r->n, r->ldc, r->batch, r->sc);
    s->d = layout(dt, r->m, r->n, r->ldd, r->batch, r->sd);
    assert_int_equal(cublasLtMatmulPreferenceCreate(&s->pref), CUBLAS_STATUS_SUCCESS);
}

static void lt_teardown(Lt *s) {
    assert_int_equal(cublasLtMatmulPreferenceDestroy(s->pref), CUBLAS_STATUS_SUCCESS);
    cublasLtMatrixLayout_t ls[4] = {s->a, s->b, s->c, s->d};
    for (int i = 0; i < 4; i++)
        assert_int_equal(cublasLtMatrixLayoutDestroy(ls[i]), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(cublasLtMatmulDescDestroy(s->op), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(cublasLtDestroy(s->lt), CUBLAS_STATUS_SUCCESS);
}

static void set_ws_pref(Lt *s, uint64_t ws) {
    assert_int_equal(cublasLtMatmulPreferenceSetAttribute(
                         s->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)),
                     CUBLAS_STATUS_SUCCESS);
}

static cublasLtMatmulHeuristicResult_t heuristic(Lt *s) {
    cublasLtMatmulHeuristicResult_t res;
    memset(&res, 0, sizeof(res));
    int found = 0;
    assert_int_equal(cublasLtMatmulAlgoGetHeuristic(s->lt, s->op, s->a, s->b, s->c, s->d, s->pref,
                                                    1, &res, &found),
                     CUBLAS_STATUS_SUCCESS);
    assert_int_equal(found, 1);
    assert_int_equal(res.state, CUBLAS_STATUS_SUCCESS);
    return res;
}

static cublasStatus_t lt_run(Lt *s, const Ref *r, const void *C, void *D,
                             const cublasLtMatmulHeuristicResult_t *res, void *ws,
                             size_t ws_bytes) {
    return cublasLtMatmul(s->lt, s->op, &r->alpha, r->A, s->a, r->B, s->b, &r->beta, C, s->c, D,
                          s->d, res ? &res->algo : NULL, ws, ws_bytes, NULL);
}

/* A whole cuBLASLt GEMM for r into fresh buffers, checked against the reference. in_place:
 * C is D. ws: hand the heuristic (and the call) a workspace. */
static void lt_gemm_case(Ref r, int in_place, int with_ws) {
    size_t es = r.d_f32 ? 4 : 2;
    int64_t a_elems = r.lda * (r.ta ? r.m : r.k), b_elems = r.ldb * (r.tb ? r.k : r.n);
    if (r.batch > 1) {
        a_elems += r.sa * (r.batch - 1);
        b_elems += r.sb * (r.batch - 1);
    }
    int64_t d_elems = r.ldd * r.n + (r.batch > 1 ? r.sd * (r.batch - 1) : 0);
    uint16_t *A = h16((size_t)a_elems), *B = h16((size_t)b_elems);
    fill16(A, (size_t)a_elems);
    fill16(B, (size_t)b_elems);
    r.A = A;
    r.B = B;
    void *D = abuf((size_t)d_elems * es);
    void *C = in_place ? D : abuf((size_t)d_elems * es);
    void *c_before = abuf((size_t)d_elems * es);
    if (r.beta != 0.0f) {
        /* C's matrix elements get values, its padding keeps the 0xff fill */
        for (int b = 0; b < r.batch; b++)
            for (int j = 0; j < r.n; j++)
                for (int i = 0; i < r.m; i++) {
                    int64_t at = b * r.sc + i + (int64_t)j * r.ldc;
                    if (r.d_f32)
                        ((float *)C)[at] = rnd();
                    else
                        ((uint16_t *)C)[at] = f2h(rnd());
                }
    }
    memcpy(c_before, C, (size_t)d_elems * es);
    uint16_t *bias16 = NULL;
    float *bias32 = NULL;
    if (r.bias) {
        if (r.d_f32) {
            bias32 = abuf((size_t)r.m * 4);
            for (int i = 0; i < r.m; i++)
                bias32[i] = rnd();
            r.bias = bias32;
        } else {
            bias16 = h16((size_t)r.m);
            fill16(bias16, (size_t)r.m);
            r.bias = bias16;
        }
    }
    r.C = r.beta != 0.0f ? C : NULL;
    Lt s;
    lt_setup(&s, &r);
    void *ws = NULL;
    size_t ws_bytes = 0;
    if (with_ws) {
        ws_bytes = cublas_sim_workspace_bytes(r.m, r.n);
        ws = abuf(ws_bytes);
        set_ws_pref(&s, ws_bytes);
    }
    cublasLtMatmulHeuristicResult_t res = heuristic(&s);
    assert_true(res.workspaceSize <= ws_bytes);
    assert_int_equal(lt_run(&s, &r, r.beta != 0.0f ? C : D, D, &res, ws, ws_bytes),
                     CUBLAS_STATUS_SUCCESS);
    check_gemm(&r, D, c_before);
    if (with_ws && r.k > 1) {
        /* the algorithm kept its f32 accumulator in the workspace: that of the last batch
         * member's element (0, 0) */
        assert_int_equal(res.workspaceSize, ws_bytes);
        double s0 = 0.0;
        int b = r.batch - 1;
        for (int p = 0; p < r.k; p++)
            s0 += (double)h2f(A[b * r.sa + (r.ta ? p : p * r.lda)]) *
                  h2f(B[b * r.sb + (r.tb ? p * r.ldb : p)]);
        assert_true(fabs(((float *)ws)[0] - s0) <= (r.k + SUM_SLACK) * F32_UNIT_ROUNDOFF * r.k);
    }
    lt_teardown(&s);
    free(A);
    free(B);
    free(D);
    if (!in_place)
        free(C);
    free(c_before);
    free(bias16);
    free(bias32);
    free(ws);
}

static Ref ref_dense(int ta, int tb, int m, int n, int k, int pad) {
    Ref r;
    memset(&r, 0, sizeof(r));
    r.ta = ta;
    r.tb = tb;
    r.m = m;
    r.n = n;
    r.k = k;
    r.batch = 1;
    r.lda = (ta ? k : m) + pad;
    r.ldb = (tb ? n : k) + pad;
    r.ldc = m + pad;
    r.ldd = m + pad;
    r.alpha = 1.0f;
    return r;
}

/* ---------------------------------------------------------------------------------------- */
/* numerics                                                                                  */

static void test_cublas_sim_lt_odd_sizes_every_transpose(void **state) {
    (void)state;
    static const int sizes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 13, 33}, {31, 2, 65}, {8, 9, 1}};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
        for (int t = 0; t < 4; t++)
            for (int f32 = 0; f32 < 2; f32++) {
                Ref r = ref_dense(t & 1, t >> 1, sizes[s][0], sizes[s][1], sizes[s][2], 0);
                r.d_f32 = f32;
                lt_gemm_case(r, 0, 0);
                /* padded leading dimensions, alpha and beta, C separate and in place */
                r = ref_dense(t & 1, t >> 1, sizes[s][0], sizes[s][1], sizes[s][2], 3);
                r.d_f32 = f32;
                r.alpha = 0.75f;
                r.beta = 0.5f;
                lt_gemm_case(r, 0, 0);
                lt_gemm_case(r, 1, 1);
            }
}

static void test_cublas_sim_lt_strided_batch(void **state) {
    (void)state;
    for (int t = 0; t < 4; t++) {
        Ref r = ref_dense(t & 1, t >> 1, 5, 7, 9, 1);
        r.batch = 3;
        r.sa = r.lda * (r.ta ? r.m : r.k) + 5; /* gaps between members */
        r.sb = r.ldb * (r.tb ? r.k : r.n) + 2;
        r.sc = r.ldc * r.n + 4;
        r.sd = r.sc;
        r.beta = 1.0f;
        lt_gemm_case(r, 1, 0);
        lt_gemm_case(r, 0, 1);
    }
    /* interleaved members, as attention's heads: member b owns rows [4b, 4b + 4) of a
     * 12-row C = D */
    for (int t = 0; t < 4; t++) {
        Ref r = ref_dense(t & 1, t >> 1, 4, 5, 6, 0);
        r.batch = 3;
        r.sa = r.lda * (r.ta ? r.m : r.k);
        r.sb = r.ldb * (r.tb ? r.k : r.n);
        r.ldc = r.ldd = 12;
        r.sc = r.sd = 4;
        r.beta = 0.5f;
        lt_gemm_case(r, 1, 0);
    }
    /* stride 0: every member multiplies the same A */
    Ref r = ref_dense(0, 1, 6, 4, 3, 0);
    r.batch = 4;
    r.sa = 0;
    r.sb = r.ldb * r.k;
    r.sc = r.sd = r.ldd * r.n;
    lt_gemm_case(r, 0, 0);
}

static void test_cublas_sim_lt_bias_epilogue(void **state) {
    (void)state;
    for (int f32 = 0; f32 < 2; f32++) {
        Ref r = ref_dense(1, 0, 7, 5, 9, 0);
        r.d_f32 = f32;
        r.bias = (const void *)1; /* replaced by a real vector in lt_gemm_case */
        lt_gemm_case(r, 0, 0);
        r.beta = 1.0f;
        lt_gemm_case(r, 1, 0);
    }
}

/* 1 + 4 * ulp/4 = 1 + ulp (ulp of 1: 2^-10 in f16, 2^-7 in bf16) is a 16-bit number; summed in
 * 16 bits, each 1 + ulp/4 rounds back to 1 (a quarter of an ulp, under half), so a GEMM that
 * rounds more than once returns 1.0. */
static void test_cublas_sim_rounds_once(void **state) {
    (void)state;
    const float ulp = g_bf16 ? 1.0f / 128.0f : 1.0f / 1024.0f;
    uint16_t *A = h16(5), *B = h16(5), *D = h16(1);
    A[0] = f2h(1.0f);
    for (int p = 1; p < 5; p++)
        A[p] = f2h(ulp / 4.0f);
    for (int p = 0; p < 5; p++)
        B[p] = f2h(1.0f);
    Ref r = ref_dense(1, 0, 1, 1, 5, 0);
    r.A = A;
    r.B = B;
    Lt s;
    lt_setup(&s, &r);
    assert_int_equal(lt_run(&s, &r, D, D, NULL, NULL, 0), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(D[0], f2h(1.0f + ulp));
    assert_int_not_equal(D[0], f2h(1.0f));
    /* and beta * C joins the f32 sum before the rounding: C = 1, the products 4 * ulp/4 */
    A[0] = f2h(0.0f);
    D[0] = f2h(1.0f);
    r.beta = 1.0f;
    assert_int_equal(lt_run(&s, &r, D, D, NULL, NULL, 0), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(D[0], f2h(1.0f + ulp));
    lt_teardown(&s);
    /* a long sum: k = 4096 products of [-1, 1) values stays within one f16 rounding of the
     * double reference (f16 partial sums would be off by far more) */
    Ref big = ref_dense(1, 0, 3, 2, 4096, 0);
    lt_gemm_case(big, 0, 0);
    free(A);
    free(B);
    free(D);
}

static void test_cublas_sim_gemm_strided_batched_ex(void **state) {
    (void)state;
    cublasHandle_t h = NULL;
    assert_int_equal(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(cublasSetStream(h, NULL), CUBLAS_STATUS_SUCCESS);
    for (int t = 0; t < 4; t++)
        for (int f32 = 0; f32 < 2; f32++) {
            Ref r = ref_dense(t & 1, t >> 1, 9, 4, 11, 2);
            r.batch = 2;
            r.sa = r.lda * (r.ta ? r.m : r.k);
            r.sb = r.ldb * (r.tb ? r.k : r.n);
            r.sc = r.sd = r.ldc * r.n;
            if (t == 3) { /* members interleaved in one C, as attention's heads */
                r.ldc = r.ldd = 2 * r.m;
                r.sc = r.sd = r.m;
            }
            r.d_f32 = f32;
            r.beta = 0.25f;
            r.alpha = 2.0f;
            size_t es = f32 ? 4 : 2;
            int64_t ae = r.sa * 2, be = r.sb * 2, ce = r.ldc * r.n + r.sc;
            uint16_t *A = h16((size_t)ae), *B = h16((size_t)be);
            fill16(A, (size_t)ae);
            fill16(B, (size_t)be);
            void *C = abuf((size_t)ce * es), *c_before = abuf((size_t)ce * es);
            for (int b = 0; b < 2; b++)
                for (int j = 0; j < r.n; j++)
                    for (int i = 0; i < r.m; i++) {
                        int64_t at = b * r.sc + i + (int64_t)j * r.ldc;
                        if (f32)
                            ((float *)C)[at] = rnd();
                        else
                            ((uint16_t *)C)[at] = f2h(rnd());
                    }
            memcpy(c_before, C, (size_t)ce * es);
            r.A = A;
            r.B = B;
            r.C = C;
            /* with a workspace (t odd) and without */
            void *ws = NULL;
            if (t & 1) {
                ws = abuf(cublas_sim_workspace_bytes(r.m, r.n));
                assert_int_equal(cublasSetWorkspace(h, ws, cublas_sim_workspace_bytes(r.m, r.n)),
                                 CUBLAS_STATUS_SUCCESS);
            } else {
                assert_int_equal(cublasSetWorkspace(h, NULL, 0), CUBLAS_STATUS_SUCCESS);
            }
            cudaDataType ct = f32 ? CUDA_R_32F : x16_type();
            assert_int_equal(
                cublasGemmStridedBatchedEx(
                    h, r.ta ? CUBLAS_OP_T : CUBLAS_OP_N, r.tb ? CUBLAS_OP_T : CUBLAS_OP_N, r.m, r.n,
                    r.k, &r.alpha, A, x16_type(), (int)r.lda, r.sa, B, x16_type(), (int)r.ldb, r.sb,
                    &r.beta, C, ct, (int)r.ldc, r.sc, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                CUBLAS_STATUS_SUCCESS);
            check_gemm(&r, C, c_before);
            free(A);
            free(B);
            free(C);
            free(c_before);
            free(ws);
        }
    assert_int_equal(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}

/* The numerics tests again with bf16 A, B (and C, D, bias when not f32), and bf16's one
 * rounding. */
static void test_cublas_sim_bf16(void **state) {
    g_bf16 = 1;
    test_cublas_sim_lt_odd_sizes_every_transpose(state);
    test_cublas_sim_lt_strided_batch(state);
    test_cublas_sim_lt_bias_epilogue(state);
    test_cublas_sim_gemm_strided_batched_ex(state);
    test_cublas_sim_rounds_once(state);
    g_bf16 = 0;
}

/* ---------------------------------------------------------------------------------------- */
/* refusals                                                                                  */

/* A ready 8 x 3 x 8 f16 GEMM (ta = T; every column 16-byte aligned) to break one thing at a
 * time. */
typedef struct {
    Ref r;
    Lt s;
    uint16_t *A, *B, *D, *bias;
} Fixture;

static void fx_init(Fixture *f) {
    memset(f, 0, sizeof(*f));
    f->r = ref_dense(1, 0, 8, 3, 8, 0);
    f->A = h16(64);
    f->B = h16(64);
    f->D = h16(64);
    f->bias = h16(64);
    fill16(f->A, 64);
    fill16(f->B, 64);
    fill16(f->bias, 64);
    f->r.A = f->A;
    f->r.B = f->B;
    lt_setup(&f->s, &f->r);
}

static void fx_free(Fixture *f) {
    lt_teardown(&f->s);
    free(f->A);
    free(f->B);
    free(f->D);
    free(f->bias);
}

static void assert_refusal_mentions(const char *what) {
    const char *why = cublas_sim_last_refusal();
    if (!strstr(why, what))
        fail_msg("refusal \"%s\" does not mention \"%s\"", why, what);
}

static void assert_no_algo(Fixture *f) {
    cublasLtMatmulHeuristicResult_t res;
    int found = 7;
    assert_int_equal(cublasLtMatmulAlgoGetHeuristic(f->s.lt, f->s.op, f->s.a, f->s.b, f->s.c,
                                                    f->s.d, f->s.pref, 1, &res, &found),
                     CUBLAS_STATUS_NOT_SUPPORTED);
    assert_int_equal(found, 0);
}

static void test_cublas_sim_refuses_small_leading_dimension(void **state) {
    (void)state;
    Fixture f;
    fx_init(&f);
    /* A is k x m = 8 x 8 (transposed): ld 7 < rows 8 */
    int64_t ld = 7;
    assert_int_equal(
        cublasLtMatrixLayoutSetAttribute(f.s.a, CUBLASLT_MATRIX_LAYOUT_LD, &ld, sizeof(ld)),
        CUBLAS_STATUS_SUCCESS);
    assert_int_equal(lt_run(&f.s, &f.r, f.D, f.D, NULL, NULL, 0), CUBLAS_STATUS_INVALID_VALUE);
    assert_refusal_mentions("CUBLASLT_MATRIX_LAYOUT_LD");
    assert_no_algo(&f);
    fx_free(&f);

    cublasHandle_t h = NULL;
    assert_int_equal(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    float one = 1.0f, zero = 0.0f;
    /* lda < max(1, k) with transa = T; ldb < k; ldc < m */
    const int lds[3][3] = {{7, 8, 8}, {8, 7, 8}, {8, 8, 7}};
    for (int i = 0; i < 3; i++) {
        fx_init(&f);
        assert_int_equal(cublasGemmStridedBatchedEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 8, 3, 8, &one, f.A,
                                                    CUDA_R_16F, lds[i][0], 0, f.B, CUDA_R_16F,
                                                    lds[i][1], 0, &zero, f.D, CUDA_R_16F, lds[i][2],
                                                    0, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                         CUBLAS_STATUS_INVALID_VALUE);
        fx_free(&f);
    }
    fx_init(&f);
    assert_int_equal(cublasGemmStridedBatchedEx(h, CUBLAS_OP_T, CUBLAS_OP_N, -1, 3, 8, &one, f.A,
                                                CUDA_R_16F, 8, 0, f.B, CUDA_R_16F, 8, 0, &zero, f.D,
                                                CUDA_R_16F, 8, 0, 1, CUBLAS_COMPUTE_32F,
                                                CUBLAS_GEMM_DEFAULT),
                     CUBLAS_STATUS_INVALID_VALUE);
    fx_free(&f);
    assert_int_equal(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}

static void test_cublas_sim_refuses_unsupported_types_and_epilogues(void **state) {
    (void)state;
    Fixture f;
    /* A f32 with B f16 */
    fx_init(&f);
    uint32_t t32 = CUDA_R_32F;
    assert_int_equal(
        cublasLtMatrixLayoutSetAttribute(f.s.a, CUBLASLT_MATRIX_LAYOUT_TYPE, &t32, sizeof(t32)),
        CUBLAS_STATUS_SUCCESS);
    assert_int_equal(lt_run(&f.s, &f.r, f.D, f.D, NULL, NULL, 0), CUBLAS_STATUS_NOT_SUPPORTED);
    assert_no_algo(&f);
    fx_free(&f);
    /* A bf16 with B f16, and bf16 A and B with an f16 D ("Datatypes Supported" has neither) */
    uint32_t tbf = CUDA_R_16BF;
    for (int which = 0; which < 2; which++) {
        fx_init(&f);
        if (which == 1)
            assert_int_equal(cublasLtMatrixLayoutSetAttribute(f.s.b, CUBLASLT_MATRIX_LAYOUT_TYPE,
                                                              &tbf, sizeof(tbf)),
                             CUBLAS_STATUS_SUCCESS);
        assert_int_equal(
            cublasLtMatrixLayoutSetAttribute(f.s.a, CUBLASLT_MATRIX_LAYOUT_TYPE, &tbf, sizeof(tbf)),
            CUBLAS_STATUS_SUCCESS);
        assert_int_equal(lt_run(&f.s, &f.r, f.D, f.D, NULL, NULL, 0), CUBLAS_STATUS_NOT_SUPPORTED);
        assert_refusal_mentions("CUDA_R_16BF");
        assert_no_algo(&f);
        fx_free(&f);
    }
    /* C f16 but D f32 */
    fx_init(&f);
    assert_int_equal(
        cublasLtMatrixLayoutSetAttribute(f.s.d, CUBLASLT_MATRIX_LAYOUT_TYPE, &t32, sizeof(t32)),
        CUBLAS_STATUS_SUCCESS);
    assert_int_equal(lt_run(&f.s, &f.r, f.bias, f.D, NULL, NULL, 0), CUBLAS_STATUS_NOT_SUPPORTED);
    fx_free(&f);
    /* compute type 16F */
    fx_init(&f);
    int32_t c16 = CUBLAS_COMPUTE_16F;
    assert_int_equal(cublasLtMatmulDescSetAttribute(f.s.op, CUBLASLT_MATMUL_DESC_COMPUTE_TYPE, &c16,
                                                    sizeof(c16)),
                     CUBLAS_STATUS_SUCCESS);
    assert_int_equal(lt_run(&f.s, &f.r, f.D, f.D, NULL, NULL, 0), CUBLAS_STATUS_NOT_SUPPORTED);
    fx_free(&f);
    /* an epilogue the simulator does not implement */
    fx_init(&f);
    cublasLtEpilogue_t gelu = CUBLASLT_EPILOGUE_GELU_BIAS;
    assert_int_equal(
        cublasLtMatmulDescSetAttribute(f.s.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &gelu, sizeof(gelu)),
        CUBLAS_STATUS_SUCCESS);
    assert_int_equal(lt_run(&f.s, &f.r, f.D, f.D, NULL, NULL, 0), CUBLAS_STATUS_NOT_SUPPORTED);
    fx_free(&f);
    /* bias of another type than D; then the BIAS epilogue with no bias pointer */
    fx_init(&f);
    cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
    assert_int_equal(
        cublasLtMatmulDescSetAttribute(f.s.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof(ep)),
        CUBLAS_STATUS_SUCCESS);
    assert_int_equal(lt_run(&f.s, &f.r, f.D, f.D, NULL, NULL, 0), CUBLAS_STATUS_INVALID_VALUE);
    assert_refusal_mentions("BIAS_POINTER");
    int32_t bt = CUDA_R_32F;
    assert_int_equal(cublasLtMatmulDescSetAttribute(f.s.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                                    &bt, sizeof(bt)),
                     CUBLAS_STATUS_SUCCESS);
    assert_int_equal(lt_run(&f.s, &f.r, f.D, f.D, NULL, NULL, 0), CUBLAS_STATUS_NOT_SUPPORTED);
    assert_refusal_mentions("BIAS_DATA_TYPE");
    fx_free(&f);
    /* cuBLAS: f32 A, and a compute type it does not run */
    cublasHandle_t h = NULL;
    assert_int_equal(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    fx_init(&f);
    float one = 1.0f, zero = 0.0f;
    assert_int_equal(cublasGemmStridedBatchedEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 8, 3, 8, &one, f.A,
                                                CUDA_R_32F, 8, 0, f.B, CUDA_R_16F, 8, 0, &zero, f.D,
                                                CUDA_R_16F, 8, 0, 1, CUBLAS_COMPUTE_32F,
                                                CUBLAS_GEMM_DEFAULT),
                     CUBLAS_STATUS_NOT_SUPPORTED);
    assert_int_equal(cublasGemmStridedBatchedEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 8, 3, 8, &one, f.A,
                                                CUDA_R_16F, 8, 0, f.B, CUDA_R_16F, 8, 0, &zero, f.D,
                                                CUDA_R_16F, 8, 0, 1, CUBLAS_COMPUTE_64F,
                                                CUBLAS_GEMM_DEFAULT),
                     CUBLAS_STATUS_NOT_SUPPORTED);
    /* bf16 A and B into f16 C */
    assert_int_equal(cublasGemmStridedBatchedEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 8, 3, 8, &one, f.A,
                                                CUDA_R_16BF, 8, 0, f.B, CUDA_R_16BF, 8, 0, &zero,
                                                f.D, CUDA_R_16F, 8, 0, 1, CUBLAS_COMPUTE_32F,
                                                CUBLAS_GEMM_DEFAULT),
                     CUBLAS_STATUS_NOT_SUPPORTED);
    fx_free(&f);
    assert_int_equal(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}

static void test_cublas_sim_refuses_misaligned_operands(void **state) {
    (void)state;
    Fixture f;
    fx_init(&f);
    /* the default preference promises 256-byte operands: an A one element further is not
     * even 16-byte aligned, so the chosen algorithm cannot run on it */
    cublasLtMatmulHeuristicResult_t res = heuristic(&f.s);
    Ref r = f.r;
    r.A = f.A + 1;
    assert_int_equal(lt_run(&f.s, &r, f.D, f.D, &res, NULL, 0), CUBLAS_STATUS_NOT_SUPPORTED);
    assert_refusal_mentions("MIN_ALIGNMENT_A_BYTES");
    /* promising 2-byte alignment gets an algorithm that runs on it */
    uint32_t two = 2;
    assert_int_equal(cublasLtMatmulPreferenceSetAttribute(
                         f.s.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &two, sizeof(two)),
                     CUBLAS_STATUS_SUCCESS);
    res = heuristic(&f.s);
    assert_int_equal(lt_run(&f.s, &r, f.D, f.D, &res, NULL, 0), CUBLAS_STATUS_SUCCESS);
    /* D misaligned against the default promise */
    assert_int_equal(lt_run(&f.s, &f.r, f.D + 1, f.D + 1, NULL, NULL, 0),
                     CUBLAS_STATUS_NOT_SUPPORTED);
    /* a bias misaligned against the pointer the heuristic saw faults on the device */
    cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
    const void *bp = f.bias;
    assert_int_equal(
        cublasLtMatmulDescSetAttribute(f.s.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof(ep)),
        CUBLAS_STATUS_SUCCESS);
    assert_int_equal(
        cublasLtMatmulDescSetAttribute(f.s.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof(bp)),
        CUBLAS_STATUS_SUCCESS);
    res = heuristic(&f.s);
    assert_int_equal(lt_run(&f.s, &f.r, f.D, f.D, &res, NULL, 0), CUBLAS_STATUS_SUCCESS);
    bp = f.bias + 1;
    assert_int_equal(
        cublasLtMatmulDescSetAttribute(f.s.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof(bp)),
        CUBLAS_STATUS_SUCCESS);
    assert_int_equal(lt_run(&f.s, &f.r, f.D, f.D, &res, NULL, 0), CUBLAS_STATUS_EXECUTION_FAILED);
    assert_refusal_mentions("BIAS_POINTER");
    fx_free(&f);
    /* an odd leading dimension (every other column only 2-byte aligned) gets an algorithm
     * that needs no more, so a 2-byte aligned A runs under the default preference */
    Ref odd = ref_dense(0, 0, 3, 4, 5, 0);
    uint16_t *A = h16(32), *B = h16(32), *D = h16(32);
    fill16(A, 32);
    fill16(B, 32);
    odd.A = A + 1;
    odd.B = B;
    Lt s;
    lt_setup(&s, &odd);
    res = heuristic(&s);
    assert_int_equal(lt_run(&s, &odd, D, D, &res, NULL, 0), CUBLAS_STATUS_SUCCESS);
    check_gemm(&odd, D, D);
    lt_teardown(&s);
    free(A);
    free(B);
    free(D);
}

static void test_cublas_sim_refuses_small_workspace(void **state) {
    (void)state;
    Fixture f;
    fx_init(&f);
    size_t need = cublas_sim_workspace_bytes(f.r.m, f.r.n);
    set_ws_pref(&f.s, 1 << 20);
    cublasLtMatmulHeuristicResult_t res = heuristic(&f.s);
    assert_int_equal(res.workspaceSize, need);
    void *ws = abuf(1 << 20);
    assert_int_equal(lt_run(&f.s, &f.r, f.D, f.D, &res, ws, need - 1), CUBLAS_STATUS_INVALID_VALUE);
    assert_refusal_mentions("workspace");
    assert_int_equal(lt_run(&f.s, &f.r, f.D, f.D, &res, NULL, need), CUBLAS_STATUS_INVALID_VALUE);
    assert_int_equal(lt_run(&f.s, &f.r, f.D, f.D, &res, (char *)ws + 16, need),
                     CUBLAS_STATUS_INVALID_VALUE);
    assert_refusal_mentions("256-byte");
    assert_int_equal(lt_run(&f.s, &f.r, f.D, f.D, &res, ws, need), CUBLAS_STATUS_SUCCESS);
    /* a preference below what the algorithm would use gets one without workspace */
    set_ws_pref(&f.s, need - 1);
    res = heuristic(&f.s);
    assert_int_equal(res.workspaceSize, 0);
    assert_int_equal(lt_run(&f.s, &f.r, f.D, f.D, &res, NULL, 0), CUBLAS_STATUS_SUCCESS);
    fx_free(&f);
    /* cublasSetWorkspace: 256-byte alignment */
    cublasHandle_t h = NULL;
    assert_int_equal(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(cublasSetWorkspace(h, (char *)ws + 64, 1024), CUBLAS_STATUS_INVALID_VALUE);
    assert_int_equal(cublasSetWorkspace(h, ws, 1 << 20), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(cublasSetWorkspace(h, NULL, 0), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(cublasSetMathMode(h, (cublasMath_t)7), CUBLAS_STATUS_INVALID_VALUE);
    assert_int_equal(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
    free(ws);
}

static void test_cublas_sim_refuses_null_pointers_and_handles(void **state) {
    (void)state;
    Fixture f;
    fx_init(&f);
    float one = 1.0f;
    assert_int_equal(cublasLtMatmul(NULL, f.s.op, &one, f.A, f.s.a, f.B, f.s.b, &one, f.D, f.s.c,
                                    f.D, f.s.d, NULL, NULL, 0, NULL),
                     CUBLAS_STATUS_NOT_INITIALIZED);
    assert_int_equal(cublasLtMatmul(f.s.lt, f.s.op, NULL, f.A, f.s.a, f.B, f.s.b, &one, f.D, f.s.c,
                                    f.D, f.s.d, NULL, NULL, 0, NULL),
                     CUBLAS_STATUS_INVALID_VALUE);
    assert_int_equal(cublasLtMatmul(f.s.lt, f.s.op, &one, NULL, f.s.a, f.B, f.s.b, &one, f.D, f.s.c,
                                    f.D, f.s.d, NULL, NULL, 0, NULL),
                     CUBLAS_STATUS_INVALID_VALUE);
    assert_int_equal(cublasLtMatmul(f.s.lt, f.s.op, &one, f.A, NULL, f.B, f.s.b, &one, f.D, f.s.c,
                                    f.D, f.s.d, NULL, NULL, 0, NULL),
                     CUBLAS_STATUS_INVALID_VALUE);
    /* beta != 0 needs C */
    assert_int_equal(cublasLtMatmul(f.s.lt, f.s.op, &one, f.A, f.s.a, f.B, f.s.b, &one, NULL, f.s.c,
                                    f.D, f.s.d, NULL, NULL, 0, NULL),
                     CUBLAS_STATUS_INVALID_VALUE);
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    assert_int_equal(cublasLtMatmulAlgoGetHeuristic(f.s.lt, f.s.op, f.s.a, f.s.b, f.s.c, f.s.d,
                                                    f.s.pref, 0, &res, &found),
                     CUBLAS_STATUS_INVALID_VALUE);
    assert_int_equal(cublasLtMatmulAlgoGetHeuristic(NULL, f.s.op, f.s.a, f.s.b, f.s.c, f.s.d,
                                                    f.s.pref, 1, &res, &found),
                     CUBLAS_STATUS_NOT_INITIALIZED);
    /* an algo that no heuristic returned */
    cublasLtMatmulAlgo_t junk;
    memset(&junk, 0, sizeof(junk));
    assert_int_equal(cublasLtMatmul(f.s.lt, f.s.op, &one, f.A, f.s.a, f.B, f.s.b, &one, f.D, f.s.c,
                                    f.D, f.s.d, &junk, NULL, 0, NULL),
                     CUBLAS_STATUS_INVALID_VALUE);
    assert_int_equal(cublasLtCreate(NULL), CUBLAS_STATUS_INVALID_VALUE);
    assert_int_equal(cublasCreate(NULL), CUBLAS_STATUS_INVALID_VALUE);
    assert_int_equal(cublasSetStream(NULL, NULL), CUBLAS_STATUS_NOT_INITIALIZED);
    assert_int_equal(cublasSetWorkspace(NULL, NULL, 0), CUBLAS_STATUS_NOT_INITIALIZED);
    assert_int_equal(cublasGemmStridedBatchedEx(NULL, CUBLAS_OP_T, CUBLAS_OP_N, 8, 3, 8, &one, f.A,
                                                CUDA_R_16F, 8, 0, f.B, CUDA_R_16F, 8, 0, &one, f.D,
                                                CUDA_R_16F, 8, 0, 1, CUBLAS_COMPUTE_32F,
                                                CUBLAS_GEMM_DEFAULT),
                     CUBLAS_STATUS_NOT_INITIALIZED);
    cublasHandle_t h = NULL;
    assert_int_equal(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(cublasGemmStridedBatchedEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 8, 3, 8, NULL, f.A,
                                                CUDA_R_16F, 8, 0, f.B, CUDA_R_16F, 8, 0, &one, f.D,
                                                CUDA_R_16F, 8, 0, 1, CUBLAS_COMPUTE_32F,
                                                CUBLAS_GEMM_DEFAULT),
                     CUBLAS_STATUS_INVALID_VALUE);
    assert_int_equal(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
    /* attribute sizes must match their storage; operations are N, T or C */
    int64_t ld64 = 5;
    assert_int_equal(
        cublasLtMatrixLayoutSetAttribute(f.s.a, CUBLASLT_MATRIX_LAYOUT_LD, &ld64, sizeof(int32_t)),
        CUBLAS_STATUS_INVALID_VALUE);
    int32_t conj = CUBLAS_OP_CONJG;
    assert_int_equal(
        cublasLtMatmulDescSetAttribute(f.s.op, CUBLASLT_MATMUL_DESC_TRANSA, &conj, sizeof(conj)),
        CUBLAS_STATUS_INVALID_VALUE);
    fx_free(&f);
}

static void test_cublas_sim_refuses_inconsistent_batches_and_shapes(void **state) {
    (void)state;
    Fixture f;
    /* batch counts differ */
    fx_init(&f);
    int32_t two = 2;
    int64_t stride = 64;
    assert_int_equal(cublasLtMatrixLayoutSetAttribute(f.s.a, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                      &two, sizeof(two)),
                     CUBLAS_STATUS_SUCCESS);
    assert_int_equal(lt_run(&f.s, &f.r, f.D, f.D, NULL, NULL, 0), CUBLAS_STATUS_INVALID_VALUE);
    assert_refusal_mentions("BATCH_COUNT");
    assert_no_algo(&f);
    fx_free(&f);
    /* D's members overlap (8 x 3, ld 8, stride 4: member 1's row 0 is member 0's row 4) */
    fx_init(&f);
    cublasLtMatrixLayout_t ls[4] = {f.s.a, f.s.b, f.s.c, f.s.d};
    for (int i = 0; i < 4; i++) {
        int64_t st = i >= 2 ? 4 : stride;
        assert_int_equal(cublasLtMatrixLayoutSetAttribute(ls[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                          &two, sizeof(two)),
                         CUBLAS_STATUS_SUCCESS);
        assert_int_equal(cublasLtMatrixLayoutSetAttribute(
                             ls[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &st, sizeof(st)),
                         CUBLAS_STATUS_SUCCESS);
    }
    assert_int_equal(lt_run(&f.s, &f.r, f.D, f.D, NULL, NULL, 0), CUBLAS_STATUS_INVALID_VALUE);
    assert_refusal_mentions("overlap");
    fx_free(&f);
    /* op(A) is 8 x 8 but op(B) 6 x 3 */
    fx_init(&f);
    uint64_t rows = 6;
    assert_int_equal(
        cublasLtMatrixLayoutSetAttribute(f.s.b, CUBLASLT_MATRIX_LAYOUT_ROWS, &rows, sizeof(rows)),
        CUBLAS_STATUS_SUCCESS);
    int64_t ld = 6;
    assert_int_equal(
        cublasLtMatrixLayoutSetAttribute(f.s.b, CUBLASLT_MATRIX_LAYOUT_LD, &ld, sizeof(ld)),
        CUBLAS_STATUS_SUCCESS);
    assert_int_equal(lt_run(&f.s, &f.r, f.D, f.D, NULL, NULL, 0), CUBLAS_STATUS_INVALID_VALUE);
    assert_refusal_mentions("conflict");
    fx_free(&f);
    /* in place with a C layout other than D's */
    fx_init(&f);
    ld = 9;
    assert_int_equal(
        cublasLtMatrixLayoutSetAttribute(f.s.c, CUBLASLT_MATRIX_LAYOUT_LD, &ld, sizeof(ld)),
        CUBLAS_STATUS_SUCCESS);
    f.r.beta = 1.0f;
    assert_int_equal(lt_run(&f.s, &f.r, f.D, f.D, NULL, NULL, 0), CUBLAS_STATUS_INVALID_VALUE);
    assert_refusal_mentions("in place");
    fx_free(&f);
    /* cuBLAS: negative batch count, overlapping members of C (stride 4 < m 8) */
    cublasHandle_t h = NULL;
    assert_int_equal(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    fx_init(&f);
    float one = 1.0f;
    assert_int_equal(cublasGemmStridedBatchedEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 8, 3, 8, &one, f.A,
                                                CUDA_R_16F, 8, 0, f.B, CUDA_R_16F, 8, 0, &one, f.D,
                                                CUDA_R_16F, 8, 0, -1, CUBLAS_COMPUTE_32F,
                                                CUBLAS_GEMM_DEFAULT),
                     CUBLAS_STATUS_INVALID_VALUE);
    assert_int_equal(cublasGemmStridedBatchedEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 8, 3, 8, &one, f.A,
                                                CUDA_R_16F, 8, 0, f.B, CUDA_R_16F, 8, 0, &one, f.D,
                                                CUDA_R_16F, 8, 4, 2, CUBLAS_COMPUTE_32F,
                                                CUBLAS_GEMM_DEFAULT),
                     CUBLAS_STATUS_INVALID_VALUE);
    fx_free(&f);
    assert_int_equal(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}

static void test_cublas_sim_status_names(void **state) {
    (void)state;
    assert_string_equal(cublasGetStatusName(CUBLAS_STATUS_NOT_SUPPORTED),
                        "CUBLAS_STATUS_NOT_SUPPORTED");
    assert_string_equal(cublasGetStatusName(CUBLAS_STATUS_INVALID_VALUE),
                        "CUBLAS_STATUS_INVALID_VALUE");
    /* the real numbers (cublas_api.h of the toolkit) */
    assert_int_equal(CUBLAS_STATUS_INVALID_VALUE, 7);
    assert_int_equal(CUBLAS_STATUS_EXECUTION_FAILED, 13);
    assert_int_equal(CUBLAS_STATUS_NOT_SUPPORTED, 15);
    assert_int_equal(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, 26);
    assert_int_equal(CUBLAS_COMPUTE_32F, 68);
    assert_true(strlen(cublasGetStatusString(CUBLAS_STATUS_ALLOC_FAILED)) > 0);
}

int main(void) {
    /* refusals are expected here: keep stderr quiet (the reason is checked instead) */
    setenv("CUBLASLT_LOG_LEVEL", "0", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cublas_sim_lt_odd_sizes_every_transpose),
        cmocka_unit_test(test_cublas_sim_lt_strided_batch),
        cmocka_unit_test(test_cublas_sim_lt_bias_epilogue),
        cmocka_unit_test(test_cublas_sim_rounds_once),
        cmocka_unit_test(test_cublas_sim_gemm_strided_batched_ex),
        cmocka_unit_test(test_cublas_sim_bf16),
        cmocka_unit_test(test_cublas_sim_refuses_small_leading_dimension),
        cmocka_unit_test(test_cublas_sim_refuses_unsupported_types_and_epilogues),
        cmocka_unit_test(test_cublas_sim_refuses_misaligned_operands),
        cmocka_unit_test(test_cublas_sim_refuses_small_workspace),
        cmocka_unit_test(test_cublas_sim_refuses_null_pointers_and_handles),
        cmocka_unit_test(test_cublas_sim_refuses_inconsistent_batches_and_shapes),
        cmocka_unit_test(test_cublas_sim_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
