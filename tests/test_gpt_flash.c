/* test_gpt_flash.c: attention=flash in the whole model on the CPU: its plan equals a measured
 * run to the byte in every recompute mode; it saves exactly the probabilities' bytes minus the
 * log-sum-exp's per layer; loss and every gradient match attention=naive; recompute modes give
 * bit-identical gradients; the configuration checks (CUDA head-size limit, cudnn on the CPU). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../alloc/arena.h"
#include "../data/rng.h"
#include "../model/gpt.h"
#include "test_util.h"

/* whole model, flash vs naive, f32: each attention differs from naive by a few f32 roundings
 * (test_flash.c), and those differences pass through the layers of forward and backward */
#define MODEL_GRAD_ATOL 1e-5
#define MODEL_GRAD_RTOL 1e-3
/* the mean loss: f32 cross-entropy of nearly identical logits */
#define MODEL_LOSS_RTOL 1e-5

static GptConfig config_make(int64_t L, int64_t NH, int64_t C, int64_t maxT, int64_t V,
                             int attention, int recompute) {
    GptConfig c = {0};
    c.n_layer = L;
    c.n_head = NH;
    c.channels = C;
    c.max_seq_len = maxT;
    c.vocab_size = V;
    c.padded_vocab_size = V + 3;
    c.bias = 1;
    c.attention = attention;
    c.recompute = recompute;
    return c;
}

static int32_t *tokens_random(int64_t n, int64_t V, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    int32_t *x = malloc((size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++)
        x[i] = (int32_t)rng_below(&r, (uint64_t)V);
    return x;
}

static void test_gpt_flash_plan_equals_measured(void **state) {
    for (int mode = 0; mode <= 2; mode++) {
        GptConfig c = config_make(2, 3, 24, 11, 37, GPT_ATTENTION_FLASH, mode);
        int64_t B = 3, T = 7;
        Err err = {{0}};
        GptPlan *plan = NULL;
        assert_int_equal(test_plan(&c, GPT_DEVICE_CPU, B, T, 2, 0, &plan, &err), 0);
        ArenaStats ps = arena_stats(plan->arena);
        Arena *host = arena_init(ARENA_BACKING_HOST, ps.high_water_bytes, 0, &err);
        assert_non_null(host);
        Gpt g;
        assert_int_equal(gpt_build(&g, &c, GPT_DEVICE_CPU, host, B, T, &err), 0);
        gpt_init_weights(&g, 1);
        int32_t *x = tokens_random(B * T, c.vocab_size, 2), *y = tokens_random(B * T, 37, 3);
        assert_int_equal(
            gpt_plan_steps(&g,
                           &(GptPlanArgs){.phase = GPT_PLAN_TRAIN, .B = B, .T = T, .grad_accum = 2},
                           x, y, &err),
            0);
        ArenaStats ms = arena_stats(host);
        for (int k = 0; k < ARENA_CAT_COUNT; k++) {
            assert_int_equal(ps.cat_peak_bytes[k], ms.cat_peak_bytes[k]);
            assert_int_equal(ps.at_peak_bytes[k], ms.at_peak_bytes[k]);
        }
        assert_int_equal(ps.high_water_bytes, ms.high_water_bytes);
        assert_int_equal(ps.n_allocs, ms.n_allocs);
        gpt_free(&g);
        assert_int_equal(arena_stats(host).used_bytes, 0);
        arena_free(host);
        gpt_plan_free(plan);
        free(x), free(y);
    }
}

/* recompute none: each layer keeps an f32 (B,NH,T) lse instead of the (B,NH,T,T) probabilities */
static void test_gpt_flash_plan_saves_probabilities(void **state) {
    int64_t B = 4, T = 64, NH = 4, L = 3;
    size_t act[2];
    for (int k = 0; k < 2; k++) {
        GptConfig c = config_make(L, NH, 64, T, 50, k ? GPT_ATTENTION_FLASH : GPT_ATTENTION_NAIVE,
                                  GPT_RECOMPUTE_NONE);
        Err err = {{0}};
        GptPlan *plan = NULL;
        assert_int_equal(test_plan(&c, GPT_DEVICE_CPU, B, T, 1, 0, &plan, &err), 0);
        act[k] = arena_stats(plan->arena).cat_peak_bytes[ARENA_CAT_ACTIVATIONS];
        gpt_plan_free(plan);
    }
    /* both sizes are multiples of the 256-byte alignment here */
    size_t att = (size_t)(B * NH * T * T) * 4, lse = (size_t)(B * NH * T) * 4;
    assert_int_equal(act[0] - act[1], (size_t)L * (att - lse));
}

static void run_grads(const GptConfig *c, int64_t B, int64_t T, const int32_t *x, const int32_t *y,
                      float **grads_out, size_t *n_out, float *loss) {
    Err err = {{0}};
    GptPlan *plan = NULL;
    assert_int_equal(test_plan(c, GPT_DEVICE_CPU, B, T, 1, 0, &plan, &err), 0);
    Arena *a = arena_init(ARENA_BACKING_HOST, arena_stats(plan->arena).high_water_bytes, 0, &err);
    gpt_plan_free(plan);
    assert_non_null(a);
    Gpt g;
    assert_int_equal(gpt_build(&g, c, GPT_DEVICE_CPU, a, B, T, &err), 0);
    gpt_init_weights(&g, 42);
    gpt_zero_grad(&g);
    assert_int_equal(gpt_forward(&g, x, y, B, T, 1, loss, &err), 0);
    assert_int_equal(gpt_backward(&g, &err), 0);
    size_t n = 0;
    for (int i = 0; i < g.n_params; i++)
        n += (size_t)g.params[i].numel;
    float *gr = malloc(n * sizeof(float));
    size_t off = 0;
    for (int i = 0; i < g.n_params; i++) {
        memcpy(gr + off, g.params[i].grad->data, (size_t)g.params[i].numel * sizeof(float));
        off += (size_t)g.params[i].numel;
    }
    *grads_out = gr;
    *n_out = n;
    gpt_free(&g);
    assert_int_equal(arena_stats(a).used_bytes, 0);
    arena_free(a);
}

/* T 70 crosses the CPU kernel's 64-row tiles; HS 5 is odd */
static void test_gpt_flash_gradients_match_naive(void **state) {
    int64_t B = 2, T = 70;
    GptConfig c = config_make(2, 3, 15, 70, 29, GPT_ATTENTION_NAIVE, GPT_RECOMPUTE_NONE);
    int32_t *x = tokens_random(B * T, c.vocab_size, 11), *y = tokens_random(B * T, 29, 12);
    float *ref = NULL, loss_ref = 0;
    size_t n_ref = 0;
    run_grads(&c, B, T, x, y, &ref, &n_ref, &loss_ref);
    float *flash_none = NULL;
    for (int mode = 0; mode <= 2; mode++) {
        c.attention = GPT_ATTENTION_FLASH;
        c.recompute = mode;
        float *gr = NULL, loss = 0;
        size_t n = 0;
        run_grads(&c, B, T, x, y, &gr, &n, &loss);
        assert_int_equal(n, n_ref);
        assert_true(fabs(loss - loss_ref) <= MODEL_LOSS_RTOL * fabs(loss_ref));
        assert_allclose(gr, ref, n, MODEL_GRAD_ATOL, MODEL_GRAD_RTOL);
        if (mode == 0) {
            flash_none = gr;
            continue;
        }
        /* recompute re-runs the same kernels on the same inputs */
        assert_memory_equal(gr, flash_none, n * sizeof(float));
        free(gr);
    }
    free(flash_none), free(ref), free(x), free(y);
}

static void test_gpt_flash_config_checks(void **state) {
    Err err = {{0}};
    GptConfig c = config_make(1, 2, 130, 8, 10, GPT_ATTENTION_FLASH, 0); /* HS 65 */
    assert_int_equal(gpt_config_check(&c, GPT_DEVICE_CPU, &err), 0);
    assert_int_equal(gpt_config_check(&c, GPT_DEVICE_CUDA, &err), -1);
    assert_non_null(strstr(err.msg, "head sizes up to 64"));
    assert_non_null(strstr(err.msg, "= 65"));
    c.n_head = 3; /* HS 43 */
    c.channels = 129;
    assert_int_equal(gpt_config_check(&c, GPT_DEVICE_CUDA, &err), 0);
    c.attention = GPT_ATTENTION_CUDNN;
    assert_int_equal(gpt_config_check(&c, GPT_DEVICE_CPU, &err), -1);
    assert_non_null(strstr(err.msg, "cudnn needs --device=cuda"));
    c.attention = GPT_ATTENTION_COUNT;
    assert_int_equal(gpt_config_check(&c, GPT_DEVICE_CPU, &err), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt_flash_plan_equals_measured),
        cmocka_unit_test(test_gpt_flash_plan_saves_probabilities),
        cmocka_unit_test(test_gpt_flash_gradients_match_naive),
        cmocka_unit_test(test_gpt_flash_config_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
