/* checkpoint.c: see checkpoint.h. */
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../model/dist.h"

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL
#define CHECKPOINT_MAX_FILES 4096

/* state files store a run's param dtype as ArenaDtype's value: these numbers are the format */
_Static_assert(ARENA_DTYPE_F32 == 0 && ARENA_DTYPE_F16 == 1 && ARENA_DTYPE_BF16 == 2,
               "checkpoint headers hold f32 = 0, f16 = 1, bf16 = 2 as param_dtype");
_Static_assert(GPT_DEVICE_CPU == 0 && GPT_DEVICE_CUDA == 1,
               "checkpoint headers hold cpu = 0, cuda = 1 as device");

typedef struct CheckpointHeader {
    char magic[8]; /* "AGPTSTAT" */
    uint32_t version;
    uint32_t header_bytes;
    int64_t n_layer, n_head, n_embd, block_size, vocab_size, padded_vocab_size;
    int32_t bias, gelu, device, param_dtype, has_master, n_params;
    int64_t total_numel;
    CheckpointProgress progress;
    uint64_t config_bytes;
    uint64_t extra_bytes;
} CheckpointHeader;

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

typedef struct Writer {
    FILE *f;
    uint64_t hash;
    int failed;
} Writer;

static void wr(Writer *w, const void *data, size_t n) {
    if (w->failed || n == 0)
        return;
    if (fwrite(data, 1, n, w->f) != n)
        w->failed = 1;
    w->hash = fnv(w->hash, data, n);
}

static void header_fill(CheckpointHeader *h, const Gpt *g) {
    memset(h, 0, sizeof *h);
    memcpy(h->magic, "AGPTSTAT", 8);
    h->version = CHECKPOINT_VERSION;
    h->header_bytes = sizeof *h;
    h->n_layer = g->config.n_layer;
    h->n_head = g->config.n_head;
    h->n_embd = g->config.channels;
    h->block_size = g->config.max_seq_len;
    h->vocab_size = g->config.vocab_size;
    h->padded_vocab_size = g->config.padded_vocab_size;
    h->bias = g->config.bias;
    h->gelu = g->config.gelu;
    h->device = (int32_t)g->device;
    h->param_dtype = (int32_t)g->layout->param_dtype;
    h->has_master = g->layout->has_master;
    h->n_params = g->n_params;
    for (int i = 0; i < g->n_params; i++)
        h->total_numel += g->params[i].numel;
}

CheckpointPrecision checkpoint_precision_of(const Gpt *g) {
    return (CheckpointPrecision){(int32_t)g->device, (int32_t)g->layout->param_dtype,
                                 g->layout->has_master};
}

/* The run's dtype a precision is, or NULL for none of the three layouts. */
static const char *dtype_of(const CheckpointPrecision *p) {
    if (p->device == GPT_DEVICE_CPU && p->param_dtype == ARENA_DTYPE_F32 && !p->has_master)
        return "float32";
    if (p->device == GPT_DEVICE_CUDA && p->has_master && p->param_dtype == ARENA_DTYPE_F16)
        return "float16";
    if (p->device == GPT_DEVICE_CUDA && p->has_master && p->param_dtype == ARENA_DTYPE_BF16)
        return "bfloat16";
    return NULL;
}

const char *checkpoint_dtype_name(const CheckpointPrecision *p) {
    return dtype_of(p) ? dtype_of(p) : "an unknown precision";
}

static const char *device_name_of(int32_t device) {
    return device == GPT_DEVICE_CUDA ? "cuda" : device == GPT_DEVICE_CPU ? "cpu" : "?";
}

int checkpoint_resume_precision(const char *path, const CheckpointPrecision *saved,
                                const CheckpointPrecision *run, Err *err) {
    const char *was = dtype_of(saved), *now = checkpoint_dtype_name(run);
    if (saved->device == run->device && saved->param_dtype == run->param_dtype &&
        saved->has_master == run->has_master)
        return CHECKPOINT_RESUME_SAME;
    /* CUDA float16 <-> bfloat16: the state holds the f32 master, m and v of either; the
     * 16-bit params are rounded from the master into this run's dtype as it loads */
    if (was && dtype_of(run) && saved->device == GPT_DEVICE_CUDA && run->device == GPT_DEVICE_CUDA)
        return CHECKPOINT_RESUME_CONVERT;
    if (was && saved->device != run->device)
        return err_set(err,
                       "checkpoint '%s' was written by a %s run on the %s, this run is %s on the "
                       "%s: a state resumes on the device it was written on. Resume it with "
                       "--device=%s --dtype=%s, or start this run from its weights with "
                       "--init_from=<its out_dir>/model.bin and another out_dir (AdamW's m and v "
                       "and the step count start afresh)",
                       path, was, device_name_of(saved->device), now, device_name_of(run->device),
                       device_name_of(saved->device), was);
    return err_set(err,
                   "checkpoint '%s' was written in %s (device %d, param dtype %d, master %d), "
                   "this run is %s on the %s: refusing to resume a different backend precision",
                   path, checkpoint_dtype_name(saved), (int)saved->device, (int)saved->param_dtype,
                   (int)saved->has_master, now, device_name_of(run->device));
}

int checkpoint_read_precision(const char *path, CheckpointPrecision *out, Err *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(err, "cannot open checkpoint '%s': %s", path, strerror(errno));
    CheckpointHeader h;
    int ok = fread(&h, sizeof h, 1, f) == 1 && memcmp(h.magic, "AGPTSTAT", 8) == 0 &&
             h.version == CHECKPOINT_VERSION && h.header_bytes == sizeof h;
    fclose(f);
    if (!ok)
        return err_set(err, "'%s' is not a checkpoint of this build (bad header)", path);
    *out = (CheckpointPrecision){h.device, h.param_dtype, h.has_master};
    return 0;
}

/* The f32 weights the optimizer updates: master on the GPU (its gathered shards under ZeRO-1),
 * the params on the CPU. */
static void weights_to_host(Gpt *g, const GptParam *p, float *buf) {
    gpt_param_read_weights(g, p, buf);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted names of state_*.bin files in dir; returns the count (names malloc'd). */
static int list_states(const char *dir, char **names, int max) {
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "state_", 6) == 0 && len > 10 &&
            strcmp(e->d_name + len - 4, ".bin") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    return n;
}

/* Keeps the newest `keep` state files of out_dir, removes the older ones. */
static void prune_states(const char *out_dir, int keep) {
    char *names[CHECKPOINT_MAX_FILES];
    int n = list_states(out_dir, names, CHECKPOINT_MAX_FILES);
    for (int i = 0; i < n; i++) {
        if (i < n - keep) {
            char old[2 * CONFIG_STR_LEN + 300];
            snprintf(old, sizeof old, "%s/%s", out_dir, names[i]);
            unlink(old);
        }
        free(names[i]);
    }
}

int checkpoint_save(const char *out_dir, const TrainConfig *cfg, Gpt *g,
                    const CheckpointProgress *p, const void *extra, size_t extra_bytes, int keep,
                    char *path_out, size_t path_len, Err *err) {
    char path[2 * CONFIG_STR_LEN], tmp[2 * CONFIG_STR_LEN + 16];
    snprintf(path, sizeof path, "%s/state_%08lld.bin", out_dir, (long long)p->iter);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);

    char *cfg_text = NULL;
    size_t cfg_len = 0;
    FILE *mem = open_memstream(&cfg_text, &cfg_len);
    if (!mem)
        return err_set(err, "checkpoint: out of host memory");
    config_write(cfg, mem);
    fclose(mem);

    CheckpointHeader h;
    header_fill(&h, g);
    h.progress = *p;
    h.config_bytes = cfg_len;
    h.extra_bytes = extra_bytes;

    int64_t max_numel = 0;
    for (int i = 0; i < g->n_params; i++)
        if (g->params[i].numel > max_numel)
            max_numel = g->params[i].numel;
    float *buf = malloc(2 * (size_t)max_numel * sizeof(float)); /* weights; then m, v */
    Writer w = {fopen(tmp, "wb"), FNV_OFFSET, 0};
    if (!buf || !w.f) {
        free(buf);
        free(cfg_text);
        if (w.f)
            fclose(w.f);
        return err_set(err, "checkpoint: cannot write '%s': %s", tmp,
                       buf ? strerror(errno) : "out of host memory");
    }
    wr(&w, &h, sizeof h);
    wr(&w, cfg_text, cfg_len);
    wr(&w, extra, extra_bytes);
    for (int i = 0; i < g->n_params && !w.failed; i++) {
        const GptParam *q = &g->params[i];
        size_t bytes = (size_t)q->numel * sizeof(float);
        weights_to_host(g, q, buf);
        wr(&w, buf, bytes);
        gpt_param_read_adam(g, q, buf, buf + q->numel); /* sharded: gathered (model/dist.h) */
        wr(&w, buf, bytes);
        wr(&w, buf + q->numel, bytes);
    }
    uint64_t sum = w.hash;
    if (!w.failed && fwrite(&sum, sizeof sum, 1, w.f) != 1)
        w.failed = 1;
    if (!w.failed && (fflush(w.f) != 0 || fsync(fileno(w.f)) != 0))
        w.failed = 1;
    int close_failed = fclose(w.f) != 0;
    free(buf);
    free(cfg_text);
    if (w.failed || close_failed) {
        int e = errno;
        unlink(tmp);
        return err_set(err,
                       "checkpoint: writing '%s' failed: %s (the previous checkpoint is "
                       "untouched)",
                       tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return err_set(err, "checkpoint: rename '%s' -> '%s' failed: %s", tmp, path, strerror(e));
    }
    int dfd = open(out_dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd); /* make the rename durable */
        close(dfd);
    }
    if (path_out)
        snprintf(path_out, path_len, "%s", path);

    prune_states(out_dir, keep);
    return 0;
}

int checkpoint_remove_stale_temps(const char *out_dir, FILE *f) {
    DIR *d = opendir(out_dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *s = e->d_name;
        size_t len = strlen(s);
        int state_tmp =
            strncmp(s, "state_", 6) == 0 && len > 14 && strcmp(s + len - 8, ".bin.tmp") == 0;
        int model_tmp = strncmp(s, "model.bin.tmp.", 14) == 0;
        if (!state_tmp && !model_tmp)
            continue;
        char path[2 * CONFIG_STR_LEN + 300];
        snprintf(path, sizeof path, "%s/%s", out_dir, s);
        if (unlink(path) == 0) {
            n++;
            if (f)
                fprintf(f, "removed %s (left by an interrupted save)\n", path);
        }
    }
    closedir(d);
    return n;
}

int checkpoint_find_latest(const char *out_dir, char *path, size_t len, Err *err) {
    char *names[CHECKPOINT_MAX_FILES];
    int n = list_states(out_dir, names, CHECKPOINT_MAX_FILES);
    if (n == 0)
        return err_set(err, "init_from = resume: no checkpoint (state_*.bin) in out_dir '%s'",
                       out_dir);
    snprintf(path, len, "%s/%s", out_dir, names[n - 1]);
    for (int i = 0; i < n; i++)
        free(names[i]);
    return 0;
}

/* The checkpoint's header against the run's model: the same shape, a precision the run can
 * resume (checkpoint_resume_precision), and the loader state size this build packs. */
static int header_matches(const char *path, const CheckpointHeader *hp, Gpt *g, size_t extra_bytes,
                          Err *err) {
    const CheckpointHeader h = *hp;
    CheckpointHeader ours;
    header_fill(&ours, g);
    Err e2;
    CheckpointPrecision saved = {h.device, h.param_dtype, h.has_master};
    CheckpointPrecision run = checkpoint_precision_of(g);
    int bad = checkpoint_resume_precision(path, &saved, &run, &e2) < 0;
#define CHECK(field)                                                                               \
    if (!bad && h.field != ours.field) {                                                           \
        err_set(&e2,                                                                               \
                "checkpoint '%s' was made with %s = %lld, this run has %lld: refusing to "         \
                "resume a different model",                                                        \
                path, #field, (long long)h.field, (long long)ours.field);                          \
        bad = 1;                                                                                   \
    }
    CHECK(n_layer)
    CHECK(n_head)
    CHECK(n_embd)
    CHECK(block_size)
    CHECK(vocab_size)
    CHECK(padded_vocab_size)
    CHECK(bias)
    CHECK(gelu)
    CHECK(n_params)
    CHECK(total_numel)
#undef CHECK
    if (!bad && h.extra_bytes != extra_bytes) {
        err_set(&e2,
                "checkpoint '%s' holds %llu bytes of loader state, this build expects "
                "%zu",
                path, (unsigned long long)h.extra_bytes, extra_bytes);
        bad = 1;
    }
    if (bad) {
        if (err)
            *err = e2;
        return -1;
    }
    return 0;
}

/* long: every check of the file in the order it can fail (size, magic, version, length, checksum, header), then the reads */
int checkpoint_load(const char *path, const TrainConfig *cfg, Gpt *g, CheckpointProgress *p,
                    void *extra, size_t extra_bytes, Err *err) {
    (void)cfg;
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(err, "cannot open checkpoint '%s': %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long file_len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = file_len > 0 ? malloc((size_t)file_len) : NULL;
    size_t got = data ? fread(data, 1, (size_t)file_len, f) : 0;
    fclose(f);
    if (!data || got != (size_t)file_len) {
        free(data);
        return err_set(err, "cannot read checkpoint '%s'", path);
    }
    int rc = -1;
    CheckpointHeader h;
    size_t n = (size_t)file_len;
    if (n < sizeof h + sizeof(uint64_t)) {
        err_set(err, "checkpoint '%s' is truncated (%zu bytes; the header alone is %zu)", path, n,
                sizeof h);
        goto out;
    }
    memcpy(&h, data, sizeof h);
    if (memcmp(h.magic, "AGPTSTAT", 8) != 0) {
        err_set(err, "'%s' is not an arenagpt checkpoint (bad magic)", path);
        goto out;
    }
    if (h.version != CHECKPOINT_VERSION || h.header_bytes != sizeof h) {
        err_set(err,
                "checkpoint '%s' has version %u (header %u bytes); this build reads version "
                "%d (%zu bytes)",
                path, h.version, h.header_bytes, CHECKPOINT_VERSION, sizeof h);
        goto out;
    }
    size_t expect = sizeof h + h.config_bytes + h.extra_bytes +
                    (size_t)h.total_numel * 3 * sizeof(float) + sizeof(uint64_t);
    if (h.total_numel < 0 || expect != n) {
        err_set(err,
                "checkpoint '%s' is %zu bytes but its header describes %zu: truncated or "
                "corrupted",
                path, n, expect);
        goto out;
    }
    uint64_t stored;
    memcpy(&stored, data + n - sizeof stored, sizeof stored);
    if (fnv(FNV_OFFSET, data, n - sizeof stored) != stored) {
        err_set(err, "checkpoint '%s' fails its checksum: corrupted", path);
        goto out;
    }
    if (header_matches(path, &h, g, extra_bytes, err) != 0)
        goto out;
    const unsigned char *cur = data + sizeof h + h.config_bytes;
    if (extra_bytes)
        memcpy(extra, cur, extra_bytes);
    cur += extra_bytes;
    for (int i = 0; i < g->n_params; i++) {
        GptParam *q = &g->params[i];
        size_t bytes = (size_t)q->numel * sizeof(float);
        float *tmp = malloc(2 * bytes);
        if (!tmp) {
            err_set(err, "out of host memory loading '%s'", path);
            goto out;
        }
        memcpy(tmp, cur, bytes);
        gpt_param_write_f32(g, q, tmp); /* params (and the master copy where there is one) */
        cur += bytes;
        memcpy(tmp, cur, 2 * bytes); /* m, v; sharded: this rank's part (model/dist.h) */
        gpt_param_write_adam(g, q, tmp, tmp + q->numel);
        cur += 2 * bytes;
        g->backend->synchronize(g->stream);
        free(tmp);
    }
    *p = h.progress;
    rc = 0;
out:
    free(data);
    return rc;
}

int checkpoint_read_config(const char *path, char **text_out, Err *err) {
    *text_out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(err, "cannot open checkpoint '%s': %s", path, strerror(errno));
    CheckpointHeader h;
    int rc = -1;
    if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, "AGPTSTAT", 8) != 0 ||
        h.version != CHECKPOINT_VERSION || h.header_bytes != sizeof h ||
        h.config_bytes > (1u << 20)) {
        err_set(err, "'%s' is not a checkpoint of this build (bad header)", path);
    } else {
        char *text = malloc((size_t)h.config_bytes + 1);
        if (!text) {
            err_set(err, "out of host memory reading '%s'", path);
        } else if (fread(text, 1, (size_t)h.config_bytes, f) != (size_t)h.config_bytes) {
            free(text);
            err_set(err, "checkpoint '%s' is truncated (in its stored config)", path);
        } else {
            text[h.config_bytes] = 0;
            *text_out = text;
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}
