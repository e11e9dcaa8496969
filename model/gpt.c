/* gpt.c: GPT-2 orchestration over the backend table: parameter bookkeeping, the activation
 * stack and its recompute policies, the chunked loss head, AdamW, and the memory plan.
 *
 * Invariants:
 *   - every tensor comes from g->arena; the sequence of arena calls depends only on the
 *     config, the shapes and which phase functions are called (never on data), so a plan
 *     arena (no kernels run) reproduces a host run byte for byte;
 *   - activations are pushed in forward and popped in backward in exactly reverse order
 *     (arena ASSERTs LIFO);
 *   - recompute never changes what a kernel computes: the recomputed tensors are produced by
 *     the same kernels from the same inputs, so gradients are bit-identical.
 *
 * Activation stack of one training forward (recompute none), bottom to top:
 *   act.inputs (B,T) i32, act.encoder.out (B,T,C),
 *   per layer l: ln_1.mean, ln_1.rstd, ln_1, attn.qkv, attn.att, attn.y, res_2,
 *                ln_2.mean, ln_2.rstd, ln_2, mlp.fc, mlp.gelu, act.h.<l>.out (next input),
 *   act.ln_f.mean, act.ln_f.rstd, act.ln_f (holds dL/d ln_f after the fused head).
 * selective: ln_1, attn.att, ln_2, mlp.gelu are forward workspace, pushed again in backward.
 * attention=flash|cudnn: attn.lse (B,NH,T) f32 in place of attn.att, saved like attn.y (also
 * by selective: the fused backward recomputes the probabilities itself and reads y).
 * full: per layer only act.h.<l>.out (allocated before the block's temporaries, which are
 * workspace); backward re-runs the block (up to mlp.gelu) pushing the none-mode set. */
#include "gpt.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../data/rng.h"

/* per-layer activations (NULL when not live) */
typedef struct GptSaved {
    Tensor *ln1_mean, *ln1_rstd, *ln1; /* (B,T), (B,T), (B,T,C) */
    Tensor *qkv;                       /* (B,T,3C) */
    Tensor *att;                       /* (B,NH,T,T) naive, (B,NH,T) f32 lse for flash, cudnn */
    Tensor *atty;                      /* (B,T,C) */
    Tensor *res2;                      /* (B,T,C) */
    Tensor *ln2_mean, *ln2_rstd, *ln2; /* (B,T), (B,T), (B,T,C) */
    Tensor *fch, *fch_gelu;            /* (B,T,4C) */
    Tensor *out;                       /* (B,T,C) the block output = next block's input */
} GptSaved;

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
    if (c->gelu != 0 && c->gelu != 1)
        return err_set(err, "gpt: gelu %d is not 0 (tanh) or 1 (erf)", c->gelu);
    if (c->recompute < GPT_RECOMPUTE_NONE || c->recompute > GPT_RECOMPUTE_FULL)
        return err_set(err, "gpt: recompute %d is not 0 (none), 1 (selective) or 2 (full)",
                       c->recompute);
    if (c->attention < 0 || c->attention >= GPT_ATTENTION_COUNT)
        return err_set(err, "gpt: attention %d is not 0 (naive), 1 (cudnn) or 2 (flash)",
                       c->attention);
    if (c->attention == GPT_ATTENTION_CUDNN && dev != GPT_DEVICE_CUDA)
        return err_set(err, "gpt: attention=cudnn needs --device=cuda (the CPU has naive and "
                            "flash)");
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

/* Auto chunk: about 32 MiB of f32 logits per chunk, at least 1 and at most B*T tokens. */
#define GPT_LOSS_CHUNK_AUTO_BYTES ((int64_t)32 << 20)

int64_t gpt_loss_chunk(const GptConfig *c, int64_t B, int64_t T) {
    int64_t n = B * T;
    int64_t chunk = c->loss_chunk;
    if (chunk <= 0) {
        chunk = GPT_LOSS_CHUNK_AUTO_BYTES / (c->padded_vocab_size * 4);
        if (chunk < 1)
            chunk = 1;
    }
    return chunk < n ? chunk : n;
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

static Tensor *alloc_nd(Gpt *g, ArenaCategory cat, ArenaDtype dt, int ndim, int64_t d0, int64_t d1,
                        int64_t d2, int64_t d3, const char *name) {
    int64_t shape[4] = {d0, d1, d2, d3};
    Tensor *t = arena_try_alloc(g->arena, cat, dt, ndim, shape, "%s", name);
    return t;
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

/* saved = 1: an activation pushed on the stack; 0: workspace in ctx's scope */
static Tensor *step_alloc(StepCtx *s, int saved, ArenaDtype dt, int ndim, int64_t d0, int64_t d1,
                          int64_t d2, int64_t d3, const char *fmt, ...)
    __attribute__((format(printf, 9, 10)));

static Tensor *step_alloc(StepCtx *s, int saved, ArenaDtype dt, int ndim, int64_t d0, int64_t d1,
                          int64_t d2, int64_t d3, const char *fmt, ...) {
    if (s->failed)
        return NULL;
    char name[ARENA_NAME_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    Tensor *t = alloc_nd(s->g, saved ? ARENA_CAT_ACTIVATIONS : ARENA_CAT_WORKSPACE, dt, ndim, d0,
                         d1, d2, d3, name);
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

/* ---------------------------------------------------------------------------------------- */
/* lifecycle                                                                                 */

static int build_fail(Gpt *g, Err *err) {
    err_set(err, "%s", arena_last_error(g->arena));
    gpt_free(g);
    return -1;
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
    g->layout = gpt_layout(dev);
    g->backend = gpt_backend(dev);
    g->arena = arena;
    g->B = B;
    g->T = T;
    g->loss_chunk = gpt_loss_chunk(c, B, T);
    g->loss_scale = 1.0f;
    g->arena_used_at_build = arena_stats(arena).used_bytes;
    if (!g->backend && !arena_is_plan(arena))
        return err_set(err, "gpt: no %s backend in this build or on this machine",
                       dev == GPT_DEVICE_CUDA ? "cuda" : "cpu");

    int64_t L = c->n_layer;
    g->saved = calloc((size_t)L, sizeof(GptSaved));
    g->top = calloc(1, sizeof(GptTop));
    ASSERT(g->top != NULL);
    int n = 0;
    for (int k = 0; k < GPT_PARAM_KIND_COUNT; k++) {
        int64_t shape[2];
        if (gpt_param_shape(c, (GptParamKind)k, shape))
            n += gpt_param_is_per_layer((GptParamKind)k) ? (int)L : 1;
    }
    g->params = calloc((size_t)n, sizeof(GptParam));
    ASSERT(g->saved && g->params);

    /* entries in llm.c order; allocation category by category: params, grads, optimizer */
    int i = 0;
    for (int k = 0; k < GPT_PARAM_KIND_COUNT; k++) {
        int64_t shape[2];
        int nd = gpt_param_shape(c, (GptParamKind)k, shape);
        if (!nd)
            continue;
        int per_layer = gpt_param_is_per_layer((GptParamKind)k);
        g->by_kind[k] = &g->params[i];
        for (int64_t l = 0; l < (per_layer ? L : 1); l++) {
            GptParam *p = &g->params[i++];
            p->kind = (GptParamKind)k;
            p->layer = per_layer ? (int)l : -1;
            p->decay = nd == 2;
            p->numel = nd == 2 ? shape[0] * shape[1] : shape[0];
        }
    }
    g->n_params = n;

    const GptLayout *lay = g->layout;
    for (int cat = 0; cat < 3; cat++) {
        for (i = 0; i < n; i++) {
            GptParam *p = &g->params[i];
            int64_t shape[2];
            int nd = gpt_param_shape(c, p->kind, shape);
            char name[ARENA_NAME_LEN];
            if (p->layer >= 0)
                snprintf(name, sizeof(name), "h.%d.%s", p->layer, PARAM_NAMES[p->kind]);
            else
                snprintf(name, sizeof(name), "%s", PARAM_NAMES[p->kind]);
            if (cat == 0) {
                p->param = arena_try_alloc(arena, ARENA_CAT_PARAMS, lay->param_dtype, nd, shape,
                                           "%s", name);
                if (!p->param)
                    return build_fail(g, err);
            } else if (cat == 1) {
                p->grad = arena_try_alloc(arena, ARENA_CAT_GRADS, lay->grad_dtype, nd, shape,
                                          "grad.%s", name);
                if (!p->grad)
                    return build_fail(g, err);
            } else {
                if (lay->has_master) {
                    p->master = arena_try_alloc(arena, ARENA_CAT_OPTIMIZER, ARENA_DTYPE_F32, nd,
                                                shape, "master.%s", name);
                    if (!p->master)
                        return build_fail(g, err);
                }
                p->m = arena_try_alloc(arena, ARENA_CAT_OPTIMIZER, ARENA_DTYPE_F32, nd, shape,
                                       "adam.m.%s", name);
                if (!p->m)
                    return build_fail(g, err);
                p->v = arena_try_alloc(arena, ARENA_CAT_OPTIMIZER, ARENA_DTYPE_F32, nd, shape,
                                       "adam.v.%s", name);
                if (!p->v)
                    return build_fail(g, err);
            }
        }
    }
    if (lay->backend_workspace_bytes > 0) {
        int64_t shape[1] = {(int64_t)lay->backend_workspace_bytes};
        g->ws_backend =
            arena_try_alloc(arena, ARENA_CAT_WORKSPACE, ARENA_DTYPE_U8, 1, shape, "ws.backend");
        if (!g->ws_backend)
            return build_fail(g, err);
        if (gpt_runs(g) && g->backend->workspace_set)
            g->backend->workspace_set(g->ws_backend->data, g->ws_backend->nbytes);
    }
    if (gpt_runs(g)) {
        for (i = 0; i < n; i++) {
            GptParam *p = &g->params[i];
            g->backend->memset_zero(p->param->data, p->param->nbytes, g->stream);
            g->backend->memset_zero(p->grad->data, p->grad->nbytes, g->stream);
            g->backend->memset_zero(p->m->data, p->m->nbytes, g->stream);
            g->backend->memset_zero(p->v->data, p->v->nbytes, g->stream);
            if (p->master)
                g->backend->memset_zero(p->master->data, p->master->nbytes, g->stream);
        }
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

/* What a block does with its tensors. */
typedef enum BlockPhase {
    BLOCK_TRAIN,     /* training forward: saves per recompute mode, writes the output */
    BLOCK_EVAL,      /* no backward: everything workspace, writes the output */
    BLOCK_RECOMPUTE, /* full recompute in backward: saves the none-mode set, stops at gelu */
} BlockPhase;

#define P(kind, l) tdata(gpt_param(g, (kind), (l)) ? gpt_param(g, (kind), (l))->param : NULL)

/* Runs block l on `in` (B,T,C). Saved tensors go to g->saved[l] and the stack. In TRAIN and
 * EVAL, *out gets the block output (allocated here: an activation when training, workspace
 * in eval, kept in s->ws for the caller to release). */
static void block_forward(StepCtx *s, int l, BlockPhase phase, Tensor *in, Tensor **out_ws,
                          int64_t B, int64_t T) {
    Gpt *g = s->g;
    const GptBackend *be = g->backend;
    int run = gpt_runs(g);
    const GptConfig *c = &g->config;
    int64_t C = c->channels, NH = c->n_head, N = B * T;
    ArenaDtype adt = g->layout->act_dtype;
    GptSaved *sv = &g->saved[l];
    int mode = c->recompute;

    /* which tensors are saved (activations) vs forward workspace */
    int save_all = phase == BLOCK_RECOMPUTE || (phase == BLOCK_TRAIN && mode == GPT_RECOMPUTE_NONE);
    int save_core = save_all || (phase == BLOCK_TRAIN && mode == GPT_RECOMPUTE_SELECTIVE);
    int save_cheap = save_all; /* ln_1, att, ln_2, gelu */

    Tensor *out = NULL;
    if (phase == BLOCK_TRAIN && mode == GPT_RECOMPUTE_FULL)
        out = step_alloc(s, 1, adt, 3, B, T, C, 0, "act.h.%d.out", l);
    else if (phase == BLOCK_EVAL)
        out = step_alloc(s, 0, adt, 3, B, T, C, 0, "ws.h.%d.out", l);

    const char *pre = save_core ? "act" : "ws";
    const char *prec = save_cheap ? "act" : "ws";
    Tensor *ln1_mean =
        step_alloc(s, save_core, ARENA_DTYPE_F32, 2, B, T, 0, 0, "%s.h.%d.ln_1.mean", pre, l);
    Tensor *ln1_rstd =
        step_alloc(s, save_core, ARENA_DTYPE_F32, 2, B, T, 0, 0, "%s.h.%d.ln_1.rstd", pre, l);
    Tensor *ln1 = step_alloc(s, save_cheap, adt, 3, B, T, C, 0, "%s.h.%d.ln_1", prec, l);
    if (s->failed)
        return;
    if (run)
        be->layernorm_forward(ln1->data, ln1_mean->data, ln1_rstd->data, in->data,
                              P(GPT_PARAM_LN1W, l), P(GPT_PARAM_LN1B, l), N, C, g->stream);
    Tensor *qkv = step_alloc(s, save_core, adt, 3, B, T, 3 * C, 0, "%s.h.%d.attn.qkv", pre, l);
    if (s->failed)
        return;
    if (run)
        be->matmul_forward(qkv->data, ln1->data, P(GPT_PARAM_QKVW, l), P(GPT_PARAM_QKVB, l), NULL,
                           N, C, 3 * C, g->stream);
    if (!save_cheap)
        ws_release(g, &s->ws, &ln1);
    /* naive: the probabilities (recomputed by selective); fused: the f32 log-sum-exp, saved with
     * y whenever y is (nothing of the fused attention is recomputed by selective) */
    int fused = c->attention != GPT_ATTENTION_NAIVE;
    int save_att = fused ? save_core : save_cheap;
    Tensor *att;
    if (!fused)
        att = step_alloc(s, save_att, adt, 4, B, NH, T, T, "%s.h.%d.attn.att", prec, l);
    else
        att = step_alloc(s, save_att, ARENA_DTYPE_F32, 3, B, NH, T, 0, "%s.h.%d.attn.lse", pre, l);
    Tensor *atty = step_alloc(s, save_core, adt, 3, B, T, C, 0, "%s.h.%d.attn.y", pre, l);
    if (s->failed)
        return;
    if (c->attention == GPT_ATTENTION_CUDNN) {
        Tensor *wsc = step_alloc(s, 0, ARENA_DTYPE_U8, 1,
                                 (int64_t)gpt_cudnn_workspace_bytes(B, T, C, NH), 0, 0, 0,
                                 "ws.h.%d.attn.cudnn", l);
        if (s->failed)
            return;
        if (run)
            be->cudnn_attention_forward(atty->data, att->data, wsc->data, qkv->data, B, T, C, NH,
                                        g->stream);
        ws_release(g, &s->ws, &wsc);
    } else if (run && fused) {
        be->flash_attention_forward(atty->data, att->data, qkv->data, B, T, C, NH, g->stream);
    } else if (run) {
        be->attention_forward(atty->data, att->data, qkv->data, B, T, C, NH, g->stream);
    }
    if (!save_att)
        ws_release(g, &s->ws, &att);
    Tensor *res2 = step_alloc(s, save_core, adt, 3, B, T, C, 0, "%s.h.%d.res_2", pre, l);
    if (s->failed)
        return;
    if (run)
        be->matmul_forward(res2->data, atty->data, P(GPT_PARAM_ATTPROJW, l),
                           P(GPT_PARAM_ATTPROJB, l), in->data, N, C, C, g->stream);
    if (!save_core) {
        ws_release(g, &s->ws, &atty);
        ws_release(g, &s->ws, &qkv);
    }
    Tensor *ln2_mean =
        step_alloc(s, save_core, ARENA_DTYPE_F32, 2, B, T, 0, 0, "%s.h.%d.ln_2.mean", pre, l);
    Tensor *ln2_rstd =
        step_alloc(s, save_core, ARENA_DTYPE_F32, 2, B, T, 0, 0, "%s.h.%d.ln_2.rstd", pre, l);
    Tensor *ln2 = step_alloc(s, save_cheap, adt, 3, B, T, C, 0, "%s.h.%d.ln_2", prec, l);
    if (s->failed)
        return;
    if (run)
        be->layernorm_forward(ln2->data, ln2_mean->data, ln2_rstd->data, res2->data,
                              P(GPT_PARAM_LN2W, l), P(GPT_PARAM_LN2B, l), N, C, g->stream);
    Tensor *fch = step_alloc(s, save_core, adt, 3, B, T, 4 * C, 0, "%s.h.%d.mlp.fc", pre, l);
    if (s->failed)
        return;
    if (run)
        be->matmul_forward(fch->data, ln2->data, P(GPT_PARAM_FCW, l), P(GPT_PARAM_FCB, l), NULL, N,
                           C, 4 * C, g->stream);
    if (!save_cheap)
        ws_release(g, &s->ws, &ln2);
    Tensor *gelu = step_alloc(s, save_cheap, adt, 3, B, T, 4 * C, 0, "%s.h.%d.mlp.gelu", prec, l);
    if (s->failed)
        return;
    if (run)
        be->gelu_forward(gelu->data, fch->data, N * 4 * C, c->gelu, g->stream);
    if (!save_core)
        ws_release(g, &s->ws, &fch);

    if (phase != BLOCK_RECOMPUTE) {
        if (!out) /* TRAIN with none/selective: the output goes on top of the block's set */
            out = step_alloc(s, 1, adt, 3, B, T, C, 0, "act.h.%d.out", l);
        if (s->failed)
            return;
        if (run)
            be->matmul_forward(out->data, gelu->data, P(GPT_PARAM_FCPROJW, l),
                               P(GPT_PARAM_FCPROJB, l), res2->data, N, 4 * C, C, g->stream);
    }
    if (!save_cheap)
        ws_release(g, &s->ws, &gelu);
    if (!save_core) {
        ws_release(g, &s->ws, &fch);
        ws_release(g, &s->ws, &ln2_rstd);
        ws_release(g, &s->ws, &ln2_mean);
        ws_release(g, &s->ws, &res2);
        ws_release(g, &s->ws, &ln1_rstd);
        ws_release(g, &s->ws, &ln1_mean);
    }
    if (save_core) {
        sv->ln1_mean = ln1_mean;
        sv->ln1_rstd = ln1_rstd;
        sv->qkv = qkv;
        sv->atty = atty;
        sv->res2 = res2;
        sv->ln2_mean = ln2_mean;
        sv->ln2_rstd = ln2_rstd;
        sv->fch = fch;
    }
    if (save_att)
        sv->att = att;
    if (save_cheap) {
        sv->ln1 = ln1;
        sv->ln2 = ln2;
        sv->fch_gelu = gelu;
    }
    if (phase == BLOCK_TRAIN)
        sv->out = out;
    if (out_ws)
        *out_ws = out;
}

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
        step_alloc(s, train, ARENA_DTYPE_I32, 2, B, T, 0, 0, "%s.inputs", train ? "act" : "ws");
    Tensor *x = step_alloc(s, train, adt, 3, B, T, C, 0, "%s.encoder.out", train ? "act" : "ws");
    if (s->failed)
        return NULL;
    if (run) {
        be->copy_from_host(inp->data, inputs, (size_t)(B * T) * sizeof(int32_t), g->stream);
        be->encoder_forward(x->data, inp->data, P(GPT_PARAM_WTE, -1), P(GPT_PARAM_WPE, -1), B, T, C,
                            g->stream);
    }
    if (train) {
        top->inputs = inp;
        top->enc_out = x;
    } else {
        ws_release(g, &s->ws, &inp);
    }
    for (int l = 0; l < g->config.n_layer; l++) {
        Tensor *out = NULL;
        block_forward(s, l, train ? BLOCK_TRAIN : BLOCK_EVAL, x, &out, B, T);
        if (s->failed)
            return NULL;
        if (!train)
            ws_release(g, &s->ws, &x);
        x = out;
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

    Tensor *tg = step_alloc(s, 0, ARENA_DTYPE_I32, 1, N, 0, 0, 0, "ws.targets");
    Tensor *losses = step_alloc(s, 0, ARENA_DTYPE_F32, 1, N, 0, 0, 0, "ws.losses");
    Tensor *logits = step_alloc(s, 0, adt, 2, chunk, Vp, 0, 0, "ws.logits");
    Tensor *sum = step_alloc(s, 0, ARENA_DTYPE_F32, 1, 1, 0, 0, 0, "ws.loss_sum");
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
        float h;
        be->copy_to_host(&h, sum->data, sizeof(float), g->stream);
        mean = h / (float)N;
    }
    ws_release(g, &s->ws, &sum);
    ws_release(g, &s->ws, &logits);
    ws_release(g, &s->ws, &losses);
    ws_release(g, &s->ws, &tg);
    return mean;
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
    StepCtx s = {.g = g, .err = err};
    const GptBackend *be = g->backend;
    int run = gpt_runs(g);
    int64_t C = g->config.channels, N = B * T;
    ArenaDtype adt = g->layout->act_dtype;
    GptTop *top = gpt_top(g);
    arena_trace_mark(g->arena, "%s", for_backward ? "forward" : "forward (eval)");

    Tensor *x = forward_blocks(&s, inputs, B, T, for_backward);
    if (s.failed)
        return step_fail(&s);
    Tensor *mean = step_alloc(&s, for_backward, ARENA_DTYPE_F32, 2, B, T, 0, 0, "%s.ln_f.mean",
                              for_backward ? "act" : "ws");
    Tensor *rstd = step_alloc(&s, for_backward, ARENA_DTYPE_F32, 2, B, T, 0, 0, "%s.ln_f.rstd",
                              for_backward ? "act" : "ws");
    Tensor *lnf =
        step_alloc(&s, for_backward, adt, 3, B, T, C, 0, "%s.ln_f", for_backward ? "act" : "ws");
    if (s.failed)
        return step_fail(&s);
    if (run)
        be->layernorm_forward(lnf->data, mean->data, rstd->data, x->data, P(GPT_PARAM_LNFW, -1),
                              P(GPT_PARAM_LNFB, -1), N, C, g->stream);
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
    StepCtx s = {.g = g, .err = err};
    const GptBackend *be = g->backend;
    int run = gpt_runs(g);
    int64_t C = g->config.channels, Vp = g->config.padded_vocab_size, N = B * T;
    ArenaDtype adt = g->layout->act_dtype;
    Tensor *x = forward_blocks(&s, inputs, B, T, 0);
    if (s.failed)
        return step_fail(&s);
    Tensor *mean = step_alloc(&s, 0, ARENA_DTYPE_F32, 2, B, T, 0, 0, "ws.ln_f.mean");
    Tensor *rstd = step_alloc(&s, 0, ARENA_DTYPE_F32, 2, B, T, 0, 0, "ws.ln_f.rstd");
    Tensor *lnf = step_alloc(&s, 0, adt, 3, B, T, C, 0, "ws.ln_f");
    Tensor *lg = step_alloc(&s, 0, adt, 2, B, Vp, 0, 0, "ws.logits");
    if (s.failed)
        return step_fail(&s);
    if (run) {
        be->layernorm_forward(lnf->data, mean->data, rstd->data, x->data, P(GPT_PARAM_LNFW, -1),
                              P(GPT_PARAM_LNFB, -1), N, C, g->stream);
        /* gather the last row of each sequence: a matmul over the rows b*T+T-1 only */
        for (int64_t b = 0; b < B; b++)
            be->matmul_forward(trow(lg, b, Vp), trow(lnf, b * T + T - 1, C), P(GPT_PARAM_WTE, -1),
                               NULL, NULL, 1, C, Vp, g->stream);
        be->params_to_host_f32(logits, lg->data, adt, B * Vp, g->stream);
    } else {
        memset(logits, 0, (size_t)(B * Vp) * sizeof(float));
    }
    ws_release_all(g, &s.ws);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* backward                                                                                  */

/* Backward of block l. dx (B,T,C): in: dL/d(block output); out: dL/d(block input).
 * d1 (B,T,C), d4 (B,T,4C): scratch. Pops the block's activations and then `in`. */
static void block_backward(StepCtx *s, int l, Tensor **in_slot, Tensor *dx, Tensor *d1, Tensor *d4,
                           int64_t B, int64_t T) {
    Gpt *g = s->g;
    const GptBackend *be = g->backend;
    int run = gpt_runs(g);
    const GptConfig *c = &g->config;
    int64_t C = c->channels, NH = c->n_head, N = B * T;
    ArenaDtype adt = g->layout->act_dtype;
    GptSaved *sv = &g->saved[l];
    Tensor *in = *in_slot;
    int mode = c->recompute;
    void *st = g->stream;
#define G(kind) tdata(gpt_param(g, (kind), l) ? gpt_param(g, (kind), l)->grad : NULL)

    if (mode == GPT_RECOMPUTE_FULL) {
        block_forward(s, l, BLOCK_RECOMPUTE, in, NULL, B, T);
        if (s->failed)
            return;
    }
    /* mlp.c_proj */
    if (mode == GPT_RECOMPUTE_SELECTIVE) {
        sv->fch_gelu = step_alloc(s, 1, adt, 3, B, T, 4 * C, 0, "act.h.%d.mlp.gelu", l);
        if (s->failed)
            return;
        if (run)
            be->gelu_forward(sv->fch_gelu->data, sv->fch->data, N * 4 * C, c->gelu, st);
    }
    if (run)
        be->matmul_backward(d4->data, G(GPT_PARAM_FCPROJW), G(GPT_PARAM_FCPROJB), dx->data,
                            sv->fch_gelu->data, P(GPT_PARAM_FCPROJW, l), N, 4 * C, C, st);
    act_pop(g, &sv->fch_gelu);
    if (run)
        be->gelu_backward(d4->data, sv->fch->data, d4->data, N * 4 * C, c->gelu, st);
    act_pop(g, &sv->fch);
    /* mlp.c_fc */
    if (mode == GPT_RECOMPUTE_SELECTIVE) {
        sv->ln2 = step_alloc(s, 1, adt, 3, B, T, C, 0, "act.h.%d.ln_2", l);
        if (s->failed)
            return;
        if (run)
            be->layernorm_forward(sv->ln2->data, sv->ln2_mean->data, sv->ln2_rstd->data,
                                  sv->res2->data, P(GPT_PARAM_LN2W, l), P(GPT_PARAM_LN2B, l), N, C,
                                  st);
    }
    if (run)
        be->matmul_backward(d1->data, G(GPT_PARAM_FCW), G(GPT_PARAM_FCB), d4->data, sv->ln2->data,
                            P(GPT_PARAM_FCW, l), N, C, 4 * C, st);
    act_pop(g, &sv->ln2);
    /* ln_2 (+ the residual: dx already holds dL/d res_2's direct path) */
    if (run)
        be->layernorm_backward(dx->data, G(GPT_PARAM_LN2W), G(GPT_PARAM_LN2B), d1->data,
                               sv->res2->data, P(GPT_PARAM_LN2W, l), sv->ln2_mean->data,
                               sv->ln2_rstd->data, N, C, st);
    act_pop(g, &sv->ln2_rstd);
    act_pop(g, &sv->ln2_mean);
    act_pop(g, &sv->res2);
    /* attn.c_proj */
    if (run)
        be->matmul_backward(d1->data, G(GPT_PARAM_ATTPROJW), G(GPT_PARAM_ATTPROJB), dx->data,
                            sv->atty->data, P(GPT_PARAM_ATTPROJW, l), N, C, C, st);
    /* attention */
    if (c->attention != GPT_ATTENTION_NAIVE) {
        /* fused: reads y (the forward's output) and the log-sum-exp, recomputes the
         * probabilities itself; D = rowsum(dy * y) is in its workspace */
        Tensor *wsd;
        if (c->attention == GPT_ATTENTION_CUDNN)
            wsd = step_alloc(s, 0, ARENA_DTYPE_U8, 1,
                             (int64_t)gpt_cudnn_workspace_bytes(B, T, C, NH), 0, 0, 0,
                             "ws.h.%d.attn.cudnn", l);
        else
            wsd = step_alloc(s, 0, ARENA_DTYPE_F32, 3, B, NH, T, 0, "ws.h.%d.attn.flash_d", l);
        if (s->failed)
            return;
        if (run && c->attention == GPT_ATTENTION_CUDNN)
            be->cudnn_attention_backward(d4->data, wsd->data, d1->data, sv->atty->data,
                                         sv->att->data, sv->qkv->data, B, T, C, NH, st);
        else if (run)
            be->flash_attention_backward(d4->data, wsd->data, d1->data, sv->atty->data,
                                         sv->att->data, sv->qkv->data, B, T, C, NH, st);
        ws_release(g, &s->ws, &wsd);
        act_pop(g, &sv->atty);
    } else {
        act_pop(g, &sv->atty);
        if (mode == GPT_RECOMPUTE_SELECTIVE) {
            sv->att = step_alloc(s, 1, adt, 4, B, NH, T, T, "act.h.%d.attn.att", l);
            if (s->failed)
                return;
            /* the recomputed y lands in d4 (free now); only the probabilities are used */
            if (run)
                be->attention_forward(d4->data, sv->att->data, sv->qkv->data, B, T, C, NH, st);
        }
        if (run)
            be->attention_backward(d4->data, sv->att->data, d1->data, sv->qkv->data, B, T, C, NH,
                                   st);
    }
    act_pop(g, &sv->att);
    act_pop(g, &sv->qkv);
    /* attn.c_attn */
    if (mode == GPT_RECOMPUTE_SELECTIVE) {
        sv->ln1 = step_alloc(s, 1, adt, 3, B, T, C, 0, "act.h.%d.ln_1", l);
        if (s->failed)
            return;
        if (run)
            be->layernorm_forward(sv->ln1->data, sv->ln1_mean->data, sv->ln1_rstd->data, in->data,
                                  P(GPT_PARAM_LN1W, l), P(GPT_PARAM_LN1B, l), N, C, st);
    }
    if (run)
        be->matmul_backward(d1->data, G(GPT_PARAM_QKVW), G(GPT_PARAM_QKVB), d4->data, sv->ln1->data,
                            P(GPT_PARAM_QKVW, l), N, C, 3 * C, st);
    act_pop(g, &sv->ln1);
    if (run)
        be->layernorm_backward(dx->data, G(GPT_PARAM_LN1W), G(GPT_PARAM_LN1B), d1->data, in->data,
                               P(GPT_PARAM_LN1W, l), sv->ln1_mean->data, sv->ln1_rstd->data, N, C,
                               st);
    act_pop(g, &sv->ln1_rstd);
    act_pop(g, &sv->ln1_mean);
    act_pop(g, in_slot);
#undef G
}

int gpt_backward(Gpt *g, float loss_scale, Err *err) {
    if (!g->have_forward)
        return err_set(err,
                       "gpt_backward: no training forward (for_backward=1) to go back through");
    ASSERT_MSG(loss_scale == g->loss_scale,
               "gpt_backward: loss_scale differs from the one the fused loss head used");
    StepCtx s = {.g = g, .err = err};
    const GptBackend *be = g->backend;
    int run = gpt_runs(g);
    const GptConfig *c = &g->config;
    int64_t B = g->fB, T = g->fT, C = c->channels, N = B * T, L = c->n_layer;
    ArenaDtype adt = g->layout->act_dtype;
    GptTop *top = gpt_top(g);
    void *st = g->stream;
    arena_trace_mark(g->arena, "backward");

    Tensor *dx = step_alloc(&s, 0, adt, 3, B, T, C, 0, "ws.dresidual");
    Tensor *d1 = step_alloc(&s, 0, adt, 3, B, T, C, 0, "ws.dbuf_c");
    Tensor *d4 = step_alloc(&s, 0, adt, 3, B, T, 4 * C, 0, "ws.dbuf_4c");
    if (s.failed)
        return step_fail(&s);

    /* ln_f: act.ln_f holds dL/d(ln_f output) from the fused head */
    Tensor **xl_slot = L > 0 ? &g->saved[L - 1].out : &top->enc_out;
    if (run) {
        be->memset_zero(dx->data, dx->nbytes, st);
        be->layernorm_backward(
            dx->data, tdata(gpt_param(g, GPT_PARAM_LNFW, -1)->grad),
            gpt_param(g, GPT_PARAM_LNFB, -1) ? gpt_param(g, GPT_PARAM_LNFB, -1)->grad->data : NULL,
            top->lnf->data, (*xl_slot)->data, P(GPT_PARAM_LNFW, -1), top->lnf_mean->data,
            top->lnf_rstd->data, N, C, st);
    }
    act_pop(g, &top->lnf);
    act_pop(g, &top->lnf_rstd);
    act_pop(g, &top->lnf_mean);
    /* the last block's output: read by ln_f's backward only */
    act_pop(g, xl_slot);
    for (int64_t l = L - 1; l >= 0; l--) {
        Tensor **in_slot = l > 0 ? &g->saved[l - 1].out : &top->enc_out;
        block_backward(&s, (int)l, in_slot, dx, d1, d4, B, T);
        if (s.failed)
            return step_fail(&s);
        /* the input of block l is the output of block l-1: popped by block_backward */
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
    Tensor *acc = step_alloc(&s, 0, ARENA_DTYPE_F32, 1, 1, 0, 0, 0, "ws.grad_norm");
    if (s.failed)
        return step_fail(&s);
    float norm = 0.0f;
    if (run) {
        be->memset_zero(acc->data, sizeof(float), g->stream);
        for (int i = 0; i < g->n_params; i++)
            be->norm_squared_accumulate(acc->data, g->params[i].grad->data, g->params[i].numel,
                                        g->stream);
        float sumsq;
        be->copy_to_host(&sumsq, acc->data, sizeof(float), g->stream);
        norm = sqrtf(sumsq) / grad_scale;
        char dev_msg[256];
        if (be->last_error && be->last_error(dev_msg, sizeof dev_msg)) {
            ws_release_all(g, &s.ws);
            return err_set(err, "gpt_update: device error: %s", dev_msg);
        }
        if (!isfinite(norm)) {
            /* an overflow in the (loss-scaled) gradients: GradScaler skips the step and the
             * caller halves the scale; no parameter or optimizer state changes */
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
        for (int i = 0; i < g->n_params; i++) {
            GptParam *p = &g->params[i];
            be->adamw_update(p->param->data, tdata(p->master), p->grad->data, p->m->data,
                             p->v->data, p->numel, lr, beta1, beta2, eps,
                             p->decay ? weight_decay : 0.0f, grad_mul, bc1, bc2, g->stream);
        }
    }
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
    double C = (double)c->channels, L = (double)c->n_layer, Vp = (double)c->padded_vocab_size;
    double per_layer = 2.0 * (3 * C * C + C * C + 4 * C * C + 4 * C * C) /* qkv, proj, fc, fcproj */
                       + 2.0 * 2.0 * (double)T * C;                      /* QK^T and att@V */
    return L * per_layer + 2.0 * C * Vp;
}

double gpt_flops_recompute_per_token(const GptConfig *c, int64_t T, int recompute) {
    double C = (double)c->channels, L = (double)c->n_layer;
    if (recompute == GPT_RECOMPUTE_FULL) /* the block up to the GELU: all but mlp.c_proj */
        return L * (2.0 * (3 * C * C + C * C + 4 * C * C) + 2.0 * 2.0 * (double)T * C);
    /* naive: attention probabilities (and y) again; the fused kinds keep their log-sum-exp */
    if (recompute == GPT_RECOMPUTE_SELECTIVE && c->attention == GPT_ATTENTION_NAIVE)
        return L * 2.0 * 2.0 * (double)T * C;
    return 0.0;
}

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
