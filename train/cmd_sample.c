/* cmd_sample.c: `arenagpt sample`: text generation from a model file (llm.c format) or a
 * run directory holding model.bin (run_setup, run_common.h: its stored config gives bias,
 * gelu and the data, so no config file is needed). The prompt is encoded with the tokenizer
 * saved beside the shards (or tokenizer_file), refused when larger than the model's
 * vocabulary; each new token comes from the logits of the last position, cropped to
 * block_size tokens of context (default: the model's maxT), with temperature (0 = argmax) and
 * top_k, from a seeded Rng. Decoding keeps a KV cache (model/decode.c, planned in the arena):
 * each new token runs one position through the model while the window is not full; once it
 * is, nanoGPT's crop shifts every position and each token runs one uncached forward over the
 * cropped window, what sampling cost before the cache. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../data/rng.h"
#include "../data/tokenizer.h"
#include "commands.h"
#include "init_from.h"
#include "run_common.h"
#include "test_hooks.h"

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

/* The model on its arena: sized from a plan of exactly what sampling allocates (gpt_plan's
 * sample phase: an inference build, no gradients or optimizer state), then built and loaded
 * from the model file. *arena_out is NULL on failure. */
static int sample_load(const RunSetup *rs, Gpt *g, Arena **arena_out, Err *err) {
    GptPlanArgs args = {.phase = GPT_PLAN_SAMPLE, .B = 1, .T = rs->cfg.block_size};
    return run_model_open(rs, &args, g, arena_out, err);
}

/* num_samples continuations of the prompt, written to stdout as they are drawn. */
static int sample_generate(const TrainConfig *cfg, Gpt *g, const Tokenizer *tok,
                           const int32_t *prompt_ids, size_t n_prompt, Err *err) {
    const int64_t V = g->config.vocab_size;
    size_t cap = n_prompt + (size_t)cfg->max_new_tokens;
    int32_t *ids = malloc(cap * sizeof *ids);
    float *logits = malloc((size_t)g->config.padded_vocab_size * sizeof *logits);
    GptKvCache kv = {0};
    int rc = ids && logits ? gpt_kv_init(g, &kv, err) : err_set(err, "out of host memory");
    Rng rng;
    rng_init(&rng, (uint64_t)cfg->seed);
    for (int64_t s = 0; s < cfg->num_samples && rc == 0; s++) {
        memcpy(ids, prompt_ids, n_prompt * sizeof *ids);
        size_t n = n_prompt;
        kv.n = 0; /* a new sample: an empty cache */
        fwrite(cfg->prompt, 1, strlen(cfg->prompt), stdout);
        for (int64_t k = 0; k < cfg->max_new_tokens && rc == 0; k++) {
            rc = gpt_kv_window(g, &kv, ids, (int64_t)n, logits, err);
            if (rc != 0)
                break;
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
    gpt_kv_free(g, &kv);
    free(ids);
    free(logits);
    return rc;
}

int cmd_sample(const TrainConfig *user_cfg) {
    Err err;
    run_threads(user_cfg);
    RunSetup rs; /* filled by run_setup (about 15 KiB: on the stack) */
    int rc = run_setup(user_cfg, CONFIG_CMD_SAMPLE, &rs, &err);
    if (rc != 0) {
        fprintf(stderr, "arenagpt sample: %s\n", err.msg);
        return rc;
    }
    const TrainConfig *cfg = &rs.cfg;
    Tokenizer *tok = init_from_tokenizer(&rs, &err); /* init_from.c */
    if (!tok) {
        fprintf(stderr,
                "arenagpt sample: %s\n  (give --tokenizer_file=PATH or --data_dir=DIR of "
                "the prepared data)\n",
                err.msg);
        return 1;
    }
    Gpt g;
    Arena *arena = NULL;
    int32_t *prompt_ids = NULL;
    size_t n_prompt = 0;
    rc = 1;
    if (sample_load(&rs, &g, &arena, &err) != 0) {
        fprintf(stderr, "arenagpt sample: %s\n", err.msg);
    } else if (tokenizer_encode(tok, cfg->prompt, strlen(cfg->prompt), &prompt_ids, &n_prompt,
                                &err) != 0) {
        fprintf(stderr, "arenagpt sample: prompt: %s\n", err.msg);
    } else if (n_prompt == 0) {
        fprintf(stderr, "arenagpt sample: the prompt encodes to no tokens: give --prompt=TEXT\n");
        rc = CONFIG_EXIT_USAGE;
    } else if (sample_generate(cfg, &g, tok, prompt_ids, n_prompt, &err) != 0) {
        fprintf(stderr, "arenagpt sample: %s\n", err.msg);
    } else {
        run_print_arena_line(stderr, "sample", arena);
        rc = 0;
    }
    free(prompt_ids);
    if (arena) {
        gpt_free(&g);
        arena_free(arena);
    }
    tokenizer_free(tok);
    return rc;
}
