/* cpu_backend.c: the CPU backend table (backend.h) over the fp32 kernels of cpu_kernels.h,
 * host memory operations, and the thread setting shared by OpenMP and OpenBLAS. The CPU
 * layout is f32 everywhere; it has no master weights and no backend workspace. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "../backend.h"
#include "cpu_kernels.h"

static void cpu_memset_zero(void *dst, size_t bytes, void *stream) { memset(dst, 0, bytes); }
static void cpu_copy(void *dst, const void *src, size_t bytes, void *stream) {
    memcpy(dst, src, bytes);
}
static void cpu_from_host_f32(void *dst, ArenaDtype dtype, const float *src, int64_t n,
                              void *stream) {
    ASSERT(dtype == ARENA_DTYPE_F32);
    memcpy(dst, src, (size_t)n * sizeof(float));
}
static void cpu_to_host_f32(float *dst, const void *src, ArenaDtype dtype, int64_t n,
                            void *stream) {
    ASSERT(dtype == ARENA_DTYPE_F32);
    memcpy(dst, src, (size_t)n * sizeof(float));
}
static void cpu_synchronize(void *stream) {}

static void w_encoder_forward(void *out, const int32_t *inp, const void *wte, const void *wpe,
                              int64_t B, int64_t T, int64_t C, void *stream) {
    cpu_encoder_forward(out, inp, wte, wpe, B, T, C);
}
static void w_encoder_backward(void *dwte, void *dwpe, const void *dout, const int32_t *inp,
                               int64_t B, int64_t T, int64_t C, void *stream) {
    cpu_encoder_backward(dwte, dwpe, dout, inp, B, T, C);
}
static void w_layernorm_forward(void *out, float *mean, float *rstd, const void *inp,
                                const void *weight, const void *bias, int64_t N, int64_t C,
                                void *stream) {
    cpu_layernorm_forward(out, mean, rstd, inp, weight, bias, N, C);
}
static void w_layernorm_backward(void *dinp, void *dweight, void *dbias, const void *dout,
                                 const void *inp, const void *weight, const float *mean,
                                 const float *rstd, int64_t N, int64_t C, void *stream) {
    cpu_layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}
static void w_matmul_forward(void *out, const void *inp, const void *weight, const void *bias,
                             const void *residual, int64_t N, int64_t IC, int64_t OC,
                             void *stream) {
    cpu_matmul_forward(out, inp, weight, bias, residual, N, IC, OC);
}
static void w_matmul_backward(void *dinp, void *dweight, void *dbias, const void *dout,
                              const void *inp, const void *weight, int64_t N, int64_t IC,
                              int64_t OC, void *stream) {
    cpu_matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, IC, OC);
}
static void w_attention_forward(void *out, void *att, const void *qkv, int64_t B, int64_t T,
                                int64_t C, int64_t NH, void *stream) {
    cpu_attention_forward(out, att, qkv, B, T, C, NH);
}
static void w_attention_backward(void *dqkv, void *att, const void *dout, const void *qkv,
                                 int64_t B, int64_t T, int64_t C, int64_t NH, void *stream) {
    cpu_attention_backward(dqkv, att, dout, qkv, B, T, C, NH);
}
static void w_flash_attention_forward(void *out, float *lse, const void *qkv, int64_t B, int64_t T,
                                      int64_t C, int64_t NH, void *stream) {
    cpu_flash_attention_forward(out, lse, qkv, B, T, C, NH);
}
static void w_flash_attention_backward(void *dqkv, float *workspace, const void *dout,
                                       const void *out, const float *lse, const void *qkv,
                                       int64_t B, int64_t T, int64_t C, int64_t NH, void *stream) {
    cpu_flash_attention_backward(dqkv, workspace, dout, out, lse, qkv, B, T, C, NH);
}
static void w_gelu_forward(void *out, const void *inp, int64_t N, int gelu, void *stream) {
    cpu_gelu_forward(out, inp, N, gelu);
}
static void w_gelu_backward(void *dinp, const void *inp, const void *dout, int64_t N, int gelu,
                            void *stream) {
    cpu_gelu_backward(dinp, inp, dout, N, gelu);
}
static void w_crossentropy_forward(void *logits, float *losses, const int32_t *targets, int64_t N,
                                   int64_t V, int64_t Vp, float dscale, void *stream) {
    cpu_crossentropy_forward(logits, losses, targets, N, V, Vp, dscale);
}
static void w_norm_squared_accumulate(float *acc, const void *grad, int64_t n, void *stream) {
    cpu_norm_squared_accumulate(acc, grad, n);
}
static void w_reduce_sum(float *out, const float *in, int64_t n, void *stream) {
    cpu_reduce_sum(out, in, n);
}
static void w_adamw_update(void *param, float *master, const void *grad, float *m, float *v,
                           int64_t n, float lr, float beta1, float beta2, float eps,
                           float weight_decay, float grad_mul, float bias_correction1,
                           float bias_correction2, void *stream) {
    ASSERT(master == NULL);
    cpu_adamw_update(param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, grad_mul,
                     bias_correction1, bias_correction2);
}

static const GptBackend CPU_BACKEND = {
    .device = GPT_DEVICE_CPU,
    .name = "cpu",
    .memset_zero = cpu_memset_zero,
    .copy_to_host = cpu_copy,
    .copy_from_host = cpu_copy,
    .params_from_host_f32 = cpu_from_host_f32,
    .params_to_host_f32 = cpu_to_host_f32,
    .synchronize = cpu_synchronize,
    .encoder_forward = w_encoder_forward,
    .encoder_backward = w_encoder_backward,
    .layernorm_forward = w_layernorm_forward,
    .layernorm_backward = w_layernorm_backward,
    .matmul_forward = w_matmul_forward,
    .matmul_backward = w_matmul_backward,
    .attention_forward = w_attention_forward,
    .attention_backward = w_attention_backward,
    .flash_attention_forward = w_flash_attention_forward,
    .flash_attention_backward = w_flash_attention_backward,
    .gelu_forward = w_gelu_forward,
    .gelu_backward = w_gelu_backward,
    .crossentropy_forward = w_crossentropy_forward,
    .norm_squared_accumulate = w_norm_squared_accumulate,
    .reduce_sum = w_reduce_sum,
    .adamw_update = w_adamw_update,
};

const GptBackend *gpt_backend_cpu(void) { return &CPU_BACKEND; }

/* OpenBLAS stays single-threaded: cpu_matmul.c splits each sgemm over the OpenMP threads. */
void gpt_set_threads(int n) {
    if (n <= 0)
        n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(1);
}
