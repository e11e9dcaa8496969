/* test_arena.c: the arena's contract: alignment and padding accounting, categories adding up
 * to used bytes, peaks and the at-peak breakdown, the activation stack (LIFO), workspace reuse
 * and visible holes, the budget refusal report, plan == host placement, reports that parse
 * back, the AddressSanitizer poisoning outside live tensors (ASan builds), and "used bytes
 * are 0 after teardown" in every test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sanitizer/asan_interface.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../alloc/arena.h"
#include "../data/rng.h"
#include "json_path.h"
#include "test_util.h"

#define KIB 1024
#define MIB (1024 * 1024)

static const int64_t *shp1(int64_t n) {
    static int64_t s[1];
    s[0] = n;
    return s;
}

/* Frees everything and checks the teardown invariant, then releases the arena. */
static void teardown_check(Arena *a) {
    arena_release_category(a, ARENA_CAT_ACTIVATIONS);
    for (int c = 0; c < ARENA_CAT_COUNT; c++)
        arena_release_category(a, (ArenaCategory)c);
    ArenaStats s = arena_stats(a);
    assert_int_equal(s.used_bytes, 0);
    assert_int_equal(s.n_live, 0);
    for (int c = 0; c < ARENA_CAT_COUNT; c++)
        assert_int_equal(s.cat_used_bytes[c], 0);
    arena_free(a);
}

static Arena *host_arena(size_t cap, size_t limit) {
    Err err;
    Arena *a = arena_init(ARENA_BACKING_HOST, cap, limit, &err);
    if (!a)
        print_error("%s\n", err.msg);
    assert_non_null(a);
    return a;
}

static void test_arena_alignment_and_padding(void **state) {
    (void)state;
    Arena *a = host_arena(4 * MIB, 0);
    const int64_t sizes[] = {1, 3, 255, 256, 257, 1000, 4096, 12345};
    size_t sum = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        Tensor *t =
            arena_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_F32, 1, shp1(sizes[i]), "ws.%zu", i);
        assert_int_equal(t->offset % ARENA_ALIGNMENT, 0);
        assert_int_equal((uintptr_t)t->data % ARENA_ALIGNMENT, 0);
        assert_int_equal(t->nbytes, (size_t)sizes[i] * 4);
        assert_true(t->bytes >= t->nbytes && t->bytes - t->nbytes < ARENA_ALIGNMENT);
        assert_int_equal(t->bytes % ARENA_ALIGNMENT, 0);
        sum += t->bytes;
    }
    /* a zero-element tensor is charged one aligned slot */
    Tensor *z = arena_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_F16, 1, shp1(0), "ws.empty");
    assert_int_equal(z->nbytes, 0);
    assert_int_equal(z->bytes, ARENA_ALIGNMENT);
    sum += z->bytes;
    assert_int_equal(arena_stats(a).used_bytes, sum);
    teardown_check(a);
}

static void test_arena_categories_add_up(void **state) {
    (void)state;
    Arena *a = host_arena(64 * MIB, 0);
    int64_t shape[2] = {33, 17};
    arena_alloc(a, ARENA_CAT_PARAMS, ARENA_DTYPE_F16, 2, shape, "p0");
    arena_alloc(a, ARENA_CAT_GRADS, ARENA_DTYPE_F16, 2, shape, "g0");
    arena_alloc(a, ARENA_CAT_OPTIMIZER, ARENA_DTYPE_F32, 2, shape, "m0");
    arena_alloc(a, ARENA_CAT_OPTIMIZER, ARENA_DTYPE_F32, 2, shape, "v0");
    Tensor *w = arena_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_U8, 1, shp1(5000), "ws");
    arena_alloc(a, ARENA_CAT_ACTIVATIONS, ARENA_DTYPE_F32, 1, shp1(777), "act.0");
    arena_release(a, w);
    arena_alloc(a, ARENA_CAT_ACTIVATIONS, ARENA_DTYPE_F32, 1, shp1(99), "act.1");

    ArenaStats s = arena_stats(a);
    const Tensor *live[16];
    int64_t n = arena_live_tensors(a, live, 16);
    assert_int_equal(n, s.n_live);
    size_t sum = 0, cat_sum = 0;
    size_t per_cat[ARENA_CAT_COUNT] = {0};
    for (int64_t i = 0; i < n; i++) {
        sum += live[i]->bytes;
        per_cat[live[i]->category] += live[i]->bytes;
        if (i > 0) /* offset order, no overlap */
            assert_true(live[i - 1]->offset + live[i - 1]->bytes <= live[i]->offset);
    }
    for (int c = 0; c < ARENA_CAT_COUNT; c++) {
        assert_int_equal(per_cat[c], s.cat_used_bytes[c]);
        cat_sum += s.cat_used_bytes[c];
    }
    assert_int_equal(sum, s.used_bytes);
    assert_int_equal(cat_sum, s.used_bytes);
    teardown_check(a);
}

static void test_arena_peak_tracking(void **state) {
    (void)state;
    Arena *a = host_arena(16 * MIB, 0);
    Tensor *p = arena_alloc(a, ARENA_CAT_PARAMS, ARENA_DTYPE_U8, 1, shp1(10 * KIB), "p");
    Tensor *x = arena_alloc(a, ARENA_CAT_ACTIVATIONS, ARENA_DTYPE_U8, 1, shp1(100 * KIB), "x");
    Tensor *y = arena_alloc(a, ARENA_CAT_ACTIVATIONS, ARENA_DTYPE_U8, 1, shp1(300 * KIB), "y");
    arena_release(a, y);
    arena_release(a, x);
    Tensor *w = arena_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_U8, 1, shp1(200 * KIB), "w");
    ArenaStats s = arena_stats(a);
    size_t expect_peak = p->bytes + 100 * KIB + 300 * KIB;
    assert_int_equal(s.peak_used_bytes, expect_peak);
    assert_int_equal(s.at_peak_bytes[ARENA_CAT_PARAMS], p->bytes);
    assert_int_equal(s.at_peak_bytes[ARENA_CAT_ACTIVATIONS], 400 * KIB);
    assert_int_equal(s.at_peak_bytes[ARENA_CAT_WORKSPACE], 0);
    assert_int_equal(s.cat_peak_bytes[ARENA_CAT_WORKSPACE], 200 * KIB);
    assert_int_equal(s.cat_peak_bytes[ARENA_CAT_ACTIVATIONS], 400 * KIB);
    assert_int_equal(s.used_bytes, p->bytes + w->bytes);
    /* the peak snapshot lists exactly the three tensors live at the peak */
    int64_t n = 0;
    const ArenaPeakTensor *pt = arena_peak_tensors(a, &n);
    assert_int_equal(n, 3);
    size_t sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += pt[i].bytes;
    assert_int_equal(sum, expect_peak);
    assert_string_equal(pt[2].name, "y");
    /* the workspace reused the freed activation space: the high-water mark did not grow */
    assert_int_equal(s.high_water_bytes, expect_peak);
    /* resetting peaks measures from now on */
    arena_peaks_reset(a);
    s = arena_stats(a);
    assert_int_equal(s.peak_used_bytes, s.used_bytes);
    teardown_check(a);
}

static void child_frees_out_of_order(void) {
    Arena *a = arena_init(ARENA_BACKING_PLAN, 0, 0, NULL);
    Tensor *x = arena_alloc(a, ARENA_CAT_ACTIVATIONS, ARENA_DTYPE_F32, 1, shp1(10), "act.x");
    arena_alloc(a, ARENA_CAT_ACTIVATIONS, ARENA_DTYPE_F32, 1, shp1(10), "act.y");
    arena_release(a, x); /* not the top of the stack: must abort */
    _exit(0);
}

static void test_arena_lifo_enforced(void **state) {
    (void)state;
    /* in order: fine */
    Arena *a = arena_init(ARENA_BACKING_PLAN, 0, 0, NULL);
    Tensor *x = arena_alloc(a, ARENA_CAT_ACTIVATIONS, ARENA_DTYPE_F32, 1, shp1(10), "act.x");
    Tensor *w1 = arena_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_F32, 1, shp1(10), "ws.1");
    Tensor *y = arena_alloc(a, ARENA_CAT_ACTIVATIONS, ARENA_DTYPE_F32, 1, shp1(10), "act.y");
    Tensor *w2 = arena_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_F32, 1, shp1(10), "ws.2");
    arena_release(a, w1); /* workspace: any order */
    arena_release(a, y);
    arena_release(a, x);
    arena_release(a, w2);
    teardown_check(a);

    /* out of order: the process aborts with a message (run in a child) */
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        child_frees_out_of_order();
    }
    int st = 0;
    waitpid(pid, &st, 0);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
}

static void test_arena_holes_and_first_fit(void **state) {
    (void)state;
    Arena *a = host_arena(MIB, 0);
    Tensor *w1 = arena_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_U8, 1, shp1(4 * KIB), "ws.1");
    Tensor *w2 = arena_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_U8, 1, shp1(4 * KIB), "ws.2");
    arena_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_U8, 1, shp1(4 * KIB), "ws.3");
    size_t w1_off = w1->offset;
    arena_release(a, w1);
    arena_release(a, w2);
    ArenaStats s = arena_stats(a);
    assert_int_equal(s.n_holes, 1);
    assert_int_equal(s.hole_bytes, 8 * KIB);
    /* a smaller request lands in the hole, at its bottom */
    Tensor *w4 = arena_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_U8, 1, shp1(KIB), "ws.4");
    assert_int_equal(w4->offset, w1_off);
    s = arena_stats(a);
    assert_int_equal(s.hole_bytes, 7 * KIB);
    /* a larger one than the hole goes above the top */
    Tensor *w5 = arena_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_U8, 1, shp1(16 * KIB), "ws.5");
    assert_int_equal(w5->offset, 12 * KIB);
    teardown_check(a);
}

static void test_arena_budget_refusal_report(void **state) {
    (void)state;
    Err err;
    Arena *a = arena_init(ARENA_BACKING_PLAN, 0, MIB, &err);
    assert_non_null(a);
    arena_alloc(a, ARENA_CAT_PARAMS, ARENA_DTYPE_U8, 1, shp1(600 * KIB), "wte");
    int64_t shape[2] = {300, 512};
    Tensor *t =
        arena_try_alloc(a, ARENA_CAT_ACTIVATIONS, ARENA_DTYPE_F32, 2, shape, "act.h.%d.qkv", 3);
    assert_null(t);
    const char *msg = arena_last_error(a);
    assert_non_null(strstr(msg, "614400 bytes"));  /* what was asked */
    assert_non_null(strstr(msg, "act.h.3.qkv"));   /* by whom */
    assert_non_null(strstr(msg, "activations"));   /* its category */
    assert_non_null(strstr(msg, "params 614400")); /* what is held, by category */
    assert_non_null(strstr(msg, "memory limit of 1048576"));
    assert_non_null(strstr(msg, "peak so far 614400"));
    ArenaStats s = arena_stats(a);
    assert_int_equal(s.n_refused, 1);
    assert_int_equal(s.used_bytes, 600 * KIB);
    /* still usable, and the error clears on success */
    assert_non_null(arena_try_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_U8, 1, shp1(KIB), "ws"));
    assert_string_equal(arena_last_error(a), "");
    /* a shape whose byte count overflows is refused, not wrapped */
    int64_t huge[3] = {INT64_C(1) << 40, INT64_C(1) << 30, 64};
    assert_null(arena_try_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_F32, 3, huge, "ws.huge"));
    assert_non_null(strstr(arena_last_error(a), "overflows"));
    teardown_check(a);

    /* a host reservation refuses past its capacity too */
    Arena *h = host_arena(64 * KIB, 0);
    assert_null(arena_try_alloc(h, ARENA_CAT_PARAMS, ARENA_DTYPE_U8, 1, shp1(65 * KIB), "big"));
    assert_non_null(strstr(arena_last_error(h), "host reservation of 65536"));
    teardown_check(h);

    /* bad construction is an error, not a crash */
    assert_null(arena_init(ARENA_BACKING_HOST, 0, 0, &err));
    assert_non_null(strstr(err.msg, "capacity"));
}

/* One deterministic random mix of persistent, stack and workspace traffic. */
#define SEQ_STEPS 3000
static void run_sequence(Arena *a, size_t *offsets, size_t *tops) {
    Rng r;
    rng_init(&r, 1234);
    Tensor *acts[SEQ_STEPS];
    Tensor *ws[64] = {0};
    int n_act = 0;
    for (int i = 0; i < 40; i++)
        arena_alloc(a, (ArenaCategory)(i % 3), ARENA_DTYPE_F16, 1,
                    shp1(1 + (int64_t)rng_below(&r, 5000)), "persist.%d", i);
    for (int i = 0; i < SEQ_STEPS; i++) {
        uint64_t op = rng_below(&r, 4);
        Tensor *t = NULL;
        if (op == 0 || (op == 1 && n_act == 0)) {
            t = arena_alloc(a, ARENA_CAT_ACTIVATIONS, ARENA_DTYPE_F32, 1,
                            shp1(1 + (int64_t)rng_below(&r, 20000)), "act.%d", i);
            acts[n_act++] = t;
        } else if (op == 1) {
            arena_release(a, acts[--n_act]);
        } else {
            int k = (int)rng_below(&r, 64);
            if (ws[k]) {
                arena_release(a, ws[k]);
                ws[k] = NULL;
            } else {
                t = ws[k] = arena_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_U8, 1,
                                        shp1(1 + (int64_t)rng_below(&r, 100000)), "ws.%d", k);
            }
        }
        offsets[i] = t ? t->offset : SIZE_MAX;
        tops[i] = arena_stats(a).top_bytes;
    }
}

static void test_arena_plan_equals_host(void **state) {
    (void)state;
    static size_t off_plan[SEQ_STEPS], top_plan[SEQ_STEPS], off_host[SEQ_STEPS],
        top_host[SEQ_STEPS];
    Arena *p = arena_init(ARENA_BACKING_PLAN, 0, 0, NULL);
    run_sequence(p, off_plan, top_plan);
    ArenaStats sp = arena_stats(p);
    /* the host arena is sized from the plan's high-water mark: exactly enough */
    Arena *h = host_arena(sp.high_water_bytes, 0);
    run_sequence(h, off_host, top_host);
    ArenaStats sh = arena_stats(h);
    assert_memory_equal(off_plan, off_host, sizeof off_plan);
    assert_memory_equal(top_plan, top_host, sizeof top_plan);
    assert_int_equal(sp.peak_used_bytes, sh.peak_used_bytes);
    assert_int_equal(sp.high_water_bytes, sh.high_water_bytes);
    assert_memory_equal(sp.cat_peak_bytes, sh.cat_peak_bytes, sizeof sp.cat_peak_bytes);
    assert_memory_equal(sp.at_peak_bytes, sh.at_peak_bytes, sizeof sp.at_peak_bytes);
    assert_int_equal(sp.hole_bytes, sh.hole_bytes);
    assert_true(sp.n_holes > 0); /* the mix does fragment: the report must be able to show it */
    /* host memory is real: every live tensor can be written without touching its neighbours */
    const Tensor *live[SEQ_STEPS + 100];
    int64_t n = arena_live_tensors(h, live, SEQ_STEPS + 100);
    for (int64_t i = 0; i < n; i++)
        if (live[i]->nbytes)
            memset(live[i]->data, (int)(i & 0xff), live[i]->nbytes);
    for (int64_t i = 0; i < n; i++) {
        const unsigned char *d = live[i]->data;
        if (!live[i]->nbytes)
            continue;
        assert_int_equal(d[0], (unsigned char)(i & 0xff));
        assert_int_equal(d[live[i]->nbytes - 1], (unsigned char)(i & 0xff));
    }
    teardown_check(p);
    teardown_check(h);
}

static void fill_small_arena(Arena *a) {
    int64_t shape[3] = {2, 8, 24};
    arena_alloc(a, ARENA_CAT_PARAMS, ARENA_DTYPE_F32, 3, shape, "h.0.attn.c_attn.weight");
    arena_alloc(a, ARENA_CAT_GRADS, ARENA_DTYPE_F32, 3, shape, "grad.h.0.attn.c_attn.weight");
    arena_alloc(a, ARENA_CAT_OPTIMIZER, ARENA_DTYPE_F32, 3, shape, "adam.m.x");
    Tensor *x = arena_alloc(a, ARENA_CAT_ACTIVATIONS, ARENA_DTYPE_F16, 3, shape, "act.\"q\"");
    Tensor *w = arena_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_U8, 1, shp1(3000), "ws.backend");
    arena_release(a, w);
    arena_release(a, x);
}

static char *slurp(FILE *f) {
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    return buf;
}

/* The small arena the report tests read back: traced, a marker, five allocations (two
 * freed), one name that needs JSON escaping. */
static Arena *report_arena(void) {
    Arena *a = arena_init(ARENA_BACKING_PLAN, 0, 0, NULL);
    assert_non_null(a);
    arena_trace_enable(a, 1);
    arena_trace_mark(a, "step 0");
    fill_small_arena(a);
    return a;
}

typedef enum ReportKind { REPORT_JSON, REPORT_CSV, REPORT_TRACE, REPORT_TABLE } ReportKind;

/* One report of a, as text (the caller frees). */
static char *report_text(const Arena *a, ReportKind kind) {
    FILE *f = tmpfile();
    assert_non_null(f);
    int rc = kind == REPORT_JSON    ? arena_report_json(a, f)
             : kind == REPORT_CSV   ? arena_report_csv(a, f)
             : kind == REPORT_TRACE ? arena_report_trace(a, f)
                                    : arena_report_table(a, f, 3);
    assert_int_equal(rc, 0);
    char *text = slurp(f);
    fclose(f);
    return text;
}

/* JSON: the peaks, per-category peaks and the breakdown at the peak match arena_stats; the
 * tensors live at the peak add up to it; names are escaped. */
static void test_arena_report_json(void **state) {
    Arena *a = report_arena();
    ArenaStats s = arena_stats(a);
    char *text = report_text(a, REPORT_JSON);
    char jerr[256];
    cJSON *j = json_path_parse(text, jerr, sizeof jerr);
    if (!j)
        print_error("%s\n%s\n", jerr, text);
    assert_non_null(j);
    assert_true(json_path_num(j, "peak_bytes") == (double)s.peak_used_bytes);
    assert_true(json_path_num(j, "high_water_bytes") == (double)s.high_water_bytes);
    for (int c = 0; c < ARENA_CAT_COUNT; c++) {
        char path[96];
        snprintf(path, sizeof path, "categories.%s.peak_bytes",
                 arena_category_name((ArenaCategory)c));
        assert_true(json_path_num(j, path) == (double)s.cat_peak_bytes[c]);
        snprintf(path, sizeof path, "at_peak.%s_bytes", arena_category_name((ArenaCategory)c));
        assert_true(json_path_num(j, path) == (double)s.at_peak_bytes[c]);
    }
    const cJSON *tensors = json_path_get(j, "tensors"), *t;
    assert_non_null(tensors);
    double sum = 0;
    cJSON_ArrayForEach(t, tensors) sum += json_path_num(t, "bytes");
    assert_true(sum == (double)s.peak_used_bytes);
    assert_string_equal(json_path_str(j, "tensors.3.name"), "act.\"q\"");
    assert_true(json_path_num(j, "tensors.0.shape.2") == 24);
    cJSON_Delete(j);
    free(text);
    teardown_check(a);
}

/* CSV: the same columns on every row; tensor rows add up to the peak. */
static void test_arena_report_csv(void **state) {
    Arena *a = report_arena();
    ArenaStats s = arena_stats(a);
    char *text = report_text(a, REPORT_CSV);
    int rows = 0, n_tensor = 0;
    size_t tensor_sum = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), rows++) {
        int commas = 0, in_quote = 0;
        for (char *c = line; *c; c++) {
            if (*c == '"')
                in_quote = !in_quote;
            else if (*c == ',' && !in_quote)
                commas++;
        }
        assert_int_equal(commas, 9);
        if (strncmp(line, "tensor,", 7) == 0) {
            /* bytes is the 7th column */
            char *p = line;
            for (int k = 0, q = 0; k < 6; p++) {
                if (*p == '"')
                    q = !q;
                else if (*p == ',' && !q)
                    k++;
            }
            tensor_sum += strtoull(p, NULL, 10);
            n_tensor++;
        }
    }
    assert_int_equal(rows, 1 + n_tensor + ARENA_CAT_COUNT + 1);
    assert_int_equal(tensor_sum, s.peak_used_bytes);
    free(text);
    teardown_check(a);
}

/* Trace: valid JSON, one alloc/free event per call, the counters, the marker. */
static void test_arena_report_trace(void **state) {
    Arena *a = report_arena();
    char *text = report_text(a, REPORT_TRACE);
    char jerr[256];
    cJSON *j = json_path_parse(text, jerr, sizeof jerr);
    if (!j)
        print_error("%s\n", jerr);
    assert_non_null(j);
    const cJSON *ev = json_path_get(j, "traceEvents"), *e;
    int n_alloc = 0, n_free = 0, n_counter = 0, n_mark = 0;
    cJSON_ArrayForEach(e, ev) {
        const char *ph = json_path_str(e, "ph"), *kind = json_path_str(e, "args.event");
        const char *name = json_path_str(e, "name");
        if (ph && strcmp(ph, "C") == 0)
            n_counter++;
        else if (kind && strcmp(kind, "alloc") == 0)
            n_alloc++;
        else if (kind && strcmp(kind, "free") == 0)
            n_free++;
        else if (name && strcmp(name, "step 0") == 0)
            n_mark++;
    }
    assert_int_equal(n_alloc, 5);
    assert_int_equal(n_free, 2);
    assert_int_equal(n_counter, 7);
    assert_int_equal(n_mark, 1);
    cJSON_Delete(j);
    free(text);
    teardown_check(a);
}

/* Table: names every category, the high-water mark and the top tensor. */
static void test_arena_report_table(void **state) {
    Arena *a = report_arena();
    char *text = report_text(a, REPORT_TABLE);
    for (int c = 0; c < ARENA_CAT_COUNT; c++)
        assert_non_null(strstr(text, arena_category_name((ArenaCategory)c)));
    assert_non_null(strstr(text, "high-water"));
    assert_non_null(strstr(text, "h.0.attn.c_attn.weight"));
    free(text);
    teardown_check(a);
}

/* The trace keeps each alloc/free event's dtype and shape (the memory page shows them). */
static void test_arena_trace_tensor_shapes(void **state) {
    (void)state;
    Arena *a = arena_init(ARENA_BACKING_PLAN, 0, 0, NULL);
    arena_trace_enable(a, 1);
    arena_trace_mark(a, "step 0");
    fill_small_arena(a);
    int truncated = 1;
    int64_t n = arena_trace_count(a, &truncated);
    assert_int_equal(truncated, 0);
    assert_int_equal(n, 1 + 5 + 2);
    ArenaDtype dt;
    int ndim = -1;
    int64_t shape[ARENA_MAX_DIMS];
    assert_int_equal(arena_trace_tensor(a, 0, &dt, &ndim, shape), 0);
    assert_int_equal(ndim, 0);                                        /* the marker */
    assert_int_equal(arena_trace_tensor(a, 4, &dt, &ndim, shape), 0); /* act."q" alloc */
    assert_int_equal(dt, ARENA_DTYPE_F16);
    assert_int_equal(ndim, 3);
    assert_int_equal(shape[0], 2);
    assert_int_equal(shape[1], 8);
    assert_int_equal(shape[2], 24);
    assert_int_equal(arena_trace_tensor(a, 6, &dt, &ndim, shape), 0); /* ws.cublaslt free */
    assert_int_equal(dt, ARENA_DTYPE_U8);
    assert_int_equal(ndim, 1);
    assert_int_equal(shape[0], 3000);
    assert_int_equal(arena_trace_tensor(a, n, &dt, &ndim, shape), -1);
    assert_int_equal(arena_trace_tensor(a, -1, &dt, &ndim, shape), -1);
    teardown_check(a);
}

static void test_arena_size_parse(void **state) {
    (void)state;
    size_t v = 0;
    Err err;
    assert_int_equal(size_parse("12GiB", &v, &err), 0);
    assert_int_equal(v, (size_t)12 << 30);
    assert_int_equal(size_parse("12G", &v, &err), 0);
    assert_int_equal(v, (size_t)12 << 30);
    assert_int_equal(size_parse("12GB", &v, &err), 0);
    assert_int_equal(v, (size_t)12000000000ULL);
    assert_int_equal(size_parse("1.5MiB", &v, &err), 0);
    assert_int_equal(v, (size_t)1572864);
    assert_int_equal(size_parse("4096", &v, &err), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(size_parse("12 XB", &v, &err), -1);
    assert_non_null(strstr(err.msg, "'12 XB'"));
    assert_int_equal(size_parse("-1GiB", &v, &err), -1);
    assert_int_equal(size_parse("1e30", &v, &err), -1);
    assert_int_equal(size_parse("0.3", &v, &err), -1);
    assert_int_equal(size_parse("", &v, &err), -1);
}

/* Under ASan (make asan) every byte outside a live tensor is poisoned: the free top, the
 * alignment padding after a tensor, a released tensor; a new tensor reads as 0xff (NaN). */
static void test_arena_poisons_outside_live_tensors(void **state) {
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    Arena *a = host_arena(MIB, 0);
    char *base = arena_base(a);
    assert_true(__asan_address_is_poisoned(base));
    assert_true(__asan_address_is_poisoned(base + MIB - 1));
    Tensor *t = arena_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_F32, 1, shp1(3), "t");
    Tensor *u = arena_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_F16, 1, shp1(5), "u");
    const unsigned char *d = t->data;
    assert_false(__asan_region_is_poisoned(t->data, t->nbytes));
    for (size_t i = 0; i < t->nbytes; i++)
        assert_int_equal(d[i], 0xff);
    float f;
    memcpy(&f, t->data, sizeof f);
    assert_true(f != f);                                    /* a fresh f32 reads as NaN */
    assert_true(__asan_address_is_poisoned(d + t->nbytes)); /* padding: one past the end */
    assert_true(__asan_address_is_poisoned(d + t->bytes - 1));
    assert_true(__asan_address_is_poisoned((char *)u->data + u->nbytes));
    assert_true(__asan_address_is_poisoned((char *)u->data + u->bytes)); /* the free top */
    arena_release(a, t);
    assert_true(__asan_address_is_poisoned(d));       /* a released tensor: a hole */
    assert_int_equal(arena_stats(a).used_bytes, 256); /* poisoning does not change accounting */
    arena_release(a, u);
    teardown_check(a);
#else
    skip(); /* no poisoning without AddressSanitizer: make asan runs this test */
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_alignment_and_padding),
        cmocka_unit_test(test_arena_categories_add_up),
        cmocka_unit_test(test_arena_peak_tracking),
        cmocka_unit_test(test_arena_lifo_enforced),
        cmocka_unit_test(test_arena_holes_and_first_fit),
        cmocka_unit_test(test_arena_budget_refusal_report),
        cmocka_unit_test(test_arena_plan_equals_host),
        cmocka_unit_test(test_arena_report_json),
        cmocka_unit_test(test_arena_report_csv),
        cmocka_unit_test(test_arena_report_trace),
        cmocka_unit_test(test_arena_report_table),
        cmocka_unit_test(test_arena_trace_tensor_shapes),
        cmocka_unit_test(test_arena_size_parse),
        cmocka_unit_test(test_arena_poisons_outside_live_tensors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
