/* bench_decode.c: our side of scripts/bench_decode.sh. Greedy generation on the CPU backend
 * from a one-token prompt, NEW tokens, twice on the same random-weight model: with the KV
 * cache (gpt_kv_window, what `sample` runs) and without it (gpt_forward_last_logits over the
 * cropped window each token, what sampling did before the cache). Checks that both pick the
 * same tokens (exit 1 otherwise) and prints:
 *     model L <n_layer> NH <n_head> C <n_embd> V <vocab_size> T <block_size> threads <n>
 *     cached ms/token <ms> uncached ms/token <ms> speed-up <x> tokens <n> identical yes
 * Usage: bench_decode CONFIG [--key=value ...] [--bench_tokens=N]
 * Built by the Makefile from the release objects; not part of the arenagpt binary. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../alloc/arena.h"
#include "../model/gpt.h"
#include "../train/config.h"
#include "../train/run_common.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int64_t argmax(const float *x, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* Greedy tokens ids[1..n) after ids[0]; cached or not. Returns seconds, -1 on error. */
static double generate(Gpt *g, int cached, int32_t *ids, int64_t n, float *logits, Err *err) {
    int64_t T = g->T, V = g->config.vocab_size;
    GptKvCache kv = {0};
    if (cached && gpt_kv_init(g, &kv, err))
        return -1;
    double t0 = now_s();
    for (int64_t k = 1; k < n; k++) {
        int64_t ctx = k < T ? k : T;
        int rc = cached ? gpt_kv_window(g, &kv, ids, k, logits, err)
                        : gpt_forward_last_logits(g, ids + k - ctx, 1, ctx, logits, err);
        if (rc) {
            gpt_kv_free(g, &kv);
            return -1;
        }
        ids[k] = (int32_t)argmax(logits, V);
    }
    double dt = now_s() - t0;
    gpt_kv_free(g, &kv);
    return dt;
}

/* The model on a host arena with room for the cache and a step, and above it an uncached
 * forward of the whole window (both inference plans). */
static Arena *build(Gpt *g, const GptConfig *c, Err *err) {
    size_t bytes = 0;
    for (int ph = GPT_PLAN_EVAL; ph <= GPT_PLAN_SAMPLE; ph++) {
        GptPlanArgs a = {.phase = (GptPlanPhase)ph, .B = 1, .T = c->max_seq_len};
        GptPlan *p = NULL;
        if (gpt_plan(c, GPT_DEVICE_CPU, &a, &p, err)) {
            gpt_plan_free(p);
            return NULL;
        }
        bytes += arena_stats(p->arena).high_water_bytes;
        gpt_plan_free(p);
    }
    Arena *arena = arena_init(ARENA_BACKING_HOST, bytes, 0, err);
    if (!arena || gpt_build_inference(g, c, GPT_DEVICE_CPU, arena, 1, c->max_seq_len, err)) {
        if (arena)
            arena_free(arena);
        return NULL;
    }
    gpt_init_weights(g, 1337);
    return arena;
}

int main(int argc, char **argv) {
    int64_t n = 64;
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int n_rest = 0, help = 0;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--bench_tokens=", 15) == 0)
            n = atoll(argv[i] + 15);
        else
            rest[n_rest++] = argv[i];
    }
    TrainConfig cfg;
    config_defaults(&cfg);
    Err err = {{0}};
    if (n < 2 || config_parse_args(&cfg, n_rest, rest, CONFIG_CMD_TRAIN, &help, &err)) {
        fprintf(stderr, "bench_decode: %s\n",
                n < 2 ? "--bench_tokens must be at least 2" : err.msg);
        return 2;
    }
    GptConfig c;
    run_gpt_config(&cfg, &c);
    c.recompute = GPT_RECOMPUTE_NONE;
    gpt_set_threads((int)cfg.threads);
    Gpt g;
    Arena *arena = build(&g, &c, &err);
    int32_t *a = calloc((size_t)n, sizeof(int32_t)), *b = calloc((size_t)n, sizeof(int32_t));
    float *logits = malloc((size_t)c.padded_vocab_size * sizeof(float));
    if (!arena || !a || !b || !logits) {
        fprintf(stderr, "bench_decode: %s\n", arena ? "out of host memory" : err.msg);
        return 1;
    }
    double tc = generate(&g, 1, a, n, logits, &err);
    double tu = tc < 0 ? -1 : generate(&g, 0, b, n, logits, &err);
    if (tc < 0 || tu < 0) {
        fprintf(stderr, "bench_decode: %s\n", err.msg);
        return 1;
    }
    int same = memcmp(a, b, (size_t)n * sizeof(int32_t)) == 0;
    printf("model L %lld NH %lld C %lld V %lld T %lld threads %lld\n", (long long)c.n_layer,
           (long long)c.n_head, (long long)c.channels, (long long)c.vocab_size,
           (long long)c.max_seq_len, (long long)cfg.threads);
    printf("cached ms/token %.3f uncached ms/token %.3f speed-up %.2fx tokens %lld identical %s\n",
           1e3 * tc / (double)(n - 1), 1e3 * tu / (double)(n - 1), tu / tc, (long long)n - 1,
           same ? "yes" : "NO");
    gpt_free(&g);
    arena_free(arena);
    free(a), free(b), free(logits), free(rest);
    return same ? 0 : 1;
}
