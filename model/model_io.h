/* model_io.h: llm.c's GPT-2 model file, read into and written from a Gpt.
 *
 * Format (little-endian): a header of 256 int32 -- [0] magic 20240326, [1] version 3 (fp32),
 * [2] maxT, [3] V, [4] L, [5] NH, [6] C, [7] Vp, the rest 0 -- then the fp32 tensors in
 * llm.c order: wte (Vp,C), wpe (maxT,C), ln1w (L,C), ln1b (L,C), qkvw (L,3C,C), qkvb (L,3C),
 * attprojw (L,C,C), attprojb (L,C), ln2w (L,C), ln2b (L,C), fcw (L,4C,C), fcb (L,4C),
 * fcprojw (L,C,4C), fcprojb (L,C), lnfw (C), lnfb (C). A per-layer tensor is stored for all
 * layers in turn (layer 0's block, then layer 1's, ...). Linear weights are (out, in).
 *
 * Bias: the file always holds every bias. A bias-free model writes zeros there. Reading into
 * a bias-free model checks that the file's biases are all zero and refuses the file
 * otherwise (the model would silently compute something else); the error names the tensor
 * and says to set bias=True. A bias model reads the biases as they are.
 * The header carries no bias or GELU flag: those come from the config (as in llm.c).
 *
 * Devices: tensors travel one at a time through a host f32 staging buffer (the size of the
 * largest tensor, malloc'd: file I/O, not model memory, so outside the arena) and
 * gpt_param_read_f32 / gpt_param_write_f32, so the same code serves the CPU and CUDA
 * layouts.
 *
 * Errors (return -1, err filled, never exits): the file cannot be opened; wrong magic or
 * version; header values out of range (non-positive, C % NH != 0, Vp < V); file size not
 * what the header implies (truncated or trailing bytes, both sizes given); the header's
 * shape differing from the Gpt it is read into (every differing value given); non-zero
 * biases for a bias-free model. Writing goes to a temporary file in the same directory,
 * fsync'd and renamed over the target, so a crash never leaves a half-written model file. */
#ifndef ARENAGPT_MODEL_IO_H
#define ARENAGPT_MODEL_IO_H

#include <stdint.h>

#include "../alloc/base.h"
#include "gpt.h"

#define MODEL_FILE_MAGIC 20240326
#define MODEL_FILE_VERSION_FP32 3
#define MODEL_FILE_HEADER_INTS 256

/* The shape fields of an llm.c model file header. */
typedef struct ModelFileHeader {
    int32_t max_seq_len;       /* maxT */
    int32_t vocab_size;        /* V */
    int32_t n_layer;           /* L */
    int32_t n_head;            /* NH */
    int32_t channels;          /* C */
    int32_t padded_vocab_size; /* Vp */
} ModelFileHeader;

/* Reads and checks the header (magic, version, ranges, and that the file size matches). */
int model_file_read_header(const char *path, ModelFileHeader *out, Err *err);
/* Reads the header only and fills the shape fields of *out (max_seq_len, vocab_size,
 * padded_vocab_size, n_layer, n_head, channels); the other fields (bias, gelu, recompute,
 * attention, loss_chunk) are left as the caller set them. */
int gpt_config_from_model_file(const char *path, GptConfig *out, Err *err);
/* Bytes of a file with this header: 1024 + 4 * (number of fp32 values). -1 on overflow. */
int model_file_bytes(const ModelFileHeader *h, size_t *out);

/* Loads the weights of path into g (built, with the same shape as the file). Gradients and
 * optimizer state are not touched. */
int model_file_read(Gpt *g, const char *path, Err *err);
/* Writes g's weights to path atomically (temp file in the same directory, fsync, rename):
 * from the f32 master copy where the layout keeps one (CUDA), else from the params. */
int model_file_write(Gpt *g, const char *path, Err *err);

#endif
