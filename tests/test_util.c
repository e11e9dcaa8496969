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
