/* fuzz_vocab.c: libFuzzer target for the GPT-2 vocabulary reader (tokenizer_gpt2_from_vocab:
 * encoder.json + vocab.bpe). Input: encoder.json's text, a NUL byte, vocab.bpe's text. A
 * vocabulary that is accepted must decode every id, encode a sample text so that it decodes
 * back to the same bytes, and save/load (tokenizer_save, tokenizer_load) to the same ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../data/tokenizer.h"
#include "fuzz_common.h"

static const char sample[] = "Hello world, it's 2024!\n  \xe2\x82\xac \xff\xfe tabs\tand ok";

static void encode_check(const Tokenizer *t, int32_t **ids, size_t *n) {
    Err err;
    *ids = NULL;
    *n = 0;
    if (tokenizer_encode(t, sample, sizeof sample - 1, ids, n, &err) != 0)
        return;
    size_t pos = 0;
    for (size_t i = 0; i < *n; i++) {
        size_t l;
        const char *p = tokenizer_decode(t, (*ids)[i], &l);
        if (!p || pos + l > sizeof sample - 1 || memcmp(sample + pos, p, l) != 0)
            abort(); /* decode(encode(x)) != x */
        pos += l;
    }
    if (pos != sizeof sample - 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzInput in = {data, size};
    FuzzInput enc = fuzz_split(&in, 0);
    fuzz_dir_file(0, "encoder.json", enc.p, enc.n);
    fuzz_dir_file(1, "vocab.bpe", in.p, in.n);
    Err err;
    err.msg[0] = 0;
    Tokenizer *t = tokenizer_gpt2_from_vocab(fuzz_dir(), &err);
    if (!t) {
        if (!err.msg[0])
            abort();
        return 0;
    }
    for (int64_t i = 0; i < tokenizer_vocab_size(t); i++)
        if (!tokenizer_decode(t, (int32_t)i, NULL) && i != tokenizer_eot(t))
            abort();
    int32_t *ids, *ids2;
    size_t n, n2;
    encode_check(t, &ids, &n);
    char out[256];
    snprintf(out, sizeof out, "%s/tokenizer.bin", fuzz_dir());
    if (tokenizer_save(t, out, &err) == 0) {
        Tokenizer *back = tokenizer_load(out, &err);
        if (!back) {
            fprintf(stderr, "an accepted vocabulary saves to a file it refuses: %s\n", err.msg);
            abort();
        }
        encode_check(back, &ids2, &n2);
        if (n != n2 || (n && memcmp(ids, ids2, n * sizeof *ids) != 0))
            abort(); /* the saved tokenizer encodes differently */
        free(ids2);
        tokenizer_free(back);
    }
    free(ids);
    tokenizer_free(t);
    return 0;
}
