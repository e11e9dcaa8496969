/* test_fixture.c: the CPU GPT-2 against PyTorch. Each case of tests/fixtures/ (written by
 * scripts/make_fixture.py in float64 from the same fp32 weights) is loaded through the real
 * model-file reader into a CPU Gpt, and compared: the logits at every position (through
 * gpt_forward_last_logits on each prefix: attention is causal, so the last logits of the
 * first t tokens are the logits at position t-1), the mean loss, every parameter gradient
 * (the tied wte gets both its uses), nanoGPT's get_lr, and 10 AdamW steps (loss and global
 * grad norm at every step, and the loss after the last).
 *
 * Cases: bias off/on x GELU tanh/erf with V = Vp, and a padded vocabulary (V < Vp, the padded
 * wte rows non-zero so a softmax that included them would change the loss). */
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
#include "../model/gpt.h"
#include "../model/model_io.h"
#include "../train/schedule.h"
#include "fixture.h"
#include "test_util.h"

/* Tolerances: our fp32 against PyTorch's float64 on the same fp32 weights. fp32 rounds to
 * 6e-8 relative per operation and the longest sums here are 4C = 72 terms, so a few 1e-7 of
 * the largest values is the expected error. Measured on all five cases (ARENAGPT_TEST_VERBOSE=1
 * prints it): logits 4.8e-7 abs, loss 5e-8 rel, gradients 5.6e-7 of the tensor's largest
 * |value|, the 10-step losses 1e-7 rel and grad norms 3.6e-7 rel. Each bound is about 10x the
 * worst seen, which leaves room for another BLAS or thread count and still catches a wrong
 * formula: tanh instead of erf GELU moves the logits by 1.8e-4 (35x LOGITS_ATOL, checked by
 * test_fixture_gelu_variants_differ); a missing use of the tied wte moves d.wte by its size. */
#define LOGITS_ATOL 5e-6 /* logits are O(1) */
#define LOGITS_RTOL 1e-6
#define LOSS_RTOL 1e-6 /* mean of 32 per-token losses ~4 */
/* Gradients are O(1e-3..1e-1); an element's error scales with the largest terms summed into
 * it, not with its own value (cancellation: the key-bias gradient is exactly 0 in exact
 * arithmetic, as softmax ignores a shift shared by all keys, and ~1e-8 noise in both), so the
 * absolute part is tied to the tensor's largest magnitude and the relative part is loose. */
#define GRAD_ATOL_OF_MAX 5e-6 /* times max |reference| of that tensor */
#define GRAD_RTOL 1e-4
#define LR_RTOL 1e-6 /* get_lr in fp32 against float64: fp32 rounding of the result */
/* 10 AdamW steps: Adam divides by sqrt(v), so a gradient element near zero moves its weight
 * by up to lr whatever its size, and the clip uses max/norm where torch uses
 * max/(norm + 1e-6) (1e-6 relative on the clipped steps); the losses still agree to 1e-7. */
#define TRAJ_LOSS_RTOL 2e-6
#define TRAJ_NORM_RTOL 5e-6

#define ARENA_BYTES ((size_t)64 << 20) /* far above what the fixture's tiny model needs */

/* Fixture array names of the parameter kinds (llm.c's names), in GptParamKind order. */
static const char *const KIND_NAMES[GPT_PARAM_KIND_COUNT] = {
    "wte",  "wpe",  "ln1w", "ln1b", "qkvw",    "qkvb",    "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw",  "fcb",  "fcprojw", "fcprojb", "lnfw",     "lnfb",
};

typedef struct Case {
    Fixture fx;
    GptConfig config;
    int64_t B, T;
    Arena *arena;
    Gpt g;
} Case;

static void case_open(Case *cs, const char *name) {
    char ref[1024], model[1024];
    snprintf(ref, sizeof(ref), "%s/tests/fixtures/%s_ref.bin", test_root(), name);
    snprintf(model, sizeof(model), "%s/tests/fixtures/%s_model.bin", test_root(), name);
    Err err = {{0}};
    if (fixture_load(&cs->fx, ref, &err))
        fail_msg("%s", err.msg);
    /* config: L, NH, C, maxT, V, Vp, B, T, bias, gelu */
    const int32_t *cf = fixture_i32(&cs->fx, "config", 10, NULL);
    memset(&cs->config, 0, sizeof(cs->config));
    cs->config.bias = cf[8];
    cs->config.gelu = cf[9];
    if (gpt_config_from_model_file(model, &cs->config, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(cs->config.n_layer, cf[0]);
    assert_int_equal(cs->config.n_head, cf[1]);
    assert_int_equal(cs->config.channels, cf[2]);
    assert_int_equal(cs->config.max_seq_len, cf[3]);
    assert_int_equal(cs->config.vocab_size, cf[4]);
    assert_int_equal(cs->config.padded_vocab_size, cf[5]);
    cs->B = cf[6];
    cs->T = cf[7];
    cs->arena = arena_init(ARENA_BACKING_HOST, ARENA_BYTES, 0, &err);
    assert_non_null(cs->arena);
    if (gpt_build(&cs->g, &cs->config, GPT_DEVICE_CPU, cs->arena, cs->B, cs->T, &err))
        fail_msg("gpt_build: %s", err.msg);
    gpt_init_weights(&cs->g, 7); /* zeroes grads and optimizer state; weights overwritten next */
    if (model_file_read(&cs->g, model, &err))
        fail_msg("%s", err.msg);
}

static void case_close(Case *cs) {
    gpt_free(&cs->g);
    assert_int_equal(arena_stats(cs->arena).used_bytes, 0);
    arena_free(cs->arena);
    fixture_free(&cs->fx);
}

static double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)x[i]));
    return m;
}

/* With ARENAGPT_TEST_VERBOSE set, prints the worst deviation of a comparison (how the
 * tolerances above were chosen: they sit about 10x above the worst seen). */
static void report_worst(const char *what, const float *a, const float *e, size_t n, double scale) {
    if (!getenv("ARENAGPT_TEST_VERBOSE"))
        return;
    double worst = 0, worst_rel = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)e[i]);
        worst = fmax(worst, d);
        worst_rel = fmax(worst_rel, d / fmax(fabs((double)e[i]), 1e-30));
    }
    printf("  %-12s max |err| %.3g (%.3g of max |ref| %.3g), max rel err %.3g\n", what, worst,
           scale > 0 ? worst / scale : 0.0, scale, worst_rel);
}

static void check_logits(Case *cs) {
    const int64_t B = cs->B, T = cs->T, V = cs->config.vocab_size,
                  Vp = cs->config.padded_vocab_size;
    const int32_t *inputs = fixture_i32(&cs->fx, "inputs", (size_t)(B * T), NULL);
    const float *ref = fixture_f32(&cs->fx, "logits", (size_t)(B * T * V), NULL);
    int32_t *prefix = malloc((size_t)(B * T) * sizeof(int32_t)); /* (B,t) */
    float *last = malloc((size_t)(B * Vp) * sizeof(float));      /* (B,Vp) */
    float *ours = malloc((size_t)(B * T * V) * sizeof(float));   /* (B,T,V) */
    Err err = {{0}};
    for (int64_t t = 1; t <= T; t++) {
        for (int64_t b = 0; b < B; b++)
            memcpy(prefix + b * t, inputs + b * T, (size_t)t * sizeof(int32_t));
        if (gpt_forward_last_logits(&cs->g, prefix, B, t, last, &err))
            fail_msg("gpt_forward_last_logits: %s", err.msg);
        for (int64_t b = 0; b < B; b++)
            memcpy(ours + (b * T + t - 1) * V, last + b * Vp, (size_t)V * sizeof(float));
    }
    report_worst("logits", ours, ref, (size_t)(B * T * V), max_abs(ref, (size_t)(B * T * V)));
    assert_allclose(ours, ref, (size_t)(B * T * V), LOGITS_ATOL, LOGITS_RTOL);
    free(prefix);
    free(last);
    free(ours);
}

static void check_loss_and_grads(Case *cs) {
    const int64_t B = cs->B, T = cs->T;
    const int32_t *inputs = fixture_i32(&cs->fx, "inputs", (size_t)(B * T), NULL);
    const int32_t *targets = fixture_i32(&cs->fx, "targets", (size_t)(B * T), NULL);
    const double *ref_loss = fixture_f64(&cs->fx, "loss", 1, NULL);
    Err err = {{0}};
    float loss = NAN;
    assert_int_equal(gpt_zero_grad(&cs->g), 0);
    gpt_set_loss_scale(&cs->g, 1.0f);
    if (gpt_forward(&cs->g, inputs, targets, B, T, 1, &loss, &err))
        fail_msg("gpt_forward: %s", err.msg);
    if (gpt_backward(&cs->g, &err))
        fail_msg("gpt_backward: %s", err.msg);
    double dloss = loss;
    if (getenv("ARENAGPT_TEST_VERBOSE"))
        printf("  loss %.9f ref %.9f rel err %.3g\n", dloss, ref_loss[0],
               fabs(dloss - ref_loss[0]) / ref_loss[0]);
    assert_allclose_f64(&dloss, ref_loss, 1, 0.0, LOSS_RTOL);
    const FixtureArray *alt = fixture_find(&cs->fx, "loss.all_vp_rows");
    if (alt) { /* padded vocabulary: including the padded rows would have been caught */
        double d = fabs(((const double *)alt->data)[0] - ref_loss[0]);
        assert_true(d > 100 * LOSS_RTOL * ref_loss[0]);
    }

    int n_checked = 0;
    for (int k = 0; k < GPT_PARAM_KIND_COUNT; k++) {
        char name[64];
        snprintf(name, sizeof(name), "d.%s", KIND_NAMES[k]);
        const FixtureArray *a = fixture_find(&cs->fx, name);
        GptParam *p0 = gpt_param(&cs->g, (GptParamKind)k, 0);
        /* the fixture has a gradient exactly for the tensors the model has */
        assert_int_equal(a != NULL, p0 != NULL);
        if (!a)
            continue;
        int n_layers = gpt_param_is_per_layer((GptParamKind)k) ? (int)cs->config.n_layer : 1;
        const float *ref = fixture_f32(&cs->fx, name, 0, NULL);
        assert_int_equal(a->numel, (size_t)(p0->numel * n_layers));
        double atol = GRAD_ATOL_OF_MAX * max_abs(ref, a->numel);
        for (int l = 0; l < n_layers; l++) {
            GptParam *p = gpt_param(&cs->g, (GptParamKind)k, l);
            assert_int_equal(cs->g.layout->grad_dtype, ARENA_DTYPE_F32);
            const float *ours = p->grad->data;
            const float *want = ref + (size_t)l * (size_t)p->numel;
            char what[64];
            snprintf(what, sizeof(what), "%.50s[%d]", name, l);
            report_worst(what, ours, want, (size_t)p->numel, max_abs(ref, a->numel));
            assert_allclose(ours, want, (size_t)p->numel, atol, GRAD_RTOL);
            n_checked++;
        }
    }
    assert_true(n_checked == cs->g.n_params);
}

static void check_adamw(Case *cs) {
    const int64_t B = cs->B, T = cs->T;
    const int32_t *inputs = fixture_i32(&cs->fx, "inputs", (size_t)(B * T), NULL);
    const int32_t *targets = fixture_i32(&cs->fx, "targets", (size_t)(B * T), NULL);
    /* lr, min_lr, warmup_iters, lr_decay_iters, beta1, beta2, eps, weight_decay, grad_clip */
    const double *hp = fixture_f64(&cs->fx, "adam.hparams", 9, NULL);
    size_t n_steps;
    const double *ref_lr = fixture_f64(&cs->fx, "adam.lr", 0, &n_steps);
    const double *ref_norm = fixture_f64(&cs->fx, "adam.grad_norm", n_steps, NULL);
    const double *ref_loss = fixture_f64(&cs->fx, "adam.loss", n_steps + 1, NULL);
    double *lrs = calloc(n_steps, sizeof(double));
    double *norms = calloc(n_steps, sizeof(double));
    double *losses = calloc(n_steps + 1, sizeof(double));
    Err err = {{0}};
    gpt_set_loss_scale(&cs->g, 1.0f);
    for (size_t it = 0; it < n_steps; it++) {
        float lr =
            schedule_lr((int64_t)it, (float)hp[0], (int64_t)hp[2], (int64_t)hp[3], (float)hp[1], 1);
        lrs[it] = lr;
        float loss = NAN, norm = NAN;
        assert_int_equal(gpt_zero_grad(&cs->g), 0);
        if (gpt_forward(&cs->g, inputs, targets, B, T, 1, &loss, &err) ||
            gpt_backward(&cs->g, &err) ||
            gpt_update(&cs->g, lr, (float)hp[4], (float)hp[5], (float)hp[6], (float)hp[7],
                       (float)hp[8], (int64_t)it + 1, 1.0f, &norm, &err))
            fail_msg("step %zu: %s", it, err.msg);
        losses[it] = loss;
        norms[it] = norm;
    }
    float last = NAN;
    if (gpt_forward(&cs->g, inputs, targets, B, T, 0, &last, &err))
        fail_msg("final forward: %s", err.msg);
    losses[n_steps] = last;
    if (getenv("ARENAGPT_TEST_VERBOSE"))
        for (size_t i = 0; i <= n_steps; i++)
            printf("  step %2zu loss %.7f ref %.7f (rel %.2g)  norm %.6f ref %.6f (rel %.2g)\n", i,
                   losses[i], ref_loss[i], fabs(losses[i] - ref_loss[i]) / ref_loss[i],
                   i < n_steps ? norms[i] : 0.0, i < n_steps ? ref_norm[i] : 0.0,
                   i < n_steps ? fabs(norms[i] - ref_norm[i]) / ref_norm[i] : 0.0);
    assert_allclose_f64(lrs, ref_lr, n_steps, 0.0, LR_RTOL);
    assert_allclose_f64(norms, ref_norm, n_steps, 0.0, TRAJ_NORM_RTOL);
    assert_allclose_f64(losses, ref_loss, n_steps + 1, 0.0, TRAJ_LOSS_RTOL);
    /* it learned: the same batch ten times */
    assert_true(losses[n_steps] < losses[0] - 0.5);
    free(lrs);
    free(norms);
    free(losses);
}

static void run_case(const char *name) {
    Case cs;
    case_open(&cs, name);
    check_logits(&cs);
    check_loss_and_grads(&cs);
    check_adamw(&cs);
    case_close(&cs);
}

static void test_fixture_nobias_tanh(void **state) {
    (void)state;
    run_case("nobias_tanh");
}
static void test_fixture_nobias_erf(void **state) {
    (void)state;
    run_case("nobias_erf");
}
static void test_fixture_bias_tanh(void **state) {
    (void)state;
    run_case("bias_tanh");
}
static void test_fixture_bias_erf(void **state) {
    (void)state;
    run_case("bias_erf");
}
static void test_fixture_padded_vocab(void **state) {
    (void)state;
    run_case("padvocab_nobias_tanh");
}

/* The gradient check is only as good as its sensitivity: swapping the GELU variant must
 * fail the logits comparison (guards against tolerances too loose to tell them apart). */
static void test_fixture_gelu_variants_differ(void **state) {
    (void)state;
    Case cs;
    case_open(&cs, "nobias_erf");
    const int64_t B = cs.B, T = cs.T, V = cs.config.vocab_size, Vp = cs.config.padded_vocab_size;
    gpt_free(&cs.g);
    cs.config.gelu = 0; /* tanh instead of the fixture's erf */
    Err err = {{0}};
    char model[1024];
    snprintf(model, sizeof(model), "%s/tests/fixtures/nobias_erf_model.bin", test_root());
    if (gpt_build(&cs.g, &cs.config, GPT_DEVICE_CPU, cs.arena, B, T, &err) ||
        model_file_read(&cs.g, model, &err))
        fail_msg("%s", err.msg);
    const int32_t *inputs = fixture_i32(&cs.fx, "inputs", (size_t)(B * T), NULL);
    const float *ref = fixture_f32(&cs.fx, "logits", (size_t)(B * T * V), NULL);
    float *last = malloc((size_t)(B * Vp) * sizeof(float));
    if (gpt_forward_last_logits(&cs.g, inputs, B, T, last, &err))
        fail_msg("%s", err.msg);
    double worst = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t v = 0; v < V; v++)
            worst = fmax(worst, fabs(last[b * Vp + v] - ref[(b * T + T - 1) * V + v]));
    if (getenv("ARENAGPT_TEST_VERBOSE"))
        printf("  tanh instead of erf: max |logit diff| %.3g\n", worst);
    assert_true(worst > 10 * LOGITS_ATOL);
    free(last);
    case_close(&cs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_nobias_tanh),
        cmocka_unit_test(test_fixture_nobias_erf),
        cmocka_unit_test(test_fixture_bias_tanh),
        cmocka_unit_test(test_fixture_bias_erf),
        cmocka_unit_test(test_fixture_padded_vocab),
        cmocka_unit_test(test_fixture_gelu_variants_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
