/* test_flash.c: the CPU flash attention kernels (model/cpu/cpu_flash.c) against the naive CPU
 * attention (cpu_attention.c), forward and backward, at sizes that do not fall on the tiles
 * (T 1, 7, 64, 65, 130, 200; head sizes 1, 5, 64, 65), and its log-sum-exp against a double
 * precision reference. Also: dqkv is overwritten, not accumulated; large scores do not
 * overflow; results do not depend on the thread count; the workspace size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../data/rng.h"
#include "../model/backend.h"
#include "../model/cpu/cpu_kernels.h"
#include "test_util.h"

/* flash vs naive, both f32: the same products summed in another order (online softmax with
 * rescaling, exp(s - lse) instead of exp(s - max) / sum), a few f32 roundings apart */
#define FLASH_FWD_ATOL 2e-6
#define FLASH_FWD_RTOL 1e-4
/* the backward sums T terms per output in another order than naive (dQ over key tiles, and
 * D = dO.O instead of sum p dP): measured at most 1.4e-6 absolute up to T 512, HS 64 */
#define FLASH_BWD_ATOL 1e-5
#define FLASH_BWD_RTOL 1e-3
/* lse vs a double reference: one log of an f32 sum */
#define FLASH_LSE_ATOL 1e-5
#define FLASH_LSE_RTOL 1e-5

static float *randf(int64_t n, double scale, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    float *x = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(rng_normal(&r) * scale);
    return x;
}

typedef struct Shape {
    int64_t B, T, C, NH;
} Shape;

/* Runs naive and flash forward + backward on one random problem and compares. qscale scales
 * q and k (larger scores: a peakier softmax). */
static void check_shape(Shape s, double qscale, uint64_t seed) {
    int64_t B = s.B, T = s.T, C = s.C, NH = s.NH, HS = C / NH;
    int64_t n_qkv = B * T * 3 * C, n_y = B * T * C, n_lse = B * NH * T;
    float *qkv = randf(n_qkv, 1.0, seed), *dy = randf(n_y, 1.0, seed + 1);
    for (int64_t i = 0; i < B * T; i++)
        for (int64_t c = 0; c < 2 * C; c++)
            qkv[i * 3 * C + c] *= (float)qscale;
    float *y_ref = calloc((size_t)n_y, sizeof(float));
    float *att = calloc((size_t)(B * NH * T * T), sizeof(float));
    float *dqkv_ref = calloc((size_t)n_qkv, sizeof(float));
    float *y = randf(n_y, 1.0, seed + 2); /* garbage: must be overwritten */
    float *lse = randf(n_lse, 1.0, seed + 3);
    float *dqkv = randf(n_qkv, 1.0, seed + 4);
    float *ws = randf(n_lse, 1.0, seed + 5);

    cpu_attention_forward(y_ref, att, NULL, qkv, B, T, C, NH, NULL);
    cpu_flash_attention_forward(y, lse, NULL, qkv, B, T, C, NH, NULL);
    assert_allclose(y, y_ref, (size_t)n_y, FLASH_FWD_ATOL, FLASH_FWD_RTOL);

    /* lse in double: log sum_{j<=t} exp(scale q_t . k_j) */
    float *lse_ref = malloc((size_t)n_lse * sizeof(float));
    double scale = 1.0 / sqrt((double)HS);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < NH; h++)
            for (int64_t t = 0; t < T; t++) {
                const float *q = qkv + (b * T + t) * 3 * C + h * HS;
                double sc[512], mx = -INFINITY, sum = 0;
                assert_true(t < 512);
                for (int64_t j = 0; j <= t; j++) {
                    const float *k = qkv + (b * T + j) * 3 * C + C + h * HS;
                    double d = 0;
                    for (int64_t i = 0; i < HS; i++)
                        d += (double)q[i] * k[i];
                    sc[j] = d * scale;
                    mx = sc[j] > mx ? sc[j] : mx;
                }
                for (int64_t j = 0; j <= t; j++)
                    sum += exp(sc[j] - mx);
                lse_ref[(b * NH + h) * T + t] = (float)(mx + log(sum));
            }
    assert_allclose(lse, lse_ref, (size_t)n_lse, FLASH_LSE_ATOL, FLASH_LSE_RTOL);

    cpu_attention_backward(dqkv_ref, att, NULL, dy, NULL, qkv, B, T, C, NH, NULL);
    cpu_flash_attention_backward(dqkv, lse, ws, dy, y, qkv, B, T, C, NH, NULL);
    assert_allclose(dqkv, dqkv_ref, (size_t)n_qkv, FLASH_BWD_ATOL, FLASH_BWD_RTOL);

    free(qkv), free(dy), free(y_ref), free(att), free(dqkv_ref), free(y), free(lse), free(dqkv);
    free(ws), free(lse_ref);
}

static void test_flash_matches_naive_odd_sizes(void **state) {
    const Shape shapes[] = {
        {1, 1, 4, 2},    /* one token: the output is v */
        {2, 7, 15, 3},   /* HS 5 */
        {1, 64, 64, 1},  /* exactly one tile */
        {2, 65, 130, 2}, /* one row past the tile, HS 65 */
        {1, 130, 6, 6},  /* HS 1, three tiles */
        {1, 200, 128, 2} /* HS 64, partial last tile */
    };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        printf("  B %lld T %lld C %lld NH %lld\n", (long long)shapes[i].B, (long long)shapes[i].T,
               (long long)shapes[i].C, (long long)shapes[i].NH);
        check_shape(shapes[i], 1.0, 100 + 10 * i);
    }
}

/* scores up to ~+-100: exp must be taken relative to the running maximum */
static void test_flash_large_scores(void **state) {
    Shape s = {1, 97, 32, 2};
    check_shape(s, 4.0, 7);
}

/* one head is one thread's: the bits do not depend on how many threads run */
static void test_flash_thread_count_invariant(void **state) {
    int64_t B = 2, T = 70, C = 24, NH = 3;
    int64_t n_qkv = B * T * 3 * C, n_y = B * T * C, n_lse = B * NH * T;
    float *qkv = randf(n_qkv, 1.0, 51), *dy = randf(n_y, 1.0, 52);
    float *y[2], *lse[2], *dqkv[2], *ws = malloc((size_t)n_lse * sizeof(float));
    int saved = omp_get_max_threads();
    for (int k = 0; k < 2; k++) {
        omp_set_num_threads(k == 0 ? 1 : 3);
        y[k] = malloc((size_t)n_y * sizeof(float));
        lse[k] = malloc((size_t)n_lse * sizeof(float));
        dqkv[k] = malloc((size_t)n_qkv * sizeof(float));
        cpu_flash_attention_forward(y[k], lse[k], NULL, qkv, B, T, C, NH, NULL);
        cpu_flash_attention_backward(dqkv[k], lse[k], ws, dy, y[k], qkv, B, T, C, NH, NULL);
    }
    omp_set_num_threads(saved);
    assert_memory_equal(y[0], y[1], (size_t)n_y * sizeof(float));
    assert_memory_equal(lse[0], lse[1], (size_t)n_lse * sizeof(float));
    assert_memory_equal(dqkv[0], dqkv[1], (size_t)n_qkv * sizeof(float));
    for (int k = 0; k < 2; k++)
        free(y[k]), free(lse[k]), free(dqkv[k]);
    free(qkv), free(dy), free(ws);
}

static void test_flash_workspace_bytes(void **state) {
    assert_int_equal(gpt_flash_workspace_bytes(16, 512, 6), (size_t)16 * 6 * 512 * 4);
    assert_int_equal(gpt_flash_workspace_bytes(1, 1, 1), 4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flash_matches_naive_odd_sizes),
        cmocka_unit_test(test_flash_large_scores),
        cmocka_unit_test(test_flash_thread_count_invariant),
        cmocka_unit_test(test_flash_workspace_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
