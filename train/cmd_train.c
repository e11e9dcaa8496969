/* cmd_train.c: `arenagpt train`: the training loop. Prints the memory plan first (gpt_plan on a
 * plan arena), sizes the real arena's reservation from it, trains with nanoGPT's loop (get_lr,
 * gradient accumulation, eval every eval_interval over eval_iters batches of each split, a log
 * line every log_interval), writes metrics.jsonl and the model to out_dir, and ends with the
 * measured peaks next to the plan, category by category.
 * Checkpoints (model.bin in llm.c format + state_<iter>.bin, checkpoint.h) are taken at the top
 * of an iteration, before its eval: every checkpoint_interval steps (0: at every eval point),
 * at max_iters, and after the current step on SIGINT/SIGTERM (then exit 0).
 * init_from=resume continues from the newest state in out_dir and, on the CPU, reproduces the
 * uninterrupted run's losses bit for bit (the loaders' RNG states are in the checkpoint).
 * Mixed precision on the GPU uses dynamic loss scaling with GradScaler's rules (start 65536,
 * x2 after 2000 clean steps, x0.5 and skip the step on inf/NaN); the CPU is fp32, scale 1. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../data/loader.h"
#include "../model/cuda/device_mem.h"
#include "../model/model_io.h"
#include "checkpoint.h"
#include "commands.h"
#include "run_common.h"

#define ADAMW_EPS 1e-8f
#define SCALER_INIT 65536.0f
#define SCALER_GROWTH_INTERVAL 2000

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int mkdir_p(const char *path) {
    char buf[CONFIG_STR_LEN];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

typedef struct TrainState {
    const TrainConfig *cfg;
    Gpt g;
    Arena *arena;
    DataLoader *train, *val, *train_eval;
    int32_t *inputs, *targets; /* (B,T) host */
    FILE *metrics;
    CheckpointProgress progress;
    double flops_per_iter; /* model FLOPs of one optimizer step (forward, backward, recompute) */
    double peak_flops;     /* the GPU's dense f16 peak, 0 = unknown (MFU n/a) */
} TrainState;

static volatile sig_atomic_t g_stop_signal = 0;

static void on_stop_signal(int sig) { g_stop_signal = sig; }

/* The three loaders' states, packed for the checkpoint. */
typedef struct LoaderStates {
    DataLoaderState train, val, train_eval;
} LoaderStates;

static int save_checkpoint(TrainState *s, Err *err) {
    const TrainConfig *cfg = s->cfg;
    LoaderStates ls;
    memset(&ls, 0, sizeof ls);
    data_loader_get_state(s->train, &ls.train);
    data_loader_get_state(s->val, &ls.val);
    data_loader_get_state(s->train_eval, &ls.train_eval);
    char mpath[2 * CONFIG_STR_LEN], spath[2 * CONFIG_STR_LEN];
    snprintf(mpath, sizeof mpath, "%s/model.bin", cfg->out_dir);
    if (model_file_write(&s->g, mpath, err) != 0)
        return -1;
    if (checkpoint_save(cfg->out_dir, cfg, &s->g, &s->progress, &ls, sizeof ls,
                        (int)cfg->keep_checkpoints, spath, sizeof spath, err) != 0)
        return -1;
    printf("checkpoint: %s and %s (iteration %lld)\n", mpath, spath, (long long)s->progress.iter);
    fflush(stdout);
    return 0;
}

static int resume(TrainState *s, Err *err) {
    char path[2 * CONFIG_STR_LEN];
    if (checkpoint_find_latest(s->cfg->out_dir, path, sizeof path, err) != 0)
        return -1;
    LoaderStates ls;
    if (checkpoint_load(path, s->cfg, &s->g, &s->progress, &ls, sizeof ls, err) != 0)
        return -1;
    data_loader_set_state(s->train, &ls.train);
    data_loader_set_state(s->val, &ls.val);
    data_loader_set_state(s->train_eval, &ls.train_eval);
    printf("resumed from %s at iteration %lld\n", path, (long long)s->progress.iter);
    return 0;
}

/* Mean loss over eval_iters random batches of one split (nanoGPT's estimate_loss). */
static int estimate_loss(TrainState *s, DataLoader *dl, float *out, Err *err) {
    const TrainConfig *cfg = s->cfg;
    double sum = 0;
    for (int64_t k = 0; k < cfg->eval_iters; k++) {
        float loss = 0;
        if (data_loader_next(dl, s->inputs, s->targets, err) != 0)
            return -1;
        if (gpt_forward(&s->g, s->inputs, s->targets, cfg->batch_size, cfg->block_size, 0, &loss,
                        err) != 0)
            return -1;
        sum += loss;
    }
    *out = (float)(sum / (double)cfg->eval_iters);
    return 0;
}

static void print_plan_vs_measured(const Arena *plan, const Arena *real) {
    ArenaStats p = arena_stats(plan), m = arena_stats(real);
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
}

static void metrics_eval(TrainState *s, int64_t it, float train_loss, float val_loss) {
    if (!s->metrics)
        return;
    fprintf(s->metrics, "{\"iter\": %lld, \"train_loss\": %.6f, \"val_loss\": %.6f}\n",
            (long long)it, train_loss, val_loss);
    fflush(s->metrics);
}

static int train_loop(TrainState *s, GptDevice dev, Err *err) {
    const TrainConfig *cfg = s->cfg;
    const int64_t B = cfg->batch_size, T = cfg->block_size;
    const int64_t accum = cfg->gradient_accumulation_steps;
    const double tokens_per_iter = (double)(B * T * accum);
    CheckpointProgress *pr = &s->progress;
    const int64_t start = pr->iter;
    double t_last = now_s();
    int64_t it_last = start;

    for (int64_t it = start; it <= cfg->max_iters; it++) {
        pr->iter = it;
        int due = it == cfg->max_iters ||
                  (cfg->checkpoint_interval > 0 ? it % cfg->checkpoint_interval == 0
                                                : it % cfg->eval_interval == 0);
        if (g_stop_signal || (it > start && due && !cfg->eval_only)) {
            if (save_checkpoint(s, err) != 0)
                return -1;
            if (g_stop_signal) {
                printf("stopped by signal %d after iteration %lld; resume with "
                       "--init_from=resume\n",
                       (int)g_stop_signal, (long long)it);
                return 0;
            }
        }
        float loss_scale = pr->loss_scale;
        float lr = gpt_get_lr(it, (float)cfg->learning_rate, cfg->warmup_iters, cfg->lr_decay_iters,
                              (float)cfg->min_lr, cfg->decay_lr);
        if (it % cfg->eval_interval == 0 || it == cfg->max_iters) {
            float tl = 0, vl = 0;
            double t0 = now_s();
            if (estimate_loss(s, s->train_eval, &tl, err) != 0 ||
                estimate_loss(s, s->val, &vl, err) != 0)
                return -1;
            printf("step %lld: train loss %.4f, val loss %.4f (eval %.1f s)\n", (long long)it, tl,
                   vl, now_s() - t0);
            fflush(stdout);
            metrics_eval(s, it, tl, vl);
            if (vl < pr->best_val_loss)
                pr->best_val_loss = vl;
            t_last += now_s() - t0; /* eval time is not training time */
            if (cfg->eval_only)
                return 0;
        }
        if (it == cfg->max_iters)
            break;

        gpt_zero_grad(&s->g);
        gpt_set_loss_scale(&s->g, loss_scale);
        double loss_sum = 0;
        for (int64_t micro = 0; micro < accum; micro++) {
            float loss = 0;
            if (data_loader_next(s->train, s->inputs, s->targets, err) != 0)
                return -1;
            if (gpt_forward(&s->g, s->inputs, s->targets, B, T, 1, &loss, err) != 0 ||
                gpt_backward(&s->g, loss_scale, err) != 0)
                return -1;
            loss_sum += loss;
        }
        float norm = 0;
        if (gpt_update(&s->g, lr, (float)cfg->beta1, (float)cfg->beta2, ADAMW_EPS,
                       (float)cfg->weight_decay, (float)cfg->grad_clip, it + 1 - pr->skipped,
                       (float)accum * loss_scale, &norm, err) != 0)
            return -1;
        if (dev == GPT_DEVICE_CUDA) {
            /* GradScaler: a non-finite norm means the update was skipped */
            if (!isfinite(norm)) {
                pr->skipped++;
                pr->loss_scale *= 0.5f;
                pr->clean_steps = 0;
            } else if (++pr->clean_steps == SCALER_GROWTH_INTERVAL) {
                pr->loss_scale *= 2.0f;
                pr->clean_steps = 0;
            }
        }
        float loss = (float)(loss_sum / (double)accum);
        if (!isfinite(loss) && dev == GPT_DEVICE_CPU) {
            err_set(err,
                    "iteration %lld: the loss is %f (diverged): lower learning_rate (now "
                    "%g) or check the data",
                    (long long)it, loss, cfg->learning_rate);
            return -1;
        }
        if ((it + 1) % cfg->log_interval == 0 || it + 1 == cfg->max_iters) {
            double t = now_s();
            double dt = (t - t_last) / (double)(it + 1 - it_last);
            t_last = t;
            it_last = it + 1;
            ArenaStats st = arena_stats(s->arena);
            double eta = dt * (double)(cfg->max_iters - it - 1);
            printf("iter %lld/%lld: loss %.4f, lr %.4e, norm %.3f, %.1f ms/iter, %.0f tok/s, "
                   "arena peak %.1f MiB",
                   (long long)(it + 1), (long long)cfg->max_iters, loss, lr, norm, dt * 1e3,
                   tokens_per_iter / dt, st.peak_used_bytes / (1024.0 * 1024.0));
            double mfu = s->peak_flops > 0 ? s->flops_per_iter / dt / s->peak_flops : -1;
            if (dev == GPT_DEVICE_CUDA) {
                printf(", scale %.0f, skipped %lld", loss_scale, (long long)pr->skipped);
                if (mfu >= 0)
                    printf(", mfu %.1f%%", 100 * mfu);
                else
                    printf(", mfu n/a");
            }
            printf(", eta %.0f s\n", eta);
            fflush(stdout);
            if (s->metrics) {
                char mfu_text[32];
                if (mfu >= 0)
                    snprintf(mfu_text, sizeof mfu_text, "%.4f", mfu);
                else
                    snprintf(mfu_text, sizeof mfu_text, "null");
                fprintf(s->metrics,
                        "{\"iter\": %lld, \"loss\": %.6f, \"lr\": %.6e, \"grad_norm\": %.6f, "
                        "\"ms_per_iter\": %.3f, \"tokens_per_s\": %.1f, \"loss_scale\": %.1f, "
                        "\"skipped\": %lld, \"mfu\": %s, \"mem_peak\": {",
                        (long long)(it + 1), loss, lr, norm, dt * 1e3, tokens_per_iter / dt,
                        loss_scale, (long long)pr->skipped, mfu_text);
                for (int c = 0; c < ARENA_CAT_COUNT; c++)
                    fprintf(s->metrics, "\"%s\": %zu%s", arena_category_name((ArenaCategory)c),
                            st.cat_peak_bytes[c], c + 1 < ARENA_CAT_COUNT ? ", " : "");
                fprintf(s->metrics, "}}\n");
                fflush(s->metrics);
            }
        }
    }
    return 0;
}

static DataLoader *open_split(const TrainConfig *cfg, const char *dir, const char *split,
                              uint64_t seed, Err *err) {
    char path[2 * CONFIG_STR_LEN];
    snprintf(path, sizeof path, "%s/%s.bin", dir, split);
    return data_loader_open(path, cfg->data_format == CONFIG_DATA_NANOGPT, cfg->batch_size,
                            cfg->block_size, cfg->vocab_size, seed, err);
}

int cmd_train(const TrainConfig *cfg) {
    Err err;
    GptDevice dev;
    run_threads(cfg);
    /* device memory before our CUDA context exists (NVML; no context is made by this) */
    DeviceMem dm;
    memset(&dm, 0, sizeof dm);
    Err dm_err;
    int have_dm = cfg->device != CONFIG_DEVICE_CPU &&
                  device_mem_sample(&dm, DEVICE_MEM_BEFORE_CONTEXT, &dm_err) == 0;
    if (run_device(cfg, 0, &dev, &err) != 0) {
        fprintf(stderr, "arenagpt train: %s\n", err.msg);
        return CONFIG_EXIT_USAGE;
    }
    GptConfig c;
    run_gpt_config(cfg, &c);
    int from_file = strcmp(cfg->init_from, "scratch") != 0 && strcmp(cfg->init_from, "resume") != 0;
    if (from_file) {
        /* the file's header gives the shape; bias, gelu, recompute, attention stay the config's */
        if (gpt_config_from_model_file(cfg->init_from, &c, &err) != 0) {
            fprintf(stderr, "arenagpt train: init_from: %s\n", err.msg);
            return 1;
        }
        if (cfg->block_size > c.max_seq_len) {
            fprintf(stderr,
                    "arenagpt train: block_size = %lld is longer than the model file's "
                    "maxT = %lld (%s)\n",
                    (long long)cfg->block_size, (long long)c.max_seq_len, cfg->init_from);
            return CONFIG_EXIT_USAGE;
        }
    }
    if (gpt_config_check(&c, dev, &err) != 0) {
        fprintf(stderr, "arenagpt train: %s\n", err.msg);
        return CONFIG_EXIT_USAGE;
    }
    const int64_t B = cfg->batch_size, T = cfg->block_size;
    run_attention_fallback("train", &c, dev, B, T);

    TrainState s;
    memset(&s, 0, sizeof s);
    s.cfg = cfg;
    char dir[CONFIG_STR_LEN];
    run_data_dir(cfg, dir, sizeof dir);
    s.train = open_split(cfg, dir, "train", (uint64_t)cfg->seed, &err);
    if (s.train)
        s.val = open_split(cfg, dir, "val", (uint64_t)cfg->seed + 1, &err);
    if (s.val)
        s.train_eval = open_split(cfg, dir, "train", (uint64_t)cfg->seed + 2, &err);
    if (!s.train_eval) {
        fprintf(stderr,
                "arenagpt train: %s\n  (prepare data with: arenagpt prepare "
                "--input=TEXT --out=%s)\n",
                err.msg, dir);
        data_loader_free(s.train);
        data_loader_free(s.val);
        return 1;
    }

    printf("arenagpt train: device %s, data %s (%lld train tokens, %lld val tokens)\n",
           dev == GPT_DEVICE_CUDA ? "cuda" : "cpu", dir, (long long)data_loader_n_tokens(s.train),
           (long long)data_loader_n_tokens(s.val));
    printf("model: n_layer %lld, n_head %lld, n_embd %lld, block_size %lld, vocab_size %lld, "
           "bias %s, gelu %s, recompute %s, attention %s\n",
           (long long)cfg->n_layer, (long long)cfg->n_head, (long long)cfg->n_embd,
           (long long)cfg->block_size, (long long)cfg->vocab_size, cfg->bias ? "True" : "False",
           config_gelu_name(cfg->gelu), config_recompute_name(cfg->recompute),
           config_attention_name(cfg->attention));
    run_print_params(&c);
    printf("tokens per iteration: %lld (batch_size %lld x block_size %lld x "
           "gradient_accumulation_steps %lld)\n",
           (long long)(B * T * cfg->gradient_accumulation_steps), (long long)B, (long long)T,
           (long long)cfg->gradient_accumulation_steps);

    /* 1. the plan, printed before anything is allocated */
    Arena *plan = NULL;
    int rc = run_plan(&c, dev, B, T, cfg->gradient_accumulation_steps, cfg->memory_limit, 0, &plan,
                      &err);
    printf("\nmemory plan (one training step, exact):\n");
    if (plan)
        arena_report_table(plan, stdout, (int)cfg->top);
    if (rc != 0) {
        fprintf(stderr, "arenagpt train: the run does not fit: %s\n", err.msg);
        arena_free(plan);
        return 1;
    }

    /* 2. the real arena, exactly as large as the plan's high-water mark */
    ArenaStats ps = arena_stats(plan);
    if (dev == GPT_DEVICE_CUDA) /* the context and library handles exist now */
        have_dm = device_mem_sample(&dm, DEVICE_MEM_AFTER_CONTEXT, &dm_err) == 0 || have_dm;
    s.arena = arena_init(dev == GPT_DEVICE_CUDA ? ARENA_BACKING_DEVICE : ARENA_BACKING_HOST,
                         ps.high_water_bytes, cfg->memory_limit, &err);
    if (!s.arena) {
        fprintf(stderr, "arenagpt train: %s\n", err.msg);
        rc = 1;
        goto done;
    }
    if (dev == GPT_DEVICE_CUDA && have_dm) {
        device_mem_set_reservation(&dm, ps.high_water_bytes);
        device_mem_sample(&dm, DEVICE_MEM_AFTER_RESERVATION, &dm_err);
        s.peak_flops = dm.peak_tflops_f16 * 1e12;
        printf("GPU: %s (driver %s), peak f16 tensor %.0f TFLOP/s%s\n", dm.name, dm.driver,
               dm.peak_tflops_f16, dm.peak_tflops_f16 > 0 ? "" : " (unknown: MFU n/a)");
    }
    s.flops_per_iter = (3.0 * gpt_flops_forward_per_token(&c, T) +
                        gpt_flops_recompute_per_token(&c, T, c.recompute)) *
                       (double)(B * T * cfg->gradient_accumulation_steps);
    if (cfg->trace_file[0])
        arena_trace_enable(s.arena, 1);
    if (gpt_build(&s.g, &c, dev, s.arena, B, T, &err) != 0) {
        fprintf(stderr, "arenagpt train: %s\n", err.msg);
        rc = 1;
        goto done;
    }
    s.progress.loss_scale = dev == GPT_DEVICE_CUDA ? SCALER_INIT : 1.0f;
    s.progress.best_val_loss = INFINITY;
    if (strcmp(cfg->init_from, "scratch") == 0) {
        gpt_init_weights(&s.g, (uint64_t)cfg->seed);
    } else if (strcmp(cfg->init_from, "resume") == 0) {
        gpt_init_weights(&s.g, (uint64_t)cfg->seed); /* zeroes the optimizer state */
        if (resume(&s, &err) != 0) {
            fprintf(stderr, "arenagpt train: %s\n", err.msg);
            rc = 1;
            goto done;
        }
    } else {
        gpt_init_weights(&s.g, (uint64_t)cfg->seed);
        if (model_file_read(&s.g, cfg->init_from, &err) != 0) {
            fprintf(stderr, "arenagpt train: init_from: %s\n", err.msg);
            rc = 1;
            goto done;
        }
        printf("initialised from %s\n", cfg->init_from);
    }
    if (mkdir_p(cfg->out_dir) != 0) {
        fprintf(stderr, "arenagpt train: cannot create out_dir '%s': %s\n", cfg->out_dir,
                strerror(errno));
        rc = 1;
        goto done;
    }
    char path[2 * CONFIG_STR_LEN];
    snprintf(path, sizeof path, "%s/metrics.jsonl", cfg->out_dir);
    s.metrics = fopen(path, "a");
    s.inputs = malloc((size_t)(B * T) * sizeof(int32_t));
    s.targets = malloc((size_t)(B * T) * sizeof(int32_t));
    if (!s.inputs || !s.targets) {
        fprintf(stderr, "arenagpt train: out of host memory for the batch buffers\n");
        rc = 1;
        goto done;
    }

    printf("\n");
    signal(SIGINT, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
    double t0 = now_s();
    if (train_loop(&s, dev, &err) != 0) {
        fprintf(stderr, "arenagpt train: %s\n", err.msg);
        rc = 1;
        goto done;
    }
    printf("ran to iteration %lld in %.1f s; model in %s/model.bin (llm.c GPT-2 format)\n\n",
           (long long)s.progress.iter, now_s() - t0, cfg->out_dir);

    /* 3. what was measured, against the plan */
    printf("memory measured (arena, %s backing):\n", arena_backing_name(arena_backing(s.arena)));
    arena_report_table(s.arena, stdout, (int)cfg->top);
    print_plan_vs_measured(plan, s.arena);
    if (dev == GPT_DEVICE_CUDA && have_dm) {
        device_mem_sample(&dm, DEVICE_MEM_NOW, &dm_err);
        printf("device memory (reconciliation with cudaMemGetInfo and NVML):\n");
        device_mem_report(&dm, s.arena, stdout);
    }
    if (cfg->trace_file[0]) {
        FILE *tf = fopen(cfg->trace_file, "w");
        if (!tf || arena_report_trace(s.arena, tf) != 0) {
            fprintf(stderr, "arenagpt train: cannot write trace_file '%s'\n", cfg->trace_file);
            rc = 1;
        } else {
            printf("arena timeline written to %s (open it in Perfetto)\n", cfg->trace_file);
        }
        if (tf)
            fclose(tf);
    }

done:
    if (have_dm)
        device_mem_close();
    if (s.metrics)
        fclose(s.metrics);
    free(s.inputs);
    free(s.targets);
    if (s.arena) {
        gpt_free(&s.g);
        arena_free(s.arena);
    }
    arena_free(plan);
    data_loader_free(s.train);
    data_loader_free(s.val);
    data_loader_free(s.train_eval);
    return rc;
}
