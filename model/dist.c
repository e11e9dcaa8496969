/* dist.c: data parallel in the model (dist.h): the plan's communicator, gradient averaging
 * (zero_stage 0), ZeRO-1's sharded AdamW state and its update, and host views of the sharded
 * state for checkpoints. Every arena call here depends on the config only, never on the rank
 * or the data, so a plan (the plan's communicator) equals each rank's run to the byte. */
#include "dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gpt_internal.h"

/* ---- the plan's communicator ------------------------------------------------------------ */

static void plan_copy(void *ctx, void *dst, const void *src, size_t bytes) {}
static int plan_allreduce(void *ctx, void *buf, int64_t n, ArenaDtype dt, Err *err) { return 0; }
static int plan_reduce_scatter(void *ctx, void *out, const void *in, int64_t n, ArenaDtype dt,
                               Err *err) {
    return 0;
}
static int plan_allgather(void *ctx, void *buf, int64_t n, ArenaDtype dt, Err *err) { return 0; }
static int plan_allreduce_host(void *ctx, double *vals, int n, Err *err) { return 0; }
static int plan_gather_host(void *ctx, void *recv, const void *send, size_t bytes, Err *err) {
    return 0;
}

const GptComm *gpt_comm_plan(void) {
    static const GptComm plan = {.rank = 0,
                                 .world_size = 0, /* any: a plan describes every rank */
                                 .copy = plan_copy,
                                 .allreduce_sum = plan_allreduce,
                                 .reduce_scatter_sum = plan_reduce_scatter,
                                 .allgather = plan_allgather,
                                 .allreduce_sum_host = plan_allreduce_host,
                                 .gather_host = plan_gather_host};
    return &plan;
}

static int64_t world_of(const GptConfig *c) { return c->world_size > 1 ? c->world_size : 1; }

int gpt_set_comm(Gpt *g, const GptComm *comm, Err *err) {
    if (comm->world_size != world_of(&g->config) || comm->rank < 0 ||
        comm->rank >= comm->world_size)
        return err_set(err, "gpt_set_comm: rank %d of %d for a model built for world_size %lld",
                       comm->rank, comm->world_size, (long long)world_of(&g->config));
    g->comm = comm;
    return 0;
}

/* ---- sizes and the sharded state -------------------------------------------------------- */

int64_t gpt_dist_numel(const GptConfig *c) {
    GptParamCounts pc;
    gpt_param_counts(c, &pc);
    return pc.total;
}

int64_t gpt_dist_shard_numel(const GptConfig *c) {
    int64_t n = world_of(c);
    return (gpt_dist_numel(c) + n - 1) / n;
}

int gpt_dist_sharded(const Gpt *g) {
    return !g->inference && world_of(&g->config) > 1 && g->config.zero_stage >= 1;
}

int dist_optimizer_alloc(Gpt *g) {
    int64_t S = gpt_dist_shard_numel(&g->config);
    if (g->layout->has_master &&
        !(g->zero_master = arena_try_alloc(g->arena, ARENA_CAT_OPTIMIZER, ARENA_DTYPE_F32, DIMS(S),
                                           "master.shard")))
        return -1;
    g->zero_m =
        arena_try_alloc(g->arena, ARENA_CAT_OPTIMIZER, ARENA_DTYPE_F32, DIMS(S), "adam.m.shard");
    if (!g->zero_m)
        return -1;
    g->zero_v =
        arena_try_alloc(g->arena, ARENA_CAT_OPTIMIZER, ARENA_DTYPE_F32, DIMS(S), "adam.v.shard");
    return g->zero_v ? 0 : -1;
}

void dist_optimizer_zero(Gpt *g, int with_master) {
    Tensor *ts[] = {with_master ? g->zero_master : NULL, g->zero_m, g->zero_v};
    for (int j = 0; j < 3; j++)
        if (ts[j])
            g->backend->memset_zero(ts[j]->data, ts[j]->nbytes, g->stream);
}

void dist_optimizer_release(Gpt *g) {
    arena_release(g->arena, g->zero_v);
    arena_release(g->arena, g->zero_m);
    arena_release(g->arena, g->zero_master);
    g->zero_v = g->zero_m = g->zero_master = NULL;
    gpt_dist_optimizer_gather_free(g);
}

/* The part of parameter i (elements [off, off+numel) of the whole) in this rank's shard:
 * [*a, *b) in whole-model offsets; 0 when it has none. */
static int shard_part(const Gpt *g, int64_t off, int64_t numel, int64_t *a, int64_t *b) {
    int64_t S = gpt_dist_shard_numel(&g->config), lo = (int64_t)g->comm->rank * S;
    *a = off > lo ? off : lo;
    *b = off + numel < lo + S ? off + numel : lo + S;
    return *a < *b;
}

static void *at(void *base, int64_t elems, ArenaDtype dt) {
    return base ? (char *)base + (size_t)elems * arena_dtype_size(dt) : NULL;
}

static int64_t param_offset(const Gpt *g, const GptParam *p) {
    int64_t off = 0;
    for (const GptParam *q = g->params; q < p; q++)
        off += q->numel;
    return off;
}

void dist_master_write(Gpt *g, const GptParam *p, const float *src_host) {
    int64_t off = param_offset(g, p), a, b, S = gpt_dist_shard_numel(&g->config);
    if (g->zero_master && shard_part(g, off, p->numel, &a, &b))
        g->backend->params_from_host_f32(
            at(g->zero_master->data, a - (int64_t)g->comm->rank * S, ARENA_DTYPE_F32),
            ARENA_DTYPE_F32, src_host + (a - off), b - a, g->stream);
}

/* ---- host views for checkpoints --------------------------------------------------------- */

void gpt_param_read_adam(Gpt *g, const GptParam *p, float *m_host, float *v_host) {
    size_t bytes = (size_t)p->numel * sizeof(float);
    if (!gpt_dist_sharded(g)) { /* wherever the state lives (optimizer_offload: the host) */
        gpt_tensor_read(g, p->m, m_host);
        gpt_tensor_read(g, p->v, v_host);
        return;
    }
    ASSERT_MSG(g->zero_gathered, "gpt_param_read_adam: sharded state not gathered (rank 0)");
    int64_t off = param_offset(g, p);
    int64_t whole = world_of(&g->config) * gpt_dist_shard_numel(&g->config);
    memcpy(m_host, g->zero_gathered + off, bytes);
    memcpy(v_host, g->zero_gathered + whole + off, bytes);
}

void gpt_param_write_adam(Gpt *g, GptParam *p, const float *m_host, const float *v_host) {
    if (!gpt_dist_sharded(g)) { /* wherever the state lives (optimizer_offload: the host) */
        gpt_tensor_write(g, p->m, m_host);
        gpt_tensor_write(g, p->v, v_host);
        return;
    }
    int64_t off = param_offset(g, p), a, b,
            lo = (int64_t)g->comm->rank * gpt_dist_shard_numel(&g->config);
    if (!shard_part(g, off, p->numel, &a, &b))
        return;
    size_t bytes = (size_t)(b - a) * sizeof(float);
    g->backend->copy_from_host(at(g->zero_m->data, a - lo, ARENA_DTYPE_F32), m_host + (a - off),
                               bytes, g->stream);
    g->backend->copy_from_host(at(g->zero_v->data, a - lo, ARENA_DTYPE_F32), v_host + (a - off),
                               bytes, g->stream);
}

void gpt_param_read_weights(Gpt *g, const GptParam *p, float *dst_host) {
    if (p->master) { /* on the device, or in the host arena with optimizer_offload */
        gpt_tensor_read(g, p->master, dst_host);
        return;
    }
    if (!gpt_dist_sharded(g) || !g->zero_master) { /* no master copy: the params are f32 */
        gpt_param_read_f32(g, p, dst_host);
        return;
    }
    ASSERT_MSG(g->zero_gathered, "gpt_param_read_weights: sharded master not gathered (rank 0)");
    int64_t whole = world_of(&g->config) * gpt_dist_shard_numel(&g->config);
    memcpy(dst_host, g->zero_gathered + 2 * whole + param_offset(g, p),
           (size_t)p->numel * sizeof(float));
}

int gpt_dist_optimizer_gather(Gpt *g, Err *err) {
    if (!gpt_dist_sharded(g))
        return 0;
    int64_t S = gpt_dist_shard_numel(&g->config), N = world_of(&g->config);
    const Tensor *state[] = {g->zero_m, g->zero_v, g->zero_master}; /* master: CUDA layout */
    int n_state = g->zero_master ? 3 : 2;
    size_t shard_bytes = (size_t)S * sizeof(float), whole_bytes = (size_t)N * shard_bytes;
    float *mine = malloc(shard_bytes);
    float *all = g->comm->rank == 0 ? malloc((size_t)n_state * whole_bytes) : NULL;
    if (!mine || (g->comm->rank == 0 && !all)) {
        free(mine);
        free(all);
        return err_set(err,
                       "checkpoint: out of host memory gathering the optimizer shards "
                       "(%lld floats per rank)",
                       (long long)(n_state * S));
    }
    int rc = 0;
    for (int j = 0; rc == 0 && j < n_state; j++) { /* rank 0: state j of rank r at j*N*S + r*S */
        g->backend->copy_to_host(mine, state[j]->data, shard_bytes, g->stream);
        rc = g->comm->gather_host(g->comm->ctx, all ? all + (size_t)j * N * S : NULL, mine,
                                  shard_bytes, err);
    }
    free(mine);
    if (rc != 0) {
        free(all);
        return -1;
    }
    gpt_dist_optimizer_gather_free(g);
    g->zero_gathered = all;
    return 0;
}

void gpt_dist_optimizer_gather_free(Gpt *g) {
    free(g->zero_gathered);
    g->zero_gathered = NULL;
}

/* ---- the update ------------------------------------------------------------------------- */

/* flat (whole, dtype) <- every parameter's gradient, end to end in gpt.h order */
static void pack_grads(Gpt *g, Tensor *flat) {
    ArenaDtype dt = g->layout->grad_dtype;
    int64_t off = 0;
    for (int i = 0; i < g->n_params; i++) {
        GptParam *p = &g->params[i];
        g->comm->copy(g->comm->ctx, at(flat->data, off, dt), p->grad->data,
                      (size_t)p->numel * arena_dtype_size(dt));
        off += p->numel;
    }
}

static int need_comm(const Gpt *g, Err *err) {
    if (g->comm)
        return 0;
    return err_set(err, "gpt_update: world_size %lld needs a communicator (gpt_set_comm)",
                   (long long)world_of(&g->config));
}

/* Sums the gradients of the params at `layer` (-1: the model-level ones) whose kind is in
 * mask: started (start = 1: allreduce_sum_start, one call for all of them) or done now. */
static int reduce_params(Gpt *g, int layer, unsigned mask, int start, Err *err) {
    void *bufs[GPT_PARAM_KIND_COUNT];
    int64_t ns[GPT_PARAM_KIND_COUNT];
    int n = 0;
    ArenaDtype dt = g->layout->grad_dtype;
    for (int i = 0; i < g->n_params; i++) {
        const GptParam *p = &g->params[i];
        if (p->layer != layer || !((mask >> p->kind) & 1u))
            continue;
        if (!start && g->comm->allreduce_sum(g->comm->ctx, p->grad->data, p->numel, dt, err))
            return -1;
        bufs[n] = p->grad->data;
        ns[n++] = p->numel;
    }
    if (!start || n == 0)
        return 0;
    g->reduce_started += n;
    g->reduce_waiting = 1;
    return g->comm->allreduce_sum_start(g->comm->ctx, bufs, ns, n, dt, err);
}

int dist_reduce_start(Gpt *g, int layer, unsigned kind_mask, Err *err) {
    if (!g->reduce_in_backward)
        return 0;
    return reduce_params(g, layer, kind_mask, 1, err);
}

int gpt_grads_wait(Gpt *g, Err *err) {
    if (!g->reduce_waiting)
        return 0;
    g->reduce_waiting = 0;
    return g->comm->reduce_wait(g->comm->ctx, err);
}

void gpt_reduce_in_next_backward(Gpt *g) {
    g->reduce_in_backward = !g->inference && world_of(&g->config) > 1 && !gpt_dist_sharded(g) &&
                            g->comm && g->comm->allreduce_sum_start && g->comm->reduce_wait;
}

int dist_allreduce_grads(Gpt *g, Err *err) {
    if (need_comm(g, err))
        return -1;
    if (g->reduce_started != 0 && g->reduce_started != g->n_params)
        return err_set(err,
                       "gpt_update: %d of %d gradient sums were started (an unfinished "
                       "backward)",
                       g->reduce_started, g->n_params);
    /* not started in the backward: the same sums now, each on the model's stream (no second
     * stream, no event: the path the overlapped one is checked against) */
    if (g->reduce_started == 0)
        for (int l = -1; l < g->config.n_layer; l++)
            if (reduce_params(g, l, DIST_ALL_KINDS, 0, err))
                return -1;
    return gpt_grads_wait(g, err);
}

/* AdamW on this rank's shard: the part of each parameter inside it. */
static void update_shard(Gpt *g, Tensor *gshard, float lr, float beta1, float beta2, float eps,
                         float weight_decay, float grad_mul, int64_t step) {
    float bc1 = 1.0f - powf(beta1, (float)step);
    float bc2 = 1.0f - powf(beta2, (float)step);
    int64_t lo = (int64_t)g->comm->rank * gpt_dist_shard_numel(&g->config), off = 0, a, b;
    for (int i = 0; i < g->n_params; i++) {
        GptParam *p = &g->params[i];
        if (shard_part(g, off, p->numel, &a, &b))
            g->backend->adamw_update(
                at(p->param->data, a - off, p->param->dtype),
                g->zero_master ? at(g->zero_master->data, a - lo, ARENA_DTYPE_F32) : NULL,
                at(gshard->data, a - lo, gshard->dtype),
                at(g->zero_m->data, a - lo, ARENA_DTYPE_F32),
                at(g->zero_v->data, a - lo, ARENA_DTYPE_F32), b - a, lr, beta1, beta2, eps,
                p->decay ? weight_decay : 0.0f, grad_mul, bc1, bc2, g->stream);
        off += p->numel;
    }
}

/* Every rank's updated part of the parameters to every rank, through flat. */
static int allgather_params(Gpt *g, Tensor *flat, Err *err) {
    ArenaDtype dt = g->layout->param_dtype;
    ASSERT(arena_dtype_size(dt) <= arena_dtype_size(flat->dtype));
    int64_t S = gpt_dist_shard_numel(&g->config), off = 0, a, b;
    for (int i = 0; i < g->n_params; i++) {
        GptParam *p = &g->params[i];
        if (shard_part(g, off, p->numel, &a, &b))
            g->comm->copy(g->comm->ctx, at(flat->data, a, dt), at(p->param->data, a - off, dt),
                          (size_t)(b - a) * arena_dtype_size(dt));
        off += p->numel;
    }
    if (g->comm->allgather(g->comm->ctx, flat->data, S, dt, err) != 0)
        return -1;
    off = 0;
    for (int i = 0; i < g->n_params; i++) {
        GptParam *p = &g->params[i];
        g->comm->copy(g->comm->ctx, p->param->data, at(flat->data, off, dt),
                      (size_t)p->numel * arena_dtype_size(dt));
        off += p->numel;
    }
    return 0;
}

/* The ZeRO-1 step in order (pack, reduce-scatter, global norm, shard update, all-gather),
 * each with its error path */
int dist_update_sharded(Gpt *g, float lr, float beta1, float beta2, float eps, float weight_decay,
                        float grad_clip, int64_t step, float grad_scale, float *grad_norm_out,
                        Err *err) {
    if (need_comm(g, err))
        return -1;
    const GptBackend *be = g->backend;
    StepCtx s = {.g = g, .err = err};
    int64_t N = world_of(&g->config), S = gpt_dist_shard_numel(&g->config);
    ArenaDtype gdt = g->layout->grad_dtype;
    Tensor *flat = step_alloc(&s, 0, gdt, DIMS(N * S), "ws.dist.grads");
    Tensor *gshard = step_alloc(&s, 0, gdt, DIMS(S), "ws.dist.grad_shard");
    Tensor *acc = step_alloc(&s, 0, ARENA_DTYPE_F32, DIMS(1), "ws.grad_norm");
    if (s.failed) {
        ws_release_all(g, &s.ws);
        return -1;
    }
    be->memset_zero(flat->data, flat->nbytes, g->stream); /* the last shard's padding */
    pack_grads(g, flat);
    int rc = g->comm->reduce_scatter_sum(g->comm->ctx, gshard->data, flat->data, S, gdt, err);
    float norm = NAN;
    if (rc == 0) {
        be->memset_zero(acc->data, sizeof(float), g->stream);
        be->norm_squared_accumulate(acc->data, gshard->data, S, g->stream);
        float part = 0.0f;
        be->copy_to_host(&part, acc->data, sizeof(float), g->stream);
        rc = check_device(g, "gpt_update", err);
        double sumsq = part;
        if (rc == 0)
            rc = g->comm->allreduce_sum_host(g->comm->ctx, &sumsq, 1, err);
        norm = sqrtf((float)sumsq) / (grad_scale * (float)N);
    }
    /* a non-finite norm is the same on every rank: all skip the step (GradScaler) */
    if (rc == 0 && isfinite(norm)) {
        float grad_mul = 1.0f / (grad_scale * (float)N);
        if (grad_clip > 0.0f) {
            float coef = grad_clip / (norm + 1e-6f); /* as gpt_update (clip_grad_norm_) */
            if (coef < 1.0f)
                grad_mul *= coef;
        }
        update_shard(g, gshard, lr, beta1, beta2, eps, weight_decay, grad_mul, step);
        rc = allgather_params(g, flat, err);
    }
    ws_release_all(g, &s.ws);
    if (rc == 0 && grad_norm_out)
        *grad_norm_out = norm;
    return rc;
}
