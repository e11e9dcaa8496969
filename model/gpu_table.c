/* gpu_table.c: the GPU table (gpu_table.h). Entries are matched against device names by
 * substrings; a more specific name comes before the one it contains ("RTX 4070 Ti" before
 * "RTX 4070"), and a card we have no figures for is listed with key NULL so it matches
 * nothing rather than its smaller sibling. */
#include "gpu_table.h"

#include <stdio.h>
#include <string.h>

#define GIB ((size_t)1 << 30)
#define MIB ((size_t)1 << 20)

/* Context + libraries on a card that no GPU run of ours has measured yet: an estimate to plan
 * with, not a measurement. A CUDA 12/13 process with lazy module loading, cuBLAS and
 * cuBLASLt handles is commonly reported at a few hundred MiB in nvidia-smi; 1 GiB leaves room
 * for the driver's per-process reservations on top. Replaced per card by the measured
 * "context + libraries" line of `train`'s reconciliation (docs/results/gpu-*) once measured. */
#define CONTEXT_ESTIMATE (1 * GIB)
#define CONTEXT_ESTIMATE_SOURCE                                                                    \
    "estimate, not measured on this card: 1 GiB for the CUDA context and cuBLAS/cuBLASLt "         \
    "handles (a few hundred MiB is typical with lazy loading; the rest is headroom)"

typedef struct GpuRow {
    const char *match; /* substring of the device name */
    const char *also;  /* a second substring required, or NULL */
    GpuSpec spec;
} GpuRow;

static const GpuRow ROWS[] = {
    {"H200",
     NULL,
     {"h200", "NVIDIA H200", 141 * (size_t)1000 * 1000 * 1000, "NVIDIA H200 data sheet: 141 GB",
      989.4, "NVIDIA H200 SXM data sheet: 1,979 TFLOP/s f16 with sparsity, dense half",
      CONTEXT_ESTIMATE, CONTEXT_ESTIMATE_SOURCE, 0}},
    {"H100",
     "PCIe",
     {"h100-pcie", "NVIDIA H100 PCIe", 80 * GIB, "NVIDIA H100 data sheet: 80 GB", 756.5,
      "NVIDIA H100 PCIe data sheet: 1,513 TFLOP/s f16 with sparsity, dense half", CONTEXT_ESTIMATE,
      CONTEXT_ESTIMATE_SOURCE, 0}},
    {"H100",
     "NVL",
     {"h100-nvl", "NVIDIA H100 NVL", 94 * (size_t)1000 * 1000 * 1000,
      "NVIDIA H100 NVL data sheet: 94 GB", 835.0,
      "NVIDIA H100 NVL data sheet: 1,671 TFLOP/s f16 with sparsity, dense half", CONTEXT_ESTIMATE,
      CONTEXT_ESTIMATE_SOURCE, 0}},
    {"H100",
     NULL,
     {"h100-sxm", "NVIDIA H100 80GB HBM3", 80 * GIB, "NVIDIA H100 data sheet: 80 GB", 989.4,
      "NVIDIA H100 SXM5 data sheet: 1,979 TFLOP/s f16 with sparsity, dense half", CONTEXT_ESTIMATE,
      CONTEXT_ESTIMATE_SOURCE, 0}},
    {"A100",
     NULL,
     {"a100", "NVIDIA A100-SXM4-80GB", 80 * GIB, "NVIDIA A100 data sheet: 40 or 80 GB", 312.0,
      "NVIDIA A100 data sheet: 312 TFLOP/s dense f16 tensor (f32 accumulate at full rate)",
      CONTEXT_ESTIMATE, CONTEXT_ESTIMATE_SOURCE, 0}},
    /* Consumer Ada and Ampere: their tensor cores run f16 with f32 accumulation (what our
     * GEMMs use) at half the f16-accumulate rate that spec sheets headline; MFU against the
     * headline figure comes out at half the truth. Siblings without figures come first so they
     * match nothing rather than the card whose name they contain. */
    {"RTX 4090 D", NULL, {NULL, "NVIDIA GeForce RTX 4090 D", 0, NULL, 0.0, NULL, 0, NULL, 0}},
    {"RTX 4090",
     NULL,
     {"rtx4090", "NVIDIA GeForce RTX 4090", 24 * GIB, "NVIDIA GeForce RTX 4090 spec: 24 GB GDDR6X",
      165.2,
      "NVIDIA Ada Lovelace architecture whitepaper (appendix table, RTX 4090): 330.3 dense f16 "
      "TFLOP/s with f16 accumulate, 165.2 with f32 accumulate",
      CONTEXT_ESTIMATE, CONTEXT_ESTIMATE_SOURCE, 0}},
    {"RTX 4080 SUPER",
     NULL,
     {NULL, "NVIDIA GeForce RTX 4080 SUPER", 0, NULL, 0.0, NULL, 0, NULL, 0}},
    {"RTX 4080",
     NULL,
     {"rtx4080", "NVIDIA GeForce RTX 4080", 16 * GIB, "NVIDIA GeForce RTX 4080 spec: 16 GB GDDR6X",
      97.5,
      "NVIDIA Ada Lovelace architecture whitepaper (appendix table, RTX 4080 16GB): 194.9 dense "
      "f16 TFLOP/s with f16 accumulate, 97.5 with f32 accumulate",
      CONTEXT_ESTIMATE, CONTEXT_ESTIMATE_SOURCE, 0}},
    {"RTX 3090 Ti", NULL, {NULL, "NVIDIA GeForce RTX 3090 Ti", 0, NULL, 0.0, NULL, 0, NULL, 0}},
    {"RTX 3090",
     NULL,
     {"rtx3090", "NVIDIA GeForce RTX 3090", 24 * GIB, "NVIDIA GeForce RTX 3090 spec: 24 GB GDDR6X",
      71.0,
      "NVIDIA Ampere GA102 architecture whitepaper (RTX 3090 table): 142 dense f16 TFLOP/s with "
      "f16 accumulate, 71 with f32 accumulate",
      CONTEXT_ESTIMATE, CONTEXT_ESTIMATE_SOURCE, 0}},
    {"RTX 3080 Ti", NULL, {NULL, "NVIDIA GeForce RTX 3080 Ti", 0, NULL, 0.0, NULL, 0, NULL, 0}},
    {"RTX 3080",
     NULL,
     {"rtx3080", "NVIDIA GeForce RTX 3080", 10 * GIB,
      "NVIDIA GeForce RTX 3080 spec: 10 GB GDDR6X (the 10 GB card; a 12 GB card exists)", 59.5,
      "NVIDIA Ampere GA102 architecture whitepaper (RTX 3080 table, 68 SMs): 119 dense f16 "
      "TFLOP/s with f16 accumulate, 59.5 with f32 accumulate",
      CONTEXT_ESTIMATE, CONTEXT_ESTIMATE_SOURCE, 0}},
    /* not in the table: keep them from matching "RTX 4070" */
    {"RTX 4070 Ti", NULL, {NULL, "NVIDIA GeForce RTX 4070 Ti", 0, NULL, 0.0, NULL, 0, NULL, 0}},
    {"RTX 4070 SUPER",
     NULL,
     {NULL, "NVIDIA GeForce RTX 4070 SUPER", 0, NULL, 0.0, NULL, 0, NULL, 0}},
    {"RTX 4070",
     NULL,
     {"rtx4070", "NVIDIA GeForce RTX 4070", 12 * GIB, "NVIDIA GeForce RTX 4070 spec: 12 GB GDDR6X",
      58.3,
      "NVIDIA Ada whitepaper: 466 sparse FP8 TOPS = 116.6 dense f16 TFLOP/s with f16 "
      "accumulate; GeForce Ada runs f32 accumulate at half that",
      CONTEXT_ESTIMATE, CONTEXT_ESTIMATE_SOURCE, 0}},
};

#define N_ROWS (sizeof(ROWS) / sizeof(ROWS[0]))

const GpuSpec *gpu_table_find(const char *key) {
    if (!key)
        return NULL;
    for (size_t i = 0; i < N_ROWS; i++)
        if (ROWS[i].spec.key && strcmp(ROWS[i].spec.key, key) == 0)
            return &ROWS[i].spec;
    return NULL;
}

const GpuSpec *gpu_table_match(const char *device_name) {
    if (!device_name)
        return NULL;
    for (size_t i = 0; i < N_ROWS; i++)
        if (strstr(device_name, ROWS[i].match) &&
            (!ROWS[i].also || strstr(device_name, ROWS[i].also)))
            return ROWS[i].spec.key ? &ROWS[i].spec : NULL;
    return NULL;
}

const GpuSpec *gpu_table_all(size_t *n) {
    /* the rows are GpuRow, not GpuSpec: hand out a packed copy of the keyed entries */
    static GpuSpec all[N_ROWS];
    static size_t count = 0;
    if (count == 0)
        for (size_t i = 0; i < N_ROWS; i++)
            if (ROWS[i].spec.key)
                all[count++] = ROWS[i].spec;
    *n = count;
    return all;
}

char *gpu_table_keys(char *buf, size_t len) {
    size_t n = 0, used = 0;
    const GpuSpec *all = gpu_table_all(&n);
    if (len)
        buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", all[i].key);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}
