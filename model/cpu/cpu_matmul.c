/* cpu_matmul.c: the Linear layer on the CPU through OpenBLAS sgemm (row-major, weight stored
 * (OC, IC) as nanoGPT/llm.c: y = x W^T + b). sgemm is never called inside an OpenMP region
 * (the pthread OpenBLAS has its own threads). */
#include <cblas.h>
#include <string.h>

#include "cpu_kernels.h"

void cpu_matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                        const float *residual, int64_t N, int64_t IC, int64_t OC) {
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
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)OC, (int)IC, 1.0f, inp,
                (int)IC, weight, (int)IC, beta, out, (int)OC);
}

void cpu_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int64_t N, int64_t IC,
                         int64_t OC) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)OC, (int)IC, (int)N, 1.0f, dout,
                (int)OC, inp, (int)IC, 1.0f, dweight, (int)IC);
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
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)IC, (int)OC, 1.0f,
                    dout, (int)OC, weight, (int)IC, 0.0f, dinp, (int)IC);
}
