/* gpt2_vocab.c: the GPT-2 vocabulary files: encoder.json (a JSON object of byte-mapped token
 * strings -> ids, parsed with cJSON, the project's one JSON library) and vocab.bpe
 * (one merge per line, rank order) into a tokenizer (tokenizer_gpt2_from_vocab; the same
 * files are a Hugging Face GPT-2 folder's vocab.json and merges.txt). Errors name
 * the file and the byte offset, key or line. */
#include <cjson/cJSON.h>
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

/* encoder.json's members in file order: ids, byte lengths and the bytes one after another. */
typedef struct EncoderEntries {
    int32_t *ids;
    uint32_t *lens;
    uint8_t *bytes;
    size_t n, cap, lens_cap, bytes_n, bytes_cap;
} EncoderEntries;

/* Appends one encoder.json member (key: its UTF-8 string, value: the id) to e. */
static int encoder_entry_add(EncoderEntries *e, const cJSON *item, const char *path, Err *err) {
    uint8_t raw[1024];
    size_t key_n = strlen(item->string), raw_n;
    if (key_n > sizeof raw || gpt2_unmap((const uint8_t *)item->string, key_n, raw, &raw_n) ||
        raw_n == 0)
        return err_set(err, "%s: bad vocabulary key \"%.40s\" (not a GPT-2 byte-mapped string)",
                       path, item->string);
    double v = cJSON_IsNumber(item) ? item->valuedouble : -1;
    if (!(v >= 0 && v <= 1000000 && v == (double)(int32_t)v))
        return err_set(err,
                       "%s: bad token id for key \"%.40s\" (expected an integer in [0, 1000000])",
                       path, item->string);
    if (array_grow((void **)&e->ids, &e->cap, e->n + 1, sizeof *e->ids) ||
        array_grow((void **)&e->lens, &e->lens_cap, e->n + 1, sizeof *e->lens) ||
        array_grow((void **)&e->bytes, &e->bytes_cap, e->bytes_n + raw_n, 1))
        return err_set(err, "%s: out of memory", path);
    e->ids[e->n] = (int32_t)v;
    e->lens[e->n] = (uint32_t)raw_n;
    memcpy(e->bytes + e->bytes_n, raw, raw_n);
    e->bytes_n += raw_n;
    e->n++;
    return 0;
}

/* Parses encoder.json (a JSON object of byte-mapped token strings -> ids) into e. */
static int encoder_entries_read(EncoderEntries *e, const char *path, Err *err) {
    uint8_t *buf;
    size_t len;
    if (tokenizer_read_file(path, &buf, &len, err))
        return -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)buf, len, &end, 0);
    while (root && end < (const char *)buf + len && strchr(" \t\r\n", *end))
        end++;
    int rc = 0;
    if (!root || end != (const char *)buf + len)
        rc = err_set(err, "%s: not valid JSON (at byte %zu)", path,
                     end ? (size_t)(end - (const char *)buf) : (size_t)0);
    else if (!cJSON_IsObject(root))
        rc = err_set(err, "%s: not a JSON object (expected '{' ... '}' of token -> id)", path);
    for (const cJSON *it = root && !rc ? root->child : NULL; it && !rc; it = it->next)
        rc = encoder_entry_add(e, it, path, err);
    cJSON_Delete(root);
    free(buf);
    return rc;
}

/* Fills t's tokens from encoder.json; map gets bytes -> id. */
static int gpt2_read_encoder(Tokenizer *t, const char *path, StrMap *map, Err *err) {
    EncoderEntries e = {0};
    int rc = -1;
    if (encoder_entries_read(&e, path, err))
        goto done;
    size_t n = e.n, bytes_n = e.bytes_n;
    int32_t *ids = e.ids;
    uint32_t *lens = e.lens;
    uint8_t *bytes = e.bytes;
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
    free(e.ids);
    free(e.lens);
    free(e.bytes);
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
    return tokenizer_gpt2_from_files(enc_path, bpe_path, err);
}

Tokenizer *tokenizer_gpt2_from_files(const char *enc_path, const char *bpe_path, Err *err) {
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
