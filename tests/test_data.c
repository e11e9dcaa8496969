/* test_data.c: the shard writer and the loader agree (sequential and random windows, targets
 * shifted by one, seeding and resume state, nanoGPT's headerless format, globs of shards),
 * every bad-file case of the loader, and `prepare` end to end (GPT-2 and char on
 * tinyshakespeare against nanoGPT's published token counts, a streamed input larger than the
 * read buffer, invalid UTF-8, usage errors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../data/loader.h"
#include "../data/shard.h"
#include "../data/tokenizer.h"
#include "../train/cmd_prepare.h"
#include "../train/config.h"
#include "test_util.h"

/* nanoGPT's data/shakespeare/prepare.py and data/shakespeare_char/prepare.py report these
 * for the 90/10 split of tinyshakespeare */
#define SHAKESPEARE_GPT2_TRAIN 301966
#define SHAKESPEARE_GPT2_VAL 36059
#define SHAKESPEARE_CHAR_TRAIN 1003854
#define SHAKESPEARE_CHAR_VAL 111540

/* token i of the test shards: 7*i mod 1000, a bijection on 0..999, so a window's first token
 * says where it starts */
#define TEST_VOCAB 1000
static int32_t test_token(int64_t i) { return (int32_t)((7 * i) % TEST_VOCAB); }
static int64_t test_position(int32_t tok) {
    return (143 * (int64_t)tok) % TEST_VOCAB;
} /* 7*143 = 1001 */

static void write_test_shard(const char *path, int nanogpt, int64_t first, int64_t n) {
    Err err = {{0}};
    ShardWriter *w = shard_writer_open(path, nanogpt, &err);
    assert_non_null(w);
    int32_t piece[37];
    for (int64_t i = 0; i < n;) {
        size_t k = 0;
        for (; k < 37 && i < n; k++, i++)
            piece[k] = test_token(first + i);
        assert_int_equal(shard_writer_append(w, piece, k, &err), 0);
    }
    assert_int_equal(shard_writer_n_tokens(w), n);
    assert_int_equal(shard_writer_close(w, &err), 0);
}

static void test_data_shard_loader_agree(void **state) {
    (void)state;
    char dir[256], path[512];
    test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/train.bin", dir);
    const int64_t N = 1000, B = 4, T = 16;
    write_test_shard(path, 0, 0, N);
    size_t len;
    char *raw = test_read_file(path, &len);
    assert_int_equal(len, 1024 + 2 * N);
    int32_t h[3];
    memcpy(h, raw, sizeof h);
    assert_int_equal(h[0], 20240520);
    assert_int_equal(h[1], 1);
    assert_int_equal(h[2], N);
    uint16_t t5;
    memcpy(&t5, raw + 1024 + 10, 2);
    assert_int_equal(t5, test_token(5));
    free(raw);

    Err err = {{0}};
    DataLoader *dl = data_loader_open(path, 0, B, T, TEST_VOCAB, 42, &err);
    if (!dl)
        fail_msg("%s", err.msg);
    assert_int_equal(data_loader_n_tokens(dl), N);
    assert_int_equal(data_loader_n_shards(dl), 1);
    assert_int_equal(data_loader_n_windows(dl), (N - 1) / T);
    int32_t in[4 * 16], tg[4 * 16];
    for (int64_t first = 0; first + B <= data_loader_n_windows(dl); first += 5) {
        assert_int_equal(data_loader_window(dl, first, in, tg, &err), 0);
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T; t++) {
                assert_int_equal(in[b * T + t], test_token((first + b) * T + t));
                assert_int_equal(tg[b * T + t], test_token((first + b) * T + t + 1));
            }
    }
    assert_int_equal(data_loader_window(dl, data_loader_n_windows(dl) - B + 1, in, tg, &err), -1);
    assert_non_null(strstr(err.msg, "windows"));
    /* random windows: contiguous runs from a start in [0, N-T-1], targets shifted by one */
    for (int it = 0; it < 200; it++) {
        assert_int_equal(data_loader_next(dl, in, tg, &err), 0);
        for (int64_t b = 0; b < B; b++) {
            int64_t s = test_position(in[b * T]);
            assert_true(s >= 0 && s <= N - T - 1);
            for (int64_t t = 0; t < T; t++) {
                assert_int_equal(in[b * T + t], test_token(s + t));
                assert_int_equal(tg[b * T + t], test_token(s + t + 1));
            }
        }
    }
    data_loader_free(dl);
    test_rmtree(dir);
}

static void test_data_loader_seed_and_state(void **state) {
    (void)state;
    char dir[256], path[512];
    test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/s.bin", dir);
    const int64_t B = 8, T = 4, N = T + 3; /* starts 0, 1, 2 only */
    write_test_shard(path, 0, 0, N);
    Err err = {{0}};
    DataLoader *a = data_loader_open(path, 0, B, T, TEST_VOCAB, 1, &err);
    DataLoader *b = data_loader_open(path, 0, B, T, TEST_VOCAB, 1, &err);
    DataLoader *c = data_loader_open(path, 0, B, T, TEST_VOCAB, 2, &err);
    assert_true(a && b && c);
    int32_t ia[32], ta[32], ib[32], tb[32];
    int seen[3] = {0}, differ = 0;
    for (int it = 0; it < 50; it++) {
        data_loader_next(a, ia, ta, &err);
        data_loader_next(b, ib, tb, &err);
        assert_memory_equal(ia, ib, sizeof ia);
        assert_memory_equal(ta, tb, sizeof ta);
        data_loader_next(c, ib, tb, &err);
        differ |= memcmp(ia, ib, sizeof ia) != 0;
        for (int64_t r = 0; r < B; r++) {
            int64_t s = test_position(ia[r * T]);
            assert_true(s >= 0 && s <= 2);
            seen[s] = 1;
        }
    }
    assert_true(differ);
    assert_true(seen[0] && seen[1] && seen[2]); /* both ends of [0, N-T-1] are drawn */
    /* resume: the saved state replays the same batches */
    DataLoaderState st;
    data_loader_get_state(a, &st);
    assert_int_equal(st.n_batches, 50);
    int32_t first[3][32];
    for (int k = 0; k < 3; k++)
        data_loader_next(a, first[k], ta, &err);
    DataLoaderState copy;
    memcpy(&copy, &st, sizeof st); /* byte for byte, as a checkpoint would */
    data_loader_set_state(c, &copy);
    for (int k = 0; k < 3; k++) {
        data_loader_next(c, ib, tb, &err);
        assert_memory_equal(ib, first[k], sizeof ib);
    }
    data_loader_get_state(c, &st);
    assert_int_equal(st.n_batches, 53);
    data_loader_free(a);
    data_loader_free(b);
    data_loader_free(c);
    test_rmtree(dir);
}

static void test_data_loader_nanogpt_format(void **state) {
    (void)state;
    char dir[256], path[512];
    test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/train.bin", dir);
    const int64_t N = 600, T = 32;
    write_test_shard(path, 1, 0, N);
    size_t len;
    free(test_read_file(path, &len));
    assert_int_equal(len, 2 * N);
    Err err = {{0}};
    DataLoader *dl = data_loader_open(path, 1, 2, T, TEST_VOCAB, 0, &err);
    assert_non_null(dl);
    assert_int_equal(data_loader_n_tokens(dl), N);
    int32_t in[64], tg[64];
    assert_int_equal(data_loader_window(dl, 3, in, tg, &err), 0);
    for (int64_t t = 0; t < 2 * T; t++) {
        assert_int_equal(in[t], test_token(3 * T + t));
        assert_int_equal(tg[t], test_token(3 * T + t + 1));
    }
    data_loader_free(dl);
    /* read as an llm.c shard it is refused, with a hint */
    assert_null(data_loader_open(path, 0, 2, T, TEST_VOCAB, 0, &err));
    assert_non_null(strstr(err.msg, "bad magic"));
    assert_non_null(strstr(err.msg, "data_format=nanogpt"));
    test_rmtree(dir);
}

static void test_data_loader_glob_shards(void **state) {
    (void)state;
    char dir[256], path[512], pattern[512];
    test_tmpdir(dir, sizeof dir);
    const int64_t T = 10, sizes[3] = {105, 31, 64};
    int64_t first = 0;
    for (int s = 0; s < 3; s++) {
        snprintf(path, sizeof path, "%s/shard_%d.bin", dir, s);
        write_test_shard(path, 0, first, sizes[s]);
        first += sizes[s];
    }
    snprintf(pattern, sizeof pattern, "%s/shard_*.bin", dir);
    Err err = {{0}};
    DataLoader *dl = data_loader_open(pattern, 0, 1, T, TEST_VOCAB, 3, &err);
    if (!dl)
        fail_msg("%s", err.msg);
    assert_int_equal(data_loader_n_shards(dl), 3);
    assert_int_equal(data_loader_n_tokens(dl), 200);
    /* windows per shard: 104/10 = 10, 30/10 = 3, 63/10 = 6 */
    assert_int_equal(data_loader_n_windows(dl), 19);
    int32_t in[10], tg[10];
    const int64_t expect_start[19] = {0,   10,  20,  30,  40,  50,  60,  70,  80, 90,
                                      105, 115, 125, 136, 146, 156, 166, 176, 186};
    for (int64_t w = 0; w < 19; w++) {
        assert_int_equal(data_loader_window(dl, w, in, tg, &err), 0);
        for (int64_t t = 0; t < T; t++) {
            assert_int_equal(in[t], test_token(expect_start[w] + t));
            assert_int_equal(tg[t], test_token(expect_start[w] + t + 1));
        }
    }
    /* random windows never straddle a shard boundary */
    for (int it = 0; it < 500; it++) {
        data_loader_next(dl, in, tg, &err);
        int64_t s = test_position(in[0]);
        int64_t lo = s < 105 ? 0 : s < 136 ? 105 : 136;
        int64_t hi = s < 105 ? 105 : s < 136 ? 136 : 200;
        assert_true(s >= lo && s + T + 1 <= hi);
    }
    data_loader_free(dl);
    test_rmtree(dir);
}

static void expect_open_error(const char *path, int nanogpt, int64_t T, const char *needle1,
                              const char *needle2) {
    Err err = {{0}};
    DataLoader *dl = data_loader_open(path, nanogpt, 2, T, TEST_VOCAB, 0, &err);
    if (dl || !strstr(err.msg, needle1) || (needle2 && !strstr(err.msg, needle2)))
        fail_msg("open %s: expected an error containing \"%s\"%s%s, got \"%s\"", path, needle1,
                 needle2 ? " and " : "", needle2 ? needle2 : "", dl ? "(success)" : err.msg);
}

static void test_data_loader_bad_files(void **state) {
    (void)state;
    char dir[256], path[512];
    test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/bad.bin", dir);
    write_test_shard(path, 0, 0, 100);
    size_t len;
    char *good = test_read_file(path, &len);
    int32_t *h = (int32_t *)good;
    FILE *f;
#define WRITE(n)                                                                                   \
    do {                                                                                           \
        f = fopen(path, "wb");                                                                     \
        assert_int_equal(fwrite(good, 1, (n), f), (n));                                            \
        fclose(f);                                                                                 \
    } while (0)
    h[0] = 20240326;
    WRITE(len);
    expect_open_error(path, 0, 8, "bad magic 20240326", "expected 20240520");
    h[0] = 20240520;
    h[1] = 2;
    WRITE(len);
    expect_open_error(path, 0, 8, "version 2", path);
    h[1] = 1;
    WRITE(len - 2);
    expect_open_error(path, 0, 8, "disagrees with ntok 100", path);
    WRITE(len);
    expect_open_error(path, 0, 100, "shorter than one window", path);
    WRITE((size_t)1100);
    expect_open_error(path, 0, 8, "size 1100 bytes disagrees with ntok 100", path);
    WRITE(1000);
    expect_open_error(path, 0, 8, "shorter than the 1024-byte", path);
    /* a token >= vocab_size: file, position and value in the message */
    uint16_t big = 1000;
    memcpy(good + 1024 + 2 * 37, &big, 2);
    WRITE(len);
    expect_open_error(path, 0, 8, "token 1000 at position 37 is >= vocab_size 1000", path);
    WRITE((size_t)201); /* odd size as a nanoGPT file */
    expect_open_error(path, 1, 8, "odd size", path);
    WRITE((size_t)0);
    expect_open_error(path, 1, 8, "shorter than one window", path);
    free(good);
    snprintf(path, sizeof path, "%s/none_*.bin", dir);
    expect_open_error(path, 0, 8, "no such file", path);
    test_rmtree(dir);
#undef WRITE
}

/* ---------- prepare ---------- */

static int vocab_present(void) {
    char p[4096];
    snprintf(p, sizeof p, "%s/encoder.json", test_vocab_dir());
    FILE *f = fopen(p, "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

/* Skips (or fails, after make test's set-up) when the GPT-2 vocabulary is missing. */
static void need_vocab(void) {
    if (!vocab_present())
        test_data_missing("the GPT-2 vocabulary", test_vocab_dir());
}

static void prepare_config(TrainConfig *cfg, const char *input, const char *out,
                           ConfigTokenizer tok) {
    config_defaults(cfg);
    assert_true(strlen(input) < sizeof cfg->input && strlen(out) < sizeof cfg->out);
    memcpy(cfg->input, input, strlen(input) + 1);
    memcpy(cfg->out, out, strlen(out) + 1);
    char vocab[4096];
    snprintf(vocab, sizeof vocab, "%s", test_vocab_dir());
    assert_true(strlen(vocab) < sizeof cfg->vocab_dir);
    memcpy(cfg->vocab_dir, vocab, strlen(vocab) + 1);
    cfg->tokenizer = tok;
}

static int32_t *shard_tokens(const char *path, int64_t *n) {
    Err err = {{0}};
    DataLoader *dl = data_loader_open(path, 0, 1, 1, 65536, 0, &err);
    if (!dl)
        fail_msg("%s", err.msg);
    *n = data_loader_n_tokens(dl);
    int32_t *ids = malloc((size_t)*n * sizeof *ids), tg;
    for (int64_t i = 0; i + 1 < *n; i++)
        assert_int_equal(data_loader_window(dl, i, &ids[i], &tg, &err), 0);
    ids[*n - 1] = tg;
    data_loader_free(dl);
    return ids;
}

/* decode(train) + decode(val) must give back the input */
static void assert_prepare_round_trip(const char *out, const char *text, size_t len) {
    char p[600];
    snprintf(p, sizeof p, "%s/tokenizer.bin", out);
    Err err = {{0}};
    Tokenizer *t = tokenizer_load(p, &err);
    if (!t)
        fail_msg("%s", err.msg);
    size_t k = 0;
    for (int s = 0; s < 2; s++) {
        snprintf(p, sizeof p, "%s/%s", out, s ? "val.bin" : "train.bin");
        int64_t n;
        int32_t *ids = shard_tokens(p, &n);
        for (int64_t i = 0; i < n; i++) {
            size_t l;
            const char *b = tokenizer_decode(t, ids[i], &l);
            assert_non_null(b);
            assert_true(k + l <= len);
            assert_memory_equal(text + k, b, l);
            k += l;
        }
        free(ids);
    }
    assert_int_equal(k, len);
    tokenizer_free(t);
}

static void test_data_prepare_tinyshakespeare(void **state) {
    (void)state;
    const char *input = test_shakespeare_path();
    size_t len;
    char *text = test_read_file(input, &len);
    if (!text)
        test_data_missing("tinyshakespeare", input);
    char dir[256], out[512], p[600];
    test_tmpdir(dir, sizeof dir);
    TrainConfig cfg;
    /* char level: nanoGPT's counts */
    snprintf(out, sizeof out, "%s/char", dir);
    prepare_config(&cfg, input, out, CONFIG_TOKENIZER_CHAR);
    assert_int_equal(cmd_prepare(&cfg), 0);
    int64_t n;
    snprintf(p, sizeof p, "%s/train.bin", out);
    free(shard_tokens(p, &n));
    assert_int_equal(n, SHAKESPEARE_CHAR_TRAIN);
    snprintf(p, sizeof p, "%s/val.bin", out);
    free(shard_tokens(p, &n));
    assert_int_equal(n, SHAKESPEARE_CHAR_VAL);
    assert_prepare_round_trip(out, text, len);
    if (!vocab_present() && test_data_required())
        test_data_missing("the GPT-2 vocabulary", test_vocab_dir());
    if (!vocab_present()) {
        print_message("SKIP (gpt2 part): the GPT-2 vocabulary missing at %s\n", test_vocab_dir());
    } else {
        snprintf(out, sizeof out, "%s/gpt2", dir);
        prepare_config(&cfg, input, out, CONFIG_TOKENIZER_GPT2);
        assert_int_equal(cmd_prepare(&cfg), 0);
        snprintf(p, sizeof p, "%s/train.bin", out);
        free(shard_tokens(p, &n));
        assert_int_equal(n, SHAKESPEARE_GPT2_TRAIN);
        Err err = {{0}};
        DataLoader *dl = data_loader_open(p, 0, 4, 64, 50257, 1337, &err);
        if (!dl)
            fail_msg("%s", err.msg);
        data_loader_free(dl);
        snprintf(p, sizeof p, "%s/val.bin", out);
        free(shard_tokens(p, &n));
        assert_int_equal(n, SHAKESPEARE_GPT2_VAL);
        assert_prepare_round_trip(out, text, len);
        snprintf(p, sizeof p, "%s/tokenizer_llmc.bin", out);
        size_t l;
        free(test_read_file(p, &l));
        assert_true(l > 1024);
    }
    free(text);
    test_rmtree(dir);
}

/* An input larger than prepare's 1 MiB read buffer, multi-byte characters before the split
 * (so the character split is not the byte split) and invalid UTF-8 after it. */
static void test_data_prepare_streams_large_input(void **state) {
    (void)state;
    need_vocab();
    char dir[256], input[512], out[512], p[600];
    test_tmpdir(dir, sizeof dir);
    snprintf(input, sizeof input, "%s/in.txt", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    const size_t n_multi = 100000, n_ascii = 2400000;
    size_t len = 2 * n_multi + n_ascii + 3;
    char *text = malloc(len);
    for (size_t i = 0; i < n_multi; i++)
        memcpy(text + 2 * i, "\xc3\xbc", 2); /* U+00FC */
    static const char words[] = "the quick  brown fox's 42 jumps,\nover\n\n   the lazy dog. ";
    for (size_t i = 0; i < n_ascii; i++)
        text[2 * n_multi + i] = words[(i * 7 + i / 53) % (sizeof words - 1)];
    memcpy(text + len - 3, "\xff\x80\xe2", 3);
    FILE *f = fopen(input, "wb");
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
    TrainConfig cfg;
    prepare_config(&cfg, input, out, CONFIG_TOKENIZER_GPT2);
    cfg.val_fraction = 0.25;
    assert_int_equal(cmd_prepare(&cfg), 0);
    int64_t n_chars = (int64_t)(n_multi + n_ascii + 3);
    int64_t split_chars = (int64_t)((double)n_chars * 0.75);
    size_t split_bytes = (size_t)split_chars + n_multi; /* every 2-byte char is before it */
    Err err = {{0}};
    snprintf(p, sizeof p, "%s/tokenizer.bin", out);
    Tokenizer *t = tokenizer_load(p, &err);
    assert_non_null(t);
    for (int s = 0; s < 2; s++) {
        int32_t *want;
        size_t n_want;
        const char *part = s ? text + split_bytes : text;
        size_t part_len = s ? len - split_bytes : split_bytes;
        assert_int_equal(tokenizer_encode(t, part, part_len, &want, &n_want, &err), 0);
        snprintf(p, sizeof p, "%s/%s", out, s ? "val.bin" : "train.bin");
        int64_t n;
        int32_t *got = shard_tokens(p, &n);
        assert_int_equal(n, n_want);
        assert_memory_equal(got, want, n_want * sizeof *got);
        free(got);
        free(want);
    }
    tokenizer_free(t);
    assert_prepare_round_trip(out, text, len);
    free(text);
    test_rmtree(dir);
}

static void test_data_prepare_nanogpt_format(void **state) {
    (void)state;
    char dir[256], input[512], out[512], p[600];
    test_tmpdir(dir, sizeof dir);
    snprintf(input, sizeof input, "%s/in.txt", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    const char text[] = "to be or not to be, that is the question\n";
    FILE *f = fopen(input, "wb");
    fwrite(text, 1, sizeof text - 1, f);
    fclose(f);
    TrainConfig cfg;
    prepare_config(&cfg, input, out, CONFIG_TOKENIZER_CHAR);
    cfg.data_format = CONFIG_DATA_NANOGPT;
    assert_int_equal(cmd_prepare(&cfg), 0);
    snprintf(p, sizeof p, "%s/train.bin", out);
    size_t len;
    char *raw = test_read_file(p, &len);
    int64_t split = (int64_t)((double)(sizeof text - 1) * 0.9);
    assert_int_equal(len, 2 * split); /* one char, one token; no header */
    uint16_t first;
    memcpy(&first, raw, 2);
    assert_int_equal(first, 13); /* 't': \n ' ' , a b e h i n o q r s t u */
    free(raw);
    Err err = {{0}};
    DataLoader *dl = data_loader_open(p, 1, 1, 8, 15, 0, &err);
    if (!dl)
        fail_msg("%s", err.msg);
    data_loader_free(dl);
    test_rmtree(dir);
}

static void test_data_prepare_errors(void **state) {
    (void)state;
    char dir[256], input[512], out[512];
    test_tmpdir(dir, sizeof dir);
    snprintf(input, sizeof input, "%s/in.txt", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    FILE *f = fopen(input, "wb");
    fputs("hello", f);
    fclose(f);
    TrainConfig cfg;
    prepare_config(&cfg, "", out, CONFIG_TOKENIZER_CHAR);
    assert_int_equal(cmd_prepare(&cfg), 2); /* no input */
    prepare_config(&cfg, input, out, CONFIG_TOKENIZER_CHAR);
    cfg.val_fraction = 1.0;
    assert_int_equal(cmd_prepare(&cfg), 2);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/missing.txt", dir);
    prepare_config(&cfg, missing, out, CONFIG_TOKENIZER_CHAR);
    assert_int_equal(cmd_prepare(&cfg), 1);
    prepare_config(&cfg, input, out, CONFIG_TOKENIZER_GPT2);
    snprintf(cfg.vocab_dir, sizeof cfg.vocab_dir, "%s/no_vocab_here", dir);
    assert_int_equal(cmd_prepare(&cfg), 1);
    snprintf(missing, sizeof missing, "%s/empty.txt", dir);
    f = fopen(missing, "wb");
    fclose(f);
    prepare_config(&cfg, missing, out, CONFIG_TOKENIZER_CHAR);
    assert_int_equal(cmd_prepare(&cfg), 1);
    prepare_config(&cfg, input, input, CONFIG_TOKENIZER_CHAR); /* out is a file */
    assert_int_equal(cmd_prepare(&cfg), 1);
    test_rmtree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_shard_loader_agree),
        cmocka_unit_test(test_data_loader_seed_and_state),
        cmocka_unit_test(test_data_loader_nanogpt_format),
        cmocka_unit_test(test_data_loader_glob_shards),
        cmocka_unit_test(test_data_loader_bad_files),
        cmocka_unit_test(test_data_prepare_tinyshakespeare),
        cmocka_unit_test(test_data_prepare_streams_large_input),
        cmocka_unit_test(test_data_prepare_nanogpt_format),
        cmocka_unit_test(test_data_prepare_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
