/* flops.c: matmul FLOPs per token (2 per multiply-add), counted from the block table
 * (block.c) and the loss head: what a forward costs, what a recompute mode adds to the
 * backward, and what the fused attention kinds recompute. Attention is counted on the full
 * T x T, as nanoGPT's MFU estimate does. */
#include "gpt_internal.h"

double gpt_flops_forward_per_token(const GptConfig *c, int64_t T) {
    return (double)c->n_layer * block_flops_forward_per_token(c, T) +
           2.0 * (double)c->channels * (double)c->padded_vocab_size;
}

double gpt_flops_recompute_per_token(const GptConfig *c, int64_t T, GptRecompute recompute) {
    return (double)c->n_layer * block_flops_recompute_per_token(c, T, recompute);
}

double gpt_flops_attention_recompute_per_token(const GptConfig *c, int64_t T, GptDevice dev) {
    double C = (double)c->channels, L = (double)c->n_layer;
    double scores = 2.0 * (double)T * C; /* QK^T, counted on the full T x T like the forward */
    if (c->attention == GPT_ATTENTION_FLASH)
        return L * scores * (dev == GPT_DEVICE_CUDA ? 3.0 : 1.0);
    if (c->attention == GPT_ATTENTION_CUDNN)
        return L * scores;
    return 0.0;
}
