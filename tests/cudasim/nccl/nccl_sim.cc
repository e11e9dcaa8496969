/* nccl_sim.cc: the CUDA simulator's stand-in for libnccl.so.2 (built as build/sim/libnccl.so.2;
 * the simulated binaries' dlopen hands it out: tests/cudasim/cudasim.cc). Each rank is its own
 * process with its own simulated GPU, so a collective is an exchange between processes: here
 * over MPI, which the program has initialised (train/dist_mpi.c). The entry points are the
 * ones model/cuda/nccl_comm.c uses, with NCCL 2's C signatures and enum values (nccl.h).
 *
 * What NCCL requires is checked, and refused with its status codes instead of a hang or a
 * silent wrong sum:
 *   - ncclCommInitRank: an id from ncclGetUniqueId (its magic), the same id and nranks on
 *     every rank, rank in [0, nranks), each rank once; the stand-in's one limit: nranks is
 *     the number of MPI processes (ncclInvalidArgument otherwise);
 *   - every collective: an initialised communicator (a call before ncclCommInitRank, with
 *     a NULL or foreign comm, is ncclInvalidArgument), a valid dtype and op (ncclInvalidArgument), buffers
 *     inside one simulated device allocation each (ncclInvalidArgument), and the same call
 *     (kind, count, dtype, op, sequence number) on every rank: a rank that differs makes
 *     every rank return ncclInvalidUsage, naming it. A failure sticks to the communicator
 *     (ncclCommGetAsyncError), and ncclGetLastError says what it was.
 * Stream order: like the simulator's other library calls, a collective completes before it
 * returns, so it is ordered on any stream. Numerics: the reduction sums in rank order in double
 * and rounds once to the dtype (f16, bf16, f32, f64); NCCL's ring rounds at each hop, so sums
 * of f16 differ from a GPU's in their last bits. Integer and fp8 dtypes are valid in NCCL but
 * not implemented here (ncclInvalidUsage, said). Not simulated: timing, overlap of streams,
 * network failures. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <dlfcn.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <limits.h>
#include <vector>

extern "C" {
/* NCCL 2's values (nccl.h) */
typedef enum {
    ncclSuccess = 0,
    ncclUnhandledCudaError = 1,
    ncclSystemError = 2,
    ncclInternalError = 3,
    ncclInvalidArgument = 4,
    ncclInvalidUsage = 5,
    ncclRemoteError = 6,
    ncclInProgress = 7,
    ncclNumResults = 8
} ncclResult_t;
typedef enum { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4 } ncclRedOp_t;
typedef enum {
    ncclInt8 = 0,
    ncclUint8 = 1,
    ncclInt32 = 2,
    ncclUint32 = 3,
    ncclInt64 = 4,
    ncclUint64 = 5,
    ncclFloat16 = 6,
    ncclFloat32 = 7,
    ncclFloat64 = 8,
    ncclBfloat16 = 9,
    ncclFloat8e4m3 = 10,
    ncclFloat8e5m2 = 11,
    ncclNumTypes = 12
} ncclDataType_t;
typedef struct {
    char internal[128];
} ncclUniqueId;
typedef struct ncclComm *ncclComm_t;
typedef struct CUstream_st *cudaStream_t;
}

#define SIM_NCCL_VERSION 22800 /* the API followed: NCCL 2.28's */
#define SIM_ID_MAGIC "cudasim-nccl-id"
#define SIM_COMM_LIVE 0x4e43434cu /* "NCCL" */

struct ncclComm {
    unsigned live; /* SIM_COMM_LIVE until destroyed */
    int rank, nranks;
    MPI_Comm mpi; /* the ranks in NCCL rank order */
    uint64_t seq; /* collectives so far: every rank's must match */
    ncclResult_t failed;
    char last[512];
};

static char g_last[512]; /* the last error of any call (ncclGetLastError(NULL)) */

static ncclResult_t fail(ncclComm_t c, ncclResult_t r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_last, sizeof g_last, fmt, ap);
    va_end(ap);
    if (c && c->live == SIM_COMM_LIVE) {
        snprintf(c->last, sizeof c->last, "%s", g_last);
        c->failed = r;
    }
    return r;
}

/* ---- ids and communicators ----------------------------------------------------------------- */

extern "C" ncclResult_t ncclGetVersion(int *version) {
    if (!version)
        return fail(NULL, ncclInvalidArgument, "ncclGetVersion: version is NULL");
    *version = SIM_NCCL_VERSION;
    return ncclSuccess;
}

extern "C" const char *ncclGetErrorString(ncclResult_t r) {
    static const char *const text[] = {"no error",
                                       "unhandled cuda error",
                                       "unhandled system error",
                                       "internal error",
                                       "invalid argument",
                                       "invalid usage",
                                       "remote process exited or there was a network error",
                                       "NCCL operation in progress"};
    return (int)r >= 0 && r < ncclNumResults ? text[r] : "unknown result code";
}

extern "C" const char *ncclGetLastError(ncclComm_t comm) {
    return comm && comm->live == SIM_COMM_LIVE && comm->last[0] ? comm->last : g_last;
}

extern "C" ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    if (!id)
        return fail(NULL, ncclInvalidArgument, "ncclGetUniqueId: id is NULL");
    static unsigned counter;
    memset(id, 0, sizeof *id);
    snprintf(id->internal, sizeof id->internal, "%s %ld %ld %u", SIM_ID_MAGIC, (long)getpid(),
             (long)time(NULL), ++counter);
    return ncclSuccess;
}

/* what one rank brings to ncclCommInitRank */
typedef struct {
    int status, nranks, rank;
    char id[128];
} InitInfo;

/* every rank's InitInfo against the others': ncclSuccess, or the failure (text in g_last) */
static ncclResult_t init_agree(const InitInfo *all, int n) {
    for (int p = 0; p < n; p++)
        if (all[p].status != ncclSuccess)
            return fail(NULL, ncclInvalidUsage,
                        "ncclCommInitRank: MPI process %d refused its arguments (nranks %d, "
                        "rank %d; its message says why)",
                        p, all[p].nranks, all[p].rank);
    std::vector<int> seen((size_t)n, 0);
    for (int p = 0; p < n; p++) {
        if (memcmp(all[p].id, all[0].id, sizeof all[0].id) != 0 || all[p].nranks != all[0].nranks)
            return fail(NULL, ncclInvalidUsage,
                        "ncclCommInitRank: MPI process %d has another unique id or nranks (%d) "
                        "than process 0 (nranks %d): every rank must pass rank 0's id",
                        p, all[p].nranks, all[0].nranks);
        if (seen[(size_t)all[p].rank]++)
            return fail(NULL, ncclInvalidUsage, "ncclCommInitRank: rank %d is claimed twice",
                        all[p].rank);
    }
    return ncclSuccess;
}

extern "C" ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
    int up = 0, size = 0;
    MPI_Initialized(&up);
    if (!up)
        return fail(NULL, ncclSystemError,
                    "ncclCommInitRank: the simulator's NCCL runs over MPI, and MPI is not "
                    "initialised in this process");
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    InitInfo me;
    memset(&me, 0, sizeof me);
    me.nranks = nranks;
    me.rank = rank;
    memcpy(me.id, id.internal, sizeof me.id);
    if (!comm)
        me.status = fail(NULL, ncclInvalidArgument, "ncclCommInitRank: comm is NULL");
    else if (nranks != size)
        me.status = fail(NULL, ncclInvalidArgument,
                         "ncclCommInitRank: nranks %d, but the simulator's NCCL makes one "
                         "communicator of all %d MPI processes",
                         nranks, size);
    else if (rank < 0 || rank >= nranks)
        me.status = fail(NULL, ncclInvalidArgument,
                         "ncclCommInitRank: rank %d outside [0, nranks %d)", rank, nranks);
    else if (strncmp(id.internal, SIM_ID_MAGIC, strlen(SIM_ID_MAGIC)) != 0)
        me.status = fail(NULL, ncclInvalidArgument,
                         "ncclCommInitRank: the unique id was not made by ncclGetUniqueId");
    std::vector<InitInfo> all((size_t)size);
    if (MPI_Allgather(&me, (int)sizeof me, MPI_BYTE, all.data(), (int)sizeof me, MPI_BYTE,
                      MPI_COMM_WORLD) != MPI_SUCCESS)
        return fail(NULL, ncclSystemError, "ncclCommInitRank: MPI_Allgather failed");
    if (me.status != ncclSuccess)
        return (ncclResult_t)me.status;
    ncclResult_t r = init_agree(all.data(), size);
    if (r != ncclSuccess)
        return r;
    ncclComm_t c = (ncclComm_t)calloc(1, sizeof *c);
    if (!c)
        return fail(NULL, ncclSystemError, "ncclCommInitRank: out of host memory");
    if (MPI_Comm_split(MPI_COMM_WORLD, 0, rank, &c->mpi) != MPI_SUCCESS) {
        free(c);
        return fail(NULL, ncclSystemError, "ncclCommInitRank: MPI_Comm_split failed");
    }
    c->live = SIM_COMM_LIVE;
    c->rank = rank;
    c->nranks = nranks;
    *comm = c;
    return ncclSuccess;
}

static ncclResult_t comm_end(ncclComm_t comm, const char *call) {
    if (!comm || comm->live != SIM_COMM_LIVE)
        return fail(NULL, ncclInvalidArgument, "%s: not a live communicator", call);
    comm->live = 0;
    MPI_Comm_free(&comm->mpi);
    free(comm);
    return ncclSuccess;
}

extern "C" ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    return comm_end(comm, "ncclCommDestroy");
}
extern "C" ncclResult_t ncclCommAbort(ncclComm_t comm) { return comm_end(comm, "ncclCommAbort"); }

extern "C" ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *async_error) {
    if (!comm || comm->live != SIM_COMM_LIVE || !async_error)
        return fail(NULL, ncclInvalidArgument, "ncclCommGetAsyncError: not a live communicator");
    *async_error = comm->failed;
    return ncclSuccess;
}

/* ---- collectives --------------------------------------------------------------------------- */

enum { COLL_ALLREDUCE, COLL_REDUCE_SCATTER, COLL_ALLGATHER };
static const char *const COLL_NAMES[] = {"ncclAllReduce", "ncclReduceScatter", "ncclAllGather"};

/* one call as every rank must make it */
typedef struct {
    int status, kind, dtype, op;
    uint64_t count, seq;
} CallInfo;

static size_t dtype_size(int dt) {
    switch (dt) {
    case ncclFloat16:
    case ncclBfloat16:
        return 2;
    case ncclFloat32:
        return 4;
    case ncclFloat64:
        return 8;
    default:
        return 0; /* not implemented here */
    }
}

static double load(int dt, const void *p, size_t i) {
    switch (dt) {
    case ncclFloat16:
        return (double)__half2float(((const __half *)p)[i]);
    case ncclBfloat16:
        return (double)__bfloat162float(((const __nv_bfloat16 *)p)[i]);
    case ncclFloat32:
        return (double)((const float *)p)[i];
    default:
        return ((const double *)p)[i];
    }
}

static void store(int dt, void *p, size_t i, double v) {
    switch (dt) {
    case ncclFloat16:
        ((__half *)p)[i] = __float2half_rn((float)v);
        break;
    case ncclBfloat16:
        ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn((float)v);
        break;
    case ncclFloat32:
        ((float *)p)[i] = (float)v;
        break;
    default:
        ((double *)p)[i] = v;
    }
}

/* out (count) = op over the n blocks of `blocks` (n x count), in rank order */
static void reduce(int dt, int op, void *out, const char *blocks, size_t count, int n) {
    size_t stride = count * dtype_size(dt);
    for (size_t i = 0; i < count; i++) {
        double acc = load(dt, blocks, i);
        for (int r = 1; r < n; r++) {
            double v = load(dt, blocks + (size_t)r * stride, i);
            acc = op == ncclProd  ? acc * v
                  : op == ncclMax ? (v > acc ? v : acc)
                  : op == ncclMin ? (v < acc ? v : acc)
                                  : acc + v;
        }
        store(dt, out, i, op == ncclAvg ? acc / n : acc);
    }
}

/* [p, p + bytes) inside one simulated device allocation (the binary exports the check) */
static int on_device(const void *p, size_t bytes) {
    typedef int (*RangeFn)(const void *, size_t);
    static RangeFn range = (RangeFn)dlsym(RTLD_DEFAULT, "cudasim_device_range");
    return range && p && range(p, bytes ? bytes : 1);
}

/* this rank's own checks of a call: ncclSuccess or the failure (in g_last and comm) */
static ncclResult_t call_local(ncclComm_t c, const CallInfo *ci, const void *send, void *recv) {
    const char *name = COLL_NAMES[ci->kind];
    if (ci->dtype < 0 || ci->dtype >= ncclNumTypes)
        return fail(c, ncclInvalidArgument, "%s: invalid dtype %d", name, ci->dtype);
    if (ci->kind != COLL_ALLGATHER && (ci->op < 0 || ci->op > ncclAvg))
        return fail(c, ncclInvalidArgument, "%s: invalid reduction op %d", name, ci->op);
    size_t es = dtype_size(ci->dtype);
    if (es == 0)
        return fail(c, ncclInvalidUsage,
                    "%s: dtype %d is valid in NCCL but the simulator's NCCL implements only "
                    "f16, bf16, f32 and f64",
                    name, ci->dtype);
    size_t mine = (size_t)ci->count * es, whole = mine * (size_t)c->nranks;
    if (whole / (size_t)c->nranks != mine || whole > (size_t)INT_MAX)
        return fail(c, ncclInvalidUsage, "%s: %llu elements are more than the simulator moves",
                    name, (unsigned long long)ci->count);
    size_t send_bytes = ci->kind == COLL_REDUCE_SCATTER ? whole : mine;
    size_t recv_bytes = ci->kind == COLL_ALLGATHER ? whole : mine;
    if (ci->count > 0 && (!on_device(send, send_bytes) || !on_device(recv, recv_bytes)))
        return fail(c, ncclInvalidArgument,
                    "%s on rank %d: sendbuff %p (%zu bytes) or recvbuff %p (%zu bytes) is not "
                    "inside one simulated device allocation",
                    name, c->rank, send, send_bytes, recv, recv_bytes);
    return ncclSuccess;
}

/* every rank's CallInfo against rank 0's */
static ncclResult_t call_agree(ncclComm_t c, const CallInfo *me) {
    std::vector<CallInfo> all((size_t)c->nranks);
    if (MPI_Allgather(me, (int)sizeof *me, MPI_BYTE, all.data(), (int)sizeof *me, MPI_BYTE,
                      c->mpi) != MPI_SUCCESS)
        return fail(c, ncclSystemError, "%s: MPI_Allgather failed", COLL_NAMES[me->kind]);
    if (me->status != ncclSuccess)
        return (ncclResult_t)me->status;
    const CallInfo *a = &all[0];
    for (int r = 0; r < c->nranks; r++) {
        const CallInfo *b = &all[(size_t)r];
        if (b->status != ncclSuccess)
            return fail(c, ncclInvalidUsage, "%s: rank %d refused its call (see its message)",
                        COLL_NAMES[me->kind], r);
        if (b->kind != a->kind || b->count != a->count || b->dtype != a->dtype ||
            (b->kind != COLL_ALLGATHER && b->op != a->op) || b->seq != a->seq)
            return fail(c, ncclInvalidUsage,
                        "collective %llu: rank %d called %s (count %llu, dtype %d, op %d) where "
                        "rank 0 called %s (count %llu, dtype %d, op %d): every rank must make "
                        "the same call",
                        (unsigned long long)me->seq, r, COLL_NAMES[b->kind],
                        (unsigned long long)b->count, b->dtype, b->op, COLL_NAMES[a->kind],
                        (unsigned long long)a->count, a->dtype, a->op);
    }
    return ncclSuccess;
}

static ncclResult_t exchange(ncclComm_t c, const CallInfo *ci, const void *send, void *recv) {
    size_t es = dtype_size(ci->dtype), mine = (size_t)ci->count * es;
    int n = c->nranks, bytes = (int)mine;
    std::vector<char> tmp(mine * (size_t)n + 1);
    int rc = MPI_SUCCESS;
    if (ci->kind == COLL_ALLGATHER) { /* tmp: every rank's block, then into recv */
        rc = MPI_Allgather(send, bytes, MPI_BYTE, tmp.data(), bytes, MPI_BYTE, c->mpi);
        if (rc == MPI_SUCCESS)
            memcpy(recv, tmp.data(), mine * (size_t)n);
    } else if (ci->kind == COLL_ALLREDUCE) {
        rc = MPI_Allgather(send, bytes, MPI_BYTE, tmp.data(), bytes, MPI_BYTE, c->mpi);
        if (rc == MPI_SUCCESS)
            reduce(ci->dtype, ci->op, recv, tmp.data(), ci->count, n);
    } else { /* reduce-scatter: rank r gets block r of every rank */
        rc = MPI_Alltoall(send, bytes, MPI_BYTE, tmp.data(), bytes, MPI_BYTE, c->mpi);
        if (rc == MPI_SUCCESS)
            reduce(ci->dtype, ci->op, recv, tmp.data(), ci->count, n);
    }
    return rc == MPI_SUCCESS ? ncclSuccess
                             : fail(c, ncclSystemError, "%s: MPI failed", COLL_NAMES[ci->kind]);
}

static ncclResult_t collective(int kind, const void *send, void *recv, size_t count, int dtype,
                               int op, ncclComm_t comm) {
    if (!comm || comm->live != SIM_COMM_LIVE)
        return fail(NULL, ncclInvalidArgument,
                    "%s: comm is not an initialised communicator (ncclCommInitRank first)",
                    COLL_NAMES[kind]);
    if (comm->failed != ncclSuccess)
        return comm->failed; /* its text stays in comm->last */
    CallInfo ci = {ncclSuccess, kind, dtype, op, (uint64_t)count, comm->seq++};
    ci.status = call_local(comm, &ci, send, recv);
    ncclResult_t r = call_agree(comm, &ci);
    return r != ncclSuccess ? r : exchange(comm, &ci, send, recv);
}

extern "C" ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                                      ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                                      cudaStream_t stream) {
    return collective(COLL_ALLREDUCE, sendbuff, recvbuff, count, datatype, op, comm);
}

extern "C" ncclResult_t ncclReduceScatter(const void *sendbuff, void *recvbuff, size_t recvcount,
                                          ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                                          cudaStream_t stream) {
    return collective(COLL_REDUCE_SCATTER, sendbuff, recvbuff, recvcount, datatype, op, comm);
}

extern "C" ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount,
                                      ncclDataType_t datatype, ncclComm_t comm,
                                      cudaStream_t stream) {
    return collective(COLL_ALLGATHER, sendbuff, recvbuff, sendcount, datatype, 0, comm);
}
