/* dist.h: the ranks of a run: start-up under a launcher (mpirun), the collectives the model
 * uses (model/dist.h's GptComm) and the CLI's own (the loss, the config check, a stop), and
 * how a failed rank ends the whole job.
 *
 * One module, two implementations chosen by the Makefile: train/dist_mpi.c (Open MPI) where
 * MPI is installed, train/dist_nompi.c (one rank; a launch by mpirun is refused) where it is
 * not (the GPU bundle). Only `train` starts MPI, and only when a launcher started the process
 * (its environment says so); otherwise every command runs as rank 0 of 1.
 *
 * Output: ranks other than 0 send stdout to /dev/null; errors go to stderr, prefixed by the
 * rank. A rank that fails ends the job: dist_end with a non-zero status aborts every rank
 * (MPI_Abort) after naming the rank and its status. */
#ifndef ARENAGPT_TRAIN_DIST_H
#define ARENAGPT_TRAIN_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "../alloc/base.h"
#include "../model/dist.h"

typedef struct Dist {
    int rank, world_size;
    GptComm comm;  /* for gpt_set_comm when world_size > 1 */
    char name[64]; /* "Open MPI v4.1.4", or "none" */
} Dist;

/* Starts the ranks when `start` and a launcher started this process (else one rank). -1 with
 * err when the launch cannot be honoured (a build without MPI under mpirun). */
int dist_start(int start, Err *err);
/* This process's ranks (rank 0 of 1 before or without dist_start). */
const Dist *dist_world(void);
/* The end of the process: rc 0 finalises; otherwise, with world_size > 1, names the rank and
 * rc on stderr and aborts the whole job with rc. Returns rc. */
int dist_end(int rc);
/* Every rank's text must be the same (the resolved config): compares 64-bit hashes; -1 with
 * err naming the ranks whose config differs from rank 0's. */
int dist_check_same(const char *text, size_t len, Err *err);
/* On CUDA with several ranks (collective): loads NCCL, makes one communicator of every rank
 * on each rank's GPU (rank 0's unique id broadcast over MPI) and points the comm's device
 * collectives at it; its host collectives stay on MPI. -1 with err on every rank when NCCL
 * cannot be loaded on some rank (what to install), or on the rank whose set-up failed (its
 * dist_end then ends the job). Does nothing on one rank. */
int dist_use_cuda(Err *err);
/* The stream the device collectives are enqueued on (the model's, Gpt.stream). */
void dist_set_stream(void *stream);
/* vals (n) = their sum over ranks, in place; *val = the max over ranks (a stop flag agreed). */
int dist_sum(double *vals, int n, Err *err);
int dist_max(int64_t *val, Err *err);

#endif
