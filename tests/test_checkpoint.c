/* test_checkpoint.c: training state files: save -> load restores weights, m, v, progress and
 * the loader blob exactly; keep-last-K; an interrupted save (a leftover temp file) leaves the
 * previous checkpoint loadable; truncated, corrupted and mismatched files are refused with a
 * message naming the reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../train/checkpoint.h"
#include "test_util.h"

#define TB 2
#define TT 8

typedef struct Model {
    Arena *arena;
    Gpt g;
} Model;

static void model_make(Model *m, const GptConfig *c, uint64_t seed, int train_steps) {
    Err err;
    m->arena = test_model_build(&m->g, c, TB, TT, seed);
    int32_t in[TB * TT], tg[TB * TT];
    for (int i = 0; i < TB * TT; i++) {
        in[i] = (int32_t)((i * 7 + (int)seed) % c->vocab_size);
        tg[i] = (int32_t)((i * 5 + 3) % c->vocab_size);
    }
    for (int s = 0; s < train_steps; s++) {
        float loss, norm;
        gpt_zero_grad(&m->g);
        assert_int_equal(gpt_forward(&m->g, in, tg, TB, TT, 1, &loss, &err), 0);
        assert_int_equal(gpt_backward(&m->g, &err), 0);
        assert_int_equal(
            gpt_update(&m->g, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, s + 1, 1.0f, &norm, &err), 0);
    }
}

static int file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (int)st.st_size : -1;
}

static void test_checkpoint_round_trip(void **state) {
    (void)state;
    GptConfig c;
    c = test_gpt_config(2, 2, 12, TT, 37, 40, 1, GPT_GELU_TANH, GPT_RECOMPUTE_NONE);
    TrainConfig cfg;
    config_defaults(&cfg);
    Model a, b;
    model_make(&a, &c, 1, 3);
    model_make(&b, &c, 2, 0); /* different weights, empty optimizer state */
    CheckpointProgress p = {
        .iter = 3, .skipped = 1, .clean_steps = 2, .loss_scale = 1024.0f, .best_val_loss = 2.5f};
    unsigned char blob[100], blob2[100];
    for (int i = 0; i < 100; i++)
        blob[i] = (unsigned char)(i * 13);
    Err err;
    char path[1024];
    assert_int_equal(
        checkpoint_save(test_dir(), &cfg, &a.g, &p, blob, sizeof blob, 2, path, sizeof path, &err),
        0);
    CheckpointProgress q;
    if (checkpoint_load(path, &cfg, &b.g, &q, blob2, sizeof blob2, &err) != 0)
        print_error("%s\n", err.msg);
    assert_memory_equal(&p, &q, sizeof p);
    assert_memory_equal(blob, blob2, sizeof blob);
    for (int i = 0; i < a.g.n_params; i++) {
        const GptParam *x = &a.g.params[i], *y = &b.g.params[i];
        assert_memory_equal(x->param->data, y->param->data, x->param->nbytes);
        assert_memory_equal(x->m->data, y->m->data, x->m->nbytes);
        assert_memory_equal(x->v->data, y->v->data, x->v->nbytes);
    }
    test_model_free(&a.g, a.arena);
    test_model_free(&b.g, b.arena);
}

static void test_checkpoint_keep_last_and_interrupted_save(void **state) {
    (void)state;
    GptConfig c;
    c = test_gpt_config(2, 2, 12, TT, 37, 40, 1, GPT_GELU_TANH, GPT_RECOMPUTE_NONE);
    TrainConfig cfg;
    config_defaults(&cfg);
    Model a;
    model_make(&a, &c, 3, 1);
    Err err;
    char path[1024], latest[1024];
    for (int it = 10; it <= 40; it += 10) {
        CheckpointProgress p = {.iter = it, .loss_scale = 1.0f};
        assert_int_equal(
            checkpoint_save(test_dir(), &cfg, &a.g, &p, NULL, 0, 2, path, sizeof path, &err), 0);
    }
    char old[1100];
    snprintf(old, sizeof old, "%s/state_00000020.bin", test_dir());
    assert_int_equal(file_size(old), -1); /* beyond keep = 2: removed */
    assert_int_equal(checkpoint_find_latest(test_dir(), latest, sizeof latest, &err), 0);
    assert_non_null(strstr(latest, "state_00000040.bin"));

    /* a save killed mid-write leaves only its temp file: the newest complete one still loads */
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s/state_00000050.bin.tmp", test_dir());
    FILE *f = fopen(tmp, "wb");
    fwrite("AGPTSTAT partial", 1, 16, f);
    fclose(f);
    assert_int_equal(checkpoint_find_latest(test_dir(), latest, sizeof latest, &err), 0);
    assert_non_null(strstr(latest, "state_00000040.bin"));
    CheckpointProgress q;
    assert_int_equal(checkpoint_load(latest, &cfg, &a.g, &q, NULL, 0, &err), 0);
    assert_int_equal(q.iter, 40);
    unlink(tmp);
    test_model_free(&a.g, a.arena);
}

static void expect_refusal(const char *path, Gpt *g, size_t extra, const char *frag) {
    TrainConfig cfg;
    config_defaults(&cfg);
    CheckpointProgress q;
    unsigned char blob[64];
    Err err;
    err.msg[0] = 0;
    assert_int_equal(checkpoint_load(path, &cfg, g, &q, blob, extra, &err), -1);
    if (!strstr(err.msg, frag))
        print_error("message: %s\n", err.msg);
    assert_non_null(strstr(err.msg, frag));
}

static void test_checkpoint_refusals(void **state) {
    (void)state;
    GptConfig c;
    c = test_gpt_config(2, 2, 12, TT, 37, 40, 1, GPT_GELU_TANH, GPT_RECOMPUTE_NONE);
    TrainConfig cfg;
    config_defaults(&cfg);
    Model a;
    model_make(&a, &c, 4, 1);
    Err err;
    char path[1024];
    CheckpointProgress p = {.iter = 7, .loss_scale = 1.0f};
    unsigned char blob[64] = {0};
    assert_int_equal(
        checkpoint_save(test_dir(), &cfg, &a.g, &p, blob, sizeof blob, 5, path, sizeof path, &err),
        0);
    int n = file_size(path);
    unsigned char *data = malloc((size_t)n);
    FILE *f = fopen(path, "rb");
    assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);

    char bad[1100];
    snprintf(bad, sizeof bad, "%s/bad.bin", test_dir());
    /* truncated */
    f = fopen(bad, "wb");
    fwrite(data, 1, (size_t)n - 100, f);
    fclose(f);
    expect_refusal(bad, &a.g, sizeof blob, "truncated");
    /* one flipped byte in the weights */
    data[n / 2] ^= 0x40;
    f = fopen(bad, "wb");
    fwrite(data, 1, (size_t)n, f);
    fclose(f);
    expect_refusal(bad, &a.g, sizeof blob, "checksum");
    data[n / 2] ^= 0x40;
    /* not a checkpoint */
    f = fopen(bad, "wb");
    fwrite("GARBAGE!", 1, 8, f);
    fwrite(data + 8, 1, (size_t)n - 8, f);
    fclose(f);
    expect_refusal(bad, &a.g, sizeof blob, "bad magic");
    /* the loader blob size differs */
    expect_refusal(path, &a.g, 32, "loader state");
    /* a different model */
    GptConfig c2 = c;
    c2.channels = 16;
    Model b;
    model_make(&b, &c2, 5, 0);
    expect_refusal(path, &b.g, sizeof blob, "n_embd = 12, this run has 16");
    test_model_free(&b.g, b.arena);
    /* missing file */
    expect_refusal("/nonexistent/state.bin", &a.g, sizeof blob, "cannot open");
    free(data);
    test_model_free(&a.g, a.arena);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkpoint_round_trip),
        cmocka_unit_test(test_checkpoint_keep_last_and_interrupted_save),
        cmocka_unit_test(test_checkpoint_refusals),
    };
    return cmocka_run_group_tests(tests, test_dir_setup, test_dir_teardown);
}
