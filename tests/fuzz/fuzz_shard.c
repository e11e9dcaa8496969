/* fuzz_shard.c: libFuzzer target for the token-shard reader (data/loader.c) in both formats:
 * llm.c shards (header + uint16 tokens) and nanoGPT's headerless .bin. Input: byte 0 picks
 * the format, byte 1 the window length T (1..16), byte 2 the vocabulary bound, byte 3 the
 * number of shards (1..3: the rest of the input cut into that many files, opened as one glob
 * pattern); the rest is the file(s). Shards that open must serve random batches and every
 * sequential window with tokens inside the vocabulary, targets shifted by one from inputs;
 * past the end is refused; a refusal must say why. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../data/loader.h"
#include "fuzz_common.h"

#define FUZZ_B 2
#define FUZZ_MAX_T 16

/* tokens in range, each row's targets its inputs shifted by one */
static void check_window(const int32_t *x, const int32_t *y, int64_t T, int64_t vocab) {
    for (int b = 0; b < FUZZ_B; b++)
        for (int64_t t = 0; t < T; t++) {
            int32_t xi = x[b * T + t], yi = y[b * T + t];
            if (xi < 0 || yi < 0 || xi > 65535 || yi > 65535 ||
                (vocab > 0 && (xi >= vocab || yi >= vocab)))
                abort();
            if (t + 1 < T && yi != x[b * T + t + 1])
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzInput in = {data, size};
    int nanogpt = fuzz_u8(&in) & 1;
    int64_t T = 1 + fuzz_u8(&in) % FUZZ_MAX_T;
    uint8_t vb = fuzz_u8(&in);
    int64_t vocab = vb == 0 ? 0 : vb == 255 ? 65536 : (int64_t)vb * 256;
    int n_files = 1 + fuzz_u8(&in) % 3;
    char pattern[256];
    const char *path = pattern;
    if (n_files == 1) {
        path = fuzz_file(0, in.p, in.n);
    } else {
        size_t part = in.n / (size_t)n_files;
        for (int i = 0; i < n_files; i++) {
            char name[32];
            snprintf(name, sizeof name, "shard_%d.bin", i);
            size_t len = i + 1 < n_files ? part : in.n - part * (size_t)i;
            fuzz_dir_file(i, name, in.p + part * (size_t)i, len);
        }
        for (int i = n_files; i < 3; i++) {
            char name[32];
            snprintf(name, sizeof name, "shard_%d.bin", i);
            unlink(fuzz_dir_file(i, name, NULL, 0));
        }
        snprintf(pattern, sizeof pattern, "%s/shard_*.bin", fuzz_dir());
    }
    Err err;
    err.msg[0] = 0;
    DataLoader *dl = data_loader_open(path, nanogpt, FUZZ_B, T, vocab, 1234, &err);
    if (!dl) {
        if (!err.msg[0])
            abort(); /* a refusal must carry a reason */
        return 0;
    }
    int32_t x[FUZZ_B * FUZZ_MAX_T], y[FUZZ_B * FUZZ_MAX_T];
    if (data_loader_n_shards(dl) != n_files)
        abort();
    for (int k = 0; k < 4; k++) {
        if (data_loader_next(dl, x, y, &err) != 0)
            abort(); /* an opened shard always has a window */
        check_window(x, y, T, vocab);
    }
    int64_t nw = data_loader_n_windows(dl);
    for (int64_t w = 0; w + FUZZ_B <= nw && w < 64; w++) {
        if (data_loader_window(dl, w, x, y, &err) != 0)
            abort();
        check_window(x, y, T, vocab);
    }
    if (data_loader_window(dl, nw, x, y, &err) == 0)
        abort(); /* past the end must be refused */
    DataLoaderState st;
    data_loader_get_state(dl, &st);
    data_loader_set_state(dl, &st);
    data_loader_free(dl);
    return 0;
}
