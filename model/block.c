/* block.c: the transformer block as data and the passes that follow from it.
 * BLOCK_TENSORS says what a block stores (name, shape, dtype, recompute class, lifetime),
 * BLOCK_STEPS what it computes, in forward order; the attention kind's row comes from
 * attention.c. block_forward_layer runs the steps top to bottom and block_backward_layer bottom
 * to top; every allocation, save, release, pop and recompute follows from the tables and the
 * recompute mode (docs/ARCHITECTURE.md: the tables, and how to add a tensor or a step).
 *
 * Invariants: the sequence of arena calls depends only on the config, the shapes and the
 * phase (never on data); activations are popped in exactly reverse order (the arena ASSERTs
 * LIFO); recompute re-runs the same kernels on the same inputs, so gradients are
 * bit-identical across recompute modes. */
#include <string.h>

#include "gpt_internal.h"

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

static const BlockTensorDesc *block_desc(const GptConfig *c, BlockTensor t) {
    return t == BT_ATT ? &attention_kind(c->attention)->saved : &BLOCK_TENSORS[t];
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
    if (st->kind == STEP_ATTENTION && attention_kind(c->attention)->backward_reads_out)
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

void block_tables_check(void) {
    for (int a = 0; a < GPT_ATTENTION_COUNT; a++) {
        GptConfig c = {.attention = (GptAttention)a};
        block_tables_check_kind(&c);
    }
}

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
                      attention_kind(c->attention)->ws_name);
}

/* Runs the forward of one step: allocates its outputs that are not live, then the kernel.
 * In backward (a recompute) an output whose backward reader has already run goes to
 * block_scratch. */
static void step_forward(Block *k, const BlockStep *st) {
    Gpt *g = k->g;
    const GptBackend *be = g->backend;
    const GptConfig *c = &g->config;
    const AttentionKind *att = attention_kind(c->attention);
    int64_t C = c->channels, N = k->B * k->T;
    void *scratch[BT_COUNT] = {0}; /* where an output goes when in_scratch (NULL in a plan) */
    unsigned in_scratch = 0;
    BlockTensor outs[3];
    int n = step_outputs(st, outs);
    for (int j = 0; j < n; j++) {
        if (*k->slot[outs[j]])
            continue;
        if (k->phase == BLOCK_BACKWARD && (k->popped & (1u << outs[j]))) {
            scratch[outs[j]] = block_scratch(k, st, outs[j]);
            in_scratch |= 1u << outs[j];
        } else
            block_alloc(k, outs[j], block_saves(k, outs[j]));
    }
    Tensor *aws = NULL;
    if (st->kind == STEP_ATTENTION && att->forward_workspace)
        aws = attention_workspace(k, att->forward_workspace);
    if (k->s->failed) {
        ws_release(g, &k->s->ws, &aws);
        return;
    }
#define OUT(t) (in_scratch & (1u << (t)) ? scratch[t] : bdata(k, t))
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
        be->attention[c->attention].forward(OUT(st->out), OUT(st->side), tdata(aws),
                                            bdata(k, st->in), k->B, k->T, C, c->n_head, g->stream);
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
            if (*slot && arena_activation_top(g->arena) == *slot) {
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
    const AttentionKind *att = attention_kind(c->attention);
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
        be->attention[c->attention].backward(bgrad(k, st->in), bdata(k, st->side), tdata(aws),
                                             bgrad(k, st->out),
                                             att->backward_reads_out ? bdata(k, st->out) : NULL,
                                             bdata(k, st->in), k->B, k->T, C, c->n_head, g->stream);
        break;
    case STEP_GELU:
        be->gelu_backward(bgrad(k, st->in), bdata(k, st->in), bgrad(k, st->out),
                          tnumel(*k->slot[st->in]), c->gelu, g->stream);
        break;
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

void block_forward_layer(StepCtx *s, int l, BlockPhase phase, Tensor **in_slot, Tensor **slots,
                         int64_t B, int64_t T) {
    Block k;
    block_init(&k, s, l, phase, in_slot, slots, B, T);
    block_forward(&k);
}

void block_backward_layer(StepCtx *s, int l, Tensor **in_slot, Tensor **slots, Tensor *dx,
                          Tensor *d1, Tensor *d4, int64_t B, int64_t T) {
    Block k;
    block_init(&k, s, l, BLOCK_BACKWARD, in_slot, slots, B, T);
    k.grad[GRAD_RESIDUAL] = dx;
    k.grad[GRAD_C] = d1;
    k.grad[GRAD_WIDE] = d4;
    block_backward(&k);
}

double block_flops_forward_per_token(const GptConfig *c, int64_t T) {
    double per_layer = 0.0;
    for (int i = 0; i < BLOCK_N_STEPS; i++)
        per_layer += step_flops_per_token(c, &BLOCK_STEPS[i], T);
    return per_layer;
}

/* the block steps backward re-runs: those with an output the mode does not save (full: all
 * but the last; selective: attention's probabilities and (free of matmuls) LayerNorm, GELU) */
double block_flops_recompute_per_token(const GptConfig *c, int64_t T, GptRecompute mode) {
    double per_layer = 0.0;
    for (int i = 0; i < BLOCK_N_STEPS; i++)
        if (step_recomputed(c, &BLOCK_STEPS[i], mode))
            per_layer += step_flops_per_token(c, &BLOCK_STEPS[i], T);
    return per_layer;
}
