/* token_maps.c: the tokenizer's hash maps (token_maps.h): 64-bit mixing, open addressing
 * with linear probing, tables kept at most half full (doubling when they pass it). */
#include "token_maps.h"

#include <stdlib.h>
#include <string.h>

#include "../alloc/base.h"

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

void u64map_free(U64Map *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

int u64map_init(U64Map *m, size_t expected) {
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

int32_t u64map_get(const U64Map *m, uint64_t key) {
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
int u64map_put(U64Map *m, uint64_t key, int32_t val) {
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

void strmap_free(StrMap *m) {
    free(m->slots);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

void strmap_clear(StrMap *m) {
    if (m->slots)
        memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->n = m->keys_n = m->vals_n = 0;
}

int strmap_get(const StrMap *m, const uint8_t *key, size_t len, const int32_t **vals, size_t *n) {
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

int array_grow(void **p, size_t *cap, size_t need, size_t elem) {
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
int strmap_put(StrMap *m, const uint8_t *key, size_t len, const int32_t *vals, size_t n) {
    ASSERT(len > 0 && len < UINT32_MAX);
    if ((m->n + 1) * 2 > m->cap && strmap_rehash(m, m->cap ? m->cap * 2 : 1024))
        return -1;
    if (array_grow((void **)&m->keys, &m->keys_cap, m->keys_n + len, 1) ||
        array_grow((void **)&m->vals, &m->vals_cap, m->vals_n + n, sizeof(int32_t)))
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
