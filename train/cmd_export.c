/* cmd_export.c: `arenagpt export --init_from=RUN_OR_MODEL --out=DIR`: any model init_from
 * names (a train out_dir, an llm.c model file, Hugging Face weights, a cached gpt2* name),
 * resolved as sample resolves it (run_setup), built on the CPU in float32 and written as
 * Hugging Face GPT-2: DIR/model.safetensors (F32, or BF16 with model_dtype = bfloat16;
 * GPT2LMHeadModel's tensor names, lm_head tied and left out) and DIR/config.json
 * (model/hf_gpt2.h), each written atomically. Export then import gives the same weights bit
 * for bit (F32; BF16: the same bf16 values) (tests/cli_hf.sh). */
#include <stdio.h>
#include <string.h>

#include "../alloc/arena.h"
#include "../model/hf_gpt2.h"
#include "commands.h"
#include "init_from.h"
#include "run_common.h"

/* The model built for inference on a host arena of exactly its planned size (gpt_plan's eval
 * phase at one token: the parameters and a one-token forward's workspace), weights loaded. */
static int export_load(const RunSetup *rs, Gpt *g, Arena **arena_out, Err *err) {
    GptPlanArgs args = {.phase = GPT_PLAN_EVAL, .B = 1, .T = 1};
    return run_model_open(rs, &args, g, arena_out, err);
}

int cmd_export(const TrainConfig *user_cfg) {
    if (!user_cfg->out[0]) {
        fprintf(stderr, "arenagpt export: --out=DIR is required (where model.safetensors and "
                        "config.json are written)\n");
        return CONFIG_EXIT_USAGE;
    }
    TrainConfig cfg = *user_cfg;
    cfg.device = CONFIG_DEVICE_CPU; /* a file conversion: float32 on the CPU */
    cfg.dtype = CONFIG_DTYPE_FLOAT32;
    RunSetup rs;
    Err err;
    int rc = 0;
    if (strcmp(cfg.init_from, "scratch") == 0 || !cfg.init_from[0]) {
        err_set(&err,
                "init_from = '%s': export needs a model: a train out_dir (or resume: the run "
                "in out_dir), an llm.c model file, Hugging Face weights or gpt2, gpt2-medium, "
                "gpt2-large, gpt2-xl",
                cfg.init_from);
        rc = CONFIG_EXIT_USAGE;
    }
    if (rc == 0)
        rc = run_setup(&cfg, CONFIG_CMD_SAMPLE, &rs, &err);
    if (rc == 0 && run_mkdir_p(cfg.out, &err) != 0)
        rc = 1;
    if (rc != 0) {
        fprintf(stderr, "arenagpt export: %s\n", err.msg);
        return rc;
    }
    Gpt g;
    Arena *arena = NULL;
    int bf16 = cfg.model_dtype == CONFIG_MODEL_DTYPE_BFLOAT16;
    if (export_load(&rs, &g, &arena, &err) != 0 ||
        hf_gpt2_export_as(&g, cfg.out, bf16, &err) != 0) {
        fprintf(stderr, "arenagpt export: %s\n", err.msg);
        if (arena) {
            gpt_free(&g);
            arena_free(arena);
        }
        return 1;
    }
    const GptConfig *c = &g.config;
    printf("exported %s -> %s/model.safetensors (%s, %lld tensors named as GPT2LMHeadModel's, "
           "lm_head tied) and %s/config.json (n_layer %lld, n_head %lld, n_embd %lld, "
           "vocab_size %lld, n_positions %lld, %s)\n",
           rs.model_path, cfg.out, bf16 ? "BF16" : "F32", (long long)(4 + 12 * c->n_layer), cfg.out,
           (long long)c->n_layer, (long long)c->n_head, (long long)c->channels,
           (long long)c->vocab_size, (long long)c->max_seq_len,
           c->gelu == GPT_GELU_ERF ? "gelu" : "gelu_new");
    gpt_free(&g);
    arena_free(arena);
    return 0;
}
