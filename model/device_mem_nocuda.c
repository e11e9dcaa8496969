/* device_mem_nocuda.c: the device-memory measurements (model/cuda/device_mem.h) in a build
 * without CUDA: there is no GPU to measure, so sampling fails with a message, the report says
 * so, and no GPU has a known peak throughput (MFU is n/a). */
#include <string.h>

#include "cuda/device_mem.h"

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
