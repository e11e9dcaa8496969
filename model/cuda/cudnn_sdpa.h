/* cudnn_sdpa.h: attention=cudnn on the CUDA backend (cudnn_sdpa.c): cuDNN 9's fused SDPA
 * through the backend API, loaded with dlopen. The backend table's attention[GPT_ATTENTION_CUDNN]
 * entry (backend.h) is these functions. Not yet verified on a GPU. */
#ifndef ARENAGPT_CUDNN_SDPA_H
#define ARENAGPT_CUDNN_SDPA_H

#include <stddef.h>
#include <stdint.h>

/* Loads cuDNN (once), builds the forward and backward graphs for this shape and caches their
 * execution plans. 0, or -1 with the reason (no libcudnn.so.9, no device, a graph refused, a
 * plan needing more than workspace_bytes). */
int cudnn_sdpa_prepare(int64_t B, int64_t T, int64_t C, int64_t NH, size_t workspace_bytes,
                       char *reason, size_t len);
/* out (B,T,C) f16 =, lse (B,NH,T) f32 = ; workspace: gpt_cudnn_workspace_bytes. */
void cudnn_sdpa_forward(void *out, void *lse, void *workspace, const void *qkv, int64_t B,
                        int64_t T, int64_t C, int64_t NH, void *stream);
/* dqkv (B,T,3C) f16 = ; workspace: gpt_cudnn_workspace_bytes (D = rowsum(dout * out) first). */
void cudnn_sdpa_backward(void *dqkv, void *lse, void *workspace, const void *dout, const void *out,
                         const void *qkv, int64_t B, int64_t T, int64_t C, int64_t NH,
                         void *stream);

/* The same for the bfloat16 layout (q, k, v, out and their gradients bf16). */
int cudnn_sdpa_prepare_bf16(int64_t B, int64_t T, int64_t C, int64_t NH, size_t workspace_bytes,
                            char *reason, size_t len);
void cudnn_sdpa_forward_bf16(void *out, void *lse, void *workspace, const void *qkv, int64_t B,
                             int64_t T, int64_t C, int64_t NH, void *stream);
void cudnn_sdpa_backward_bf16(void *dqkv, void *lse, void *workspace, const void *dout,
                              const void *out, const void *qkv, int64_t B, int64_t T, int64_t C,
                              int64_t NH, void *stream);

#endif
