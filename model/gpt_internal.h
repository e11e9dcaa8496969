/* gpt_internal.h: what the model's own files share and nothing outside model/ may include:
 * the block's tensor descriptions (the types of the tables in block.c and attention.c), the
 * per-layer and top-level saved tensors of a Gpt, the step context (workspace scope, failure
 * flag), and small tensor helpers.
 *
 *   gpt.c        build, free, forward (embeddings -> blocks -> ln_f -> loss head), backward,
 *                update
 *   block.c      the block as data (BLOCK_TENSORS, BLOCK_STEPS) and the passes over it
 *   attention.c  the attention kinds (ATTENTION_KINDS): what each saves, its scratch
 *   params.c     parameter bookkeeping: names, shapes, counts, allocation, init, host copies
 *   plan.c       the one planner (gpt_plan) and the step sequence it runs
 *   offload.c    optimizer_offload: the host arena's tensors and the AdamW step on the CPU
 *   dist.c       data parallel: the collectives table and ZeRO-1's shards
 *   decode.c     sample's KV cache and its one-position step
 *   flops.c      matmul FLOPs from the block table
 *
 * Shapes: docs/ARCHITECTURE.md (B, T, C, NH, ...). */
#ifndef ARENAGPT_GPT_INTERNAL_H
#define ARENAGPT_GPT_INTERNAL_H

#include "gpt.h"

/* ---- the block's tensors ----------------------------------------------------------------- */

/* The tensors of one block, in allocation order (a step allocates its outputs by id). */
typedef enum BlockTensor {
    BT_LN1_MEAN = 0, /* (B,T) f32 */
    BT_LN1_RSTD,     /* (B,T) f32 */
    BT_LN1,          /* (B,T,C) */
    BT_QKV,          /* (B,T,3C) */
    BT_ATT,          /* what attention's backward reads: per attention kind (ATTENTION_KINDS) */
    BT_ATTY,         /* (B,T,C) */
    BT_RES2,         /* (B,T,C) the residual stream after attention */
    BT_LN2_MEAN,     /* (B,T) f32 */
    BT_LN2_RSTD,     /* (B,T) f32 */
    BT_LN2,          /* (B,T,C) */
    BT_FC,           /* (B,T,4C) */
    BT_GELU,         /* (B,T,4C) */
    BT_OUT,          /* (B,T,C) the block output: the next block's input */
    BT_IN,           /* (B,T,C) the block input: the previous block's output (not allocated here) */
    BT_COUNT,
    BT_NONE = -1
} BlockTensor;

/* Dimensions a shape is written in (0 ends a shape). */
typedef enum BlockDim { DIM_END = 0, DIM_B, DIM_T, DIM_C, DIM_3C, DIM_4C, DIM_NH } BlockDim;

/* dtype roles: the layout's activation dtype, or always f32 (statistics) */
typedef enum DtypeRole { ROLE_ACT = 0, ROLE_F32 } DtypeRole;

/* The backward buffer that holds a tensor's gradient: the residual stream (dL/dx, ws.dresidual),
 * a C-wide branch (ws.dbuf_c), a wide one (ws.dbuf_4c); none for statistics/probabilities. */
typedef enum GradBuf { GRAD_NONE = 0, GRAD_RESIDUAL, GRAD_C, GRAD_WIDE, GRAD_BUF_COUNT } GradBuf;

/* Recompute classes: the recompute modes whose training forward saves a tensor (pushes it on
 * the activation stack). Every other mode keeps it as forward workspace and recomputes it in
 * backward, just before the first backward step that reads it. */
#define SAVED_BY(mode) (1u << (mode))
#define RECOMPUTED_BY_FULL (SAVED_BY(GPT_RECOMPUTE_NONE) | SAVED_BY(GPT_RECOMPUTE_SELECTIVE))
#define RECOMPUTED_BY_SELECTIVE SAVED_BY(GPT_RECOMPUTE_NONE)
#define ALWAYS_SAVED                                                                               \
    (SAVED_BY(GPT_RECOMPUTE_NONE) | SAVED_BY(GPT_RECOMPUTE_SELECTIVE) |                            \
     SAVED_BY(GPT_RECOMPUTE_FULL))

typedef struct BlockTensorDesc {
    const char *name; /* `act.h.<l>.<name>` when saved, `ws.h.<l>.<name>` as workspace */
    DtypeRole dtype;
    BlockDim shape[4];
    unsigned saved_by; /* recompute class */
    /* a copy that is not saved lives in the forward until the step that writes `until` ends */
    BlockTensor until;
    GradBuf grad;
} BlockTensorDesc;

/* ---- attention kinds (attention.c) -------------------------------------------------------- */

/* One attention kind: everything the model knows of it. `saved` is what its forward keeps for
 * its backward (the BT_ATT row); backward_reads_out: its backward also reads the forward's
 * output y (attn.y then stays on the stack until the attention backward has run). Its kernels
 * are the backend's attention[kind] entry (backend.h). forward_workspace/backward_workspace
 * (NULL: none): the bytes of scratch each pass takes, a `ws.h.<l>.attn.<ws_name>` tensor
 * allocated just before the kernel and released right after it (plain arithmetic: plans
 * have it). */
typedef struct AttentionKind {
    BlockTensorDesc saved;
    unsigned devices; /* where it can be planned: bit per GptDevice */
    int backward_reads_out;
    const char *ws_name;
    size_t (*forward_workspace)(int64_t B, int64_t T, int64_t C, int64_t NH);
    size_t (*backward_workspace)(int64_t B, int64_t T, int64_t C, int64_t NH);
} AttentionKind;

#define ON_DEVICE(dev) (1u << (dev))

const AttentionKind *attention_kind(GptAttention a);
/* Whether backend be has kernels for kind a. */
int attention_runs(const GptBackend *be, GptAttention a);
/* "naive" or "naive, flash": the kinds device dev can plan */
const char *attention_kinds_on(GptDevice dev, char *buf, size_t len);

/* ---- a Gpt's saved tensors ---------------------------------------------------------------- */

/* top-level activations live between forward and backward */
typedef struct GptTop {
    Tensor *inputs;   /* (B,T) i32 */
    Tensor *enc_out;  /* (B,T,C) */
    Tensor *lnf_mean; /* (B,T) */
    Tensor *lnf_rstd; /* (B,T) */
    Tensor *lnf;      /* (B,T,C) ln_f output; after the fused head: its gradient */
} GptTop;

/* per-layer activations: a slot per BlockTensor (NULL when not live) */
typedef struct GptSaved {
    Tensor *t[BT_COUNT];
} GptSaved;

/* ---- steps: allocation inside a phase ------------------------------------------------------- */

/* A scope of forward/backward temporaries (workspace), released together or one by one. */
#define GPT_MAX_WS 32
typedef struct WsScope {
    Tensor *t[GPT_MAX_WS];
    int n;
} WsScope;

/* One phase (forward, backward, update): its workspace, its error; failed = the arena refused
 * an allocation (the budget) or the device reported an error. */
typedef struct StepCtx {
    Gpt *g;
    WsScope ws;
    Err *err;
    int failed;
} StepCtx;

/* ndim and shape of a tensor: step_alloc(s, saved, dtype, DIMS(B, T, C), name...) */
#define DIMS(...)                                                                                  \
    (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]) { __VA_ARGS__ }

/* saved = 1: an activation pushed on the arena's activation stack; 0: workspace in s's scope.
 * NULL (and s->failed set, err filled) when the arena refuses. */
Tensor *step_alloc(StepCtx *s, int saved, ArenaDtype dt, int ndim, const int64_t *shape,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void ws_release(Gpt *g, WsScope *s, Tensor **slot);
void ws_release_all(Gpt *g, WsScope *s);
/* Pops t = *slot, which must be the top of the arena's activation stack (the arena ASSERTs
 * it); clears *slot. */
void act_pop(Gpt *g, Tensor **slot);
/* The device's first error since start-up (sticky on CUDA) as this call's error; 0 if none. */
int check_device(Gpt *g, const char *what, Err *err);

/* ---- tensor helpers ------------------------------------------------------------------------- */

static inline void *tdata(Tensor *t) { return t ? t->data : NULL; }
static inline int64_t tnumel(const Tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}
/* a pointer `row` rows into a row-major tensor with `cols` columns (NULL in a plan arena) */
static inline void *trow(Tensor *t, int64_t row, int64_t cols) {
    if (!t->data)
        return NULL;
    return (char *)t->data + (size_t)row * (size_t)cols * arena_dtype_size(t->dtype);
}
/* a parameter's data and its gradient (NULL when the model has no such tensor: no bias) */
static inline void *pdata(Gpt *g, GptParamKind kind, int l) {
    GptParam *p = gpt_param(g, kind, l);
    return p ? p->param->data : NULL;
}
static inline void *gdata(Gpt *g, GptParamKind kind, int l) {
    GptParam *p = gpt_param(g, kind, l);
    return p ? p->grad->data : NULL;
}

/* ---- the block (block.c) ------------------------------------------------------------------ */

/* What a block pass does with its tensors. */
typedef enum BlockPhase {
    BLOCK_TRAIN,    /* training forward: saves what the recompute mode saves */
    BLOCK_EVAL,     /* no backward: everything is workspace */
    BLOCK_BACKWARD, /* backward: pops what it has read, recomputes what was not saved */
} BlockPhase;

/* Forward of layer l. in_slot holds the block input; slots (BT_COUNT entries) receive the
 * block's tensors (g->saved[l].t while training, a local array in eval). On return
 * slots[BT_OUT] is the output (saved in TRAIN, workspace of s in EVAL). */
void block_forward_layer(StepCtx *s, int l, BlockPhase phase, Tensor **in_slot, Tensor **slots,
                         int64_t B, int64_t T);
/* Backward of layer l: dx holds dL/d(out) on entry and dL/d(in) on return; d1, d4 are the
 * C-wide and 4C-wide gradient buffers. Pops every tensor of the block, then its input. */
void block_backward_layer(StepCtx *s, int l, Tensor **in_slot, Tensor **slots, Tensor *dx,
                          Tensor *d1, Tensor *d4, int64_t B, int64_t T);
/* Checks the tables once per process (ASSERT: a wrong table is a bug). */
void block_tables_check(void);
/* Matmul FLOPs per token of one layer's forward, and of the steps mode recomputes. */
double block_flops_forward_per_token(const GptConfig *c, int64_t T);
double block_flops_recompute_per_token(const GptConfig *c, int64_t T, GptRecompute mode);

/* ---- parameters (params.c) ---------------------------------------------------------------- */

/* g->params: one entry per parameter tensor in llm.c order (kind-major, then layer). */
void params_index(Gpt *g);
/* Category by category: every param, then (training) every grad, then each one's optimizer
 * state (master, m, v). -1 when the arena refuses. */
int params_alloc(Gpt *g);
/* Releases them in reverse allocation order. */
void params_release(Gpt *g);

/* ---- optimizer_offload (offload.c) -------------------------------------------------------- */

typedef struct OffloadOps OffloadOps;
/* The host side's ops: a plan's (do nothing) when plan, else the real ones. */
const OffloadOps *offload_ops(int plan);
/* Zeroes a persistent tensor wherever it lives. */
void gpt_tensor_zero(Gpt *g, Tensor *t);
/* AdamW of every parameter on the host (the gradient norm and the skip are the caller's):
 * allocates the host staging, then when apply (the norm is finite) copies the gradients to the
 * host, runs the CPU's AdamW on master, m, v and copies the f16 params back; releases the
 * staging. -1 with err when the host arena refuses its staging or a transfer fails. */
int offload_update(Gpt *g, float lr, float beta1, float beta2, float eps, float weight_decay,
                   float grad_mul, int64_t step, int apply, Err *err);

#endif
