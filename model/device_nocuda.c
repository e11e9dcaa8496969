/* device_nocuda.c: every CUDA entry point the shared code calls, in a build without CUDA (the
 * Makefile links this file in place of alloc/arena_cuda.cu and model/cuda/; the one place for
 * the no-CUDA stand-ins):
 *   - the device arena backing and the pinned host backing: there are none
 *     (arena_device_ops() and arena_pinned_ops() are NULL);
 *   - the CUDA backends: none (gpt_backend_cuda() is NULL; plans of the CUDA layout still
 *     work, on the plan backend);
 *   - the device-memory measurements (device.h): there is no GPU to measure, so sampling fails
 *     with a message, the report says so, and no GPU has a known peak throughput (MFU n/a). */
#include <string.h>

#include "../alloc/arena.h"
#include "backend.h"
#include "device.h"

const ArenaBackingOps *arena_device_ops(void) { return NULL; }
const ArenaBackingOps *arena_pinned_ops(void) { return NULL; }

const GptBackend *gpt_backend_cuda(void) { return NULL; }
const GptBackend *gpt_backend_cuda_dtypes(int bf16, int grad_f32) {
    (void)bf16;
    (void)grad_f32;
    return NULL;
}

int device_mem_sample(DeviceMem *m, DeviceMemStage stage, Err *err) {
    if (stage == DEVICE_MEM_BEFORE_CONTEXT)
        memset(m, 0, sizeof(*m));
    return err_set(err, "device memory: this build has no CUDA (rebuild with nvcc on PATH)");
}

void device_mem_set_reservation(DeviceMem *m, size_t bytes) { m->reservation_bytes = bytes; }

int device_mem_report(const DeviceMem *m, const Arena *arena, FILE *f) {
    (void)m;
    (void)arena;
    return fprintf(f, "device memory: n/a (built without CUDA)\n") < 0 ? -1 : 0;
}

double device_mem_peak_tflops(const char *gpu_name) {
    (void)gpu_name;
    return 0.0;
}

void device_mem_close(void) {}
