/* hf_gpt2.h: Hugging Face GPT-2 checkpoints (safetensors + config.json) mapped onto our
 * parameters, in and out.
 *
 * Where: a .safetensors file (a config.json beside it is read when present), or a folder
 * holding config.json and model.safetensors, or a sharded model.safetensors.index.json with
 * its model-0000N-of-0000M.safetensors.
 *
 * Names: GPT2LMHeadModel's (transformer.wte.weight, ..., lm_head.weight) or GPT2Model's
 * (wte.weight, h.0.ln_1.weight, ...). Per layer: ln_1, attn.c_attn, attn.c_proj, ln_2,
 * mlp.c_fc, mlp.c_proj (weight and bias); then wte, wpe, ln_f. The four c_* weights are
 * Conv1D, stored (IC, OC): they are transposed to our Linear layout (OC, IC) on the way in
 * and back on the way out. The attn.bias / attn.masked_bias buffers (the causal mask) are
 * skipped. lm_head.weight, when present, must equal wte.weight (the head is tied); any other
 * name is refused. The vocabulary (wte's rows, 50257 for GPT-2) is padded with zero rows to
 * a multiple of 64 (50304); wpe rows past the model's block_size are cropped (nanoGPT's
 * crop_block_size). F32, F16 and BF16 tensors are read; NaN or infinite values are refused.
 *
 * config.json: n_layer, n_head, n_embd, n_positions and vocab_size must agree with the
 * tensors; layer_norm_epsilon must be 1e-5 (the only LayerNorm epsilon here);
 * activation_function gelu_new (or gelu_pytorch_tanh) is our tanh GELU, gelu is erf.
 *
 * Writing (hf_gpt2_export): DIR/model.safetensors with GPT2LMHeadModel's state-dict names
 * (the transformer. prefix; lm_head.weight left out, tied, as save_pretrained does), every
 * tensor F32 (or BF16, rounded to nearest even from the f32 weights: hf_gpt2_export_as), wte
 * with V rows (the padding dropped), wpe with block_size rows, zero biases for a bias-free
 * model; DIR/config.json (model_type gpt2, its torch_dtype float32 or bfloat16). Both written
 * atomically. */
#ifndef ARENAGPT_HF_GPT2_H
#define ARENAGPT_HF_GPT2_H

#include <stdint.h>

#include "../alloc/base.h"
#include "gpt.h"

#define HF_GPT2_VOCAB_MULTIPLE 64 /* nanoGPT's padding: 50257 -> 50304 */

typedef struct HfGpt2Info {
    char weights_path[4096]; /* the .safetensors file, or the index of a sharded one */
    char config_path[4096];  /* config.json; "" when there is none */
    int sharded;
    int64_t n_layer, n_head, n_embd, n_positions, vocab_size; /* n_head 0: not known */
    int bias;                                                 /* the file holds the biases */
    GptGelu gelu;
    int gelu_known; /* 0: no config.json said (GPT-2's tanh assumed) */
} HfGpt2Info;

/* Whether path is a safetensors file or a Hugging Face model folder: 1 (info's paths set),
 * 0 (something else, e.g. an llm.c model file or a train out_dir), -1 with err (a folder
 * with config.json but no weights). */
int hf_gpt2_locate(const char *path, HfGpt2Info *info, Err *err);
/* locate, then the shape from the tensors and config.json (checked against each other). */
int hf_gpt2_probe(const char *path, HfGpt2Info *info, Err *err);
/* Vp for a vocabulary of V: V rounded up to HF_GPT2_VOCAB_MULTIPLE. */
int64_t hf_gpt2_padded_vocab(int64_t V);
/* Loads the probed checkpoint into g (built with its n_layer, n_head, n_embd, V = vocab_size,
 * and max_seq_len <= n_positions, else refused; a bias-free g takes only all-zero biases). */
int hf_gpt2_load(Gpt *g, const HfGpt2Info *info, Err *err);
/* Writes g's weights as DIR/model.safetensors + DIR/config.json (DIR must exist): F32, or
 * BF16 when bf16 is 1. */
int hf_gpt2_export_as(Gpt *g, const char *dir, int bf16, Err *err);
/* hf_gpt2_export_as in F32. */
int hf_gpt2_export(Gpt *g, const char *dir, Err *err);

#endif
