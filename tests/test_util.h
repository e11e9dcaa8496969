/* test_util.h: helpers shared by the cmocka tests (tests/ and tests/gpu/): the one closeness
 * check, temp directories and files, model configs and built CPU models, random tokens, the
 * slow-test switch, and where the repository is (ARENAGPT_ROOT, set by the Makefile).
 * Include after cmocka.h. */
#ifndef ARENAGPT_TEST_UTIL_H
#define ARENAGPT_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "../alloc/arena.h"
#include "../model/gpt.h"

/* Fails (cmocka fail) unless |a-e| <= atol + rtol*|e| for every element; NaN never passes.
 * Prints the first bad index, both values, and how many elements failed. */
void assert_allclose_impl(const float *a, const float *e, size_t n, double atol, double rtol,
                          const char *what, const char *file, int line);
void assert_allclose_f64_impl(const double *a, const double *e, size_t n, double atol, double rtol,
                              const char *what, const char *file, int line);
#define assert_allclose(a, e, n, atol, rtol)                                                       \
    assert_allclose_impl((a), (e), (n), (atol), (rtol), #a, __FILE__, __LINE__)
#define assert_allclose_f64(a, e, n, atol, rtol)                                                   \
    assert_allclose_f64_impl((a), (e), (n), (atol), (rtol), #a, __FILE__, __LINE__)

/* A fresh empty directory under $TMPDIR (or /tmp), made with mkdtemp; path into buf. */
char *test_tmpdir(char *buf, size_t len);
/* Removes a directory tree made by test_tmpdir (rm -rf); refuses paths outside the temp dir. */
void test_rmtree(const char *path);
/* cmocka setup/teardown (per group or per test): a fresh temp directory, test_dir() until the
 * teardown removes it. */
int test_dir_setup(void **state);
int test_dir_teardown(void **state);
const char *test_dir(void);
/* Writes n bytes to path (fails the test when it cannot). */
void test_write_file(const char *path, const void *p, size_t n);
/* A whole file, NUL-terminated (not counted in *len); NULL when it cannot be opened. Fails the
 * test on a short read. The caller frees. */
char *test_read_file(const char *path, size_t *len);
/* The test data make test's set-up fetches (scripts/setup.sh), where the Makefile says
 * (VOCAB_DIR, SHAKESPEARE): $ARENAGPT_VOCAB_DIR, else <root>/.cache/gpt2 (encoder.json,
 * vocab.bpe), and $ARENAGPT_SHAKESPEARE, else <root>/.cache/tinyshakespeare.txt. */
const char *test_vocab_dir(void);
const char *test_shakespeare_path(void);
/* Data a test needs is missing at path: fails the test when ARENAGPT_REQUIRE_DATA=1 (make
 * test after its set-up: the data must be there), else skips it with the reason. */
void test_data_missing(const char *what, const char *path);
/* Whether ARENAGPT_REQUIRE_DATA=1 (missing data fails instead of skipping). */
int test_data_required(void);
/* The repository root (ARENAGPT_ROOT, else "."). */
const char *test_root(void);
/* Runs a shell command, returns its exit status (or -1 if it did not exit normally). */
int test_run(const char *cmd);

/* A model config (attention naive, loss_chunk automatic). */
/* The product's training plan (gpt_plan's GPT_PLAN_TRAIN phase) of c at (B, T) with accum
 * micro-steps and limit (0 none); test_plan_args gives the same args for gpt_plan_steps on a
 * real arena (plan == measured). */
GptPlanArgs test_plan_args(int64_t B, int64_t T, int64_t accum, size_t limit);
int test_plan(const GptConfig *c, GptDevice dev, int64_t B, int64_t T, int64_t accum, size_t limit,
              GptPlan **out, Err *err);
GptConfig test_gpt_config(int64_t L, int64_t NH, int64_t C, int64_t maxT, int64_t V, int64_t Vp,
                          int bias, GptGelu gelu, GptRecompute recompute);
/* Builds c on the CPU for batches up to (B,T) with nanoGPT's init (seed), on a host arena of
 * exactly the plan's high-water bytes; returns that arena (test_model_free frees both). */
Arena *test_model_build(Gpt *g, const GptConfig *c, int64_t B, int64_t T, uint64_t seed);
/* gpt_free, then checks the arena is back to 0 used bytes and frees it. */
void test_model_free(Gpt *g, Arena *a);
/* n tokens uniform in [0, V) from an Rng seeded with seed. */
void test_tokens_random(int32_t *x, int64_t n, int64_t V, uint64_t seed);
/* 0 when ARENAGPT_SLOW_TESTS=0 (the ASan run): slow tests shrink. */
int test_slow(void);

#endif
