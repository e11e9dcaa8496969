/* fail_io.c: an LD_PRELOAD shim that makes file output fail (or the process die) at a chosen
 * call, to test checkpoint saves against a full disk, an I/O error or a SIGKILL mid-save.
 * Used by scripts/reliability.sh; never linked into arenagpt.
 *
 * It counts the output calls of a window: fwrite, fputs, fflush, fclose, write, fsync,
 * fdatasync and rename, on files other than stdin/stdout/stderr and in-memory streams
 * (open_memstream: no disk behind them). The window opens at the
 * FAIL_IO_ARM_NTH-th (default 1) creation of a file whose path contains FAIL_IO_ARM (fopen,
 * open, mkstemp) and closes after the first rename whose target contains FAIL_IO_DISARM
 * (that rename counted). In the window, call number FAIL_IO_AT (from 1) fails:
 *   FAIL_IO_MODE=enospc  the call fails with ENOSPC (an fclose still closes the file)
 *   FAIL_IO_MODE=eio     the same with EIO
 *   FAIL_IO_MODE=kill    the process sends itself SIGKILL instead of making the call
 * FAIL_IO_AT=0 only counts. FAIL_IO_COUNT_FILE names a file that receives, at exit, the
 * number of calls the window saw (for "every n of one save").
 * FAIL_IO_DENY_CREATE=1: from the arming creation on, every file creation (fopen for writing,
 * open with O_CREAT, mkstemp) fails with EACCES, as in an out_dir that became unwritable. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *arm, *disarm;
static long arm_nth = 1, fail_at, n_armed_opens, n_calls;
static int armed, done, mode_errno = ENOSPC, mode_kill, deny_create;

__attribute__((constructor)) static void fail_io_init(void) {
    arm = getenv("FAIL_IO_ARM");
    disarm = getenv("FAIL_IO_DISARM");
    const char *v = getenv("FAIL_IO_ARM_NTH");
    if (v)
        arm_nth = atol(v);
    v = getenv("FAIL_IO_AT");
    if (v)
        fail_at = atol(v);
    v = getenv("FAIL_IO_DENY_CREATE");
    deny_create = v && strcmp(v, "1") == 0;
    v = getenv("FAIL_IO_MODE");
    if (v && strcmp(v, "eio") == 0)
        mode_errno = EIO;
    else if (v && strcmp(v, "kill") == 0)
        mode_kill = 1;
}

__attribute__((destructor)) static void fail_io_fini(void) {
    const char *path = getenv("FAIL_IO_COUNT_FILE");
    if (!path)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", n_calls);
    ssize_t w = write(fd, buf, (size_t)n);
    (void)w;
    close(fd);
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

/* 1: this creation must fail (FAIL_IO_DENY_CREATE; errno set). */
static int saw_create(const char *path) {
    if (arm && !done && !armed && path && strstr(path, arm) && ++n_armed_opens == arm_nth)
        armed = 1;
    if (armed && deny_create) {
        n_calls++;
        errno = EACCES;
        return 1;
    }
    return 0;
}

/* 1: fail this call (errno set). Kills the process in kill mode. */
static int should_fail(void) {
    if (!armed)
        return 0;
    n_calls++;
    if (fail_at <= 0 || n_calls != fail_at)
        return 0;
    if (mode_kill)
        kill(getpid(), SIGKILL);
    errno = mode_errno;
    return 1;
}

#define MAX_MEMSTREAMS 16
static FILE *memstreams[MAX_MEMSTREAMS];

FILE *open_memstream(char **buf, size_t *len) {
    FILE *f = REAL(open_memstream)(buf, len);
    for (int i = 0; f && i < MAX_MEMSTREAMS; i++)
        if (!memstreams[i]) {
            memstreams[i] = f;
            break;
        }
    return f;
}

static int is_memstream(FILE *f, int forget) {
    for (int i = 0; i < MAX_MEMSTREAMS; i++)
        if (memstreams[i] == f) {
            if (forget)
                memstreams[i] = NULL;
            return 1;
        }
    return 0;
}

static int watched_fd(int fd) { return fd > 2; }
static int watched(FILE *f) {
    return f && f != stdout && f != stderr && f != stdin && !is_memstream(f, 0);
}

FILE *fopen(const char *path, const char *m) {
    if ((strchr(m, 'w') || strchr(m, 'a')) && saw_create(path))
        return NULL;
    return REAL(fopen)(path, m);
}
FILE *fopen64(const char *path, const char *m) {
    if ((strchr(m, 'w') || strchr(m, 'a')) && saw_create(path))
        return NULL;
    return REAL(fopen64)(path, m);
}
int open(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t md = (mode_t)va_arg(ap, int);
    va_end(ap);
    if ((flags & O_CREAT) && saw_create(path))
        return -1;
    return REAL(open)(path, flags, md);
}
int open64(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t md = (mode_t)va_arg(ap, int);
    va_end(ap);
    if ((flags & O_CREAT) && saw_create(path))
        return -1;
    return REAL(open64)(path, flags, md);
}
int mkstemp(char *tmpl) {
    if (saw_create(tmpl))
        return -1;
    return REAL(mkstemp)(tmpl);
}
int mkstemp64(char *tmpl) {
    if (saw_create(tmpl))
        return -1;
    return REAL(mkstemp64)(tmpl);
}

size_t fwrite(const void *p, size_t size, size_t n, FILE *f) {
    if (watched(f) && should_fail())
        return 0;
    return REAL(fwrite)(p, size, n, f);
}
int fputs(const char *s, FILE *f) {
    if (watched(f) && should_fail())
        return EOF;
    return REAL(fputs)(s, f);
}
int fflush(FILE *f) {
    if (watched(f) && should_fail())
        return EOF;
    return REAL(fflush)(f);
}
int fclose(FILE *f) {
    if (is_memstream(f, 1))
        return REAL(fclose)(f);
    if (watched(f) && should_fail()) {
        int e = errno;
        REAL(fclose)(f);
        errno = e;
        return EOF;
    }
    return REAL(fclose)(f);
}
ssize_t write(int fd, const void *p, size_t n) {
    if (watched_fd(fd) && should_fail())
        return -1;
    return REAL(write)(fd, p, n);
}
int fsync(int fd) {
    if (watched_fd(fd) && should_fail())
        return -1;
    return REAL(fsync)(fd);
}
int fdatasync(int fd) {
    if (watched_fd(fd) && should_fail())
        return -1;
    return REAL(fdatasync)(fd);
}
int rename(const char *from, const char *to) {
    int fail = should_fail();
    if (armed && disarm && to && strstr(to, disarm)) {
        armed = 0;
        done = 1;
    }
    if (fail)
        return -1;
    return REAL(rename)(from, to);
}
