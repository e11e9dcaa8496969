/* tokenizer.h: text <-> token ids. Two kinds:
 *
 *   GPT-2 byte-level BPE: the GPT-2 pre-tokenization pattern
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   (PCRE2, UTF + Unicode properties), then byte-pair merges by rank inside each pre-token.
 *   The ids equal the reference GPT-2 encoder's for valid UTF-8 text. `<|endoftext|>` in the
 *   text is ordinary text (as in the reference encoder); its id (50256) is tokenizer_eot().
 *   Invalid UTF-8 (which the reference, working on decoded strings, never sees) is encoded
 *   anyway: each maximal run of bytes that the pattern cannot match becomes its own
 *   pre-token and goes through BPE like any other, so decode(encode(x)) == x for any bytes.
 *
 *   Char level (nanoGPT's shakespeare_char): the vocabulary is the sorted set of distinct
 *   characters of the text. A character is one valid UTF-8 sequence (a code point) or,
 *   where the text is not valid UTF-8, one lone byte; the order is the bytewise order of
 *   their UTF-8 bytes (code point order for valid text, as Python's sorted(set(text))).
 *
 * The tokenizer file (what `arenagpt prepare` writes as <out>/tokenizer.bin) carries all that
 * encoding and decoding need. Format, little-endian:
 *   int32 header[256]: [0] TOKENIZER_MAGIC, [1] TOKENIZER_VERSION, [2] kind (1 = GPT-2 BPE,
 *                      2 = char), [3] n_vocab, [4] eot id (-1 = none), [5] n_merges,
 *                      [6] total bytes of all tokens; the rest 0.
 *   n_vocab times:     uint8 length (1..255), then that many bytes (the token's bytes).
 *   n_merges times:    int32 left, int32 right, int32 merged, in rank order (rank 0 first);
 *                      bytes(merged) == bytes(left) + bytes(right).
 * The file size must equal what the header implies. llm.c's tokenizer file (magic 20240328,
 * version 2: header then uint8 length + bytes per token) holds no merges, so it decodes but
 * cannot encode; tokenizer_save_llmc() writes it for interoperability.
 *
 * Not thread-safe: encoding memoizes pre-token -> ids in a cache inside the Tokenizer; threads
 * that encode at the same time each use their own copy (tokenizer_clone). */
#ifndef ARENAGPT_TOKENIZER_H
#define ARENAGPT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "../alloc/base.h"

#define TOKENIZER_MAGIC 0x6b746761 /* the bytes "agtk" */
#define TOKENIZER_VERSION 1
#define TOKENIZER_LLMC_MAGIC 20240328
#define TOKENIZER_LLMC_VERSION 2

typedef enum TokenizerKind { TOKENIZER_KIND_GPT2 = 1, TOKENIZER_KIND_CHAR = 2 } TokenizerKind;

typedef struct Tokenizer Tokenizer;

/* A growable list of token ids (encoders append to it). */
typedef struct TokenBuf {
    int32_t *ids; /* (n) */
    size_t n;
    size_t cap;
} TokenBuf;

void token_buf_free(TokenBuf *b);
/* Appends n ids; -1 when out of memory. */
int token_buf_append(TokenBuf *b, const int32_t *ids, size_t n);

/* Loads a tokenizer file written by tokenizer_save (see the format above). */
Tokenizer *tokenizer_load(const char *path, Err *err);
/* Builds the GPT-2 tokenizer from encoder.json and vocab.bpe in vocab_dir. */
Tokenizer *tokenizer_gpt2_from_vocab(const char *vocab_dir, Err *err);
/* The same from two paths (a Hugging Face GPT-2 folder's vocab.json and merges.txt). */
Tokenizer *tokenizer_gpt2_from_files(const char *encoder_json, const char *merges, Err *err);
/* Builds a char tokenizer from the distinct characters of text / of a file (streamed). */
Tokenizer *tokenizer_char_from_text(const char *text, size_t len, Err *err);
Tokenizer *tokenizer_char_from_file(const char *path, Err *err);

/* An independent copy (same vocabulary and merges, its own cache and scratch), for another
 * thread. */
Tokenizer *tokenizer_clone(const Tokenizer *t, Err *err);

int tokenizer_save(const Tokenizer *t, const char *path, Err *err);
/* llm.c's decode-only format (20240328, version 2); every token must be <= 255 bytes. */
int tokenizer_save_llmc(const Tokenizer *t, const char *path, Err *err);

/* Encodes text; *ids_out is malloc'd (caller frees), *n_out its length. */
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int32_t **ids_out,
                     size_t *n_out, Err *err);
/* Streaming: encodes a prefix of text and appends its ids to out; *consumed says how many
 * bytes were used. With at_eof = 0 it stops at a pre-token boundary far enough from the end
 * of text that later bytes cannot change the ids before it; the caller keeps the unused tail
 * and calls again with more text after it (if *consumed is 0, give it more text at once).
 * With at_eof = 1 it consumes everything. Chunked encoding gives the same ids as one call. */
int tokenizer_encode_prefix(const Tokenizer *t, const char *text, size_t len, int at_eof,
                            TokenBuf *out, size_t *consumed, Err *err);
/* The bytes of one token (not NUL-terminated); NULL if id is out of range. */
const char *tokenizer_decode(const Tokenizer *t, int32_t id, size_t *len_out);

TokenizerKind tokenizer_kind(const Tokenizer *t);
int64_t tokenizer_vocab_size(const Tokenizer *t);
int32_t tokenizer_eot(const Tokenizer *t); /* 50256 for GPT-2, -1 when none */
void tokenizer_free(Tokenizer *t);

#endif
