/* gpt.h: GPT-2 (nanoGPT / llm.c architecture) on the arena: parameters, gradients, AdamW
 * state, activations and workspace, with forward, backward, update and an exact memory plan.
 *
 * Architecture: tied wte/LM head, learned wpe, pre-LN blocks (LayerNorm eps 1e-5), causal
 * self-attention scaled by 1/sqrt(HS), MLP 4C with GELU (tanh or erf), final LayerNorm.
 * Linear weights are (out, in): y = x W^T + b. `bias` = 0 removes every bias, LayerNorm
 * biases included (nanoGPT's LayerNorm(bias=False)). When V < Vp the padded logits take no
 * part in the softmax (llm.c's padded vocabulary).
 *
 * Memory (every byte from one Arena, each tensor named and categorised):
 *   params      `wte`, `wpe`, `h.<l>.ln_1.weight`, ... `ln_f.weight` (+ biases)
 *   grads       `grad.<param name>`
 *   optimizer   `adam.m.<name>`, `adam.v.<name>` (+ `master.<name>` on CUDA)
 *   activations a LIFO stack: forward pushes what backward reads, backward pops each tensor
 *               as soon as it is no longer needed. Names `act.h.<l>.ln_1`, `act.h.<l>.attn.att`,
 *               ... recompute=full keeps only each block's input (the residual stream:
 *               `act.encoder.out`, then `act.h.<l>.out` of the block before) and recomputes
 *               the block in backward; recompute=selective drops the LayerNorm outputs,
 *               the attention probabilities and the GELU output and recomputes them in
 *               backward. Recomputed tensors are pushed again in backward (activations:
 *               backward reads them). model/gpt.c's BLOCK_TENSORS gives each block
 *               tensor's name, shape and recompute class.
 *   workspace   what lives only inside one phase: `ws.logits` (one loss-head chunk), the
 *               activation gradients of backward (`ws.dresidual`, ...), forward temporaries
 *               that are not saved, reduction scalars.
 * The allocation sequence depends only on the config, B, T and the phase calls, never on the
 * data, so gpt_plan on a plan arena equals a host run to the byte.
 *
 * Loss head: chunked over tokens (loss_chunk rows at a time; `ws.logits` (chunk, Vp) is the
 * only logits buffer; the full (B,T,Vp) logits never exist). With for_backward the head's
 * backward is fused into gpt_forward, as llm.c does: per chunk, dlogits overwrite the
 * logits, grad.wte += dlogits^T ln_f, and dL/d(ln_f output) overwrites that chunk of
 * `act.ln_f`, which backward then reads. So the loss scale must be known at forward:
 * gpt_set_loss_scale before gpt_forward, and gpt_backward checks it gets the same scale.
 *
 * Gradients: the loss is the mean over the B*T tokens of the micro-batch; grads accumulate
 * (+=) across gpt_backward calls until gpt_zero_grad; gpt_update divides them by grad_scale.
 * On the CPU every recompute mode gives bit-identical gradients (same kernels, same order).
 *
 * Not here: model files (model_io.*), data, the training loop, CUDA kernels.
 * Conventions (tensor names, shapes, the stack, errors): docs/ARCHITECTURE.md. */
#ifndef ARENAGPT_GPT_H
#define ARENAGPT_GPT_H

#include <stddef.h>
#include <stdint.h>

#include "../alloc/arena.h"
#include "../alloc/base.h"
#include "backend.h"

/* What the training forward saves for backward; the rest is recomputed (model/gpt.c's
 * BLOCK_TENSORS gives each tensor's class). */
typedef enum GptRecompute {
    GPT_RECOMPUTE_NONE = 0,  /* saves every activation backward reads */
    GPT_RECOMPUTE_SELECTIVE, /* drops the LayerNorm outputs, attention's saved tensor, GELU */
    GPT_RECOMPUTE_FULL,      /* keeps each block's input only; backward re-runs the block */
    GPT_RECOMPUTE_COUNT
} GptRecompute;

/* Attention kinds (model/gpt.c's ATTENTION_KINDS: what each saves, where it runs). The values
 * are stable (configs map to them). */
typedef enum GptAttention {
    GPT_ATTENTION_NAIVE = 0, /* materialised probabilities (B,NH,T,T); CPU and CUDA */
    GPT_ATTENTION_CUDNN,     /* cuDNN's fused SDPA, O and an f32 log-sum-exp (B,NH,T); CUDA;
                                not yet verified on a GPU */
    GPT_ATTENTION_FLASH,     /* our fused kernels (FlashAttention-2), O and the f32 log-sum-exp
                                (B,NH,T); CPU and CUDA (HS <= GPT_FLASH_CUDA_MAX_HS) */
    GPT_ATTENTION_COUNT
} GptAttention;

typedef enum GptGelu { GPT_GELU_TANH = 0, GPT_GELU_ERF, GPT_GELU_COUNT } GptGelu;

typedef struct GptConfig {
    int64_t max_seq_len;       /* block_size: rows of wpe */
    int64_t vocab_size;        /* V: real vocabulary (targets and inputs are < V) */
    int64_t padded_vocab_size; /* Vp >= V: rows of wte */
    int64_t n_layer;
    int64_t n_head;
    int64_t channels;       /* C = n_embd */
    int bias;               /* 1: Linear and LayerNorm biases */
    GptGelu gelu;           /* tanh approximation or erf */
    GptRecompute recompute; /* what backward recomputes */
    GptAttention attention; /* which attention kernels (and what they save) */
    int64_t loss_chunk;     /* tokens per loss-head chunk; 0 = auto (gpt_loss_chunk) */
    int grad_f32; /* 1: f32 weight gradients on CUDA (grad_dtype=float32); the CPU's are f32 */
} GptConfig;

/* Parameter tensors in llm.c's file order. Per-layer kinds exist once per layer. */
typedef enum GptParamKind {
    GPT_PARAM_WTE = 0,  /* (Vp, C) */
    GPT_PARAM_WPE,      /* (maxT, C) */
    GPT_PARAM_LN1W,     /* (C) per layer */
    GPT_PARAM_LN1B,     /* (C) per layer, bias only */
    GPT_PARAM_QKVW,     /* (3C, C) per layer */
    GPT_PARAM_QKVB,     /* (3C) per layer, bias only */
    GPT_PARAM_ATTPROJW, /* (C, C) per layer */
    GPT_PARAM_ATTPROJB, /* (C) per layer, bias only */
    GPT_PARAM_LN2W,     /* (C) per layer */
    GPT_PARAM_LN2B,     /* (C) per layer, bias only */
    GPT_PARAM_FCW,      /* (4C, C) per layer */
    GPT_PARAM_FCB,      /* (4C) per layer, bias only */
    GPT_PARAM_FCPROJW,  /* (C, 4C) per layer */
    GPT_PARAM_FCPROJB,  /* (C) per layer, bias only */
    GPT_PARAM_LNFW,     /* (C) */
    GPT_PARAM_LNFB,     /* (C), bias only */
    GPT_PARAM_KIND_COUNT
} GptParamKind;

typedef struct GptParamCounts {
    int64_t total;
    int64_t non_embedding; /* total - wpe (nanoGPT's convention) */
    int64_t decay_tensors; /* 2-D tensors: weight decay applies */
    int64_t decay_count;
    int64_t no_decay_tensors;
    int64_t no_decay_count;
} GptParamCounts;

/* One parameter with its gradient and optimizer state (NULL where the layout has none). */
typedef struct GptParam {
    GptParamKind kind;
    int layer; /* -1 for wte, wpe, ln_f */
    int decay; /* 2-D: weight decay applies */
    int64_t numel;
    Tensor *param;  /* layout.param_dtype */
    Tensor *grad;   /* layout.grad_dtype */
    Tensor *m;      /* f32 */
    Tensor *v;      /* f32 */
    Tensor *master; /* f32, CUDA layout only */
} GptParam;

typedef struct Gpt {
    GptConfig config;
    GptDevice device;
    const GptLayout *layout;
    const GptBackend *backend; /* NULL in a plan arena when the build has no such device */
    Arena *arena;
    void *stream;       /* NULL on the CPU */
    int64_t B, T;       /* the largest batch shape built for */
    int64_t loss_chunk; /* resolved chunk */
    float loss_scale;   /* scale the fused head uses (gpt_set_loss_scale), 1 default */

    GptParam *params; /* n_params entries, llm.c order (kind-major, then layer) */
    int n_params;
    GptParam *by_kind[GPT_PARAM_KIND_COUNT]; /* first entry of a kind, or NULL when absent */
    Tensor *ws_backend; /* `ws.backend` (layout.backend_workspace_bytes), or NULL */

    /* forward state, kept for backward (private to gpt.c) */
    int have_forward; /* a for_backward forward is waiting for backward */
    int64_t fB, fT;   /* its shape */
    Tensor **stack;   /* activations pushed by forward, in order */
    int64_t n_stack, cap_stack;
    struct GptSaved *saved;     /* per-layer saved tensors (gpt.c) */
    struct GptTop *top;         /* encoder and ln_f tensors saved for backward (gpt.c) */
    size_t arena_used_at_build; /* used bytes before gpt_build */
} Gpt;

/* --- configuration ------------------------------------------------------------------- */
/* Checks shapes (C % NH, Vp >= V, positive sizes, attention kind on the device). */
int gpt_config_check(const GptConfig *c, GptDevice dev, Err *err);
void gpt_param_counts(const GptConfig *c, GptParamCounts *out);
/* Shape of one parameter kind (ndim 1 or 2); 0 if the kind is absent (bias-free model). */
int gpt_param_shape(const GptConfig *c, GptParamKind kind, int64_t shape[2]);
int gpt_param_is_per_layer(GptParamKind kind);
const char *gpt_param_kind_name(GptParamKind kind); /* "ln_1.weight", "wte", ... */
/* The chunk the loss head uses for this shape on dev: c->loss_chunk clamped to B*T, or the
 * automatic chunk (model/loss_chunk.h states the rule; defined in loss_chunk.c). */
int64_t gpt_loss_chunk(const GptConfig *c, GptDevice dev, int64_t B, int64_t T);

/* --- lifecycle ----------------------------------------------------------------------- */
/* Allocates params, grads, optimizer state (and ws.backend) from the arena for batches up
 * to (B, T). In a plan arena no kernel runs (Tensor.data is NULL). */
int gpt_build(Gpt *g, const GptConfig *c, GptDevice dev, Arena *arena, int64_t B, int64_t T,
              Err *err);
/* nanoGPT's init: N(0,0.02) weights and embeddings, c_proj weights N(0, 0.02/sqrt(2L)),
 * biases 0, LayerNorm weight 1 (bias 0); the stream of one Rng seeded with seed, drawn in
 * llm.c's tensor order. Optimizer state zeroed, grads zeroed. No-op in a plan arena. */
void gpt_init_weights(Gpt *g, uint64_t seed);
/* Releases all of g's tensors (activations of an unfinished forward included): arena used
 * bytes return to what they were before gpt_build. */
void gpt_free(Gpt *g);

/* Per-parameter access (model files): kind and layer (layer ignored for non-layer kinds).
 * NULL when the kind is absent. */
GptParam *gpt_param(Gpt *g, GptParamKind kind, int layer);
/* Reads/writes one parameter as host f32 (converting from/to the layout dtype). */
void gpt_param_read_f32(Gpt *g, const GptParam *p, float *dst_host /* (numel) */);
void gpt_param_write_f32(Gpt *g, GptParam *p, const float *src_host /* (numel) */);

/* --- step ---------------------------------------------------------------------------- */
void gpt_set_loss_scale(Gpt *g, float loss_scale);
/* inputs, targets: host int32 (B,T), values < V. B <= built B, T <= built T.
 * for_backward = 1: keeps the activations (and runs the fused loss-head backward); needs
 * targets. for_backward = 0: everything is freed before returning. loss_out (may be NULL)
 * gets the mean loss when targets are given. */
int gpt_forward(Gpt *g, const int32_t *inputs, const int32_t *targets, int64_t B, int64_t T,
                int for_backward, float *loss_out, Err *err);
/* logits (B,Vp) host f32 of position T-1 only (for sampling); nothing kept. */
int gpt_forward_last_logits(Gpt *g, const int32_t *inputs, int64_t B, int64_t T,
                            float *logits /* (B,Vp) */, Err *err);
int gpt_zero_grad(Gpt *g);
/* Accumulates (+=) loss_scale * d(mean loss)/d(params) into the grads; pops every
 * activation. loss_scale must equal the scale set for the forward. */
int gpt_backward(Gpt *g, float loss_scale, Err *err);
/* AdamW (decoupled decay on 2-D tensors only), grads divided by grad_scale, then clipped to
 * global norm grad_clip (0 = no clipping). grad_norm_out gets the norm before clipping (of
 * the divided grads). Bias corrections use step (1-based). When that norm is not finite
 * (inf/NaN: an fp16 overflow under loss scaling) nothing is updated: GradScaler's skipped
 * step; the caller sees the non-finite norm and lowers the scale. */
int gpt_update(Gpt *g, float lr, float beta1, float beta2, float eps, float weight_decay,
               float grad_clip, int64_t step, float grad_scale, float *grad_norm_out, Err *err);

/* nanoGPT's get_lr: linear warmup over warmup_iters, cosine down to min_lr at
 * lr_decay_iters, min_lr after; learning_rate always when decay_lr = 0. */
float gpt_get_lr(int64_t it, float learning_rate, int64_t warmup_iters, int64_t lr_decay_iters,
                 float min_lr, int decay_lr);

/* --- planning ------------------------------------------------------------------------ */
/* The whole memory plan of one training step on a new plan arena with limit_bytes (0 =
 * none): gpt_build, gpt_zero_grad, forward + backward, gpt_update, and the
 * model left built (not freed) so the arena's stats and peak tensors describe the run. The
 * caller frees the arena (arena_free). On refusal (over the limit) returns -1, err names
 * the allocation, and *arena_out still holds the arena for its report. */
int gpt_plan(const GptConfig *c, GptDevice dev, int64_t B, int64_t T, size_t limit_bytes,
             Arena **arena_out, Err *err);
/* The same with grad_accum micro-steps (the peaks do not depend on it: every micro-step
 * frees what it allocates). */
int gpt_plan_accum(const GptConfig *c, GptDevice dev, int64_t B, int64_t T, int64_t grad_accum,
                   size_t limit_bytes, Arena **arena_out, Err *err);
/* Releases g's host-side bookkeeping but not its tensors: the arena keeps them (a plan that
 * must keep describing a built model). g is unusable afterwards. */
void gpt_forget(Gpt *g);
/* Runs the same step sequence on g's own arena (plan or real); inputs/targets may be NULL
 * in a plan arena (zeros are used otherwise). Used by gpt_plan and the plan==measured test. */
int gpt_step_sequence(Gpt *g, const int32_t *inputs, const int32_t *targets, int64_t B, int64_t T,
                      int64_t grad_accum, Err *err);

/* attention=cudnn on CUDA: loads cuDNN and builds its plans for batches of (B, T). When that
 * fails (no cuDNN, no device, a graph refused, a plan wanting more workspace than planned),
 * switches c->attention to flash (naive when the head size is over the CUDA flash limit),
 * writes a one-line notice naming the reason and returns 1; else 0 (also for every other kind
 * and device, and when no CUDA backend runs: a plan). Call before planning and building. */
int gpt_attention_resolve(GptConfig *c, GptDevice dev, int64_t B, int64_t T, char *notice,
                          size_t len);

/* --- FLOPs (matmul FLOPs, 2 per multiply-add; attention counted on the full T x T) ----- */
/* Forward FLOPs per token at sequence length T (layers + attention + LM head). */
double gpt_flops_forward_per_token(const GptConfig *c, int64_t T);
/* Extra forward FLOPs per token that recompute mode `recompute` adds in backward. */
double gpt_flops_recompute_per_token(const GptConfig *c, int64_t T, GptRecompute recompute);
/* Extra FLOPs per token that the fused attention's backward spends recomputing what naive
 * attention keeps (0 for naive): flash recomputes the scores QK^T (CPU: once; CUDA: in both
 * of its passes, and dout V^T once more in the dQ pass); cudnn at least the scores (its
 * kernels are cuDNN's: the figure is FlashAttention-2's minimum, not measured). */
double gpt_flops_attention_recompute_per_token(const GptConfig *c, int64_t T, GptDevice dev);

#endif
