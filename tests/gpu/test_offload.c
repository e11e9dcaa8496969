/* test_offload.c: optimizer_offload on the CUDA backend (a GPU, or the CUDA simulator: make
 * test-sim builds it as build/sim/tests/gpu/test_offload): the f32 master weights, m and v in
 * a pinned host arena, AdamW on the CPU.
 *   - plan == measured in both arenas, the device's and the host's, to the byte (categories,
 *     peaks, high-water marks, the peak's tensors and their offsets), per recompute mode, with
 *     f16 and with f32 gradients;
 *   - training with offload equals training without, bit for bit (losses, f16 params, master,
 *     m, v after every step), a skipped step (an inf gradient under loss scaling) included:
 *     the CPU's AdamW and the CUDA kernel compute the same f32 operations in the same order
 *     (model/offload.c). On a GPU nvcc fuses multiply-adds, so there the states may differ by
 *     roundings: the OFFLOAD_GPU_* tolerances below, used only when the card is not the
 *     simulator's;
 *   - a host arena refusal (the build's optimizer state, the update's staging) is reported
 *     naming the tensor, and every byte is released.
 * A failed transfer is tested end to end by tests/sim_offload.sh (the device error is sticky
 * for the process, so not here). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../alloc/arena.h"
#include "../../data/rng.h"
#include "../../model/backend.h"
#include "../../model/cuda/cuda_backend.h"
#include "../../model/device.h"
#include "../../model/gpt.h"
#include "../../model/offload.h"
#include "../test_util.h"

/* On a real GPU (not the simulator) the CUDA AdamW is compiled with FMA contraction, the CPU's
 * is not: a few f32 roundings per step on values of order 1 (x8 margin over 2^-24 per
 * operation, 8 operations, 4 steps). The simulator is held to bit equality. */
#define OFFLOAD_GPU_RTOL 1e-5
#define OFFLOAD_GPU_ATOL 1e-6
/* ... and the f16 parameters rounded from those masters may then land one f16 ulp apart
 * (2^-10 relative), and the losses and norms computed from them differ as little */
#define OFFLOAD_GPU_F16_RTOL 1e-3
#define OFFLOAD_GPU_LOSS_RTOL 1e-4

/* the CUDA simulator names its card "... (simulated)" (tests/cudasim/cudasim.cc) */
static int simulated(void) {
    DeviceMem m;
    Err err;
    memset(&m, 0, sizeof m);
    return device_mem_sample(&m, DEVICE_MEM_AFTER_CONTEXT, &err) == 0 &&
           strstr(m.name, "(simulated)") != NULL;
}

static GptConfig tiny_config(GptRecompute mode, int grad_f32, int offload) {
    GptConfig c = {0};
    c.max_seq_len = 8;
    c.vocab_size = 37;
    c.padded_vocab_size = 48;
    c.n_layer = 2;
    c.n_head = 2;
    c.channels = 16;
    c.bias = 1;
    c.recompute = mode;
    c.attention = GPT_ATTENTION_NAIVE;
    c.grad_f32 = grad_f32;
    c.optimizer_offload = offload;
    return c;
}

static void tokens(int32_t *x, int32_t *y, int64_t n, int64_t V, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    for (int64_t i = 0; i < n; i++) {
        x[i] = (int32_t)rng_below(&r, (uint64_t)V);
        y[i] = (int32_t)rng_below(&r, (uint64_t)V);
    }
}

/* every figure of two arenas' statistics and peak tensors */
static void assert_same_arena(const Arena *plan, const Arena *run) {
    ArenaStats ps = arena_stats(plan), ms = arena_stats(run);
    for (int k = 0; k < ARENA_CAT_COUNT; k++) {
        assert_int_equal(ps.cat_peak_bytes[k], ms.cat_peak_bytes[k]);
        assert_int_equal(ps.at_peak_bytes[k], ms.at_peak_bytes[k]);
        assert_int_equal(ps.cat_used_bytes[k], ms.cat_used_bytes[k]);
    }
    assert_int_equal(ps.peak_used_bytes, ms.peak_used_bytes);
    assert_int_equal(ps.high_water_bytes, ms.high_water_bytes);
    assert_int_equal(ps.n_allocs, ms.n_allocs);
    int64_t np = 0, nm = 0;
    const ArenaPeakTensor *pp = arena_peak_tensors(plan, &np);
    const ArenaPeakTensor *mp = arena_peak_tensors(run, &nm);
    assert_int_equal(np, nm);
    for (int64_t i = 0; i < np; i++) {
        assert_string_equal(pp[i].name, mp[i].name);
        assert_int_equal(pp[i].offset, mp[i].offset);
        assert_int_equal(pp[i].bytes, mp[i].bytes);
    }
}

/* A model with its two arenas (offload), or one (device only). */
typedef struct Run {
    Arena *dev, *host;
    Gpt g;
} Run;

static void run_build(Run *r, const GptConfig *c, int64_t B, int64_t T, size_t dev_bytes,
                      size_t host_bytes) {
    Err err = {{0}};
    memset(r, 0, sizeof *r);
    r->dev = arena_init_with(arena_device_ops(), dev_bytes, 0, &err);
    assert_non_null(r->dev);
    if (c->optimizer_offload) {
        r->host = arena_init(ARENA_BACKING_PINNED, host_bytes, 0, &err);
        assert_non_null(r->host);
        assert_int_equal(arena_backing(r->host), ARENA_BACKING_PINNED);
        assert_int_equal(gpt_build_offload(&r->g, c, GPT_DEVICE_CUDA, r->dev, r->host, B, T, &err),
                         0);
    } else {
        assert_int_equal(gpt_build(&r->g, c, GPT_DEVICE_CUDA, r->dev, B, T, &err), 0);
    }
    if (r->g.ws_backend)
        gpt_cuda_workspace_set(r->g.ws_backend->data, r->g.ws_backend->nbytes);
}

static void run_free(Run *r) {
    gpt_cuda_workspace_set(NULL, 0);
    gpt_free(&r->g);
    assert_int_equal(arena_stats(r->dev).used_bytes, 0);
    arena_free(r->dev);
    if (r->host) {
        assert_int_equal(arena_stats(r->host).used_bytes, 0);
        arena_free(r->host);
    }
}

static void cuda_ok(void) {
    char msg[512];
    if (gpt_cuda_last_error(msg, sizeof msg))
        fail_msg("device error: %s", msg);
}

/* ------------------------------------------------------------------------------------- */

static void plan_vs_measured(const GptConfig *c, int64_t B, int64_t T, int64_t accum) {
    Err err = {{0}};
    GptPlan *plan = NULL;
    GptPlanArgs args = {.phase = GPT_PLAN_TRAIN, .B = B, .T = T, .grad_accum = accum};
    assert_int_equal(gpt_plan(c, GPT_DEVICE_CUDA, &args, &plan, &err), 0);
    assert_non_null(plan->host_arena);
    /* the optimizer state is all on the host: none on the device */
    assert_int_equal(arena_stats(plan->arena).cat_peak_bytes[ARENA_CAT_OPTIMIZER], 0);
    assert_true(arena_stats(plan->host_arena).cat_peak_bytes[ARENA_CAT_OPTIMIZER] > 0);
    Run r;
    run_build(&r, c, B, T, arena_stats(plan->arena).high_water_bytes,
              arena_stats(plan->host_arena).high_water_bytes);
    gpt_init_weights(&r.g, 5);
    int32_t x[64], y[64];
    assert_true(B * T <= 64);
    tokens(x, y, B * T, c->vocab_size, 6);
    assert_int_equal(gpt_plan_steps(&r.g, &args, x, y, &err), 0);
    cuda_ok();
    assert_same_arena(plan->arena, r.dev);
    assert_same_arena(plan->host_arena, r.host);
    run_free(&r);
    gpt_plan_free(plan);
}

static void test_offload_plan_equals_measured(void **state) {
    for (int grad_f32 = 0; grad_f32 <= 1; grad_f32++)
        for (int mode = GPT_RECOMPUTE_NONE; mode <= GPT_RECOMPUTE_FULL; mode++) {
            GptConfig c = tiny_config((GptRecompute)mode, grad_f32, 1);
            plan_vs_measured(&c, 2, 7, 2);
        }
}

/* ------------------------------------------------------------------------------------- */

/* a tensor's bytes on the host, wherever it lives */
static unsigned char *tensor_bytes(Gpt *g, const Tensor *t) {
    unsigned char *b = malloc(t->nbytes);
    assert_non_null(b);
    gpt_tensor_read(g, t, b);
    return b;
}

static void assert_same_tensor(Gpt *ga, const Tensor *a, Gpt *gb, const Tensor *b, int exact) {
    assert_int_equal(a->nbytes, b->nbytes);
    assert_string_equal(a->name, b->name);
    unsigned char *x = tensor_bytes(ga, a), *y = tensor_bytes(gb, b);
    if (exact) {
        if (memcmp(x, y, a->nbytes) != 0)
            fail_msg("%s differs between the device update and the offloaded one", a->name);
    } else if (a->dtype == ARENA_DTYPE_F32) {
        assert_allclose((const float *)y, (const float *)x, (int64_t)(a->nbytes / sizeof(float)),
                        OFFLOAD_GPU_ATOL, OFFLOAD_GPU_RTOL);
    } else { /* f16 parameters, compared as f32 */
        int64_t n = (int64_t)(a->nbytes / sizeof(uint16_t));
        float *fx = malloc((size_t)n * sizeof(float)), *fy = malloc((size_t)n * sizeof(float));
        assert_true(fx && fy);
        for (int64_t i = 0; i < n; i++) {
            fx[i] = offload_f16_to_f32(((const uint16_t *)x)[i]);
            fy[i] = offload_f16_to_f32(((const uint16_t *)y)[i]);
        }
        assert_allclose(fy, fx, n, OFFLOAD_GPU_ATOL, OFFLOAD_GPU_F16_RTOL);
        free(fx);
        free(fy);
    }
    free(x);
    free(y);
}

/* 4 optimizer steps of 2 micro-steps each, with and without offload, on the same data; step 1
 * overflows (an f16 inf in a gradient) and must be skipped by both, and the skipped step still
 * allocates the host staging (the arena's calls never depend on the data: plan == measured). */
static void equal_training(int grad_f32) {
    const int64_t B = 2, T = 8, steps = 4, accum = 2;
    const int exact = simulated();
    GptConfig cd = tiny_config(GPT_RECOMPUTE_NONE, grad_f32, 0);
    GptConfig co = tiny_config(GPT_RECOMPUTE_NONE, grad_f32, 1);
    Run rd, ro;
    run_build(&rd, &cd, B, T, (size_t)64 << 20, 0);
    run_build(&ro, &co, B, T, (size_t)64 << 20, (size_t)16 << 20);
    gpt_init_weights(&rd.g, 21);
    gpt_init_weights(&ro.g, 21);
    Err err = {{0}};
    const float scale = 1024.0f;
    int skipped = 0;
    for (int64_t s = 1; s <= steps; s++) {
        Run *rs[2] = {&rd, &ro};
        float loss[2] = {0}, norm[2] = {0};
        for (int k = 0; k < 2; k++) {
            Gpt *g = &rs[k]->g;
            gpt_set_loss_scale(g, scale);
            assert_int_equal(gpt_zero_grad(g), 0);
            for (int64_t m = 0; m < accum; m++) {
                int32_t x[16], y[16];
                tokens(x, y, B * T, cd.vocab_size, (uint64_t)(100 * s + m));
                float l = 0.0f;
                assert_int_equal(gpt_forward(g, x, y, B, T, 1, &l, &err), 0);
                assert_int_equal(gpt_backward(g, &err), 0);
                loss[k] += l;
            }
            if (s == 1) { /* the overflow: one element of one gradient is +inf */
                GptParam *p = &g->params[4];
                const uint16_t inf16 = 0x7c00;
                const float inf32 = INFINITY;
                g->backend->copy_from_host(p->grad->data, grad_f32 ? (const void *)&inf32 : &inf16,
                                           arena_dtype_size(p->grad->dtype), g->stream);
            }
            assert_int_equal(gpt_update(g, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, s - skipped,
                                        (float)accum * scale, &norm[k], &err),
                             0);
            cuda_ok();
        }
        /* same params in, same kernels: the same bits (on a GPU, within the roundings above) */
        assert_true(exact ? loss[0] == loss[1]
                          : fabsf(loss[0] - loss[1]) <= OFFLOAD_GPU_LOSS_RTOL * fabsf(loss[0]));
        if (s == 1) {
            assert_false(isfinite(norm[0]));
            assert_false(isfinite(norm[1]));
            assert_true(arena_stats(ro.host).cat_peak_bytes[ARENA_CAT_WORKSPACE] > 0);
            skipped++;
        } else {
            assert_true(isfinite(norm[0]) &&
                        (exact ? norm[0] == norm[1]
                               : fabsf(norm[0] - norm[1]) <= OFFLOAD_GPU_LOSS_RTOL * norm[0]));
        }
        for (int i = 0; i < rd.g.n_params; i++) {
            GptParam *a = &rd.g.params[i], *b = &ro.g.params[i];
            assert_false(gpt_tensor_on_host(&rd.g, a->master));
            assert_true(gpt_tensor_on_host(&ro.g, b->master) && gpt_tensor_on_host(&ro.g, b->m));
            assert_same_tensor(&rd.g, a->param, &ro.g, b->param, exact);
            assert_same_tensor(&rd.g, a->master, &ro.g, b->master, exact);
            assert_same_tensor(&rd.g, a->m, &ro.g, b->m, exact);
            assert_same_tensor(&rd.g, a->v, &ro.g, b->v, exact);
        }
    }
    assert_int_equal(skipped, 1);
    run_free(&rd);
    run_free(&ro);
}

static void test_offload_training_equals_device_f16_grads(void **state) { equal_training(0); }
static void test_offload_training_equals_device_f32_grads(void **state) { equal_training(1); }

/* ------------------------------------------------------------------------------------- */

/* The host arena refuses: in the build (an optimizer tensor, named), and in the update (the
 * staging, named); nothing stays allocated in either arena. */
static void test_offload_host_refusal_names_the_tensor(void **state) {
    GptConfig c = tiny_config(GPT_RECOMPUTE_NONE, 0, 1);
    Err err = {{0}};
    Arena *d = arena_init_with(arena_device_ops(), (size_t)64 << 20, 0, &err);
    Arena *h = arena_init(ARENA_BACKING_PINNED, (size_t)16 << 20, 0, &err);
    assert_non_null(d);
    assert_non_null(h);
    Gpt g;
    arena_set_alloc_budget(h, 4); /* master, m, v of wte, then master of wpe */
    assert_int_equal(gpt_build_offload(&g, &c, GPT_DEVICE_CUDA, d, h, 2, 8, &err), -1);
    assert_non_null(strstr(err.msg, "host arena (optimizer_offload)"));
    assert_non_null(strstr(err.msg, "adam.m.wpe"));
    assert_int_equal(arena_stats(d).used_bytes, 0);
    assert_int_equal(arena_stats(h).used_bytes, 0);

    /* the build fits, the update's staging does not */
    /* 28 parameters (wte, wpe, 12 per layer x 2, ln_f's 2) of 3 host tensors each, then the
     * staging's first tensor */
    arena_set_alloc_budget(h, arena_stats(h).n_allocs + 3 * 28 + 1);
    assert_int_equal(gpt_build_offload(&g, &c, GPT_DEVICE_CUDA, d, h, 2, 8, &err), 0);
    if (g.ws_backend)
        gpt_cuda_workspace_set(g.ws_backend->data, g.ws_backend->nbytes);
    gpt_init_weights(&g, 3);
    int32_t x[16], y[16];
    tokens(x, y, 16, c.vocab_size, 4);
    assert_int_equal(gpt_zero_grad(&g), 0);
    assert_int_equal(gpt_forward(&g, x, y, 2, 8, 1, NULL, &err), 0);
    assert_int_equal(gpt_backward(&g, &err), 0);
    float norm = 0.0f;
    assert_int_equal(gpt_update(&g, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 1, 1.0f, &norm, &err),
                     -1);
    assert_non_null(strstr(err.msg, "ws.offload.grad_f32"));
    cuda_ok();
    size_t host_state = arena_stats(h).cat_used_bytes[ARENA_CAT_OPTIMIZER];
    assert_int_equal(arena_stats(h).used_bytes, host_state); /* the staging was released */
    gpt_cuda_workspace_set(NULL, 0);
    gpt_free(&g);
    assert_int_equal(arena_stats(d).used_bytes, 0);
    assert_int_equal(arena_stats(h).used_bytes, 0);
    arena_free(d);
    arena_free(h);
}

/* A plain gpt_build refuses an offload config, and the CPU device refuses offload. */
static void test_offload_refusals(void **state) {
    GptConfig c = tiny_config(GPT_RECOMPUTE_NONE, 0, 1);
    Err err = {{0}};
    Arena *d = arena_init(ARENA_BACKING_PLAN, 0, 0, &err);
    Gpt g;
    assert_int_equal(gpt_build(&g, &c, GPT_DEVICE_CUDA, d, 2, 8, &err), -1);
    assert_non_null(strstr(err.msg, "gpt_build_offload"));
    assert_int_equal(gpt_config_check(&c, GPT_DEVICE_CPU, &err), -1);
    assert_non_null(strstr(err.msg, "optimizer_offload=True needs --device=cuda"));
    arena_free(d);
}

int main(void) {
    if (!gpt_backend_cuda()) {
        fprintf(stderr, "test_offload: no usable CUDA device; make test-gpu needs a GPU (or make "
                        "test-sim, the simulator)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offload_refusals),
        cmocka_unit_test(test_offload_plan_equals_measured),
        cmocka_unit_test(test_offload_training_equals_device_f16_grads),
        cmocka_unit_test(test_offload_training_equals_device_f32_grads),
        cmocka_unit_test(test_offload_host_refusal_names_the_tensor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
