/* safetensors.h: the safetensors container (Hugging Face's weight format), read and written.
 *
 * Format (little-endian): an unsigned 64-bit header length N, N bytes of UTF-8 JSON, then
 * the data section. The JSON maps each tensor name to {"dtype", "shape", "data_offsets":
 * [begin, end]}, offsets relative to the data section; an optional "__metadata__" object
 * holds string -> string. Parsed with cJSON.
 *
 * Reading: safetensors_open maps the file read-only (mmap: the weights are never copied
 * whole into memory; a tensor is converted to f32 as it is read) and checks the header
 * before anything else reads it: N within the file; valid JSON; every entry's dtype known,
 * shape non-negative, offsets within the data section, end - begin equal to the bytes the
 * dtype and shape need (no overflow); no two tensors overlapping. A sharded checkpoint
 * (model.safetensors.index.json, its "weight_map" name -> shard file) opens every shard
 * named there and checks each tensor is in the shard the index says. Errors name the file,
 * the tensor and the reason; nothing here prints or exits.
 *
 * Values: F32, F16 and BF16 tensors convert to f32 (safetensors_read_f32); other dtypes may
 * be present (they are checked for size) but cannot be read as weights.
 *
 * Writing: safetensors_write writes f32 tensors supplied one at a time by a callback, as F32
 * or as BF16 (rounded to nearest even, half.h), to a temporary file in the same directory,
 * fsync'd and renamed over the target. */
#ifndef ARENAGPT_SAFETENSORS_H
#define ARENAGPT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../alloc/base.h"

#define SAFETENSORS_MAX_DIMS 8
#define SAFETENSORS_NAME_LEN 256
#define SAFETENSORS_MAX_HEADER ((uint64_t)100 << 20) /* the format's own limit: 100 MB */

typedef enum SafeDtype {
    SAFE_DTYPE_F32 = 0,
    SAFE_DTYPE_F16,
    SAFE_DTYPE_BF16,
    SAFE_DTYPE_OTHER /* a known dtype that is not read as weights (F64, I64, U8, BOOL, ...) */
} SafeDtype;

typedef struct SafeTensor {
    char name[SAFETENSORS_NAME_LEN];
    char dtype_name[16]; /* as written: "F32", "BF16", "I64", ... */
    SafeDtype dtype;
    int ndim;
    int64_t shape[SAFETENSORS_MAX_DIMS];
    uint64_t numel;
    const uint8_t *data; /* into the mapping of its file */
    size_t n_bytes;
    int file; /* index into Safetensors.files */
} SafeTensor;

typedef struct SafeFile {
    char path[4096];
    const uint8_t *map; /* the whole file, or the caller's buffer (safetensors_open_mem) */
    size_t n_bytes;
    int mapped; /* 1: munmap at close */
} SafeFile;

typedef struct Safetensors {
    SafeFile *files;
    int n_files;
    SafeTensor *tensors; /* sorted by name */
    int n_tensors;
} Safetensors;

/* One .safetensors file, mapped. On error *st is left empty (nothing to close). */
int safetensors_open(Safetensors *st, const char *path, Err *err);
/* The same checks on a buffer the caller owns and keeps alive until safetensors_close (the
 * fuzz target's entry point); name is what errors call it. */
int safetensors_open_mem(Safetensors *st, const char *name, const uint8_t *buf, size_t n, Err *err);
/* A sharded checkpoint: the index JSON and the shards it names (relative to its directory). */
int safetensors_open_index(Safetensors *st, const char *index_path, Err *err);
void safetensors_close(Safetensors *st);

/* The tensor called name, or NULL. */
const SafeTensor *safetensors_find(const Safetensors *st, const char *name);
/* The file a tensor is in (for messages). */
const char *safetensors_path(const Safetensors *st, const SafeTensor *t);
/* Converts t (F32, F16 or BF16) to f32 into out (t->numel values); a NaN or infinite value is
 * refused with its index. */
int safetensors_read_f32(const Safetensors *st, const SafeTensor *t, float *out, Err *err);

/* Writing: n tensors, each of dtype (SAFE_DTYPE_F32 or SAFE_DTYPE_BF16) with its name and
 * shape, in that order; fill(ctx, i, out)
 * writes tensor i's values (numel floats) into out, returning 0 or -1 with err. metadata:
 * the "__metadata__" strings as key, value, key, value, ..., NULL (or NULL for none). The
 * header is padded with spaces to a multiple of 8 bytes. The host is little-endian (x86-64,
 * arm64), as the format. */
typedef struct SafeWriteTensor {
    const char *name;
    int ndim;
    int64_t shape[2];
} SafeWriteTensor;
typedef int (*SafeFillFn)(void *ctx, int i, float *out, Err *err);
int safetensors_write(const char *path, SafeDtype dtype, const SafeWriteTensor *tensors, int n,
                      const char *const *metadata, SafeFillFn fill, void *ctx, Err *err);

#endif
