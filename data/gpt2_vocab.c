/* gpt2_vocab.c: the GPT-2 vocabulary files: encoder.json (a JSON object of byte-mapped token
 * strings -> ids, read by a small JSON reader that accepts exactly that shape) and vocab.bpe
 * (one merge per line, rank order) into a tokenizer (tokenizer_gpt2_from_vocab). Errors name
 * the file and the byte offset or line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"
#include "utf8.h"

/* GPT-2's byte <-> printable-character map: bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand
 * for themselves; the other 68 bytes, in increasing order, become U+0100, U+0101, ... */
static int gpt2_byte_is_printable(int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static int gpt2_byte_from_codepoint(uint32_t cp) {
    if (cp < 256)
        return gpt2_byte_is_printable((int)cp) ? (int)cp : -1;
    uint32_t k = cp - 256, n = 0;
    for (int b = 0; b < 256; b++)
        if (!gpt2_byte_is_printable(b) && n++ == k)
            return b;
    return -1;
}

/* Appends the bytes a GPT-2 vocabulary string (UTF-8 of byte-map characters) stands for. */
static int gpt2_unmap(const uint8_t *s, size_t n, uint8_t *out, size_t *out_n) {
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        int l = utf8_seq_len(s + i, n - i);
        if (l <= 0)
            return -1;
        int b = gpt2_byte_from_codepoint(utf8_decode(s + i, (size_t)l));
        if (b < 0)
            return -1;
        out[k++] = (uint8_t)b;
        i += (size_t)l;
    }
    *out_n = k;
    return 0;
}

/* Parses a JSON string at *p (after the opening quote) into UTF-8 in out (at most cap bytes);
 * leaves *p after the closing quote. */
static int json_string(const uint8_t **p, const uint8_t *end, uint8_t *out, size_t cap, size_t *n) {
    const uint8_t *s = *p;
    size_t k = 0;
    while (s < end && *s != '"') {
        uint32_t cp;
        if (*s == '\\') {
            if (s + 1 >= end)
                return -1;
            char c = (char)s[1];
            s += 2;
            switch (c) {
            case '"':
                cp = '"';
                break;
            case '\\':
                cp = '\\';
                break;
            case '/':
                cp = '/';
                break;
            case 'b':
                cp = '\b';
                break;
            case 'f':
                cp = '\f';
                break;
            case 'n':
                cp = '\n';
                break;
            case 'r':
                cp = '\r';
                break;
            case 't':
                cp = '\t';
                break;
            case 'u': {
                if (end - s < 4)
                    return -1;
                char hex[5] = {(char)s[0], (char)s[1], (char)s[2], (char)s[3], 0};
                char *e;
                cp = (uint32_t)strtoul(hex, &e, 16);
                if (e != hex + 4)
                    return -1;
                s += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && end - s >= 6 && s[0] == '\\' && s[1] == 'u') {
                    char lo[5] = {(char)s[2], (char)s[3], (char)s[4], (char)s[5], 0};
                    uint32_t l = (uint32_t)strtoul(lo, &e, 16);
                    if (e == lo + 4 && l >= 0xDC00 && l < 0xE000) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (l - 0xDC00);
                        s += 6;
                    }
                }
                break;
            }
            default:
                return -1;
            }
            if (k + 4 > cap)
                return -1;
            k += utf8_encode(cp, out + k);
        } else {
            if (k + 1 > cap)
                return -1;
            out[k++] = *s++;
        }
    }
    if (s >= end)
        return -1;
    *p = s + 1;
    *n = k;
    return 0;
}

static const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* Fills t's tokens from encoder.json; map gets bytes -> id. */
static int gpt2_read_encoder(Tokenizer *t, const char *path, StrMap *map, Err *err) {
    uint8_t *buf;
    size_t len;
    if (tokenizer_read_file(path, &buf, &len, err))
        return -1;
    const uint8_t *p = buf, *end = buf + len;
    int32_t *ids = NULL;
    uint8_t *bytes = NULL;
    uint32_t *lens = NULL;
    size_t n = 0, cap = 0, bytes_n = 0, bytes_cap = 0, lens_cap = 0;
    int rc = -1;
    p = skip_ws(p, end);
    if (p >= end || *p != '{') {
        err_set(err, "%s: not a JSON object (expected '{' at byte %zu)", path, (size_t)(p - buf));
        goto done;
    }
    p++;
    for (;;) {
        p = skip_ws(p, end);
        if (p < end && *p == '}')
            break;
        if (p >= end || *p != '"') {
            err_set(err, "%s: expected a string key at byte %zu", path, (size_t)(p - buf));
            goto done;
        }
        p++;
        uint8_t key[1024], raw[1024];
        size_t key_n, raw_n;
        const uint8_t *key_at = p;
        if (json_string(&p, end, key, sizeof key, &key_n) || gpt2_unmap(key, key_n, raw, &raw_n) ||
            raw_n == 0) {
            err_set(err, "%s: bad vocabulary key at byte %zu (not a GPT-2 byte-mapped string)",
                    path, (size_t)(key_at - buf));
            goto done;
        }
        p = skip_ws(p, end);
        if (p >= end || *p != ':') {
            err_set(err, "%s: expected ':' at byte %zu", path, (size_t)(p - buf));
            goto done;
        }
        p = skip_ws(p + 1, end);
        char *e;
        long id = strtol((const char *)p, &e, 10);
        if (e == (const char *)p || id < 0 || id > 1000000) {
            err_set(err, "%s: bad token id at byte %zu", path, (size_t)(p - buf));
            goto done;
        }
        p = skip_ws((const uint8_t *)e, end);
        if (array_grow((void **)&ids, &cap, n + 1, sizeof *ids) ||
            array_grow((void **)&lens, &lens_cap, n + 1, sizeof *lens) ||
            array_grow((void **)&bytes, &bytes_cap, bytes_n + raw_n, 1)) {
            err_set(err, "%s: out of memory", path);
            goto done;
        }
        ids[n] = (int32_t)id;
        lens[n] = (uint32_t)raw_n;
        memcpy(bytes + bytes_n, raw, raw_n);
        bytes_n += raw_n;
        n++;
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == '}')
            break;
        err_set(err, "%s: expected ',' or '}' at byte %zu", path, (size_t)(p - buf));
        goto done;
    }
    if (n == 0 || n > INT32_MAX) {
        err_set(err, "%s: no tokens", path);
        goto done;
    }
    /* ids must be 0..n-1, each once */
    t->n_vocab = (int32_t)n;
    t->tok_off = calloc(n + 1, sizeof *t->tok_off);
    uint32_t *src_off = malloc(n * sizeof *src_off);
    int32_t *where = malloc(n * sizeof *where);
    t->tok_bytes = malloc(bytes_n);
    if (!t->tok_off || !src_off || !where || !t->tok_bytes) {
        free(src_off);
        free(where);
        err_set(err, "%s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        where[i] = -1;
    uint32_t off = 0;
    for (size_t i = 0; i < n; i++) {
        src_off[i] = off;
        off += lens[i];
        if ((size_t)ids[i] >= n || where[ids[i]] >= 0) {
            err_set(err, "%s: token id %d is repeated or outside [0, %zu)", path, ids[i], n);
            free(src_off);
            free(where);
            goto done;
        }
        where[ids[i]] = (int32_t)i;
    }
    off = 0;
    for (size_t id = 0; id < n; id++) {
        size_t i = (size_t)where[id];
        t->tok_off[id] = off;
        memcpy(t->tok_bytes + off, bytes + src_off[i], lens[i]);
        off += lens[i];
    }
    t->tok_off[n] = off;
    free(src_off);
    free(where);
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const int32_t *v;
        size_t vn;
        if (strmap_get(map, t->tok_bytes + t->tok_off[id], tokenizer_token_len(t, id), &v, &vn)) {
            err_set(err, "%s: tokens %d and %d have the same bytes", path, v[0], id);
            goto done;
        }
        if (strmap_put(map, t->tok_bytes + t->tok_off[id], tokenizer_token_len(t, id), &id, 1)) {
            err_set(err, "%s: out of memory", path);
            goto done;
        }
    }
    rc = 0;
done:
    free(buf);
    free(ids);
    free(lens);
    free(bytes);
    return rc;
}

static int gpt2_read_merges(Tokenizer *t, const char *path, const StrMap *map, Err *err) {
    uint8_t *buf;
    size_t len;
    if (tokenizer_read_file(path, &buf, &len, err))
        return -1;
    size_t cap = 0, n = 0;
    int rc = -1;
    size_t line_no = 0;
    for (size_t pos = 0; pos < len;) {
        size_t eol = pos;
        while (eol < len && buf[eol] != '\n')
            eol++;
        size_t next = eol + 1, e = eol;
        line_no++;
        if (e > pos && buf[e - 1] == '\r')
            e--;
        if (e == pos || (line_no == 1 && e - pos >= 8 && memcmp(buf + pos, "#version", 8) == 0)) {
            pos = next;
            continue;
        }
        size_t sp = pos;
        while (sp < e && buf[sp] != ' ')
            sp++;
        uint8_t a[512], b[512];
        size_t an, bn;
        if (sp == pos || sp + 1 >= e || memchr(buf + sp + 1, ' ', e - sp - 1) ||
            sp - pos > sizeof a || e - sp - 1 > sizeof b ||
            gpt2_unmap(buf + pos, sp - pos, a, &an) ||
            gpt2_unmap(buf + sp + 1, e - sp - 1, b, &bn)) {
            err_set(err, "%s:%zu: expected two byte-mapped tokens separated by one space", path,
                    line_no);
            goto done;
        }
        const int32_t *va, *vb, *vm;
        size_t k;
        uint8_t ab[1024];
        memcpy(ab, a, an);
        memcpy(ab + an, b, bn);
        if (!strmap_get(map, a, an, &va, &k) || !strmap_get(map, b, bn, &vb, &k) ||
            !strmap_get(map, ab, an + bn, &vm, &k)) {
            err_set(err, "%s:%zu: merge names a token that encoder.json lacks", path, line_no);
            goto done;
        }
        if (array_grow((void **)&t->merges, &cap, 3 * (n + 1), sizeof(int32_t))) {
            err_set(err, "%s: out of memory", path);
            goto done;
        }
        t->merges[3 * n] = va[0];
        t->merges[3 * n + 1] = vb[0];
        t->merges[3 * n + 2] = vm[0];
        n++;
        pos = next;
    }
    t->n_merges = (int32_t)n;
    rc = 0;
done:
    free(buf);
    return rc;
}

Tokenizer *tokenizer_gpt2_from_vocab(const char *vocab_dir, Err *err) {
    char enc_path[4096], bpe_path[4096];
    snprintf(enc_path, sizeof enc_path, "%s/encoder.json", vocab_dir);
    snprintf(bpe_path, sizeof bpe_path, "%s/vocab.bpe", vocab_dir);
    Tokenizer *t = tokenizer_new(TOKENIZER_KIND_GPT2);
    StrMap map = {0};
    if (!t) {
        err_set(err, "out of memory");
        return NULL;
    }
    if (gpt2_read_encoder(t, enc_path, &map, err) || gpt2_read_merges(t, bpe_path, &map, err))
        goto fail;
    const int32_t *v;
    size_t k;
    if (strmap_get(&map, (const uint8_t *)"<|endoftext|>", 13, &v, &k))
        t->eot = v[0];
    if (tokenizer_finish(t, enc_path, err))
        goto fail;
    strmap_free(&map);
    return t;
fail:
    strmap_free(&map);
    tokenizer_free(t);
    return NULL;
}
