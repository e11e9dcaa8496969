/* cmd_eval.c: `arenagpt eval`: the deterministic loss of a model file on a token shard.
 *
 * The mean cross-entropy over the first eval_batches * batch_size windows of the shard,
 * taken in order with stride block_size: window i is tokens [i*T, i*T+T] (inputs the first T,
 * targets the T after the first), batch j holds windows j*B .. j*B+B-1. Every batch has B*T
 * tokens, so the mean of the batch means is the mean over all tokens. Printed on stdout as
 * `loss <value>` with 6 decimals (a short description goes to stderr). No randomness.
 *
 * The run's shape comes from run_setup (run_common.h): the file's header (maxT, V, L, NH, C,
 * Vp); bias, gelu, block_size and the data from the config, or, for a run directory, from its
 * stored config; block_size defaults to the file's maxT and may be shorter; the shard
 * defaults to <data_dir>/val.bin.
 * The shard (one file or a glob, llm.c format or nanoGPT's with data_format) is read by the
 * data loader's sequential windows. Memory: one arena, sized by its plan (gpt_plan's eval
 * phase): parameters, activations and workspace only, no gradients or optimizer state; its
 * peak bytes per category are printed on stderr at the end.
 *
 * Exit codes: 0 ok; 1 a model or data error (unreadable or malformed file, shard too short,
 * token >= V, arena refusal); 2 a usage error (no model given, a path that is not a model
 * file, block_size above the model's maxT). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../alloc/arena.h"
#include "../data/loader.h"
#include "../model/gpt.h"
#include "commands.h"
#include "config.h"
#include "init_from.h"
#include "run_common.h"
#include "test_hooks.h"

#define EVAL_EXIT_OK 0
#define EVAL_EXIT_DATA 1

/* The model on an arena sized by its plan (gpt_plan's eval phase: an inference build, one
 * forward with the loss head), built for inference and loaded from the model file. */
static int eval_load(const RunSetup *rs, Gpt *g, Arena **arena_out, Err *err) {
    GptPlanArgs args = {.phase = GPT_PLAN_EVAL, .B = rs->cfg.batch_size, .T = rs->cfg.block_size};
    return run_model_open(rs, &args, g, arena_out, err);
}

/* What is evaluated, on stderr (stdout carries only the loss). */
static void eval_describe(const RunSetup *rs, int64_t N) {
    const GptConfig c = rs->model;
    const char *model_path = rs->model_path;
    const TrainConfig *cfg = &rs->cfg;
    const int64_t B = cfg->batch_size, T = cfg->block_size;
    const GptDevice dev = rs->dev;
    fprintf(stderr,
            "eval: %s (L %" PRId64 ", NH %" PRId64 ", C %" PRId64 ", V %" PRId64 ", Vp %" PRId64
            ", maxT %" PRId64 ", bias %s, gelu %s) on %s: %" PRId64 " batches of %" PRId64
            " x %" PRId64 ", %s\n",
            model_path, c.n_layer, c.n_head, c.channels, c.vocab_size, c.padded_vocab_size,
            c.max_seq_len, c.bias ? "True" : "False", c.gelu ? "erf" : "tanh", cfg->data, N, B, T,
            dev == GPT_DEVICE_CUDA ? "cuda" : "cpu");
}

int cmd_eval(const TrainConfig *user_cfg) {
    Err err = {{0}};
    RunSetup rs; /* filled by run_setup (about 15 KiB: on the stack) */
    int setup_rc = run_setup(user_cfg, CONFIG_CMD_EVAL, &rs, &err);
    if (setup_rc != 0) {
        fprintf(stderr, "arenagpt eval: %s\n", err.msg);
        return setup_rc;
    }
    const TrainConfig *cfg = &rs.cfg;
    const GptConfig c = rs.model;
    const int64_t B = cfg->batch_size, T = cfg->block_size, N = cfg->eval_batches;
    int64_t n_windows;
    if (B > INT64_MAX / N) {
        fprintf(stderr, "arenagpt eval: eval_batches * batch_size overflows\n");
        return CONFIG_EXIT_USAGE;
    }
    n_windows = N * B;
    run_threads(cfg);

    int32_t *inputs = malloc((size_t)(B * T) * sizeof(int32_t));  /* (B,T) */
    int32_t *targets = malloc((size_t)(B * T) * sizeof(int32_t)); /* (B,T) */
    if (!inputs || !targets) {
        fprintf(stderr, "arenagpt eval: out of host memory for a %" PRId64 " x %" PRId64 " batch\n",
                B, T);
        free(inputs);
        free(targets);
        return EVAL_EXIT_DATA;
    }
    int rc = EVAL_EXIT_DATA;
    Arena *arena = NULL;
    DataLoader *dl = NULL;
    Gpt g;
    int built = 0;
    /* checks every token against V at open; the seed is unused (sequential windows) */
    dl = data_loader_open(cfg->data, cfg->data_format == CONFIG_DATA_NANOGPT, B, T, c.vocab_size, 0,
                          &err);
    if (!dl)
        goto done;
    if (data_loader_n_windows(dl) < n_windows) {
        err_set(&err,
                "%s: %" PRId64 " windows of block_size %" PRId64 " (%" PRId64
                " tokens), but the evaluation needs %" PRId64 " (eval_batches %" PRId64
                " x batch_size %" PRId64 ")",
                cfg->data, data_loader_n_windows(dl), T, data_loader_n_tokens(dl), n_windows, N, B);
        goto done;
    }
    if (eval_load(&rs, &g, &arena, &err))
        goto done;
    built = 1;
    eval_describe(&rs, N);
    double sum = 0.0;
    for (int64_t j = 0; j < N; j++) {
        float loss;
        if (data_loader_window(dl, j * B, inputs, targets, &err) ||
            gpt_forward(&g, inputs, targets, B, T, 0, &loss, &err))
            goto done;
        sum += loss;
    }
    printf("loss %.6f\n", sum / (double)N);
    run_print_arena_line(stderr, "eval", arena);
    rc = EVAL_EXIT_OK;
done:
    if (rc != EVAL_EXIT_OK)
        fprintf(stderr, "arenagpt eval: %s\n", err.msg);
    if (built)
        gpt_free(&g);
    if (arena)
        arena_free(arena);
    data_loader_free(dl);
    free(inputs);
    free(targets);
    return rc;
}
