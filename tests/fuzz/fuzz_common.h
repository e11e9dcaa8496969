/* fuzz_common.h: helpers shared by the libFuzzer targets in tests/fuzz/: the input as a file
 * (our readers take paths), a scratch directory, and a bounded byte reader. The files are
 * memfd-backed (no disk traffic); their path is /proc/self/fd/N, which open(), fopen() and
 * mmap() treat like any regular file. Not thread-safe (libFuzzer runs one input at a time). */
#ifndef ARENAGPT_FUZZ_COMMON_H
#define ARENAGPT_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Replaces the contents of memfd slot `slot` (0..FUZZ_MAX_FILES-1) with data and returns its
 * path. Aborts (a harness bug, reported as a crash) if the memfd cannot be made. */
#define FUZZ_MAX_FILES 4
const char *fuzz_file(int slot, const uint8_t *data, size_t n);
/* A private scratch directory (made once, removed at exit); path + "/" + name is written with
 * data and its full path returned in a static buffer of the slot. */
const char *fuzz_dir(void);
const char *fuzz_dir_file(int slot, const char *name, const uint8_t *data, size_t n);

/* Consumes bytes from the front of an input. */
typedef struct FuzzInput {
    const uint8_t *p;
    size_t n;
} FuzzInput;
uint8_t fuzz_u8(FuzzInput *in); /* 0 when empty */
/* Splits off the next part, up to the first byte `sep` (not included) or the end. */
FuzzInput fuzz_split(FuzzInput *in, uint8_t sep);

#endif
