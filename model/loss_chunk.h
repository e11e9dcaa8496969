/* loss_chunk.h: the loss head's chunk as a planned trade-off between memory and traffic.
 *
 * The loss head (model/gpt.c, loss_head) computes the logits `loss_chunk` rows at a time into
 * `ws.logits` (chunk, Vp) in the activation dtype. Each chunk runs three GEMMs against the tied
 * embedding: logits = x wte^T (reads wte), dx = dlogits wte (reads wte again) and
 * grad.wte += dlogits^T x (reads and writes grad.wte). So fewer, larger chunks cost workspace
 * and save wte traffic; one chunk of B*T rows is the unchunked head's traffic.
 *
 * The automatic chunk (gpt_loss_chunk with loss_chunk = 0): the fewest chunks whose logits
 * fit in GPT_LOSS_CHUNK_BUDGET_BYTES (160 MiB) in the activation dtype's real size (2 bytes on
 * CUDA's f16, 4 on the CPU's f32), the rows split evenly over those chunks and rounded up to a
 * multiple of GPT_LOSS_CHUNK_ALIGN_ROWS (64, a GEMM tile) within the budget; capped at B*T.
 * At the 4070 config (B 16, T 512, Vp 50304, f16) that is 5 chunks of 1664 rows, for GPT-2 124M
 * (B 12, T 1024) 8 chunks of 1536 rows; tiny vocabularies run in one chunk.
 *
 * Not here: running the head (gpt.c), the chunk key's parsing (train/config.c). */
#ifndef ARENAGPT_LOSS_CHUNK_H
#define ARENAGPT_LOSS_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "gpt.h"

#define GPT_LOSS_CHUNK_BUDGET_BYTES ((int64_t)160 << 20)
#define GPT_LOSS_CHUNK_ALIGN_ROWS 64

/* What one choice of chunk costs in a training micro-step of B*T rows. */
typedef struct GptLossHeadCost {
    int64_t chunk;                  /* rows per chunk (the last may be shorter) */
    int64_t n_chunks;               /* ceil(B*T / chunk) */
    size_t logits_bytes;            /* `ws.logits` (chunk, Vp) in the activation dtype, before the
                            arena's 256-byte rounding */
    double wte_traffic_bytes;       /* wte and grad.wte bytes the head's GEMMs move per
                                       micro-step: n_chunks x (2 reads of wte + read and write
                                       of grad.wte) */
    double extra_wte_traffic_bytes; /* the same less what one chunk of B*T rows would move */
} GptLossHeadCost;

/* The automatic chunk for this shape on dev (the rule above); at least 1, at most B*T. */
int64_t gpt_loss_chunk_auto(const GptConfig *c, GptDevice dev, int64_t B, int64_t T);

/* The cost of running the head in chunks of `chunk` rows (clamped to [1, B*T]). */
void gpt_loss_head_cost(const GptConfig *c, GptDevice dev, int64_t B, int64_t T, int64_t chunk,
                        GptLossHeadCost *out);

/* The chunk sizes `mem --compare` and the memory page set side by side, in this order without
 * repeats: the configured loss_chunk (when set), the automatic chunk, half of it (about half
 * the logits, twice the chunks) and one chunk of B*T rows (no extra traffic, the most memory).
 * Returns how many (1 to GPT_LOSS_CHUNK_CHOICES). */
#define GPT_LOSS_CHUNK_CHOICES 4
int gpt_loss_chunk_choices(const GptConfig *c, GptDevice dev, int64_t B, int64_t T,
                           int64_t out[GPT_LOSS_CHUNK_CHOICES]);

#endif
