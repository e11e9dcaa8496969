/* run_common.c: see run_common.h. */
#include "run_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../data/shard.h"
#include "../data/tokenizer.h"
#include "../model/model_io.h"
#include "checkpoint.h"
#include "init_from.h"
#include "test_hooks.h"

void run_gpt_config(const TrainConfig *cfg, GptConfig *out) {
    memset(out, 0, sizeof *out);
    out->max_seq_len = cfg->block_size;
    out->vocab_size = cfg->vocab_size;
    out->padded_vocab_size = cfg->vocab_size;
    out->n_layer = cfg->n_layer;
    out->n_head = cfg->n_head;
    out->channels = cfg->n_embd;
    out->bias = cfg->bias;
    out->gelu = cfg->gelu;
    out->recompute = cfg->recompute;
    out->attention = cfg->attention;
    out->loss_chunk = cfg->loss_chunk;
    out->bf16 = cfg->dtype == CONFIG_DTYPE_BFLOAT16;
    out->grad_f32 = config_grad_dtype(cfg) == CONFIG_DTYPE_FLOAT32;
    out->world_size = (int)cfg->world_size; /* train: set from the ranks (cmd_train.c) */
    out->zero_stage = (int)cfg->zero_stage;
    out->optimizer_offload = cfg->optimizer_offload;
}

const char *run_dtype_name(GptDevice dev, const GptConfig *c) {
    if (dev != GPT_DEVICE_CUDA)
        return "float32";
    return c->bf16 ? "bfloat16" : "float16";
}

static const char *origin_of(const TrainConfig *cfg) {
    return cfg->config_file[0] ? cfg->config_file : "the command line";
}

int run_device(const TrainConfig *cfg, int plan_only, GptDevice *out, Err *err) {
    const GptLayout *cuda_layout =
        gpt_layout_of(GPT_DEVICE_CUDA, cfg->dtype == CONFIG_DTYPE_BFLOAT16, 0);
    switch (cfg->device) {
    case CONFIG_DEVICE_CPU:
        if (cfg->dtype == CONFIG_DTYPE_BFLOAT16)
            return err_set(err,
                           "%s: dtype = bfloat16 with device = cpu: the CPU backend computes in "
                           "float32 only: use device = cuda for bfloat16, or dtype = float32 "
                           "on the cpu",
                           origin_of(cfg));
        *out = GPT_DEVICE_CPU;
        return 0;
    case CONFIG_DEVICE_CUDA:
        if (cfg->dtype == CONFIG_DTYPE_FLOAT32)
            return err_set(err,
                           "%s: dtype = float32 with device = cuda: the CUDA backend computes "
                           "in float16 or bfloat16 (16-bit params, grads and activations; f32 "
                           "master weights and AdamW): use dtype = float16 or bfloat16 on cuda, "
                           "or device = cpu (always float32)",
                           origin_of(cfg));
        if (!plan_only && !gpt_backend_for(cuda_layout))
            return err_set(err, "device = cuda, but no usable CUDA GPU was found (or this "
                                "binary was built without CUDA): use --device=cpu, or plan it "
                                "with arenagpt mem --device=cuda");
        *out = GPT_DEVICE_CUDA;
        return 0;
    case CONFIG_DEVICE_AUTO:
        if (cfg->dtype == CONFIG_DTYPE_FLOAT32)
            *out = GPT_DEVICE_CPU;
        else if (plan_only)
            *out = GPT_DEVICE_CUDA;
        else
            *out = gpt_backend_for(cuda_layout) ? GPT_DEVICE_CUDA : GPT_DEVICE_CPU;
        return 0;
    }
    return err_set(err, "unknown device %d", (int)cfg->device);
}

void run_data_dir(const TrainConfig *cfg, char *buf, size_t len) {
    if (cfg->data_dir[0])
        snprintf(buf, len, "%s", cfg->data_dir);
    else
        snprintf(buf, len, "datasets/%s", cfg->dataset);
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The keys a run directory's stored config supplies to eval and sample. */
static const char *const RUN_DIR_KEYS[] = {"bias",    "gelu",        "block_size", "data_dir",
                                           "dataset", "data_format", NULL};

/* init_from -> rs->model_path (and the run directory's stored config into rs->cfg). */
static int resolve_init_from(RunSetup *rs, unsigned cmd, Err *err) {
    TrainConfig *c = &rs->cfg;
    const char *from = c->init_from;
    int needs_model = (cmd & (CONFIG_CMD_EVAL | CONFIG_CMD_SAMPLE)) != 0;
    if (needs_model && strcmp(from, "resume") == 0)
        from = c->out_dir; /* nanoGPT's sample.py: the run in out_dir */
    else if (strcmp(from, "scratch") == 0 || strcmp(from, "resume") == 0 || !from[0]) {
        if (needs_model) {
            err_set(err,
                    "init_from = '%s': %s needs a model file: --init_from=DIR (a train "
                    "out_dir) or --init_from=MODEL.bin (llm.c format)",
                    from, (cmd & CONFIG_CMD_EVAL) ? "eval" : "sample");
            return CONFIG_EXIT_USAGE;
        }
        return 0;
    }
    /* Hugging Face weights and nanoGPT's gpt2* names (init_from.c) */
    int hf_rc = 0;
    if (init_from_hf_resolve(from, rs->model_path, sizeof rs->model_path, &hf_rc, err))
        return hf_rc;
    struct stat st;
    if (stat(from, &st) != 0) {
        err_set(err, "init_from = '%s': cannot open model file: %s", from, strerror(errno));
        return 1;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(rs->model_path, sizeof rs->model_path, "%s/model.bin", from);
        if (!is_file(rs->model_path)) {
            err_set(err,
                    "init_from = '%s': a directory with no model.bin (a train out_dir holds "
                    "model.bin and state_*.bin)",
                    from);
            return CONFIG_EXIT_USAGE;
        }
        char state[2 * CONFIG_STR_LEN];
        Err e2;
        if (needs_model && checkpoint_find_latest(from, state, sizeof state, &e2) == 0) {
            char *text = NULL;
            if (checkpoint_read_config(state, &text, err) != 0)
                return 1;
            int rc = config_apply_text(c, text, state, RUN_DIR_KEYS, err);
            free(text);
            if (rc != 0)
                return 1;
        }
        return 0;
    }
    snprintf(rs->model_path, sizeof rs->model_path, "%s", from);
    unsigned char magic[8] = {0};
    FILE *f = fopen(from, "rb");
    size_t got = f ? fread(magic, 1, sizeof magic, f) : 0;
    if (f)
        fclose(f);
    if (got == 8 && memcmp(magic, "AGPTSTAT", 8) == 0) {
        err_set(err,
                "init_from = '%s' is a training state (state_*.bin: what --init_from=resume "
                "reads), not a model file: pass the run directory (--init_from=DIR) or its "
                "model.bin",
                from);
        return CONFIG_EXIT_USAGE;
    }
    if (got >= 4 && memcmp(magic, "PK\003\004", 4) == 0) {
        err_set(err,
                "init_from = '%s' is a PyTorch zip checkpoint, not supported: this program "
                "reads llm.c's GPT-2 model file (float32, version 3, or bfloat16, version 5): "
                "write one from the PyTorch weights with llm.c's write_model (train_gpt2.py) "
                "and pass that",
                from);
        return CONFIG_EXIT_USAGE;
    }
    return 0;
}

/* The tokenizer whose size bounds the vocabulary: the one sample decodes with, the one beside
 * eval's shard, the data's for train and mem. "" when there is none. */
static void tokenizer_for(const RunSetup *rs, unsigned cmd, char *buf, size_t len) {
    const TrainConfig *c = &rs->cfg;
    buf[0] = 0;
    if ((cmd & CONFIG_CMD_SAMPLE) && c->tokenizer_file[0]) {
        snprintf(buf, len, "%s", c->tokenizer_file);
        return;
    }
    if (cmd & CONFIG_CMD_EVAL) {
        const char *slash = strrchr(c->data, '/');
        if (slash)
            snprintf(buf, len, "%.*s/tokenizer.bin", (int)(slash - c->data), c->data);
        else
            snprintf(buf, len, "tokenizer.bin");
    } else {
        snprintf(buf, len, "%s/tokenizer.bin", rs->data_dir);
    }
    if (!is_file(buf) && !(cmd & CONFIG_CMD_SAMPLE))
        buf[0] = 0;
}

/* eval without --data: the val.bin (or val shards) of the data_dir (or dataset) the user or the
 * run names. */
static int default_eval_shard(RunSetup *rs, Err *err) {
    TrainConfig *c = &rs->cfg;
    if (!config_is_set(c, "data_dir") && !config_is_set(c, "dataset")) {
        err_set(err, "no shard given: --data=SHARD.bin, or the data_dir (or dataset) whose "
                     "val.bin to use, or a run directory as init_from");
        return CONFIG_EXIT_USAGE;
    }
    if (shard_split_path(c->data, sizeof c->data, rs->data_dir, "val")) {
        err_set(err, "data_dir '%s' is too long", rs->data_dir);
        return CONFIG_EXIT_USAGE;
    }
    return 0;
}

/* The shape from the model file's header; block_size defaults to its maxT. */
static int shape_from_model_file(RunSetup *rs, Err *err) {
    TrainConfig *c = &rs->cfg;
    int hf_rc = 0;
    if (init_from_hf_shape(rs, &hf_rc, err)) /* Hugging Face weights (init_from.c) */
        return hf_rc;
    GptConfig m;
    memset(&m, 0, sizeof m);
    if (gpt_config_from_model_file(rs->model_path, &m, err) != 0)
        return 1;
    if (!config_is_set(c, "block_size"))
        c->block_size = m.max_seq_len;
    if (c->block_size > m.max_seq_len) {
        err_set(err,
                "block_size %lld exceeds the model's maxT %lld (%s): use --block_size=%lld or less",
                (long long)c->block_size, (long long)m.max_seq_len, rs->model_path,
                (long long)m.max_seq_len);
        return CONFIG_EXIT_USAGE;
    }
    c->n_layer = m.n_layer;
    c->n_head = m.n_head;
    c->n_embd = m.channels;
    c->vocab_size = m.padded_vocab_size;
    run_gpt_config(c, &rs->model);
    rs->model.max_seq_len = m.max_seq_len;
    rs->model.vocab_size = m.vocab_size;
    rs->model.padded_vocab_size = m.padded_vocab_size;
    return 0;
}

/* The vocabulary: the data's tokenizer bounds it, and sets it when vocab_size is unset and no
 * model file gives it. */
static int resolve_vocab(RunSetup *rs, unsigned cmd, Err *err) {
    TrainConfig *c = &rs->cfg;
    tokenizer_for(rs, cmd, rs->tokenizer_path, sizeof rs->tokenizer_path);
    int64_t n_tok = -1;
    if (rs->tokenizer_path[0] && is_file(rs->tokenizer_path)) {
        Tokenizer *t = tokenizer_load(rs->tokenizer_path, err);
        if (!t)
            return 1;
        n_tok = tokenizer_vocab_size(t);
        tokenizer_free(t);
    }
    if (rs->model_path[0]) {
        if (n_tok > rs->model.vocab_size) {
            err_set(err,
                    "the tokenizer %s has %lld tokens, more than the model's vocabulary "
                    "(vocab_size %lld in %s): use the tokenizer of the data the model was "
                    "trained on (--data_dir or --tokenizer_file)",
                    rs->tokenizer_path, (long long)n_tok, (long long)rs->model.vocab_size,
                    rs->model_path);
            return CONFIG_EXIT_USAGE;
        }
        return 0;
    }
    if (cmd & (CONFIG_CMD_EVAL | CONFIG_CMD_SAMPLE))
        return 0; /* they always have a model file */
    if (config_is_set(c, "vocab_size")) {
        if (n_tok > c->vocab_size) {
            err_set(err,
                    "%s: vocab_size = %lld is smaller than the data's vocabulary: %s has %lld "
                    "tokens (leave vocab_size unset to use the data's, or set it to %lld or "
                    "more)",
                    origin_of(c), (long long)c->vocab_size, rs->tokenizer_path, (long long)n_tok,
                    (long long)n_tok);
            return CONFIG_EXIT_USAGE;
        }
    } else if (n_tok > 0) {
        c->vocab_size = n_tok;
        snprintf(rs->vocab_note, sizeof rs->vocab_note, "the data's: %s", rs->tokenizer_path);
    } else {
        c->vocab_size = RUN_DEFAULT_VOCAB;
        snprintf(rs->vocab_note, sizeof rs->vocab_note, "default: no tokenizer.bin in %s",
                 rs->data_dir);
    }
    run_gpt_config(c, &rs->model);
    return 0;
}

int run_setup(const TrainConfig *cfg, unsigned cmd, RunSetup *rs, Err *err) {
    memset(rs, 0, sizeof *rs);
    rs->cfg = *cfg;
    TrainConfig *c = &rs->cfg;
    int rc = resolve_init_from(rs, cmd, err);
    if (rc != 0)
        return rc;
    run_data_dir(c, rs->data_dir, sizeof rs->data_dir);
    if ((cmd & CONFIG_CMD_EVAL) && !c->data[0] && (rc = default_eval_shard(rs, err)) != 0)
        return rc;
    if (rs->model_path[0] && (rc = shape_from_model_file(rs, err)) != 0)
        return rc;
    if ((rc = resolve_vocab(rs, cmd, err)) != 0)
        return rc;
    if (cmd & (CONFIG_CMD_EVAL | CONFIG_CMD_SAMPLE)) {
        rs->model.recompute = GPT_RECOMPUTE_NONE; /* no backward */
        rs->model.optimizer_offload = 0;          /* no optimizer state */
    }
    if (run_device(c, (cmd & CONFIG_CMD_MEM) != 0, &rs->dev, err) != 0)
        return CONFIG_EXIT_USAGE;
    rs->auto_cpu = c->device == CONFIG_DEVICE_AUTO && !(cmd & CONFIG_CMD_MEM) &&
                   c->dtype != CONFIG_DTYPE_FLOAT32 && rs->dev == GPT_DEVICE_CPU;
    /* attention unset: flash on CUDA where its kernels take the head size (the estimate in
     * docs/results/gpu_estimate.md puts it ahead of naive; gpu_check times both), naive on
     * the CPU */
    if (!config_is_set(c, "attention") && rs->dev == GPT_DEVICE_CUDA &&
        rs->model.channels / rs->model.n_head <= GPT_FLASH_CUDA_MAX_HS)
        c->attention = rs->model.attention = GPT_ATTENTION_FLASH;
    if (gpt_config_check(&rs->model, rs->dev, err) != 0)
        return CONFIG_EXIT_USAGE;
    if (!(cmd & CONFIG_CMD_MEM)) {
        /* attention=cudnn that cuDNN cannot run here: flash instead, with a notice */
        int sample = (cmd & CONFIG_CMD_SAMPLE) != 0;
        char notice[768];
        if (gpt_attention_resolve(&rs->model, rs->dev, sample ? 1 : c->batch_size,
                                  sample ? rs->model.max_seq_len : c->block_size, notice,
                                  sizeof notice))
            fprintf(stderr, "arenagpt %s: %s\n",
                    sample                  ? "sample"
                    : cmd & CONFIG_CMD_EVAL ? "eval"
                                            : "train",
                    notice);
    }
    return 0;
}

char *run_commas(int64_t v, char *buf, size_t len) {
    char digits[32];
    snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? -v : v));
    size_t n = strlen(digits), o = 0;
    if (v < 0 && o + 1 < len)
        buf[o++] = '-';
    for (size_t i = 0; i < n && o + 2 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
    return buf;
}

void run_print_params(const GptConfig *c) {
    GptParamCounts pc;
    gpt_param_counts(c, &pc);
    char a[32], b[32], d[32], e[32];
    printf("parameters: %s total, %.2fM non-embedding (%s; nanoGPT's count: total minus wpe)\n",
           run_commas(pc.total, a, sizeof a), (double)pc.non_embedding / 1e6,
           run_commas(pc.non_embedding, b, sizeof b));
    printf("  weight decay: %lld tensors, %s parameters; no decay: %lld tensors, %s parameters\n",
           (long long)pc.decay_tensors, run_commas(pc.decay_count, d, sizeof d),
           (long long)pc.no_decay_tensors, run_commas(pc.no_decay_count, e, sizeof e));
}

int run_arena_open(const RunSetup *rs, const GptPlanArgs *args, Arena **out, Err *err) {
    *out = NULL;
    GptPlan *plan = NULL;
    int rc = gpt_plan(&rs->model, rs->dev, args, &plan, err);
    size_t bytes = plan ? arena_stats(plan->arena).high_water_bytes : 0;
    gpt_plan_free(plan);
    if (rc != 0)
        return -1;
    Arena *a = rs->dev == GPT_DEVICE_CUDA
                   ? arena_init_with(arena_device_ops(), bytes, rs->cfg.memory_limit, err)
                   : arena_init(ARENA_BACKING_HOST, bytes, rs->cfg.memory_limit, err);
    if (!a)
        return -1;
    *out = a;
    return 0;
}

int run_model_open(const RunSetup *rs, const GptPlanArgs *args, Gpt *g, Arena **out, Err *err) {
    Arena *arena;
    *out = NULL;
    if (run_arena_open(rs, args, &arena, err))
        return -1;
    if (test_hooks_arm_arena_from_env(arena, err) != 0 ||
        gpt_plan_build(g, &rs->model, rs->dev, arena, args, err) != 0) {
        arena_free(arena);
        return -1;
    }
    if (init_from_read(g, rs->model_path, err) != 0) {
        gpt_free(g);
        arena_free(arena);
        return -1;
    }
    *out = arena;
    return 0;
}

void run_print_arena_line(FILE *f, const char *what, const Arena *a) {
    ArenaStats s = arena_stats(a);
    fprintf(f, "%s: arena peak by category:", what);
    for (int c = 0; c < ARENA_CAT_COUNT; c++)
        fprintf(f, "%s %s %zu", c ? "," : "", arena_category_name((ArenaCategory)c),
                s.cat_peak_bytes[c]);
    fprintf(f, " bytes (high-water %zu)\n", s.high_water_bytes);
}

void run_threads(const TrainConfig *cfg) { gpt_set_threads((int)cfg->threads); }

double run_now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int run_mkdir_p(const char *path, Err *err) {
    char buf[2 * CONFIG_STR_LEN];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return err_set(err, "path too long: '%s'", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return err_set(err, "cannot create directory '%s': %s", buf, strerror(errno));
            *p = '/';
        }
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return err_set(err, "cannot create directory '%s': %s", buf, strerror(errno));
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        return err_set(err, "'%s' exists and is not a directory", buf);
    return 0;
}
