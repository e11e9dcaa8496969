/* device_mem.c: device memory measured outside the arena (see model/device.h), for CUDA builds:
 * cudaMemGetInfo plus NVML loaded with dlopen("libnvidia-ml.so.1") at run time.
 *
 * The NVML declarations below are the few this file needs, written from NVML's documented
 * C API (nvmlMemory_t; nvmlProcessInfo_t as taken by the _v2/_v3 process queries, and the
 * two-field v1 layout of the unversioned one), so no nvml.h is needed to build.
 * Every NVML failure is remembered as text in DeviceMem.nvml_status and reported, not fatal. */
#include "../device.h"

#include "../gpu_table.h"

#include <cuda_runtime.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- NVML, loaded at run time ---------------------------------------------------------- */
typedef int nvmlReturn_t; /* 0 = NVML_SUCCESS */
typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct {
    unsigned long long total, free, used;
} NvmlMemory;
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} NvmlProcessInfoV2;
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
} NvmlProcessInfoV1;

#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_PROC_MAX 256
#define NVML_NAME_LEN 96

static struct {
    int tried, ok;
    void *lib;
    char status[128];
    nvmlReturn_t (*init)(void);
    nvmlReturn_t (*shutdown)(void);
    const char *(*error_string)(nvmlReturn_t);
    nvmlReturn_t (*by_pci)(const char *, nvmlDevice_t *);
    nvmlReturn_t (*by_index)(unsigned int, nvmlDevice_t *);
    nvmlReturn_t (*memory)(nvmlDevice_t, NvmlMemory *);
    nvmlReturn_t (*procs_v3)(nvmlDevice_t, unsigned int *, NvmlProcessInfoV2 *);
    nvmlReturn_t (*procs_v2)(nvmlDevice_t, unsigned int *, NvmlProcessInfoV2 *);
    nvmlReturn_t (*procs_v1)(nvmlDevice_t, unsigned int *, NvmlProcessInfoV1 *);
    nvmlReturn_t (*name)(nvmlDevice_t, char *, unsigned int);
    nvmlReturn_t (*driver)(char *, unsigned int);
} nv;

static void *nvml_sym(const char *name) { return nv.lib ? dlsym(nv.lib, name) : NULL; }

static int nvml_load(void) {
    if (nv.tried)
        return nv.ok;
    nv.tried = 1;
    nv.lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!nv.lib) {
        snprintf(nv.status, sizeof(nv.status), "libnvidia-ml.so.1 not loadable");
        return 0;
    }
    *(void **)&nv.init = nvml_sym("nvmlInit_v2");
    *(void **)&nv.shutdown = nvml_sym("nvmlShutdown");
    *(void **)&nv.error_string = nvml_sym("nvmlErrorString");
    *(void **)&nv.by_pci = nvml_sym("nvmlDeviceGetHandleByPciBusId_v2");
    *(void **)&nv.by_index = nvml_sym("nvmlDeviceGetHandleByIndex_v2");
    *(void **)&nv.memory = nvml_sym("nvmlDeviceGetMemoryInfo");
    *(void **)&nv.procs_v3 = nvml_sym("nvmlDeviceGetComputeRunningProcesses_v3");
    *(void **)&nv.procs_v2 = nvml_sym("nvmlDeviceGetComputeRunningProcesses_v2");
    *(void **)&nv.procs_v1 = nvml_sym("nvmlDeviceGetComputeRunningProcesses");
    *(void **)&nv.name = nvml_sym("nvmlDeviceGetName");
    *(void **)&nv.driver = nvml_sym("nvmlSystemGetDriverVersion");
    if (!nv.init || !nv.memory || (!nv.by_pci && !nv.by_index)) {
        snprintf(nv.status, sizeof(nv.status), "libnvidia-ml.so.1 lacks the needed functions");
        return 0;
    }
    nvmlReturn_t r = nv.init();
    if (r != 0) {
        snprintf(nv.status, sizeof(nv.status), "nvmlInit_v2 failed: %s",
                 nv.error_string ? nv.error_string(r) : "?");
        return 0;
    }
    snprintf(nv.status, sizeof(nv.status), "ok");
    nv.ok = 1;
    return 1;
}

void device_mem_close(void) {
    if (nv.ok && nv.shutdown)
        nv.shutdown();
    if (nv.lib)
        dlclose(nv.lib);
    memset(&nv, 0, sizeof(nv));
}

/* The NVML handle of CUDA device `dev`, matched by PCI bus id (CUDA's device order need not
 * be NVML's). cudaDeviceGetPCIBusId does not create a context. */
static int nvml_device(int dev, nvmlDevice_t *out) {
    if (!nvml_load())
        return -1;
    char bus[64];
    if (nv.by_pci && cudaDeviceGetPCIBusId(bus, (int)sizeof(bus), dev) == cudaSuccess &&
        nv.by_pci(bus, out) == 0)
        return 0;
    cudaGetLastError();
    if (nv.by_index && nv.by_index((unsigned)dev, out) == 0)
        return 0;
    snprintf(nv.status, sizeof(nv.status), "NVML has no handle for CUDA device %d", dev);
    return -1;
}

/* NVML's "value not available" (NVML_VALUE_NOT_AVAILABLE: all bits set), what the per-process
 * query gives under WDDM (Windows, WSL2): the process is listed, its memory is unknown */
#define NVML_VALUE_NOT_AVAILABLE_ULL (~0ULL)

/* One entry of the process list: *found = 1 with the bytes, or -1 (listed, memory unknown). */
static size_t nvml_proc_entry(unsigned long long used, int *found) {
    if (used == NVML_VALUE_NOT_AVAILABLE_ULL) {
        *found = -1;
        return 0;
    }
    *found = 1;
    return (size_t)used;
}

/* this process's usage on the device; *found = 1 with a number, -1 when NVML lists our pid
 * but reports its memory as not available, 0 when NVML does not list our pid */
static size_t nvml_proc_bytes(nvmlDevice_t d, int *found) {
    static NvmlProcessInfoV2 p2[NVML_PROC_MAX];
    static NvmlProcessInfoV1 p1[NVML_PROC_MAX];
    unsigned int pid = (unsigned int)getpid();
    unsigned int n = NVML_PROC_MAX;
    *found = 0;
    nvmlReturn_t (*v2)(nvmlDevice_t, unsigned int *, NvmlProcessInfoV2 *) =
        nv.procs_v3 ? nv.procs_v3 : nv.procs_v2;
    if (v2) {
        if (v2(d, &n, p2) != 0)
            return 0;
        for (unsigned int i = 0; i < n && i < NVML_PROC_MAX; i++)
            if (p2[i].pid == pid)
                return nvml_proc_entry(p2[i].usedGpuMemory, found);
        return 0;
    }
    if (nv.procs_v1 && nv.procs_v1(d, &n, p1) == 0)
        for (unsigned int i = 0; i < n && i < NVML_PROC_MAX; i++)
            if (p1[i].pid == pid)
                return nvml_proc_entry(p1[i].usedGpuMemory, found);
    return 0;
}

/* --- peak throughput ------------------------------------------------------------------- */

/* From the project's one GPU table (model/gpu_table.c), where each figure has its source. */
double device_mem_peak_tflops(const char *gpu_name) {
    const GpuSpec *g = gpu_table_match(gpu_name);
    return g ? g->peak_tflops_f16 : 0.0;
}

/* --- sampling -------------------------------------------------------------------------- */

void device_mem_set_reservation(DeviceMem *m, size_t bytes) { m->reservation_bytes = bytes; }

int device_mem_sample(DeviceMem *m, DeviceMemStage stage, Err *err) {
    ASSERT(stage >= 0 && stage < DEVICE_MEM_STAGE_COUNT);
    if (stage == DEVICE_MEM_BEFORE_CONTEXT) {
        memset(m, 0, sizeof(*m));
        int dev = 0;
        if (cudaGetDevice(&dev) != cudaSuccess) { /* no context is created by this */
            cudaGetLastError();
            dev = 0;
        }
        m->device = dev;
        snprintf(m->driver, sizeof(m->driver), "n/a");
    }
    DeviceMemSample *s = &m->s[stage];
    memset(s, 0, sizeof(*s));
    s->taken = 1;
    if (stage != DEVICE_MEM_BEFORE_CONTEXT) {
        size_t free_b = 0, total_b = 0;
        if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
            s->have_cuda = 1;
            s->cuda_used_bytes = total_b - free_b;
            m->total_bytes = total_b;
        } else {
            cudaGetLastError();
        }
        if (!m->name[0] || !m->cc_major) {
            struct cudaDeviceProp prop;
            if (cudaGetDeviceProperties(&prop, m->device) == cudaSuccess) {
                size_t len = strnlen(prop.name, sizeof(m->name) - 1); /* names are short */
                memcpy(m->name, prop.name, len);
                m->name[len] = '\0';
                m->cc_major = prop.major;
                m->cc_minor = prop.minor;
            } else {
                cudaGetLastError();
            }
        }
    }
    nvmlDevice_t d;
    if (nvml_device(m->device, &d) == 0) {
        NvmlMemory mem;
        if (nv.memory(d, &mem) == 0) {
            s->have_nvml = 1;
            s->nvml_used_bytes = (size_t)mem.used;
            if (!m->total_bytes)
                m->total_bytes = (size_t)mem.total;
        }
        int found = 0;
        s->proc_bytes = nvml_proc_bytes(d, &found);
        s->have_proc = found == 1;
        s->proc_unknown = found == -1;
        if (!m->name[0] && nv.name) {
            char nm[NVML_NAME_LEN];
            if (nv.name(d, nm, sizeof(nm)) == 0)
                snprintf(m->name, sizeof(m->name), "%s", nm);
        }
        if (nv.driver) {
            char dv[32];
            if (nv.driver(dv, sizeof(dv)) == 0)
                snprintf(m->driver, sizeof(m->driver), "%s", dv);
        }
    }
    snprintf(m->nvml_status, sizeof(m->nvml_status), "%s", nv.status[0] ? nv.status : "not loaded");
    m->peak_tflops_f16 = device_mem_peak_tflops(m->name);
    if (!s->have_cuda && !s->have_nvml)
        return err_set(err, "device memory: no reading at stage %d (CUDA: %s; NVML: %s)",
                       (int)stage,
                       stage == DEVICE_MEM_BEFORE_CONTEXT ? "not asked before the context"
                                                          : "cudaMemGetInfo failed",
                       m->nvml_status);
    return 0;
}

/* --- report ---------------------------------------------------------------------------- */

#define MIB (1024.0 * 1024.0)

static double mib(size_t b) { return (double)b / MIB; }

/* signed difference in MiB */
static double dmib(size_t a, size_t b) { return ((double)a - (double)b) / MIB; }

/* long: the reconciliation table's lines in order (before, context, reservation, arena peak by
 * category, now, unaccounted), each printed only when its sources were read */
int device_mem_report(const DeviceMem *m, const Arena *arena, FILE *f) {
    const DeviceMemSample *b = &m->s[DEVICE_MEM_BEFORE_CONTEXT],
                          *c = &m->s[DEVICE_MEM_AFTER_CONTEXT],
                          *r = &m->s[DEVICE_MEM_AFTER_RESERVATION], *n = &m->s[DEVICE_MEM_NOW];
    int rc = 0;
#define OUT(...)                                                                                   \
    do {                                                                                           \
        if (fprintf(f, __VA_ARGS__) < 0)                                                           \
            rc = -1;                                                                               \
    } while (0)
    const char *loading = getenv("CUDA_MODULE_LOADING");
    OUT("device memory: %s (sm_%d%d), driver %s, %.0f MiB total; NVML: %s; "
        "CUDA_MODULE_LOADING=%s\n",
        m->name[0] ? m->name : "unknown GPU", m->cc_major, m->cc_minor, m->driver,
        mib(m->total_bytes), m->nvml_status, loading && loading[0] ? loading : "(unset: LAZY)");
    OUT("  %-44s %12s %12s %14s\n", "stage", "cudaMemGetInfo", "NVML device", "NVML this pid");
    const char *names[DEVICE_MEM_STAGE_COUNT] = {"before our CUDA context",
                                                 "after context + libraries",
                                                 "after the arena reservation", "now"};
    for (int i = 0; i < DEVICE_MEM_STAGE_COUNT; i++) {
        const DeviceMemSample *s = &m->s[i];
        if (!s->taken)
            continue;
        char a1[32] = "n/a", a2[32] = "n/a", a3[32] = "n/a";
        if (s->have_cuda)
            snprintf(a1, sizeof(a1), "%.1f MiB", mib(s->cuda_used_bytes));
        if (s->have_nvml)
            snprintf(a2, sizeof(a2), "%.1f MiB", mib(s->nvml_used_bytes));
        if (s->have_proc)
            snprintf(a3, sizeof(a3), "%.1f MiB", mib(s->proc_bytes));
        else if (s->proc_unknown)
            snprintf(a3, sizeof(a3), "unknown");
        OUT("  %-44s %14s %12s %14s\n", names[i], a1, a2, a3);
    }

    /* context + libraries: per process when NVML lists us, else the device-wide NVML delta */
    double ctx = -1.0;
    const char *ctx_src = "n/a";
    if (c->have_proc) {
        ctx = mib(c->proc_bytes);
        ctx_src = "NVML this pid";
    } else if (b->have_nvml && c->have_nvml) {
        ctx = dmib(c->nvml_used_bytes, b->nvml_used_bytes);
        ctx_src = "NVML device delta";
    }
    if (ctx >= 0.0)
        OUT("  context + libraries                          %10.1f MiB  (%s)\n", ctx, ctx_src);
    else
        OUT("  context + libraries                                 n/a  (no NVML reading)\n");
    OUT("  arena reservation (asked)                    %10.1f MiB\n", mib(m->reservation_bytes));
    if (c->have_cuda && r->have_cuda)
        OUT("  arena reservation (cudaMemGetInfo delta)     %10.1f MiB  (allocation granularity "
            "shows here)\n",
            dmib(r->cuda_used_bytes, c->cuda_used_bytes));
    if (arena) {
        ArenaStats st = arena_stats(arena);
        OUT("  arena peak %.1f MiB of the reservation, by category at that peak:\n",
            mib(st.peak_used_bytes));
        for (int k = 0; k < ARENA_CAT_COUNT; k++)
            OUT("    %-12s %10.1f MiB  (own peak %.1f MiB)\n",
                arena_category_name((ArenaCategory)k), mib(st.at_peak_bytes[k]),
                mib(st.cat_peak_bytes[k]));
        OUT("    %-12s %10.1f MiB  (reservation - high-water mark)\n", "unused",
            dmib(st.capacity_bytes, st.high_water_bytes));
    }
    /* unaccounted: what the process holds now beyond context + reservation */
    if (n->have_proc && c->have_proc) {
        OUT("  unaccounted (this pid now - context - reservation) %6.1f MiB\n",
            dmib(n->proc_bytes, c->proc_bytes) - mib(m->reservation_bytes));
    } else if (n->have_cuda && c->have_cuda) {
        OUT("  unaccounted (device now - after context - reservation) %6.1f MiB  (device-wide: "
            "other processes count too)\n",
            dmib(n->cuda_used_bytes, c->cuda_used_bytes) - mib(m->reservation_bytes));
    } else {
        OUT("  unaccounted                                         n/a  (no reading now)\n");
    }
    if (n->have_proc)
        OUT("  this process now (what nvidia-smi shows)     %10.1f MiB\n", mib(n->proc_bytes));
    else if (n->proc_unknown)
        OUT("  this process now (what nvidia-smi shows)        unknown  (NVML lists this process "
            "but reports its memory as not available, as under WDDM/WSL2)\n");
    OUT("  (with lazy module loading, kernel code loaded after the context sample -- ours, "
        "cuBLAS's -- lands in 'unaccounted'; CUDA_MODULE_LOADING=EAGER moves it into the "
        "context line)\n");
#undef OUT
    return rc;
}
