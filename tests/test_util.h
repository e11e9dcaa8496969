/* test_util.h: helpers shared by the cmocka tests: the one closeness check, temp files,
 * and where the repository is (ARENAGPT_ROOT, set by the Makefile). Include after cmocka.h. */
#ifndef ARENAGPT_TEST_UTIL_H
#define ARENAGPT_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

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
/* A whole file, NUL-terminated (not counted in *len); NULL when it cannot be opened. Fails the
 * test on a short read. The caller frees. */
char *test_read_file(const char *path, size_t *len);
/* The repository root (ARENAGPT_ROOT, else "."). */
const char *test_root(void);
/* Runs a shell command, returns its exit status (or -1 if it did not exit normally). */
int test_run(const char *cmd);

#endif
