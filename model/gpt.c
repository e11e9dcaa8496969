/* gpt.c: GPT-2 on the arena: build and free, the forward (embeddings -> for each layer the
 * block -> ln_f -> the chunked loss head), the backward, AdamW. The block itself is data
 * (block.c), the attention kinds a table (attention.c), the parameters' bookkeeping params.c,
 * the memory plan plan.c. docs/ARCHITECTURE.md draws how they fit.
 *
 * Invariants:
 *   - every tensor comes from g->arena; the sequence of arena calls depends only on the
 *     config, the shapes and which phase functions are called (never on data), and a plan
 *     arena runs the same code on the plan backend (kernels that do nothing), so a plan
 *     reproduces a run byte for byte;
 *   - activations are the arena's stack: pushed in forward, popped in backward in exactly
 *     reverse order (the arena ASSERTs LIFO);
 *   - recompute never changes what a kernel computes, so gradients are bit-identical.
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

#include "dist.h"
#include "gpt_internal.h"

/* ---------------------------------------------------------------------------------------- */
/* configuration                                                                             */

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
    char kinds[128];
    if (!(attention_kind(c->attention)->devices & ON_DEVICE(dev)))
        return err_set(err, "gpt: attention=%s needs --device=cuda (the CPU has %s)",
                       gpt_attention_name(c->attention),
                       attention_kinds_on(GPT_DEVICE_CPU, kinds, sizeof kinds));
    if (c->attention == GPT_ATTENTION_FLASH && dev == GPT_DEVICE_CUDA &&
        c->channels / c->n_head > GPT_FLASH_CUDA_MAX_HS)
        return err_set(err,
                       "gpt: attention=flash on cuda takes head sizes up to %d, but n_embd %lld / "
                       "n_head %lld = %lld: use more heads or attention=naive",
                       GPT_FLASH_CUDA_MAX_HS, (long long)c->channels, (long long)c->n_head,
                       (long long)(c->channels / c->n_head));
    if (c->loss_chunk < 0)
        return err_set(err, "gpt: loss_chunk %lld is negative", (long long)c->loss_chunk);
    if (c->world_size < 0 || c->zero_stage < 0 || c->zero_stage > 1)
        return err_set(err,
                       "gpt: world_size %d, zero_stage %d: expected world_size >= 1 and "
                       "zero_stage 0 (replicated) or 1 (AdamW state sharded, model/dist.h)",
                       c->world_size, c->zero_stage);
    if (c->optimizer_offload && dev != GPT_DEVICE_CUDA)
        return err_set(err, "gpt: optimizer_offload=True needs --device=cuda (the CPU backend "
                            "keeps its optimizer state in host memory already)");
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* steps                                                                                     */

void act_pop(Gpt *g, Tensor **slot) {
    Tensor *t = *slot;
    ASSERT(t != NULL);
    arena_release(g->arena, t); /* ASSERTs that t is the top of the activation stack */
    *slot = NULL;
}

void ws_release(Gpt *g, WsScope *s, Tensor **slot) {
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

void ws_release_all(Gpt *g, WsScope *s) {
    for (int i = s->n - 1; i >= 0; i--)
        arena_release(g->arena, s->t[i]);
    s->n = 0;
}

Tensor *step_alloc(StepCtx *s, int saved, ArenaDtype dt, int ndim, const int64_t *shape,
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
    if (!saved) {
        ASSERT(s->ws.n < GPT_MAX_WS);
        s->ws.t[s->ws.n++] = t;
    }
    return t;
}

int check_device(Gpt *g, const char *what, Err *err) {
    char msg[256];
    if (g->backend->last_error && g->backend->last_error(msg, sizeof msg))
        return err_set(err, "%s: device error: %s", what, msg);
    return 0;
}

/* Refuses to run what the backend has no kernels for: a backend table without the attention
 * kind's entries (the plan backend has every kind; attention=cudnn on the CPU is refused by
 * gpt_config_check already). */
static int check_kernels(const Gpt *g, const char *what, Err *err) {
    if (!attention_runs(g->backend, g->config.attention))
        return err_set(err,
                       "%s: attention=%s has no kernels in the %s backend of this build: it can "
                       "be planned (arenagpt mem) but not run; use attention=naive",
                       what, gpt_attention_name(g->config.attention), g->backend->name);
    return 0;
}

/* Releases every activation (a failed or abandoned training forward) and forgets them. */
static void release_stack(Gpt *g) {
    Tensor *t;
    while ((t = arena_activation_top(g->arena)) != NULL)
        arena_release(g->arena, t);
    if (g->saved)
        memset(g->saved, 0, (size_t)g->config.n_layer * sizeof(GptSaved));
    if (g->top)
        memset(g->top, 0, sizeof(GptTop));
    g->have_forward = 0;
}

static int step_fail(StepCtx *s) {
    ws_release_all(s->g, &s->ws);
    release_stack(s->g);
    return -1;
}

/* ---------------------------------------------------------------------------------------- */
/* lifecycle                                                                                 */

static int build_fail(Gpt *g, Err *err) {
    if (g->host_arena && arena_last_error(g->host_arena)[0]) /* optimizer_offload's arena */
        err_set(err, "host arena (optimizer_offload): %s", arena_last_error(g->host_arena));
    else
        err_set(err, "%s", arena_last_error(g->arena));
    gpt_free(g);
    return -1;
}

/* The checks of a build, before anything is allocated. */
static int build_check(const GptConfig *c, GptDevice dev, const Arena *arena, int64_t B, int64_t T,
                       const GptBackend *be, Err *err) {
    if (gpt_config_check(c, dev, err))
        return -1;
    if (B <= 0 || T <= 0 || T > c->max_seq_len)
        return err_set(err,
                       "gpt: batch shape B=%lld T=%lld invalid (need B > 0, 0 < T <= "
                       "block_size %lld)",
                       (long long)B, (long long)T, (long long)c->max_seq_len);
    if (!be)
        return err_set(err, "gpt: no %s backend in this build or on this machine",
                       dev == GPT_DEVICE_CUDA ? "cuda" : "cpu");
    return 0;
}

/* The build in allocation order (params, grads, optimizer, backend workspace), each step
 * with its refusal path, then the zero fill of what was allocated. */
static int build(Gpt *g, const GptConfig *c, GptDevice dev, Arena *arena, Arena *host_arena,
                 int64_t B, int64_t T, int inference, Err *err) {
    memset(g, 0, sizeof(*g));
    const GptLayout *lay = gpt_layout_of(dev, c->bf16, c->grad_f32);
    /* a plan runs the plan backend: planning the CUDA layout never starts CUDA */
    const GptBackend *be = arena_is_plan(arena) ? gpt_backend_plan() : gpt_backend_for(lay);
    if (build_check(c, dev, arena, B, T, be, err))
        return -1;
    Gpt probe = {.config = *c, .backend = be};
    if (check_kernels(&probe, "gpt", err))
        return -1;
    g->config = *c;
    g->device = dev;
    g->layout = lay;
    g->backend = be;
    g->arena = arena;
    g->host_arena = inference ? NULL : host_arena; /* inference holds no optimizer state */
    g->offload = offload_ops(arena_is_plan(arena));
    g->inference = inference;
    g->B = B;
    g->T = T;
    g->loss_chunk = gpt_loss_chunk(c, dev, B, T);
    g->loss_scale = 1.0f;
    g->comm = arena_is_plan(arena) ? gpt_comm_plan() : NULL; /* a run: gpt_set_comm */
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
    if (lay->backend_workspace_bytes > 0) {
        g->ws_backend = arena_try_alloc(arena, ARENA_CAT_WORKSPACE, ARENA_DTYPE_U8,
                                        DIMS((int64_t)lay->backend_workspace_bytes), "ws.backend");
        if (!g->ws_backend)
            return build_fail(g, err);
        if (be->workspace_set)
            be->workspace_set(g->ws_backend->data, g->ws_backend->nbytes);
    }
    for (int i = 0; i < g->n_params; i++) {
        GptParam *p = &g->params[i];
        Tensor *ts[] = {p->param, p->grad, p->m, p->v, p->master};
        for (int j = 0; j < 5; j++)
            if (ts[j])
                gpt_tensor_zero(g, ts[j]);
    }
    dist_optimizer_zero(g, 1);
    return 0;
}

int gpt_build(Gpt *g, const GptConfig *c, GptDevice dev, Arena *arena, int64_t B, int64_t T,
              Err *err) {
    if (c->optimizer_offload) {
        memset(g, 0, sizeof(*g));
        return err_set(err, "gpt_build: optimizer_offload=True needs a host arena for the "
                            "optimizer state (gpt_build_offload)");
    }
    return build(g, c, dev, arena, NULL, B, T, 0, err);
}

int gpt_build_offload(Gpt *g, const GptConfig *c, GptDevice dev, Arena *arena, Arena *host_arena,
                      int64_t B, int64_t T, Err *err) {
    memset(g, 0, sizeof(*g));
    if (!c->optimizer_offload || !host_arena)
        return err_set(err, "gpt_build_offload: needs optimizer_offload=True and a host arena");
    if (arena_is_plan(arena) != arena_is_plan(host_arena))
        return err_set(err, "gpt_build_offload: the device and host arenas must both be plans, "
                            "or neither");
    return build(g, c, dev, arena, host_arena, B, T, 0, err);
}

int gpt_build_inference(Gpt *g, const GptConfig *c, GptDevice dev, Arena *arena, int64_t B,
                        int64_t T, Err *err) {
    return build(g, c, dev, arena, NULL, B, T, 1, err);
}

void gpt_free(Gpt *g) {
    if (!g->arena)
        return;
    release_stack(g);
    Err ignored = {{0}}; /* the run is over: its result no longer matters */
    gpt_grads_wait(g, &ignored);
    if (g->ws_backend) {
        if (g->backend->workspace_set)
            g->backend->workspace_set(NULL, 0);
        arena_release(g->arena, g->ws_backend);
    }
    params_release(g);
    free(g->params);
    free(g->saved);
    free(g->top);
    memset(g, 0, sizeof(*g));
}

/* ---------------------------------------------------------------------------------------- */
/* step                                                                                      */

void gpt_set_loss_scale(Gpt *g, float loss_scale) { g->loss_scale = loss_scale; }

/* Refuses a training call on a model built for inference (gpt_build_inference). */
static int check_training(const Gpt *g, const char *what, Err *err) {
    if (g->inference)
        return err_set(err,
                       "%s: the model was built for inference (no gradients, no optimizer "
                       "state)",
                       what);
    return 0;
}

int gpt_zero_grad(Gpt *g) {
    ASSERT_MSG(!g->inference, "gpt_zero_grad on a model built for inference");
    ASSERT_MSG(!g->reduce_waiting,
               "gpt_zero_grad while gradient sums are running: gpt_grads_wait first");
    g->reduce_in_backward = 0;
    g->reduce_started = 0;
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
    int64_t C = g->config.channels;
    ArenaDtype adt = g->layout->act_dtype;
    GptTop *top = g->top;

    /* embeddings: x = wte[inputs] + wpe */
    Tensor *inp =
        step_alloc(s, train, ARENA_DTYPE_I32, DIMS(B, T), "%s.inputs", train ? "act" : "ws");
    Tensor *x = step_alloc(s, train, adt, DIMS(B, T, C), "%s.encoder.out", train ? "act" : "ws");
    if (s->failed)
        return NULL;
    be->copy_from_host(inp->data, inputs, (size_t)(B * T) * sizeof(int32_t), g->stream);
    be->encoder_forward(x->data, inp->data, pdata(g, GPT_PARAM_WTE, -1),
                        pdata(g, GPT_PARAM_WPE, -1), B, T, C, g->stream);
    if (train) {
        top->inputs = inp;
        top->enc_out = x;
    } else {
        ws_release(g, &s->ws, &inp);
    }
    /* for each layer: x = block(x) */
    for (int l = 0; l < g->config.n_layer; l++) {
        Tensor *local[BT_COUNT] = {0}; /* eval: the block's tensors live only in this pass */
        Tensor **in_slot = l > 0 ? &g->saved[l - 1].t[BT_OUT] : &top->enc_out;
        Tensor **slots = g->saved[l].t;
        if (!train) {
            local[BT_IN] = x;
            in_slot = &local[BT_IN];
            slots = local;
        }
        block_forward_layer(s, l, train ? BLOCK_TRAIN : BLOCK_EVAL, in_slot, slots, B, T);
        if (s->failed)
            return NULL;
        if (!train)
            ws_release(g, &s->ws, &local[BT_IN]);
        x = slots[BT_OUT];
    }
    return x;
}

/* The loss head over lnf (N,C): chunked logits, per-token losses, and with dscale != 0 the
 * fused backward (grad.wte += ..., lnf overwritten by its gradient). Returns the mean loss. */
static float loss_head(StepCtx *s, Tensor *lnf, const int32_t *targets, int64_t N, float dscale) {
    Gpt *g = s->g;
    const GptBackend *be = g->backend;
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
    GptParam *wte = gpt_param(g, GPT_PARAM_WTE, -1);
    be->copy_from_host(tg->data, targets, (size_t)N * sizeof(int32_t), g->stream);
    for (int64_t r = 0; r < N; r += chunk) {
        int64_t n = N - r < chunk ? N - r : chunk;
        void *x = trow(lnf, r, C);
        /* logits = ln_f wte^T; loss (and dlogits) by fused softmax + cross-entropy */
        be->matmul_forward(logits->data, x, wte->param->data, NULL, NULL, n, C, Vp, g->stream);
        be->crossentropy_forward(logits->data, trow(losses, r, 1), trow(tg, r, 1), n, V, Vp, dscale,
                                 g->stream);
        if (dscale != 0.0f)
            be->matmul_backward(x, wte->grad->data, NULL, logits->data, x, wte->param->data, n, C,
                                Vp, g->stream);
    }
    be->reduce_sum(sum->data, losses->data, N, g->stream);
    float h = 0.0f;
    be->copy_to_host(&h, sum->data, sizeof(float), g->stream);
    float mean = h / (float)N;
    if (check_device(g, "gpt_forward", s->err)) /* after a fault h is not the sum */
        s->failed = 1;
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
    if (s->failed)
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

int gpt_forward(Gpt *g, const int32_t *inputs, const int32_t *targets, int64_t B, int64_t T,
                int for_backward, float *loss_out, Err *err) {
    if (check_shape(g, B, T, err))
        return -1;
    if (for_backward && (check_training(g, "gpt_forward", err) ||
                         (!targets && err_set(err, "gpt_forward: for_backward needs targets"))))
        return -1;
    if (g->have_forward)
        return err_set(err, "gpt_forward: the previous training forward has not been "
                            "followed by gpt_backward");
    if (check_kernels(g, "gpt_forward", err))
        return -1;
    StepCtx s = {.g = g, .err = err};
    int64_t N = B * T;
    arena_trace_mark(g->arena, "%s", for_backward ? "forward" : "forward (eval)");

    Tensor *x = forward_blocks(&s, inputs, B, T, for_backward);
    if (s.failed)
        return step_fail(&s);
    Tensor *mean, *rstd, *lnf = final_layernorm(&s, x, for_backward, &mean, &rstd);
    if (s.failed)
        return step_fail(&s);
    float loss = 0.0f;
    if (targets) {
        float dscale = for_backward ? g->loss_scale / (float)N : 0.0f;
        loss = loss_head(&s, lnf, targets, N, dscale);
        if (s.failed)
            return step_fail(&s);
    }
    if (for_backward) {
        g->top->lnf_mean = mean;
        g->top->lnf_rstd = rstd;
        g->top->lnf = lnf;
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
    int64_t C = g->config.channels, Vp = g->config.padded_vocab_size;
    ArenaDtype adt = g->layout->act_dtype;
    Tensor *x = forward_blocks(&s, inputs, B, T, 0);
    if (s.failed)
        return step_fail(&s);
    Tensor *mean, *rstd, *lnf = final_layernorm(&s, x, 0, &mean, &rstd);
    Tensor *lg = step_alloc(&s, 0, adt, DIMS(B, Vp), "ws.logits");
    if (s.failed)
        return step_fail(&s);
    /* gather the last row of each sequence: a matmul over the rows b*T+T-1 only */
    for (int64_t b = 0; b < B; b++)
        be->matmul_forward(trow(lg, b, Vp), trow(lnf, b * T + T - 1, C),
                           pdata(g, GPT_PARAM_WTE, -1), NULL, NULL, 1, C, Vp, g->stream);
    be->params_to_host_f32(logits, lg->data, adt, B * Vp, g->stream);
    if (check_device(g, "gpt_forward_last_logits", err))
        return step_fail(&s);
    ws_release_all(g, &s.ws);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* backward                                                                                  */

int gpt_backward(Gpt *g, Err *err) {
    if (!g->have_forward)
        return err_set(err,
                       "gpt_backward: no training forward (for_backward=1) to go back through");
    if (check_kernels(g, "gpt_backward", err))
        return -1;
    StepCtx s = {.g = g, .err = err};
    const GptBackend *be = g->backend;
    const GptConfig *c = &g->config;
    int64_t B = g->fB, T = g->fT, C = c->channels, N = B * T, L = c->n_layer;
    ArenaDtype adt = g->layout->act_dtype;
    GptTop *top = g->top;
    void *st = g->stream;
    arena_trace_mark(g->arena, "backward");

    Tensor *dx = step_alloc(&s, 0, adt, DIMS(B, T, C), "ws.dresidual");
    Tensor *d1 = step_alloc(&s, 0, adt, DIMS(B, T, C), "ws.dbuf_c");
    Tensor *d4 = step_alloc(&s, 0, adt, DIMS(B, T, 4 * C), "ws.dbuf_4c");
    if (s.failed)
        return step_fail(&s);

    /* ln_f: act.ln_f holds dL/d(ln_f output) from the fused head */
    Tensor **xl_slot = L > 0 ? &g->saved[L - 1].t[BT_OUT] : &top->enc_out;
    be->memset_zero(dx->data, dx->nbytes, st);
    be->layernorm_backward(dx->data, gdata(g, GPT_PARAM_LNFW, -1), gdata(g, GPT_PARAM_LNFB, -1),
                           top->lnf->data, (*xl_slot)->data, pdata(g, GPT_PARAM_LNFW, -1),
                           top->lnf_mean->data, top->lnf_rstd->data, N, C, st);
    act_pop(g, &top->lnf);
    act_pop(g, &top->lnf_rstd);
    act_pop(g, &top->lnf_mean);
    /* the last block's output: read by ln_f's backward only */
    act_pop(g, xl_slot);
    /* data parallel, last micro-step: each group of gradients is summed over the ranks as
     * soon as it is final (model/dist.h), while the backward goes on */
    if (dist_reduce_start(g, -1, 1u << GPT_PARAM_LNFW | 1u << GPT_PARAM_LNFB, err))
        return step_fail(&s);
    /* the blocks in reverse; each pops its tensors and its input, the output of block l-1 */
    for (int l = (int)L - 1; l >= 0; l--) {
        Tensor **in_slot = l > 0 ? &g->saved[l - 1].t[BT_OUT] : &top->enc_out;
        block_backward_layer(&s, l, in_slot, g->saved[l].t, dx, d1, d4, B, T);
        if (s.failed || dist_reduce_start(g, l, DIST_ALL_KINDS, err))
            return step_fail(&s);
    }
    /* embeddings (wte's gradient also holds the tied head's part) */
    be->encoder_backward(gpt_param(g, GPT_PARAM_WTE, -1)->grad->data,
                         gpt_param(g, GPT_PARAM_WPE, -1)->grad->data, dx->data, top->inputs->data,
                         B, T, C, st);
    act_pop(g, &top->inputs);
    ws_release_all(g, &s.ws);
    ASSERT(arena_activation_top(g->arena) == NULL);
    g->have_forward = 0;
    int rc = dist_reduce_start(g, -1, 1u << GPT_PARAM_WTE | 1u << GPT_PARAM_WPE, err);
    g->reduce_in_backward = 0;
    return rc;
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

/* *acc = the sum of every gradient's squares: one multi-tensor reduction when list is given,
 * else one per tensor. */
static void grad_norm_squared(Gpt *g, float *acc, const GptOptimTensor *list) {
    const GptBackend *be = g->backend;
    be->memset_zero(acc, sizeof(float), g->stream);
    if (list) {
        be->norm_squared_multi(acc, list, g->n_params, g->stream);
        return;
    }
    for (int i = 0; i < g->n_params; i++)
        be->norm_squared_accumulate(acc, g->params[i].grad->data, g->params[i].numel, g->stream);
}

/* AdamW over every parameter with grad_mul applied to the gradients (one multi-tensor launch
 * when list is given). */
static void update_params(Gpt *g, const GptOptimTensor *list, float lr, float beta1, float beta2,
                          float eps, float weight_decay, float grad_mul, int64_t step) {
    float bc1 = 1.0f - powf(beta1, (float)step);
    float bc2 = 1.0f - powf(beta2, (float)step);
    if (list) {
        g->backend->adamw_update_multi(list, g->n_params, lr, beta1, beta2, eps, grad_mul, bc1, bc2,
                                       g->stream);
        return;
    }
    for (int i = 0; i < g->n_params; i++) {
        GptParam *p = &g->params[i];
        g->backend->adamw_update(p->param->data, tdata(p->master), p->grad->data, p->m->data,
                                 p->v->data, p->numel, lr, beta1, beta2, eps,
                                 p->decay ? weight_decay : 0.0f, grad_mul, bc1, bc2, g->stream);
    }
}

int gpt_update(Gpt *g, float lr, float beta1, float beta2, float eps, float weight_decay,
               float grad_clip, int64_t step, float grad_scale, float *grad_norm_out, Err *err) {
    if (check_training(g, "gpt_update", err))
        return -1;
    if (step < 1)
        return err_set(err, "gpt_update: step %lld must be >= 1", (long long)step);
    if (!(grad_scale > 0.0f))
        return err_set(err, "gpt_update: grad_scale %g must be > 0", (double)grad_scale);
    arena_trace_mark(g->arena, "update");
    if (g->config.world_size > 1) { /* data parallel: the mean over ranks (model/dist.h) */
        if (gpt_dist_sharded(g))
            return dist_update_sharded(g, lr, beta1, beta2, eps, weight_decay, grad_clip, step,
                                       grad_scale, grad_norm_out, err);
        if (dist_allreduce_grads(g, err))
            return -1;
        grad_scale *= (float)g->config.world_size;
    }
    StepCtx s = {.g = g, .err = err};
    const GptBackend *be = g->backend;
    Tensor *acc = step_alloc(&s, 0, ARENA_DTYPE_F32, DIMS(1), "ws.grad_norm");
    if (s.failed)
        return step_fail(&s);
    GptOptimTensor *list = optim_list(g, weight_decay);
    grad_norm_squared(g, acc->data, list);
    float sumsq = 0.0f;
    be->copy_to_host(&sumsq, acc->data, sizeof(float), g->stream);
    if (check_device(g, "gpt_update", err)) {
        free(list);
        ws_release_all(g, &s.ws);
        return -1;
    }
    float norm = sqrtf(sumsq) / grad_scale;
    /* an overflow in the (loss-scaled) gradients: GradScaler skips the step and the caller
     * halves the scale; no parameter or optimizer state changes */
    float grad_mul = 1.0f / grad_scale;
    if (isfinite(norm)) {
        /* torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), applied when < 1 */
        if (grad_clip > 0.0f) {
            float coef = grad_clip / (norm + 1e-6f);
            if (coef < 1.0f)
                grad_mul *= coef;
        }
        if (!g->host_arena)
            update_params(g, list, lr, beta1, beta2, eps, weight_decay, grad_mul, step);
    }
    free(list);
    /* optimizer_offload: AdamW on the CPU (offload.c); its host staging is allocated for a
     * skipped step too, so the host arena's calls do not depend on the data */
    if (g->host_arena &&
        offload_update(g, lr, beta1, beta2, eps, weight_decay, grad_mul, step, isfinite(norm), err))
        return step_fail(&s);
    ws_release_all(g, &s.ws);
    if (grad_norm_out)
        *grad_norm_out = norm;
    return 0;
}
