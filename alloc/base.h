/* base.h: what every library module shares: the always-on ASSERT for programmer errors,
 * the Err convention for everything else, overflow-checked size arithmetic, and byte-size
 * parsing/formatting ("12GiB", "1.5 MiB").
 *
 * Convention: library functions (alloc/, data/, model/) never exit. They return 0 on success
 * and -1 on failure after filling an Err with a message that names the file, the value and
 * what was expected. Only train/ (the CLI) prints and exits. ASSERT is for bugs, not input. */
#ifndef ARENAGPT_BASE_H
#define ARENAGPT_BASE_H

#include <stddef.h>
#include <stdint.h>

#define ERR_MSG_LEN 1024

typedef struct Err {
    char msg[ERR_MSG_LEN];
} Err;

/* Formats into err->msg (err may be NULL); always returns -1 so `return err_set(...)` reads well. */
int err_set(Err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends "prefix: " to an existing message (to add context as an error travels up). */
int err_prefix(Err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void base_assert_fail(const char *expr, const char *file, int line, const char *msg)
    __attribute__((noreturn));

/* Always on (also in release builds): a failed ASSERT is a bug, printed with its place. */
#define ASSERT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            base_assert_fail(#cond, __FILE__, __LINE__, NULL);                                     \
    } while (0)
#define ASSERT_MSG(cond, msg)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            base_assert_fail(#cond, __FILE__, __LINE__, (msg));                                    \
    } while (0)

/* Overflow-checked arithmetic: return 0 and store the result, or -1 on overflow. */
int size_mul(size_t a, size_t b, size_t *out);
int size_add(size_t a, size_t b, size_t *out);
size_t size_align_up(size_t n, size_t align); /* align is a power of two; ASSERTs on overflow */

/* Parses "123", "12GiB", "12G" (binary: GiB), "12GB" (decimal), "1.5MiB", "512KiB", "0".
 * Returns 0 or -1 with err naming the text and the accepted forms. */
int size_parse(const char *text, size_t *out_bytes, Err *err);
/* Writes "1.50 MiB" style text (binary units) into buf; returns buf. */
char *size_format(size_t bytes, char *buf, size_t buf_len);

#endif
