/* mem_zero.c: see mem_zero.h. */
#include "mem_zero.h"

#include <stdio.h>

#include "../model/dist.h"

void mem_zero_header(const RunSetup *rs) {
    const GptConfig *c = &rs->model;
    if (c->world_size <= 1)
        return;
    printf("ranks: world_size %d, zero_stage %d: the bytes below are each rank's (every rank "
           "plans the same)%s\n",
           c->world_size, c->zero_stage,
           c->zero_stage ? "; AdamW state sharded, the last shard padded" : "");
}

double mem_zero_formula_bytes(const GptConfig *c, GptDevice dev, int zero_stage) {
    const GptLayout *lay = gpt_layout_of(dev, c->bf16, c->grad_f32);
    double psi = (double)gpt_dist_numel(c);
    double k = lay->has_master ? 12.0 : 8.0; /* master + m + v, or m + v, f32 */
    double n = c->world_size > 1 && zero_stage >= 1 ? (double)c->world_size : 1.0;
    return psi * ((double)arena_dtype_size(lay->param_dtype) +
                  (double)arena_dtype_size(lay->grad_dtype) + k / n);
}

static const ArenaCategory STATE_CATS[3] = {ARENA_CAT_PARAMS, ARENA_CAT_GRADS, ARENA_CAT_OPTIMIZER};

static size_t model_states(const ArenaStats *st) {
    size_t s = 0;
    for (int i = 0; i < 3; i++)
        s += st->cat_peak_bytes[STATE_CATS[i]];
    return s;
}

static void print_json(const RunSetup *rs, const ArenaStats st[2], const double formula[2]) {
    printf("{\n  \"world_size\": %d,\n  \"device\": \"%s\",\n  \"stages\": [\n",
           rs->model.world_size, rs->dev == GPT_DEVICE_CUDA ? "cuda" : "cpu");
    for (int z = 0; z < 2; z++) {
        printf("    {\"zero_stage\": %d", z);
        for (int cat = 0; cat < ARENA_CAT_COUNT; cat++)
            printf(", \"%s\": %zu", arena_category_name((ArenaCategory)cat),
                   st[z].cat_peak_bytes[cat]);
        printf(", \"model_states\": %zu, \"zero_formula\": %.0f, \"peak\": %zu, "
               "\"high_water\": %zu}%s\n",
               model_states(&st[z]), formula[z], st[z].peak_used_bytes, st[z].high_water_bytes,
               z == 0 ? "," : "");
    }
    printf("  ]\n}\n");
}

static void print_table(const RunSetup *rs, const ArenaStats st[2], const double formula[2]) {
    const int N = rs->model.world_size;
    printf("per rank, world_size %d (peak bytes per category; every rank plans the same):\n", N);
    printf("  %-26s %18s %18s\n", "", "zero_stage 0", "zero_stage 1");
    for (int cat = 0; cat < ARENA_CAT_COUNT; cat++)
        printf("  %-26s %18zu %18zu\n", arena_category_name((ArenaCategory)cat),
               st[0].cat_peak_bytes[cat], st[1].cat_peak_bytes[cat]);
    printf("  %-26s %18zu %18zu\n", "peak (sum)", st[0].peak_used_bytes, st[1].peak_used_bytes);
    printf("  %-26s %18zu %18zu\n", "high-water", st[0].high_water_bytes, st[1].high_water_bytes);
    printf("  %-26s %18zu %18zu\n", "model states (planned)", model_states(&st[0]),
           model_states(&st[1]));
    printf("  %-26s %18.0f %18.0f\n", "ZeRO paper's formula", formula[0], formula[1]);
    printf("the formula (ZeRO, Rajbhandari et al. 2020): params + grads + K*Psi (stage 0) or "
           "K*Psi/N (stage 1), Psi = %lld parameters, K = %s; the plan adds each tensor's "
           "rounding to %d bytes and the last shard's padding\n",
           (long long)gpt_dist_numel(&rs->model),
           rs->dev == GPT_DEVICE_CUDA ? "12 (f32 master, m, v)" : "8 (f32 m, v; no master)",
           ARENA_ALIGNMENT);
}

int mem_zero_compare(const RunSetup *rs) {
    ArenaStats st[2];
    double formula[2];
    for (int z = 0; z < 2; z++) {
        GptConfig c = rs->model;
        c.zero_stage = z;
        GptPlanArgs a = {.phase = GPT_PLAN_TRAIN,
                         .B = rs->cfg.batch_size,
                         .T = rs->cfg.block_size,
                         .grad_accum = rs->cfg.gradient_accumulation_steps,
                         .limit_bytes = rs->cfg.memory_limit};
        GptPlan *p = NULL;
        Err err;
        int rc = gpt_plan(&c, rs->dev, &a, &p, &err);
        if (p)
            st[z] = arena_stats(p->arena);
        gpt_plan_free(p);
        if (rc != 0) {
            fprintf(stderr, "arenagpt mem: zero_stage %d: %s\n", z, err.msg);
            return 1;
        }
        formula[z] = mem_zero_formula_bytes(&c, rs->dev, z);
    }
    if (rs->cfg.format == CONFIG_FORMAT_JSON)
        print_json(rs, st, formula);
    else
        print_table(rs, st, formula);
    return 0;
}
