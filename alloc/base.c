/* base.c: Err formatting, ASSERT failure, checked size arithmetic, size parse/format. */
#include "base.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int err_set(Err *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int err_prefix(Err *err, const char *fmt, ...) {
    if (err) {
        char joined[2 * ERR_MSG_LEN + 2];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(joined, ERR_MSG_LEN, fmt, ap);
        va_end(ap);
        if (n < 0)
            n = 0;
        if (n > ERR_MSG_LEN - 1)
            n = ERR_MSG_LEN - 1;
        joined[n++] = ':';
        joined[n++] = ' ';
        memcpy(joined + n, err->msg, sizeof err->msg);
        joined[sizeof joined - 1] = 0;
        memcpy(err->msg, joined, sizeof err->msg - 1);
        err->msg[sizeof err->msg - 1] = 0;
    }
    return -1;
}

void base_assert_fail(const char *expr, const char *file, int line, const char *msg) {
    fprintf(stderr, "%s:%d: assertion failed: %s%s%s\n", file, line, expr, msg ? ": " : "",
            msg ? msg : "");
    fflush(stderr);
    abort();
}

int size_mul(size_t a, size_t b, size_t *out) {
    size_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return -1;
    *out = r;
    return 0;
}

int size_add(size_t a, size_t b, size_t *out) {
    size_t r;
    if (__builtin_add_overflow(a, b, &r))
        return -1;
    *out = r;
    return 0;
}

size_t size_align_up(size_t n, size_t align) {
    ASSERT(align > 0 && (align & (align - 1)) == 0);
    ASSERT(n <= SIZE_MAX - (align - 1));
    return (n + align - 1) & ~(align - 1);
}

int size_parse(const char *text, size_t *out_bytes, Err *err) {
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {
        {"", 1.0},
        {"B", 1.0},
        {"K", 1024.0},
        {"KiB", 1024.0},
        {"KB", 1e3},
        {"M", 1048576.0},
        {"MiB", 1048576.0},
        {"MB", 1e6},
        {"G", 1073741824.0},
        {"GiB", 1073741824.0},
        {"GB", 1e9},
        {"T", 1099511627776.0},
        {"TiB", 1099511627776.0},
        {"TB", 1e12},
    };
    const char *hint = "expected a byte size such as 1073741824, 512MiB, 12GiB or 12GB";
    if (!text || !*text)
        return err_set(err, "empty size (%s)", hint);
    errno = 0;
    char *end = NULL;
    double v = strtod(text, &end);
    if (end == text || errno != 0 || !isfinite(v) || v < 0)
        return err_set(err, "'%s' is not a byte size (%s)", text, hint);
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            double bytes = v * units[i].mult;
            if (bytes >= 18446744073709549568.0) /* largest double below 2^64 */
                return err_set(err, "'%s' is too large for a byte size", text);
            if (bytes != floor(bytes))
                return err_set(err, "'%s' is not a whole number of bytes", text);
            *out_bytes = (size_t)bytes;
            return 0;
        }
    }
    return err_set(err, "'%s' has an unknown unit '%s' (%s)", text, end, hint);
}

char *size_format(size_t bytes, char *buf, size_t buf_len) {
    static const char *names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, buf_len, "%zu B", bytes);
    else
        snprintf(buf, buf_len, "%.2f %s", v, names[u]);
    return buf;
}
