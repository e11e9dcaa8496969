/* fixture.h: reads the named-array files that scripts/make_fixture.py writes under
 * tests/fixtures/ (the PyTorch reference for the GPT-2 tests). A test helper, linked into
 * every test binary; it reads whole files into memory and never exits.
 *
 * File format (little-endian; make_fixture.py's docstring is the authority):
 *   header  int32 magic 0x58464741 ("AGFX"), int32 version 1, int32 n_arrays, int32 0
 *   array   char name[64] (NUL-padded), int32 dtype (0 f32, 1 i32, 2 f64), int32 ndim,
 *           int64 dims[4] (unused dims 1), then prod(dims) elements */
#ifndef ARENAGPT_TESTS_FIXTURE_H
#define ARENAGPT_TESTS_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "../alloc/base.h"

#define FIXTURE_MAGIC 0x58464741
#define FIXTURE_VERSION 1
#define FIXTURE_NAME_LEN 64

typedef enum FixtureDtype { FIXTURE_F32 = 0, FIXTURE_I32 = 1, FIXTURE_F64 = 2 } FixtureDtype;

typedef struct FixtureArray {
    char name[FIXTURE_NAME_LEN];
    FixtureDtype dtype;
    int ndim;
    int64_t dims[4];
    size_t numel;
    void *data; /* its own allocation (aligned for any dtype) */
} FixtureArray;

typedef struct Fixture {
    char path[512];
    unsigned char *buf;
    int n_arrays;
    FixtureArray *arrays;
} Fixture;

/* Reads and checks the whole file; 0, or -1 with err naming the file and the problem. */
int fixture_load(Fixture *fx, const char *path, Err *err);
void fixture_free(Fixture *fx);
/* The array called name, or NULL when the file has none. */
const FixtureArray *fixture_find(const Fixture *fx, const char *name);
/* Typed access: the data of name, ASSERTing that it exists, has that dtype and numel
 * elements (numel 0 = any; the count goes to *n_out when n_out is not NULL). */
const float *fixture_f32(const Fixture *fx, const char *name, size_t numel, size_t *n_out);
const int32_t *fixture_i32(const Fixture *fx, const char *name, size_t numel, size_t *n_out);
const double *fixture_f64(const Fixture *fx, const char *name, size_t numel, size_t *n_out);

#endif
