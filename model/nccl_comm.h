/* nccl_comm.h: the device collectives of data parallel on CUDA (model/dist.h's GptComm) over
 * NCCL, and the choice of each rank's GPU.
 *
 * Loading: libnccl.so.2 is opened with dlopen on first use (model/cuda/nccl_comm.c), so a
 * binary builds, links and runs one process where NCCL is absent; only a run of several ranks
 * on CUDA needs it (the libnccl2 package: Debian non-free, Ubuntu multiverse, NVIDIA's CUDA
 * repository). Builds without CUDA get model/nccl_nocuda.c, whose calls fail saying so.
 *
 * Start-up (collective: every rank, in this order): gpt_nccl_load; rank 0 takes an id with
 * gpt_nccl_unique_id and hands its bytes to every rank (the caller's job: MPI_Bcast in
 * train/dist_mpi.c); gpt_nccl_init on every rank makes the communicator on the current device.
 * gpt_nccl_fill then points a GptComm's device entries (copy, allreduce_sum,
 * allreduce_sum_start, reduce_wait, reduce_scatter_sum, allgather) at it; its host entries
 * stay the caller's (MPI).
 *
 * Every collective is enqueued on the stream of gpt_nccl_set_stream (the model's: NULL is the
 * legacy default stream, which the CUDA backend's kernels use), so it is ordered after the
 * kernels that wrote its input and before those that read its output, without a host wait.
 * Except the sums started during the backward (GptComm.allreduce_sum_start, llm.c's overlap):
 * they go on a second, non-blocking stream made at gpt_nccl_init, one NCCL group per call
 * (a layer's gradients launched together), which first waits for an event recorded on the
 * model's stream (the layer's gradients are written), so they run
 * while the model's stream goes on with the backward; reduce_wait records an event on that
 * stream and makes the model's stream wait for it, again without a host wait.
 * Dtypes: f16, bf16, f32 (and f64). A failed call returns -1 with NCCL's reason in err.
 * Memory: the collectives work in place on arena tensors; NCCL's own staging buffers are
 * allocated by NCCL at gpt_nccl_init, outside the arena (like the CUDA context). */
#ifndef ARENAGPT_NCCL_COMM_H
#define ARENAGPT_NCCL_COMM_H

#include <stddef.h>

#include "dist.h"

/* NCCL's ncclUniqueId: opaque bytes, the same on every rank of one communicator */
#define GPT_NCCL_ID_BYTES 128

typedef struct GptNccl GptNccl;

/* Which GPU this process uses: set before the CUDA backend starts (gpt_backend_cuda), to the
 * rank's index among the ranks of its host. The backend refuses an index past the host's
 * device count, naming both. -1 (the default): the current device. */
void gpt_cuda_select_device(int local_rank);

/* Opens libnccl.so.2 and finds its entry points (once per process). -1 with err saying what is
 * missing and which package provides it. */
int gpt_nccl_load(Err *err);
/* A new unique id (rank 0 only), GPT_NCCL_ID_BYTES bytes into id. */
int gpt_nccl_unique_id(unsigned char *id, Err *err);
/* The communicator of rank `rank` among world_size on the current device; NULL with err. */
GptNccl *gpt_nccl_init(const unsigned char *id, int rank, int world_size, Err *err);
/* The stream every collective is enqueued on (a cudaStream_t as void *). */
void gpt_nccl_set_stream(GptNccl *n, void *stream);
/* comm's ctx and device entries <- n's; rank, world_size and the host entries unchanged. */
void gpt_nccl_fill(GptNccl *n, GptComm *comm);
/* Ends the communicator: destroy after a clean run, abort (no wait on other ranks) after a
 * failure. NULL is allowed. */
void gpt_nccl_free(GptNccl *n, int abort);
/* "NCCL 2.28.9" (after gpt_nccl_load), else "NCCL (not loaded)" */
const char *gpt_nccl_version(void);

#endif
