/* config.h: the run configuration: nanoGPT's key names plus ours, read from a
 * nanoGPT-style config file (`key = value` lines, `#` comments, Python literals such as
 * True/False and 'quoted strings', products like `5 * 8`) and overridden by `--key=value`
 * on the command line.
 *
 * Validation is strict: unknown keys (with the nearest known key suggested), keys that the
 * command does not use, wrong types, out-of-range values, duplicate keys within one file or
 * within the command line, and sizes whose byte counts overflow. Errors name the origin
 * (file:line or the command-line argument), the key, the value and what was expected.
 * The CLI exits with status 2 on any of them (CONFIG_EXIT_USAGE).
 *
 * This module only parses and checks; it opens no data and allocates no model. */
#ifndef ARENAGPT_CONFIG_H
#define ARENAGPT_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "../alloc/base.h"
#include "../model/gpt.h"

#define CONFIG_EXIT_USAGE 2
#define CONFIG_STR_LEN 512
#define CONFIG_MAX_KEYS 96 /* >= the number of keys (checked in config_defaults) */

/* Subcommands, as a bit mask: each key lists the commands that use it. */
typedef enum ConfigCommand {
    CONFIG_CMD_TRAIN = 1 << 0,
    CONFIG_CMD_MEM = 1 << 1,
    CONFIG_CMD_EVAL = 1 << 2,
    CONFIG_CMD_SAMPLE = 1 << 3,
    CONFIG_CMD_PREPARE = 1 << 4,
    CONFIG_CMD_EXPORT = 1 << 5,
} ConfigCommand;

typedef enum ConfigDevice {
    CONFIG_DEVICE_AUTO = 0,
    CONFIG_DEVICE_CPU,
    CONFIG_DEVICE_CUDA
} ConfigDevice;
typedef enum ConfigDtype {
    CONFIG_DTYPE_FLOAT16 = 0,
    CONFIG_DTYPE_FLOAT32,
    CONFIG_DTYPE_BFLOAT16
} ConfigDtype;
/* model_dtype: the values of the model files train and export write */
typedef enum ConfigModelDtype {
    CONFIG_MODEL_DTYPE_FLOAT32 = 0, /* llm.c version 3; export: F32 safetensors */
    CONFIG_MODEL_DTYPE_BFLOAT16     /* llm.c version 5; export: BF16 safetensors */
} ConfigModelDtype;
typedef enum ConfigFormat {
    CONFIG_FORMAT_TABLE = 0,
    CONFIG_FORMAT_JSON,
    CONFIG_FORMAT_CSV
} ConfigFormat;
typedef enum ConfigTokenizer { CONFIG_TOKENIZER_GPT2 = 0, CONFIG_TOKENIZER_CHAR } ConfigTokenizer;
typedef enum ConfigDataFormat { CONFIG_DATA_LLMC = 0, CONFIG_DATA_NANOGPT } ConfigDataFormat;

typedef struct TrainConfig {
    /* model */
    int64_t n_layer;
    int64_t n_head;
    int64_t n_embd;
    int64_t block_size;
    int64_t vocab_size; /* Vp: padded vocabulary (nanoGPT's 50304) */
    int bias;
    double dropout; /* accepted for nanoGPT configs; only 0 is supported */
    GptGelu gelu;   /* the model's enums (model/gpt.h), named by GPT_*_NAMES */
    GptAttention attention;
    GptRecompute recompute;
    int64_t loss_chunk;      /* tokens per chunk of the loss head; 0 = automatic */
    int64_t zero_stage;      /* 0: AdamW state on every rank; 1: sharded across ranks (ZeRO-1) */
    int64_t world_size;      /* mem: the ranks planned for (train: the launcher's, train/dist.h) */
    int grad_reduce_overlap; /* zero_stage 0: the gradient sums run during the backward */
    /* optimisation */
    int64_t batch_size;
    int64_t gradient_accumulation_steps;
    double learning_rate;
    int64_t max_iters;
    double weight_decay;
    double beta1;
    double beta2;
    double grad_clip; /* 0 = no clipping */
    int decay_lr;
    int64_t warmup_iters;
    int64_t lr_decay_iters;
    double min_lr;
    /* evaluation, logging, checkpoints */
    int64_t eval_interval;
    int64_t eval_iters;
    int eval_only;
    int64_t log_interval;
    int always_save_checkpoint;
    int64_t checkpoint_interval; /* 0 = only at the end (and on SIGINT/SIGTERM) */
    int64_t keep_checkpoints;
    int64_t scaler_growth_interval; /* CUDA loss scaling: clean steps before the scale doubles */
    char out_dir[CONFIG_STR_LEN];
    char init_from[CONFIG_STR_LEN];  /* "scratch", "resume", or a model file / directory */
    char trace_file[CONFIG_STR_LEN]; /* Chrome trace of the arena; "" = none */
    /* run */
    int64_t seed;
    ConfigDtype dtype;
    ConfigDtype grad_dtype;       /* CUDA weight gradients (the CPU's are f32 whatever it says) */
    ConfigModelDtype model_dtype; /* the values of model.bin (train) and export's weights */
    int optimizer_offload;        /* CUDA: master, m, v in a pinned host arena, AdamW on the CPU */
    ConfigDevice device;
    size_t memory_limit; /* bytes; 0 = no limit */
    int64_t threads;     /* CPU threads; 0 = all cores */
    int compile;         /* accepted for nanoGPT configs; no effect */
    int wandb_log;       /* accepted for nanoGPT configs; no effect */
    int plots;           /* draw out_dir/loss.png at the end */
    char wandb_project[CONFIG_STR_LEN];
    char wandb_run_name[CONFIG_STR_LEN];
    /* data */
    char dataset[CONFIG_STR_LEN];  /* nanoGPT's name: data_dir defaults to data/<dataset> */
    char data_dir[CONFIG_STR_LEN]; /* holds train.bin, val.bin, tokenizer.bin */
    ConfigDataFormat data_format;
    /* eval */
    char data[CONFIG_STR_LEN]; /* one shard */
    int64_t eval_batches;
    /* sample */
    char prompt[CONFIG_STR_LEN];
    int64_t max_new_tokens;
    double temperature;
    int64_t top_k; /* 0 = no top-k */
    int64_t num_samples;
    char tokenizer_file[CONFIG_STR_LEN]; /* "" = <data_dir>/tokenizer.bin */
    /* prepare */
    char input[CONFIG_STR_LEN];
    char out[CONFIG_STR_LEN];
    ConfigTokenizer tokenizer;
    double val_fraction;
    char vocab_dir[CONFIG_STR_LEN]; /* encoder.json + vocab.bpe; "" = the set-up script's place */
    char name[CONFIG_STR_LEN];      /* sharded layout: shard name prefix ("" = pair layout) */
    char text_key[CONFIG_STR_LEN];  /* JSON Lines field holding a document's text */
    char doc_sep[CONFIG_STR_LEN];   /* plain text document separator (C escapes); "" = a file */
    int64_t shard_tokens;           /* tokens per shard */
    int64_t val_tokens;             /* tokens of the validation split; 0 = shard_tokens */
    int resume;                     /* continue an interrupted sharded prepare */
    int strict;                     /* a bad JSON line stops the run instead of being skipped */
    /* mem */
    ConfigFormat format;
    int compare;
    size_t fit;     /* bytes; 0 = not asked */
    size_t reserve; /* bytes --fit sets aside (context + libraries); unset: the gpu's estimate */
    char gpu[CONFIG_STR_LEN];          /* a key of the GPU table (model/gpu_table.h) */
    int64_t top;                       /* tensors listed in the table report */
    char html[CONFIG_STR_LEN];         /* memory page to write; "" = none (train: out_dir's) */
    char nanogpt_json[CONFIG_STR_LEN]; /* nanoGPT's memory for the page; "" = the committed one */

    /* where each key was last set from, for messages: "defaults", "file.conf:12", "--key" */
    char config_file[CONFIG_STR_LEN];
    /* which keys a file or the command line set (by key index), for values that default to
     * what the data or a model file says (vocab_size, block_size, bias, gelu, ...) */
    unsigned char key_set[CONFIG_MAX_KEYS];
} TrainConfig;

/* nanoGPT's defaults (train.py) for its keys; ours documented in config.c's key table. */
void config_defaults(TrainConfig *c);

/* 1 when a config file or the command line set key (defaults do not count). */
int config_is_set(const TrainConfig *c, const char *key);

/* Reads a config file. origin in messages is "path:line". */
int config_load_file(TrainConfig *c, const char *path, unsigned cmd, Err *err);
/* Sets one key from text. origin names where it came from (for messages). */
int config_set(TrainConfig *c, const char *key, const char *value, const char *origin, unsigned cmd,
               Err *err);
/* The arguments after the subcommand: an optional config file (first, not starting with
 * "--"), then --key=value (or --flag for a boolean true). Sets *help when --help/-h is seen.
 * Loads the file, applies the overrides (they win over the file), then config_validate. */
int config_parse_args(TrainConfig *c, int argc, char **argv, unsigned cmd, int *help, Err *err);
/* Applies the `key = value` lines of text (config_write's format, e.g. a checkpoint's stored
 * config) whose key is in the NULL-terminated list `only` and was not set by the user. */
int config_apply_text(TrainConfig *c, const char *text, const char *origin, const char *const *only,
                      Err *err);
/* Cross-key checks: n_embd % n_head, ranges, uint16 token ids, byte-count overflow. */
int config_validate(const TrainConfig *c, unsigned cmd, Err *err);

/* `--help` text for one command: every key it uses, with type, default and meaning. */
void config_print_help(FILE *f, unsigned cmd);
/* The whole config as `key = value` lines (the file format; reloadable). */
void config_write(const TrainConfig *c, FILE *f);

/* Names for the enums (as written in files). */
const char *config_device_name(ConfigDevice d);
const char *config_dtype_name(ConfigDtype d);
/* The weight gradients' dtype: grad_dtype when set (float32, or the run's 16-bit dtype);
 * unset, float16 with dtype float16 and CONFIG_BF16_GRAD_DTYPE with bfloat16. */
ConfigDtype config_grad_dtype(const TrainConfig *c);
/* grad_dtype's default with dtype = bfloat16: accumulating gradients in bf16 keeps 8
 * significant bits (docs/results/grad_accumulation.md measures the error). */
#define CONFIG_BF16_GRAD_DTYPE CONFIG_DTYPE_FLOAT32

#endif
