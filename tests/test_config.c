/* test_config.c: config files and --key=value overrides: every key round-trips through the file
 * format, overrides win, and each class of bad input (unknown key, wrong type, out of range,
 * cross-key rules, overflow, duplicates, a key the command does not use) is an error naming
 * the origin, the key and the value. The exit status 2 is checked in tests/cli_config.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../train/config.h"
#include "test_util.h"

static const char *write_file(const char *name, const char *text) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", test_dir(), name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Expects a parse failure whose message contains every given fragment. */
static void expect_error(int argc, char **argv, unsigned cmd, const char *frag1,
                         const char *frag2) {
    TrainConfig c;
    config_defaults(&c);
    int help = 0;
    Err err;
    err.msg[0] = 0;
    int rc = config_parse_args(&c, argc, argv, cmd, &help, &err);
    if (rc == 0)
        print_error("expected an error containing '%s'\n", frag1);
    assert_int_equal(rc, -1);
    if (!strstr(err.msg, frag1) || (frag2 && !strstr(err.msg, frag2)))
        print_error("message was: %s\n", err.msg);
    assert_non_null(strstr(err.msg, frag1));
    if (frag2)
        assert_non_null(strstr(err.msg, frag2));
}

static void test_config_nanogpt_file_parses(void **state) {
    (void)state;
    const char *path =
        write_file("char.conf", "# nanoGPT's shakespeare_char config, as written there\n"
                                "out_dir = 'out-shakespeare-char'\n"
                                "eval_interval = 250 # keep frequent because we'll overfit\n"
                                "eval_iters = 200\n"
                                "log_interval = 10\n"
                                "always_save_checkpoint = False\n"
                                "wandb_log = False # override via command line if you like\n"
                                "wandb_project = 'shakespeare-char'\n"
                                "wandb_run_name = 'mini-gpt'\n"
                                "dataset = 'shakespeare_char'\n"
                                "gradient_accumulation_steps = 1\n"
                                "batch_size = 64\n"
                                "block_size = 256 # context of up to 256 previous characters\n"
                                "n_layer = 6\nn_head = 6\nn_embd = 384\ndropout = 0.0\n"
                                "learning_rate = 1e-3 # with baby networks can afford higher\n"
                                "max_iters = 5000\nlr_decay_iters = 5000\nmin_lr = 1e-4\n"
                                "beta2 = 0.99\nwarmup_iters = 100\n"
                                "gradient_accumulation_steps_x = 5 * 8\n");
    /* the last line is a typo on purpose: first check everything before it parses */
    TrainConfig c;
    config_defaults(&c);
    Err err;
    assert_int_equal(config_load_file(&c, path, CONFIG_CMD_TRAIN, &err), -1);
    assert_non_null(strstr(err.msg, "char.conf:24"));
    assert_non_null(strstr(err.msg, "unknown key 'gradient_accumulation_steps_x'"));
    assert_non_null(strstr(err.msg, "did you mean 'gradient_accumulation_steps'"));
    assert_int_equal(c.batch_size, 64);
    assert_int_equal(c.block_size, 256);
    assert_true(c.learning_rate == 1e-3);
    assert_int_equal(c.always_save_checkpoint, 0);
    assert_string_equal(c.out_dir, "out-shakespeare-char");
    assert_string_equal(c.dataset, "shakespeare_char");

    path = write_file("prod.conf", "gradient_accumulation_steps = 5 * 8\nmin_lr = 6e-4 * 0.1\n");
    config_defaults(&c);
    assert_int_equal(config_load_file(&c, path, CONFIG_CMD_TRAIN, &err), 0);
    assert_int_equal(c.gradient_accumulation_steps, 40);
    assert_true(c.min_lr > 5.99e-5 && c.min_lr < 6.01e-5);
}

static void test_config_every_key_round_trips(void **state) {
    (void)state;
    /* change every kind of value from its default, write, read back: identical struct */
    TrainConfig a, b;
    config_defaults(&a);
    a.n_layer = 3;
    a.n_head = 5;
    a.n_embd = 35;
    a.bias = 1;
    a.gelu = GPT_GELU_ERF;
    a.recompute = GPT_RECOMPUTE_FULL;
    a.attention = GPT_ATTENTION_CUDNN;
    a.learning_rate = 3.25e-4;
    a.memory_limit = (size_t)12 << 30;
    a.fit = 123456789;
    a.device = CONFIG_DEVICE_CPU;
    a.dtype = CONFIG_DTYPE_FLOAT32;
    a.grad_dtype = CONFIG_DTYPE_FLOAT32;
    a.format = CONFIG_FORMAT_JSON;
    a.tokenizer = CONFIG_TOKENIZER_CHAR;
    a.data_format = CONFIG_DATA_NANOGPT;
    snprintf(a.prompt, sizeof a.prompt, "O Romeo, it's\n\t'quoted' \\ here");
    snprintf(a.out_dir, sizeof a.out_dir, "out dir/with # hash");
    char path[sizeof a.config_file];
    snprintf(path, sizeof path, "%.400s/all.conf", test_dir());
    FILE *f = fopen(path, "w");
    config_write(&a, f);
    fclose(f);
    config_defaults(&b);
    Err err;
    if (config_load_file(&b, path, CONFIG_CMD_TRAIN, &err) != 0)
        print_error("%s\n", err.msg);
    snprintf(a.config_file, sizeof a.config_file, "%s", path);
    /* the file sets every key: each is marked as set by the user (a's were set directly) */
    assert_true(config_is_set(&b, "n_layer") && config_is_set(&b, "vocab_size") &&
                config_is_set(&b, "gpu"));
    assert_false(config_is_set(&a, "n_layer"));
    memcpy(a.key_set, b.key_set, sizeof a.key_set);
    assert_memory_equal(&a, &b, sizeof a);
}

static void test_config_overrides_win(void **state) {
    (void)state;
    const char *path = write_file("base.conf", "batch_size = 8\nn_layer = 2\nbias = True\n");
    char *argv[] = {(char *)path, "--batch_size=3", "--bias=False", "--compare"};
    TrainConfig c;
    config_defaults(&c);
    int help = 0;
    Err err;
    assert_int_equal(config_parse_args(&c, 4, argv, CONFIG_CMD_MEM, &help, &err), 0);
    assert_int_equal(c.batch_size, 3);
    assert_int_equal(c.n_layer, 2);
    assert_int_equal(c.bias, 0);
    assert_int_equal(c.compare, 1);
    assert_int_equal(help, 0);
    char *hargv[] = {"--batch_size=3", "--help"};
    assert_int_equal(config_parse_args(&c, 2, hargv, CONFIG_CMD_MEM, &help, &err), 0);
    assert_int_equal(help, 1);
}

static void test_config_bad_values(void **state) {
    (void)state;
    char *a1[] = {"--n_embed=384"};
    expect_error(1, a1, CONFIG_CMD_TRAIN, "unknown key 'n_embed'", "did you mean 'n_embd'");
    char *a2[] = {"--batch_size=many"};
    expect_error(1, a2, CONFIG_CMD_TRAIN, "batch_size = 'many'", "expected an integer");
    char *a3[] = {"--batch_size=2.5"};
    expect_error(1, a3, CONFIG_CMD_TRAIN, "'2.5'", "expected an integer");
    char *a4[] = {"--n_layer=0"};
    expect_error(1, a4, CONFIG_CMD_TRAIN, "n_layer = 0 is out of range", "1..1024");
    char *a5[] = {"--vocab_size=70000"};
    expect_error(1, a5, CONFIG_CMD_TRAIN, "vocab_size = 70000 is out of range", "65536");
    char *a6[] = {"--n_embd=100", "--n_head=3"};
    expect_error(2, a6, CONFIG_CMD_TRAIN, "n_embd = 100 is not divisible by n_head = 3", NULL);
    char *a7[] = {"--bias=maybe"};
    expect_error(1, a7, CONFIG_CMD_TRAIN, "bias = 'maybe'", "True or False");
    char *a8[] = {"--recompute=some"};
    expect_error(1, a8, CONFIG_CMD_TRAIN, "recompute = 'some'", "none, selective, full");
    char *a9[] = {"--dtype=bfloat16", "--grad_dtype=float16"};
    expect_error(2, a9, CONFIG_CMD_TRAIN, "grad_dtype = float16 with dtype = bfloat16",
                 "(bfloat16) or float32");
    char *a9c[] = {"--dtype=float16", "--grad_dtype=bfloat16"};
    expect_error(2, a9c, CONFIG_CMD_MEM, "grad_dtype = bfloat16 with dtype = float16",
                 "(float16) or float32");
    char *a9b[] = {"--grad_dtype=float64"};
    expect_error(1, a9b, CONFIG_CMD_TRAIN, "grad_dtype = 'float64'", "float16, float32, bfloat16");
    char *a10[] = {"--memory_limit=12XB"};
    expect_error(1, a10, CONFIG_CMD_TRAIN, "memory_limit", "'12XB'");
    char *a11[] = {"--batch_size=4", "--batch_size=8"};
    expect_error(2, a11, CONFIG_CMD_TRAIN, "duplicate key 'batch_size'", NULL);
    char *a12[] = {"--prompt=hi"};
    expect_error(1, a12, CONFIG_CMD_TRAIN, "'prompt' is not used by 'train'", "sample");
    char *a13[] = {"--dropout=0.1"};
    expect_error(1, a13, CONFIG_CMD_TRAIN, "dropout = 0.1 is not supported", NULL);
    char *a14[] = {"--batch_size=16777216", "--block_size=1048576", "--n_head=1024",
                   "--n_embd=65536"};
    expect_error(4, a14, CONFIG_CMD_MEM, "overflow", NULL);
    char *a15[] = {"--batch_size=16777216", "--block_size=1024", "--n_head=1", "--n_embd=8",
                   "--n_layer=1"};
    expect_error(5, a15, CONFIG_CMD_MEM, "exceeds 2147483647", NULL);
    char *a16[] = {"--warmup_iters=100", "--lr_decay_iters=100"};
    expect_error(2, a16, CONFIG_CMD_TRAIN, "lr_decay_iters = 100 must be greater", NULL);
    char *a17[] = {"batch_size=4"};
    expect_error(1, a17, CONFIG_CMD_TRAIN, "cannot open config file 'batch_size=4'", NULL);
    char *a18[] = {"--beta2=1.5"};
    expect_error(1, a18, CONFIG_CMD_TRAIN, "beta2 = 1.5", NULL);
    char *a19[] = {"--n_layer"};
    expect_error(1, a19, CONFIG_CMD_TRAIN, "expected --n_layer=VALUE", NULL);
    char *a20[] = {"--val_fraction=1.0"};
    expect_error(1, a20, CONFIG_CMD_PREPARE, "val_fraction = 1", NULL);
}

/* grad_dtype unset follows dtype (bfloat16: CONFIG_BF16_GRAD_DTYPE); set, it wins */
static void test_config_grad_dtype(void **state) {
    (void)state;
    const struct {
        const char *dtype, *grad;
        ConfigDtype want;
    } cases[] = {
        {"float16", NULL, CONFIG_DTYPE_FLOAT16},
        {"float16", "float32", CONFIG_DTYPE_FLOAT32},
        {"bfloat16", NULL, CONFIG_BF16_GRAD_DTYPE},
        {"bfloat16", "bfloat16", CONFIG_DTYPE_BFLOAT16},
        {"bfloat16", "float32", CONFIG_DTYPE_FLOAT32},
        {"float32", NULL, CONFIG_DTYPE_FLOAT32},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TrainConfig c;
        config_defaults(&c);
        char a0[64], a1[64];
        snprintf(a0, sizeof a0, "--dtype=%s", cases[i].dtype);
        snprintf(a1, sizeof a1, "--grad_dtype=%s", cases[i].grad ? cases[i].grad : "");
        char *argv[] = {a0, a1};
        int help = 0;
        Err err;
        assert_int_equal(
            config_parse_args(&c, cases[i].grad ? 2 : 1, argv, CONFIG_CMD_TRAIN, &help, &err), 0);
        assert_int_equal(config_grad_dtype(&c), cases[i].want);
    }
}

static void test_config_bad_files(void **state) {
    (void)state;
    const char *dup = write_file("dup.conf", "batch_size = 4\n\n# again\nbatch_size = 8\n");
    char *a1[] = {(char *)dup};
    expect_error(1, a1, CONFIG_CMD_TRAIN, "dup.conf:4: duplicate key 'batch_size'",
                 "first set on line 1");
    const char *noeq = write_file("noeq.conf", "n_layer 6\n");
    char *a2[] = {(char *)noeq};
    expect_error(1, a2, CONFIG_CMD_TRAIN, "noeq.conf:1: expected 'key = value'", NULL);
    const char *badrange = write_file("range.conf", "n_layer = 6\nn_head = -2\n");
    char *a3[] = {(char *)badrange};
    expect_error(1, a3, CONFIG_CMD_TRAIN, "range.conf:2: n_head = -2 is out of range", NULL);
    const char *expr = write_file("expr.conf", "wandb_run_name = 'ft-' + str(time.time())\n");
    char *a4[] = {(char *)expr, "--max_iters=1"};
    /* a Python expression is not a value we evaluate: it is kept as a bare string, so this
     * harmless key parses; an expression for a numeric key is an error */
    TrainConfig c;
    config_defaults(&c);
    int help;
    Err err;
    assert_int_equal(config_parse_args(&c, 2, a4, CONFIG_CMD_TRAIN, &help, &err), 0);
    const char *nexpr = write_file("nexpr.conf", "max_iters = int(5e3)\n");
    char *a5[] = {(char *)nexpr};
    expect_error(1, a5, CONFIG_CMD_TRAIN, "nexpr.conf:1: max_iters = 'int(5e3)'",
                 "expected an integer");
    /* keys of other commands are fine in a shared file (one file serves train, eval, sample) */
    const char *shared = write_file("shared.conf", "prompt = 'ROMEO:'\nn_layer = 4\n");
    char *a6[] = {(char *)shared};
    config_defaults(&c);
    assert_int_equal(config_parse_args(&c, 1, a6, CONFIG_CMD_TRAIN, &help, &err), 0);
    assert_string_equal(c.prompt, "ROMEO:");
}

static void test_config_committed_configs(void **state) {
    (void)state;
    const char *names[] = {"small_4070.conf", "gpt2_124m.conf", "tiny.conf",
                           "shakespeare_char.conf"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/configs/%s", test_root(), names[i]);
        TrainConfig c;
        config_defaults(&c);
        char *argv[] = {path};
        int help;
        Err err;
        if (config_parse_args(&c, 1, argv, CONFIG_CMD_TRAIN, &help, &err) != 0)
            print_error("%s\n", err.msg);
        assert_int_equal(config_parse_args(&c, 1, argv, CONFIG_CMD_TRAIN, &help, &err), 0);
        if (strcmp(names[i], "small_4070.conf") == 0) {
            /* the model of the RTX 4070 report */
            assert_int_equal(c.n_layer, 6);
            assert_int_equal(c.n_head, 6);
            assert_int_equal(c.n_embd, 384);
            assert_int_equal(c.block_size, 512);
            assert_int_equal(c.batch_size, 16);
            assert_int_equal(c.gradient_accumulation_steps, 4);
            assert_int_equal(c.vocab_size, 50304);
            assert_int_equal(c.bias, 0);
            assert_int_equal(c.dtype, CONFIG_DTYPE_FLOAT16);
            assert_int_equal(c.eval_iters, 200);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_nanogpt_file_parses),
        cmocka_unit_test(test_config_every_key_round_trips),
        cmocka_unit_test(test_config_overrides_win),
        cmocka_unit_test(test_config_bad_values),
        cmocka_unit_test(test_config_grad_dtype),
        cmocka_unit_test(test_config_bad_files),
        cmocka_unit_test(test_config_committed_configs),
    };
    return cmocka_run_group_tests(tests, test_dir_setup, test_dir_teardown);
}
