/* cudasim_stream.cc: the CUDA simulator's streams and events (see cudasim.cc's file comment for
 * the whole model).
 *
 * The legacy default stream (NULL, cudaStreamLegacy) and cudaStreamPerThread are immediate:
 * their work runs at the call. A stream made by cudaStreamCreate* is deferred: its work
 * (kernel launches, async copies and memsets, library work given through
 * cudasim_stream_enqueue) is queued in issue order, each item with a sequence number, and runs
 * only when something needs it:
 *   - cudaStreamSynchronize(s), cudaStreamDestroy(s) (the work completes first), and
 *     cudaDeviceSynchronize, cudaFree, cudaFreeHost (all streams);
 *   - cudaEventSynchronize(e): e's stream up to e's record;
 *   - cudaStreamWaitEvent(X, e) with X immediate: e's stream up to e's record, now; with X
 *     deferred, a wait item in X's queue that does the same when X's queue reaches it;
 *   - an operation of the legacy stream (a launch, copy, memset, event record or wait on it,
 *     the synchronous cudaMemcpy and cudaMemset): first the queues of every created stream
 *     made without cudaStreamNonBlocking ("the legacy stream first waits on all blocking
 *     streams"); non-blocking streams are not run by it.
 * cudaEventRecord(e, s): on an immediate stream e is complete at once; on a deferred one it
 * stands for s's work issued so far (s, the last sequence number). cudaStreamWaitEvent takes
 * the record e has at the call, as CUDA does; an event never recorded is complete.
 * cudaEventQuery and cudaStreamQuery answer cudaErrorNotReady while that work is queued and run
 * nothing. A handle never created, or destroyed, is refused with
 * cudaErrorInvalidResourceHandle naming the call. Handles are numbers, never reused.
 *
 * So a program that forgets to wait for a non-blocking stream reads what was there before its
 * work, as a GPU may; the other direction (a stream's work that would run too early on a GPU)
 * is not caught, since queued work runs as late as allowed. */
#include "cudasim_internal.h"

#include <stdio.h>

#include <deque>
#include <map>

namespace {

struct Item {
    uint64_t seq;
    cudasim::Work work;
};

struct Stream {
    unsigned flags;
    std::deque<Item> queue;
    uint64_t issued; /* the last sequence number handed out */
    bool running;    /* its queue is being run (a nested request returns) */
};

struct Event {
    uint64_t stream; /* 0: complete (never recorded, or recorded on an immediate stream) */
    uint64_t seq;    /* complete once that stream has run this far */
};

/* handles: HANDLE_BASE + id * HANDLE_STEP (never a pointer, never NULL, 0x1 or 0x2) */
const uintptr_t HANDLE_BASE = 0x5eed0000u, HANDLE_STEP = 16;

std::map<uint64_t, Stream> *g_streams; /* id -> stream, in creation order */
std::map<uint64_t, Event> *g_events;
uint64_t g_stream_ids, g_event_ids;

std::map<uint64_t, Stream> &streams(void) {
    if (!g_streams)
        g_streams = new std::map<uint64_t, Stream>();
    return *g_streams;
}

std::map<uint64_t, Event> &events(void) {
    if (!g_events)
        g_events = new std::map<uint64_t, Event>();
    return *g_events;
}

uint64_t handle_id(const void *h) {
    uintptr_t v = (uintptr_t)h;
    if (v <= HANDLE_BASE || (v - HANDLE_BASE) % HANDLE_STEP != 0)
        return 0;
    return (uint64_t)((v - HANDLE_BASE) / HANDLE_STEP);
}

void *handle_of(uint64_t id) { return (void *)(HANDLE_BASE + (uintptr_t)id * HANDLE_STEP); }

bool immediate(cudaStream_t s) { return !s || s == cudaStreamLegacy || s == cudaStreamPerThread; }
bool legacy(cudaStream_t s) { return !s || s == cudaStreamLegacy; }

/* the created stream s names, or NULL (an immediate stream, or an invalid handle) */
Stream *stream_find(cudaStream_t s) {
    auto it = streams().find(handle_id(s));
    return it == streams().end() ? NULL : &it->second;
}

Event *event_find(cudaEvent_t e) {
    auto it = events().find(handle_id(e));
    return it == events().end() ? NULL : &it->second;
}

/* runs s's queue up to and including seq */
void run_to(Stream &s, uint64_t seq) {
    if (s.running)
        return; /* asked again by its own running item: what it needs has run */
    s.running = true;
    while (!s.queue.empty() && s.queue.front().seq <= seq) {
        cudasim::Work w = std::move(s.queue.front().work);
        s.queue.pop_front();
        w();
    }
    s.running = false;
}

void run_all(Stream &s) { run_to(s, s.issued); }

/* the stream `id` up to seq, if it still exists (a destroyed stream has run everything) */
void run_id_to(uint64_t id, uint64_t seq) {
    auto it = streams().find(id);
    if (it != streams().end())
        run_to(it->second, seq);
}

bool event_done(const Event &e) {
    if (!e.stream)
        return true;
    auto it = streams().find(e.stream);
    return it == streams().end() || it->second.queue.empty() ||
           it->second.queue.front().seq > e.seq;
}

cudaError_t bad_stream(const char *call, cudaStream_t s) {
    return cudasim::api_error(cudaErrorInvalidResourceHandle,
                              "%s: stream %p was not created by cudaStreamCreate* or is destroyed",
                              call, (void *)s);
}

cudaError_t bad_event(const char *call, cudaEvent_t e) {
    return cudasim::api_error(cudaErrorInvalidResourceHandle,
                              "%s: event %p was not created by cudaEventCreate* or is destroyed",
                              call, (void *)e);
}

/* cudaSuccess when s is an immediate stream or a live created one */
cudaError_t stream_valid(const char *call, cudaStream_t s) {
    return immediate(s) || stream_find(s) ? cudaSuccess : bad_stream(call, s);
}

} // namespace

namespace cudasim {

cudaError_t stream_issue(cudaStream_t s, const char *call, Work work, uint64_t *queued) {
    if (queued)
        *queued = 0;
    if (stream_valid(call, s) != cudaSuccess)
        return cudaErrorInvalidResourceHandle;
    Stream *st = stream_find(s);
    if (st) {
        st->queue.push_back(Item{++st->issued, std::move(work)});
        if (queued)
            *queued = st->issued;
        return cudaSuccess;
    }
    if (legacy(s))
        streams_legacy_sync();
    work();
    return cudaSuccess;
}

void stream_run_to(cudaStream_t s, uint64_t seq) {
    Stream *st = stream_find(s);
    if (st)
        run_to(*st, seq);
}

bool stream_deferred(cudaStream_t s) { return stream_find(s) != NULL; }

void streams_legacy_sync(void) {
    for (auto &kv : streams())
        if (!(kv.second.flags & cudaStreamNonBlocking))
            run_all(kv.second);
}

void streams_flush_all(void) {
    for (auto &kv : streams())
        run_all(kv.second);
}

} // namespace cudasim

/* --- streams ------------------------------------------------------------------------- */

extern "C" cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags) {
    if (cudasim::api_status() != cudaSuccess)
        return cudasim::api_status();
    if (!s)
        return cudasim::api_error(cudaErrorInvalidValue, "cudaStreamCreateWithFlags: NULL result");
    if (flags != cudaStreamDefault && flags != cudaStreamNonBlocking)
        return cudasim::api_error(cudaErrorInvalidValue,
                                  "cudaStreamCreateWithFlags: flags %#x (cudaStreamDefault or "
                                  "cudaStreamNonBlocking)",
                                  flags);
    uint64_t id = ++g_stream_ids;
    streams()[id] = Stream{flags, {}, 0, false};
    *s = (cudaStream_t)handle_of(id);
    return cudaSuccess;
}

extern "C" cudaError_t cudaStreamCreate(cudaStream_t *s) {
    return cudaStreamCreateWithFlags(s, cudaStreamDefault);
}

/* CUDA: "in case the device is still doing work in the stream when cudaStreamDestroy() is
 * called, the function will return immediately and the resources ... released automatically
 * once the device has completed all work": the work runs here, then the handle is gone */
extern "C" cudaError_t cudaStreamDestroy(cudaStream_t s) {
    Stream *st = stream_find(s);
    if (!st)
        return bad_stream("cudaStreamDestroy", s);
    run_all(*st);
    streams().erase(handle_id(s));
    return cudasim::api_status();
}

extern "C" cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    if (stream_valid("cudaStreamSynchronize", s) != cudaSuccess)
        return cudaErrorInvalidResourceHandle;
    Stream *st = stream_find(s);
    if (st)
        run_all(*st);
    return cudasim::api_status();
}

extern "C" cudaError_t cudaStreamQuery(cudaStream_t s) {
    if (stream_valid("cudaStreamQuery", s) != cudaSuccess)
        return cudaErrorInvalidResourceHandle;
    if (cudasim::api_status() != cudaSuccess)
        return cudasim::api_status();
    Stream *st = stream_find(s);
    return st && !st->queue.empty() ? cudaErrorNotReady : cudaSuccess;
}

extern "C" cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags) {
    const char *call = "cudaStreamWaitEvent";
    if (cudasim::api_status() != cudaSuccess)
        return cudasim::api_status();
    Event *ev = event_find(e);
    if (!ev)
        return bad_event(call, e);
    if (flags != 0)
        return cudasim::api_error(cudaErrorInvalidValue, "%s: flags %#x (0 is simulated)", call,
                                  flags);
    Event at = *ev; /* the record e has now */
    Stream *st = stream_find(s);
    if (st && at.stream == handle_id(s))
        return cudaSuccess; /* its own earlier work: already in order */
    return cudasim::stream_issue(
        s, call, [at] { run_id_to(at.stream, at.seq); }, NULL);
}

/* --- events -------------------------------------------------------------------------- */

extern "C" cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags) {
    if (cudasim::api_status() != cudaSuccess)
        return cudasim::api_status();
    if (!e)
        return cudasim::api_error(cudaErrorInvalidValue, "cudaEventCreateWithFlags: NULL result");
    if (flags & ~(unsigned)(cudaEventBlockingSync | cudaEventDisableTiming))
        return cudasim::api_error(cudaErrorInvalidValue,
                                  "cudaEventCreateWithFlags: flags %#x (cudaEventDefault, "
                                  "cudaEventBlockingSync, cudaEventDisableTiming are simulated)",
                                  flags);
    uint64_t id = ++g_event_ids;
    events()[id] = Event{0, 0};
    *e = (cudaEvent_t)handle_of(id);
    return cudaSuccess;
}

extern "C" cudaError_t cudaEventCreate(cudaEvent_t *e) {
    return cudaEventCreateWithFlags(e, cudaEventDefault);
}

extern "C" cudaError_t cudaEventDestroy(cudaEvent_t e) {
    if (!event_find(e))
        return bad_event("cudaEventDestroy", e);
    events().erase(handle_id(e));
    return cudasim::api_status();
}

extern "C" cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    const char *call = "cudaEventRecord";
    if (cudasim::api_status() != cudaSuccess)
        return cudasim::api_status();
    Event *ev = event_find(e);
    if (!ev)
        return bad_event(call, e);
    uint64_t seq = 0;
    cudaError_t r = cudasim::stream_issue(
        s, call, [] {}, &seq);
    if (r != cudaSuccess)
        return r;
    *ev = seq ? Event{handle_id(s), seq} : Event{0, 0};
    return cudaSuccess;
}

extern "C" cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    Event *ev = event_find(e);
    if (!ev)
        return bad_event("cudaEventSynchronize", e);
    if (ev->stream)
        run_id_to(ev->stream, ev->seq);
    return cudasim::api_status();
}

extern "C" cudaError_t cudaEventQuery(cudaEvent_t e) {
    Event *ev = event_find(e);
    if (!ev)
        return bad_event("cudaEventQuery", e);
    if (cudasim::api_status() != cudaSuccess)
        return cudasim::api_status();
    return event_done(*ev) ? cudaSuccess : cudaErrorNotReady;
}

/* --- library work -------------------------------------------------------------------- */

/* For the simulator's libraries (the NCCL stand-in finds it with dlsym; the simulated
 * binaries export it): fn(ctx) is work on stream s. Returns 0 after running it (s immediate;
 * the legacy stream's blocking-stream rule applies), 1 when it is queued (fn frees ctx itself
 * if it must), -1 when s is no stream (nothing runs; no CUDA error is set). */
extern "C" int cudasim_stream_enqueue(cudaStream_t s, void (*fn)(void *), void *ctx) {
    if (!immediate(s) && !stream_find(s))
        return -1;
    uint64_t seq = 0;
    cudasim::stream_issue(
        s, "cudasim_stream_enqueue", [fn, ctx] { fn(ctx); }, &seq);
    return seq ? 1 : 0;
}
