/* corpus.c: the corpus file list and the (decompressing) byte streams; see corpus.h. Owns
 * file discovery and decompression; does not split documents (data/corpus_prepare.c) or
 * parse JSON (data/jsonl.c). */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>
#include <zstd.h>

#include "corpus.h"
#include "token_maps.h"

/* ---------- the file list ---------- */

static int ends_with(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && strncmp(s + n - k, suffix, k) == 0;
}

CorpusFormat corpus_format_of(const char *path) {
    size_t n = strlen(path);
    if (ends_with(path, n, ".gz"))
        n -= 3;
    else if (ends_with(path, n, ".zst"))
        n -= 4;
    if (ends_with(path, n, ".jsonl") || ends_with(path, n, ".ndjson") ||
        ends_with(path, n, ".json"))
        return CORPUS_FORMAT_JSONL;
    return CORPUS_FORMAT_TEXT;
}

static int list_add(CorpusList *l, size_t *cap, const char *path, const struct stat *st, Err *err) {
    if (ends_with(path, strlen(path), ".parquet"))
        return err_set(err, "%s: %s", path, CORPUS_PARQUET_HINT);
    if (array_grow((void **)&l->files, cap, (size_t)l->n + 1, sizeof *l->files))
        return err_set(err, "%s: out of memory", path);
    CorpusFile *f = &l->files[l->n];
    if (!(f->path = strdup(path)))
        return err_set(err, "%s: out of memory", path);
    f->bytes = st->st_size;
    f->mtime = st->st_mtime;
    f->format = corpus_format_of(path);
    l->n++;
    return 0;
}

static int list_dir(CorpusList *l, size_t *cap, const char *dir, int depth, Err *err) {
    if (depth > 64)
        return err_set(err, "%s: folders nested more than 64 deep (a link loop?)", dir);
    DIR *d = opendir(dir);
    if (!d)
        return err_set(err, "%s: cannot open the folder: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(n);
        if (!p) {
            rc = err_set(err, "%s: out of memory", dir);
            break;
        }
        snprintf(p, n, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st))
            rc = err_set(err, "%s: cannot stat: %s", p, strerror(errno));
        else if (S_ISDIR(st.st_mode))
            rc = list_dir(l, cap, p, depth + 1, err);
        else if (S_ISREG(st.st_mode))
            rc = list_add(l, cap, p, &st, err);
        free(p);
    }
    closedir(d);
    return rc;
}

/* One item of the comma-separated list: a file, a folder or a glob pattern. */
static int list_item(CorpusList *l, size_t *cap, const char *item, Err *err) {
    glob_t g;
    int grc = glob(item, GLOB_NOCHECK, NULL, &g);
    if (grc)
        return err_set(err, "%s: cannot expand the pattern (glob error %d)", item, grc);
    int rc = 0;
    for (size_t i = 0; i < g.gl_pathc && !rc; i++) {
        const char *p = g.gl_pathv[i];
        struct stat st;
        if (stat(p, &st))
            rc =
                err_set(err, "%s: no such file or folder (and no file matches it as a pattern)", p);
        else if (S_ISDIR(st.st_mode))
            rc = list_dir(l, cap, p, 0, err);
        else if (S_ISREG(st.st_mode))
            rc = list_add(l, cap, p, &st, err);
        else
            rc = err_set(err, "%s: not a regular file or a folder", p);
    }
    globfree(&g);
    return rc;
}

static int file_cmp(const void *a, const void *b) {
    return strcmp(((const CorpusFile *)a)->path, ((const CorpusFile *)b)->path);
}

int corpus_list(const char *inputs, CorpusList *out, Err *err) {
    memset(out, 0, sizeof *out);
    size_t cap = 0;
    char *copy = strdup(inputs);
    if (!copy)
        return err_set(err, "out of memory");
    int rc = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item && !rc; item = strtok_r(NULL, ",", &save))
        if (*item)
            rc = list_item(out, &cap, item, err);
    free(copy);
    if (!rc && out->n == 0)
        rc = err_set(err, "%s: no input file (empty folders?)", inputs);
    if (rc) {
        corpus_list_free(out);
        return -1;
    }
    qsort(out->files, (size_t)out->n, sizeof *out->files, file_cmp);
    int k = 0;
    for (int i = 0; i < out->n; i++) {
        if (k > 0 && strcmp(out->files[k - 1].path, out->files[i].path) == 0) {
            free(out->files[i].path);
            continue;
        }
        out->files[k++] = out->files[i];
    }
    out->n = k;
    for (int i = 0; i < out->n; i++)
        out->total_bytes += out->files[i].bytes;
    return 0;
}

void corpus_list_free(CorpusList *l) {
    for (int i = 0; i < l->n; i++)
        free(l->files[i].path);
    free(l->files);
    memset(l, 0, sizeof *l);
}

/* ---------- streams ---------- */

typedef enum StreamKind { STREAM_PLAIN, STREAM_GZIP, STREAM_ZSTD } StreamKind;

struct CorpusStream {
    FILE *f;
    char *path;
    StreamKind kind;
    uint8_t in[CORPUS_STREAM_IN_BYTES];
    size_t in_pos, in_len;
    int file_eof;
    int64_t file_bytes; /* consumed by the decompressor */
    z_stream z;
    int z_open, z_member_done;
    ZSTD_DStream *zs;
    size_t zs_last; /* ZSTD_decompressStream's last return: 0 = at a frame's end */
    int64_t out_bytes;
};

/* Refills the input buffer when it is empty; sets file_eof at the end of the file. */
static int stream_fill(CorpusStream *s, Err *err) {
    if (s->in_pos < s->in_len || s->file_eof)
        return 0;
    size_t r = fread(s->in, 1, sizeof s->in, s->f);
    if (ferror(s->f))
        return err_set(err, "%s: read error: %s", s->path, strerror(errno));
    s->in_pos = 0;
    s->in_len = r;
    if (r == 0)
        s->file_eof = 1;
    return 0;
}

CorpusStream *corpus_stream_open(const char *path, Err *err) {
    CorpusStream *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        err_set(err, "%s: out of memory", path);
        return NULL;
    }
    s->f = fopen(path, "rb");
    if (!s->f) {
        err_set(err, "%s: cannot open: %s", path, strerror(errno));
        corpus_stream_close(s);
        return NULL;
    }
    if (stream_fill(s, err)) {
        corpus_stream_close(s);
        return NULL;
    }
    const uint8_t *m = s->in;
    if (s->in_len >= 2 && m[0] == 0x1f && m[1] == 0x8b) {
        s->kind = STREAM_GZIP;
        if (inflateInit2(&s->z, 15 + 32) != Z_OK) {
            err_set(err, "%s: cannot start zlib", path);
            corpus_stream_close(s);
            return NULL;
        }
        s->z_open = 1;
    } else if (s->in_len >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) {
        s->kind = STREAM_ZSTD;
        if (!(s->zs = ZSTD_createDStream())) {
            err_set(err, "%s: out of memory for zstd", path);
            corpus_stream_close(s);
            return NULL;
        }
    }
    return s;
}

static int64_t read_gzip(CorpusStream *s, uint8_t *buf, size_t n, Err *err) {
    s->z.next_out = buf;
    s->z.avail_out = (uInt)(n > (1u << 30) ? (1u << 30) : n);
    uInt want = s->z.avail_out;
    while (s->z.avail_out == want) {
        if (stream_fill(s, err))
            return -1;
        if (s->in_pos == s->in_len) { /* end of the file */
            if (!s->z_member_done)
                return err_set(err,
                               "%s: truncated gzip stream (the file ends before the end of its "
                               "compressed data, after %lld bytes of text)",
                               s->path, (long long)s->out_bytes);
            break;
        }
        if (s->z_member_done) { /* another member follows the last one */
            inflateReset(&s->z);
            s->z_member_done = 0;
        }
        s->z.next_in = s->in + s->in_pos;
        s->z.avail_in = (uInt)(s->in_len - s->in_pos);
        int zr = inflate(&s->z, Z_NO_FLUSH);
        size_t used = (s->in_len - s->in_pos) - s->z.avail_in;
        s->in_pos += used;
        s->file_bytes += (int64_t)used;
        if (zr == Z_STREAM_END)
            s->z_member_done = 1;
        else if (zr != Z_OK && zr != Z_BUF_ERROR)
            return err_set(err, "%s: corrupt gzip data at compressed byte %lld: %s", s->path,
                           (long long)s->file_bytes, s->z.msg ? s->z.msg : "inflate failed");
    }
    return (int64_t)(want - s->z.avail_out);
}

static int64_t read_zstd(CorpusStream *s, uint8_t *buf, size_t n, Err *err) {
    ZSTD_outBuffer out = {buf, n, 0};
    while (out.pos == 0) {
        if (stream_fill(s, err))
            return -1;
        if (s->in_pos == s->in_len) {
            if (s->zs_last != 0)
                return err_set(err,
                               "%s: truncated zstd stream (the file ends inside a frame, after "
                               "%lld bytes of text)",
                               s->path, (long long)s->out_bytes);
            break;
        }
        ZSTD_inBuffer in = {s->in + s->in_pos, s->in_len - s->in_pos, 0};
        size_t r = ZSTD_decompressStream(s->zs, &out, &in);
        s->in_pos += in.pos;
        s->file_bytes += (int64_t)in.pos;
        if (ZSTD_isError(r))
            return err_set(err, "%s: corrupt zstd data at compressed byte %lld: %s", s->path,
                           (long long)s->file_bytes, ZSTD_getErrorName(r));
        s->zs_last = r;
    }
    return (int64_t)out.pos;
}

int64_t corpus_stream_read(CorpusStream *s, uint8_t *buf, size_t n, Err *err) {
    int64_t got;
    if (s->kind == STREAM_GZIP) {
        got = read_gzip(s, buf, n, err);
    } else if (s->kind == STREAM_ZSTD) {
        got = read_zstd(s, buf, n, err);
    } else {
        if (stream_fill(s, err))
            return -1;
        size_t k = s->in_len - s->in_pos < n ? s->in_len - s->in_pos : n;
        memcpy(buf, s->in + s->in_pos, k);
        s->in_pos += k;
        s->file_bytes += (int64_t)k;
        got = (int64_t)k;
    }
    if (got > 0)
        s->out_bytes += got;
    return got;
}

int64_t corpus_stream_file_bytes(const CorpusStream *s) { return s->file_bytes; }

void corpus_stream_close(CorpusStream *s) {
    if (!s)
        return;
    if (s->f)
        fclose(s->f);
    if (s->z_open)
        inflateEnd(&s->z);
    if (s->zs)
        ZSTD_freeDStream(s->zs);
    free(s->path);
    free(s);
}
