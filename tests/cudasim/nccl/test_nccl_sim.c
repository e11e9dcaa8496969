/* test_nccl_sim.c: the simulator's NCCL stand-in (nccl_sim.cc) on its own, under
 * `mpirun -np 2` (tests/sim_nccl.sh): the sums of all-reduce, reduce-scatter and all-gather in
 * f32, f16 and bf16, and NCCL's checks: a call before ncclCommInitRank, a rank or nranks out of
 * range, an id not from ncclGetUniqueId, ranks with different ids, an invalid dtype or op, a
 * host buffer, and ranks whose calls differ (every rank fails, naming the one that differs).
 * On a created non-blocking stream: an all-reduce has not summed before the program waits for
 * the stream and has after (cudaStreamWaitEvent on the legacy stream, cudaStreamSynchronize),
 * ranks whose calls differ find out when the stream runs (ncclCommGetAsyncError), and a
 * destroyed communicator's queued call still runs (an aborted one's does not).
 * Linked with the simulator's runtime (the .cc files of tests/cudasim/): device memory is
 * cudaMalloc's, and the stand-in finds cudasim_device_range and cudasim_stream_enqueue in the
 * binary. */
#include <cuda_runtime.h>
#include <mpi.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* NCCL 2's values and the entry points under test (nccl.h) */
enum { OK = 0, INVALID_ARGUMENT = 4, INVALID_USAGE = 5 };
enum { F16 = 6, F32 = 7, BF16 = 9, SUM = 0, MAX = 2 };
typedef struct {
    char internal[128];
} Id;
typedef struct ncclComm *Comm;
int ncclGetUniqueId(Id *id);
int ncclCommInitRank(Comm *comm, int nranks, Id id, int rank);
int ncclCommDestroy(Comm comm);
int ncclCommAbort(Comm comm);
int ncclCommGetAsyncError(Comm comm, int *async_error);
const char *ncclGetLastError(Comm comm);
int ncclAllReduce(const void *send, void *recv, size_t count, int dtype, int op, Comm comm,
                  void *stream);
int ncclReduceScatter(const void *send, void *recv, size_t count, int dtype, int op, Comm comm,
                      void *stream);
int ncclAllGather(const void *send, void *recv, size_t count, int dtype, Comm comm, void *stream);
int ncclGroupStart(void);
int ncclGroupEnd(void);

/* ---- device memory (the simulator's) --------------------------------------------------- */

#define N_DEV 8
static void *g_dev[N_DEV];

/* n zeroed bytes of simulated device memory (host memory underneath: the test reads and
 * writes it directly) */
static void *dev_alloc(size_t n) {
    for (int i = 0; i < N_DEV; i++)
        if (!g_dev[i]) {
            assert_int_equal(cudaMalloc(&g_dev[i], n), cudaSuccess);
            memset(g_dev[i], 0, n);
            return g_dev[i];
        }
    return NULL;
}

static void dev_free_all(void) {
    for (int i = 0; i < N_DEV; i++) {
        cudaFree(g_dev[i]);
        g_dev[i] = NULL;
    }
}

static int g_rank, g_size;

/* a communicator of both ranks: rank 0's id to every rank */
static Comm comm_new(void) {
    Id id;
    memset(&id, 0, sizeof id);
    if (g_rank == 0)
        assert_int_equal(ncclGetUniqueId(&id), OK);
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    Comm c = NULL;
    assert_int_equal(ncclCommInitRank(&c, g_size, id, g_rank), OK);
    return c;
}

/* ---- the tests -------------------------------------------------------------------------- */

static void test_nccl_sim_before_init(void **state) {
    float *buf = dev_alloc(16);
    assert_int_equal(ncclAllReduce(buf, buf, 4, F32, SUM, NULL, NULL), INVALID_ARGUMENT);
    assert_non_null(strstr(ncclGetLastError(NULL), "ncclCommInitRank first"));
    dev_free_all();
}

static void test_nccl_sim_init_checks(void **state) {
    Id id;
    memset(&id, 0, sizeof id);
    if (g_rank == 0)
        assert_int_equal(ncclGetUniqueId(&id), OK);
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    Comm c = NULL;
    /* rank 1 out of range: it refuses, and rank 0 refuses with it (no hang) */
    int r = ncclCommInitRank(&c, g_size, id, g_rank == 1 ? 5 : g_rank);
    assert_int_equal(r, g_rank == 1 ? INVALID_ARGUMENT : INVALID_USAGE);
    assert_int_equal(ncclCommInitRank(&c, g_size + 1, id, g_rank), INVALID_ARGUMENT);
    Id junk;
    memset(&junk, 7, sizeof junk);
    assert_int_equal(ncclCommInitRank(&c, g_size, junk, g_rank), INVALID_ARGUMENT);
    Id own; /* each rank its own id: not one communicator */
    assert_int_equal(ncclGetUniqueId(&own), OK);
    assert_int_equal(ncclCommInitRank(&c, g_size, own, g_rank), INVALID_USAGE);
    assert_non_null(strstr(ncclGetLastError(NULL), "unique id"));
    assert_null(c);
}

static uint16_t f16_bits(float x) { /* exact for the small integers used here */
    if (x == 0.0f)
        return 0;
    int e = 0;
    float m = x;
    while (m >= 2.0f) {
        m /= 2.0f;
        e++;
    }
    return (uint16_t)((e + 15) << 10 | (uint16_t)((m - 1.0f) * 1024.0f));
}

static uint16_t bf16_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (uint16_t)(u >> 16); /* exact for the small integers used here */
}

static void test_nccl_sim_sums(void **state) {
    Comm c = comm_new();
    float *a = dev_alloc(3 * sizeof(float));
    for (int i = 0; i < 3; i++)
        a[i] = (float)(g_rank + 1) * (float)(i + 1); /* rank 0: 1 2 3, rank 1: 2 4 6 */
    assert_int_equal(ncclAllReduce(a, a, 3, F32, SUM, c, NULL), OK);
    for (int i = 0; i < 3; i++)
        assert_true(a[i] == 3.0f * (float)(i + 1));
    assert_int_equal(ncclAllReduce(a, a, 3, F32, MAX, c, NULL), OK);
    assert_true(a[2] == 9.0f);
    uint16_t *h = dev_alloc(2 * sizeof(uint16_t)), *b = dev_alloc(2 * sizeof(uint16_t));
    h[0] = f16_bits(1.0f + (float)g_rank), h[1] = f16_bits(4.0f);
    b[0] = bf16_bits(2.0f), b[1] = bf16_bits(8.0f * (float)(g_rank + 1));
    assert_int_equal(ncclAllReduce(h, h, 2, F16, SUM, c, NULL), OK);
    assert_int_equal(ncclAllReduce(b, b, 2, BF16, SUM, c, NULL), OK);
    assert_int_equal(h[0], f16_bits(3.0f));
    assert_int_equal(h[1], f16_bits(8.0f));
    assert_int_equal(b[0], bf16_bits(4.0f));
    assert_int_equal(b[1], bf16_bits(24.0f));
    /* reduce-scatter: in (2 ranks x 2) = rank+1 everywhere -> each rank's 2 elements are 3 */
    float *in = dev_alloc(4 * sizeof(float)), *out = dev_alloc(2 * sizeof(float));
    for (int i = 0; i < 4; i++)
        in[i] = (float)(g_rank + 1) + (float)(10 * i);
    assert_int_equal(ncclReduceScatter(in, out, 2, F32, SUM, c, NULL), OK);
    assert_true(out[0] == 3.0f + (float)(20 * (2 * g_rank)));
    assert_true(out[1] == 3.0f + (float)(20 * (2 * g_rank + 1)));
    /* all-gather in place: each rank's block already at its offset */
    in[2 * g_rank] = (float)(100 + g_rank), in[2 * g_rank + 1] = (float)(200 + g_rank);
    assert_int_equal(ncclAllGather(in + 2 * g_rank, in, 2, F32, c, NULL), OK);
    assert_true(in[0] == 100.0f && in[1] == 200.0f && in[2] == 101.0f && in[3] == 201.0f);
    int async = -1;
    assert_int_equal(ncclCommGetAsyncError(c, &async), OK);
    assert_int_equal(async, OK);
    assert_int_equal(ncclCommDestroy(c), OK);
    dev_free_all();
}

static void test_nccl_sim_refusals(void **state) {
    Comm c = comm_new();
    float *a = dev_alloc(4 * sizeof(float));
    float host[4] = {0};
    int me_bad = g_rank == 1; /* rank 1 makes the bad call; rank 0 a good one */
    assert_int_equal(ncclAllReduce(a, a, 4, me_bad ? 42 : F32, SUM, c, NULL),
                     me_bad ? INVALID_ARGUMENT : INVALID_USAGE);
    assert_non_null(strstr(ncclGetLastError(c), me_bad ? "invalid dtype 42" : "rank 1"));
    ncclCommDestroy(c);
    c = comm_new();
    assert_int_equal(ncclAllReduce(a, a, 4, F32, me_bad ? 9 : SUM, c, NULL),
                     me_bad ? INVALID_ARGUMENT : INVALID_USAGE);
    ncclCommDestroy(c);
    c = comm_new();
    assert_int_equal(ncclAllReduce(me_bad ? (void *)host : a, a, 4, F32, SUM, c, NULL),
                     me_bad ? INVALID_ARGUMENT : INVALID_USAGE);
    ncclCommDestroy(c);
    c = comm_new(); /* counts differ: every rank fails, naming rank 1; the failure sticks */
    assert_int_equal(ncclAllReduce(a, a, me_bad ? 3 : 4, F32, SUM, c, NULL), INVALID_USAGE);
    assert_non_null(strstr(ncclGetLastError(c), "rank 1 called ncclAllReduce (count 3"));
    int async = OK;
    assert_int_equal(ncclCommGetAsyncError(c, &async), OK);
    assert_int_equal(async, INVALID_USAGE);
    assert_int_equal(ncclAllReduce(a, a, 4, F32, SUM, c, NULL), INVALID_USAGE);
    ncclCommDestroy(c);
    dev_free_all();
}

static cudaStream_t nonblocking_stream(void) {
    cudaStream_t s = NULL;
    assert_int_equal(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    return s;
}

/* the model's overlap: the reduction on a non-blocking stream after an event of the legacy
 * stream, the legacy stream waiting for it before it uses the sum */
static void test_nccl_sim_deferred_stream(void **state) {
    Comm c = comm_new();
    float *a = dev_alloc(4 * sizeof(float));
    cudaStream_t s = nonblocking_stream();
    cudaEvent_t ready, done;
    assert_int_equal(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), cudaSuccess);
    assert_int_equal(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), cudaSuccess);
    for (int i = 0; i < 4; i++)
        a[i] = (float)(g_rank + 1); /* 1 on rank 0, 2 on rank 1 */
    assert_int_equal(cudaEventRecord(ready, NULL), cudaSuccess);
    assert_int_equal(cudaStreamWaitEvent(s, ready, 0), cudaSuccess);
    assert_int_equal(ncclAllReduce(a, a, 4, F32, SUM, c, s), OK);
    assert_int_equal(cudaEventRecord(done, s), cudaSuccess);
    assert_true(a[0] == (float)(g_rank + 1)); /* not summed before the wait */
    assert_int_equal(cudaStreamQuery(s), cudaErrorNotReady);
    assert_int_equal(cudaStreamWaitEvent(NULL, done, 0), cudaSuccess);
    for (int i = 0; i < 4; i++)
        assert_true(a[i] == 3.0f);
    assert_int_equal(ncclAllReduce(a, a, 4, F32, SUM, c, s), OK);
    assert_true(a[3] == 3.0f);
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    assert_true(a[0] == 6.0f && a[3] == 6.0f);
    int async = -1;
    assert_int_equal(ncclCommGetAsyncError(c, &async), OK);
    assert_int_equal(async, OK);
    cudaEventDestroy(ready), cudaEventDestroy(done), cudaStreamDestroy(s);
    assert_int_equal(ncclCommDestroy(c), OK);
    dev_free_all();
}

/* a group: its calls reach their stream at ncclGroupEnd, in call order; on the legacy stream
 * that is when they sum; a group end without a start is refused */
static void test_nccl_sim_group(void **state) {
    Comm c = comm_new();
    float *a = dev_alloc(2 * sizeof(float)), *b = dev_alloc(3 * sizeof(float));
    for (int i = 0; i < 3; i++)
        b[i] = a[i % 2] = (float)(g_rank + 1);
    assert_int_equal(ncclGroupStart(), OK);
    assert_int_equal(ncclAllReduce(a, a, 2, F32, SUM, c, NULL), OK);
    assert_int_equal(ncclGroupStart(), OK); /* nested: the outermost end issues */
    assert_int_equal(ncclAllReduce(b, b, 3, F32, SUM, c, NULL), OK);
    assert_int_equal(ncclGroupEnd(), OK);
    assert_true(a[0] == (float)(g_rank + 1) && b[2] == (float)(g_rank + 1));
    assert_int_equal(ncclGroupEnd(), OK);
    assert_true(a[0] == 3.0f && a[1] == 3.0f && b[0] == 3.0f && b[2] == 3.0f);
    /* on a created stream: issued at the end, summed when the stream runs */
    cudaStream_t s = nonblocking_stream();
    assert_int_equal(ncclGroupStart(), OK);
    assert_int_equal(ncclAllReduce(a, a, 2, F32, SUM, c, s), OK);
    assert_int_equal(ncclAllReduce(b, b, 3, F32, SUM, c, s), OK);
    assert_int_equal(ncclGroupEnd(), OK);
    assert_true(a[0] == 3.0f && b[0] == 3.0f);
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    assert_true(a[1] == 6.0f && b[1] == 6.0f);
    assert_int_equal(ncclGroupEnd(), INVALID_USAGE);
    assert_non_null(strstr(ncclGetLastError(NULL), "without an ncclGroupStart"));
    cudaStreamDestroy(s);
    assert_int_equal(ncclCommDestroy(c), OK);
    dev_free_all();
}

/* on a created stream a mismatch shows when the stream runs: the calls return ncclSuccess (or
 * the failing rank's own check), the communicator's async error afterwards */
static void test_nccl_sim_deferred_mismatch(void **state) {
    float *a = dev_alloc(4 * sizeof(float));
    float host[4] = {0};
    int me_bad = g_rank == 1, async = -1;
    cudaStream_t s = nonblocking_stream();
    Comm c = comm_new();
    assert_int_equal(ncclAllReduce(a, a, me_bad ? 3 : 4, F32, SUM, c, s), OK);
    assert_int_equal(ncclCommGetAsyncError(c, &async), OK);
    assert_int_equal(async, OK); /* nothing has run yet */
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    assert_int_equal(ncclCommGetAsyncError(c, &async), OK);
    assert_int_equal(async, INVALID_USAGE);
    assert_non_null(strstr(ncclGetLastError(c), "rank 1 called ncclAllReduce (count 3"));
    assert_int_equal(ncclAllReduce(a, a, 4, F32, SUM, c, s), INVALID_USAGE); /* it sticks */
    ncclCommDestroy(c);
    c = comm_new(); /* rank 1's own check fails at the call; rank 0 learns it at the run */
    assert_int_equal(ncclAllReduce(me_bad ? (void *)host : a, a, 4, F32, SUM, c, s),
                     me_bad ? INVALID_ARGUMENT : OK);
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    assert_int_equal(ncclCommGetAsyncError(c, &async), OK);
    assert_int_equal(async, me_bad ? INVALID_ARGUMENT : INVALID_USAGE);
    ncclCommDestroy(c);
    cudaStreamDestroy(s);
    dev_free_all();
}

/* ncclCommDestroy with a collective still queued: it runs when the stream does (NCCL's
 * finalize completes it); ncclCommAbort drops it */
static void test_nccl_sim_destroy_with_queued_call(void **state) {
    float *a = dev_alloc(2 * sizeof(float));
    cudaStream_t s = nonblocking_stream();
    Comm c = comm_new();
    a[0] = a[1] = (float)(g_rank + 1);
    assert_int_equal(ncclAllReduce(a, a, 2, F32, SUM, c, s), OK);
    assert_int_equal(ncclCommDestroy(c), OK);
    assert_true(a[0] == (float)(g_rank + 1));
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    assert_true(a[0] == 3.0f && a[1] == 3.0f);
    c = comm_new();
    assert_int_equal(ncclAllReduce(a, a, 2, F32, SUM, c, s), OK);
    assert_int_equal(ncclCommAbort(c), OK);
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    assert_true(a[0] == 3.0f); /* dropped */
    cudaStreamDestroy(s);
    dev_free_all();
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    if (g_size != 2) {
        fprintf(stderr, "test_nccl_sim: run it under mpirun -np 2 (world size %d)\n", g_size);
        MPI_Finalize();
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nccl_sim_before_init),
        cmocka_unit_test(test_nccl_sim_init_checks),
        cmocka_unit_test(test_nccl_sim_sums),
        cmocka_unit_test(test_nccl_sim_refusals),
        cmocka_unit_test(test_nccl_sim_deferred_stream),
        cmocka_unit_test(test_nccl_sim_deferred_mismatch),
        cmocka_unit_test(test_nccl_sim_group),
        cmocka_unit_test(test_nccl_sim_destroy_with_queued_call),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Finalize();
    return rc;
}
