/* test_mem_html.c: the memory page's data (train/mem_html.c), parsed back from the page: the
 * timeline's blocks add up to the arena's bytes after every event and pair every free with its
 * alloc; the card from a plan is the GPU table's estimate, from a GPU run the measured
 * reconciliation (a DeviceMem filled in here, as device_mem_sample would on a GPU); plan vs
 * measured; the nanoGPT file's checks; the default nanoGPT path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/gpu_table.h"
#include "../train/mem_html.h"
#include "../train/run_common.h"
#include "json_path.h"
#include "test_util.h"

#define MIB ((size_t)1 << 20)

static void small_config(TrainConfig *cfg) {
    config_defaults(cfg);
    cfg->n_layer = 2;
    cfg->n_head = 2;
    cfg->n_embd = 32;
    cfg->block_size = 16;
    cfg->vocab_size = 64;
    cfg->batch_size = 2;
    cfg->gradient_accumulation_steps = 2;
}

/* Writes the page and parses the JSON between the data script's tags. */
static cJSON *page_data(const char *path, const TrainConfig *cfg, GptDevice dev,
                        const MemHtmlMeasured *m) {
    Err err;
    int rc = mem_html_write(path, cfg, dev, m, &err);
    if (rc != 0)
        print_error("%s\n", err.msg);
    assert_int_equal(rc, 0);
    size_t len = 0;
    char *html = test_read_file(path, &len);
    assert_non_null(html);
    const char *open = "<script id=\"arenagpt-data\" type=\"application/json\">";
    char *start = strstr(html, open);
    assert_non_null(start);
    start += strlen(open);
    char *end = strstr(start, "</script>");
    assert_non_null(end);
    *end = 0;
    char jerr[256];
    cJSON *j = json_path_parse(start, jerr, sizeof jerr);
    if (!j)
        print_error("%s\n", jerr);
    assert_non_null(j);
    free(html);
    return j;
}

static double num(const cJSON *j, const char *path) {
    const cJSON *v = json_path_get(j, path);
    if (!cJSON_IsNumber(v))
        print_error("missing %s (or not a number)\n", path);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

/* The numbers of a JSON array of numbers (n of them, checked) into out. */
static void nums(const cJSON *arr, double *out, int n) {
    assert_int_equal(cJSON_GetArraySize(arr), n);
    const cJSON *v;
    int i = 0;
    cJSON_ArrayForEach(v, arr) {
        assert_true(cJSON_IsNumber(v));
        out[i++] = v->valuedouble;
    }
}

static void test_mem_html_timeline_adds_up(void **state) {
    (void)state;
    TrainConfig cfg;
    small_config(&cfg);
    char path[1024];
    snprintf(path, sizeof path, "%s/m.html", test_dir());
    cJSON *j = page_data(path, &cfg, GPT_DEVICE_CPU, NULL);
    const cJSON *blocks = json_path_get(j, "timeline.blocks"),
                *used = json_path_get(j, "timeline.used");
    int64_t n = (int64_t)num(j, "timeline.n_events");
    assert_true(n > 0 && cJSON_GetArraySize(used) == (int)n);
    /* each block: [.., category (1), .., bytes (5), alloc event (6), free event (7), ..] */
    int n_blocks = cJSON_GetArraySize(blocks);
    double(*blk)[4] = calloc((size_t)n_blocks, sizeof *blk);
    assert_non_null(blk);
    const cJSON *b, *u;
    int k = 0;
    static const char *const fields[4] = {"1", "5", "6", "7"};
    cJSON_ArrayForEach(b, blocks) {
        for (int q = 0; q < 4; q++)
            blk[k][q] = num(b, fields[q]);
        k++;
    }
    /* after every event, the blocks live then add up to the arena's bytes per category */
    double best = 0;
    int64_t i = 0;
    cJSON_ArrayForEach(u, used) {
        double sum[ARENA_CAT_COUNT] = {0}, row[ARENA_CAT_COUNT], t = 0;
        nums(u, row, ARENA_CAT_COUNT);
        for (k = 0; k < n_blocks; k++)
            if (blk[k][2] <= i && (blk[k][3] < 0 || blk[k][3] > i))
                sum[(int)blk[k][0]] += blk[k][1];
        for (int c = 0; c < ARENA_CAT_COUNT; c++) {
            assert_true(sum[c] == row[c]);
            t += row[c];
        }
        best = t > best ? t : best;
        i++;
    }
    /* the JSON report's peak is the timeline's highest total */
    assert_true(best == num(j, "report.peak_bytes"));
    /* a free ends after its alloc; params live to the end; markers name the step's phases */
    for (k = 0; k < n_blocks; k++) {
        assert_true(blk[k][3] < 0 || blk[k][3] > blk[k][2]);
        if (blk[k][0] == ARENA_CAT_PARAMS)
            assert_true(blk[k][3] < 0);
    }
    free(blk);
    const cJSON *markers = json_path_get(j, "timeline.markers");
    assert_int_equal(cJSON_GetArraySize(markers),
                     1 + 2 * 2 + 1); /* eval fwd, 2 x (fwd, bwd), update */
    assert_string_equal(json_path_str(markers, "5.1"), "update");
    /* the CPU has no card; the modes: naive x 3 recompute, cudnn not on the CPU, flash x 3 */
    assert_true(cJSON_IsNull(json_path_get(j, "card")));
    const cJSON *modes = json_path_get(j, "modes");
    assert_int_equal(cJSON_GetArraySize(modes), 7);
    assert_non_null(json_path_get(modes, "3.unavailable"));
    assert_string_equal(json_path_str(modes, "4.attention"), "flash");
    assert_true(num(modes, "4.high_water_bytes") < num(modes, "0.high_water_bytes"));
    assert_string_equal(json_path_str(modes, "2.recompute"), "full");
    assert_true(num(modes, "2.high_water_bytes") < num(modes, "0.high_water_bytes"));
    assert_null(json_path_get(modes, "0.timeline")); /* the config's own: the page's one */
    assert_non_null(json_path_get(modes, "1.timeline.blocks"));
    cJSON_Delete(j);
}

/* The loss head's chunk sizes: the set one (current), the automatic one, half of it and one
 * chunk of B*T rows, each with its logits, wte traffic and planned peak. */
static void test_mem_html_loss_chunks(void **state) {
    (void)state;
    TrainConfig cfg;
    small_config(&cfg);
    cfg.vocab_size = 4096; /* padded vocabulary 4096 */
    cfg.loss_chunk = 5;    /* 32 rows: 7 chunks */
    char path[1024];
    snprintf(path, sizeof path, "%s/lc.html", test_dir());
    cJSON *j = page_data(path, &cfg, GPT_DEVICE_CPU, NULL);
    const cJSON *lc = json_path_get(j, "loss_chunks");
    assert_non_null(lc);
    assert_int_equal(cJSON_GetArraySize(lc), 3); /* 5 (set), 32 (automatic: one chunk), 16 (half) */
    static const double chunk[3] = {5, 32, 16}, chunks[3] = {7, 1, 2};
    const cJSON *auto_e = cJSON_GetArrayItem(lc, 1);
    for (int i = 0; i < 3; i++) {
        const cJSON *e = cJSON_GetArrayItem(lc, i);
        assert_true(num(e, "chunk") == chunk[i]);
        assert_true(num(e, "chunks") == chunks[i]);
        assert_true(num(e, "logits_bytes") == chunk[i] * 4096 * 4); /* f32 on the CPU */
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "current")) == (i == 0));
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "automatic")) == (i == 1));
        /* per chunk: f32 wte read twice, f32 grad.wte read and written */
        assert_true(num(e, "wte_traffic_bytes") == chunks[i] * 4096.0 * 32 * 16);
        assert_true(num(e, "peak_bytes") <= num(auto_e, "peak_bytes"));
    }
    assert_true(num(auto_e, "extra_wte_traffic_bytes") == 0);
    assert_true(num(auto_e, "peak_bytes") > num(cJSON_GetArrayItem(lc, 0), "peak_bytes"));
    cJSON_Delete(j);
}

static void test_mem_html_card_estimate_and_measured(void **state) {
    (void)state;
    TrainConfig cfg;
    small_config(&cfg);
    char path[1024];
    snprintf(path, sizeof path, "%s/m.html", test_dir());
    const GpuSpec *g = gpu_table_find("rtx4070");
    /* a plan for the GPU: the table's estimate, labelled so */
    cJSON *j = page_data(path, &cfg, GPT_DEVICE_CUDA, NULL);
    assert_string_equal(json_path_str(j, "card.kind"), "estimate");
    assert_true(num(j, "card.context_bytes") == (double)g->context_bytes);
    assert_string_equal(json_path_str(j, "card.context_source"), g->context_source);
    assert_true(num(j, "card.arena_bytes") == num(j, "report.high_water_bytes"));
    assert_true(num(j, "card.free_bytes") ==
                (double)g->memory_bytes - (double)g->context_bytes - num(j, "card.arena_bytes"));
    cJSON_Delete(j);

    /* a GPU run: the reconciliation's figures, as device_mem_sample leaves them */
    GptPlan *plan_p = NULL, *run_p = NULL;
    Err err;
    GptConfig c;
    run_gpt_config(&cfg, &c);
    GptPlanArgs args = {.phase = GPT_PLAN_TRAIN,
                        .B = cfg.batch_size,
                        .T = cfg.block_size,
                        .grad_accum = cfg.gradient_accumulation_steps};
    assert_int_equal(gpt_plan(&c, GPT_DEVICE_CUDA, &args, &plan_p, &err), 0);
    assert_int_equal(gpt_plan(&c, GPT_DEVICE_CUDA, &args, &run_p, &err), 0);
    Arena *plan = plan_p->arena, *run = run_p->arena;
    DeviceMem dm;
    memset(&dm, 0, sizeof dm);
    snprintf(dm.name, sizeof dm.name, "NVIDIA GeForce RTX 4070");
    dm.total_bytes = 12282 * MIB;
    dm.reservation_bytes = 100 * MIB;
    dm.s[DEVICE_MEM_BEFORE_CONTEXT] =
        (DeviceMemSample){.taken = 1, .have_nvml = 1, .nvml_used_bytes = 300 * MIB};
    dm.s[DEVICE_MEM_AFTER_CONTEXT] = (DeviceMemSample){.taken = 1,
                                                       .have_cuda = 1,
                                                       .have_nvml = 1,
                                                       .have_proc = 1,
                                                       .cuda_used_bytes = 700 * MIB,
                                                       .nvml_used_bytes = 700 * MIB,
                                                       .proc_bytes = 400 * MIB};
    dm.s[DEVICE_MEM_NOW] = (DeviceMemSample){.taken = 1,
                                             .have_cuda = 1,
                                             .have_nvml = 1,
                                             .have_proc = 1,
                                             .cuda_used_bytes = 860 * MIB,
                                             .nvml_used_bytes = 860 * MIB,
                                             .proc_bytes = 540 * MIB};
    MemHtmlMeasured m = {plan, run, &dm};
    j = page_data(path, &cfg, GPT_DEVICE_CUDA, &m);
    assert_string_equal(json_path_str(j, "source"), "train");
    assert_string_equal(json_path_str(j, "card.kind"), "measured");
    assert_true(num(j, "card.context_bytes") == 400.0 * MIB);    /* NVML, this pid */
    assert_true(num(j, "card.process_bytes") == 540.0 * MIB);    /* NVML, this pid now */
    assert_true(num(j, "card.unaccounted_bytes") == 40.0 * MIB); /* 540 - 400 - 100 */
    assert_true(num(j, "card.other_bytes") == 320.0 * MIB);      /* 860 device - 540 ours */
    assert_true(num(j, "card.free_bytes") == (12282.0 - 860.0) * MIB);
    ArenaStats p = arena_stats(plan);
    assert_true(num(j, "measured.plan_peak_bytes") == (double)p.peak_used_bytes);
    assert_true(num(j, "measured.measured_high_water_bytes") == (double)p.high_water_bytes);
    assert_true(num(j, "measured.measured_cat_peak.activations") ==
                (double)p.cat_peak_bytes[ARENA_CAT_ACTIVATIONS]);
    cJSON_Delete(j);
    gpt_plan_free(plan_p);
    gpt_plan_free(run_p);
}

static void test_mem_html_nanogpt_file(void **state) {
    (void)state;
    TrainConfig cfg;
    small_config(&cfg);
    char path[1024], ng[CONFIG_STR_LEN / 2];
    snprintf(path, sizeof path, "%s/m.html", test_dir());
    snprintf(ng, sizeof ng, "%s/ng.json", test_dir());
    memcpy(cfg.nanogpt_json, ng, sizeof ng);
    const char *good = "{\"format\": \"arenagpt-nanogpt-memory/1\", \"config\": {\"n_layer\": 2, "
                       "\"n_head\": 2, \"n_embd\": 32, \"block_size\": 16, \"vocab_size\": 64, "
                       "\"batch_size\": 2}, \"note\": \"</script><b>\", \"saved\": {\"bytes\": 7}}";
    test_write_file(ng, good, strlen(good));
    cJSON *j = page_data(path, &cfg, GPT_DEVICE_CPU, NULL);
    assert_true(num(j, "nanogpt.saved.bytes") == 7);
    assert_string_equal(json_path_str(j, "nanogpt.note"), "</script><b>"); /* escaped, intact */
    cJSON_Delete(j);

    struct {
        const char *text, *want;
    } bad[] = {
        {"{\"format\": \"arenagpt-nanogpt-memory/1\", \"config\": {\"n_layer\": 2,}}",
         "not valid JSON"},
        {"{\"format\": \"x\"}", "expected 'arenagpt-nanogpt-memory/1'"},
        {"{\"format\": \"arenagpt-nanogpt-memory/1\", \"config\": {\"n_layer\": 3}}",
         "is for n_layer = 3, this run has n_layer = 2"},
        {"{\"format\": \"arenagpt-nanogpt-memory/1\", \"config\": {\"n_layer\": 2}}",
         "config.n_head is missing"},
        {"{\"format\": \"arenagpt-nanogpt-memory/1\"} trailing", "not valid JSON"},
        {"[1, 2]", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        test_write_file(ng, bad[i].text, strlen(bad[i].text));
        Err err;
        assert_int_equal(mem_html_write(path, &cfg, GPT_DEVICE_CPU, NULL, &err), -1);
        if (!strstr(err.msg, bad[i].want) || !strstr(err.msg, ng))
            print_error("case %zu: '%s'\n", i, err.msg);
        assert_non_null(strstr(err.msg, bad[i].want));
    }
}

/* The page plans at most a few micro-steps (mem_html.c): the memory of a step must not
 * depend on gradient_accumulation_steps, in any recompute mode. */
static void test_mem_html_micro_steps_repeat(void **state) {
    (void)state;
    TrainConfig cfg;
    small_config(&cfg);
    for (int m = 0; m < 3; m++) {
        GptConfig c;
        run_gpt_config(&cfg, &c);
        c.recompute = m;
        ArenaStats st[3];
        const int64_t accum[3] = {2, 4, 7};
        for (int k = 0; k < 3; k++) {
            GptPlan *p = NULL;
            Err err;
            GptPlanArgs args = {.phase = GPT_PLAN_TRAIN,
                                .B = cfg.batch_size,
                                .T = cfg.block_size,
                                .grad_accum = accum[k]};
            assert_int_equal(gpt_plan(&c, GPT_DEVICE_CUDA, &args, &p, &err), 0);
            st[k] = arena_stats(p->arena);
            gpt_plan_free(p);
        }
        for (int k = 1; k < 3; k++) {
            assert_int_equal(st[k].peak_used_bytes, st[0].peak_used_bytes);
            assert_int_equal(st[k].high_water_bytes, st[0].high_water_bytes);
            assert_memory_equal(st[k].at_peak_bytes, st[0].at_peak_bytes,
                                sizeof st[0].at_peak_bytes);
            assert_memory_equal(st[k].cat_peak_bytes, st[0].cat_peak_bytes,
                                sizeof st[0].cat_peak_bytes);
        }
    }
    /* and the page says how many it drew */
    char path[1024];
    cfg.gradient_accumulation_steps = 9;
    snprintf(path, sizeof path, "%s/m.html", test_dir());
    cJSON *j = page_data(path, &cfg, GPT_DEVICE_CPU, NULL);
    assert_true(num(j, "gradient_accumulation_steps") == 9);
    assert_true(num(j, "timeline_micro_steps") == 4);
    assert_true(num(j, "modes.1.timeline_micro_steps") == 2);
    cJSON_Delete(j);
}

static void test_mem_html_nanogpt_default_path(void **state) {
    (void)state;
    char buf[256];
    mem_html_nanogpt_default("configs/small_4070.conf", buf, sizeof buf);
    assert_string_equal(buf, "configs/nanogpt/small_4070.json");
    mem_html_nanogpt_default("tiny.conf", buf, sizeof buf);
    assert_string_equal(buf, "nanogpt/tiny.json");
    mem_html_nanogpt_default("/a/b.c/run", buf, sizeof buf);
    assert_string_equal(buf, "/a/b.c/nanogpt/run.json");
    mem_html_nanogpt_default("", buf, sizeof buf);
    assert_string_equal(buf, "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mem_html_timeline_adds_up, test_dir_setup,
                                        test_dir_teardown),
        cmocka_unit_test_setup_teardown(test_mem_html_loss_chunks, test_dir_setup,
                                        test_dir_teardown),
        cmocka_unit_test_setup_teardown(test_mem_html_card_estimate_and_measured, test_dir_setup,
                                        test_dir_teardown),
        cmocka_unit_test_setup_teardown(test_mem_html_nanogpt_file, test_dir_setup,
                                        test_dir_teardown),
        cmocka_unit_test_setup_teardown(test_mem_html_micro_steps_repeat, test_dir_setup,
                                        test_dir_teardown),
        cmocka_unit_test(test_mem_html_nanogpt_default_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
