/* half.c: f16 and bf16 <-> f32 on the host (see half.h for the rounding rules). */
#include "half.h"

#include <string.h>

float half_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t x;
    if (exp == 0) { /* zero or subnormal: mant * 2^-24, exact in f32 */
        float f = (float)mant * 0x1p-24f;
        return sign ? -f : f;
    }
    if (exp == 31)
        x = sign | 0x7f800000u | (mant << 13);
    else
        x = sign | ((exp + 112u) << 23) | (mant << 13);
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

uint16_t half_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)
        return 0x7fffu; /* NaN: the canonical one __float2half_rn gives */
    if (ax >= 0x477ff000u)
        return sign | 0x7c00u; /* >= 65520 (and inf) rounds to inf */
    if (ax < 0x33000000u)
        return sign; /* < 2^-25 (ties at 2^-25 go to even: 0) */
    uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = e < 113 ? 126 - e : 13; /* subnormal f16 below 2^-14 */
    uint32_t r = e < 113 ? m >> shift : (((e - 112) << 10) | ((ax & 0x7fffffu) >> 13));
    uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u)))
        r++; /* a carry into the exponent is the right rounding */
    return sign | (uint16_t)r;
}

float half_bf16_to_f32(uint16_t h) {
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

uint16_t half_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return 0x7fffu; /* NaN: the canonical one __float2bfloat16_rn gives */
    /* round to nearest even on the low 16 bits; a carry into the exponent is the right
     * rounding (up to inf above the largest bf16) */
    uint32_t lsb = (x >> 16) & 1u;
    return (uint16_t)((x + 0x7fffu + lsb) >> 16);
}
