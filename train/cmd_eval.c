/* cmd_eval.c: `arenagpt eval`: the deterministic loss of a model file on a token shard.
 *
 * The mean cross-entropy over the first eval_batches * batch_size windows of the shard,
 * taken in order with stride block_size: window i is tokens [i*T, i*T+T] (inputs the first T,
 * targets the T after the first), batch j holds windows j*B .. j*B+B-1. Every batch has B*T
 * tokens, so the mean of the batch means is the mean over all tokens. Printed on stdout as
 * `loss <value>` with 6 decimals (a short description goes to stderr). No randomness.
 *
 * The model's shape comes from the file's header (maxT, V, L, NH, C, Vp); bias and gelu come
 * from the config, as for llm.c files. block_size may be shorter than the file's maxT.
 * The shard (one file or a glob, llm.c format or nanoGPT's with data_format) is read by the
 * data loader's sequential windows. Memory: one arena, sized by planning the same build +
 * forward on a plan arena first.
 *
 * Exit codes: 0 ok; 1 a model or data error (unreadable or malformed file, shard too short,
 * token >= V, arena refusal); 2 a usage error (no model file or shard given, block_size
 * above the model's maxT). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../alloc/arena.h"
#include "../data/loader.h"
#include "../model/gpt.h"
#include "../model/model_io.h"
#include "commands.h"
#include "config.h"
#include "run_common.h"

#define EVAL_EXIT_OK 0
#define EVAL_EXIT_DATA 1

/* The arena size an eval needs: the same build and forward on a plan arena. */
static int eval_plan_bytes(const GptConfig *c, GptDevice dev, int64_t B, int64_t T,
                           const int32_t *inputs, const int32_t *targets, size_t limit, size_t *out,
                           Err *err) {
    Arena *plan = arena_init(ARENA_BACKING_PLAN, 0, limit, err);
    if (!plan)
        return -1;
    Gpt g;
    int rc = gpt_build(&g, c, dev, plan, B, T, err);
    if (rc == 0) {
        rc = gpt_forward(&g, inputs, targets, B, T, 0, NULL, err);
        gpt_free(&g);
    }
    *out = arena_stats(plan).high_water_bytes;
    arena_free(plan);
    return rc;
}

int cmd_eval(const TrainConfig *cfg) {
    Err err = {{0}};
    const char *model_path = cfg->init_from;
    if (model_path[0] == '\0' || strcmp(model_path, "scratch") == 0 ||
        strcmp(model_path, "resume") == 0) {
        fprintf(stderr,
                "arenagpt eval: init_from = '%s': eval needs a model file "
                "(--init_from=MODEL.bin, llm.c format)\n",
                model_path);
        return CONFIG_EXIT_USAGE;
    }
    if (cfg->data[0] == '\0') {
        fprintf(stderr, "arenagpt eval: no shard given (--data=SHARD.bin)\n");
        return CONFIG_EXIT_USAGE;
    }
    GptConfig c;
    memset(&c, 0, sizeof(c));
    c.bias = cfg->bias;
    c.gelu = cfg->gelu == CONFIG_GELU_ERF ? GPT_GELU_ERF : GPT_GELU_TANH;
    c.attention = run_gpt_attention(cfg->attention);
    c.recompute = GPT_RECOMPUTE_NONE; /* no backward */
    c.loss_chunk = cfg->loss_chunk;
    if (gpt_config_from_model_file(model_path, &c, &err)) {
        fprintf(stderr, "arenagpt eval: %s\n", err.msg);
        return EVAL_EXIT_DATA;
    }
    const int64_t B = cfg->batch_size, T = cfg->block_size, N = cfg->eval_batches;
    if (T > c.max_seq_len) {
        fprintf(stderr,
                "arenagpt eval: block_size %" PRId64 " exceeds the model's maxT %" PRId64
                " (%s); use --block_size=%" PRId64 " or less\n",
                T, c.max_seq_len, model_path, c.max_seq_len);
        return CONFIG_EXIT_USAGE;
    }
    GptDevice dev = GPT_DEVICE_CPU;
    if (run_device(cfg, 0, &dev, &err) || gpt_config_check(&c, dev, &err)) {
        fprintf(stderr, "arenagpt eval: %s\n", err.msg);
        return CONFIG_EXIT_USAGE;
    }
    run_attention_fallback("eval", &c, dev, B, T);
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
    memset(inputs, 0, (size_t)(B * T) * sizeof(int32_t));
    memset(targets, 0, (size_t)(B * T) * sizeof(int32_t));
    size_t arena_bytes;
    if (eval_plan_bytes(&c, dev, B, T, inputs, targets, cfg->memory_limit, &arena_bytes, &err))
        goto done;
    if (dev == GPT_DEVICE_CUDA)
        arena = arena_init_with(arena_device_ops(), arena_bytes, cfg->memory_limit, &err);
    else
        arena = arena_init(ARENA_BACKING_HOST, arena_bytes, cfg->memory_limit, &err);
    if (!arena)
        goto done;
    if (gpt_build(&g, &c, dev, arena, B, T, &err))
        goto done;
    built = 1;
    if (model_file_read(&g, model_path, &err))
        goto done;
    fprintf(stderr,
            "eval: %s (L %" PRId64 ", NH %" PRId64 ", C %" PRId64 ", V %" PRId64 ", Vp %" PRId64
            ", maxT %" PRId64 ", bias %s, gelu %s) on %s: %" PRId64 " batches of %" PRId64
            " x %" PRId64 ", %s\n",
            model_path, c.n_layer, c.n_head, c.channels, c.vocab_size, c.padded_vocab_size,
            c.max_seq_len, c.bias ? "True" : "False", c.gelu ? "erf" : "tanh", cfg->data, N, B, T,
            dev == GPT_DEVICE_CUDA ? "cuda" : "cpu");
    double sum = 0.0;
    for (int64_t j = 0; j < N; j++) {
        float loss;
        if (data_loader_window(dl, j * B, inputs, targets, &err) ||
            gpt_forward(&g, inputs, targets, B, T, 0, &loss, &err))
            goto done;
        sum += loss;
    }
    printf("loss %.6f\n", sum / (double)N);
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
