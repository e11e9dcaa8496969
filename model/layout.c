/* layout.c: what each device stores and in which dtype (backend.h's GptLayout: the CUDA
 * layout in float16 or bfloat16, each with its grad_dtype=float32 variant), the flash attention scratch size, and the
 * backend lookup. Plain C so that a machine without a GPU can plan the CUDA layout. */
#include "backend.h"

static const GptLayout LAYOUT_CPU = {
    .device = GPT_DEVICE_CPU,
    .param_dtype = ARENA_DTYPE_F32,
    .grad_dtype = ARENA_DTYPE_F32,
    .act_dtype = ARENA_DTYPE_F32,
    .has_master = 0,
    .backend_workspace_bytes = 0,
};

/* ZeRO's mixed-precision accounting: fp16 params and grads, fp32 master + m + v. The
 * backend workspace is cuBLASLt's (32 MiB, what llm.c reserves). */
static const GptLayout LAYOUT_CUDA = {
    .device = GPT_DEVICE_CUDA,
    .param_dtype = ARENA_DTYPE_F16,
    .grad_dtype = ARENA_DTYPE_F16,
    .act_dtype = ARENA_DTYPE_F16,
    .has_master = 1,
    .backend_workspace_bytes = (size_t)32 << 20,
};

/* grad_dtype=float32: the CUDA layout with f32 weight gradients (4 B/param), accumulated in
 * f32 across loss-head chunks and micro-steps instead of rounding to f16 at every +=. */
static const GptLayout LAYOUT_CUDA_GRAD_F32 = {
    .device = GPT_DEVICE_CUDA,
    .param_dtype = ARENA_DTYPE_F16,
    .grad_dtype = ARENA_DTYPE_F32,
    .act_dtype = ARENA_DTYPE_F16,
    .has_master = 1,
    .backend_workspace_bytes = (size_t)32 << 20,
};

/* dtype=bfloat16: the same bytes in bf16 (8 exponent bits as f32, 8 significant bits) */
static const GptLayout LAYOUT_CUDA_BF16 = {
    .device = GPT_DEVICE_CUDA,
    .param_dtype = ARENA_DTYPE_BF16,
    .grad_dtype = ARENA_DTYPE_BF16,
    .act_dtype = ARENA_DTYPE_BF16,
    .has_master = 1,
    .backend_workspace_bytes = (size_t)32 << 20,
};

static const GptLayout LAYOUT_CUDA_BF16_GRAD_F32 = {
    .device = GPT_DEVICE_CUDA,
    .param_dtype = ARENA_DTYPE_BF16,
    .grad_dtype = ARENA_DTYPE_F32,
    .act_dtype = ARENA_DTYPE_BF16,
    .has_master = 1,
    .backend_workspace_bytes = (size_t)32 << 20,
};

size_t gpt_flash_workspace_bytes(int64_t B, int64_t T, int64_t NH) {
    return (size_t)B * (size_t)NH * (size_t)T * sizeof(float);
}

size_t gpt_cudnn_workspace_bytes(int64_t B, int64_t T, int64_t C, int64_t NH) {
    size_t d = ((size_t)B * (size_t)NH * (size_t)T * sizeof(float) + 255) & ~(size_t)255;
    return d + (size_t)B * (size_t)T * (size_t)C * sizeof(float); /* B*NH*T*HS f32 */
}

const GptLayout *gpt_layout(GptDevice dev) { return gpt_layout_of(dev, 0, 0); }

const GptLayout *gpt_layout_of(GptDevice dev, int bf16, int grad_f32) {
    if (dev != GPT_DEVICE_CUDA)
        return &LAYOUT_CPU;
    if (bf16)
        return grad_f32 ? &LAYOUT_CUDA_BF16_GRAD_F32 : &LAYOUT_CUDA_BF16;
    return grad_f32 ? &LAYOUT_CUDA_GRAD_F32 : &LAYOUT_CUDA;
}

/* gpt_backend_cuda() and gpt_backend_cuda_dtypes() are model/cuda/'s, or
 * model/device_nocuda.c's NULL in a build without CUDA (the Makefile links one or the
 * other). */
const GptBackend *gpt_backend(GptDevice dev) {
    if (dev == GPT_DEVICE_CUDA)
        return gpt_backend_cuda();
    return gpt_backend_cpu();
}

const GptBackend *gpt_backend_for(const GptLayout *lay) {
    if (lay->device == GPT_DEVICE_CUDA)
        return gpt_backend_cuda_dtypes(lay->act_dtype == ARENA_DTYPE_BF16,
                                       lay->grad_dtype == ARENA_DTYPE_F32);
    return gpt_backend(lay->device);
}
