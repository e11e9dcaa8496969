/* library_types.h (CUDA simulator stand-in): the cudaDataType_t values the backend and the
 * simulated GEMM libraries use, with the toolkit's names and numbers (library_types.h of CUDA
 * 13: CUDA_R_32F = 0, CUDA_R_64F = 1, CUDA_R_16F = 2, CUDA_R_8I = 3, CUDA_R_32I = 10,
 * CUDA_R_16BF = 14). The include guard is the toolkit's, so the two never both define it.
 * Compiles as C and C++. Only the simulated build (build/sim/) puts this folder on the path. */
#if !defined(__LIBRARY_TYPES_H__)
#define __LIBRARY_TYPES_H__

typedef enum cudaDataType_t {
    CUDA_R_32F = 0,  /* float */
    CUDA_R_64F = 1,  /* double */
    CUDA_R_16F = 2,  /* half */
    CUDA_R_8I = 3,   /* int8 */
    CUDA_R_32I = 10, /* int32 */
    CUDA_R_16BF = 14 /* bfloat16 */
} cudaDataType;
typedef enum cudaDataType_t cudaDataType_t;

#endif
