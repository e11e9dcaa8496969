/* cuda_attention_bf16.cu: cuda_attention.cu compiled for the bfloat16 layout (floatX = __nv_bfloat16,
 * namespace x_bf16; cuda_common.cuh). */
#define CUDA_STORAGE_BF16
#include "cuda_attention.cu"
