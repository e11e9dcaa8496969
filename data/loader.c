/* loader.c: see loader.h. Owns the shard mappings and the window arithmetic; does not own
 * the output buffers or the tokenizer. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"
#include "shard.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "shards are read as little-endian; this host is not"
#endif

typedef struct Shard {
    char *path;
    void *map;
    size_t map_bytes;
    const uint16_t *tokens; /* (ntok) */
    int64_t ntok;
    int64_t first_start;  /* random starts of earlier shards */
    int64_t first_window; /* sequential windows of earlier shards */
} Shard;

struct DataLoader {
    int64_t B, T;
    Shard *shards; /* (n_shards) */
    int n_shards;
    int64_t n_tokens, n_starts, n_windows;
    Rng rng;
    int64_t n_batches;
};

void data_loader_free(DataLoader *dl) {
    if (!dl)
        return;
    for (int i = 0; i < dl->n_shards; i++) {
        if (dl->shards[i].map)
            munmap(dl->shards[i].map, dl->shards[i].map_bytes);
        free(dl->shards[i].path);
    }
    free(dl->shards);
    free(dl);
}

static int shard_map(Shard *s, int nanogpt, int64_t T, int64_t vocab_size, Err *err) {
    int fd = open(s->path, O_RDONLY);
    if (fd < 0)
        return err_set(err, "%s: cannot open: %s", s->path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return err_set(err, "%s: cannot stat: %s", s->path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, "%s: not a regular file", s->path);
    }
    size_t bytes = (size_t)st.st_size;
    if (bytes > 0) {
        s->map = mmap(NULL, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
        if (s->map == MAP_FAILED) {
            int e = errno;
            s->map = NULL;
            close(fd);
            return err_set(err, "%s: cannot map %zu bytes: %s", s->path, bytes, strerror(e));
        }
        s->map_bytes = bytes;
    }
    close(fd);
    const uint8_t *p = s->map;
    if (nanogpt) {
        if (bytes % 2)
            return err_set(err, "%s: %zu bytes, an odd size; a nanoGPT .bin holds uint16 tokens",
                           s->path, bytes);
        s->tokens = (const uint16_t *)p;
        s->ntok = (int64_t)(bytes / 2);
    } else {
        if (bytes < SHARD_HEADER_BYTES)
            return err_set(err,
                           "%s: %zu bytes, shorter than the %d-byte llm.c shard header "
                           "(a nanoGPT .bin? then set data_format=nanogpt)",
                           s->path, bytes, SHARD_HEADER_BYTES);
        int32_t h[3];
        memcpy(h, p, sizeof h);
        if (h[0] != SHARD_MAGIC)
            return err_set(err,
                           "%s: bad magic %d; expected %d (llm.c token shard; for a "
                           "headerless nanoGPT .bin set data_format=nanogpt)",
                           s->path, h[0], SHARD_MAGIC);
        if (h[1] != SHARD_VERSION)
            return err_set(err, "%s: version %d; expected %d", s->path, h[1], SHARD_VERSION);
        if (h[2] < 0)
            return err_set(err, "%s: negative ntok %d in the header", s->path, h[2]);
        size_t want = SHARD_HEADER_BYTES + 2 * (size_t)h[2];
        if (bytes != want)
            return err_set(err,
                           "%s: size %zu bytes disagrees with ntok %d in the header "
                           "(expected %zu bytes)",
                           s->path, bytes, h[2], want);
        s->tokens = (const uint16_t *)(p + SHARD_HEADER_BYTES);
        s->ntok = h[2];
    }
    if (s->ntok < T + 1)
        return err_set(err, "%s: %lld tokens, shorter than one window (block_size + 1 = %lld)",
                       s->path, (long long)s->ntok, (long long)(T + 1));
    if (vocab_size > 0) {
        for (int64_t i = 0; i < s->ntok; i++)
            if (s->tokens[i] >= vocab_size)
                return err_set(err, "%s: token %u at position %lld is >= vocab_size %lld", s->path,
                               s->tokens[i], (long long)i, (long long)vocab_size);
    }
    return 0;
}

DataLoader *data_loader_open(const char *path, int nanogpt_format, int64_t B, int64_t T,
                             int64_t vocab_size, uint64_t seed, Err *err) {
    if (B < 1 || T < 1 || B > INT32_MAX || T > INT32_MAX) {
        err_set(err, "data loader: batch %lld and block size %lld must be in [1, %d]", (long long)B,
                (long long)T, INT32_MAX);
        return NULL;
    }
    glob_t g;
    int grc = glob(path, 0, NULL, &g);
    if (grc == GLOB_NOMATCH) {
        err_set(err, "%s: no such file (and no file matches it as a pattern)", path);
        return NULL;
    }
    if (grc) {
        err_set(err, "%s: cannot expand the pattern (glob error %d)", path, grc);
        return NULL;
    }
    DataLoader *dl = calloc(1, sizeof *dl);
    if (!dl || !(dl->shards = calloc(g.gl_pathc, sizeof *dl->shards))) {
        free(dl);
        globfree(&g);
        err_set(err, "%s: out of memory", path);
        return NULL;
    }
    dl->B = B;
    dl->T = T;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        Shard *s = &dl->shards[dl->n_shards];
        if (!(s->path = strdup(g.gl_pathv[i]))) {
            err_set(err, "%s: out of memory", path);
            goto fail;
        }
        dl->n_shards++;
        if (shard_map(s, nanogpt_format, T, vocab_size, err))
            goto fail;
        s->first_start = dl->n_starts;
        s->first_window = dl->n_windows;
        dl->n_tokens += s->ntok;
        dl->n_starts += s->ntok - T;
        dl->n_windows += (s->ntok - 1) / T;
    }
    globfree(&g);
    rng_init(&dl->rng, seed);
    return dl;
fail:
    globfree(&g);
    data_loader_free(dl);
    return NULL;
}

/* The shard holding global random start k (by_window 0) or sequential window k
 * (by_window 1): the last shard whose first start / first window is <= k. */
static const Shard *shard_find(const DataLoader *dl, int64_t k, int by_window) {
    int lo = 0, hi = dl->n_shards - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        int64_t first = by_window ? dl->shards[mid].first_window : dl->shards[mid].first_start;
        if (first <= k)
            lo = mid;
        else
            hi = mid - 1;
    }
    return &dl->shards[lo];
}

static void window_copy(const uint16_t *src, int64_t T, int32_t *inputs, int32_t *targets) {
    for (int64_t t = 0; t < T; t++) {
        inputs[t] = src[t];
        targets[t] = src[t + 1];
    }
}

int data_loader_next(DataLoader *dl, int32_t *inputs, int32_t *targets, Err *err) {
    for (int64_t b = 0; b < dl->B; b++) {
        int64_t k = (int64_t)rng_below(&dl->rng, (uint64_t)dl->n_starts);
        const Shard *s = shard_find(dl, k, 0);
        window_copy(s->tokens + (k - s->first_start), dl->T, inputs + b * dl->T,
                    targets + b * dl->T);
    }
    dl->n_batches++;
    return 0;
}

int64_t data_loader_n_windows(const DataLoader *dl) { return dl->n_windows; }

int data_loader_window(DataLoader *dl, int64_t first_window, int32_t *inputs, int32_t *targets,
                       Err *err) {
    if (first_window < 0 || first_window > dl->n_windows - dl->B)
        return err_set(err,
                       "data loader: windows %lld..%lld asked, but %s has %lld windows of "
                       "%lld tokens",
                       (long long)first_window, (long long)(first_window + dl->B - 1),
                       dl->shards[0].path, (long long)dl->n_windows, (long long)dl->T);
    for (int64_t b = 0; b < dl->B; b++) {
        int64_t w = first_window + b;
        const Shard *s = shard_find(dl, w, 1);
        window_copy(s->tokens + (w - s->first_window) * dl->T, dl->T, inputs + b * dl->T,
                    targets + b * dl->T);
    }
    return 0;
}

int64_t data_loader_n_tokens(const DataLoader *dl) { return dl->n_tokens; }
int data_loader_n_shards(const DataLoader *dl) { return dl->n_shards; }

void data_loader_get_state(const DataLoader *dl, DataLoaderState *st) {
    memset(st, 0, sizeof *st);
    st->rng = dl->rng;
    st->n_batches = dl->n_batches;
}

void data_loader_set_state(DataLoader *dl, const DataLoaderState *st) {
    dl->rng = st->rng;
    dl->n_batches = st->n_batches;
}
