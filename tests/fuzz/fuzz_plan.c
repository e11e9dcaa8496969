/* fuzz_plan.c: libFuzzer target for memory planning (`arenagpt mem`): --key=value arguments
 * (NUL-separated, for the mem command) parsed and validated by train/config.c, then every
 * config that passes is planned for the CPU and the CUDA layouts on a plan arena (no memory
 * is touched) for its recompute mode. UBSan makes any signed overflow in the size and FLOP
 * arithmetic a crash; the arena's ASSERTs guard the placement. Checks: a plan either fits or
 * is refused with a reason, and a plan's peak holds at least the parameters. Configs with more
 * than FUZZ_MAX_LAYERS layers or B*T over FUZZ_MAX_BT tokens are skipped (time and the host
 * buffer gpt_plan allocates, not correctness). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../alloc/arena.h"
#include "../../model/gpt.h"
#include "../../train/config.h"
#include "../../train/run_common.h"
#include "fuzz_common.h"

#define FUZZ_MAX_ARGS 12
#define FUZZ_MAX_LAYERS 24
#define FUZZ_MAX_BT (1 << 16)

static void plan_one(const GptConfig *c, GptDevice dev, const TrainConfig *cfg) {
    Err err;
    err.msg[0] = 0;
    if (gpt_config_check(c, dev, &err) != 0)
        return;
    GptPlan *p = NULL;
    GptPlanArgs args = {.phase = GPT_PLAN_TRAIN,
                        .B = cfg->batch_size,
                        .T = cfg->block_size,
                        .grad_accum = cfg->gradient_accumulation_steps,
                        .limit_bytes = cfg->memory_limit};
    int rc = gpt_plan(c, dev, &args, &p, &err);
    if (rc != 0 && !err.msg[0])
        abort(); /* a refusal must carry a reason */
    if (rc == 0 && p) {
        GptParamCounts pc;
        gpt_param_counts(c, &pc);
        ArenaStats s = arena_stats(p->arena);
        if (s.peak_used_bytes < (size_t)pc.total * 2 || s.high_water_bytes < s.peak_used_bytes)
            abort();
    }
    gpt_plan_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzInput in = {data, size};
    char *argv[FUZZ_MAX_ARGS + 1];
    int argc = 0;
    while (in.n > 0 && argc < FUZZ_MAX_ARGS) {
        FuzzInput a = fuzz_split(&in, 0);
        char *s = malloc(a.n + 3);
        memcpy(s, "--", 2);
        memcpy(s + 2, a.p, a.n);
        s[a.n + 2] = 0;
        argv[argc++] = s;
    }
    TrainConfig cfg;
    config_defaults(&cfg);
    Err err;
    int help = 0;
    if (config_parse_args(&cfg, argc, argv, CONFIG_CMD_MEM, &help, &err) == 0 && !help &&
        cfg.n_layer <= FUZZ_MAX_LAYERS && cfg.batch_size * cfg.block_size <= FUZZ_MAX_BT) {
        GptConfig c;
        run_gpt_config(&cfg, &c);
        plan_one(&c, GPT_DEVICE_CPU, &cfg);
        plan_one(&c, GPT_DEVICE_CUDA, &cfg);
    }
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return 0;
}
