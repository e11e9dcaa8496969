/* cuda_runtime.h (CUDA simulator): stands in for the toolkit's cuda_runtime.h when the backend's
 * .cu files are compiled by the host C++ compiler (g++ -x c++) for the simulated binaries under
 * build/sim/. This folder comes first on the include path; the toolkit's own include folder
 * comes after it, so the API's types, error codes and prototypes are the toolkit's
 * (cuda_runtime_api.h) and the host runtime in tests/cudasim/cudasim.cc implements them.
 *
 * For C (model/cuda/device_mem.c) this is only the runtime API. For C++ it adds what a kernel
 * source needs from the device side: the qualifiers (__global__, __device__ become plain
 * functions, __shared__ becomes `static`: a launch runs its blocks one after another, so one
 * static array per kernel is per-block memory), threadIdx/blockIdx/blockDim/gridDim, the
 * barriers, warp shuffles and votes, atomics, and CUDA_LAUNCH, which hands the kernel and its
 * arguments to the simulator's launcher instead of the triple-chevron launch (cudasim.h). */
#ifndef CUDASIM_CUDA_RUNTIME_H
#define CUDASIM_CUDA_RUNTIME_H

/* the qualifiers before the toolkit's host_defines.h sees them (it keeps predefined ones) */
#ifdef __cplusplus
#include "cudasim_qualifiers.h"
#endif

#include <cuda_runtime_api.h>

typedef struct CUstream_st *cudaStream_t;

#ifdef __cplusplus
#include "cudasim.h"
#include "cudasim_qualifiers.h"
#endif

#endif
