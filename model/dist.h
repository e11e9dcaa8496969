/* dist.h: data parallel in the model: the collectives the update needs (GptComm, a table the
 * caller provides: MPI on the CPU in train/dist_mpi.c; the plan's, whose collectives do
 * nothing), gradient averaging across ranks and ZeRO stage 1 (AdamW state sharded).
 *
 * World: GptConfig.world_size ranks (1 = one process; nothing here runs), each with its own
 * arena and the same model. Every rank holds the whole parameters and gradients.
 *   zero_stage 0: every gradient tensor is summed over the ranks in place (no buffer); the
 *     update divides them by world_size * grad_scale (the mean over ranks) and runs on every
 *     rank alike. When the caller asks (gpt_reduce_in_next_backward, before the last
 *     micro-step's backward) and the communicator can start a reduction without waiting
 *     (allreduce_sum_start), the backward starts each layer's sums as soon as it has finished
 *     that layer's gradients: ln_f's first, then the blocks from the last to the first, then
 *     wte and wpe (wte also takes the tied head's part, so it is final only after the
 *     encoder's backward). gpt_grads_wait (gpt_update calls it) makes the model's later work
 *     wait for them. Otherwise gpt_update sums each gradient with allreduce_sum, on the
 *     model's stream. The sums are the same either way (each gradient once, in place, over
 *     the same ranks); only when, and on which stream, they run differs.
 *   zero_stage 1 (the ZeRO paper's P_os): the optimizer state (`adam.m.shard`, `adam.v.shard`,
 *     and `master.shard` in the CUDA layout) holds S = ceil(P / world_size) f32 per rank: rank r
 *     owns the elements [r*S, r*S + S) of the parameters laid end to end in gpt.h order (the
 *     last shard padded with zeros, so any P works). The update packs the gradients into
 *     `ws.dist.grads` (world_size * S, padding zeroed), reduce-scatters them into
 *     `ws.dist.grad_shard` (S), takes the global norm from each rank's sum of squares, runs
 *     AdamW on its own shard, and all-gathers the updated parameters through `ws.dist.grads`.
 * The arena calls depend only on the config (never on the rank or the data), so every rank's
 * plan is the same and equals what it measures. Stages above 1 are refused by
 * gpt_config_check. */
#ifndef ARENAGPT_DIST_H
#define ARENAGPT_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "gpt.h"

/* Collectives among world_size ranks. Device buffers live where the model's tensors live
 * (host memory on the CPU). Every call is collective: all ranks make it with the same n. */
typedef struct GptComm {
    int rank, world_size;
    void *ctx;
    /* dst = src, bytes, device to device */
    void (*copy)(void *ctx, void *dst, const void *src, size_t bytes);
    /* buf (n) = the sum over ranks of buf, in place */
    int (*allreduce_sum)(void *ctx, void *buf, int64_t n, ArenaDtype dtype, Err *err);
    /* out (n) = the sum over ranks of in[rank*n, rank*n + n); in is (world_size*n) */
    int (*reduce_scatter_sum)(void *ctx, void *out, const void *in, int64_t n, ArenaDtype dtype,
                              Err *err);
    /* buf (world_size*n): every rank's block [rank*n, rank*n + n) to every rank, in place */
    int (*allgather)(void *ctx, void *buf, int64_t n, ArenaDtype dtype, Err *err);
    /* Optional (NULL: the reductions run with allreduce_sum, after the backward). Starts
     * summing bufs[i] (ns[i] elements each) over the ranks in place, ordered after the work
     * already issued on the model's stream (what wrote them), and returns without waiting;
     * the caller leaves the buffers alone until reduce_wait. Collective, in the same order on
     * every rank. */
    int (*allreduce_sum_start)(void *ctx, void *const *bufs, const int64_t *ns, int count,
                               ArenaDtype dtype, Err *err);
    /* The model's later work waits for every reduction started (on CUDA without blocking the
     * host); -1 with err when one failed. */
    int (*reduce_wait)(void *ctx, Err *err);
    /* host values (n) = the sum over ranks, in place */
    int (*allreduce_sum_host)(void *ctx, double *vals, int n, Err *err);
    /* host bytes: rank 0's recv (world_size*bytes) gets every rank's send, in rank order */
    int (*gather_host)(void *ctx, void *recv, const void *send, size_t bytes, Err *err);
} GptComm;

/* The communicator of a run with world_size > 1 (checked against g's world_size). A plan
 * arena's model has the plan's (rank 0, collectives do nothing) from gpt_build. */
int gpt_set_comm(Gpt *g, const GptComm *comm, Err *err);

/* Elements of every parameter laid end to end (P), and one rank's shard of them under ZeRO-1:
 * ceil(P / world_size). */
int64_t gpt_dist_numel(const GptConfig *c);
int64_t gpt_dist_shard_numel(const GptConfig *c);
/* 1 when g's optimizer state is sharded (training build, world_size > 1, zero_stage 1). */
int gpt_dist_sharded(const Gpt *g);

/* AdamW's m and v of p as host f32 (numel each), and back. Sharded: read takes them from the
 * copy gpt_dist_optimizer_gather made (rank 0 only); write sets this rank's part of them. */
void gpt_param_read_adam(Gpt *g, const GptParam *p, float *m_host, float *v_host);
void gpt_param_write_adam(Gpt *g, GptParam *p, const float *m_host, const float *v_host);
/* The f32 weights the optimizer updates, as host f32 (numel): p's master copy where the layout
 * has one (sharded: from gpt_dist_optimizer_gather's copy, rank 0 only), else the params. */
void gpt_param_read_weights(Gpt *g, const GptParam *p, float *dst_host);
/* Collective when sharded: gathers every rank's m, v (and, in the CUDA layout, master) shards
 * into host memory on rank 0 (2 or 3 x world_size * S floats, malloc'd outside the arena) for
 * gpt_param_read_adam and gpt_param_read_weights; freed by gpt_dist_optimizer_gather_free.
 * Does nothing when not sharded. */
int gpt_dist_optimizer_gather(Gpt *g, Err *err);
void gpt_dist_optimizer_gather_free(Gpt *g);

/* ---- for the model's own files (gpt.c, params.c) ------------------------------------------ */
/* The plan's communicator: rank 0, collectives that do nothing. */
const GptComm *gpt_comm_plan(void);
/* The sharded optimizer state: allocate (after the grads), zero (m and v; the master shard too
 * when with_master: at build, not after gpt_init_weights wrote it), release. */
int dist_optimizer_alloc(Gpt *g);
void dist_optimizer_zero(Gpt *g, int with_master);
void dist_optimizer_release(Gpt *g);
/* Writes this rank's part of p's master copy (CUDA layout, sharded) from host f32. */
void dist_master_write(Gpt *g, const GptParam *p, const float *src_host);
/* zero_stage 0, world_size > 1: starts summing over the ranks the gradients of the params at
 * `layer` (-1: wte, wpe, ln_f) whose kind is in kind_mask (bit GptParamKind); nothing when the
 * reductions do not overlap the backward (gpt_reduce_in_next_backward). */
#define DIST_ALL_KINDS (~0u)
int dist_reduce_start(Gpt *g, int layer, unsigned kind_mask, Err *err);
/* zero_stage 0, world_size > 1: every gradient summed over the ranks in place: what the
 * backward started, waited for; the rest reduced now. */
int dist_allreduce_grads(Gpt *g, Err *err);
/* zero_stage 1: gpt_update's whole step (its arguments, documented in gpt.h). */
int dist_update_sharded(Gpt *g, float lr, float beta1, float beta2, float eps, float weight_decay,
                        float grad_clip, int64_t step, float grad_scale, float *grad_norm_out,
                        Err *err);

#endif
