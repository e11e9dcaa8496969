/* offload.h: the host side of optimizer_offload's AdamW step (model/offload.c), for the
 * benchmark (scripts/bench_offload.sh) and the tests: IEEE binary16 conversions on the CPU and
 * the update of one chunk of a parameter in host memory, with f16 or bf16 params and f16, bf16
 * or f32 gradients. The model itself reaches offload
 * through gpt.h (gpt_build_offload, gpt_update). Plain C, no device. */
#ifndef ARENAGPT_OFFLOAD_H
#define ARENAGPT_OFFLOAD_H

#include <stdint.h>

#include "../alloc/arena.h" /* ArenaDtype */

/* f16 bits -> f32 (exact) and f32 -> f16 bits, rounded to nearest even as __float2half_rn
 * (65520 and above to inf; NaN to the canonical 0x7fff): half.h's half_f16_to_f32 and
 * half_f32_to_f16 under the names the device tests and the benchmark call. */
float offload_f16_to_f32(uint16_t h);
uint16_t offload_f32_to_f16(float f);

/* AdamW on n elements in host memory, the CUDA kernel's f32 arithmetic term for term
 * (cuda_optim.cu): g = grad * grad_mul, m, v updated, master -= lr * (m/bc1 / (sqrt(v/bc2) +
 * eps) + wd * master), param = param_dtype(master) rounded to nearest even (param_dtype
 * ARENA_DTYPE_F16 or ARENA_DTYPE_BF16). grad_dtype ARENA_DTYPE_F16 or ARENA_DTYPE_BF16: the
 * gradient is grad16, widened exactly into grad_f32 first; ARENA_DTYPE_F32: it is already in
 * grad_f32 (grad16 unused). OpenMP over the elements; the AdamW itself is the CPU backend's
 * kernel. */
void offload_adamw_host_as(ArenaDtype param_dtype, uint16_t *param /* (n) */,
                           float *master /* (n) */, ArenaDtype grad_dtype,
                           const uint16_t *grad16 /* (n) or NULL */, float *grad_f32 /* (n) */,
                           float *m /* (n) */, float *v /* (n) */, int64_t n, float lr, float beta1,
                           float beta2, float eps, float weight_decay, float grad_mul,
                           float bias_correction1, float bias_correction2);
/* offload_adamw_host_as with f16 params; grad is f16 (grad_f16) or, when grad_f16 is NULL, f32
 * already in grad_f32. */
void offload_adamw_host(uint16_t *param /* (n) */, float *master /* (n) */,
                        const uint16_t *grad_f16 /* (n) or NULL */, float *grad_f32 /* (n) */,
                        float *m /* (n) */, float *v /* (n) */, int64_t n, float lr, float beta1,
                        float beta2, float eps, float weight_decay, float grad_mul,
                        float bias_correction1, float bias_correction2);

#endif
