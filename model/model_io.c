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

int model_file_bytes(const ModelFileHeader *h, size_t *out) {
    size_t total = MODEL_FILE_HEADER_INTS * sizeof(int32_t);
    for (int k = 0; k < GPT_PARAM_KIND_COUNT; k++) {
        size_t n, b;
        /* each factor is a positive int32 product checked below; do it in size_t */
        if (size_mul(model_file_kind_numel(h, (GptParamKind)k),
                     (size_t)model_file_n_layers_of(h, (GptParamKind)k), &n) ||
            size_mul(n, sizeof(float), &b) || size_add(total, b, &total))
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
    if (hdr[1] != MODEL_FILE_VERSION_FP32)
        return err_set(err,
                       "%s: version %" PRId32 ", expected %d (fp32; llm.c's bf16 files are "
                       "version 5 and are not supported)",
                       path, hdr[1], MODEL_FILE_VERSION_FP32);
    ModelFileHeader h = {.max_seq_len = hdr[2],
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
        return err_set(err,
                       "%s: %jd bytes, but its header (maxT %" PRId32 ", V %" PRId32 ", L %" PRId32
                       ", NH %" PRId32 ", C %" PRId32 ", Vp %" PRId32 ") needs %zu bytes (%s)",
                       path, (intmax_t)st.st_size, h.max_seq_len, h.vocab_size, h.n_layer, h.n_head,
                       h.channels, h.padded_vocab_size, want,
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
    int rc = 0;
    if (!buf) {
        rc = err_set(err, "%s: cannot allocate a %zu-float staging buffer", path, max_n);
        goto done;
    }
    if (fseek(f, MODEL_FILE_HEADER_INTS * sizeof(int32_t), SEEK_SET)) {
        rc = err_set(err, "%s: cannot seek past the header: %s", path, strerror(errno));
        goto done;
    }
    for (int k = 0; k < GPT_PARAM_KIND_COUNT; k++) {
        GptParamKind kind = (GptParamKind)k;
        size_t n = model_file_kind_numel(&h, kind);
        for (int l = 0; l < model_file_n_layers_of(&h, kind); l++) {
            if (fread(buf, sizeof(float), n, f) != n) {
                rc = err_set(err, "%s: read failed in %s (layer %d): %s", path,
                             gpt_param_kind_name(kind), l, ferror(f) ? strerror(errno) : "EOF");
                goto done;
            }
            GptParam *p = gpt_param(g, kind, l);
            if (p) {
                ASSERT((size_t)p->numel == n);
                gpt_param_write_f32(g, p, buf);
                continue;
            }
            ASSERT(model_file_kind_is_bias(kind) && !g->config.bias);
            for (size_t i = 0; i < n; i++) {
                if (buf[i] != 0.0f) {
                    rc = err_set(err,
                                 "%s: %s of layer %d has a non-zero value %g at index %zu"
                                 ", but the model has bias=False (load it with --bias=True)",
                                 path, gpt_param_kind_name(kind), l, (double)buf[i], i);
                    goto done;
                }
            }
        }
    }
done:
    free(buf);
    fclose(f);
    return rc;
}

static int model_file_write_all(FILE *f, const void *p, size_t n) {
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

/* Every tensor in llm.c order as f32 (zeros for the biases of a bias-free model), staged
 * through buf (the largest tensor). */
static int model_file_write_tensors(Gpt *g, FILE *f, const ModelFileHeader *h, float *buf) {
    for (int k = 0; k < GPT_PARAM_KIND_COUNT; k++) {
        GptParamKind kind = (GptParamKind)k;
        size_t n = model_file_kind_numel(h, kind);
        for (int l = 0; l < model_file_n_layers_of(h, kind); l++) {
            GptParam *p = gpt_param(g, kind, l);
            if (p) {
                ASSERT((size_t)p->numel == n);
                if (p->master) /* the f32 weights the optimizer updates, not their f16 copy */
                    gpt_tensor_read(g, p->master, buf); /* device or host arena */
                else
                    gpt_param_read_f32(g, p, buf);
            } else {
                ASSERT(model_file_kind_is_bias(kind) && !g->config.bias);
                memset(buf, 0, n * sizeof(float));
            }
            if (model_file_write_all(f, buf, n * sizeof(float)))
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

int model_file_write(Gpt *g, const char *path, Err *err) {
    const GptConfig *c = &g->config;
    if (c->max_seq_len > INT32_MAX || c->vocab_size > INT32_MAX || c->n_layer > INT32_MAX ||
        c->n_head > INT32_MAX || c->channels > INT32_MAX || c->padded_vocab_size > INT32_MAX)
        return err_set(err, "%s: a model size does not fit the int32 header", path);
    ModelFileHeader h = {.max_seq_len = (int32_t)c->max_seq_len,
                         .vocab_size = (int32_t)c->vocab_size,
                         .n_layer = (int32_t)c->n_layer,
                         .n_head = (int32_t)c->n_head,
                         .channels = (int32_t)c->channels,
                         .padded_vocab_size = (int32_t)c->padded_vocab_size};
    int32_t hdr[MODEL_FILE_HEADER_INTS] = {0};
    hdr[0] = MODEL_FILE_MAGIC;
    hdr[1] = MODEL_FILE_VERSION_FP32;
    hdr[2] = h.max_seq_len;
    hdr[3] = h.vocab_size;
    hdr[4] = h.n_layer;
    hdr[5] = h.n_head;
    hdr[6] = h.channels;
    hdr[7] = h.padded_vocab_size;

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
    size_t max_n = model_file_max_numel(&h);
    float *buf = malloc(max_n * sizeof(float)); /* host staging: one tensor */
    int rc = 0;
    if (!buf) {
        rc = err_set(err, "%s: cannot allocate a %zu-float staging buffer", path, max_n);
        goto fail;
    }
    if (model_file_write_all(f, hdr, sizeof(hdr)) || model_file_write_tensors(g, f, &h, buf))
        goto io_fail;
    if (fflush(f) || fsync(fileno(f)))
        goto io_fail;
    if (fclose(f)) {
        f = NULL;
        goto io_fail;
    }
    f = NULL;
    if (rename(tmp, path)) {
        rc = err_set(err, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
        goto fail;
    }
    fsync_dir_of(path);
    free(buf);
    free(tmp);
    return 0;
io_fail:
    rc = err_set(err, "%s: write failed (temporary %s): %s", path, tmp, strerror(errno));
fail:
    if (f)
        fclose(f);
    unlink(tmp);
    free(buf);
    free(tmp);
    return rc;
}
