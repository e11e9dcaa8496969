/* params.c: parameter bookkeeping: the kinds' names and shapes (llm.c's order), the counts
 * nanoGPT prints, the per-tensor index of a Gpt, allocating and releasing each parameter
 * with its gradient and optimizer state (category by category, so each category is one
 * contiguous run of the arena), nanoGPT's initialisation, and host f32 copies of one
 * parameter (model files). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../data/rng.h"
#include "dist.h"
#include "gpt_internal.h"

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

void params_index(Gpt *g) {
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
    /* optimizer_offload: the optimizer state lives in the host arena */
    Arena *a = cat == ARENA_CAT_OPTIMIZER && g->host_arena ? g->host_arena : g->arena;
    if (p->layer >= 0)
        return arena_try_alloc(a, cat, dt, nd, shape, "%sh.%d.%s", prefix, p->layer,
                               PARAM_NAMES[p->kind]);
    return arena_try_alloc(a, cat, dt, nd, shape, "%s%s", prefix, PARAM_NAMES[p->kind]);
}

int params_alloc(Gpt *g) {
    const GptLayout *lay = g->layout;
    for (int i = 0; i < g->n_params; i++)
        if (!(g->params[i].param =
                  param_alloc(g, &g->params[i], ARENA_CAT_PARAMS, lay->param_dtype, "")))
            return -1;
    if (g->inference)
        return 0; /* no gradients, no optimizer state */
    for (int i = 0; i < g->n_params; i++)
        if (!(g->params[i].grad =
                  param_alloc(g, &g->params[i], ARENA_CAT_GRADS, lay->grad_dtype, "grad.")))
            return -1;
    if (gpt_dist_sharded(g)) /* ZeRO-1: this rank's shard only (model/dist.h) */
        return dist_optimizer_alloc(g);
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

void params_release(Gpt *g) {
    dist_optimizer_release(g);
    Arena *oa = g->host_arena ? g->host_arena : g->arena; /* where the optimizer state is */
    for (int i = g->n_params - 1; i >= 0; i--) {
        GptParam *p = &g->params[i];
        arena_release(oa, p->v);
        arena_release(oa, p->m);
        arena_release(oa, p->master);
        p->v = p->m = p->master = NULL;
    }
    for (int i = g->n_params - 1; i >= 0; i--) {
        arena_release(g->arena, g->params[i].grad);
        g->params[i].grad = NULL;
    }
    for (int i = g->n_params - 1; i >= 0; i--) {
        arena_release(g->arena, g->params[i].param);
        g->params[i].param = NULL;
    }
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
    g->backend->params_to_host_f32(dst_host, p->param->data, p->param->dtype, p->numel, g->stream);
}

void gpt_param_write_f32(Gpt *g, GptParam *p, const float *src_host) {
    g->backend->params_from_host_f32(p->param->data, p->param->dtype, src_host, p->numel,
                                     g->stream);
    if (p->master)
        gpt_tensor_write(g, p->master, src_host); /* f32: a plain copy, wherever it lives */
    dist_master_write(g, p, src_host);            /* the sharded master's part, when there is one */
}

void gpt_init_weights(Gpt *g, uint64_t seed) {
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
        Tensor *state[] = {p->grad, p->m, p->v};
        for (int j = 0; j < 3; j++)
            if (state[j])
                gpt_tensor_zero(g, state[j]);
    }
    dist_optimizer_zero(g, 0); /* m and v: the master shard was written with the weights */
    free(buf);
}
