/* test_model_io.c: llm.c model files: write -> read gives the same weights bit for bit (with
 * and without bias, V < Vp; fp32 version 3, and version 5 on bf16 values), the header reader
 * fills GptConfig, writes are atomic (no temp file left), llm.c's bf16 file made by PyTorch
 * (scripts/make_fixture.py's llmc_bf16_model.bin) loads as its fp32 values rounded, and every
 * bad file is an error with a message, never a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../alloc/arena.h"
#include "../model/gpt.h"
#include "../model/half.h"
#include "../model/model_io.h"
#include "test_util.h"

/* bf16 keeps 8 significant bits (7 stored): rounding to nearest moves a value by at most half
 * a unit in its last place, 2^-8 of the value (normal values; the fixture has no subnormals) */
#define BF16_ROUND_RTOL 0x1p-8

typedef struct Built {
    Arena *arena;
    Gpt g;
} Built;

/* the tiny shape these tests use (2 layers, 2 heads, C 12, maxT 8) */
static GptConfig tiny_config(int bias, int64_t V, int64_t Vp) {
    return test_gpt_config(2, 2, 12, 8, V, Vp, bias, GPT_GELU_TANH, GPT_RECOMPUTE_NONE);
}

static void built_init(Built *b, const GptConfig *c, uint64_t seed) {
    b->arena = test_model_build(&b->g, c, 2, c->max_seq_len, seed);
}

static void built_free(Built *b) { test_model_free(&b->g, b->arena); }

/* Gives every parameter distinct non-trivial values (biases included), so a round trip that
 * swapped, dropped or zeroed a tensor fails. */
static void fill_distinct(Gpt *g) {
    for (int i = 0; i < g->n_params; i++) {
        GptParam *p = &g->params[i];
        float *buf = malloc((size_t)p->numel * sizeof(float));
        for (int64_t j = 0; j < p->numel; j++)
            buf[j] = (float)(0.001 * (double)(i + 1) + 1e-5 * (double)j);
        gpt_param_write_f32(g, p, buf);
        free(buf);
    }
}

static void assert_same_weights(Gpt *a, Gpt *b) {
    assert_int_equal(a->n_params, b->n_params);
    for (int i = 0; i < a->n_params; i++) {
        GptParam *pa = &a->params[i], *pb = &b->params[i];
        assert_int_equal(pa->kind, pb->kind);
        assert_int_equal(pa->numel, pb->numel);
        float *x = malloc((size_t)pa->numel * sizeof(float));
        float *y = malloc((size_t)pa->numel * sizeof(float));
        gpt_param_read_f32(a, pa, x);
        gpt_param_read_f32(b, pb, y);
        /* exact: the file stores fp32 as is */
        assert_memory_equal(x, y, (size_t)pa->numel * sizeof(float));
        free(x);
        free(y);
    }
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void round_trip(int bias, int64_t V, int64_t Vp) {
    char dir[512], path[600];
    test_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/model.bin", dir);
    GptConfig c = tiny_config(bias, V, Vp);
    Built a, b;
    built_init(&a, &c, 1);
    fill_distinct(&a.g);
    Err err = {{0}};
    if (model_file_write(&a.g, path, &err))
        fail_msg("write: %s", err.msg);
    assert_int_equal(count_entries(dir), 1); /* the temp file was renamed, none left */

    ModelFileHeader h;
    if (model_file_read_header(path, &h, &err))
        fail_msg("header: %s", err.msg);
    size_t want;
    assert_int_equal(model_file_bytes(&h, &want), 0);
    GptParamCounts pc;
    gpt_param_counts(&c, &pc);
    if (bias) /* every value is in the file: the counts agree */
        assert_int_equal(want, 1024 + 4 * (size_t)pc.total);
    else
        assert_true(want > 1024 + 4 * (size_t)pc.total);

    GptConfig c2 = {0};
    c2.bias = bias;
    c2.gelu = 1;
    if (gpt_config_from_model_file(path, &c2, &err))
        fail_msg("config: %s", err.msg);
    assert_int_equal(c2.max_seq_len, c.max_seq_len);
    assert_int_equal(c2.vocab_size, V);
    assert_int_equal(c2.padded_vocab_size, Vp);
    assert_int_equal(c2.n_layer, c.n_layer);
    assert_int_equal(c2.n_head, c.n_head);
    assert_int_equal(c2.channels, c.channels);
    assert_int_equal(c2.bias, bias); /* untouched */
    assert_int_equal(c2.gelu, 1);    /* untouched */

    built_init(&b, &c2, 2); /* different seed: reading must overwrite everything */
    if (model_file_read(&b.g, path, &err))
        fail_msg("read: %s", err.msg);
    assert_same_weights(&a.g, &b.g);

    /* writing over an existing file replaces it */
    if (model_file_write(&b.g, path, &err))
        fail_msg("rewrite: %s", err.msg);
    assert_int_equal(count_entries(dir), 1);
    built_free(&b);
    built_free(&a);
    test_rmtree(dir);
}

static void test_model_io_round_trip_bias(void **state) {
    (void)state;
    round_trip(1, 40, 40);
}
static void test_model_io_round_trip_nobias(void **state) {
    (void)state;
    round_trip(0, 40, 40);
}
static void test_model_io_round_trip_padded_vocab(void **state) {
    (void)state;
    round_trip(0, 37, 48);
}

/* --- bad files ------------------------------------------------------------------------- */

typedef struct BadEnv {
    char dir[512];
    char good[600];      /* a valid bias-free file (all biases zero) */
    char bias_file[600]; /* a valid file from a bias model (non-zero biases) */
    size_t good_bytes;
} BadEnv;

static unsigned char *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(*n + 64);
    assert_int_equal(fread(p, 1, *n, f), *n);
    fclose(f);
    return p;
}

static int bad_setup(void **state) {
    BadEnv *e = calloc(1, sizeof(BadEnv));
    test_tmpdir(e->dir, sizeof(e->dir));
    snprintf(e->good, sizeof(e->good), "%s/good.bin", e->dir);
    snprintf(e->bias_file, sizeof(e->bias_file), "%s/bias.bin", e->dir);
    Err err = {{0}};
    GptConfig c = tiny_config(0, 40, 40);
    Built b;
    built_init(&b, &c, 3);
    if (model_file_write(&b.g, e->good, &err))
        fail_msg("write: %s", err.msg);
    built_free(&b);
    c.bias = 1;
    built_init(&b, &c, 3);
    fill_distinct(&b.g);
    if (model_file_write(&b.g, e->bias_file, &err))
        fail_msg("write: %s", err.msg);
    built_free(&b);
    size_t n;
    free(read_bytes(e->good, &n));
    e->good_bytes = n;
    *state = e;
    return 0;
}

static int bad_teardown(void **state) {
    BadEnv *e = *state;
    test_rmtree(e->dir);
    free(e);
    return 0;
}

/* Reads path both ways (header only, and into a bias-free model of the good file's shape)
 * and expects both to fail with a message containing want (the header-only read is skipped
 * when header_ok: the problem is only visible against a model). */
static void expect_bad(const char *path, const char *want, int header_ok) {
    Err err = {{0}};
    GptConfig c = tiny_config(0, 40, 40);
    if (!header_ok) {
        GptConfig tmp = c;
        assert_int_equal(gpt_config_from_model_file(path, &tmp, &err), -1);
        if (!strstr(err.msg, want))
            fail_msg("header error '%s' lacks '%s'", err.msg, want);
        assert_non_null(strstr(err.msg, path));
    }
    Built b;
    built_init(&b, &c, 4);
    memset(&err, 0, sizeof(err));
    assert_int_equal(model_file_read(&b.g, path, &err), -1);
    if (!strstr(err.msg, want))
        fail_msg("read error '%s' lacks '%s'", err.msg, want);
    assert_non_null(strstr(err.msg, path));
    built_free(&b);
}

static void patch_header(BadEnv *e, const char *name, int index, int32_t value) {
    size_t n;
    unsigned char *p = read_bytes(e->good, &n);
    memcpy(p + 4 * index, &value, 4);
    test_write_file(name, p, n);
    free(p);
}

static void test_model_io_missing_file(void **state) {
    BadEnv *e = *state;
    char path[700];
    snprintf(path, sizeof(path), "%s/no_such.bin", e->dir);
    expect_bad(path, "cannot open", 0);
}

static void test_model_io_bad_magic(void **state) {
    BadEnv *e = *state;
    char path[700];
    snprintf(path, sizeof(path), "%s/magic.bin", e->dir);
    patch_header(e, path, 0, 20240520); /* a token shard's magic */
    expect_bad(path, "magic 20240520", 0);
}

static void test_model_io_bad_version(void **state) {
    BadEnv *e = *state;
    char path[700];
    snprintf(path, sizeof(path), "%s/version.bin", e->dir);
    patch_header(e, path, 1, 4); /* neither fp32 (3) nor bf16 (5) */
    expect_bad(path, "version 4, expected 3 (fp32) or 5 (bf16)", 0);
}

static void test_model_io_short_header(void **state) {
    BadEnv *e = *state;
    char path[700];
    snprintf(path, sizeof(path), "%s/short.bin", e->dir);
    size_t n;
    unsigned char *p = read_bytes(e->good, &n);
    test_write_file(path, p, 100);
    free(p);
    expect_bad(path, "shorter than", 0);
}

static void test_model_io_truncated(void **state) {
    BadEnv *e = *state;
    char path[700], want[64];
    snprintf(path, sizeof(path), "%s/trunc.bin", e->dir);
    size_t n;
    unsigned char *p = read_bytes(e->good, &n);
    test_write_file(path, p, n - 4);
    free(p);
    snprintf(want, sizeof(want), "%zu bytes", e->good_bytes - 4);
    expect_bad(path, want, 0);
    expect_bad(path, "truncated", 0);
}

static void test_model_io_trailing_bytes(void **state) {
    BadEnv *e = *state;
    char path[700];
    snprintf(path, sizeof(path), "%s/trail.bin", e->dir);
    size_t n;
    unsigned char *p = read_bytes(e->good, &n);
    memset(p + n, 0, 8);
    test_write_file(path, p, n + 8);
    free(p);
    expect_bad(path, "trailing bytes", 0);
}

static void test_model_io_bad_sizes(void **state) {
    BadEnv *e = *state;
    char path[700];
    snprintf(path, sizeof(path), "%s/sizes.bin", e->dir);
    patch_header(e, path, 5, 5); /* NH 5 does not divide C 12 */
    expect_bad(path, "not divisible", 0);
    patch_header(e, path, 7, 39); /* Vp 39 < V 40 */
    expect_bad(path, "smaller than V", 0);
    patch_header(e, path, 4, 0); /* L 0 */
    expect_bad(path, "non-positive", 0);
    patch_header(e, path, 6, 1 << 20); /* larger C: the file is far too short for it */
    expect_bad(path, "needs", 0);
    patch_header(e, path, 6, 1 << 30); /* C so large that the byte count overflows */
    expect_bad(path, "overflow", 0);
}

static void test_model_io_shape_mismatch(void **state) {
    BadEnv *e = *state;
    /* a valid file of another shape, read into the 2-layer model */
    char path[700];
    snprintf(path, sizeof(path), "%s/other.bin", e->dir);
    GptConfig c = tiny_config(0, 40, 40);
    c.n_layer = 1;
    Built b;
    built_init(&b, &c, 5);
    Err err = {{0}};
    if (model_file_write(&b.g, path, &err))
        fail_msg("write: %s", err.msg);
    built_free(&b);
    expect_bad(path, "L 1", 1);
    expect_bad(path, "differs", 1);
}

static void test_model_io_bias_into_nobias(void **state) {
    BadEnv *e = *state;
    expect_bad(e->bias_file, "bias=False", 1);
    /* and the zero-bias file loads into a bias model (the biases read as zeros) */
    GptConfig c = tiny_config(1, 40, 40);
    Built b;
    built_init(&b, &c, 6);
    fill_distinct(&b.g);
    Err err = {{0}};
    if (model_file_read(&b.g, e->good, &err))
        fail_msg("read: %s", err.msg);
    GptParam *lnfb = gpt_param(&b.g, GPT_PARAM_LNFB, 0);
    assert_non_null(lnfb);
    float v[12];
    gpt_param_read_f32(&b.g, lnfb, v);
    float zeros[12] = {0};
    assert_memory_equal(v, zeros, sizeof(v));
    built_free(&b);
}

/* Where the layout keeps an f32 master copy (CUDA: the params are its f16 rounding), the
 * file is written from the master, not from the params. A CPU model given master tensors
 * whose values differ from its params stands in for it. */
static void test_model_io_writes_master(void **state) {
    (void)state;
    char dir[512], path[600];
    test_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/model.bin", dir);
    GptConfig c = tiny_config(1, 40, 48);
    Built a, b;
    built_init(&a, &c, 1);
    fill_distinct(&a.g);
    for (int i = 0; i < a.g.n_params; i++) {
        GptParam *p = &a.g.params[i];
        int64_t shape[1] = {p->numel};
        p->master = arena_try_alloc(a.arena, ARENA_CAT_OPTIMIZER, ARENA_DTYPE_F32, 1, shape,
                                    "master.test.%d", i);
        assert_non_null(p->master);
        float *m = p->master->data;
        for (int64_t j = 0; j < p->numel; j++)
            m[j] = (float)(0.5 + 0.01 * (double)i - 1e-6 * (double)j);
    }
    Err err = {{0}};
    if (model_file_write(&a.g, path, &err))
        fail_msg("write: %s", err.msg);
    built_init(&b, &c, 2);
    if (model_file_read(&b.g, path, &err))
        fail_msg("read: %s", err.msg);
    for (int i = 0; i < b.g.n_params; i++) {
        GptParam *p = &b.g.params[i];
        float *x = malloc((size_t)p->numel * sizeof(float));
        gpt_param_read_f32(&b.g, p, x);
        /* exact: the file stores the master's fp32 values as they are */
        assert_memory_equal(x, a.g.params[i].master->data, (size_t)p->numel * sizeof(float));
        free(x);
    }
    for (int i = a.g.n_params - 1; i >= 0; i--) {
        arena_release(a.arena, a.g.params[i].master);
        a.g.params[i].master = NULL;
    }
    built_free(&b);
    built_free(&a);
}

static void test_model_io_write_unwritable(void **state) {
    BadEnv *e = *state;
    char path[700];
    snprintf(path, sizeof(path), "%s/no_such_dir/model.bin", e->dir);
    GptConfig c = tiny_config(0, 40, 40);
    Built b;
    built_init(&b, &c, 7);
    Err err = {{0}};
    assert_int_equal(model_file_write(&b.g, path, &err), -1);
    assert_non_null(strstr(err.msg, path));
    built_free(&b);
}

/* --- version 5 (bf16) ---------------------------------------------------------------- */

/* Rounds every parameter of g to bf16 in place (the values a bf16 file can hold). */
static void round_to_bf16(Gpt *g) {
    for (int i = 0; i < g->n_params; i++) {
        GptParam *p = &g->params[i];
        float *buf = malloc((size_t)p->numel * sizeof(float));
        gpt_param_read_f32(g, p, buf);
        for (int64_t j = 0; j < p->numel; j++)
            buf[j] = half_bf16_to_f32(half_f32_to_bf16(buf[j]));
        gpt_param_write_f32(g, p, buf);
        free(buf);
    }
}

/* Write version 5, read it back: the bf16 values bit for bit; the header says version 5 and
 * the file is 1024 + 2 bytes a value. */
static void test_model_io_bf16_round_trip(void **state) {
    (void)state;
    char dir[512], path[600];
    test_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/model.bin", dir);
    GptConfig c = tiny_config(1, 37, 48);
    Built a, b;
    built_init(&a, &c, 1);
    fill_distinct(&a.g);
    round_to_bf16(&a.g);
    Err err = {{0}};
    if (model_file_write_as(&a.g, path, MODEL_FILE_VERSION_BF16, &err))
        fail_msg("write: %s", err.msg);
    assert_int_equal(count_entries(dir), 1); /* the temp file was renamed, none left */
    ModelFileHeader h;
    if (model_file_read_header(path, &h, &err))
        fail_msg("header: %s", err.msg);
    assert_int_equal(h.version, MODEL_FILE_VERSION_BF16);
    size_t n, want;
    free(test_read_file(path, &n));
    assert_int_equal(model_file_bytes(&h, &want), 0);
    GptParamCounts pc;
    gpt_param_counts(&c, &pc);
    assert_int_equal(n, want);
    assert_int_equal(want, 1024 + 2 * (size_t)pc.total); /* bias: every value is a param */
    GptConfig c2 = tiny_config(1, 1, 1);
    if (gpt_config_from_model_file(path, &c2, &err))
        fail_msg("config: %s", err.msg);
    assert_true(c2.vocab_size == 37 && c2.padded_vocab_size == 48 && c2.channels == 12);
    built_init(&b, &c2, 2);
    if (model_file_read(&b.g, path, &err))
        fail_msg("read: %s", err.msg);
    assert_same_weights(&a.g, &b.g);
    built_free(&b);
    built_free(&a);
    test_rmtree(dir);
}

/* Version 5 of f32 weights that bf16 cannot hold: each read back as its own rounding (ties to
 * even), a NaN as a NaN, infinities as themselves. */
static void test_model_io_bf16_rounds(void **state) {
    (void)state;
    char dir[512], path[600];
    test_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/model.bin", dir);
    GptConfig c = tiny_config(0, 40, 40);
    Built a, b;
    built_init(&a, &c, 1);
    GptParam *lnfw = gpt_param(&a.g, GPT_PARAM_LNFW, 0);
    const float in[12] = {1.0f + 0x1p-8f,
                          1.0f + 3 * 0x1p-8f,
                          1.0f + 0x1p-8f + 0x1p-20f,
                          -(1.0f + 0x1p-8f),
                          NAN,
                          INFINITY,
                          -INFINITY,
                          0x1p-126f,
                          3.4e38f,
                          0.1f,
                          -0.0f,
                          65504.0f};
    const float out[12] = {1.0f,     1.0f + 4 * 0x1p-8f, 1.0f + 0x1p-7f, -1.0f,
                           NAN,      INFINITY,           -INFINITY,      0x1p-126f,
                           INFINITY, 0x1.9ap-4f,         -0.0f,          65536.0f};
    gpt_param_write_f32(&a.g, lnfw, in);
    Err err = {{0}};
    if (model_file_write_as(&a.g, path, MODEL_FILE_VERSION_BF16, &err))
        fail_msg("write: %s", err.msg);
    built_init(&b, &c, 2);
    if (model_file_read(&b.g, path, &err))
        fail_msg("read: %s", err.msg);
    float got[12];
    gpt_param_read_f32(&b.g, gpt_param(&b.g, GPT_PARAM_LNFW, 0), got);
    for (int i = 0; i < 12; i++) {
        if (isnan(out[i]) ? !isnan(got[i]) : memcmp(&got[i], &out[i], sizeof(float)) != 0)
            fail_msg("lnfw[%d]: %a written as bf16 read back as %a, expected %a", i, (double)in[i],
                     (double)got[i], (double)out[i]);
    }
    built_free(&b);
    built_free(&a);
    test_rmtree(dir);
}

/* llm.c's bf16 file written by PyTorch (make_fixture.py: the hf_bias_tanh weights rounded with
 * torch's bf16 conversion) reads as the generator's fp32 weights (hf_bias_tanh_model.bin)
 * within bf16's rounding, and bit for bit as half_f32_to_bf16 rounds them. */
static void test_model_io_llmc_bf16_fixture(void **state) {
    (void)state;
    char p5[4096], p3[4096];
    snprintf(p5, sizeof p5, "%s/tests/fixtures/llmc_bf16_model.bin", test_root());
    snprintf(p3, sizeof p3, "%s/tests/fixtures/hf_bias_tanh_model.bin", test_root());
    Err err = {{0}};
    ModelFileHeader h;
    if (model_file_read_header(p5, &h, &err))
        fail_msg("header: %s", err.msg);
    assert_int_equal(h.version, MODEL_FILE_VERSION_BF16);
    GptConfig c = test_gpt_config(2, 3, 18, 16, 57, 64, 1, GPT_GELU_TANH, GPT_RECOMPUTE_NONE);
    Built b5, b3;
    built_init(&b5, &c, 1);
    built_init(&b3, &c, 2);
    if (model_file_read(&b5.g, p5, &err) || model_file_read(&b3.g, p3, &err))
        fail_msg("read: %s", err.msg);
    for (int i = 0; i < b5.g.n_params; i++) {
        GptParam *q = &b5.g.params[i];
        float *x = malloc((size_t)q->numel * sizeof(float));
        float *e = malloc((size_t)q->numel * sizeof(float));
        gpt_param_read_f32(&b5.g, q, x);
        gpt_param_read_f32(&b3.g, &b3.g.params[i], e);
        assert_allclose(x, e, (size_t)q->numel, 0.0, BF16_ROUND_RTOL);
        for (int64_t j = 0; j < q->numel; j++)
            if (x[j] != half_bf16_to_f32(half_f32_to_bf16(e[j])))
                fail_msg("param %d [%lld]: PyTorch's bf16 %a, ours %a (of %a)", i, (long long)j,
                         (double)x[j], (double)half_bf16_to_f32(half_f32_to_bf16(e[j])),
                         (double)e[j]);
        free(x);
        free(e);
    }
    built_free(&b3);
    built_free(&b5);
}

/* A version 5 file cut short, or with a version 3 header over bf16 data, is refused with the
 * file, the version and the size its header needs. */
static void test_model_io_bf16_wrong_size(void **state) {
    BadEnv *e = *state;
    char p5[700], path[700], want[160];
    snprintf(p5, sizeof(p5), "%s/v5.bin", e->dir);
    GptConfig c = tiny_config(0, 40, 40);
    Built b;
    built_init(&b, &c, 3);
    Err err = {{0}};
    if (model_file_write_as(&b.g, p5, MODEL_FILE_VERSION_BF16, &err))
        fail_msg("write: %s", err.msg);
    built_free(&b);
    size_t n;
    unsigned char *bytes = read_bytes(p5, &n);
    assert_int_equal(n, 1024 + (e->good_bytes - 1024) / 2); /* half the fp32 file's values */
    snprintf(path, sizeof(path), "%s/v5_trunc.bin", e->dir);
    test_write_file(path, bytes, n - 2);
    snprintf(want, sizeof(want), "%zu bytes, but its header (version 5, bf16;", n - 2);
    expect_bad(path, want, 0);
    snprintf(want, sizeof(want), "needs %zu bytes (truncated)", n);
    expect_bad(path, want, 0);
    int32_t v3 = MODEL_FILE_VERSION_FP32; /* bf16 data under an fp32 header */
    memcpy(bytes + 4, &v3, 4);
    snprintf(path, sizeof(path), "%s/v3_of_v5.bin", e->dir);
    test_write_file(path, bytes, n);
    snprintf(want, sizeof(want), "(version 3, fp32;");
    expect_bad(path, want, 0);
    snprintf(want, sizeof(want), "needs %zu bytes (truncated)", e->good_bytes);
    expect_bad(path, want, 0);
    free(bytes);
    built_init(&b, &c, 3);
    assert_int_equal(model_file_write_as(&b.g, p5, 4, &err), -1); /* no version 4 writer */
    assert_non_null(strstr(err.msg, "version 4"));
    built_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_io_round_trip_bias),
        cmocka_unit_test(test_model_io_round_trip_nobias),
        cmocka_unit_test(test_model_io_round_trip_padded_vocab),
        cmocka_unit_test(test_model_io_writes_master),
        cmocka_unit_test(test_model_io_bf16_round_trip),
        cmocka_unit_test(test_model_io_bf16_rounds),
        cmocka_unit_test(test_model_io_llmc_bf16_fixture),
        cmocka_unit_test_setup_teardown(test_model_io_bf16_wrong_size, bad_setup, bad_teardown),
        cmocka_unit_test_setup_teardown(test_model_io_missing_file, bad_setup, bad_teardown),
        cmocka_unit_test_setup_teardown(test_model_io_bad_magic, bad_setup, bad_teardown),
        cmocka_unit_test_setup_teardown(test_model_io_bad_version, bad_setup, bad_teardown),
        cmocka_unit_test_setup_teardown(test_model_io_short_header, bad_setup, bad_teardown),
        cmocka_unit_test_setup_teardown(test_model_io_truncated, bad_setup, bad_teardown),
        cmocka_unit_test_setup_teardown(test_model_io_trailing_bytes, bad_setup, bad_teardown),
        cmocka_unit_test_setup_teardown(test_model_io_bad_sizes, bad_setup, bad_teardown),
        cmocka_unit_test_setup_teardown(test_model_io_shape_mismatch, bad_setup, bad_teardown),
        cmocka_unit_test_setup_teardown(test_model_io_bias_into_nobias, bad_setup, bad_teardown),
        cmocka_unit_test_setup_teardown(test_model_io_write_unwritable, bad_setup, bad_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
