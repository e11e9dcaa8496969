/* cmd_mem.c: `arenagpt mem`: plans a run's memory without running it, through the same
 * allocation code as training, on a plan arena (gpt_plan). Prints the parameter counts, the
 * per-category plan and the top tensors (table, JSON or CSV); --compare plans every recompute
 * mode x attention kind the device has, side by side, with the extra FLOPs each costs;
 * --fit=SIZE finds the largest batch_size per combination whose arena high-water mark fits
 * in SIZE.
 * JSON schema: see README.md ("arenagpt mem --format=json"). */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "run_common.h"

#define FIT_MAX_BATCH (1 << 20) /* search bound for --fit; far beyond any card */

static const char *const mode_names[3] = {"none", "selective", "full"};
static const char *const attention_names[GPT_ATTENTION_COUNT] = {[GPT_ATTENTION_NAIVE] = "naive",
                                                                 [GPT_ATTENTION_CUDNN] = "cudnn",
                                                                 [GPT_ATTENTION_FLASH] = "flash"};

/* One column of --compare / --fit: a recompute mode and an attention kind. */
typedef struct MemMode {
    GptRecompute recompute;
    GptAttention attention;
} MemMode;
#define MEM_MAX_MODES (3 * GPT_ATTENTION_COUNT)

/* Every recompute mode x every attention kind the device can plan (naive, flash, cudnn), the
 * attention kind varying fastest. */
static int mem_modes(const TrainConfig *cfg, GptDevice dev, MemMode *out) {
    static const GptAttention order[GPT_ATTENTION_COUNT] = {
        GPT_ATTENTION_NAIVE, GPT_ATTENTION_FLASH, GPT_ATTENTION_CUDNN};
    int n = 0;
    for (int m = 0; m < 3; m++)
        for (int k = 0; k < GPT_ATTENTION_COUNT; k++) {
            GptConfig c;
            Err err;
            run_gpt_config(cfg, &c);
            c.recompute = (GptRecompute)m;
            c.attention = order[k];
            if (gpt_config_check(&c, dev, &err) == 0)
                out[n++] = (MemMode){(GptRecompute)m, order[k]};
        }
    return n;
}

static int plan(const TrainConfig *cfg, GptDevice dev, int64_t B, MemMode mode, size_t limit,
                Arena **out, Err *err) {
    GptConfig c;
    run_gpt_config(cfg, &c);
    c.recompute = mode.recompute;
    c.attention = mode.attention;
    return run_plan(&c, dev, B, cfg->block_size, cfg->gradient_accumulation_steps, limit, 0, out,
                    err);
}

static void json_header(const TrainConfig *cfg, const GptConfig *c, GptDevice dev) {
    GptParamCounts pc;
    gpt_param_counts(c, &pc);
    printf("{\n  \"model\": {\"n_layer\": %lld, \"n_head\": %lld, \"n_embd\": %lld, "
           "\"block_size\": %lld, \"vocab_size\": %lld, \"bias\": %s, \"gelu\": \"%s\"},\n",
           (long long)cfg->n_layer, (long long)cfg->n_head, (long long)cfg->n_embd,
           (long long)cfg->block_size, (long long)cfg->vocab_size, cfg->bias ? "true" : "false",
           config_gelu_name(cfg->gelu));
    printf("  \"device\": \"%s\",\n  \"batch_size\": %lld,\n  \"gradient_accumulation_steps\": "
           "%lld,\n  \"attention\": \"%s\",\n  \"loss_chunk\": %lld,\n",
           dev == GPT_DEVICE_CUDA ? "cuda" : "cpu", (long long)cfg->batch_size,
           (long long)cfg->gradient_accumulation_steps, config_attention_name(cfg->attention),
           (long long)gpt_loss_chunk(c, cfg->batch_size, cfg->block_size));
    printf("  \"params\": {\"total\": %lld, \"non_embedding\": %lld, \"decay\": {\"tensors\": "
           "%lld, \"count\": %lld}, \"no_decay\": {\"tensors\": %lld, \"count\": %lld}},\n",
           (long long)pc.total, (long long)pc.non_embedding, (long long)pc.decay_tensors,
           (long long)pc.decay_count, (long long)pc.no_decay_tensors, (long long)pc.no_decay_count);
}

static void print_plan_header(const TrainConfig *cfg, const GptConfig *c, GptDevice dev) {
    const GptLayout *lay = gpt_layout(dev);
    printf("model: n_layer %lld, n_head %lld, n_embd %lld, block_size %lld, vocab_size %lld, "
           "bias %s, gelu %s\n",
           (long long)cfg->n_layer, (long long)cfg->n_head, (long long)cfg->n_embd,
           (long long)cfg->block_size, (long long)cfg->vocab_size, cfg->bias ? "True" : "False",
           config_gelu_name(cfg->gelu));
    run_print_params(c);
    printf("plan: device %s (params %s, grads %s, activations %s, optimizer f32 %s), "
           "batch_size %lld x block_size %lld, gradient_accumulation_steps %lld, attention %s, "
           "loss_chunk %lld tokens\n",
           dev == GPT_DEVICE_CUDA ? "cuda" : "cpu", arena_dtype_name(lay->param_dtype),
           arena_dtype_name(lay->grad_dtype), arena_dtype_name(lay->act_dtype),
           lay->has_master ? "master + m + v" : "m + v", (long long)cfg->batch_size,
           (long long)cfg->block_size, (long long)cfg->gradient_accumulation_steps,
           config_attention_name(cfg->attention),
           (long long)gpt_loss_chunk(c, cfg->batch_size, cfg->block_size));
}

/* The plan's timeline: the same planned run on a traced arena, written as a Chrome trace. */
static int mem_trace(const TrainConfig *cfg, GptDevice dev, const GptConfig *c) {
    Err err;
    Arena *a = NULL;
    int rc = run_plan(c, dev, cfg->batch_size, cfg->block_size, cfg->gradient_accumulation_steps, 0,
                      1, &a, &err);
    FILE *f = rc == 0 ? fopen(cfg->trace_file, "w") : NULL;
    if (rc == 0 && (!f || arena_report_trace(a, f) != 0)) {
        err_set(&err, "cannot write trace_file '%s'", cfg->trace_file);
        rc = -1;
    }
    if (f)
        fclose(f);
    arena_free(a);
    if (rc != 0)
        fprintf(stderr, "arenagpt mem: %s\n", err.msg);
    else if (cfg->format == CONFIG_FORMAT_TABLE)
        printf("arena timeline of the planned step written to %s (open it in Perfetto)\n",
               cfg->trace_file);
    return rc == 0 ? 0 : 1;
}

static int mem_single(const TrainConfig *cfg, GptDevice dev) {
    GptConfig c;
    run_gpt_config(cfg, &c);
    Arena *a = NULL;
    Err err;
    int rc = plan(cfg, dev, cfg->batch_size, (MemMode){c.recompute, c.attention}, cfg->memory_limit,
                  &a, &err);
    if (rc != 0 && !a) {
        fprintf(stderr, "arenagpt mem: %s\n", err.msg);
        return 1;
    }
    if (cfg->format == CONFIG_FORMAT_JSON) {
        json_header(cfg, &c, dev);
        printf("  \"recompute\": \"%s\",\n  \"fits\": %s,\n", mode_names[c.recompute],
               rc == 0 ? "true" : "false");
        printf("  \"flops\": {\"forward_per_token\": %.0f, \"recompute_extra_per_token\": %.0f, "
               "\"attention_backward_extra_per_token\": %.0f},\n",
               gpt_flops_forward_per_token(&c, cfg->block_size),
               gpt_flops_recompute_per_token(&c, cfg->block_size, c.recompute),
               gpt_flops_attention_recompute_per_token(&c, cfg->block_size, dev));
        arena_report_json_fields(a, stdout, "  ");
        printf("}\n");
    } else if (cfg->format == CONFIG_FORMAT_CSV) {
        arena_report_csv(a, stdout);
    } else {
        print_plan_header(cfg, &c, dev);
        printf("recompute %s\n", mode_names[c.recompute]);
        arena_report_table(a, stdout, (int)cfg->top);
        if (dev == GPT_DEVICE_CUDA)
            printf("  outside the arena (not planned, measured by train on the GPU): the CUDA "
                   "context and library handles\n");
    }
    if (rc != 0)
        fprintf(stderr, "arenagpt mem: does not fit: %s\n", err.msg);
    arena_free(a);
    if (rc == 0 && cfg->trace_file[0])
        return mem_trace(cfg, dev, &c);
    return rc == 0 ? 0 : 1;
}

static int mem_compare(const TrainConfig *cfg, GptDevice dev) {
    GptConfig c;
    run_gpt_config(cfg, &c);
    MemMode modes[MEM_MAX_MODES];
    int n = mem_modes(cfg, dev, modes);
    Arena *arenas[MEM_MAX_MODES] = {NULL};
    double extra[MEM_MAX_MODES], attn_extra[MEM_MAX_MODES];
    Err err;
    for (int m = 0; m < n; m++) {
        if (plan(cfg, dev, cfg->batch_size, modes[m], 0, &arenas[m], &err) != 0) {
            fprintf(stderr, "arenagpt mem --compare: recompute %s, attention %s: %s\n",
                    mode_names[modes[m].recompute], attention_names[modes[m].attention], err.msg);
            for (int k = 0; k <= m; k++)
                arena_free(arenas[k]);
            return 1;
        }
        GptConfig cm = c;
        cm.recompute = modes[m].recompute;
        cm.attention = modes[m].attention;
        extra[m] = gpt_flops_recompute_per_token(&cm, cfg->block_size, cm.recompute);
        attn_extra[m] = gpt_flops_attention_recompute_per_token(&cm, cfg->block_size, dev);
    }
    double fwd = gpt_flops_forward_per_token(&c, cfg->block_size);
    if (cfg->format == CONFIG_FORMAT_JSON) {
        json_header(cfg, &c, dev);
        printf("  \"flops\": {\"forward_per_token\": %.0f},\n  \"modes\": [\n", fwd);
        for (int m = 0; m < n; m++) {
            printf("   {\"recompute\": \"%s\", \"attention\": \"%s\", "
                   "\"recompute_extra_per_token\": %.0f, \"extra_forward_flops_fraction\": %.6f, "
                   "\"attention_backward_extra_per_token\": %.0f,\n",
                   mode_names[modes[m].recompute], attention_names[modes[m].attention], extra[m],
                   fwd > 0 ? extra[m] / fwd : 0.0, attn_extra[m]);
            arena_report_json_fields(arenas[m], stdout, "    ");
            printf("   }%s\n", m < n - 1 ? "," : "");
        }
        printf("  ]\n}\n");
    } else {
        const double mib = 1024.0 * 1024.0;
        print_plan_header(cfg, &c, dev);
        printf("\n%-10s %-9s %11s %11s %11s %11s %11s %11s %11s %10s %10s\n", "recompute",
               "attention", "params MiB", "grads MiB", "optim MiB", "activ MiB", "work MiB",
               "peak MiB", "high-water", "+fwd FLOPs", "+attn bwd");
        for (int m = 0; m < n; m++) {
            ArenaStats s = arena_stats(arenas[m]);
            printf("%-10s %-9s %11.2f %11.2f %11.2f %11.2f %11.2f %11.2f %11.2f %9.1f%% %9.1f%%\n",
                   mode_names[modes[m].recompute], attention_names[modes[m].attention],
                   s.at_peak_bytes[ARENA_CAT_PARAMS] / mib, s.at_peak_bytes[ARENA_CAT_GRADS] / mib,
                   s.at_peak_bytes[ARENA_CAT_OPTIMIZER] / mib,
                   s.at_peak_bytes[ARENA_CAT_ACTIVATIONS] / mib,
                   s.at_peak_bytes[ARENA_CAT_WORKSPACE] / mib, s.peak_used_bytes / mib,
                   s.high_water_bytes / mib, fwd > 0 ? 100.0 * extra[m] / fwd : 0.0,
                   fwd > 0 ? 100.0 * attn_extra[m] / fwd : 0.0);
        }
        printf("(category columns: bytes at the step's peak; high-water: the reservation the run "
               "needs; +fwd FLOPs: forward work recomputed in backward; +attn bwd: what the fused "
               "attention's backward recomputes (the scores), both as a share of the forward)\n");
        ArenaStats s0 = arena_stats(arenas[0]); /* none, naive */
        for (int m = 1; m < n; m++) {
            ArenaStats s = arena_stats(arenas[m]);
            double act = (double)s0.at_peak_bytes[ARENA_CAT_ACTIVATIONS] -
                         (double)s.at_peak_bytes[ARENA_CAT_ACTIVATIONS];
            double hw = (double)s0.high_water_bytes - (double)s.high_water_bytes;
            printf("recompute %-9s attention %-5s saves %.0f bytes of activations at the peak "
                   "(%.2f MiB) and %.0f bytes of high-water (%.2f MiB)\n",
                   mode_names[modes[m].recompute], attention_names[modes[m].attention], act,
                   act / mib, hw, hw / mib);
        }
    }
    for (int m = 0; m < n; m++)
        arena_free(arenas[m]);
    return 0;
}

/* Largest B in [1, FIT_MAX_BATCH] whose plan fits in `limit`; 0 when even B = 1 does not. */
static int64_t fit_batch(const TrainConfig *cfg, GptDevice dev, MemMode mode, size_t limit,
                         size_t *hw_out) {
    Err err;
    int64_t lo = 0, hi = 1;
    size_t hw_lo = 0;
    /* grow until it does not fit */
    for (;;) {
        Arena *a = NULL;
        int rc = plan(cfg, dev, hi, mode, limit, &a, &err);
        size_t hw = arena_stats(a).high_water_bytes;
        arena_free(a);
        if (rc != 0)
            break;
        lo = hi;
        hw_lo = hw;
        if (hi >= FIT_MAX_BATCH) {
            *hw_out = hw_lo;
            return lo;
        }
        hi *= 2;
    }
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        Arena *a = NULL;
        int rc = plan(cfg, dev, mid, mode, limit, &a, &err);
        size_t hw = arena_stats(a).high_water_bytes;
        arena_free(a);
        if (rc == 0) {
            lo = mid;
            hw_lo = hw;
        } else {
            hi = mid;
        }
    }
    *hw_out = hw_lo;
    return lo;
}

static int mem_fit(const TrainConfig *cfg, GptDevice dev) {
    MemMode modes[MEM_MAX_MODES];
    int n = mem_modes(cfg, dev, modes);
    int64_t best[MEM_MAX_MODES];
    size_t hw[MEM_MAX_MODES];
    for (int m = 0; m < n; m++)
        best[m] = fit_batch(cfg, dev, modes[m], cfg->fit, &hw[m]);
    char sz[32];
    if (cfg->format == CONFIG_FORMAT_JSON) {
        printf("{\n  \"fit_bytes\": %zu,\n  \"device\": \"%s\",\n  \"block_size\": %lld,\n"
               "  \"modes\": [\n",
               cfg->fit, dev == GPT_DEVICE_CUDA ? "cuda" : "cpu", (long long)cfg->block_size);
        for (int m = 0; m < n; m++)
            printf("    {\"recompute\": \"%s\", \"attention\": \"%s\", \"max_batch_size\": %lld, "
                   "\"high_water_bytes\": %zu}%s\n",
                   mode_names[modes[m].recompute], attention_names[modes[m].attention],
                   (long long)best[m], hw[m], m < n - 1 ? "," : "");
        printf("  ]\n}\n");
        return 0;
    }
    GptConfig c;
    run_gpt_config(cfg, &c);
    print_plan_header(cfg, &c, dev);
    printf("\nlargest batch_size whose arena fits in %zu bytes (%s), block_size %lld:\n", cfg->fit,
           size_format(cfg->fit, sz, sizeof sz), (long long)cfg->block_size);
    for (int m = 0; m < n; m++) {
        if (best[m] == 0)
            printf("  recompute %-9s attention %-5s  none: even batch_size 1 does not fit\n",
                   mode_names[modes[m].recompute], attention_names[modes[m].attention]);
        else
            printf(
                "  recompute %-9s attention %-5s  batch_size %6lld  (high-water %zu bytes, %s)\n",
                mode_names[modes[m].recompute], attention_names[modes[m].attention],
                (long long)best[m], hw[m], size_format(hw[m], sz, sizeof sz));
    }
    if (dev == GPT_DEVICE_CUDA)
        printf("the CUDA context and library handles come on top of the arena (train measures "
               "them on the GPU): leave room for them\n");
    return 0;
}

int cmd_mem(const TrainConfig *cfg) {
    GptDevice dev;
    Err err;
    run_threads(cfg);
    if (run_device(cfg, 1, &dev, &err) != 0) {
        fprintf(stderr, "arenagpt mem: %s\n", err.msg);
        return CONFIG_EXIT_USAGE;
    }
    GptConfig c;
    run_gpt_config(cfg, &c);
    if (gpt_config_check(&c, dev, &err) != 0) {
        fprintf(stderr, "arenagpt mem: %s\n", err.msg);
        return CONFIG_EXIT_USAGE;
    }
    if (cfg->fit)
        return mem_fit(cfg, dev);
    if (cfg->compare)
        return mem_compare(cfg, dev);
    return mem_single(cfg, dev);
}
