/* fuzz_tokenizer_file.c: libFuzzer target for the tokenizer-file reader (tokenizer_load:
 * ours, "agtk", and llm.c's decode-only format). The input is the file. A file that loads
 * must decode every id; when it can encode, decode(encode(x)) == x for a sample text built
 * from its own tokens; and it must save and load back with the same tokens.
 * ARENAGPT_FUZZ_WRITE_SEEDS=DIR writes the seed corpus and exits: a char tokenizer, the same
 * in llm.c's format, and a GPT-2 one from the small vocabulary in $ARENAGPT_FUZZ_SEED_VOCAB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../data/tokenizer.h"
#include "fuzz_common.h"

static void check_same_tokens(const Tokenizer *a, const Tokenizer *b) {
    if (tokenizer_vocab_size(a) != tokenizer_vocab_size(b) ||
        tokenizer_eot(a) != tokenizer_eot(b) || tokenizer_kind(a) != tokenizer_kind(b))
        abort();
    for (int64_t i = 0; i < tokenizer_vocab_size(a); i++) {
        size_t la, lb;
        const char *pa = tokenizer_decode(a, (int32_t)i, &la);
        const char *pb = tokenizer_decode(b, (int32_t)i, &lb);
        if (!pa || !pb || la != lb || memcmp(pa, pb, la) != 0)
            abort();
    }
}

static void write_seeds(const char *dir) {
    static const char text[] = "First Citizen:\nBefore we proceed, hear me speak. \xc3\xa9\xff";
    Err err;
    char path[512];
    Tokenizer *c = tokenizer_char_from_text(text, sizeof text - 1, &err);
    snprintf(path, sizeof path, "%s/char.bin", dir);
    if (!c || tokenizer_save(c, path, &err) != 0)
        goto fail;
    snprintf(path, sizeof path, "%s/char_llmc.bin", dir);
    if (tokenizer_save_llmc(c, path, &err) != 0)
        goto fail;
    tokenizer_free(c);
    const char *vocab = getenv("ARENAGPT_FUZZ_SEED_VOCAB");
    if (vocab) {
        Tokenizer *g = tokenizer_gpt2_from_vocab(vocab, &err);
        snprintf(path, sizeof path, "%s/gpt2_small.bin", dir);
        if (!g || tokenizer_save(g, path, &err) != 0)
            goto fail;
        tokenizer_free(g);
    }
    exit(0);
fail:
    fprintf(stderr, "seed: %s\n", err.msg);
    exit(1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *seed_dir = getenv("ARENAGPT_FUZZ_WRITE_SEEDS");
    if (seed_dir)
        write_seeds(seed_dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(0, data, size);
    Err err;
    err.msg[0] = 0;
    Tokenizer *t = tokenizer_load(path, &err);
    if (!t) {
        if (!err.msg[0])
            abort();
        return 0;
    }
    int64_t n = tokenizer_vocab_size(t);
    /* a sample: the bytes of the first few tokens, concatenated */
    char sample[512];
    size_t len = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t l;
        const char *p = tokenizer_decode(t, (int32_t)i, &l);
        if (!p)
            abort(); /* every id below the vocabulary size decodes */
        if (len + l <= sizeof sample && i < 32) {
            memcpy(sample + len, p, l);
            len += l;
        }
    }
    if (tokenizer_decode(t, (int32_t)n, NULL) != NULL || tokenizer_decode(t, -1, NULL) != NULL)
        abort();
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (tokenizer_encode(t, sample, len, &ids, &n_ids, &err) == 0) {
        size_t pos = 0;
        for (size_t i = 0; i < n_ids; i++) {
            size_t l;
            const char *p = tokenizer_decode(t, ids[i], &l);
            if (!p || pos + l > len || memcmp(sample + pos, p, l) != 0)
                abort(); /* decode(encode(x)) != x */
            pos += l;
        }
        if (pos != len)
            abort();
    }
    free(ids);
    char out[256];
    snprintf(out, sizeof out, "%s/tokenizer.bin", fuzz_dir());
    if (tokenizer_save(t, out, &err) == 0) {
        Tokenizer *back = tokenizer_load(out, &err);
        if (!back) {
            fprintf(stderr, "a loaded tokenizer saves to a file it refuses: %s\n", err.msg);
            abort();
        }
        check_same_tokens(t, back);
        tokenizer_free(back);
    }
    tokenizer_free(t);
    return 0;
}
