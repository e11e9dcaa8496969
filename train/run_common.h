/* run_common.h: what the train, mem, eval and sample commands share: one way to set up a run
 * (run_setup: config + data + model file -> the run's shape and device), the device choice,
 * the plan of a training step, and small helpers (time, directories, thousands separators).
 *
 * The run's shape, resolved by run_setup in this order:
 *   - init_from: "scratch" and "resume" load no model file (for eval and sample, "resume"
 *     is the run directory out_dir, as in nanoGPT's sample.py); a directory stands for its
 *     model.bin, and its newest state_*.bin's stored config supplies bias, gelu, block_size
 *     and the data (data_dir, dataset, data_format) that the user did not set; our training
 *     states and PyTorch zip checkpoints are refused with what to do. Hugging Face weights
 *     (a .safetensors file, a model folder, a sharded index) and nanoGPT's names gpt2,
 *     gpt2-medium, gpt2-large, gpt2-xl (the local Hugging Face cache) are init_from.c's: the
 *     shape, bias and GELU come from them (init_from.h). mem plans the model it names.
 *   - the model file's header gives n_layer, n_head, n_embd and the vocabulary; block_size
 *     defaults to its maxT.
 *   - without a model file, vocab_size unset means the data's: the size of the dataset's
 *     tokenizer.bin (nanoGPT's meta.pkl), else 50304. A vocabulary smaller than the data's
 *     tokenizer is refused.
 *   - the device (run_device) and the layout it implies. */
#ifndef ARENAGPT_RUN_COMMON_H
#define ARENAGPT_RUN_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../model/gpt.h"
#include "config.h"

#define RUN_DEFAULT_VOCAB 50304 /* nanoGPT's padded GPT-2 vocabulary, without a dataset */

typedef struct RunSetup {
    TrainConfig cfg; /* the config with what the data and the model file say filled in */
    GptConfig model; /* the run's shape */
    GptDevice dev;
    int auto_cpu;                            /* device = auto found no GPU: runs on the CPU */
    char data_dir[CONFIG_STR_LEN + 16];      /* where train.bin, val.bin, tokenizer.bin are */
    char model_path[2 * CONFIG_STR_LEN];     /* llm.c model file to load; "" = none */
    char tokenizer_path[2 * CONFIG_STR_LEN]; /* the data's tokenizer.bin; "" = none found */
    char vocab_note[3 * CONFIG_STR_LEN];     /* where vocab_size came from; "" = the config */
} RunSetup;

/* Resolves cfg for command cmd (CONFIG_CMD_*) into rs. Returns 0, or the exit status
 * (CONFIG_EXIT_USAGE for what the user must change, 1 for an unreadable file) with err set.
 * train/eval/sample with attention=cudnn where cuDNN cannot run it (gpt_attention_resolve):
 * rs->model.attention becomes flash and a one-line notice naming the reason goes to stderr
 * ("arenagpt train: attention=cudnn is not available (...): using attention=flash"). */
int run_setup(const TrainConfig *cfg, unsigned cmd, RunSetup *rs, Err *err);

/* GptConfig from the run config (nanoGPT's convention: V = Vp = vocab_size). */
void run_gpt_config(const TrainConfig *cfg, GptConfig *out);
/* The device and so the layout:
 *   cpu            always float32 (dtype concerns the GPU).
 *   cuda           the float16 layout; dtype = float32 is refused (no float32 CUDA backend).
 *                  Without a GPU (or CUDA in the build) refused, unless plan_only (mem).
 *   auto           float16: cuda when a GPU is present, else cpu; mem (plan_only) plans the
 *                  cuda layout, the product's target. float32: cpu, the float32 layout.
 * plan_only never touches CUDA (no context, no library handles). */
int run_device(const TrainConfig *cfg, int plan_only, GptDevice *out, Err *err);
/* data_dir, or datasets/<dataset> when empty. */
void run_data_dir(const TrainConfig *cfg, char *buf, size_t len);
/* 30135168 -> "30,135,168" */
char *run_commas(int64_t v, char *buf, size_t len);
/* Prints the parameter counts block (total, non-embedding, decay groups). */
void run_print_params(const GptConfig *c);
/* The arena a command runs in: planned first (gpt_plan of args), then reserved exactly as
 * large as the plan's high-water mark on rs's device, with the config's memory_limit. */
int run_arena_open(const RunSetup *rs, const GptPlanArgs *args, Arena **out, Err *err);
/* The model of rs->model_path ready to run args's phase: the arena (run_arena_open; armed by
 * the test hooks' environment), the build gpt_plan makes for args (inference for eval and
 * sample), the weights read (init_from_read). On failure nothing is left allocated. */
int run_model_open(const RunSetup *rs, const GptPlanArgs *args, Gpt *g, Arena **out, Err *err);
/* One line: what (e.g. "eval"), then the arena's peak bytes per category and its high-water. */
void run_print_arena_line(FILE *f, const char *what, const Arena *a);
/* Sets OpenMP/BLAS threads from cfg->threads. */
void run_threads(const TrainConfig *cfg);
/* Monotonic seconds. */
double run_now_s(void);
/* mkdir -p; -1 with err naming the path on failure. */
int run_mkdir_p(const char *path, Err *err);

/* The dtype a run computes in: "float32" on the CPU, "float16" or "bfloat16" on CUDA. */
const char *run_dtype_name(GptDevice dev, const GptConfig *c);

#endif
