/* arena_cuda.cu: the device backing of the arena: one cudaMalloc'd reservation, released with
 * cudaFree; and the pinned host backing (optimizer_offload's host arena): one cudaHostAlloc'd
 * page-locked reservation, released with cudaFreeHost. This is the only place in the project
 * that calls cudaMalloc or cudaHostAlloc (scripts/check_no_malloc.sh greps for others).
 * Placement, statistics and reports are the shared C code in arena.c. */
#include <cuda_runtime.h>

extern "C" {
#include "arena.h"
}

static void *device_reserve(size_t bytes, Err *err) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
        size_t free_b = 0, total_b = 0;
        cudaGetLastError(); /* clear the sticky error of the failed allocation */
        cudaMemGetInfo(&free_b, &total_b);
        err_set(err,
                "cudaMalloc of the arena reservation (%zu bytes) failed: %s (device free %zu "
                "of %zu bytes)",
                bytes, cudaGetErrorString(e), free_b, total_b);
        return NULL;
    }
    return p;
}

static void device_release(void *base) {
    cudaError_t e = cudaFree(base);
    if (e != cudaSuccess)
        fprintf(stderr, "arena: cudaFree of the reservation failed: %s\n", cudaGetErrorString(e));
}

/* the fresh-tensor fill of ASan builds (arena.h); a failure is reported, not fatal */
static void device_fill(void *p, int byte, size_t n) {
    cudaError_t e = cudaMemset(p, byte, n);
    if (e != cudaSuccess)
        fprintf(stderr, "arena: cudaMemset of a fresh tensor failed: %s\n", cudaGetErrorString(e));
}

static const ArenaBackingOps device_ops = {ARENA_BACKING_DEVICE, device_reserve, device_release,
                                           device_fill};

extern "C" const ArenaBackingOps *arena_device_ops(void) { return &device_ops; }

static void *pinned_reserve(size_t bytes, Err *err) {
    void *p = NULL;
    cudaError_t e = cudaHostAlloc(&p, bytes, cudaHostAllocDefault);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* a refused host allocation is not a device fault */
        err_set(err, "cudaHostAlloc of the pinned host arena reservation (%zu bytes) failed: %s",
                bytes, cudaGetErrorString(e));
        return NULL;
    }
    return p;
}

static void pinned_release(void *base) {
    cudaError_t e = cudaFreeHost(base);
    if (e != cudaSuccess)
        fprintf(stderr, "arena: cudaFreeHost of the pinned reservation failed: %s\n",
                cudaGetErrorString(e));
}

/* pinned memory is host memory: the ASan fill is a plain memset (ops.fill NULL) */
static const ArenaBackingOps pinned_ops = {ARENA_BACKING_PINNED, pinned_reserve, pinned_release,
                                           NULL};

extern "C" const ArenaBackingOps *arena_pinned_ops(void) { return &pinned_ops; }
