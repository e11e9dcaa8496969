/* test_dist.c: data parallel in the model (model/dist.h), without MPI: the ranks are threads
 * of this process, each with its own model and arena, and the collectives a GptComm over
 * shared memory and a barrier. Checked: the per-rank plan against the ZeRO paper's
 * model-state bytes for GPT-2 124M on 8 ranks (exactly, modulo the arena's 256-byte
 * rounding); a padded last shard; 2 ranks (zero_stage 0 and 1) train the weights one model
 * trains with both ranks' micro-batches accumulated; each rank's measured arena equals its
 * plan to the byte; the gradient sums started during the backward (run eagerly or at the wait)
 * give the sums after it bit for bit; the refusals (zero_stage 2, no communicator). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../alloc/arena.h"
#include "../model/dist.h"
#include "../model/gpt.h"
#include "test_util.h"

/* The 2-rank sum adds the same two micro-batch gradients one model accumulates, in another
 * f32 order, and ZeRO-1 takes the gradient norm as a sum of per-shard sums: after 2 AdamW
 * steps of lr 1e-3 the weights agree to ~1e-8 (AdamW normalises the gradient, so a relative
 * gradient error of ~1e-7 moves a weight by ~lr * 1e-7 per step). */
#define WEIGHT_ATOL 1e-6
/* AdamW does not see a gradient scaled by a constant (m / sqrt(v)), so the mean over ranks is
 * checked on the gradient norm too: the same sums in another f32 order */
#define NORM_RTOL 1e-5
#define N_RANKS 2
#define STEPS 2
#define LR 1e-3f

/* ---- a GptComm over threads ------------------------------------------------------------- */

typedef struct Shared {
    pthread_barrier_t barrier;
    const void *bufs[N_RANKS];
} Shared;

/* How the thread communicator runs the sums the backward starts (allreduce_sum_start) */
typedef enum {
    OVERLAP_NONE,     /* no allreduce_sum_start: gpt_update sums after the backward */
    OVERLAP_EAGER,    /* summed at the start call: a start before the gradient is final
                         sums a partial one */
    OVERLAP_DEFERRED, /* summed at reduce_wait: an update that does not wait reads unsummed
                         gradients */
} Overlap;

#define MAX_PENDING 256

typedef struct RankCtx {
    Shared *sh;
    int rank;
    Overlap overlap;
    int n_pending, n_started, n_start_calls;
    void *pending[MAX_PENDING];
    int64_t pending_n[MAX_PENDING];
} RankCtx;

static void t_copy(void *ctx, void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }

/* every rank's buffer published, then read by all, then released */
static void publish(RankCtx *r, const void *buf) {
    r->sh->bufs[r->rank] = buf;
    pthread_barrier_wait(&r->sh->barrier);
}
static void done(RankCtx *r) { pthread_barrier_wait(&r->sh->barrier); }

static int t_allreduce(void *ctx, void *buf, int64_t n, ArenaDtype dt, Err *err) {
    assert_int_equal(dt, ARENA_DTYPE_F32);
    RankCtx *r = ctx;
    float *sum = calloc((size_t)n, sizeof(float));
    assert_non_null(sum);
    publish(r, buf);
    for (int k = 0; k < N_RANKS; k++)
        for (int64_t i = 0; i < n; i++)
            sum[i] += ((const float *)r->sh->bufs[k])[i];
    done(r);
    memcpy(buf, sum, (size_t)n * sizeof(float));
    free(sum);
    return 0;
}

static int t_allreduce_start(void *ctx, void *const *bufs, const int64_t *ns, int count,
                             ArenaDtype dt, Err *err) {
    RankCtx *r = ctx;
    r->n_start_calls++;
    for (int i = 0; i < count; i++, r->n_started++) {
        if (r->overlap == OVERLAP_EAGER) {
            assert_int_equal(t_allreduce(ctx, bufs[i], ns[i], dt, err), 0);
            continue;
        }
        assert_true(r->n_pending < MAX_PENDING);
        r->pending[r->n_pending] = bufs[i];
        r->pending_n[r->n_pending++] = ns[i];
    }
    return 0;
}

static int t_reduce_wait(void *ctx, Err *err) {
    RankCtx *r = ctx;
    for (int i = 0; i < r->n_pending; i++)
        assert_int_equal(t_allreduce(ctx, r->pending[i], r->pending_n[i], ARENA_DTYPE_F32, err), 0);
    r->n_pending = 0;
    return 0;
}

static int t_reduce_scatter(void *ctx, void *out, const void *in, int64_t n, ArenaDtype dt,
                            Err *err) {
    assert_int_equal(dt, ARENA_DTYPE_F32);
    RankCtx *r = ctx;
    publish(r, in);
    for (int64_t i = 0; i < n; i++) {
        float s = 0;
        for (int k = 0; k < N_RANKS; k++)
            s += ((const float *)r->sh->bufs[k])[r->rank * n + i];
        ((float *)out)[i] = s;
    }
    done(r);
    return 0;
}

static int t_allgather(void *ctx, void *buf, int64_t n, ArenaDtype dt, Err *err) {
    RankCtx *r = ctx;
    size_t blk = (size_t)n * arena_dtype_size(dt);
    publish(r, buf);
    for (int k = 0; k < N_RANKS; k++) /* rank k's own block of its buffer: nobody writes it */
        if (k != r->rank)
            memcpy((char *)buf + k * blk, (const char *)r->sh->bufs[k] + k * blk, blk);
    done(r);
    return 0;
}

static int t_allreduce_host(void *ctx, double *vals, int n, Err *err) {
    RankCtx *r = ctx;
    double sum[8] = {0};
    assert_true(n <= 8);
    publish(r, vals);
    for (int k = 0; k < N_RANKS; k++)
        for (int i = 0; i < n; i++)
            sum[i] += ((const double *)r->sh->bufs[k])[i];
    done(r);
    memcpy(vals, sum, (size_t)n * sizeof(double));
    return 0;
}

static int t_gather_host(void *ctx, void *recv, const void *send, size_t bytes, Err *err) {
    RankCtx *r = ctx;
    publish(r, send);
    if (r->rank == 0)
        for (int k = 0; k < N_RANKS; k++)
            memcpy((char *)recv + k * bytes, r->sh->bufs[k], bytes);
    done(r);
    return 0;
}

/* ---- the runs --------------------------------------------------------------------------- */

enum { B = 2, T = 8 };

static GptConfig small_config(int world, int zero_stage) {
    /* V = 61: a parameter count that 2 does not divide into 256-byte shards evenly */
    GptConfig c = test_gpt_config(2, 2, 16, T, 61, 61, 1, 0, 0);
    c.world_size = world;
    c.zero_stage = zero_stage;
    return c;
}

static void tokens(int rank, int step, int32_t *in, int32_t *tg) {
    for (int i = 0; i < B * T; i++) {
        in[i] = (i * 7 + rank * 13 + step * 3) % 61;
        tg[i] = (i * 5 + rank * 11 + step * 17 + 1) % 61;
    }
}

typedef struct RankRun {
    RankCtx ctx;
    int zero_stage;
    int accum; /* micro-steps per step (0: 1); the last one's backward starts the sums */
    int n_started, n_start_calls; /* out: the ctx's counts after the training steps */
    float *weights;               /* out: every parameter, end to end */
    float norm[STEPS];            /* out: gpt_update's gradient norm per step */
    int plan_equal;               /* out: the measured arena equals the plan, per category */
} RankRun;

static void weights_copy(Gpt *g, float *dst) {
    for (int i = 0; i < g->n_params; i++) {
        gpt_param_read_f32(g, &g->params[i], dst);
        dst += g->params[i].numel;
    }
}

static void *rank_main(void *arg) {
    RankRun *run = arg;
    int rank = run->ctx.rank;
    GptConfig c = small_config(N_RANKS, run->zero_stage);
    GptComm comm = {.rank = rank,
                    .world_size = N_RANKS,
                    .ctx = &run->ctx,
                    .copy = t_copy,
                    .allreduce_sum = t_allreduce,
                    .reduce_scatter_sum = t_reduce_scatter,
                    .allgather = t_allgather,
                    .allreduce_sum_host = t_allreduce_host,
                    .gather_host = t_gather_host};
    if (run->ctx.overlap != OVERLAP_NONE) {
        comm.allreduce_sum_start = t_allreduce_start;
        comm.reduce_wait = t_reduce_wait;
    }
    int accum = run->accum > 0 ? run->accum : 1;
    Err err = {{0}};
    Gpt g;
    Arena *a = test_model_build(&g, &c, B, T, 42);
    assert_int_equal(gpt_set_comm(&g, &comm, &err), 0);
    int32_t in[B * T], tg[B * T];
    for (int step = 0; step < STEPS; step++) {
        gpt_zero_grad(&g);
        for (int micro = 0; micro < accum; micro++) {
            tokens(rank, step * accum + micro, in, tg);
            if (micro == accum - 1)
                gpt_reduce_in_next_backward(&g);
            assert_int_equal(gpt_forward(&g, in, tg, B, T, 1, NULL, &err), 0);
            assert_int_equal(gpt_backward(&g, &err), 0);
        }
        if (step % 2 == 1) /* as train does; on even steps gpt_update's own wait is tested */
            assert_int_equal(gpt_grads_wait(&g, &err), 0);
        assert_int_equal(gpt_update(&g, LR, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, step + 1, (float)accum,
                                    &run->norm[step], &err),
                         0);
    }
    run->n_started = run->ctx.n_started;
    run->n_start_calls = run->ctx.n_start_calls;
    weights_copy(&g, run->weights);
    /* plan == measured: the phases of a training step on this arena, against the plan */
    GptPlanArgs pa = {.phase = GPT_PLAN_TRAIN, .B = B, .T = T, .grad_accum = 1};
    assert_int_equal(gpt_plan_steps(&g, &pa, in, tg, &err), 0);
    GptPlan *plan = NULL;
    assert_int_equal(gpt_plan(&c, GPT_DEVICE_CPU, &pa, &plan, &err), 0);
    ArenaStats p = arena_stats(plan->arena), m = arena_stats(a);
    run->plan_equal = p.high_water_bytes == m.high_water_bytes;
    for (int k = 0; k < ARENA_CAT_COUNT; k++)
        run->plan_equal &= p.cat_peak_bytes[k] == m.cat_peak_bytes[k];
    gpt_plan_free(plan);
    test_model_free(&g, a);
    return NULL;
}

/* N_RANKS threads run rank_main to the end (runs[r].weights: n floats each, malloc'd) */
static void run_ranks(RankRun *runs, Shared *sh, int zero_stage, Overlap overlap, int accum,
                      size_t n) {
    pthread_barrier_init(&sh->barrier, NULL, N_RANKS);
    pthread_t th[N_RANKS];
    for (int r = 0; r < N_RANKS; r++) {
        runs[r] = (RankRun){.ctx = {.sh = sh, .rank = r, .overlap = overlap},
                            .zero_stage = zero_stage,
                            .accum = accum};
        runs[r].weights = malloc(n * sizeof(float));
        assert_non_null(runs[r].weights);
        assert_int_equal(pthread_create(&th[r], NULL, rank_main, &runs[r]), 0);
    }
    for (int r = 0; r < N_RANKS; r++)
        pthread_join(th[r], NULL);
    pthread_barrier_destroy(&sh->barrier);
}

/* One model, both ranks' micro-batches accumulated (rank 0's, then rank 1's), grad_scale 2. */
static void reference_weights(float *out, float *norm) {
    GptConfig c = small_config(1, 0);
    Err err = {{0}};
    Gpt g;
    Arena *a = test_model_build(&g, &c, B, T, 42);
    int32_t in[B * T], tg[B * T];
    for (int step = 0; step < STEPS; step++) {
        gpt_zero_grad(&g);
        for (int rank = 0; rank < N_RANKS; rank++) {
            tokens(rank, step, in, tg);
            assert_int_equal(gpt_forward(&g, in, tg, B, T, 1, NULL, &err), 0);
            assert_int_equal(gpt_backward(&g, &err), 0);
        }
        assert_int_equal(gpt_update(&g, LR, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, step + 1,
                                    (float)N_RANKS, &norm[step], &err),
                         0);
    }
    weights_copy(&g, out);
    test_model_free(&g, a);
}

static void ranks_match_one_model(int zero_stage) {
    GptConfig c = small_config(1, 0);
    size_t n = (size_t)gpt_dist_numel(&c);
    float *ref = malloc(n * sizeof(float));
    assert_non_null(ref);
    float ref_norm[STEPS];
    reference_weights(ref, ref_norm);
    Shared sh;
    RankRun runs[N_RANKS];
    run_ranks(runs, &sh, zero_stage, OVERLAP_NONE, 1, n);
    for (int r = 0; r < N_RANKS; r++) {
        assert_allclose(runs[r].weights, ref, n, WEIGHT_ATOL, 0.0);
        assert_allclose(runs[r].norm, ref_norm, STEPS, 0.0, NORM_RTOL);
        assert_true(runs[r].plan_equal);
        free(runs[r].weights);
    }
    /* the weights moved: a run that never updated would match nothing here */
    float *init = malloc(n * sizeof(float));
    Gpt g;
    Arena *a = test_model_build(&g, &c, B, T, 42);
    weights_copy(&g, init);
    test_model_free(&g, a);
    double moved = 0;
    for (size_t i = 0; i < n; i++)
        moved += (ref[i] - init[i]) * (ref[i] - init[i]);
    assert_true(moved > 0);
    free(init);
    free(ref);
}

static void test_dist_zero0_matches_one_model(void **state) { ranks_match_one_model(0); }
static void test_dist_zero1_matches_one_model(void **state) { ranks_match_one_model(1); }

/* zero_stage 0 with 2 micro-steps: the sums the last backward starts, run at the start call
 * (a start before a gradient is final would sum a partial one) or at the wait (an update
 * that does not wait would read unsummed gradients), give bit for bit the weights and norms
 * of summing after the backward; one start per group (ln_f, each block, the embeddings),
 * every gradient once per step. */
static void test_dist_zero0_overlap_same_sums(void **state) {
    GptConfig c = small_config(1, 0);
    size_t n = (size_t)gpt_dist_numel(&c);
    Shared sh;
    RankRun after[N_RANKS], during[N_RANKS];
    run_ranks(after, &sh, 0, OVERLAP_NONE, 2, n);
    for (Overlap o = OVERLAP_EAGER; o <= OVERLAP_DEFERRED; o++) {
        run_ranks(during, &sh, 0, o, 2, n);
        for (int r = 0; r < N_RANKS; r++) {
            assert_memory_equal(during[r].weights, after[r].weights, n * sizeof(float));
            assert_memory_equal(during[r].norm, after[r].norm, sizeof during[r].norm);
            assert_true(during[r].plan_equal);
            Gpt probe;
            Arena *a = test_model_build(&probe, &c, B, T, 1);
            assert_int_equal(during[r].n_started, STEPS * probe.n_params);
            assert_int_equal(during[r].n_start_calls, STEPS * (c.n_layer + 2));
            test_model_free(&probe, a);
            free(during[r].weights);
        }
    }
    for (int r = 0; r < N_RANKS; r++)
        free(after[r].weights);
}

/* ---- plans ------------------------------------------------------------------------------ */

static size_t round_up(size_t bytes) {
    return (bytes + ARENA_ALIGNMENT - 1) / ARENA_ALIGNMENT * ARENA_ALIGNMENT;
}

static ArenaStats plan_stats(const GptConfig *c, GptDevice dev) {
    GptPlanArgs pa = {.phase = GPT_PLAN_TRAIN, .B = 1, .T = c->max_seq_len, .grad_accum = 1};
    GptPlan *p = NULL;
    Err err = {{0}};
    assert_int_equal(gpt_plan(c, dev, &pa, &p, &err), 0);
    ArenaStats st = arena_stats(p->arena);
    gpt_plan_free(p);
    return st;
}

/* GPT-2 124M, CUDA's mixed-precision layout, 8 ranks: the ZeRO paper's 2+2+12 bytes per
 * parameter (stage 0) and 2+2+12/8 (stage 1), each tensor rounded up to 256 bytes. */
static void test_dist_zero_paper_gpt2_124m(void **state) {
    GptConfig c = test_gpt_config(12, 12, 768, 1024, 50257, 50304, 0, 0, 0);
    c.world_size = 8;
    size_t params = 0, master = 0; /* f16 weights; f32 per-tensor state */
    Gpt probe;
    Err err = {{0}};
    Arena *pa = arena_init(ARENA_BACKING_PLAN, 0, 0, &err);
    assert_non_null(pa);
    assert_int_equal(gpt_build(&probe, &c, GPT_DEVICE_CUDA, pa, 1, 64, &err), 0);
    for (int i = 0; i < probe.n_params; i++) {
        params += round_up((size_t)probe.params[i].numel * 2);
        master += round_up((size_t)probe.params[i].numel * 4);
    }
    gpt_free(&probe);
    arena_free(pa);
    int64_t psi = gpt_dist_numel(&c);
    assert_int_equal(psi, 124373760);
    /* every GPT-2 124M tensor is a multiple of 256 bytes: the formula holds to the byte */
    assert_int_equal(params, (size_t)psi * 2);

    c.zero_stage = 0;
    ArenaStats s0 = plan_stats(&c, GPT_DEVICE_CUDA);
    assert_int_equal(s0.cat_peak_bytes[ARENA_CAT_PARAMS], 2 * (size_t)psi);
    assert_int_equal(s0.cat_peak_bytes[ARENA_CAT_GRADS], 2 * (size_t)psi);
    assert_int_equal(s0.cat_peak_bytes[ARENA_CAT_OPTIMIZER], 3 * master);
    assert_int_equal(s0.cat_peak_bytes[ARENA_CAT_OPTIMIZER], 12 * (size_t)psi);

    c.zero_stage = 1;
    ArenaStats s1 = plan_stats(&c, GPT_DEVICE_CUDA);
    size_t shard = (size_t)((psi + 7) / 8);
    assert_int_equal(gpt_dist_shard_numel(&c), (int64_t)shard);
    assert_int_equal(s1.cat_peak_bytes[ARENA_CAT_PARAMS], 2 * (size_t)psi);
    assert_int_equal(s1.cat_peak_bytes[ARENA_CAT_GRADS], 2 * (size_t)psi);
    assert_int_equal(s1.cat_peak_bytes[ARENA_CAT_OPTIMIZER], 3 * round_up(shard * 4));
    /* 12 psi / 8 = 186,560,640 bytes; the plan rounds each of the three shards to 256 */
    assert_true(s1.cat_peak_bytes[ARENA_CAT_OPTIMIZER] - 12 * (size_t)psi / 8 <
                3 * ARENA_ALIGNMENT);
}

/* 3 ranks, a parameter count 3 does not divide: the last shard is padded, m and v are
 * ceil(P/3) floats each on every rank, and the update's buffer is 3 whole shards. */
static void test_dist_zero1_padded_shard(void **state) {
    GptConfig c = small_config(3, 1);
    int64_t P = gpt_dist_numel(&c), S = gpt_dist_shard_numel(&c);
    assert_true(P % 3 != 0);
    assert_int_equal(S, (P + 2) / 3);
    ArenaStats st = plan_stats(&c, GPT_DEVICE_CPU);
    assert_int_equal(st.cat_peak_bytes[ARENA_CAT_OPTIMIZER], 2 * round_up((size_t)S * 4));
    c.zero_stage = 0;
    ArenaStats s0 = plan_stats(&c, GPT_DEVICE_CPU);
    assert_true(s0.cat_peak_bytes[ARENA_CAT_OPTIMIZER] > st.cat_peak_bytes[ARENA_CAT_OPTIMIZER]);
}

static void test_dist_refusals(void **state) {
    GptConfig c = small_config(2, 2);
    Err err = {{0}};
    assert_int_equal(gpt_config_check(&c, GPT_DEVICE_CPU, &err), -1);
    assert_non_null(strstr(err.msg, "zero_stage 2"));
    /* a run with world_size 2 and no communicator: an error, not a crash or a hang */
    c = small_config(2, 0);
    Gpt g;
    Arena *a = test_model_build(&g, &c, B, T, 1);
    int32_t in[B * T], tg[B * T];
    tokens(0, 0, in, tg);
    assert_int_equal(gpt_forward(&g, in, tg, B, T, 1, NULL, &err), 0);
    assert_int_equal(gpt_backward(&g, &err), 0);
    assert_int_equal(gpt_update(&g, LR, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 1, 1.0f, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "communicator"));
    GptComm wrong = {.rank = 0, .world_size = 3};
    assert_int_equal(gpt_set_comm(&g, &wrong, &err), -1);
    assert_non_null(strstr(err.msg, "world_size 2"));
    test_model_free(&g, a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dist_zero_paper_gpt2_124m),
        cmocka_unit_test(test_dist_zero1_padded_shard),
        cmocka_unit_test(test_dist_refusals),
        cmocka_unit_test(test_dist_zero0_matches_one_model),
        cmocka_unit_test(test_dist_zero1_matches_one_model),
        cmocka_unit_test(test_dist_zero0_overlap_same_sums),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
