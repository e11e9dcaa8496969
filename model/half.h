/* half.h: the host's 16-bit float conversions, one copy for the whole program: IEEE binary16
 * (f16) and bfloat16 (bf16, the top 16 bits of an f32) to and from f32, as raw uint16 bits.
 * Used by the model files (model_io.c: llm.c's bf16 version 5), the safetensors reader and the
 * optimizer_offload step (offload.c). Plain C, no device; the GPU's conversions are its own
 * intrinsics (__float2half_rn, __float2bfloat16_rn), which these match bit for bit.
 *
 * Widening (f16 or bf16 -> f32) is exact. Narrowing (f32 -> f16 or bf16) rounds to nearest,
 * ties to even; a NaN stays a NaN (the canonical quiet NaN the GPU's intrinsics give: f16
 * 0x7fff, bf16 0x7fff), infinities stay infinities; f16 overflows to inf from 65520 up. */
#ifndef ARENAGPT_HALF_H
#define ARENAGPT_HALF_H

#include <stdint.h>

/* f16 bits -> f32 (exact, subnormals included). */
float half_f16_to_f32(uint16_t h);
/* f32 -> f16 bits, round to nearest even (65520 and above to inf; NaN to 0x7fff). */
uint16_t half_f32_to_f16(float f);
/* bf16 bits -> f32 (exact: the bits shifted into the top half). */
float half_bf16_to_f32(uint16_t h);
/* f32 -> bf16 bits, round to nearest even (values above the largest bf16 by half a unit or
 * more round to inf, as the rule says; NaN to 0x7fff). */
uint16_t half_f32_to_bf16(float f);

#endif
