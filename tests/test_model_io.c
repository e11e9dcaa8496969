/* test_model_io.c: llm.c model files: write -> read gives the same weights bit for bit (with
 * and without bias, V < Vp), the header reader fills GptConfig, writes are atomic (no temp
 * file left), and every bad file is an error with a message, never a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../alloc/arena.h"
#include "../model/gpt.h"
#include "../model/model_io.h"
#include "test_util.h"

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
    patch_header(e, path, 1, 5); /* llm.c bf16 */
    expect_bad(path, "version 5", 0);
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_io_round_trip_bias),
        cmocka_unit_test(test_model_io_round_trip_nobias),
        cmocka_unit_test(test_model_io_round_trip_padded_vocab),
        cmocka_unit_test(test_model_io_writes_master),
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
