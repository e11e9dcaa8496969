/* mem_html.c: the memory page (mem_html.h). Plans what the page shows, writes it as one JSON
 * object, and splices that object into the page template (train/mem_page.html, built into
 * the binary below) at its one data marker. Every string written into the page has '<', '>'
 * and '&' escaped, so nothing in the data can close the page's <script> element.
 *
 * The nanoGPT file (scripts/nanogpt_memory.py's output) is checked here: it must be valid
 * JSON (parsed with cJSON, the project's one JSON library), carry the script's format tag, and describe
 * the same model and batch; it is then embedded as cJSON writes it back (compact). */
#include "mem_html.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/gpu_table.h"
#include "../model/loss_chunk.h"
#include "run_common.h"

/* The page template, built in at compile time (the Makefile makes mem_html.o depend on it). */
__asm__(".section .rodata\n"
        ".global arenagpt_mem_page_html\n"
        ".type arenagpt_mem_page_html, @object\n"
        "arenagpt_mem_page_html:\n"
        ".incbin \"train/mem_page.html\"\n"
        ".byte 0\n"
        ".size arenagpt_mem_page_html, . - arenagpt_mem_page_html\n"
        ".previous\n");
extern const char arenagpt_mem_page_html[];

#define DATA_MARKER "/*@ARENAGPT_DATA@*/"
#define FIT_CARD_BYTES ((size_t)12 << 30) /* the 12 GiB card the users train on */
#define FIT_MAX_BATCH (1 << 20)           /* search bound for the largest batch */
#define NANOGPT_FORMAT "arenagpt-nanogpt-memory/1"
#define NANOGPT_MAX_BYTES (4 << 20) /* the script writes a few hundred KiB */
#define DEFAULT_GPU "rtx4070"
/* The page plans a step with at most this many micro-steps: the config's timeline, and
 * (MODES_MAX_MICRO_STEPS) every mode's figures, timeline and largest batch. A micro-step
 * allocates and frees exactly what the one before did (gradients are persistent), so the peaks
 * and the high-water mark do not depend on gradient_accumulation_steps (tested in
 * test_mem_html.c); planning all of gpt2_124m's 40 per mode would make a page of megabytes,
 * and a run with 100000 of them would plan for minutes. */
#define TIMELINE_MAX_MICRO_STEPS 4
#define MODES_MAX_MICRO_STEPS 2

/* ---- JSON output ---- */

static void jstr(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == '<' || c == '>' || c == '&')
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void jcats(FILE *f, const size_t v[ARENA_CAT_COUNT]) {
    fputc('{', f);
    for (int c = 0; c < ARENA_CAT_COUNT; c++)
        fprintf(f, "%s\"%s\": %zu", c ? ", " : "", arena_category_name((ArenaCategory)c), v[c]);
    fputc('}', f);
}

/* ---- the timeline: blocks (tensor lifetimes) from the arena's event trace ---- */

typedef struct Block {
    int64_t alloc_ev, free_ev; /* free_ev -1: still live at the end */
    size_t offset, bytes;
} Block;

/* One trace event: its kind ('A', 'F', 'M'), and the rest through the pointers. */
typedef struct Event {
    char kind;
    ArenaCategory cat;
    size_t bytes, offset, used[ARENA_CAT_COUNT];
    const char *name;
} Event;

static Event event_at(const Arena *a, int64_t i) {
    Event e;
    double ts;
    arena_trace_get(a, i, &ts, &e.kind, &e.cat, &e.bytes, &e.offset, e.used, &e.name);
    return e;
}

/* Pairs every free with its alloc (the live block at the same offset): block_of_event[i] is
 * the block an alloc event starts, -1 for the other events. Returns the number of blocks. */
static int64_t pair_blocks(const Arena *a, int64_t n, Block *blocks, int64_t *block_of_event,
                           int64_t *live) {
    int64_t n_blocks = 0, n_live = 0;
    for (int64_t i = 0; i < n; i++) {
        Event e = event_at(a, i);
        block_of_event[i] = -1;
        if (e.kind == 'A') {
            blocks[n_blocks] = (Block){i, -1, e.offset, e.bytes};
            block_of_event[i] = n_blocks;
            live[n_live++] = n_blocks++;
        } else if (e.kind == 'F') {
            for (int64_t k = n_live - 1; k >= 0; k--) {
                if (blocks[live[k]].offset == e.offset) {
                    blocks[live[k]].free_ev = i;
                    live[k] = live[--n_live];
                    break;
                }
            }
        }
    }
    return n_blocks;
}

/* "markers": [[event, name], ...], "used": [[bytes per category after event i], ...] */
static void write_markers_used(FILE *f, const Arena *a, int64_t n) {
    fprintf(f, "\"markers\": [");
    int first = 1;
    for (int64_t i = 0; i < n; i++) {
        Event e = event_at(a, i);
        if (e.kind != 'M')
            continue;
        fprintf(f, "%s[%lld, ", first ? "" : ", ", (long long)i);
        jstr(f, e.name);
        fputc(']', f);
        first = 0;
    }
    fprintf(f, "],\n  \"used\": [");
    for (int64_t i = 0; i < n; i++) {
        Event e = event_at(a, i);
        fprintf(f, "%s[", i ? "," : "");
        for (int c = 0; c < ARENA_CAT_COUNT; c++)
            fprintf(f, "%s%zu", c ? "," : "", e.used[c]);
        fputc(']', f);
    }
    fprintf(f, "]");
}

/* "blocks": [[name, category index, dtype, [shape], offset, bytes, alloc event, free event]] */
static void write_blocks(FILE *f, const Arena *a, int64_t n, const Block *blocks,
                         const int64_t *block_of_event) {
    fprintf(f, "\"blocks\": [");
    int first = 1;
    for (int64_t i = 0; i < n; i++) {
        if (block_of_event[i] < 0)
            continue;
        const Block *b = &blocks[block_of_event[i]];
        Event e = event_at(a, i);
        ArenaDtype dt;
        int ndim;
        int64_t shape[ARENA_MAX_DIMS];
        arena_trace_tensor(a, i, &dt, &ndim, shape);
        fprintf(f, "%s\n   [", first ? "" : ",");
        jstr(f, e.name);
        fprintf(f, ", %d, \"%s\", [", (int)e.cat, arena_dtype_name(dt));
        for (int d = 0; d < ndim; d++)
            fprintf(f, "%s%lld", d ? "," : "", (long long)shape[d]);
        fprintf(f, "], %zu, %zu, %lld, %lld]", b->offset, b->bytes, (long long)b->alloc_ev,
                (long long)b->free_ev);
        first = 0;
    }
    fprintf(f, "]");
}

/* The timeline: every tensor's block (its lifetime) from the arena's event trace. */
static int write_timeline(FILE *f, const Arena *a, Err *err) {
    int truncated = 0;
    int64_t n = arena_trace_count(a, &truncated);
    Block *blocks = calloc((size_t)n + 1, sizeof *blocks);
    int64_t *live = calloc((size_t)n + 1, sizeof *live);
    int64_t *block_of_event = calloc((size_t)n + 1, sizeof *block_of_event);
    if (!blocks || !live || !block_of_event) {
        free(blocks);
        free(live);
        free(block_of_event);
        return err_set(err, "out of host memory for the memory page's timeline");
    }
    pair_blocks(a, n, blocks, block_of_event, live);
    fprintf(f, "{\"n_events\": %lld, \"truncated\": %s, ", (long long)n,
            truncated ? "true" : "false");
    write_markers_used(f, a, n);
    fprintf(f, ",\n  ");
    write_blocks(f, a, n, blocks, block_of_event);
    fprintf(f, "}");
    free(blocks);
    free(live);
    free(block_of_event);
    return 0;
}

/* ---- the modes side by side ---- */

/* cfg with at most max micro-steps per step (see TIMELINE_MAX_MICRO_STEPS). */
static TrainConfig few_micro_steps(const TrainConfig *cfg, int64_t max) {
    TrainConfig c = *cfg;
    if (c.gradient_accumulation_steps > max)
        c.gradient_accumulation_steps = max;
    return c;
}

/* The training plan of c with cfg's steps at batch B. */
static GptPlanArgs plan_args(const TrainConfig *cfg, int64_t B, size_t limit, int trace) {
    return (GptPlanArgs){.phase = GPT_PLAN_TRAIN,
                         .B = B,
                         .T = cfg->block_size,
                         .grad_accum = cfg->gradient_accumulation_steps,
                         .limit_bytes = limit,
                         .trace = trace};
}

static int plan_mode(const TrainConfig *cfg, const GptConfig *c, GptDevice dev, int64_t B,
                     size_t limit, int trace, GptPlan **out, Err *err) {
    GptPlanArgs a = plan_args(cfg, B, limit, trace);
    return gpt_plan(c, dev, &a, out, err);
}

/* Largest B in [1, FIT_MAX_BATCH] whose plan fits in limit (gpt_plan_fit; 0: not even B = 1). */
static int64_t fit_batch(const TrainConfig *cfg, const GptConfig *c, GptDevice dev, size_t limit,
                         size_t *hw_out) {
    GptPlanArgs a = plan_args(cfg, 1, limit, 0);
    return gpt_plan_fit(c, dev, &a, FIT_MAX_BATCH, hw_out);
}

/* One mode: its plan's figures, its largest batches, and its timeline unless it is the
 * config's own (that one is the page's "timeline"); cfg and a have MODES_MAX_MICRO_STEPS
 * micro-steps at most, a is traced when the timeline is written. */
static int write_mode(FILE *f, const TrainConfig *cfg, const GptConfig *c, GptDevice dev,
                      const Arena *a, size_t card_arena_bytes, int with_timeline, Err *err) {
    ArenaStats s = arena_stats(a);
    double fwd = gpt_flops_forward_per_token(c, cfg->block_size);
    double extra = gpt_flops_recompute_per_token(c, cfg->block_size, c->recompute);
    size_t hw12 = 0, hwcard = 0;
    int64_t b12 = fit_batch(cfg, c, dev, FIT_CARD_BYTES, &hw12);
    int64_t bcard = card_arena_bytes ? fit_batch(cfg, c, dev, card_arena_bytes, &hwcard) : 0;
    fprintf(f, "{\"recompute\": \"%s\", \"attention\": ", GPT_RECOMPUTE_NAMES[c->recompute]);
    jstr(f, gpt_attention_name(cfg->attention));
    fprintf(f,
            ", \"recompute_extra_per_token\": %.0f, \"extra_forward_flops_fraction\": %.6f, "
            "\"peak_bytes\": %zu, \"high_water_bytes\": %zu, \"at_peak\": ",
            extra, fwd > 0 ? extra / fwd : 0.0, s.peak_used_bytes, s.high_water_bytes);
    jcats(f, s.at_peak_bytes);
    fprintf(f, ", \"cat_peak\": ");
    jcats(f, s.cat_peak_bytes);
    fprintf(f,
            ", \"fit_12gib\": {\"limit_bytes\": %zu, \"max_batch_size\": %lld, "
            "\"high_water_bytes\": %zu}, \"fit_card\": {\"limit_bytes\": %zu, "
            "\"max_batch_size\": %lld, \"high_water_bytes\": %zu}",
            FIT_CARD_BYTES, (long long)b12, hw12, card_arena_bytes, (long long)bcard, hwcard);
    if (with_timeline) {
        fprintf(f, ",\n   \"timeline_micro_steps\": %lld, \"timeline\": ",
                (long long)cfg->gradient_accumulation_steps);
        if (write_timeline(f, a, err) != 0)
            return -1;
    }
    fprintf(f, "}");
    return 0;
}

static int write_modes(FILE *f, const TrainConfig *cfg, GptDevice dev, size_t card_arena_bytes,
                       Err *err) {
    fprintf(f, "[");
    int first = 1;
    for (int at = 0; at < GPT_ATTENTION_COUNT; at++) {
        TrainConfig tc = few_micro_steps(cfg, MODES_MAX_MICRO_STEPS);
        tc.attention = (GptAttention)at;
        GptConfig c;
        run_gpt_config(&tc, &c);
        Err why;
        if (gpt_config_check(&c, dev, &why) != 0) {
            /* a kind this device cannot plan: listed with the reason */
            fprintf(f, "%s\n  {\"attention\": ", first ? "" : ",");
            jstr(f, gpt_attention_name(tc.attention));
            fprintf(f, ", \"unavailable\": ");
            jstr(f, why.msg);
            fprintf(f, "}");
            first = 0;
            continue;
        }
        for (int m = 0; m < 3; m++) {
            c.recompute = m;
            GptPlan *p = NULL;
            int own = tc.attention == cfg->attention && m == (int)cfg->recompute;
            if (plan_mode(&tc, &c, dev, cfg->batch_size, 0, !own, &p, err) != 0) {
                gpt_plan_free(p);
                return -1;
            }
            fprintf(f, "%s\n  ", first ? "" : ",");
            int rc = write_mode(f, &tc, &c, dev, p->arena, card_arena_bytes, !own, err);
            gpt_plan_free(p);
            if (rc != 0)
                return -1;
            first = 0;
        }
    }
    fprintf(f, "]");
    return 0;
}

/* The loss head's chunk sizes side by side (gpt_loss_chunk_choices) for the config's own mode:
 * each one's workspace, wte traffic per micro-step and planned peak and high-water. */
static int write_loss_chunks(FILE *f, const TrainConfig *cfg, const GptConfig *c0, GptDevice dev,
                             Err *err) {
    TrainConfig tc = few_micro_steps(cfg, MODES_MAX_MICRO_STEPS);
    int64_t B = cfg->batch_size, T = cfg->block_size, ch[GPT_LOSS_CHUNK_CHOICES];
    int n = gpt_loss_chunk_choices(c0, dev, B, T, ch);
    int64_t aut = gpt_loss_chunk_auto(c0, dev, B, T), cur = gpt_loss_chunk(c0, dev, B, T);
    fprintf(f, "[");
    for (int i = 0; i < n; i++) {
        GptConfig c = *c0;
        c.loss_chunk = ch[i];
        GptPlan *p = NULL;
        if (plan_mode(&tc, &c, dev, B, 0, 0, &p, err) != 0) {
            gpt_plan_free(p);
            return -1;
        }
        ArenaStats st = arena_stats(p->arena);
        gpt_plan_free(p);
        GptLossHeadCost h;
        gpt_loss_head_cost(c0, dev, B, T, ch[i], &h);
        fprintf(f,
                "%s\n  {\"chunk\": %lld, \"chunks\": %lld, \"automatic\": %s, \"current\": %s, "
                "\"logits_bytes\": %zu, \"wte_traffic_bytes\": %.0f, "
                "\"extra_wte_traffic_bytes\": %.0f, \"peak_bytes\": %zu, "
                "\"high_water_bytes\": %zu}",
                i ? "," : "", (long long)h.chunk, (long long)h.n_chunks,
                ch[i] == aut ? "true" : "false", ch[i] == cur ? "true" : "false", h.logits_bytes,
                h.wte_traffic_bytes, h.extra_wte_traffic_bytes, st.peak_used_bytes,
                st.high_water_bytes);
    }
    fprintf(f, "]");
    return 0;
}

/* ---- the card ---- */

/* The card a plan is held against: the `gpu` key (checked by config_validate). */
static const char *gpu_key(const TrainConfig *cfg) { return cfg->gpu[0] ? cfg->gpu : DEFAULT_GPU; }

static size_t sub0(size_t a, size_t b) { return a > b ? a - b : 0; }

/* The card from a GPU run's reconciliation; 0 when its readings are missing. */
static int write_card_measured(FILE *f, const DeviceMem *m) {
    const DeviceMemSample *b = &m->s[DEVICE_MEM_BEFORE_CONTEXT],
                          *c = &m->s[DEVICE_MEM_AFTER_CONTEXT], *n = &m->s[DEVICE_MEM_NOW];
    size_t ctx = 0;
    const char *src = NULL;
    if (c->have_proc) {
        ctx = c->proc_bytes;
        src = "measured: NVML's figure for this process after the CUDA context and the library "
              "handles were made";
    } else if (b->have_nvml && c->have_nvml) {
        ctx = sub0(c->nvml_used_bytes, b->nvml_used_bytes);
        src = "measured: NVML device memory after the context minus before it";
    }
    if (!src || !n->have_cuda || !m->total_bytes)
        return 0;
    size_t used_now = n->cuda_used_bytes;
    size_t process = n->have_proc ? n->proc_bytes : sub0(used_now, b->nvml_used_bytes);
    fprintf(f, "{\"kind\": \"measured\", \"name\": ");
    jstr(f, m->name);
    fprintf(f,
            ", \"memory_bytes\": %zu, \"memory_source\": \"cudaMemGetInfo total\", "
            "\"context_bytes\": %zu, \"context_source\": ",
            m->total_bytes, ctx);
    jstr(f, src);
    fprintf(f,
            ", \"arena_bytes\": %zu, \"process_bytes\": %zu, \"process_source\": \"%s\", "
            "\"unaccounted_bytes\": %lld, \"other_bytes\": %zu, \"free_bytes\": %zu}",
            m->reservation_bytes, process, n->have_proc ? "NVML this process" : "device delta",
            (long long)process - (long long)ctx - (long long)m->reservation_bytes,
            sub0(used_now, process), sub0(m->total_bytes, used_now));
    return 1;
}

static void write_card_estimate(FILE *f, const GpuSpec *g, size_t arena_bytes) {
    fprintf(f, "{\"kind\": \"estimate\", \"key\": ");
    jstr(f, g->key);
    fprintf(f, ", \"name\": ");
    jstr(f, g->name);
    fprintf(f, ", \"memory_bytes\": %zu, \"memory_source\": ", g->memory_bytes);
    jstr(f, g->memory_source);
    fprintf(f, ", \"context_bytes\": %zu, \"context_measured\": %s, \"context_source\": ",
            g->context_bytes, g->context_measured ? "true" : "false");
    jstr(f, g->context_source);
    fprintf(f, ", \"arena_bytes\": %zu, \"free_bytes\": %lld}", arena_bytes,
            (long long)g->memory_bytes - (long long)g->context_bytes - (long long)arena_bytes);
}

/* ---- nanoGPT's file: parsed with cJSON, its "config" numbers compared with the run ---- */

static char *read_file(const char *path, size_t *n_out, Err *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(err, "cannot open nanogpt_json '%s'", path), NULL;
    char *buf = malloc(NANOGPT_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, NANOGPT_MAX_BYTES + 1, f) : 0;
    int bad = !buf || ferror(f);
    fclose(f);
    if (bad || n > NANOGPT_MAX_BYTES) {
        free(buf);
        err_set(err, "nanogpt_json '%s': %s", path,
                bad ? "read error" : "larger than 4 MiB: not a file of scripts/nanogpt_memory.py");
        return NULL;
    }
    buf[n] = 0;
    *n_out = n;
    return buf;
}

/* The nanoGPT file's "format" tag and its config.<key> numbers against the run's. 0 when they
 * match; -1 with err (and *other = 1 when the file is for another shape). */
static int nanogpt_check(const cJSON *root, const char *path, const TrainConfig *cfg, int *other,
                         Err *err) {
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const char *format = cJSON_IsString(fmt) ? fmt->valuestring : "";
    if (strcmp(format, NANOGPT_FORMAT) != 0)
        return err_set(err,
                       "nanogpt_json '%s': \"format\" is '%s', expected '%s' (the output of "
                       "scripts/nanogpt_memory.py)",
                       path, format, NANOGPT_FORMAT);
    const char *names[6] = {"n_layer",    "n_head",     "n_embd",
                            "block_size", "vocab_size", "batch_size"};
    double want[6] = {(double)cfg->n_layer,    (double)cfg->n_head,     (double)cfg->n_embd,
                      (double)cfg->block_size, (double)cfg->vocab_size, (double)cfg->batch_size};
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(root, "config");
    for (int k = 0; k < 6; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, names[k]);
        *other = 1;
        if (!cJSON_IsNumber(v))
            return err_set(err, "nanogpt_json '%s': config.%s is missing", path, names[k]);
        if (v->valuedouble != want[k])
            return err_set(err, "nanogpt_json '%s' is for %s = %.0f, this run has %s = %.0f", path,
                           names[k], v->valuedouble, names[k], want[k]);
        *other = 0;
    }
    return 0;
}

/* Reads and checks the nanoGPT file. Returns it as cJSON renders it (valid JSON, control
 * characters escaped; the caller frees it with cJSON_free), NULL with err. A file for another
 * shape sets *other to 1 and err to the difference. */
static char *nanogpt_load(const char *path, const TrainConfig *cfg, int *other, Err *err) {
    size_t n = 0;
    *other = 0;
    char *text = read_file(path, &n, err);
    if (!text)
        return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    while (root && end < text + n && strchr(" \t\r\n", *end))
        end++;
    char *out = NULL;
    if (!root || !cJSON_IsObject(root) || end != text + n)
        err_set(err, "nanogpt_json '%s': not valid JSON (at byte %ld)", path,
                end ? (long)(end - text) : 0L);
    else if (nanogpt_check(root, path, cfg, other, err) == 0 &&
             !(out = cJSON_PrintUnformatted(root)))
        err_set(err, "nanogpt_json '%s': out of memory", path);
    cJSON_Delete(root);
    free(text);
    return out;
}

void mem_html_nanogpt_default(const char *config_file, char *buf, size_t len) {
    if (!config_file || !config_file[0]) {
        snprintf(buf, len, "%s", "");
        return;
    }
    const char *slash = strrchr(config_file, '/');
    const char *base = slash ? slash + 1 : config_file;
    int dir_len = slash ? (int)(slash - config_file + 1) : 0;
    const char *dot = strrchr(base, '.');
    int base_len = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    snprintf(buf, len, "%.*snanogpt/%.*s.json", dir_len, config_file, base_len, base);
}

/* The "nanogpt" member: the file as it is, or null with a note. */
static int write_nanogpt(FILE *f, const TrainConfig *cfg, Err *err) {
    char path[2 * CONFIG_STR_LEN];
    int given = cfg->nanogpt_json[0] != 0;
    if (given)
        snprintf(path, sizeof path, "%s", cfg->nanogpt_json);
    else
        mem_html_nanogpt_default(cfg->config_file, path, sizeof path);
    if (!path[0]) {
        fprintf(f, "null, \"nanogpt_note\": \"no config file, so no committed nanoGPT figures "
                   "(scripts/nanogpt_memory.py makes them; --nanogpt_json=FILE shows them)\"");
        return 0;
    }
    FILE *probe = given ? NULL : fopen(path, "rb");
    if (!given && !probe) {
        fprintf(f, "null, \"nanogpt_note\": ");
        char note[3 * CONFIG_STR_LEN];
        snprintf(note, sizeof note,
                 "no nanoGPT figures for this config (%s does not exist: "
                 "scripts/nanogpt_memory.py makes it)",
                 path);
        jstr(f, note);
        return 0;
    }
    if (probe)
        fclose(probe);
    int other = 0;
    Err e;
    char *text = nanogpt_load(path, cfg, &other, &e);
    if (!text) {
        if (given || !other) {
            *err = e;
            return -1;
        }
        fprintf(f, "null, \"nanogpt_note\": ");
        jstr(f, e.msg);
        return 0;
    }
    /* '<' can only occur inside strings of valid JSON: escape it there */
    for (const char *s = text; *s; s++) {
        if (*s == '<')
            fputs("\\u003c", f);
        else
            fputc(*s, f);
    }
    fprintf(f, ", \"nanogpt_file\": ");
    jstr(f, path);
    cJSON_free(text);
    return 0;
}

/* ---- the page ---- */

static void write_meta(FILE *f, const TrainConfig *cfg, const GptConfig *c, GptDevice dev,
                       int from_train) {
    GptParamCounts pc;
    gpt_param_counts(c, &pc);
    fprintf(f,
            "\"version\": 1, \"source\": \"%s\", \"config_file\": ", from_train ? "train" : "plan");
    jstr(f, cfg->config_file[0] ? cfg->config_file : "(defaults and command line)");
    fprintf(f,
            ",\n \"model\": {\"n_layer\": %lld, \"n_head\": %lld, \"n_embd\": %lld, "
            "\"block_size\": %lld, \"vocab_size\": %lld, \"bias\": %s, \"gelu\": \"%s\"},\n",
            (long long)cfg->n_layer, (long long)cfg->n_head, (long long)cfg->n_embd,
            (long long)cfg->block_size, (long long)cfg->vocab_size, cfg->bias ? "true" : "false",
            GPT_GELU_NAMES[cfg->gelu]);
    fprintf(f,
            " \"device\": \"%s\", \"dtype\": \"%s\", \"batch_size\": %lld, "
            "\"gradient_accumulation_steps\": %lld, \"attention\": \"%s\", \"recompute\": "
            "\"%s\",\n",
            dev == GPT_DEVICE_CUDA ? "cuda" : "cpu", run_dtype_name(dev, c),
            (long long)cfg->batch_size, (long long)cfg->gradient_accumulation_steps,
            gpt_attention_name(cfg->attention), GPT_RECOMPUTE_NAMES[c->recompute]);
    fprintf(f, " \"params\": {\"total\": %lld, \"non_embedding\": %lld},\n", (long long)pc.total,
            (long long)pc.non_embedding);
    /* the bytes are one rank's when world_size > 1 (mem --world_size, train under mpirun) */
    fprintf(f, " \"world_size\": %d, \"zero_stage\": %d,\n", c->world_size > 1 ? c->world_size : 1,
            c->zero_stage);
    fprintf(f, " \"categories\": [");
    for (int k = 0; k < ARENA_CAT_COUNT; k++)
        fprintf(f, "%s\"%s\"", k ? ", " : "", arena_category_name((ArenaCategory)k));
    fprintf(f, "],\n");
}

static void write_measured(FILE *f, const MemHtmlMeasured *m) {
    ArenaStats p = arena_stats(m->plan), r = arena_stats(m->arena);
    fprintf(f, "{\"backing\": \"%s\", \"plan_cat_peak\": ",
            arena_backing_name(arena_backing(m->arena)));
    jcats(f, p.cat_peak_bytes);
    fprintf(f, ", \"measured_cat_peak\": ");
    jcats(f, r.cat_peak_bytes);
    fprintf(f,
            ", \"plan_peak_bytes\": %zu, \"measured_peak_bytes\": %zu, \"plan_high_water_bytes\": "
            "%zu, \"measured_high_water_bytes\": %zu}",
            p.peak_used_bytes, r.peak_used_bytes, p.high_water_bytes, r.high_water_bytes);
}

/* The data object, into a temporary file (its size is needed before the page is written). */
static int write_data(FILE *f, const TrainConfig *cfg, GptDevice dev,
                      const MemHtmlMeasured *measured, Err *err) {
    GptConfig c;
    run_gpt_config(cfg, &c);
    GptPlan *p = NULL;
    TrainConfig shown = few_micro_steps(cfg, TIMELINE_MAX_MICRO_STEPS);
    if (plan_mode(&shown, &c, dev, cfg->batch_size, 0, 1, &p, err) != 0) {
        gpt_plan_free(p);
        return -1;
    }
    const Arena *a = p->arena;
    fprintf(f, "{");
    write_meta(f, cfg, &c, dev, measured != NULL);
    fprintf(f, " \"timeline_micro_steps\": %lld,\n", (long long)shown.gradient_accumulation_steps);
    fprintf(f, " \"report\": {\n");
    arena_report_json_fields(a, f, "  ");
    fprintf(f, " },\n \"host\": ");
    if (p->host_arena) { /* optimizer_offload: the host arena's plan */
        fprintf(f, "{\n");
        arena_report_json_fields(p->host_arena, f, "  ");
        fprintf(f, " }");
    } else {
        fprintf(f, "null");
    }
    fprintf(f, ",\n \"timeline\": ");
    int rc = write_timeline(f, a, err);
    size_t arena_bytes = arena_stats(a).high_water_bytes;
    gpt_plan_free(p);
    if (rc != 0)
        return -1;

    const GpuSpec *g = gpu_table_find(gpu_key(cfg));
    /* what the arena may use on the card: its memory less --reserve, by default the table's
     * context + libraries figure (as mem --fit sets aside) */
    size_t reserve = config_is_set(cfg, "reserve") ? cfg->reserve : g ? g->context_bytes : 0;
    size_t card_arena = g && g->memory_bytes > reserve ? g->memory_bytes - reserve : 0;
    fprintf(f, ",\n \"modes\": ");
    if (write_modes(f, cfg, dev, dev == GPT_DEVICE_CUDA ? card_arena : 0, err) != 0)
        return -1;
    fprintf(f, ",\n \"loss_chunks\": ");
    if (write_loss_chunks(f, cfg, &c, dev, err) != 0)
        return -1;

    fprintf(f, ",\n \"card\": ");
    int card = 0;
    if (measured && measured->dm)
        card = write_card_measured(f, measured->dm);
    if (!card && dev == GPT_DEVICE_CUDA && g)
        write_card_estimate(
            f, g, measured && measured->dm ? measured->dm->reservation_bytes : arena_bytes);
    else if (!card)
        fprintf(f, "null");

    fprintf(f, ",\n \"measured\": ");
    if (measured && measured->plan && measured->arena)
        write_measured(f, measured);
    else
        fprintf(f, "null");

    fprintf(f, ",\n \"nanogpt\": ");
    if (write_nanogpt(f, cfg, err) != 0)
        return -1;
    fprintf(f, "}\n");
    return ferror(f) ? err_set(err, "cannot write the memory page's data") : 0;
}

int mem_html_write(const char *path, const TrainConfig *cfg, GptDevice dev,
                   const MemHtmlMeasured *measured, Err *err) {
    const char *tpl = arenagpt_mem_page_html;
    const char *mark = strstr(tpl, DATA_MARKER);
    if (!mark || strstr(mark + 1, DATA_MARKER))
        return err_set(err, "the built-in page template has no single data marker (a build bug)");
    FILE *tmp = tmpfile();
    if (!tmp)
        return err_set(err, "cannot create a temporary file for the memory page");
    if (write_data(tmp, cfg, dev, measured, err) != 0) {
        fclose(tmp);
        return -1;
    }
    FILE *out = fopen(path, "w");
    if (!out) {
        fclose(tmp);
        return err_set(err, "cannot write the memory page '%s'", path);
    }
    fwrite(tpl, 1, (size_t)(mark - tpl), out);
    rewind(tmp);
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, tmp)) > 0)
        fwrite(buf, 1, n, out);
    fputs(mark + strlen(DATA_MARKER), out);
    int bad = ferror(tmp) || ferror(out);
    fclose(tmp);
    if (fclose(out) != 0 || bad)
        return err_set(err, "cannot write the memory page '%s'", path);
    return 0;
}
