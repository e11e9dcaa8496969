/* plan_backend.c: the plan backend (backend.h's gpt_backend_plan): a kernel table whose
 * kernels do nothing, for a plan arena (no memory: every Tensor.data is NULL). The model
 * runs the same phases on it as on a device, so the sequence of arena calls, and so the
 * plan, is the run's by construction (ggml measures its graphs the same way). Copies to the
 * host write zeros, so a value read back (a loss, a gradient norm) is 0 and finite. It has
 * every attention kind: what a kind needs to run is checked on the real backend, not here
 * (gpt_build, gpt_attention_resolve). */
#include <string.h>

#include "backend.h"

static void plan_memset_zero(void *dst, size_t bytes, void *stream) {}
static void plan_copy_to_host(void *dst_host, const void *src, size_t bytes, void *stream) {
    memset(dst_host, 0, bytes);
}
static void plan_copy_from_host(void *dst, const void *src_host, size_t bytes, void *stream) {}
static void plan_from_host_f32(void *dst, ArenaDtype dtype, const float *src_host, int64_t n,
                               void *stream) {}
static void plan_to_host_f32(float *dst_host, const void *src, ArenaDtype dtype, int64_t n,
                             void *stream) {
    memset(dst_host, 0, (size_t)n * sizeof(float));
}
static void plan_synchronize(void *stream) {}

static void plan_encoder_forward(void *out, const int32_t *inp, const void *wte, const void *wpe,
                                 int64_t B, int64_t T, int64_t C, void *stream) {}
static void plan_encoder_backward(void *dwte, void *dwpe, const void *dout, const int32_t *inp,
                                  int64_t B, int64_t T, int64_t C, void *stream) {}
static void plan_layernorm_forward(void *out, float *mean, float *rstd, const void *inp,
                                   const void *weight, const void *bias, int64_t N, int64_t C,
                                   void *stream) {}
static void plan_layernorm_backward(void *dinp, void *dweight, void *dbias, const void *dout,
                                    const void *inp, const void *weight, const float *mean,
                                    const float *rstd, int64_t N, int64_t C, void *stream) {}
static void plan_matmul_forward(void *out, const void *inp, const void *weight, const void *bias,
                                const void *residual, int64_t N, int64_t IC, int64_t OC,
                                void *stream) {}
static void plan_matmul_backward(void *dinp, void *dweight, void *dbias, const void *dout,
                                 const void *inp, const void *weight, int64_t N, int64_t IC,
                                 int64_t OC, void *stream) {}
static void plan_attention_forward(void *out, void *saved, void *workspace, const void *qkv,
                                   int64_t B, int64_t T, int64_t C, int64_t NH, void *stream) {}
static void plan_attention_backward(void *dqkv, void *saved, void *workspace, const void *dout,
                                    const void *out, const void *qkv, int64_t B, int64_t T,
                                    int64_t C, int64_t NH, void *stream) {}
static void plan_attention_decode(void *out, const void *qkv, int64_t T, int64_t C, int64_t NH,
                                  void *stream) {}
static void plan_gelu_forward(void *out, const void *inp, int64_t N, int gelu, void *stream) {}
static void plan_gelu_backward(void *dinp, const void *inp, const void *dout, int64_t N, int gelu,
                               void *stream) {}
static void plan_crossentropy_forward(void *logits, float *losses, const int32_t *targets,
                                      int64_t N, int64_t V, int64_t Vp, float dscale,
                                      void *stream) {}
static void plan_norm_squared_accumulate(float *acc, const void *grad, int64_t n, void *stream) {}
static void plan_reduce_sum(float *out, const float *in, int64_t n, void *stream) {}
static void plan_adamw_update(void *param, float *master, const void *grad, float *m, float *v,
                              int64_t n, float lr, float beta1, float beta2, float eps,
                              float weight_decay, float grad_mul, float bias_correction1,
                              float bias_correction2, void *stream) {}

#define PLAN_ATTENTION                                                                             \
    { plan_attention_forward, plan_attention_backward, NULL }

static const GptBackend PLAN_BACKEND = {
    .device = GPT_DEVICE_CPU, /* unused: a plan's device is the Gpt's */
    .name = "plan",
    .memset_zero = plan_memset_zero,
    .copy_to_host = plan_copy_to_host,
    .copy_from_host = plan_copy_from_host,
    .params_from_host_f32 = plan_from_host_f32,
    .params_to_host_f32 = plan_to_host_f32,
    .synchronize = plan_synchronize,
    .encoder_forward = plan_encoder_forward,
    .encoder_backward = plan_encoder_backward,
    .layernorm_forward = plan_layernorm_forward,
    .layernorm_backward = plan_layernorm_backward,
    .matmul_forward = plan_matmul_forward,
    .matmul_backward = plan_matmul_backward,
    .attention = {[GPT_ATTENTION_NAIVE] = PLAN_ATTENTION,
                  [GPT_ATTENTION_CUDNN] = PLAN_ATTENTION,
                  [GPT_ATTENTION_FLASH] = PLAN_ATTENTION},
    .attention_decode = plan_attention_decode,
    .gelu_forward = plan_gelu_forward,
    .gelu_backward = plan_gelu_backward,
    .crossentropy_forward = plan_crossentropy_forward,
    .norm_squared_accumulate = plan_norm_squared_accumulate,
    .reduce_sum = plan_reduce_sum,
    .adamw_update = plan_adamw_update,
};

const GptBackend *gpt_backend_plan(void) { return &PLAN_BACKEND; }
