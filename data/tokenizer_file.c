/* tokenizer_file.c: the tokenizer file (tokenizer.h gives the format): tokenizer_save,
 * tokenizer_save_llmc (llm.c's decode-only format), tokenizer_load, which checks every
 * field against the file size before using it, and tokenizer_clone (a copy for another thread). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"

#define HEADER_INTS 256

static int write_all(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }

/* Writes through a temporary file renamed into place, so a reader never sees half a file. */
static int tokenizer_write(const Tokenizer *t, const char *path, int llmc, Err *err) {
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return err_set(err, "%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return err_set(err, "%s: cannot create: %s", tmp, strerror(errno));
    int32_t h[HEADER_INTS] = {0};
    if (llmc) {
        h[0] = TOKENIZER_LLMC_MAGIC;
        h[1] = TOKENIZER_LLMC_VERSION;
        h[2] = t->n_vocab;
        h[3] = t->eot;
    } else {
        h[0] = TOKENIZER_MAGIC;
        h[1] = TOKENIZER_VERSION;
        h[2] = (int32_t)t->kind;
        h[3] = t->n_vocab;
        h[4] = t->eot;
        h[5] = t->n_merges;
        h[6] = (int32_t)t->tok_off[t->n_vocab];
    }
    int bad = write_all(f, h, sizeof h);
    for (int32_t i = 0; i < t->n_vocab && !bad; i++) {
        uint8_t l = (uint8_t)tokenizer_token_len(t, i);
        bad = write_all(f, &l, 1) || write_all(f, t->tok_bytes + t->tok_off[i], l);
    }
    if (!llmc && !bad && t->n_merges)
        bad = write_all(f, t->merges, (size_t)t->n_merges * 3 * sizeof(int32_t));
    if (fclose(f) || bad) {
        remove(tmp);
        return err_set(err, "%s: write failed: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path)) {
        remove(tmp);
        return err_set(err, "%s: cannot rename into place: %s", path, strerror(errno));
    }
    return 0;
}

int tokenizer_save(const Tokenizer *t, const char *path, Err *err) {
    return tokenizer_write(t, path, 0, err);
}

int tokenizer_save_llmc(const Tokenizer *t, const char *path, Err *err) {
    return tokenizer_write(t, path, 1, err);
}

Tokenizer *tokenizer_load(const char *path, Err *err) {
    uint8_t *buf;
    size_t len;
    if (tokenizer_read_file(path, &buf, &len, err))
        return NULL;
    Tokenizer *t = NULL;
    int32_t h[HEADER_INTS];
    if (len < sizeof h) {
        err_set(err, "%s: %zu bytes, shorter than the %zu-byte header", path, len, sizeof h);
        goto fail;
    }
    memcpy(h, buf, sizeof h);
    if (h[0] == TOKENIZER_LLMC_MAGIC) {
        err_set(err,
                "%s: an llm.c tokenizer file (decode only, no merges); use the "
                "tokenizer.bin that `arenagpt prepare` writes",
                path);
        goto fail;
    }
    if (h[0] != TOKENIZER_MAGIC) {
        err_set(err,
                "%s: bad magic %d (0x%08x); expected 0x%08x, a tokenizer.bin written by "
                "`arenagpt prepare`",
                path, h[0], (unsigned)h[0], TOKENIZER_MAGIC);
        goto fail;
    }
    if (h[1] != TOKENIZER_VERSION) {
        err_set(err, "%s: version %d; this program reads version %d", path, h[1],
                TOKENIZER_VERSION);
        goto fail;
    }
    if (h[2] != TOKENIZER_KIND_GPT2 && h[2] != TOKENIZER_KIND_CHAR) {
        err_set(err, "%s: unknown tokenizer kind %d (1 = gpt2, 2 = char)", path, h[2]);
        goto fail;
    }
    int32_t n = h[3], n_merges = h[5], total = h[6];
    if (n < 1 || n_merges < 0 || total < n || (int64_t)total > 255 * (int64_t)n) {
        err_set(err, "%s: bad header: n_vocab %d, n_merges %d, token bytes %d", path, n, n_merges,
                total);
        goto fail;
    }
    size_t want = sizeof h + (size_t)n + (size_t)total + (size_t)n_merges * 12;
    if (len != want) {
        err_set(err, "%s: %zu bytes, but the header implies %zu", path, len, want);
        goto fail;
    }
    t = tokenizer_new((TokenizerKind)h[2]);
    if (!t || !(t->tok_off = malloc(((size_t)n + 1) * sizeof *t->tok_off)) ||
        !(t->tok_bytes = malloc((size_t)total)) ||
        (n_merges && !(t->merges = malloc((size_t)n_merges * 12)))) {
        err_set(err, "%s: out of memory", path);
        goto fail;
    }
    t->n_vocab = n;
    t->eot = h[4];
    t->n_merges = n_merges;
    const uint8_t *p = buf + sizeof h;
    uint32_t off = 0;
    for (int32_t i = 0; i < n; i++) {
        uint8_t l = *p++;
        if (off + l > (uint32_t)total) {
            err_set(err, "%s: token %d runs past the %d token bytes in the header", path, i, total);
            goto fail;
        }
        t->tok_off[i] = off;
        memcpy(t->tok_bytes + off, p, l);
        p += l;
        off += l;
    }
    t->tok_off[n] = off;
    if (off != (uint32_t)total) {
        err_set(err, "%s: tokens hold %u bytes, the header says %d", path, off, total);
        goto fail;
    }
    if (n_merges)
        memcpy(t->merges, p, (size_t)n_merges * 12);
    if (tokenizer_finish(t, path, err))
        goto fail;
    free(buf);
    return t;
fail:
    free(buf);
    tokenizer_free(t);
    return NULL;
}

Tokenizer *tokenizer_clone(const Tokenizer *src, Err *err) {
    int32_t n = src->n_vocab;
    size_t total = src->tok_off[n], merges_bytes = (size_t)src->n_merges * 3 * sizeof(int32_t);
    Tokenizer *t = tokenizer_new(src->kind);
    if (!t || !(t->tok_off = malloc(((size_t)n + 1) * sizeof *t->tok_off)) ||
        !(t->tok_bytes = malloc(total ? total : 1)) ||
        (merges_bytes && !(t->merges = malloc(merges_bytes)))) {
        tokenizer_free(t);
        err_set(err, "tokenizer copy: out of memory");
        return NULL;
    }
    t->n_vocab = n;
    t->eot = src->eot;
    t->n_merges = src->n_merges;
    memcpy(t->tok_off, src->tok_off, ((size_t)n + 1) * sizeof *t->tok_off);
    memcpy(t->tok_bytes, src->tok_bytes, total);
    if (merges_bytes)
        memcpy(t->merges, src->merges, merges_bytes);
    if (tokenizer_finish(t, "tokenizer copy", err)) {
        tokenizer_free(t);
        return NULL;
    }
    return t;
}
