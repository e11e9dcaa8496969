/* fuzz_model_file.c: libFuzzer target for the llm.c model-file reader (model/model_io.c).
 * Input: byte 0 picks bias (bit 0); the rest is the file. A header that passes
 * model_file_read_header is built into a CPU model of its shape (when small) and read in;
 * a file read with bias=True must write back (model_file_write_as, in its version: fp32 3
 * or bf16 5) to the same bytes, except the header's unused words (the reader ignores them,
 * the writer writes zeros) and, in a bf16 file, the bits of a NaN (written as the canonical
 * 0x7fff).
 * ARENAGPT_FUZZ_WRITE_SEEDS=DIR writes the seed corpus (a valid small file) and exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../model/model_io.h"
#include "fuzz_common.h"
#include "fuzz_model.h"

#define FUZZ_MAX_PARAMS 100000 /* bigger headers are checked but not built */

/* bf16 values a and b (little-endian bytes) are the same value: equal bits, or both NaN. */
static int bf16_same(const uint8_t *a, const uint8_t *b) {
    uint16_t x = (uint16_t)(a[0] | a[1] << 8), y = (uint16_t)(b[0] | b[1] << 8);
    return x == y || ((x & 0x7fffu) > 0x7f80u && (y & 0x7fffu) > 0x7f80u);
}

static int read_back_equal(const char *path, const uint8_t *data, size_t n, int32_t version) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    uint8_t *buf = malloc(n + 1);
    size_t got = fread(buf, 1, n + 1, f);
    fclose(f);
    const size_t used = 8 * sizeof(int32_t), header = MODEL_FILE_HEADER_INTS * sizeof(int32_t);
    int eq = got == n && n >= header && memcmp(buf, data, used) == 0;
    if (eq && version != MODEL_FILE_VERSION_BF16)
        eq = memcmp(buf + header, data + header, n - header) == 0;
    for (size_t i = header; eq && version == MODEL_FILE_VERSION_BF16 && i + 1 < n; i += 2)
        eq = bf16_same(buf + i, data + i);
    free(buf);
    return eq;
}

static void write_seeds(const char *dir) {
    for (int seed = 0; seed < 4; seed++) {
        int bias = seed & 1, bf16 = seed >> 1;
        GptConfig c;
        fuzz_model_small_config(&c, bias);
        FuzzModel m;
        Err err;
        char path[512];
        snprintf(path, sizeof path, "%s/small_bias%d%s.bin", dir, bias, bf16 ? "_bf16" : "");
        if (fuzz_model_build(&m, &c, &err) != 0 ||
            model_file_write_as(
                &m.g, path, bf16 ? MODEL_FILE_VERSION_BF16 : MODEL_FILE_VERSION_FP32, &err) != 0) {
            fprintf(stderr, "seed: %s\n", err.msg);
            exit(1);
        }
        fuzz_model_free(&m);
        /* the target's first byte picks bias: prepend it */
        FILE *f = fopen(path, "rb");
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *buf = malloc((size_t)n + 1);
        buf[0] = (uint8_t)bias;
        if (fread(buf + 1, 1, (size_t)n, f) != (size_t)n)
            exit(1);
        fclose(f);
        f = fopen(path, "wb");
        fwrite(buf, 1, (size_t)n + 1, f);
        fclose(f);
        free(buf);
    }
    exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *seed_dir = getenv("ARENAGPT_FUZZ_WRITE_SEEDS");
    if (seed_dir)
        write_seeds(seed_dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzInput in = {data, size};
    int bias = fuzz_u8(&in) & 1;
    const char *path = fuzz_file(0, in.p, in.n);
    Err err;
    ModelFileHeader h;
    if (model_file_read_header(path, &h, &err) != 0)
        return 0;
    GptConfig c;
    memset(&c, 0, sizeof c);
    c.bias = bias;
    if (gpt_config_from_model_file(path, &c, &err) != 0)
        abort(); /* the header was accepted a moment ago */
    GptParamCounts pc;
    gpt_param_counts(&c, &pc);
    if (pc.total > FUZZ_MAX_PARAMS || gpt_config_check(&c, GPT_DEVICE_CPU, &err) != 0)
        return 0;
    FuzzModel m;
    if (fuzz_model_build(&m, &c, &err) != 0)
        return 0;
    if (model_file_read(&m.g, path, &err) == 0 && bias) {
        char out[256];
        snprintf(out, sizeof out, "%s/model.bin", fuzz_dir());
        if (model_file_write_as(&m.g, out, h.version, &err) != 0 ||
            !read_back_equal(out, in.p, in.n, h.version)) {
            fprintf(stderr, "model file does not write back to the same bytes: %s\n", err.msg);
            abort();
        }
    }
    fuzz_model_free(&m);
    return 0;
}
