/* config.c: the key table (name, type, default, commands, meaning), parsing of config files and
 * --key=value overrides, and validation. Every error names where the value came from
 * (file:line or the argument), the key, the value, and what was expected. */
#include "config.h"

#include "../model/gpu_table.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_CMDS (CONFIG_CMD_TRAIN | CONFIG_CMD_MEM)
#define RUN_CMDS (CONFIG_CMD_TRAIN | CONFIG_CMD_MEM | CONFIG_CMD_EVAL | CONFIG_CMD_SAMPLE)
#define MAX_VOCAB 65536          /* tokens are stored as uint16 */
#define MAX_BLOCK_SIZE (1 << 20) /* positions; far beyond any GPT-2 config */

typedef enum KeyType { K_INT, K_FLOAT, K_BOOL, K_STR, K_ENUM, K_SIZE } KeyType;

typedef struct Key {
    const char *name;
    KeyType type;
    size_t offset;
    unsigned cmds;
    int64_t min, max;           /* K_INT range */
    const char *const *choices; /* K_ENUM names, NULL-terminated, index = enum value */
    const char *help;
} Key;

/* Defaults that --help describes rather than prints (they depend on the data or the gpu). */
static const struct {
    const char *key, *text;
} help_defaults[] = {
    {"vocab_size", "the data's, else 50304"},
    {"reserve", "the gpu's estimate, 1 GiB for rtx4070; 0 on cpu"},
};

static const char *const device_names[] = {"auto", "cpu", "cuda", NULL};
static const char *const dtype_names[] = {"float16", "float32", "bfloat16", NULL};
static const char *const model_dtype_names[] = {"float32", "bfloat16", NULL};
static const char *const format_names[] = {"table", "json", "csv", NULL};
static const char *const tokenizer_names[] = {"gpt2", "char", NULL};
static const char *const data_format_names[] = {"llmc", "nanogpt", NULL};

#define NANOGPT_NOOP "accepted for nanoGPT configs, no effect"
#define OFF(f) offsetof(TrainConfig, f)
#define I64MAX INT64_MAX

static const Key keys[] = {
    /* model */
    {"n_layer", K_INT, OFF(n_layer), MODEL_CMDS, 1, 1024, NULL, "transformer blocks"},
    {"n_head", K_INT, OFF(n_head), MODEL_CMDS, 1, 1024, NULL, "attention heads (divides n_embd)"},
    {"n_embd", K_INT, OFF(n_embd), MODEL_CMDS, 1, 65536, NULL, "channels"},
    {"block_size", K_INT, OFF(block_size), RUN_CMDS | CONFIG_CMD_EXPORT, 1, MAX_BLOCK_SIZE, NULL,
     "context length T (eval, sample: at most the model's maxT, which it defaults to)"},
    {"vocab_size", K_INT, OFF(vocab_size), MODEL_CMDS, 1, MAX_VOCAB, NULL,
     "padded vocabulary Vp, at least the data's; unset: the size of the dataset's tokenizer.bin "
     "(as nanoGPT reads meta.pkl), 50304 without a dataset; at most 65536 (uint16 tokens)"},
    {"bias", K_BOOL, OFF(bias), RUN_CMDS | CONFIG_CMD_EXPORT, 0, 0, NULL,
     "biases in Linear and LayerNorm"},
    {"dropout", K_FLOAT, OFF(dropout), MODEL_CMDS, 0, 0, NULL,
     NANOGPT_NOOP " (only 0.0: there is no dropout)"},
    {"gelu", K_ENUM, OFF(gelu), RUN_CMDS | CONFIG_CMD_EXPORT, 0, 0, GPT_GELU_NAMES,
     "GELU form: tanh (GPT-2, llm.c) or erf (nanoGPT's nn.GELU)"},
    {"attention", K_ENUM, OFF(attention), RUN_CMDS, 0, 0, GPT_ATTENTION_NAMES,
     "naive (materialised B*NH*T*T scores), flash (fused, O(T) memory; CPU and GPU) or cudnn "
     "(cuDNN's fused SDPA, GPU); unset: flash on cuda (head size <= 64), naive on the cpu"},
    {"recompute", K_ENUM, OFF(recompute), MODEL_CMDS, 0, 0, GPT_RECOMPUTE_NAMES,
     "gradient checkpointing: none; selective (drops the LayerNorm outputs, the attention "
     "probabilities and the GELU output, recomputed in backward); full (keeps only each "
     "block's input)"},
    {"loss_chunk", K_INT, OFF(loss_chunk), MODEL_CMDS, 0, I64MAX, NULL,
     "tokens per chunk of the loss head; 0 = automatic: the fewest chunks whose (chunk, Vp) "
     "logits fit in 160 MiB of the activation dtype (f16 on CUDA, f32 on the CPU), split "
     "evenly, rounded up to 64 rows (mem shows the chunk and its wte traffic)"},
    {"zero_stage", K_INT, OFF(zero_stage), MODEL_CMDS, 0, 3, NULL,
     "data parallel (mpirun -np N): 0 = every rank holds the AdamW state; 1 = ZeRO-1, the f32 "
     "master weights, m and v sharded across the ranks; 2 and 3 are refused"},
    {"grad_reduce_overlap", K_BOOL, OFF(grad_reduce_overlap), CONFIG_CMD_TRAIN, 0, 0, NULL,
     "zero_stage 0: sum each layer's gradients during the last backward; False: after it"},
    {"world_size", K_INT, OFF(world_size), CONFIG_CMD_MEM, 1, 1 << 20, NULL,
     "ranks to plan for: each rank's bytes (train takes the number of ranks mpirun starts)"},
    /* optimisation */
    {"batch_size", K_INT, OFF(batch_size), MODEL_CMDS | CONFIG_CMD_EVAL, 1, 1 << 24, NULL,
     "micro-batch size B"},
    {"gradient_accumulation_steps", K_INT, OFF(gradient_accumulation_steps), MODEL_CMDS, 1, 1 << 24,
     NULL,
     "micro-steps per optimizer step, per rank: with mpirun -np N an optimizer step takes "
     "batch_size x gradient_accumulation_steps x N windows (nanoGPT's train.py divides its value "
     "by N first; arenagpt does not)"},
    {"learning_rate", K_FLOAT, OFF(learning_rate), CONFIG_CMD_TRAIN, 0, 0, NULL,
     "peak learning rate"},
    {"max_iters", K_INT, OFF(max_iters), CONFIG_CMD_TRAIN, 0, I64MAX, NULL,
     "optimizer steps to run"},
    {"weight_decay", K_FLOAT, OFF(weight_decay), CONFIG_CMD_TRAIN, 0, 0, NULL,
     "AdamW decoupled decay, on 2-D tensors only"},
    {"beta1", K_FLOAT, OFF(beta1), CONFIG_CMD_TRAIN, 0, 0, NULL, "AdamW beta1"},
    {"beta2", K_FLOAT, OFF(beta2), CONFIG_CMD_TRAIN, 0, 0, NULL, "AdamW beta2"},
    {"grad_clip", K_FLOAT, OFF(grad_clip), CONFIG_CMD_TRAIN, 0, 0, NULL,
     "global gradient-norm clip; 0 = off"},
    {"decay_lr", K_BOOL, OFF(decay_lr), CONFIG_CMD_TRAIN, 0, 0, NULL,
     "warmup + cosine decay (nanoGPT's get_lr)"},
    {"warmup_iters", K_INT, OFF(warmup_iters), CONFIG_CMD_TRAIN, 0, I64MAX, NULL,
     "linear warmup steps"},
    {"lr_decay_iters", K_INT, OFF(lr_decay_iters), CONFIG_CMD_TRAIN, 0, I64MAX, NULL,
     "step where the cosine reaches min_lr"},
    {"min_lr", K_FLOAT, OFF(min_lr), CONFIG_CMD_TRAIN, 0, 0, NULL, "final learning rate"},
    /* evaluation, logging, checkpoints */
    {"eval_interval", K_INT, OFF(eval_interval), CONFIG_CMD_TRAIN, 1, I64MAX, NULL,
     "steps between evaluations"},
    {"eval_iters", K_INT, OFF(eval_iters), CONFIG_CMD_TRAIN, 1, I64MAX, NULL,
     "batches per split per evaluation"},
    {"eval_only", K_BOOL, OFF(eval_only), CONFIG_CMD_TRAIN, 0, 0, NULL, "evaluate once and exit"},
    {"log_interval", K_INT, OFF(log_interval), CONFIG_CMD_TRAIN, 1, I64MAX, NULL,
     "steps between log lines"},
    {"always_save_checkpoint", K_BOOL, OFF(always_save_checkpoint), CONFIG_CMD_TRAIN, 0, 0, NULL,
     "save at every checkpoint point; False: only where the val loss improved (nanoGPT)"},
    {"checkpoint_interval", K_INT, OFF(checkpoint_interval), CONFIG_CMD_TRAIN, 0, I64MAX, NULL,
     "steps between checkpoints; 0 = at each evaluation"},
    {"scaler_growth_interval", K_INT, OFF(scaler_growth_interval), CONFIG_CMD_TRAIN, 1, 1 << 30,
     NULL,
     "clean steps after which the CUDA loss scale doubles (PyTorch GradScaler's growth_interval)"},
    {"keep_checkpoints", K_INT, OFF(keep_checkpoints), CONFIG_CMD_TRAIN, 1, 1000, NULL,
     "checkpoints kept in out_dir"},
    {"out_dir", K_STR, OFF(out_dir),
     CONFIG_CMD_TRAIN | CONFIG_CMD_EVAL | CONFIG_CMD_SAMPLE | CONFIG_CMD_EXPORT, 0, 0, NULL,
     "train: checkpoints, metrics and reports; eval, sample, export: the run init_from = resume "
     "loads"},
    {"init_from", K_STR, OFF(init_from),
     CONFIG_CMD_TRAIN | CONFIG_CMD_MEM | CONFIG_CMD_EVAL | CONFIG_CMD_SAMPLE | CONFIG_CMD_EXPORT, 0,
     0, NULL,
     "scratch, resume (the run in out_dir), a run directory (its model.bin and stored config), "
     "an llm.c model file, Hugging Face GPT-2 weights (.safetensors, a model folder, a sharded "
     "index) or gpt2, gpt2-medium, gpt2-large, gpt2-xl (from the local Hugging Face cache)"},
    {"trace_file", K_STR, OFF(trace_file), CONFIG_CMD_TRAIN | CONFIG_CMD_MEM, 0, 0, NULL,
     "write a Chrome trace-event timeline of the arena here (opens in Perfetto)"},
    /* run */
    {"seed", K_INT, OFF(seed), CONFIG_CMD_TRAIN | CONFIG_CMD_SAMPLE, 0, I64MAX, NULL,
     "random seed"},
    {"dtype", K_ENUM, OFF(dtype), RUN_CMDS, 0, 0, dtype_names,
     "float16: the CUDA layout (f16 params, grads, activations; f32 master, AdamW; loss "
     "scaling); bfloat16: the same in bf16 (no loss scaling; CUDA only); float32: the CPU's "
     "(refused on cuda); the CPU always computes in float32"},
    {"grad_dtype", K_ENUM, OFF(grad_dtype), RUN_CMDS, 0, 0, dtype_names,
     "CUDA weight gradients: the 16-bit dtype (float16 or bfloat16, 2 B/param) or float32 "
     "(4 B/param, accumulated in f32); unset: float16 with dtype float16, "
     "float32 with bfloat16 (8-bit mantissas lose more when summed); the CPU's are always float32"},
    {"model_dtype", K_ENUM, OFF(model_dtype), CONFIG_CMD_TRAIN | CONFIG_CMD_EXPORT, 0, 0,
     model_dtype_names,
     "the weights train writes (out_dir/model.bin) and export writes: float32 (llm.c's version 3; "
     "export: F32) or bfloat16 (version 5; export: BF16; the f32 weights rounded to nearest "
     "even); state_*.bin keeps f32 either way"},
    {"optimizer_offload", K_BOOL, OFF(optimizer_offload), CONFIG_CMD_TRAIN | CONFIG_CMD_MEM, 0, 0,
     NULL,
     "CUDA: the f32 master weights, AdamW's m and v in pinned host memory (a host arena), "
     "AdamW on the CPU; the device keeps 16-bit params, grads, activations"},
    {"device", K_ENUM, OFF(device), RUN_CMDS, 0, 0, device_names,
     "auto (train/eval/sample: cuda when a GPU is present, else cpu; mem: the dtype's "
     "layout, cuda for float16), cpu or cuda"},
    {"memory_limit", K_SIZE, OFF(memory_limit), RUN_CMDS, 0, 0, NULL,
     "arena budget, e.g. 12GiB; 0 = none"},
    {"threads", K_INT, OFF(threads),
     CONFIG_CMD_TRAIN | CONFIG_CMD_EVAL | CONFIG_CMD_SAMPLE | CONFIG_CMD_PREPARE, 0, 4096, NULL,
     "CPU threads; 0 = all cores"},
    {"compile", K_BOOL, OFF(compile), CONFIG_CMD_TRAIN, 0, 0, NULL, NANOGPT_NOOP},
    {"wandb_log", K_BOOL, OFF(wandb_log), CONFIG_CMD_TRAIN, 0, 0, NULL,
     NANOGPT_NOOP " (metrics go to out_dir/metrics.jsonl)"},
    {"wandb_project", K_STR, OFF(wandb_project), CONFIG_CMD_TRAIN, 0, 0, NULL, NANOGPT_NOOP},
    {"wandb_run_name", K_STR, OFF(wandb_run_name), CONFIG_CMD_TRAIN, 0, 0, NULL, NANOGPT_NOOP},
    {"plots", K_BOOL, OFF(plots), CONFIG_CMD_TRAIN, 0, 0, NULL,
     "at the end, draw out_dir/loss.png (scripts/plot.py under /usr/bin/python3, which has "
     "Debian's matplotlib)"},
    /* data */
    {"dataset", K_STR, OFF(dataset), RUN_CMDS, 0, 0, NULL,
     "nanoGPT's dataset name: data_dir defaults to datasets/<dataset>"},
    {"data_dir", K_STR, OFF(data_dir), RUN_CMDS, 0, 0, NULL,
     "directory with train.bin, val.bin and tokenizer.bin (its tokenizer sets the vocabulary), "
     "or prepare's shards <name>_val_NNNNNN.bin, <name>_train_NNNNNN.bin instead of the .bin "
     "pair"},
    {"data_format", K_ENUM, OFF(data_format),
     CONFIG_CMD_TRAIN | CONFIG_CMD_EVAL | CONFIG_CMD_PREPARE, 0, 0, data_format_names,
     "llmc (256-int32 header) or nanogpt (headerless uint16)"},
    /* eval */
    {"data", K_STR, OFF(data), CONFIG_CMD_EVAL, 0, 0, NULL,
     "token shard (or glob of shards) to evaluate on; default <data_dir>/val.bin or its val "
     "shards"},
    {"eval_batches", K_INT, OFF(eval_batches), CONFIG_CMD_EVAL, 1, I64MAX, NULL,
     "batches of sequential windows"},
    /* sample */
    {"prompt", K_STR, OFF(prompt), CONFIG_CMD_SAMPLE, 0, 0, NULL, "text to continue"},
    {"max_new_tokens", K_INT, OFF(max_new_tokens), CONFIG_CMD_SAMPLE, 0, 1 << 24, NULL,
     "tokens to generate per sample"},
    {"temperature", K_FLOAT, OFF(temperature), CONFIG_CMD_SAMPLE, 0, 0, NULL,
     "softmax temperature; 0 = argmax"},
    {"top_k", K_INT, OFF(top_k), CONFIG_CMD_SAMPLE, 0, MAX_VOCAB, NULL,
     "sample among the k most likely; 0 = all"},
    {"num_samples", K_INT, OFF(num_samples), CONFIG_CMD_SAMPLE, 1, 100000, NULL, "samples to draw"},
    {"tokenizer_file", K_STR, OFF(tokenizer_file), CONFIG_CMD_SAMPLE, 0, 0, NULL,
     "tokenizer for decoding; default <data_dir>/tokenizer.bin"},
    /* prepare */
    {"input", K_STR, OFF(input), CONFIG_CMD_PREPARE, 0, 0, NULL,
     "text file to tokenize; or a corpus: files, folders, glob patterns (comma-separated), "
     "plain text or JSON Lines, optionally .gz or .zst"},
    {"out", K_STR, OFF(out), CONFIG_CMD_PREPARE | CONFIG_CMD_EXPORT, 0, 0, NULL,
     "output directory: prepare's shards; export's model.safetensors and config.json"},
    {"tokenizer", K_ENUM, OFF(tokenizer), CONFIG_CMD_PREPARE, 0, 0, tokenizer_names,
     "gpt2 (byte-level BPE) or char"},
    {"val_fraction", K_FLOAT, OFF(val_fraction), CONFIG_CMD_PREPARE, 0, 0, NULL,
     "fraction of the text's characters (at the end) for val.bin, as nanoGPT splits"},
    {"vocab_dir", K_STR, OFF(vocab_dir), CONFIG_CMD_PREPARE, 0, 0, NULL,
     "directory with encoder.json and vocab.bpe; default .cache/gpt2"},
    {"name", K_STR, OFF(name), CONFIG_CMD_PREPARE, 0, 0, NULL,
     "sharded layout: shards <out>/<name>_val_000000.bin, <name>_train_000001.bin, ...; "
     "default corpus when the input is a corpus"},
    {"text_key", K_STR, OFF(text_key), CONFIG_CMD_PREPARE, 0, 0, NULL,
     "JSON Lines field with a document's text"},
    {"doc_sep", K_STR, OFF(doc_sep), CONFIG_CMD_PREPARE, 0, 0, NULL,
     "plain text: separator between documents (\\n, \\t, \\\\ understood); default: one "
     "document per file"},
    {"shard_tokens", K_INT, OFF(shard_tokens), CONFIG_CMD_PREPARE, 1, INT32_MAX, NULL,
     "tokens per shard (llm.c's 100M)"},
    {"val_tokens", K_INT, OFF(val_tokens), CONFIG_CMD_PREPARE, 0, I64MAX, NULL,
     "tokens of the validation split, the first shard(s); 0 = one shard (shard_tokens)"},
    {"resume", K_BOOL, OFF(resume), CONFIG_CMD_PREPARE, 0, 0, NULL,
     "continue an interrupted sharded prepare after its last complete shard"},
    {"strict", K_BOOL, OFF(strict), CONFIG_CMD_PREPARE, 0, 0, NULL,
     "a JSON line that does not parse or lacks text_key stops the run (default: skipped, "
     "counted)"},
    /* mem */
    {"format", K_ENUM, OFF(format), CONFIG_CMD_MEM, 0, 0, format_names, "table, json or csv"},
    {"compare", K_BOOL, OFF(compare), CONFIG_CMD_MEM, 0, 0, NULL,
     "plan every recompute mode side by side"},
    {"fit", K_SIZE, OFF(fit), CONFIG_CMD_MEM, 0, 0, NULL,
     "largest batch_size per recompute mode within this size less --reserve, e.g. 12GiB"},
    {"reserve", K_SIZE, OFF(reserve), CONFIG_CMD_MEM, 0, 0, NULL,
     "what --fit sets aside for the CUDA context and libraries (cuda layout)"},
    {"gpu", K_STR, OFF(gpu), CONFIG_CMD_MEM, 0, 0, NULL,
     "the card planned for (the GPU table: memory, context estimate)"},
    {"top", K_INT, OFF(top), CONFIG_CMD_MEM | CONFIG_CMD_TRAIN, 0, 100000, NULL,
     "tensors listed in the table report"},
    {"html", K_STR, OFF(html), CONFIG_CMD_MEM, 0, 0, NULL,
     "write the memory page here (one offline HTML file; train writes out_dir/memory.html)"},
    {"nanogpt_json", K_STR, OFF(nanogpt_json), CONFIG_CMD_MEM | CONFIG_CMD_TRAIN, 0, 0, NULL,
     "nanoGPT's memory for the page (scripts/nanogpt_memory.py); default "
     "<config dir>/nanogpt/<config name>.json"},
};
#define N_KEYS ((int)(sizeof keys / sizeof keys[0]))

void config_defaults(TrainConfig *c) {
    ASSERT(N_KEYS <= CONFIG_MAX_KEYS);
    memset(c, 0, sizeof *c);
    /* nanoGPT train.py defaults (GPT-2 124M on OpenWebText) */
    c->n_layer = 12;
    c->n_head = 12;
    c->n_embd = 768;
    c->block_size = 1024;
    c->vocab_size = 50304;
    c->bias = 0;
    c->dropout = 0.0;
    c->batch_size = 12;
    c->gradient_accumulation_steps = 40;
    c->learning_rate = 6e-4;
    c->max_iters = 600000;
    c->weight_decay = 1e-1;
    c->beta1 = 0.9;
    c->beta2 = 0.95;
    c->grad_clip = 1.0;
    c->decay_lr = 1;
    c->warmup_iters = 2000;
    c->lr_decay_iters = 600000;
    c->min_lr = 6e-5;
    c->eval_interval = 2000;
    c->eval_iters = 200;
    c->log_interval = 1;
    c->always_save_checkpoint = 1;
    snprintf(c->out_dir, sizeof c->out_dir, "out");
    snprintf(c->init_from, sizeof c->init_from, "scratch");
    c->seed = 1337;
    c->dtype = CONFIG_DTYPE_FLOAT16;
    c->grad_dtype = CONFIG_DTYPE_FLOAT16;
    c->world_size = 1;
    c->grad_reduce_overlap = 1;
    c->compile = 1;
    snprintf(c->wandb_project, sizeof c->wandb_project, "owt");
    snprintf(c->wandb_run_name, sizeof c->wandb_run_name, "gpt2");
    snprintf(c->dataset, sizeof c->dataset, "openwebtext");
    /* ours */
    c->gelu = GPT_GELU_TANH;
    c->attention = GPT_ATTENTION_NAIVE;
    c->recompute = GPT_RECOMPUTE_NONE;
    c->device = CONFIG_DEVICE_AUTO;
    c->keep_checkpoints = 2;
    c->scaler_growth_interval = 2000;
    c->eval_batches = 10;
    /* nanoGPT sample.py */
    snprintf(c->prompt, sizeof c->prompt, "\n");
    c->max_new_tokens = 500;
    c->temperature = 0.8;
    c->top_k = 200;
    c->num_samples = 10;
    c->val_fraction = 0.1;
    snprintf(c->text_key, sizeof c->text_key, "text");
    c->shard_tokens = 100000000;
    c->format = CONFIG_FORMAT_TABLE;
    c->top = 10;
    snprintf(c->gpu, sizeof c->gpu, "rtx4070");
    memset(c->key_set, 0, sizeof c->key_set);
}

/* ---- helpers ---- */

static const Key *key_find(const char *name) {
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

int config_is_set(const TrainConfig *c, const char *key) {
    const Key *k = key_find(key);
    return k ? c->key_set[k - keys] : 0;
}

static int edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 40 || m > 40)
        return 99;
    int d[41][41];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            d[i][j] = v;
        }
    return d[n][m];
}

static const char *key_nearest(const char *name) {
    const char *best = NULL;
    int best_d = 4; /* suggest only close names */
    for (int i = 0; i < N_KEYS; i++) {
        int dist = edit_distance(name, keys[i].name);
        if (dist < best_d) {
            best_d = dist;
            best = keys[i].name;
        }
    }
    return best;
}

static const char *cmd_names(unsigned cmds, char *buf, size_t len) {
    static const char *names[] = {"train", "mem", "eval", "sample", "prepare", "export"};
    buf[0] = 0;
    size_t off = 0;
    for (int i = 0; i < 6; i++)
        if (cmds & (1u << i))
            off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "", names[i]);
    return buf;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

/* Parses a number or a product of numbers ("5 * 8", "6e-4"). is_int demands integers. */
static int parse_number(const char *text, int is_int, double *out_f, int64_t *out_i) {
    char buf[256];
    if (strlen(text) >= sizeof buf)
        return -1;
    snprintf(buf, sizeof buf, "%s", text);
    double prod_f = 1.0;
    int64_t prod_i = 1;
    char *save = NULL;
    int n_terms = 0;
    for (char *tok = strtok_r(buf, "*", &save); tok; tok = strtok_r(NULL, "*", &save)) {
        tok = trim(tok);
        if (!*tok)
            return -1;
        char *end = NULL;
        errno = 0;
        if (is_int) {
            long long v = strtoll(tok, &end, 10);
            if (*end || errno)
                return -1;
            if (__builtin_mul_overflow(prod_i, (int64_t)v, &prod_i))
                return -1;
        } else {
            double v = strtod(tok, &end);
            if (*end || errno == ERANGE || !isfinite(v))
                return -1;
            prod_f *= v;
        }
        n_terms++;
    }
    if (n_terms == 0)
        return -1;
    if (is_int)
        *out_i = prod_i;
    else
        *out_f = prod_f;
    return 0;
}

/* Removes matching quotes ('x' or "x"); Python-style escapes \n \t \\ \' \" are decoded. */
static int unquote(const char *in, char *out, size_t out_len) {
    size_t n = strlen(in);
    if (n >= 2 && (in[0] == '\'' || in[0] == '"') && in[n - 1] == in[0]) {
        size_t o = 0;
        for (size_t i = 1; i + 1 < n; i++) {
            char c = in[i];
            if (c == '\\' && i + 2 < n) {
                char e = in[++i];
                c = e == 'n' ? '\n' : e == 't' ? '\t' : e;
            }
            if (o + 1 >= out_len)
                return -1;
            out[o++] = c;
        }
        out[o] = 0;
        return 0;
    }
    if (n >= out_len)
        return -1;
    memcpy(out, in, n + 1);
    return 0;
}

/* long: one case per key type (int, float, bool, string, enum, size), each with its own parse and message */
int config_set(TrainConfig *c, const char *key, const char *value, const char *origin, unsigned cmd,
               Err *err) {
    const Key *k = key_find(key);
    if (!k) {
        const char *near = key_nearest(key);
        if (near)
            return err_set(err, "%s: unknown key '%s' (did you mean '%s'?)", origin, key, near);
        return err_set(err, "%s: unknown key '%s' (see --help for the keys)", origin, key);
    }
    (void)cmd;
    char *field = (char *)c + k->offset;
    char text[CONFIG_STR_LEN];
    if (unquote(value, text, sizeof text) != 0)
        return err_set(err, "%s: value of '%s' is too long (at most %d characters)", origin, key,
                       CONFIG_STR_LEN - 1);
    switch (k->type) {
    case K_INT: {
        int64_t v;
        double dummy;
        if (parse_number(text, 1, &dummy, &v) != 0)
            return err_set(err, "%s: %s = '%s': expected an integer", origin, key, text);
        if (v < k->min || v > k->max)
            return err_set(err, "%s: %s = %lld is out of range: expected %lld..%lld", origin, key,
                           (long long)v, (long long)k->min, (long long)k->max);
        *(int64_t *)field = v;
        break;
    }
    case K_FLOAT: {
        double v;
        int64_t dummy;
        if (parse_number(text, 0, &v, &dummy) != 0)
            return err_set(err, "%s: %s = '%s': expected a number", origin, key, text);
        *(double *)field = v;
        break;
    }
    case K_BOOL: {
        static const char *yes[] = {"True", "true", "1", "yes", "on"};
        static const char *no[] = {"False", "false", "0", "no", "off"};
        int found = -1;
        for (int i = 0; i < 5; i++) {
            if (strcmp(text, yes[i]) == 0)
                found = 1;
            if (strcmp(text, no[i]) == 0)
                found = 0;
        }
        if (found < 0)
            return err_set(err, "%s: %s = '%s': expected True or False", origin, key, text);
        *(int *)field = found;
        break;
    }
    case K_STR:
        memcpy(field, text, strlen(text) + 1);
        break;
    case K_ENUM: {
        int found = -1;
        char list[256];
        size_t off = 0;
        for (int i = 0; k->choices[i]; i++) {
            if (strcmp(text, k->choices[i]) == 0)
                found = i;
            off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "",
                                    k->choices[i]);
        }
        if (found < 0) {
            return err_set(err, "%s: %s = '%s': expected one of %s", origin, key, text, list);
        }
        *(int *)field = found;
        break;
    }
    case K_SIZE: {
        size_t v;
        Err e2;
        if (size_parse(text, &v, &e2) != 0)
            return err_set(err, "%s: %s: %s", origin, key, e2.msg);
        *(size_t *)field = v;
        break;
    }
    }
    c->key_set[k - keys] = 1;
    return 0;
}

int config_load_file(TrainConfig *c, const char *path, unsigned cmd, Err *err) {
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(err, "cannot open config file '%s': %s", path, strerror(errno));
    char line[4096];
    int lineno = 0;
    int seen_line[CONFIG_MAX_KEYS] = {0};
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char origin[CONFIG_STR_LEN + 32];
        snprintf(origin, sizeof origin, "%s:%d", path, lineno);
        if (!strchr(line, '\n') && !feof(f)) {
            rc = err_set(err, "%s: line longer than %zu characters", origin, sizeof line - 2);
            break;
        }
        /* strip a comment: a # outside quotes */
        char quote = 0;
        for (char *p = line; *p; p++) {
            if (quote) {
                if (*p == '\\' && p[1])
                    p++;
                else if (*p == quote)
                    quote = 0;
            } else if (*p == '\'' || *p == '"') {
                quote = *p;
            } else if (*p == '#') {
                *p = 0;
                break;
            }
        }
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = err_set(err, "%s: expected 'key = value', got '%s'", origin, s);
            break;
        }
        *eq = 0;
        char *key = trim(s);
        char *value = trim(eq + 1);
        const Key *k = key_find(key);
        if (k) {
            int idx = (int)(k - keys);
            if (seen_line[idx]) {
                rc = err_set(err, "%s: duplicate key '%s' (first set on line %d)", origin, key,
                             seen_line[idx]);
                break;
            }
            seen_line[idx] = lineno;
        }
        if (config_set(c, key, value, origin, cmd, err) != 0) {
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f))
        rc = err_set(err, "error reading config file '%s'", path);
    fclose(f);
    if (rc == 0)
        snprintf(c->config_file, sizeof c->config_file, "%s", path);
    return rc;
}

/* zero_stage: the stages data parallel has (model/dist.h); 2 and 3 are refused by name. */
static int config_check_zero(const TrainConfig *c, unsigned cmd, Err *err) {
    if (!(cmd & MODEL_CMDS) || c->zero_stage <= 1)
        return 0;
    return err_set(err,
                   "zero_stage = %lld is not supported: 0 (every rank holds the AdamW state) or "
                   "1 (ZeRO-1: the f32 master weights, m and v sharded across the ranks); stage "
                   "%lld (%s sharded too) is not built",
                   (long long)c->zero_stage, (long long)c->zero_stage,
                   c->zero_stage == 2 ? "the gradients" : "the gradients and parameters");
}

int config_parse_args(TrainConfig *c, int argc, char **argv, unsigned cmd, int *help, Err *err) {
    *help = 0;
    int first = 0;
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            *help = 1;
            return 0;
        }
    if (argc > 0 && strncmp(argv[0], "--", 2) != 0) {
        if (config_load_file(c, argv[0], cmd, err) != 0)
            return -1;
        first = 1;
    }
    int seen[CONFIG_MAX_KEYS] = {0};
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            if (i > 0 && first)
                return err_set(err,
                               "argument '%s': only one config file may be given (already "
                               "read '%s'); overrides are --key=value",
                               arg, argv[0]);
            return err_set(err, "argument '%s': expected --key=value", arg);
        }
        char key[128];
        const char *eq = strchr(arg, '=');
        size_t klen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (klen == 0 || klen >= sizeof key)
            return err_set(err, "argument '%s': expected --key=value", arg);
        memcpy(key, arg + 2, klen);
        key[klen] = 0;
        char origin[160];
        snprintf(origin, sizeof origin, "argument --%s", key);
        const Key *k = key_find(key);
        if (!k) {
            const char *near = key_nearest(key);
            if (near)
                return err_set(err, "%s: unknown key '%s' (did you mean '%s'?)", origin, key, near);
            return err_set(err, "%s: unknown key '%s' (see --help for the keys)", origin, key);
        }
        if (!(k->cmds & cmd)) {
            char a[96], b[96];
            return err_set(err, "%s: '%s' is not used by '%s' (it belongs to: %s)", origin, key,
                           cmd_names(cmd, a, sizeof a), cmd_names(k->cmds, b, sizeof b));
        }
        int idx = (int)(k - keys);
        if (seen[idx])
            return err_set(err, "%s: duplicate key '%s' on the command line", origin, key);
        seen[idx] = 1;
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (k->type != K_BOOL)
                return err_set(err, "%s: expected --%s=VALUE", origin, key);
            value = "True";
        }
        if (config_set(c, key, value, origin, cmd, err) != 0)
            return -1;
    }
    return config_validate(c, cmd, err) || config_check_zero(c, cmd, err) ? -1 : 0;
}

/* long: one check per rule across keys, in the order a user meets them, each with its own
 * message naming the values */
int config_validate(const TrainConfig *c, unsigned cmd, Err *err) {
    const char *src = c->config_file[0] ? c->config_file : "the command line";
    if (cmd & (MODEL_CMDS)) {
        if (c->n_embd % c->n_head != 0)
            return err_set(err,
                           "%s: n_embd = %lld is not divisible by n_head = %lld (each head "
                           "gets n_embd/n_head channels)",
                           src, (long long)c->n_embd, (long long)c->n_head);
        if (c->dropout != 0.0)
            return err_set(err, "%s: dropout = %g is not supported: only 0.0 (set dropout = 0.0)",
                           src, c->dropout);
        /* every byte count of the plan must fit in size_t: the largest products are the
         * attention scores (B*NH*T*T), the MLP activations (B*T*4C*L) and the parameters */
        size_t bt, x, y;
        int of = size_mul((size_t)c->batch_size, (size_t)c->block_size, &bt);
        of |= size_mul(bt, (size_t)c->n_head, &x) | size_mul(x, (size_t)c->block_size, &x) |
              size_mul(x, 8, &x);
        of |= size_mul(bt, (size_t)c->n_embd, &y) | size_mul(y, 16, &y) |
              size_mul(y, (size_t)c->n_layer, &y) | size_mul(y, 8, &y);
        of |= size_mul((size_t)c->n_embd, (size_t)c->n_embd, &x) | size_mul(x, 12, &x) |
              size_mul(x, (size_t)c->n_layer, &x) | size_mul(x, 16, &x);
        of |= size_mul((size_t)c->vocab_size, (size_t)c->n_embd, &x) | size_mul(x, 16, &x);
        if (of)
            return err_set(err,
                           "%s: batch_size %lld x block_size %lld x n_embd %lld x n_layer "
                           "%lld (x n_head %lld): the byte counts of this config overflow "
                           "a 64-bit size",
                           src, (long long)c->batch_size, (long long)c->block_size,
                           (long long)c->n_embd, (long long)c->n_layer, (long long)c->n_head);
        if (bt > INT32_MAX)
            return err_set(err,
                           "%s: batch_size x block_size = %zu exceeds %d (matrix dimensions "
                           "are 32-bit in BLAS and cuBLAS)",
                           src, bt, INT32_MAX);
    }
    if ((cmd & RUN_CMDS) && config_is_set(c, "grad_dtype") && c->dtype != CONFIG_DTYPE_FLOAT32 &&
        c->grad_dtype != CONFIG_DTYPE_FLOAT32 && c->grad_dtype != c->dtype)
        return err_set(err,
                       "%s: grad_dtype = %s with dtype = %s: the weight gradients are the "
                       "run's 16-bit dtype (%s) or float32",
                       src, dtype_names[c->grad_dtype], dtype_names[c->dtype],
                       dtype_names[c->dtype]);
    if (cmd & CONFIG_CMD_TRAIN) {
        if (!(c->learning_rate >= 0) || !(c->min_lr >= 0))
            return err_set(err, "%s: learning_rate = %g, min_lr = %g: expected >= 0", src,
                           c->learning_rate, c->min_lr);
        if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
            return err_set(err, "%s: beta1 = %g, beta2 = %g: expected 0 <= beta < 1", src, c->beta1,
                           c->beta2);
        if (!(c->weight_decay >= 0) || !(c->grad_clip >= 0))
            return err_set(err, "%s: weight_decay = %g, grad_clip = %g: expected >= 0", src,
                           c->weight_decay, c->grad_clip);
        if (c->decay_lr && c->lr_decay_iters <= c->warmup_iters)
            return err_set(err,
                           "%s: lr_decay_iters = %lld must be greater than warmup_iters = "
                           "%lld when decay_lr is True",
                           src, (long long)c->lr_decay_iters, (long long)c->warmup_iters);
    }
    if (cmd & CONFIG_CMD_MEM) {
        if (c->compare && c->fit)
            return err_set(err,
                           "%s: --compare and --fit do not combine: --fit already lists the "
                           "largest batch of each recompute mode; run them one at a time",
                           src);
        if ((c->compare || c->fit) && (c->format == CONFIG_FORMAT_CSV || c->trace_file[0]))
            return err_set(err,
                           "%s: --%s describes several plans: it has no %s (that is one plan's; "
                           "use --format=table or json)",
                           src, c->compare ? "compare" : "fit",
                           c->trace_file[0] ? "trace_file" : "CSV form");
    }
    if ((cmd & CONFIG_CMD_MEM) && !gpu_table_find(c->gpu)) {
        char list[256];
        return err_set(err, "%s: gpu = '%s' is not in the GPU table: expected one of %s", src,
                       c->gpu, gpu_table_keys(list, sizeof list));
    }
    if (cmd & CONFIG_CMD_SAMPLE) {
        if (!(c->temperature >= 0))
            return err_set(err, "%s: temperature = %g: expected >= 0 (0 = argmax)", src,
                           c->temperature);
    }
    if (cmd & CONFIG_CMD_PREPARE) {
        if (!(c->val_fraction >= 0 && c->val_fraction < 1))
            return err_set(err, "%s: val_fraction = %g: expected 0 <= val_fraction < 1", src,
                           c->val_fraction);
    }
    return 0;
}

/* A float as nanoGPT's files write it: the shortest text that reads back to the same double,
 * in exponent form when that is shorter (6e-4, not 0.00059999999999999995), with a ".0" on
 * whole numbers (1.0) so that it still reads as a float. */
static void float_text(double v, char *buf, size_t len) {
    char fixed[64] = "", expo[64] = "";
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(fixed, sizeof fixed, "%.*g", prec, v);
        if (strtod(fixed, NULL) == v)
            break;
    }
    for (int prec = 0; prec <= 16; prec++) {
        snprintf(expo, sizeof expo, "%.*e", prec, v);
        if (strtod(expo, NULL) == v)
            break;
    }
    /* "6e-04" -> "6e-4", "1e+05" -> "1e5" */
    char *e = strchr(expo, 'e');
    if (e) {
        char *p = e + 1, *q = e + 1;
        if (*p == '+')
            p++;
        else if (*p == '-')
            *q++ = *p++;
        while (*p == '0' && p[1])
            p++;
        memmove(q, p, strlen(p) + 1);
    }
    const char *best = fixed;
    if (!strchr(fixed, 'e') && strlen(expo) < strlen(fixed))
        best = expo;
    if (strchr(fixed, 'e') && strlen(expo) <= strlen(fixed))
        best = expo;
    if (isfinite(v) && !strpbrk(best, ".e"))
        snprintf(buf, len, "%s.0", best);
    else
        snprintf(buf, len, "%s", best);
}

static void value_text(const TrainConfig *c, const Key *k, char *buf, size_t len) {
    const char *field = (const char *)c + k->offset;
    switch (k->type) {
    case K_INT:
        snprintf(buf, len, "%lld", (long long)*(const int64_t *)field);
        break;
    case K_FLOAT:
        float_text(*(const double *)field, buf, len);
        break;
    case K_BOOL:
        snprintf(buf, len, "%s", *(const int *)field ? "True" : "False");
        break;
    case K_STR: {
        /* quoted, with the escapes unquote() reads back */
        size_t o = 0;
        buf[o++] = '\'';
        for (const char *p = field; *p && o + 4 < len; p++) {
            if (*p == '\n') {
                buf[o++] = '\\';
                buf[o++] = 'n';
            } else if (*p == '\t') {
                buf[o++] = '\\';
                buf[o++] = 't';
            } else {
                if (*p == '\'' || *p == '\\')
                    buf[o++] = '\\';
                buf[o++] = *p;
            }
        }
        buf[o++] = '\'';
        buf[o] = 0;
        break;
    }
    case K_ENUM:
        snprintf(buf, len, "%s", k->choices[*(const int *)field]);
        break;
    case K_SIZE:
        snprintf(buf, len, "%zu", *(const size_t *)field);
        break;
    }
}

void config_write(const TrainConfig *c, FILE *f) {
    for (int i = 0; i < N_KEYS; i++) {
        char v[2 * CONFIG_STR_LEN + 8];
        value_text(c, &keys[i], v, sizeof v);
        fprintf(f, "%s = %s\n", keys[i].name, v);
    }
}

void config_print_help(FILE *f, unsigned cmd) {
    TrainConfig d;
    config_defaults(&d);
    fprintf(f,
            "keys (in a config file as `key = value`, or on the command line as --key=value):\n");
    for (int i = 0; i < N_KEYS; i++) {
        if (!(keys[i].cmds & cmd))
            continue;
        char v[2 * CONFIG_STR_LEN + 8];
        value_text(&d, &keys[i], v, sizeof v);
        for (size_t j = 0; j < sizeof help_defaults / sizeof help_defaults[0]; j++)
            if (strcmp(help_defaults[j].key, keys[i].name) == 0)
                snprintf(v, sizeof v, "%s", help_defaults[j].text);
        fprintf(f, "  --%-28s %s (default %s)\n", keys[i].name, keys[i].help, v);
    }
}

const char *config_device_name(ConfigDevice d) { return device_names[d]; }
const char *config_dtype_name(ConfigDtype d) { return dtype_names[d]; }

ConfigDtype config_grad_dtype(const TrainConfig *c) {
    if (config_is_set(c, "grad_dtype") || c->dtype != CONFIG_DTYPE_BFLOAT16)
        return c->grad_dtype == CONFIG_DTYPE_FLOAT32 ? CONFIG_DTYPE_FLOAT32 : c->dtype;
    return CONFIG_BF16_GRAD_DTYPE;
}

int config_apply_text(TrainConfig *c, const char *text, const char *origin, const char *const *only,
                      Err *err) {
    const char *p = text;
    int lineno = 0;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[2 * CONFIG_STR_LEN + 64];
        lineno++;
        if (n < sizeof line) {
            memcpy(line, p, n);
            line[n] = 0;
            char *eq = strchr(line, '=');
            if (eq) {
                *eq = 0;
                char *key = trim(line), *value = trim(eq + 1);
                for (int i = 0; only[i]; i++) {
                    if (strcmp(key, only[i]) != 0 || config_is_set(c, key))
                        continue;
                    char where[CONFIG_STR_LEN + 32];
                    snprintf(where, sizeof where, "%s:%d", origin, lineno);
                    if (config_set(c, key, value, where, 0, err) != 0)
                        return -1;
                }
            }
        }
        p += n + (nl ? 1 : 0);
    }
    return 0;
}
