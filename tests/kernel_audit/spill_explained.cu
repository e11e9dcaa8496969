/* spill_explained.cu: the spilling kernel of spill.cu with its reason written above it, which
 * kernel-audit accepts (tests/kernel_audit.sh); and a kernel that reads 128 bits per access,
 * which passes the vector-load check. Never part of a build. */
#include <cuda_fp16.h>

/* kernel-audit: spills: the audit's own test needs a kernel with a stack frame */
__global__ void audit_spill_kernel(float *out, const int *idx, int n) {
    float buf[256];
    for (int i = 0; i < 256; i++)
        buf[i] = out[i] * (float)i;
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t < n)
        out[t] = buf[idx[t] & 255];
}

__global__ void audit_vector_kernel(int4 *out, const int4 *in, int n) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t < n) {
        int4 v = in[t];
        v.x += 1;
        out[t] = v;
    }
}
