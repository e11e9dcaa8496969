/* cpu_backend.c: the CPU backend table (backend.h): the fp32 kernels of cpu_kernels.h
 * themselves (same signatures), host memory operations, and the thread setting shared by
 * OpenMP and OpenBLAS. The CPU layout is f32 everywhere; it has no master weights and no
 * backend workspace. */
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

/* The one adapter: the table's AdamW takes a master pointer, which the CPU layout never has. */
static void cpu_adamw_entry(void *param, float *master, const void *grad, float *m, float *v,
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
    .encoder_forward = cpu_encoder_forward,
    .encoder_backward = cpu_encoder_backward,
    .layernorm_forward = cpu_layernorm_forward,
    .layernorm_backward = cpu_layernorm_backward,
    .matmul_forward = cpu_matmul_forward,
    .matmul_backward = cpu_matmul_backward,
    .attention = {[GPT_ATTENTION_NAIVE] = {cpu_attention_forward, cpu_attention_backward, NULL},
                  [GPT_ATTENTION_FLASH] = {cpu_flash_attention_forward,
                                           cpu_flash_attention_backward, NULL}},
    .attention_decode = cpu_attention_decode,
    .gelu_forward = cpu_gelu_forward,
    .gelu_backward = cpu_gelu_backward,
    .crossentropy_forward = cpu_crossentropy_forward,
    .norm_squared_accumulate = cpu_norm_squared_accumulate,
    .reduce_sum = cpu_reduce_sum,
    .adamw_update = cpu_adamw_entry,
};

const GptBackend *gpt_backend_cpu(void) { return &CPU_BACKEND; }

/* OpenBLAS stays single-threaded: cpu_matmul.c splits each sgemm over the OpenMP threads. */
void gpt_set_threads(int n) {
    if (n <= 0)
        n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(1);
}
