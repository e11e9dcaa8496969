/* loss_chunk.c: the loss head's automatic chunk and what a chunk costs (loss_chunk.h states
 * the rule). Pure arithmetic on the config and the device's layout: no arena, no kernels. */
#include "loss_chunk.h"

#include "../alloc/arena.h"

static int64_t clamp_rows(int64_t chunk, int64_t n) {
    if (chunk < 1)
        chunk = 1;
    return chunk < n ? chunk : n;
}

int64_t gpt_loss_chunk_auto(const GptConfig *c, GptDevice dev, int64_t B, int64_t T) {
    int64_t n = B * T;
    int64_t row_bytes =
        c->padded_vocab_size * (int64_t)arena_dtype_size(gpt_layout(dev)->act_dtype);
    int64_t max_rows = GPT_LOSS_CHUNK_BUDGET_BYTES / (row_bytes > 0 ? row_bytes : 1);
    if (max_rows >= GPT_LOSS_CHUNK_ALIGN_ROWS)
        max_rows -= max_rows % GPT_LOSS_CHUNK_ALIGN_ROWS;
    max_rows = clamp_rows(max_rows, n);
    int64_t n_chunks = (n + max_rows - 1) / max_rows;
    int64_t rows = (n + n_chunks - 1) / n_chunks; /* balanced, then rounded up to a tile */
    int64_t up = (rows + GPT_LOSS_CHUNK_ALIGN_ROWS - 1) / GPT_LOSS_CHUNK_ALIGN_ROWS *
                 GPT_LOSS_CHUNK_ALIGN_ROWS;
    if (up <= max_rows) /* max_rows is a multiple of 64 once it is at least 64 */
        rows = up;
    return clamp_rows(rows, n);
}

int64_t gpt_loss_chunk(const GptConfig *c, GptDevice dev, int64_t B, int64_t T) {
    if (c->loss_chunk > 0)
        return clamp_rows(c->loss_chunk, B * T);
    return gpt_loss_chunk_auto(c, dev, B, T);
}

void gpt_loss_head_cost(const GptConfig *c, GptDevice dev, int64_t B, int64_t T, int64_t chunk,
                        GptLossHeadCost *out) {
    const GptLayout *lay = gpt_layout_of(dev, c->bf16, c->grad_f32);
    int64_t n = B * T;
    double wte = (double)(c->padded_vocab_size * c->channels);
    /* per chunk: wte read by the logits GEMM and by the dx GEMM; grad.wte read and written by
     * the dW GEMM (it accumulates) */
    double per_chunk = wte * (2.0 * (double)arena_dtype_size(lay->param_dtype) +
                              2.0 * (double)arena_dtype_size(lay->grad_dtype));
    out->chunk = clamp_rows(chunk, n);
    out->n_chunks = (n + out->chunk - 1) / out->chunk;
    out->logits_bytes =
        (size_t)out->chunk * (size_t)c->padded_vocab_size * arena_dtype_size(lay->act_dtype);
    out->wte_traffic_bytes = per_chunk * (double)out->n_chunks;
    out->extra_wte_traffic_bytes = per_chunk * (double)(out->n_chunks - 1);
}

static int add_choice(int64_t *out, int n, int64_t chunk) {
    for (int i = 0; i < n; i++)
        if (out[i] == chunk)
            return n;
    out[n] = chunk;
    return n + 1;
}

int gpt_loss_chunk_choices(const GptConfig *c, GptDevice dev, int64_t B, int64_t T,
                           int64_t out[GPT_LOSS_CHUNK_CHOICES]) {
    int n = 0;
    int64_t rows = B * T, aut = gpt_loss_chunk_auto(c, dev, B, T);
    if (c->loss_chunk > 0)
        n = add_choice(out, n, clamp_rows(c->loss_chunk, rows));
    n = add_choice(out, n, aut);
    n = add_choice(out, n, clamp_rows((aut + 1) / 2, rows));
    return add_choice(out, n, rows);
}
