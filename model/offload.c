/* offload.c: optimizer_offload: the f32 master weights, AdamW's m and v in a second arena of
 * host memory (pinned on CUDA: cudaHostAlloc, alloc/arena_cuda.cu), with the device keeping the
 * 16-bit (f16 or bf16, the layout's) parameters, the gradients and the activations. This file owns where a persistent tensor
 * lives (gpt_tensor_on_host), the copies of a tensor to and from host memory wherever it lives
 * (checkpoints, model files, init), and the offloaded AdamW step.
 *
 * One optimizer step with offload (gpt_update; the gradient norm and the skip decision are the
 * device's, unchanged, so a non-finite norm skips the step exactly as without offload):
 *   for each parameter, in chunks of at most OFFLOAD_CHUNK elements:
 *     1. the chunk of its gradient is copied device -> host as stored (f16 or bf16, or f32 with
 *        grad_dtype=float32) into the host workspace `ws.offload.grad`;
 *     2. f16 and bf16 gradients are widened to f32 (`ws.offload.grad_f32`), exactly;
 *     3. the CPU backend's AdamW kernel (OpenMP, vectorised) updates master, m and v in place:
 *        the same f32 formula, term for term, as the CUDA kernel (cuda_optim.cu);
 *     4. the updated master is rounded to the params' dtype (round to nearest even, as
 *        __float2half_rn or __float2bfloat16_rn: half.h) into `ws.offload.param` and copied
 *        host -> device into the parameter.
 *   Every step is synchronous: each copy waits for the stream (the backend's copies do), and
 *   nothing overlaps (no second stream yet: the copies of one chunk do not overlap the CPU
 *   update of another). The staging tensors are host-arena workspace, allocated for every
 *   update (a skipped one too: the arena's calls never depend on the data) and released after
 *   it, so the plan of the host arena holds them to the byte.
 * Arithmetic: the CPU kernel and the CUDA kernel compute the same f32 operations in the same
 * order; bit-identical where neither compiler fuses a multiply-add (the CUDA simulator's build:
 * tested). On a GPU nvcc contracts multiply-adds into FMAs by default, and a release CPU build
 * (-march=native) may too, so there the results differ by roundings (a few f32 ulps per step).
 *
 * The host work runs through an ops table: the real one, or the plan's (does nothing; a plan
 * arena's tensors have no memory), chosen by gpt_build as the plan backend is. Not here: the
 * host arena's reservation (train/), the plan of both arenas (plan.c). */
#include <math.h>
#include <string.h>

#include "gpt_internal.h"
#include "half.h"
#include "offload.h"

/* elements per staged chunk: 1 Mi elements = 8 MiB of host staging for 16-bit grads */
#define OFFLOAD_CHUNK ((int64_t)1 << 20)

/* The staging of one update (host-arena workspace). */
typedef struct OffloadStaging {
    Tensor *grad;     /* (chunk) grad dtype: the gradient as stored on the device */
    Tensor *grad_f32; /* (chunk) f32, only for 16-bit (f16 or bf16) gradients */
    Tensor *param;    /* (chunk) param dtype (f16 or bf16): the rounded master, for the device */
} OffloadStaging;

typedef struct OffloadAdam {
    float lr, beta1, beta2, eps, weight_decay, grad_mul, bc1, bc2;
} OffloadAdam;

struct OffloadOps {
    void (*zero)(void *dst, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);
    /* the update of elements [off, off + n) of p: 0, or -1 with err after a device error */
    int (*update_chunk)(Gpt *g, GptParam *p, int64_t off, int64_t n, const OffloadStaging *st,
                        const OffloadAdam *a, Err *err);
};

/* ---- f16 <-> f32 on the host (half.h's, under offload.h's older names) ------------------ */

float offload_f16_to_f32(uint16_t h) { return half_f16_to_f32(h); }
uint16_t offload_f32_to_f16(float f) { return half_f32_to_f16(f); }

/* ---- the ops ------------------------------------------------------------------------------ */

static void host_zero(void *dst, size_t bytes) { memset(dst, 0, bytes); }
static void host_copy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }

void offload_adamw_host_as(ArenaDtype param_dtype, uint16_t *param, float *master,
                           ArenaDtype grad_dtype, const uint16_t *grad16, float *grad_f32, float *m,
                           float *v, int64_t n, float lr, float beta1, float beta2, float eps,
                           float weight_decay, float grad_mul, float bias_correction1,
                           float bias_correction2) {
    ASSERT(param_dtype == ARENA_DTYPE_F16 || param_dtype == ARENA_DTYPE_BF16);
    ASSERT(grad_dtype == ARENA_DTYPE_F32 || grad16 != NULL);
    if (grad_dtype == ARENA_DTYPE_F16) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++)
            grad_f32[i] = half_f16_to_f32(grad16[i]);
    } else if (grad_dtype == ARENA_DTYPE_BF16) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++)
            grad_f32[i] = half_bf16_to_f32(grad16[i]);
    }
    /* the CPU backend's kernel on the f32 master (its table's AdamW with no master pointer
     * updates `param` in f32: here the master) */
    gpt_backend_cpu()->adamw_update(master, NULL, grad_f32, m, v, n, lr, beta1, beta2, eps,
                                    weight_decay, grad_mul, bias_correction1, bias_correction2,
                                    NULL);
    if (param_dtype == ARENA_DTYPE_BF16) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++)
            param[i] = half_f32_to_bf16(master[i]);
    } else {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++)
            param[i] = half_f32_to_f16(master[i]);
    }
}

void offload_adamw_host(uint16_t *param, float *master, const uint16_t *grad_f16, float *grad_f32,
                        float *m, float *v, int64_t n, float lr, float beta1, float beta2,
                        float eps, float weight_decay, float grad_mul, float bias_correction1,
                        float bias_correction2) {
    offload_adamw_host_as(ARENA_DTYPE_F16, param, master,
                          grad_f16 ? ARENA_DTYPE_F16 : ARENA_DTYPE_F32, grad_f16, grad_f32, m, v, n,
                          lr, beta1, beta2, eps, weight_decay, grad_mul, bias_correction1,
                          bias_correction2);
}

static int host_update_chunk(Gpt *g, GptParam *p, int64_t off, int64_t n, const OffloadStaging *st,
                             const OffloadAdam *a, Err *err) {
    const GptBackend *be = g->backend;
    size_t gsz = arena_dtype_size(p->grad->dtype), psz = arena_dtype_size(p->param->dtype);
    be->copy_to_host(st->grad->data, (char *)p->grad->data + (size_t)off * gsz, (size_t)n * gsz,
                     g->stream);
    /* a failed copy leaves the staging unwritten: stop before the state is touched */
    if (check_device(g, "gpt_update (optimizer_offload, gradients to the host)", err))
        return -1;
    int g16 = p->grad->dtype != ARENA_DTYPE_F32; /* f16 or bf16: widened into grad_f32 */
    offload_adamw_host_as(p->param->dtype, st->param->data, (float *)p->master->data + off,
                          p->grad->dtype, g16 ? st->grad->data : NULL,
                          g16 ? st->grad_f32->data : st->grad->data, (float *)p->m->data + off,
                          (float *)p->v->data + off, n, a->lr, a->beta1, a->beta2, a->eps,
                          a->weight_decay, a->grad_mul, a->bc1, a->bc2);
    be->copy_from_host((char *)p->param->data + (size_t)off * psz, st->param->data, (size_t)n * psz,
                       g->stream);
    return check_device(g, "gpt_update (optimizer_offload, parameters to the device)", err);
}

static void plan_zero(void *dst, size_t bytes) {}
static void plan_copy(void *dst, const void *src, size_t bytes) {}
static int plan_update_chunk(Gpt *g, GptParam *p, int64_t off, int64_t n, const OffloadStaging *st,
                             const OffloadAdam *a, Err *err) {
    return 0;
}

static const OffloadOps HOST_OPS = {host_zero, host_copy, host_update_chunk};
static const OffloadOps PLAN_OPS = {plan_zero, plan_copy, plan_update_chunk};

const OffloadOps *offload_ops(int plan) { return plan ? &PLAN_OPS : &HOST_OPS; }

/* ---- where tensors live ------------------------------------------------------------------ */

int gpt_tensor_on_host(const Gpt *g, const Tensor *t) {
    return g->host_arena != NULL && t != NULL && t->category == ARENA_CAT_OPTIMIZER;
}

void gpt_tensor_zero(Gpt *g, Tensor *t) {
    if (gpt_tensor_on_host(g, t))
        g->offload->zero(t->data, t->nbytes);
    else
        g->backend->memset_zero(t->data, t->nbytes, g->stream);
}

void gpt_tensor_read(Gpt *g, const Tensor *t, void *dst_host) {
    if (gpt_tensor_on_host(g, t))
        g->offload->copy(dst_host, t->data, t->nbytes);
    else
        g->backend->copy_to_host(dst_host, t->data, t->nbytes, g->stream);
}

void gpt_tensor_write(Gpt *g, Tensor *t, const void *src_host) {
    if (gpt_tensor_on_host(g, t))
        g->offload->copy(t->data, src_host, t->nbytes);
    else
        g->backend->copy_from_host(t->data, src_host, t->nbytes, g->stream);
}

/* ---- the offloaded update ---------------------------------------------------------------- */

static Tensor *staging_alloc(Gpt *g, ArenaDtype dt, int64_t n, const char *name, Err *err) {
    Tensor *t = arena_try_alloc(g->host_arena, ARENA_CAT_WORKSPACE, dt, DIMS(n), "%s", name);
    if (!t)
        err_set(err, "optimizer_offload: host arena: %s", arena_last_error(g->host_arena));
    return t;
}

static void staging_release(Gpt *g, OffloadStaging *st) {
    arena_release(g->host_arena, st->param);
    arena_release(g->host_arena, st->grad_f32);
    arena_release(g->host_arena, st->grad);
    memset(st, 0, sizeof *st);
}

int offload_update(Gpt *g, float lr, float beta1, float beta2, float eps, float weight_decay,
                   float grad_mul, int64_t step, int apply, Err *err) {
    int64_t chunk = 0;
    for (int i = 0; i < g->n_params; i++)
        chunk = g->params[i].numel > chunk ? g->params[i].numel : chunk;
    chunk = chunk < OFFLOAD_CHUNK ? chunk : OFFLOAD_CHUNK;
    OffloadStaging st = {0};
    if (!(st.grad = staging_alloc(g, g->layout->grad_dtype, chunk, "ws.offload.grad", err)) ||
        (g->layout->grad_dtype != ARENA_DTYPE_F32 &&
         !(st.grad_f32 = staging_alloc(g, ARENA_DTYPE_F32, chunk, "ws.offload.grad_f32", err))) ||
        !(st.param = staging_alloc(g, g->layout->param_dtype, chunk, "ws.offload.param", err))) {
        staging_release(g, &st);
        return -1;
    }
    OffloadAdam a = {lr,
                     beta1,
                     beta2,
                     eps,
                     weight_decay,
                     grad_mul,
                     1.0f - powf(beta1, (float)step),
                     1.0f - powf(beta2, (float)step)};
    int rc = 0;
    for (int i = 0; i < g->n_params && rc == 0 && apply; i++) { /* a skipped step: no update */
        GptParam *p = &g->params[i];
        OffloadAdam pa = a;
        pa.weight_decay = p->decay ? weight_decay : 0.0f;
        for (int64_t off = 0; off < p->numel && rc == 0; off += chunk)
            rc = g->offload->update_chunk(
                g, p, off, p->numel - off < chunk ? p->numel - off : chunk, &st, &pa, err);
    }
    staging_release(g, &st);
    return rc;
}
