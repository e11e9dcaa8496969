/* fuzz_checkpoint.c: libFuzzer target for the training-state reader (train/checkpoint.c)
 * against a fixed small CPU model. Input: byte 0 bit 0 set = replace the last 8 bytes by the
 * file's FNV-1a checksum, so mutations get past the checksum to the header and size checks;
 * the rest is the file. What a file that loads holds (progress, loader state) must come back
 * from checkpoint_save + checkpoint_load unchanged.
 * ARENAGPT_FUZZ_WRITE_SEEDS=DIR writes the seed corpus (a valid checkpoint) and exits. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../data/loader.h"
#include "../../train/checkpoint.h"
#include "fuzz_common.h"
#include "fuzz_model.h"

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL
#define FUZZ_EXTRA_BYTES (3 * sizeof(DataLoaderState)) /* what train saves */

static FuzzModel model;
static TrainConfig cfg;

static uint64_t fnv(const uint8_t *p, size_t n) {
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

static void free_model(void) { fuzz_model_free(&model); }

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        abort();
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(*n + 1);
    if (fread(buf + 1, 1, *n, f) != *n)
        abort();
    fclose(f);
    return buf; /* byte 0 left for the caller */
}

static void write_seeds(const char *dir) {
    Err err;
    CheckpointProgress p = {.iter = 7, .loss_scale = 1.0f, .best_val_loss = 4.5f};
    uint8_t extra[FUZZ_EXTRA_BYTES];
    memset(extra, 0x5a, sizeof extra);
    char path[512];
    if (checkpoint_save(dir, &cfg, &model.g, &p, extra, sizeof extra, 1, path, sizeof path, &err) !=
        0) {
        fprintf(stderr, "seed: %s\n", err.msg);
        exit(1);
    }
    size_t n;
    uint8_t *buf = slurp(path, &n);
    buf[0] = 0;
    unlink(path);
    char out[600];
    snprintf(out, sizeof out, "%s/small_state.bin", dir);
    FILE *f = fopen(out, "wb");
    fwrite(buf, 1, n + 1, f);
    fclose(f);
    free(buf);
    exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    GptConfig c;
    fuzz_model_small_config(&c, 1);
    Err err;
    if (fuzz_model_build(&model, &c, &err) != 0) {
        fprintf(stderr, "fuzz_checkpoint: %s\n", err.msg);
        abort();
    }
    atexit(free_model);
    config_defaults(&cfg);
    const char *seed_dir = getenv("ARENAGPT_FUZZ_WRITE_SEEDS");
    if (seed_dir)
        write_seeds(seed_dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzInput in = {data, size};
    int fix_sum = fuzz_u8(&in) & 1;
    uint8_t *file = malloc(in.n + 1);
    memcpy(file, in.p, in.n);
    if (fix_sum && in.n >= 8) {
        uint64_t s = fnv(file, in.n - 8);
        memcpy(file + in.n - 8, &s, 8);
    }
    const char *path = fuzz_file(0, file, in.n);
    Err err;
    err.msg[0] = 0;
    CheckpointProgress p;
    uint8_t extra[FUZZ_EXTRA_BYTES];
    if (checkpoint_load(path, &cfg, &model.g, &p, extra, sizeof extra, &err) == 0) {
        char saved[600];
        if (checkpoint_save(fuzz_dir(), &cfg, &model.g, &p, extra, sizeof extra, 1, saved,
                            sizeof saved, &err) != 0)
            abort();
        /* what was loaded must come back from the saved file unchanged */
        CheckpointProgress p2;
        uint8_t extra2[FUZZ_EXTRA_BYTES];
        int rc = checkpoint_load(saved, &cfg, &model.g, &p2, extra2, sizeof extra2, &err);
        unlink(saved);
        if (rc != 0 || memcmp(&p, &p2, sizeof p) != 0 || memcmp(extra, extra2, sizeof extra)) {
            fprintf(stderr, "a loaded checkpoint does not save and load back: %s\n",
                    rc ? err.msg : "different contents");
            abort();
        }
    } else if (!err.msg[0]) {
        abort(); /* a refusal must carry a reason */
    }
    free(file);
    return 0;
}
