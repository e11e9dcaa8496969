/* tokenizer.c: the core of the GPT-2 byte-level BPE and char tokenizers (tokenizer.h gives
 * the rules): the Tokenizer's lookups and checks (tokenizer_finish builds the merge ranks,
 * byte and char ids, and the pre-tokenizer regex), decoding, and encoding with its pre-token
 * cache. The vocabulary files are gpt2_vocab.c's, the char vocabulary tokenizer_char.c's, the
 * tokenizer file tokenizer_file.c's, the hash maps token_maps.c's. Does not own shards or the
 * CLI. *
 * BPE inside one pre-token follows the reference exactly: start from single bytes, find the
 * adjacent pair with the lowest merge rank, merge every occurrence of that pair left to
 * right without overlap, repeat until no adjacent pair has a rank. That is quadratic in the
 * pre-token's length (as the reference is); pre-tokens are short in practice, and the cache
 * makes repeated ones free. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"
#include "utf8.h"

#define GPT2_PATTERN                                                                               \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
/* A match that ends at least this many bytes before the end of a partial buffer cannot be
 * changed by later bytes: the pattern looks at most 3 characters past a match's start and 1
 * past its end (4 bytes each at most). */
#define ENCODE_MARGIN_BYTES 32
#define CACHE_MAX_KEY_BYTES 128          /* longer pre-tokens are not cached */
#define CACHE_MAX_POOL_BYTES (64u << 20) /* cache is cleared when its pools pass this */
/* or when it holds this many pre-tokens: its slot table (24 bytes a slot, at most half full)
 * then stays within 2 * CACHE_MAX_ENTRIES * 24 = 96 MiB */
#define CACHE_MAX_ENTRIES (1u << 21)
#define NO_RANK INT32_MAX

/* ---------- the tokenizer ---------- */

void token_buf_free(TokenBuf *b) {
    free(b->ids);
    memset(b, 0, sizeof *b);
}

int token_buf_append(TokenBuf *b, const int32_t *ids, size_t n) {
    if (array_grow((void **)&b->ids, &b->cap, b->n + n, sizeof(int32_t)))
        return -1;
    memcpy(b->ids + b->n, ids, n * sizeof *ids);
    b->n += n;
    return 0;
}

TokenizerKind tokenizer_kind(const Tokenizer *t) { return t->kind; }
int64_t tokenizer_vocab_size(const Tokenizer *t) { return t->n_vocab; }
int32_t tokenizer_eot(const Tokenizer *t) { return t->eot; }

const char *tokenizer_decode(const Tokenizer *t, int32_t id, size_t *len_out) {
    if (id < 0 || id >= t->n_vocab)
        return NULL;
    if (len_out)
        *len_out = t->tok_off[id + 1] - t->tok_off[id];
    return (const char *)t->tok_bytes + t->tok_off[id];
}

void tokenizer_free(Tokenizer *t) {
    if (!t)
        return;
    free(t->tok_bytes);
    free(t->tok_off);
    free(t->merges);
    u64map_free(&t->merge_rank);
    u64map_free(&t->char_id);
    if (t->md)
        pcre2_match_data_free(t->md);
    if (t->re)
        pcre2_code_free(t->re);
    strmap_free(&t->cache);
    free(t->sym);
    free(t->rank);
    free(t);
}

uint64_t tokenizer_char_key(const uint8_t *s, size_t len) {
    uint64_t k = (uint64_t)len << 32;
    for (size_t i = 0; i < len; i++)
        k |= (uint64_t)s[i] << (8 * (3 - i));
    return k;
}

size_t tokenizer_token_len(const Tokenizer *t, int32_t id) {
    return t->tok_off[id + 1] - t->tok_off[id];
}

/* Checks the vocabulary and merges and builds the lookup structures. what names the source
 * (a file) in messages. */
int tokenizer_finish(Tokenizer *t, const char *what, Err *err) {
    if (t->n_vocab < 1)
        return err_set(err, "%s: empty vocabulary", what);
    if (t->eot < -1 || t->eot >= t->n_vocab)
        return err_set(err, "%s: end-of-text id %d outside [-1, %d)", what, t->eot, t->n_vocab);
    for (int32_t i = 0; i < t->n_vocab; i++) {
        size_t l = tokenizer_token_len(t, i);
        if (l < 1 || l > 255)
            return err_set(err, "%s: token %d has %zu bytes; expected 1..255", what, i, l);
    }
    if (t->kind == TOKENIZER_KIND_CHAR) {
        if (t->n_merges)
            return err_set(err, "%s: a char tokenizer has no merges (found %d)", what, t->n_merges);
        if (u64map_init(&t->char_id, (size_t)t->n_vocab))
            return err_set(err, "%s: out of memory", what);
        for (int32_t i = 0; i < t->n_vocab; i++) {
            const uint8_t *s = t->tok_bytes + t->tok_off[i];
            size_t l = tokenizer_token_len(t, i);
            int v = utf8_seq_len(s, l);
            if (!((v > 0 && (size_t)v == l) || (v <= 0 && l == 1))) /* a char or a lone byte */
                return err_set(err, "%s: char token %d is not one character (%zu bytes)", what, i,
                               l);
            if (u64map_put(&t->char_id, tokenizer_char_key(s, l), i))
                return err_set(err, "%s: char token %d repeats an earlier token", what, i);
        }
        return 0;
    }
    if (t->kind != TOKENIZER_KIND_GPT2)
        return err_set(err, "%s: unknown tokenizer kind %d", what, (int)t->kind);
    for (int b = 0; b < 256; b++)
        t->byte_id[b] = -1;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (tokenizer_token_len(t, i) == 1 && t->byte_id[t->tok_bytes[t->tok_off[i]]] < 0)
            t->byte_id[t->tok_bytes[t->tok_off[i]]] = i;
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] < 0)
            return err_set(err,
                           "%s: no token for the single byte 0x%02x (byte-level BPE needs "
                           "all 256)",
                           what, b);
    if (t->n_merges < 0 || u64map_init(&t->merge_rank, (size_t)t->n_merges + 1))
        return err_set(err, "%s: bad merge count %d", what, t->n_merges);
    for (int32_t r = 0; r < t->n_merges; r++) {
        int32_t a = t->merges[3 * r], b = t->merges[3 * r + 1], m = t->merges[3 * r + 2];
        if (a < 0 || a >= t->n_vocab || b < 0 || b >= t->n_vocab || m < 0 || m >= t->n_vocab)
            return err_set(err, "%s: merge %d (%d, %d -> %d) has an id outside [0, %d)", what, r, a,
                           b, m, t->n_vocab);
        size_t la = tokenizer_token_len(t, a), lb = tokenizer_token_len(t, b);
        if (tokenizer_token_len(t, m) != la + lb ||
            memcmp(t->tok_bytes + t->tok_off[m], t->tok_bytes + t->tok_off[a], la) ||
            memcmp(t->tok_bytes + t->tok_off[m] + la, t->tok_bytes + t->tok_off[b], lb))
            return err_set(err, "%s: merge %d: token %d is not token %d followed by token %d", what,
                           r, m, a, b);
        if (u64map_put(&t->merge_rank, (uint64_t)a << 32 | (uint32_t)b, r))
            return err_set(err, "%s: merge %d repeats the pair (%d, %d)", what, r, a, b);
    }
    int ec;
    PCRE2_SIZE eo;
    t->re = pcre2_compile((PCRE2_SPTR)GPT2_PATTERN, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return err_set(err, "pcre2: cannot compile the GPT-2 pattern at %zu: %s", (size_t)eo,
                       (char *)msg);
    }
    (void)pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    t->md = pcre2_match_data_create_from_pattern(t->re, NULL);
    if (!t->md)
        return err_set(err, "pcre2: out of memory");
    return 0;
}

Tokenizer *tokenizer_new(TokenizerKind kind) {
    Tokenizer *t = calloc(1, sizeof *t);
    if (t) {
        t->kind = kind;
        t->eot = -1;
    }
    return t;
}

/* ---------- reading a whole file (the vocabulary and tokenizer files) ---------- */

int tokenizer_read_file(const char *path, uint8_t **buf, size_t *len, Err *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(err, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 20, n = 0;
    uint8_t *b = malloc(cap + 1);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        cap *= 2;
        uint8_t *nb = realloc(b, cap + 1);
        if (!nb) {
            free(b);
            b = NULL;
        } else {
            b = nb;
        }
    }
    int bad = !b || ferror(f);
    int e = errno;
    fclose(f);
    if (bad) {
        free(b);
        return err_set(err, "%s: cannot read: %s", path, b ? strerror(e) : "out of memory");
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

/* ---------- encoding ---------- */

static int sym_reserve(Tokenizer *t, size_t n) {
    if (n <= t->sym_cap)
        return 0;
    size_t c = t->sym_cap ? t->sym_cap : 256;
    while (c < n)
        c *= 2;
    int32_t *s = realloc(t->sym, c * sizeof *s);
    if (!s)
        return -1;
    t->sym = s;
    int32_t *r = realloc(t->rank, c * sizeof *r);
    if (!r)
        return -1;
    t->rank = r;
    t->sym_cap = c;
    return 0;
}

static int32_t pair_rank(const Tokenizer *t, int32_t a, int32_t b) {
    int32_t r = u64map_get(&t->merge_rank, (uint64_t)a << 32 | (uint32_t)b);
    return r < 0 ? NO_RANK : r;
}

/* BPE of one pre-token of n bytes; appends its ids to out. */
static int bpe_word(Tokenizer *t, const uint8_t *s, size_t n, TokenBuf *out, Err *err) {
    const int32_t *cached;
    size_t n_cached;
    if (n <= CACHE_MAX_KEY_BYTES && strmap_get(&t->cache, s, n, &cached, &n_cached))
        return token_buf_append(out, cached, n_cached) ? err_set(err, "encode: out of memory") : 0;
    if (sym_reserve(t, n))
        return err_set(err, "encode: out of memory for a pre-token of %zu bytes", n);
    int32_t *sym = t->sym, *rank = t->rank;
    size_t m = n;
    for (size_t i = 0; i < n; i++)
        sym[i] = t->byte_id[s[i]];
    for (size_t i = 0; i + 1 < m; i++)
        rank[i] = pair_rank(t, sym[i], sym[i + 1]);
    while (m > 1) {
        int32_t best = NO_RANK;
        for (size_t i = 0; i + 1 < m; i++)
            if (rank[i] < best)
                best = rank[i];
        if (best == NO_RANK)
            break;
        int32_t a = t->merges[3 * best], b = t->merges[3 * best + 1], mg = t->merges[3 * best + 2];
        size_t j = 0;
        for (size_t i = 0; i < m;) {
            if (i + 1 < m && sym[i] == a && sym[i + 1] == b) {
                sym[j++] = mg;
                i += 2;
            } else {
                sym[j++] = sym[i++];
            }
        }
        m = j;
        for (size_t i = 0; i + 1 < m; i++)
            rank[i] = pair_rank(t, sym[i], sym[i + 1]);
    }
    if (token_buf_append(out, sym, m))
        return err_set(err, "encode: out of memory");
    if (n <= CACHE_MAX_KEY_BYTES) {
        if (t->cache.keys_n + n > CACHE_MAX_POOL_BYTES ||
            (t->cache.vals_n + m) * sizeof(int32_t) > CACHE_MAX_POOL_BYTES ||
            t->cache.n >= CACHE_MAX_ENTRIES)
            strmap_clear(&t->cache);
        if (strmap_put(&t->cache, s, n, sym, m))
            strmap_clear(&t->cache); /* the cache is an optimisation: drop it, go on */
    }
    return 0;
}

static int encode_prefix_gpt2(Tokenizer *t, const uint8_t *s, size_t len, int at_eof, TokenBuf *out,
                              size_t *consumed, Err *err) {
    size_t pos = 0;
    while (pos < len) {
        int rc = pcre2_match(t->re, s, len, pos, 0, t->md, NULL);
        size_t ms, me;
        if (rc == PCRE2_ERROR_NOMATCH) {
            ms = me = len;
        } else if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            *consumed = pos;
            return err_set(err, "encode: pcre2 match failed at byte %zu: %s", pos, (char *)msg);
        } else {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
            ms = ov[0];
            me = ov[1];
        }
        if (!at_eof && len - me < ENCODE_MARGIN_BYTES)
            break;
        /* bytes the pattern skipped are invalid UTF-8: one pre-token of their own */
        if (ms > pos && bpe_word(t, s + pos, ms - pos, out, err))
            return -1;
        if (me > ms && bpe_word(t, s + ms, me - ms, out, err))
            return -1;
        pos = me;
    }
    *consumed = pos;
    return 0;
}

static int encode_prefix_char(const Tokenizer *t, const uint8_t *s, size_t len, int at_eof,
                              TokenBuf *out, size_t *consumed, Err *err) {
    size_t pos = 0;
    while (pos < len) {
        int l = utf8_seq_len(s + pos, len - pos);
        if (l == 0 && !at_eof)
            break; /* a character cut by the end of the buffer */
        if (l <= 0)
            l = 1; /* invalid: a lone byte */
        int32_t id = u64map_get(&t->char_id, tokenizer_char_key(s + pos, (size_t)l));
        if (id < 0) {
            *consumed = pos;
            char shown[16] = {0};
            if (l == 1 && s[pos] >= 0x20 && s[pos] < 0x7f)
                snprintf(shown, sizeof shown, "'%c' ", s[pos]);
            uint64_t k = tokenizer_char_key(s + pos, (size_t)l);
            return err_set(err,
                           "encode: character %s(UTF-8 bytes 0x%0*llx) at byte %zu is not in the "
                           "char vocabulary of %d characters",
                           shown, 2 * l, (unsigned long long)((k & 0xffffffffu) >> (8 * (4 - l))),
                           pos, t->n_vocab);
        }
        if (token_buf_append(out, &id, 1))
            return err_set(err, "encode: out of memory");
        pos += (size_t)l;
    }
    *consumed = pos;
    return 0;
}

int tokenizer_encode_prefix(const Tokenizer *t, const char *text, size_t len, int at_eof,
                            TokenBuf *out, size_t *consumed, Err *err) {
    *consumed = 0;
    if (t->kind == TOKENIZER_KIND_CHAR)
        return encode_prefix_char(t, (const uint8_t *)text, len, at_eof, out, consumed, err);
    /* the cache and scratch are mutable state behind a const handle (see tokenizer.h) */
    return encode_prefix_gpt2((Tokenizer *)t, (const uint8_t *)text, len, at_eof, out, consumed,
                              err);
}

int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int32_t **ids_out,
                     size_t *n_out, Err *err) {
    TokenBuf b = {0};
    size_t used;
    *ids_out = NULL;
    *n_out = 0;
    if (tokenizer_encode_prefix(t, text, len, 1, &b, &used, err)) {
        token_buf_free(&b);
        return -1;
    }
    if (!b.ids) { /* empty text: still hand back a pointer the caller may free */
        b.ids = malloc(sizeof(int32_t));
        if (!b.ids)
            return err_set(err, "encode: out of memory");
    }
    *ids_out = b.ids;
    *n_out = b.n;
    return 0;
}
