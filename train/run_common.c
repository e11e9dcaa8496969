/* run_common.c: see run_common.h. */
#include "run_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

GptAttention run_gpt_attention(ConfigAttention a) {
    switch (a) {
    case CONFIG_ATTENTION_FLASH:
        return GPT_ATTENTION_FLASH;
    case CONFIG_ATTENTION_CUDNN:
        return GPT_ATTENTION_CUDNN;
    default:
        return GPT_ATTENTION_NAIVE;
    }
}

void run_gpt_config(const TrainConfig *cfg, GptConfig *out) {
    memset(out, 0, sizeof *out);
    out->max_seq_len = cfg->block_size;
    out->vocab_size = cfg->vocab_size;
    out->padded_vocab_size = cfg->vocab_size;
    out->n_layer = cfg->n_layer;
    out->n_head = cfg->n_head;
    out->channels = cfg->n_embd;
    out->bias = cfg->bias;
    out->gelu = cfg->gelu == CONFIG_GELU_ERF ? GPT_GELU_ERF : GPT_GELU_TANH;
    out->recompute = (GptRecompute)cfg->recompute; /* same order (config.h) */
    out->attention = run_gpt_attention(cfg->attention);
    out->loss_chunk = cfg->loss_chunk;
}

void run_attention_fallback(const char *cmd, GptConfig *c, GptDevice dev, int64_t B, int64_t T) {
    char notice[768];
    if (gpt_attention_resolve(c, dev, B, T, notice, sizeof notice))
        fprintf(stderr, "arenagpt %s: %s\n", cmd, notice);
}

int run_device(const TrainConfig *cfg, int plan_only, GptDevice *out, Err *err) {
    const GptBackend *cuda = gpt_backend(GPT_DEVICE_CUDA);
    switch (cfg->device) {
    case CONFIG_DEVICE_CPU:
        *out = GPT_DEVICE_CPU;
        return 0;
    case CONFIG_DEVICE_CUDA:
        if (!cuda && !plan_only)
            return err_set(err, "device = cuda, but no usable CUDA GPU was found (or this "
                                "binary was built without CUDA): use --device=cpu, or plan it "
                                "with arenagpt mem --device=cuda");
        *out = GPT_DEVICE_CUDA;
        return 0;
    case CONFIG_DEVICE_AUTO:
        *out = cuda ? GPT_DEVICE_CUDA : GPT_DEVICE_CPU;
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

int run_plan(const GptConfig *c, GptDevice dev, int64_t B, int64_t T, int64_t grad_accum,
             size_t limit_bytes, int trace, Arena **arena_out, Err *err) {
    Arena *a = arena_init(ARENA_BACKING_PLAN, 0, limit_bytes, err);
    *arena_out = a;
    if (!a)
        return -1;
    arena_trace_enable(a, trace);
    Gpt g;
    if (gpt_build(&g, c, dev, a, B, T, err) != 0)
        return -1;
    /* targets must be given: an evaluation computes the loss head (the values are not read
     * in a plan) */
    int32_t *zeros = calloc((size_t)(B * T), sizeof *zeros);
    if (!zeros)
        return err_set(err, "out of host memory");
    int rc = gpt_forward(&g, zeros, zeros, B, T, 0, NULL, err);
    free(zeros);
    if (rc == 0)
        rc = gpt_step_sequence(&g, NULL, NULL, B, T, grad_accum, err);
    /* the model stays built: the arena describes a run in progress; only the host-side
     * bookkeeping goes */
    gpt_forget(&g);
    return rc;
}

void run_threads(const TrainConfig *cfg) { gpt_set_threads((int)cfg->threads); }
