/* model_io.h: llm.c's GPT-2 model file, read into and written from a Gpt.
 *
 * Format (little-endian): a header of 256 int32 -- [0] magic 20240326, [1] version: 3 (fp32
 * values) or 5 (bf16 values), [2] maxT, [3] V, [4] L, [5] NH, [6] C, [7] Vp, the rest 0 -- then
 * the tensors, 4 bytes (fp32) or 2 bytes (bf16: the top half of the fp32 bits) a value, in
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
 * largest tensor, malloc'd: file I/O, not model memory, so outside the arena; a bf16 file
 * adds a uint16 one of the same length) and gpt_param_read_f32 / gpt_param_write_f32, so the
 * same code serves the CPU and CUDA layouts.
 *
 * Values: a version 5 file's bf16 values widen to f32 exactly on reading; writing version 5
 * rounds each f32 weight to the nearest bf16 (ties to even, NaN kept a NaN: half.h), so a
 * bf16 model written and read back is bit for bit the same, and an f32 model loses what bf16
 * cannot hold (8 significant bits).
 *
 * Errors (return -1, err filled, never exits): the file cannot be opened; wrong magic or
 * version (neither 3 nor 5); header values out of range (non-positive, C % NH != 0, Vp < V); file size not
 * what the header implies for its version (truncated or trailing bytes, both sizes and the
 * version given); the header's
 * shape differing from the Gpt it is read into (every differing value given); non-zero
 * biases for a bias-free model. Writing goes to a temporary file in the same directory,
 * fsync'd and renamed over the target, so a crash never leaves a half-written model file. */
#ifndef ARENAGPT_MODEL_IO_H
#define ARENAGPT_MODEL_IO_H

#include <stdint.h>

#include "../alloc/base.h"
#include "gpt.h"

#define MODEL_FILE_MAGIC 20240326
#define MODEL_FILE_VERSION_FP32 3 /* fp32 values (llm.c's gpt2_124M.bin) */
#define MODEL_FILE_VERSION_BF16 5 /* bf16 values (llm.c's gpt2_124M_bf16.bin) */
#define MODEL_FILE_HEADER_INTS 256

/* The version and shape fields of an llm.c model file header. */
typedef struct ModelFileHeader {
    int32_t version;           /* MODEL_FILE_VERSION_FP32 or MODEL_FILE_VERSION_BF16 */
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
/* Bytes of a file with this header: 1024 + (4 for fp32, 2 for bf16) * (number of values).
 * -1 on overflow. */
int model_file_bytes(const ModelFileHeader *h, size_t *out);
/* Bytes of one value of a file of this version (4 fp32, 2 bf16), and its name ("fp32",
 * "bf16"). */
size_t model_file_value_bytes(int32_t version);
const char *model_file_version_name(int32_t version);

/* Loads the weights of path into g (built, with the same shape as the file). Gradients and
 * optimizer state are not touched. */
int model_file_read(Gpt *g, const char *path, Err *err);
/* Writes g's weights to path atomically (temp file in the same directory, fsync, rename):
 * from the f32 master copy where the layout keeps one (CUDA), else from the params; version
 * MODEL_FILE_VERSION_FP32 or MODEL_FILE_VERSION_BF16 (another version is an error). */
int model_file_write_as(Gpt *g, const char *path, int32_t version, Err *err);
/* model_file_write_as in version 3 (fp32). */
int model_file_write(Gpt *g, const char *path, Err *err);

#endif
