/* dist_mpi.c: train/dist.h on MPI (Open MPI from Debian's openmpi-bin, libopenmpi-dev): the
 * ranks, the model's collectives on host memory (the CPU backend's tensors), the config check
 * and the job's end. MPI_Init runs only for `train` under a launcher; MPI_ERRORS_RETURN makes
 * a failed call an Err, and a failed rank aborts the job (dist_end). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

static Dist g_dist = {.rank = 0, .world_size = 1, .name = "none"};
static int g_started;

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
    g_dist.comm = (GptComm){.rank = g_dist.rank,
                            .world_size = g_dist.world_size,
                            .copy = host_copy,
                            .allreduce_sum = c_allreduce,
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
        MPI_Abort(MPI_COMM_WORLD, rc);
    }
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
