/* gpu_table.h: what the project knows about GPUs it plans for, as data, in every binary (CUDA
 * build or not): the card's memory, the throughput MFU divides by, and the memory a CUDA
 * process needs outside the arena (context + library handles) that `mem --fit` and the memory
 * page set aside. One table for the whole project: train's MFU, mem's --fit/--reserve and the
 * memory page all read it; nothing else keeps GPU figures.
 *
 * Every figure carries its source. A figure that a GPU run of this project has measured
 * replaces the estimate it stood for, with the results file named as its source.
 *
 * Not here: measuring a device (model/cuda/device_mem.c does, and uses gpu_table_match for
 * the peak of the card it finds). */
#ifndef ARENAGPT_GPU_TABLE_H
#define ARENAGPT_GPU_TABLE_H

#include <stddef.h>

typedef struct GpuSpec {
    const char *key;  /* the `gpu` config key's value: "rtx4070", "h100-sxm", ... */
    const char *name; /* as CUDA / NVML spell the card: "NVIDIA GeForce RTX 4070" */
    size_t memory_bytes;
    const char *memory_source;
    /* dense f16 tensor-core TFLOP/s with f32 accumulation (what our GEMMs run); 0 unknown */
    double peak_tflops_f16;
    const char *peak_source;
    /* bytes a CUDA process holds on the card outside the arena: context, loaded kernels,
     * cuBLAS/cuBLASLt handles */
    size_t context_bytes;
    const char *context_source;
    int context_measured; /* 1: measured by a GPU run of this project; 0: an estimate */
} GpuSpec;

/* The entry for a `gpu` key, or NULL. */
const GpuSpec *gpu_table_find(const char *key);
/* The entry whose name matches a device name as CUDA or NVML reports it, or NULL. */
const GpuSpec *gpu_table_match(const char *device_name);
/* Entries in table order, for --help and reports: *n gets the count. */
const GpuSpec *gpu_table_all(size_t *n);
/* "rtx4070, rtx4090, ..." into buf (for error messages); returns buf. */
char *gpu_table_keys(char *buf, size_t len);

#endif
