/* cpu_kernels.h: the CPU reference kernels, fp32, OpenMP over rows/heads/channels, OpenBLAS
 * sgemm for the Linear layers. This is the readable specification of every layer; the
 * backend table (cpu_backend.c) wraps these with the `void *` signatures of backend.h.
 *
 * Determinism: for a fixed thread count every kernel gives the same bits for the same
 * inputs (static schedules; reductions over rows run per column block, never with atomics),
 * which is what makes recompute bit-identical to no recompute.
 *
 * Argument order (STYLE.md): outputs, saved-for-backward, inputs, weights, sizes.
 * Shape legend: B batch, T time, C channels, NH heads, HS head size, V vocab, Vp padded vocab,
 * N rows, IC/OC input/output channels. */
#ifndef ARENAGPT_CPU_KERNELS_H
#define ARENAGPT_CPU_KERNELS_H

#include <stdint.h>

#define CPU_LAYERNORM_EPS 1e-5f

/* out[b,t,:] = wte[inp[b,t],:] + wpe[t,:] (overwrites). */
void cpu_encoder_forward(float *out /* (B,T,C) */, const int32_t *inp /* (B,T) */,
                         const float *wte /* (Vp,C) */, const float *wpe /* (maxT,C) */, int64_t B,
                         int64_t T, int64_t C);
/* dwte[inp[b,t],:] += dout[b,t,:]; dwpe[t,:] += sum_b dout[b,t,:] (accumulates). */
void cpu_encoder_backward(float *dwte /* (Vp,C) */, float *dwpe /* (maxT,C) */,
                          const float *dout /* (B,T,C) */, const int32_t *inp /* (B,T) */,
                          int64_t B, int64_t T, int64_t C);

/* out = (inp - mean) * rstd * weight + bias (overwrites out, mean, rstd); bias may be NULL. */
void cpu_layernorm_forward(float *out /* (N,C) */, float *mean /* (N) */, float *rstd /* (N) */,
                           const float *inp /* (N,C) */, const float *weight /* (C) */,
                           const float *bias /* (C) or NULL */, int64_t N, int64_t C);
/* dinp += , dweight += , dbias += (accumulate; dbias may be NULL). */
void cpu_layernorm_backward(float *dinp /* (N,C) */, float *dweight /* (C) */,
                            float *dbias /* (C) or NULL */, const float *dout /* (N,C) */,
                            const float *inp /* (N,C) */, const float *weight /* (C) */,
                            const float *mean /* (N) */, const float *rstd /* (N) */, int64_t N,
                            int64_t C);

/* out = inp @ weight^T + bias (+ residual) (overwrites); bias, residual may be NULL;
 * residual may equal out. */
void cpu_matmul_forward(float *out /* (N,OC) */, const float *inp /* (N,IC) */,
                        const float *weight /* (OC,IC) */, const float *bias /* (OC) or NULL */,
                        const float *residual /* (N,OC) or NULL */, int64_t N, int64_t IC,
                        int64_t OC);
/* dweight += dout^T @ inp; dbias += column sums of dout (accumulate); then dinp = dout @ weight
 * (overwrites; skipped when NULL). dinp may alias inp (inp is read first). */
void cpu_matmul_backward(float *dinp /* (N,IC) or NULL */, float *dweight /* (OC,IC) */,
                         float *dbias /* (OC) or NULL */, const float *dout /* (N,OC) */,
                         const float *inp /* (N,IC) */, const float *weight /* (OC,IC) */,
                         int64_t N, int64_t IC, int64_t OC);

/* Causal attention; qkv rows are [q | k | v], head h uses channels h*HS..h*HS+HS-1 of each.
 * att (B,NH,T,T) gets the probabilities (0 above the diagonal); out overwritten. */
void cpu_attention_forward(float *out /* (B,T,C) */, float *att /* (B,NH,T,T) */,
                           const float *qkv /* (B,T,3C) */, int64_t B, int64_t T, int64_t C,
                           int64_t NH);
/* dqkv = (overwrites). att is clobbered: row by row it is replaced by the score gradient. */
void cpu_attention_backward(float *dqkv /* (B,T,3C) */, float *att /* (B,NH,T,T) */,
                            const float *dout /* (B,T,C) */, const float *qkv /* (B,T,3C) */,
                            int64_t B, int64_t T, int64_t C, int64_t NH);

/* Fused causal attention (attention=flash, cpu_flash.c): out = softmax(scale q k^T) v per
 * head (overwrites), lse[b,h,t] = log sum_j exp(scale q_t . k_j) over j <= t (f32, overwrites;
 * saved for backward). The probabilities are never stored. */
void cpu_flash_attention_forward(float *out /* (B,T,C) */, float *lse /* (B,NH,T) */,
                                 const float *qkv /* (B,T,3C) */, int64_t B, int64_t T, int64_t C,
                                 int64_t NH);
/* dqkv = (overwrites). workspace: scratch, f32 (B,NH,T) (gets rowsum(dout * out)). out and lse
 * are the forward's. */
void cpu_flash_attention_backward(float *dqkv /* (B,T,3C) */, float *workspace /* (B,NH,T) */,
                                  const float *dout /* (B,T,C) */, const float *out /* (B,T,C) */,
                                  const float *lse /* (B,NH,T) */, const float *qkv /* (B,T,3C) */,
                                  int64_t B, int64_t T, int64_t C, int64_t NH);

/* gelu 0: tanh approximation, 1: erf. out overwritten. */
void cpu_gelu_forward(float *out /* (N) */, const float *inp /* (N) */, int64_t N, int gelu);
/* dinp = gelu'(inp) * dout (overwrites; dinp may equal dout). */
void cpu_gelu_backward(float *dinp /* (N) */, const float *inp /* (N) */,
                       const float *dout /* (N) */, int64_t N, int gelu);

/* losses[i] = -log softmax(logits[i, :V])[targets[i]] (overwrites). When dscale != 0 the
 * logits are replaced by dscale * (softmax - onehot) and the padded columns by 0. */
void cpu_crossentropy_forward(float *logits /* (N,Vp) */, float *losses /* (N) */,
                              const int32_t *targets /* (N) */, int64_t N, int64_t V, int64_t Vp,
                              float dscale);

/* *acc += sum(x^2) (summed in double). */
void cpu_norm_squared_accumulate(float *acc /* (1) */, const float *x /* (n) */, int64_t n);
/* *out = sum(x) (summed in double). */
void cpu_reduce_sum(float *out /* (1) */, const float *x /* (n) */, int64_t n);
/* AdamW on one f32 tensor (see backend.h): param updated in place, m and v too. */
void cpu_adamw_update(float *param /* (n) */, const float *grad /* (n) */, float *m /* (n) */,
                      float *v /* (n) */, int64_t n, float lr, float beta1, float beta2, float eps,
                      float weight_decay, float grad_mul, float bias_correction1,
                      float bias_correction2);

#endif
