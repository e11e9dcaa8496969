/* test_gpt.c: the GPT-2 model on the CPU: parameter counts, nanoGPT's learning-rate schedule,
 * the memory plan against a measured host run (to the byte, per category), bit-identical
 * gradients under every recompute mode, teardown, padded vocabulary, and a short training
 * run that must learn. ARENAGPT_SLOW_TESTS=0 shrinks the slow ones (the ASan run). */
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
#include "../train/schedule.h"
#include "test_util.h"

/* ------------------------------------------------------------------------------------- */

static void test_gpt_param_counts_small_4070(void **state) {
    /* configs/small_4070.conf: the numbers nanoGPT gives for this model (README) */
    GptConfig c = test_gpt_config(6, 6, 384, 512, 50304, 50304, 0, 0, 0);
    GptParamCounts pc;
    gpt_param_counts(&c, &pc);
    assert_int_equal(pc.total, 30135168);
    assert_int_equal(pc.non_embedding, 29938560);
    assert_int_equal(pc.decay_tensors, 26);
    assert_int_equal(pc.decay_count, 30130176);
    assert_int_equal(pc.no_decay_tensors, 13);
    assert_int_equal(pc.no_decay_count, 4992);
}

static void test_gpt_param_counts_match_built_tensors(void **state) {
    for (int bias = 0; bias <= 1; bias++) {
        GptConfig c = test_gpt_config(3, 2, 16, 8, 50, 64, bias, 0, 0);
        Err err = {{0}};
        Arena *a = arena_init(ARENA_BACKING_PLAN, 0, 0, &err);
        assert_non_null(a);
        Gpt g;
        assert_int_equal(gpt_build(&g, &c, GPT_DEVICE_CPU, a, 2, 8, &err), 0);
        GptParamCounts pc;
        gpt_param_counts(&c, &pc);
        int64_t total = 0, decay = 0, n_decay = 0;
        for (int i = 0; i < g.n_params; i++) {
            total += g.params[i].numel;
            if (g.params[i].decay) {
                decay += g.params[i].numel;
                n_decay++;
            }
            assert_int_equal(g.params[i].param->nbytes, g.params[i].numel * 4);
        }
        assert_int_equal(total, pc.total);
        assert_int_equal(decay, pc.decay_count);
        assert_int_equal(n_decay, pc.decay_tensors);
        assert_int_equal(g.n_params, pc.decay_tensors + pc.no_decay_tensors);
        /* per-layer tensors with bias: 12 per layer + wte, wpe, ln_f w/b */
        assert_int_equal(g.n_params, bias ? 3 * 12 + 4 : 3 * 6 + 3);
        assert_non_null(gpt_param(&g, GPT_PARAM_QKVW, 2));
        assert_string_equal(gpt_param(&g, GPT_PARAM_QKVW, 2)->param->name,
                            "h.2.attn.c_attn.weight");
        if (!bias)
            assert_null(gpt_param(&g, GPT_PARAM_LN1B, 0));
        gpt_free(&g);
        assert_int_equal(arena_stats(a).used_bytes, 0);
        arena_free(a);
    }
}

static void test_gpt_flops_count_matmul_weights(void **state) {
    /* forward = 2 FLOPs per weight of every matmul (all 2-D params but wpe; wte once, as the
     * head) + the attention's QK^T and att@V: 4 T C per layer */
    GptConfig c = test_gpt_config(6, 6, 384, 512, 50304, 50304, 0, 0, 0);
    GptParamCounts pc;
    gpt_param_counts(&c, &pc);
    double matmul_weights = (double)pc.decay_count - 512.0 * 384.0;
    double expect = 2.0 * matmul_weights + 6.0 * 4.0 * 512.0 * 384.0;
    assert_true(fabs(gpt_flops_forward_per_token(&c, 512) - expect) < 1.0);
    assert_true(gpt_flops_recompute_per_token(&c, 512, GPT_RECOMPUTE_NONE) == 0.0);
    double sel = gpt_flops_recompute_per_token(&c, 512, GPT_RECOMPUTE_SELECTIVE);
    double full = gpt_flops_recompute_per_token(&c, 512, GPT_RECOMPUTE_FULL);
    assert_true(sel > 0.0 && sel < full);
    /* full recomputes every block matmul but mlp.c_proj, and never the head */
    assert_true(full < gpt_flops_forward_per_token(&c, 512) - 2.0 * 50304.0 * 384.0);
}

/* ------------------------------------------------------------------------------------- */
/* plan == measured */

static void stats_assert_equal(const ArenaStats *p, const ArenaStats *m) {
    for (int c = 0; c < ARENA_CAT_COUNT; c++) {
        assert_int_equal(p->cat_peak_bytes[c], m->cat_peak_bytes[c]);
        assert_int_equal(p->at_peak_bytes[c], m->at_peak_bytes[c]);
        assert_int_equal(p->cat_used_bytes[c], m->cat_used_bytes[c]);
    }
    assert_int_equal(p->peak_used_bytes, m->peak_used_bytes);
    assert_int_equal(p->high_water_bytes, m->high_water_bytes);
    assert_int_equal(p->used_bytes, m->used_bytes);
    assert_int_equal(p->n_allocs, m->n_allocs);
}

static void plan_vs_measured(const GptConfig *c, int64_t B, int64_t T, int64_t accum) {
    Err err = {{0}};
    GptPlan *plan = NULL;
    assert_int_equal(test_plan(c, GPT_DEVICE_CPU, B, T, accum, 0, &plan, &err), 0);
    ArenaStats ps = arena_stats(plan->arena);
    assert_true(ps.cat_peak_bytes[ARENA_CAT_ACTIVATIONS] > 0);
    assert_true(ps.cat_peak_bytes[ARENA_CAT_WORKSPACE] > 0);

    Arena *host = arena_init(ARENA_BACKING_HOST, ps.high_water_bytes, 0, &err);
    assert_non_null(host);
    Gpt g;
    assert_int_equal(gpt_build(&g, c, GPT_DEVICE_CPU, host, B, T, &err), 0);
    gpt_init_weights(&g, 1);
    int32_t *x = malloc((size_t)(B * T) * sizeof(int32_t));
    int32_t *y = malloc((size_t)(B * T) * sizeof(int32_t));
    test_tokens_random(x, B * T, c->vocab_size, 2);
    test_tokens_random(y, B * T, c->vocab_size, 3);
    assert_int_equal(
        gpt_plan_steps(&g,
                       &(GptPlanArgs){.phase = GPT_PLAN_TRAIN, .B = B, .T = T, .grad_accum = accum},
                       x, y, &err),
        0);
    ArenaStats ms = arena_stats(host);
    stats_assert_equal(&ps, &ms);

    int64_t np = 0, nm = 0;
    const ArenaPeakTensor *pp = arena_peak_tensors(plan->arena, &np);
    const ArenaPeakTensor *mp = arena_peak_tensors(host, &nm);
    assert_int_equal(np, nm);
    for (int64_t i = 0; i < np; i++) {
        assert_string_equal(pp[i].name, mp[i].name);
        assert_int_equal(pp[i].offset, mp[i].offset);
        assert_int_equal(pp[i].bytes, mp[i].bytes);
        assert_int_equal(pp[i].category, mp[i].category);
    }
    gpt_free(&g);
    assert_int_equal(arena_stats(host).used_bytes, 0);
    arena_free(host);
    gpt_plan_free(plan);
    free(x);
    free(y);
}

static void test_gpt_plan_equals_measured(void **state) {
    struct {
        int64_t L, NH, C, maxT, V, Vp, B, T, chunk;
        int bias;
    } cases[] = {
        {2, 2, 16, 8, 32, 32, 2, 8, 0, 1},
        {3, 3, 24, 11, 37, 48, 3, 7, 5, 0}, /* odd sizes, T < block, V < Vp, ragged chunks */
        {1, 1, 8, 5, 11, 11, 1, 5, 1, 1},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        for (int mode = 0; mode <= 2; mode++) {
            GptConfig c = test_gpt_config(cases[k].L, cases[k].NH, cases[k].C, cases[k].maxT,
                                          cases[k].V, cases[k].Vp, cases[k].bias, (int)k % 2, mode);
            c.loss_chunk = cases[k].chunk;
            plan_vs_measured(&c, cases[k].B, cases[k].T, 1 + (int64_t)k % 2);
        }
}

static void test_gpt_recompute_saves_activation_memory(void **state) {
    GptConfig c = test_gpt_config(4, 2, 32, 16, 64, 64, 0, 0, 0);
    size_t act[3];
    for (int mode = 0; mode <= 2; mode++) {
        c.recompute = mode;
        Err err = {{0}};
        GptPlan *plan = NULL;
        assert_int_equal(test_plan(&c, GPT_DEVICE_CPU, 4, 16, 1, 0, &plan, &err), 0);
        act[mode] = arena_stats(plan->arena).cat_peak_bytes[ARENA_CAT_ACTIVATIONS];
        gpt_plan_free(plan);
    }
    assert_true(act[1] < act[0]);
    assert_true(act[2] < act[1]);
}

static void test_gpt_plan_refuses_over_limit(void **state) {
    GptConfig c = test_gpt_config(2, 2, 16, 8, 32, 32, 0, 0, 0);
    Err err = {{0}};
    GptPlan *plan = NULL;
    assert_int_equal(test_plan(&c, GPT_DEVICE_CPU, 2, 8, 1, 0, &plan, &err), 0);
    size_t peak = arena_stats(plan->arena).high_water_bytes;
    gpt_plan_free(plan);
    assert_int_equal(test_plan(&c, GPT_DEVICE_CPU, 2, 8, 1, peak - 1, &plan, &err), -1);
    assert_non_null(plan);
    assert_true(strlen(err.msg) > 0);
    gpt_plan_free(plan);
    assert_int_equal(test_plan(&c, GPT_DEVICE_CPU, 2, 8, 1, peak, &plan, &err), 0);
    gpt_plan_free(plan);
}

static void test_gpt_plan_cuda_layout(void **state) {
    /* the CUDA layout plans without a GPU: f16 params and grads, f32 master + m + v */
    GptConfig c = test_gpt_config(6, 6, 384, 512, 50304, 50304, 0, 0, 0);
    Err err = {{0}};
    GptPlan *plan = NULL;
    assert_int_equal(test_plan(&c, GPT_DEVICE_CUDA, 1, 64, 1, 0, &plan, &err), 0);
    ArenaStats s = arena_stats(plan->arena);
    GptParamCounts pc;
    gpt_param_counts(&c, &pc);
    /* each tensor is rounded up to ARENA_ALIGNMENT: at most one alignment unit per tensor */
    int64_t n_tensors = pc.decay_tensors + pc.no_decay_tensors;
    size_t slack = (size_t)n_tensors * ARENA_ALIGNMENT;
    assert_true(s.cat_peak_bytes[ARENA_CAT_PARAMS] >= (size_t)pc.total * 2);
    assert_true(s.cat_peak_bytes[ARENA_CAT_PARAMS] <= (size_t)pc.total * 2 + slack);
    assert_true(s.cat_peak_bytes[ARENA_CAT_GRADS] >= (size_t)pc.total * 2);
    assert_true(s.cat_peak_bytes[ARENA_CAT_GRADS] <= (size_t)pc.total * 2 + slack);
    assert_true(s.cat_peak_bytes[ARENA_CAT_OPTIMIZER] >= (size_t)pc.total * 12);
    assert_true(s.cat_peak_bytes[ARENA_CAT_OPTIMIZER] <= (size_t)pc.total * 12 + 3 * slack);
    gpt_plan_free(plan);
}

static void test_gpt_plan_grad_f32(void **state) {
    /* grad_dtype=float32: the CUDA grads category is 4 B/param, the rest unchanged; the CPU's
     * grads are f32 already, so its plan does not change */
    (void)state;
    GptConfig c = test_gpt_config(2, 4, 64, 32, 97, 128, 1, 0, 0);
    GptParamCounts pc;
    gpt_param_counts(&c, &pc);
    size_t slack = (size_t)(pc.decay_tensors + pc.no_decay_tensors) * ARENA_ALIGNMENT;
    Err err = {{0}};
    ArenaStats s16, s32, cpu16, cpu32;
    for (int dev = 0; dev < 2; dev++)
        for (int f32 = 0; f32 < 2; f32++) {
            c.grad_f32 = f32;
            GptPlan *plan = NULL;
            assert_int_equal(
                test_plan(&c, dev ? GPT_DEVICE_CUDA : GPT_DEVICE_CPU, 2, 16, 1, 0, &plan, &err), 0);
            ArenaStats *s = dev ? (f32 ? &s32 : &s16) : (f32 ? &cpu32 : &cpu16);
            *s = arena_stats(plan->arena);
            gpt_plan_free(plan);
        }
    assert_true(s16.cat_peak_bytes[ARENA_CAT_GRADS] >= (size_t)pc.total * 2);
    assert_true(s16.cat_peak_bytes[ARENA_CAT_GRADS] <= (size_t)pc.total * 2 + slack);
    assert_true(s32.cat_peak_bytes[ARENA_CAT_GRADS] >= (size_t)pc.total * 4);
    assert_true(s32.cat_peak_bytes[ARENA_CAT_GRADS] <= (size_t)pc.total * 4 + slack);
    for (int cat = 0; cat < ARENA_CAT_COUNT; cat++) {
        if (cat != ARENA_CAT_GRADS)
            assert_int_equal(s32.cat_peak_bytes[cat], s16.cat_peak_bytes[cat]);
        assert_int_equal(cpu32.cat_peak_bytes[cat], cpu16.cat_peak_bytes[cat]);
    }
    assert_int_equal(gpt_layout_of(GPT_DEVICE_CUDA, 0, 1)->grad_dtype, ARENA_DTYPE_F32);
    assert_int_equal(gpt_layout_of(GPT_DEVICE_CUDA, 0, 1)->param_dtype, ARENA_DTYPE_F16);
    assert_ptr_equal(gpt_layout_of(GPT_DEVICE_CPU, 0, 1), gpt_layout(GPT_DEVICE_CPU));
    /* bfloat16: the same bytes as float16, in bf16; the CPU stays f32 */
    for (int g32 = 0; g32 < 2; g32++) {
        const GptLayout *b = gpt_layout_of(GPT_DEVICE_CUDA, 1, g32);
        const GptLayout *h = gpt_layout_of(GPT_DEVICE_CUDA, 0, g32);
        assert_int_equal(b->param_dtype, ARENA_DTYPE_BF16);
        assert_int_equal(b->act_dtype, ARENA_DTYPE_BF16);
        assert_int_equal(b->grad_dtype, g32 ? ARENA_DTYPE_F32 : ARENA_DTYPE_BF16);
        assert_int_equal(arena_dtype_size(b->grad_dtype), arena_dtype_size(h->grad_dtype));
        assert_int_equal(b->has_master, h->has_master);
        assert_int_equal(b->backend_workspace_bytes, h->backend_workspace_bytes);
    }
    assert_ptr_equal(gpt_layout_of(GPT_DEVICE_CPU, 1, 0), gpt_layout(GPT_DEVICE_CPU));
    /* and its plan: every category's bytes equal float16's with the same gradient dtype */
    for (int f32 = 0; f32 < 2; f32++) {
        ArenaStats b[2];
        for (int bf = 0; bf < 2; bf++) {
            c.bf16 = bf;
            c.grad_f32 = f32;
            GptPlan *plan = NULL;
            assert_int_equal(test_plan(&c, GPT_DEVICE_CUDA, 2, 16, 1, 0, &plan, &err), 0);
            b[bf] = arena_stats(plan->arena);
            gpt_plan_free(plan);
        }
        for (int cat = 0; cat < ARENA_CAT_COUNT; cat++)
            assert_int_equal(b[1].cat_peak_bytes[cat], b[0].cat_peak_bytes[cat]);
        assert_int_equal(b[1].peak_used_bytes, b[0].peak_used_bytes);
    }
}

/* ------------------------------------------------------------------------------------- */
/* recompute gives the same gradients, bit for bit */

static void run_grads(const GptConfig *c, int64_t B, int64_t T, const int32_t *x, const int32_t *y,
                      float **grads_out, size_t *n_out, float *loss) {
    Err err = {{0}};
    GptPlan *plan = NULL;
    assert_int_equal(test_plan(c, GPT_DEVICE_CPU, B, T, 2, 0, &plan, &err), 0);
    Arena *a = arena_init(ARENA_BACKING_HOST, arena_stats(plan->arena).high_water_bytes, 0, &err);
    gpt_plan_free(plan);
    assert_non_null(a);
    Gpt g;
    assert_int_equal(gpt_build(&g, c, GPT_DEVICE_CPU, a, B, T, &err), 0);
    gpt_init_weights(&g, 42);
    gpt_zero_grad(&g);
    /* two micro-steps: accumulation included */
    for (int k = 0; k < 2; k++) {
        assert_int_equal(gpt_forward(&g, x + k * B * T, y + k * B * T, B, T, 1, loss, &err), 0);
        assert_int_equal(gpt_backward(&g, &err), 0);
    }
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

static void test_gpt_recompute_gradients_bit_identical(void **state) {
    for (int variant = 0; variant < 2; variant++) {
        GptConfig c = variant == 0 ? test_gpt_config(3, 2, 32, 16, 61, 64, 1, 0, 0)
                                   : test_gpt_config(2, 3, 24, 9, 50, 50, 0, 1, 0);
        int64_t B = 3, T = variant == 0 ? 16 : 9;
        int32_t *x = malloc((size_t)(2 * B * T) * sizeof(int32_t));
        int32_t *y = malloc((size_t)(2 * B * T) * sizeof(int32_t));
        test_tokens_random(x, 2 * B * T, c.vocab_size, 7);
        test_tokens_random(y, 2 * B * T, c.vocab_size, 8);
        float *ref = NULL, loss_ref = 0;
        size_t n_ref = 0;
        run_grads(&c, B, T, x, y, &ref, &n_ref, &loss_ref);
        assert_true(loss_ref > 0.0f && isfinite(loss_ref));
        for (int mode = 1; mode <= 2; mode++) {
            c.recompute = mode;
            float *gr = NULL, loss = 0;
            size_t n = 0;
            run_grads(&c, B, T, x, y, &gr, &n, &loss);
            assert_int_equal(n, n_ref);
            assert_true(memcmp(&loss, &loss_ref, sizeof(float)) == 0);
            assert_true(memcmp(gr, ref, n * sizeof(float)) == 0);
            free(gr);
        }
        c.recompute = 0;
        free(ref);
        free(x);
        free(y);
    }
}

/* ------------------------------------------------------------------------------------- */
/* the whole model's wiring: gradients against central differences of the loss */

/* fp32 loss differences over a step of FD_MODEL_H: rounding noise ~1e-7 * loss / h, plus the
 * h^2 truncation term; the kernels themselves are checked tightly in test_layers.c */
#define FD_MODEL_H 1e-2f
#define FD_MODEL_ATOL 5e-4
#define FD_MODEL_RTOL 5e-2

static void test_gpt_gradients_match_finite_differences(void **state) {
    for (int variant = 0; variant < 2; variant++) {
        GptConfig c = test_gpt_config(2, 2, 16, 8, 29, 32, variant, variant, variant);
        int64_t B = 2, T = 8;
        Err err = {{0}};
        GptPlan *plan = NULL;
        assert_int_equal(test_plan(&c, GPT_DEVICE_CPU, B, T, 1, 0, &plan, &err), 0);
        Arena *a =
            arena_init(ARENA_BACKING_HOST, arena_stats(plan->arena).high_water_bytes, 0, &err);
        gpt_plan_free(plan);
        Gpt g;
        assert_int_equal(gpt_build(&g, &c, GPT_DEVICE_CPU, a, B, T, &err), 0);
        gpt_init_weights(&g, 77);
        /* larger than init weights so that every gradient is well above the noise */
        for (int i = 0; i < g.n_params; i++) {
            float *p = g.params[i].param->data;
            Rng r;
            rng_init(&r, 100 + (uint64_t)i);
            for (int64_t j = 0; j < g.params[i].numel; j++)
                p[j] += (float)(rng_normal(&r) * 0.2);
        }
        int32_t x[16], y[16];
        test_tokens_random(x, B * T, c.vocab_size, 5);
        test_tokens_random(y, B * T, c.vocab_size, 6);
        gpt_zero_grad(&g);
        float loss = 0;
        assert_int_equal(gpt_forward(&g, x, y, B, T, 1, &loss, &err), 0);
        assert_int_equal(gpt_backward(&g, &err), 0);
        float got[3], fd[3];
        for (int i = 0; i < g.n_params; i++) {
            GptParam *p = &g.params[i];
            float *w = p->param->data;
            const float *gr = p->grad->data;
            int64_t idx[3] = {0, p->numel / 2, (p->numel * 7) / 9};
            if (p->kind == GPT_PARAM_WTE) /* rows of tokens that occur */
                idx[0] = (int64_t)x[0] * 16, idx[1] = (int64_t)y[3] * 16 + 5,
                idx[2] = (int64_t)x[9] * 16 + 15;
            for (int k = 0; k < 3; k++) {
                float o = w[idx[k]], lp = 0, lm = 0;
                w[idx[k]] = o + FD_MODEL_H;
                assert_int_equal(gpt_forward(&g, x, y, B, T, 0, &lp, &err), 0);
                w[idx[k]] = o - FD_MODEL_H;
                assert_int_equal(gpt_forward(&g, x, y, B, T, 0, &lm, &err), 0);
                w[idx[k]] = o;
                fd[k] = (float)(((double)lp - (double)lm) / (2.0 * FD_MODEL_H));
                got[k] = gr[idx[k]];
            }
            assert_allclose(got, fd, 3, FD_MODEL_ATOL, FD_MODEL_RTOL);
        }
        gpt_free(&g);
        arena_free(a);
    }
}

static void test_gpt_padded_vocab_takes_no_part(void **state) {
    /* the same model with V = Vp and with extra padded rows (filled with large values) must
     * give the same loss and the same gradients for the real rows */
    const double tol = 1e-6; /* identical arithmetic apart from sgemm blocking over Vp */
    int64_t B = 2, T = 8, V = 20;
    float loss[2];
    float *gwte[2];
    float **saved = NULL;
    int n_saved = 0;
    for (int k = 0; k < 2; k++) {
        int64_t Vp = k == 0 ? V : 32;
        GptConfig c = test_gpt_config(1, 2, 16, 8, V, Vp, 1, 0, 0);
        Err err = {{0}};
        GptPlan *plan = NULL;
        assert_int_equal(test_plan(&c, GPT_DEVICE_CPU, B, T, 1, 0, &plan, &err), 0);
        Arena *a =
            arena_init(ARENA_BACKING_HOST, arena_stats(plan->arena).high_water_bytes, 0, &err);
        gpt_plan_free(plan);
        Gpt g;
        assert_int_equal(gpt_build(&g, &c, GPT_DEVICE_CPU, a, B, T, &err), 0);
        gpt_init_weights(&g, 5);
        if (k == 0) {
            saved = malloc((size_t)g.n_params * sizeof(float *));
            for (int i = 0; i < g.n_params; i++) {
                saved[i] = malloc((size_t)g.params[i].numel * sizeof(float));
                memcpy(saved[i], g.params[i].param->data,
                       (size_t)g.params[i].numel * sizeof(float));
            }
        } else {
            /* model 1 = model 0 plus padded wte rows holding large values */
            for (int i = 0; i < g.n_params; i++) {
                int64_t n = g.params[i].kind == GPT_PARAM_WTE ? V * 16 : g.params[i].numel;
                memcpy(g.params[i].param->data, saved[i], (size_t)n * sizeof(float));
            }
            float *w = gpt_param(&g, GPT_PARAM_WTE, -1)->param->data;
            for (int64_t i = V * 16; i < Vp * 16; i++)
                w[i] = 3.0f;
        }
        int32_t x[16], y[16];
        test_tokens_random(x, B * T, V, 1);
        test_tokens_random(y, B * T, V, 2);
        gpt_zero_grad(&g);
        assert_int_equal(gpt_forward(&g, x, y, B, T, 1, &loss[k], &err), 0);
        assert_int_equal(gpt_backward(&g, &err), 0);
        gwte[k] = malloc((size_t)(Vp * 16) * sizeof(float));
        memcpy(gwte[k], gpt_param(&g, GPT_PARAM_WTE, -1)->grad->data,
               (size_t)(Vp * 16) * sizeof(float));
        if (k == 1)
            for (int64_t i = V * 16; i < Vp * 16; i++)
                assert_true(gwte[1][i] == 0.0f);
        n_saved = g.n_params;
        gpt_free(&g);
        arena_free(a);
    }
    assert_true(fabs(loss[0] - loss[1]) <= tol * fabs(loss[0]));
    assert_allclose(gwte[1], gwte[0], (size_t)(V * 16), 1e-7, 1e-4);
    free(gwte[0]);
    free(gwte[1]);
    for (int i = 0; i < n_saved; i++)
        free(saved[i]);
    free(saved);
}

static void test_gpt_eval_forward_frees_everything(void **state) {
    GptConfig c = test_gpt_config(2, 2, 16, 8, 32, 32, 0, 0, 0);
    Err err = {{0}};
    GptPlan *plan = NULL;
    assert_int_equal(test_plan(&c, GPT_DEVICE_CPU, 2, 8, 1, 0, &plan, &err), 0);
    Arena *a = arena_init(ARENA_BACKING_HOST, arena_stats(plan->arena).high_water_bytes, 0, &err);
    gpt_plan_free(plan);
    Gpt g;
    assert_int_equal(gpt_build(&g, &c, GPT_DEVICE_CPU, a, 2, 8, &err), 0);
    gpt_init_weights(&g, 3);
    size_t used = arena_stats(a).used_bytes;
    int32_t x[16], y[16];
    test_tokens_random(x, 16, 32, 1);
    test_tokens_random(y, 16, 32, 2);
    float l_eval = 0, l_train = 0;
    assert_int_equal(gpt_forward(&g, x, y, 2, 8, 0, &l_eval, &err), 0);
    assert_int_equal(arena_stats(a).used_bytes, used);
    /* the eval loss equals the training forward's loss (same kernels) */
    assert_int_equal(gpt_forward(&g, x, y, 2, 8, 1, &l_train, &err), 0);
    assert_true(l_eval == l_train);
    /* at init the loss is close to ln(V) */
    assert_true(fabsf(l_eval - logf(32.0f)) < 0.5f);
    assert_int_equal(gpt_backward(&g, &err), 0);
    assert_int_equal(arena_stats(a).used_bytes, used);
    /* sampling logits: the last position's logits give the same loss for its target */
    float logits[2 * 32];
    assert_int_equal(gpt_forward_last_logits(&g, x, 2, 8, logits, &err), 0);
    assert_int_equal(arena_stats(a).used_bytes, used);
    for (int i = 0; i < 64; i++)
        assert_true(isfinite(logits[i]));
    gpt_free(&g);
    assert_int_equal(arena_stats(a).used_bytes, 0);
    arena_free(a);
}

/* ------------------------------------------------------------------------------------- */

static void test_gpt_learns_repeating_pattern(void **state) {
    int slow = test_slow();
    int64_t V = 64, B = 4, T = 32;
    GptConfig c = test_gpt_config(2, 2, 32, T, V, V, 0, 0, GPT_RECOMPUTE_NONE);
    Err err = {{0}};
    GptPlan *plan = NULL;
    assert_int_equal(test_plan(&c, GPT_DEVICE_CPU, B, T, 1, 0, &plan, &err), 0);
    Arena *a = arena_init(ARENA_BACKING_HOST, arena_stats(plan->arena).high_water_bytes, 0, &err);
    gpt_plan_free(plan);
    Gpt g;
    assert_int_equal(gpt_build(&g, &c, GPT_DEVICE_CPU, a, B, T, &err), 0);
    gpt_init_weights(&g, 1337);
    /* a "text": a repeating pattern of period 23 over 23 distinct tokens: once seen, every
     * next token is determined, so the loss can fall far below ln(V) */
    int64_t n_text = 4096;
    int32_t *text = malloc((size_t)n_text * sizeof(int32_t));
    Rng r;
    rng_init(&r, 11);
    int32_t pattern[23];
    for (int i = 0; i < 23; i++)
        pattern[i] = (int32_t)rng_below(&r, (uint64_t)V);
    for (int64_t i = 0; i < n_text; i++)
        text[i] = pattern[i % 23];
    int32_t x[4 * 32], y[4 * 32];
    int steps = slow ? 300 : 60;
    float loss = 0, first = 0;
    for (int it = 0; it < steps; it++) {
        for (int64_t b = 0; b < B; b++) {
            int64_t s = (int64_t)rng_below(&r, (uint64_t)(n_text - T - 1));
            for (int64_t t = 0; t < T; t++) {
                x[b * T + t] = text[s + t];
                y[b * T + t] = text[s + t + 1];
            }
        }
        gpt_zero_grad(&g);
        assert_int_equal(gpt_forward(&g, x, y, B, T, 1, &loss, &err), 0);
        assert_int_equal(gpt_backward(&g, &err), 0);
        float lr = schedule_lr(it, 1e-2f, 10, steps, 1e-3f, 1);
        float norm = 0;
        assert_int_equal(
            gpt_update(&g, lr, 0.9f, 0.99f, 1e-8f, 0.0f, 1.0f, it + 1, 1.0f, &norm, &err), 0);
        assert_true(isfinite(norm));
        if (it == 0)
            first = loss;
    }
    /* ln(64) = 4.16. Fully learned the loss tends to 0; the shrunk run must still halve it */
    assert_true(first > 3.5f);
    assert_true(loss < (slow ? 0.5f : 2.0f));
    gpt_free(&g);
    assert_int_equal(arena_stats(a).used_bytes, 0);
    arena_free(a);
    free(text);
}

/* attention=cudnn is planned (its f32 log-sum-exp), never run: no backend has its kernels,
 * and the naive kernel in its place would write (B,NH,T,T) into a (B,NH,T) buffer. */
static void test_gpt_attention_without_kernels_is_refused(void **state) {
    GptConfig c = test_gpt_config(2, 2, 16, 8, 32, 32, 0, 0, 0);
    Err err = {{0}};
    c.attention = GPT_ATTENTION_CUDNN;
    GptPlan *plan = NULL;
    assert_int_equal(test_plan(&c, GPT_DEVICE_CUDA, 2, 8, 1, 0, &plan, &err), 0);
    gpt_plan_free(plan);
    assert_int_equal(test_plan(&c, GPT_DEVICE_CPU, 2, 8, 1, 0, &plan, &err), -1);
    assert_non_null(strstr(err.msg, "attention=cudnn needs --device=cuda"));
    gpt_plan_free(plan);

    /* a running model whose config asks for kernels its backend lacks refuses every phase */
    c.attention = GPT_ATTENTION_NAIVE;
    Gpt g;
    Arena *a = test_model_build(&g, &c, 2, 8, 3);
    size_t used = arena_stats(a).used_bytes;
    g.config.attention = GPT_ATTENTION_CUDNN;
    int32_t x[16] = {0}, y[16] = {0};
    float loss = -1.0f, logits[2 * 32];
    err.msg[0] = 0;
    assert_int_equal(gpt_forward(&g, x, y, 2, 8, 0, &loss, &err), -1);
    assert_non_null(strstr(err.msg, "attention=cudnn has no kernels in the cpu backend"));
    assert_true(loss == -1.0f);
    assert_int_equal(gpt_forward(&g, x, y, 2, 8, 1, &loss, &err), -1);
    assert_int_equal(gpt_forward_last_logits(&g, x, 2, 8, logits, &err), -1);
    assert_non_null(strstr(err.msg, "gpt_forward_last_logits: attention=cudnn"));
    assert_int_equal(arena_stats(a).used_bytes, used);
    g.config.attention = GPT_ATTENTION_NAIVE;
    gpt_free(&g);
    arena_free(a);
}

static const char INJECTED_FAULT[] = "illegal memory access (injected)";
static int faulted_last_error(char *msg, size_t len) {
    snprintf(msg, len, "%s", INJECTED_FAULT);
    return 1;
}

/* After a device fault the values copied back are not results: the eval loss, the sampling
 * logits and the update's gradient norm report the device error instead, and free what they
 * allocated. */
static void test_gpt_device_error_is_reported(void **state) {
    GptConfig c = test_gpt_config(2, 2, 16, 8, 32, 32, 0, 0, 0);
    Gpt g;
    Arena *a = test_model_build(&g, &c, 2, 8, 3);
    size_t used = arena_stats(a).used_bytes;
    GptBackend faulty = *gpt_backend_cpu();
    faulty.last_error = faulted_last_error;
    g.backend = &faulty;
    int32_t x[16] = {0}, y[16] = {0};
    float loss = -1.0f, logits[2 * 32], norm = -1.0f;
    Err err = {{0}};
    assert_int_equal(gpt_forward(&g, x, y, 2, 8, 0, &loss, &err), -1);
    assert_non_null(strstr(err.msg, "gpt_forward: device error: illegal memory access"));
    assert_true(loss == -1.0f);
    assert_int_equal(arena_stats(a).used_bytes, used);
    assert_int_equal(gpt_forward(&g, x, y, 2, 8, 1, &loss, &err), -1);
    assert_int_equal(arena_stats(a).used_bytes, used);
    err.msg[0] = 0;
    assert_int_equal(gpt_forward_last_logits(&g, x, 2, 8, logits, &err), -1);
    assert_non_null(strstr(err.msg, "gpt_forward_last_logits: device error"));
    assert_int_equal(arena_stats(a).used_bytes, used);
    err.msg[0] = 0;
    assert_int_equal(gpt_update(&g, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 1, 1.0f, &norm, &err),
                     -1);
    assert_non_null(strstr(err.msg, "gpt_update: device error"));
    assert_true(norm == -1.0f);
    assert_int_equal(arena_stats(a).used_bytes, used);
    g.backend = gpt_backend_cpu();
    gpt_free(&g);
    assert_int_equal(arena_stats(a).used_bytes, 0);
    arena_free(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt_param_counts_small_4070),
        cmocka_unit_test(test_gpt_param_counts_match_built_tensors),
        cmocka_unit_test(test_gpt_flops_count_matmul_weights),
        cmocka_unit_test(test_gpt_plan_equals_measured),
        cmocka_unit_test(test_gpt_recompute_saves_activation_memory),
        cmocka_unit_test(test_gpt_plan_refuses_over_limit),
        cmocka_unit_test(test_gpt_plan_cuda_layout),
        cmocka_unit_test(test_gpt_plan_grad_f32),
        cmocka_unit_test(test_gpt_recompute_gradients_bit_identical),
        cmocka_unit_test(test_gpt_gradients_match_finite_differences),
        cmocka_unit_test(test_gpt_padded_vocab_takes_no_part),
        cmocka_unit_test(test_gpt_eval_forward_frees_everything),
        cmocka_unit_test(test_gpt_learns_repeating_pattern),
        cmocka_unit_test(test_gpt_attention_without_kernels_is_refused),
        cmocka_unit_test(test_gpt_device_error_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
