/* spill.cu: kernels that make kernel-audit fail, for its own test (tests/kernel_audit.sh).
 * Never part of a build. audit_spill_kernel indexes a local array by a runtime value, which
 * puts the array in local memory (a stack frame); audit_scalar_kernel reads one 16-bit value
 * per access (no 128-bit load) and is listed as a kernel that must vectorise. */
#include <cuda_fp16.h>

__global__ void audit_spill_kernel(float *out, const int *idx, int n) {
    float buf[256];
    for (int i = 0; i < 256; i++)
        buf[i] = out[i] * (float)i;
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t < n)
        out[t] = buf[idx[t] & 255];
}

__global__ void audit_scalar_kernel(__half *out, const __half *in, int n) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t < n)
        out[t] = __hadd(in[t], in[t]);
}
