/* device.h: the device seam: what train/ needs from the GPU, in one header (never a header of
 * model/cuda/), implemented by model/cuda/device_mem.c, or by model/device_nocuda.c in a build
 * without CUDA. Device memory outside the arena, measured, so the GPU memory report
 * reconciles: what was in use before our CUDA context, what the context and the library
 * handles (cuBLASLt, cuBLAS) took, what the arena reservation took, and what is left
 * unaccounted (shown, never hidden). Also the GPU's name, driver and peak f16 tensor
 * throughput (for MFU).
 *
 * Sources: cudaMemGetInfo (device-wide: total - free) and NVML (libnvidia-ml.so.1, loaded at
 * run time with dlopen, so the binary runs without it): device-wide used memory, and the
 * per-process usage of this pid (nvmlDeviceGetComputeRunningProcesses). Inside a container
 * NVML may not see our pid; the per-process column is then "n/a". Under WDDM (Windows, WSL2)
 * NVML lists the pid with its memory "not available" (all bits set): that is "unknown", never
 * taken as a number.
 *
 * Use, in this order:
 *   device_mem_sample(&m, DEVICE_MEM_BEFORE_CONTEXT)   before any CUDA context exists (NVML)
 *   gpt_backend_cuda()                                 context + cuBLASLt + cuBLAS handles
 *   device_mem_sample(&m, DEVICE_MEM_AFTER_CONTEXT)
 *   arena_init_with(arena_device_ops(), ...)           the one reservation
 *   device_mem_set_reservation(&m, bytes); device_mem_sample(&m, DEVICE_MEM_AFTER_RESERVATION)
 *   ... train ...
 *   device_mem_sample(&m, DEVICE_MEM_NOW); device_mem_report(&m, arena, stdout)
 *
 * In a build without CUDA (device_nocuda.c) sampling fails with a message and the report
 * says there is no GPU. Not here: the arena's own accounting (alloc/report.c). */
#ifndef ARENAGPT_DEVICE_H
#define ARENAGPT_DEVICE_H

#include <stddef.h>
#include <stdio.h>

#include "../alloc/arena.h"
#include "../alloc/base.h"

typedef enum DeviceMemStage {
    DEVICE_MEM_BEFORE_CONTEXT = 0,
    DEVICE_MEM_AFTER_CONTEXT,
    DEVICE_MEM_AFTER_RESERVATION,
    DEVICE_MEM_NOW,
    DEVICE_MEM_STAGE_COUNT
} DeviceMemStage;

typedef struct DeviceMemSample {
    int taken;
    int have_cuda;          /* cuda_used_bytes valid (not before the context) */
    int have_nvml;          /* nvml_used_bytes valid */
    int have_proc;          /* proc_bytes valid: NVML listed this pid with a number */
    int proc_unknown;       /* NVML listed this pid, its memory "not available" (WDDM/WSL2) */
    size_t cuda_used_bytes; /* cudaMemGetInfo: total - free, all processes */
    size_t nvml_used_bytes; /* NVML device memory used, all processes */
    size_t proc_bytes;      /* NVML: this process */
} DeviceMemSample;

typedef struct DeviceMem {
    int device;             /* CUDA ordinal */
    char name[96];          /* "NVIDIA H100 80GB HBM3", "" unknown */
    char driver[32];        /* "550.54.15", "n/a" without NVML */
    char nvml_status[128];  /* why NVML is missing, or "ok" */
    int cc_major, cc_minor; /* compute capability (after the context) */
    size_t total_bytes;
    double peak_tflops_f16;   /* dense f16 tensor, f32 accumulate; 0 = unknown */
    size_t reservation_bytes; /* the arena's reservation */
    DeviceMemSample s[DEVICE_MEM_STAGE_COUNT];
} DeviceMem;

/* Takes one sample. DEVICE_MEM_BEFORE_CONTEXT uses NVML only (and zeroes m first); it also
 * fills name and driver when NVML is there. Later stages fill name, compute capability and
 * the peak throughput from cudaGetDeviceProperties. Returns -1 with err only when no source
 * at all could be read (no GPU, or nothing but a missing NVML before the context). */
int device_mem_sample(DeviceMem *m, DeviceMemStage stage, Err *err);
void device_mem_set_reservation(DeviceMem *m, size_t bytes);

/* The reconciliation table (MiB): before / context + libraries / reservation / arena peak by
 * category / now / unaccounted. arena may be NULL (then no category lines). Returns 0, or -1
 * on a write error. */
int device_mem_report(const DeviceMem *m, const Arena *arena, FILE *f);

/* Dense f16 tensor-core TFLOP/s with f32 accumulation for a GPU name (as CUDA/NVML spell it),
 * 0 when not in the table (MFU is then n/a). */
double device_mem_peak_tflops(const char *gpu_name);

/* Unloads NVML (safe to call when it was never loaded). */
void device_mem_close(void);

#endif
