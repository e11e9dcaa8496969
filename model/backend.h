/* backend.h: the interface between the model's orchestration (gpt.c) and the kernels of one
 * device. Two parts:
 *
 *   GptLayout   the dtypes and extra buffers of a device: plain C data, computable on any
 *               machine, so `arenagpt mem --device=cuda` plans the CUDA layout without a GPU.
 *               CPU: params, grads, activations f32; optimizer m and v (8 B/param).
 *               CUDA: params f16 (2 B), grads f16 (2 B), activations f16, optimizer f32
 *               master + m + v (12 B/param) -- ZeRO's mixed-precision accounting;
 *               grad_dtype=float32 makes the grads f32 (4 B/param).
 *   GptBackend  a table of kernels. gpt.c calls only these, so a CUDA backend plugs in by
 *               filling the same table. CPU and CUDA kernels have the same signatures; the
 *               last argument is always the stream (NULL on the CPU).
 *
 * Pointers typed `void *` hold the layout's dtype (act_dtype for activations and activation
 * gradients, param_dtype for weights, grad_dtype for weight gradients); `float *` is always
 * f32 (LayerNorm statistics, per-token losses, master weights, m, v, reduction results).
 * Every pointer is device memory of the backend (host memory on the CPU) unless its name
 * says host. Kernels allocate nothing: scratch comes from the caller (the arena).
 *
 * Conventions (docs/ARCHITECTURE.md): outputs, saved-for-backward, inputs, weights, sizes,
 * stream. Every backward says which outputs it overwrites (=) and which it accumulates (+=).
 *
 * Shape legend: B batch, T time, C channels, NH heads, HS head size (C/NH), V vocab,
 * Vp padded vocab, L layers, N rows (B*T or a chunk of them), OC output channels,
 * IC input channels. */
#ifndef ARENAGPT_BACKEND_H
#define ARENAGPT_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "../alloc/arena.h"
#include "../alloc/base.h"

typedef enum GptDevice { GPT_DEVICE_CPU = 0, GPT_DEVICE_CUDA } GptDevice;

/* What a device stores, and in which dtype. Pure data: no device needed. */
typedef struct GptLayout {
    GptDevice device;
    ArenaDtype param_dtype; /* weights (params category) */
    ArenaDtype grad_dtype;  /* weight gradients (grads category) */
    ArenaDtype act_dtype;   /* activations and activation gradients (activations, workspace) */
    int has_master;         /* optimizer also keeps an f32 master copy (`master.<name>`) */
    /* persistent backend workspace allocated by gpt_build as `ws.backend` (cuBLASLt etc.) */
    size_t backend_workspace_bytes;
} GptLayout;

/* The layout of a device (static data; never NULL). */
const GptLayout *gpt_layout(GptDevice dev);
/* The layout of a device with its 16-bit dtype bfloat16 (bf16) or float16, and f32 weight
 * gradients (grad_f32, grad_dtype=float32): CUDA's variants; the CPU's layout is f32
 * whatever they say. gpt_layout(dev) is gpt_layout_of(dev, 0, 0). */
const GptLayout *gpt_layout_of(GptDevice dev, int bf16, int grad_f32);

/* Attention kinds: the model's table (model/attention.c) gives each its name, what it saves
 * and its scratch; the values are stable (configs and checkpoints name them). */
typedef enum GptAttention {
    GPT_ATTENTION_NAIVE = 0, /* materialised probabilities (B,NH,T,T); CPU and CUDA */
    GPT_ATTENTION_CUDNN,     /* cuDNN's fused SDPA, O and an f32 log-sum-exp (B,NH,T); CUDA;
                                not yet verified on a GPU */
    GPT_ATTENTION_FLASH,     /* our fused kernels (FlashAttention-2), O and the f32 log-sum-exp
                                (B,NH,T); CPU and CUDA (HS <= GPT_FLASH_CUDA_MAX_HS) */
    GPT_ATTENTION_COUNT
} GptAttention;

/* The kernels of one attention kind: one signature for every kind. Causal self-attention
 * scaled by 1/sqrt(HS); qkv rows are [q | k | v], head h uses channels h*HS..h*HS+HS-1.
 *   saved      what the kind's forward keeps for its backward: naive the softmax
 *              probabilities (B,NH,T,T), act dtype, 0 above the diagonal; flash and cudnn the
 *              f32 log-sum-exp of each row's scaled scores (B,NH,T).
 *   workspace  the kind's scratch for that pass (gpt_attention_workspace_bytes; NULL when it
 *              takes none): flash's backward D = rowsum(dout * out), f32 (B,NH,T); cudnn's
 *              D and its plans' workspace.
 * forward: out (overwritten) = softmax(scale QK^T) V; saved overwritten.
 * backward: dqkv (overwritten); out is the forward's output (read by flash and cudnn); naive
 * clobbers saved (scratch for the score gradient: the caller frees it right after).
 * prepare (optional, cudnn): loads what the kind needs and builds its plans for batches of
 * (B, T): 0, or -1 with the reason (the model then runs flash: gpt_attention_resolve). */
typedef struct GptAttentionKernels {
    void (*forward)(void *out /* (B,T,C) */, void *saved, void *workspace,
                    const void *qkv /* (B,T,3C) */, int64_t B, int64_t T, int64_t C, int64_t NH,
                    void *stream);
    void (*backward)(void *dqkv /* (B,T,3C) */, void *saved, void *workspace,
                     const void *dout /* (B,T,C) */, const void *out /* (B,T,C) */,
                     const void *qkv /* (B,T,3C) */, int64_t B, int64_t T, int64_t C, int64_t NH,
                     void *stream);
    int (*prepare)(int64_t B, int64_t T, int64_t C, int64_t NH, size_t workspace_bytes,
                   char *reason, size_t len);
} GptAttentionKernels;

/* One tensor of the multi-tensor optimizer entries (pointers into the arena, as the
 * per-tensor entries take them). */
typedef struct GptOptimTensor {
    void *param;      /* (n) param dtype */
    float *master;    /* (n) or NULL */
    const void *grad; /* (n) grad dtype */
    float *m, *v;     /* (n) */
    int64_t n;
    float weight_decay;
} GptOptimTensor;

typedef struct GptBackend {
    GptDevice device;
    const char *name; /* "cpu", "cuda" */

    /* --- memory ------------------------------------------------------------------------ */
    void (*memset_zero)(void *dst, size_t bytes, void *stream);
    void (*copy_to_host)(void *dst_host, const void *src, size_t bytes, void *stream);
    void (*copy_from_host)(void *dst, const void *src_host, size_t bytes, void *stream);
    /* Fills an f32 or param-dtype tensor from host f32 values (weights init, model files). */
    void (*params_from_host_f32)(void *dst, ArenaDtype dtype, const float *src_host, int64_t n,
                                 void *stream);
    void (*params_to_host_f32)(float *dst_host, const void *src, ArenaDtype dtype, int64_t n,
                               void *stream);
    void (*synchronize)(void *stream);
    /* Optional (NULL on the CPU): the persistent scratch the backend's libraries use (the
     * arena's `ws.backend`; NULL, 0 withdraws it before it is freed), and the first device
     * error since start-up (returns nonzero and fills msg). */
    void (*workspace_set)(void *ws, size_t bytes);
    int (*last_error)(char *msg, size_t len);

    /* --- layers ------------------------------------------------------------------------ */
    /* out[b,t,:] = wte[inp[b,t],:] + wpe[t,:]. inp: device int32 (B,T). */
    void (*encoder_forward)(void *out /* (B,T,C) */, const int32_t *inp /* (B,T) */,
                            const void *wte /* (Vp,C) */, const void *wpe /* (maxT,C) */, int64_t B,
                            int64_t T, int64_t C, void *stream);
    /* dwte += scatter(dout), dwpe += sum over b (accumulates). */
    void (*encoder_backward)(void *dwte /* (Vp,C) */, void *dwpe /* (maxT,C) */,
                             const void *dout /* (B,T,C) */, const int32_t *inp /* (B,T) */,
                             int64_t B, int64_t T, int64_t C, void *stream);

    /* out = (inp - mean) * rstd * weight + bias; eps 1e-5; bias may be NULL. mean and rstd
     * (f32) are written (recompute writes the same values again). */
    void (*layernorm_forward)(void *out /* (N,C) */, float *mean /* (N) */, float *rstd /* (N) */,
                              const void *inp /* (N,C) */, const void *weight /* (C) */,
                              const void *bias /* (C) or NULL */, int64_t N, int64_t C,
                              void *stream);
    /* dinp += ..., dweight += ..., dbias += ... (all accumulate; dbias may be NULL). */
    void (*layernorm_backward)(void *dinp /* (N,C) */, void *dweight /* (C) */,
                               void *dbias /* (C) or NULL */, const void *dout /* (N,C) */,
                               const void *inp /* (N,C) */, const void *weight /* (C) */,
                               const float *mean /* (N) */, const float *rstd /* (N) */, int64_t N,
                               int64_t C, void *stream);

    /* out = inp @ weight^T + bias (+ residual when not NULL; residual may not alias out unless
     * equal to it). bias may be NULL. */
    void (*matmul_forward)(void *out /* (N,OC) */, const void *inp /* (N,IC) */,
                           const void *weight /* (OC,IC) */, const void *bias /* (OC) or NULL */,
                           const void *residual /* (N,OC) or NULL */, int64_t N, int64_t IC,
                           int64_t OC, void *stream);
    /* dweight += dout^T @ inp, dbias += sum_rows(dout) (accumulate); then dinp = dout @ weight
     * (overwrites; may be NULL to skip). dinp may alias inp: inp is read for dweight first. */
    void (*matmul_backward)(void *dinp /* (N,IC) or NULL */, void *dweight /* (OC,IC) */,
                            void *dbias /* (OC) or NULL */, const void *dout /* (N,OC) */,
                            const void *inp /* (N,IC) */, const void *weight /* (OC,IC) */,
                            int64_t N, int64_t IC, int64_t OC, void *stream);

    /* Causal self-attention, one entry per kind (GptAttention; an entry's functions are NULL
     * where the backend lacks the kind). */
    GptAttentionKernels attention[GPT_ATTENTION_COUNT];
    /* One decoding step (sample's KV cache, model/decode.c): out = the causal attention of the
     * last row's query over every row of qkv: softmax(scale q_{T-1} K^T) V per head, all T
     * keys (the cache holds positions 0..T-1). qkv rows are the cached [q | k | v]; out
     * overwritten. The same arithmetic for every attention kind (inference saves nothing). */
    void (*attention_decode)(void *out /* (C) */, const void *qkv /* (T,3C) */, int64_t T,
                             int64_t C, int64_t NH, void *stream);

    /* gelu: 0 tanh approximation, 1 erf. out overwritten. */
    void (*gelu_forward)(void *out /* (N) */, const void *inp /* (N) */, int64_t N, int gelu,
                         void *stream);
    /* dinp = gelu'(inp) * dout (overwrites; dinp may alias dout). */
    void (*gelu_backward)(void *dinp /* (N) */, const void *inp /* (N) */,
                          const void *dout /* (N) */, int64_t N, int gelu, void *stream);

    /* Fused softmax + cross-entropy over one chunk of rows of logits. Columns >= V take no
     * part (padded vocabulary). losses[i] = -log softmax(logits[i])[targets[i]] (f32,
     * overwritten). When dscale != 0, logits is overwritten in place with
     * dscale * (softmax - onehot(target)), and 0 in the padded columns. */
    void (*crossentropy_forward)(void *logits /* (N,Vp) */, float *losses /* (N) */,
                                 const int32_t *targets /* (N) */, int64_t N, int64_t V, int64_t Vp,
                                 float dscale, void *stream);

    /* --- optimizer --------------------------------------------------------------------- */
    /* *acc += sum(grad^2) (acc: one f32 in backend memory). */
    void (*norm_squared_accumulate)(float *acc /* (1) */, const void *grad /* (n) */, int64_t n,
                                    void *stream);
    /* *out = sum(in) (f32, in backend memory). */
    void (*reduce_sum)(float *out /* (1) */, const float *in /* (n) */, int64_t n, void *stream);
    /* AdamW on one tensor. g = grad * grad_mul; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
     * p -= lr * (m/bc1 / (sqrt(v/bc2) + eps) + wd p), with p the master (f32) when master is
     * not NULL (then param = (param_dtype) master), else param itself (f32). */
    void (*adamw_update)(void *param /* (n) */, float *master /* (n) or NULL */,
                         const void *grad /* (n) */, float *m /* (n) */, float *v /* (n) */,
                         int64_t n, float lr, float beta1, float beta2, float eps,
                         float weight_decay, float grad_mul, float bias_correction1,
                         float bias_correction2, void *stream);
    /* Optional (NULL: the caller loops over the per-tensor entries above; the CPU has none):
     * the same over a list of tensors in few launches. norm_squared_multi: *acc += sum over
     * the list of sum(grad^2), one reduction (a fixed order: the same bits for the same
     * list). adamw_update_multi: adamw_update on every tensor of the list, each element
     * exactly as adamw_update computes it, with the tensor's own weight_decay. */
    void (*norm_squared_multi)(float *acc /* (1) */, const GptOptimTensor *list, int n,
                               void *stream);
    void (*adamw_update_multi)(const GptOptimTensor *list, int n, float lr, float beta1,
                               float beta2, float eps, float grad_mul, float bias_correction1,
                               float bias_correction2, void *stream);
} GptBackend;

/* Largest head size the CUDA flash kernels take: head size 64 runs on tensor cores (64-row
 * tiles, 4 warps, mma.m16n8k16); smaller ones run the plain kernels (one query or key row
 * per thread, held in registers and shared memory at compile-time widths 16, 32, 64). */
#define GPT_FLASH_CUDA_MAX_HS 64

/* Bytes of the scratch flash's backward needs (the same on every device: f32 (B,NH,T)).
 * Plain arithmetic, so a plan needs no backend. */
size_t gpt_flash_workspace_bytes(int64_t B, int64_t T, int64_t NH);

/* Bytes of the workspace attention=cudnn takes in forward and in backward: D (f32 (B,NH,T),
 * 256-aligned) and an allowance for the execution plans' own workspace of an f32 (B,NH,T,HS)
 * dQ accumulator, what FlashAttention-2's backward needs. DERIVED, NOT MEASURED: cuDNN reports
 * its figure only on a GPU; when a plan asks for more, the run falls back to flash. */
size_t gpt_cudnn_workspace_bytes(int64_t B, int64_t T, int64_t C, int64_t NH);

/* The plan backend (model/plan_backend.c): every kernel does nothing and copies to the host
 * write zeros; it has every attention kind. gpt_build uses it for a plan arena on any device,
 * so a plan runs the same code as a run, with no kernel and no device. Never NULL. */
const GptBackend *gpt_backend_plan(void);
/* The CPU kernels (model/cpu/). Never NULL. */
const GptBackend *gpt_backend_cpu(void);
/* The CUDA kernels (model/cuda/), or NULL in a build without CUDA (device_nocuda.c). */
const GptBackend *gpt_backend_cuda(void);
/* The backend of a device, or NULL when this build or machine has none. */
const GptBackend *gpt_backend(GptDevice dev);
/* The backend whose kernels take the layout's dtypes (CUDA: f16 or bf16 storage, 16-bit or
 * f32 weight gradients; the CPU: f32), or NULL as gpt_backend. */
const GptBackend *gpt_backend_for(const GptLayout *lay);
/* The CUDA kernels for bf16 (else f16) storage and f32 (else 16-bit) weight gradients
 * (model/cuda/), or NULL without CUDA; gpt_backend_cuda() is gpt_backend_cuda_dtypes(0, 0). */
const GptBackend *gpt_backend_cuda_dtypes(int bf16, int grad_f32);

/* CPU threads (n <= 0: all cores): OpenMP runs n threads; OpenBLAS runs single-threaded
 * inside them (the CPU matmul splits each sgemm over the OpenMP threads). */
void gpt_set_threads(int n);

#endif
