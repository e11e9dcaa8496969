/* bench_step.c: our side of scripts/bench_cpu.sh. Times a GPT-2 training step on the CPU
 * backend (zero_grad, forward with the fused loss head, backward, AdamW with global-norm clip)
 * for a config file plus --key=value overrides (the real config parser), and prints:
 *     model L <n_layer> NH <n_head> C <n_embd> V <vocab_size> T <block_size> B <batch_size>
 *           bias <0|1> gelu <tanh|erf> threads <n>
 *     ours ms/step median <ms> min <ms> tok/s median <n> best <n> (...)
 *     cpu time ms/step median <ms> min <ms> (all threads)
 *     memory plan peak <bytes> high-water <bytes>, measured peak <bytes> high-water <bytes> bytes
 * The batch is random tokens (fixed seed), the same every step, as the PyTorch side does.
 * Usage: bench_step CONFIG [--key=value ...] [--bench_steps=N] [--bench_warmup=N]
 * Built by bench_cpu.sh from the library sources; not part of the arenagpt binary. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../alloc/arena.h"
#include "../data/rng.h"
#include "../model/gpt.h"
#include "../train/config.h"
#include "../train/run_common.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of the whole process (all threads): less disturbed than wall time by other
 * processes on a shared machine */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int steps = 10, warmup = 2;
    /* take our own two flags out; the rest goes to the config parser */
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int n_rest = 0;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--bench_steps=", 14) == 0)
            steps = atoi(argv[i] + 14);
        else if (strncmp(argv[i], "--bench_warmup=", 15) == 0)
            warmup = atoi(argv[i] + 15);
        else
            rest[n_rest++] = argv[i];
    }
    if (steps < 1 || warmup < 0) {
        fprintf(stderr,
                "bench_step: --bench_steps=%d --bench_warmup=%d: expected at least 1 timed "
                "step and no negative warm-up\n",
                steps, warmup);
        free(rest);
        return 2;
    }
    TrainConfig cfg;
    config_defaults(&cfg);
    Err err = {{0}};
    int help = 0;
    if (config_parse_args(&cfg, n_rest, rest, CONFIG_CMD_TRAIN, &help, &err)) {
        fprintf(stderr, "bench_step: %s\n", err.msg);
        return 2;
    }
    GptConfig c;
    run_gpt_config(&cfg, &c);
    const int64_t B = cfg.batch_size, T = cfg.block_size;
    gpt_set_threads((int)cfg.threads);

    GptPlan *plan = NULL;
    if (gpt_plan(&c, GPT_DEVICE_CPU,
                 &(GptPlanArgs){
                     .phase = GPT_PLAN_TRAIN, .B = B, .T = T, .grad_accum = 1, .limit_bytes = 0},
                 &plan, &err)) {
        fprintf(stderr, "bench_step: plan: %s\n", err.msg);
        return 1;
    }
    size_t bytes = arena_stats(plan->arena).high_water_bytes;
    size_t plan_peak = arena_stats(plan->arena).peak_used_bytes;
    gpt_plan_free(plan);
    Arena *arena = arena_init(ARENA_BACKING_HOST, bytes, 0, &err);
    if (!arena) {
        fprintf(stderr, "bench_step: %s\n", err.msg);
        return 1;
    }
    Gpt g;
    if (gpt_build(&g, &c, GPT_DEVICE_CPU, arena, B, T, &err)) {
        fprintf(stderr, "bench_step: %s\n", err.msg);
        return 1;
    }
    gpt_init_weights(&g, (uint64_t)cfg.seed);
    int32_t *inputs = malloc((size_t)(B * T) * sizeof(int32_t));  /* (B,T) */
    int32_t *targets = malloc((size_t)(B * T) * sizeof(int32_t)); /* (B,T) */
    Rng rng;
    rng_init(&rng, 1);
    for (int64_t i = 0; i < B * T; i++) {
        inputs[i] = (int32_t)rng_below(&rng, (uint64_t)c.vocab_size);
        targets[i] = (int32_t)rng_below(&rng, (uint64_t)c.vocab_size);
    }
    printf("model L %" PRId64 " NH %" PRId64 " C %" PRId64 " V %" PRId64 " T %" PRId64 " B %" PRId64
           " bias %d gelu %s threads %" PRId64 "\n",
           c.n_layer, c.n_head, c.channels, c.vocab_size, T, B, c.bias, c.gelu ? "erf" : "tanh",
           cfg.threads);
    fflush(stdout);
    double *times = calloc((size_t)steps, sizeof(double));
    double *cpu = calloc((size_t)steps, sizeof(double));
    float loss = 0, norm = 0;
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = now_s(), c0 = cpu_s();
        if (gpt_zero_grad(&g) || gpt_forward(&g, inputs, targets, B, T, 1, &loss, &err) ||
            gpt_backward(&g, &err) ||
            gpt_update(&g, 6e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, s + 1, 1.0f, &norm, &err)) {
            fprintf(stderr, "bench_step: step %d: %s\n", s, err.msg);
            return 1;
        }
        if (s >= warmup) {
            times[s - warmup] = now_s() - t0;
            cpu[s - warmup] = cpu_s() - c0;
        }
    }
    qsort(times, (size_t)steps, sizeof(double), cmp_double);
    qsort(cpu, (size_t)steps, sizeof(double), cmp_double);
    double med = times[steps / 2], best = times[0];
    double tok = (double)(B * T);
    ArenaStats ms = arena_stats(arena);
    printf("ours ms/step median %.1f min %.1f tok/s median %.0f best %.0f (%d steps after %d "
           "warm-up, loss %.4f, arena %zu bytes)\n",
           med * 1e3, best * 1e3, tok / med, tok / best, steps, warmup, (double)loss, bytes);
    printf("cpu time ms/step median %.1f min %.1f (all threads)\n", cpu[steps / 2] * 1e3,
           cpu[0] * 1e3);
    printf("memory plan peak %zu high-water %zu, measured peak %zu high-water %zu bytes\n",
           plan_peak, bytes, ms.peak_used_bytes, ms.high_water_bytes);
    free(times);
    free(cpu);
    gpt_free(&g);
    arena_free(arena);
    free(inputs);
    free(targets);
    free(rest);
    return 0;
}
