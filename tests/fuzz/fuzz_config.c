/* fuzz_config.c: libFuzzer target for the config parser (train/config.c): a config file and
 * --key=value arguments, for one command. Input: byte 0 picks the command, byte 1 whether a
 * file is given; then the file's text up to a NUL byte, then the arguments separated by NUL
 * bytes. Checks beyond "no crash, no leak, no UB": a config that parses must write out
 * (config_write) as a file that reads back (every command's keys allowed) to the same text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../train/config.h"
#include "fuzz_common.h"

#define FUZZ_MAX_ARGS 16
#define ALL_CMDS                                                                                   \
    (CONFIG_CMD_TRAIN | CONFIG_CMD_MEM | CONFIG_CMD_EVAL | CONFIG_CMD_SAMPLE | CONFIG_CMD_PREPARE)

static char *written(const TrainConfig *c, size_t *len) {
    char *text = NULL;
    FILE *m = open_memstream(&text, len);
    if (!m)
        abort();
    config_write(c, m);
    fclose(m);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzInput in = {data, size};
    unsigned cmd = 1u << (fuzz_u8(&in) % 5);
    int with_file = fuzz_u8(&in) & 1;
    FuzzInput file = fuzz_split(&in, 0);
    char *argv[FUZZ_MAX_ARGS + 1];
    int argc = 0;
    if (with_file)
        argv[argc++] = strdup(fuzz_file(0, file.p, file.n));
    while (in.n > 0 && argc < FUZZ_MAX_ARGS) {
        FuzzInput a = fuzz_split(&in, 0);
        /* an argument not starting with "--" would name a config file: only ours is allowed */
        char *s = malloc(a.n + 3);
        memcpy(s, "--", 2);
        memcpy(s + 2, a.p, a.n);
        s[a.n + 2] = 0;
        argv[argc++] = s;
    }
    argv[argc] = NULL;

    TrainConfig c;
    config_defaults(&c);
    Err err;
    int help = 0;
    if (config_parse_args(&c, argc, argv, cmd, &help, &err) == 0 && !help) {
        size_t len1, len2;
        char *t1 = written(&c, &len1);
        TrainConfig back;
        config_defaults(&back);
        if (config_load_file(&back, fuzz_file(1, (const uint8_t *)t1, len1), ALL_CMDS, &err) != 0) {
            fprintf(stderr, "config_write output does not read back: %s\n%s", err.msg, t1);
            abort();
        }
        char *t2 = written(&back, &len2);
        if (len1 != len2 || memcmp(t1, t2, len1) != 0) {
            fprintf(stderr, "config round trip differs:\n%s---\n%s", t1, t2);
            abort();
        }
        free(t1);
        free(t2);
    }
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return 0;
}
