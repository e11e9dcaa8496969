/* token_maps.h: the two hash maps the tokenizer units share (private to data/tokenizer*.c,
 * data/gpt2_vocab.c): uint64 -> int32 (merge ranks, char ids) and byte string -> int32 list
 * (the vocabulary while reading it, the pre-token cache), and the growable-array helper. Not
 * thread-safe; zero-initialised maps are empty and valid. */
#ifndef ARENAGPT_TOKEN_MAPS_H
#define ARENAGPT_TOKEN_MAPS_H

#include <stddef.h>
#include <stdint.h>

/* uint64 -> int32, open addressing; UINT64_MAX is the empty key. */
typedef struct U64Map {
    uint64_t *keys; /* (cap) */
    int32_t *vals;  /* (cap) */
    size_t cap;     /* power of two */
    size_t n;
} U64Map;

void u64map_free(U64Map *m);
/* Sized for `expected` keys; -1 when out of memory. */
int u64map_init(U64Map *m, size_t expected);
/* The value of key, or -1 when absent. */
int32_t u64map_get(const U64Map *m, uint64_t key);
/* Inserts or replaces; -1 when out of memory. */
int u64map_put(U64Map *m, uint64_t key, int32_t val);

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

void strmap_free(StrMap *m);
/* Empties the map and keeps its memory. */
void strmap_clear(StrMap *m);
/* 1 and the value list when key is present, else 0. */
int strmap_get(const StrMap *m, const uint8_t *key, size_t len, const int32_t **vals, size_t *n);
/* Adds key (absent before) with n values; -1 when out of memory. */
int strmap_put(StrMap *m, const uint8_t *key, size_t len, const int32_t *vals, size_t n);

/* Grows *p (elements of elem bytes, *cap of them) to hold at least need, doubling from 1024;
 * -1 when out of memory (*p unchanged). */
int array_grow(void **p, size_t *cap, size_t need, size_t elem);

#endif
