/* dist_mpi.c: train/dist.h on MPI (Open MPI from Debian's openmpi-bin, libopenmpi-dev): the
 * ranks, the model's collectives (on host memory for the CPU backend's tensors; on CUDA the
 * device ones over NCCL, model/nccl_comm.h, whose id rank 0 broadcasts here), each rank's GPU
 * (its index among the ranks of its host), the config check and the job's end. MPI_Init runs
 * only for `train` under a launcher; MPI_ERRORS_RETURN makes a failed call an Err, and a failed
 * rank aborts the job (dist_end), NCCL's communicator first. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/nccl_comm.h"
#include "dist.h"

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

static Dist g_dist = {.rank = 0, .world_size = 1, .name = "none"};
static int g_started;
static GptNccl *g_nccl; /* on CUDA with several ranks (dist_use_cuda) */

static int mpi_fail(int rc, const char *what, Err *err) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return err_set(err, "rank %d: %s failed: %s", g_dist.rank, what, msg);
}

static int mpi_type(ArenaDtype dt, MPI_Datatype *out, Err *err) {
    if (dt == ARENA_DTYPE_F32) {
        *out = MPI_FLOAT;
        return 0;
    }
    if (dt == ARENA_DTYPE_F64) {
        *out = MPI_DOUBLE;
        return 0;
    }
    return err_set(err,
                   "MPI collectives here take f32 or f64 tensors, not dtype %d (the CUDA "
                   "layout's f16 goes over NCCL)",
                   (int)dt);
}

static void host_copy(void *ctx, void *dst, const void *src, size_t bytes) {
    memcpy(dst, src, bytes);
}

static int c_allreduce(void *ctx, void *buf, int64_t n, ArenaDtype dt, Err *err) {
    MPI_Datatype t = MPI_FLOAT;
    if (mpi_type(dt, &t, err))
        return -1;
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, t, MPI_SUM, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Allreduce", err);
}

/* the sums started and not yet waited for (MPI_Iallreduce), in start order */
static MPI_Request *g_reqs;
static int g_n_reqs, g_cap_reqs;

static int c_allreduce_start(void *ctx, void *const *bufs, const int64_t *ns, int count,
                             ArenaDtype dt, Err *err) {
    MPI_Datatype t = MPI_FLOAT;
    if (mpi_type(dt, &t, err))
        return -1;
    if (g_n_reqs + count > g_cap_reqs) {
        int cap = 2 * (g_n_reqs + count);
        MPI_Request *r = realloc(g_reqs, (size_t)cap * sizeof *r);
        if (!r)
            return err_set(err, "rank %d: out of host memory for %d MPI requests", g_dist.rank,
                           cap);
        g_reqs = r;
        g_cap_reqs = cap;
    }
    for (int i = 0; i < count; i++) {
        int rc = MPI_Iallreduce(MPI_IN_PLACE, bufs[i], (int)ns[i], t, MPI_SUM, MPI_COMM_WORLD,
                                &g_reqs[g_n_reqs]);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, "MPI_Iallreduce", err);
        g_n_reqs++;
    }
    /* Open MPI moves a non-blocking collective on inside MPI calls: one here lets the sums
     * started so far progress while the backward goes on */
    int flag = 0;
    MPI_Testall(g_n_reqs, g_reqs, &flag, MPI_STATUSES_IGNORE);
    return 0;
}

static int c_reduce_wait(void *ctx, Err *err) {
    int n = g_n_reqs, rc = MPI_Waitall(n, g_reqs, MPI_STATUSES_IGNORE);
    g_n_reqs = 0;
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Waitall (the gradient sums)", err);
}

static int c_reduce_scatter(void *ctx, void *out, const void *in, int64_t n, ArenaDtype dt,
                            Err *err) {
    MPI_Datatype t = MPI_FLOAT;
    if (mpi_type(dt, &t, err))
        return -1;
    int rc = MPI_Reduce_scatter_block(in, out, (int)n, t, MPI_SUM, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Reduce_scatter_block", err);
}

static int c_allgather(void *ctx, void *buf, int64_t n, ArenaDtype dt, Err *err) {
    MPI_Datatype t = MPI_FLOAT;
    if (mpi_type(dt, &t, err))
        return -1;
    int rc = MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, (int)n, t, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Allgather", err);
}

static int c_allreduce_host(void *ctx, double *vals, int n, Err *err) {
    return dist_sum(vals, n, err);
}

static int c_gather_host(void *ctx, void *recv, const void *send, size_t bytes, Err *err) {
    int rc = MPI_Gather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Gather", err);
}

/* A launcher's environment: Open MPI's mpirun, or a PMI/PMIx one (srun, hydra). */
static int launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

int dist_start(int start, Err *err) {
    if (!start || !launched())
        return 0;
    int provided = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return err_set(err, "MPI_Init_thread failed (launched by mpirun?)");
    g_started = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_dist.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_dist.world_size);
    int len = 0;
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    MPI_Get_library_version(lib, &len);
    lib[strcspn(lib, ",\n")] = 0;
    snprintf(g_dist.name, sizeof g_dist.name, "%.63s", lib);
    MPI_Comm host; /* the ranks sharing this host: one GPU each, in rank order */
    int local = 0;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_dist.rank, MPI_INFO_NULL,
                            &host) == MPI_SUCCESS) {
        MPI_Comm_rank(host, &local);
        MPI_Comm_free(&host);
    }
    gpt_cuda_select_device(local);
    g_dist.comm = (GptComm){.rank = g_dist.rank,
                            .world_size = g_dist.world_size,
                            .copy = host_copy,
                            .allreduce_sum = c_allreduce,
                            .allreduce_sum_start = c_allreduce_start,
                            .reduce_wait = c_reduce_wait,
                            .reduce_scatter_sum = c_reduce_scatter,
                            .allgather = c_allgather,
                            .allreduce_sum_host = c_allreduce_host,
                            .gather_host = c_gather_host};
    if (g_dist.rank != 0 && !freopen("/dev/null", "w", stdout))
        return err_set(err, "rank %d: cannot send stdout to /dev/null", g_dist.rank);
    return 0;
}

const Dist *dist_world(void) { return &g_dist; }

int dist_end(int rc) {
    if (!g_started)
        return rc;
    if (rc != 0 && g_dist.world_size > 1) {
        fflush(stdout);
        fprintf(stderr,
                "arenagpt train: rank %d of %d failed (exit status %d; its message is above): "
                "ending every rank\n",
                g_dist.rank, g_dist.world_size, rc);
        fflush(stderr);
        gpt_nccl_free(g_nccl, 1);
        MPI_Abort(MPI_COMM_WORLD, rc);
    }
    gpt_nccl_free(g_nccl, 0);
    g_nccl = NULL;
    free(g_reqs);
    g_reqs = NULL;
    MPI_Finalize();
    return rc;
}

int dist_check_same(const char *text, size_t len, Err *err) {
    if (g_dist.world_size == 1)
        return 0;
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)text[i]) * FNV_PRIME;
    uint64_t *all = malloc((size_t)g_dist.world_size * sizeof *all);
    if (!all)
        return err_set(err, "out of host memory for the config check");
    int rc = MPI_Allgather(&h, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) {
        free(all);
        return mpi_fail(rc, "MPI_Allgather (config check)", err);
    }
    char ranks[256] = "";
    int n_diff = 0;
    for (int r = 1; r < g_dist.world_size; r++)
        if (all[r] != all[0] && n_diff++ < 16)
            snprintf(ranks + strlen(ranks), sizeof ranks - strlen(ranks), "%s%d",
                     n_diff > 1 ? ", " : "", r);
    uint64_t h0 = all[0];
    free(all);
    if (n_diff == 0)
        return 0;
    char here[96] = "";
    if (g_dist.rank != 0)
        snprintf(here, sizeof here, ", %016llx here on rank %d", (unsigned long long)h,
                 g_dist.rank);
    return err_set(err,
                   "the resolved config differs across ranks: rank(s) %s differ from rank 0 "
                   "(config hash %016llx on rank 0%s); every rank must get the same config "
                   "file, overrides and data",
                   ranks, (unsigned long long)h0, here);
}

int dist_sum(double *vals, int n, Err *err) {
    if (g_dist.world_size == 1)
        return 0;
    int rc = MPI_Allreduce(MPI_IN_PLACE, vals, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Allreduce", err);
}

int dist_max(int64_t *val, Err *err) {
    if (g_dist.world_size == 1)
        return 0;
    int rc = MPI_Allreduce(MPI_IN_PLACE, val, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Allreduce", err);
}

/* rc of every rank: 0 when all are 0, else -1 with err (this rank's own, or naming the others) */
static int all_ok(int rc, const char *what, Err *err) {
    int any = rc != 0;
    if (MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS)
        return err_set(err, "rank %d: MPI_Allreduce (%s) failed", g_dist.rank, what);
    if (any && rc == 0)
        return err_set(err, "rank %d: %s failed on another rank (its message is above)",
                       g_dist.rank, what);
    return any ? -1 : 0;
}

int dist_use_cuda(Err *err) {
    if (g_dist.world_size == 1)
        return 0;
    struct {
        int ok;
        unsigned char id[GPT_NCCL_ID_BYTES];
    } msg = {0};
    Err mine = {0};
    int rc = gpt_nccl_load(&mine);
    if (all_ok(rc, "loading NCCL", err) != 0)
        return rc ? err_set(err, "rank %d: %s", g_dist.rank, mine.msg) : -1;
    if (g_dist.rank == 0)
        msg.ok = gpt_nccl_unique_id(msg.id, err) == 0;
    if (MPI_Bcast(&msg, (int)sizeof msg, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
        return err_set(err, "rank %d: MPI_Bcast of NCCL's unique id failed", g_dist.rank);
    if (!msg.ok)
        return g_dist.rank == 0 ? -1 : err_set(err, "rank 0 could not make NCCL's unique id");
    g_nccl = gpt_nccl_init(msg.id, g_dist.rank, g_dist.world_size, err);
    if (!g_nccl)
        return -1;
    gpt_nccl_fill(g_nccl, &g_dist.comm);
    size_t len = strlen(g_dist.name);
    snprintf(g_dist.name + len, sizeof g_dist.name - len, ", %s", gpt_nccl_version());
    return 0;
}

void dist_set_stream(void *stream) {
    if (g_nccl)
        gpt_nccl_set_stream(g_nccl, stream);
}
