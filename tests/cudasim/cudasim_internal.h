/* cudasim_internal.h (CUDA simulator): what the runtime's own files share (cudasim.cc: the
 * error state, memory and launches; cudasim_stream.cc: streams and events). Not seen by the
 * kernel sources or the libraries. */
#ifndef CUDASIM_INTERNAL_H
#define CUDASIM_INTERNAL_H

#include <cuda_runtime.h>

#include <stdint.h>

#include <functional>

namespace cudasim {

/* cudasim.cc: sets the last error to e, with the message (printed, and part of
 * cudaGetErrorString(e)); returns e */
cudaError_t api_error(cudaError_t e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* cudasim.cc: the sticky device error (also made the last error), or cudaSuccess */
cudaError_t api_status(void);
/* cudasim.cc: true once a device fault has happened (queued work then does nothing) */
bool device_faulted(void);

/* Work issued to a stream: runs now on an immediate stream, later on a created one. */
typedef std::function<void()> Work;

/* cudasim_stream.cc. Issues `work` to stream s: an invalid handle is refused
 * (cudaErrorInvalidResourceHandle naming `call`); on the legacy stream (NULL,
 * cudaStreamLegacy) the blocking streams' queues run first, then the work; on
 * cudaStreamPerThread the work runs now; on a created stream it is queued. *queued (when not
 * NULL) is the queued work's sequence number in s, 0 when it ran. */
cudaError_t stream_issue(cudaStream_t s, const char *call, Work work, uint64_t *queued);
/* runs s's queue up to and including sequence number seq (a created stream; else nothing) */
void stream_run_to(cudaStream_t s, uint64_t seq);
/* 1 when s is a live created stream (its work is deferred) */
bool stream_deferred(cudaStream_t s);
/* what an operation of the legacy stream waits for: every blocking stream's queue runs */
void streams_legacy_sync(void);
/* every stream's queue runs (cudaDeviceSynchronize, cudaFree) */
void streams_flush_all(void);

} // namespace cudasim

#endif
