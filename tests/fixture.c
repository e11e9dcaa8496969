/* fixture.c: the reader for make_fixture.py's named-array files (see fixture.h). */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t fixture_dtype_size(int dtype) {
    return dtype == FIXTURE_F32 ? 4 : dtype == FIXTURE_I32 ? 4 : dtype == FIXTURE_F64 ? 8 : 0;
}

int fixture_load(Fixture *fx, const char *path, Err *err) {
    memset(fx, 0, sizeof(*fx));
    snprintf(fx->path, sizeof(fx->path), "%s", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(err, "%s: cannot open (run /usr/bin/python3 scripts/make_fixture.py)", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (len < 16) {
        fclose(f);
        return err_set(err, "%s: %ld bytes, shorter than the 16-byte header", path, len);
    }
    fx->buf = malloc((size_t)len);
    ASSERT(fx->buf);
    size_t got = fread(fx->buf, 1, (size_t)len, f);
    fclose(f);
    if (got != (size_t)len) {
        fixture_free(fx);
        return err_set(err, "%s: read %zu of %ld bytes", path, got, len);
    }
    int32_t hdr[4];
    memcpy(hdr, fx->buf, sizeof(hdr));
    if (hdr[0] != FIXTURE_MAGIC || hdr[1] != FIXTURE_VERSION || hdr[2] < 0) {
        fixture_free(fx);
        return err_set(err, "%s: magic %#x version %d, expected %#x version %d", path,
                       (unsigned)hdr[0], hdr[1], FIXTURE_MAGIC, FIXTURE_VERSION);
    }
    fx->n_arrays = hdr[2];
    fx->arrays = calloc((size_t)fx->n_arrays + 1, sizeof(FixtureArray));
    ASSERT(fx->arrays);
    size_t pos = 16;
    const size_t rec = FIXTURE_NAME_LEN + 8 + 32;
    for (int i = 0; i < fx->n_arrays; i++) {
        FixtureArray *a = &fx->arrays[i];
        if (pos + rec > (size_t)len) {
            fixture_free(fx);
            return err_set(err, "%s: truncated in the header of array %d", path, i);
        }
        memcpy(a->name, fx->buf + pos, FIXTURE_NAME_LEN);
        a->name[FIXTURE_NAME_LEN - 1] = '\0';
        int32_t dt[2];
        memcpy(dt, fx->buf + pos + FIXTURE_NAME_LEN, 8);
        memcpy(a->dims, fx->buf + pos + FIXTURE_NAME_LEN + 8, 32);
        a->dtype = (FixtureDtype)dt[0];
        a->ndim = dt[1];
        pos += rec;
        size_t es = fixture_dtype_size(dt[0]);
        if (es == 0 || a->ndim < 0 || a->ndim > 4) {
            fixture_free(fx);
            return err_set(err, "%s: array '%s' has dtype %d ndim %d", path, a->name, dt[0], dt[1]);
        }
        a->numel = 1;
        for (int d = 0; d < 4; d++) {
            if (a->dims[d] < 0) {
                fixture_free(fx);
                return err_set(err, "%s: array '%s' has a negative dim", path, a->name);
            }
            a->numel *= (size_t)a->dims[d];
        }
        if (pos + a->numel * es > (size_t)len) {
            fixture_free(fx);
            return err_set(err, "%s: truncated in the data of array '%s'", path, a->name);
        }
        /* own copy: the file packs arrays without alignment, and f64 data needs 8 */
        a->data = malloc(a->numel * es + 1);
        ASSERT(a->data);
        memcpy(a->data, fx->buf + pos, a->numel * es);
        pos += a->numel * es;
    }
    return 0;
}

void fixture_free(Fixture *fx) {
    for (int i = 0; fx->arrays && i < fx->n_arrays; i++)
        free(fx->arrays[i].data);
    free(fx->buf);
    free(fx->arrays);
    fx->buf = NULL;
    fx->arrays = NULL;
    fx->n_arrays = 0;
}

const FixtureArray *fixture_find(const Fixture *fx, const char *name) {
    for (int i = 0; i < fx->n_arrays; i++)
        if (strcmp(fx->arrays[i].name, name) == 0)
            return &fx->arrays[i];
    return NULL;
}

static const void *fixture_get(const Fixture *fx, const char *name, FixtureDtype dtype,
                               size_t numel, size_t *n_out) {
    const FixtureArray *a = fixture_find(fx, name);
    if (!a) {
        fprintf(stderr, "%s: no array '%s'\n", fx->path, name);
        ASSERT(a);
    }
    ASSERT_MSG(a->dtype == dtype, name);
    if (numel != 0 && a->numel != numel) {
        fprintf(stderr, "%s: array '%s' has %zu elements, expected %zu\n", fx->path, name, a->numel,
                numel);
        ASSERT(a->numel == numel);
    }
    if (n_out)
        *n_out = a->numel;
    return a->data;
}

const float *fixture_f32(const Fixture *fx, const char *name, size_t numel, size_t *n_out) {
    return fixture_get(fx, name, FIXTURE_F32, numel, n_out);
}
const int32_t *fixture_i32(const Fixture *fx, const char *name, size_t numel, size_t *n_out) {
    return fixture_get(fx, name, FIXTURE_I32, numel, n_out);
}
const double *fixture_f64(const Fixture *fx, const char *name, size_t numel, size_t *n_out) {
    return fixture_get(fx, name, FIXTURE_F64, numel, n_out);
}
