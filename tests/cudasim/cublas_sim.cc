/* cublas_sim.cc: the CUDA simulator's cuBLASLt and cuBLAS, on the host. Exactly the subset the
 * backend calls (include/cublasLt.h, include/cublas_v2.h): handles; matmul descriptors,
 * matrix layouts (batch count, strided batch offset) and preferences (max workspace, minimum
 * alignments); the heuristic; cublasLtMatmul; cublasGemmStridedBatchedEx; stream, workspace and
 * math-mode setters.
 *
 * Semantics are NVIDIA's, column-major: D = alpha * op(A) op(B) + beta * C (+ bias per row of D
 * with CUBLASLT_EPILOGUE_BIAS), element (i, j) of a matrix at ptr[i + j * ld], batch member b
 * at ptr + b * stride elements. Types (the "Datatypes Supported" rows for CUBLAS_COMPUTE_32F
 * with CUDA_R_32F scale that the backend uses): A and B both f16 or both bf16, C and D both of
 * A's type or both f32; compute and scale f32. Products are summed in f32 in k order; alpha,
 * beta * C and the bias are applied in f32; the result is rounded to D's type once, when D is
 * written (f16, bf16: round to nearest even, with the toolkit's __float2half_rn and
 * __float2bfloat16_rn). When beta == 0, C is not read (as the libraries do), so
 * a C never written does not leak into D.
 *
 * Refusals: every check returns the status the real library documents for it, and its comment
 * names the documentation section (NVIDIA cuBLAS documentation: "cublasLtMatmul()",
 * "cublasLtMatmulAlgoGetHeuristic()", "cublasLtMatrixLayoutAttribute_t",
 * "cublasLtMatmulDescAttributes_t", "cublasLtMatmulPreferenceAttributes_t",
 * "cublasGemmStridedBatchedEx()", "cublasSetWorkspace()", the toolkit's cublasLt.h). Checks marked
 * "simulator" have no documented status: they refuse what would be a race or a fault on a GPU.
 * Configurations the real library runs but this simulator does not implement (other types,
 * epilogues, orders, pointer modes) return CUBLAS_STATUS_NOT_SUPPORTED, the status the real
 * library gives for what it cannot run. Each refusal's reason is kept for
 * cublas_sim_last_refusal() and printed to stderr unless CUBLASLT_LOG_LEVEL=0 (the heuristic,
 * whose NOT_SUPPORTED is an answer, prints only at CUBLASLT_LOG_LEVEL >= 2).
 *
 * The algorithms' model: a 16-bit algorithm reads with 16-byte vectors when it can. The heuristic
 * derives what the chosen algorithm needs from what it is told: the preference's minimum
 * alignments (default 256), the leading dimensions and batch strides, and the bias pointer's
 * value in the descriptor. cublasLtMatmul then refuses operands less aligned than that, as
 * the real library refuses an algorithm on pointers its preference promised otherwise.
 * With enough workspace the algorithm keeps its f32 accumulator there (split-K style), so a
 * workspace smaller than declared is caught by the simulator's memory poisoning.
 *
 * Streams: the arguments are checked and alpha and beta read at the call; the GEMM itself is
 * work on the call's stream (cublasLtMatmul's argument, cublasSetStream's for cuBLAS). Linked
 * into the simulated binaries it goes through the runtime's stream queue
 * (cudasim_stream_enqueue, tests/cudasim/cudasim_stream.cc): it runs at the call on the legacy
 * stream, and when something waits for it on a created stream; a stream handle the runtime
 * does not know is refused (CUBLAS_STATUS_EXECUTION_FAILED, simulator check: the launch would
 * fail). Linked without the runtime (test_cublas_sim) every GEMM runs at the call. Not here:
 * the CUDA runtime, memory and kernels (the rest of tests/cudasim/). */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <new>
#include <vector>

#include "cublasLt.h"
#include "cublas_sim.h"
#include "cublas_v2.h"

/* the simulated runtime's stream queue; NULL when linked without it (weak) */
extern "C" int cudasim_stream_enqueue(cudaStream_t s, void (*fn)(void *), void *ctx)
    __attribute__((weak));

namespace {

/* widest vector a 16-bit algorithm reads with ("Tensor Core Usage": 16-byte aligned pointers) */
const uint32_t SIM_VECTOR_BYTES = 16;
/* the default of the preference's CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*_BYTES */
const uint32_t SIM_DEFAULT_ALIGNMENT = 256;
/* cublasLtMatmul(): the workspace "must be 256B aligned"; cublasSetWorkspace(): "aligned to at
 * least 256 bytes" */
const uintptr_t SIM_WORKSPACE_ALIGNMENT = 256;

const uint32_t MAGIC_LAYOUT = 0x4c61796fu, MAGIC_DESC = 0x44657363u, MAGIC_PREF = 0x50726566u,
               MAGIC_ALGO = 0x416c676fu;

struct SimLayout {
    uint32_t magic;
    int32_t type, order, batch;
    uint64_t rows, cols;
    int64_t ld, stride;
};

struct SimDesc {
    uint32_t magic;
    int32_t compute, scale, pointer_mode, transa, transb, transc;
    uint32_t epilogue;
    const void *bias;
    int32_t bias_type;
    int64_t bias_stride;
};

struct SimPref {
    uint32_t magic;
    uint32_t align[4]; /* A, B, C, D */
    uint64_t max_ws;
};

struct SimAlgo {
    uint32_t magic;
    uint32_t align[4]; /* what the algorithm needs of A, B, C, D (bytes) */
    uint32_t bias_align;
    uint64_t ws_bytes;
};

static_assert(sizeof(SimLayout) <= sizeof(cublasLtMatrixLayoutOpaque_t), "layout size");
static_assert(sizeof(SimDesc) <= sizeof(cublasLtMatmulDescOpaque_t), "desc size");
static_assert(sizeof(SimPref) <= sizeof(cublasLtMatmulPreferenceOpaque_t), "pref size");
static_assert(sizeof(SimAlgo) <= sizeof(cublasLtMatmulAlgo_t), "algo size");

char g_refusal[512];

int log_level(void) {
    const char *s = getenv("CUBLASLT_LOG_LEVEL");
    return s && *s ? atoi(s) : 1;
}

/* Records why a call is refused and returns st; printed at log level >= min_level. */
cublasStatus_t refuse_at(int min_level, cublasStatus_t st, const char *fn, const char *fmt, ...) {
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(g_refusal, sizeof(g_refusal), "%s: %s -> %s", fn, what, cublasGetStatusName(st));
    if (log_level() >= min_level)
        fprintf(stderr, "cublas (simulated): %s\n", g_refusal);
    return st;
}

#define REFUSE(st, fn, ...) refuse_at(1, st, fn, __VA_ARGS__)

SimLayout *layout_of(cublasLtMatrixLayout_t l) {
    SimLayout *s = reinterpret_cast<SimLayout *>(l);
    return s && s->magic == MAGIC_LAYOUT ? s : nullptr;
}
SimDesc *desc_of(cublasLtMatmulDesc_t d) {
    SimDesc *s = reinterpret_cast<SimDesc *>(d);
    return s && s->magic == MAGIC_DESC ? s : nullptr;
}
SimPref *pref_of(cublasLtMatmulPreference_t p) {
    SimPref *s = reinterpret_cast<SimPref *>(p);
    return s && s->magic == MAGIC_PREF ? s : nullptr;
}

size_t type_bytes(int32_t t) {
    switch (t) {
    case CUDA_R_16F:
    case CUDA_R_16BF:
        return 2;
    case CUDA_R_32F:
    case CUDA_R_32I:
        return 4;
    case CUDA_R_64F:
        return 8;
    case CUDA_R_8I:
        return 1;
    default:
        return 0;
    }
}

const char *type_name(int32_t t) {
    switch (t) {
    case CUDA_R_16F:
        return "CUDA_R_16F";
    case CUDA_R_32F:
        return "CUDA_R_32F";
    case CUDA_R_64F:
        return "CUDA_R_64F";
    case CUDA_R_16BF:
        return "CUDA_R_16BF";
    case CUDA_R_8I:
        return "CUDA_R_8I";
    case CUDA_R_32I:
        return "CUDA_R_32I";
    default:
        return "unknown type";
    }
}

/* largest power of two <= cap dividing v (cap when v is 0) */
uint32_t alignment_of(uint64_t v, uint32_t cap) {
    uint32_t a = cap;
    while (a > 1 && v % a != 0)
        a >>= 1;
    return a;
}

uint32_t u32min(uint32_t a, uint32_t b) { return a < b ? a : b; }

/* Whether two of `batch` column-major rows x cols matrices (leading dimension ld, ld >= rows)
 * placed stride elements apart share an element: member b's (i, j) is at b*stride + i + j*ld,
 * so members a distance d = delta*stride apart collide when d = di + dj*ld with |di| < rows
 * and |dj| < cols. Exact, in O(batch * cols). */
bool members_overlap(int64_t rows, int64_t cols, int64_t ld, int64_t stride, int64_t batch) {
    if (batch <= 1 || rows <= 0 || cols <= 0)
        return false;
    for (int64_t delta = 1; delta < batch; delta++) {
        int64_t d = delta * stride;
        for (int64_t dj = -(cols - 1); dj <= cols - 1; dj++) {
            int64_t di = d - dj * ld;
            if (di > -rows && di < rows)
                return true;
        }
    }
    return false;
}

/* ---------------------------------------------------------------------------------------- */
/* one GEMM, resolved from either API                                                        */

struct Gemm {
    int ta, tb; /* op is a transpose */
    int64_t m, n, k;
    int batch;
    int32_t atype; /* A's and B's type: f16 or bf16 */
    int32_t ctype; /* C's and D's type: atype or f32 */
    const void *A, *B, *C;
    void *D;
    int64_t lda, ldb, ldc, ldd, sa, sb, sc, sd;
    float alpha, beta;
    const void *bias; /* f16 or f32 as D, m elements, NULL for none */
    int64_t bias_stride;
    float *ws; /* the accumulator in the workspace, or NULL: a host buffer */
};

float load(const void *p, int32_t type, int64_t i) {
    if (type == CUDA_R_16F)
        return __half2float(static_cast<const __half *>(p)[i]);
    if (type == CUDA_R_16BF)
        return __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[i]);
    return static_cast<const float *>(p)[i];
}

void store(void *p, int32_t type, int64_t i, float v) {
    if (type == CUDA_R_16F)
        static_cast<__half *>(p)[i] = __float2half_rn(v); /* the one rounding */
    else if (type == CUDA_R_16BF)
        static_cast<__nv_bfloat16 *>(p)[i] = __float2bfloat16_rn(v);
    else
        static_cast<float *>(p)[i] = v;
}

/* "Datatypes Supported" (cublasLtMatmul(), cublasGemmEx()), the CUBLAS_COMPUTE_32F rows with
 * 16-bit inputs: A and B the same 16-bit type, C and D that type or f32. */
bool types_supported(int32_t a, int32_t b, int32_t c) {
    return (a == CUDA_R_16F || a == CUDA_R_16BF) && b == a && (c == a || c == CUDA_R_32F);
}

void gemm_run(const Gemm &g) {
    if (g.m == 0 || g.n == 0)
        return;
    std::vector<float> opa((size_t)(g.m * g.k)); /* op(A) row i: opa[i * k + p] */
    std::vector<float> opb((size_t)(g.n * g.k)); /* op(B) column j: opb[j * k + p] */
    std::vector<float> host_acc;
    float *acc = g.ws;
    if (!acc) {
        host_acc.resize((size_t)(g.m * g.n));
        acc = host_acc.data();
    }
    for (int b = 0; b < g.batch; b++) {
        const void *A = static_cast<const char *>(g.A) + (size_t)(b * g.sa) * 2;
        const void *B = static_cast<const char *>(g.B) + (size_t)(b * g.sb) * 2;
        for (int64_t i = 0; i < g.m; i++)
            for (int64_t p = 0; p < g.k; p++)
                opa[i * g.k + p] = load(A, g.atype, g.ta ? p + i * g.lda : i + p * g.lda);
        for (int64_t j = 0; j < g.n; j++)
            for (int64_t p = 0; p < g.k; p++)
                opb[j * g.k + p] = load(B, g.atype, g.tb ? j + p * g.ldb : p + j * g.ldb);
        for (int64_t j = 0; j < g.n; j++)
            for (int64_t i = 0; i < g.m; i++) {
                const float *a = &opa[i * g.k], *bb = &opb[j * g.k];
                float s = 0.0f;
                for (int64_t p = 0; p < g.k; p++)
                    s += a[p] * bb[p];
                acc[i + j * g.m] = s;
            }
        size_t es = type_bytes(g.ctype);
        const char *C = g.C ? static_cast<const char *>(g.C) + (size_t)(b * g.sc) * es : nullptr;
        char *D = static_cast<char *>(g.D) + (size_t)(b * g.sd) * es;
        const char *bias =
            g.bias ? static_cast<const char *>(g.bias) + (size_t)(b * g.bias_stride) * es : nullptr;
        for (int64_t j = 0; j < g.n; j++)
            for (int64_t i = 0; i < g.m; i++) {
                float v = g.alpha * acc[i + j * g.m];
                if (g.beta != 0.0f)
                    v += g.beta * load(C, g.ctype, i + j * g.ldc);
                if (bias)
                    v += load(bias, g.ctype, i);
                store(D, g.ctype, i + j * g.ldd, v);
            }
    }
}

void gemm_queued(void *p) {
    Gemm *g = static_cast<Gemm *>(p);
    gemm_run(*g);
    delete g;
}

/* g as work on `stream` (a copy of it when queued); refused when the runtime knows no such
 * stream (simulator check: the launch would fail) */
cublasStatus_t gemm_submit(const Gemm &g, cudaStream_t stream, const char *fn) {
    if (!cudasim_stream_enqueue) {
        gemm_run(g);
        return CUBLAS_STATUS_SUCCESS;
    }
    Gemm *q = new Gemm(g);
    if (cudasim_stream_enqueue(stream, gemm_queued, q) >= 0)
        return CUBLAS_STATUS_SUCCESS; /* ran now (and freed), or queued */
    delete q;
    return REFUSE(CUBLAS_STATUS_EXECUTION_FAILED, fn,
                  "stream %p is not a stream of the simulated runtime (simulator check)",
                  (void *)stream);
}

/* ---------------------------------------------------------------------------------------- */
/* cuBLASLt: the checks shared by the heuristic and the matmul                               */

struct LtProblem {
    const SimDesc *op;
    const SimLayout *a, *b, *c, *d;
    int ta, tb;
    int64_t m, n, k;
};

/* Validates descriptors and layouts (no data pointers); fills p. fn names the caller. */
cublasStatus_t lt_check(const char *fn, const SimDesc *op, const SimLayout *a, const SimLayout *b,
                        const SimLayout *c, const SimLayout *d, LtProblem *p, int lvl) {
    /* cublasLtMatmul(), return values: INVALID_VALUE "if the parameters are unexpectedly NULL" */
    if (!op || !a || !b || !d)
        return refuse_at(lvl, CUBLAS_STATUS_INVALID_VALUE, fn,
                         "a NULL or destroyed descriptor or layout (operation %p, A %p, B %p, "
                         "D %p) (cublasLtMatmul(): parameters unexpectedly NULL)",
                         (const void *)op, (const void *)a, (const void *)b, (const void *)d);
    /* cublasLtMatmul(): "If Cdesc is omitted, this function assumes it to be equal to Ddesc" */
    if (!c)
        c = d;
    /* cublasLtMatmul(), Datatypes Supported: the simulator implements the CUBLAS_COMPUTE_32F /
     * CUDA_R_32F scale rows with A, B both CUDA_R_16F or both CUDA_R_16BF and C, D of their type
     * or CUDA_R_32F */
    if (op->compute != CUBLAS_COMPUTE_32F || op->scale != CUDA_R_32F)
        return refuse_at(lvl, CUBLAS_STATUS_NOT_SUPPORTED, fn,
                         "compute type %d / scale type %s: only CUBLAS_COMPUTE_32F with "
                         "CUDA_R_32F scale is implemented (cublasLtMatmul(), Datatypes Supported)",
                         op->compute, type_name(op->scale));
    if (!types_supported(a->type, b->type, d->type))
        return refuse_at(lvl, CUBLAS_STATUS_NOT_SUPPORTED, fn,
                         "A %s, B %s, D %s: A and B both f16 or both bf16, D of their type or "
                         "f32 (cublasLtMatmul(), Datatypes Supported)",
                         type_name(a->type), type_name(b->type), type_name(d->type));
    /* cublasLtMatmul(): out of place, C and D "must have the same data type, number of rows,
     * number of columns, batch size, and memory order" */
    if (c->type != d->type)
        return refuse_at(lvl, CUBLAS_STATUS_NOT_SUPPORTED, fn,
                         "C is %s but D is %s (cublasLtMatmul(), Datatypes Supported: Ctype and "
                         "Dtype are the same)",
                         type_name(c->type), type_name(d->type));
    /* cublasLtMatmulDescAttributes_t: POINTER_MODE; the simulator reads alpha, beta on the host */
    if (op->pointer_mode != CUBLASLT_POINTER_MODE_HOST)
        return refuse_at(lvl, CUBLAS_STATUS_NOT_SUPPORTED, fn,
                         "pointer mode %d: only CUBLASLT_POINTER_MODE_HOST is implemented",
                         op->pointer_mode);
    /* cublasLtMatmulDescAttributes_t, TRANSC: "Currently only CUBLAS_OP_N is supported" */
    if (op->transc != CUBLAS_OP_N)
        return refuse_at(lvl, CUBLAS_STATUS_NOT_SUPPORTED, fn,
                         "TRANSC %d (cublasLtMatmulDescAttributes_t: only CUBLAS_OP_N)",
                         op->transc);
    /* cublasLtMatrixLayoutAttribute_t, ORDER: the simulator implements CUBLASLT_ORDER_COL */
    const SimLayout *ls[4] = {a, b, c, d};
    const char *names = "ABCD";
    for (int i = 0; i < 4; i++)
        if (ls[i]->order != CUBLASLT_ORDER_COL)
            return refuse_at(lvl, CUBLAS_STATUS_NOT_SUPPORTED, fn,
                             "%c's order %d: only CUBLASLT_ORDER_COL is implemented", names[i],
                             ls[i]->order);
    /* cublasLtEpilogue_t: the simulator implements DEFAULT and BIAS */
    if (op->epilogue != CUBLASLT_EPILOGUE_DEFAULT && op->epilogue != CUBLASLT_EPILOGUE_BIAS)
        return refuse_at(lvl, CUBLAS_STATUS_NOT_SUPPORTED, fn,
                         "epilogue %u: only CUBLASLT_EPILOGUE_DEFAULT and _BIAS are implemented",
                         op->epilogue);
    if (op->epilogue == CUBLASLT_EPILOGUE_BIAS) {
        /* cublasLtMatmulDescAttributes_t, BIAS_DATA_TYPE: "Bias vector elements are the same
         * type as the elements of output matrix (Dtype)" (exceptions: IMMA and fp8 kernels);
         * default -1 means Dtype */
        int32_t bt = op->bias_type == -1 ? d->type : op->bias_type;
        if (bt != d->type)
            return refuse_at(lvl, CUBLAS_STATUS_NOT_SUPPORTED, fn,
                             "bias type %s with D %s (cublasLtMatmulDescAttributes_t, "
                             "BIAS_DATA_TYPE: bias elements are D's type)",
                             type_name(bt), type_name(d->type));
    }
    p->op = op;
    p->a = a;
    p->b = b;
    p->c = c;
    p->d = d;
    /* cublasOperation_t: CUBLAS_OP_C is the transpose for real types */
    p->ta = op->transa != CUBLAS_OP_N;
    p->tb = op->transb != CUBLAS_OP_N;
    p->m = (int64_t)d->rows;
    p->n = (int64_t)d->cols;
    int64_t am = (int64_t)(p->ta ? a->cols : a->rows), ak = (int64_t)(p->ta ? a->rows : a->cols);
    int64_t bk = (int64_t)(p->tb ? b->cols : b->rows), bn = (int64_t)(p->tb ? b->rows : b->cols);
    p->k = ak;
    /* cublasLtMatmul(): D = alpha op(A) op(B) + beta C: op(A) is m x k, op(B) k x n, C and D
     * m x n; anything else is "in conflict" (INVALID_VALUE) */
    if (am != p->m || bn != p->n || bk != ak || c->rows != d->rows || c->cols != d->cols)
        return refuse_at(lvl, CUBLAS_STATUS_INVALID_VALUE, fn,
                         "shapes in conflict: op(A) %lld x %lld, op(B) %lld x %lld, C %llu x "
                         "%llu, D %llu x %llu (cublasLtMatmul(): parameters in conflict)",
                         (long long)am, (long long)ak, (long long)bk, (long long)bn,
                         (unsigned long long)c->rows, (unsigned long long)c->cols,
                         (unsigned long long)d->rows, (unsigned long long)d->cols);
    /* cublasLtMatrixLayoutAttribute_t, LD: "Currently only non-negative values are supported,
     * must be large enough so that matrix memory locations are not overlapping (e.g. greater or
     * equal to CUBLASLT_MATRIX_LAYOUT_ROWS in case of CUBLASLT_ORDER_COL)". cublasLtMatmul():
     * out of place, "the leading dimension of C can be 0 to achieve row or column broadcast". */
    for (int i = 0; i < 4; i++) {
        const SimLayout *l = ls[i];
        if (i == 2 && c != d && l->ld == 0)
            continue;
        if (l->ld < 0 || (uint64_t)l->ld < l->rows || l->ld < 1)
            return refuse_at(lvl, CUBLAS_STATUS_INVALID_VALUE, fn,
                             "%c: leading dimension %lld < rows %llu "
                             "(cublasLtMatrixLayoutAttribute_t, CUBLASLT_MATRIX_LAYOUT_LD)",
                             names[i], (long long)l->ld, (unsigned long long)l->rows);
    }
    /* cublasLtMatrixLayoutAttribute_t, BATCH_COUNT: "Number of matmul operations to perform in
     * the batch": the four layouts describe the same batch ("in conflict" otherwise) */
    for (int i = 0; i < 4; i++)
        if (ls[i]->batch < 1 || ls[i]->batch != d->batch)
            return refuse_at(lvl, CUBLAS_STATUS_INVALID_VALUE, fn,
                             "batch counts A %d, B %d, C %d, D %d differ or are < 1 "
                             "(cublasLtMatrixLayoutAttribute_t, BATCH_COUNT)",
                             a->batch, b->batch, c->batch, d->batch);
    if (d->batch > 1) {
        for (int i = 0; i < 4; i++)
            if (ls[i]->stride < 0)
                return refuse_at(lvl, CUBLAS_STATUS_INVALID_VALUE, fn,
                                 "%c: negative batch stride %lld "
                                 "(cublasLtMatrixLayoutAttribute_t, STRIDED_BATCH_OFFSET)",
                                 names[i], (long long)ls[i]->stride);
        /* simulator: batch members of D that share an element are written by concurrent
         * kernels on a GPU (a race); the documentation gives no status, the simulator refuses
         * it. Interleaved members (attention's heads: stride HS within a row of C) are fine. */
        if (members_overlap((int64_t)d->rows, (int64_t)d->cols, d->ld, d->stride, d->batch))
            return refuse_at(lvl, CUBLAS_STATUS_INVALID_VALUE, fn,
                             "D's batch members share elements (rows %llu, cols %llu, ld %lld, "
                             "stride %lld): they overlap (simulator check; "
                             "STRIDED_BATCH_OFFSET)",
                             (unsigned long long)d->rows, (unsigned long long)d->cols,
                             (long long)d->ld, (long long)d->stride);
    }
    return CUBLAS_STATUS_SUCCESS;
}

/* The algorithm the heuristic picks for p under pref (see the file comment). */
SimAlgo lt_choose(const LtProblem &p, const SimPref &pref) {
    SimAlgo al;
    memset(&al, 0, sizeof(al));
    al.magic = MAGIC_ALGO;
    const SimLayout *ls[4] = {p.a, p.b, p.c, p.d};
    for (int i = 0; i < 4; i++) {
        const SimLayout *l = ls[i];
        size_t es = type_bytes(l->type);
        uint32_t need = u32min(SIM_VECTOR_BYTES, pref.align[i]);
        /* every column (and every batch member) must start as aligned as the first */
        need = u32min(need, alignment_of((uint64_t)l->ld * es, SIM_VECTOR_BYTES));
        if (l->batch > 1)
            need = u32min(need, alignment_of((uint64_t)l->stride * es, SIM_VECTOR_BYTES));
        al.align[i] = need < 1 ? 1 : need;
    }
    /* cublasLtMatmulDescAttributes_t, BIAS_POINTER: "Routines that don't dereference this
     * pointer, like cublasLtMatmulAlgoGetHeuristic() depend on its value to determine expected
     * pointer alignment" (NULL counts as fully aligned) */
    al.bias_align = alignment_of((uint64_t)(uintptr_t)p.op->bias, SIM_VECTOR_BYTES);
    size_t ws = cublas_sim_workspace_bytes(p.m, p.n);
    al.ws_bytes = (p.k > 1 && pref.max_ws >= ws) ? ws : 0;
    return al;
}

const SimPref &default_pref(void) {
    static SimPref p = {MAGIC_PREF,
                        {SIM_DEFAULT_ALIGNMENT, SIM_DEFAULT_ALIGNMENT, SIM_DEFAULT_ALIGNMENT,
                         SIM_DEFAULT_ALIGNMENT},
                        0};
    return p;
}

template <typename T> cublasStatus_t set_value(T *dst, const void *buf, size_t size) {
    if (size != sizeof(T))
        return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(dst, buf, sizeof(T));
    return CUBLAS_STATUS_SUCCESS;
}

} // namespace

/* ---------------------------------------------------------------------------------------- */
/* handles                                                                                   */

struct cublasLtContext {
    uint32_t magic;
};

struct cublasContext {
    uint32_t magic;
    void *ws;
    size_t ws_bytes;
    cudaStream_t stream;
    cublasMath_t math;
};

static const uint32_t MAGIC_LT = 0x4c744374u, MAGIC_BLAS = 0x426c6173u;

extern "C" {

const char *cublas_sim_last_refusal(void) { return g_refusal; }

size_t cublas_sim_workspace_bytes(int64_t m, int64_t n) {
    return (size_t)m * (size_t)n * sizeof(float);
}

const char *cublasGetStatusName(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS:
        return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED:
        return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED:
        return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE:
        return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH:
        return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR:
        return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED:
        return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR:
        return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED:
        return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR:
        return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

const char *cublasGetStatusString(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS:
        return "the operation completed successfully";
    case CUBLAS_STATUS_NOT_INITIALIZED:
        return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED:
        return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE:
        return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH:
        return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR:
        return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED:
        return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR:
        return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED:
        return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR:
        return "error detected trying to check the license";
    }
    return "unknown error";
}

/* cublasLtCreate(): INVALID_VALUE "if lightHandle == NULL" */
cublasStatus_t cublasLtCreate(cublasLtHandle_t *lightHandle) {
    if (!lightHandle)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, "cublasLtCreate", "lightHandle is NULL");
    cublasLtContext *h = new (std::nothrow) cublasLtContext;
    if (!h)
        return CUBLAS_STATUS_ALLOC_FAILED;
    h->magic = MAGIC_LT;
    *lightHandle = h;
    return CUBLAS_STATUS_SUCCESS;
}

/* cublasLtDestroy(): NOT_INITIALIZED "if the cuBLASLt handle has not been initialized" */
cublasStatus_t cublasLtDestroy(cublasLtHandle_t lightHandle) {
    if (!lightHandle || lightHandle->magic != MAGIC_LT)
        return REFUSE(CUBLAS_STATUS_NOT_INITIALIZED, "cublasLtDestroy", "handle not initialized");
    lightHandle->magic = 0;
    delete lightHandle;
    return CUBLAS_STATUS_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* layouts, descriptors, preferences                                                         */

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *matLayout, cudaDataType type,
                                          uint64_t rows, uint64_t cols, int64_t ld) {
    if (!matLayout)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatrixLayoutCreate",
                      "matLayout is NULL");
    cublasLtMatrixLayoutOpaque_t *o = new (std::nothrow) cublasLtMatrixLayoutOpaque_t;
    if (!o)
        return CUBLAS_STATUS_ALLOC_FAILED;
    memset(o, 0, sizeof(*o));
    SimLayout *l = reinterpret_cast<SimLayout *>(o);
    l->magic = MAGIC_LAYOUT;
    l->type = type;
    l->order = CUBLASLT_ORDER_COL;
    l->batch = 1;
    l->rows = rows;
    l->cols = cols;
    l->ld = ld;
    l->stride = 0;
    *matLayout = o;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t matLayout) {
    SimLayout *l = layout_of(matLayout);
    if (!l)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatrixLayoutDestroy",
                      "not a live layout");
    l->magic = 0;
    delete matLayout;
    return CUBLAS_STATUS_SUCCESS;
}

/* cublasLtMatrixLayoutSetAttribute(): INVALID_VALUE "if buf is NULL or sizeInBytes doesn't
 * match size of internal storage for selected attribute" */
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t matLayout,
                                                cublasLtMatrixLayoutAttribute_t attr,
                                                const void *buf, size_t sizeInBytes) {
    const char *fn = "cublasLtMatrixLayoutSetAttribute";
    SimLayout *l = layout_of(matLayout);
    if (!l || !buf)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn, "NULL layout or buffer");
    cublasStatus_t st;
    switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_TYPE: {
        uint32_t t = 0;
        st = set_value(&t, buf, sizeInBytes);
        if (st == CUBLAS_STATUS_SUCCESS)
            l->type = (int32_t)t;
        break;
    }
    case CUBLASLT_MATRIX_LAYOUT_ORDER:
        st = set_value(&l->order, buf, sizeInBytes);
        break;
    case CUBLASLT_MATRIX_LAYOUT_ROWS:
        st = set_value(&l->rows, buf, sizeInBytes);
        break;
    case CUBLASLT_MATRIX_LAYOUT_COLS:
        st = set_value(&l->cols, buf, sizeInBytes);
        break;
    case CUBLASLT_MATRIX_LAYOUT_LD:
        st = set_value(&l->ld, buf, sizeInBytes);
        break;
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT:
        st = set_value(&l->batch, buf, sizeInBytes);
        break;
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET:
        st = set_value(&l->stride, buf, sizeInBytes);
        break;
    default:
        return REFUSE(CUBLAS_STATUS_NOT_SUPPORTED, fn,
                      "layout attribute %d is not implemented by the simulator", (int)attr);
    }
    if (st != CUBLAS_STATUS_SUCCESS)
        return REFUSE(st, fn, "attribute %d: %zu bytes do not match its storage", (int)attr,
                      sizeInBytes);
    return st;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *matmulDesc,
                                        cublasComputeType_t computeType, cudaDataType_t scaleType) {
    if (!matmulDesc)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulDescCreate",
                      "matmulDesc is NULL");
    cublasLtMatmulDescOpaque_t *o = new (std::nothrow) cublasLtMatmulDescOpaque_t;
    if (!o)
        return CUBLAS_STATUS_ALLOC_FAILED;
    memset(o, 0, sizeof(*o));
    SimDesc *d = reinterpret_cast<SimDesc *>(o);
    d->magic = MAGIC_DESC;
    d->compute = computeType;
    d->scale = scaleType;
    d->pointer_mode = CUBLASLT_POINTER_MODE_HOST;
    d->transa = CUBLAS_OP_N;
    d->transb = CUBLAS_OP_N;
    d->transc = CUBLAS_OP_N;
    d->epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    d->bias = nullptr;
    d->bias_type = -1;
    d->bias_stride = 0;
    *matmulDesc = o;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t matmulDesc) {
    SimDesc *d = desc_of(matmulDesc);
    if (!d)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulDescDestroy",
                      "not a live descriptor");
    d->magic = 0;
    delete matmulDesc;
    return CUBLAS_STATUS_SUCCESS;
}

/* cublasLtMatmulDescSetAttribute(): INVALID_VALUE "if buf is NULL or sizeInBytes doesn't match
 * size of internal storage for selected attribute" */
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t matmulDesc,
                                              cublasLtMatmulDescAttributes_t attr, const void *buf,
                                              size_t sizeInBytes) {
    const char *fn = "cublasLtMatmulDescSetAttribute";
    SimDesc *d = desc_of(matmulDesc);
    if (!d || !buf)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn, "NULL descriptor or buffer");
    cublasStatus_t st;
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE:
        st = set_value(&d->compute, buf, sizeInBytes);
        break;
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE:
        st = set_value(&d->scale, buf, sizeInBytes);
        break;
    case CUBLASLT_MATMUL_DESC_POINTER_MODE:
        st = set_value(&d->pointer_mode, buf, sizeInBytes);
        break;
    case CUBLASLT_MATMUL_DESC_TRANSA:
    case CUBLASLT_MATMUL_DESC_TRANSB: {
        int32_t v = 0;
        st = set_value(&v, buf, sizeInBytes);
        if (st != CUBLAS_STATUS_SUCCESS)
            break;
        /* cublasOperation_t: N, T and C (CUBLAS_OP_CONJG is "not supported") */
        if (v != CUBLAS_OP_N && v != CUBLAS_OP_T && v != CUBLAS_OP_C)
            return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn, "operation %d is not N, T or C", v);
        (attr == CUBLASLT_MATMUL_DESC_TRANSA ? d->transa : d->transb) = v;
        break;
    }
    case CUBLASLT_MATMUL_DESC_TRANSC:
        st = set_value(&d->transc, buf, sizeInBytes);
        break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
        st = set_value(&d->epilogue, buf, sizeInBytes);
        break;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        st = set_value(&d->bias, buf, sizeInBytes);
        break;
    case CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE:
        st = set_value(&d->bias_stride, buf, sizeInBytes);
        break;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
        st = set_value(&d->bias_type, buf, sizeInBytes);
        break;
    default:
        return REFUSE(CUBLAS_STATUS_NOT_SUPPORTED, fn,
                      "descriptor attribute %d is not implemented by the simulator", (int)attr);
    }
    if (st != CUBLAS_STATUS_SUCCESS)
        return REFUSE(st, fn, "attribute %d: %zu bytes do not match its storage", (int)attr,
                      sizeInBytes);
    return st;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref) {
    if (!pref)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulPreferenceCreate",
                      "pref is NULL");
    cublasLtMatmulPreferenceOpaque_t *o = new (std::nothrow) cublasLtMatmulPreferenceOpaque_t;
    if (!o)
        return CUBLAS_STATUS_ALLOC_FAILED;
    memset(o, 0, sizeof(*o));
    *reinterpret_cast<SimPref *>(o) = default_pref();
    *pref = o;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
    SimPref *p = pref_of(pref);
    if (!p)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulPreferenceDestroy",
                      "not a live preference");
    p->magic = 0;
    delete pref;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr,
                                                    const void *buf, size_t sizeInBytes) {
    const char *fn = "cublasLtMatmulPreferenceSetAttribute";
    SimPref *p = pref_of(pref);
    if (!p || !buf)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn, "NULL preference or buffer");
    cublasStatus_t st;
    switch (attr) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
        st = set_value(&p->max_ws, buf, sizeInBytes);
        break;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES:
        st = set_value(&p->align[attr - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES], buf,
                       sizeInBytes);
        break;
    default:
        return REFUSE(CUBLAS_STATUS_NOT_SUPPORTED, fn,
                      "preference attribute %d is not implemented by the simulator", (int)attr);
    }
    if (st != CUBLAS_STATUS_SUCCESS)
        return REFUSE(st, fn, "attribute %d: %zu bytes do not match its storage", (int)attr,
                      sizeInBytes);
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* heuristic and matmul                                                                      */

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(
    cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t operationDesc, cublasLtMatrixLayout_t Adesc,
    cublasLtMatrixLayout_t Bdesc, cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
    cublasLtMatmulPreference_t preference, int requestedAlgoCount,
    cublasLtMatmulHeuristicResult_t heuristicResultsArray[], int *returnAlgoCount) {
    const char *fn = "cublasLtMatmulAlgoGetHeuristic";
    if (!lightHandle || lightHandle->magic != MAGIC_LT)
        return REFUSE(CUBLAS_STATUS_NOT_INITIALIZED, fn, "handle not initialized");
    /* cublasLt.h, cublasLtMatmulAlgoGetHeuristic: INVALID_VALUE "if requestedAlgoCount is less
     * or equal to zero" */
    if (requestedAlgoCount <= 0 || !heuristicResultsArray || !returnAlgoCount)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn,
                      "requestedAlgoCount %d <= 0 or a NULL result array / count",
                      requestedAlgoCount);
    *returnAlgoCount = 0;
    const SimPref *pref = preference ? pref_of(preference) : &default_pref();
    if (!pref)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn, "not a live preference");
    LtProblem p;
    /* cublasLt.h: NOT_SUPPORTED "if no heuristic function available for current
     * configuration": every configuration cublasLtMatmul would refuse has no algorithm */
    cublasStatus_t st = lt_check(fn, desc_of(operationDesc), layout_of(Adesc), layout_of(Bdesc),
                                 Cdesc ? layout_of(Cdesc) : nullptr, layout_of(Ddesc), &p, 2);
    if (st == CUBLAS_STATUS_SUCCESS && Cdesc && !layout_of(Cdesc))
        st = refuse_at(2, CUBLAS_STATUS_INVALID_VALUE, fn, "C: not a live layout");
    if (st != CUBLAS_STATUS_SUCCESS) {
        char why[sizeof(g_refusal)];
        snprintf(why, sizeof(why), "%s", g_refusal);
        return refuse_at(2, CUBLAS_STATUS_NOT_SUPPORTED, fn, "no algorithm: %s", why);
    }
    memset(&heuristicResultsArray[0], 0, sizeof(heuristicResultsArray[0]));
    SimAlgo al = lt_choose(p, *pref);
    memcpy(&heuristicResultsArray[0].algo, &al, sizeof(al));
    heuristicResultsArray[0].workspaceSize = al.ws_bytes;
    heuristicResultsArray[0].state = CUBLAS_STATUS_SUCCESS;
    heuristicResultsArray[0].wavesCount = 1.0f;
    *returnAlgoCount = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t computeDesc,
                              const void *alpha, const void *A, cublasLtMatrixLayout_t Adesc,
                              const void *B, cublasLtMatrixLayout_t Bdesc, const void *beta,
                              const void *C, cublasLtMatrixLayout_t Cdesc, void *D,
                              cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t *algo,
                              void *workspace, size_t workspaceSizeInBytes, cudaStream_t stream) {
    const char *fn = "cublasLtMatmul";
    /* cublasLtMatmul(): NOT_INITIALIZED "if cuBLASLt handle has not been initialized" */
    if (!lightHandle || lightHandle->magic != MAGIC_LT)
        return REFUSE(CUBLAS_STATUS_NOT_INITIALIZED, fn, "handle not initialized");
    if (Cdesc && !layout_of(Cdesc))
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn, "C: not a live layout");
    LtProblem p;
    cublasStatus_t st = lt_check(fn, desc_of(computeDesc), layout_of(Adesc), layout_of(Bdesc),
                                 Cdesc ? layout_of(Cdesc) : nullptr, layout_of(Ddesc), &p, 1);
    if (st != CUBLAS_STATUS_SUCCESS)
        return st;
    /* cublasLtMatmul(): INVALID_VALUE "if the parameters are unexpectedly NULL" */
    if (!alpha || !beta || !A || !B || !D)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn,
                      "NULL alpha %p, beta %p, A %p, B %p or D %p (cublasLtMatmul(): parameters "
                      "unexpectedly NULL)",
                      alpha, beta, A, B, (const void *)D);
    float fa = *static_cast<const float *>(alpha), fb = *static_cast<const float *>(beta);
    if (fb != 0.0f && !C)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn,
                      "beta %g with a NULL C (cublasLtMatmul(): parameters unexpectedly NULL)",
                      (double)fb);
    /* cublasLtMatmul(): in place (C == D) needs Cdesc == Ddesc */
    if (C == D && C && (p.c->ld != p.d->ld || p.c->stride != p.d->stride))
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn,
                      "in place (C == D) with ldc %lld / stride %lld but ldd %lld / stride %lld "
                      "(cublasLtMatmul(): in-place requires Cdesc == Ddesc)",
                      (long long)p.c->ld, (long long)p.c->stride, (long long)p.d->ld,
                      (long long)p.d->stride);
    if (p.op->epilogue == CUBLASLT_EPILOGUE_BIAS && !p.op->bias)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn,
                      "CUBLASLT_EPILOGUE_BIAS with a NULL BIAS_POINTER "
                      "(cublasLtMatmulDescAttributes_t, BIAS_POINTER)");
    /* cublasLtMatmul(), algo: "If NULL, an implicit heuristics query with default search
     * preferences will be performed" (no workspace, 256-byte alignment) */
    SimAlgo al;
    if (algo) {
        memcpy(&al, algo, sizeof(al));
        if (al.magic != MAGIC_ALGO)
            return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn,
                          "algo was not returned by cublasLtMatmulAlgoGetHeuristic");
    } else {
        al = lt_choose(p, default_pref());
    }
    /* cublasLtMatmul(): INVALID_VALUE "when workspaceSizeInBytes is less than workspace
     * required by the configured algo" */
    if (workspaceSizeInBytes < al.ws_bytes || (al.ws_bytes > 0 && !workspace))
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn,
                      "workspace %p of %zu bytes; the algorithm needs %llu bytes "
                      "(cublasLtMatmul(): workspace less than required)",
                      workspace, workspaceSizeInBytes, (unsigned long long)al.ws_bytes);
    /* cublasLtMatmul(), workspace: "Must be 256B aligned" */
    if (workspace && workspaceSizeInBytes > 0 &&
        (uintptr_t)workspace % SIM_WORKSPACE_ALIGNMENT != 0)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn,
                      "workspace %p is not 256-byte aligned (cublasLtMatmul(), workspace)",
                      workspace);
    /* cublasLtMatmulPreferenceAttributes_t, MIN_ALIGNMENT_*_BYTES: the algorithm was chosen for
     * operands as aligned as the preference promised; on less aligned ones it cannot run
     * (cublasLtMatmul(): NOT_SUPPORTED, "doesn't support the configured operation") */
    const void *ptrs[4] = {A, B, C ? C : D, D};
    for (int i = 0; i < 4; i++) {
        uint32_t have = alignment_of((uint64_t)(uintptr_t)ptrs[i], SIM_DEFAULT_ALIGNMENT);
        if (have < al.align[i])
            return REFUSE(CUBLAS_STATUS_NOT_SUPPORTED, fn,
                          "%c at %p is %u-byte aligned; the algorithm needs %u "
                          "(cublasLtMatmulPreferenceAttributes_t, MIN_ALIGNMENT_%c_BYTES)",
                          "ABCD"[i], ptrs[i], have, al.align[i], "ABCD"[i]);
    }
    /* cublasLtMatmulDescAttributes_t, BIAS_POINTER: the heuristic took the bias alignment from
     * the pointer it saw; the preference does not cover the bias, so a kernel chosen for an
     * aligned bias faults on a less aligned one (a device error: EXECUTION_FAILED) */
    if (p.op->epilogue == CUBLASLT_EPILOGUE_BIAS) {
        uint32_t have = alignment_of((uint64_t)(uintptr_t)p.op->bias, SIM_DEFAULT_ALIGNMENT);
        if (have < al.bias_align)
            return REFUSE(CUBLAS_STATUS_EXECUTION_FAILED, fn,
                          "bias at %p is %u-byte aligned; the algorithm was chosen for %u "
                          "(cublasLtMatmulDescAttributes_t, BIAS_POINTER: misaligned address)",
                          p.op->bias, have, al.bias_align);
    }
    Gemm g;
    memset(&g, 0, sizeof(g));
    g.ta = p.ta;
    g.tb = p.tb;
    g.m = p.m;
    g.n = p.n;
    g.k = p.k;
    g.batch = p.d->batch;
    g.atype = p.a->type;
    g.ctype = p.d->type;
    g.A = A;
    g.B = B;
    g.C = fb != 0.0f ? C : nullptr;
    g.D = D;
    g.lda = p.a->ld;
    g.ldb = p.b->ld;
    g.ldc = p.c->ld;
    g.ldd = p.d->ld;
    if (g.batch > 1) {
        g.sa = p.a->stride;
        g.sb = p.b->stride;
        g.sc = p.c->stride;
        g.sd = p.d->stride;
    }
    g.alpha = fa;
    g.beta = fb;
    g.bias = p.op->epilogue == CUBLASLT_EPILOGUE_BIAS ? p.op->bias : nullptr;
    g.bias_stride = p.op->bias_stride;
    g.ws = al.ws_bytes > 0 ? static_cast<float *>(workspace) : nullptr;
    return gemm_submit(g, stream, fn);
}

/* ---------------------------------------------------------------------------------------- */
/* cuBLAS                                                                                    */

/* cublasCreate(): INVALID_VALUE if handle is NULL */
cublasStatus_t cublasCreate_v2(cublasHandle_t *handle) {
    if (!handle)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, "cublasCreate", "handle is NULL");
    cublasContext *h = new (std::nothrow) cublasContext;
    if (!h)
        return CUBLAS_STATUS_ALLOC_FAILED;
    h->magic = MAGIC_BLAS;
    h->ws = nullptr;
    h->ws_bytes = 0;
    h->stream = nullptr;
    h->math = CUBLAS_DEFAULT_MATH;
    *handle = h;
    return CUBLAS_STATUS_SUCCESS;
}

static bool blas_live(cublasHandle_t h) { return h && h->magic == MAGIC_BLAS; }

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
    if (!blas_live(handle))
        return REFUSE(CUBLAS_STATUS_NOT_INITIALIZED, "cublasDestroy", "handle not initialized");
    handle->magic = 0;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

/* cublasSetWorkspace(): "The workspace pointer has to be aligned to at least 256 bytes,
 * otherwise CUBLAS_STATUS_INVALID_VALUE error is returned"; a size of 0 is allowed (no
 * workspace). */
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void *workspace,
                                     size_t workspaceSizeInBytes) {
    const char *fn = "cublasSetWorkspace";
    if (!blas_live(handle))
        return REFUSE(CUBLAS_STATUS_NOT_INITIALIZED, fn, "handle not initialized");
    if ((uintptr_t)workspace % SIM_WORKSPACE_ALIGNMENT != 0)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn,
                      "workspace %p is not 256-byte aligned (cublasSetWorkspace())", workspace);
    /* simulator: a NULL buffer cannot hold bytes */
    if (!workspace && workspaceSizeInBytes > 0)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn,
                      "NULL workspace of %zu bytes (simulator check)", workspaceSizeInBytes);
    handle->ws = workspace;
    handle->ws_bytes = workspaceSizeInBytes;
    return CUBLAS_STATUS_SUCCESS;
}

/* cublasSetStream(): "unconditionally resets the cuBLAS library workspace back to the default
 * workspace pool" (the simulator's default pool is host memory of its own) */
cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId) {
    if (!blas_live(handle))
        return REFUSE(CUBLAS_STATUS_NOT_INITIALIZED, "cublasSetStream", "handle not initialized");
    handle->stream = streamId;
    handle->ws = nullptr;
    handle->ws_bytes = 0;
    return CUBLAS_STATUS_SUCCESS;
}

/* cublasSetMathMode(): INVALID_VALUE for a mode that is not one of cublasMath_t (optionally
 * with CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION) */
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    if (!blas_live(handle))
        return REFUSE(CUBLAS_STATUS_NOT_INITIALIZED, "cublasSetMathMode", "handle not initialized");
    unsigned base = (unsigned)mode & ~(unsigned)CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
    if (base > CUBLAS_TF32_TENSOR_OP_MATH)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, "cublasSetMathMode", "mode %d", (int)mode);
    handle->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa,
                                          cublasOperation_t transb, int m, int n, int k,
                                          const void *alpha, const void *A, cudaDataType Atype,
                                          int lda, long long int strideA, const void *B,
                                          cudaDataType Btype, int ldb, long long int strideB,
                                          const void *beta, void *C, cudaDataType Ctype, int ldc,
                                          long long int strideC, int batchCount,
                                          cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
    const char *fn = "cublasGemmStridedBatchedEx";
    /* cublasGemmStridedBatchedEx(), error values: NOT_INITIALIZED "the library was not
     * initialized" */
    if (!blas_live(handle))
        return REFUSE(CUBLAS_STATUS_NOT_INITIALIZED, fn, "handle not initialized");
    /* INVALID_VALUE: "m < 0 or n < 0 or k < 0", transa / transb not N, T or C, "lda < max(1, m)
     * if transa == CUBLAS_OP_N and lda < max(1, k) otherwise", "ldb < max(1, k) if transb ==
     * CUBLAS_OP_N and ldb < max(1, n) otherwise", "ldc < max(1, m)", "alpha or beta == NULL",
     * batchCount < 0 */
    if (m < 0 || n < 0 || k < 0 || batchCount < 0)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn,
                      "m %d, n %d, k %d, batchCount %d: negative (cublasGemmStridedBatchedEx())", m,
                      n, k, batchCount);
    bool ok_ops = (transa == CUBLAS_OP_N || transa == CUBLAS_OP_T || transa == CUBLAS_OP_C) &&
                  (transb == CUBLAS_OP_N || transb == CUBLAS_OP_T || transb == CUBLAS_OP_C);
    if (!ok_ops)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn, "transa %d / transb %d not N, T or C",
                      (int)transa, (int)transb);
    int ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
    int need_lda = ta ? k : m, need_ldb = tb ? n : k;
    if (need_lda < 1)
        need_lda = 1;
    if (need_ldb < 1)
        need_ldb = 1;
    if (lda < need_lda || ldb < need_ldb || ldc < (m > 1 ? m : 1))
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn,
                      "lda %d (needs >= %d), ldb %d (needs >= %d), ldc %d (needs >= %d) "
                      "(cublasGemmStridedBatchedEx(): leading dimensions)",
                      lda, need_lda, ldb, need_ldb, ldc, m > 1 ? m : 1);
    if (!alpha || !beta)
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn, "alpha or beta is NULL");
    /* NOT_SUPPORTED: "the combination of the parameters Atype, Btype and Ctype or the
     * algorithm, algo is not supported"; the simulator implements CUBLAS_COMPUTE_32F with A
     * and B both f16 or both bf16 and C of their type or f32 (cublasGemmEx(), Datatypes
     * Supported), and the default algorithms */
    if (computeType != CUBLAS_COMPUTE_32F || !types_supported(Atype, Btype, Ctype))
        return REFUSE(CUBLAS_STATUS_NOT_SUPPORTED, fn,
                      "compute %d with A %s, B %s, C %s: only CUBLAS_COMPUTE_32F with A and B "
                      "both f16 or both bf16 and C of their type or f32 are implemented",
                      (int)computeType, type_name(Atype), type_name(Btype), type_name(Ctype));
    if (algo != CUBLAS_GEMM_DEFAULT && algo != CUBLAS_GEMM_DEFAULT_TENSOR_OP)
        return REFUSE(CUBLAS_STATUS_NOT_SUPPORTED, fn, "algo %d: only the default is implemented",
                      (int)algo);
    if (m == 0 || n == 0 || batchCount == 0)
        return CUBLAS_STATUS_SUCCESS;
    float fa = *static_cast<const float *>(alpha), fb = *static_cast<const float *>(beta);
    /* simulator: NULL matrices would fault on the device */
    if (!C || (k > 0 && (!A || !B)))
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn, "NULL A %p, B %p or C %p (simulator check)",
                      A, B, (const void *)C);
    /* simulator: members of C sharing an element are written concurrently on a GPU (a race) */
    if (members_overlap(m, n, ldc, strideC, batchCount))
        return REFUSE(CUBLAS_STATUS_INVALID_VALUE, fn,
                      "C's batch members share elements (m %d, n %d, ldc %d, strideC %lld): "
                      "they overlap (simulator check)",
                      m, n, ldc, strideC);
    Gemm g;
    memset(&g, 0, sizeof(g));
    g.ta = ta;
    g.tb = tb;
    g.m = m;
    g.n = n;
    g.k = k;
    g.batch = batchCount;
    g.atype = Atype;
    g.ctype = Ctype;
    g.A = A;
    g.B = B;
    g.C = fb != 0.0f ? C : nullptr;
    g.D = C;
    g.lda = lda;
    g.ldb = ldb;
    g.ldc = ldc;
    g.ldd = ldc;
    g.sa = strideA;
    g.sb = strideB;
    g.sc = strideC;
    g.sd = strideC;
    g.alpha = fa;
    g.beta = fb;
    /* the handle's workspace holds the accumulator when it is large enough */
    if (handle->ws && handle->ws_bytes >= cublas_sim_workspace_bytes(m, n))
        g.ws = static_cast<float *>(handle->ws);
    return gemm_submit(g, handle->stream, fn);
}

} /* extern "C" */
