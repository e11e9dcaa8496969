/* backend_cuda_nocuda.c: stands in for the CUDA backend in builds without CUDA: there are no
 * CUDA kernels, so gpt_backend_cuda() and gpt_backend_cuda_grad_f32() are NULL (plans of the
 * CUDA layout still work). */
#include "backend.h"

const GptBackend *gpt_backend_cuda(void) { return NULL; }
const GptBackend *gpt_backend_cuda_grad_f32(void) { return NULL; }
