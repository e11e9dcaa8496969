/* nccl_comm.c: model/nccl_comm.h on NCCL 2, loaded at run time: libnccl.so.2 is opened with
 * dlopen, so nothing links against it and one-process runs never need it. Only the entry
 * points below are declared, with our own types; where nccl.h is present at build time (the
 * CUDA toolkit's include directory; not the simulator build) each declaration and every enum
 * value used is checked against it (_Static_assert).
 *
 * The simulator build runs this same file: its dlopen hands out tests/cudasim/nccl/'s
 * stand-in (collectives over MPI between the rank processes) instead of a real NCCL.
 *
 * Errors: the collectives return -1 with err naming the call, the element count, the dtype and
 * NCCL's text (ncclGetErrorString, and ncclGetLastError where the library has it); after each
 * call the communicator's asynchronous error is read too (ncclCommGetAsyncError). The copy
 * entry (device to device, on the stream) records a failure in the CUDA backend's sticky error.
 * Not here: MPI (the id's broadcast and the host collectives are train/dist_mpi.c's). */
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../alloc/base.h"
#include "../nccl_comm.h"
#include "cuda_backend.h"

/* ---------------------------------------------------------------------------------------- */
/* the entry points we use, our declarations                                                 */

typedef unsigned int NcclResult; /* ncclResult_t (an enum of unsigned int); 0 = ncclSuccess */
typedef unsigned int NcclEnum;   /* ncclDataType_t, ncclRedOp_t */
typedef struct ncclComm *NcclComm;
typedef struct {
    char internal[GPT_NCCL_ID_BYTES];
} NcclId;
typedef struct CUstream_st *NcclStream;

typedef NcclResult (*NcclGetVersionFn)(int *version);
typedef NcclResult (*NcclGetUniqueIdFn)(NcclId *id);
typedef NcclResult (*NcclCommInitRankFn)(NcclComm *comm, int nranks, NcclId id, int rank);
typedef NcclResult (*NcclCommDestroyFn)(NcclComm comm);
typedef NcclResult (*NcclCommAbortFn)(NcclComm comm);
typedef NcclResult (*NcclCommGetAsyncErrorFn)(NcclComm comm, NcclResult *async_error);
typedef const char *(*NcclGetErrorStringFn)(NcclResult result);
typedef const char *(*NcclGetLastErrorFn)(NcclComm comm);
typedef NcclResult (*NcclGroupFn)(void);
typedef NcclResult (*NcclAllReduceFn)(const void *send, void *recv, size_t count, NcclEnum dtype,
                                      NcclEnum op, NcclComm comm, NcclStream stream);
typedef NcclResult (*NcclReduceScatterFn)(const void *send, void *recv, size_t recv_count,
                                          NcclEnum dtype, NcclEnum op, NcclComm comm,
                                          NcclStream stream);
typedef NcclResult (*NcclAllGatherFn)(const void *send, void *recv, size_t send_count,
                                      NcclEnum dtype, NcclComm comm, NcclStream stream);

/* enum values of nccl.h (NCCL 2) that we use */
enum {
    NCCL_SUCCESS = 0,
    NCCL_FLOAT16 = 6,
    NCCL_FLOAT32 = 7,
    NCCL_FLOAT64 = 8,
    NCCL_BFLOAT16 = 9,
    NCCL_SUM = 0,
};

#if defined(__has_include)
/* not in the simulator build (tests/cudasim/include first on the path), whose runtime header
 * is a stand-in */
#if __has_include(<nccl.h>) && !__has_include(<cudasim.h>)
/* Build-time check of our declarations against NCCL's header (not used otherwise). Its
 * enums are unsigned int to the compiler, as ours; the id is passed as bytes of its size. */
#include <nccl.h>
#define NCCL_SAME_TYPE(fn, ours)                                                                   \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&fn), ours),                            \
                   #fn ": nccl.h declares another type than nccl_comm.c")
NCCL_SAME_TYPE(ncclGetVersion, NcclGetVersionFn);
NCCL_SAME_TYPE(ncclGetErrorString, NcclGetErrorStringFn);
#if defined(NCCL_VERSION_CODE) && NCCL_VERSION_CODE >= NCCL_VERSION(2, 13, 0)
NCCL_SAME_TYPE(ncclGetLastError, NcclGetLastErrorFn); /* 2.13 and newer */
#endif
NCCL_SAME_TYPE(ncclCommDestroy, NcclCommDestroyFn);
NCCL_SAME_TYPE(ncclCommAbort, NcclCommAbortFn);
NCCL_SAME_TYPE(ncclCommGetAsyncError, NcclCommGetAsyncErrorFn);
NCCL_SAME_TYPE(ncclGroupStart, NcclGroupFn);
NCCL_SAME_TYPE(ncclGroupEnd, NcclGroupFn);
NCCL_SAME_TYPE(ncclAllReduce, NcclAllReduceFn);
NCCL_SAME_TYPE(ncclReduceScatter, NcclReduceScatterFn);
NCCL_SAME_TYPE(ncclAllGather, NcclAllGatherFn);
#define NCCL_SAME_VALUE(ours, theirs)                                                              \
    _Static_assert((long long)(ours) == (long long)(theirs), #theirs " changed value")
NCCL_SAME_VALUE(NCCL_SUCCESS, ncclSuccess);
NCCL_SAME_VALUE(NCCL_FLOAT16, ncclFloat16);
NCCL_SAME_VALUE(NCCL_FLOAT32, ncclFloat32);
NCCL_SAME_VALUE(NCCL_FLOAT64, ncclFloat64);
NCCL_SAME_VALUE(NCCL_BFLOAT16, ncclBfloat16);
NCCL_SAME_VALUE(NCCL_SUM, ncclSum);
NCCL_SAME_VALUE(GPT_NCCL_ID_BYTES, NCCL_UNIQUE_ID_BYTES);
_Static_assert(sizeof(NcclId) == sizeof(ncclUniqueId), "ncclUniqueId's size");
_Static_assert(sizeof(NcclResult) == sizeof(ncclResult_t), "ncclResult_t's size");
#endif
#endif

static struct {
    int state; /* 0 not tried, 1 loaded, -1 failed (reason) */
    char reason[512];
    char version[32];
    void *lib;
    NcclGetVersionFn get_version;
    NcclGetUniqueIdFn get_unique_id;
    NcclCommInitRankFn init_rank;
    NcclCommDestroyFn destroy;
    NcclCommAbortFn abort;
    NcclCommGetAsyncErrorFn async_error;
    NcclGetErrorStringFn error_string;
    NcclGetLastErrorFn last_error; /* NCCL 2.13 and newer; NULL before */
    NcclGroupFn group_start, group_end;
    NcclAllReduceFn all_reduce;
    NcclReduceScatterFn reduce_scatter;
    NcclAllGatherFn all_gather;
} nccl = {.version = "NCCL (not loaded)"};

struct GptNccl {
    NcclComm comm;
    NcclStream stream; /* the model's */
    int rank, world_size;
    /* the sums started during the backward: their own stream, which waits for `ready` (the
     * model's stream at the start), and `done`, which the model's stream waits for */
    cudaStream_t reduce_stream;
    cudaEvent_t ready, done;
};

/* ---------------------------------------------------------------------------------------- */
/* loading                                                                                   */

#define NCCL_INSTALL_HINT                                                                          \
    "install NCCL 2 (the libnccl2 package: Debian non-free, Ubuntu multiverse, or NVIDIA's CUDA "  \
    "repository), or run the ranks with --device=cpu"

static int nccl_open(void) {
    nccl.lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!nccl.lib) {
        const char *e = dlerror();
        snprintf(nccl.reason, sizeof nccl.reason,
                 "data parallel on cuda needs NCCL, and libnccl.so.2 cannot be loaded (%s): %s",
                 e ? e : "not found", NCCL_INSTALL_HINT);
        return -1;
    }
#define NCCL_SYM(field, name)                                                                      \
    do {                                                                                           \
        *(void **)&nccl.field = dlsym(nccl.lib, name);                                             \
        if (!nccl.field) {                                                                         \
            snprintf(nccl.reason, sizeof nccl.reason, "libnccl.so.2 has no %s: %s", name,          \
                     NCCL_INSTALL_HINT);                                                           \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)
    NCCL_SYM(get_version, "ncclGetVersion");
    NCCL_SYM(get_unique_id, "ncclGetUniqueId");
    NCCL_SYM(init_rank, "ncclCommInitRank");
    NCCL_SYM(destroy, "ncclCommDestroy");
    NCCL_SYM(abort, "ncclCommAbort");
    NCCL_SYM(async_error, "ncclCommGetAsyncError");
    NCCL_SYM(error_string, "ncclGetErrorString");
    NCCL_SYM(group_start, "ncclGroupStart");
    NCCL_SYM(group_end, "ncclGroupEnd");
    NCCL_SYM(all_reduce, "ncclAllReduce");
    NCCL_SYM(reduce_scatter, "ncclReduceScatter");
    NCCL_SYM(all_gather, "ncclAllGather");
#undef NCCL_SYM
    *(void **)&nccl.last_error = dlsym(nccl.lib, "ncclGetLastError");
    return 0;
}

int gpt_nccl_load(Err *err) {
    if (nccl.state == 0) {
        nccl.state = nccl_open() == 0 ? 1 : -1;
        int v = 0;
        if (nccl.state == 1 && nccl.get_version(&v) != NCCL_SUCCESS)
            v = 0;
        /* 2.9 and newer: major*10000 + minor*100 + patch; before: major*1000 + minor*100 */
        int major = v >= 10000 ? v / 10000 : v / 1000;
        int minor = v >= 10000 ? v / 100 % 100 : v / 100 % 10;
        if (nccl.state == 1 && major != 2) {
            snprintf(nccl.reason, sizeof nccl.reason,
                     "libnccl.so.2 reports version code %d, not NCCL 2: %s", v, NCCL_INSTALL_HINT);
            nccl.state = -1;
        }
        if (nccl.state == 1)
            snprintf(nccl.version, sizeof nccl.version, "NCCL %d.%d.%d", major, minor, v % 100);
    }
    return nccl.state == 1 ? 0 : err_set(err, "%s", nccl.reason);
}

const char *gpt_nccl_version(void) { return nccl.version; }

/* err <- "what failed: NCCL's text (its last error)" */
static int nccl_fail(NcclComm comm, NcclResult r, const char *what, Err *err) {
    const char *last = nccl.last_error ? nccl.last_error(comm) : NULL;
    return err_set(err, "%s failed: %s (ncclResult_t %d)%s%s", what, nccl.error_string(r), r,
                   last && last[0] ? ": " : "", last ? last : "");
}

int gpt_nccl_unique_id(unsigned char *id, Err *err) {
    if (gpt_nccl_load(err) != 0)
        return -1;
    NcclId u;
    memset(&u, 0, sizeof u);
    NcclResult r = nccl.get_unique_id(&u);
    if (r != NCCL_SUCCESS)
        return nccl_fail(NULL, r, "ncclGetUniqueId", err);
    memcpy(id, u.internal, GPT_NCCL_ID_BYTES);
    return 0;
}

/* e != cudaSuccess: err names the call and the rank */
static int cuda_fail(cudaError_t e, const char *what, const GptNccl *n, Err *err) {
    if (e == cudaSuccess)
        return 0;
    return err_set(err, "rank %d: %s failed: %s", n->rank, what, cudaGetErrorString(e));
}

GptNccl *gpt_nccl_init(const unsigned char *id, int rank, int world_size, Err *err) {
    if (gpt_nccl_load(err) != 0)
        return NULL;
    GptNccl *n = calloc(1, sizeof *n);
    if (!n) {
        err_set(err, "out of host memory for the NCCL communicator");
        return NULL;
    }
    NcclId u;
    memcpy(u.internal, id, GPT_NCCL_ID_BYTES);
    NcclResult r = nccl.init_rank(&n->comm, world_size, u, rank);
    if (r != NCCL_SUCCESS) {
        char what[96];
        snprintf(what, sizeof what, "ncclCommInitRank (rank %d of %d, device %d)", rank, world_size,
                 gpt_cuda_device());
        nccl_fail(NULL, r, what, err);
        free(n);
        return NULL;
    }
    n->rank = rank;
    n->world_size = world_size;
    if (cuda_fail(cudaStreamCreateWithFlags(&n->reduce_stream, cudaStreamNonBlocking),
                  "cudaStreamCreateWithFlags (the gradient sums' stream)", n, err) ||
        cuda_fail(cudaEventCreateWithFlags(&n->ready, cudaEventDisableTiming), "cudaEventCreate", n,
                  err) ||
        cuda_fail(cudaEventCreateWithFlags(&n->done, cudaEventDisableTiming), "cudaEventCreate", n,
                  err)) {
        gpt_nccl_free(n, 1);
        return NULL;
    }
    return n;
}

void gpt_nccl_set_stream(GptNccl *n, void *stream) { n->stream = (NcclStream)stream; }

void gpt_nccl_free(GptNccl *n, int abort) {
    if (!n)
        return;
    if (n->comm)
        (abort ? nccl.abort : nccl.destroy)(n->comm);
    if (n->done)
        cudaEventDestroy(n->done);
    if (n->ready)
        cudaEventDestroy(n->ready);
    if (n->reduce_stream)
        cudaStreamDestroy(n->reduce_stream);
    free(n);
}

/* ---------------------------------------------------------------------------------------- */
/* the device entries of GptComm                                                             */

static int nccl_dtype(ArenaDtype dt, const char *call, Err *err) {
    switch (dt) {
    case ARENA_DTYPE_F16:
        return NCCL_FLOAT16;
    case ARENA_DTYPE_BF16:
        return NCCL_BFLOAT16;
    case ARENA_DTYPE_F32:
        return NCCL_FLOAT32;
    case ARENA_DTYPE_F64:
        return NCCL_FLOAT64;
    default:
        err_set(err, "%s: NCCL collectives here take f16, bf16, f32 or f64, not %s", call,
                arena_dtype_name(dt));
        return -1;
    }
}

/* r, then the communicator's asynchronous error (a peer or network failure) */
static int nccl_check(GptNccl *n, NcclResult r, const char *call, int64_t count, ArenaDtype dt,
                      Err *err) {
    NcclResult a = NCCL_SUCCESS;
    if (r == NCCL_SUCCESS && nccl.async_error(n->comm, &a) == NCCL_SUCCESS)
        r = a;
    if (r == NCCL_SUCCESS)
        return 0;
    char what[128];
    snprintf(what, sizeof what, "rank %d: %s of %lld %s elements", n->rank, call, (long long)count,
             arena_dtype_name(dt));
    return nccl_fail(n->comm, r, what, err);
}

static int nc_allreduce(void *ctx, void *buf, int64_t n_elems, ArenaDtype dt, Err *err) {
    GptNccl *n = ctx;
    int t = nccl_dtype(dt, "ncclAllReduce", err);
    if (t < 0)
        return -1;
    NcclResult r =
        nccl.all_reduce(buf, buf, (size_t)n_elems, t, NCCL_SUM, n->comm, n->stream); /* in place */
    return nccl_check(n, r, "ncclAllReduce", n_elems, dt, err);
}

static int nc_allreduce_start(void *ctx, void *const *bufs, const int64_t *ns, int count,
                              ArenaDtype dt, Err *err) {
    GptNccl *n = ctx;
    int t = nccl_dtype(dt, "ncclAllReduce", err);
    if (t < 0 || cuda_fail(cudaEventRecord(n->ready, n->stream), "cudaEventRecord", n, err) ||
        cuda_fail(cudaStreamWaitEvent(n->reduce_stream, n->ready, 0), "cudaStreamWaitEvent", n,
                  err))
        return -1;
    /* one group: NCCL launches the layer's sums together at its end */
    NcclResult r = nccl.group_start();
    if (r != NCCL_SUCCESS)
        return nccl_check(n, r, "ncclGroupStart", 0, dt, err);
    int64_t total = 0;
    for (int i = 0; r == NCCL_SUCCESS && i < count; i++) {
        r = nccl.all_reduce(bufs[i], bufs[i], (size_t)ns[i], t, NCCL_SUM, n->comm,
                            n->reduce_stream);
        total += ns[i];
    }
    NcclResult end = nccl.group_end(); /* even after a failed call: the group must close */
    return nccl_check(n, r != NCCL_SUCCESS ? r : end, "ncclAllReduce (a group, started)", total, dt,
                      err);
}

static int nc_reduce_wait(void *ctx, Err *err) {
    GptNccl *n = ctx;
    if (cuda_fail(cudaEventRecord(n->done, n->reduce_stream), "cudaEventRecord", n, err) ||
        cuda_fail(cudaStreamWaitEvent(n->stream, n->done, 0), "cudaStreamWaitEvent", n, err))
        return -1;
    NcclResult a = NCCL_SUCCESS;
    if (nccl.async_error(n->comm, &a) != NCCL_SUCCESS || a == NCCL_SUCCESS)
        return 0;
    char what[96];
    snprintf(what, sizeof what, "rank %d: the gradient sums (ncclAllReduce)", n->rank);
    return nccl_fail(n->comm, a, what, err);
}

static int nc_reduce_scatter(void *ctx, void *out, const void *in, int64_t n_elems, ArenaDtype dt,
                             Err *err) {
    GptNccl *n = ctx;
    int t = nccl_dtype(dt, "ncclReduceScatter", err);
    if (t < 0)
        return -1;
    NcclResult r = nccl.reduce_scatter(in, out, (size_t)n_elems, t, NCCL_SUM, n->comm, n->stream);
    return nccl_check(n, r, "ncclReduceScatter", n_elems, dt, err);
}

static int nc_allgather(void *ctx, void *buf, int64_t n_elems, ArenaDtype dt, Err *err) {
    GptNccl *n = ctx;
    int t = nccl_dtype(dt, "ncclAllGather", err);
    if (t < 0)
        return -1;
    /* in place: this rank's block already sits at buf + rank * n */
    const char *mine = (const char *)buf + (size_t)n->rank * (size_t)n_elems * arena_dtype_size(dt);
    NcclResult r = nccl.all_gather(mine, buf, (size_t)n_elems, t, n->comm, n->stream);
    return nccl_check(n, r, "ncclAllGather", n_elems, dt, err);
}

static void nc_copy(void *ctx, void *dst, const void *src, size_t bytes) {
    GptNccl *n = ctx;
    if (bytes == 0)
        return;
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, n->stream);
    if (e != cudaSuccess)
        gpt_cuda_error_record("cudaMemcpyAsync (data parallel copy)", cudaGetErrorString(e),
                              __FILE__, __LINE__);
}

void gpt_nccl_fill(GptNccl *n, GptComm *comm) {
    comm->ctx = n;
    comm->copy = nc_copy;
    comm->allreduce_sum = nc_allreduce;
    comm->allreduce_sum_start = nc_allreduce_start;
    comm->reduce_wait = nc_reduce_wait;
    comm->reduce_scatter_sum = nc_reduce_scatter;
    comm->allgather = nc_allgather;
}
