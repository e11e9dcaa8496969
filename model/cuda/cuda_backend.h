/* cuda_backend.h: what the CUDA backend exposes beyond backend.h's kernel table (CUDA builds
 * only; C linkage).
 *
 * The table (gpt_backend_cuda()) holds fp16 kernels: params, weight gradients and activations
 * are f16 (__half), statistics, losses, master weights and AdamW moments f32; every kernel
 * accumulates in f32. The `stream` argument of every table entry is a cudaStream_t cast to
 * void * (NULL: the legacy default stream).
 *
 * gpt_backend_cuda() initialises on its first call: picks the device gpt_cuda_select_device
 * chose (a rank's; model/nccl_comm.h), else the current device (0 unless set),
 * creates the primary context and the cuBLASLt and cuBLAS handles, and returns NULL (with the
 * reason in gpt_cuda_last_error) when there is no usable GPU. No device memory is allocated
 * by the backend: cuBLAS and cuBLASLt get the arena's `ws.backend` tensor through
 * gpt_cuda_workspace_set, and run without a workspace until then.
 *
 * Errors: kernels return void; the first failed CUDA/cuBLAS call is kept (sticky) and
 * printed once to stderr. Callers check gpt_cuda_last_error() after a step. */
#ifndef ARENAGPT_CUDA_BACKEND_H
#define ARENAGPT_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

/* 0 when no CUDA/cuBLAS error happened since start (msg gets ""), else -1 with the first
 * error ("cudaMemcpyAsync(...) failed: an illegal memory access ... at file.cu:12") in msg.
 * msg may be NULL. */
int gpt_cuda_last_error(char *msg, size_t len);

/* Hands the backend its workspace (the arena's `ws.backend`, GptLayout.backend_workspace_bytes
 * bytes, 256-aligned) for cuBLASLt and cuBLAS; NULL / 0 takes it back (call before the tensor
 * is freed). Synchronises the device first so no GEMM in flight still uses the old one. */
void gpt_cuda_workspace_set(void *ws, size_t bytes);

/* Records a failure of a library call made from C code (cuDNN SDPA) in the sticky error. */
void gpt_cuda_error_record(const char *call, const char *msg, const char *file, int line);

/* The longest sequence the naive attention backward takes with head size HS on this device:
 * its per-row shared memory (T + HS floats, plus the kernel's static shared memory) must fit
 * the per-block limit. A longer T makes the backward record an error and do nothing. */
int64_t gpt_cuda_attention_max_seq_len(int64_t HS);

/* The device in use (valid after gpt_backend_cuda() returned non-NULL), or -1. */
int gpt_cuda_device(void);

#endif
