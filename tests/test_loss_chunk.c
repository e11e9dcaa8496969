/* test_loss_chunk.c: the loss head's automatic chunk follows its stated rule (model/
 * loss_chunk.h) at the configs the rule was set for, and a chunk's cost is the arithmetic of
 * its three GEMMs against wte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../model/loss_chunk.h"
#include "test_util.h"

#define VP 50304 /* GPT-2's vocabulary padded to a multiple of 128 */

static GptConfig model(int64_t L, int64_t NH, int64_t C, int64_t T) {
    return test_gpt_config(L, NH, C, T, 50257, VP, 0, GPT_GELU_TANH, GPT_RECOMPUTE_NONE);
}

/* the rule's promises for one shape: within budget, 64-row multiple, balanced, fewest chunks */
static void check_rule(const GptConfig *c, GptDevice dev, int64_t B, int64_t T, int64_t bytes) {
    int64_t n = B * T, chunk = gpt_loss_chunk(c, dev, B, T);
    int64_t k = (n + chunk - 1) / chunk;
    assert_true(chunk * VP * bytes <= GPT_LOSS_CHUNK_BUDGET_BYTES);
    assert_true(chunk % GPT_LOSS_CHUNK_ALIGN_ROWS == 0 || chunk == n);
    /* one chunk fewer would not fit the budget */
    int64_t fewer = k > 1 ? (n + k - 2) / (k - 1) : 0;
    assert_true(k == 1 || fewer * VP * bytes > GPT_LOSS_CHUNK_BUDGET_BYTES);
    /* balanced: rounding each chunk up to a tile leaves the last short by under a tile per chunk */
    assert_true(n - (k - 1) * chunk > chunk - k * GPT_LOSS_CHUNK_ALIGN_ROWS);
}

static void test_loss_chunk_auto_4070(void **state) {
    (void)state;
    GptConfig c = model(6, 6, 384, 512);
    int64_t chunk = gpt_loss_chunk(&c, GPT_DEVICE_CUDA, 16, 512);
    assert_true(chunk >= 1024);                      /* the bound: at most 8 chunks */
    assert_int_equal((8192 + chunk - 1) / chunk, 5); /* 160 MiB of f16 rows: 1664 x 5 */
    check_rule(&c, GPT_DEVICE_CUDA, 16, 512, 2);
    /* the CPU's f32 logits take twice the bytes a row: half the rows */
    assert_int_equal(gpt_loss_chunk(&c, GPT_DEVICE_CPU, 16, 512) * 2, chunk);
    check_rule(&c, GPT_DEVICE_CPU, 16, 512, 4);
}

static void test_loss_chunk_auto_gpt2_124m(void **state) {
    (void)state;
    GptConfig c = model(12, 12, 768, 1024);
    int64_t chunk = gpt_loss_chunk(&c, GPT_DEVICE_CUDA, 12, 1024);
    assert_true((12288 + chunk - 1) / chunk <= 8);
    check_rule(&c, GPT_DEVICE_CUDA, 12, 1024, 2);
    for (int64_t B = 1; B <= 40; B += 3) /* odd batch counts keep the rule */
        check_rule(&c, GPT_DEVICE_CUDA, B, 1024, 2);
}

static void test_loss_chunk_small_and_set(void **state) {
    (void)state;
    GptConfig c = test_gpt_config(2, 2, 32, 64, 65, 128, 0, GPT_GELU_TANH, GPT_RECOMPUTE_NONE);
    assert_int_equal(gpt_loss_chunk(&c, GPT_DEVICE_CPU, 3, 37), 3 * 37); /* cheap: one chunk */
    c.loss_chunk = 7;
    assert_int_equal(gpt_loss_chunk(&c, GPT_DEVICE_CPU, 3, 37), 7);
    c.loss_chunk = 1000; /* clamped to B*T */
    assert_int_equal(gpt_loss_chunk(&c, GPT_DEVICE_CPU, 3, 37), 111);
}

static void test_loss_chunk_cost(void **state) {
    (void)state;
    GptConfig c = model(6, 6, 384, 512);
    GptLossHeadCost h;
    double wte = (double)VP * 384;
    gpt_loss_head_cost(&c, GPT_DEVICE_CUDA, 16, 512, 1000, &h);
    assert_int_equal(h.n_chunks, 9); /* 8192 rows: 8 full chunks and one of 192 */
    assert_true(h.logits_bytes == (size_t)1000 * VP * 2);
    /* f16 wte read twice, f16 grad.wte read and written, per chunk */
    assert_true(h.wte_traffic_bytes == 9 * wte * 8);
    assert_true(h.extra_wte_traffic_bytes == 8 * wte * 8);
    gpt_loss_head_cost(&c, GPT_DEVICE_CUDA, 16, 512, 8192, &h);
    assert_int_equal(h.n_chunks, 1);
    assert_true(h.extra_wte_traffic_bytes == 0.0);
    c.grad_f32 = 1; /* f32 gradients: grad.wte's read and write cost 4 bytes each */
    gpt_loss_head_cost(&c, GPT_DEVICE_CUDA, 16, 512, 8192, &h);
    assert_true(h.wte_traffic_bytes == wte * (2 * 2 + 2 * 4));
}

static void test_loss_chunk_choices(void **state) {
    (void)state;
    GptConfig c = model(6, 6, 384, 512);
    int64_t ch[GPT_LOSS_CHUNK_CHOICES];
    int n = gpt_loss_chunk_choices(&c, GPT_DEVICE_CUDA, 16, 512, ch);
    assert_int_equal(n, 3);
    assert_int_equal(ch[0], 1664);
    assert_int_equal(ch[1], 832);
    assert_int_equal(ch[2], 8192);
    c.loss_chunk = 832; /* the set value first, no repeats */
    n = gpt_loss_chunk_choices(&c, GPT_DEVICE_CUDA, 16, 512, ch);
    assert_int_equal(n, 3);
    assert_int_equal(ch[0], 832);
    assert_int_equal(ch[1], 1664);
    c.loss_chunk = 0; /* a batch smaller than one automatic chunk: one choice */
    n = gpt_loss_chunk_choices(&c, GPT_DEVICE_CUDA, 1, 1, ch);
    assert_int_equal(n, 1);
    assert_int_equal(ch[0], 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_chunk_auto_4070),
        cmocka_unit_test(test_loss_chunk_auto_gpt2_124m),
        cmocka_unit_test(test_loss_chunk_small_and_set),
        cmocka_unit_test(test_loss_chunk_cost),
        cmocka_unit_test(test_loss_chunk_choices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
