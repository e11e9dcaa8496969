/* safetensors.c: the safetensors container (see safetensors.h for the format and the checks):
 * the header parsed with cJSON and checked entry by entry, files mapped read-only, sharded
 * checkpoints through their index, f16/bf16 -> f32, and the atomic F32 or BF16 writer. */
#define _GNU_SOURCE
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "half.h" /* f16, bf16 <-> f32 */

#define SAFE_MAX_OFFSET ((double)(1ull << 53)) /* larger integers do not survive a double */

static const struct {
    const char *name;
    size_t size;
    SafeDtype dtype;
} SAFE_DTYPES[] = {
    {"F32", 4, SAFE_DTYPE_F32},       {"F16", 2, SAFE_DTYPE_F16},
    {"BF16", 2, SAFE_DTYPE_BF16},     {"F64", 8, SAFE_DTYPE_OTHER},
    {"I64", 8, SAFE_DTYPE_OTHER},     {"I32", 4, SAFE_DTYPE_OTHER},
    {"I16", 2, SAFE_DTYPE_OTHER},     {"I8", 1, SAFE_DTYPE_OTHER},
    {"U64", 8, SAFE_DTYPE_OTHER},     {"U32", 4, SAFE_DTYPE_OTHER},
    {"U16", 2, SAFE_DTYPE_OTHER},     {"U8", 1, SAFE_DTYPE_OTHER},
    {"BOOL", 1, SAFE_DTYPE_OTHER},    {"F8_E4M3", 1, SAFE_DTYPE_OTHER},
    {"F8_E5M2", 1, SAFE_DTYPE_OTHER},
};
#define N_SAFE_DTYPES ((int)(sizeof SAFE_DTYPES / sizeof SAFE_DTYPES[0]))

static int safe_grow(Safetensors *st, int n_more) {
    SafeTensor *t = realloc(st->tensors, (size_t)(st->n_tensors + n_more) * sizeof *t);
    if (!t)
        return -1;
    st->tensors = t;
    return 0;
}

/* An integer JSON number in [0, 2^53]: 0 with *out, else -1. */
static int safe_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= SAFE_MAX_OFFSET) ||
        v->valuedouble != floor(v->valuedouble))
        return -1;
    *out = (uint64_t)v->valuedouble;
    return 0;
}

/* dtype and shape of one entry into t (numel and the byte size checked for overflow). */
static int safe_entry_type(const cJSON *e, SafeTensor *t, size_t *elem, const char *file,
                           Err *err) {
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    int k = 0;
    while (k < N_SAFE_DTYPES &&
           !(cJSON_IsString(dt) && strcmp(dt->valuestring, SAFE_DTYPES[k].name) == 0))
        k++;
    if (k == N_SAFE_DTYPES)
        return err_set(err, "%s: tensor '%s': unknown dtype %s%.16s%s", file, t->name,
                       cJSON_IsString(dt) ? "'" : "",
                       cJSON_IsString(dt) ? dt->valuestring : "(none)",
                       cJSON_IsString(dt) ? "'" : "");
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", SAFE_DTYPES[k].name);
    t->dtype = SAFE_DTYPES[k].dtype;
    *elem = SAFE_DTYPES[k].size;
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape"), *d;
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > SAFETENSORS_MAX_DIMS)
        return err_set(err, "%s: tensor '%s': shape is not an array of at most %d sizes", file,
                       t->name, SAFETENSORS_MAX_DIMS);
    t->ndim = 0;
    t->numel = 1;
    cJSON_ArrayForEach(d, shape) {
        uint64_t v;
        if (safe_uint(d, &v) != 0)
            return err_set(err, "%s: tensor '%s': shape holds a value that is not a size", file,
                           t->name);
        t->shape[t->ndim++] = (int64_t)v;
        if (v && t->numel > UINT64_MAX / v)
            return err_set(err, "%s: tensor '%s': shape overflows", file, t->name);
        t->numel *= v;
    }
    if (t->numel > SIZE_MAX / *elem)
        return err_set(err, "%s: tensor '%s': shape overflows", file, t->name);
    return 0;
}

/* One header entry: name -> {dtype, shape, data_offsets} into t, offsets within data_n. */
static int safe_entry(const cJSON *e, SafeTensor *t, const uint8_t *data, uint64_t data_n,
                      const char *file, Err *err) {
    memset(t, 0, sizeof *t);
    if (strlen(e->string) >= sizeof t->name)
        return err_set(err, "%s: a tensor name is longer than %d bytes", file,
                       SAFETENSORS_NAME_LEN - 1);
    snprintf(t->name, sizeof t->name, "%s", e->string);
    if (!cJSON_IsObject(e))
        return err_set(err, "%s: tensor '%s': expected an object with dtype, shape, data_offsets",
                       file, t->name);
    size_t elem = 0;
    if (safe_entry_type(e, t, &elem, file, err) != 0)
        return -1;
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    uint64_t begin, end;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 ||
        safe_uint(cJSON_GetArrayItem(off, 0), &begin) ||
        safe_uint(cJSON_GetArrayItem(off, 1), &end))
        return err_set(err, "%s: tensor '%s': data_offsets is not [begin, end]", file, t->name);
    if (begin > end || end > data_n)
        return err_set(err,
                       "%s: tensor '%s': data_offsets [%llu, %llu] out of range (the data "
                       "section has %llu bytes: truncated file?)",
                       file, t->name, (unsigned long long)begin, (unsigned long long)end,
                       (unsigned long long)data_n);
    t->n_bytes = (size_t)(end - begin);
    if ((uint64_t)t->n_bytes != t->numel * elem)
        return err_set(err,
                       "%s: tensor '%s': data_offsets hold %zu bytes, its dtype %s and shape "
                       "need %llu",
                       file, t->name, t->n_bytes, t->dtype_name,
                       (unsigned long long)(t->numel * elem));
    t->data = data + begin;
    return 0;
}

static int by_data(const void *a, const void *b) {
    const SafeTensor *x = a, *y = b;
    return x->data < y->data ? -1 : x->data > y->data;
}

/* The tensors of one file (st->tensors[first..]) must not overlap. */
static int safe_check_overlap(Safetensors *st, int first, const char *file, Err *err) {
    int n = st->n_tensors - first;
    qsort(st->tensors + first, (size_t)n, sizeof *st->tensors, by_data);
    const SafeTensor *prev = NULL;
    for (int i = first; i < st->n_tensors; i++) {
        const SafeTensor *t = &st->tensors[i];
        if (t->n_bytes == 0)
            continue;
        if (prev && t->data < prev->data + prev->n_bytes)
            return err_set(err, "%s: tensors '%s' and '%s' overlap in the data section", file,
                           prev->name, t->name);
        prev = t;
    }
    return 0;
}

/* Parses the header of buf (file index fi, already in st->files) and appends its tensors. */
static int safe_parse(Safetensors *st, int fi, Err *err) {
    const SafeFile *f = &st->files[fi];
    const char *file = f->path;
    if (f->n_bytes < 8)
        return err_set(err,
                       "%s: %zu bytes: too short for a safetensors file (8-byte header "
                       "length first)",
                       file, f->n_bytes);
    uint64_t hn = 0;
    for (int k = 7; k >= 0; k--)
        hn = (hn << 8) | f->map[k];
    if (hn > f->n_bytes - 8 || hn > SAFETENSORS_MAX_HEADER)
        return err_set(err,
                       "%s: header length %llu is past the end of the file (%zu bytes): "
                       "truncated, or not a safetensors file",
                       file, (unsigned long long)hn, f->n_bytes);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)f->map + 8, (size_t)hn, &end, 0);
    while (root && end < (const char *)f->map + 8 + hn && strchr(" \t\r\n", *end))
        end++;
    if (!root || !cJSON_IsObject(root) || end != (const char *)f->map + 8 + hn) {
        long at = end ? (long)(end - (const char *)f->map) : 8;
        cJSON_Delete(root);
        return err_set(err, "%s: the header is not a JSON object (error at byte %ld)", file, at);
    }
    int first = st->n_tensors, rc = 0;
    const uint8_t *data = f->map + 8 + hn;
    uint64_t data_n = f->n_bytes - 8 - hn;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (strcmp(e->string, "__metadata__") == 0)
            continue;
        if (safe_grow(st, 1) != 0) {
            rc = err_set(err, "%s: out of memory", file);
            break;
        }
        SafeTensor *t = &st->tensors[st->n_tensors];
        if ((rc = safe_entry(e, t, data, data_n, file, err)) != 0)
            break;
        t->file = fi;
        st->n_tensors++;
    }
    cJSON_Delete(root);
    return rc ? rc : safe_check_overlap(st, first, file, err);
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const SafeTensor *)a)->name, ((const SafeTensor *)b)->name);
}

/* Sorts by name; a name twice (in two shards) is refused. */
static int safe_finish(Safetensors *st, Err *err) {
    qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, by_name);
    for (int i = 1; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, st->tensors[i - 1].name) == 0)
            return err_set(err, "tensor '%s' is in %s and in %s", st->tensors[i].name,
                           st->files[st->tensors[i - 1].file].path,
                           st->files[st->tensors[i].file].path);
    return 0;
}

static int safe_add_file(Safetensors *st, const char *path, Err *err) {
    SafeFile *f = realloc(st->files, (size_t)(st->n_files + 1) * sizeof *f);
    if (!f)
        return err_set(err, "%s: out of memory", path);
    st->files = f;
    f = &st->files[st->n_files];
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return err_set(err, "%s: cannot open: %s", path, strerror(e));
    }
    f->n_bytes = (size_t)sb.st_size;
    if (f->n_bytes > 0) {
        void *m = mmap(NULL, f->n_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            return err_set(err, "%s: cannot map: %s", path, strerror(e));
        }
        f->map = m;
        f->mapped = 1;
    }
    close(fd);
    st->n_files++;
    return safe_parse(st, st->n_files - 1, err);
}

void safetensors_close(Safetensors *st) {
    for (int i = 0; i < st->n_files; i++)
        if (st->files[i].mapped)
            munmap((void *)st->files[i].map, st->files[i].n_bytes);
    free(st->files);
    free(st->tensors);
    memset(st, 0, sizeof *st);
}

int safetensors_open(Safetensors *st, const char *path, Err *err) {
    memset(st, 0, sizeof *st);
    if (safe_add_file(st, path, err) != 0 || safe_finish(st, err) != 0) {
        safetensors_close(st);
        return -1;
    }
    return 0;
}

int safetensors_open_mem(Safetensors *st, const char *name, const uint8_t *buf, size_t n,
                         Err *err) {
    memset(st, 0, sizeof *st);
    st->files = calloc(1, sizeof *st->files);
    if (!st->files)
        return err_set(err, "%s: out of memory", name);
    snprintf(st->files[0].path, sizeof st->files[0].path, "%s", name);
    st->files[0].map = buf;
    st->files[0].n_bytes = n;
    st->n_files = 1;
    if (safe_parse(st, 0, err) != 0 || safe_finish(st, err) != 0) {
        safetensors_close(st);
        return -1;
    }
    return 0;
}

/* Reads a whole small file (the index) into a NUL-terminated buffer. */
static char *safe_slurp(const char *path, size_t *n, Err *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(err, "%s: cannot open: %s", path, strerror(errno)), NULL;
    char *buf = malloc(SAFETENSORS_MAX_HEADER + 1);
    *n = buf ? fread(buf, 1, SAFETENSORS_MAX_HEADER + 1, f) : 0;
    int bad = !buf || ferror(f) || *n > SAFETENSORS_MAX_HEADER;
    fclose(f);
    if (bad) {
        free(buf);
        return err_set(err, "%s: unreadable or larger than 100 MB", path), NULL;
    }
    buf[*n] = 0;
    return buf;
}

/* Opens each shard the weight_map names (once), then checks every mapping. */
static int safe_open_shards(Safetensors *st, const cJSON *map, const char *dir,
                            const char *index_path, Err *err) {
    const cJSON *e;
    cJSON_ArrayForEach(e, map) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || !e->valuestring[0])
            return err_set(err, "%s: weight_map['%s'] is not a file name in its directory",
                           index_path, e->string);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->valuestring);
        int have = 0;
        for (int i = 0; i < st->n_files && !have; i++)
            have = strcmp(st->files[i].path, path) == 0;
        if (!have && safe_add_file(st, path, err) != 0)
            return -1;
    }
    if (safe_finish(st, err) != 0)
        return -1;
    cJSON_ArrayForEach(e, map) {
        const SafeTensor *t = safetensors_find(st, e->string);
        const char *in = t ? strrchr(st->files[t->file].path, '/') + 1 : NULL;
        if (!t || strcmp(in, e->valuestring) != 0)
            return err_set(err, "%s: tensor '%s' is not in %s, where the index puts it", index_path,
                           e->string, e->valuestring);
    }
    return 0;
}

int safetensors_open_index(Safetensors *st, const char *index_path, Err *err) {
    memset(st, 0, sizeof *st);
    size_t n = 0;
    char *text = safe_slurp(index_path, &n, err);
    if (!text)
        return -1;
    cJSON *root = cJSON_ParseWithLength(text, n);
    free(text);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    int rc = 0;
    if (!cJSON_IsObject(map) || !map->child) {
        rc = err_set(err,
                     "%s: not a safetensors index (expected a JSON object with a non-empty "
                     "\"weight_map\")",
                     index_path);
    } else {
        char *copy = strdup(index_path);
        rc = copy ? safe_open_shards(st, map, dirname(copy), index_path, err)
                  : err_set(err, "%s: out of memory", index_path);
        free(copy);
    }
    cJSON_Delete(root);
    if (rc != 0)
        safetensors_close(st);
    return rc;
}

const SafeTensor *safetensors_find(const Safetensors *st, const char *name) {
    SafeTensor key;
    snprintf(key.name, sizeof key.name, "%s", name);
    return bsearch(&key, st->tensors, (size_t)st->n_tensors, sizeof key, by_name);
}

const char *safetensors_path(const Safetensors *st, const SafeTensor *t) {
    return st->files[t->file].path;
}

int safetensors_read_f32(const Safetensors *st, const SafeTensor *t, float *out, Err *err) {
    const uint8_t *p = t->data;
    for (uint64_t i = 0; i < t->numel; i++) {
        switch (t->dtype) {
        case SAFE_DTYPE_F32:
            memcpy(&out[i], p + 4 * i, 4);
            break;
        case SAFE_DTYPE_F16:
            out[i] = half_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
            break;
        case SAFE_DTYPE_BF16:
            out[i] = half_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
            break;
        default:
            return err_set(err, "%s: tensor '%s' has dtype %s: expected F32, F16 or BF16",
                           safetensors_path(st, t), t->name, t->dtype_name);
        }
        if (!isfinite(out[i]))
            return err_set(err, "%s: tensor '%s' has a non-finite value (%g) at index %llu",
                           safetensors_path(st, t), t->name, (double)out[i], (unsigned long long)i);
    }
    return 0;
}

/* The header JSON of an F32 or BF16 file, padded with spaces to a multiple of 8 bytes. */
static char *safe_header(const SafeWriteTensor *tensors, int n, SafeDtype dtype,
                         const char *const *metadata, size_t *len) {
    cJSON *root = cJSON_CreateObject(), *meta = NULL;
    if (root && metadata && metadata[0]) {
        meta = cJSON_AddObjectToObject(root, "__metadata__");
        for (int k = 0; meta && metadata[k] && metadata[k + 1]; k += 2)
            cJSON_AddStringToObject(meta, metadata[k], metadata[k + 1]);
    }
    uint64_t off = 0;
    for (int i = 0; root && i < n; i++) {
        const SafeWriteTensor *t = &tensors[i];
        cJSON *e = cJSON_AddObjectToObject(root, t->name);
        uint64_t numel = 1;
        double shape[2], offs[2];
        for (int d = 0; d < t->ndim; d++) {
            shape[d] = (double)t->shape[d];
            numel *= (uint64_t)t->shape[d];
        }
        offs[0] = (double)off;
        off += (dtype == SAFE_DTYPE_BF16 ? 2 : 4) * numel;
        offs[1] = (double)off;
        if (!e || !cJSON_AddStringToObject(e, "dtype", dtype == SAFE_DTYPE_BF16 ? "BF16" : "F32") ||
            !cJSON_AddItemToObject(e, "shape", cJSON_CreateDoubleArray(shape, t->ndim)) ||
            !cJSON_AddItemToObject(e, "data_offsets", cJSON_CreateDoubleArray(offs, 2))) {
            cJSON_Delete(root);
            return NULL;
        }
    }
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return NULL;
    size_t n_text = strlen(text), padded = (n_text + 7) / 8 * 8;
    char *out = malloc(padded + 1);
    if (out) {
        memcpy(out, text, n_text);
        memset(out + n_text, ' ', padded - n_text);
        out[padded] = 0;
        *len = padded;
    }
    cJSON_free(text);
    return out;
}

/* numel f32 values of buf to f as F32, or as BF16 (rounded to nearest even, in place: the
 * bf16 bits overwrite the front of buf, each after its value was read). */
static int safe_write_values(FILE *f, float *buf, size_t numel, SafeDtype dtype) {
    if (dtype != SAFE_DTYPE_BF16)
        return fwrite(buf, sizeof(float), numel, f) == numel ? 0 : -1;
    uint16_t *bits = (uint16_t *)buf;
    for (size_t i = 0; i < numel; i++)
        bits[i] = half_f32_to_bf16(buf[i]);
    return fwrite(bits, sizeof(uint16_t), numel, f) == numel ? 0 : -1;
}

/* The header length, the header and every tensor, staged through buf (max_numel floats). */
static int safe_write_body(FILE *f, const char *header, size_t hlen, const SafeWriteTensor *tensors,
                           int n, SafeDtype dtype, SafeFillFn fill, void *ctx, float *buf,
                           Err *err) {
    uint8_t len8[8];
    for (int k = 0; k < 8; k++)
        len8[k] = (uint8_t)((uint64_t)hlen >> (8 * k));
    if (fwrite(len8, 1, 8, f) != 8 || fwrite(header, 1, hlen, f) != hlen)
        return -2;
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < tensors[i].ndim; d++)
            numel *= (size_t)tensors[i].shape[d];
        if (fill(ctx, i, buf, err) != 0)
            return -1;
        if (safe_write_values(f, buf, numel, dtype) != 0)
            return -2;
    }
    return 0;
}

int safetensors_write(const char *path, SafeDtype dtype, const SafeWriteTensor *tensors, int n,
                      const char *const *metadata, SafeFillFn fill, void *ctx, Err *err) {
    ASSERT(dtype == SAFE_DTYPE_F32 || dtype == SAFE_DTYPE_BF16);
    size_t hlen = 0, max_numel = 1;
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < tensors[i].ndim; d++)
            numel *= (size_t)tensors[i].shape[d];
        max_numel = numel > max_numel ? numel : max_numel;
    }
    char *header = safe_header(tensors, n, dtype, metadata, &hlen);
    float *buf = malloc(max_numel * sizeof(float)); /* host staging: one tensor */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    int fd = header && buf ? mkstemp(tmp) : -1;
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    int rc = 0;
    if (!header || !buf)
        rc = err_set(err, "%s: out of memory", path);
    else if (!f)
        rc = err_set(err, "%s: cannot create a temporary file next to it: %s", path,
                     strerror(errno));
    else
        rc = safe_write_body(f, header, hlen, tensors, n, dtype, fill, ctx, buf, err);
    if (rc == 0 && f && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        rc = -2;
    if (f && fclose(f) != 0 && rc == 0)
        rc = -2;
    else if (!f && fd >= 0)
        close(fd);
    if (rc == -2)
        rc = err_set(err, "%s: write failed (temporary %s): %s", path, tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = err_set(err, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    if (rc != 0 && fd >= 0)
        unlink(tmp);
    if (rc == 0) { /* make the rename durable (best effort) */
        char *copy = strdup(path);
        int dfd = copy ? open(dirname(copy), O_RDONLY | O_DIRECTORY) : -1;
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(copy);
    }
    free(header);
    free(buf);
    return rc;
}
