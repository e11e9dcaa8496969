/* cublas_v2.h (CUDA simulator stand-in): as the toolkit's, the cuBLAS API of cublas_api.h
 * with the _v2 entry points under their plain names. */
#if !defined(CUBLAS_V2_H_)
#define CUBLAS_V2_H_

#include "cublas_api.h"

#define cublasCreate cublasCreate_v2
#define cublasDestroy cublasDestroy_v2
#define cublasSetWorkspace cublasSetWorkspace_v2
#define cublasSetStream cublasSetStream_v2

#endif
