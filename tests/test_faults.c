/* test_faults.c: the pieces the fault-injection runs (scripts/reliability.sh) rely on: the
 * arena's allocation budget (refusal with the report, the arena usable after it), the parsing
 * of the test hooks' environment variables (malformed values refused), and the CPU step guard
 * (first non-finite gradient named in parameter order, skips counted, the "diverged" stop at
 * STEP_GUARD_MAX_SKIPS in a row, reset by a good step), and the removal of the temporary
 * files a save killed midway leaves (they used to stay in out_dir forever). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../alloc/arena.h"
#include "../model/gpt.h"
#include "../train/checkpoint.h"
#include "../train/step_guard.h"
#include "../train/test_hooks.h"
#include "test_util.h"

static void test_faults_arena_budget(void **state) {
    (void)state;
    Err err;
    Arena *a = arena_init(ARENA_BACKING_HOST, 64 * 1024, 0, &err);
    assert_non_null(a);
    int64_t shape[1] = {16};
    arena_set_alloc_budget(a, 2);
    Tensor *t0 = arena_try_alloc(a, ARENA_CAT_PARAMS, ARENA_DTYPE_F32, 1, shape, "w0");
    Tensor *t1 = arena_try_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_F32, 1, shape, "ws1");
    assert_non_null(t0);
    assert_non_null(t1);
    assert_null(arena_try_alloc(a, ARENA_CAT_GRADS, ARENA_DTYPE_F32, 1, shape, "g2"));
    assert_non_null(strstr(arena_last_error(a), "for 'g2' (grads"));
    assert_non_null(strstr(arena_last_error(a), "past the allocation budget of 2 allocations"));
    assert_non_null(strstr(arena_last_error(a), "held now: params 256"));
    /* the budget counts allocations made, not live ones */
    arena_release(a, t1);
    assert_null(arena_try_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_F32, 1, shape, "ws3"));
    ArenaStats s = arena_stats(a);
    assert_int_equal(s.n_refused, 2);
    assert_int_equal(s.n_allocs, 2);
    /* no cap again: the arena is still usable */
    arena_set_alloc_budget(a, -1);
    Tensor *t4 = arena_try_alloc(a, ARENA_CAT_WORKSPACE, ARENA_DTYPE_F32, 1, shape, "ws4");
    assert_non_null(t4);
    assert_string_equal(arena_last_error(a), "");
    arena_release(a, t4);
    arena_release(a, t0);
    assert_int_equal(arena_stats(a).used_bytes, 0);
    arena_free(a);
}

static int hooks_with(const char *fail_at, const char *nonfinite, TestHooks *h, Err *err) {
    if (fail_at)
        setenv("ARENAGPT_TEST_ALLOC_FAIL_AT", fail_at, 1);
    else
        unsetenv("ARENAGPT_TEST_ALLOC_FAIL_AT");
    if (nonfinite)
        setenv("ARENAGPT_TEST_NONFINITE", nonfinite, 1);
    else
        unsetenv("ARENAGPT_TEST_NONFINITE");
    int rc = test_hooks_from_env(h, err);
    unsetenv("ARENAGPT_TEST_ALLOC_FAIL_AT");
    unsetenv("ARENAGPT_TEST_NONFINITE");
    return rc;
}

static void test_faults_hooks_parse(void **state) {
    (void)state;
    TestHooks h;
    Err err;
    assert_int_equal(hooks_with(NULL, NULL, &h, &err), 0);
    assert_int_equal(h.alloc_fail_at, 0);
    assert_int_equal(h.n_inject, 0);
    assert_int_equal(hooks_with("17", "grad:3,grad:4:inf:5,loss:7:nan", &h, &err), 0);
    assert_int_equal(h.alloc_fail_at, 17);
    assert_int_equal(h.n_inject, 3);
    assert_false(h.inject[0].is_loss);
    assert_int_equal(h.inject[0].iter, 3);
    assert_true(isnan(h.inject[0].value));
    assert_int_equal(h.inject[0].param, 0);
    assert_true(isinf(h.inject[1].value));
    assert_int_equal(h.inject[1].param, 5);
    assert_true(h.inject[2].is_loss);
    assert_int_equal(h.inject[2].iter, 7);
    const char *bad_fail_at[] = {"0", "-3", "x", "12abc", ""};
    for (size_t i = 0; i < sizeof bad_fail_at / sizeof *bad_fail_at; i++) {
        int rc = hooks_with(bad_fail_at[i], NULL, &h, &err);
        if (bad_fail_at[i][0]) {
            assert_int_equal(rc, -1);
            assert_non_null(strstr(err.msg, "ARENAGPT_TEST_ALLOC_FAIL_AT"));
        } else {
            assert_int_equal(rc, 0); /* empty = unset */
        }
    }
    const char *bad[] = {"grad",         "grad:0",    "grad:x",         "grad:2:zero",
                         "loss:2:nan:1", "weights:2", "grad:2:nan:1:9", "grad:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(hooks_with(NULL, bad[i], &h, &err), -1);
        assert_non_null(strstr(err.msg, "ARENAGPT_TEST_NONFINITE"));
        assert_non_null(strstr(err.msg, bad[i]));
    }
}

typedef struct SmallModel {
    Arena *arena;
    Gpt g;
} SmallModel;

static void small_model(SmallModel *m) {
    GptConfig c;
    memset(&c, 0, sizeof c);
    c.max_seq_len = 4;
    c.vocab_size = 7;
    c.padded_vocab_size = 8;
    c.n_layer = 1;
    c.n_head = 1;
    c.channels = 4;
    Err err;
    m->arena = arena_init(ARENA_BACKING_HOST, 1 << 20, 0, &err);
    assert_non_null(m->arena);
    assert_int_equal(gpt_build(&m->g, &c, GPT_DEVICE_CPU, m->arena, 1, 4, &err), 0);
    gpt_init_weights(&m->g, 1);
    gpt_zero_grad(&m->g);
}

static void test_faults_step_guard(void **state) {
    (void)state;
    SmallModel m;
    small_model(&m);
    char name[ARENA_NAME_LEN];
    int64_t index;
    step_guard_first_nonfinite_grad(&m.g, name, sizeof name, &index);
    assert_string_equal(name, "");
    assert_int_equal(index, -1);
    /* inf in parameter 6, NaN in parameter 3 (element 2): parameter 3 is named */
    ((float *)m.g.params[6].grad->data)[0] = INFINITY;
    ((float *)m.g.params[3].grad->data)[2] = NAN;
    step_guard_first_nonfinite_grad(&m.g, name, sizeof name, &index);
    assert_string_equal(name, m.g.params[3].grad->name);
    assert_int_equal(index, 2);

    StepGuard sg = {0};
    int64_t skipped = 0;
    Err err;
    assert_int_equal(step_guard_after_step(&sg, &m.g, 0, 3.0f, 1.0f, 1e-3, &skipped, &err), 0);
    for (int k = 1; k < STEP_GUARD_MAX_SKIPS; k++)
        assert_int_equal(step_guard_after_step(&sg, &m.g, k, 3.0f, NAN, 1e-3, &skipped, &err), 1);
    assert_int_equal(skipped, STEP_GUARD_MAX_SKIPS - 1);
    /* a good step resets the run of skips, not the count */
    assert_int_equal(step_guard_after_step(&sg, &m.g, 9, 3.0f, 0.5f, 1e-3, &skipped, &err), 0);
    assert_int_equal(sg.in_a_row, 0);
    for (int k = 1; k < STEP_GUARD_MAX_SKIPS; k++)
        assert_int_equal(
            step_guard_after_step(&sg, &m.g, 9 + k, INFINITY, 1.0f, 1e-3, &skipped, &err), 1);
    assert_int_equal(step_guard_after_step(&sg, &m.g, 20, NAN, NAN, 1e-3, &skipped, &err), -1);
    assert_int_equal(skipped, 2 * STEP_GUARD_MAX_SKIPS - 1);
    assert_non_null(strstr(err.msg, "iter 21: diverged"));
    assert_non_null(strstr(err.msg, m.g.params[3].grad->name));
    gpt_free(&m.g);
    assert_int_equal(arena_stats(m.arena).used_bytes, 0);
    arena_free(m.arena);
}

static void touch(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
}

static int exists(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

static void test_faults_stale_temps_removed(void **state) {
    (void)state;
    char dir[256];
    assert_non_null(test_tmpdir(dir, sizeof dir));
    const char *stale[] = {"state_00000004.bin.tmp", "model.bin.tmp.Q8WFcV"};
    const char *kept[] = {"state_00000002.bin", "model.bin",      "metrics.jsonl",
                          "notes.tmp",          "state_.bin.tmp", "mymodel.bin.tmp.1"};
    for (size_t i = 0; i < 2; i++)
        touch(dir, stale[i]);
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++)
        touch(dir, kept[i]);
    assert_int_equal(checkpoint_remove_stale_temps(dir, NULL), 2);
    for (size_t i = 0; i < 2; i++)
        assert_false(exists(dir, stale[i]));
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++)
        assert_true(exists(dir, kept[i]));
    assert_int_equal(checkpoint_remove_stale_temps(dir, NULL), 0);
    test_rmtree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_faults_arena_budget),
        cmocka_unit_test(test_faults_hooks_parse),
        cmocka_unit_test(test_faults_step_guard),
        cmocka_unit_test(test_faults_stale_temps_removed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
