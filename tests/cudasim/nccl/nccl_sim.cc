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
 *     (ncclCommGetAsyncError), and ncclGetLastError says what it was;
 *   - ncclGroupStart / ncclGroupEnd: the calls between them are checked at the call and
 *     handed to their streams, in call order, at the outermost ncclGroupEnd (as NCCL launches
 *     a group there); an ncclGroupEnd without a start is ncclInvalidUsage.
 * Stream order: the checks above that need no other rank are made at the call (and their
 * failure returned there), as is the call's sequence number; the agreement of the ranks, the
 * exchange and the reduction are the work of the call's stream, handed to the simulated
 * runtime (cudasim_stream_enqueue, tests/cudasim/cudasim_stream.cc, found with dlsym). On the
 * legacy stream they run at the call; on a created stream when something waits for that
 * stream's work, so a program that reads the result without waiting sees its own unsummed
 * data. A failure then sticks to the communicator (ncclCommGetAsyncError, ncclGetLastError)
 * and later calls return it; a call whose checks failed still joins the agreement when its
 * stream runs, so the other ranks fail instead of waiting. A stream the runtime does not know
 * is ncclInvalidArgument (its agreement runs at the call). Without the runtime (no
 * cudasim_stream_enqueue) everything runs at the call. ncclCommDestroy keeps a communicator's
 * MPI side until its queued collectives have run (NCCL's finalize completes them);
 * ncclCommAbort drops them. The exchange is a blocking MPI call made when a rank's stream runs:
 * every rank must come to a point that runs it (a wait, a synchronize, cudaFree) in the same
 * order relative to its own MPI calls, or the ranks wait for each other (a GPU would not).
 * Numerics: the reduction sums in rank order in double
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
    uint64_t failed_after; /* 0, or 1 + the sequence number of the call that failed */
    int pending;           /* collectives queued on a stream, not yet run */
    int aborted;           /* ncclCommAbort: queued collectives do nothing */
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

static void comm_free(ncclComm_t comm) {
    MPI_Comm_free(&comm->mpi);
    free(comm);
}

/* the handle is dead at once; its memory and MPI side go when no collective is queued */
static ncclResult_t comm_end(ncclComm_t comm, const char *call, int abort) {
    if (!comm || comm->live != SIM_COMM_LIVE)
        return fail(NULL, ncclInvalidArgument, "%s: not a live communicator", call);
    comm->live = 0;
    comm->aborted = abort;
    if (comm->pending == 0)
        comm_free(comm);
    return ncclSuccess;
}

extern "C" ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    return comm_end(comm, "ncclCommDestroy", 0);
}
extern "C" ncclResult_t ncclCommAbort(ncclComm_t comm) {
    return comm_end(comm, "ncclCommAbort", 1);
}

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

/* a collective as its stream's work: what it needs when the queue reaches it */
typedef struct {
    ncclComm_t comm;
    CallInfo ci;
    const void *send;
    void *recv;
    ncclResult_t result; /* when it ran at the call */
    int queued;          /* it frees itself when it runs */
} Pending;

/* the simulated runtime's stream queue (NULL: run everything at the call) */
typedef int (*EnqueueFn)(cudaStream_t, void (*)(void *), void *);
static EnqueueFn stream_enqueue(void) {
    static EnqueueFn fn = (EnqueueFn)dlsym(RTLD_DEFAULT, "cudasim_stream_enqueue");
    return fn;
}

/* the agreement and the exchange of one call, now or when its stream's queue runs. Skipped
 * after ncclCommAbort, and when an earlier call of the communicator has failed (every rank
 * skips it then); a call whose own checks failed still joins the agreement. */
static void collective_run(void *arg) {
    Pending *p = (Pending *)arg;
    ncclComm_t c = p->comm;
    bool earlier_failed = c->failed_after != 0 && c->failed_after <= p->ci.seq;
    ncclResult_t r = c->failed;
    if (!c->aborted && (p->ci.status != ncclSuccess || !earlier_failed)) {
        r = call_agree(c, &p->ci);
        if (r == ncclSuccess)
            r = exchange(c, &p->ci, p->send, p->recv);
        if (r != ncclSuccess && c->failed_after == 0)
            c->failed_after = p->ci.seq + 1;
    }
    p->result = r;
    c->pending--;
    if (!p->queued)
        return;
    free(p);
    if (c->live != SIM_COMM_LIVE && c->pending == 0)
        comm_free(c);
}

/* p (its checks made) to its stream: queued, or run now; the call's result */
static ncclResult_t issue(Pending *p, cudaStream_t stream) {
    ncclComm_t comm = p->comm;
    EnqueueFn enqueue = stream_enqueue();
    int q = enqueue ? enqueue(stream, collective_run, p) : 0;
    if (q == 1) {
        p->queued = 1; /* runs (and frees itself) later */
        return (ncclResult_t)p->ci.status;
    }
    if (q < 0) { /* no such stream: refused, but the other ranks still need this rank */
        if (p->ci.status == ncclSuccess)
            p->ci.status = fail(comm, ncclInvalidArgument, "%s: stream %p is not a stream",
                                COLL_NAMES[p->ci.kind], (void *)stream);
        comm->failed_after = p->ci.seq + 1;
        collective_run(p);
    } else if (!enqueue) {
        collective_run(p);
    }
    ncclResult_t r = p->result;
    free(p);
    return r;
}

/* ncclGroupStart .. ncclGroupEnd: the calls in between, checked at the call and issued to
 * their streams in call order at the outermost ncclGroupEnd (NCCL launches a group's
 * operations together there) */
typedef struct {
    Pending *p;
    cudaStream_t stream;
} Grouped;
static int g_group_depth;
static std::vector<Grouped> g_grouped;

extern "C" ncclResult_t ncclGroupStart(void) {
    g_group_depth++;
    return ncclSuccess;
}

extern "C" ncclResult_t ncclGroupEnd(void) {
    if (g_group_depth == 0)
        return fail(NULL, ncclInvalidUsage, "ncclGroupEnd without an ncclGroupStart");
    if (--g_group_depth > 0)
        return ncclSuccess;
    ncclResult_t first = ncclSuccess;
    std::vector<Grouped> calls;
    calls.swap(g_grouped);
    for (const Grouped &g : calls) {
        ncclResult_t r = issue(g.p, g.stream);
        if (first == ncclSuccess)
            first = r;
    }
    return first;
}

static ncclResult_t collective(int kind, const void *send, void *recv, size_t count, int dtype,
                               int op, ncclComm_t comm, cudaStream_t stream) {
    if (!comm || comm->live != SIM_COMM_LIVE)
        return fail(NULL, ncclInvalidArgument,
                    "%s: comm is not an initialised communicator (ncclCommInitRank first)",
                    COLL_NAMES[kind]);
    if (comm->failed != ncclSuccess)
        return comm->failed; /* its text stays in comm->last */
    Pending *p = (Pending *)calloc(1, sizeof *p);
    if (!p)
        return fail(comm, ncclSystemError, "%s: out of host memory", COLL_NAMES[kind]);
    *p = Pending{comm,        {ncclSuccess, kind, dtype, op, (uint64_t)count, comm->seq++},
                 send,        recv,
                 ncclSuccess, 0};
    p->ci.status = call_local(comm, &p->ci, send, recv);
    if (p->ci.status != ncclSuccess)
        comm->failed_after = p->ci.seq + 1;
    comm->pending++;
    if (g_group_depth > 0) { /* issued at the group's end */
        g_grouped.push_back(Grouped{p, stream});
        return (ncclResult_t)p->ci.status;
    }
    return issue(p, stream);
}

extern "C" ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                                      ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                                      cudaStream_t stream) {
    return collective(COLL_ALLREDUCE, sendbuff, recvbuff, count, datatype, op, comm, stream);
}

extern "C" ncclResult_t ncclReduceScatter(const void *sendbuff, void *recvbuff, size_t recvcount,
                                          ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                                          cudaStream_t stream) {
    return collective(COLL_REDUCE_SCATTER, sendbuff, recvbuff, recvcount, datatype, op, comm,
                      stream);
}

extern "C" ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount,
                                      ncclDataType_t datatype, ncclComm_t comm,
                                      cudaStream_t stream) {
    return collective(COLL_ALLGATHER, sendbuff, recvbuff, sendcount, datatype, 0, comm, stream);
}
