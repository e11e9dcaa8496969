/* tokenizer.c: the GPT-2 byte-level BPE and char tokenizers (see tokenizer.h for the rules
 * and the file format). Owns: reading encoder.json / vocab.bpe, the tokenizer file, the
 * pre-tokenizer regex, BPE merges and the pre-token cache. Does not own shards or the CLI.
 *
 * BPE inside one pre-token follows the reference exactly: start from single bytes, find the
 * adjacent pair with the lowest merge rank, merge every occurrence of that pair left to
 * right without overlap, repeat until no adjacent pair has a rank. That is quadratic in the
 * pre-token's length (as the reference is); pre-tokens are short in practice, and the cache
 * makes repeated ones free. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "utf8.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tokenizer files are read and written as little-endian; this host is not"
#endif

#define GPT2_PATTERN                                                                               \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
/* A match that ends at least this many bytes before the end of a partial buffer cannot be
 * changed by later bytes: the pattern looks at most 3 characters past a match's start and 1
 * past its end (4 bytes each at most). */
#define ENCODE_MARGIN_BYTES 32
#define CACHE_MAX_KEY_BYTES 128          /* longer pre-tokens are not cached */
#define CACHE_MAX_POOL_BYTES (64u << 20) /* cache is cleared when its pools pass this */
#define HEADER_INTS 256
#define NO_RANK INT32_MAX

/* ---------- hashing and the two hash maps ---------- */

static uint64_t hash_mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = hash_mix(h ^ w);
    }
    uint64_t w = 0;
    for (size_t k = 0; i < n; i++, k++)
        w |= (uint64_t)p[i] << (8 * k);
    return hash_mix(h ^ w ^ 0x9e3779b97f4a7c15ULL);
}

/* uint64 -> int32, open addressing; UINT64_MAX is the empty key. */
typedef struct U64Map {
    uint64_t *keys; /* (cap) */
    int32_t *vals;  /* (cap) */
    size_t cap;     /* power of two */
    size_t n;
} U64Map;

static void u64map_free(U64Map *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static int u64map_init(U64Map *m, size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2)
        cap *= 2;
    m->keys = malloc(cap * sizeof *m->keys);
    m->vals = malloc(cap * sizeof *m->vals);
    if (!m->keys || !m->vals) {
        u64map_free(m);
        return -1;
    }
    memset(m->keys, 0xff, cap * sizeof *m->keys);
    m->cap = cap;
    m->n = 0;
    return 0;
}

static int32_t u64map_get(const U64Map *m, uint64_t key) {
    size_t mask = m->cap - 1;
    for (size_t i = hash_mix(key) & mask;; i = (i + 1) & mask) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (m->keys[i] == UINT64_MAX)
            return -1;
    }
}

/* Inserts key (which must not be present; the map was sized for it). Returns 0, or 1 when
 * the key was already there (the value is not changed). */
static int u64map_put(U64Map *m, uint64_t key, int32_t val) {
    ASSERT(key != UINT64_MAX && m->n + 1 < m->cap);
    size_t mask = m->cap - 1;
    for (size_t i = hash_mix(key) & mask;; i = (i + 1) & mask) {
        if (m->keys[i] == key)
            return 1;
        if (m->keys[i] == UINT64_MAX) {
            m->keys[i] = key;
            m->vals[i] = val;
            m->n++;
            return 0;
        }
    }
}

/* byte string -> list of int32, open addressing, keys and values in two growing pools. */
typedef struct StrSlot {
    uint64_t hash;
    uint32_t key_off, key_len; /* key_len 0: empty slot (keys are never empty) */
    uint32_t val_off, val_n;
} StrSlot;

typedef struct StrMap {
    StrSlot *slots; /* (cap) */
    size_t cap, n;
    uint8_t *keys; /* (keys_n) */
    size_t keys_n, keys_cap;
    int32_t *vals; /* (vals_n) */
    size_t vals_n, vals_cap;
} StrMap;

static void strmap_free(StrMap *m) {
    free(m->slots);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static void strmap_clear(StrMap *m) {
    if (m->slots)
        memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->n = m->keys_n = m->vals_n = 0;
}

static int strmap_get(const StrMap *m, const uint8_t *key, size_t len, const int32_t **vals,
                      size_t *n) {
    if (!m->cap)
        return 0;
    uint64_t h = hash_bytes(key, len);
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const StrSlot *s = &m->slots[i];
        if (s->key_len == 0)
            return 0;
        if (s->hash == h && s->key_len == len && memcmp(m->keys + s->key_off, key, len) == 0) {
            *vals = m->vals + s->val_off;
            *n = s->val_n;
            return 1;
        }
    }
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int strmap_rehash(StrMap *m, size_t cap) {
    StrSlot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key_len == 0)
            continue;
        size_t j = m->slots[i].hash & (cap - 1);
        while (slots[j].key_len)
            j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

/* Adds key -> vals (key not present). Returns 0 or -1 (out of memory). */
static int strmap_put(StrMap *m, const uint8_t *key, size_t len, const int32_t *vals, size_t n) {
    ASSERT(len > 0 && len < UINT32_MAX);
    if ((m->n + 1) * 2 > m->cap && strmap_rehash(m, m->cap ? m->cap * 2 : 1024))
        return -1;
    if (grow((void **)&m->keys, &m->keys_cap, m->keys_n + len, 1) ||
        grow((void **)&m->vals, &m->vals_cap, m->vals_n + n, sizeof(int32_t)))
        return -1;
    uint64_t h = hash_bytes(key, len);
    size_t i = h & (m->cap - 1);
    while (m->slots[i].key_len)
        i = (i + 1) & (m->cap - 1);
    m->slots[i] =
        (StrSlot){h, (uint32_t)m->keys_n, (uint32_t)len, (uint32_t)m->vals_n, (uint32_t)n};
    memcpy(m->keys + m->keys_n, key, len);
    memcpy(m->vals + m->vals_n, vals, n * sizeof *vals);
    m->keys_n += len;
    m->vals_n += n;
    m->n++;
    return 0;
}

/* ---------- the tokenizer ---------- */

struct Tokenizer {
    TokenizerKind kind;
    int32_t n_vocab;
    int32_t eot;
    uint8_t *tok_bytes; /* (tok_off[n_vocab]) every token's bytes back to back */
    uint32_t *tok_off;  /* (n_vocab + 1) */
    int32_t n_merges;
    int32_t *merges; /* (n_merges, 3) left, right, merged; rank = row */
    /* derived on load */
    U64Map merge_rank; /* (left << 32 | right) -> rank */
    int32_t byte_id[256];
    U64Map char_id; /* char kind: unit key -> id */
    pcre2_code *re;
    /* mutable scratch (see "not thread-safe") */
    pcre2_match_data *md;
    StrMap cache;
    int32_t *sym;  /* (sym_cap) BPE symbols of one pre-token */
    int32_t *rank; /* (sym_cap) rank of the pair (sym[i], sym[i+1]) */
    size_t sym_cap;
};

void token_buf_free(TokenBuf *b) {
    free(b->ids);
    memset(b, 0, sizeof *b);
}

static int token_buf_append(TokenBuf *b, const int32_t *ids, size_t n) {
    if (grow((void **)&b->ids, &b->cap, b->n + n, sizeof(int32_t)))
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

static uint64_t char_key(const uint8_t *s, size_t len) {
    uint64_t k = (uint64_t)len << 32;
    for (size_t i = 0; i < len; i++)
        k |= (uint64_t)s[i] << (8 * (3 - i));
    return k;
}

static size_t tok_len(const Tokenizer *t, int32_t id) {
    return t->tok_off[id + 1] - t->tok_off[id];
}

/* Checks the vocabulary and merges and builds the lookup structures. what names the source
 * (a file) in messages. */
static int tokenizer_finish(Tokenizer *t, const char *what, Err *err) {
    if (t->n_vocab < 1)
        return err_set(err, "%s: empty vocabulary", what);
    if (t->eot < -1 || t->eot >= t->n_vocab)
        return err_set(err, "%s: end-of-text id %d outside [-1, %d)", what, t->eot, t->n_vocab);
    for (int32_t i = 0; i < t->n_vocab; i++) {
        size_t l = tok_len(t, i);
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
            size_t l = tok_len(t, i);
            int v = utf8_seq_len(s, l);
            if (!((v > 0 && (size_t)v == l) || (v <= 0 && l == 1))) /* a char or a lone byte */
                return err_set(err, "%s: char token %d is not one character (%zu bytes)", what, i,
                               l);
            if (u64map_put(&t->char_id, char_key(s, l), i))
                return err_set(err, "%s: char token %d repeats an earlier token", what, i);
        }
        return 0;
    }
    if (t->kind != TOKENIZER_KIND_GPT2)
        return err_set(err, "%s: unknown tokenizer kind %d", what, (int)t->kind);
    for (int b = 0; b < 256; b++)
        t->byte_id[b] = -1;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (tok_len(t, i) == 1 && t->byte_id[t->tok_bytes[t->tok_off[i]]] < 0)
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
        size_t la = tok_len(t, a), lb = tok_len(t, b);
        if (tok_len(t, m) != la + lb ||
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

static Tokenizer *tokenizer_new(TokenizerKind kind) {
    Tokenizer *t = calloc(1, sizeof *t);
    if (t) {
        t->kind = kind;
        t->eot = -1;
    }
    return t;
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
            (t->cache.vals_n + m) * sizeof(int32_t) > CACHE_MAX_POOL_BYTES)
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
        int32_t id = u64map_get(&t->char_id, char_key(s + pos, (size_t)l));
        if (id < 0) {
            *consumed = pos;
            char shown[16] = {0};
            if (l == 1 && s[pos] >= 0x20 && s[pos] < 0x7f)
                snprintf(shown, sizeof shown, "'%c' ", s[pos]);
            uint64_t k = char_key(s + pos, (size_t)l);
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

/* ---------- files ---------- */

static int read_whole_file(const char *path, uint8_t **buf, size_t *len, Err *err) {
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
    if (read_whole_file(path, &buf, &len, err))
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
        if (grow((void **)&ids, &cap, n + 1, sizeof *ids) ||
            grow((void **)&lens, &lens_cap, n + 1, sizeof *lens) ||
            grow((void **)&bytes, &bytes_cap, bytes_n + raw_n, 1)) {
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
        if (strmap_get(map, t->tok_bytes + t->tok_off[id], tok_len(t, id), &v, &vn)) {
            err_set(err, "%s: tokens %d and %d have the same bytes", path, v[0], id);
            goto done;
        }
        if (strmap_put(map, t->tok_bytes + t->tok_off[id], tok_len(t, id), &id, 1)) {
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
    if (read_whole_file(path, &buf, &len, err))
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
        if (grow((void **)&t->merges, &cap, 3 * (n + 1), sizeof(int32_t))) {
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

/* ---------- char vocabulary ---------- */

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

/* ---------- the tokenizer file ---------- */

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
        uint8_t l = (uint8_t)tok_len(t, i);
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
    if (read_whole_file(path, &buf, &len, err))
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
