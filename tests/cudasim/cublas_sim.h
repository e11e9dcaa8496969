/* cublas_sim.h: what the host cuBLASLt/cuBLAS of the CUDA simulator (cublas_sim.cc) offers
 * beyond the libraries' own API (include/cublasLt.h, include/cublas_v2.h): the reason for the
 * last call it refused, for tests and messages. Compiles as C and C++. */
#ifndef ARENAGPT_CUBLAS_SIM_H
#define ARENAGPT_CUBLAS_SIM_H

#include <stddef.h>
#include <stdint.h>

#if defined(__cplusplus)
extern "C" {
#endif

/* The last refusal of any entry point, "" if none yet: the function, what was wrong, the
 * documentation section the check comes from and the status returned. Process-wide, not
 * reset by later successful calls. */
const char *cublas_sim_last_refusal(void);

/* Bytes of workspace the simulated algorithms use for an m x n output: the f32 accumulator of
 * one batch member. cublasLtMatmulAlgoGetHeuristic picks such an algorithm when the
 * preference's MAX_WORKSPACE_BYTES allows it and k > 1; cublasGemmStridedBatchedEx uses the
 * handle's workspace when it is at least this large. */
size_t cublas_sim_workspace_bytes(int64_t m, int64_t n);

#if defined(__cplusplus)
}
#endif

#endif
