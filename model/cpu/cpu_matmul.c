/* cpu_matmul.c: the Linear layer on the CPU through OpenBLAS sgemm (row-major, weight stored
 * (OC, IC) as nanoGPT/llm.c: y = x W^T + b).
 *
 * Threads: OpenBLAS runs single-threaded and the work is split by OpenMP: each thread calls
 * sgemm on its own slice of the output (the larger output dimension is split, in multiples of
 * 16). One pool of threads does everything, so OpenMP and OpenBLAS threads never compete for
 * the cores. Each output element is computed by exactly one sgemm call, so for a fixed thread
 * count the result is the same every time. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "cpu_kernels.h"

#define SPLIT_ALIGN 16

static void blas_single_thread(void) {
    static int done = 0;
    if (!done) {
        openblas_set_num_threads(1);
        done = 1;
    }
}

/* [lo, hi) of part `i` of `n` parts of [0, len), aligned to SPLIT_ALIGN */
static void split_range(int64_t len, int n, int i, int64_t *lo, int64_t *hi) {
    int64_t per = (len + n - 1) / n;
    per = (per + SPLIT_ALIGN - 1) / SPLIT_ALIGN * SPLIT_ALIGN;
    *lo = per * i < len ? per * i : len;
    *hi = per * (i + 1) < len ? per * (i + 1) : len;
}

/* C (M,Nc) = alpha op(A) op(B) + beta C, row-major, split over M or Nc among the threads */
static void sgemm_split(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t M, int64_t Nc, int64_t K,
                        const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                        float *C, int64_t ldc) {
    blas_single_thread();
    int nt = omp_get_max_threads();
    int split_m = M >= Nc;
    if ((split_m ? M : Nc) < 2 * SPLIT_ALIGN)
        nt = 1;
#pragma omp parallel num_threads(nt)
    {
        int n = omp_get_num_threads(), i = omp_get_thread_num();
        int64_t lo, hi;
        split_range(split_m ? M : Nc, n, i, &lo, &hi);
        if (hi > lo) {
            if (split_m) {
                const float *a = ta == CblasNoTrans ? A + lo * lda : A + lo;
                cblas_sgemm(CblasRowMajor, ta, tb, (int)(hi - lo), (int)Nc, (int)K, 1.0f, a,
                            (int)lda, B, (int)ldb, beta, C + lo * ldc, (int)ldc);
            } else {
                const float *b = tb == CblasNoTrans ? B + lo : B + lo * ldb;
                cblas_sgemm(CblasRowMajor, ta, tb, (int)M, (int)(hi - lo), (int)K, 1.0f, A,
                            (int)lda, b, (int)ldb, beta, C + lo, (int)ldc);
            }
        }
    }
}

void cpu_matmul_forward(void *out_, const void *inp_, const void *weight_, const void *bias_,
                        const void *residual_, int64_t N, int64_t IC, int64_t OC, void *stream) {
    float *out = out_;
    const float *inp = inp_, *weight = weight_, *bias = bias_, *residual = residual_;
    float beta = 0.0f;
    if (residual || bias) {
#pragma omp parallel for schedule(static)
        for (int64_t n = 0; n < N; n++) {
            float *o = out + n * OC;
            const float *r = residual ? residual + n * OC : NULL;
            if (r && bias) {
#pragma omp simd
                for (int64_t i = 0; i < OC; i++)
                    o[i] = r[i] + bias[i];
            } else if (r) {
                if (r != o)
                    memcpy(o, r, (size_t)OC * sizeof(float));
            } else {
                memcpy(o, bias, (size_t)OC * sizeof(float));
            }
        }
        beta = 1.0f;
    }
    /* out (N,OC) = inp (N,IC) @ weight^T */
    sgemm_split(CblasNoTrans, CblasTrans, N, OC, IC, inp, IC, weight, IC, beta, out, OC);
}

void cpu_matmul_backward(void *dinp_, void *dweight_, void *dbias_, const void *dout_,
                         const void *inp_, const void *weight_, int64_t N, int64_t IC, int64_t OC,
                         void *stream) {
    float *dinp = dinp_, *dweight = dweight_, *dbias = dbias_;
    const float *dout = dout_, *inp = inp_, *weight = weight_;
    /* dweight (OC,IC) += dout^T (OC,N) @ inp (N,IC) */
    sgemm_split(CblasTrans, CblasNoTrans, OC, IC, N, dout, OC, inp, IC, 1.0f, dweight, IC);
    if (dbias) {
        const int64_t CB = 64;
#pragma omp parallel for schedule(static)
        for (int64_t c0 = 0; c0 < OC; c0 += CB) {
            int64_t c1 = c0 + CB < OC ? c0 + CB : OC;
            float acc[64];
            for (int64_t i = 0; i < c1 - c0; i++)
                acc[i] = 0.0f;
            for (int64_t n = 0; n < N; n++) {
                const float *d = dout + n * OC;
                for (int64_t i = c0; i < c1; i++)
                    acc[i - c0] += d[i];
            }
            for (int64_t i = c0; i < c1; i++)
                dbias[i] += acc[i - c0];
        }
    }
    /* dinp (N,IC) = dout (N,OC) @ weight (OC,IC) */
    if (dinp)
        sgemm_split(CblasNoTrans, CblasNoTrans, N, IC, OC, dout, OC, weight, IC, 0.0f, dinp, IC);
}
