/* fuzz_bpe.c: libFuzzer target for the encoders on arbitrary bytes: the GPT-2 BPE encoder
 * (the real vocabulary, from $ARENAGPT_VOCAB_DIR or .cache/gpt2) and a char tokenizer built
 * from the input itself (for one input in 4, picked by byte 0). Checks decode(encode(x)) == x for every input, and that streaming
 * (tokenizer_encode_prefix in chunks cut at a position the input picks) gives the same ids
 * as one call. Input: byte 0 picks the chunk size (plus 1/64 of the text's length); the rest
 * is the text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../data/tokenizer.h"
#include "fuzz_common.h"

static Tokenizer *gpt2;

static void free_gpt2(void) { tokenizer_free(gpt2); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *dir = getenv("ARENAGPT_VOCAB_DIR");
    Err err;
    gpt2 = tokenizer_gpt2_from_vocab(dir ? dir : ".cache/gpt2", &err);
    if (!gpt2) {
        fprintf(stderr, "fuzz_bpe: %s (run scripts/fetch_vocab.sh, or set ARENAGPT_VOCAB_DIR)\n",
                err.msg);
        exit(1);
    }
    atexit(free_gpt2);
    return 0;
}

static void round_trip(const Tokenizer *t, const char *text, size_t len, size_t chunk) {
    Err err;
    int32_t *ids = NULL;
    size_t n = 0;
    if (tokenizer_encode(t, text, len, &ids, &n, &err) != 0) {
        fprintf(stderr, "encode refused %zu bytes: %s\n", len, err.msg);
        abort();
    }
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l;
        const char *p = tokenizer_decode(t, ids[i], &l);
        if (!p || pos + l > len || memcmp(text + pos, p, l) != 0) {
            fprintf(stderr, "decode(encode(x)) != x at token %zu (id %d), byte %zu\n", i,
                    (int)ids[i], pos);
            abort();
        }
        pos += l;
    }
    if (pos != len)
        abort();
    /* streaming: feed growing prefixes, keep the unused tail */
    TokenBuf buf = {0};
    size_t start = 0, avail = chunk < len ? chunk : len;
    for (;;) {
        int at_eof = avail == len;
        size_t used = 0;
        if (tokenizer_encode_prefix(t, text + start, avail - start, at_eof, &buf, &used, &err) != 0)
            abort();
        start += used;
        if (at_eof)
            break;
        avail = avail + chunk < len ? avail + chunk : len;
    }
    if (start != len || buf.n != n || (n && memcmp(buf.ids, ids, n * sizeof *ids) != 0)) {
        fprintf(stderr, "chunked encoding (chunk %zu) differs from one call\n", chunk);
        abort();
    }
    token_buf_free(&buf);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzInput in = {data, size};
    uint8_t b0 = fuzz_u8(&in);
    /* at most ~64 streaming calls per input: each call rescans its window */
    size_t chunk = 1 + b0 + in.n / 64;
    const char *text = (const char *)in.p;
    round_trip(gpt2, text, in.n, chunk);
    /* building a char tokenizer scans all 0x110000 code points (tens of ms with coverage
     * instrumentation): one input in 4 */
    if (b0 % 4 != 0)
        return 0;
    Err err;
    Tokenizer *c = tokenizer_char_from_text(text, in.n, &err);
    if (c) {
        round_trip(c, text, in.n, chunk);
        tokenizer_free(c);
    } else if (in.n > 0) {
        fprintf(stderr, "char tokenizer refused %zu bytes: %s\n", in.n, err.msg);
        abort();
    }
    return 0;
}
