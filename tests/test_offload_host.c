/* test_offload_host.c: the host side of optimizer_offload (model/offload.h), on the CPU: the
 * binary16 and bfloat16 conversions (every f16 and bf16 value, the rounding boundaries of f32 ->
 * f16 and f32 -> bf16) and the host AdamW chunk against a scalar reference of the formula, with
 * f16 params and f16 or f32 gradients, and with bf16 params and bf16 or f32 gradients. The whole offloaded step against the
 * CUDA update runs on the simulator (tests/gpu/test_offload.c, tests/sim_offload.sh); planning
 * with offload without a GPU is tested by tests/cli_mem.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../data/rng.h"
#include "../model/half.h"
#include "../model/offload.h"
#include "test_util.h"

/* The reference below and the kernel may fuse different multiply-adds (-march=native): a few
 * f32 roundings on values of order 1e-2 after one step of lr 1e-2 (x10 margin over 2^-24
 * relative per operation, about 8 operations) */
#define ADAMW_RTOL 2e-6
#define ADAMW_ATOL 1e-9

static void test_offload_host_f16_round_trip(void **state) {
    /* every non-NaN f16 survives f16 -> f32 -> f16 */
    for (uint32_t h = 0; h < 0x10000u; h++) {
        if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu))
            continue; /* NaN */
        uint16_t back = offload_f32_to_f16(offload_f16_to_f32((uint16_t)h));
        if (back != h)
            fail_msg("f16 0x%04x -> %g -> 0x%04x", h, (double)offload_f16_to_f32((uint16_t)h),
                     back);
    }
    assert_true(offload_f16_to_f32(0x3c00) == 1.0f);
    assert_true(offload_f16_to_f32(0xc000) == -2.0f);
    assert_true(offload_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(offload_f16_to_f32(0x0001) == ldexpf(1.0f, -24)); /* smallest subnormal */
    assert_true(offload_f16_to_f32(0x0400) == ldexpf(1.0f, -14)); /* smallest normal */
    assert_true(isinf(offload_f16_to_f32(0x7c00)));
    assert_true(isnan(offload_f16_to_f32(0x7e00)));
}

static void test_offload_host_f32_to_f16_rounding(void **state) {
    /* ties to even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 */
    assert_int_equal(offload_f32_to_f16(1.0f + ldexpf(1.0f, -11)), 0x3c00);
    assert_int_equal(offload_f32_to_f16(1.0f + 3 * ldexpf(1.0f, -11)), 0x3c02);
    assert_int_equal(offload_f32_to_f16(nextafterf(1.0f + ldexpf(1.0f, -11), 2.0f)), 0x3c01);
    /* overflow: 65520 is halfway between 65504 and 65536 (inf), and rounds to inf */
    assert_int_equal(offload_f32_to_f16(65519.0f), 0x7bff);
    assert_int_equal(offload_f32_to_f16(65520.0f), 0x7c00);
    assert_int_equal(offload_f32_to_f16(-1e9f), 0xfc00);
    /* subnormals: 2^-25 ties to 0, 1.5 * 2^-25 rounds up to 2^-24, 3 * 2^-25 ties to even 2 */
    assert_int_equal(offload_f32_to_f16(ldexpf(1.0f, -25)), 0x0000);
    assert_int_equal(offload_f32_to_f16(1.5f * ldexpf(1.0f, -25)), 0x0001);
    assert_int_equal(offload_f32_to_f16(3.0f * ldexpf(1.0f, -25)), 0x0002);
    assert_int_equal(offload_f32_to_f16(-0.0f), 0x8000);
    /* the top of the subnormals rounds into the smallest normal */
    assert_int_equal(offload_f32_to_f16(nextafterf(ldexpf(1.0f, -14), 0.0f)), 0x0400);
    assert_int_equal(offload_f32_to_f16(NAN), 0x7fff);
}

static void test_offload_host_adamw_matches_formula(void **state) {
    const int64_t n = 1000;
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, mul = 0.5f;
    const float bc1 = 1.0f - powf(b1, 3.0f), bc2 = 1.0f - powf(b2, 3.0f);
    float *master = malloc(n * sizeof(float)), *m = malloc(n * sizeof(float));
    float *v = malloc(n * sizeof(float)), *gf = malloc(n * sizeof(float));
    float *rm = malloc(n * sizeof(float)), *rv = malloc(n * sizeof(float));
    float *rp = malloc(n * sizeof(float));
    uint16_t *g16 = malloc(n * sizeof(uint16_t)), *p16 = malloc(n * sizeof(uint16_t));
    assert_true(master && m && v && gf && rm && rv && rp && g16 && p16);
    Rng r;
    rng_init(&r, 9);
    for (int64_t i = 0; i < n; i++) {
        master[i] = rp[i] = (float)rng_normal(&r) * 0.02f;
        m[i] = rm[i] = (float)rng_normal(&r) * 1e-3f;
        v[i] = rv[i] = (float)fabs(rng_normal(&r)) * 1e-6f;
        g16[i] = offload_f32_to_f16((float)rng_normal(&r) * 0.1f);
    }
    offload_adamw_host(p16, master, g16, gf, m, v, n, lr, b1, b2, eps, wd, mul, bc1, bc2);
    for (int64_t i = 0; i < n; i++) { /* the formula, one element at a time */
        float g = offload_f16_to_f32(g16[i]) * mul;
        rm[i] = b1 * rm[i] + (1.0f - b1) * g;
        rv[i] = b2 * rv[i] + (1.0f - b2) * g * g;
        float mhat = rm[i] / bc1, vhat = rv[i] / bc2;
        rp[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * rp[i]);
        assert_int_equal(p16[i], offload_f32_to_f16(master[i])); /* param = f16(master) */
    }
    assert_allclose(m, rm, n, ADAMW_ATOL, ADAMW_RTOL);
    assert_allclose(v, rv, n, ADAMW_ATOL, ADAMW_RTOL);
    assert_allclose(master, rp, n, ADAMW_ATOL, ADAMW_RTOL);
    /* f32 gradients (grad_f16 NULL) take the same path without the widening */
    memcpy(rp, master, n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        gf[i] = 0.0f;
    offload_adamw_host(p16, master, NULL, gf, m, v, n, lr, b1, b2, eps, 0.0f, mul, bc1, bc2);
    for (int64_t i = 0; i < n; i++) /* zero gradient, no decay: only the momentum moves it */
        assert_true(isfinite(master[i]) && (master[i] != rp[i]) == (m[i] != 0.0f));
    free(master), free(m), free(v), free(gf), free(rm), free(rv), free(rp);
    free(g16), free(p16);
}

/* bf16 by another route than half.h's bit arithmetic: the significand scaled to 8 bits and
 * rounded by nearbyintf (the default rounding mode: to nearest, ties to even). Normal finite
 * values only. */
static float bf16_reference(float x) {
    int e;
    float m = frexpf(x, &e); /* x = m * 2^e, 0.5 <= |m| < 1 */
    return ldexpf(nearbyintf(ldexpf(m, 8)), e - 8);
}

static void test_offload_host_bf16_conversions(void **state) {
    /* every non-NaN bf16 survives bf16 -> f32 -> bf16, and widens to its top-half f32 */
    for (uint32_t h = 0; h < 0x10000u; h++) {
        if ((h & 0x7f80u) == 0x7f80u && (h & 0x7fu))
            continue; /* NaN */
        float f = half_bf16_to_f32((uint16_t)h);
        uint32_t bits;
        memcpy(&bits, &f, 4);
        if (bits != h << 16 || half_f32_to_bf16(f) != h)
            fail_msg("bf16 0x%04x -> %a -> 0x%04x", h, (double)f, half_f32_to_bf16(f));
    }
    assert_true(half_bf16_to_f32(0x3f80) == 1.0f);
    assert_true(half_bf16_to_f32(0xc000) == -2.0f);
    assert_true(half_bf16_to_f32(0x0001) == ldexpf(1.0f, -133)); /* smallest subnormal */
    assert_true(isinf(half_bf16_to_f32(0x7f80)) && isnan(half_bf16_to_f32(0x7fc0)));
    /* ties to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 */
    assert_int_equal(half_f32_to_bf16(1.0f + ldexpf(1.0f, -8)), 0x3f80);
    assert_int_equal(half_f32_to_bf16(1.0f + 3 * ldexpf(1.0f, -8)), 0x3f82);
    assert_int_equal(half_f32_to_bf16(nextafterf(1.0f + ldexpf(1.0f, -8), 2.0f)), 0x3f81);
    assert_int_equal(half_f32_to_bf16(-(1.0f + ldexpf(1.0f, -8))), 0xbf80);
    /* the top: halfway between the largest bf16 (0x7f7f) and 2^128 ties to inf */
    assert_int_equal(half_f32_to_bf16(0x1.ffp127f), 0x7f80);
    assert_int_equal(half_f32_to_bf16(nextafterf(0x1.ffp127f, 0.0f)), 0x7f7f);
    assert_int_equal(half_f32_to_bf16(INFINITY), 0x7f80);
    assert_int_equal(half_f32_to_bf16(-INFINITY), 0xff80);
    assert_int_equal(half_f32_to_bf16(-0.0f), 0x8000);
    assert_int_equal(half_f32_to_bf16(ldexpf(1.0f, -133)), 0x0001); /* subnormals too */
    assert_int_equal(half_f32_to_bf16(NAN), 0x7fff);
    assert_true(isnan(half_bf16_to_f32(half_f32_to_bf16(-NAN))));
    /* against the frexp route, on values of every magnitude a weight has */
    Rng r;
    rng_init(&r, 11);
    for (int i = 0; i < 100000; i++) {
        float x = (float)rng_normal(&r) * ldexpf(1.0f, (int)(i % 40) - 30);
        if (x == 0.0f)
            continue;
        float got = half_bf16_to_f32(half_f32_to_bf16(x)), want = bf16_reference(x);
        if (memcmp(&got, &want, 4) != 0)
            fail_msg("%a: bf16 %a, reference %a", (double)x, (double)got, (double)want);
    }
}

/* One host AdamW chunk with bf16 params and bf16 (grad_bf16 1) or f32 gradients against the
 * formula; the gradients are multiples of 2^-12 below 2^-4 in magnitude, so bf16 holds them
 * exactly and the reference takes them as floats. */
static void adamw_bf16_case(int grad_bf16) {
    const int64_t n = 1000;
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, mul = 0.5f;
    const float bc1 = 1.0f - powf(b1, 2.0f), bc2 = 1.0f - powf(b2, 2.0f);
    float *master = malloc(n * sizeof(float)), *m = malloc(n * sizeof(float));
    float *v = malloc(n * sizeof(float)), *gf = malloc(n * sizeof(float));
    float *gref = malloc(n * sizeof(float)), *rm = malloc(n * sizeof(float));
    float *rv = malloc(n * sizeof(float)), *rp = malloc(n * sizeof(float));
    uint16_t *g16 = malloc(n * sizeof(uint16_t)), *p16 = malloc(n * sizeof(uint16_t));
    assert_true(master && m && v && gf && gref && rm && rv && rp && g16 && p16);
    Rng r;
    rng_init(&r, 13);
    for (int64_t i = 0; i < n; i++) {
        master[i] = rp[i] = (float)rng_normal(&r) * 0.02f;
        m[i] = rm[i] = (float)rng_normal(&r) * 1e-3f;
        v[i] = rv[i] = (float)fabs(rng_normal(&r)) * 1e-6f;
        gref[i] = (float)((int)(rng_uniform_f64(&r) * 511.0) - 255) * ldexpf(1.0f, -12);
        g16[i] = half_f32_to_bf16(gref[i]);
        gf[i] = grad_bf16 ? -1.0f : gref[i]; /* the bf16 path must overwrite it */
    }
    offload_adamw_host_as(ARENA_DTYPE_BF16, p16, master,
                          grad_bf16 ? ARENA_DTYPE_BF16 : ARENA_DTYPE_F32, grad_bf16 ? g16 : NULL,
                          gf, m, v, n, lr, b1, b2, eps, wd, mul, bc1, bc2);
    for (int64_t i = 0; i < n; i++) { /* the formula, one element at a time */
        float g = gref[i] * mul;
        rm[i] = b1 * rm[i] + (1.0f - b1) * g;
        rv[i] = b2 * rv[i] + (1.0f - b2) * g * g;
        float mhat = rm[i] / bc1, vhat = rv[i] / bc2;
        rp[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * rp[i]);
        float param = half_bf16_to_f32(p16[i]), want = bf16_reference(master[i]);
        if (memcmp(&param, &want, 4) != 0) /* param = bf16(master), to nearest even */
            fail_msg("[%lld] param %a, bf16 of master %a is %a", (long long)i, (double)param,
                     (double)master[i], (double)want);
    }
    if (grad_bf16)
        assert_memory_equal(gf, gref, n * sizeof(float)); /* widened exactly */
    assert_allclose(m, rm, n, ADAMW_ATOL, ADAMW_RTOL);
    assert_allclose(v, rv, n, ADAMW_ATOL, ADAMW_RTOL);
    assert_allclose(master, rp, n, ADAMW_ATOL, ADAMW_RTOL);
    free(master), free(m), free(v), free(gf), free(gref), free(rm), free(rv), free(rp);
    free(g16), free(p16);
}

static void test_offload_host_adamw_bf16(void **state) {
    adamw_bf16_case(1); /* grad_dtype = bfloat16 */
    adamw_bf16_case(0); /* bfloat16's default: f32 gradients */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offload_host_f16_round_trip),
        cmocka_unit_test(test_offload_host_f32_to_f16_rounding),
        cmocka_unit_test(test_offload_host_adamw_matches_formula),
        cmocka_unit_test(test_offload_host_bf16_conversions),
        cmocka_unit_test(test_offload_host_adamw_bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
