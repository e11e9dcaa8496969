/* test_util.c: see test_util.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "test_util.h"

#include "../data/rng.h"

#define ALLCLOSE_BODY                                                                              \
    size_t n_bad = 0, first = 0;                                                                   \
    for (size_t i = 0; i < n; i++) {                                                               \
        double x = (double)a[i], y = (double)e[i];                                                 \
        if (!(fabs(x - y) <= atol + rtol * fabs(y))) {                                             \
            if (n_bad == 0)                                                                        \
                first = i;                                                                         \
            n_bad++;                                                                               \
        }                                                                                          \
    }                                                                                              \
    if (n_bad) {                                                                                   \
        print_error("%s:%d: %s: %zu of %zu elements not close (atol %g, rtol %g); first at "       \
                    "[%zu]: got %.9g expected %.9g\n",                                             \
                    file, line, what, n_bad, n, atol, rtol, first, (double)a[first],               \
                    (double)e[first]);                                                             \
        fail();                                                                                    \
    }

void assert_allclose_impl(const float *a, const float *e, size_t n, double atol, double rtol,
                          const char *what, const char *file, int line) {
    ALLCLOSE_BODY
}

void assert_allclose_f64_impl(const double *a, const double *e, size_t n, double atol, double rtol,
                              const char *what, const char *file, int line) {
    ALLCLOSE_BODY
}

char *test_tmpdir(char *buf, size_t len) {
    const char *base = getenv("TMPDIR");
    snprintf(buf, len, "%s/arenagpt-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(buf)) {
        print_error("mkdtemp(%s) failed\n", buf);
        fail();
    }
    return buf;
}

void test_rmtree(const char *path) {
    if (!strstr(path, "arenagpt-test-"))
        return;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        print_error("could not remove %s\n", path);
}

char *test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

const char *test_root(void) {
    const char *r = getenv("ARENAGPT_ROOT");
    return r && *r ? r : ".";
}

int test_run(const char *cmd) {
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static char g_test_dir[512];

int test_dir_setup(void **state) {
    test_tmpdir(g_test_dir, sizeof g_test_dir);
    *state = g_test_dir;
    return 0;
}

int test_dir_teardown(void **state) {
    test_rmtree(g_test_dir);
    g_test_dir[0] = 0;
    return 0;
}

const char *test_dir(void) {
    if (!g_test_dir[0]) {
        print_error("test_dir: no test_dir_setup ran\n");
        fail();
    }
    return g_test_dir;
}

void test_write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        print_error("%s: cannot create\n", path);
        fail();
    }
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

GptConfig test_gpt_config(int64_t L, int64_t NH, int64_t C, int64_t maxT, int64_t V, int64_t Vp,
                          int bias, GptGelu gelu, GptRecompute recompute) {
    GptConfig c;
    memset(&c, 0, sizeof c);
    c.n_layer = L;
    c.n_head = NH;
    c.channels = C;
    c.max_seq_len = maxT;
    c.vocab_size = V;
    c.padded_vocab_size = Vp;
    c.bias = bias;
    c.gelu = gelu;
    c.recompute = recompute;
    c.attention = GPT_ATTENTION_NAIVE;
    return c;
}

GptPlanArgs test_plan_args(int64_t B, int64_t T, int64_t accum, size_t limit) {
    return (GptPlanArgs){
        .phase = GPT_PLAN_TRAIN, .B = B, .T = T, .grad_accum = accum, .limit_bytes = limit};
}

int test_plan(const GptConfig *c, GptDevice dev, int64_t B, int64_t T, int64_t accum, size_t limit,
              GptPlan **out, Err *err) {
    GptPlanArgs a = test_plan_args(B, T, accum, limit);
    return gpt_plan(c, dev, &a, out, err);
}

Arena *test_model_build(Gpt *g, const GptConfig *c, int64_t B, int64_t T, uint64_t seed) {
    Err err = {{0}};
    GptPlan *plan = NULL;
    if (test_plan(c, GPT_DEVICE_CPU, B, T, 1, 0, &plan, &err)) {
        print_error("gpt_plan: %s\n", err.msg);
        fail();
    }
    size_t cap = arena_stats(plan->arena).high_water_bytes;
    gpt_plan_free(plan);
    Arena *a = arena_init(ARENA_BACKING_HOST, cap, 0, &err);
    assert_non_null(a);
    if (gpt_build(g, c, GPT_DEVICE_CPU, a, B, T, &err)) {
        print_error("gpt_build: %s\n", err.msg);
        fail();
    }
    gpt_init_weights(g, seed);
    return a;
}

void test_model_free(Gpt *g, Arena *a) {
    gpt_free(g);
    assert_int_equal(arena_stats(a).used_bytes, 0);
    arena_free(a);
}

void test_tokens_random(int32_t *x, int64_t n, int64_t V, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    for (int64_t i = 0; i < n; i++)
        x[i] = (int32_t)rng_below(&r, (uint64_t)V);
}

int test_slow(void) {
    const char *s = getenv("ARENAGPT_SLOW_TESTS");
    return !(s && strcmp(s, "0") == 0);
}

static const char *env_or_root(const char *var, const char *rel, char *buf, size_t len) {
    const char *v = getenv(var);
    if (v && *v)
        return v;
    snprintf(buf, len, "%s/%s", test_root(), rel);
    return buf;
}

const char *test_vocab_dir(void) {
    static char buf[4096];
    return env_or_root("ARENAGPT_VOCAB_DIR", ".cache/gpt2", buf, sizeof buf);
}

const char *test_shakespeare_path(void) {
    static char buf[4096];
    return env_or_root("ARENAGPT_SHAKESPEARE", ".cache/tinyshakespeare.txt", buf, sizeof buf);
}

int test_data_required(void) {
    const char *req = getenv("ARENAGPT_REQUIRE_DATA");
    return req && strcmp(req, "1") == 0;
}

void test_data_missing(const char *what, const char *path) {
    if (test_data_required()) {
        print_error("%s missing at %s, although make test's set-up has run (scripts/setup.sh "
                    "fetches it; VOCAB_DIR / SHAKESPEARE in the Makefile say where)\n",
                    what, path);
        fail();
    }
    print_message("SKIP: %s missing at %s (run scripts/setup.sh)\n", what, path);
    skip();
}
