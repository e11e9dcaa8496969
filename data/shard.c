/* shard.c: the streaming shard writer and where a data directory's splits are (see shard.h). */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shard.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "shards are read and written as little-endian; this host is not"
#endif

#define SHARD_WRITE_CHUNK 65536 /* tokens converted to uint16 per fwrite */

struct ShardWriter {
    FILE *f;
    char *path;
    char *tmp;
    int nanogpt;
    int64_t ntok;
    uint16_t buf[SHARD_WRITE_CHUNK];
};

static void shard_writer_release(ShardWriter *w, int remove_tmp) {
    if (w->f)
        fclose(w->f);
    if (remove_tmp)
        remove(w->tmp);
    free(w->path);
    free(w->tmp);
    free(w);
}

ShardWriter *shard_writer_open(const char *path, int nanogpt_format, Err *err) {
    ShardWriter *w = calloc(1, sizeof *w);
    size_t n = strlen(path);
    if (!w || !(w->path = strdup(path)) || !(w->tmp = malloc(n + 5))) {
        if (w) {
            free(w->path);
            free(w);
        }
        err_set(err, "%s: out of memory", path);
        return NULL;
    }
    memcpy(w->tmp, path, n);
    memcpy(w->tmp + n, ".tmp", 5);
    w->nanogpt = nanogpt_format;
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        err_set(err, "%s: cannot create: %s", w->tmp, strerror(errno));
        shard_writer_release(w, 0);
        return NULL;
    }
    if (!nanogpt_format) {
        int32_t h[SHARD_HEADER_INTS] = {0}; /* ntok filled in on close */
        h[0] = SHARD_MAGIC;
        h[1] = SHARD_VERSION;
        if (fwrite(h, sizeof h, 1, w->f) != 1) {
            err_set(err, "%s: write failed: %s", w->tmp, strerror(errno));
            shard_writer_release(w, 1);
            return NULL;
        }
    }
    return w;
}

int shard_writer_append(ShardWriter *w, const int32_t *ids, size_t n, Err *err) {
    if (w->ntok + (int64_t)n > SHARD_MAX_NTOK)
        return err_set(err,
                       "%s: more than %d tokens (the shard header's ntok is an int32); "
                       "split the input",
                       w->path, SHARD_MAX_NTOK);
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        for (; k < SHARD_WRITE_CHUNK && i < n; k++, i++) {
            if (ids[i] < 0 || ids[i] > SHARD_MAX_TOKEN)
                return err_set(err, "%s: token %d at position %lld does not fit uint16", w->path,
                               ids[i], (long long)(w->ntok + (int64_t)i));
            w->buf[k] = (uint16_t)ids[i];
        }
        if (fwrite(w->buf, sizeof(uint16_t), k, w->f) != k)
            return err_set(err, "%s: write failed: %s", w->tmp, strerror(errno));
    }
    w->ntok += (int64_t)n;
    return 0;
}

int64_t shard_writer_n_tokens(const ShardWriter *w) { return w->ntok; }

int shard_writer_close(ShardWriter *w, Err *err) {
    int rc = 0;
    if (!w->nanogpt) {
        int32_t ntok = (int32_t)w->ntok;
        if (fseek(w->f, 2 * sizeof(int32_t), SEEK_SET) || fwrite(&ntok, sizeof ntok, 1, w->f) != 1)
            rc = err_set(err, "%s: cannot write the header: %s", w->tmp, strerror(errno));
    }
    if (!rc && (fflush(w->f) || fsync(fileno(w->f))))
        rc = err_set(err, "%s: flush failed: %s", w->tmp, strerror(errno));
    if (fclose(w->f) && !rc)
        rc = err_set(err, "%s: close failed: %s", w->tmp, strerror(errno));
    w->f = NULL;
    if (!rc && rename(w->tmp, w->path))
        rc = err_set(err, "%s: cannot rename into place: %s", w->path, strerror(errno));
    shard_writer_release(w, rc != 0);
    return rc;
}

void shard_writer_abort(ShardWriter *w) { shard_writer_release(w, 1); }

int shard_write(const char *path, int nanogpt_format, const int32_t *ids, size_t n, Err *err) {
    ShardWriter *w = shard_writer_open(path, nanogpt_format, err);
    if (!w)
        return -1;
    if (shard_writer_append(w, ids, n, err)) {
        shard_writer_abort(w);
        return -1;
    }
    return shard_writer_close(w, err);
}

int shard_split_path(char *buf, size_t len, const char *dir, const char *split) {
    int n = snprintf(buf, len, "%s/%s.bin", dir, split);
    if (n < 0 || (size_t)n >= len)
        return -1;
    if (access(buf, F_OK) == 0)
        return 0;
    char pattern[4096];
    n = snprintf(pattern, sizeof pattern, "%s/*_%s_[0-9][0-9][0-9][0-9][0-9][0-9].bin", dir, split);
    if (n < 0 || (size_t)n >= sizeof pattern || (size_t)n >= len)
        return (size_t)n >= len ? -1 : 0;
    glob_t g;
    int matched = glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0;
    globfree(&g);
    if (matched)
        memcpy(buf, pattern, (size_t)n + 1);
    return 0;
}
