/* test_checkpoint.c: training state files: save -> load restores weights, m, v, progress and
 * the loader blob exactly; keep-last-K; an interrupted save (a leftover temp file) leaves the
 * previous checkpoint loadable; truncated, corrupted and mismatched files are refused with a
 * message naming the reason. The dtype a state records (its precision) and the resume
 * decision across dtypes: float16 <-> bfloat16 on CUDA converts, another device is refused
 * with what to do (the conversion itself runs on CUDA: the simulator's tests). */
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

/* --- the dtype a state records, and resuming in another one -------------------------- */

static const CheckpointPrecision PREC_CPU_F32 = {GPT_DEVICE_CPU, ARENA_DTYPE_F32, 0};
static const CheckpointPrecision PREC_CUDA_F16 = {GPT_DEVICE_CUDA, ARENA_DTYPE_F16, 1};
static const CheckpointPrecision PREC_CUDA_BF16 = {GPT_DEVICE_CUDA, ARENA_DTYPE_BF16, 1};

/* The header's precision fields (version 1's layout, checkpoint.c's CheckpointHeader: magic,
 * version, header_bytes, six int64 sizes, bias, gelu, then these) */
#define HDR_DEVICE_OFFSET 72
#define HDR_PARAM_DTYPE_OFFSET 76
#define HDR_HAS_MASTER_OFFSET 80

static uint64_t fnv1a(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* A state file saved on the CPU records float32; the same bytes with CUDA's fields (and the
 * checksum redone) read as float16 or bfloat16: the header has always named the dtype. */
static void test_checkpoint_records_dtype(void **state) {
    (void)state;
    GptConfig c = test_gpt_config(2, 2, 12, TT, 37, 40, 1, GPT_GELU_TANH, GPT_RECOMPUTE_NONE);
    TrainConfig cfg;
    config_defaults(&cfg);
    Model a;
    model_make(&a, &c, 6, 1);
    Err err;
    char path[1024], cuda[1100];
    CheckpointProgress p = {.iter = 3, .loss_scale = 1.0f};
    assert_int_equal(
        checkpoint_save(test_dir(), &cfg, &a.g, &p, NULL, 0, 5, path, sizeof path, &err), 0);
    CheckpointPrecision got, ours = checkpoint_precision_of(&a.g);
    assert_int_equal(checkpoint_read_precision(path, &got, &err), 0);
    assert_memory_equal(&got, &PREC_CPU_F32, sizeof got);
    assert_memory_equal(&ours, &PREC_CPU_F32, sizeof ours);
    assert_string_equal(checkpoint_dtype_name(&got), "float32");
    size_t n;
    unsigned char *data = (unsigned char *)test_read_file(path, &n);
    const CheckpointPrecision *as[2] = {&PREC_CUDA_F16, &PREC_CUDA_BF16};
    const char *names[2] = {"float16", "bfloat16"};
    snprintf(cuda, sizeof cuda, "%s/cuda_state.bin", test_dir());
    for (int k = 0; k < 2; k++) {
        memcpy(data + HDR_DEVICE_OFFSET, &as[k]->device, 4);
        memcpy(data + HDR_PARAM_DTYPE_OFFSET, &as[k]->param_dtype, 4);
        memcpy(data + HDR_HAS_MASTER_OFFSET, &as[k]->has_master, 4);
        uint64_t sum = fnv1a(data, n - 8);
        memcpy(data + n - 8, &sum, 8);
        test_write_file(cuda, data, n);
        assert_int_equal(checkpoint_read_precision(cuda, &got, &err), 0);
        assert_string_equal(checkpoint_dtype_name(&got), names[k]);
        /* a CUDA state on the CPU: refused, with the flags that resume it */
        char want[80];
        snprintf(want, sizeof want, "--device=cuda --dtype=%s", names[k]);
        expect_refusal(cuda, &a.g, 0, want);
        expect_refusal(cuda, &a.g, 0, "--init_from=<its out_dir>/model.bin");
    }
    free(data);
    test_model_free(&a.g, a.arena);
}

/* The decision for every pair of the three precisions, and for one no layout has. */
static void test_checkpoint_resume_decision(void **state) {
    (void)state;
    const CheckpointPrecision *all[3] = {&PREC_CPU_F32, &PREC_CUDA_F16, &PREC_CUDA_BF16};
    const int want[3][3] = {
        /* run:  cpu f32                 cuda f16                    cuda bf16 */
        {CHECKPOINT_RESUME_SAME, -1, -1},                        /* cpu f32 */
        {-1, CHECKPOINT_RESUME_SAME, CHECKPOINT_RESUME_CONVERT}, /* f16 */
        {-1, CHECKPOINT_RESUME_CONVERT, CHECKPOINT_RESUME_SAME}, /* bf16 */
    };
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            Err err;
            err.msg[0] = 0;
            int got = checkpoint_resume_precision("s.bin", all[i], all[j], &err);
            if (got != want[i][j])
                fail_msg("state %s, run %s: %d, expected %d (%s)", checkpoint_dtype_name(all[i]),
                         checkpoint_dtype_name(all[j]), got, want[i][j], err.msg);
            if (got < 0) { /* names the file, both dtypes, the device that resumes it */
                assert_non_null(strstr(err.msg, "s.bin"));
                assert_non_null(strstr(err.msg, checkpoint_dtype_name(all[i])));
                assert_non_null(strstr(err.msg, checkpoint_dtype_name(all[j])));
                assert_non_null(strstr(err.msg, i == 0 ? "--device=cpu --dtype=float32"
                                                       : "--device=cuda --dtype="));
            }
        }
    const CheckpointPrecision odd = {GPT_DEVICE_CUDA, ARENA_DTYPE_F32, 1}; /* no such layout */
    Err err;
    assert_int_equal(checkpoint_resume_precision("s.bin", &odd, &PREC_CUDA_BF16, &err), -1);
    assert_non_null(strstr(err.msg, "unknown precision"));
    assert_int_equal(checkpoint_resume_precision("s.bin", &PREC_CUDA_F16, &odd, &err), -1);
    assert_non_null(strstr(err.msg, "refusing to resume a different backend precision"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkpoint_round_trip),
        cmocka_unit_test(test_checkpoint_keep_last_and_interrupted_save),
        cmocka_unit_test(test_checkpoint_refusals),
        cmocka_unit_test(test_checkpoint_records_dtype),
        cmocka_unit_test(test_checkpoint_resume_decision),
    };
    return cmocka_run_group_tests(tests, test_dir_setup, test_dir_teardown);
}
