/* cudasim.cc: the CUDA simulator's host runtime, linked only into the simulated binaries under
 * build/sim/ (never into the real arenagpt). It implements the part of the CUDA runtime API the
 * backend calls (the toolkit's cuda_runtime_api.h declares them) and the execution model of
 * tests/cudasim/include/cudasim.h.
 *
 * The simulated card: an RTX 4070 (sm_89) with CUDASIM_TOTAL_BYTES of memory (12 GiB; the
 * environment variable CUDASIM_MEMORY_BYTES changes it), of which CUDASIM_CONTEXT_BYTES show
 * as used once the context exists. Both are stated constants, not measurements of a card.
 * Device memory is host memory: every cudaMalloc range is recorded, and copies and memsets
 * check that each pointer is on the side the copy's kind says. Allocations are rounded up to
 * CUDASIM_GRANULE_BYTES in the used count, as the driver's 2 MiB pages are.
 * Pinned host memory (cudaHostAlloc) is host memory, recorded apart from the device ranges
 * (it is not device memory for the copies' checks and is not counted on the card). Two fault
 * injections for the tests of optimizer_offload: CUDASIM_FAIL_HOST_ALLOC=1 refuses every
 * cudaHostAlloc (cudaErrorMemoryAllocation), CUDASIM_FAIL_PINNED_COPY=N fails the N-th copy
 * (1-based) whose host side is pinned memory (cudaErrorUnknown; the copy does not happen).
 *
 * Launches: the configuration is checked against sm_89 (1024 threads per block, block
 * dimensions 1024 x 1024 x 64, grid 2^31-1 x 65535 x 65535, 48 KiB of static + dynamic shared
 * memory per block without opt-in); a refused launch sets the error that cudaGetLastError
 * returns, and cudaGetErrorString of it names the kernel. A kernel's static shared memory is
 * the size of its __shared__ arrays, read from this program's symbol table (the simulator's
 * __shared__ puts them in the section cudasim_shared). The blocks then run one after another,
 * each block's threads as fibers on reused stacks, scheduled between barriers in an
 * order chosen per launch from the seed (CUDASIM_SEED, else the time; printed once on the
 * first launch and in every error): forward, reverse, or shuffled anew at every pass.
 * Dynamic shared memory is a fresh heap buffer per launch (so ASan bounds it), filled with
 * 0xff bytes (NaN as f32 and as f16) before every block.
 *
 * Errors inside a launch (barrier divergence, a shuffle whose lanes never all arrive) are
 * printed with the kernel, the block and the seed, abandon the launch and make the device
 * "faulted": a sticky cudaErrorLaunchFailure, as a device fault is on a GPU.
 *
 * Warp collectives (mma, ldmatrix: cudasim_mma.cc computes them) wait like shuffles for all 32
 * lanes, which must agree on the operation and its shape. cp.async copies are kept per
 * thread and done at cp.async.wait_group, or earlier at a seeded point (a later cp.async call
 * or barrier of the thread), never at issue; their destination must be shared memory (the
 * launch's dynamic buffer or the cudasim_shared section) and their source device memory.
 *
 * Streams (cudasim_stream.cc): the legacy default stream (NULL) is immediate, every call on
 * it completes before it returns. A stream made by cudaStreamCreate* is deferred: its launches,
 * async copies and memsets (checked at the call) and library work wait in a queue until
 * something waits for them (a stream or event synchronize, cudaStreamWaitEvent, an operation
 * of the legacy stream for a blocking stream, cudaDeviceSynchronize, cudaFree). A program that
 * forgets a wait then reads stale memory here, as it may on a GPU; a race the other way (work
 * of a stream that a GPU may run before the program expects) is not caught, since queued work
 * runs as late as the waits allow.
 *
 * Not simulated: concurrency between streams and the timing of their work (a queue runs in
 * one go, in order), the GPU's speed, its floating-point contraction (the host compiler's
 * applies), NVML (absent: dlopen of libnvidia-ml fails in the simulated binaries). */
#include <cuda_runtime.h>

#include "cudasim_internal.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define CUDASIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUDASIM_ASAN 1
#endif
#endif
#ifdef CUDASIM_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

/* --- the simulated card (stated constants) -------------------------------------------- */
#define CUDASIM_NAME "NVIDIA GeForce RTX 4070 (simulated)"
#define CUDASIM_TOTAL_BYTES ((size_t)12 << 30)    /* the RTX 4070's 12 GiB */
#define CUDASIM_CONTEXT_BYTES ((size_t)256 << 20) /* a stated context + libraries figure */
#define CUDASIM_GRANULE_BYTES ((size_t)2 << 20)   /* allocation granularity in the used count */
#define CUDASIM_ALIGN 256                         /* cudaMalloc's alignment */
#define SM89_MAX_THREADS 1024
#define SM89_MAX_BLOCK_X 1024
#define SM89_MAX_BLOCK_Y 1024
#define SM89_MAX_BLOCK_Z 64
#define SM89_MAX_GRID_X 2147483647u
#define SM89_MAX_GRID_YZ 65535u
#define SM89_SHARED_PER_BLOCK 49152 /* without opt-in */
#define SM89_SHARED_OPTIN 101376
#define SM89_SMS 46 /* RTX 4070 */
#define FIBER_STACK_BYTES ((size_t)256 << 10)

/* --- error state ---------------------------------------------------------------------- */
static cudaError_t g_last = cudaSuccess;   /* what cudaGetLastError returns (and clears) */
static cudaError_t g_sticky = cudaSuccess; /* a device fault: every later call fails */
static char g_detail[1024];                /* why the last error happened */
static cudaError_t g_detail_code = cudaSuccess;

static cudaError_t set_error_v(cudaError_t e, const char *fmt, va_list ap) {
    vsnprintf(g_detail, sizeof(g_detail), fmt, ap);
    g_detail_code = e;
    g_last = e;
    fprintf(stderr, "cudasim: %s\n", g_detail);
    return e;
}

static cudaError_t set_error(cudaError_t e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_error_v(e, fmt, ap);
    va_end(ap);
    return e;
}

static cudaError_t api_result(void) {
    if (g_sticky != cudaSuccess)
        g_last = g_sticky;
    return g_sticky;
}

namespace cudasim {
cudaError_t api_error(cudaError_t e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_error_v(e, fmt, ap);
    va_end(ap);
    return e;
}
cudaError_t api_status(void) { return api_result(); }
bool device_faulted(void) { return g_sticky != cudaSuccess; }
} // namespace cudasim

extern "C" cudaError_t cudaGetLastError(void) {
    cudaError_t e = g_last;
    g_last = g_sticky;
    return e;
}

extern "C" cudaError_t cudaPeekAtLastError(void) { return g_last; }

static const char *base_string(cudaError_t e) {
    switch (e) {
    case cudaSuccess:
        return "no error";
    case cudaErrorInvalidValue:
        return "invalid argument";
    case cudaErrorMemoryAllocation:
        return "out of memory";
    case cudaErrorInvalidConfiguration:
        return "invalid configuration argument";
    case cudaErrorLaunchFailure:
        return "unspecified launch failure";
    case cudaErrorNoDevice:
        return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice:
        return "invalid device ordinal";
    case cudaErrorInvalidDevicePointer:
        return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection:
        return "invalid copy direction for memcpy";
    case cudaErrorInvalidDeviceFunction:
        return "invalid device function";
    case cudaErrorInvalidResourceHandle:
        return "invalid resource handle";
    case cudaErrorNotReady:
        return "device not ready";
    default:
        return "unknown error";
    }
}

extern "C" const char *cudaGetErrorString(cudaError_t e) {
    static char buf[1200];
    if (e != cudaSuccess && e == g_detail_code && g_detail[0]) {
        snprintf(buf, sizeof(buf), "%s [%s]", base_string(e), g_detail);
        return buf;
    }
    return base_string(e);
}

extern "C" const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess:
        return "cudaSuccess";
    case cudaErrorInvalidValue:
        return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
        return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration:
        return "cudaErrorInvalidConfiguration";
    case cudaErrorLaunchFailure:
        return "cudaErrorLaunchFailure";
    case cudaErrorNoDevice:
        return "cudaErrorNoDevice";
    case cudaErrorInvalidResourceHandle:
        return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady:
        return "cudaErrorNotReady";
    default:
        return "cudaErrorUnknown";
    }
}

/* --- the schedule seed ---------------------------------------------------------------- */
static uint64_t g_seed;
static int g_seed_set = 0;
static uint64_t g_launches = 0;

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t seed_get(void) {
    if (!g_seed_set) {
        const char *s = getenv("CUDASIM_SEED");
        g_seed = s && s[0] ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
        g_seed_set = 1;
        fprintf(stderr, "cudasim: schedule seed %llu (CUDASIM_SEED=%llu repeats this run)\n",
                (unsigned long long)g_seed, (unsigned long long)g_seed);
    }
    return g_seed;
}

/* --- device memory -------------------------------------------------------------------- */
static std::map<uintptr_t, size_t> *g_allocs; /* base -> bytes */
static size_t g_alloc_used = 0;               /* rounded to the granule */
static int g_context = 0;

static std::map<uintptr_t, size_t> &allocs(void) {
    if (!g_allocs)
        g_allocs = new std::map<uintptr_t, size_t>();
    return *g_allocs;
}

static size_t total_bytes(void) {
    const char *s = getenv("CUDASIM_MEMORY_BYTES");
    return s && s[0] ? (size_t)strtoull(s, NULL, 0) : CUDASIM_TOTAL_BYTES;
}

static size_t used_bytes(void) { return (g_context ? CUDASIM_CONTEXT_BYTES : 0) + g_alloc_used; }

static size_t granule(size_t n) {
    return (n + CUDASIM_GRANULE_BYTES - 1) & ~(CUDASIM_GRANULE_BYTES - 1);
}

static void context_make(void) { g_context = 1; }

namespace cudasim {
/* 1 when [p, p + n) lies inside one cudaMalloc allocation */
bool device_range(const void *p, size_t n) {
    uintptr_t a = (uintptr_t)p;
    auto &m = allocs();
    auto it = m.upper_bound(a);
    if (it == m.begin())
        return false;
    --it;
    return a >= it->first && a + n <= it->first + it->second && a + n >= a;
}
/* 1 when p is inside any allocation (a host pointer must not be) */
bool device_pointer(const void *p) { return device_range(p, 1); }
} // namespace cudasim

/* device_range for the NCCL stand-in (a library the binary dlopens; the sim link exports this
 * symbol and cudasim_stream_enqueue to it): 1 when [p, p + n) lies inside one simulated device
 * allocation */
extern "C" int cudasim_device_range(const void *p, size_t n) {
    return cudasim::device_range(p, n) ? 1 : 0;
}

extern "C" cudaError_t cudaMalloc(void **p, size_t bytes) {
    context_make();
    if (api_result() != cudaSuccess)
        return g_sticky;
    if (!p)
        return set_error(cudaErrorInvalidValue, "cudaMalloc: NULL result pointer");
    *p = NULL;
    if (bytes == 0)
        return cudaSuccess;
    size_t g = granule(bytes);
    if (used_bytes() + g > total_bytes())
        return set_error(cudaErrorMemoryAllocation,
                         "cudaMalloc of %zu bytes: the simulated card has %zu of %zu bytes free",
                         bytes, total_bytes() - used_bytes(), total_bytes());
    size_t rounded = (bytes + CUDASIM_ALIGN - 1) & ~(size_t)(CUDASIM_ALIGN - 1);
    void *m = aligned_alloc(CUDASIM_ALIGN, rounded);
    if (!m)
        return set_error(cudaErrorMemoryAllocation, "cudaMalloc of %zu bytes: host out of memory",
                         bytes);
    allocs()[(uintptr_t)m] = bytes;
    g_alloc_used += g;
    *p = m;
    return cudaSuccess;
}

/* cudaFree and cudaFreeHost synchronize the device in CUDA: queued work runs first */
extern "C" cudaError_t cudaFree(void *p) {
    context_make();
    cudasim::streams_flush_all();
    if (api_result() != cudaSuccess)
        return g_sticky;
    if (!p)
        return cudaSuccess;
    auto it = allocs().find((uintptr_t)p);
    if (it == allocs().end())
        return set_error(cudaErrorInvalidValue,
                         "cudaFree(%p): not the start of a device allocation", p);
    g_alloc_used -= granule(it->second);
    allocs().erase(it);
    free(p);
    return cudaSuccess;
}

/* --- pinned host memory -------------------------------------------------------------- */
static std::map<uintptr_t, size_t> *g_pinned; /* base -> bytes */
static long g_pinned_copies;                  /* copies with a pinned host side so far */

static std::map<uintptr_t, size_t> &pinned(void) {
    if (!g_pinned)
        g_pinned = new std::map<uintptr_t, size_t>();
    return *g_pinned;
}

static bool pinned_pointer(const void *p) {
    uintptr_t a = (uintptr_t)p;
    auto &m = pinned();
    auto it = m.upper_bound(a);
    if (it == m.begin())
        return false;
    --it;
    return a >= it->first && a < it->first + it->second;
}

static long env_long(const char *name) {
    const char *s = getenv(name);
    return s && s[0] ? strtol(s, NULL, 0) : 0;
}

extern "C" cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned int flags) {
    context_make();
    if (api_result() != cudaSuccess)
        return g_sticky;
    if (!p)
        return set_error(cudaErrorInvalidValue, "cudaHostAlloc: NULL result pointer");
    *p = NULL;
    if (flags != cudaHostAllocDefault)
        return set_error(cudaErrorInvalidValue, "cudaHostAlloc: flags %u not simulated", flags);
    if (env_long("CUDASIM_FAIL_HOST_ALLOC"))
        return set_error(cudaErrorMemoryAllocation,
                         "cudaHostAlloc of %zu bytes: refused (CUDASIM_FAIL_HOST_ALLOC)", bytes);
    size_t rounded = (bytes + CUDASIM_ALIGN - 1) & ~(size_t)(CUDASIM_ALIGN - 1);
    void *m = aligned_alloc(CUDASIM_ALIGN, rounded ? rounded : CUDASIM_ALIGN);
    if (!m)
        return set_error(cudaErrorMemoryAllocation,
                         "cudaHostAlloc of %zu bytes: host out of memory", bytes);
    pinned()[(uintptr_t)m] = bytes ? bytes : 1;
    *p = m;
    return cudaSuccess;
}

extern "C" cudaError_t cudaFreeHost(void *p) {
    context_make();
    cudasim::streams_flush_all();
    if (api_result() != cudaSuccess)
        return g_sticky;
    if (!p)
        return cudaSuccess;
    auto it = pinned().find((uintptr_t)p);
    if (it == pinned().end())
        return set_error(cudaErrorInvalidValue,
                         "cudaFreeHost(%p): not the start of a pinned allocation", p);
    pinned().erase(it);
    free(p);
    return cudaSuccess;
}

/* CUDASIM_FAIL_PINNED_COPY: whether this copy (dst <- src) is the one to fail */
static bool pinned_copy_fails(const void *dst, const void *src) {
    if (!pinned_pointer(dst) && !pinned_pointer(src))
        return false;
    long n = env_long("CUDASIM_FAIL_PINNED_COPY");
    return ++g_pinned_copies == n && n > 0;
}

extern "C" cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b) {
    context_make();
    if (api_result() != cudaSuccess)
        return g_sticky;
    size_t t = total_bytes(), u = used_bytes();
    if (free_b)
        *free_b = u < t ? t - u : 0;
    if (total_b)
        *total_b = t;
    return cudaSuccess;
}

static const char *kind_name(cudaMemcpyKind k) {
    switch (k) {
    case cudaMemcpyHostToHost:
        return "HostToHost";
    case cudaMemcpyHostToDevice:
        return "HostToDevice";
    case cudaMemcpyDeviceToHost:
        return "DeviceToHost";
    case cudaMemcpyDeviceToDevice:
        return "DeviceToDevice";
    case cudaMemcpyDefault:
        return "Default";
    }
    return "?";
}

/* each side of a copy must be where its kind says: a whole device range, or host memory */
static cudaError_t copy_check(const char *call, void *dst, const void *src, size_t bytes,
                              cudaMemcpyKind kind) {
    int dst_dev, src_dev;
    switch (kind) {
    case cudaMemcpyHostToDevice:
        dst_dev = 1, src_dev = 0;
        break;
    case cudaMemcpyDeviceToHost:
        dst_dev = 0, src_dev = 1;
        break;
    case cudaMemcpyDeviceToDevice:
        dst_dev = 1, src_dev = 1;
        break;
    case cudaMemcpyHostToHost:
        dst_dev = 0, src_dev = 0;
        break;
    case cudaMemcpyDefault:
        dst_dev = cudasim::device_pointer(dst), src_dev = cudasim::device_pointer(src);
        break;
    default:
        return set_error(cudaErrorInvalidMemcpyDirection, "%s: copy kind %d", call, (int)kind);
    }
    const void *p[2] = {dst, src};
    int want[2] = {dst_dev, src_dev};
    const char *side[2] = {"destination", "source"};
    for (int i = 0; i < 2; i++) {
        if (!p[i])
            return set_error(cudaErrorInvalidValue, "%s %s: NULL %s", call, kind_name(kind),
                             side[i]);
        if (want[i] && !cudasim::device_range(p[i], bytes))
            return set_error(cudaErrorInvalidValue,
                             "%s %s: %s %p (+%zu bytes) is not inside one device allocation", call,
                             kind_name(kind), side[i], p[i], bytes);
        if (!want[i] && cudasim::device_pointer(p[i]))
            return set_error(cudaErrorInvalidValue, "%s %s: %s %p is device memory", call,
                             kind_name(kind), side[i], p[i]);
    }
    return cudaSuccess;
}

/* one copy of `height` rows of `width` bytes (a 1D copy: one row) */
struct Copy {
    char *dst;
    size_t dpitch;
    const char *src;
    size_t spitch, width, height;
};

static void copy_rows(const Copy &c) {
    for (size_t r = 0; r < c.height; r++)
        memmove(c.dst + r * c.dpitch, c.src + r * c.spitch, c.width);
}

/* host memory that cudaHostAlloc did not give (pageable) */
static bool pageable(const void *p) { return !cudasim::device_pointer(p) && !pinned_pointer(p); }

/* A checked copy issued to stream s. CUDA stages pageable host memory ("API synchronization
 * behavior"): a pageable source is read at the call, and a copy to pageable memory is done
 * before the call returns (s runs up to it). Otherwise the copy is s's work like a kernel. */
static cudaError_t copy_issue(const char *call, cudaStream_t s, Copy c) {
    bool dst_staged = pageable(c.dst);
    std::shared_ptr<std::vector<char>> staged;
    if (!dst_staged && pageable(c.src) && cudasim::stream_deferred(s)) {
        staged = std::make_shared<std::vector<char>>(c.width * c.height);
        copy_rows(Copy{staged->data(), c.width, c.src, c.spitch, c.width, c.height});
        c.src = staged->data();
        c.spitch = c.width;
    }
    uint64_t seq = 0;
    cudaError_t e = cudasim::stream_issue(
        s, call,
        [c, staged] {
            if (!cudasim::device_faulted())
                copy_rows(c);
        },
        &seq);
    if (e == cudaSuccess && seq && dst_staged)
        cudasim::stream_run_to(s, seq);
    return e;
}

/* the checks of a 1D copy at its call (cudaSuccess: the copy may go ahead) */
static cudaError_t copy_checked(const char *call, void *dst, const void *src, size_t bytes,
                                cudaMemcpyKind kind) {
    context_make();
    if (api_result() != cudaSuccess)
        return g_sticky;
    if (bytes == 0)
        return cudaSuccess;
    cudaError_t e = copy_check(call, dst, src, bytes, kind);
    if (e != cudaSuccess)
        return e;
    if (pinned_copy_fails(dst, src))
        return set_error(cudaErrorUnknown,
                         "%s %s of %zu bytes to or from pinned memory: injected failure "
                         "(CUDASIM_FAIL_PINNED_COPY)",
                         call, kind_name(kind), bytes);
    return cudaSuccess;
}

/* the synchronous copy: an operation of the legacy stream */
extern "C" cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    cudaError_t e = copy_checked("cudaMemcpy", dst, src, bytes, kind);
    if (e != cudaSuccess || bytes == 0)
        return e;
    return copy_issue("cudaMemcpy", NULL,
                      Copy{(char *)dst, bytes, (const char *)src, bytes, bytes, 1});
}

extern "C" cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes,
                                       cudaMemcpyKind kind, cudaStream_t stream) {
    cudaError_t e = copy_checked("cudaMemcpyAsync", dst, src, bytes, kind);
    if (e != cudaSuccess || bytes == 0)
        return e;
    return copy_issue("cudaMemcpyAsync", stream,
                      Copy{(char *)dst, bytes, (const char *)src, bytes, bytes, 1});
}

extern "C" cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch,
                                         size_t width, size_t height, cudaMemcpyKind kind,
                                         cudaStream_t stream) {
    context_make();
    if (api_result() != cudaSuccess)
        return g_sticky;
    if (width == 0 || height == 0)
        return cudaSuccess;
    if (width > dpitch || width > spitch)
        return set_error(cudaErrorInvalidValue,
                         "cudaMemcpy2DAsync: width %zu exceeds a pitch (dst %zu, src %zu)", width,
                         dpitch, spitch);
    for (size_t r = 0; r < height; r++) {
        cudaError_t e = copy_check("cudaMemcpy2DAsync", (char *)dst + r * dpitch,
                                   (const char *)src + r * spitch, width, kind);
        if (e != cudaSuccess)
            return e;
    }
    return copy_issue("cudaMemcpy2DAsync", stream,
                      Copy{(char *)dst, dpitch, (const char *)src, spitch, width, height});
}

/* the checks of a memset at its call, then the fill as stream s's work */
static cudaError_t memset_issue(const char *call, void *dst, int value, size_t bytes,
                                cudaStream_t s) {
    context_make();
    if (api_result() != cudaSuccess)
        return g_sticky;
    if (bytes == 0)
        return cudaSuccess;
    if (!cudasim::device_range(dst, bytes))
        return set_error(cudaErrorInvalidValue,
                         "%s: %p (+%zu bytes) is not inside one device allocation", call, dst,
                         bytes);
    return cudasim::stream_issue(
        s, call,
        [dst, value, bytes] {
            if (!cudasim::device_faulted())
                memset(dst, value, bytes);
        },
        NULL);
}

extern "C" cudaError_t cudaMemset(void *dst, int value, size_t bytes) {
    return memset_issue("cudaMemset", dst, value, bytes, NULL);
}

extern "C" cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t stream) {
    return memset_issue("cudaMemsetAsync", dst, value, bytes, stream);
}

extern "C" cudaError_t cudaDeviceSynchronize(void) {
    context_make();
    cudasim::streams_flush_all();
    return api_result();
}

/* --- the device ----------------------------------------------------------------------- */
static int device_count(void) {
    const char *s = getenv("CUDASIM_DEVICE_COUNT"); /* 0: simulate a machine without a GPU */
    return s && s[0] ? atoi(s) : 1;
}

extern "C" cudaError_t cudaGetDeviceCount(int *count) {
    *count = device_count();
    if (*count == 0)
        return set_error(cudaErrorNoDevice, "CUDASIM_DEVICE_COUNT=0: no simulated device");
    return cudaSuccess;
}

/* the simulated driver is as new as the toolkit the simulator is built against */
extern "C" cudaError_t cudaDriverGetVersion(int *version) {
    if (!version)
        return set_error(cudaErrorInvalidValue, "cudaDriverGetVersion: NULL");
    *version = CUDART_VERSION;
    return cudaSuccess;
}

extern "C" cudaError_t cudaRuntimeGetVersion(int *version) {
    if (!version)
        return set_error(cudaErrorInvalidValue, "cudaRuntimeGetVersion: NULL");
    *version = CUDART_VERSION;
    return cudaSuccess;
}

/* the current device: each process simulates one card, whichever index it picks (the ranks of
 * a data-parallel run pick one each, as on a machine with CUDASIM_DEVICE_COUNT cards) */
static int g_current_device = 0;

extern "C" cudaError_t cudaGetDevice(int *dev) {
    *dev = g_current_device;
    return cudaSuccess;
}

extern "C" cudaError_t cudaSetDevice(int dev) {
    if (dev < 0 || dev >= device_count())
        return set_error(cudaErrorInvalidDevice, "cudaSetDevice(%d): %d simulated devices", dev,
                         device_count());
    g_current_device = dev;
    return cudaSuccess;
}

extern "C" cudaError_t cudaDeviceGetPCIBusId(char *bus, int len, int dev) {
    if (dev < 0 || dev >= device_count())
        return set_error(cudaErrorInvalidDevice, "cudaDeviceGetPCIBusId(%d)", dev);
    snprintf(bus, (size_t)len, "0000:01:00.0");
    return cudaSuccess;
}

extern "C" cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int dev) {
    if (dev < 0 || dev >= device_count())
        return set_error(cudaErrorInvalidDevice, "cudaGetDeviceProperties(%d)", dev);
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", CUDASIM_NAME);
    p->totalGlobalMem = total_bytes();
    p->sharedMemPerBlock = SM89_SHARED_PER_BLOCK;
    p->sharedMemPerBlockOptin = SM89_SHARED_OPTIN;
    p->sharedMemPerMultiprocessor = 102400;
    p->regsPerBlock = 65536;
    p->regsPerMultiprocessor = 65536;
    p->warpSize = 32;
    p->maxThreadsPerBlock = SM89_MAX_THREADS;
    p->maxThreadsDim[0] = SM89_MAX_BLOCK_X;
    p->maxThreadsDim[1] = SM89_MAX_BLOCK_Y;
    p->maxThreadsDim[2] = SM89_MAX_BLOCK_Z;
    p->maxGridSize[0] = (int)SM89_MAX_GRID_X;
    p->maxGridSize[1] = (int)SM89_MAX_GRID_YZ;
    p->maxGridSize[2] = (int)SM89_MAX_GRID_YZ;
    p->totalConstMem = 65536;
    p->major = 8;
    p->minor = 9;
    p->multiProcessorCount = SM89_SMS;
    p->maxThreadsPerMultiProcessor = 1536;
    p->maxBlocksPerMultiProcessor = 24;
    p->l2CacheSize = 36 << 20;
    p->memoryBusWidth = 192;
    p->pciBusID = 1;
    p->unifiedAddressing = 1;
    return cudaSuccess;
}

extern "C" cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int dev) {
    if (dev < 0 || dev >= device_count())
        return set_error(cudaErrorInvalidDevice, "cudaDeviceGetAttribute on device %d", dev);
    switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock:
        *value = SM89_MAX_THREADS;
        return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlock:
        *value = SM89_SHARED_PER_BLOCK;
        return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
        *value = SM89_SHARED_OPTIN;
        return cudaSuccess;
    case cudaDevAttrMultiProcessorCount:
        *value = SM89_SMS;
        return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor:
        *value = 8;
        return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor:
        *value = 9;
        return cudaSuccess;
    default:
        return set_error(cudaErrorInvalidValue,
                         "cudaDeviceGetAttribute: attribute %d is not "
                         "simulated",
                         (int)attr);
    }
}

/* NCCL: a real libnccl.so.2 on the machine drives real GPUs, so the simulated binaries load
 * the simulator's stand-in instead (tests/cudasim/nccl/, collectives over MPI between the rank
 * processes): the file CUDASIM_NCCL names, else libnccl.so.2 next to the binary
 * (build/sim/libnccl.so.2). A missing file fails as a missing NCCL does, with dlerror's text. */
static const char *nccl_standin(char *buf, size_t len) {
    const char *env = getenv("CUDASIM_NCCL");
    if (env && env[0])
        return env;
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    buf[n > 0 ? n : 0] = 0;
    char *slash = strrchr(buf, '/');
    snprintf(slash ? slash + 1 : buf, len - (size_t)(slash ? slash + 1 - buf : 0), "libnccl.so.2");
    return buf;
}

/* NVML is absent on the simulated card: a real libnvidia-ml.so on the machine describes a
 * real GPU, not this one, so the simulated binaries never load it (device_mem.c's dlopen
 * resolves to this definition in them) and the report's no-NVML path runs everywhere.
 * libnccl is the stand-in (nccl_standin). */
extern "C" void *dlopen(const char *file, int mode) {
    typedef void *(*DlopenFn)(const char *, int);
    static DlopenFn next = NULL;
    if (file && strstr(file, "libnvidia-ml"))
        return NULL;
    if (!next)
        next = (DlopenFn)dlsym(RTLD_NEXT, "dlopen");
    char path[4096];
    if (file && strstr(file, "libnccl"))
        file = nccl_standin(path, sizeof path);
    return next ? next(file, mode) : NULL;
}

/* --- kernels' names and static shared memory, from the symbol table -------------------- */
/* mangled name -> name: "_Z<len><name>..." (a function at global scope) -> name;
 * "_ZN<len><ns><len><name>...E..." (in a namespace, as the backend's kernels are: x_f16 and
 * x_bf16, cuda_common.cuh) -> "ns::name". Template arguments are not part of it. */
static std::string base_name(const char *m) {
    if (strncmp(m, "_Z", 2) != 0)
        return m;
    const char *p = m + 2;
    int nested = *p == 'N';
    if (nested)
        p++;
    std::string out;
    for (;;) {
        char *end;
        long n = strtol(p, &end, 10);
        if (end == p || n <= 0 || (long)strlen(end) < n)
            return out.empty() ? std::string(m) : out;
        out += (out.empty() ? "" : "::") + std::string(end, (size_t)n);
        p = end + n;
        if (!nested || *p < '1' || *p > '9')
            return out;
    }
}

static std::map<std::string, size_t> *g_static_shared; /* kernel name -> bytes */
static std::map<uintptr_t, std::string> *g_func_names; /* address -> kernel name */

static uintptr_t load_bias(void) {
    static uintptr_t bias = 0;
    static int done = 0;
    if (!done) {
        done = 1;
        dl_iterate_phdr(
            [](struct dl_phdr_info *info, size_t, void *data) -> int {
                *(uintptr_t *)data = info->dlpi_addr;
                return 1; /* the first entry is the program itself */
            },
            &bias);
    }
    return bias;
}

static void symbols_load(void) {
    if (g_static_shared)
        return;
    g_static_shared = new std::map<std::string, size_t>();
    g_func_names = new std::map<uintptr_t, std::string>();
    int fd = open("/proc/self/exe", O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return;
    const char *base = (const char *)map;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(base + eh->e_shoff);
    const char *shstr = base + sh[eh->e_shstrndx].sh_offset;
    int shared_idx = -1;
    for (int i = 0; i < eh->e_shnum; i++)
        if (strcmp(shstr + sh[i].sh_name, "cudasim_shared") == 0)
            shared_idx = i;
    uintptr_t bias = load_bias();
    for (int i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_SYMTAB)
            continue;
        const Elf64_Sym *sym = (const Elf64_Sym *)(base + sh[i].sh_offset);
        size_t n = sh[i].sh_size / sizeof(Elf64_Sym);
        const char *str = base + sh[sh[i].sh_link].sh_offset;
        for (size_t k = 0; k < n; k++) {
            const char *nm = str + sym[k].st_name;
            if (shared_idx >= 0 && sym[k].st_shndx == shared_idx && strncmp(nm, "_ZZ", 3) == 0)
                /* "_ZZ<len><kernel>...E<var>": a static local of <kernel> */
                (*g_static_shared)[base_name(("_Z" + std::string(nm + 3)).c_str())] +=
                    sym[k].st_size;
            else if (ELF64_ST_TYPE(sym[k].st_info) == STT_FUNC && sym[k].st_value)
                (*g_func_names)[bias + sym[k].st_value] = base_name(nm);
        }
    }
    munmap(map, (size_t)st.st_size);
}

static size_t static_shared_bytes(const char *kernel) {
    symbols_load();
    auto it = g_static_shared->find(kernel);
    return it == g_static_shared->end() ? 0 : it->second;
}

extern "C" cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, const void *func) {
    symbols_load();
    auto it = g_func_names->find((uintptr_t)func);
    if (!attr || it == g_func_names->end())
        return set_error(cudaErrorInvalidDeviceFunction,
                         "cudaFuncGetAttributes: %p is not a function of this program", func);
    memset(attr, 0, sizeof(*attr));
    attr->sharedSizeBytes = static_shared_bytes(it->second.c_str());
    attr->maxThreadsPerBlock = SM89_MAX_THREADS;
    attr->maxDynamicSharedSizeBytes = (int)(SM89_SHARED_PER_BLOCK - attr->sharedSizeBytes);
    attr->binaryVersion = 89;
    attr->ptxVersion = 89;
    return cudaSuccess;
}

/* --- the execution model -------------------------------------------------------------- */
namespace cudasim {
uint3 cur_thread_idx;
uint3 cur_block_idx;
dim3 cur_block_dim;
dim3 cur_grid_dim;
} // namespace cudasim

enum FiberState { F_READY, F_BLOCK_WAIT, F_WARP_WAIT, F_DONE };

struct Fiber {
    void *sp; /* saved stack pointer while switched out */
    char *stack;
    FiberState state;
    uint3 tid;
    int lane, warp;
    /* block barrier */
    cudasim::BlockOpKind bkind;
    int pred, bresult;
    /* warp barrier */
    cudasim::WarpOpKind wkind;
    unsigned mask;
    uint64_t value, wresult;
    int arg, width;
    const char *what;
    cudasim::WarpCollectiveFn coll_fn; /* WARP_COLLECTIVE: the operation */
    void *fake_stack;
};

static void *g_sched_sp; /* the scheduler's stack pointer while a fiber runs */

/* Switches stacks: saves the callee-saved registers on the current stack and its pointer in
 * *save_sp, then continues on to_sp. A fiber is a stack prepared to "return" into fiber_main.
 * (glibc's swapcontext also saves the signal mask with a system call at every switch, and the
 * simulator switches at every barrier and shuffle of every thread: this is ~50x faster.) */
extern "C" void cudasim_switch(void **save_sp, void *to_sp);
#if defined(__x86_64__)
asm(".text\n"
    ".globl cudasim_switch\n"
    ".type cudasim_switch,@function\n"
    "cudasim_switch:\n"
    "    pushq %rbp\n    pushq %rbx\n    pushq %r12\n    pushq %r13\n    pushq %r14\n"
    "    pushq %r15\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rsp\n"
    "    popq %r15\n    popq %r14\n    popq %r13\n    popq %r12\n    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n"
    ".size cudasim_switch, .-cudasim_switch\n");
#define CUDASIM_SAVED_REGS 6
#else
#error "the CUDA simulator's fiber switch is written for x86-64"
#endif
static std::vector<Fiber> g_fibers;
static std::vector<char *> g_stacks;
static Fiber *g_cur;
static void (*g_body)(void *);
static void *g_body_ctx;
static void *g_dyn_shared;
static size_t g_dyn_bytes;
static const char *g_kernel;
#ifdef CUDASIM_ASAN
static void *g_sched_fake;
static const void *g_main_bottom;
static size_t g_main_size;
#endif

static char *stack_get(size_t i) {
    while (g_stacks.size() <= i) {
        void *s = mmap(NULL, FIBER_STACK_BYTES, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (s == MAP_FAILED) {
            fprintf(stderr, "cudasim: cannot map a fiber stack\n");
            abort();
        }
        mprotect(s, 4096, PROT_NONE); /* guard page: an overflow faults */
        g_stacks.push_back((char *)s);
    }
    return g_stacks[i];
}

/* fiber -> scheduler */
static void fiber_yield(void) {
    Fiber *f = g_cur;
#ifdef CUDASIM_ASAN
    __sanitizer_start_switch_fiber(&f->fake_stack, g_main_bottom, g_main_size);
#endif
    cudasim_switch(&f->sp, g_sched_sp);
#ifdef CUDASIM_ASAN
    __sanitizer_finish_switch_fiber(f->fake_stack, &g_main_bottom, &g_main_size);
#endif
}

static void cp_async_thread_end(void);
static void cp_async_maybe_early(void);

static void fiber_main(void) {
#ifdef CUDASIM_ASAN
    __sanitizer_finish_switch_fiber(NULL, &g_main_bottom, &g_main_size);
#endif
    g_body(g_body_ctx);
    cp_async_thread_end();
    g_cur->state = F_DONE;
#ifdef CUDASIM_ASAN
    __sanitizer_start_switch_fiber(NULL, g_main_bottom, g_main_size); /* this fiber ends */
#endif
    cudasim_switch(&g_cur->sp, g_sched_sp); /* never resumed: the stack is reused */
}

/* scheduler -> fiber */
static void fiber_resume(Fiber *f) {
    g_cur = f;
    cudasim::cur_thread_idx = f->tid;
#ifdef CUDASIM_ASAN
    __sanitizer_start_switch_fiber(&g_sched_fake, f->stack, FIBER_STACK_BYTES);
#endif
    cudasim_switch(&g_sched_sp, f->sp);
#ifdef CUDASIM_ASAN
    __sanitizer_finish_switch_fiber(g_sched_fake, NULL, NULL);
#endif
}

static bool g_failed_block; /* the running block hit an error and is abandoned */

static void launch_fail(const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    set_error(cudaErrorLaunchFailure, "kernel %s, block (%u,%u,%u): %s (schedule seed %llu)",
              g_kernel, cudasim::cur_block_idx.x, cudasim::cur_block_idx.y,
              cudasim::cur_block_idx.z, msg, (unsigned long long)seed_get());
    g_sticky = cudaErrorLaunchFailure;
    g_failed_block = true;
}

namespace cudasim {

void *dynamic_shared(void) { return g_dyn_shared; }

int block_op(BlockOpKind kind, int pred) {
    cp_async_maybe_early();
    Fiber *f = g_cur;
    f->bkind = kind;
    f->pred = pred;
    f->state = F_BLOCK_WAIT;
    fiber_yield();
    return f->bresult;
}

uint64_t warp_op(WarpOpKind kind, unsigned mask, uint64_t value, int arg, int width,
                 const char *what) {
    cp_async_maybe_early();
    Fiber *f = g_cur;
    f->wkind = kind;
    f->mask = mask;
    f->value = value;
    f->arg = arg;
    f->width = width;
    f->what = what;
    f->state = F_WARP_WAIT;
    fiber_yield();
    return f->wresult;
}

void warp_collective(WarpCollectiveFn fn, void *mine, int shape, const char *what) {
    cp_async_maybe_early();
    Fiber *f = g_cur;
    f->wkind = WARP_COLLECTIVE;
    f->mask = 0xffffffffu; /* .sync.aligned: every lane of the warp */
    f->value = (uint64_t)(uintptr_t)mine;
    f->arg = shape;
    f->width = 32;
    f->what = what;
    f->coll_fn = fn;
    f->state = F_WARP_WAIT;
    fiber_yield();
}

} // namespace cudasim

static const char *block_op_name(cudasim::BlockOpKind k) {
    switch (k) {
    case cudasim::BLOCK_SYNC:
        return "__syncthreads";
    case cudasim::BLOCK_OR:
        return "__syncthreads_or";
    case cudasim::BLOCK_AND:
        return "__syncthreads_and";
    case cudasim::BLOCK_COUNT:
        return "__syncthreads_count";
    }
    return "?";
}

static const char *state_name(const Fiber &f) {
    switch (f.state) {
    case F_READY:
        return "running";
    case F_BLOCK_WAIT:
        return block_op_name(f.bkind);
    case F_WARP_WAIT:
        return f.what;
    case F_DONE:
        return "exited";
    }
    return "?";
}

/* runs a warp collective whose 32 lanes have all arrived; -1 when it failed the launch */
static int collective_run(Fiber *lanes, int w) {
    void *mine[32];
    for (int m = 0; m < 32; m++)
        mine[m] = (void *)(uintptr_t)lanes[m].value;
    const char *err = lanes[0].coll_fn(mine, lanes[0].arg);
    if (err) {
        launch_fail("warp %d: %s: %s", w, lanes[0].what, err);
        return -1;
    }
    for (int m = 0; m < 32; m++)
        lanes[m].state = F_READY;
    return 0;
}

/* completes the warp barriers whose lanes have all arrived; 1 if any did, -1 on an error */
static int warps_resolve(int nthreads) {
    int any = 0;
    int nwarps = (nthreads + 31) / 32;
    for (int w = 0; w < nwarps; w++) {
        Fiber *lanes = &g_fibers[(size_t)w * 32];
        int nl = nthreads - w * 32 < 32 ? nthreads - w * 32 : 32;
        for (int l = 0; l < nl; l++) {
            Fiber &f = lanes[l];
            if (f.state != F_WARP_WAIT)
                continue;
            unsigned mask = f.mask;
            if (!(mask & (1u << l))) {
                launch_fail("thread %d: %s with mask 0x%08x, which leaves out its own lane %d",
                            w * 32 + l, f.what, mask, l);
                return -1;
            }
            if (f.width < 1 || f.width > 32 || (f.width & (f.width - 1))) {
                launch_fail("thread %d: %s with width %d (a power of two up to 32)", w * 32 + l,
                            f.what, f.width);
                return -1;
            }
            /* every lane of the mask must be at the same operation with the same mask */
            bool complete = true;
            for (int m = 0; m < 32; m++) {
                if (!(mask & (1u << m)))
                    continue;
                if (m >= nl) {
                    launch_fail("warp %d: %s mask 0x%08x names lane %d, which the block does not "
                                "have (%d threads)",
                                w, f.what, mask, m, nthreads);
                    return -1;
                }
                Fiber &o = lanes[m];
                if (o.state == F_WARP_WAIT && f.wkind == cudasim::WARP_COLLECTIVE &&
                    o.wkind == f.wkind && o.what == f.what &&
                    (o.arg != f.arg || o.coll_fn != f.coll_fn)) {
                    launch_fail("warp %d: lane %d is at %s of shape %d while lane %d is at %s of "
                                "shape %d (divergence: lanes disagree on the operation)",
                                w, l, f.what, f.arg, m, o.what, o.arg);
                    return -1;
                }
                if (o.state == F_WARP_WAIT &&
                    (o.mask != mask || o.wkind != f.wkind || o.what != f.what)) {
                    launch_fail("warp %d: lane %d is at %s (mask 0x%08x) while lane %d is at %s "
                                "(mask 0x%08x)",
                                w, l, f.what, mask, m, o.what, o.mask);
                    return -1;
                }
                if (o.state == F_DONE) {
                    launch_fail("warp %d: lane %d waits at %s (mask 0x%08x) for lane %d, which "
                                "exited",
                                w, l, f.what, mask, m);
                    return -1;
                }
                if (o.state != F_WARP_WAIT)
                    complete = false;
            }
            if (!complete)
                continue;
            if (f.wkind == cudasim::WARP_COLLECTIVE) {
                if (collective_run(lanes, w) < 0)
                    return -1;
                any = 1;
                continue;
            }
            uint64_t ballot = 0;
            for (int m = 0; m < 32; m++)
                if ((mask & (1u << m)) && lanes[m].value)
                    ballot |= 1ull << m;
            for (int m = 0; m < 32; m++) {
                if (!(mask & (1u << m)))
                    continue;
                Fiber &o = lanes[m];
                int seg = m & ~(o.width - 1), src = m;
                switch (o.wkind) {
                case cudasim::WARP_SHFL:
                    src = seg + (o.arg & (o.width - 1));
                    break;
                case cudasim::WARP_SHFL_UP:
                    src = (m - seg) >= o.arg ? m - o.arg : m;
                    break;
                case cudasim::WARP_SHFL_DOWN:
                    src = (m - seg) + o.arg < o.width ? m + o.arg : m;
                    break;
                case cudasim::WARP_SHFL_XOR:
                    src = m ^ (o.arg & 31);
                    if (src >= seg + o.width)
                        src = m; /* a later group's lane: own value (CUDA's rule) */
                    break;
                case cudasim::WARP_VOTE:
                case cudasim::WARP_SYNC:
                case cudasim::WARP_COLLECTIVE: /* handled above */
                    break;
                }
                if (o.wkind == cudasim::WARP_VOTE) {
                    o.wresult = ballot;
                } else {
                    if (!(mask & (1u << src))) {
                        launch_fail("warp %d: lane %d's %s reads lane %d, outside the mask "
                                    "0x%08x (undefined on the GPU)",
                                    w, m, o.what, src, mask);
                        return -1;
                    }
                    o.wresult = lanes[src].value;
                }
            }
            for (int m = 0; m < 32; m++)
                if (mask & (1u << m))
                    lanes[m].state = F_READY;
            any = 1;
        }
    }
    return any;
}

/* completes the block barrier when every thread is at it; 1 if it did, -1 on an error */
static int block_resolve(int nthreads) {
    int waiting = 0, done = 0, first_wait = -1, first_done = -1;
    for (int i = 0; i < nthreads; i++) {
        if (g_fibers[i].state == F_BLOCK_WAIT) {
            waiting++;
            if (first_wait < 0)
                first_wait = i;
        } else if (g_fibers[i].state == F_DONE) {
            done++;
            if (first_done < 0)
                first_done = i;
        }
    }
    if (waiting == 0 || waiting + done < nthreads)
        return 0;
    if (done > 0) {
        launch_fail("barrier divergence: %d threads wait at %s (thread %d first) while %d exited "
                    "(thread %d first)",
                    waiting, block_op_name(g_fibers[first_wait].bkind), first_wait, done,
                    first_done);
        return -1;
    }
    cudasim::BlockOpKind k = g_fibers[0].bkind;
    int count = 0;
    for (int i = 0; i < nthreads; i++) {
        if (g_fibers[i].bkind != k) {
            launch_fail("barrier divergence: thread 0 is at %s, thread %d at %s", block_op_name(k),
                        i, block_op_name(g_fibers[i].bkind));
            return -1;
        }
        count += g_fibers[i].pred != 0;
    }
    int r = 0;
    if (k == cudasim::BLOCK_OR)
        r = count > 0;
    else if (k == cudasim::BLOCK_AND)
        r = count == nthreads;
    else if (k == cudasim::BLOCK_COUNT)
        r = count;
    for (int i = 0; i < nthreads; i++) {
        g_fibers[i].bresult = r;
        g_fibers[i].state = F_READY;
    }
    return 1;
}

/* --- cp.async: copies recorded per thread, done at the wait or earlier ------------------ */
struct CpCopy {
    void *dst;
    const void *src;
    int bytes;
    int group; /* -1: not committed yet */
};
static std::vector<std::vector<CpCopy>> g_cp; /* per thread of the running block */
static std::vector<int> g_cp_next_group;      /* per thread: the next group's number */
static uint64_t g_cp_rng;                     /* early completions, from the launch's seed */

static void cp_async_block_start(int nthreads) {
    g_cp.assign((size_t)nthreads, std::vector<CpCopy>());
    g_cp_next_group.assign((size_t)nthreads, 0);
}

static size_t cur_thread(void) { return (size_t)(g_cur - g_fibers.data()); }

/* copies the thread's oldest committed group; false when there is none */
static bool cp_async_complete_oldest(std::vector<CpCopy> &q) {
    if (q.empty() || q[0].group < 0)
        return false;
    int g = q[0].group;
    size_t n = 0;
    while (n < q.size() && q[n].group == g) {
        memcpy(q[n].dst, q[n].src, (size_t)q[n].bytes);
        n++;
    }
    q.erase(q.begin(), q.begin() + (long)n);
    return true;
}

/* at any cp.async call or barrier of the thread, its committed groups may complete early
 * (oldest first, each with probability 1/4 from the seed), as the hardware may finish them */
static void cp_async_maybe_early(void) {
    if (!g_cur)
        return;
    std::vector<CpCopy> &q = g_cp[cur_thread()];
    while (!q.empty() && q[0].group >= 0 && splitmix64(&g_cp_rng) % 4 == 0)
        cp_async_complete_oldest(q);
}

/* a thread that exits with copies in flight: they still land (nothing reads them after) */
static void cp_async_thread_end(void) {
    std::vector<CpCopy> &q = g_cp[cur_thread()];
    for (CpCopy &c : q)
        memcpy(c.dst, c.src, (size_t)c.bytes);
    q.clear();
}

/* the linker's bounds of the section; weak: a program without __shared__ arrays (the NCCL
 * stand-in's test) has no such section, and the bounds are then NULL */
extern char __start_cudasim_shared[] __attribute__((weak));
extern char __stop_cudasim_shared[] __attribute__((weak));

namespace cudasim {

/* 1 when [p, p + n) is shared memory: the launch's dynamic buffer or a static __shared__ array */
bool shared_range(const void *p, size_t n) {
    uintptr_t a = (uintptr_t)p, d = (uintptr_t)g_dyn_shared;
    if (g_dyn_shared && a >= d && a + n <= d + g_dyn_bytes)
        return true;
    return __start_cudasim_shared && a >= (uintptr_t)__start_cudasim_shared &&
           a + n <= (uintptr_t)__stop_cudasim_shared;
}

void cp_async(void *dst, const void *src, int bytes) {
    if (g_failed_block) /* the block is abandoned: one report is enough */
        return;
    cp_async_maybe_early();
    if (bytes != 4 && bytes != 8 && bytes != 16)
        return launch_fail("thread %zu: cp.async of %d bytes (4, 8 or 16)", cur_thread(), bytes);
    if (((uintptr_t)dst | (uintptr_t)src) % (uintptr_t)bytes)
        return launch_fail("thread %zu: cp.async of %d bytes from %p to %p: both addresses must "
                           "be aligned to %d",
                           cur_thread(), bytes, src, dst, bytes);
    if (!shared_range(dst, (size_t)bytes))
        return launch_fail("thread %zu: cp.async destination %p is not shared memory (the "
                           "launch's dynamic buffer or a non-template kernel's __shared__ array)",
                           cur_thread(), dst);
    if (!device_range(src, (size_t)bytes))
        return launch_fail("thread %zu: cp.async source %p (+%d bytes) is not inside one device "
                           "allocation",
                           cur_thread(), src, bytes);
    g_cp[cur_thread()].push_back(CpCopy{dst, src, bytes, -1});
}

void cp_async_commit(void) {
    cp_async_maybe_early();
    size_t t = cur_thread();
    int g = g_cp_next_group[t]++;
    for (CpCopy &c : g_cp[t])
        if (c.group < 0)
            c.group = g;
}

void cp_async_wait(int pending) {
    cp_async_maybe_early();
    size_t t = cur_thread();
    std::vector<CpCopy> &q = g_cp[t];
    int newest = g_cp_next_group[t] - 1; /* groups newest-pending+1 .. newest may stay */
    while (!q.empty() && q[0].group >= 0 && q[0].group <= newest - pending)
        cp_async_complete_oldest(q);
}

} // namespace cudasim

enum Order { ORDER_FORWARD, ORDER_REVERSE, ORDER_SHUFFLED };

static void order_make(std::vector<int> &order, int n, Order mode, uint64_t *rng) {
    order.resize((size_t)n);
    for (int i = 0; i < n; i++)
        order[(size_t)i] = mode == ORDER_REVERSE ? n - 1 - i : i;
    if (mode == ORDER_SHUFFLED)
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(splitmix64(rng) % (uint64_t)(i + 1));
            int t = order[(size_t)i];
            order[(size_t)i] = order[(size_t)j];
            order[(size_t)j] = t;
        }
}

/* runs one block; false when it failed */
static bool block_run(int nthreads, dim3 block, Order mode, uint64_t *rng) {
    g_fibers.resize((size_t)nthreads);
    for (int i = 0; i < nthreads; i++) {
        Fiber &f = g_fibers[(size_t)i];
        memset(&f, 0, sizeof(f));
        f.stack = stack_get((size_t)i);
#ifdef CUDASIM_ASAN
        /* a fiber of an abandoned block (a reported error) left its frames' redzones
         * poisoned on this reused stack; the new thread starts on a clean one */
        ASAN_UNPOISON_MEMORY_REGION(f.stack + 4096, FIBER_STACK_BYTES - 4096);
#endif
        f.tid.x = (unsigned)i % block.x;
        f.tid.y = ((unsigned)i / block.x) % block.y;
        f.tid.z = (unsigned)i / (block.x * block.y);
        f.lane = i % 32;
        f.warp = i / 32;
        f.state = F_READY;
        /* the first switch to the fiber pops zeroed registers and "returns" into fiber_main,
         * with the stack aligned as at a call (rsp + 8 a multiple of 16) */
        void **sp = (void **)(((uintptr_t)f.stack + FIBER_STACK_BYTES) & ~(uintptr_t)15);
        *--sp = NULL; /* fiber_main's return address: it never returns */
        *--sp = (void *)fiber_main;
        for (int r = 0; r < CUDASIM_SAVED_REGS; r++)
            *--sp = NULL;
        f.sp = sp;
    }
    std::vector<int> order;
    g_failed_block = false;
    cp_async_block_start(nthreads);
    for (;;) {
        order_make(order, nthreads, mode, rng);
        for (int i : order) {
            Fiber &f = g_fibers[(size_t)i];
            if (f.state == F_READY)
                fiber_resume(&f);
        }
        if (g_failed_block) /* a thread's own error (a refused cp.async) */
            return false;
        int done = 0;
        for (int i = 0; i < nthreads; i++)
            done += g_fibers[(size_t)i].state == F_DONE;
        if (done == nthreads)
            return true;
        int w = warps_resolve(nthreads);
        if (w < 0)
            return false;
        int b = w ? 0 : block_resolve(nthreads);
        if (b < 0)
            return false;
        if (!w && !b) {
            /* nothing can move: name what every stuck thread waits at */
            int first = -1;
            for (int i = 0; i < nthreads && first < 0; i++)
                if (g_fibers[(size_t)i].state != F_DONE)
                    first = i;
            launch_fail("deadlock: thread %d waits at %s; %d of %d threads exited; threads at "
                        "a block barrier and at a warp operation wait for each other",
                        first, state_name(g_fibers[(size_t)first]), done, nthreads);
            return false;
        }
    }
}

/* a launch's configuration against sm_89's limits: cudaSuccess, or the refusal (set as the
 * last error, naming the kernel) */
static cudaError_t launch_check(const char *name, const void *fn, dim3 grid, dim3 block,
                                size_t shared_bytes) {
    unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (block.x == 0 || block.y == 0 || block.z == 0 || grid.x == 0 || grid.y == 0 || grid.z == 0)
        return set_error(cudaErrorInvalidConfiguration,
                         "launch of %s refused: grid (%u,%u,%u), block "
                         "(%u,%u,%u) has a zero dimension",
                         name, grid.x, grid.y, grid.z, block.x, block.y, block.z);
    if (threads > SM89_MAX_THREADS || block.x > SM89_MAX_BLOCK_X || block.y > SM89_MAX_BLOCK_Y ||
        block.z > SM89_MAX_BLOCK_Z)
        return set_error(cudaErrorInvalidConfiguration,
                         "launch of %s refused: block (%u,%u,%u) = %llu threads; sm_89 allows %d "
                         "per block, dimensions up to (%d,%d,%d)",
                         name, block.x, block.y, block.z, threads, SM89_MAX_THREADS,
                         SM89_MAX_BLOCK_X, SM89_MAX_BLOCK_Y, SM89_MAX_BLOCK_Z);
    if (grid.x > SM89_MAX_GRID_X || grid.y > SM89_MAX_GRID_YZ || grid.z > SM89_MAX_GRID_YZ)
        return set_error(cudaErrorInvalidConfiguration,
                         "launch of %s refused: grid (%u,%u,%u); sm_89 allows (%u,%u,%u)", name,
                         grid.x, grid.y, grid.z, SM89_MAX_GRID_X, SM89_MAX_GRID_YZ,
                         SM89_MAX_GRID_YZ);
    /* the kernel's own symbol (its namespace included) when the table knows its address */
    symbols_load();
    auto fn_name = g_func_names->find((uintptr_t)fn);
    size_t stat =
        static_shared_bytes(fn_name != g_func_names->end() ? fn_name->second.c_str() : name);
    if (stat + shared_bytes > SM89_SHARED_PER_BLOCK)
        return set_error(cudaErrorInvalidValue,
                         "launch of %s refused: %zu bytes of static + %zu of dynamic shared "
                         "memory > %d per block (sm_89 without opt-in)",
                         name, stat, shared_bytes, SM89_SHARED_PER_BLOCK);
    return cudaSuccess;
}

/* runs an accepted launch's grid (now, or when its stream's queue reaches it) */
static void launch_run(const char *name, dim3 grid, dim3 block, size_t shared_bytes,
                       void (*body)(void *), void *ctx) {
    if (g_sticky != cudaSuccess)
        return; /* a faulted device runs nothing more */
    uint64_t rng = seed_get() ^ (0x51ed2701ULL * ++g_launches);
    Order mode = (Order)(splitmix64(&rng) % 3);
    g_kernel = name;
    g_body = body;
    g_body_ctx = ctx;
    g_dyn_shared = shared_bytes ? malloc(shared_bytes) : NULL;
    g_dyn_bytes = shared_bytes;
    g_cp_rng = splitmix64(&rng);
    cudasim::cur_block_dim = block;
    cudasim::cur_grid_dim = grid;
    int nthreads = (int)(block.x * block.y * block.z);
    bool ok = true;
    for (unsigned z = 0; z < grid.z && ok; z++)
        for (unsigned y = 0; y < grid.y && ok; y++)
            for (unsigned x = 0; x < grid.x && ok; x++) {
                cudasim::cur_block_idx = uint3{x, y, z};
                if (g_dyn_shared)
                    memset(g_dyn_shared, 0xff, shared_bytes); /* unwritten shared is NaN */
                ok = block_run(nthreads, block, mode, &rng);
            }
    free(g_dyn_shared);
    g_dyn_shared = NULL;
    g_kernel = NULL;
}

namespace cudasim {

void launch(const char *name, const void *fn, dim3 grid, dim3 block, size_t shared_bytes,
            cudaStream_t stream, void (*body)(void *), void *ctx, void (*release)(void *)) {
    context_make();
    seed_get();
    cudaError_t e = g_sticky;
    if (e != cudaSuccess)
        g_last = g_sticky;
    else
        e = launch_check(name, fn, grid, block, shared_bytes);
    if (e == cudaSuccess)
        e = cudasim::stream_issue(
            stream, name,
            [=] {
                launch_run(name, grid, block, shared_bytes, body, ctx);
                release(ctx);
            },
            NULL);
    if (e != cudaSuccess)
        release(ctx); /* refused: nothing runs */
}

} // namespace cudasim

/* for the simulator's own tests: forget a device fault, as a new process would */
extern "C" void cudasim_fault_clear(void) {
    g_sticky = cudaSuccess;
    g_last = cudaSuccess;
    g_detail[0] = '\0';
    g_detail_code = cudaSuccess;
}
