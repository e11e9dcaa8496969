/* main.c: the arenagpt command line: picks the subcommand, parses its config (file and
 * --key=value overrides) and hands over to the command. Config errors exit with status 2;
 * commands return their own exit codes. This is the only layer that exits. `train` under
 * mpirun starts the ranks first (train/dist.h), so that a rank whose config is refused ends
 * the whole job, naming itself. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "dist.h"

typedef struct Command {
    const char *name;
    unsigned mask;
    int (*run)(const TrainConfig *cfg);
    const char *usage;
    const char *summary;
} Command;

static const Command commands[] = {
    {"train", CONFIG_CMD_TRAIN, cmd_train, "arenagpt train [CONFIG] [--key=value ...]",
     "train a GPT-2; prints the memory plan at the start and the measured peaks at the end"},
    {"mem", CONFIG_CMD_MEM, cmd_mem,
     "arenagpt mem [CONFIG] [--compare] [--fit=12GiB] [--format=table|json|csv] [--key=value ...]",
     "plan a run's memory without running it: bytes per category and per tensor"},
    {"eval", CONFIG_CMD_EVAL, cmd_eval,
     "arenagpt eval [CONFIG] --init_from=MODEL --data=SHARD [--batch_size=B --block_size=T "
     "--eval_batches=N]",
     "deterministic mean loss over the first N*B windows of a shard"},
    {"sample", CONFIG_CMD_SAMPLE, cmd_sample,
     "arenagpt sample [CONFIG] --init_from=MODEL_OR_DIR [--prompt=TEXT --max_new_tokens=N "
     "--temperature=T --top_k=K --seed=S --num_samples=N]",
     "generate text from a model"},
    {"prepare", CONFIG_CMD_PREPARE, cmd_prepare,
     "arenagpt prepare --input=TEXT --out=DIR [--tokenizer=gpt2|char] [--val_fraction=0.1]",
     "tokenize a text file into llm.c-format train.bin/val.bin shards"},
    {"export", CONFIG_CMD_EXPORT, cmd_export,
     "arenagpt export --init_from=RUN_DIR_OR_MODEL --out=DIR [--block_size=T]",
     "write a model as Hugging Face GPT-2 (model.safetensors + config.json)"},
};
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void print_usage(FILE *f) {
    fprintf(f, "arenagpt: a GPT-2 trainer where every byte of memory is accounted for\n\n"
               "usage: arenagpt <command> [CONFIG] [--key=value ...]\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nCONFIG is a nanoGPT-style file of `key = value` lines; --key=value overrides "
               "it.\n`arenagpt <command> --help` lists the keys a command uses.\n");
}

int main(int argc, char **argv) {
    /* output appears line by line also when redirected to a file or a pipe */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CONFIG_EXIT_USAGE : 0;
    }
    const Command *cmd = NULL;
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            cmd = &commands[i];
    if (!cmd) {
        fprintf(stderr,
                "arenagpt: unknown command '%s' (expected train, mem, eval, sample, "
                "prepare or export; see arenagpt --help)\n",
                argv[1]);
        return CONFIG_EXIT_USAGE;
    }
    TrainConfig cfg;
    config_defaults(&cfg);
    int help = 0;
    Err err;
    if (dist_start(cmd->mask == CONFIG_CMD_TRAIN, &err) != 0) {
        fprintf(stderr, "arenagpt %s: %s\n", cmd->name, err.msg);
        return CONFIG_EXIT_USAGE;
    }
    if (config_parse_args(&cfg, argc - 2, argv + 2, cmd->mask, &help, &err) != 0) {
        if (dist_world()->world_size > 1)
            fprintf(stderr, "arenagpt %s (rank %d): %s\n", cmd->name, dist_world()->rank, err.msg);
        else
            fprintf(stderr, "arenagpt %s: %s\n", cmd->name, err.msg);
        return dist_end(CONFIG_EXIT_USAGE);
    }
    if (help) {
        printf("usage: %s\n%s\n\n", cmd->usage, cmd->summary);
        config_print_help(stdout, cmd->mask);
        return dist_end(0);
    }
    return dist_end(cmd->run(&cfg));
}
