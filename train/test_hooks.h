/* test_hooks.h: fault injection for the reliability tests (scripts/reliability.sh), switched
 * on only by environment variables that exist for testing; a normal run sets none of them and
 * nothing here changes it. Documented in the README ("Reliability"):
 *   ARENAGPT_TEST_ALLOC_FAIL_AT=K  the arena of train, eval or sample refuses its K-th
 *                                 allocation (1-based) with the arena's report
 *                                 (arena_set_alloc_budget(K - 1)).
 *   ARENAGPT_TEST_HOST_ALLOC_FAIL_AT=K  the same for train's host arena (optimizer_offload).
 *   ARENAGPT_TEST_NONFINITE=SPEC   SPEC is a comma-separated list of
 *                                 grad:ITER[:nan|inf[:INDEX]]  after the backward pass of
 *                                     step ITER (numbered as the log's "iter ITER", from 1),
 *                                     element 0 of the gradient of parameter INDEX (gpt.h
 *                                     order, default 0) becomes NaN (default) or inf;
 *                                 loss:ITER[:nan|inf]  step ITER's loss becomes NaN/inf.
 * On every device: the gradient element is written in its dtype through the backend.
 * Malformed values are refused with the variable, the value and what was expected. */
#ifndef ARENAGPT_TEST_HOOKS_H
#define ARENAGPT_TEST_HOOKS_H

#include <stdint.h>

#include "../alloc/arena.h"
#include "../model/gpt.h"

#define TEST_HOOKS_MAX_INJECT 64

typedef struct TestInjection {
    int is_loss; /* 1: the loss, 0: a gradient */
    int64_t iter;
    float value;
    int param;
} TestInjection;

typedef struct TestHooks {
    int64_t alloc_fail_at;      /* 0 = off */
    int64_t host_alloc_fail_at; /* the host arena's (optimizer_offload); 0 = off */
    TestInjection inject[TEST_HOOKS_MAX_INJECT];
    int n_inject;
} TestHooks;

/* Reads the variables; -1 with err on a malformed value. */
int test_hooks_from_env(TestHooks *h, Err *err);
/* Applies ARENAGPT_TEST_ALLOC_FAIL_AT to the arena (no-op when unset). */
void test_hooks_arm_arena(const TestHooks *h, Arena *a);
/* Applies ARENAGPT_TEST_HOST_ALLOC_FAIL_AT to the host arena (no-op when unset). */
void test_hooks_arm_host_arena(const TestHooks *h, Arena *a);
/* Both in one call, for eval and sample (which use no other hook); -1 with err when a
 * variable is malformed. */
int test_hooks_arm_arena_from_env(Arena *a, Err *err);
/* Applies the injections due at iteration it (step it + 1) to g's gradients (CPU) and to
 * *loss; -1 with err for a parameter index the model does not have. */
int test_hooks_inject(const TestHooks *h, int64_t it, Gpt *g, float *loss, Err *err);

#endif
