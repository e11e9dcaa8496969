/* cmd_train.c: `arenagpt train`: the training loop. Prints the memory plan first (gpt_plan on a
 * plan arena), sizes the real arena's reservation from it, trains with nanoGPT's loop (get_lr,
 * gradient accumulation, eval every eval_interval over eval_iters batches of each split, a log
 * line every log_interval), writes metrics.jsonl (metrics.h) and the model to out_dir, and ends
 * with the measured peaks next to the plan, category by category.
 *
 * An iteration `it` (it optimizer steps done) runs: the eval when due, then the checkpoint when
 * due, then step it+1. Checkpoints (model.bin in llm.c format, version 3 (f32) or 5 (bf16) as
 * model_dtype says, + state_<iter>.bin, checkpoint.h)
 * are due every checkpoint_interval steps (0: at every eval point) and at max_iters; with
 * always_save_checkpoint = False only where this iteration's eval improved the best val loss
 * (nanoGPT). A checkpoint holds the state at the top of its iteration: the loaders' RNG and the
 * progress as they were before its eval, so that a resume redoes that eval identically.
 *
 * SIGINT/SIGTERM are checked between eval batches, between micro-steps and between
 * iterations: the interrupted eval or step is abandoned, the loaders are set back to the top of
 * the iteration, and that state is saved (then exit 0). init_from=resume continues from the
 * newest state in out_dir and, on the CPU, reproduces the uninterrupted run's losses bit for
 * bit.
 *
 * float16 on the GPU uses dynamic loss scaling with GradScaler's rules (start 65536, x2
 * after scaler_growth_interval clean steps (default 2000), x0.5 and skip the step on
 * inf/NaN); the CPU (fp32) and bfloat16 on the GPU (f32's exponent range) run at scale 1, and
 * a step with a non-finite loss or gradient is skipped and counted, STEP_GUARD_MAX_SKIPS in a
 * row stopping the run as diverged; no checkpoint is taken while steps are being skipped
 * (step_guard.h). The fault-injection hooks of the reliability tests (test_hooks.h) act only
 * when their environment variables are set.
 *
 * Data parallel (mpirun -np N, train/dist.h, model/dist.h): every rank runs this loop on its
 * own arena. An optimizer step is the N ranks' gradient_accumulation_steps micro-steps each;
 * the windows are those one rank draws with N x the micro-steps: every rank draws all of them
 * from the same loader stream and keeps rank r's block [r*accum, r*accum + accum). The loss is
 * the mean over all of them; gpt_update averages the gradients across the ranks (at
 * zero_stage 0 their sums start in the last micro-step's backward: grad_reduce_overlap). The
 * eval shares its batches out among the ranks. Rank 0 alone prints and writes files; a stop
 * signal is agreed between steps (any rank's stops all). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../data/loader.h"
#include "../data/shard.h"
#include "../model/device.h"
#include "../model/gpu_table.h"
#include "../model/model_io.h"
#include "checkpoint.h"
#include "commands.h"
#include "dist.h"
#include "init_from.h"
#include "mem_html.h"
#include "metrics.h"
#include "run_common.h"
#include "schedule.h"
#include "step_guard.h"
#include "test_hooks.h"

#define ADAMW_EPS 1e-8f
#define SCALER_INIT 65536.0f
#define PROGRESS_EVERY_S 0.25          /* terminal progress refresh */
#define ETA_SMOOTHING 0.2              /* weight of the newest log interval in the ETA's average */
#define PLOT_PYTHON "/usr/bin/python3" /* Debian's, with python3-matplotlib (scripts/setup.sh) */

extern char **environ;

typedef struct TrainState {
    const TrainConfig *cfg; /* resolved (RunSetup.cfg) */
    GptDevice dev;
    Gpt g;
    Arena *arena;
    Arena *host_arena; /* optimizer_offload: the pinned host arena (master, m, v); else NULL */
    DataLoader *train, *val, *train_eval;
    int32_t *inputs, *targets; /* (B,T) host */
    FILE *metrics;
    CheckpointProgress progress;
    double flops_per_iter; /* model FLOPs of one optimizer step (forward, backward, recompute) */
    double peak_flops;     /* the GPU's dense f16 peak, 0 = unknown (MFU n/a) */
    const GpuSpec *gpu;    /* the GPU table's entry the peak comes from; NULL unknown */
    double dt_avg;         /* smoothed seconds per iteration, for the ETA; < 0 = none yet */
    StepGuard guard;       /* CPU: non-finite steps skipped, counted, "diverged" stop */
    TestHooks hooks;       /* fault injection, tests only (test_hooks.h) */
    int tty;               /* stdout is a terminal: live progress lines */
    const Dist *dist;      /* the ranks (one without mpirun) */
} TrainState;

static volatile sig_atomic_t g_stop_signal = 0;

static void on_stop_signal(int sig) { g_stop_signal = sig; }

/* The three loaders' states, packed for the checkpoint. */
typedef struct LoaderStates {
    DataLoaderState train, val, train_eval;
} LoaderStates;

static void loaders_get(TrainState *s, LoaderStates *ls) {
    memset(ls, 0, sizeof *ls);
    data_loader_get_state(s->train, &ls->train);
    data_loader_get_state(s->val, &ls->val);
    data_loader_get_state(s->train_eval, &ls->train_eval);
}

static void loaders_set(TrainState *s, const LoaderStates *ls) {
    data_loader_set_state(s->train, &ls->train);
    data_loader_set_state(s->val, &ls->val);
    data_loader_set_state(s->train_eval, &ls->train_eval);
}

/* Saves model.bin and state_<iter>.bin with the given loader states and progress. */
static int save_checkpoint(TrainState *s, LoaderStates *ls, const CheckpointProgress *pr,
                           Err *err) {
    const TrainConfig *cfg = s->cfg;
    char mpath[2 * CONFIG_STR_LEN], spath[2 * CONFIG_STR_LEN];
    snprintf(mpath, sizeof mpath, "%s/model.bin", cfg->out_dir);
    /* ZeRO-1: every rank's optimizer shard gathered on rank 0, one state file for any world */
    if (gpt_dist_optimizer_gather(&s->g, err) != 0)
        return -1;
    int32_t version = cfg->model_dtype == CONFIG_MODEL_DTYPE_BFLOAT16 ? MODEL_FILE_VERSION_BF16
                                                                      : MODEL_FILE_VERSION_FP32;
    int rc = s->dist->rank != 0 ? 0 : model_file_write_as(&s->g, mpath, version, err);
    if (rc == 0 && s->dist->rank == 0)
        rc = checkpoint_save(cfg->out_dir, cfg, &s->g, pr, ls, sizeof *ls,
                             (int)cfg->keep_checkpoints, spath, sizeof spath, err);
    gpt_dist_optimizer_gather_free(&s->g);
    if (rc != 0)
        return -1;
    printf("checkpoint: %s and %s (iteration %lld)\n", mpath, spath, (long long)pr->iter);
    return 0;
}

/* Saves the state at the top of the iteration and reports the stop. */
static int stop_here(TrainState *s, LoaderStates *top, const CheckpointProgress *top_pr,
                     const char *during, Err *err) {
    if (s->tty)
        printf("\r\033[K");
    loaders_set(s, top);
    if (save_checkpoint(s, top, top_pr, err) != 0)
        return -1;
    printf("stopped by signal %d %s at iteration %lld; resume with --init_from=resume\n",
           (int)g_stop_signal, during, (long long)top_pr->iter);
    return 0;
}

/* A state written by another number of ranks: said, and resumed (the state file holds the
 * optimizer state whole, so each rank takes its shard of it; the loaders' stream is the same
 * for any world size). */
static int resume_world_note(TrainState *s, const char *path, Err *err) {
    char *text = NULL;
    if (checkpoint_read_config(path, &text, err) != 0)
        return -1;
    TrainConfig was;
    config_defaults(&was);
    static const char *const only[] = {"world_size", NULL};
    int rc = config_apply_text(&was, text, path, only, err);
    free(text);
    if (rc == 0 && was.world_size != s->dist->world_size)
        printf("the state was written by %lld rank(s), this run has %d: the optimizer state is "
               "resharded; an optimizer step now takes %lld windows\n",
               (long long)was.world_size, s->dist->world_size,
               (long long)(s->cfg->batch_size * s->cfg->gradient_accumulation_steps *
                           s->dist->world_size));
    return rc;
}

/* A state resumed in the other CUDA dtype (checkpoint.h): the params came from the f32 master;
 * the loss scaler starts again as a fresh run of this dtype's would. */
static void resume_converted(TrainState *s, const CheckpointPrecision *was) {
    CheckpointPrecision now = checkpoint_precision_of(&s->g);
    s->progress.loss_scale = s->g.config.bf16 ? 1.0f : SCALER_INIT;
    s->progress.clean_steps = 0;
    printf("the state was written in %s, this run is %s: the %s params are rounded from its f32 "
           "master weights (AdamW's m and v as saved), %s %.0f\n",
           checkpoint_dtype_name(was), checkpoint_dtype_name(&now), checkpoint_dtype_name(&now),
           s->g.config.bf16 ? "no loss scaling: scale" : "the loss scale starts again at",
           (double)s->progress.loss_scale);
}

static int resume(TrainState *s, Err *err) {
    char path[2 * CONFIG_STR_LEN];
    if (checkpoint_find_latest(s->cfg->out_dir, path, sizeof path, err) != 0)
        return -1;
    CheckpointPrecision was, now = checkpoint_precision_of(&s->g);
    int how;
    if (checkpoint_read_precision(path, &was, err) != 0 ||
        (how = checkpoint_resume_precision(path, &was, &now, err)) < 0)
        return -1;
    LoaderStates ls;
    if (checkpoint_load(path, s->cfg, &s->g, &s->progress, &ls, sizeof ls, err) != 0)
        return -1;
    loaders_set(s, &ls);
    printf("resumed from %s at iteration %lld\n", path, (long long)s->progress.iter);
    if (how == CHECKPOINT_RESUME_CONVERT)
        resume_converted(s, &was);
    return resume_world_note(s, path, err);
}

/* Mean loss over eval_iters random batches of one split (nanoGPT's estimate_loss). With N
 * ranks every rank draws every batch (the loaders stay alike) and evaluates batches
 * k = rank, rank + N, ...; the sum is over all of them: one process's mean, in another order.
 * done/total/t0 count the batches of the whole eval point, for the progress line.
 * Returns 0, 1 when a stop signal came (between batches), -1 on error. */
static int estimate_loss(TrainState *s, DataLoader *dl, int64_t it, int64_t *done, int64_t total,
                         double t0, float *out, Err *err) {
    const TrainConfig *cfg = s->cfg;
    const int64_t N = s->dist->world_size;
    double sum = 0, t_shown = 0;
    for (int64_t k = 0; k < cfg->eval_iters; k++) {
        if (g_stop_signal && N == 1)
            return 1;
        float loss = 0;
        if (data_loader_next(dl, s->inputs, s->targets, err) != 0)
            return -1;
        if (k % N == s->dist->rank && gpt_forward(&s->g, s->inputs, s->targets, cfg->batch_size,
                                                  cfg->block_size, 0, &loss, err) != 0)
            return -1;
        sum += loss;
        ++*done;
        double t = run_now_s();
        if (s->tty && (*done == 1 || t - t_shown >= PROGRESS_EVERY_S)) {
            /* the rate over the whole eval so far: smooth, not the last batch's */
            double rate = (double)*done / (t - t0 > 0 ? t - t0 : 1e-9);
            printf("\r\033[Keval at step %lld: %lld/%lld batches, %.1f batches/s, ETA %.0f s",
                   (long long)it, (long long)*done, (long long)total, rate,
                   (double)(total - *done) / rate);
            fflush(stdout);
            t_shown = t;
        }
    }
    /* a rank without a batch (eval_iters < N) runs one anyway, its loss unused: every rank's
     * arena goes through the eval the plan has */
    float unused = 0;
    if (s->dist->rank >= cfg->eval_iters &&
        gpt_forward(&s->g, s->inputs, s->targets, cfg->batch_size, cfg->block_size, 0, &unused,
                    err) != 0)
        return -1;
    if (dist_sum(&sum, 1, err) != 0)
        return -1;
    *out = (float)(sum / (double)cfg->eval_iters);
    return 0;
}

/* The eval of iteration it: both splits, the summary line, metrics. *improved: the val loss
 * is below the best so far (then the best is updated). 0, 1 (stopped) or -1. */
static int eval_point(TrainState *s, int64_t it, int *improved, Err *err) {
    float tl = 0, vl = 0;
    int64_t done = 0, total = 2 * s->cfg->eval_iters;
    double t0 = run_now_s();
    int rc = estimate_loss(s, s->train_eval, it, &done, total, t0, &tl, err);
    if (rc == 0)
        rc = estimate_loss(s, s->val, it, &done, total, t0, &vl, err);
    if (rc != 0)
        return rc;
    double dt = run_now_s() - t0;
    if (s->tty)
        printf("\r\033[K");
    printf("step %lld: train loss %.4f, val loss %.4f (eval %.1f s, %lld batches, %.1f "
           "batches/s)\n",
           (long long)it, tl, vl, dt, (long long)total, dt > 0 ? (double)total / dt : 0.0);
    metrics_eval(s->metrics, it, tl, vl);
    *improved = vl < s->progress.best_val_loss;
    if (*improved)
        s->progress.best_val_loss = vl;
    return 0;
}

/* Draws n batches of the training stream that other ranks train on (data order above). */
static int skip_windows(TrainState *s, int64_t n, Err *err) {
    for (int64_t k = 0; k < n; k++)
        if (data_loader_next(s->train, s->inputs, s->targets, err) != 0)
            return -1;
    return 0;
}

/* One optimizer step (accum micro-steps on each rank). 0, 1 (stopped between micro-steps, one
 * rank only) or -1. */
static int train_step(TrainState *s, int64_t it, float lr, float *loss_out, float *norm_out,
                      Err *err) {
    const TrainConfig *cfg = s->cfg;
    const int64_t B = cfg->batch_size, T = cfg->block_size;
    const int64_t accum = cfg->gradient_accumulation_steps;
    CheckpointProgress *pr = &s->progress;
    float loss_scale = pr->loss_scale;
    gpt_zero_grad(&s->g);
    gpt_set_loss_scale(&s->g, loss_scale);
    double loss_sum = 0;
    for (int64_t micro = 0; micro < accum; micro++) {
        if (g_stop_signal && s->dist->world_size == 1)
            return 1;
        float loss = 0;
        if ((micro == 0 && skip_windows(s, s->dist->rank * accum, err) != 0) ||
            data_loader_next(s->train, s->inputs, s->targets, err) != 0)
            return -1;
        if (micro == accum - 1 && cfg->grad_reduce_overlap) /* several ranks, zero_stage 0 */
            gpt_reduce_in_next_backward(&s->g);
        if (gpt_forward(&s->g, s->inputs, s->targets, B, T, 1, &loss, err) != 0 ||
            gpt_backward(&s->g, err) != 0)
            return -1;
        loss_sum += loss;
    }
    /* the gradient sums the backward started: done before anything reads or skips them */
    if (gpt_grads_wait(&s->g, err) != 0)
        return -1;
    /* the other ranks' windows after ours; the loss of all of them */
    if (skip_windows(s, (s->dist->world_size - 1 - s->dist->rank) * accum, err) != 0 ||
        dist_sum(&loss_sum, 1, err) != 0)
        return -1;
    float loss = (float)(loss_sum / (double)(accum * s->dist->world_size));
    if (test_hooks_inject(&s->hooks, it, &s->g, &loss, err) != 0)
        return -1;
    /* float16 on the GPU: the loss scaler's step (gpt_update skips it on a non-finite norm) */
    int scaler = s->dev == GPT_DEVICE_CUDA && !s->g.config.bf16;
    float norm = NAN; /* stays NaN when a non-finite loss skips the update (unscaled runs) */
    if ((scaler || isfinite(loss)) &&
        gpt_update(&s->g, lr, (float)cfg->beta1, (float)cfg->beta2, ADAMW_EPS,
                   (float)cfg->weight_decay, (float)cfg->grad_clip, it + 1 - pr->skipped,
                   (float)accum * loss_scale, &norm, err) != 0)
        return -1;
    if (scaler) {
        /* GradScaler: a non-finite norm means the update was skipped */
        if (!isfinite(norm)) {
            pr->skipped++;
            pr->loss_scale *= 0.5f;
            pr->clean_steps = 0;
        } else if (++pr->clean_steps >= cfg->scaler_growth_interval) {
            pr->loss_scale *= 2.0f;
            pr->clean_steps = 0;
        }
    } else if (step_guard_after_step(&s->guard, &s->g, it, loss, norm, cfg->learning_rate,
                                     &pr->skipped, err) < 0) {
        return -1;
    }
    *loss_out = loss;
    *norm_out = norm;
    return 0;
}

/* The log line (and metrics line) after step it+1, dt seconds per iteration since the last. */
static void log_step(TrainState *s, int64_t it, float loss, float lr, float norm, float loss_scale,
                     double dt) {
    const TrainConfig *cfg = s->cfg;
    const double tokens_per_iter = (double)(cfg->batch_size * cfg->block_size *
                                            cfg->gradient_accumulation_steps * s->dist->world_size);
    CheckpointProgress *pr = &s->progress;
    s->dt_avg = s->dt_avg < 0 ? dt : (1 - ETA_SMOOTHING) * s->dt_avg + ETA_SMOOTHING * dt;
    ArenaStats st = arena_stats(s->arena);
    double eta = s->dt_avg * (double)(cfg->max_iters - it - 1);
    printf("iter %lld/%lld: loss %.4f, lr %.4e, norm %.3f, %.1f ms/iter, %.0f tok/s, "
           "arena peak %.1f MiB",
           (long long)(it + 1), (long long)cfg->max_iters, loss, lr, norm, dt * 1e3,
           tokens_per_iter / dt, st.peak_used_bytes / (1024.0 * 1024.0));
    double mfu = s->peak_flops > 0 ? s->flops_per_iter / dt / s->peak_flops : -1;
    if (s->dev == GPT_DEVICE_CUDA) {
        if (s->g.config.bf16)
            printf(", skipped %lld", (long long)pr->skipped);
        else
            printf(", scale %.0f, skipped %lld", loss_scale, (long long)pr->skipped);
        if (mfu >= 0) /* names the peak it divides by */
            printf(", mfu %.1f%% (peak %.1f TFLOP/s %s)", 100 * mfu, s->peak_flops / 1e12,
                   s->gpu ? s->gpu->key : "?");
        else
            printf(", mfu n/a");
    }
    printf(", eta %.0f s\n", eta);
    MetricsStep m = {.iter = it + 1,
                     .loss = loss,
                     .lr = lr,
                     .grad_norm = norm,
                     .loss_scale = loss_scale,
                     .ms_per_iter = dt * 1e3,
                     .tokens_per_s = tokens_per_iter / dt,
                     .skipped = pr->skipped,
                     .mfu = mfu};
    metrics_step(s->metrics, &m, &st);
}

/* Whether iteration it (> the first) takes a checkpoint, before the always_save rule. */
static int checkpoint_due(const TrainConfig *cfg, int64_t it, int64_t start) {
    if (it <= start || cfg->eval_only)
        return 0;
    if (it == cfg->max_iters)
        return 1;
    return cfg->checkpoint_interval > 0 ? it % cfg->checkpoint_interval == 0
                                        : it % cfg->eval_interval == 0;
}

static int train_loop(TrainState *s, Err *err) {
    const TrainConfig *cfg = s->cfg;
    CheckpointProgress *pr = &s->progress;
    const int64_t start = pr->iter;
    double t_last = run_now_s();
    int64_t it_last = start;

    for (int64_t it = start; it <= cfg->max_iters; it++) {
        pr->iter = it;
        LoaderStates top;
        loaders_get(s, &top);
        CheckpointProgress top_pr = *pr;
        int64_t stop = g_stop_signal; /* any rank's signal stops every rank here */
        if (dist_max(&stop, err) != 0)
            return -1;
        if (stop && !g_stop_signal)
            g_stop_signal = (sig_atomic_t)stop; /* another rank's signal */
        if (stop)
            return stop_here(s, &top, &top_pr, "between steps", err);
        int eval_due = it % cfg->eval_interval == 0 || it == cfg->max_iters;
        int improved = 0;
        if (eval_due) {
            double t0 = run_now_s();
            int rc = eval_point(s, it, &improved, err);
            if (rc == 1)
                return stop_here(s, &top, &top_pr, "during the eval", err);
            if (rc != 0)
                return -1;
            t_last += run_now_s() - t0; /* eval time is not training time */
            if (cfg->eval_only)
                return 0;
        }
        if (checkpoint_due(cfg, it, start) && s->guard.in_a_row == 0) {
            if (cfg->always_save_checkpoint || improved) {
                if (save_checkpoint(s, &top, &top_pr, err) != 0)
                    return -1;
            } else if (eval_due) {
                printf("checkpoint: skipped at iteration %lld: val loss did not improve on "
                       "%.4f (always_save_checkpoint = False)\n",
                       (long long)it, pr->best_val_loss);
            } else {
                printf("checkpoint: skipped at iteration %lld: no eval here "
                       "(always_save_checkpoint = False saves where the val loss improved)\n",
                       (long long)it);
            }
        }
        if (it == cfg->max_iters)
            break;

        float loss_scale = pr->loss_scale;
        float lr = schedule_lr(it, (float)cfg->learning_rate, cfg->warmup_iters,
                               cfg->lr_decay_iters, (float)cfg->min_lr, cfg->decay_lr);
        float loss = 0, norm = 0;
        int rc = train_step(s, it, lr, &loss, &norm, err);
        if (rc == 1) {
            *pr = top_pr;
            return stop_here(s, &top, &top_pr, "between micro-steps", err);
        }
        if (rc != 0)
            return -1;
        if ((it + 1) % cfg->log_interval == 0 || it + 1 == cfg->max_iters) {
            double t = run_now_s();
            double dt = (t - t_last) / (double)(it + 1 - it_last);
            t_last = t;
            it_last = it + 1;
            log_step(s, it, loss, lr, norm, loss_scale, dt);
        }
    }
    return 0;
}

static DataLoader *open_split(const TrainConfig *cfg, const char *dir, const char *split,
                              uint64_t seed, Err *err) {
    char path[2 * CONFIG_STR_LEN];
    if (shard_split_path(path, sizeof path, dir, split)) {
        err_set(err, "data_dir '%s' is too long", dir);
        return NULL;
    }
    return data_loader_open(path, cfg->data_format == CONFIG_DATA_NANOGPT, cfg->batch_size,
                            cfg->block_size, cfg->vocab_size, seed, err);
}

/* A character-level dataset, by nanoGPT's naming (shakespeare_char) or a small vocabulary. */
static int is_char_dataset(const TrainConfig *cfg, const char *dir) {
    return strstr(dir, "char") != NULL ||
           (config_is_set(cfg, "vocab_size") && cfg->vocab_size <= 256);
}

static int open_data(TrainState *s, const RunSetup *rs) {
    const TrainConfig *cfg = s->cfg;
    Err err;
    const char *dir = rs->data_dir;
    s->train = open_split(cfg, dir, "train", (uint64_t)cfg->seed, &err);
    if (s->train)
        s->val = open_split(cfg, dir, "val", (uint64_t)cfg->seed + 1, &err);
    if (s->val)
        s->train_eval = open_split(cfg, dir, "train", (uint64_t)cfg->seed + 2, &err);
    if (s->train_eval)
        return 0;
    fprintf(stderr,
            "arenagpt train: %s\n  (prepare data with: arenagpt prepare --input=TEXT --out=%s%s)\n",
            err.msg, dir, is_char_dataset(cfg, dir) ? " --tokenizer=char" : "");
    return -1;
}

static void print_run_header(const TrainState *s, const RunSetup *rs) {
    const TrainConfig *cfg = s->cfg;
    const GptConfig *c = &rs->model;
    if (rs->auto_cpu)
        printf("no GPU found (device = auto): training on the CPU in float32%s (16 bytes per "
               "parameter for weights, grads and AdamW, see the plan below) and far slower than "
               "on a GPU; --device=cpu makes this explicit\n",
               cfg->dtype == CONFIG_DTYPE_BFLOAT16 ? ", not bfloat16 (a GPU's dtype)" : "");
    printf("arenagpt train: device %s, dtype %s, data %s (%lld train tokens, %lld val tokens)\n",
           s->dev == GPT_DEVICE_CUDA ? "cuda" : "cpu", run_dtype_name(s->dev, c), rs->data_dir,
           (long long)data_loader_n_tokens(s->train), (long long)data_loader_n_tokens(s->val));
    char vnote[3 * CONFIG_STR_LEN + 8] = "";
    if (rs->vocab_note[0])
        snprintf(vnote, sizeof vnote, " (%s)", rs->vocab_note);
    printf("model: n_layer %lld, n_head %lld, n_embd %lld, block_size %lld, vocab_size %lld%s, "
           "bias %s, gelu %s, recompute %s, attention %s\n",
           (long long)c->n_layer, (long long)c->n_head, (long long)c->channels,
           (long long)c->max_seq_len, (long long)c->padded_vocab_size, vnote,
           c->bias ? "True" : "False", GPT_GELU_NAMES[cfg->gelu],
           GPT_RECOMPUTE_NAMES[cfg->recompute], gpt_attention_name(cfg->attention));
    run_print_params(c);
    const int64_t N = s->dist->world_size;
    printf("tokens per iteration: %lld (batch_size %lld x block_size %lld x "
           "gradient_accumulation_steps %lld",
           (long long)(cfg->batch_size * cfg->block_size * cfg->gradient_accumulation_steps * N),
           (long long)cfg->batch_size, (long long)cfg->block_size,
           (long long)cfg->gradient_accumulation_steps);
    if (N > 1)
        printf(" x %lld ranks)\nranks: %lld (%s), zero_stage %lld: %s; gradient sums: %s\n",
               (long long)N, (long long)N, s->dist->name, (long long)cfg->zero_stage,
               cfg->zero_stage ? "AdamW state sharded, each rank's plan below"
                               : "gradients averaged, each rank holds everything (plan below)",
               cfg->zero_stage            ? "reduce-scattered after the last backward"
               : cfg->grad_reduce_overlap ? "each layer's during the last backward"
                                          : "all after the last backward");
    else
        printf(")\n");
}

/* Weights: fresh, resumed, or read from the init_from model file. */
static int init_weights(TrainState *s, const RunSetup *rs, Err *err) {
    const TrainConfig *cfg = s->cfg;
    /* bfloat16 has float32's exponent range: no loss scaling (nanoGPT's GradScaler is off) */
    s->progress.loss_scale = s->dev == GPT_DEVICE_CUDA && !rs->model.bf16 ? SCALER_INIT : 1.0f;
    s->progress.best_val_loss = INFINITY;
    gpt_init_weights(&s->g, (uint64_t)cfg->seed); /* also zeroes the optimizer state */
    if (strcmp(cfg->init_from, "resume") == 0)
        return resume(s, err);
    if (rs->model_path[0]) {
        if (init_from_read(&s->g, rs->model_path, err) != 0)
            return -1;
        printf("initialised from %s\n", rs->model_path);
    }
    return 0;
}

/* scripts/plot.py beside the binary, run by PLOT_PYTHON whatever python3 PATH finds first. */
static int draw_plots(const TrainConfig *cfg, Err *err) {
    char exe[4096], script[4200], metrics[2 * CONFIG_STR_LEN], png[2 * CONFIG_STR_LEN];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return err_set(err, "plots: cannot find the binary's directory");
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    snprintf(script, sizeof script, "%s/scripts/plot.py", exe);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", cfg->out_dir);
    snprintf(png, sizeof png, "%s/loss.png", cfg->out_dir);
    if (access(PLOT_PYTHON, X_OK) != 0 || access(script, R_OK) != 0)
        return err_set(err,
                       "plots = True needs %s with matplotlib (scripts/setup.sh --plots) and %s",
                       PLOT_PYTHON, script);
    char *argv[] = {PLOT_PYTHON, script, "loss", metrics, png, NULL};
    pid_t pid;
    int status = 0;
    fflush(stdout);
    if (posix_spawn(&pid, PLOT_PYTHON, NULL, NULL, argv, environ) != 0 ||
        waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return err_set(err, "plots: %s %s loss %s %s failed (is python3-matplotlib installed?)",
                       PLOT_PYTHON, script, metrics, png);
    printf("loss curve drawn to %s\n", png);
    return 0;
}

/* optimizer_offload: the host arena measured against its plan, category by category; 1 when
 * every figure is equal. */
static int report_host(const TrainState *s, const Arena *plan_host) {
    printf("memory measured (host arena, %s backing: optimizer_offload's master, m, v):\n",
           arena_backing_name(arena_backing(s->host_arena)));
    arena_report_table(s->host_arena, stdout, (int)s->cfg->top);
    ArenaStats p = arena_stats(plan_host), m = arena_stats(s->host_arena);
    printf("host memory: plan vs measured (host arena, bytes)\n");
    int all_equal =
        p.peak_used_bytes == m.peak_used_bytes && p.high_water_bytes == m.high_water_bytes;
    for (int c = 0; c < ARENA_CAT_COUNT; c++) {
        int eq = p.cat_peak_bytes[c] == m.cat_peak_bytes[c];
        all_equal &= eq;
        printf("  %-12s %16zu %16zu %s\n", arena_category_name((ArenaCategory)c),
               p.cat_peak_bytes[c], m.cat_peak_bytes[c], eq ? "equal" : "DIFFERENT");
    }
    printf("  %-12s %16zu %16zu\n  %-12s %16zu %16zu\n", "peak (sum)", p.peak_used_bytes,
           m.peak_used_bytes, "high-water", p.high_water_bytes, m.high_water_bytes);
    printf("  host plan == measured: %s\n",
           all_equal ? "yes, to the byte" : "NO (a bug: report it)");
    return all_equal;
}

/* The end of a run: what was measured against the plan, the device, the memory page, the
 * trace, the plots. */
static int report_end(TrainState *s, const Arena *plan, const Arena *plan_host, DeviceMem *dm,
                      int have_dm) {
    const TrainConfig *cfg = s->cfg;
    int rc = 0;
    printf("memory measured (arena, %s backing):\n", arena_backing_name(arena_backing(s->arena)));
    arena_report_table(s->arena, stdout, (int)cfg->top);
    ArenaStats p = arena_stats(plan), m = arena_stats(s->arena);
    printf("memory: plan vs measured (arena, bytes)\n");
    printf("  %-12s %16s %16s %s\n", "category", "plan peak", "measured peak", "");
    int all_equal = 1;
    for (int c = 0; c < ARENA_CAT_COUNT; c++) {
        int eq = p.cat_peak_bytes[c] == m.cat_peak_bytes[c];
        all_equal &= eq;
        printf("  %-12s %16zu %16zu %s\n", arena_category_name((ArenaCategory)c),
               p.cat_peak_bytes[c], m.cat_peak_bytes[c], eq ? "equal" : "DIFFERENT");
    }
    int eq_peak = p.peak_used_bytes == m.peak_used_bytes;
    int eq_hw = p.high_water_bytes == m.high_water_bytes;
    all_equal &= eq_peak && eq_hw;
    printf("  %-12s %16zu %16zu %s\n", "peak (sum)", p.peak_used_bytes, m.peak_used_bytes,
           eq_peak ? "equal" : "DIFFERENT");
    printf("  %-12s %16zu %16zu %s\n", "high-water", p.high_water_bytes, m.high_water_bytes,
           eq_hw ? "equal" : "DIFFERENT");
    printf("  plan == measured: %s\n", all_equal ? "yes, to the byte" : "NO (a bug: report it)");
    if (s->host_arena)
        report_host(s, plan_host);
    if (s->dev == GPT_DEVICE_CUDA && have_dm) {
        Err dm_err;
        device_mem_sample(dm, DEVICE_MEM_NOW, &dm_err);
        printf("device memory (reconciliation with cudaMemGetInfo and NVML):\n");
        device_mem_report(dm, s->arena, stdout);
    }
    /* the memory page: the plan's step, plan vs measured, the card as measured (mem_html.h) */
    MemHtmlMeasured hm = {plan, s->arena, s->dev == GPT_DEVICE_CUDA && have_dm ? dm : NULL};
    char page[2 * CONFIG_STR_LEN];
    snprintf(page, sizeof page, "%s/memory.html", cfg->out_dir);
    Err page_err;
    if (mem_html_write(page, cfg, s->dev, &hm, &page_err) != 0) {
        fprintf(stderr, "arenagpt train: %s\n", page_err.msg);
        rc = 1;
    } else {
        printf("memory page: %s (open it in a browser)\n", page);
    }
    if (cfg->trace_file[0]) {
        FILE *tf = fopen(cfg->trace_file, "w");
        if (!tf || arena_report_trace(s->arena, tf) != 0) {
            fprintf(stderr, "arenagpt train: cannot write trace_file '%s'\n", cfg->trace_file);
            rc = 1;
        } else {
            printf("arena timeline written to %s (open it in Perfetto)\n", cfg->trace_file);
        }
        if (tf)
            fclose(tf);
    }
    Err err;
    if (cfg->plots && draw_plots(cfg, &err) != 0) {
        fprintf(stderr, "arenagpt train: %s\n", err.msg);
        rc = 1;
    }
    return rc;
}

/* Each rank's measured peak against the plan (every rank's plan is the same: model/dist.h),
 * printed by rank 0; -1 when a rank differs. */
static int report_ranks(TrainState *s, const Arena *plan, Err *err) {
    const int N = s->dist->world_size;
    double *v = calloc(2 * (size_t)N, sizeof *v); /* per rank: measured peak, all equal */
    if (!v)
        return err_set(err, "out of host memory for the per-rank report");
    ArenaStats p = arena_stats(plan), m = arena_stats(s->arena);
    int eq = p.peak_used_bytes == m.peak_used_bytes && p.high_water_bytes == m.high_water_bytes;
    for (int c = 0; c < ARENA_CAT_COUNT; c++)
        eq &= p.cat_peak_bytes[c] == m.cat_peak_bytes[c];
    v[2 * s->dist->rank] = (double)m.peak_used_bytes;
    v[2 * s->dist->rank + 1] = eq;
    int rc = dist_sum(v, 2 * N, err);
    int all_eq = 1;
    for (int r = 0; rc == 0 && r < N; r++) {
        printf("  rank %d: measured peak %.0f bytes, plan %zu: %s\n", r, v[2 * r],
               p.peak_used_bytes, v[2 * r + 1] ? "equal in every category" : "DIFFERENT");
        all_eq &= v[2 * r + 1] != 0;
    }
    free(v);
    if (rc == 0)
        printf("  plan == measured on every rank: %s\n", all_eq ? "yes, to the byte" : "NO");
    return rc;
}

static void free_state(TrainState *s) {
    if (s->metrics)
        fclose(s->metrics);
    free(s->inputs);
    free(s->targets);
    if (s->arena) {
        gpt_free(&s->g);
        arena_free(s->arena);
        arena_free(s->host_arena);
    }
    data_loader_free(s->train);
    data_loader_free(s->val);
    data_loader_free(s->train_eval);
}

/* The real arena (exactly the plan's high-water mark), the device memory samples, the model
 * built and initialised, out_dir, metrics and the batch buffers. */
static int build_run(TrainState *s, const RunSetup *rs, const Arena *plan, const Arena *plan_host,
                     DeviceMem *dm, int *have_dm, Err *err) {
    const TrainConfig *cfg = s->cfg;
    const GptConfig *c = &rs->model;
    const int64_t B = cfg->batch_size, T = cfg->block_size;
    Err dm_err;
    ArenaStats ps = arena_stats(plan);
    if (s->dev == GPT_DEVICE_CUDA) /* the context and library handles exist now */
        *have_dm = device_mem_sample(dm, DEVICE_MEM_AFTER_CONTEXT, &dm_err) == 0 || *have_dm;
    s->arena = arena_init(s->dev == GPT_DEVICE_CUDA ? ARENA_BACKING_DEVICE : ARENA_BACKING_HOST,
                          ps.high_water_bytes, cfg->memory_limit, err);
    if (!s->arena)
        return -1;
    test_hooks_arm_arena(&s->hooks, s->arena);
    if (s->dev == GPT_DEVICE_CUDA && *have_dm) {
        device_mem_set_reservation(dm, ps.high_water_bytes);
        device_mem_sample(dm, DEVICE_MEM_AFTER_RESERVATION, &dm_err);
        s->gpu = gpu_table_match(dm->name);
        s->peak_flops = s->gpu ? s->gpu->peak_tflops_f16 * 1e12 : 0.0;
        printf("GPU: %s (driver %s)\n", dm->name, dm->driver);
        if (s->gpu)
            printf("MFU: peak %.1f TFLOP/s dense f16 with f32 accumulate (gpu table: %s; %s)\n",
                   s->gpu->peak_tflops_f16, s->gpu->key, s->gpu->peak_source);
        else
            printf("MFU: unknown peak for %s\n", dm->name[0] ? dm->name : "this GPU");
    }
    s->flops_per_iter = (3.0 * gpt_flops_forward_per_token(c, T) +
                         gpt_flops_recompute_per_token(c, T, c->recompute)) *
                        (double)(B * T * cfg->gradient_accumulation_steps);
    if (cfg->trace_file[0])
        arena_trace_enable(s->arena, 1);
    /* optimizer_offload: the pinned host arena, exactly as large as the host plan */
    if (plan_host && !(s->host_arena = arena_init(ARENA_BACKING_PINNED,
                                                  arena_stats(plan_host).high_water_bytes, 0, err)))
        err_prefix(err, "optimizer_offload");
    if (s->host_arena)
        test_hooks_arm_host_arena(&s->hooks, s->host_arena);
    if ((plan_host && !s->host_arena) ||
        (s->host_arena ? gpt_build_offload(&s->g, c, s->dev, s->arena, s->host_arena, B, T, err)
                       : gpt_build(&s->g, c, s->dev, s->arena, B, T, err)) != 0) {
        arena_free(s->arena); /* nothing built: gpt_free must not run */
        arena_free(s->host_arena);
        s->arena = s->host_arena = NULL;
        return -1;
    }
    dist_set_stream(s->g.stream); /* NCCL's collectives follow the model's kernels */
    if (s->dist->world_size > 1 && gpt_set_comm(&s->g, &s->dist->comm, err) != 0)
        return -1;
    if (init_weights(s, rs, err) != 0 || run_mkdir_p(cfg->out_dir, err) != 0 ||
        !(s->metrics = s->dist->rank == 0 ? metrics_open(cfg->out_dir, err)
                                          : fopen("/dev/null", "w"))) /* rank 0 writes */
        return -1;
    if (s->dist->rank == 0) /* the one writer */
        checkpoint_remove_stale_temps(cfg->out_dir, stdout);
    s->inputs = malloc((size_t)(B * T) * sizeof(int32_t));
    s->targets = malloc((size_t)(B * T) * sizeof(int32_t));
    if (!s->inputs || !s->targets)
        return err_set(err, "out of host memory for the batch buffers");
    return 0;
}

/* The plan of one training step (gpt_plan), printed; -1 with err when it does not fit (*plan
 * still holds the partial plan). */
static int train_plan(const RunSetup *rs, GptPlan **plan, Err *err) {
    const TrainConfig *cfg = &rs->cfg;
    GptPlanArgs args = {.phase = GPT_PLAN_TRAIN,
                        .B = cfg->batch_size,
                        .T = cfg->block_size,
                        .grad_accum = cfg->gradient_accumulation_steps,
                        .limit_bytes = cfg->memory_limit};
    int rc = gpt_plan(&rs->model, rs->dev, &args, plan, err);
    printf("\nmemory plan (one training step, exact):\n");
    if (*plan)
        arena_report_table((*plan)->arena, stdout, (int)cfg->top);
    if (*plan && (*plan)->host_arena) {
        printf("host memory plan (optimizer_offload: pinned host memory; master, m, v and the "
               "update's staging):\n");
        arena_report_table((*plan)->host_arena, stdout, (int)cfg->top);
    }
    return rc;
}

/* The ranks: the model is built for them, the backend can run them (on CUDA: NCCL, loaded
 * here), every rank has the same resolved config (a checksum of its text). */
static int dist_setup(RunSetup *rs, Err *err) {
    const Dist *d = dist_world();
    rs->model.world_size = d->world_size;
    rs->cfg.world_size = d->world_size; /* stored with checkpoints: a resume says a change */
    if (d->world_size > 1 && rs->model.optimizer_offload)
        return err_set(err,
                       "rank %d: optimizer_offload with %d ranks is not supported yet: run one "
                       "rank, or the ranks without optimizer_offload",
                       d->rank, d->world_size);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return err_set(err, "out of host memory for the config check");
    config_write(&rs->cfg, f);
    fclose(f);
    int rc = dist_check_same(text, len, err);
    free(text);
    if (rc == 0 && d->world_size > 1 && rs->dev == GPT_DEVICE_CUDA)
        rc = dist_use_cuda(err); /* NCCL: the device collectives */
    return rc;
}

int cmd_train(const TrainConfig *user_cfg) {
    Err err;
    run_threads(user_cfg);
    /* device memory before our CUDA context exists (NVML; no context is made by this) */
    DeviceMem dm;
    memset(&dm, 0, sizeof dm);
    Err dm_err;
    int have_dm = user_cfg->device != CONFIG_DEVICE_CPU &&
                  device_mem_sample(&dm, DEVICE_MEM_BEFORE_CONTEXT, &dm_err) == 0;
    RunSetup rs; /* filled by run_setup (about 15 KiB: on the stack) */
    int rc = run_setup(user_cfg, CONFIG_CMD_TRAIN, &rs, &err);
    if (rc != 0) {
        fprintf(stderr, "arenagpt train: %s\n", err.msg);
        if (have_dm)
            device_mem_close();
        return rc;
    }
    const TrainConfig *cfg = &rs.cfg;
    TrainState s;
    memset(&s, 0, sizeof s);
    s.dist = dist_world();
    s.cfg = cfg;
    s.dev = rs.dev;
    s.dt_avg = -1;
    s.tty = isatty(fileno(stdout)) && s.dist->world_size == 1; /* mpirun: a pty, often a log */
    if (dist_setup(&rs, &err) != 0 || test_hooks_from_env(&s.hooks, &err) != 0) {
        fprintf(stderr, "arenagpt train: %s\n", err.msg);
        if (have_dm)
            device_mem_close();
        return CONFIG_EXIT_USAGE;
    }
    GptPlan *plan = NULL;
    if (open_data(&s, &rs) != 0) {
        rc = 1;
        goto done;
    }
    print_run_header(&s, &rs);

    /* 1. the plan, printed before anything is allocated */
    if ((rc = train_plan(&rs, &plan, &err)) != 0) {
        fprintf(stderr, "arenagpt train: the run does not fit: %s\n", err.msg);
        rc = 1;
        goto done;
    }

    /* 2. the real arena, exactly as large as the plan's high-water mark; the model in it */
    if (build_run(&s, &rs, plan->arena, plan->host_arena, &dm, &have_dm, &err) != 0)
        goto fail;

    printf("\n");
    signal(SIGINT, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
    double t0 = run_now_s();
    if (train_loop(&s, &err) != 0)
        goto fail;
    printf("ran to iteration %lld in %.1f s; model in %s/model.bin (llm.c GPT-2 format, %s)\n\n",
           (long long)s.progress.iter, run_now_s() - t0, cfg->out_dir,
           cfg->model_dtype == CONFIG_MODEL_DTYPE_BFLOAT16 ? "version 5, bf16" : "version 3, fp32");

    /* 3. what was measured, against the plan */
    rc = s.dist->rank == 0 ? report_end(&s, plan->arena, plan->host_arena, &dm, have_dm)
                           : 0; /* page, plots */
    if (rc == 0 && s.dist->world_size > 1 && report_ranks(&s, plan->arena, &err) != 0)
        goto fail;
    goto done;
fail:
    fprintf(stderr, "arenagpt train: %s\n", err.msg);
    rc = 1;
done:
    if (have_dm)
        device_mem_close();
    free_state(&s);
    gpt_plan_free(plan);
    return rc;
}
