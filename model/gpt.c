/* gpt.c: GPT-2 orchestration over the backend table: parameter bookkeeping, the transformer
 * block as data (BLOCK_TENSORS, ATTENTION_KINDS, BLOCK_STEPS) and the passes that follow from
 * it, the activation stack and its recompute modes, the chunked loss head, AdamW, the memory
 * plan. docs/ARCHITECTURE.md explains the tables and how to add a tensor or an attention kind.
 *
 * Invariants:
 *   - every tensor comes from g->arena; the sequence of arena calls depends only on the
 *     config, the shapes and which phase functions are called (never on data), so a plan
 *     arena (no kernels run) reproduces a host run byte for byte;
 *   - activations are pushed in forward and popped in backward in exactly reverse order
 *     (arena ASSERTs LIFO): each backward step pops what it read;
 *   - recompute never changes what a kernel computes: the recomputed tensors are produced by
 *     the same kernels from the same inputs, so gradients are bit-identical.
 *
 * Activation stack of one training forward (recompute none), bottom to top:
 *   act.inputs (B,T) i32, act.encoder.out (B,T,C),
 *   per layer l: ln_1.mean, ln_1.rstd, ln_1, attn.qkv, attn.att, attn.y, res_2,
 *                ln_2.mean, ln_2.rstd, ln_2, mlp.fc, mlp.gelu, act.h.<l>.out (next input),
 *   act.ln_f.mean, act.ln_f.rstd, act.ln_f (holds dL/d ln_f after the fused head).
 * selective: ln_1, attn.att, ln_2, mlp.gelu are forward workspace, pushed again in backward
 * just before the step that reads them.
 * full: per layer only act.h.<l>.out (allocated before the block's temporaries, which are
 * workspace); backward's first step recomputes the block (up to mlp.gelu) pushing the
 * none-mode set. */
#include "gpt.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../data/rng.h"

/* top-level activations live between forward and backward */
typedef struct GptTop {
    Tensor *inputs;   /* (B,T) i32 */
    Tensor *enc_out;  /* (B,T,C) */
    Tensor *lnf_mean; /* (B,T) */
    Tensor *lnf_rstd; /* (B,T) */
    Tensor *lnf;      /* (B,T,C) ln_f output; after the fused head: its gradient */
} GptTop;

static GptTop *gpt_top(Gpt *g) { return g->top; }

/* ---------------------------------------------------------------------------------------- */
/* the block as data                                                                         */
/*                                                                                           */
/* BLOCK_TENSORS says what a block stores (name, shape, dtype, recompute class, lifetime);   */
/* BLOCK_STEPS says what it computes, in forward order. block_forward runs the steps top to  */
/* bottom and block_backward bottom to top; every allocation, save, release, pop and         */
/* recompute follows from these two tables and the recompute mode (docs/ARCHITECTURE.md).    */

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

static const BlockTensorDesc BLOCK_TENSORS[BT_COUNT] = {
    [BT_LN1_MEAN] = {"ln_1.mean", ROLE_F32, {DIM_B, DIM_T}, RECOMPUTED_BY_FULL, BT_OUT, GRAD_NONE},
    [BT_LN1_RSTD] = {"ln_1.rstd", ROLE_F32, {DIM_B, DIM_T}, RECOMPUTED_BY_FULL, BT_OUT, GRAD_NONE},
    [BT_LN1] = {"ln_1", ROLE_ACT, {DIM_B, DIM_T, DIM_C}, RECOMPUTED_BY_SELECTIVE, BT_QKV, GRAD_C},
    [BT_QKV] =
        {"attn.qkv", ROLE_ACT, {DIM_B, DIM_T, DIM_3C}, RECOMPUTED_BY_FULL, BT_RES2, GRAD_WIDE},
    [BT_ATT] = {0}, /* ATTENTION_KINDS[attention].saved */
    [BT_ATTY] = {"attn.y", ROLE_ACT, {DIM_B, DIM_T, DIM_C}, RECOMPUTED_BY_FULL, BT_RES2, GRAD_C},
    [BT_RES2] =
        {"res_2", ROLE_ACT, {DIM_B, DIM_T, DIM_C}, RECOMPUTED_BY_FULL, BT_OUT, GRAD_RESIDUAL},
    [BT_LN2_MEAN] = {"ln_2.mean", ROLE_F32, {DIM_B, DIM_T}, RECOMPUTED_BY_FULL, BT_OUT, GRAD_NONE},
    [BT_LN2_RSTD] = {"ln_2.rstd", ROLE_F32, {DIM_B, DIM_T}, RECOMPUTED_BY_FULL, BT_OUT, GRAD_NONE},
    [BT_LN2] = {"ln_2", ROLE_ACT, {DIM_B, DIM_T, DIM_C}, RECOMPUTED_BY_SELECTIVE, BT_FC, GRAD_C},
    [BT_FC] = {"mlp.fc", ROLE_ACT, {DIM_B, DIM_T, DIM_4C}, RECOMPUTED_BY_FULL, BT_GELU, GRAD_WIDE},
    [BT_GELU] =
        {"mlp.gelu", ROLE_ACT, {DIM_B, DIM_T, DIM_4C}, RECOMPUTED_BY_SELECTIVE, BT_OUT, GRAD_WIDE},
    /* saved in every training forward (workspace in eval) */
    [BT_OUT] = {"out", ROLE_ACT, {DIM_B, DIM_T, DIM_C}, ALWAYS_SAVED, BT_NONE, GRAD_RESIDUAL},
    [BT_IN] = {NULL, ROLE_ACT, {DIM_B, DIM_T, DIM_C}, ALWAYS_SAVED, BT_NONE, GRAD_RESIDUAL},
};

/* One attention kind. `saved` is what its forward keeps for its backward (the BT_ATT row);
 * backward_reads_out: its backward also reads the forward's output y (attn.y then stays on
 * the stack until the attention backward has run). runs(be): backend be has its kernels;
 * forward and backward call them (out: y, att: the BT_ATT tensor, the shape arguments as in
 * backend.h's attention entries). forward_workspace/backward_workspace (NULL: none): the
 * bytes of scratch each pass takes, a `ws.h.<l>.attn.<ws_name>` tensor allocated just before
 * the kernel and released right after it (workspace: plain arithmetic, so plans have it). */
typedef struct AttentionKind {
    const char *name; /* the config value */
    BlockTensorDesc saved;
    unsigned devices; /* where it can be planned: bit per GptDevice */
    int backward_reads_out;
    int (*runs)(const GptBackend *be);
    void (*forward)(const GptBackend *be, void *out /* (B,T,C) */, void *att, void *workspace,
                    const void *qkv /* (B,T,3C) */, int64_t B, int64_t T, int64_t C, int64_t NH,
                    void *stream);
    void (*backward)(const GptBackend *be, void *dqkv /* (B,T,3C) */, void *att, void *workspace,
                     const void *dout /* (B,T,C) */, const void *qkv /* (B,T,3C) */,
                     const void *out /* (B,T,C), or NULL unless backward_reads_out */, int64_t B,
                     int64_t T, int64_t C, int64_t NH, void *stream);
    const char *ws_name;
    size_t (*forward_workspace)(int64_t B, int64_t T, int64_t C, int64_t NH);
    size_t (*backward_workspace)(int64_t B, int64_t T, int64_t C, int64_t NH);
} AttentionKind;

#define ON_DEVICE(dev) (1u << (dev))

static int naive_runs(const GptBackend *be) {
    return be->attention_forward && be->attention_backward;
}
static void naive_forward(const GptBackend *be, void *out, void *att, void *workspace,
                          const void *qkv, int64_t B, int64_t T, int64_t C, int64_t NH,
                          void *stream) {
    be->attention_forward(out, att, qkv, B, T, C, NH, stream);
}
static void naive_backward(const GptBackend *be, void *dqkv, void *att, void *workspace,
                           const void *dout, const void *qkv, const void *out, int64_t B, int64_t T,
                           int64_t C, int64_t NH, void *stream) {
    be->attention_backward(dqkv, att, dout, qkv, B, T, C, NH, stream);
}

static int flash_runs(const GptBackend *be) {
    return be->flash_attention_forward && be->flash_attention_backward;
}
static void flash_forward(const GptBackend *be, void *out, void *att, void *workspace,
                          const void *qkv, int64_t B, int64_t T, int64_t C, int64_t NH,
                          void *stream) {
    be->flash_attention_forward(out, att, qkv, B, T, C, NH, stream);
}
static void flash_backward(const GptBackend *be, void *dqkv, void *att, void *workspace,
                           const void *dout, const void *qkv, const void *out, int64_t B, int64_t T,
                           int64_t C, int64_t NH, void *stream) {
    be->flash_attention_backward(dqkv, workspace, dout, out, att, qkv, B, T, C, NH, stream);
}
static size_t flash_backward_workspace(int64_t B, int64_t T, int64_t C, int64_t NH) {
    return gpt_flash_workspace_bytes(B, T, NH);
}

static int cudnn_runs(const GptBackend *be) {
    return be->cudnn_attention_forward && be->cudnn_attention_backward;
}
static void cudnn_forward(const GptBackend *be, void *out, void *att, void *workspace,
                          const void *qkv, int64_t B, int64_t T, int64_t C, int64_t NH,
                          void *stream) {
    be->cudnn_attention_forward(out, att, workspace, qkv, B, T, C, NH, stream);
}
static void cudnn_backward(const GptBackend *be, void *dqkv, void *att, void *workspace,
                           const void *dout, const void *qkv, const void *out, int64_t B, int64_t T,
                           int64_t C, int64_t NH, void *stream) {
    be->cudnn_attention_backward(dqkv, workspace, dout, out, att, qkv, B, T, C, NH, stream);
}

/* What the fused kinds (cudnn, flash) save besides y: the f32 log-sum-exp of each row's scores,
 * (B,NH,T), kept until the backward like y; only full recompute recomputes it. */
#define FUSED_ATTENTION_SAVED                                                                      \
    { "attn.lse", ROLE_F32, {DIM_B, DIM_NH, DIM_T}, RECOMPUTED_BY_FULL, BT_ATTY, GRAD_NONE }

static const AttentionKind ATTENTION_KINDS[GPT_ATTENTION_COUNT] = {
    /* the softmax probabilities, zero above the diagonal */
    [GPT_ATTENTION_NAIVE] = {.name = "naive",
                             .saved = {"attn.att",
                                       ROLE_ACT,
                                       {DIM_B, DIM_NH, DIM_T, DIM_T},
                                       RECOMPUTED_BY_SELECTIVE,
                                       BT_ATTY,
                                       GRAD_NONE},
                             .devices = ON_DEVICE(GPT_DEVICE_CPU) | ON_DEVICE(GPT_DEVICE_CUDA),
                             .backward_reads_out = 0,
                             .runs = naive_runs,
                             .forward = naive_forward,
                             .backward = naive_backward},
    /* cuDNN's fused SDPA (not yet verified on a GPU): the f32 log-sum-exp of each row's
     * scores, kept like y (selective recomputes nothing of it: the fused backward recomputes
     * the probabilities itself); its workspace holds D and the plans' own (a derived
     * figure, see gpt_cudnn_workspace_bytes) */
    [GPT_ATTENTION_CUDNN] = {.name = "cudnn",
                             .saved = FUSED_ATTENTION_SAVED,
                             .devices = ON_DEVICE(GPT_DEVICE_CUDA),
                             .backward_reads_out = 1,
                             .runs = cudnn_runs,
                             .forward = cudnn_forward,
                             .backward = cudnn_backward,
                             .ws_name = "cudnn",
                             .forward_workspace = gpt_cudnn_workspace_bytes,
                             .backward_workspace = gpt_cudnn_workspace_bytes},
    /* our FlashAttention-2 kernels: the same saved set as cudnn; the backward's scratch is
     * D = rowsum(dy * y), f32 (B,NH,T) */
    [GPT_ATTENTION_FLASH] = {.name = "flash",
                             .saved = FUSED_ATTENTION_SAVED,
                             .devices = ON_DEVICE(GPT_DEVICE_CPU) | ON_DEVICE(GPT_DEVICE_CUDA),
                             .backward_reads_out = 1,
                             .runs = flash_runs,
                             .forward = flash_forward,
                             .backward = flash_backward,
                             .ws_name = "flash_d",
                             .backward_workspace = flash_backward_workspace},
};

typedef enum StepKind { STEP_LAYERNORM = 0, STEP_LINEAR, STEP_ATTENTION, STEP_GELU } StepKind;

/* One step of the block. Its backward reads `in` and the side outputs (and `out` only for an
 * attention kind with backward_reads_out) and writes the gradient of `in` from the gradient
 * of `out`. */
typedef struct BlockStep {
    StepKind kind;
    BlockTensor out;  /* what it computes */
    BlockTensor in;   /* what it reads */
    BlockTensor side; /* LayerNorm: mean (rstd is side + 1); attention: att; linear: the residual
                         added to out (read, not written); else BT_NONE */
    GptParamKind weight, bias; /* LayerNorm and linear only */
    int in_c, out_c;           /* linear: in and out features as multiples of C */
} BlockStep;

/* a LayerNorm step names its mean; its rstd is the next tensor */
_Static_assert(BT_LN1_RSTD == BT_LN1_MEAN + 1 && BT_LN2_RSTD == BT_LN2_MEAN + 1,
               "rstd follows mean in BlockTensor");
#define LAYERNORM(y, x, mean, w, b)                                                                \
    { STEP_LAYERNORM, y, x, mean, w, b, 1, 1 }
#define LINEAR(y, x, residual, w, b, in_c, out_c)                                                  \
    { STEP_LINEAR, y, x, residual, w, b, in_c, out_c }
#define ATTENTION(y, qkv, att)                                                                     \
    { STEP_ATTENTION, y, qkv, att, 0, 0, 0, 0 }
#define GELU(y, x)                                                                                 \
    { STEP_GELU, y, x, BT_NONE, 0, 0, 0, 0 }

/* The pre-LN GPT-2 block: x -> out. */
static const BlockStep BLOCK_STEPS[] = {
    /* ln_1 = LayerNorm(x) (saving mean, rstd) */
    LAYERNORM(BT_LN1, BT_IN, BT_LN1_MEAN, GPT_PARAM_LN1W, GPT_PARAM_LN1B),
    /* qkv = ln_1 c_attn.weight^T + c_attn.bias */
    LINEAR(BT_QKV, BT_LN1, BT_NONE, GPT_PARAM_QKVW, GPT_PARAM_QKVB, 1, 3),
    /* y = softmax(q k^T / sqrt(HS), causal) v per head (saving att) */
    ATTENTION(BT_ATTY, BT_QKV, BT_ATT),
    /* res_2 = x + y c_proj.weight^T + c_proj.bias */
    LINEAR(BT_RES2, BT_ATTY, BT_IN, GPT_PARAM_ATTPROJW, GPT_PARAM_ATTPROJB, 1, 1),
    /* ln_2 = LayerNorm(res_2) (saving mean, rstd) */
    LAYERNORM(BT_LN2, BT_RES2, BT_LN2_MEAN, GPT_PARAM_LN2W, GPT_PARAM_LN2B),
    /* fc = ln_2 c_fc.weight^T + c_fc.bias */
    LINEAR(BT_FC, BT_LN2, BT_NONE, GPT_PARAM_FCW, GPT_PARAM_FCB, 1, 4),
    /* gelu = GELU(fc) */
    GELU(BT_GELU, BT_FC),
    /* out = res_2 + gelu c_proj.weight^T + c_proj.bias */
    LINEAR(BT_OUT, BT_GELU, BT_RES2, GPT_PARAM_FCPROJW, GPT_PARAM_FCPROJB, 4, 1),
};
#define BLOCK_N_STEPS ((int)(sizeof BLOCK_STEPS / sizeof BLOCK_STEPS[0]))

/* per-layer activations: a slot per BlockTensor (NULL when not live) */
typedef struct GptSaved {
    Tensor *t[BT_COUNT];
} GptSaved;

static const BlockTensorDesc *block_desc(const GptConfig *c, BlockTensor t) {
    return t == BT_ATT ? &ATTENTION_KINDS[c->attention].saved : &BLOCK_TENSORS[t];
}

/* the tensors a step writes (out and, for LayerNorm and attention, its side outputs), in
 * allocation order; returns how many */
static int step_outputs(const BlockStep *st, BlockTensor outs[3]) {
    int n = 0;
    if (st->kind == STEP_LAYERNORM) {
        outs[n++] = st->side;
        outs[n++] = st->side + 1;
    } else if (st->kind == STEP_ATTENTION) {
        outs[n++] = st->side;
    }
    outs[n++] = st->out;
    return n;
}

/* the tensors a step's backward reads: in, the side outputs it saved, and out where the
 * attention kind says so */
static int step_backward_reads(const GptConfig *c, const BlockStep *st, BlockTensor reads[4]) {
    int n = step_outputs(st, reads) - 1; /* every output but out */
    reads[n++] = st->in;
    if (st->kind == STEP_ATTENTION && ATTENTION_KINDS[c->attention].backward_reads_out)
        reads[n++] = st->out;
    return n;
}

/* whether a backward step still to run (steps 0..before-1) reads tensor t */
static int read_by_earlier_step(const GptConfig *c, BlockTensor t, int before) {
    for (int i = 0; i < before; i++) {
        BlockTensor reads[4];
        int n = step_backward_reads(c, &BLOCK_STEPS[i], reads);
        for (int j = 0; j < n; j++)
            if (reads[j] == t)
                return 1;
    }
    return 0;
}

static const BlockStep *step_writing(BlockTensor t) {
    for (int i = 0; i < BLOCK_N_STEPS; i++) {
        BlockTensor outs[3];
        int n = step_outputs(&BLOCK_STEPS[i], outs);
        for (int j = 0; j < n; j++)
            if (outs[j] == t)
                return &BLOCK_STEPS[i];
    }
    ASSERT_MSG(0, "no block step writes this tensor");
    return NULL;
}

/* Matmul FLOPs of one step per token (2 per multiply-add; attention on the full T x T). */
static double step_flops_per_token(const GptConfig *c, const BlockStep *st, int64_t T) {
    double C = (double)c->channels;
    if (st->kind == STEP_LINEAR)
        return 2.0 * st->in_c * C * st->out_c * C;
    if (st->kind == STEP_ATTENTION)
        return 2.0 * 2.0 * (double)T * C; /* QK^T and att@V */
    return 0.0;
}

/* A step is recomputed in backward when the mode saves one of its outputs not. */
static int step_recomputed(const GptConfig *c, const BlockStep *st, GptRecompute mode) {
    BlockTensor outs[3];
    int n = step_outputs(st, outs);
    for (int j = 0; j < n; j++)
        if (!(block_desc(c, outs[j])->saved_by & SAVED_BY(mode)))
            return 1;
    return 0;
}

/* The tables' own consistency, checked once per process by gpt_build (ASSERT: a wrong table is
 * a bug): every block tensor is written by exactly one step, after what that step reads
 * (the steps run in allocation order); a workspace copy lives at least until its last forward
 * reader; a residual input shares its gradient buffer with the step's output (the identity
 * path); only GELU's backward works in place. */
static void block_tables_check_kind(const GptConfig *c) {
    int writer[BT_COUNT];
    for (int t = 0; t < BT_COUNT; t++)
        writer[t] = -1;
    for (int i = 0; i < BLOCK_N_STEPS; i++) {
        const BlockStep *st = &BLOCK_STEPS[i];
        BlockTensor outs[3];
        int n = step_outputs(st, outs);
        for (int j = 0; j < n; j++) {
            ASSERT_MSG(writer[outs[j]] < 0, "a block tensor is written by two steps");
            ASSERT_MSG(j == 0 || outs[j] > outs[j - 1], "a step's outputs out of allocation order");
            ASSERT_MSG(st->in == BT_IN || st->in < outs[j], "a step reads a later tensor");
            writer[outs[j]] = i;
        }
        if (st->kind == STEP_LINEAR && st->side != BT_NONE)
            ASSERT_MSG(block_desc(c, st->side)->grad == block_desc(c, st->out)->grad,
                       "a residual and the output it adds to need one gradient buffer");
        ASSERT_MSG(st->kind == STEP_GELU ||
                       block_desc(c, st->in)->grad != block_desc(c, st->out)->grad,
                   "a backward would overwrite the gradient it reads");
    }
    for (int t = 0; t < BT_OUT; t++) {
        ASSERT_MSG(writer[t] >= 0, "a block tensor no step writes");
        int until = writer[block_desc(c, (BlockTensor)t)->until];
        ASSERT_MSG(until >= writer[t], "a workspace tensor released before it is written");
        for (int i = 0; i < BLOCK_N_STEPS; i++) {
            const BlockStep *st = &BLOCK_STEPS[i];
            if (st->in == t || (st->kind == STEP_LINEAR && st->side == t))
                ASSERT_MSG(until >= i, "a workspace tensor released before its last reader");
        }
    }
}

static void block_tables_check(void) {
    for (int a = 0; a < GPT_ATTENTION_COUNT; a++) {
        GptConfig c = {.attention = (GptAttention)a};
        block_tables_check_kind(&c);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* configuration                                                                             */

static const char *const PARAM_NAMES[GPT_PARAM_KIND_COUNT] = {"wte",
                                                              "wpe",
                                                              "ln_1.weight",
                                                              "ln_1.bias",
                                                              "attn.c_attn.weight",
                                                              "attn.c_attn.bias",
                                                              "attn.c_proj.weight",
                                                              "attn.c_proj.bias",
                                                              "ln_2.weight",
                                                              "ln_2.bias",
                                                              "mlp.c_fc.weight",
                                                              "mlp.c_fc.bias",
                                                              "mlp.c_proj.weight",
                                                              "mlp.c_proj.bias",
                                                              "ln_f.weight",
                                                              "ln_f.bias"};

const char *gpt_param_kind_name(GptParamKind kind) {
    ASSERT(kind >= 0 && kind < GPT_PARAM_KIND_COUNT);
    return PARAM_NAMES[kind];
}

int gpt_param_is_per_layer(GptParamKind kind) {
    return kind >= GPT_PARAM_LN1W && kind <= GPT_PARAM_FCPROJB;
}

static int param_kind_is_bias(GptParamKind k) {
    return k == GPT_PARAM_LN1B || k == GPT_PARAM_QKVB || k == GPT_PARAM_ATTPROJB ||
           k == GPT_PARAM_LN2B || k == GPT_PARAM_FCB || k == GPT_PARAM_FCPROJB ||
           k == GPT_PARAM_LNFB;
}

int gpt_param_shape(const GptConfig *c, GptParamKind kind, int64_t shape[2]) {
    int64_t C = c->channels;
    if (param_kind_is_bias(kind) && !c->bias)
        return 0;
    switch (kind) {
    case GPT_PARAM_WTE:
        shape[0] = c->padded_vocab_size;
        shape[1] = C;
        return 2;
    case GPT_PARAM_WPE:
        shape[0] = c->max_seq_len;
        shape[1] = C;
        return 2;
    case GPT_PARAM_QKVW:
        shape[0] = 3 * C;
        shape[1] = C;
        return 2;
    case GPT_PARAM_QKVB:
        shape[0] = 3 * C;
        return 1;
    case GPT_PARAM_ATTPROJW:
        shape[0] = C;
        shape[1] = C;
        return 2;
    case GPT_PARAM_FCW:
        shape[0] = 4 * C;
        shape[1] = C;
        return 2;
    case GPT_PARAM_FCB:
        shape[0] = 4 * C;
        return 1;
    case GPT_PARAM_FCPROJW:
        shape[0] = C;
        shape[1] = 4 * C;
        return 2;
    case GPT_PARAM_LN1W:
    case GPT_PARAM_LN1B:
    case GPT_PARAM_ATTPROJB:
    case GPT_PARAM_LN2W:
    case GPT_PARAM_LN2B:
    case GPT_PARAM_FCPROJB:
    case GPT_PARAM_LNFW:
    case GPT_PARAM_LNFB:
        shape[0] = C;
        return 1;
    default:
        ASSERT(0);
        return 0;
    }
}

/* the attention kinds the CPU can plan and run, "naive" or "naive, flash", ... */
static const char *cpu_attention_kinds(void) {
    static char buf[128];
    buf[0] = 0;
    for (int a = 0; a < GPT_ATTENTION_COUNT; a++)
        if (ATTENTION_KINDS[a].devices & ON_DEVICE(GPT_DEVICE_CPU))
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", buf[0] ? ", " : "",
                     ATTENTION_KINDS[a].name);
    return buf;
}

int gpt_config_check(const GptConfig *c, GptDevice dev, Err *err) {
    if (c->max_seq_len <= 0 || c->vocab_size <= 0 || c->n_layer <= 0 || c->n_head <= 0 ||
        c->channels <= 0)
        return err_set(err,
                       "gpt: sizes must be positive (block_size %lld, vocab_size %lld, n_layer "
                       "%lld, n_head %lld, n_embd %lld)",
                       (long long)c->max_seq_len, (long long)c->vocab_size, (long long)c->n_layer,
                       (long long)c->n_head, (long long)c->channels);
    if (c->channels % c->n_head != 0)
        return err_set(err, "gpt: n_embd %lld is not a multiple of n_head %lld",
                       (long long)c->channels, (long long)c->n_head);
    if (c->padded_vocab_size < c->vocab_size)
        return err_set(err, "gpt: padded vocab %lld is smaller than vocab %lld",
                       (long long)c->padded_vocab_size, (long long)c->vocab_size);
    if (c->vocab_size > INT32_MAX)
        return err_set(err, "gpt: vocab_size %lld does not fit int32 token ids",
                       (long long)c->vocab_size);
    if ((unsigned)c->gelu >= GPT_GELU_COUNT)
        return err_set(err, "gpt: gelu %d is not 0 (tanh) or 1 (erf)", (int)c->gelu);
    if ((unsigned)c->recompute >= GPT_RECOMPUTE_COUNT)
        return err_set(err, "gpt: recompute %d is not 0 (none), 1 (selective) or 2 (full)",
                       (int)c->recompute);
    if ((unsigned)c->attention >= GPT_ATTENTION_COUNT)
        return err_set(err, "gpt: attention %d is not a known kind (0 naive .. %d)",
                       (int)c->attention, GPT_ATTENTION_COUNT - 1);
    if (!(ATTENTION_KINDS[c->attention].devices & ON_DEVICE(dev)))
        return err_set(err, "gpt: attention=%s needs --device=cuda (the CPU has %s)",
                       ATTENTION_KINDS[c->attention].name, cpu_attention_kinds());
    if (c->attention == GPT_ATTENTION_FLASH && dev == GPT_DEVICE_CUDA &&
        c->channels / c->n_head > GPT_FLASH_CUDA_MAX_HS)
        return err_set(err,
                       "gpt: attention=flash on cuda takes head sizes up to %d, but n_embd %lld / "
                       "n_head %lld = %lld: use more heads or attention=naive",
                       GPT_FLASH_CUDA_MAX_HS, (long long)c->channels, (long long)c->n_head,
                       (long long)(c->channels / c->n_head));
    if (c->loss_chunk < 0)
        return err_set(err, "gpt: loss_chunk %lld is negative", (long long)c->loss_chunk);
    return 0;
}

void gpt_param_counts(const GptConfig *c, GptParamCounts *out) {
    memset(out, 0, sizeof(*out));
    int64_t wpe = 0;
    for (int k = 0; k < GPT_PARAM_KIND_COUNT; k++) {
        int64_t shape[2];
        int nd = gpt_param_shape(c, (GptParamKind)k, shape);
        if (nd == 0)
            continue;
        int64_t numel = nd == 2 ? shape[0] * shape[1] : shape[0];
        int64_t reps = gpt_param_is_per_layer((GptParamKind)k) ? c->n_layer : 1;
        out->total += numel * reps;
        if (k == GPT_PARAM_WPE)
            wpe = numel;
        if (nd == 2) {
            out->decay_tensors += reps;
            out->decay_count += numel * reps;
        } else {
            out->no_decay_tensors += reps;
            out->no_decay_count += numel * reps;
        }
    }
    out->non_embedding = out->total - wpe;
}

/* ---------------------------------------------------------------------------------------- */
/* small helpers                                                                             */

static int gpt_runs(const Gpt *g) { return g->backend != NULL && !arena_is_plan(g->arena); }

static void *tdata(Tensor *t) { return t ? t->data : NULL; }

static size_t tensor_elem_bytes(const Tensor *t) { return arena_dtype_size(t->dtype); }

/* a pointer `rows` rows into a row-major tensor with `cols` columns */
static void *trow(Tensor *t, int64_t row, int64_t cols) {
    if (!t->data)
        return NULL;
    return (char *)t->data + (size_t)row * (size_t)cols * tensor_elem_bytes(t);
}

static int64_t tnumel(const Tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

/* a parameter's data and its gradient (NULL when the model has no such tensor: no bias) */
static void *pdata(Gpt *g, GptParamKind kind, int l) {
    GptParam *p = gpt_param(g, kind, l);
    return p ? p->param->data : NULL;
}
static void *gdata(Gpt *g, GptParamKind kind, int l) {
    GptParam *p = gpt_param(g, kind, l);
    return p ? p->grad->data : NULL;
}

/* the stack of activations (for gpt_free after a failure, and for LIFO bookkeeping) */
static void stack_push(Gpt *g, Tensor *t) {
    if (g->n_stack == g->cap_stack) {
        int64_t cap = g->cap_stack ? 2 * g->cap_stack : 64;
        Tensor **s = realloc(g->stack, (size_t)cap * sizeof(*s));
        ASSERT(s != NULL);
        g->stack = s;
        g->cap_stack = cap;
    }
    g->stack[g->n_stack++] = t;
}

/* Pops t, which must be the top of the stack; clears *slot. */
static void act_pop(Gpt *g, Tensor **slot) {
    Tensor *t = *slot;
    ASSERT(t != NULL);
    ASSERT_MSG(g->n_stack > 0 && g->stack[g->n_stack - 1] == t, "activation popped out of order");
    g->n_stack--;
    arena_release(g->arena, t);
    *slot = NULL;
}

/* A scope of forward/backward temporaries (workspace), released together or one by one. */
#define GPT_MAX_WS 32
typedef struct WsScope {
    Tensor *t[GPT_MAX_WS];
    int n;
} WsScope;

static void ws_release(Gpt *g, WsScope *s, Tensor **slot) {
    Tensor *t = *slot;
    if (!t)
        return;
    for (int i = 0; i < s->n; i++)
        if (s->t[i] == t) {
            s->t[i] = s->t[--s->n];
            break;
        }
    arena_release(g->arena, t);
    *slot = NULL;
}

static void ws_release_all(Gpt *g, WsScope *s) {
    for (int i = s->n - 1; i >= 0; i--)
        arena_release(g->arena, s->t[i]);
    s->n = 0;
}

/* Allocation failure inside a step: the arena refused (budget). */
typedef struct StepCtx {
    Gpt *g;
    WsScope ws;
    Err *err;
    int failed;
} StepCtx;

/* ndim and shape of a tensor: step_alloc(s, saved, dtype, DIMS(B, T, C), name...) */
#define DIMS(...)                                                                                  \
    (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]) { __VA_ARGS__ }

/* saved = 1: an activation pushed on the stack; 0: workspace in ctx's scope */
static Tensor *step_alloc(StepCtx *s, int saved, ArenaDtype dt, int ndim, const int64_t *shape,
                          const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static Tensor *step_alloc(StepCtx *s, int saved, ArenaDtype dt, int ndim, const int64_t *shape,
                          const char *fmt, ...) {
    if (s->failed)
        return NULL;
    char name[ARENA_NAME_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    Tensor *t = arena_try_alloc(s->g->arena, saved ? ARENA_CAT_ACTIVATIONS : ARENA_CAT_WORKSPACE,
                                dt, ndim, shape, "%s", name);
    if (!t) {
        s->failed = 1;
        err_set(s->err, "%s", arena_last_error(s->g->arena));
        return NULL;
    }
    if (saved)
        stack_push(s->g, t);
    else {
        ASSERT(s->ws.n < GPT_MAX_WS);
        s->ws.t[s->ws.n++] = t;
    }
    return t;
}

/* What a block pass does with its tensors. */
typedef enum BlockPhase {
    BLOCK_TRAIN,    /* training forward: saves what the recompute mode saves */
    BLOCK_EVAL,     /* no backward: everything is workspace */
    BLOCK_BACKWARD, /* backward: pops what it has read, recomputes what was not saved */
} BlockPhase;

/* One pass over block l. slot[t] is where tensor t lives (g->saved[l] while training, local
 * in eval; BT_IN points to the previous block's output). */
typedef struct Block {
    StepCtx *s;
    Gpt *g;
    int l;
    BlockPhase phase;
    int64_t B, T;
    Tensor **slot[BT_COUNT];
    Tensor *grad[GRAD_BUF_COUNT]; /* backward: dx, d1, d4 by GradBuf */
    unsigned popped;              /* backward: bit per BlockTensor already popped */
} Block;

static void *bdata(Block *k, BlockTensor t) {
    Tensor *x = *k->slot[t];
    ASSERT_MSG(x != NULL, "a block step reads a tensor that is not live");
    return x->data;
}

static void *bgrad(Block *k, BlockTensor t) {
    return k->grad[block_desc(&k->g->config, t)->grad]->data;
}

/* The shape (returns ndim), dtype and byte size of tensor t in pass k. */
static int block_shape(const Block *k, BlockTensor t, int64_t shape[4], ArenaDtype *dt,
                       size_t *nbytes) {
    const GptConfig *c = &k->g->config;
    const BlockTensorDesc *d = block_desc(c, t);
    int64_t dims[] = {[DIM_B] = k->B,
                      [DIM_T] = k->T,
                      [DIM_C] = c->channels,
                      [DIM_3C] = 3 * c->channels,
                      [DIM_4C] = 4 * c->channels,
                      [DIM_NH] = c->n_head};
    int ndim = 0;
    int64_t numel = 1;
    while (ndim < 4 && d->shape[ndim] != DIM_END) {
        shape[ndim] = dims[d->shape[ndim]];
        numel *= shape[ndim++];
    }
    *dt = d->dtype == ROLE_F32 ? ARENA_DTYPE_F32 : k->g->layout->act_dtype;
    *nbytes = (size_t)numel * arena_dtype_size(*dt);
    return ndim;
}

/* Allocates tensor t of block l: an activation pushed on the stack when `saved`, workspace
 * otherwise. */
static void block_alloc(Block *k, BlockTensor t, int saved) {
    int64_t shape[4];
    ArenaDtype dt;
    size_t nbytes;
    int ndim = block_shape(k, t, shape, &dt, &nbytes);
    *k->slot[t] = step_alloc(k->s, saved, dt, ndim, shape, "%s.h.%d.%s", saved ? "act" : "ws", k->l,
                             block_desc(&k->g->config, t)->name);
}

/* Where a recompute writes an output the backward has already consumed: the gradient
 * buffer of the step's input, which that step's backward is about to overwrite. */
static void *block_scratch(Block *k, const BlockStep *st, BlockTensor t) {
    int64_t shape[4];
    ArenaDtype dt;
    size_t nbytes;
    block_shape(k, t, shape, &dt, &nbytes);
    Tensor *buf = k->grad[block_desc(&k->g->config, st->in)->grad];
    ASSERT_MSG(buf->nbytes >= nbytes, "recompute scratch smaller than the output it takes");
    return buf->data;
}

/* Whether pass k saves tensor t (an activation) or keeps it as forward workspace. */
static int block_saves(const Block *k, BlockTensor t) {
    if (k->phase == BLOCK_EVAL)
        return 0;
    if (k->phase == BLOCK_BACKWARD) /* recomputed for the backward that follows */
        return 1;
    return (block_desc(&k->g->config, t)->saved_by & SAVED_BY(k->g->config.recompute)) != 0;
}

/* The scratch of an attention pass: `ws.h.<l>.attn.<ws_name>`, bytes(B, T, C, NH) bytes. */
static Tensor *attention_workspace(Block *k, size_t (*bytes)(int64_t, int64_t, int64_t, int64_t)) {
    const GptConfig *c = &k->g->config;
    size_t n = bytes(k->B, k->T, c->channels, c->n_head);
    return step_alloc(k->s, 0, ARENA_DTYPE_U8, DIMS((int64_t)n), "ws.h.%d.attn.%s", k->l,
                      ATTENTION_KINDS[c->attention].ws_name);
}

/* Runs the forward of one step: allocates its outputs that are not live, then the kernel.
 * In backward (a recompute) an output whose backward reader has already run goes to
 * block_scratch. */
static void step_forward(Block *k, const BlockStep *st) {
    Gpt *g = k->g;
    const GptBackend *be = g->backend;
    const GptConfig *c = &g->config;
    const AttentionKind *att = &ATTENTION_KINDS[c->attention];
    int64_t C = c->channels, N = k->B * k->T;
    void *scratch[BT_COUNT] = {0};
    BlockTensor outs[3];
    int n = step_outputs(st, outs);
    for (int j = 0; j < n; j++) {
        if (*k->slot[outs[j]])
            continue;
        if (k->phase == BLOCK_BACKWARD && (k->popped & (1u << outs[j])))
            scratch[outs[j]] = block_scratch(k, st, outs[j]);
        else
            block_alloc(k, outs[j], block_saves(k, outs[j]));
    }
    Tensor *aws = NULL;
    if (st->kind == STEP_ATTENTION && att->forward_workspace)
        aws = attention_workspace(k, att->forward_workspace);
    if (k->s->failed || !gpt_runs(g)) {
        ws_release(g, &k->s->ws, &aws);
        return;
    }
#define OUT(t) (scratch[t] ? scratch[t] : bdata(k, t))
    switch (st->kind) {
    case STEP_LAYERNORM:
        be->layernorm_forward(OUT(st->out), OUT(st->side), OUT(st->side + 1), bdata(k, st->in),
                              pdata(g, st->weight, k->l), pdata(g, st->bias, k->l), N, C,
                              g->stream);
        break;
    case STEP_LINEAR:
        be->matmul_forward(OUT(st->out), bdata(k, st->in), pdata(g, st->weight, k->l),
                           pdata(g, st->bias, k->l),
                           st->side == BT_NONE ? NULL : bdata(k, st->side), N, st->in_c * C,
                           st->out_c * C, g->stream);
        break;
    case STEP_ATTENTION:
        att->forward(be, OUT(st->out), OUT(st->side), aws ? aws->data : NULL, bdata(k, st->in),
                     k->B, k->T, C, c->n_head, g->stream);
        break;
    case STEP_GELU:
        be->gelu_forward(OUT(st->out), bdata(k, st->in), tnumel(*k->slot[st->in]), c->gelu,
                         g->stream);
        break;
    }
#undef OUT
    ws_release(g, &k->s->ws, &aws);
}

/* Forward: after the step writing `done`, releases (newest first) the workspace tensors whose
 * lifetime ends there. */
static void block_release_until(Block *k, BlockTensor done) {
    for (int t = BT_OUT - 1; t >= 0; t--)
        if (*k->slot[t] && !block_saves(k, (BlockTensor)t) &&
            block_desc(&k->g->config, (BlockTensor)t)->until == done)
            ws_release(k->g, &k->s->ws, k->slot[t]);
}

/* The forward of block l (TRAIN or EVAL): the steps in order. The output is allocated first
 * when the pass keeps none of the block's tensors (recompute=full, eval), so that the
 * workspace above it is freed without leaving a hole; otherwise on top of the saved set. */
static void block_forward(Block *k) {
    int keeps_some = 0;
    for (int t = 0; t < BT_OUT; t++)
        keeps_some |= block_saves(k, (BlockTensor)t);
    if (!keeps_some)
        block_alloc(k, BT_OUT, block_saves(k, BT_OUT));
    for (int i = 0; i < BLOCK_N_STEPS && !k->s->failed; i++) {
        step_forward(k, &BLOCK_STEPS[i]);
        block_release_until(k, BLOCK_STEPS[i].out);
    }
}

/* Backward: makes tensor t live, recomputing it (and first what its step reads) when the
 * recompute mode did not save it. */
static void block_need(Block *k, BlockTensor t) {
    if (*k->slot[t] || k->s->failed)
        return;
    const BlockStep *st = step_writing(t);
    block_need(k, st->in);
    if (st->kind == STEP_LINEAR && st->side != BT_NONE)
        block_need(k, st->side);
    step_forward(k, st);
}

/* After backward step i: pops the tensors it read that no later backward step reads, from
 * the top of the activation stack down. */
static void block_pop(Block *k, int i, const BlockTensor *reads, int n) {
    Gpt *g = k->g;
    BlockTensor last[4];
    int n_last = 0;
    for (int j = 0; j < n; j++)
        if (!read_by_earlier_step(&g->config, reads[j], i))
            last[n_last++] = reads[j];
    for (int left = n_last; left > 0; left--) {
        int found = 0;
        for (int j = 0; j < n_last && !found; j++) {
            Tensor **slot = k->slot[last[j]];
            if (*slot && g->n_stack > 0 && g->stack[g->n_stack - 1] == *slot) {
                act_pop(g, slot);
                k->popped |= 1u << last[j];
                found = 1;
            }
        }
        ASSERT_MSG(found, "a block tensor read by backward is not on top of the activation stack");
    }
}

/* The backward of one step: recomputes what it reads if needed, accumulates the weight
 * gradients, writes the gradient of `in` (+= into the residual stream for LayerNorm, = for
 * the others), then pops what it read. */
static void step_backward(Block *k, int i) {
    const BlockStep *st = &BLOCK_STEPS[i];
    Gpt *g = k->g;
    const GptBackend *be = g->backend;
    const GptConfig *c = &g->config;
    const AttentionKind *att = &ATTENTION_KINDS[c->attention];
    int64_t C = c->channels, N = k->B * k->T;
    int l = k->l;
    BlockTensor reads[4];
    int n = step_backward_reads(c, st, reads);
    for (int j = 0; j < n; j++)
        block_need(k, reads[j]);
    Tensor *aws = NULL;
    if (st->kind == STEP_ATTENTION && att->backward_workspace)
        aws = attention_workspace(k, att->backward_workspace);
    if (k->s->failed)
        return;
    if (gpt_runs(g)) {
        switch (st->kind) {
        case STEP_LAYERNORM:
            be->layernorm_backward(bgrad(k, st->in), gdata(g, st->weight, l), gdata(g, st->bias, l),
                                   bgrad(k, st->out), bdata(k, st->in), pdata(g, st->weight, l),
                                   bdata(k, st->side), bdata(k, st->side + 1), N, C, g->stream);
            break;
        case STEP_LINEAR:
            be->matmul_backward(bgrad(k, st->in), gdata(g, st->weight, l), gdata(g, st->bias, l),
                                bgrad(k, st->out), bdata(k, st->in), pdata(g, st->weight, l), N,
                                st->in_c * C, st->out_c * C, g->stream);
            break;
        case STEP_ATTENTION:
            att->backward(be, bgrad(k, st->in), bdata(k, st->side), aws ? aws->data : NULL,
                          bgrad(k, st->out), bdata(k, st->in),
                          att->backward_reads_out ? bdata(k, st->out) : NULL, k->B, k->T, C,
                          c->n_head, g->stream);
            break;
        case STEP_GELU:
            be->gelu_backward(bgrad(k, st->in), bdata(k, st->in), bgrad(k, st->out),
                              tnumel(*k->slot[st->in]), c->gelu, g->stream);
            break;
        }
    }
    ws_release(g, &k->s->ws, &aws);
    block_pop(k, i, reads, n);
}

/* The backward of block l: the steps in reverse. On entry the residual-stream buffer holds
 * dL/d(out); on return dL/d(in). Pops every tensor of the block, and then the input. */
static void block_backward(Block *k) {
    for (int i = BLOCK_N_STEPS - 1; i >= 0 && !k->s->failed; i--)
        step_backward(k, i);
}

/* Points k's slots at layer l's saved tensors (in: the previous output or the encoder's). */
static void block_init(Block *k, StepCtx *s, int l, BlockPhase phase, Tensor **in_slot,
                       Tensor **slots, int64_t B, int64_t T) {
    memset(k, 0, sizeof *k);
    k->s = s;
    k->g = s->g;
    k->l = l;
    k->phase = phase;
    k->B = B;
    k->T = T;
    for (int t = 0; t < BT_COUNT; t++)
        k->slot[t] = &slots[t];
    k->slot[BT_IN] = in_slot;
}

/* Refuses to run what the backend has no kernels for (attention=cudnn on the CPU is refused
 * by gpt_config_check; a backend table without an attention kind's entries is refused here).
 * A plan arena runs nothing: always 0. */
static int check_kernels(Gpt *g, const char *what, Err *err) {
    if (!gpt_runs(g))
        return 0;
    const AttentionKind *a = &ATTENTION_KINDS[g->config.attention];
    if (!a->runs(g->backend))
        return err_set(err,
                       "%s: attention=%s has no kernels in the %s backend of this build: it can "
                       "be planned (arenagpt mem) but not run; use attention=naive",
                       what, a->name, g->backend->name);
    return 0;
}

/* The device's first error since start-up (sticky on CUDA) as this call's error; 0 if none.
 * Checked before a value copied back from the device is used. */
static int check_device(Gpt *g, const char *what, Err *err) {
    char msg[256];
    if (gpt_runs(g) && g->backend->last_error && g->backend->last_error(msg, sizeof msg))
        return err_set(err, "%s: device error: %s", what, msg);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* lifecycle                                                                                 */

static int build_fail(Gpt *g, Err *err) {
    err_set(err, "%s", arena_last_error(g->arena));
    gpt_free(g);
    return -1;
}

/* g->params: one entry per parameter tensor in llm.c order (kind-major, then layer). */
static void params_index(Gpt *g) {
    const GptConfig *c = &g->config;
    int n = 0;
    int64_t shape[2];
    for (int k = 0; k < GPT_PARAM_KIND_COUNT; k++)
        if (gpt_param_shape(c, (GptParamKind)k, shape))
            n += gpt_param_is_per_layer((GptParamKind)k) ? (int)c->n_layer : 1;
    g->params = calloc((size_t)n, sizeof(GptParam));
    ASSERT(g->params != NULL);
    int i = 0;
    for (int k = 0; k < GPT_PARAM_KIND_COUNT; k++) {
        int nd = gpt_param_shape(c, (GptParamKind)k, shape);
        if (!nd)
            continue;
        int per_layer = gpt_param_is_per_layer((GptParamKind)k);
        g->by_kind[k] = &g->params[i];
        for (int64_t l = 0; l < (per_layer ? c->n_layer : 1); l++) {
            GptParam *p = &g->params[i++];
            p->kind = (GptParamKind)k;
            p->layer = per_layer ? (int)l : -1;
            p->decay = nd == 2;
            p->numel = nd == 2 ? shape[0] * shape[1] : shape[0];
        }
    }
    g->n_params = n;
}

/* One tensor of parameter p's shape named `<prefix><h.l.>kind` (NULL when refused). */
static Tensor *param_alloc(Gpt *g, const GptParam *p, ArenaCategory cat, ArenaDtype dt,
                           const char *prefix) {
    int64_t shape[2];
    int nd = gpt_param_shape(&g->config, p->kind, shape);
    if (p->layer >= 0)
        return arena_try_alloc(g->arena, cat, dt, nd, shape, "%sh.%d.%s", prefix, p->layer,
                               PARAM_NAMES[p->kind]);
    return arena_try_alloc(g->arena, cat, dt, nd, shape, "%s%s", prefix, PARAM_NAMES[p->kind]);
}

/* Category by category: every param, every grad, then each one's optimizer state (master,
 * m, v). -1 when the arena refuses. */
static int params_alloc(Gpt *g) {
    const GptLayout *lay = g->layout;
    for (int i = 0; i < g->n_params; i++)
        if (!(g->params[i].param =
                  param_alloc(g, &g->params[i], ARENA_CAT_PARAMS, lay->param_dtype, "")))
            return -1;
    for (int i = 0; i < g->n_params; i++)
        if (!(g->params[i].grad =
                  param_alloc(g, &g->params[i], ARENA_CAT_GRADS, lay->grad_dtype, "grad.")))
            return -1;
    for (int i = 0; i < g->n_params; i++) {
        GptParam *p = &g->params[i];
        if (lay->has_master &&
            !(p->master = param_alloc(g, p, ARENA_CAT_OPTIMIZER, ARENA_DTYPE_F32, "master.")))
            return -1;
        if (!(p->m = param_alloc(g, p, ARENA_CAT_OPTIMIZER, ARENA_DTYPE_F32, "adam.m.")) ||
            !(p->v = param_alloc(g, p, ARENA_CAT_OPTIMIZER, ARENA_DTYPE_F32, "adam.v.")))
            return -1;
    }
    return 0;
}

int gpt_build(Gpt *g, const GptConfig *c, GptDevice dev, Arena *arena, int64_t B, int64_t T,
              Err *err) {
    memset(g, 0, sizeof(*g));
    if (gpt_config_check(c, dev, err))
        return -1;
    if (B <= 0 || T <= 0 || T > c->max_seq_len)
        return err_set(err,
                       "gpt: batch shape B=%lld T=%lld invalid (need B > 0, 0 < T <= "
                       "block_size %lld)",
                       (long long)B, (long long)T, (long long)c->max_seq_len);
    g->config = *c;
    g->device = dev;
    g->layout = c->grad_f32 ? gpt_layout_grad_f32(dev) : gpt_layout(dev);
    /* a plan runs no kernel: planning the CUDA layout never starts CUDA */
    g->backend = dev == GPT_DEVICE_CUDA && arena_is_plan(arena) ? NULL : gpt_backend_for(g->layout);
    g->arena = arena;
    g->B = B;
    g->T = T;
    g->loss_chunk = gpt_loss_chunk(c, dev, B, T);
    g->loss_scale = 1.0f;
    g->arena_used_at_build = arena_stats(arena).used_bytes;
    if (!g->backend && !arena_is_plan(arena))
        return err_set(err, "gpt: no %s backend in this build or on this machine",
                       dev == GPT_DEVICE_CUDA ? "cuda" : "cpu");
    if (check_kernels(g, "gpt", err))
        return -1;
    static int tables_checked;
    if (!tables_checked) {
        block_tables_check();
        tables_checked = 1;
    }

    g->saved = calloc((size_t)c->n_layer, sizeof(GptSaved));
    g->top = calloc(1, sizeof(GptTop));
    ASSERT(g->saved && g->top);
    params_index(g);
    if (params_alloc(g))
        return build_fail(g, err);
    const GptLayout *lay = g->layout;
    if (lay->backend_workspace_bytes > 0) {
        g->ws_backend = arena_try_alloc(arena, ARENA_CAT_WORKSPACE, ARENA_DTYPE_U8,
                                        DIMS((int64_t)lay->backend_workspace_bytes), "ws.backend");
        if (!g->ws_backend)
            return build_fail(g, err);
        if (gpt_runs(g) && g->backend->workspace_set)
            g->backend->workspace_set(g->ws_backend->data, g->ws_backend->nbytes);
    }
    if (gpt_runs(g))
        for (int i = 0; i < g->n_params; i++) {
            GptParam *p = &g->params[i];
            Tensor *ts[] = {p->param, p->grad, p->m, p->v, p->master};
            for (int j = 0; j < 5; j++)
                if (ts[j])
                    g->backend->memset_zero(ts[j]->data, ts[j]->nbytes, g->stream);
        }
    return 0;
}

static void release_stack(Gpt *g) {
    while (g->n_stack > 0) {
        Tensor *t = g->stack[--g->n_stack];
        arena_release(g->arena, t);
    }
    if (g->saved)
        memset(g->saved, 0, (size_t)g->config.n_layer * sizeof(GptSaved));
    if (g->top)
        memset(g->top, 0, sizeof(GptTop));
    g->have_forward = 0;
}

void gpt_free(Gpt *g) {
    if (!g->arena)
        return;
    release_stack(g);
    if (g->ws_backend) {
        if (gpt_runs(g) && g->backend->workspace_set)
            g->backend->workspace_set(NULL, 0);
        arena_release(g->arena, g->ws_backend);
    }
    /* reverse allocation order */
    for (int cat = 2; cat >= 0; cat--) {
        for (int i = g->n_params - 1; i >= 0; i--) {
            GptParam *p = &g->params[i];
            if (cat == 2) {
                arena_release(g->arena, p->v);
                arena_release(g->arena, p->m);
                arena_release(g->arena, p->master);
                p->v = p->m = p->master = NULL;
            } else if (cat == 1) {
                arena_release(g->arena, p->grad);
                p->grad = NULL;
            } else {
                arena_release(g->arena, p->param);
                p->param = NULL;
            }
        }
    }
    free(g->params);
    free(g->saved);
    free(g->top);
    free(g->stack);
    memset(g, 0, sizeof(*g));
}

GptParam *gpt_param(Gpt *g, GptParamKind kind, int layer) {
    GptParam *p = g->by_kind[kind];
    if (!p)
        return NULL;
    if (gpt_param_is_per_layer(kind)) {
        ASSERT(layer >= 0 && layer < g->config.n_layer);
        return p + layer;
    }
    return p;
}

void gpt_param_read_f32(Gpt *g, const GptParam *p, float *dst_host) {
    if (!gpt_runs(g)) {
        memset(dst_host, 0, (size_t)p->numel * sizeof(float));
        return;
    }
    g->backend->params_to_host_f32(dst_host, p->param->data, p->param->dtype, p->numel, g->stream);
}

void gpt_param_write_f32(Gpt *g, GptParam *p, const float *src_host) {
    if (!gpt_runs(g))
        return;
    g->backend->params_from_host_f32(p->param->data, p->param->dtype, src_host, p->numel,
                                     g->stream);
    if (p->master)
        g->backend->params_from_host_f32(p->master->data, ARENA_DTYPE_F32, src_host, p->numel,
                                         g->stream);
}

void gpt_init_weights(Gpt *g, uint64_t seed) {
    if (!gpt_runs(g))
        return;
    Rng rng;
    rng_init(&rng, seed);
    const float std = 0.02f;
    const float proj_std = 0.02f / sqrtf(2.0f * (float)g->config.n_layer);
    int64_t max_numel = 0;
    for (int i = 0; i < g->n_params; i++)
        if (g->params[i].numel > max_numel)
            max_numel = g->params[i].numel;
    float *buf = malloc((size_t)max_numel * sizeof(float)); /* host staging, freed below */
    ASSERT(buf != NULL);
    for (int i = 0; i < g->n_params; i++) {
        GptParam *p = &g->params[i];
        switch (p->kind) {
        case GPT_PARAM_LN1W:
        case GPT_PARAM_LN2W:
        case GPT_PARAM_LNFW:
            for (int64_t j = 0; j < p->numel; j++)
                buf[j] = 1.0f;
            break;
        case GPT_PARAM_WTE:
        case GPT_PARAM_WPE:
        case GPT_PARAM_QKVW:
        case GPT_PARAM_FCW:
        case GPT_PARAM_ATTPROJW:
        case GPT_PARAM_FCPROJW: {
            float s =
                (p->kind == GPT_PARAM_ATTPROJW || p->kind == GPT_PARAM_FCPROJW) ? proj_std : std;
            for (int64_t j = 0; j < p->numel; j++)
                buf[j] = (float)(rng_normal(&rng) * s);
            break;
        }
        default:
            memset(buf, 0, (size_t)p->numel * sizeof(float));
        }
        gpt_param_write_f32(g, p, buf);
        g->backend->memset_zero(p->grad->data, p->grad->nbytes, g->stream);
        g->backend->memset_zero(p->m->data, p->m->nbytes, g->stream);
        g->backend->memset_zero(p->v->data, p->v->nbytes, g->stream);
    }
    free(buf);
}

void gpt_set_loss_scale(Gpt *g, float loss_scale) { g->loss_scale = loss_scale; }

int gpt_zero_grad(Gpt *g) {
    if (!gpt_runs(g))
        return 0;
    for (int i = 0; i < g->n_params; i++)
        g->backend->memset_zero(g->params[i].grad->data, g->params[i].grad->nbytes, g->stream);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* forward                                                                                   */

/* Forward through the encoder and all blocks; in TRAIN leaves the stack as documented, in
 * EVAL returns the last block output as workspace (in s->ws). */
static Tensor *forward_blocks(StepCtx *s, const int32_t *inputs, int64_t B, int64_t T, int train) {
    Gpt *g = s->g;
    const GptBackend *be = g->backend;
    int run = gpt_runs(g);
    int64_t C = g->config.channels;
    ArenaDtype adt = g->layout->act_dtype;
    GptTop *top = gpt_top(g);

    Tensor *inp =
        step_alloc(s, train, ARENA_DTYPE_I32, DIMS(B, T), "%s.inputs", train ? "act" : "ws");
    Tensor *x = step_alloc(s, train, adt, DIMS(B, T, C), "%s.encoder.out", train ? "act" : "ws");
    if (s->failed)
        return NULL;
    if (run) {
        be->copy_from_host(inp->data, inputs, (size_t)(B * T) * sizeof(int32_t), g->stream);
        be->encoder_forward(x->data, inp->data, pdata(g, GPT_PARAM_WTE, -1),
                            pdata(g, GPT_PARAM_WPE, -1), B, T, C, g->stream);
    }
    if (train) {
        top->inputs = inp;
        top->enc_out = x;
    } else {
        ws_release(g, &s->ws, &inp);
    }
    for (int l = 0; l < g->config.n_layer; l++) {
        Block k;
        Tensor *local[BT_COUNT] = {0}; /* eval: the block's tensors live only in this pass */
        Tensor **in_slot = l > 0 ? &g->saved[l - 1].t[BT_OUT] : &top->enc_out;
        if (!train) {
            local[BT_IN] = x;
            in_slot = &local[BT_IN];
        }
        block_init(&k, s, l, train ? BLOCK_TRAIN : BLOCK_EVAL, in_slot,
                   train ? g->saved[l].t : local, B, T);
        block_forward(&k);
        if (s->failed)
            return NULL;
        if (!train)
            ws_release(g, &s->ws, &local[BT_IN]);
        x = *k.slot[BT_OUT];
    }
    return x;
}

/* The loss head over lnf (N,C): chunked logits, per-token losses, and with dscale != 0 the
 * fused backward (grad.wte += ..., lnf overwritten by its gradient). Returns the mean loss. */
static float loss_head(StepCtx *s, Tensor *lnf, const int32_t *targets, int64_t N, float dscale) {
    Gpt *g = s->g;
    const GptBackend *be = g->backend;
    int run = gpt_runs(g);
    const GptConfig *c = &g->config;
    int64_t C = c->channels, V = c->vocab_size, Vp = c->padded_vocab_size;
    int64_t chunk = g->loss_chunk < N ? g->loss_chunk : N;
    ArenaDtype adt = g->layout->act_dtype;

    Tensor *tg = step_alloc(s, 0, ARENA_DTYPE_I32, DIMS(N), "ws.targets");
    Tensor *losses = step_alloc(s, 0, ARENA_DTYPE_F32, DIMS(N), "ws.losses");
    Tensor *logits = step_alloc(s, 0, adt, DIMS(chunk, Vp), "ws.logits");
    Tensor *sum = step_alloc(s, 0, ARENA_DTYPE_F32, DIMS(1), "ws.loss_sum");
    if (s->failed)
        return 0.0f;
    float mean = 0.0f;
    if (run) {
        GptParam *wte = gpt_param(g, GPT_PARAM_WTE, -1);
        be->copy_from_host(tg->data, targets, (size_t)N * sizeof(int32_t), g->stream);
        for (int64_t r = 0; r < N; r += chunk) {
            int64_t n = N - r < chunk ? N - r : chunk;
            void *x = trow(lnf, r, C);
            be->matmul_forward(logits->data, x, wte->param->data, NULL, NULL, n, C, Vp, g->stream);
            be->crossentropy_forward(logits->data, (float *)losses->data + r,
                                     (int32_t *)tg->data + r, n, V, Vp, dscale, g->stream);
            if (dscale != 0.0f)
                be->matmul_backward(x, wte->grad->data, NULL, logits->data, x, wte->param->data, n,
                                    C, Vp, g->stream);
        }
        be->reduce_sum(sum->data, losses->data, N, g->stream);
        float h = 0.0f;
        be->copy_to_host(&h, sum->data, sizeof(float), g->stream);
        if (check_device(g, "gpt_forward", s->err)) /* after a fault h is not the sum */
            s->failed = 1;
        else
            mean = h / (float)N;
    }
    ws_release(g, &s->ws, &sum);
    ws_release(g, &s->ws, &logits);
    ws_release(g, &s->ws, &losses);
    ws_release(g, &s->ws, &tg);
    return mean;
}

/* ln_f over the last block's output x (B,T,C): its mean, rstd and output, saved (act.*) for
 * a training forward, workspace otherwise. Returns the output (NULL when refused). */
static Tensor *final_layernorm(StepCtx *s, Tensor *x, int saved, Tensor **mean, Tensor **rstd) {
    Gpt *g = s->g;
    int64_t B = x->shape[0], T = x->shape[1], C = x->shape[2];
    const char *pre = saved ? "act" : "ws";
    *mean = step_alloc(s, saved, ARENA_DTYPE_F32, DIMS(B, T), "%s.ln_f.mean", pre);
    *rstd = step_alloc(s, saved, ARENA_DTYPE_F32, DIMS(B, T), "%s.ln_f.rstd", pre);
    Tensor *lnf = step_alloc(s, saved, g->layout->act_dtype, DIMS(B, T, C), "%s.ln_f", pre);
    if (s->failed || !gpt_runs(g))
        return lnf;
    g->backend->layernorm_forward(lnf->data, (*mean)->data, (*rstd)->data, x->data,
                                  pdata(g, GPT_PARAM_LNFW, -1), pdata(g, GPT_PARAM_LNFB, -1), B * T,
                                  C, g->stream);
    return lnf;
}

static int check_shape(Gpt *g, int64_t B, int64_t T, Err *err) {
    if (B <= 0 || T <= 0 || B > g->B || T > g->T)
        return err_set(err, "gpt: batch shape B=%lld T=%lld outside the built B=%lld T=%lld",
                       (long long)B, (long long)T, (long long)g->B, (long long)g->T);
    return 0;
}

static int step_fail(StepCtx *s) {
    ws_release_all(s->g, &s->ws);
    release_stack(s->g);
    return -1;
}

int gpt_forward(Gpt *g, const int32_t *inputs, const int32_t *targets, int64_t B, int64_t T,
                int for_backward, float *loss_out, Err *err) {
    if (check_shape(g, B, T, err))
        return -1;
    if (for_backward && !targets && gpt_runs(g))
        return err_set(err, "gpt_forward: for_backward needs targets");
    if (g->have_forward)
        return err_set(err, "gpt_forward: the previous training forward has not been "
                            "followed by gpt_backward");
    if (check_kernels(g, "gpt_forward", err))
        return -1;
    StepCtx s = {.g = g, .err = err};
    int run = gpt_runs(g);
    int64_t N = B * T;
    GptTop *top = gpt_top(g);
    arena_trace_mark(g->arena, "%s", for_backward ? "forward" : "forward (eval)");

    Tensor *x = forward_blocks(&s, inputs, B, T, for_backward);
    if (s.failed)
        return step_fail(&s);
    Tensor *mean, *rstd, *lnf = final_layernorm(&s, x, for_backward, &mean, &rstd);
    if (s.failed)
        return step_fail(&s);
    float loss = 0.0f;
    if (targets || (for_backward && !run)) {
        float dscale = for_backward ? g->loss_scale / (float)N : 0.0f;
        loss = loss_head(&s, lnf, targets, N, dscale);
        if (s.failed)
            return step_fail(&s);
    }
    if (for_backward) {
        top->lnf_mean = mean;
        top->lnf_rstd = rstd;
        top->lnf = lnf;
        g->have_forward = 1;
        g->fB = B;
        g->fT = T;
    } else {
        ws_release_all(g, &s.ws);
    }
    if (loss_out)
        *loss_out = loss;
    return 0;
}

int gpt_forward_last_logits(Gpt *g, const int32_t *inputs, int64_t B, int64_t T, float *logits,
                            Err *err) {
    if (check_shape(g, B, T, err))
        return -1;
    if (g->have_forward)
        return err_set(err, "gpt_forward_last_logits: a training forward is waiting for backward");
    if (check_kernels(g, "gpt_forward_last_logits", err))
        return -1;
    StepCtx s = {.g = g, .err = err};
    const GptBackend *be = g->backend;
    int run = gpt_runs(g);
    int64_t C = g->config.channels, Vp = g->config.padded_vocab_size;
    ArenaDtype adt = g->layout->act_dtype;
    Tensor *x = forward_blocks(&s, inputs, B, T, 0);
    if (s.failed)
        return step_fail(&s);
    Tensor *mean, *rstd, *lnf = final_layernorm(&s, x, 0, &mean, &rstd);
    Tensor *lg = step_alloc(&s, 0, adt, DIMS(B, Vp), "ws.logits");
    if (s.failed)
        return step_fail(&s);
    if (run) {
        /* gather the last row of each sequence: a matmul over the rows b*T+T-1 only */
        for (int64_t b = 0; b < B; b++)
            be->matmul_forward(trow(lg, b, Vp), trow(lnf, b * T + T - 1, C),
                               pdata(g, GPT_PARAM_WTE, -1), NULL, NULL, 1, C, Vp, g->stream);
        be->params_to_host_f32(logits, lg->data, adt, B * Vp, g->stream);
        if (check_device(g, "gpt_forward_last_logits", err))
            return step_fail(&s);
    } else {
        memset(logits, 0, (size_t)(B * Vp) * sizeof(float));
    }
    ws_release_all(g, &s.ws);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* backward                                                                                  */

int gpt_backward(Gpt *g, float loss_scale, Err *err) {
    if (!g->have_forward)
        return err_set(err,
                       "gpt_backward: no training forward (for_backward=1) to go back through");
    ASSERT_MSG(loss_scale == g->loss_scale,
               "gpt_backward: loss_scale differs from the one the fused loss head used");
    if (check_kernels(g, "gpt_backward", err))
        return -1;
    StepCtx s = {.g = g, .err = err};
    const GptBackend *be = g->backend;
    int run = gpt_runs(g);
    const GptConfig *c = &g->config;
    int64_t B = g->fB, T = g->fT, C = c->channels, N = B * T, L = c->n_layer;
    ArenaDtype adt = g->layout->act_dtype;
    GptTop *top = gpt_top(g);
    void *st = g->stream;
    arena_trace_mark(g->arena, "backward");

    Tensor *dx = step_alloc(&s, 0, adt, DIMS(B, T, C), "ws.dresidual");
    Tensor *d1 = step_alloc(&s, 0, adt, DIMS(B, T, C), "ws.dbuf_c");
    Tensor *d4 = step_alloc(&s, 0, adt, DIMS(B, T, 4 * C), "ws.dbuf_4c");
    if (s.failed)
        return step_fail(&s);

    /* ln_f: act.ln_f holds dL/d(ln_f output) from the fused head */
    Tensor **xl_slot = L > 0 ? &g->saved[L - 1].t[BT_OUT] : &top->enc_out;
    if (run) {
        be->memset_zero(dx->data, dx->nbytes, st);
        be->layernorm_backward(dx->data, gdata(g, GPT_PARAM_LNFW, -1), gdata(g, GPT_PARAM_LNFB, -1),
                               top->lnf->data, (*xl_slot)->data, pdata(g, GPT_PARAM_LNFW, -1),
                               top->lnf_mean->data, top->lnf_rstd->data, N, C, st);
    }
    act_pop(g, &top->lnf);
    act_pop(g, &top->lnf_rstd);
    act_pop(g, &top->lnf_mean);
    /* the last block's output: read by ln_f's backward only */
    act_pop(g, xl_slot);
    for (int l = (int)L - 1; l >= 0; l--) {
        Block k;
        Tensor **in_slot = l > 0 ? &g->saved[l - 1].t[BT_OUT] : &top->enc_out;
        block_init(&k, &s, l, BLOCK_BACKWARD, in_slot, g->saved[l].t, B, T);
        k.grad[GRAD_RESIDUAL] = dx;
        k.grad[GRAD_C] = d1;
        k.grad[GRAD_WIDE] = d4;
        /* pops the block's tensors and its input, the output of block l-1 */
        block_backward(&k);
        if (s.failed)
            return step_fail(&s);
    }
    if (run)
        be->encoder_backward(gpt_param(g, GPT_PARAM_WTE, -1)->grad->data,
                             gpt_param(g, GPT_PARAM_WPE, -1)->grad->data, dx->data,
                             top->inputs->data, B, T, C, st);
    act_pop(g, &top->inputs);
    ws_release_all(g, &s.ws);
    ASSERT(g->n_stack == 0);
    g->have_forward = 0;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* update                                                                                    */

/* Every parameter as the multi-tensor optimizer entries take it (malloc'd; free it), or NULL
 * when the backend has no such entries or the list cannot be allocated: the caller then loops
 * over the per-tensor entries. */
static GptOptimTensor *optim_list(const Gpt *g, float weight_decay) {
    const GptBackend *be = g->backend;
    if (!be->norm_squared_multi || !be->adamw_update_multi)
        return NULL;
    GptOptimTensor *l = malloc((size_t)g->n_params * sizeof(*l));
    for (int i = 0; l && i < g->n_params; i++) {
        const GptParam *p = &g->params[i];
        l[i] = (GptOptimTensor){p->param->data,
                                tdata(p->master),
                                p->grad->data,
                                p->m->data,
                                p->v->data,
                                p->numel,
                                p->decay ? weight_decay : 0.0f};
    }
    return l;
}

int gpt_update(Gpt *g, float lr, float beta1, float beta2, float eps, float weight_decay,
               float grad_clip, int64_t step, float grad_scale, float *grad_norm_out, Err *err) {
    if (step < 1)
        return err_set(err, "gpt_update: step %lld must be >= 1", (long long)step);
    if (!(grad_scale > 0.0f))
        return err_set(err, "gpt_update: grad_scale %g must be > 0", (double)grad_scale);
    StepCtx s = {.g = g, .err = err};
    const GptBackend *be = g->backend;
    int run = gpt_runs(g);
    arena_trace_mark(g->arena, "update");
    Tensor *acc = step_alloc(&s, 0, ARENA_DTYPE_F32, DIMS(1), "ws.grad_norm");
    if (s.failed)
        return step_fail(&s);
    float norm = 0.0f;
    GptOptimTensor *list = run ? optim_list(g, weight_decay) : NULL;
    if (run) {
        be->memset_zero(acc->data, sizeof(float), g->stream);
        if (list) /* one reduction over every gradient */
            be->norm_squared_multi(acc->data, list, g->n_params, g->stream);
        for (int i = 0; !list && i < g->n_params; i++)
            be->norm_squared_accumulate(acc->data, g->params[i].grad->data, g->params[i].numel,
                                        g->stream);
        float sumsq = 0.0f;
        be->copy_to_host(&sumsq, acc->data, sizeof(float), g->stream);
        if (check_device(g, "gpt_update", err)) {
            free(list);
            ws_release_all(g, &s.ws);
            return -1;
        }
        norm = sqrtf(sumsq) / grad_scale;
        if (!isfinite(norm)) {
            /* an overflow in the (loss-scaled) gradients: GradScaler skips the step and the
             * caller halves the scale; no parameter or optimizer state changes */
            free(list);
            ws_release_all(g, &s.ws);
            if (grad_norm_out)
                *grad_norm_out = norm;
            return 0;
        }
        float grad_mul = 1.0f / grad_scale;
        /* torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), applied when < 1 */
        if (grad_clip > 0.0f) {
            float coef = grad_clip / (norm + 1e-6f);
            if (coef < 1.0f)
                grad_mul *= coef;
        }
        float bc1 = 1.0f - powf(beta1, (float)step);
        float bc2 = 1.0f - powf(beta2, (float)step);
        if (list)
            be->adamw_update_multi(list, g->n_params, lr, beta1, beta2, eps, grad_mul, bc1, bc2,
                                   g->stream);
        for (int i = 0; !list && i < g->n_params; i++) {
            GptParam *p = &g->params[i];
            be->adamw_update(p->param->data, tdata(p->master), p->grad->data, p->m->data,
                             p->v->data, p->numel, lr, beta1, beta2, eps,
                             p->decay ? weight_decay : 0.0f, grad_mul, bc1, bc2, g->stream);
        }
    }
    free(list);
    ws_release_all(g, &s.ws);
    if (grad_norm_out)
        *grad_norm_out = norm;
    return 0;
}

float gpt_get_lr(int64_t it, float learning_rate, int64_t warmup_iters, int64_t lr_decay_iters,
                 float min_lr, int decay_lr) {
    if (!decay_lr)
        return learning_rate;
    if (it < warmup_iters)
        return learning_rate * (float)(it + 1) / (float)(warmup_iters + 1);
    if (it > lr_decay_iters)
        return min_lr;
    double ratio = (double)(it - warmup_iters) / (double)(lr_decay_iters - warmup_iters);
    if (ratio < 0.0)
        ratio = 0.0;
    if (ratio > 1.0)
        ratio = 1.0;
    double coeff = 0.5 * (1.0 + cos(M_PI * ratio));
    return (float)(min_lr + coeff * (learning_rate - min_lr));
}

/* ---------------------------------------------------------------------------------------- */
/* plan                                                                                      */

int gpt_step_sequence(Gpt *g, const int32_t *inputs, const int32_t *targets, int64_t B, int64_t T,
                      int64_t grad_accum, Err *err) {
    int32_t *zeros = NULL;
    if (gpt_runs(g) && (!inputs || !targets)) {
        zeros = calloc((size_t)(B * T), sizeof(int32_t));
        ASSERT(zeros != NULL);
        inputs = inputs ? inputs : zeros;
        targets = targets ? targets : zeros;
    }
    int rc = gpt_zero_grad(g);
    for (int64_t a = 0; rc == 0 && a < grad_accum; a++) {
        rc = gpt_forward(g, inputs, targets, B, T, 1, NULL, err);
        if (rc == 0)
            rc = gpt_backward(g, g->loss_scale, err);
    }
    if (rc == 0)
        rc = gpt_update(g, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 1, (float)grad_accum, NULL, err);
    free(zeros);
    return rc;
}

int gpt_plan_accum(const GptConfig *c, GptDevice dev, int64_t B, int64_t T, int64_t grad_accum,
                   size_t limit_bytes, Arena **arena_out, Err *err) {
    *arena_out = NULL;
    Arena *a = arena_init(ARENA_BACKING_PLAN, 0, limit_bytes, err);
    if (!a)
        return -1;
    *arena_out = a;
    Gpt g;
    if (gpt_build(&g, c, dev, a, B, T, err))
        return -1;
    int rc = gpt_step_sequence(&g, NULL, NULL, B, T, grad_accum, err);
    /* the model stays built in the plan: the arena describes a run in progress */
    gpt_forget(&g);
    return rc;
}

void gpt_forget(Gpt *g) {
    free(g->params);
    free(g->saved);
    free(g->top);
    free(g->stack);
    memset(g, 0, sizeof *g);
}

int gpt_plan(const GptConfig *c, GptDevice dev, int64_t B, int64_t T, size_t limit_bytes,
             Arena **arena_out, Err *err) {
    return gpt_plan_accum(c, dev, B, T, 1, limit_bytes, arena_out, err);
}

/* ---------------------------------------------------------------------------------------- */
/* FLOPs                                                                                     */

double gpt_flops_forward_per_token(const GptConfig *c, int64_t T) {
    double per_layer = 0.0;
    for (int i = 0; i < BLOCK_N_STEPS; i++)
        per_layer += step_flops_per_token(c, &BLOCK_STEPS[i], T);
    return (double)c->n_layer * per_layer +
           2.0 * (double)c->channels * (double)c->padded_vocab_size;
}

/* the block steps backward re-runs: those with an output the mode does not save (full: all
 * but the last; selective: attention's probabilities and (free of matmuls) LayerNorm, GELU) */
int gpt_attention_resolve(GptConfig *c, GptDevice dev, int64_t B, int64_t T, char *notice,
                          size_t len) {
    if (notice && len)
        notice[0] = '\0';
    if (c->attention != GPT_ATTENTION_CUDNN || dev != GPT_DEVICE_CUDA)
        return 0;
    const GptBackend *be = gpt_backend(dev);
    if (!be)
        return 0; /* nothing runs: a plan */
    char reason[512] = "this build's CUDA backend has no cuDNN attention";
    int64_t C = c->channels, NH = c->n_head;
    if (be->cudnn_attention_prepare &&
        be->cudnn_attention_prepare(B, T, C, NH, gpt_cudnn_workspace_bytes(B, T, C, NH), reason,
                                    sizeof reason) == 0)
        return 0;
    int flash = C / NH <= GPT_FLASH_CUDA_MAX_HS;
    c->attention = flash ? GPT_ATTENTION_FLASH : GPT_ATTENTION_NAIVE;
    snprintf(notice, len, "attention=cudnn is not available (%s): using attention=%s", reason,
             flash ? "flash" : "naive");
    return 1;
}

double gpt_flops_attention_recompute_per_token(const GptConfig *c, int64_t T, GptDevice dev) {
    double C = (double)c->channels, L = (double)c->n_layer;
    double scores = 2.0 * (double)T * C; /* QK^T, counted on the full T x T like the forward */
    if (c->attention == GPT_ATTENTION_FLASH)
        return L * scores * (dev == GPT_DEVICE_CUDA ? 3.0 : 1.0);
    if (c->attention == GPT_ATTENTION_CUDNN)
        return L * scores;
    return 0.0;
}

double gpt_flops_recompute_per_token(const GptConfig *c, int64_t T, GptRecompute recompute) {
    double per_layer = 0.0;
    for (int i = 0; i < BLOCK_N_STEPS; i++)
        if (step_recomputed(c, &BLOCK_STEPS[i], recompute))
            per_layer += step_flops_per_token(c, &BLOCK_STEPS[i], T);
    return (double)c->n_layer * per_layer;
}
