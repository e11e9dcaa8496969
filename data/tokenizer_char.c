/* tokenizer_char.c: the char-level vocabulary (nanoGPT's shakespeare_char): the sorted set of
 * the distinct characters of a text or a file (streamed), see tokenizer.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"
#include "utf8.h"

typedef struct CharSeen {
    uint8_t *cp_seen;       /* (0x110000 / 8) bit per code point */
    uint8_t byte_seen[256]; /* lone invalid bytes */
} CharSeen;

/* Marks the characters of s; returns how many bytes were used (a character cut by the end is
 * left unless at_eof). */
static size_t char_seen_add(CharSeen *cs, const uint8_t *s, size_t len, int at_eof) {
    size_t pos = 0;
    while (pos < len) {
        int l = utf8_seq_len(s + pos, len - pos);
        if (l == 0 && !at_eof)
            break;
        if (l <= 0) {
            cs->byte_seen[s[pos]] = 1;
            pos++;
        } else {
            uint32_t cp = utf8_decode(s + pos, (size_t)l);
            cs->cp_seen[cp >> 3] |= (uint8_t)(1u << (cp & 7));
            pos += (size_t)l;
        }
    }
    return pos;
}

typedef struct CharUnit {
    uint8_t b[4];
    uint8_t len;
} CharUnit;

static int char_unit_cmp(const void *x, const void *y) {
    const CharUnit *a = x, *b = y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->b, b->b, n);
    return c ? c : (int)a->len - (int)b->len;
}

static Tokenizer *char_from_seen(const CharSeen *cs, const char *what, Err *err) {
    size_t n = 0;
    for (uint32_t cp = 0; cp < 0x110000; cp++)
        n += (cs->cp_seen[cp >> 3] >> (cp & 7)) & 1;
    for (int b = 0; b < 256; b++)
        n += cs->byte_seen[b];
    if (n == 0) {
        err_set(err, "%s: no characters (empty text)", what);
        return NULL;
    }
    CharUnit *u = malloc(n * sizeof *u);
    Tokenizer *t = tokenizer_new(TOKENIZER_KIND_CHAR);
    if (!u || !t) {
        free(u);
        tokenizer_free(t);
        err_set(err, "out of memory");
        return NULL;
    }
    size_t k = 0;
    for (uint32_t cp = 0; cp < 0x110000; cp++)
        if ((cs->cp_seen[cp >> 3] >> (cp & 7)) & 1) {
            u[k].len = (uint8_t)utf8_encode(cp, u[k].b);
            k++;
        }
    for (int b = 0; b < 256; b++)
        if (cs->byte_seen[b]) {
            u[k].b[0] = (uint8_t)b;
            u[k].len = 1;
            k++;
        }
    qsort(u, n, sizeof *u, char_unit_cmp);
    t->n_vocab = (int32_t)n;
    t->tok_off = malloc((n + 1) * sizeof *t->tok_off);
    t->tok_bytes = malloc(4 * n);
    if (!t->tok_off || !t->tok_bytes) {
        free(u);
        tokenizer_free(t);
        err_set(err, "out of memory");
        return NULL;
    }
    uint32_t off = 0;
    for (size_t i = 0; i < n; i++) {
        t->tok_off[i] = off;
        memcpy(t->tok_bytes + off, u[i].b, u[i].len);
        off += u[i].len;
    }
    t->tok_off[n] = off;
    free(u);
    if (tokenizer_finish(t, what, err)) {
        tokenizer_free(t);
        return NULL;
    }
    return t;
}

Tokenizer *tokenizer_char_from_text(const char *text, size_t len, Err *err) {
    CharSeen cs = {0};
    cs.cp_seen = calloc(0x110000 / 8, 1);
    if (!cs.cp_seen) {
        err_set(err, "out of memory");
        return NULL;
    }
    char_seen_add(&cs, (const uint8_t *)text, len, 1);
    Tokenizer *t = char_from_seen(&cs, "text", err);
    free(cs.cp_seen);
    return t;
}

Tokenizer *tokenizer_char_from_file(const char *path, Err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    CharSeen cs = {0};
    cs.cp_seen = calloc(0x110000 / 8, 1);
    size_t cap = 1 << 20, have = 0;
    uint8_t *buf = malloc(cap);
    if (!cs.cp_seen || !buf) {
        free(cs.cp_seen);
        free(buf);
        fclose(f);
        err_set(err, "out of memory");
        return NULL;
    }
    for (;;) {
        size_t r = fread(buf + have, 1, cap - have, f);
        have += r;
        int eof = r == 0 || feof(f);
        if (ferror(f)) {
            err_set(err, "%s: read error: %s", path, strerror(errno));
            free(cs.cp_seen);
            free(buf);
            fclose(f);
            return NULL;
        }
        size_t used = char_seen_add(&cs, buf, have, eof);
        memmove(buf, buf + used, have - used);
        have -= used;
        if (eof)
            break;
    }
    fclose(f);
    free(buf);
    Tokenizer *t = char_from_seen(&cs, path, err);
    free(cs.cp_seen);
    return t;
}
