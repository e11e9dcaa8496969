/* init_from.h: what init_from names beyond llm.c model files: Hugging Face GPT-2 weights (a
 * .safetensors file, a model folder, a sharded index) and nanoGPT's pretrained names
 * (gpt2, gpt2-medium, gpt2-large, gpt2-xl), found in the local Hugging Face cache only
 * ($HF_HUB_CACHE, $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub;
 * models--<name>/snapshots/<revision>/), never downloaded; and loading whichever kind of
 * file run_setup resolved into a built model.
 *
 * nanoGPT's fine-tune semantics for Hugging Face weights: n_layer, n_embd and the vocabulary
 * come from the tensors, n_head, the GELU and the epsilon from config.json, bias from the
 * tensors (GPT-2 has biases; --bias=False is accepted only for all-zero biases); a shape key
 * set in the config or on the command line that contradicts the weights is refused, naming
 * both (an llm.c model file's header still overrides those keys silently, as before).
 * block_size defaults to n_positions; a smaller one crops the position table
 * (crop_block_size); a larger one is refused. The vocabulary is padded to a multiple of 64. */
#ifndef ARENAGPT_INIT_FROM_H
#define ARENAGPT_INIT_FROM_H

#include <stddef.h>

#include "../data/tokenizer.h"
#include "../model/gpt.h"
#include "run_common.h"

/* init_from -> a Hugging Face checkpoint path in path (1), or 0 when from is something else
 * (run_setup's own resolution goes on). A pretrained name missing from the cache: 1 with
 * *exit_code = CONFIG_EXIT_USAGE and err naming where it looked and the command that
 * fetches it. */
int init_from_hf_resolve(const char *from, char *path, size_t len, int *exit_code, Err *err);
/* The cache directory a pretrained name resolves to, or "" (tests, messages). */
void init_from_hf_cache_find(const char *name, char *dir, size_t len);
/* rs->model_path is a Hugging Face checkpoint: 1, and the run's shape into rs (0, or the
 * exit status with err in *rc); 0 when it is not one. */
int init_from_hf_shape(RunSetup *rs, int *rc, Err *err);
/* sample's tokenizer: rs->tokenizer_path (tokenizer_file, or the data's tokenizer.bin); when
 * that file does not exist and was not named, a Hugging Face model folder's own GPT-2
 * vocabulary (vocab.json + merges.txt beside the weights) when it has one, refused when it
 * has more tokens than the model. */
Tokenizer *init_from_tokenizer(const RunSetup *rs, Err *err);
/* Loads path (llm.c model file or Hugging Face checkpoint) into g. */
int init_from_read(Gpt *g, const char *path, Err *err);

#endif
