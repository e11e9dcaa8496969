/* fuzz_common.c: see fuzz_common.h. */
#define _GNU_SOURCE
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int fds[FUZZ_MAX_FILES] = {-1, -1, -1, -1};
static char paths[FUZZ_MAX_FILES][64];

static void write_all(int fd, const uint8_t *data, size_t n) {
    if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
        abort();
    while (n > 0) {
        ssize_t w = write(fd, data, n);
        if (w <= 0)
            abort();
        data += w;
        n -= (size_t)w;
    }
}

const char *fuzz_file(int slot, const uint8_t *data, size_t n) {
    if (slot < 0 || slot >= FUZZ_MAX_FILES)
        abort();
    if (fds[slot] < 0) {
        fds[slot] = memfd_create("arenagpt-fuzz", 0);
        if (fds[slot] < 0)
            abort();
        snprintf(paths[slot], sizeof paths[slot], "/proc/self/fd/%d", fds[slot]);
    }
    write_all(fds[slot], data, n);
    return paths[slot];
}

static char dir_path[64];
static char dir_files[FUZZ_MAX_FILES][128];

static void dir_remove(void) {
    for (int i = 0; i < FUZZ_MAX_FILES; i++)
        if (dir_files[i][0])
            unlink(dir_files[i]);
    rmdir(dir_path);
}

const char *fuzz_dir(void) {
    if (!dir_path[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir_path, sizeof dir_path, "%s/arenagpt-fuzz-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(dir_path))
            abort();
        atexit(dir_remove);
    }
    return dir_path;
}

const char *fuzz_dir_file(int slot, const char *name, const uint8_t *data, size_t n) {
    if (slot < 0 || slot >= FUZZ_MAX_FILES)
        abort();
    snprintf(dir_files[slot], sizeof dir_files[slot], "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(dir_files[slot], "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0)
        abort();
    return dir_files[slot];
}

uint8_t fuzz_u8(FuzzInput *in) {
    if (in->n == 0)
        return 0;
    uint8_t b = in->p[0];
    in->p++;
    in->n--;
    return b;
}

FuzzInput fuzz_split(FuzzInput *in, uint8_t sep) {
    FuzzInput part = {in->p, 0};
    const uint8_t *e = in->n ? memchr(in->p, sep, in->n) : NULL;
    if (e) {
        part.n = (size_t)(e - in->p);
        in->p = e + 1;
        in->n -= part.n + 1;
    } else {
        part.n = in->n;
        in->p += in->n;
        in->n = 0;
    }
    return part;
}
