/* cuda_matmul.cu: every GEMM of the CUDA backend, through cuBLASLt: f16 A, B, C, D, f32
 * compute and scaling, optional bias epilogue, optional strided batch (attention). With
 * grad_dtype=float32 the weight-gradient GEMM accumulates into f32 C = D (f16 A, B).
 *
 * Row-major tensors are read as column-major transposes: out (N,OC) = inp (N,IC) @ W^T is the
 * column-major out^T (OC x N) = W^T (OC x IC) inp^T (IC x N), i.e. opA = T on W (IC x OC,
 * ld IC), opB = N on inp (IC x N, ld IC).
 *
 * Plans (descriptors, layouts and the heuristic's algorithm) are cached per shape, transposes,
 * batch, strides, epilogue, beta != 0, C/D type and operand alignment; pointers are not part
 * of the key.
 * The workspace is the arena's `ws.backend` handed over with gpt_cuda_workspace_set (none
 * until then). When cuBLASLt offers no algorithm for a shape (or refuses its choice at launch),
 * cuBLAS's GemmStridedBatchedEx runs it (bias then added by a kernel), with the same workspace.
 *
 * Not here: attention's own kernels (cuda_attention.cu), bias/LayerNorm column sums
 * (cuda_layers.cu). */
#include <string.h>

#include "cuda_common.cuh"

namespace CUDA_X_NS {

/* alignment of a device pointer in bytes, capped at 256 (what cuBLASLt's heuristic uses) */
static uint32_t ptr_alignment(const void *p) {
    uintptr_t a = (uintptr_t)p;
    uint32_t al = 256;
    while (al > 2 && (a % al) != 0)
        al >>= 1;
    return al;
}

/* alignment of an operand (elements of elem_bytes) and of every batch member stride_elems
 * further on */
static uint32_t operand_alignment(const void *p, int64_t stride_elems, size_t elem_bytes) {
    uint32_t a = ptr_alignment(p);
    if (stride_elems != 0) {
        uint32_t s = ptr_alignment((const void *)(uintptr_t)(stride_elems * (int64_t)elem_bytes));
        if (s < a)
            a = s;
    }
    return a;
}

typedef struct GemmKey {
    int transa, transb, batch, has_bias, has_beta;
    int d_f32; /* C and D f32 (else f16) */
    int64_t m, n, k, lda, ldb, ldc, ldd, sa, sb, sc, sd;
    uint32_t align_a, align_b, align_c, align_d, align_bias;
    size_t ws_bytes;
} GemmKey;

typedef struct GemmPlan {
    GemmKey key;
    int valid;    /* the entry holds a plan */
    int has_algo; /* cuBLASLt found an algorithm (else the cuBLAS fallback) */
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, c, d;
    cublasLtMatmulAlgo_t algo;
    uint64_t last_use;
} GemmPlan;

#define GEMM_CACHE_SIZE 128
static GemmPlan g_cache[GEMM_CACHE_SIZE];
static uint64_t g_cache_clock = 0;

static void plan_destroy(GemmPlan *p) {
    if (!p->valid)
        return;
    if (p->op)
        CUBLAS_CHECK(cublasLtMatmulDescDestroy(p->op));
    cublasLtMatrixLayout_t *ls[4] = {&p->a, &p->b, &p->c, &p->d};
    for (int i = 0; i < 4; i++)
        if (*ls[i])
            CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(*ls[i]));
    memset(p, 0, sizeof(*p));
}

static cublasLtMatrixLayout_t layout_make(cudaDataType_t type, int64_t rows, int64_t cols,
                                          int64_t ld, int batch, int64_t stride) {
    cublasLtMatrixLayout_t l = NULL;
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, (uint64_t)rows, (uint64_t)cols, ld));
    if (l && batch > 1) {
        int32_t bc = batch;
        CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc,
                                                      sizeof(bc)));
        CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
            l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
    }
    return l;
}

static void plan_build(GemmPlan *p, const GemmKey *k) {
    memset(p, 0, sizeof(*p));
    p->key = *k;
    p->valid = 1;
    cublasOperation_t ta = k->transa ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t tb = k->transb ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    if (!p->op)
        return;
    CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    if (k->has_bias) {
        cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
        CUBLAS_CHECK(
            cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof(ep)));
        cudaDataType_t bt = cuda_data_type<floatX>();
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt,
                                                    sizeof(bt)));
    }
    cudaDataType_t cd = k->d_f32 ? CUDA_R_32F : cuda_data_type<floatX>();
    p->a = layout_make(cuda_data_type<floatX>(), k->transa ? k->k : k->m, k->transa ? k->m : k->k,
                       k->lda, k->batch, k->sa);
    p->b = layout_make(cuda_data_type<floatX>(), k->transb ? k->n : k->k, k->transb ? k->k : k->n,
                       k->ldb, k->batch, k->sb);
    p->c = layout_make(cd, k->m, k->n, k->ldc, k->batch, k->sc);
    p->d = layout_make(cd, k->m, k->n, k->ldd, k->batch, k->sd);
    if (!p->a || !p->b || !p->c || !p->d)
        return;

    cublasLtMatmulPreference_t pref = NULL;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    if (!pref)
        return;
    uint64_t ws = k->ws_bytes;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
    const struct {
        cublasLtMatmulPreferenceAttributes_t attr;
        uint32_t value;
    } aligns[] = {{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, k->align_a},
                  {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, k->align_b},
                  {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, k->align_c},
                  {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, k->align_d}};
    for (size_t i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++)
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, aligns[i].attr, &aligns[i].value,
                                                          sizeof(uint32_t)));
    cublasLtMatmulHeuristicResult_t res;
    memset(&res, 0, sizeof(res));
    int found = 0;
    /* "not supported" is an answer here (the fallback takes it), not an error */
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(cuda_cublaslt(), p->op, p->a, p->b, p->c,
                                                       p->d, pref, 1, &res, &found);
    if (st == CUBLAS_STATUS_SUCCESS && found > 0 && res.state == CUBLAS_STATUS_SUCCESS &&
        res.workspaceSize <= k->ws_bytes) {
        p->algo = res.algo;
        p->has_algo = 1;
    } else if (st != CUBLAS_STATUS_SUCCESS && st != CUBLAS_STATUS_NOT_SUPPORTED) {
        CUBLAS_CHECK(st);
    }
    CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
}

static GemmPlan *plan_get(const GemmKey *k) {
    g_cache_clock++;
    GemmPlan *lru = &g_cache[0];
    for (int i = 0; i < GEMM_CACHE_SIZE; i++) {
        GemmPlan *p = &g_cache[i];
        if (p->valid && memcmp(&p->key, k, sizeof(*k)) == 0) {
            p->last_use = g_cache_clock;
            return p;
        }
        if (!p->valid || (lru->valid && p->last_use < lru->last_use))
            lru = p;
    }
    plan_destroy(lru);
    plan_build(lru, k);
    lru->last_use = g_cache_clock;
    return lru;
}

/* the cuBLAS path for shapes cuBLASLt declines */
static void gemm_fallback(const GemmKey *k, float alpha, const floatX *A, const floatX *B,
                          float beta, const void *Cm, void *D, const floatX *bias,
                          cudaStream_t stream) {
    size_t es = k->d_f32 ? sizeof(float) : sizeof(floatX);
    cublasHandle_t h = cuda_cublas();
    CUBLAS_CHECK(cublasSetStream(h, stream));
    /* cublasSetStream resets the workspace to cuBLAS's own pool: give it ours (or none) */
    cuda_cublas_workspace_apply();
    if (beta != 0.0f && Cm != D) {
        ASSERT_MSG(k->batch == 1, "gemm fallback: separate C and D need batch 1");
        CUDA_CHECK(cudaMemcpy2DAsync(D, (size_t)k->ldd * es, Cm, (size_t)k->ldc * es,
                                     (size_t)k->m * es, (size_t)k->n, cudaMemcpyDeviceToDevice,
                                     stream));
    }
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        h, k->transa ? CUBLAS_OP_T : CUBLAS_OP_N, k->transb ? CUBLAS_OP_T : CUBLAS_OP_N, (int)k->m,
        (int)k->n, (int)k->k, &alpha, A, cuda_data_type<floatX>(), (int)k->lda, k->sa, B,
        cuda_data_type<floatX>(), (int)k->ldb, k->sb, &beta, D,
        k->d_f32 ? CUDA_R_32F : cuda_data_type<floatX>(), (int)k->ldd, k->sd, k->batch,
        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (bias) {
        ASSERT_MSG(k->batch == 1 && k->ldd == k->m && !k->d_f32,
                   "gemm fallback: bias needs a dense f16 D");
        cuda_bias_add((floatX *)D, bias, k->n, k->m, stream);
    }
}

/* cuda_gemm_x with C and D of either type (d_f32: f32, else f16); bias only with f16 D. */
static void gemm(int transa, int transb, int64_t m, int64_t n, int64_t k, float alpha,
                 const floatX *A, int64_t lda, int64_t strideA, const floatX *B, int64_t ldb,
                 int64_t strideB, float beta, const void *Cm, int64_t ldc, int64_t strideC, void *D,
                 int64_t ldd, int64_t strideD, int batch, const floatX *bias, int d_f32,
                 cudaStream_t stream) {
    ASSERT(m > 0 && n > 0 && k > 0 && batch >= 1);
    ASSERT(!(bias && d_f32));
    ASSERT(m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX);
    if (beta == 0.0f || !Cm) {
        beta = 0.0f;
        Cm = D;
        ldc = ldd;
        strideC = strideD;
    }
    size_t ws_bytes = 0;
    void *ws = cuda_workspace(&ws_bytes);
    GemmKey key;
    memset(&key, 0, sizeof(key)); /* padding too: the key is compared with memcmp */
    key.transa = transa;
    key.transb = transb;
    key.batch = batch;
    key.has_bias = bias != NULL;
    key.has_beta = beta != 0.0f;
    key.d_f32 = d_f32;
    key.m = m;
    key.n = n;
    key.k = k;
    key.lda = lda;
    key.ldb = ldb;
    key.ldc = ldc;
    key.ldd = ldd;
    key.sa = batch > 1 ? strideA : 0;
    key.sb = batch > 1 ? strideB : 0;
    key.sc = batch > 1 ? strideC : 0;
    key.sd = batch > 1 ? strideD : 0;
    /* every matrix of a batch must meet the alignment asked for, not just the first */
    size_t es = d_f32 ? sizeof(float) : sizeof(floatX);
    key.align_a = operand_alignment(A, key.sa, sizeof(floatX));
    key.align_b = operand_alignment(B, key.sb, sizeof(floatX));
    key.align_c = operand_alignment(Cm, key.sc, es);
    key.align_d = operand_alignment(D, key.sd, es);
    key.align_bias = bias ? ptr_alignment(bias) : 0;
    key.ws_bytes = ws_bytes;
    GemmPlan *p = plan_get(&key);
    if (!p->has_algo) {
        gemm_fallback(&key, alpha, A, B, beta, Cm, D, bias, stream);
        return;
    }
    if (bias)
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                    sizeof(bias)));
    cublasStatus_t st = cublasLtMatmul(cuda_cublaslt(), p->op, &alpha, A, p->a, B, p->b, &beta, Cm,
                                       p->c, D, p->d, &p->algo, ws, ws_bytes, stream);
    if (st == CUBLAS_STATUS_NOT_SUPPORTED) {
        /* the heuristic's choice refused at launch: this shape goes to cuBLAS from now on */
        p->has_algo = 0;
        gemm_fallback(&key, alpha, A, B, beta, Cm, D, bias, stream);
        return;
    }
    CUBLAS_CHECK(st);
}

void cuda_gemm_x(int transa, int transb, int64_t m, int64_t n, int64_t k, float alpha,
                 const floatX *A, int64_t lda, int64_t strideA, const floatX *B, int64_t ldb,
                 int64_t strideB, float beta, const floatX *Cm, int64_t ldc, int64_t strideC,
                 floatX *D, int64_t ldd, int64_t strideD, int batch, const floatX *bias,
                 cudaStream_t stream) {
    gemm(transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta, Cm, ldc, strideC,
         D, ldd, strideD, batch, bias, 0, stream);
}

/* ---------------------------------------------------------------------------------------- */
/* the table's matmuls                                                                       */

void cuda_matmul_forward(void *out, const void *inp, const void *weight, const void *bias,
                         const void *residual, int64_t N, int64_t IC, int64_t OC, void *stream) {
    /* out^T (OC x N) = W^T inp^T (+ residual^T) (+ bias per row of out^T) */
    cuda_gemm_x(1, 0, OC, N, IC, 1.0f, (const floatX *)weight, IC, 0, (const floatX *)inp, IC, 0,
                residual ? 1.0f : 0.0f, (const floatX *)residual, OC, 0, (floatX *)out, OC, 0, 1,
                (const floatX *)bias, cuda_stream(stream));
}

/* dweight and dbias f16, or f32 when grad_f32 (grad_dtype=float32) */
static void matmul_backward(void *dinp, void *dweight, void *dbias, const void *dout,
                            const void *inp, const void *weight, int64_t N, int64_t IC, int64_t OC,
                            int grad_f32, void *stream) {
    cudaStream_t s = cuda_stream(stream);
    /* dweight^T (IC x OC) += inp^T (IC x N) @ dout (N x OC): opA = N on inp^T, opB = T on
     * dout^T (OC x N, ld OC). Done first: dinp may alias inp. */
    gemm(0, 1, IC, OC, N, 1.0f, (const floatX *)inp, IC, 0, (const floatX *)dout, OC, 0, 1.0f,
         dweight, IC, 0, dweight, IC, 0, 1, NULL, grad_f32, s);
    if (dbias && grad_f32)
        cuda_bias_backward_f32((float *)dbias, (const floatX *)dout, N, OC, s);
    else if (dbias)
        cuda_bias_backward((floatX *)dbias, (const floatX *)dout, N, OC, s);
    /* dinp^T (IC x N) = W^T... as column-major: W (IC x OC, ld IC) @ dout^T (OC x N, ld OC) */
    if (dinp)
        cuda_gemm_x(0, 0, IC, N, OC, 1.0f, (const floatX *)weight, IC, 0, (const floatX *)dout, OC,
                    0, 0.0f, NULL, IC, 0, (floatX *)dinp, IC, 0, 1, NULL, s);
}

void cuda_matmul_backward(void *dinp, void *dweight, void *dbias, const void *dout, const void *inp,
                          const void *weight, int64_t N, int64_t IC, int64_t OC, void *stream) {
    matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, IC, OC, 0, stream);
}

void cuda_matmul_backward_g32(void *dinp, void *dweight, void *dbias, const void *dout,
                              const void *inp, const void *weight, int64_t N, int64_t IC,
                              int64_t OC, void *stream) {
    matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, IC, OC, 1, stream);
}

} // namespace CUDA_X_NS
