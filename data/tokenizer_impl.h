/* tokenizer_impl.h: what the tokenizer units share (private to data/tokenizer*.c and
 * data/gpt2_vocab.c): the Tokenizer itself and the helpers that build one. tokenizer.c owns
 * the core (lookups, checks, encoding), gpt2_vocab.c reading encoder.json and vocab.bpe,
 * tokenizer_char.c the char vocabulary, tokenizer_file.c the tokenizer file. */
#ifndef ARENAGPT_TOKENIZER_IMPL_H
#define ARENAGPT_TOKENIZER_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stddef.h>
#include <stdint.h>

#include "token_maps.h"
#include "tokenizer.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tokenizer files are read and written as little-endian; this host is not"
#endif

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

/* A tokenizer of that kind with nothing in it (eot -1); NULL when out of memory. */
Tokenizer *tokenizer_new(TokenizerKind kind);
/* Checks the vocabulary and merges and builds the lookup structures. what names the source
 * (a file) in messages. */
int tokenizer_finish(Tokenizer *t, const char *what, Err *err);
/* The byte length of token id. */
size_t tokenizer_token_len(const Tokenizer *t, int32_t id);
/* The char kind's key of one character (its 1..4 bytes) in char_id. */
uint64_t tokenizer_char_key(const uint8_t *s, size_t len);
/* A whole file, NUL-terminated (not counted in *len); the caller frees *buf. */
int tokenizer_read_file(const char *path, uint8_t **buf, size_t *len, Err *err);

#endif
