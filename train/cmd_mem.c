/* cmd_mem.c: `arenagpt mem`: plans a run's memory without running it, through the same
 * allocation code as training, on a plan arena (gpt_plan), never touching a GPU. Prints the
 * layout planned (first line), the parameter counts, the per-category plan and the top tensors
 * (table, JSON or CSV); --compare plans every mode (recompute x attention kind, mem_modes)
 * side by side with the extra FLOPs each costs; --fit=SIZE finds the largest batch_size per
 * mode whose arena high-water mark fits in SIZE less --reserve (the CUDA context and
 * libraries: by default the `gpu` table entry's estimate, model/gpu_table.h); --html=FILE also
 * writes the memory page (mem_html.h). The loss head's chunk is shown with its workspace and
 * the wte traffic it costs (model/loss_chunk.h); --compare adds 2-4 chunk sizes side by side.
 * With --world_size=N every report is one rank's, and --compare shows ZeRO stages 0 and 1 side by
 * side instead (mem_zero.h).
 * optimizer_offload plans two arenas, the device's and the host's (pinned: the optimizer
 * state): the table and JSON show both, --compare and --fit add offload off/on as a toggle on
 * the CUDA layout, and the host bytes are held against this machine's memory
 * (/proc/meminfo's MemAvailable).
 * JSON schema: see README.md ("arenagpt mem --format=json"). */
#include <stdio.h>
#include <string.h>

#include "../model/gpu_table.h"
#include "../model/loss_chunk.h"
#include "commands.h"
#include "mem_html.h"
#include "mem_zero.h"
#include "run_common.h"

#define FIT_MAX_BATCH (1 << 20) /* search bound for --fit; far beyond any card */

/* The modes --compare and --fit plan side by side: one row each, every recompute mode x every
 * attention kind the device can plan (mem_modes). */
typedef struct MemMode {
    GptRecompute recompute;
    GptAttention attention;
    int offload; /* optimizer_offload (CUDA layout only) */
} MemMode;
#define MAX_MODES (2 * 3 * GPT_ATTENTION_COUNT)

/* recompute none/selective/full x attention naive/flash/cudnn, the attention kind varying
 * fastest, without the combinations gpt_config_check refuses on this device (cudnn on the
 * CPU, flash on CUDA past its head size); returns how many */
static int mem_modes(const RunSetup *rs, MemMode *out) {
    static const GptAttention order[GPT_ATTENTION_COUNT] = {
        GPT_ATTENTION_NAIVE, GPT_ATTENTION_FLASH, GPT_ATTENTION_CUDNN};
    int n = 0;
    for (int o = 0; o < (rs->dev == GPT_DEVICE_CUDA ? 2 : 1); o++) /* offload off, then on */
        for (int r = 0; r < 3; r++)
            for (int a = 0; a < GPT_ATTENTION_COUNT; a++) {
                GptConfig c = rs->model;
                Err err;
                c.recompute = (GptRecompute)r;
                c.attention = order[a];
                c.optimizer_offload = o;
                if (gpt_config_check(&c, rs->dev, &err) == 0)
                    out[n++] = (MemMode){(GptRecompute)r, order[a], o};
            }
    return n;
}

static void mode_apply(const MemMode *m, GptConfig *c) {
    c->recompute = m->recompute;
    c->attention = m->attention;
    c->optimizer_offload = m->offload;
}

/* The JSON members that name a mode (after the opening brace). */
static void mode_json(const MemMode *m, FILE *f) {
    fprintf(f, "\"recompute\": \"%s\", \"attention\": \"%s\", \"optimizer_offload\": %s",
            GPT_RECOMPUTE_NAMES[m->recompute], GPT_ATTENTION_NAMES[m->attention],
            m->offload ? "true" : "false");
}

/* The host arena's high-water mark of a plan (0 without optimizer_offload). */
static size_t host_high_water(const GptPlan *p) {
    return p && p->host_arena ? arena_stats(p->host_arena).high_water_bytes : 0;
}

/* This machine's memory from /proc/meminfo (bytes): -1 when it cannot be read. */
static int host_memory(size_t *total, size_t *available) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return -1;
    char line[256];
    unsigned long long kb;
    int got = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
            *total = (size_t)kb * 1024, got |= 1;
        else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            *available = (size_t)kb * 1024, got |= 2;
    }
    fclose(f);
    return got == 3 ? 0 : -1;
}

/* The host arena against this machine's memory: 1 fits, 0 does not, -1 unknown; a line in buf. */
static int host_fits(size_t host_bytes, char *buf, size_t len) {
    size_t total = 0, avail = 0;
    char h[32], a[32], t[32];
    if (host_memory(&total, &avail) != 0) {
        snprintf(buf, len,
                 "host arena %s (pinned); this machine's memory: unknown (no "
                 "/proc/meminfo)",
                 size_format(host_bytes, h, sizeof h));
        return -1;
    }
    snprintf(buf, len,
             "host arena %s (pinned) against this machine's MemAvailable %s (MemTotal "
             "%s, /proc/meminfo): %s",
             size_format(host_bytes, h, sizeof h), size_format(avail, a, sizeof a),
             size_format(total, t, sizeof t), host_bytes <= avail ? "fits" : "does NOT fit");
    return host_bytes <= avail;
}

/* The training plan of the run (with mode m applied when not NULL) at batch B. */
static GptPlanArgs plan_args(const RunSetup *rs, int64_t B, size_t limit, int trace) {
    return (GptPlanArgs){.phase = GPT_PLAN_TRAIN,
                         .B = B,
                         .T = rs->cfg.block_size,
                         .grad_accum = rs->cfg.gradient_accumulation_steps,
                         .limit_bytes = limit,
                         .trace = trace};
}

static int plan(const RunSetup *rs, int64_t B, const MemMode *m, size_t limit, GptPlan **out,
                Err *err) {
    GptConfig c = rs->model;
    if (m)
        mode_apply(m, &c);
    GptPlanArgs a = plan_args(rs, B, limit, 0);
    return gpt_plan(&c, rs->dev, &a, out, err);
}

static void loss_head_cost(const RunSetup *rs, int64_t chunk, GptLossHeadCost *h) {
    gpt_loss_head_cost(&rs->model, rs->dev, rs->cfg.batch_size, rs->cfg.block_size, chunk, h);
}

/* The members that describe one loss-head chunk (no braces, no trailing newline). */
static void loss_head_json(const GptLossHeadCost *h, int automatic) {
    printf("\"chunk\": %lld, \"chunks\": %lld, \"automatic\": %s, \"logits_bytes\": %zu, "
           "\"wte_traffic_bytes\": %.0f, \"extra_wte_traffic_bytes\": %.0f",
           (long long)h->chunk, (long long)h->n_chunks, automatic ? "true" : "false",
           h->logits_bytes, h->wte_traffic_bytes, h->extra_wte_traffic_bytes);
}

/* The table's loss-head line: the chunk, its workspace and the wte traffic it costs. */
static void print_loss_head(const RunSetup *rs) {
    const GptConfig *c = &rs->model;
    GptLossHeadCost h;
    loss_head_cost(rs, gpt_loss_chunk(c, rs->dev, rs->cfg.batch_size, rs->cfg.block_size), &h);
    char sz[32];
    printf("loss head: %lld chunks of %lld rows (%s), ws.logits %zu bytes (%s), wte and "
           "grad.wte traffic %.2f GB per micro-step (%.2f GB more than one chunk)\n",
           (long long)h.n_chunks, (long long)h.chunk,
           c->loss_chunk > 0 ? "loss_chunk as set"
                             : "automatic: the fewest chunks whose logits fit in 160 MiB",
           h.logits_bytes, size_format(h.logits_bytes, sz, sizeof sz), h.wte_traffic_bytes / 1e9,
           h.extra_wte_traffic_bytes / 1e9);
}

static void json_header(const RunSetup *rs) {
    const TrainConfig *cfg = &rs->cfg;
    const GptConfig *c = &rs->model;
    GptParamCounts pc;
    gpt_param_counts(c, &pc);
    printf("{\n  \"model\": {\"n_layer\": %lld, \"n_head\": %lld, \"n_embd\": %lld, "
           "\"block_size\": %lld, \"vocab_size\": %lld, \"bias\": %s, \"gelu\": \"%s\"},\n",
           (long long)cfg->n_layer, (long long)cfg->n_head, (long long)cfg->n_embd,
           (long long)cfg->block_size, (long long)cfg->vocab_size, cfg->bias ? "true" : "false",
           GPT_GELU_NAMES[cfg->gelu]);
    printf("  \"device\": \"%s\",\n  \"dtype\": \"%s\",\n  \"batch_size\": %lld,\n  "
           "\"gradient_accumulation_steps\": %lld,\n  \"attention\": \"%s\",\n  \"loss_chunk\": "
           "%lld,\n",
           rs->dev == GPT_DEVICE_CUDA ? "cuda" : "cpu", run_dtype_name(rs->dev, c),
           (long long)cfg->batch_size, (long long)cfg->gradient_accumulation_steps,
           gpt_attention_name(cfg->attention),
           (long long)gpt_loss_chunk(c, rs->dev, cfg->batch_size, cfg->block_size));
    GptLossHeadCost h;
    loss_head_cost(rs, gpt_loss_chunk(c, rs->dev, cfg->batch_size, cfg->block_size), &h);
    printf("  \"loss_head\": {");
    loss_head_json(&h, c->loss_chunk <= 0);
    printf("},\n");
    printf("  \"params\": {\"total\": %lld, \"non_embedding\": %lld, \"decay\": {\"tensors\": "
           "%lld, \"count\": %lld}, \"no_decay\": {\"tensors\": %lld, \"count\": %lld}},\n",
           (long long)pc.total, (long long)pc.non_embedding, (long long)pc.decay_tensors,
           (long long)pc.decay_count, (long long)pc.no_decay_tensors, (long long)pc.no_decay_count);
    if (c->world_size > 1) /* per rank (mem_zero.h); absent for one process */
        printf("  \"world_size\": %d,\n  \"zero_stage\": %d,\n", c->world_size, c->zero_stage);
}

/* The table header: the layout planned (first line), the model, its parameters, the batch. */
static void print_plan_header(const RunSetup *rs) {
    const TrainConfig *cfg = &rs->cfg;
    const GptConfig *c = &rs->model;
    const GptLayout *lay = gpt_layout_of(rs->dev, c->bf16, c->grad_f32);
    printf("layout: %s, %s%s%s (params %s, grads %s, activations %s, optimizer f32 %s)%s\n",
           rs->dev == GPT_DEVICE_CUDA ? "cuda" : "cpu", rs->dev == GPT_DEVICE_CUDA ? "dtype " : "",
           run_dtype_name(rs->dev, c), rs->dev == GPT_DEVICE_CUDA ? ", mixed precision" : "",
           arena_dtype_name(lay->param_dtype), arena_dtype_name(lay->grad_dtype),
           arena_dtype_name(lay->act_dtype), lay->has_master ? "master + m + v" : "m + v",
           cfg->device != CONFIG_DEVICE_AUTO ? ""
           : rs->dev == GPT_DEVICE_CUDA ? "; device auto plans the GPU's, --device=cpu the CPU's"
                                        : "; dtype float32 plans the CPU's");
    char vnote[3 * CONFIG_STR_LEN + 8] = "";
    if (rs->vocab_note[0])
        snprintf(vnote, sizeof vnote, " (%s)", rs->vocab_note);
    printf("model: n_layer %lld, n_head %lld, n_embd %lld, block_size %lld, vocab_size %lld%s, "
           "bias %s, gelu %s\n",
           (long long)cfg->n_layer, (long long)cfg->n_head, (long long)cfg->n_embd,
           (long long)cfg->block_size, (long long)cfg->vocab_size, vnote,
           cfg->bias ? "True" : "False", GPT_GELU_NAMES[cfg->gelu]);
    run_print_params(c);
    mem_zero_header(rs);
    printf("plan: batch_size %lld x block_size %lld, gradient_accumulation_steps %lld, attention "
           "%s, loss_chunk %lld tokens\n",
           (long long)cfg->batch_size, (long long)cfg->block_size,
           (long long)cfg->gradient_accumulation_steps, gpt_attention_name(cfg->attention),
           (long long)gpt_loss_chunk(c, rs->dev, cfg->batch_size, cfg->block_size));
    print_loss_head(rs);
}

/* The plan's timeline: the same planned run on a traced arena, written as a Chrome trace. */
static int mem_trace(const RunSetup *rs) {
    const TrainConfig *cfg = &rs->cfg;
    Err err;
    GptPlan *p = NULL;
    GptPlanArgs args = plan_args(rs, cfg->batch_size, 0, 1);
    int rc = gpt_plan(&rs->model, rs->dev, &args, &p, &err);
    FILE *f = rc == 0 ? fopen(cfg->trace_file, "w") : NULL;
    if (rc == 0 && (!f || arena_report_trace(p->arena, f) != 0)) {
        err_set(&err, "cannot write trace_file '%s'", cfg->trace_file);
        rc = -1;
    }
    if (f)
        fclose(f);
    gpt_plan_free(p);
    if (rc != 0)
        fprintf(stderr, "arenagpt mem: %s\n", err.msg);
    else if (cfg->format == CONFIG_FORMAT_TABLE)
        printf("arena timeline of the planned step written to %s (open it in Perfetto)\n",
               cfg->trace_file);
    return rc == 0 ? 0 : 1;
}

/* What --fit (and the gpu line) sets aside outside the arena, and why (for the report). */
static size_t fit_reserve(const RunSetup *rs, const char **why) {
    const TrainConfig *cfg = &rs->cfg;
    const GpuSpec *gpu = gpu_table_find(cfg->gpu); /* checked by config_validate */
    if (config_is_set(cfg, "reserve")) {
        *why = "--reserve";
        return cfg->reserve;
    }
    if (rs->dev != GPT_DEVICE_CUDA) {
        *why = "the cpu layout: no CUDA context";
        return 0;
    }
    *why = gpu->context_source;
    return gpu->context_bytes;
}

/* The arena plus what the CUDA context and libraries take, against the `gpu`'s memory. */
static void print_on_gpu(const RunSetup *rs, size_t high_water) {
    const GpuSpec *gpu = gpu_table_find(rs->cfg.gpu); /* checked by config_validate */
    const char *why = "";
    size_t reserve = fit_reserve(rs, &why);
    size_t total = high_water + reserve;
    char a[32], b[32], t[32], m[32];
    printf("  on %s (%s): arena %s + CUDA context and libraries %s (%s) = %s: %s\n", gpu->key,
           size_format(gpu->memory_bytes, m, sizeof m), size_format(high_water, a, sizeof a),
           size_format(reserve, b, sizeof b),
           gpu->context_measured || config_is_set(&rs->cfg, "reserve") ? why : "an estimate",
           size_format(total, t, sizeof t), total <= gpu->memory_bytes ? "fits" : "does NOT fit");
}

static int mem_single(const RunSetup *rs) {
    const TrainConfig *cfg = &rs->cfg;
    const GptConfig *c = &rs->model;
    GptPlan *p = NULL;
    Err err;
    int rc = plan(rs, cfg->batch_size, NULL, cfg->memory_limit, &p, &err);
    if (rc != 0 && !p) {
        fprintf(stderr, "arenagpt mem: %s\n", err.msg);
        return 1;
    }
    const Arena *a = p->arena;
    if (cfg->format == CONFIG_FORMAT_JSON) {
        json_header(rs);
        printf("  \"recompute\": \"%s\",\n  \"fits\": %s,\n", GPT_RECOMPUTE_NAMES[c->recompute],
               rc == 0 ? "true" : "false");
        if (p->host_arena) { /* optimizer_offload: the host arena, then the device's fields */
            printf("  \"host\": {\n");
            arena_report_json_fields(p->host_arena, stdout, "    ");
            printf("  },\n");
        }
        printf("  \"flops\": {\"forward_per_token\": %.0f, \"recompute_extra_per_token\": %.0f, "
               "\"attention_backward_extra_per_token\": %.0f},\n",
               gpt_flops_forward_per_token(c, cfg->block_size),
               gpt_flops_recompute_per_token(c, cfg->block_size, c->recompute),
               gpt_flops_attention_recompute_per_token(c, cfg->block_size, rs->dev));
        arena_report_json_fields(a, stdout, "  ");
        printf("}\n");
    } else if (cfg->format == CONFIG_FORMAT_CSV && p->host_arena) {
        fprintf(stderr, "arenagpt mem: --format=csv writes one arena, and optimizer_offload plans "
                        "two (device and host): use --format=table or --format=json\n");
        gpt_plan_free(p);
        return CONFIG_EXIT_USAGE;
    } else if (cfg->format == CONFIG_FORMAT_CSV) {
        arena_report_csv(a, stdout);
    } else {
        print_plan_header(rs);
        printf("recompute %s\n", GPT_RECOMPUTE_NAMES[c->recompute]);
        if (rc != 0)
            printf("plan REFUSED by memory_limit: what follows is the partial plan up to the "
                   "refused allocation, not the run's needs\n");
        if (p->host_arena)
            printf("device arena (optimizer_offload: the optimizer state is in the host arena "
                   "below):\n");
        arena_report_table(a, stdout, (int)cfg->top);
        if (p->host_arena) {
            printf("host arena (optimizer_offload: pinned host memory; f32 master, m, v and the "
                   "update's staging):\n");
            arena_report_table(p->host_arena, stdout, (int)cfg->top);
        }
        if (rc != 0)
            printf("plan REFUSED: the run does not fit in memory_limit %zu bytes (see the "
                   "message below)\n",
                   cfg->memory_limit);
        else if (rs->dev == GPT_DEVICE_CUDA)
            print_on_gpu(rs, arena_stats(a).high_water_bytes);
        char line[256];
        if (rc == 0 && p->host_arena && host_fits(host_high_water(p), line, sizeof line) >= -1)
            printf("  %s\n", line);
    }
    if (rc != 0)
        fprintf(stderr, "arenagpt mem: does not fit: %s\n", err.msg);
    gpt_plan_free(p);
    if (rc == 0 && cfg->trace_file[0])
        return mem_trace(rs);
    return rc == 0 ? 0 : 1;
}

/* --compare's loss-head part: the config's mode planned with each of the chunk sizes
 * gpt_loss_chunk_choices gives, memory against wte traffic; a JSON array member or a table. */
static int mem_compare_chunks(const RunSetup *rs, int json) {
    const TrainConfig *cfg = &rs->cfg;
    const double mib = 1024.0 * 1024.0;
    int64_t chunks[GPT_LOSS_CHUNK_CHOICES];
    int n = gpt_loss_chunk_choices(&rs->model, rs->dev, cfg->batch_size, cfg->block_size, chunks);
    int64_t aut = gpt_loss_chunk_auto(&rs->model, rs->dev, cfg->batch_size, cfg->block_size);
    if (json)
        printf(",\n  \"loss_chunks\": [\n");
    else
        printf("\nloss head (recompute %s, attention %s): chunk size against memory and wte "
               "traffic\n%8s %7s %12s %11s %11s %13s %13s\n",
               GPT_RECOMPUTE_NAMES[rs->model.recompute], gpt_attention_name(cfg->attention),
               "chunk", "chunks", "logits MiB", "peak MiB", "high-water", "wte GB/micro",
               "extra GB");
    for (int i = 0; i < n; i++) {
        GptConfig c = rs->model;
        c.loss_chunk = chunks[i];
        GptPlan *p = NULL;
        Err err;
        GptPlanArgs args = plan_args(rs, cfg->batch_size, cfg->memory_limit, 0);
        if (gpt_plan(&c, rs->dev, &args, &p, &err) != 0) {
            gpt_plan_free(p);
            fprintf(stderr, "arenagpt mem --compare: loss_chunk %lld: %s\n", (long long)chunks[i],
                    err.msg);
            return 1;
        }
        ArenaStats st = arena_stats(p->arena);
        gpt_plan_free(p);
        GptLossHeadCost h;
        loss_head_cost(rs, chunks[i], &h);
        if (json) {
            printf("   {");
            loss_head_json(&h, chunks[i] == aut);
            printf(",\n    \"peak_bytes\": %zu, \"high_water_bytes\": %zu}%s\n", st.peak_used_bytes,
                   st.high_water_bytes, i + 1 < n ? "," : "");
        } else {
            printf("%8lld %7lld %12.2f %11.2f %11.2f %13.2f %13.2f%s\n", (long long)h.chunk,
                   (long long)h.n_chunks, (double)h.logits_bytes / mib, st.peak_used_bytes / mib,
                   st.high_water_bytes / mib, h.wte_traffic_bytes / 1e9,
                   h.extra_wte_traffic_bytes / 1e9,
                   chunks[i] == aut                                 ? "  (automatic)"
                   : chunks[i] == cfg->batch_size * cfg->block_size ? "  (one chunk)"
                                                                    : "");
        }
    }
    if (json)
        printf("  ]");
    else
        printf("(wte GB/micro: wte read twice and grad.wte read and written per chunk; extra: "
               "beyond one chunk of B*T rows; set loss_chunk to choose)\n");
    return 0;
}

/* One row of --compare's table: the mode, the device arena at the peak, the host arena. */
static void compare_row(const RunSetup *rs, const MemMode *mode, const GptConfig *c,
                        const GptPlan *p, double fwd) {
    const double mib = 1024.0 * 1024.0;
    int64_t T = rs->cfg.block_size;
    ArenaStats s = arena_stats(p->arena);
    double extra = gpt_flops_recompute_per_token(c, T, c->recompute);
    double attn = gpt_flops_attention_recompute_per_token(c, T, rs->dev);
    printf("%-10s %-9s %-7s %11.2f %11.2f %11.2f %11.2f %11.2f %11.2f %11.2f %11.2f %9.1f%% "
           "%9.1f%%\n",
           GPT_RECOMPUTE_NAMES[mode->recompute], GPT_ATTENTION_NAMES[mode->attention],
           mode->offload ? "on" : "off", s.at_peak_bytes[ARENA_CAT_PARAMS] / mib,
           s.at_peak_bytes[ARENA_CAT_GRADS] / mib, s.at_peak_bytes[ARENA_CAT_OPTIMIZER] / mib,
           s.at_peak_bytes[ARENA_CAT_ACTIVATIONS] / mib, s.at_peak_bytes[ARENA_CAT_WORKSPACE] / mib,
           s.peak_used_bytes / mib, s.high_water_bytes / mib, host_high_water(p) / mib,
           fwd > 0 ? 100.0 * extra / fwd : 0.0, fwd > 0 ? 100.0 * attn / fwd : 0.0);
}

static int mem_compare(const RunSetup *rs) {
    const TrainConfig *cfg = &rs->cfg;
    MemMode modes[MAX_MODES];
    int n_modes = mem_modes(rs, modes);
    GptPlan *plans[MAX_MODES] = {NULL};
    GptConfig mc[MAX_MODES];
    Err err;
    int rc = 0;
    for (int m = 0; m < n_modes && rc == 0; m++) {
        mc[m] = rs->model;
        mode_apply(&modes[m], &mc[m]);
        if (plan(rs, cfg->batch_size, &modes[m], cfg->memory_limit, &plans[m], &err) != 0) {
            fprintf(stderr, "arenagpt mem --compare: recompute %s, attention %s, offload %s: %s\n",
                    GPT_RECOMPUTE_NAMES[modes[m].recompute],
                    GPT_ATTENTION_NAMES[modes[m].attention], modes[m].offload ? "on" : "off",
                    err.msg);
            rc = 1;
        }
    }
    double fwd = gpt_flops_forward_per_token(&rs->model, cfg->block_size);
    if (rc == 0 && cfg->format == CONFIG_FORMAT_JSON) {
        json_header(rs);
        printf("  \"flops\": {\"forward_per_token\": %.0f},\n  \"modes\": [\n", fwd);
        for (int m = 0; m < n_modes; m++) {
            double extra = gpt_flops_recompute_per_token(&mc[m], cfg->block_size, mc[m].recompute);
            double attn = gpt_flops_attention_recompute_per_token(&mc[m], cfg->block_size, rs->dev);
            printf("   {");
            mode_json(&modes[m], stdout);
            printf(", \"recompute_extra_per_token\": %.0f, \"extra_forward_flops_fraction\": %.6f, "
                   "\"attention_backward_extra_per_token\": %.0f,\n",
                   extra, fwd > 0 ? extra / fwd : 0.0, attn);
            if (plans[m]->host_arena) {
                printf("    \"host\": {\n");
                arena_report_json_fields(plans[m]->host_arena, stdout, "      ");
                printf("    },\n");
            }
            arena_report_json_fields(plans[m]->arena, stdout, "    ");
            printf("   }%s\n", m + 1 < n_modes ? "," : "");
        }
        printf("  ]");
        rc = mem_compare_chunks(rs, 1);
        printf("\n}\n");
    } else if (rc == 0) {
        const double mib = 1024.0 * 1024.0;
        print_plan_header(rs);
        printf("\n%-10s %-9s %-7s %11s %11s %11s %11s %11s %11s %11s %11s %10s %10s\n", "recompute",
               "attention", "offload", "params MiB", "grads MiB", "optim MiB", "activ MiB",
               "work MiB", "peak MiB", "high-water", "host MiB", "+fwd FLOPs", "+attn bwd");
        for (int m = 0; m < n_modes; m++)
            compare_row(rs, &modes[m], &mc[m], plans[m], fwd);
        printf("(category columns: the device arena's bytes at the step's peak; high-water: the "
               "reservation the run needs on the device; host MiB: the pinned host arena of "
               "optimizer_offload (the optimizer state); +fwd FLOPs: forward work recomputed in "
               "backward; +attn bwd: what the fused attention's backward recomputes (the scores), "
               "both as a share of the forward)\n");
        ArenaStats s0 = arena_stats(plans[0]->arena); /* recompute none, attention naive */
        for (int m = 1; m < n_modes; m++) {
            ArenaStats s = arena_stats(plans[m]->arena);
            long long saved = (long long)s0.at_peak_bytes[ARENA_CAT_ACTIVATIONS] -
                              (long long)s.at_peak_bytes[ARENA_CAT_ACTIVATIONS];
            printf("recompute %-9s attention %-5s offload %-3s saves %lld bytes of activations at "
                   "the peak (%.2f MiB) and %lld bytes of device high-water (%.2f MiB)\n",
                   GPT_RECOMPUTE_NAMES[modes[m].recompute], GPT_ATTENTION_NAMES[modes[m].attention],
                   modes[m].offload ? "on" : "off", saved, (double)saved / mib,
                   (long long)s0.high_water_bytes - (long long)s.high_water_bytes,
                   ((double)s0.high_water_bytes - (double)s.high_water_bytes) / mib);
        }
        rc = mem_compare_chunks(rs, 0);
    }
    for (int m = 0; m < n_modes; m++)
        gpt_plan_free(plans[m]);
    return rc;
}

/* Largest B in [1, FIT_MAX_BATCH] whose plan of mode fits in `limit` (gpt_plan_fit); 0 when
 * even B = 1 does not. */
static int64_t fit_batch(const RunSetup *rs, const MemMode *mode, size_t limit, size_t *hw_out) {
    GptConfig c = rs->model;
    mode_apply(mode, &c);
    GptPlanArgs a = plan_args(rs, 1, limit, 0);
    return gpt_plan_fit(&c, rs->dev, &a, FIT_MAX_BATCH, hw_out);
}

/* optimizer_offload: the host arena of mode at batch B (at least 1), against this machine's
 * memory: 1 fits (or no offload: *host 0, line ""), 0 does not. */
static int fit_host(const RunSetup *rs, const MemMode *mode, int64_t B, size_t *host, char *line,
                    size_t len) {
    *host = 0;
    line[0] = '\0';
    if (!mode->offload)
        return 1;
    GptPlan *p = NULL;
    Err err;
    plan(rs, B > 0 ? B : 1, mode, 0, &p, &err);
    *host = host_high_water(p);
    gpt_plan_free(p);
    return host_fits(*host, line, len) != 0;
}

static int mem_fit(const RunSetup *rs) {
    const TrainConfig *cfg = &rs->cfg;
    const char *why = "";
    size_t reserve = fit_reserve(rs, &why);
    if (reserve >= cfg->fit) {
        char a[32], b[32];
        fprintf(stderr,
                "arenagpt mem: --fit=%s leaves nothing for the arena after reserving %s for "
                "the CUDA context and libraries (%s): give a larger --fit or a smaller "
                "--reserve\n",
                size_format(cfg->fit, a, sizeof a), size_format(reserve, b, sizeof b), why);
        return CONFIG_EXIT_USAGE;
    }
    size_t arena_limit = cfg->fit - reserve;
    if (cfg->memory_limit && cfg->memory_limit < arena_limit)
        arena_limit = cfg->memory_limit; /* the arena's own budget is the tighter one */
    MemMode modes[MAX_MODES];
    int n_modes = mem_modes(rs, modes);
    int64_t best[MAX_MODES];
    size_t hw[MAX_MODES], host[MAX_MODES];
    int host_ok[MAX_MODES];
    char host_line[MAX_MODES][256];
    for (int m = 0; m < n_modes; m++) {
        best[m] = fit_batch(rs, &modes[m], arena_limit, &hw[m]);
        host_ok[m] = fit_host(rs, &modes[m], best[m], &host[m], host_line[m], sizeof host_line[m]);
    }
    char sz[32];
    if (cfg->format == CONFIG_FORMAT_JSON) {
        printf("{\n  \"fit_bytes\": %zu,\n  \"reserve_bytes\": %zu,\n  \"reserve_source\": "
               "\"%s\",\n  \"gpu\": \"%s\",\n  \"device\": \"%s\",\n  \"block_size\": %lld,\n"
               "  \"modes\": [\n",
               cfg->fit, reserve, why, cfg->gpu, rs->dev == GPT_DEVICE_CUDA ? "cuda" : "cpu",
               (long long)cfg->block_size);
        for (int m = 0; m < n_modes; m++) {
            printf("    {");
            mode_json(&modes[m], stdout);
            printf(", \"max_batch_size\": %lld, \"high_water_bytes\": %zu, "
                   "\"host_high_water_bytes\": %zu, \"host_fits\": %s}%s\n",
                   (long long)best[m], hw[m], host[m], host_ok[m] ? "true" : "false",
                   m + 1 < n_modes ? "," : "");
        }
        printf("  ]\n}\n");
        return 0;
    }
    print_plan_header(rs);
    printf("\n%s: reserved %zu bytes (%s) for the CUDA context and libraries (gpu %s: %s)\n",
           config_is_set(cfg, "reserve") ? "--reserve" : "--fit", reserve,
           size_format(reserve, sz, sizeof sz), cfg->gpu, why);
    printf("largest batch_size whose arena fits in %zu bytes (%s: %s), block_size %lld:\n",
           arena_limit, size_format(arena_limit, sz, sizeof sz),
           arena_limit < cfg->fit - reserve ? "memory_limit" : "--fit less the reserve",
           (long long)cfg->block_size);

    for (int m = 0; m < n_modes; m++) {
        const char *name = GPT_RECOMPUTE_NAMES[modes[m].recompute];
        const char *att = GPT_ATTENTION_NAMES[modes[m].attention];
        const char *off = modes[m].offload ? "on" : "off";
        if (best[m] == 0)
            printf("  recompute %-9s attention %-5s offload %-3s  none: even batch_size 1 does not "
                   "fit the device\n",
                   name, att, off);
        else if (!host_ok[m])
            printf("  recompute %-9s attention %-5s offload %-3s  none: the device fits batch_size "
                   "%lld, but the host does not\n",
                   name, att, off, (long long)best[m]);
        else
            printf("  recompute %-9s attention %-5s offload %-3s  batch_size %6lld  (high-water "
                   "%zu bytes, %s)\n",
                   name, att, off, (long long)best[m], hw[m], size_format(hw[m], sz, sizeof sz));
        if (host_line[m][0])
            printf("      %s\n", host_line[m]);
    }
    return 0;
}

int cmd_mem(const TrainConfig *cfg) {
    Err err;
    run_threads(cfg);
    RunSetup rs; /* filled by run_setup (about 15 KiB: on the stack) */
    int rc = run_setup(cfg, CONFIG_CMD_MEM, &rs, &err);
    if (rc != 0) {
        fprintf(stderr, "arenagpt mem: %s\n", err.msg);
        return rc;
    }
    if (rs.cfg.html[0]) { /* the memory page (mem_html.h), then the report asked for */
        if (mem_html_write(rs.cfg.html, &rs.cfg, rs.dev, NULL, &err) != 0) {
            fprintf(stderr, "arenagpt mem: %s\n", err.msg);
            return 1;
        }
        fprintf(stderr, "memory page written to %s\n", rs.cfg.html);
    }
    if (rs.cfg.fit)
        return mem_fit(&rs);
    if (rs.cfg.compare && rs.model.world_size > 1)
        return mem_zero_compare(&rs); /* the ZeRO stages side by side, per rank */
    if (rs.cfg.compare)
        return mem_compare(&rs);
    return mem_single(&rs);
}
