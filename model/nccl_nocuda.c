/* nccl_nocuda.c: model/nccl_comm.h in a build without CUDA (the Makefile links it in place of
 * model/cuda/nccl_comm.c): there is no GPU to choose and no device memory for NCCL, so loading
 * fails saying so and nothing else is ever reached. */
#include "nccl_comm.h"

void gpt_cuda_select_device(int local_rank) { (void)local_rank; }

int gpt_nccl_load(Err *err) {
    return err_set(err, "data parallel on cuda: this build has no CUDA (rebuild with nvcc on "
                        "PATH), so there is no NCCL either");
}

int gpt_nccl_unique_id(unsigned char *id, Err *err) { return gpt_nccl_load(err); }

GptNccl *gpt_nccl_init(const unsigned char *id, int rank, int world_size, Err *err) {
    gpt_nccl_load(err);
    return NULL;
}

void gpt_nccl_set_stream(GptNccl *n, void *stream) {}
void gpt_nccl_fill(GptNccl *n, GptComm *comm) {}
void gpt_nccl_free(GptNccl *n, int abort) {}
const char *gpt_nccl_version(void) { return "NCCL (not in this build)"; }
