/* cpu_kernels.h: the CPU reference kernels, fp32, OpenMP over rows/heads/channels, OpenBLAS
 * sgemm for the Linear layers. This is the readable specification of every layer.
 *
 * Each kernel has exactly the signature of its GptBackend entry (backend.h), so the CPU
 * table (cpu_backend.c) holds the kernels themselves: `void *` tensors hold the layout's
 * dtype, which on the CPU is always f32 (each kernel names them as `float *` on entry);
 * `stream` is ignored. Only the AdamW update has an adapter (the CPU layout has no master).
 *
 * Determinism: for a fixed thread count every kernel gives the same bits for the same
 * inputs (static schedules; reductions over rows run per column block, never with atomics),
 * which is what makes recompute bit-identical to no recompute.
 *
 * Argument order (docs/ARCHITECTURE.md): outputs, saved-for-backward, inputs, weights,
 * sizes, stream. Shape legend: B batch, T time, C channels, NH heads, HS head size, V vocab,
 * Vp padded vocab, N rows, IC/OC input/output channels. */
#ifndef ARENAGPT_CPU_KERNELS_H
#define ARENAGPT_CPU_KERNELS_H

#include <stdint.h>

#define CPU_LAYERNORM_EPS 1e-5f

/* out[b,t,:] = wte[inp[b,t],:] + wpe[t,:] (overwrites). */
void cpu_encoder_forward(void *out /* (B,T,C) */, const int32_t *inp /* (B,T) */,
                         const void *wte /* (Vp,C) */, const void *wpe /* (maxT,C) */, int64_t B,
                         int64_t T, int64_t C, void *stream);
/* dwte[inp[b,t],:] += dout[b,t,:]; dwpe[t,:] += sum_b dout[b,t,:] (accumulates). */
void cpu_encoder_backward(void *dwte /* (Vp,C) */, void *dwpe /* (maxT,C) */,
                          const void *dout /* (B,T,C) */, const int32_t *inp /* (B,T) */, int64_t B,
                          int64_t T, int64_t C, void *stream);

/* out = (inp - mean) * rstd * weight + bias (overwrites out, mean, rstd); bias may be NULL. */
void cpu_layernorm_forward(void *out /* (N,C) */, float *mean /* (N) */, float *rstd /* (N) */,
                           const void *inp /* (N,C) */, const void *weight /* (C) */,
                           const void *bias /* (C) or NULL */, int64_t N, int64_t C, void *stream);
/* dinp += , dweight += , dbias += (accumulate; dbias may be NULL). */
void cpu_layernorm_backward(void *dinp /* (N,C) */, void *dweight /* (C) */,
                            void *dbias /* (C) or NULL */, const void *dout /* (N,C) */,
                            const void *inp /* (N,C) */, const void *weight /* (C) */,
                            const float *mean /* (N) */, const float *rstd /* (N) */, int64_t N,
                            int64_t C, void *stream);

/* out = inp @ weight^T + bias (+ residual) (overwrites); bias, residual may be NULL;
 * residual may equal out. */
void cpu_matmul_forward(void *out /* (N,OC) */, const void *inp /* (N,IC) */,
                        const void *weight /* (OC,IC) */, const void *bias /* (OC) or NULL */,
                        const void *residual /* (N,OC) or NULL */, int64_t N, int64_t IC,
                        int64_t OC, void *stream);
/* dweight += dout^T @ inp; dbias += column sums of dout (accumulate); then dinp = dout @ weight
 * (overwrites; skipped when NULL). dinp may alias inp (inp is read first). */
void cpu_matmul_backward(void *dinp /* (N,IC) or NULL */, void *dweight /* (OC,IC) */,
                         void *dbias /* (OC) or NULL */, const void *dout /* (N,OC) */,
                         const void *inp /* (N,IC) */, const void *weight /* (OC,IC) */, int64_t N,
                         int64_t IC, int64_t OC, void *stream);

/* Causal attention (backend.h's GptAttentionKernels: one signature for every kind); qkv rows
 * are [q | k | v], head h uses channels h*HS..h*HS+HS-1 of each.
 * Naive: saved = att (B,NH,T,T) gets the probabilities (0 above the diagonal); out
 * overwritten; no workspace. */
void cpu_attention_forward(void *out /* (B,T,C) */, void *att /* (B,NH,T,T) */, void *workspace,
                           const void *qkv /* (B,T,3C) */, int64_t B, int64_t T, int64_t C,
                           int64_t NH, void *stream);
/* dqkv = (overwrites). att is clobbered: row by row it is replaced by the score gradient.
 * out and workspace are not read. */
void cpu_attention_backward(void *dqkv /* (B,T,3C) */, void *att /* (B,NH,T,T) */, void *workspace,
                            const void *dout /* (B,T,C) */, const void *out,
                            const void *qkv /* (B,T,3C) */, int64_t B, int64_t T, int64_t C,
                            int64_t NH, void *stream);

/* One decoding step: out = attention of the last row's query over rows 0..T-1 of qkv
 * (backend.h's attention_decode). out overwritten. */
void cpu_attention_decode(void *out /* (C) */, const void *qkv /* (T,3C) */, int64_t T, int64_t C,
                          int64_t NH, void *stream);

/* Fused causal attention (attention=flash, cpu_flash.c): out = softmax(scale q k^T) v per
 * head (overwrites), saved = lse[b,h,t] = log sum_j exp(scale q_t . k_j) over j <= t (f32,
 * overwrites; kept for backward). The probabilities are never stored. No forward workspace. */
void cpu_flash_attention_forward(void *out /* (B,T,C) */, void *lse /* (B,NH,T) f32 */,
                                 void *workspace, const void *qkv /* (B,T,3C) */, int64_t B,
                                 int64_t T, int64_t C, int64_t NH, void *stream);
/* dqkv = (overwrites). workspace: scratch, f32 (B,NH,T) (gets rowsum(dout * out)). out and lse
 * are the forward's. */
void cpu_flash_attention_backward(void *dqkv /* (B,T,3C) */, void *lse /* (B,NH,T) f32 */,
                                  void *workspace /* (B,NH,T) f32 */,
                                  const void *dout /* (B,T,C) */, const void *out /* (B,T,C) */,
                                  const void *qkv /* (B,T,3C) */, int64_t B, int64_t T, int64_t C,
                                  int64_t NH, void *stream);

/* gelu 0: tanh approximation, 1: erf. out overwritten. */
void cpu_gelu_forward(void *out /* (N) */, const void *inp /* (N) */, int64_t N, int gelu,
                      void *stream);
/* dinp = gelu'(inp) * dout (overwrites; dinp may equal dout). */
void cpu_gelu_backward(void *dinp /* (N) */, const void *inp /* (N) */, const void *dout /* (N) */,
                       int64_t N, int gelu, void *stream);

/* losses[i] = -log softmax(logits[i, :V])[targets[i]] (overwrites). When dscale != 0 the
 * logits are replaced by dscale * (softmax - onehot) and the padded columns by 0. */
void cpu_crossentropy_forward(void *logits /* (N,Vp) */, float *losses /* (N) */,
                              const int32_t *targets /* (N) */, int64_t N, int64_t V, int64_t Vp,
                              float dscale, void *stream);

/* *acc += sum(x^2) (summed in double). */
void cpu_norm_squared_accumulate(float *acc /* (1) */, const void *x /* (n) */, int64_t n,
                                 void *stream);
/* *out = sum(x) (summed in double). */
void cpu_reduce_sum(float *out /* (1) */, const float *x /* (n) */, int64_t n, void *stream);
/* AdamW on one f32 tensor (see backend.h): param updated in place, m and v too. No master
 * copy (the CPU layout has none): the backend table's entry adapts its signature. */
void cpu_adamw_update(float *param /* (n) */, const float *grad /* (n) */, float *m /* (n) */,
                      float *v /* (n) */, int64_t n, float lr, float beta1, float beta2, float eps,
                      float weight_decay, float grad_mul, float bias_correction1,
                      float bias_correction2);

#endif
