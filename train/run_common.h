/* run_common.h: what the train, mem, eval and sample commands share: the model config from
 * the run config, the device choice, the data directory, thousands separators. */
#ifndef ARENAGPT_RUN_COMMON_H
#define ARENAGPT_RUN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "../model/gpt.h"
#include "config.h"

/* GptAttention of the config's attention key. */
GptAttention run_gpt_attention(ConfigAttention a);
/* GptConfig from the run config (nanoGPT's convention: V = Vp = vocab_size). */
void run_gpt_config(const TrainConfig *cfg, GptConfig *out);
/* device=auto: cuda when this build has the CUDA backend and a GPU is present, else cpu.
 * device=cuda without either: -1 with err (for train/eval/sample; mem plans it anyway when
 * plan_only is set, since the layout needs no GPU). */
int run_device(const TrainConfig *cfg, int plan_only, GptDevice *out, Err *err);
/* attention=cudnn on a CUDA run: when cuDNN cannot run it, switches c to flash and prints the
 * one-line notice naming the reason on stderr ("arenagpt CMD: attention=cudnn is not
 * available (...): using attention=flash"). Call after gpt_config_check, before planning. */
void run_attention_fallback(const char *cmd, GptConfig *c, GptDevice dev, int64_t B, int64_t T);
/* data_dir, or datasets/<dataset> when empty. */
void run_data_dir(const TrainConfig *cfg, char *buf, size_t len);
/* 30135168 -> "30,135,168" */
char *run_commas(int64_t v, char *buf, size_t len);
/* Prints the parameter counts block (total, non-embedding, decay groups). */
void run_print_params(const GptConfig *c);
/* The plan of a training run on a new plan arena: gpt_build, one evaluation forward (what
 * estimate_loss allocates) and one optimizer step of grad_accum micro-steps, model left built.
 * train prints it and sizes its reservation from it; mem reports it. trace: record the
 * arena's event trace from the start. Returns -1 with err when
 * limit_bytes refuses an allocation (*arena_out still holds the arena for its report). */
int run_plan(const GptConfig *c, GptDevice dev, int64_t B, int64_t T, int64_t grad_accum,
             size_t limit_bytes, int trace, Arena **arena_out, Err *err);
/* Sets OpenMP/BLAS threads from cfg->threads. */
void run_threads(const TrainConfig *cfg);

#endif
