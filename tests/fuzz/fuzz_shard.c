/* fuzz_shard.c: libFuzzer target for the token-shard reader (data/loader.c) in both formats:
 * llm.c shards (header + uint16 tokens) and nanoGPT's headerless .bin. Input: byte 0 picks
 * the format, byte 1 the window length T (1..16), byte 2 the vocabulary bound; the rest is
 * the file. A shard that opens must serve random batches and every sequential window with
 * tokens inside the vocabulary; a refused one must say why. */
#include <stdio.h>
#include <stdlib.h>

#include "../../data/loader.h"
#include "fuzz_common.h"

#define FUZZ_B 2
#define FUZZ_MAX_T 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzInput in = {data, size};
    int nanogpt = fuzz_u8(&in) & 1;
    int64_t T = 1 + fuzz_u8(&in) % FUZZ_MAX_T;
    uint8_t vb = fuzz_u8(&in);
    int64_t vocab = vb == 0 ? 0 : vb == 255 ? 65536 : (int64_t)vb * 256;
    const char *path = fuzz_file(0, in.p, in.n);
    Err err;
    err.msg[0] = 0;
    DataLoader *dl = data_loader_open(path, nanogpt, FUZZ_B, T, vocab, 1234, &err);
    if (!dl) {
        if (!err.msg[0])
            abort(); /* a refusal must carry a reason */
        return 0;
    }
    int32_t x[FUZZ_B * FUZZ_MAX_T], y[FUZZ_B * FUZZ_MAX_T];
    for (int k = 0; k < 4; k++) {
        if (data_loader_next(dl, x, y, &err) != 0)
            abort(); /* an opened shard always has a window */
        for (int i = 0; i < FUZZ_B * T; i++)
            if (x[i] < 0 || y[i] < 0 || (vocab > 0 && (x[i] >= vocab || y[i] >= vocab)))
                abort();
    }
    int64_t nw = data_loader_n_windows(dl);
    for (int64_t w = 0; w + FUZZ_B <= nw && w < 64; w++)
        if (data_loader_window(dl, w, x, y, &err) != 0)
            abort();
    if (data_loader_window(dl, nw, x, y, &err) == 0)
        abort(); /* past the end must be refused */
    DataLoaderState st;
    data_loader_get_state(dl, &st);
    data_loader_set_state(dl, &st);
    data_loader_free(dl);
    return 0;
}
