/* test_decode.c: decoding with the KV cache (model/decode.c) on the CPU: at every length,
 * including past the window (where an uncached forward of the cropped window takes over), the
 * logits equal gpt_forward_last_logits's over the same (cropped) tokens; greedy and seeded
 * sampling pick the same tokens; the sample plan (cache, one step, the uncached forward)
 * equals a measured run to the byte; a full cache refuses another step; inference builds hold
 * no gradients or optimizer state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../alloc/arena.h"
#include "../data/rng.h"
#include "../model/gpt.h"
#include "test_util.h"

/* f32 logits of the same tokens by two summation orders: the decode step's attention sums
 * the weighted values before normalising, the full forward normalises the probabilities
 * first; a few f32 roundings on logits of size ~1 */
#define DECODE_LOGIT_ATOL 1e-5
#define DECODE_LOGIT_RTOL 1e-4

static GptConfig decode_config(int gelu, int bias) {
    GptConfig c = test_gpt_config(2, 3, 24, 9, 41, 48, bias, gelu, 0);
    c.attention = GPT_ATTENTION_NAIVE;
    return c;
}

/* A model built for inference (B 1, T maxT) on a host arena large enough for the cache and
 * a step (the sample plan) and, above them, an uncached forward of the whole window (the eval
 * plan's high-water, which holds the parameters once more: room to spare). */
static Arena *decode_build(Gpt *g, const GptConfig *c, uint64_t seed) {
    Err err = {{0}};
    size_t bytes = 0;
    for (int phase = GPT_PLAN_EVAL; phase <= GPT_PLAN_SAMPLE; phase++) {
        GptPlanArgs a = {.phase = (GptPlanPhase)phase, .B = 1, .T = c->max_seq_len};
        GptPlan *p = NULL;
        assert_int_equal(gpt_plan(c, GPT_DEVICE_CPU, &a, &p, &err), 0);
        bytes += arena_stats(p->arena).high_water_bytes;
        gpt_plan_free(p);
    }
    Arena *arena = arena_init(ARENA_BACKING_HOST, bytes, 0, &err);
    assert_non_null(arena);
    assert_int_equal(gpt_build_inference(g, c, GPT_DEVICE_CPU, arena, 1, c->max_seq_len, &err), 0);
    gpt_init_weights(g, seed);
    return arena;
}

static int64_t argmax(const float *x, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static void test_decode_logits_equal_full_forward(void **state) {
    for (int k = 0; k < 2; k++) {
        GptConfig c = decode_config(k, 1 - k);
        int64_t T = c.max_seq_len, Vp = c.padded_vocab_size, N = 2 * T + 3;
        Gpt g;
        Arena *arena = decode_build(&g, &c, 7 + (uint64_t)k);
        int32_t *ids = malloc((size_t)N * sizeof *ids);
        test_tokens_random(ids, N, c.vocab_size, 11);
        float *cached = malloc((size_t)Vp * sizeof(float)),
              *full = malloc((size_t)Vp * sizeof(float));
        GptKvCache kv;
        Err err = {{0}};
        assert_int_equal(gpt_kv_init(&g, &kv, &err), 0);
        for (int64_t n = 1; n <= N; n++) { /* past T: the window moves, the cache starts over */
            assert_int_equal(gpt_kv_window(&g, &kv, ids, n, cached, &err), 0);
            int64_t ctx = n < T ? n : T;
            assert_int_equal(gpt_forward_last_logits(&g, ids + n - ctx, 1, ctx, full, &err), 0);
            assert_allclose(cached, full, (size_t)Vp, DECODE_LOGIT_ATOL, DECODE_LOGIT_RTOL);
            assert_int_equal(argmax(cached, c.vocab_size), argmax(full, c.vocab_size));
        }
        gpt_kv_free(&g, &kv);
        free(ids), free(cached), free(full);
        test_model_free(&g, arena);
    }
}

/* Seeded sampling as `sample` draws: the same tokens with and without the cache. */
static void test_decode_sampled_tokens_equal(void **state) {
    GptConfig c = decode_config(0, 1);
    int64_t T = c.max_seq_len, Vp = c.padded_vocab_size, N = T + 6;
    Gpt g;
    Arena *arena = decode_build(&g, &c, 3);
    int32_t ids_a[64] = {5}, ids_b[64] = {5};
    float *la = malloc((size_t)Vp * sizeof(float)), *lb = malloc((size_t)Vp * sizeof(float));
    Rng ra, rb;
    rng_init(&ra, 99);
    rng_init(&rb, 99);
    GptKvCache kv;
    Err err = {{0}};
    assert_int_equal(gpt_kv_init(&g, &kv, &err), 0);
    for (int64_t n = 1; n < N; n++) {
        assert_int_equal(gpt_kv_window(&g, &kv, ids_a, n, la, &err), 0);
        int64_t ctx = n < T ? n : T;
        assert_int_equal(gpt_forward_last_logits(&g, ids_b + n - ctx, 1, ctx, lb, &err), 0);
        /* softmax sampling at temperature 1 from each set of logits, one uniform each */
        double ua = rng_uniform_f64(&ra), ub = rng_uniform_f64(&rb);
        double sa = 0, sb = 0, acc;
        for (int64_t i = 0; i < c.vocab_size; i++)
            sa += exp(la[i]), sb += exp(lb[i]);
        int64_t ta = c.vocab_size - 1, tb = c.vocab_size - 1;
        acc = 0;
        for (int64_t i = 0; i < c.vocab_size && ta == c.vocab_size - 1; i++)
            if ((acc += exp(la[i]) / sa) > ua)
                ta = i;
        acc = 0;
        for (int64_t i = 0; i < c.vocab_size && tb == c.vocab_size - 1; i++)
            if ((acc += exp(lb[i]) / sb) > ub)
                tb = i;
        assert_int_equal(ta, tb);
        ids_a[n] = (int32_t)ta;
        ids_b[n] = (int32_t)tb;
    }
    gpt_kv_free(&g, &kv);
    free(la), free(lb);
    test_model_free(&g, arena);
}

/* The sample plan (an inference build, the cache, one step, an uncached forward of the whole
 * window) against the same calls on a host arena, to the byte; inference holds no gradients
 * and no optimizer state. */
static void test_decode_plan_equals_measured(void **state) {
    GptConfig c = decode_config(0, 1);
    Err err = {{0}};
    GptPlanArgs a = {.phase = GPT_PLAN_SAMPLE, .B = 1, .T = c.max_seq_len};
    GptPlan *p = NULL;
    assert_int_equal(gpt_plan(&c, GPT_DEVICE_CPU, &a, &p, &err), 0);
    ArenaStats ps = arena_stats(p->arena);
    assert_int_equal(ps.cat_peak_bytes[ARENA_CAT_GRADS], 0);
    assert_int_equal(ps.cat_peak_bytes[ARENA_CAT_OPTIMIZER], 0);
    assert_true(ps.cat_peak_bytes[ARENA_CAT_ACTIVATIONS] > 0); /* the cache */
    Arena *host = arena_init(ARENA_BACKING_HOST, ps.high_water_bytes, 0, &err);
    Gpt g;
    assert_int_equal(gpt_plan_build(&g, &c, GPT_DEVICE_CPU, host, &a, &err), 0);
    gpt_init_weights(&g, 1);
    int32_t tok[64]; /* (1, T) tokens */
    assert_true(c.max_seq_len <= 64);
    test_tokens_random(tok, c.max_seq_len, c.vocab_size, 4);
    assert_int_equal(gpt_plan_steps(&g, &a, tok, tok, &err), 0);
    ArenaStats ms = arena_stats(host);
    for (int k = 0; k < ARENA_CAT_COUNT; k++)
        assert_int_equal(ps.cat_peak_bytes[k], ms.cat_peak_bytes[k]);
    assert_int_equal(ps.high_water_bytes, ms.high_water_bytes);
    assert_int_equal(ps.n_allocs, ms.n_allocs);
    /* a model built for inference refuses training */
    float loss;
    assert_int_equal(gpt_forward(&g, tok, tok, 1, 1, 1, &loss, &err), -1);
    assert_non_null(strstr(err.msg, "built for inference"));
    test_model_free(&g, host);
    gpt_plan_free(p);
}

static void test_decode_full_cache_refuses(void **state) {
    GptConfig c = decode_config(0, 0);
    Gpt g;
    Arena *arena = decode_build(&g, &c, 5);
    GptKvCache kv;
    Err err = {{0}};
    float *logits = malloc((size_t)c.padded_vocab_size * sizeof(float));
    assert_int_equal(gpt_kv_init(&g, &kv, &err), 0);
    for (int64_t i = 0; i < c.max_seq_len; i++)
        assert_int_equal(gpt_kv_step(&g, &kv, (int32_t)i, logits, &err), 0);
    assert_int_equal(gpt_kv_step(&g, &kv, 1, logits, &err), -1);
    assert_non_null(strstr(err.msg, "is full"));
    gpt_kv_free(&g, &kv);
    free(logits);
    test_model_free(&g, arena);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_logits_equal_full_forward),
        cmocka_unit_test(test_decode_sampled_tokens_equal),
        cmocka_unit_test(test_decode_plan_equals_measured),
        cmocka_unit_test(test_decode_full_cache_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
