/* decode.c: incremental decoding with a KV cache (sample). The cache keeps, per layer, the
 * qkv rows of the positions decoded so far (`act.h.<l>.attn.kv`, (T,3C) in the activation
 * dtype, planned and attributed like every tensor); a step runs one new position through the
 * model: its embedding, per layer ln_1 -> its qkv row (written into the cache) -> the
 * attention of its query over every cached key (backend's attention_decode) -> c_proj +
 * residual -> ln_2 -> MLP + residual, then ln_f and its logits. A token costs one position,
 * not the whole window. The kernels are the training ones (one row), so a step computes what
 * gpt_forward_last_logits computes for the same tokens, up to the summation order of the
 * attention (the tokens sampled are the same: tests/test_decode.c).
 *
 * Batch 1 only (what sample runs). The cache holds the built T positions. Past them, nanoGPT's
 * generate crops to the last block_size tokens, which shifts every position, so cached keys
 * (which carry their position's embedding) are no longer valid: gpt_kv_window then runs one
 * uncached forward over the cropped window per token, with the cache still allocated (the
 * sample plan holds both). */
#include <stdlib.h>
#include <string.h>

#include "gpt_internal.h"

int gpt_kv_init(Gpt *g, GptKvCache *kv, Err *err) {
    memset(kv, 0, sizeof *kv);
    int64_t L = g->config.n_layer, C = g->config.channels;
    kv->layer = calloc((size_t)L, sizeof(Tensor *));
    if (!kv->layer)
        return err_set(err, "gpt_kv_init: out of host memory");
    kv->cap = g->T;
    StepCtx s = {.g = g, .err = err};
    for (int64_t l = 0; l < L; l++) {
        kv->layer[l] = step_alloc(&s, 1, g->layout->act_dtype, DIMS(g->T, 3 * C),
                                  "act.h.%lld.attn.kv", (long long)l);
        if (s.failed) {
            gpt_kv_free(g, kv);
            return -1;
        }
    }
    return 0;
}

void gpt_kv_free(Gpt *g, GptKvCache *kv) {
    if (!kv->layer)
        return;
    for (int64_t l = g->config.n_layer - 1; l >= 0; l--)
        if (kv->layer[l])
            arena_release(g->arena, kv->layer[l]);
    free(kv->layer);
    memset(kv, 0, sizeof *kv);
}

/* The step's buffers: one row each (workspace of this step). */
typedef struct DecodeBufs {
    Tensor *inp, *x, *ln, *mean, *rstd, *y, *res2, *fc, *gelu, *logits;
} DecodeBufs;

static int decode_alloc(StepCtx *s, DecodeBufs *d) {
    int64_t C = s->g->config.channels, Vp = s->g->config.padded_vocab_size;
    ArenaDtype adt = s->g->layout->act_dtype;
    d->inp = step_alloc(s, 0, ARENA_DTYPE_I32, DIMS(1), "ws.inputs");
    d->x = step_alloc(s, 0, adt, DIMS(1, C), "ws.decode.x");
    d->ln = step_alloc(s, 0, adt, DIMS(1, C), "ws.decode.ln");
    d->mean = step_alloc(s, 0, ARENA_DTYPE_F32, DIMS(1), "ws.decode.mean");
    d->rstd = step_alloc(s, 0, ARENA_DTYPE_F32, DIMS(1), "ws.decode.rstd");
    d->y = step_alloc(s, 0, adt, DIMS(1, C), "ws.decode.attn.y");
    d->res2 = step_alloc(s, 0, adt, DIMS(1, C), "ws.decode.res_2");
    d->fc = step_alloc(s, 0, adt, DIMS(1, 4 * C), "ws.decode.mlp.fc");
    d->gelu = step_alloc(s, 0, adt, DIMS(1, 4 * C), "ws.decode.mlp.gelu");
    d->logits = step_alloc(s, 0, adt, DIMS(1, Vp), "ws.logits");
    return s->failed ? -1 : 0;
}

/* Block l at position pos: d->x (the residual stream) in and out. */
static void decode_block(Gpt *g, GptKvCache *kv, DecodeBufs *d, int l, int64_t pos) {
    const GptBackend *be = g->backend;
    int64_t C = g->config.channels;
    void *st = g->stream, *row = trow(kv->layer[l], pos, 3 * C);
#define W(kind) pdata(g, GPT_PARAM_##kind, l)
    /* ln_1 = LayerNorm(x); qkv = ln_1 c_attn^T + b, into the cache at pos */
    be->layernorm_forward(d->ln->data, d->mean->data, d->rstd->data, d->x->data, W(LN1W), W(LN1B),
                          1, C, st);
    be->matmul_forward(row, d->ln->data, W(QKVW), W(QKVB), NULL, 1, C, 3 * C, st);
    /* y = attention of this position's query over positions 0..pos */
    be->attention_decode(d->y->data, kv->layer[l]->data, pos + 1, C, g->config.n_head, st);
    /* res_2 = x + y c_proj^T + b */
    be->matmul_forward(d->res2->data, d->y->data, W(ATTPROJW), W(ATTPROJB), d->x->data, 1, C, C,
                       st);
    /* x = res_2 + gelu(LayerNorm(res_2) c_fc^T + b) c_proj^T + b */
    be->layernorm_forward(d->ln->data, d->mean->data, d->rstd->data, d->res2->data, W(LN2W),
                          W(LN2B), 1, C, st);
    be->matmul_forward(d->fc->data, d->ln->data, W(FCW), W(FCB), NULL, 1, C, 4 * C, st);
    be->gelu_forward(d->gelu->data, d->fc->data, 4 * C, g->config.gelu, st);
    be->matmul_forward(d->x->data, d->gelu->data, W(FCPROJW), W(FCPROJB), d->res2->data, 1, 4 * C,
                       C, st);
#undef W
}

int gpt_kv_step(Gpt *g, GptKvCache *kv, int32_t token, float *logits, Err *err) {
    if (kv->n >= kv->cap)
        return err_set(err, "gpt_kv_step: the cache holds %lld positions and is full",
                       (long long)kv->cap);
    StepCtx s = {.g = g, .err = err};
    DecodeBufs d;
    if (decode_alloc(&s, &d)) {
        ws_release_all(g, &s.ws);
        return -1;
    }
    const GptBackend *be = g->backend;
    int64_t C = g->config.channels, Vp = g->config.padded_vocab_size, pos = kv->n;
    GptParam *wte = gpt_param(g, GPT_PARAM_WTE, -1), *wpe = gpt_param(g, GPT_PARAM_WPE, -1);
    /* x = wte[token] + wpe[pos] */
    be->copy_from_host(d.inp->data, &token, sizeof token, g->stream);
    be->encoder_forward(d.x->data, d.inp->data, wte->param->data, trow(wpe->param, pos, C), 1, 1, C,
                        g->stream);
    for (int l = 0; l < g->config.n_layer; l++)
        decode_block(g, kv, &d, l, pos);
    /* logits = LayerNorm_f(x) wte^T */
    be->layernorm_forward(d.ln->data, d.mean->data, d.rstd->data, d.x->data,
                          pdata(g, GPT_PARAM_LNFW, -1), pdata(g, GPT_PARAM_LNFB, -1), 1, C,
                          g->stream);
    be->matmul_forward(d.logits->data, d.ln->data, wte->param->data, NULL, NULL, 1, C, Vp,
                       g->stream);
    be->params_to_host_f32(logits, d.logits->data, g->layout->act_dtype, Vp, g->stream);
    int rc = check_device(g, "gpt_kv_step", err);
    ws_release_all(g, &s.ws);
    if (rc == 0)
        kv->n++;
    return rc;
}

int gpt_kv_window(Gpt *g, GptKvCache *kv, const int32_t *ids, int64_t n, float *logits, Err *err) {
    if (n > kv->cap) { /* the window moved (every position shifts): one uncached forward */
        kv->base = -1;
        kv->n = 0;
        return gpt_forward_last_logits(g, ids + n - kv->cap, 1, kv->cap, logits, err);
    }
    if (kv->base != 0 || kv->n > n) { /* another sequence: start over */
        kv->base = 0;
        kv->n = 0;
    }
    if (kv->base + kv->n == n)
        return err_set(err,
                       "gpt_kv_window: no new token after %lld (the logits of the last one "
                       "were returned by the call that decoded it)",
                       (long long)n);
    for (int64_t i = kv->base + kv->n; i < n; i++)
        if (gpt_kv_step(g, kv, ids[i], logits, err))
            return -1;
    return 0;
}
