/* attention.c: the attention kinds, one table entry each (ATTENTION_KINDS): the config name,
 * what its forward saves for its backward (the block's BT_ATT row), where it can be planned,
 * whether its backward reads the output, and the scratch each pass takes. The kernels are the
 * backend's attention[kind] entry, one signature for every kind (backend.h), so a kind is this
 * entry plus its kernels (docs/ARCHITECTURE.md). Also: the names of the model's enums (what
 * configs and reports write) and cuDNN's availability check (gpt_attention_resolve). */
#include <stdio.h>
#include <string.h>

#include "gpt_internal.h"

static size_t flash_backward_workspace(int64_t B, int64_t T, int64_t C, int64_t NH) {
    return gpt_flash_workspace_bytes(B, T, NH);
}

/* What the fused kinds (cudnn, flash) save besides y: the f32 log-sum-exp of each row's scores,
 * (B,NH,T), kept until the backward like y; only full recompute recomputes it. */
#define FUSED_ATTENTION_SAVED                                                                      \
    { "attn.lse", ROLE_F32, {DIM_B, DIM_NH, DIM_T}, RECOMPUTED_BY_FULL, BT_ATTY, GRAD_NONE }

const char *const GPT_ATTENTION_NAMES[GPT_ATTENTION_COUNT + 1] = {[GPT_ATTENTION_NAIVE] = "naive",
                                                                  [GPT_ATTENTION_CUDNN] = "cudnn",
                                                                  [GPT_ATTENTION_FLASH] = "flash",
                                                                  [GPT_ATTENTION_COUNT] = NULL};
const char *const GPT_RECOMPUTE_NAMES[GPT_RECOMPUTE_COUNT + 1] = {"none", "selective", "full",
                                                                  NULL};
const char *const GPT_GELU_NAMES[GPT_GELU_COUNT + 1] = {"tanh", "erf", NULL};

static const AttentionKind ATTENTION_KINDS[GPT_ATTENTION_COUNT] = {
    /* the softmax probabilities, zero above the diagonal */
    [GPT_ATTENTION_NAIVE] = {.saved = {"attn.att",
                                       ROLE_ACT,
                                       {DIM_B, DIM_NH, DIM_T, DIM_T},
                                       RECOMPUTED_BY_SELECTIVE,
                                       BT_ATTY,
                                       GRAD_NONE},
                             .devices = ON_DEVICE(GPT_DEVICE_CPU) | ON_DEVICE(GPT_DEVICE_CUDA),
                             .backward_reads_out = 0},
    /* cuDNN's fused SDPA (not yet verified on a GPU): the f32 log-sum-exp of each row's
     * scores, kept like y (selective recomputes nothing of it: the fused backward recomputes
     * the probabilities itself); its workspace holds D and the plans' own (a derived
     * figure, see gpt_cudnn_workspace_bytes) */
    [GPT_ATTENTION_CUDNN] = {.saved = FUSED_ATTENTION_SAVED,
                             .devices = ON_DEVICE(GPT_DEVICE_CUDA),
                             .backward_reads_out = 1,
                             .ws_name = "cudnn",
                             .forward_workspace = gpt_cudnn_workspace_bytes,
                             .backward_workspace = gpt_cudnn_workspace_bytes},
    /* our FlashAttention-2 kernels: the same saved set as cudnn; the backward's scratch is
     * D = rowsum(dy * y), f32 (B,NH,T) */
    [GPT_ATTENTION_FLASH] = {.saved = FUSED_ATTENTION_SAVED,
                             .devices = ON_DEVICE(GPT_DEVICE_CPU) | ON_DEVICE(GPT_DEVICE_CUDA),
                             .backward_reads_out = 1,
                             .ws_name = "flash_d",
                             .backward_workspace = flash_backward_workspace},
};

const AttentionKind *attention_kind(GptAttention a) {
    ASSERT((unsigned)a < GPT_ATTENTION_COUNT);
    return &ATTENTION_KINDS[a];
}

int attention_runs(const GptBackend *be, GptAttention a) {
    return be->attention[a].forward != NULL && be->attention[a].backward != NULL;
}

const char *attention_kinds_on(GptDevice dev, char *buf, size_t len) {
    buf[0] = 0;
    for (int a = 0; a < GPT_ATTENTION_COUNT; a++)
        if (ATTENTION_KINDS[a].devices & ON_DEVICE(dev))
            snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? ", " : "",
                     GPT_ATTENTION_NAMES[a]);
    return buf;
}

const char *gpt_attention_name(GptAttention a) {
    ASSERT((unsigned)a < GPT_ATTENTION_COUNT);
    return GPT_ATTENTION_NAMES[a];
}

int gpt_attention_resolve(GptConfig *c, GptDevice dev, int64_t B, int64_t T, char *notice,
                          size_t len) {
    if (notice && len)
        notice[0] = '\0';
    if (c->attention != GPT_ATTENTION_CUDNN || dev != GPT_DEVICE_CUDA)
        return 0;
    const GptBackend *be = gpt_backend_for(gpt_layout_of(dev, c->bf16, c->grad_f32));
    if (!be)
        return 0; /* nothing runs: a plan */
    char reason[512] = "this build's CUDA backend has no cuDNN attention";
    int64_t C = c->channels, NH = c->n_head;
    const GptAttentionKernels *k = &be->attention[GPT_ATTENTION_CUDNN];
    if (k->prepare &&
        k->prepare(B, T, C, NH, gpt_cudnn_workspace_bytes(B, T, C, NH), reason, sizeof reason) == 0)
        return 0;
    int flash = C / NH <= GPT_FLASH_CUDA_MAX_HS;
    c->attention = flash ? GPT_ATTENTION_FLASH : GPT_ATTENTION_NAIVE;
    snprintf(notice, len, "attention=cudnn is not available (%s): using attention=%s", reason,
             flash ? "flash" : "naive");
    return 1;
}
