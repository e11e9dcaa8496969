/* test_cuda_backend.c: the CUDA backend (16-bit storage, f32 arithmetic) against the CPU f32
 * reference backend, kernel by kernel on random inputs at odd sizes, then the whole model
 * (loss, last-position logits, every gradient, one AdamW step) for each recompute mode; plan ==
 * measured on the device (3 configs x 3 recompute modes); an inf gradient skipping the update
 * (loss scaling); the attention backward's shared-memory limit. The tests that depend on the
 * storage type run twice: with float16 (group "float16") and with bfloat16 (group "bfloat16",
 * the bf16 tables of the backend).
 *
 * Inputs are rounded to the 16-bit type on the way to the GPU and the CPU reference is fed the
 * rounded values, so differences come only from 16-bit outputs/intermediates and summation
 * order.
 * Device memory comes from a device-backed arena, like a real run (no other allocation).
 * Needs a GPU (make test-gpu), or the CUDA simulator (make test-sim builds it as
 * build/sim/tests/gpu/test_cuda_backend and runs it in CI); without either it fails with a
 * message.
 *
 * Tolerances (|gpu - cpu| <= atol + rtol * |cpu|), with their reasons:
 *   f16 has a unit roundoff of 2^-11 = 4.9e-4; an f16 output of an f32 computation is within
 *   one rounding of the f32 value, a chain of k f16 intermediates within about k roundings.
 *   bf16 keeps 8 significant bits: a unit roundoff of 2^-8, 8 times f16's, so every tolerance
 *   that comes from 16-bit roundings is scaled by g_r16 = BF16_ROUNDING_RATIO (the f32 ones
 *   are not). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../alloc/arena.h"
#include "../../data/rng.h"
#include "../../model/backend.h"
#include "../../model/cuda/cuda_backend.h"
#include "../../model/device.h"
#include "../../model/gpt.h"
#include "../test_util.h"

/* the storage type under test (ARENA_DTYPE_F16, then ARENA_DTYPE_BF16 with `cu` its table),
 * and its unit roundoff relative to f16's: 1, or BF16_ROUNDING_RATIO for bf16 */
static ArenaDtype X16 = ARENA_DTYPE_F16;
static double g_r16 = 1.0;
#define BF16_ROUNDING_RATIO 8.0 /* 2^-8 / 2^-11 */

/* one f16 output rounding (2^-11) with margin x4 for f32 summation-order differences */
#define TOL_X16_RTOL (2e-3 * g_r16)
/* absolute floor for O(1) values: results near 0 after cancellation carry the rounding of
 * their O(1) terms */
#define TOL_X16_ATOL (2e-3 * g_r16)
/* attention: probabilities, scores and the score gradient are each stored in f16 before the
 * next GEMM, so three roundings chain (about 3 x 2^-11 relative, x2 margin) */
#define TOL_ATT_RTOL (1e-2 * g_r16)
#define TOL_ATT_ATOL (3e-3 * g_r16)
/* flash backward: D = rowsum(dO * O) reads the f16 O, and dS feeds the f16 dqkv: two roundings
 * chain into values that are differences of O(1) terms (about 2 x 2^-11 absolute, x3 margin) */
#define TOL_FLASH_BWD_ATOL (3e-3 * g_r16)
#define TOL_FLASH_BWD_RTOL (1e-2 * g_r16)
/* accumulating (+=) outputs: the f16 value read, plus the f32 sum, rounded once more */
#define TOL_ACC_ATOL (4e-3 * g_r16)
/* f32 statistics (mean, rstd, losses) computed from identical f16 inputs: only f32
 * summation order differs (C terms), so 1e-5 relative with margin */
#define TOL_F32_RTOL 1e-4
#define TOL_F32_ATOL 1e-5
/* whole model: every activation is rounded to f16 layer after layer (about 15 roundings per
 * layer through forward and backward), and the GEMMs sum in a different order: 3% of the
 * value, with an absolute floor of 3% of the tensor's largest reference value, because small
 * gradients are differences of larger f16 terms */
#define TOL_MODEL_RTOL (3e-2 * g_r16)
#define TOL_MODEL_ATOL_FRAC (3e-2 * g_r16)
/* the model's mean loss is an f32 reduction of per-token losses computed from f16 logits:
 * 0.5% relative */
#define TOL_LOSS_RTOL (5e-3 * g_r16)

static const GptBackend *cu;
static const GptBackend *cpu;
static Arena *dev; /* device-backed arena: all test tensors on the GPU */

#define DEV_ARENA_BYTES ((size_t)512 << 20)

/* ------------------------------------------------------------------------------------- */
/* helpers                                                                               */

static void fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    for (int64_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * rng_uniform_f32(&r);
}

static float *hmalloc(int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    assert_non_null(p);
    return p;
}

static Tensor *dalloc(ArenaDtype dt, int64_t n, const char *name) {
    int64_t shape[1] = {n};
    Tensor *t = arena_alloc(dev, ARENA_CAT_WORKSPACE, dt, 1, shape, "%s", name);
    assert_non_null(t);
    return t;
}

/* 16-bit tensor from host values; host is overwritten with the rounded values the GPU holds */
static Tensor *dup_x16(float *host, int64_t n, const char *name) {
    Tensor *t = dalloc(X16, n, name);
    cu->params_from_host_f32(t->data, X16, host, n, NULL);
    cu->params_to_host_f32(host, t->data, X16, n, NULL);
    return t;
}

static Tensor *dup_f32(const float *host, int64_t n, const char *name) {
    Tensor *t = dalloc(ARENA_DTYPE_F32, n, name);
    cu->copy_from_host(t->data, host, (size_t)n * sizeof(float), NULL);
    return t;
}

static Tensor *dup_i32(const int32_t *host, int64_t n, const char *name) {
    Tensor *t = dalloc(ARENA_DTYPE_I32, n, name);
    cu->copy_from_host(t->data, host, (size_t)n * sizeof(int32_t), NULL);
    return t;
}

static float *down(const Tensor *t, int64_t n) {
    float *h = hmalloc(n);
    cu->params_to_host_f32(h, t->data, t->dtype, n, NULL);
    return h;
}

static void cuda_ok(void) {
    char msg[1200];
    if (gpt_cuda_last_error(msg, sizeof(msg)) != 0)
        fail_msg("CUDA error: %s", msg);
}

static int teardown_each(void **state) {
    (void)state;
    arena_release_category(dev, ARENA_CAT_WORKSPACE);
    return 0;
}

/* ------------------------------------------------------------------------------------- */
/* kernels                                                                               */

static void test_cuda_encoder_forward_backward(void **state) {
    const int64_t B = 3, T = 7, C = 37, Vp = 23, maxT = 9;
    float *wte = hmalloc(Vp * C), *wpe = hmalloc(maxT * C);
    fill_uniform(wte, Vp * C, -1, 1, 1);
    fill_uniform(wpe, maxT * C, -1, 1, 2);
    int32_t inp[21];
    for (int i = 0; i < B * T; i++)
        inp[i] = (int32_t)((i * 7 + i / 5) % 11); /* repeats: the scatter must sum them */
    Tensor *d_wte = dup_x16(wte, Vp * C, "wte"), *d_wpe = dup_x16(wpe, maxT * C, "wpe");
    Tensor *d_inp = dup_i32(inp, B * T, "inp");
    Tensor *d_out = dalloc(X16, B * T * C, "out");
    cu->encoder_forward(d_out->data, d_inp->data, d_wte->data, d_wpe->data, B, T, C, NULL);
    float *ref = hmalloc(B * T * C);
    cpu->encoder_forward(ref, inp, wte, wpe, B, T, C, NULL);
    float *got = down(d_out, B * T * C);
    assert_allclose(got, ref, (size_t)(B * T * C), TOL_X16_ATOL, TOL_X16_RTOL);

    /* backward accumulates into non-zero gradients */
    float *dout = hmalloc(B * T * C), *dwte = hmalloc(Vp * C), *dwpe = hmalloc(maxT * C);
    fill_uniform(dout, B * T * C, -1, 1, 3);
    fill_uniform(dwte, Vp * C, -1, 1, 4);
    fill_uniform(dwpe, maxT * C, -1, 1, 5);
    Tensor *d_dout = dup_x16(dout, B * T * C, "dout");
    Tensor *d_dwte = dup_x16(dwte, Vp * C, "dwte"), *d_dwpe = dup_x16(dwpe, maxT * C, "dwpe");
    cu->encoder_backward(d_dwte->data, d_dwpe->data, d_dout->data, d_inp->data, B, T, C, NULL);
    cpu->encoder_backward(dwte, dwpe, dout, inp, B, T, C, NULL);
    float *g1 = down(d_dwte, Vp * C), *g2 = down(d_dwpe, maxT * C);
    assert_allclose(g1, dwte, (size_t)(Vp * C), TOL_ACC_ATOL, TOL_X16_RTOL);
    assert_allclose(g2, dwpe, (size_t)(maxT * C), TOL_ACC_ATOL, TOL_X16_RTOL);
    cuda_ok();
    free(wte), free(wpe), free(ref), free(got), free(dout), free(dwte), free(dwpe), free(g1),
        free(g2);
}

static void use_workspace(size_t bytes);

/* (N, C): C = 67 takes the one-value path; C = 264 (a multiple of 8) the 128-bit one, with
 * 33 packets a row (lane 0 takes two) and enough rows for several row slices of the column
 * sums */
static const int64_t LN_SHAPES[2][2] = {{29, 67}, {300, 264}};

static void test_cuda_layernorm_forward_backward(void **state) {
    for (int k = 0; k < 4; k++) {
        const int64_t N = LN_SHAPES[k / 2][0], C = LN_SHAPES[k / 2][1];
        int with_bias = k % 2;
        float *x = hmalloc(N * C), *w = hmalloc(C), *b = hmalloc(C);
        fill_uniform(x, N * C, -2, 3, 10);
        fill_uniform(w, C, 0.5f, 1.5f, 11);
        fill_uniform(b, C, -0.5f, 0.5f, 12);
        Tensor *dx = dup_x16(x, N * C, "x"), *dw = dup_x16(w, C, "w"), *db = dup_x16(b, C, "b");
        Tensor *dout_t = dalloc(X16, N * C, "out");
        Tensor *dmean = dalloc(ARENA_DTYPE_F32, N, "mean"),
               *drstd = dalloc(ARENA_DTYPE_F32, N, "rstd");
        cu->layernorm_forward(dout_t->data, dmean->data, drstd->data, dx->data, dw->data,
                              with_bias ? db->data : NULL, N, C, NULL);
        float *out = hmalloc(N * C), *mean = hmalloc(N), *rstd = hmalloc(N);
        cpu->layernorm_forward(out, mean, rstd, x, w, with_bias ? b : NULL, N, C, NULL);
        float *got = down(dout_t, N * C), *gm = down(dmean, N), *gr = down(drstd, N);
        assert_allclose(got, out, (size_t)(N * C), TOL_X16_ATOL, TOL_X16_RTOL);
        assert_allclose(gm, mean, (size_t)N, TOL_F32_ATOL, TOL_F32_RTOL);
        assert_allclose(gr, rstd, (size_t)N, TOL_F32_ATOL, TOL_F32_RTOL);

        /* backward: all three outputs accumulate; use the CPU's statistics on both sides */
        float *dy = hmalloc(N * C), *dinp = hmalloc(N * C), *dwt = hmalloc(C), *dbs = hmalloc(C);
        fill_uniform(dy, N * C, -1, 1, 13);
        fill_uniform(dinp, N * C, -1, 1, 14);
        fill_uniform(dwt, C, -1, 1, 15);
        fill_uniform(dbs, C, -1, 1, 16);
        Tensor *ddy = dup_x16(dy, N * C, "dy"), *ddinp = dup_x16(dinp, N * C, "dinp");
        Tensor *ddw = dup_x16(dwt, C, "dw"), *ddb = dup_x16(dbs, C, "db");
        Tensor *cm = dup_f32(mean, N, "cmean"), *cr = dup_f32(rstd, N, "crstd");
        if (N >= 300) /* the column sums' two passes: row slices into the workspace */
            use_workspace((size_t)1 << 20);
        cu->layernorm_backward(ddinp->data, ddw->data, with_bias ? ddb->data : NULL, ddy->data,
                               dx->data, dw->data, cm->data, cr->data, N, C, NULL);
        use_workspace(0);
        cpu->layernorm_backward(dinp, dwt, with_bias ? dbs : NULL, dy, x, w, mean, rstd, N, C,
                                NULL);
        float *g1 = down(ddinp, N * C), *g2 = down(ddw, C), *g3 = down(ddb, C);
        assert_allclose(g1, dinp, (size_t)(N * C), TOL_ACC_ATOL, TOL_X16_RTOL);
        /* dweight sums N=29 products of O(1) terms: absolute floor scaled by sqrt(N) */
        assert_allclose(g2, dwt, (size_t)C, TOL_ACC_ATOL * sqrt((double)N), TOL_X16_RTOL);
        assert_allclose(g3, dbs, (size_t)C, TOL_ACC_ATOL * sqrt((double)N), TOL_X16_RTOL);
        cuda_ok();
        free(x), free(w), free(b), free(out), free(mean), free(rstd), free(got), free(gm), free(gr),
            free(dy), free(dinp), free(dwt), free(dbs), free(g1), free(g2), free(g3);
        arena_release_category(dev, ARENA_CAT_WORKSPACE);
    }
}

/* one matmul forward + backward case against the CPU */
static void matmul_case(int64_t N, int64_t IC, int64_t OC, int with_bias, int with_residual,
                        int dinp_aliases_inp) {
    float *x = hmalloc(N * IC), *w = hmalloc(OC * IC), *b = hmalloc(OC), *res = hmalloc(N * OC);
    fill_uniform(x, N * IC, -1, 1, 20 + (uint64_t)N);
    fill_uniform(w, OC * IC, -1, 1, 21);
    fill_uniform(b, OC, -1, 1, 22);
    fill_uniform(res, N * OC, -1, 1, 23);
    Tensor *dx = dup_x16(x, N * IC, "x"), *dw = dup_x16(w, OC * IC, "w");
    Tensor *db = dup_x16(b, OC, "b"), *dres = dup_x16(res, N * OC, "res");
    Tensor *dout = dalloc(X16, N * OC, "out");
    cu->matmul_forward(dout->data, dx->data, dw->data, with_bias ? db->data : NULL,
                       with_residual ? dres->data : NULL, N, IC, OC, NULL);
    float *out = hmalloc(N * OC);
    cpu->matmul_forward(out, x, w, with_bias ? b : NULL, with_residual ? res : NULL, N, IC, OC,
                        NULL);
    float *got = down(dout, N * OC);
    /* K = IC products of O(1) terms: the absolute floor grows like sqrt(IC) */
    double atol_fwd = TOL_X16_ATOL * sqrt((double)IC);
    assert_allclose(got, out, (size_t)(N * OC), atol_fwd, TOL_X16_RTOL);

    /* in place: residual == out */
    cu->matmul_forward(dres->data, dx->data, dw->data, with_bias ? db->data : NULL, dres->data, N,
                       IC, OC, NULL);
    cpu->matmul_forward(res, x, w, with_bias ? b : NULL, res, N, IC, OC, NULL);
    float *got_ip = down(dres, N * OC);
    assert_allclose(got_ip, res, (size_t)(N * OC), atol_fwd, TOL_X16_RTOL);

    float *dy = hmalloc(N * OC), *dwt = hmalloc(OC * IC), *dbs = hmalloc(OC);
    fill_uniform(dy, N * OC, -1, 1, 24);
    fill_uniform(dwt, OC * IC, -1, 1, 25);
    fill_uniform(dbs, OC, -1, 1, 26);
    Tensor *ddy = dup_x16(dy, N * OC, "dy"), *ddw = dup_x16(dwt, OC * IC, "dw");
    Tensor *ddb = dup_x16(dbs, OC, "db");
    Tensor *ddinp = dinp_aliases_inp ? dx : dalloc(X16, N * IC, "dinp");
    float *dinp = dinp_aliases_inp ? x : hmalloc(N * IC);
    cu->matmul_backward(ddinp->data, ddw->data, with_bias ? ddb->data : NULL, ddy->data, dx->data,
                        dw->data, N, IC, OC, NULL);
    cpu->matmul_backward(dinp, dwt, with_bias ? dbs : NULL, dy, x, w, N, IC, OC, NULL);
    float *g1 = down(ddinp, N * IC), *g2 = down(ddw, OC * IC), *g3 = down(ddb, OC);
    assert_allclose(g1, dinp, (size_t)(N * IC), TOL_X16_ATOL * sqrt((double)OC), TOL_X16_RTOL);
    assert_allclose(g2, dwt, (size_t)(OC * IC), TOL_ACC_ATOL * sqrt((double)N), TOL_X16_RTOL);
    if (with_bias)
        assert_allclose(g3, dbs, (size_t)OC, TOL_ACC_ATOL * sqrt((double)N), TOL_X16_RTOL);
    cuda_ok();
    free(x), free(w), free(b), free(res), free(out), free(got), free(got_ip), free(dy), free(dwt),
        free(dbs), free(g1), free(g2), free(g3);
    if (!dinp_aliases_inp)
        free(dinp);
    arena_release_category(dev, ARENA_CAT_WORKSPACE);
}

static void test_cuda_matmul_odd_sizes(void **state) {
    matmul_case(29, 37, 53, 1, 1, 0);
    matmul_case(29, 37, 53, 0, 0, 0);
    matmul_case(13, 21, 7, 1, 0, 1); /* dinp aliases inp, as the loss head does */
}

static void test_cuda_matmul_tensor_core_sizes(void **state) {
    /* multiples of 8: the shapes cuBLASLt runs on tensor cores */
    matmul_case(96, 128, 384, 1, 1, 0);
    matmul_case(64, 384, 96, 0, 1, 1);
}

/* ws_bytes: the backend workspace during the backward (0: none, the per-thread fallback;
 * else dP through the batched GEMM, in groups of heads when it holds fewer than NH) */
static void attention_case(int64_t B, int64_t T, int64_t C, int64_t NH, size_t ws_bytes) {
    float *qkv = hmalloc(B * T * 3 * C);
    fill_uniform(qkv, B * T * 3 * C, -1.5f, 1.5f, 30 + (uint64_t)T);
    Tensor *dqkv_in = dup_x16(qkv, B * T * 3 * C, "qkv");
    Tensor *dout = dalloc(X16, B * T * C, "out");
    Tensor *datt = dalloc(X16, B * NH * T * T, "att");
    cu->attention[GPT_ATTENTION_NAIVE].forward(dout->data, datt->data, NULL, dqkv_in->data, B, T, C,
                                               NH, NULL);
    float *out = hmalloc(B * T * C), *att = hmalloc(B * NH * T * T);
    cpu->attention[GPT_ATTENTION_NAIVE].forward(out, att, NULL, qkv, B, T, C, NH, NULL);
    float *got = down(dout, B * T * C), *gatt = down(datt, B * NH * T * T);
    assert_allclose(gatt, att, (size_t)(B * NH * T * T), TOL_X16_ATOL, TOL_ATT_RTOL);
    assert_allclose(got, out, (size_t)(B * T * C), TOL_ATT_ATOL, TOL_ATT_RTOL);

    float *dy = hmalloc(B * T * C), *dqkv = hmalloc(B * T * 3 * C);
    fill_uniform(dy, B * T * C, -1, 1, 31);
    Tensor *ddy = dup_x16(dy, B * T * C, "dy");
    Tensor *ddqkv = dalloc(X16, B * T * 3 * C, "dqkv");
    use_workspace(ws_bytes);
    cu->attention[GPT_ATTENTION_NAIVE].backward(ddqkv->data, datt->data, NULL, ddy->data, NULL,
                                                dqkv_in->data, B, T, C, NH, NULL);
    use_workspace(0);
    cpu->attention[GPT_ATTENTION_NAIVE].backward(dqkv, att, NULL, dy, NULL, qkv, B, T, C, NH, NULL);
    float *g = down(ddqkv, B * T * 3 * C);
    assert_allclose(g, dqkv, (size_t)(B * T * 3 * C), TOL_ATT_ATOL, TOL_ATT_RTOL);
    cuda_ok();
    free(qkv), free(out), free(att), free(got), free(gatt), free(dy), free(dqkv), free(g);
    arena_release_category(dev, ARENA_CAT_WORKSPACE);
}

/* One decoding step (the KV cache's attention): the last row's query over T cached rows, on
 * the GPU against the CPU kernel, within the naive attention's f16 tolerances. */
static void decode_case(int64_t T, int64_t C, int64_t NH) {
    float *qkv = hmalloc(T * 3 * C);
    fill_uniform(qkv, T * 3 * C, -1.5f, 1.5f, 60 + (uint64_t)T);
    Tensor *dqkv = dup_x16(qkv, T * 3 * C, "qkv");
    Tensor *dout = dalloc(X16, C, "out");
    cu->attention_decode(dout->data, dqkv->data, T, C, NH, NULL);
    cuda_ok();
    float *out = hmalloc(C), *got = down(dout, C);
    cpu->attention_decode(out, qkv, T, C, NH, NULL);
    assert_allclose(got, out, (size_t)C, TOL_ATT_ATOL, TOL_ATT_RTOL);
    free(qkv), free(out), free(got);
    arena_release_category(dev, ARENA_CAT_WORKSPACE);
}

static void test_cuda_attention_decode(void **state) {
    decode_case(1, 24, 3);   /* one cached position */
    decode_case(45, 24, 3);  /* HS 8, T not a multiple of 32 */
    decode_case(70, 192, 3); /* HS 64: two output dimensions per lane */
}

/* attention=flash on the GPU against the CPU flash kernels and the CPU naive attention:
 * out within one f16 rounding, the f32 lse within f32 summation order, dqkv as above. */
static void flash_case_seeded(int64_t B, int64_t T, int64_t C, int64_t NH, uint64_t seed) {
    int64_t nq = B * T * 3 * C, ny = B * T * C, nl = B * NH * T;
    float *qkv = hmalloc(nq), *dy = hmalloc(ny);
    fill_uniform(qkv, nq, -1.5f, 1.5f, seed + (uint64_t)T);
    fill_uniform(dy, ny, -1, 1, seed + 1);
    Tensor *dqkv_in = dup_x16(qkv, nq, "qkv"), *ddy = dup_x16(dy, ny, "dy");
    Tensor *dout = dalloc(X16, ny, "out"), *dlse = dalloc(ARENA_DTYPE_F32, nl, "lse");
    Tensor *dws = dalloc(ARENA_DTYPE_F32, nl, "ws.flash");
    assert_int_equal(dws->nbytes >= gpt_flash_workspace_bytes(B, T, NH), 1);
    Tensor *ddqkv = dalloc(X16, nq, "dqkv");
    cu->attention[GPT_ATTENTION_FLASH].forward(dout->data, dlse->data, NULL, dqkv_in->data, B, T, C,
                                               NH, NULL);
    cu->attention[GPT_ATTENTION_FLASH].backward(ddqkv->data, dlse->data, dws->data, ddy->data,
                                                dout->data, dqkv_in->data, B, T, C, NH, NULL);
    cuda_ok();
    float *got = down(dout, ny), *glse = down(dlse, nl), *gd = down(ddqkv, nq);

    float *out = hmalloc(ny), *lse = hmalloc(nl), *ws = hmalloc(nl), *dqkv = hmalloc(nq);
    cpu->attention[GPT_ATTENTION_FLASH].forward(out, lse, NULL, qkv, B, T, C, NH, NULL);
    cpu->attention[GPT_ATTENTION_FLASH].backward(dqkv, lse, ws, dy, out, qkv, B, T, C, NH, NULL);
    assert_allclose(got, out, (size_t)ny, TOL_X16_ATOL, TOL_X16_RTOL);
    assert_allclose(glse, lse, (size_t)nl, TOL_F32_ATOL, TOL_F32_RTOL);
    assert_allclose(gd, dqkv, (size_t)nq, TOL_FLASH_BWD_ATOL, TOL_FLASH_BWD_RTOL);

    float *nout = hmalloc(ny), *att = hmalloc(B * NH * T * T), *ndqkv = hmalloc(nq);
    cpu->attention[GPT_ATTENTION_NAIVE].forward(nout, att, NULL, qkv, B, T, C, NH, NULL);
    cpu->attention[GPT_ATTENTION_NAIVE].backward(ndqkv, att, NULL, dy, NULL, qkv, B, T, C, NH,
                                                 NULL);
    assert_allclose(got, nout, (size_t)ny, TOL_X16_ATOL, TOL_X16_RTOL);
    assert_allclose(gd, ndqkv, (size_t)nq, TOL_FLASH_BWD_ATOL, TOL_FLASH_BWD_RTOL);
    free(qkv), free(dy), free(got), free(glse), free(gd), free(out), free(lse), free(ws);
    free(dqkv), free(nout), free(att), free(ndqkv);
    arena_release_category(dev, ARENA_CAT_WORKSPACE);
}

static void flash_case(int64_t B, int64_t T, int64_t C, int64_t NH) {
    flash_case_seeded(B, T, C, NH, 40);
}

/* every compiled head width (16, 32, 64) with a head size below it, odd T across tiles of 32 */
static void test_cuda_flash_attention_odd_sizes(void **state) {
    flash_case(2, 13, 15, 3);  /* HS 5 (width 16) */
    flash_case(3, 1, 10, 2);   /* T = 1 */
    flash_case(2, 67, 160, 5); /* HS 32, three tiles, the last partial */
    flash_case(1, 33, 66, 2);  /* HS 33 (width 64) */
    flash_case(2, 70, 128, 2); /* HS 64, the largest (tensor-core kernels) */
}

/* head size 64 runs the tensor-core kernels (64-row tiles, 4 warps): odd T inside the first
 * tile, on a tile edge, across two and three tiles (the last partial), odd B and NH, and
 * several seeds of the inputs */
static void test_cuda_flash_attention_tensor_cores(void **state) {
    flash_case_seeded(1, 1, 64, 1, 7);    /* one row */
    flash_case_seeded(3, 17, 192, 3, 8);  /* odd B, NH, T inside one tile */
    flash_case_seeded(1, 64, 64, 1, 9);   /* exactly one tile */
    flash_case_seeded(1, 65, 128, 2, 10); /* one row into the second tile */
    flash_case_seeded(1, 131, 64, 1, 11); /* three tiles, the last with 3 rows */
    flash_case_seeded(1, 131, 64, 1, 12);
}

/* attention=cudnn: where cuDNN runs the graphs, its output, lse and gradients against the CPU
 * flash kernels within the flash tolerances (cuDNN's kernels also keep f32 statistics and
 * round O and dqkv to f16 once); where it cannot (the simulator has no cuDNN), the model
 * switches to flash with a one-line notice naming the reason, which is checked. */
static void cudnn_case(int64_t B, int64_t T, int64_t C, int64_t NH) {
    GptConfig c = {0};
    c.n_layer = 1, c.n_head = NH, c.channels = C, c.max_seq_len = T, c.vocab_size = 8;
    c.padded_vocab_size = 8, c.attention = GPT_ATTENTION_CUDNN;
    char notice[768];
    if (gpt_attention_resolve(&c, GPT_DEVICE_CUDA, B, T, notice, sizeof notice)) {
        printf("  fallback: %s\n", notice);
        assert_int_equal(c.attention, GPT_ATTENTION_FLASH);
        assert_non_null(strstr(notice, "attention=cudnn is not available ("));
        assert_non_null(strstr(notice, "): using attention=flash"));
        assert_null(strchr(notice, '\n'));
        return;
    }
    assert_int_equal(c.attention, GPT_ATTENTION_CUDNN);
    int64_t nq = B * T * 3 * C, ny = B * T * C, nl = B * NH * T;
    float *qkv = hmalloc(nq), *dy = hmalloc(ny);
    fill_uniform(qkv, nq, -1.5f, 1.5f, 50 + (uint64_t)T);
    fill_uniform(dy, ny, -1, 1, 51);
    Tensor *dqkv_in = dup_x16(qkv, nq, "qkv"), *ddy = dup_x16(dy, ny, "dy");
    Tensor *dout = dalloc(X16, ny, "out"), *dlse = dalloc(ARENA_DTYPE_F32, nl, "lse");
    Tensor *dws = dalloc(ARENA_DTYPE_U8, (int64_t)gpt_cudnn_workspace_bytes(B, T, C, NH), "ws");
    Tensor *ddqkv = dalloc(X16, nq, "dqkv");
    cu->attention[GPT_ATTENTION_CUDNN].forward(dout->data, dlse->data, dws->data, dqkv_in->data, B,
                                               T, C, NH, NULL);
    cu->attention[GPT_ATTENTION_CUDNN].backward(ddqkv->data, dlse->data, dws->data, ddy->data,
                                                dout->data, dqkv_in->data, B, T, C, NH, NULL);
    cuda_ok();
    float *got = down(dout, ny), *glse = down(dlse, nl), *gd = down(ddqkv, nq);
    float *out = hmalloc(ny), *lse = hmalloc(nl), *ws = hmalloc(nl), *dqkv = hmalloc(nq);
    cpu->attention[GPT_ATTENTION_FLASH].forward(out, lse, NULL, qkv, B, T, C, NH, NULL);
    cpu->attention[GPT_ATTENTION_FLASH].backward(dqkv, lse, ws, dy, out, qkv, B, T, C, NH, NULL);
    assert_allclose(got, out, (size_t)ny, TOL_X16_ATOL, TOL_X16_RTOL);
    assert_allclose(glse, lse, (size_t)nl, TOL_F32_ATOL, TOL_F32_RTOL);
    assert_allclose(gd, dqkv, (size_t)nq, TOL_FLASH_BWD_ATOL, TOL_FLASH_BWD_RTOL);
    free(qkv), free(dy), free(got), free(glse), free(gd), free(out), free(lse), free(ws);
    free(dqkv);
    arena_release_category(dev, ARENA_CAT_WORKSPACE);
}

static void test_cuda_cudnn_attention_or_fallback(void **state) {
    cudnn_case(2, 67, 192, 3); /* HS 64 */
    cudnn_case(1, 128, 64, 2); /* HS 32 */
}

static void test_cuda_attention_odd_sizes(void **state) {
    const size_t all_heads = (size_t)1 << 20, two_heads = 4 * 67 * 67 * 2 + 256;
    for (int k = 0; k < 2; k++) { /* the per-thread fallback, then dP through the GEMM */
        attention_case(2, 13, 24, 3, k ? all_heads : 0);  /* HS 8 */
        attention_case(3, 1, 10, 2, k ? all_heads : 0);   /* T = 1: one key per query */
        attention_case(2, 67, 160, 5, k ? all_heads : 0); /* HS 32, T not a power of two */
    }
    attention_case(2, 64, 128, 4, all_heads); /* T % 8 == 0: 128-bit rows */
    attention_case(2, 67, 160, 5, two_heads); /* heads in groups of 2, 2, 1 */
}

static void test_cuda_gelu_forward_backward(void **state) {
    const int64_t N = 1001;
    for (int kind = 0; kind <= 1; kind++) {
        float *x = hmalloc(N), *dy = hmalloc(N);
        fill_uniform(x, N, -5, 5, 40);
        fill_uniform(dy, N, -1, 1, 41);
        Tensor *dx = dup_x16(x, N, "x"), *ddy = dup_x16(dy, N, "dy");
        Tensor *dout = dalloc(X16, N, "out");
        cu->gelu_forward(dout->data, dx->data, N, kind, NULL);
        float *out = hmalloc(N), *din = hmalloc(N);
        cpu->gelu_forward(out, x, N, kind, NULL);
        float *got = down(dout, N);
        assert_allclose(got, out, (size_t)N, TOL_X16_ATOL, TOL_X16_RTOL);
        /* dinp aliases dout, as gpt.c calls it */
        cu->gelu_backward(ddy->data, dx->data, ddy->data, N, kind, NULL);
        cpu->gelu_backward(din, x, dy, N, kind, NULL);
        float *g = down(ddy, N);
        assert_allclose(g, din, (size_t)N, TOL_X16_ATOL, TOL_X16_RTOL);
        cuda_ok();
        free(x), free(dy), free(out), free(din), free(got), free(g);
        arena_release_category(dev, ARENA_CAT_WORKSPACE);
    }
}

/* (V, Vp): Vp % 8 == 0 takes the 128-bit path (V = 37: a partial last packet; V = 5000: more
 * packets than threads, so each thread runs its loop more than once); Vp = 41 the scalar one */
static const int64_t CE_SHAPES[3][2] = {{37, 40}, {37, 41}, {5000, 5008}};

static void test_cuda_crossentropy_padded(void **state) {
    const int64_t N = 11;
    const float dscales[2] = {0.0f, 3.5f};
    for (int shape = 0; shape < 3; shape++)
        for (int k = 0; k < 2; k++) {
            const int64_t V = CE_SHAPES[shape][0], Vp = CE_SHAPES[shape][1];
            float *lg = hmalloc(N * Vp);
            fill_uniform(lg, N * Vp, -4, 4, 50);
            for (int64_t r = 0; r < N; r++) /* huge padded logits must take no part */
                for (int64_t c = V; c < Vp; c++)
                    lg[r * Vp + c] = 1000.0f;
            int32_t tg[11];
            for (int i = 0; i < N; i++)
                tg[i] = (int32_t)((i * 13) % V);
            Tensor *dl = dup_x16(lg, N * Vp, "logits"), *dt = dup_i32(tg, N, "targets");
            Tensor *dloss = dalloc(ARENA_DTYPE_F32, N, "losses");
            cu->crossentropy_forward(dl->data, dloss->data, dt->data, N, V, Vp, dscales[k], NULL);
            float *loss = hmalloc(N);
            cpu->crossentropy_forward(lg, loss, tg, N, V, Vp, dscales[k], NULL);
            float *gl = down(dloss, N), *glg = down(dl, N * Vp);
            /* losses: f32 from identical f16 logits, V-term sums */
            assert_allclose(gl, loss, (size_t)N, 1e-4, 1e-4);
            assert_allclose(glg, lg, (size_t)(N * Vp), TOL_X16_ATOL * dscales[k] + 1e-6,
                            TOL_X16_RTOL);
            cuda_ok();
            free(lg), free(loss), free(gl), free(glg);
            arena_release_category(dev, ARENA_CAT_WORKSPACE);
        }
}

static void test_cuda_reductions(void **state) {
    const int64_t n = 10007, m = 777;
    float *g = hmalloc(n), *l = hmalloc(m);
    fill_uniform(g, n, -3, 3, 60);
    fill_uniform(l, m, 0, 10, 61);
    Tensor *dg = dup_x16(g, n, "g"), *dl = dup_f32(l, m, "l");
    float init = 1.25f;
    Tensor *acc = dup_f32(&init, 1, "acc"), *sum = dalloc(ARENA_DTYPE_F32, 1, "sum");
    cu->norm_squared_accumulate(acc->data, dg->data, n, NULL);
    cu->reduce_sum(sum->data, dl->data, m, NULL);
    float racc = init, rsum;
    cpu->norm_squared_accumulate(&racc, g, n, NULL);
    cpu->reduce_sum(&rsum, l, m, NULL);
    float gacc, gsum;
    cu->copy_to_host(&gacc, acc->data, sizeof(float), NULL);
    cu->copy_to_host(&gsum, sum->data, sizeof(float), NULL);
    /* f32 sums of n terms in a different order: relative error ~ n^0.5 * 2^-24, x margin */
    assert_allclose(&gacc, &racc, 1, 0.0, 1e-5);
    assert_allclose(&gsum, &rsum, 1, 0.0, 1e-5);
    cuda_ok();
    free(g), free(l);
}

/* The backend workspace the kernels use as scratch in a run (the arena's ws.backend, here a
 * workspace tensor of the test arena); NULL takes it back. */
static void use_workspace(size_t bytes) {
    if (bytes == 0) {
        gpt_cuda_workspace_set(NULL, 0);
        return;
    }
    Tensor *ws = dalloc(ARENA_DTYPE_U8, (int64_t)bytes, "ws.backend");
    gpt_cuda_workspace_set(ws->data, bytes);
}

/* n large enough for the two-pass reductions (many blocks into partials in the workspace):
 * the same bits on a second call, and the CPU's double sums within f32 rounding */
static void test_cuda_reductions_multiblock(void **state) {
    const int64_t n = 600001, m = 200003;
    float *g = hmalloc(n), *l = hmalloc(m);
    fill_uniform(g, n, -3, 3, 62);
    fill_uniform(l, m, 0, 10, 63);
    Tensor *dg = dup_x16(g, n, "g"), *dl = dup_f32(l, m, "l");
    float zero = 0.0f;
    Tensor *acc = dup_f32(&zero, 1, "acc"), *sum = dalloc(ARENA_DTYPE_F32, 1, "sum");
    float gacc[3], gsum[3];
    use_workspace((size_t)1 << 20);
    for (int rep = 0; rep < 2; rep++) {
        cu->copy_from_host(acc->data, &zero, sizeof(float), NULL);
        cu->norm_squared_accumulate(acc->data, dg->data, n, NULL);
        cu->reduce_sum(sum->data, dl->data, m, NULL);
        cu->copy_to_host(&gacc[rep], acc->data, sizeof(float), NULL);
        cu->copy_to_host(&gsum[rep], sum->data, sizeof(float), NULL);
    }
    use_workspace(0); /* the one-block pass */
    cu->copy_from_host(acc->data, &zero, sizeof(float), NULL);
    cu->norm_squared_accumulate(acc->data, dg->data, n, NULL);
    cu->reduce_sum(sum->data, dl->data, m, NULL);
    cu->copy_to_host(&gacc[2], acc->data, sizeof(float), NULL);
    cu->copy_to_host(&gsum[2], sum->data, sizeof(float), NULL);
    cuda_ok();
    assert_memory_equal(&gacc[0], &gacc[1], sizeof(float)); /* deterministic */
    assert_memory_equal(&gsum[0], &gsum[1], sizeof(float));
    float racc = 0.0f, rsum;
    cpu->norm_squared_accumulate(&racc, g, n, NULL);
    cpu->reduce_sum(&rsum, l, m, NULL);
    /* positive terms summed in f32: a few elements per thread, then a tree of depth ~20; the
     * relative error stays within ~40 roundings (2^-24 each): 1e-5 with margin */
    for (int k = 0; k < 3; k++) {
        assert_allclose(&gacc[k], &racc, 1, 0.0, 1e-5);
        assert_allclose(&gsum[k], &rsum, 1, 0.0, 1e-5);
    }
    free(g), free(l);
}

/* B*T past one sorting block (2048 keys), few distinct tokens (long runs): the sorted path
 * (with a workspace) sums each token's rows in position order, as the scan path does, so both
 * give the same bits; and both match the CPU */
static void test_cuda_encoder_backward_sorted(void **state) {
    const int64_t B = 3, T = 1000, C = 37, Vp = 51, maxT = 1000, BT = B * T;
    int32_t *inp = malloc((size_t)BT * sizeof(int32_t));
    assert_non_null(inp);
    for (int64_t i = 0; i < BT; i++) /* token 0 every third position, the rest spread */
        inp[i] = i % 3 == 0 ? 0 : (int32_t)((i * 7919) % (Vp - 1)) + 1;
    float *dout = hmalloc(BT * C), *dwte = hmalloc(Vp * C), *dwpe = hmalloc(maxT * C);
    fill_uniform(dout, BT * C, -1, 1, 70);
    fill_uniform(dwte, Vp * C, -1, 1, 71);
    fill_uniform(dwpe, maxT * C, -1, 1, 72);
    Tensor *d_dout = dup_x16(dout, BT * C, "dout"), *d_inp = dup_i32(inp, BT, "inp");
    float *start = hmalloc(Vp * C);
    memcpy(start, dwte, (size_t)(Vp * C) * sizeof(float));
    Tensor *d_a = dup_x16(dwte, Vp * C, "dwte_sorted"), *d_b = dup_x16(start, Vp * C, "dwte_scan");
    Tensor *d_pe = dup_x16(dwpe, maxT * C, "dwpe");
    use_workspace((size_t)1 << 20);
    cu->encoder_backward(d_a->data, d_pe->data, d_dout->data, d_inp->data, B, T, C, NULL);
    use_workspace(0);
    cu->encoder_backward(d_b->data, d_pe->data, d_dout->data, d_inp->data, B, T, C, NULL);
    cuda_ok();
    float *ga = down(d_a, Vp * C), *gb = down(d_b, Vp * C);
    assert_memory_equal(ga, gb, (size_t)(Vp * C) * sizeof(float));
    cpu->encoder_backward(dwte, dwpe, dout, inp, B, T, C, NULL);
    /* token 0's row sums 1000 terms in f32 before one f16 rounding: one f16 rounding of the
     * sum's magnitude (up to ~|sum| 2^-11) dominates */
    assert_allclose(ga, dwte, (size_t)(Vp * C), TOL_ACC_ATOL, TOL_X16_RTOL);
    free(inp), free(dout), free(dwte), free(dwpe), free(start), free(ga), free(gb);
}

/* NVML's "not available" per-process memory (WDDM, WSL2) is reported as unknown, never as a
 * number; the unaccounted line falls back to cudaMemGetInfo */
/* device_mem_report's text for m (and arena, may be NULL), NUL-terminated in text. */
static void device_mem_report_text(const DeviceMem *m, const Arena *arena, char *text, size_t len) {
    char path[] = "/tmp/arenagpt_devmem_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w+");
    assert_non_null(f);
    assert_int_equal(device_mem_report(m, arena, f), 0);
    rewind(f);
    size_t n = fread(text, 1, len - 1, f);
    text[n] = '\0';
    fclose(f);
    unlink(path);
}

static void test_cuda_device_mem_proc_unknown(void **state) {
    DeviceMem m;
    memset(&m, 0, sizeof(m));
    snprintf(m.driver, sizeof(m.driver), "n/a");
    for (int i = DEVICE_MEM_AFTER_CONTEXT; i < DEVICE_MEM_STAGE_COUNT; i++) {
        m.s[i].taken = 1;
        m.s[i].have_cuda = 1;
        m.s[i].cuda_used_bytes = (size_t)(100 + 50 * i) << 20;
        m.s[i].proc_unknown = 1;
    }
    char text[8192];
    device_mem_report_text(&m, NULL, text, sizeof text);
    assert_non_null(strstr(text, "unknown  (NVML lists this process"));
    assert_non_null(strstr(text, "unaccounted (device now"));
    assert_null(strstr(text, "unaccounted (this pid"));
}

static void test_cuda_adamw_master(void **state) {
    const int64_t n = 1003;
    float *p = hmalloc(n), *g = hmalloc(n), *m = hmalloc(n), *v = hmalloc(n);
    fill_uniform(p, n, -1, 1, 70);
    fill_uniform(g, n, -2, 2, 71);
    fill_uniform(m, n, -0.1f, 0.1f, 72);
    fill_uniform(v, n, 0, 0.1f, 73);
    Tensor *dparam = dup_x16(p, n, "param"); /* p now holds the rounded values */
    Tensor *dmaster = dup_f32(p, n, "master"), *dgrad = dup_x16(g, n, "grad");
    Tensor *dm = dup_f32(m, n, "m"), *dv = dup_f32(v, n, "v");
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, mul = 0.37f;
    const float bc1 = 1.0f - powf(b1, 3.0f), bc2 = 1.0f - powf(b2, 3.0f);
    cu->adamw_update(dparam->data, dmaster->data, dgrad->data, dm->data, dv->data, n, lr, b1, b2,
                     eps, wd, mul, bc1, bc2, NULL);
    cpu->adamw_update(p, NULL, g, m, v, n, lr, b1, b2, eps, wd, mul, bc1, bc2, NULL);
    float *gm = down(dmaster, n), *gp = down(dparam, n), *gmm = down(dm, n), *gv = down(dv, n);
    /* same f32 formula on the same values: only rounding of fused multiply-adds differs */
    assert_allclose(gm, p, (size_t)n, 1e-6, 1e-5);
    assert_allclose(gmm, m, (size_t)n, 1e-7, 1e-5);
    assert_allclose(gv, v, (size_t)n, 1e-7, 1e-5);
    /* the 16-bit copy is the master rounded once: half an ulp, 2^-11 relative (f16) */
    assert_allclose(gp, p, (size_t)n, 1e-6, g_r16 / 2048);
    cuda_ok();
    free(p), free(g), free(m), free(v), free(gm), free(gp), free(gmm), free(gv);
}

/* The multi-tensor optimizer entries against the per-tensor ones: 50 tensors (more than one
 * launch's worth), sizes 0 to 40, with and without weight decay. AdamW gives the same bits;
 * the squared norm the same sum within f32 summation order. */
static void test_cuda_optim_multi(void **state) {
    enum { K = 50 };
    int64_t off[K + 1] = {0};
    for (int k = 0; k < K; k++)
        off[k + 1] = off[k] + (k * 7) % 41; /* tensor 0 is empty */
    const int64_t n = off[K];
    float *p = hmalloc(n), *g = hmalloc(n), *m = hmalloc(n), *v = hmalloc(n), zero = 0.0f;
    fill_uniform(p, n, -1, 1, 80);
    fill_uniform(g, n, -2, 2, 81);
    fill_uniform(m, n, -0.1f, 0.1f, 82);
    fill_uniform(v, n, 0, 0.1f, 83);
    Tensor *dp[2], *dmaster[2], *dm[2], *dv[2], *dacc[2];
    Tensor *dgrad = dup_x16(g, n, "grad");
    for (int c = 0; c < 2; c++) {
        dp[c] = dup_x16(p, n, "param"); /* p now holds the rounded values */
        dmaster[c] = dup_f32(p, n, "master");
        dm[c] = dup_f32(m, n, "m");
        dv[c] = dup_f32(v, n, "v");
        dacc[c] = dup_f32(&zero, 1, "acc");
    }
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, mul = 0.37f;
    const float bc1 = 1.0f - powf(b1, 3.0f), bc2 = 1.0f - powf(b2, 3.0f);
    GptOptimTensor list[K];
    for (int k = 0; k < K; k++) {
        int64_t o = off[k], nk = off[k + 1] - off[k];
        float wd = k % 3 ? 0.1f : 0.0f;
        list[k] = (GptOptimTensor){(char *)dp[1]->data + 2 * o,
                                   (float *)dmaster[1]->data + o,
                                   (char *)dgrad->data + 2 * o,
                                   (float *)dm[1]->data + o,
                                   (float *)dv[1]->data + o,
                                   nk,
                                   wd};
        cu->norm_squared_accumulate(dacc[0]->data, list[k].grad, nk, NULL);
        cu->adamw_update((char *)dp[0]->data + 2 * o, (float *)dmaster[0]->data + o, list[k].grad,
                         (float *)dm[0]->data + o, (float *)dv[0]->data + o, nk, lr, b1, b2, eps,
                         wd, mul, bc1, bc2, NULL);
    }
    cu->norm_squared_multi(dacc[1]->data, list, K, NULL);
    cu->adamw_update_multi(list, K, lr, b1, b2, eps, mul, bc1, bc2, NULL);
    Tensor *const *pairs[4] = {dp, dmaster, dm, dv};
    for (int t = 0; t < 4; t++) {
        float *a = down(pairs[t][0], n), *b = down(pairs[t][1], n);
        assert_memory_equal(a, b, (size_t)n * sizeof(float));
        free(a), free(b);
    }
    float *acc0 = down(dacc[0], 1), *acc1 = down(dacc[1], 1);
    assert_allclose(acc1, acc0, 1, 0.0, 1e-5);
    cuda_ok();
    free(p), free(g), free(m), free(v), free(acc0), free(acc1);
    arena_release_category(dev, ARENA_CAT_WORKSPACE);
}

/* ------------------------------------------------------------------------------------- */
/* whole model                                                                           */

typedef struct ModelResult {
    float loss;
    float norm;
    float *logits; /* (B, Vp) at position T-1 */
    float **grads; /* per param */
    float **after; /* per param, after one update (f32 master on the GPU) */
    int n_params;
    int64_t *numel;
} ModelResult;

static void model_result_free(ModelResult *r) {
    for (int i = 0; i < r->n_params; i++) {
        free(r->grads[i]);
        free(r->after[i]);
    }
    free(r->grads), free(r->after), free(r->numel), free(r->logits);
}

/* Runs forward (loss), backward, one update on g; gets logits from a separate eval forward. */
static void model_run(Gpt *g, const int32_t *inp, const int32_t *tgt, int64_t B, int64_t T,
                      float loss_scale, ModelResult *r) {
    Err err = {{0}};
    const GptConfig *c = &g->config;
    r->n_params = g->n_params;
    r->grads = calloc((size_t)g->n_params, sizeof(float *));
    r->after = calloc((size_t)g->n_params, sizeof(float *));
    r->numel = calloc((size_t)g->n_params, sizeof(int64_t));
    r->logits = hmalloc(B * c->padded_vocab_size);
    assert_int_equal(gpt_forward_last_logits(g, inp, B, T, r->logits, &err), 0);
    gpt_set_loss_scale(g, loss_scale);
    assert_int_equal(gpt_zero_grad(g), 0);
    assert_int_equal(gpt_forward(g, inp, tgt, B, T, 1, &r->loss, &err), 0);
    assert_int_equal(gpt_backward(g, &err), 0);
    for (int i = 0; i < g->n_params; i++) {
        GptParam *p = &g->params[i];
        r->numel[i] = p->numel;
        r->grads[i] = hmalloc(p->numel);
        g->backend->params_to_host_f32(r->grads[i], p->grad->data, p->grad->dtype, p->numel,
                                       g->stream);
    }
    /* eps = 1: the first Adam step is then smooth in g (g / (|g| + 1)), so f16 gradient noise
     * cannot flip a tiny gradient's update to the opposite sign */
    assert_int_equal(
        gpt_update(g, 0.1f, 0.9f, 0.95f, 1.0f, 0.1f, 1.0f, 1, loss_scale, &r->norm, &err), 0);
    for (int i = 0; i < g->n_params; i++) {
        GptParam *p = &g->params[i];
        r->after[i] = hmalloc(p->numel);
        Tensor *src = p->master ? p->master : p->param;
        g->backend->params_to_host_f32(r->after[i], src->data, src->dtype, p->numel, g->stream);
    }
}

static double max_abs(const float *x, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++)
        if (fabs(x[i]) > m)
            m = fabs(x[i]);
    return m;
}

/* attention: the GPU model's kind; the CPU reference always runs naive attention. grad_f32:
 * f32 weight gradients on the GPU (grad_dtype=float32). */
static void model_case_heads(int bias, int gelu, int64_t V, int64_t Vp, int attention, int grad_f32,
                             int64_t NH, int64_t C) {
    const int64_t L = 2, maxT = 16, B = 3, T = 13;
    const float loss_scale = 256.0f;
    GptConfig c = test_gpt_config(L, NH, C, maxT, V, Vp, bias, gelu, GPT_RECOMPUTE_NONE);
    c.loss_chunk = 7; /* does not divide B*T = 39: a short last chunk */
    c.grad_f32 = grad_f32;
    c.bf16 = X16 == ARENA_DTYPE_BF16;
    int32_t inp[39], tgt[39];
    Rng r;
    rng_init(&r, 99);
    for (int i = 0; i < B * T; i++) {
        inp[i] = (int32_t)rng_below(&r, (uint64_t)V);
        tgt[i] = (int32_t)rng_below(&r, (uint64_t)V);
    }
    Err err = {{0}};
    Arena *host = arena_init(ARENA_BACKING_HOST, (size_t)64 << 20, 0, &err);
    assert_non_null(host);

    /* weights: nanoGPT init on the CPU, rounded to f16 through the GPU, both sides equal */
    Gpt gc;
    c.recompute = GPT_RECOMPUTE_NONE;
    assert_int_equal(gpt_build(&gc, &c, GPT_DEVICE_CPU, host, B, T, &err), 0);
    gpt_init_weights(&gc, 1234);
    float **w = calloc((size_t)gc.n_params, sizeof(float *));
    for (int i = 0; i < gc.n_params; i++) {
        w[i] = hmalloc(gc.params[i].numel);
        gpt_param_read_f32(&gc, &gc.params[i], w[i]);
        Tensor *t = dup_x16(w[i], gc.params[i].numel, "round");
        (void)t;
        gpt_param_write_f32(&gc, &gc.params[i], w[i]);
    }
    arena_release_category(dev, ARENA_CAT_WORKSPACE);
    ModelResult ref;
    model_run(&gc, inp, tgt, B, T, loss_scale, &ref);
    int n_params = gc.n_params;
    gpt_free(&gc);

    ModelResult res[3];
    c.attention = attention;
    for (int mode = GPT_RECOMPUTE_NONE; mode <= GPT_RECOMPUTE_FULL; mode++) {
        c.recompute = mode;
        Gpt gg;
        assert_int_equal(gpt_build(&gg, &c, GPT_DEVICE_CUDA, dev, B, T, &err), 0);
        if (gg.ws_backend)
            gpt_cuda_workspace_set(gg.ws_backend->data, gg.ws_backend->nbytes);
        for (int i = 0; i < gg.n_params; i++)
            gpt_param_write_f32(&gg, &gg.params[i], w[i]);
        model_run(&gg, inp, tgt, B, T, loss_scale, &res[mode]);
        cuda_ok();
        gpt_cuda_workspace_set(NULL, 0);
        gpt_free(&gg);
        assert_int_equal(arena_stats(dev).used_bytes, 0);

        ModelResult *g = &res[mode];
        fprintf(stderr, "  recompute %d: loss cpu %.6f gpu %.6f, grad norm cpu %.6f gpu %.6f\n",
                mode, (double)ref.loss, (double)g->loss, (double)ref.norm, (double)g->norm);
        assert_allclose(&g->loss, &ref.loss, 1, 0.0, TOL_LOSS_RTOL);
        assert_allclose(&g->norm, &ref.norm, 1, 0.0, TOL_MODEL_RTOL);
        int64_t nl = B * Vp;
        assert_allclose(g->logits, ref.logits, (size_t)nl,
                        TOL_MODEL_ATOL_FRAC * max_abs(ref.logits, nl), TOL_MODEL_RTOL);
        for (int i = 0; i < ref.n_params; i++) {
            int64_t n = ref.numel[i];
            fprintf(stderr, "    param %d (%lld): max|grad| %.4g\n", i, (long long)n,
                    max_abs(ref.grads[i], n));
            assert_allclose(g->grads[i], ref.grads[i], (size_t)n,
                            TOL_MODEL_ATOL_FRAC * max_abs(ref.grads[i], n) + 1e-6, TOL_MODEL_RTOL);
            /* the update moves each weight by lr * (g/(|g|+1) + wd w), nearly linear in g:
             * compare the moves with the gradients' tolerances, at the moves' own scale */
            float *dg = hmalloc(n), *dr = hmalloc(n);
            for (int64_t j = 0; j < n; j++) {
                dg[j] = g->after[i][j] - w[i][j];
                dr[j] = ref.after[i][j] - w[i][j];
            }
            assert_allclose(dg, dr, (size_t)n, TOL_MODEL_ATOL_FRAC * max_abs(dr, n) + 1e-6,
                            TOL_MODEL_RTOL);
            free(dg), free(dr);
        }
        /* recompute must not change what any kernel computes: bit-identical to none */
        if (mode != GPT_RECOMPUTE_NONE) {
            assert_true(memcmp(&g->loss, &res[0].loss, sizeof(float)) == 0);
            for (int i = 0; i < ref.n_params; i++)
                assert_true(memcmp(g->grads[i], res[0].grads[i],
                                   (size_t)ref.numel[i] * sizeof(float)) == 0);
        }
    }
    for (int mode = 0; mode < 3; mode++)
        model_result_free(&res[mode]);
    model_result_free(&ref);
    for (int i = 0; i < n_params; i++)
        free(w[i]);
    free(w);
    arena_free(host);
}

static void model_case(int bias, int gelu, int64_t V, int64_t Vp, int attention, int grad_f32) {
    model_case_heads(bias, gelu, V, Vp, attention, grad_f32, 5, 40);
}

static void test_cuda_model_bias_tanh_odd_vocab(void **state) {
    model_case(1, 0, 61, 67, GPT_ATTENTION_NAIVE, 0);
}

static void test_cuda_model_nobias_erf(void **state) {
    model_case(0, 1, 50, 64, GPT_ATTENTION_NAIVE, 0);
}

/* attention=flash on the GPU against the naive CPU model: the same tolerances */
static void test_cuda_model_flash(void **state) {
    model_case(0, 0, 50, 64, GPT_ATTENTION_FLASH, 0);
}

/* attention=flash with head size 64 (the tensor-core kernels, NH 2, C 128) against the naive
 * CPU model: the same tolerances */
static void test_cuda_model_flash_hs64(void **state) {
    model_case_heads(0, 0, 50, 64, GPT_ATTENTION_FLASH, 0, 2, 128);
}

/* grad_dtype=float32 on the GPU against the CPU model: the same tolerances */
static void test_cuda_model_grad_f32(void **state) {
    model_case(1, 0, 61, 67, GPT_ATTENTION_NAIVE, 1);
}

/* ------------------------------------------------------------------------------------- */
/* device memory measurements                                                            */

static void test_cuda_device_mem_peak_table(void **state) {
    /* names as CUDA and NVML spell them; values from NVIDIA's data sheets (dense f16 tensor,
     * f32 accumulate) */
    assert_true(device_mem_peak_tflops("NVIDIA H100 80GB HBM3") == 989.4);
    assert_true(device_mem_peak_tflops("NVIDIA H100 PCIe") == 756.5);
    assert_true(device_mem_peak_tflops("NVIDIA H200") == 989.4);
    assert_true(device_mem_peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0);
    assert_true(device_mem_peak_tflops("NVIDIA GeForce RTX 4070") == 58.3);
    assert_true(device_mem_peak_tflops("NVIDIA GeForce RTX 4070 Ti") == 0.0);
    assert_true(device_mem_peak_tflops("Some Future GPU") == 0.0);
}

static void test_cuda_device_mem_reconciles_reservation(void **state) {
    /* the context exists (main made it); a second reservation must show in cudaMemGetInfo */
    DeviceMem m;
    Err err = {{0}};
    memset(&m, 0, sizeof(m));
    assert_int_equal(device_mem_sample(&m, DEVICE_MEM_AFTER_CONTEXT, &err), 0);
    assert_true(m.s[DEVICE_MEM_AFTER_CONTEXT].have_cuda);
    assert_true(m.name[0] != '\0');
    const size_t bytes = (size_t)64 << 20;
    Arena *a = arena_init_with(arena_device_ops(), bytes, 0, &err);
    assert_non_null(a);
    device_mem_set_reservation(&m, bytes);
    assert_int_equal(device_mem_sample(&m, DEVICE_MEM_AFTER_RESERVATION, &err), 0);
    size_t before = m.s[DEVICE_MEM_AFTER_CONTEXT].cuda_used_bytes;
    size_t after = m.s[DEVICE_MEM_AFTER_RESERVATION].cuda_used_bytes;
    /* the driver hands out memory in pages of up to 2 MiB: the delta is the reservation
     * rounded up to that (other processes on a shared GPU could add to it) */
    assert_true(after >= before + bytes);
    fprintf(stderr, "  reservation %zu bytes, cudaMemGetInfo delta %zu bytes\n", bytes,
            after - before);
    assert_int_equal(device_mem_sample(&m, DEVICE_MEM_NOW, &err), 0);
    char text[8192];
    device_mem_report_text(&m, a, text, sizeof text);
    assert_non_null(strstr(text, "context + libraries"));
    assert_non_null(strstr(text, "arena reservation"));
    assert_non_null(strstr(text, "unaccounted"));
    arena_free(a);
    device_mem_close();
}

/* ------------------------------------------------------------------------------------- */
/* plan == measured on the device                                                        */

static GptConfig small_config(int64_t L, int64_t NH, int64_t C, int64_t maxT, int64_t V, int64_t Vp,
                              int bias, int gelu, int recompute, int64_t chunk) {
    GptConfig c = {0};
    c.n_layer = L;
    c.n_head = NH;
    c.channels = C;
    c.max_seq_len = maxT;
    c.vocab_size = V;
    c.padded_vocab_size = Vp;
    c.bias = bias;
    c.gelu = gelu;
    c.recompute = recompute;
    c.loss_chunk = chunk;
    c.bf16 = X16 == ARENA_DTYPE_BF16;
    return c;
}

/* The plan of one training step (a plan arena, no memory) against the same step run on a
 * device arena sized to the plan's high-water mark: every category's peak, the at-peak
 * breakdown and the peak's tensors, to the byte. */
static void device_plan_vs_measured(const GptConfig *c, int64_t B, int64_t T, int64_t accum) {
    Err err = {{0}};
    GptPlan *plan = NULL;
    assert_int_equal(
        gpt_plan(
            c, GPT_DEVICE_CUDA,
            &(GptPlanArgs){
                .phase = GPT_PLAN_TRAIN, .B = B, .T = T, .grad_accum = accum, .limit_bytes = 0},
            &plan, &err),
        0);
    ArenaStats ps = arena_stats(plan->arena);
    Arena *a = arena_init_with(arena_device_ops(), ps.high_water_bytes, 0, &err);
    assert_non_null(a);
    Gpt g;
    assert_int_equal(gpt_build(&g, c, GPT_DEVICE_CUDA, a, B, T, &err), 0);
    if (g.ws_backend)
        gpt_cuda_workspace_set(g.ws_backend->data, g.ws_backend->nbytes);
    gpt_init_weights(&g, 5);
    int32_t *x = malloc((size_t)(B * T) * sizeof(int32_t));
    int32_t *y = malloc((size_t)(B * T) * sizeof(int32_t));
    assert_non_null(x);
    assert_non_null(y);
    Rng r;
    rng_init(&r, 6);
    for (int64_t i = 0; i < B * T; i++) {
        x[i] = (int32_t)rng_below(&r, (uint64_t)c->vocab_size);
        y[i] = (int32_t)rng_below(&r, (uint64_t)c->vocab_size);
    }
    assert_int_equal(
        gpt_plan_steps(&g,
                       &(GptPlanArgs){.phase = GPT_PLAN_TRAIN, .B = B, .T = T, .grad_accum = accum},
                       x, y, &err),
        0);
    cuda_ok();
    ArenaStats ms = arena_stats(a);
    for (int k = 0; k < ARENA_CAT_COUNT; k++) {
        assert_int_equal(ps.cat_peak_bytes[k], ms.cat_peak_bytes[k]);
        assert_int_equal(ps.at_peak_bytes[k], ms.at_peak_bytes[k]);
        assert_int_equal(ps.cat_used_bytes[k], ms.cat_used_bytes[k]);
    }
    assert_int_equal(ps.peak_used_bytes, ms.peak_used_bytes);
    assert_int_equal(ps.high_water_bytes, ms.high_water_bytes);
    assert_int_equal(ps.n_allocs, ms.n_allocs);
    int64_t np = 0, nm = 0;
    const ArenaPeakTensor *pp = arena_peak_tensors(plan->arena, &np);
    const ArenaPeakTensor *mp = arena_peak_tensors(a, &nm);
    assert_int_equal(np, nm);
    for (int64_t i = 0; i < np; i++) {
        assert_string_equal(pp[i].name, mp[i].name);
        assert_int_equal(pp[i].offset, mp[i].offset);
        assert_int_equal(pp[i].bytes, mp[i].bytes);
    }
    gpt_cuda_workspace_set(NULL, 0);
    gpt_free(&g);
    assert_int_equal(arena_stats(a).used_bytes, 0);
    arena_free(a);
    gpt_plan_free(plan);
    free(x);
    free(y);
}

static void test_cuda_plan_equals_measured(void **state) {
    struct {
        int64_t L, NH, C, maxT, V, Vp, B, T, chunk, accum;
        int bias;
    } cases[] = {
        {2, 2, 16, 8, 32, 32, 2, 8, 0, 1, 1},
        {3, 3, 24, 11, 37, 48, 3, 7, 5, 2, 0}, /* odd sizes, T < block, V < Vp, ragged chunks */
        {1, 1, 8, 5, 11, 11, 1, 5, 1, 1, 1},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        for (int mode = GPT_RECOMPUTE_NONE; mode <= GPT_RECOMPUTE_FULL; mode++) {
            GptConfig c =
                small_config(cases[k].L, cases[k].NH, cases[k].C, cases[k].maxT, cases[k].V,
                             cases[k].Vp, cases[k].bias, (int)k % 2, mode, cases[k].chunk);
            device_plan_vs_measured(&c, cases[k].B, cases[k].T, cases[k].accum);
        }
}

/* ------------------------------------------------------------------------------------- */
/* loss scaling                                                                          */

/* An f16 gradient that overflowed (inf) makes the update's norm non-finite and the update a
 * no-op: params, master weights and both moments keep their bytes (the caller then halves
 * the scale, train/cmd_train.c). The next clean step updates. */
static void test_cuda_loss_scaling_skips_inf_step(void **state) {
    const int64_t B = 2, T = 8;
    GptConfig c = small_config(2, 2, 16, 8, 32, 32, 1, 0, GPT_RECOMPUTE_NONE, 0);
    Err err = {{0}};
    Gpt g;
    assert_int_equal(gpt_build(&g, &c, GPT_DEVICE_CUDA, dev, B, T, &err), 0);
    if (g.ws_backend)
        gpt_cuda_workspace_set(g.ws_backend->data, g.ws_backend->nbytes);
    gpt_init_weights(&g, 11);
    int32_t x[16], y[16];
    for (int i = 0; i < B * T; i++)
        x[i] = (int32_t)((i * 5) % 32), y[i] = (int32_t)((i * 7 + 1) % 32);
    const float scale = 1024.0f;
    /* snapshot of every optimizer-visible tensor, as raw bytes */
    GptParam *p = &g.params[3];
    Tensor *watch[4] = {p->param, p->master, p->m, p->v};
    unsigned char *before[4], *after[4];
    for (int step = 0; step < 2; step++) {
        gpt_set_loss_scale(&g, scale);
        assert_int_equal(gpt_zero_grad(&g), 0);
        float loss = 0.0f;
        assert_int_equal(gpt_forward(&g, x, y, B, T, 1, &loss, &err), 0);
        assert_int_equal(gpt_backward(&g, &err), 0);
        if (step == 0) { /* the overflow: one element of one 16-bit gradient is +inf */
            const uint16_t inf16 = X16 == ARENA_DTYPE_BF16 ? 0x7f80 : 0x7c00;
            g.backend->copy_from_host((char *)p->grad->data + 2 * sizeof(uint16_t), &inf16,
                                      sizeof inf16, g.stream);
        }
        for (int k = 0; k < 4; k++) {
            assert_non_null(watch[k]);
            before[k] = malloc(watch[k]->nbytes);
            assert_non_null(before[k]);
            g.backend->copy_to_host(before[k], watch[k]->data, watch[k]->nbytes, g.stream);
        }
        float norm = 0.0f;
        assert_int_equal(
            gpt_update(&g, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, step + 1, scale, &norm, &err), 0);
        cuda_ok();
        int changed = 0;
        for (int k = 0; k < 4; k++) {
            after[k] = malloc(watch[k]->nbytes);
            assert_non_null(after[k]);
            g.backend->copy_to_host(after[k], watch[k]->data, watch[k]->nbytes, g.stream);
            changed += memcmp(before[k], after[k], watch[k]->nbytes) != 0;
            free(before[k]);
            free(after[k]);
        }
        if (step == 0) {
            assert_false(isfinite(norm)); /* the caller's signal to skip and halve */
            assert_int_equal(changed, 0);
        } else {
            assert_true(isfinite(norm));
            assert_int_equal(changed, 4);
        }
    }
    gpt_cuda_workspace_set(NULL, 0);
    gpt_free(&g);
}

/* ------------------------------------------------------------------------------------- */
/* attention backward's shared memory (run last: the refusal is a sticky backend error)   */

/* attention_dscores_kernel keeps T + HS floats of dynamic shared memory per row next to its
 * static `red` (32 floats); the launcher's limit once ignored the static part, so a sequence
 * that fits by itself overflowed the 48 KiB and the launch failed on the device. The longest
 * sequence is now the limit less both, and a longer one is refused before any work. */
static void test_cuda_attention_shared_memory_limit(void **state) {
    const int64_t HS = 64;
    /* 48 KiB per block (every card of the GPU table, without opt-in), less 128 bytes of
     * static shared memory, in floats, less HS */
    const int64_t expect = (49152 - 32 * 4) / 4 - HS;
    assert_int_equal(gpt_cuda_attention_max_seq_len(HS), expect);
    cuda_ok();
    /* one past the limit: refused with an error naming it; the buffers are never touched */
    Tensor *buf = dalloc(X16, 64, "tiny");
    const int64_t T = expect + 1;
    cu->attention[GPT_ATTENTION_NAIVE].backward(buf->data, buf->data, NULL, buf->data, NULL,
                                                buf->data, 1, T, HS, 1, NULL);
    char msg[1200];
    assert_int_equal(gpt_cuda_last_error(msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "shared memory"));
    assert_non_null(strstr(msg, "cuda_attention_backward"));
}

/* ------------------------------------------------------------------------------------- */

int main(void) {
    cu = gpt_backend_cuda();
    if (!cu) {
        fprintf(stderr, "test_cuda_backend: no usable CUDA device; make test-gpu needs a GPU\n");
        return 1;
    }
    cpu = gpt_backend_cpu();
    Err err = {{0}};
    dev = arena_init_with(arena_device_ops(), DEV_ARENA_BYTES, 0, &err);
    if (!dev) {
        fprintf(stderr, "test_cuda_backend: device arena: %s\n", err.msg);
        return 1;
    }
    /* TEST_FILTER=pattern runs only the tests whose names match (cmocka's * wildcard) */
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    /* the tests of the storage type's kernels and model, once per type */
    const struct CMUnitTest typed[] = {
        cmocka_unit_test_teardown(test_cuda_encoder_forward_backward, teardown_each),
        cmocka_unit_test_teardown(test_cuda_layernorm_forward_backward, teardown_each),
        cmocka_unit_test_teardown(test_cuda_matmul_odd_sizes, teardown_each),
        cmocka_unit_test_teardown(test_cuda_matmul_tensor_core_sizes, teardown_each),
        cmocka_unit_test_teardown(test_cuda_attention_odd_sizes, teardown_each),
        cmocka_unit_test_teardown(test_cuda_attention_decode, teardown_each),
        cmocka_unit_test_teardown(test_cuda_flash_attention_odd_sizes, teardown_each),
        cmocka_unit_test_teardown(test_cuda_flash_attention_tensor_cores, teardown_each),
        cmocka_unit_test_teardown(test_cuda_cudnn_attention_or_fallback, teardown_each),
        cmocka_unit_test_teardown(test_cuda_gelu_forward_backward, teardown_each),
        cmocka_unit_test_teardown(test_cuda_crossentropy_padded, teardown_each),
        cmocka_unit_test_teardown(test_cuda_reductions, teardown_each),
        cmocka_unit_test_teardown(test_cuda_reductions_multiblock, teardown_each),
        cmocka_unit_test_teardown(test_cuda_encoder_backward_sorted, teardown_each),
        cmocka_unit_test_teardown(test_cuda_adamw_master, teardown_each),
        cmocka_unit_test_teardown(test_cuda_optim_multi, teardown_each),
        cmocka_unit_test_teardown(test_cuda_model_bias_tanh_odd_vocab, teardown_each),
        cmocka_unit_test_teardown(test_cuda_model_nobias_erf, teardown_each),
        cmocka_unit_test_teardown(test_cuda_model_flash, teardown_each),
        cmocka_unit_test_teardown(test_cuda_model_flash_hs64, teardown_each),
        cmocka_unit_test_teardown(test_cuda_model_grad_f32, teardown_each),
        cmocka_unit_test_teardown(test_cuda_plan_equals_measured, teardown_each),
        cmocka_unit_test_teardown(test_cuda_loss_scaling_skips_inf_step, teardown_each),
    };
    const struct CMUnitTest untyped[] = {
        cmocka_unit_test(test_cuda_device_mem_proc_unknown),
        cmocka_unit_test(test_cuda_device_mem_peak_table),
        cmocka_unit_test(test_cuda_device_mem_reconciles_reservation),
        cmocka_unit_test_teardown(test_cuda_attention_shared_memory_limit, teardown_each),
    };
    int rc = cmocka_run_group_tests_name("float16", typed, NULL, NULL);
    cu = gpt_backend_cuda_dtypes(1, 0);
    assert_non_null(cu);
    X16 = ARENA_DTYPE_BF16;
    g_r16 = BF16_ROUNDING_RATIO;
    rc |= cmocka_run_group_tests_name("bfloat16", typed, NULL, NULL);
    /* last: the shared-memory test leaves its (sticky) device error behind */
    rc |= cmocka_run_group_tests_name("device", untyped, NULL, NULL);
    arena_free(dev);
    return rc;
}
