/* test_offload_host.c: the host side of optimizer_offload (model/offload.h), on the CPU: the
 * binary16 conversions (every f16 value, the rounding boundaries of f32 -> f16) and the host
 * AdamW chunk against a scalar reference of the formula. The whole offloaded step against the
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offload_host_f16_round_trip),
        cmocka_unit_test(test_offload_host_f32_to_f16_rounding),
        cmocka_unit_test(test_offload_host_adamw_matches_formula),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
