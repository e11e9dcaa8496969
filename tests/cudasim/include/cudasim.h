/* cudasim.h (CUDA simulator): the device side of a kernel source compiled by the host C++
 * compiler, and the launcher behind CUDA_LAUNCH. Included by the simulator's cuda_runtime.h.
 *
 * Execution model (tests/cudasim/cudasim.cc): a launch checks its configuration against the
 * simulated card (sm_89 limits; a refused launch sets the error cudaGetLastError returns and
 * names the kernel), then runs the grid's blocks one after another; the threads of a block are
 * cooperative fibers. A thread runs until it reaches a barrier (__syncthreads and its
 * reductions: the whole block; a warp shuffle or vote: the lanes of its mask) or returns.
 * Between barriers the threads run in an order chosen per launch from a seed (forward, reverse,
 * or shuffled), so a missing barrier changes results. Barrier divergence, a shuffle whose mask
 * names a lane that never arrives, and mismatched barriers are reported with the kernel's name
 * and fail the launch (a sticky error, like a device fault).
 *
 * Atomics are plain read-modify-writes: fibers only switch at barriers, so nothing interleaves.
 * Streams: a launch on the legacy stream runs before the call returns; on a created stream it
 * is queued and runs when something waits for it (cudasim_stream.cc); nothing runs
 * concurrently. */
#ifndef CUDASIM_H
#define CUDASIM_H

#include <math.h> /* the real cuda_runtime.h brings the math functions too */
#include <stdint.h>
#include <string.h>

#include <tuple>
#include <utility>

namespace cudasim {

/* the running thread's coordinates (set by the scheduler before it resumes a fiber) */
extern uint3 cur_thread_idx;
extern uint3 cur_block_idx;
extern dim3 cur_block_dim;
extern dim3 cur_grid_dim;

enum WarpOpKind {
    WARP_SHFL,
    WARP_SHFL_UP,
    WARP_SHFL_DOWN,
    WARP_SHFL_XOR,
    WARP_VOTE,
    WARP_SYNC,
    WARP_COLLECTIVE
};
enum BlockOpKind { BLOCK_SYNC, BLOCK_OR, BLOCK_AND, BLOCK_COUNT };

/* a warp barrier among the lanes of `mask`: every lane hands in `value`, gets the value of the
 * lane its kind and `arg` select (WARP_VOTE: the ballot of the lanes' non-zero values) */
uint64_t warp_op(WarpOpKind kind, unsigned mask, uint64_t value, int arg, int width,
                 const char *what);
/* a block barrier; returns the reduction of `pred` over the block for the reducing kinds */
int block_op(BlockOpKind kind, int pred);
/* the launch's dynamic shared memory */
void *dynamic_shared(void);

/* A warp collective of all 32 lanes (mma, ldmatrix: cudasim_mma.h): each lane hands in a
 * pointer to its own operands (`mine`) and the operation's shape; once all 32 have arrived
 * with the same `fn`, `shape` and `what`, fn(lanes) runs once with every lane's pointer (lane
 * order) and writes each lane's results through it. fn returns NULL, or a message that fails
 * the launch (e.g. a misaligned address). A lane missing, or lanes at different shapes, is
 * reported as divergence naming the kernel. */
typedef const char *(*WarpCollectiveFn)(void *const lanes[32], int shape);
void warp_collective(WarpCollectiveFn fn, void *mine, int shape, const char *what);

/* cp.async of `bytes` (4, 8 or 16, both addresses aligned to it) from global to shared
 * memory by the calling thread: recorded, not copied. The copy happens when a
 * cp_async_wait needs its group, or earlier at a point chosen from the schedule seed (any
 * later cp.async call or barrier of the thread), never at issue: a kernel that reads the
 * destination before waiting sees the old bytes, as it may on the GPU. */
void cp_async(void *dst_shared, const void *src_global, int bytes);
/* closes the thread's uncommitted copies into a group (cp.async.commit_group) */
void cp_async_commit(void);
/* completes all of the thread's committed groups but the newest `pending`
 * (cp.async.wait_group pending) */
void cp_async_wait(int pending);

/* Runs body(ctx) once per thread of every block of the grid (see the file comment), now on an
 * immediate stream, when its queue runs on a created one (tests/cudasim/cudasim_stream.cc);
 * then release(ctx). A refused launch runs nothing and releases ctx at once. */
void launch(const char *name, const void *fn, dim3 grid, dim3 block, size_t shared_bytes,
            cudaStream_t stream, void (*body)(void *), void *ctx, void (*release)(void *));

template <typename... P> std::tuple<P...> params_of(void (*)(P...));

/* the arguments are copied into the launch (a heap copy the launch releases), so a launch on a
 * created stream runs with the values they had at the call, as on the GPU */
template <typename... P>
void launch_kernel(const char *name, void (*kernel)(P...), dim3 grid, dim3 block,
                   size_t shared_bytes, cudaStream_t stream, std::tuple<P...> args) {
    struct Ctx {
        void (*kernel)(P...);
        std::tuple<P...> args;
    };
    Ctx *c = new Ctx{kernel, std::move(args)};
    /* every thread gets its own copy of the parameters, as on the GPU */
    launch(
        name, (const void *)kernel, grid, block, shared_bytes, stream,
        [](void *p) {
            Ctx *cx = (Ctx *)p;
            std::tuple<P...> mine = cx->args;
            std::apply(cx->kernel, mine);
        },
        c, [](void *p) { delete (Ctx *)p; });
}

template <typename T> static inline uint64_t bits_of(T v) {
    static_assert(sizeof(T) <= sizeof(uint64_t), "shuffle of a type wider than 8 bytes");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof(T));
    return b;
}

template <typename T> static inline T from_bits(uint64_t b) {
    T v;
    memcpy(&v, &b, sizeof(T));
    return v;
}

} // namespace cudasim

/* CUDA_LAUNCH(kernel, grid, block, shared_bytes, stream, args...): the arguments are converted
 * to the kernel's parameter types once, at the launch, as the real launch does */
#define CUDA_LAUNCH(kernel, grid, block, shared_bytes, stream, ...)                                \
    cudasim::launch_kernel(#kernel, kernel, dim3(grid), dim3(block), (size_t)(shared_bytes),       \
                           (stream), decltype(cudasim::params_of(kernel))(__VA_ARGS__))

/* extern __shared__ T name[] of the CUDA source, as the simulator spells it */
#define CUDA_DYNAMIC_SHARED(type, name) type *name = (type *)cudasim::dynamic_shared()

#define threadIdx (static_cast<const uint3 &>(cudasim::cur_thread_idx))
#define blockIdx (static_cast<const uint3 &>(cudasim::cur_block_idx))
#define blockDim (static_cast<const dim3 &>(cudasim::cur_block_dim))
#define gridDim (static_cast<const dim3 &>(cudasim::cur_grid_dim))
static constexpr int warpSize = 32;

static inline void __syncthreads(void) { cudasim::block_op(cudasim::BLOCK_SYNC, 0); }
static inline int __syncthreads_or(int p) { return cudasim::block_op(cudasim::BLOCK_OR, p); }
static inline int __syncthreads_and(int p) { return cudasim::block_op(cudasim::BLOCK_AND, p); }
static inline int __syncthreads_count(int p) { return cudasim::block_op(cudasim::BLOCK_COUNT, p); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) {
    cudasim::warp_op(cudasim::WARP_SYNC, mask, 0, 0, 32, "__syncwarp");
}

template <typename T> static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    return cudasim::from_bits<T>(
        cudasim::warp_op(cudasim::WARP_SHFL, mask, cudasim::bits_of(v), src, width, "__shfl_sync"));
}
template <typename T>
static inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return cudasim::from_bits<T>(cudasim::warp_op(cudasim::WARP_SHFL_UP, mask, cudasim::bits_of(v),
                                                  (int)delta, width, "__shfl_up_sync"));
}
template <typename T>
static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return cudasim::from_bits<T>(cudasim::warp_op(
        cudasim::WARP_SHFL_DOWN, mask, cudasim::bits_of(v), (int)delta, width, "__shfl_down_sync"));
}
template <typename T>
static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    return cudasim::from_bits<T>(cudasim::warp_op(cudasim::WARP_SHFL_XOR, mask, cudasim::bits_of(v),
                                                  lane_mask, width, "__shfl_xor_sync"));
}
static inline unsigned __ballot_sync(unsigned mask, int pred) {
    return (unsigned)cudasim::warp_op(cudasim::WARP_VOTE, mask, pred != 0, 0, 32, "__ballot_sync");
}
static inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
static inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) == mask; }

/* atomics: nothing runs between a fiber's read and write (it switches only at barriers) */
template <typename T> static inline T cudasim_atomic_add(T *p, T v) {
    T old = *p;
    *p = old + v;
    return old;
}
static inline float atomicAdd(float *p, float v) { return cudasim_atomic_add(p, v); }
static inline double atomicAdd(double *p, double v) { return cudasim_atomic_add(p, v); }
static inline int atomicAdd(int *p, int v) { return cudasim_atomic_add(p, v); }
static inline unsigned atomicAdd(unsigned *p, unsigned v) { return cudasim_atomic_add(p, v); }
static inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) {
    return cudasim_atomic_add(p, v);
}
static inline int atomicMax(int *p, int v) {
    int old = *p;
    *p = old > v ? old : v;
    return old;
}
static inline int atomicMin(int *p, int v) {
    int old = *p;
    *p = old < v ? old : v;
    return old;
}
static inline int atomicExch(int *p, int v) {
    int old = *p;
    *p = v;
    return old;
}
static inline int atomicCAS(int *p, int cmp, int v) {
    int old = *p;
    if (old == cmp)
        *p = v;
    return old;
}
static inline unsigned atomicCAS(unsigned *p, unsigned cmp, unsigned v) {
    unsigned old = *p;
    if (old == cmp)
        *p = v;
    return old;
}

#endif
