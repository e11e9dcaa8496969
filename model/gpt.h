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
 *   optimizer   `adam.m.<name>`, `adam.v.<name>` (+ `master.<name>` on CUDA); with
 *               optimizer_offload they live in a second, host arena (model/offload.c)
 *   activations a LIFO stack: forward pushes what backward reads, backward pops each tensor
 *               as soon as it is no longer needed. Names `act.h.<l>.ln_1`, `act.h.<l>.attn.att`,
 *               ... recompute=full keeps only each block's input (the residual stream:
 *               `act.encoder.out`, then `act.h.<l>.out` of the block before) and recomputes
 *               the block in backward; recompute=selective drops the LayerNorm outputs,
 *               the attention probabilities and the GELU output and recomputes them in
 *               backward. Recomputed tensors are pushed again in backward (activations:
 *               backward reads them). model/block.c's BLOCK_TENSORS gives each block
 *               tensor's name, shape and recompute class.
 *   workspace   what lives only inside one phase: `ws.logits` (one loss-head chunk), the
 *               activation gradients of backward (`ws.dresidual`, ...), forward temporaries
 *               that are not saved, reduction scalars.
 * The allocation sequence depends only on the config, B, T and the phase calls, never on the
 * data, so gpt_plan (the same code on a plan arena) equals a run to the byte.
 *
 * Loss head: chunked over tokens (loss_chunk rows at a time; `ws.logits` (chunk, Vp) is the
 * only logits buffer; the full (B,T,Vp) logits never exist). With for_backward the head's
 * backward is fused into gpt_forward, as llm.c does: per chunk, dlogits overwrite the
 * logits, grad.wte += dlogits^T ln_f, and dL/d(ln_f output) overwrites that chunk of
 * `act.ln_f`, which backward then reads. So the loss scale is set before the forward
 * (gpt_set_loss_scale) and the backward uses the same one.
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

/* What the training forward saves for backward; the rest is recomputed (model/block.c's
 * BLOCK_TENSORS gives each tensor's class). */
typedef enum GptRecompute {
    GPT_RECOMPUTE_NONE = 0,  /* saves every activation backward reads */
    GPT_RECOMPUTE_SELECTIVE, /* drops the LayerNorm outputs, attention's saved tensor, GELU */
    GPT_RECOMPUTE_FULL,      /* keeps each block's input only; backward re-runs the block */
    GPT_RECOMPUTE_COUNT
} GptRecompute;

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
    int bf16;       /* 1: CUDA's 16-bit params, grads, activations are bfloat16, else float16 */
    int grad_f32;   /* 1: f32 weight gradients on CUDA (grad_dtype=float32); the CPU's are f32 */
    int world_size; /* data-parallel ranks (model/dist.h); 0 or 1: one */
    int zero_stage; /* 0: AdamW state on every rank; 1: sharded across ranks (ZeRO-1) */
    int optimizer_offload; /* 1: master, m, v in a host arena, AdamW on the CPU (CUDA layout;
                              model/offload.c) */
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
    const GptBackend *backend; /* the device's kernels; the plan backend in a plan arena */
    Arena *arena;
    /* optimizer_offload: the host arena holding master, m, v (else NULL), and the host side's
     * ops (offload.c: the real ones, or a plan's) */
    Arena *host_arena;
    const struct OffloadOps *offload;
    void *stream;       /* NULL on the CPU */
    int64_t B, T;       /* the largest batch shape built for */
    int64_t loss_chunk; /* resolved chunk */
    float loss_scale;   /* scale the fused head uses (gpt_set_loss_scale), 1 default */

    GptParam *params; /* n_params entries, llm.c order (kind-major, then layer) */
    int n_params;
    GptParam *by_kind[GPT_PARAM_KIND_COUNT]; /* first entry of a kind, or NULL when absent */
    Tensor *ws_backend; /* `ws.backend` (layout.backend_workspace_bytes), or NULL */

    int inference; /* built by gpt_build_inference: no grads, no optimizer state */

    /* data parallel (model/dist.h): the collectives (the plan's in a plan arena) and, under
     * ZeRO-1, this rank's shard of the optimizer state (f32, gpt_dist_shard_numel each) */
    const struct GptComm *comm;
    Tensor *zero_master, *zero_m, *zero_v; /* NULL unless sharded (zero_master: CUDA layout) */
    float *zero_gathered; /* rank 0: every rank's m, v (and master), host (dist_optimizer_gather) */
    int reduce_in_backward; /* gpt_reduce_in_next_backward: the next backward starts the sums */
    int reduce_started;     /* gradients whose sum was started since gpt_zero_grad */
    int reduce_waiting;     /* some of them not waited for yet (gpt_grads_wait) */

    /* forward state, kept for backward (private to model/; the activations themselves are the
     * arena's activation stack) */
    int have_forward;       /* a for_backward forward is waiting for backward */
    int64_t fB, fT;         /* its shape */
    struct GptSaved *saved; /* per-layer saved tensors (gpt_internal.h) */
    struct GptTop *top;     /* encoder and ln_f tensors saved for backward (gpt_internal.h) */
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
 * to (B, T), zeroed. A plan arena gets the plan backend (gpt_backend_plan: no kernel runs,
 * Tensor.data is NULL); any other arena the device's kernels, refused when this build or
 * machine has none or lacks the attention kind's kernels. */
int gpt_build(Gpt *g, const GptConfig *c, GptDevice dev, Arena *arena, int64_t B, int64_t T,
              Err *err);
/* The same for inference (eval, sample): parameters and ws.backend only, no gradients and no
 * optimizer state; training calls (for_backward forwards, backward, update) are refused. */
int gpt_build_inference(Gpt *g, const GptConfig *c, GptDevice dev, Arena *arena, int64_t B,
                        int64_t T, Err *err);
/* nanoGPT's init: N(0,0.02) weights and embeddings, c_proj weights N(0, 0.02/sqrt(2L)),
 * biases 0, LayerNorm weight 1 (bias 0); the stream of one Rng seeded with seed, drawn in
 * llm.c's tensor order. Optimizer state zeroed, grads zeroed. */
void gpt_init_weights(Gpt *g, uint64_t seed);
/* Releases all of g's tensors (activations of an unfinished forward included): arena used
 * bytes return to what they were before gpt_build. */
void gpt_free(Gpt *g);

/* --- optimizer_offload (model/offload.c) ------------------------------------------------ */
/* gpt_build for c->optimizer_offload (CUDA layout): the f32 master weights, m and v come from
 * host_arena (the same names and category: optimizer), everything else from arena. Both arenas
 * are plan arenas, or neither. gpt_build refuses an offload config (it has no host arena). */
int gpt_build_offload(Gpt *g, const GptConfig *c, GptDevice dev, Arena *arena, Arena *host_arena,
                      int64_t B, int64_t T, Err *err);
/* Whether a tensor of g lives in the host arena (the optimizer state under offload). */
int gpt_tensor_on_host(const Gpt *g, const Tensor *t);
/* A persistent tensor's bytes (t->nbytes) to and from host memory, wherever it lives
 * (checkpoints, model files: the device's copies, or plain copies from the host arena). */
void gpt_tensor_read(Gpt *g, const Tensor *t, void *dst_host);
void gpt_tensor_write(Gpt *g, Tensor *t, const void *src_host);

/* Per-parameter access (model files): kind and layer (layer ignored for non-layer kinds).
 * NULL when the kind is absent. */
GptParam *gpt_param(Gpt *g, GptParamKind kind, int layer);
/* Reads/writes one parameter as host f32 (converting from/to the layout dtype). */
void gpt_param_read_f32(Gpt *g, const GptParam *p, float *dst_host /* (numel) */);
void gpt_param_write_f32(Gpt *g, GptParam *p, const float *src_host /* (numel) */);

/* --- step ---------------------------------------------------------------------------- */
/* The loss scale of the next training forward and its backward (the fused head's backward
 * runs in the forward); 1 by default. */
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
/* Accumulates (+=) loss_scale * d(mean loss)/d(params) into the grads, with the scale of the
 * forward (gpt_set_loss_scale); pops every activation. */
int gpt_backward(Gpt *g, Err *err);
/* AdamW (decoupled decay on 2-D tensors only), grads divided by grad_scale, then clipped to
 * global norm grad_clip (0 = no clipping). grad_norm_out gets the norm before clipping (of
 * the divided grads). Bias corrections use step (1-based). When that norm is not finite
 * (inf/NaN: an fp16 overflow under loss scaling) nothing is updated: GradScaler's skipped
 * step; the caller sees the non-finite norm and lowers the scale. With world_size > 1 the
 * grads are first summed over the ranks and divided by world_size * grad_scale (their mean),
 * and under zero_stage 1 each rank updates its shard (model/dist.h). */
int gpt_update(Gpt *g, float lr, float beta1, float beta2, float eps, float weight_decay,
               float grad_clip, int64_t step, float grad_scale, float *grad_norm_out, Err *err);
/* Data parallel at zero_stage 0 (model/dist.h): the next gpt_backward is the last
 * micro-step's, and starts each layer's gradient sum over the ranks as soon as it has finished
 * the layer, so the communication overlaps the rest of the backward. No effect with one rank,
 * under zero_stage 1, or with a communicator that has no allreduce_sum_start. */
void gpt_reduce_in_next_backward(Gpt *g);
/* The model's later work waits for the sums the last backward started (gpt_update and the
 * test hooks that write gradients call it first). 0 when none are pending; -1 with err when
 * one failed. */
int gpt_grads_wait(Gpt *g, Err *err);

/* --- decoding with a KV cache (model/decode.c) ------------------------------------------ */
/* Per layer the qkv rows of the positions decoded so far: `act.h.<l>.attn.kv` (T,3C), T the
 * built T, in the arena's activations. Batch 1. */
typedef struct GptKvCache {
    Tensor **layer; /* n_layer tensors */
    int64_t n;      /* positions cached (0..n-1); set to 0 to start over */
    int64_t cap;    /* positions it can hold: the built T */
    int64_t base;   /* gpt_kv_window: 0 while the cache holds the caller's ids from the start,
                       -1 once the window has moved past cap */
} GptKvCache;

/* Allocates the cache (empty) on a built model. -1 with err when the arena refuses. */
int gpt_kv_init(Gpt *g, GptKvCache *kv, Err *err);
/* Releases the cache's tensors (they must be the top of the activation stack). */
void gpt_kv_free(Gpt *g, GptKvCache *kv);
/* Decodes one token at position kv->n (then kv->n + 1): logits (Vp) host f32 of that
 * position, as gpt_forward_last_logits gives for the same tokens. -1 with err when the cache
 * is full or on a device error. */
int gpt_kv_step(Gpt *g, GptKvCache *kv, int32_t token, float *logits /* (Vp) */, Err *err);
/* The logits after ids[0..n) as nanoGPT's generate sees them (the last cap tokens): while
 * n <= cap the cache is brought to hold ids[0..n), stepping only the tokens it lacks (call with
 * the same ids growing by one token per call: one decode step per token); past cap the window
 * has moved and every position shifts, so it is one uncached forward over the last cap tokens
 * (gpt_forward_last_logits), what uncached sampling costs. */
int gpt_kv_window(Gpt *g, GptKvCache *kv, const int32_t *ids, int64_t n, float *logits /* (Vp) */,
                  Err *err);

/* --- planning ------------------------------------------------------------------------ */
/* What is planned: the phase sequence of one command (gpt_plan_steps). */
typedef enum GptPlanPhase {
    GPT_PLAN_TRAIN = 0, /* train: one evaluation forward (estimate_loss), then one optimizer
                           step of grad_accum micro-steps (forward + backward each, update) */
    GPT_PLAN_EVAL,      /* eval: one forward with the loss head, on an inference build */
    GPT_PLAN_SAMPLE,    /* sample: the KV cache, one decoding step and (past the window) one
                           uncached forward beside the cache; inference, B 1 */
} GptPlanPhase;

typedef struct GptPlanArgs {
    GptPlanPhase phase;
    int64_t B, T;
    int64_t grad_accum; /* train: micro-steps per optimizer step (>= 1) */
    size_t limit_bytes; /* the arena's budget; 0 = none */
    int trace;          /* record the arena's event trace from the start */
} GptPlanArgs;

/* A plan: the arena (offsets, peaks, tensors) and the model built on it, left built so the
 * arena describes a run in progress. */
typedef struct GptPlan {
    Arena *arena;
    Arena *host_arena; /* optimizer_offload (training): the host arena's plan; else NULL */
    Gpt model;
} GptPlan;

/* The memory plan of a command on a new plan arena: the build (training or inference) and
 * gpt_plan_steps. On refusal (over limit_bytes) returns -1, err names the allocation, and
 * *out still holds the plan for its report. Free with gpt_plan_free (NULL is fine). */
int gpt_plan(const GptConfig *c, GptDevice dev, const GptPlanArgs *args, GptPlan **out, Err *err);
void gpt_plan_free(GptPlan *p);
/* The build a plan of these args makes (training or inference), on any arena. */
int gpt_plan_build(Gpt *g, const GptConfig *c, GptDevice dev, Arena *arena, const GptPlanArgs *args,
                   Err *err);
/* The phase sequence of args on a built g (plan or real arena): the same calls a command
 * makes, so a plan holds against a run (tests call it on a host or device arena with real
 * tokens). inputs/targets (B,T) may be NULL: zeros. */
int gpt_plan_steps(Gpt *g, const GptPlanArgs *args, const int32_t *inputs, const int32_t *targets,
                   Err *err);

/* The largest batch in [1, max_batch] whose plan of args (args->B ignored) fits within
 * args->limit_bytes: doubling, then bisection between the last B that fits and the first that
 * does not. 0 when even B = 1 does not fit; *hw_out gets the fitting plan's high-water mark. */
int64_t gpt_plan_fit(const GptConfig *c, GptDevice dev, const GptPlanArgs *args, int64_t max_batch,
                     size_t *hw_out);

/* --- names (model/attention.c) ----------------------------------------------------------- */
/* What configs and reports call the enums' values, indexed by value, NULL-terminated (the
 * config's key table takes them as they are). */
extern const char *const GPT_ATTENTION_NAMES[GPT_ATTENTION_COUNT + 1]; /* naive, cudnn, flash */
extern const char *const GPT_RECOMPUTE_NAMES[GPT_RECOMPUTE_COUNT + 1]; /* none, selective, full */
extern const char *const GPT_GELU_NAMES[GPT_GELU_COUNT + 1];           /* tanh, erf */
const char *gpt_attention_name(GptAttention a);

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
