/* gpu_probe.cu: the first thing gpu_check.sh runs on a GPU machine. Prints the CUDA driver and
 * runtime versions, then each device (name, compute capability, memory, multiprocessors) and
 * launches one small kernel on device 0 whose result is checked. Run under compute-sanitizer,
 * it tells whether the sanitizer accepts the device (some machines refuse it).
 *
 * Exit status: 0 when the kernel ran and its result is right; 1 when there is no usable device
 * (the reason printed: no driver, a driver older than the runtime with both versions, no
 * device); 2 when the kernel failed or gave a wrong result.
 *
 * It allocates no device memory (the result goes to a __device__ variable), so the project's
 * rule that every device byte comes from the arena holds here too. */
#include <cuda_runtime.h>
#include <stdio.h>

#define PROBE_N 1024

__device__ unsigned long long probe_sum;

__global__ void probe_kernel(int n) {
    __shared__ unsigned long long part[PROBE_N];
    int i = threadIdx.x;
    part[i] = (unsigned long long)i;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (i < s)
            part[i] += part[i + s];
        __syncthreads();
    }
    if (i == 0)
        probe_sum = part[0];
}

static void version_text(int v, char *buf, size_t len) {
    if (v <= 0)
        snprintf(buf, len, "none");
    else
        snprintf(buf, len, "%d.%d", v / 1000, (v % 1000) / 10);
}

int main(void) {
    int drv = 0, rt = 0;
    cudaError_t e_drv = cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    char sd[32], sr[32];
    version_text(e_drv == cudaSuccess ? drv : 0, sd, sizeof sd);
    version_text(rt, sr, sizeof sr);
    printf("gpu_probe: CUDA driver supports %s, runtime %s\n", sd, sr);
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        printf("gpu_probe: no usable CUDA device: %s\n",
               e != cudaSuccess ? cudaGetErrorString(e) : "device count is 0");
        if (drv > 0 && drv < rt)
            printf("gpu_probe: the driver (CUDA %s) is older than this build's runtime (CUDA %s): "
                   "update the NVIDIA driver (CUDA 13 needs 580 or newer)\n",
                   sd, sr);
        return 1;
    }
    for (int d = 0; d < count; d++) {
        cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, d) != cudaSuccess)
            continue;
        printf("gpu_probe: device %d: %s, sm_%d%d, %.0f MiB, %d multiprocessors\n", d, p.name,
               p.major, p.minor, (double)p.totalGlobalMem / (1024.0 * 1024.0),
               p.multiProcessorCount);
    }
    probe_kernel<<<1, PROBE_N>>>(PROBE_N);
    e = cudaGetLastError();
    if (e == cudaSuccess)
        e = cudaDeviceSynchronize();
    unsigned long long got = 0;
    if (e == cudaSuccess)
        e = cudaMemcpyFromSymbol(&got, probe_sum, sizeof got);
    if (e != cudaSuccess) {
        printf("gpu_probe: kernel on device 0 failed: %s\n", cudaGetErrorString(e));
        return 2;
    }
    unsigned long long want = (unsigned long long)PROBE_N * (PROBE_N - 1) / 2;
    if (got != want) {
        printf("gpu_probe: kernel on device 0 gave %llu, expected %llu\n", got, want);
        return 2;
    }
    printf("gpu_probe: kernel on device 0: ok\n");
    return 0;
}
