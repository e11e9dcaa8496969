/* model_io.c: llm.c GPT-2 model files (see model_io.h for the format and the rules). */
#define _GNU_SOURCE
#include "model_io.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dist.h" /* gpt_param_read_weights */
#include "half.h" /* bf16 <-> f32 */

/* Values per layer (or in total for the non-layer kinds) of each tensor kind, file order.
 * Header values are positive int32, so every product fits in 64 unsigned bits. */
static size_t model_file_kind_numel(const ModelFileHeader *h, GptParamKind kind) {
    size_t C = (size_t)h->channels;
    switch (kind) {
    case GPT_PARAM_WTE:
        return (size_t)h->padded_vocab_size * C;
    case GPT_PARAM_WPE:
        return (size_t)h->max_seq_len * C;
    case GPT_PARAM_QKVW:
        return 3 * C * C;
    case GPT_PARAM_QKVB:
        return 3 * C;
    case GPT_PARAM_ATTPROJW:
        return C * C;
    case GPT_PARAM_FCW:
        return 4 * C * C;
    case GPT_PARAM_FCB:
        return 4 * C;
    case GPT_PARAM_FCPROJW:
        return 4 * C * C;
    default:
        return C; /* LayerNorm weights and biases, attprojb, fcprojb */
    }
}

static int model_file_kind_is_bias(GptParamKind kind) {
    return kind == GPT_PARAM_LN1B || kind == GPT_PARAM_QKVB || kind == GPT_PARAM_ATTPROJB ||
           kind == GPT_PARAM_LN2B || kind == GPT_PARAM_FCB || kind == GPT_PARAM_FCPROJB ||
           kind == GPT_PARAM_LNFB;
}

static int model_file_n_layers_of(const ModelFileHeader *h, GptParamKind kind) {
    return gpt_param_is_per_layer(kind) ? h->n_layer : 1;
}

/* Values of the largest single tensor (one layer's slice of a per-layer kind). */
static size_t model_file_max_numel(const ModelFileHeader *h) {
    size_t m = 0;
    for (int k = 0; k < GPT_PARAM_KIND_COUNT; k++) {
        size_t n = model_file_kind_numel(h, (GptParamKind)k);
        if (n > m)
            m = n;
    }
    return m;
}

size_t model_file_value_bytes(int32_t version) {
    return version == MODEL_FILE_VERSION_BF16 ? sizeof(uint16_t) : sizeof(float);
}

const char *model_file_version_name(int32_t version) {
    return version == MODEL_FILE_VERSION_BF16 ? "bf16" : "fp32";
}

int model_file_bytes(const ModelFileHeader *h, size_t *out) {
    size_t total = MODEL_FILE_HEADER_INTS * sizeof(int32_t);
    for (int k = 0; k < GPT_PARAM_KIND_COUNT; k++) {
        size_t n, b;
        /* each factor is a positive int32 product checked below; do it in size_t */
        if (size_mul(model_file_kind_numel(h, (GptParamKind)k),
                     (size_t)model_file_n_layers_of(h, (GptParamKind)k), &n) ||
            size_mul(n, model_file_value_bytes(h->version), &b) || size_add(total, b, &total))
            return -1;
    }
    *out = total;
    return 0;
}

int model_file_read_header(const char *path, ModelFileHeader *out, Err *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(err, "%s: cannot open model file: %s", path, strerror(errno));
    int32_t hdr[MODEL_FILE_HEADER_INTS];
    size_t got = fread(hdr, sizeof(int32_t), MODEL_FILE_HEADER_INTS, f);
    struct stat st;
    int stat_rc = fstat(fileno(f), &st);
    fclose(f);
    if (got != MODEL_FILE_HEADER_INTS)
        return err_set(err, "%s: %zu bytes, shorter than the %zu-byte model file header", path,
                       got * sizeof(int32_t), MODEL_FILE_HEADER_INTS * sizeof(int32_t));
    if (hdr[0] != MODEL_FILE_MAGIC)
        return err_set(err, "%s: magic %" PRId32 ", expected %d (an llm.c GPT-2 model file)", path,
                       hdr[0], MODEL_FILE_MAGIC);
    if (hdr[1] != MODEL_FILE_VERSION_FP32 && hdr[1] != MODEL_FILE_VERSION_BF16)
        return err_set(err, "%s: version %" PRId32 ", expected %d (fp32) or %d (bf16)", path,
                       hdr[1], MODEL_FILE_VERSION_FP32, MODEL_FILE_VERSION_BF16);
    ModelFileHeader h = {.version = hdr[1],
                         .max_seq_len = hdr[2],
                         .vocab_size = hdr[3],
                         .n_layer = hdr[4],
                         .n_head = hdr[5],
                         .channels = hdr[6],
                         .padded_vocab_size = hdr[7]};
    if (h.max_seq_len <= 0 || h.vocab_size <= 0 || h.n_layer <= 0 || h.n_head <= 0 ||
        h.channels <= 0 || h.padded_vocab_size <= 0)
        return err_set(err,
                       "%s: header has a non-positive size: maxT %" PRId32 ", V %" PRId32
                       ", L %" PRId32 ", NH %" PRId32 ", C %" PRId32 ", Vp %" PRId32,
                       path, h.max_seq_len, h.vocab_size, h.n_layer, h.n_head, h.channels,
                       h.padded_vocab_size);
    if (h.channels % h.n_head != 0)
        return err_set(err, "%s: header has C %" PRId32 " not divisible by NH %" PRId32, path,
                       h.channels, h.n_head);
    if (h.padded_vocab_size < h.vocab_size)
        return err_set(err, "%s: header has Vp %" PRId32 " smaller than V %" PRId32, path,
                       h.padded_vocab_size, h.vocab_size);
    size_t want;
    if (model_file_bytes(&h, &want))
        return err_set(err,
                       "%s: header sizes overflow (L %" PRId32 ", C %" PRId32 ", Vp %" PRId32 ")",
                       path, h.n_layer, h.channels, h.padded_vocab_size);
    if (stat_rc != 0)
        return err_set(err, "%s: cannot stat: %s", path, strerror(errno));
    if ((size_t)st.st_size != want)
        return err_set(
            err,
            "%s: %jd bytes, but its header (version %" PRId32 ", %s; maxT %" PRId32 ", V %" PRId32
            ", L %" PRId32 ", NH %" PRId32 ", C %" PRId32 ", Vp %" PRId32 ") needs %zu bytes (%s)",
            path, (intmax_t)st.st_size, h.version, model_file_version_name(h.version),
            h.max_seq_len, h.vocab_size, h.n_layer, h.n_head, h.channels, h.padded_vocab_size, want,
            (size_t)st.st_size < want ? "truncated" : "trailing bytes");
    *out = h;
    return 0;
}

int gpt_config_from_model_file(const char *path, GptConfig *out, Err *err) {
    ModelFileHeader h;
    if (model_file_read_header(path, &h, err))
        return -1;
    out->max_seq_len = h.max_seq_len;
    out->vocab_size = h.vocab_size;
    out->padded_vocab_size = h.padded_vocab_size;
    out->n_layer = h.n_layer;
    out->n_head = h.n_head;
    out->channels = h.channels;
    return 0;
}

/* Checks that the file's shape is the model's; names every differing value. */
static int model_file_check_shape(const ModelFileHeader *h, const GptConfig *c, const char *path,
                                  Err *err) {
    if (h->max_seq_len == c->max_seq_len && h->vocab_size == c->vocab_size &&
        h->n_layer == c->n_layer && h->n_head == c->n_head && h->channels == c->channels &&
        h->padded_vocab_size == c->padded_vocab_size)
        return 0;
    return err_set(err,
                   "%s: file shape maxT %" PRId32 ", V %" PRId32 ", L %" PRId32 ", NH %" PRId32
                   ", C %" PRId32 ", Vp %" PRId32 " differs from the model's maxT %" PRId64
                   ", V %" PRId64 ", L %" PRId64 ", NH %" PRId64 ", C %" PRId64 ", Vp %" PRId64
                   " (build the model from the file: gpt_config_from_model_file)",
                   path, h->max_seq_len, h->vocab_size, h->n_layer, h->n_head, h->channels,
                   h->padded_vocab_size, c->max_seq_len, c->vocab_size, c->n_layer, c->n_head,
                   c->channels, c->padded_vocab_size);
}

/* Reads n values of the file's dtype as f32 into buf: fp32 as they are, bf16 through raw (n
 * uint16) widened exactly. The host is little-endian, as the format. */
static int model_file_read_values(FILE *f, int32_t version, float *buf, uint16_t *raw, size_t n) {
    if (version != MODEL_FILE_VERSION_BF16)
        return fread(buf, sizeof(float), n, f) == n ? 0 : -1;
    if (fread(raw, sizeof(uint16_t), n, f) != n)
        return -1;
    for (size_t i = 0; i < n; i++)
        buf[i] = half_bf16_to_f32(raw[i]);
    return 0;
}

/* A bias-free model reads a file whose biases are all zero (buf: one bias tensor). */
static int model_file_check_zero(const float *buf, size_t n, GptParamKind kind, int l,
                                 const char *path, Err *err) {
    for (size_t i = 0; i < n; i++)
        if (buf[i] != 0.0f)
            return err_set(err,
                           "%s: %s of layer %d has a non-zero value %g at index %zu"
                           ", but the model has bias=False (load it with --bias=True)",
                           path, gpt_param_kind_name(kind), l, (double)buf[i], i);
    return 0;
}

/* Every tensor of the file (positioned past the header) into g, staged through buf and raw. */
static int model_file_read_tensors(Gpt *g, FILE *f, const ModelFileHeader *h, float *buf,
                                   uint16_t *raw, const char *path, Err *err) {
    for (int k = 0; k < GPT_PARAM_KIND_COUNT; k++) {
        GptParamKind kind = (GptParamKind)k;
        size_t n = model_file_kind_numel(h, kind);
        for (int l = 0; l < model_file_n_layers_of(h, kind); l++) {
            if (model_file_read_values(f, h->version, buf, raw, n))
                return err_set(err, "%s: read failed in %s (layer %d): %s", path,
                               gpt_param_kind_name(kind), l, ferror(f) ? strerror(errno) : "EOF");
            GptParam *p = gpt_param(g, kind, l);
            if (p) {
                ASSERT((size_t)p->numel == n);
                gpt_param_write_f32(g, p, buf);
                continue;
            }
            ASSERT(model_file_kind_is_bias(kind) && !g->config.bias);
            if (model_file_check_zero(buf, n, kind, l, path, err))
                return -1;
        }
    }
    return 0;
}

int model_file_read(Gpt *g, const char *path, Err *err) {
    ModelFileHeader h;
    if (model_file_read_header(path, &h, err))
        return -1;
    if (model_file_check_shape(&h, &g->config, path, err))
        return -1;
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(err, "%s: cannot open model file: %s", path, strerror(errno));
    size_t max_n = model_file_max_numel(&h);
    float *buf = malloc(max_n * sizeof(float)); /* host staging: one tensor */
    uint16_t *raw = h.version == MODEL_FILE_VERSION_BF16 ? malloc(max_n * sizeof(uint16_t)) : NULL;
    int rc = 0;
    if (!buf || (h.version == MODEL_FILE_VERSION_BF16 && !raw))
        rc = err_set(err, "%s: cannot allocate a %zu-value staging buffer", path, max_n);
    else if (fseek(f, MODEL_FILE_HEADER_INTS * sizeof(int32_t), SEEK_SET))
        rc = err_set(err, "%s: cannot seek past the header: %s", path, strerror(errno));
    else
        rc = model_file_read_tensors(g, f, &h, buf, raw, path, err);
    free(raw);
    free(buf);
    fclose(f);
    return rc;
}

static int model_file_write_all(FILE *f, const void *p, size_t n) {
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

/* n values of buf in the file's dtype: fp32 as they are, bf16 rounded to nearest even
 * through raw (n uint16). */
static int model_file_write_values(FILE *f, int32_t version, const float *buf, uint16_t *raw,
                                   size_t n) {
    if (version != MODEL_FILE_VERSION_BF16)
        return model_file_write_all(f, buf, n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        raw[i] = half_f32_to_bf16(buf[i]);
    return model_file_write_all(f, raw, n * sizeof(uint16_t));
}

/* Every tensor in llm.c order (zeros for the biases of a bias-free model), staged through
 * buf (f32, the largest tensor) and, for bf16, raw (as many uint16). */
static int model_file_write_tensors(Gpt *g, FILE *f, const ModelFileHeader *h, float *buf,
                                    uint16_t *raw) {
    for (int k = 0; k < GPT_PARAM_KIND_COUNT; k++) {
        GptParamKind kind = (GptParamKind)k;
        size_t n = model_file_kind_numel(h, kind);
        for (int l = 0; l < model_file_n_layers_of(h, kind); l++) {
            GptParam *p = gpt_param(g, kind, l);
            if (p) {
                ASSERT((size_t)p->numel == n);
                /* the f32 weights the optimizer updates (master), not their 16-bit copy */
                gpt_param_read_weights(g, p, buf);
            } else {
                ASSERT(model_file_kind_is_bias(kind) && !g->config.bias);
                memset(buf, 0, n * sizeof(float));
            }
            if (model_file_write_values(f, h->version, buf, raw, n))
                return -1;
        }
    }
    return 0;
}

/* Makes a rename into path's directory durable (best effort). */
static void fsync_dir_of(const char *path) {
    char *dir_copy = strdup(path);
    ASSERT(dir_copy);
    int dfd = open(dirname(dir_copy), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dir_copy);
}

/* The header of g's shape in the given version; -1 when a size does not fit an int32. */
static int model_file_header_of(const GptConfig *c, int32_t version, ModelFileHeader *h,
                                int32_t hdr[MODEL_FILE_HEADER_INTS]) {
    if (c->max_seq_len > INT32_MAX || c->vocab_size > INT32_MAX || c->n_layer > INT32_MAX ||
        c->n_head > INT32_MAX || c->channels > INT32_MAX || c->padded_vocab_size > INT32_MAX)
        return -1;
    *h = (ModelFileHeader){.version = version,
                           .max_seq_len = (int32_t)c->max_seq_len,
                           .vocab_size = (int32_t)c->vocab_size,
                           .n_layer = (int32_t)c->n_layer,
                           .n_head = (int32_t)c->n_head,
                           .channels = (int32_t)c->channels,
                           .padded_vocab_size = (int32_t)c->padded_vocab_size};
    memset(hdr, 0, MODEL_FILE_HEADER_INTS * sizeof(int32_t));
    int32_t head[8] = {MODEL_FILE_MAGIC, version,   h->max_seq_len, h->vocab_size,
                       h->n_layer,       h->n_head, h->channels,    h->padded_vocab_size};
    memcpy(hdr, head, sizeof head);
    return 0;
}

/* The header and the tensors to f (the temporary file), staging allocated here. */
static int model_file_write_body(Gpt *g, FILE *f, const ModelFileHeader *h, const int32_t *hdr,
                                 const char *path, Err *err) {
    size_t max_n = model_file_max_numel(h);
    float *buf = malloc(max_n * sizeof(float)); /* host staging: one tensor */
    uint16_t *raw = h->version == MODEL_FILE_VERSION_BF16 ? malloc(max_n * sizeof(uint16_t)) : NULL;
    int rc = 0;
    if (!buf || (h->version == MODEL_FILE_VERSION_BF16 && !raw))
        rc = err_set(err, "%s: cannot allocate a %zu-value staging buffer", path, max_n);
    else if (model_file_write_all(f, hdr, MODEL_FILE_HEADER_INTS * sizeof(int32_t)) ||
             model_file_write_tensors(g, f, h, buf, raw) || fflush(f) || fsync(fileno(f)))
        rc = 1; /* an I/O error: errno says which */
    free(raw);
    free(buf);
    return rc;
}

int model_file_write_as(Gpt *g, const char *path, int32_t version, Err *err) {
    if (version != MODEL_FILE_VERSION_FP32 && version != MODEL_FILE_VERSION_BF16)
        return err_set(err,
                       "%s: cannot write model file version %" PRId32 ": expected %d (fp32) "
                       "or %d (bf16)",
                       path, version, MODEL_FILE_VERSION_FP32, MODEL_FILE_VERSION_BF16);
    ModelFileHeader h;
    int32_t hdr[MODEL_FILE_HEADER_INTS];
    if (model_file_header_of(&g->config, version, &h, hdr))
        return err_set(err, "%s: a model size does not fit the int32 header", path);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    ASSERT(tmp);
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return err_set(err, "%s: cannot create a temporary file next to it: %s", path, strerror(e));
    }
    fchmod(fd, 0644);
    FILE *f = fdopen(fd, "wb");
    ASSERT(f);
    int rc = model_file_write_body(g, f, &h, hdr, path, err);
    int e = errno;
    if (fclose(f) && rc == 0) {
        e = errno;
        rc = 1;
    }
    if (rc == 1)
        rc = err_set(err, "%s: write failed (temporary %s): %s", path, tmp, strerror(e));
    if (rc == 0 && rename(tmp, path))
        rc = err_set(err, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    if (rc == 0)
        fsync_dir_of(path);
    else
        unlink(tmp);
    free(tmp);
    return rc;
}

int model_file_write(Gpt *g, const char *path, Err *err) {
    return model_file_write_as(g, path, MODEL_FILE_VERSION_FP32, err);
}
