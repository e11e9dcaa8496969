/* cmd_sample.c: `arenagpt sample`: text generation from a model file (llm.c format) or a
 * directory holding model.bin. The prompt is encoded with the tokenizer saved beside the
 * shards; each new token comes from the logits of the last position, cropped to block_size
 * tokens of context, with temperature (0 = argmax) and top_k, from a seeded Rng.
 * Like nanoGPT's generate(), there is no KV cache: every new token runs the whole (cropped)
 * window through the model, so a sample of n tokens costs O(n * T) forward work. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../data/rng.h"
#include "../data/tokenizer.h"
#include "../model/model_io.h"
#include "commands.h"
#include "run_common.h"

/* Picks the next token from logits (Vp, only the first V count). Returns the token id. */
int64_t sample_pick(float *logits, int64_t V, double temperature, int64_t top_k, Rng *rng) {
    int64_t best = 0;
    for (int64_t i = 1; i < V; i++)
        if (logits[i] > logits[best])
            best = i;
    if (temperature <= 0 || top_k == 1)
        return best;
    /* top_k: keep logits >= the k-th largest (ties at the threshold are kept, as torch.topk
     * followed by `logits < v[-1]` masking does) */
    float threshold = -INFINITY;
    if (top_k > 0 && top_k < V) {
        float *tmp = malloc((size_t)V * sizeof *tmp);
        if (tmp) {
            memcpy(tmp, logits, (size_t)V * sizeof *tmp);
            /* partial selection: the k largest values end up in tmp[0..k) */
            for (int64_t i = 0; i < top_k; i++) {
                int64_t m = i;
                for (int64_t j = i + 1; j < V; j++)
                    if (tmp[j] > tmp[m])
                        m = j;
                float t = tmp[i];
                tmp[i] = tmp[m];
                tmp[m] = t;
            }
            threshold = tmp[top_k - 1];
            free(tmp);
        }
    }
    double maxv = logits[best] / temperature, sum = 0;
    for (int64_t i = 0; i < V; i++) {
        double p = logits[i] >= threshold ? exp(logits[i] / temperature - maxv) : 0.0;
        logits[i] = (float)p;
        sum += p;
    }
    double u = rng_uniform_f64(rng) * sum, acc = 0;
    for (int64_t i = 0; i < V; i++) {
        acc += logits[i];
        if (u < acc && logits[i] > 0)
            return i;
    }
    return best;
}

static void model_path(const char *init_from, char *buf, size_t len) {
    struct stat st;
    if (stat(init_from, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(buf, len, "%s/model.bin", init_from);
    else
        snprintf(buf, len, "%s", init_from);
}

int cmd_sample(const TrainConfig *cfg) {
    Err err;
    GptDevice dev;
    run_threads(cfg);
    if (strcmp(cfg->init_from, "scratch") == 0 || strcmp(cfg->init_from, "resume") == 0) {
        fprintf(stderr, "arenagpt sample: --init_from=FILE_OR_DIR is required (a model file, or "
                        "a directory with model.bin such as a train out_dir)\n");
        return CONFIG_EXIT_USAGE;
    }
    if (run_device(cfg, 0, &dev, &err) != 0) {
        fprintf(stderr, "arenagpt sample: %s\n", err.msg);
        return CONFIG_EXIT_USAGE;
    }
    char mpath[2 * CONFIG_STR_LEN];
    model_path(cfg->init_from, mpath, sizeof mpath);
    GptConfig c;
    memset(&c, 0, sizeof c); /* the file gives only the shape */
    if (gpt_config_from_model_file(mpath, &c, &err) != 0) {
        fprintf(stderr, "arenagpt sample: %s\n", err.msg);
        return 1;
    }
    c.bias = cfg->bias;
    c.gelu = cfg->gelu == CONFIG_GELU_ERF ? GPT_GELU_ERF : GPT_GELU_TANH;
    c.recompute = GPT_RECOMPUTE_NONE;
    c.loss_chunk = cfg->loss_chunk;
    c.attention = run_gpt_attention(cfg->attention);

    char tpath[2 * CONFIG_STR_LEN], dir[CONFIG_STR_LEN];
    if (cfg->tokenizer_file[0]) {
        snprintf(tpath, sizeof tpath, "%s", cfg->tokenizer_file);
    } else {
        run_data_dir(cfg, dir, sizeof dir);
        snprintf(tpath, sizeof tpath, "%s/tokenizer.bin", dir);
    }
    Tokenizer *tok = tokenizer_load(tpath, &err);
    if (!tok) {
        fprintf(stderr,
                "arenagpt sample: %s\n  (give --tokenizer_file=PATH or --data_dir=DIR of "
                "the prepared data)\n",
                err.msg);
        return 1;
    }

    const int64_t T = c.max_seq_len, V = c.vocab_size, Vp = c.padded_vocab_size;
    run_attention_fallback("sample", &c, dev, 1, T);
    /* size the arena from a plan of exactly what sampling allocates */
    Arena *plan = arena_init(ARENA_BACKING_PLAN, 0, 0, &err);
    Gpt pg;
    float *plan_logits = calloc((size_t)Vp, sizeof *plan_logits);
    int rc = plan_logits ? gpt_build(&pg, &c, dev, plan, 1, T, &err)
                         : err_set(&err, "out of host memory");
    if (rc == 0)
        rc = gpt_forward_last_logits(&pg, NULL, 1, T, plan_logits, &err);
    free(plan_logits);
    size_t capacity = arena_stats(plan).high_water_bytes;
    if (rc == 0)
        gpt_free(&pg);
    arena_free(plan);
    if (rc != 0) {
        fprintf(stderr, "arenagpt sample: %s\n", err.msg);
        tokenizer_free(tok);
        return 1;
    }
    Arena *arena = arena_init(dev == GPT_DEVICE_CUDA ? ARENA_BACKING_DEVICE : ARENA_BACKING_HOST,
                              capacity, cfg->memory_limit, &err);
    Gpt g;
    if (!arena || gpt_build(&g, &c, dev, arena, 1, T, &err) != 0 ||
        model_file_read(&g, mpath, &err) != 0) {
        fprintf(stderr, "arenagpt sample: %s\n", err.msg);
        if (arena)
            arena_free(arena);
        tokenizer_free(tok);
        return 1;
    }

    int32_t *prompt_ids = NULL;
    size_t n_prompt = 0;
    if (tokenizer_encode(tok, cfg->prompt, strlen(cfg->prompt), &prompt_ids, &n_prompt, &err) !=
        0) {
        fprintf(stderr, "arenagpt sample: prompt: %s\n", err.msg);
        rc = 1;
        goto done;
    }
    if (n_prompt == 0) {
        fprintf(stderr, "arenagpt sample: the prompt encodes to no tokens: give --prompt=TEXT\n");
        rc = CONFIG_EXIT_USAGE;
        goto done;
    }
    size_t cap = n_prompt + (size_t)cfg->max_new_tokens;
    int32_t *ids = malloc(cap * sizeof *ids);
    float *logits = malloc((size_t)Vp * sizeof *logits);
    if (!ids || !logits) {
        fprintf(stderr, "arenagpt sample: out of host memory\n");
        free(ids);
        free(logits);
        rc = 1;
        goto done;
    }
    Rng rng;
    rng_init(&rng, (uint64_t)cfg->seed);
    for (int64_t s = 0; s < cfg->num_samples && rc == 0; s++) {
        memcpy(ids, prompt_ids, n_prompt * sizeof *ids);
        size_t n = n_prompt;
        fwrite(cfg->prompt, 1, strlen(cfg->prompt), stdout);
        for (int64_t k = 0; k < cfg->max_new_tokens; k++) {
            size_t ctx = n < (size_t)T ? n : (size_t)T;
            if (gpt_forward_last_logits(&g, ids + n - ctx, 1, (int64_t)ctx, logits, &err) != 0) {
                fprintf(stderr, "arenagpt sample: %s\n", err.msg);
                rc = 1;
                break;
            }
            int64_t next = sample_pick(logits, V, cfg->temperature, cfg->top_k, &rng);
            ids[n++] = (int32_t)next;
            size_t len = 0;
            const char *bytes = tokenizer_decode(tok, (int32_t)next, &len);
            if (bytes)
                fwrite(bytes, 1, len, stdout);
            fflush(stdout);
        }
        printf("\n---------------\n");
    }
    free(ids);
    free(logits);
done:
    free(prompt_ids);
    gpt_free(&g);
    arena_free(arena);
    tokenizer_free(tok);
    return rc;
}
