/* cudasim_qualifiers.h (CUDA simulator): the CUDA qualifiers as the simulator compiles them.
 * No include guard on purpose: cuda_runtime.h includes it before and after the toolkit's
 * headers, so these definitions win whichever header (cuda_fp16.h, cublasLt.h) came first.
 * __shared__ arrays are static (blocks run one at a time) and live in the section
 * cudasim_shared, where the runtime finds each kernel's static shared bytes (by symbol). */
#undef __host__
#undef __device__
#undef __global__
#undef __shared__
#undef __forceinline__
#undef __launch_bounds__
#define __host__
#define __device__
#define __global__
#define __shared__ static __attribute__((section("cudasim_shared")))
#define __forceinline__ inline
#define __launch_bounds__(...)
