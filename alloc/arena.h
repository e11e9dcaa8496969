/* arena.h: the one instrumented allocator every byte of the model goes through.
 *
 * An Arena hands out offsets inside one contiguous address range and attributes every
 * allocation to a category (params, grads, optimizer, activations, workspace), a name
 * ("h.3.attn.c_attn.weight", "act.h.3.mlp.gelu", "ws.backend"), a dtype and a shape.
 *
 * Three backings behind one interface:
 *   ARENA_BACKING_PLAN    no memory at all: offsets, peaks and the tensor list only
 *                         (Tensor.data is NULL). This is how `arenagpt mem` plans a run.
 *   ARENA_BACKING_HOST    one aligned host reservation of capacity_bytes.
 *   ARENA_BACKING_DEVICE  one cudaMalloc'd reservation (arena_cuda.cu; CUDA builds only).
 *   ARENA_BACKING_PINNED  one cudaHostAlloc'd (page-locked host) reservation: the host arena
 *                         of optimizer_offload (arena_cuda.cu; CUDA builds only).
 * The placement algorithm is the same code in all three, so the same sequence of calls
 * gives the same offsets and peaks in every backing (tested).
 *
 * Placement: first fit from the bottom of the range, every allocation rounded up to
 * ARENA_ALIGNMENT bytes. The rounding is charged to the allocation that caused it
 * (Tensor.bytes includes it), so the bytes of the live tensors always add up to the
 * arena's used bytes exactly. Holes left by frees below the top of the range are
 * reported (arena_holes, and `high_water - peak_used` in the reports), never hidden.
 *
 * Lifetimes:
 *   - persistent tensors (params, grads, optimizer) are allocated once and freed at teardown;
 *   - ARENA_CAT_ACTIVATIONS is a stack: forward pushes, backward pops. Freeing an
 *     activation that is not the most recent live one is a programmer error (ASSERT);
 *   - workspace may be freed in any order and its space is reused.
 *
 * Budget: limit_bytes (0 = none) caps the top of the used range; an allocation that would
 * cross it (or cross a host/device reservation's capacity) returns NULL and leaves a report
 * in arena_last_error(): bytes asked, name and category, held bytes by category, peak so
 * far. The arena stays usable after a refusal. arena_alloc() is the loud variant: it
 * ASSERTs that the allocation succeeded (tests and code that has already planned).
 *
 * Invariant checked by every arena test before arena_free: after every tensor is released,
 * used bytes are 0 (in every category).
 *
 * What it does not do: no thread safety (one arena per thread), no resizing of a
 * reservation, no defragmentation.
 *
 * Shape legend (used by every header of the project; docs/ARCHITECTURE.md): B batch,
 * T time (sequence), C channels, NH heads, HS head size (C/NH), V vocab, Vp padded vocab,
 * L layers. */
#ifndef ARENAGPT_ARENA_H
#define ARENAGPT_ARENA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base.h"

#define ARENA_ALIGNMENT 256 /* bytes; cudaMalloc's own alignment, so device offsets stay aligned */
#define ARENA_NAME_LEN 64   /* longest tensor name kept, including the NUL */
#define ARENA_MAX_DIMS 4

typedef enum ArenaCategory {
    ARENA_CAT_PARAMS = 0,
    ARENA_CAT_GRADS,
    ARENA_CAT_OPTIMIZER,
    ARENA_CAT_ACTIVATIONS,
    ARENA_CAT_WORKSPACE,
    ARENA_CAT_COUNT
} ArenaCategory;

typedef enum ArenaBacking {
    ARENA_BACKING_PLAN = 0,
    ARENA_BACKING_HOST,
    ARENA_BACKING_DEVICE,
    ARENA_BACKING_PINNED
} ArenaBacking;

typedef enum ArenaDtype {
    ARENA_DTYPE_F32 = 0,
    ARENA_DTYPE_F16,
    ARENA_DTYPE_BF16,
    ARENA_DTYPE_F64,
    ARENA_DTYPE_I32,
    ARENA_DTYPE_U16,
    ARENA_DTYPE_U8,
    ARENA_DTYPE_COUNT
} ArenaDtype;

/* One allocation. Owned by the arena; the pointer stays valid until the tensor is freed. */
typedef struct Tensor {
    void *data;    /* base + offset; NULL in the plan backing */
    size_t offset; /* from the start of the reservation */
    size_t nbytes; /* numel * dtype size: what the tensor itself needs */
    size_t bytes;  /* nbytes rounded up to ARENA_ALIGNMENT: what it is charged */
    int64_t shape[ARENA_MAX_DIMS];
    int ndim;
    ArenaDtype dtype;
    ArenaCategory category;
    char name[ARENA_NAME_LEN];
    /* bookkeeping */
    int64_t seq; /* allocation sequence number (0, 1, 2, ... per arena) */
    int live;
} Tensor;

typedef struct ArenaStats {
    size_t used_bytes;                      /* live bytes now, padding included */
    size_t cat_used_bytes[ARENA_CAT_COUNT]; /* live bytes now per category */
    size_t cat_peak_bytes[ARENA_CAT_COUNT]; /* each category's own peak */
    size_t peak_used_bytes;                 /* peak of used_bytes */
    size_t at_peak_bytes[ARENA_CAT_COUNT];  /* per category at the moment of that peak */
    size_t high_water_bytes;                /* highest end offset ever: the reservation needed */
    size_t top_bytes;                       /* current end of the highest live tensor */
    size_t hole_bytes;                      /* free bytes below top_bytes now */
    int64_t n_holes;                        /* free runs below top_bytes now */
    int64_t n_live;                         /* live allocations now */
    int64_t n_allocs;                       /* allocations ever made */
    int64_t n_refused;                      /* allocations refused (budget/capacity) */
    size_t capacity_bytes;                  /* reservation size; SIZE_MAX for plan */
    size_t limit_bytes;                     /* budget; 0 = none */
} ArenaStats;

/* One row per tensor that was live at the moment of the global peak (arena_peak_tensors). */
typedef struct ArenaPeakTensor {
    char name[ARENA_NAME_LEN];
    ArenaCategory category;
    ArenaDtype dtype;
    int ndim;
    int64_t shape[ARENA_MAX_DIMS];
    size_t offset;
    size_t bytes;
} ArenaPeakTensor;

/* A reservation provider (host and device backings). reserve returns NULL and fills err.
 * fill (may be NULL: memset) writes `byte` over n bytes of the reservation; it is used only in
 * AddressSanitizer builds, where the arena keeps every byte outside live tensors poisoned
 * (ASan's manual poisoning: holes, alignment padding, the free top) and fills each new tensor
 * with 0xff bytes (NaN as f32 and f16), so an out-of-bounds access fails at once and a read of
 * memory never written shows as NaN. The reservation must then be host-addressable (the host
 * backing, or the device backing of the CUDA simulator). Accounting is not affected. */
typedef struct ArenaBackingOps {
    ArenaBacking backing;
    void *(*reserve)(size_t bytes, Err *err);
    void (*release)(void *base);
    void (*fill)(void *p, int byte, size_t n);
} ArenaBackingOps;

typedef struct Arena Arena;

/* The device backing's ops (arena_cuda.cu); NULL in a build without CUDA (model/device_nocuda.c). */
const ArenaBackingOps *arena_device_ops(void);
/* The pinned host backing's ops (arena_cuda.cu: cudaHostAlloc/cudaFreeHost); NULL in a build
 * without CUDA (model/device_nocuda.c). */
const ArenaBackingOps *arena_pinned_ops(void);

/* plan: capacity is unbounded (only limit_bytes applies). host: reserves capacity_bytes now.
 * Returns NULL with err on failure (bad arguments, reservation refused). */
Arena *arena_init(ArenaBacking backing, size_t capacity_bytes, size_t limit_bytes, Err *err);
/* Any backing through its ops (the device backing lives in arena_cuda.cu and uses this). */
Arena *arena_init_with(const ArenaBackingOps *ops, size_t capacity_bytes, size_t limit_bytes,
                       Err *err);
/* Releases the reservation. Live tensors are allowed (teardown of a failed run); use
 * arena_stats().used_bytes == 0 before it to check that everything was freed. */
void arena_free(Arena *a);

/* Allocates numel(shape) elements of dtype. name may be a printf format. Returns NULL when
 * the budget or the reservation refuses; the report is in arena_last_error(). */
Tensor *arena_try_alloc(Arena *a, ArenaCategory cat, ArenaDtype dtype, int ndim,
                        const int64_t *shape, const char *name_fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* The same, ASSERTing success (prints the refusal report first). */
Tensor *arena_alloc(Arena *a, ArenaCategory cat, ArenaDtype dtype, int ndim, const int64_t *shape,
                    const char *name_fmt, ...) __attribute__((format(printf, 6, 7)));
/* Frees one tensor (NULL is a no-op). Activations must be freed in LIFO order (ASSERT). */
void arena_release(Arena *a, Tensor *t);
/* The most recent live activation (the top of the activation stack), or NULL when none. */
Tensor *arena_activation_top(const Arena *a);
/* Frees every live tensor of one category (any order; used for teardown and for dropping a
 * whole step's workspace). Returns how many were freed. */
int64_t arena_release_category(Arena *a, ArenaCategory cat);

ArenaStats arena_stats(const Arena *a);
ArenaBacking arena_backing(const Arena *a);
int arena_is_plan(const Arena *a);
void *arena_base(const Arena *a);             /* NULL for plan */
const char *arena_last_error(const Arena *a); /* "" when nothing was refused */
/* Fault injection (tests): at most n_allocs allocations in all (counted from arena_init); the
 * next one is refused like one past the limit, with the same report. n_allocs < 0: no cap. */
void arena_set_alloc_budget(Arena *a, int64_t n_allocs);
/* Resets the peaks and the peak snapshot to the current state (e.g. after setup, to measure
 * one step). Live tensors and the high-water mark are kept. */
void arena_peaks_reset(Arena *a);

/* Tensors live at the global peak (the snapshot taken when peak_used_bytes was last raised),
 * in offset order. Valid until the next allocation. */
const ArenaPeakTensor *arena_peak_tensors(const Arena *a, int64_t *n_out);
/* Live tensors now, in offset order, into a caller array of max n; returns the count. */
int64_t arena_live_tensors(const Arena *a, const Tensor **out, int64_t max_n);

/* Trace of alloc/free events for the Chrome trace-event timeline. Off by default; when on,
 * every event is recorded (timestamps: microseconds since arena_init on host/device,
 * the event sequence number in the plan backing, which has no meaningful time). */
void arena_trace_enable(Arena *a, int on);
/* Adds a named instant marker to the trace ("step 3 forward"), when tracing. */
void arena_trace_mark(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The recorded trace, for reports: the number of events (and whether the trace was cut at its
 * cap), and event i: kind 'A' alloc, 'F' free, 'M' marker; cat_used is each category's used
 * bytes right after the event. Returns -1 for an index out of range. */
int64_t arena_trace_count(const Arena *a, int *truncated);
int arena_trace_get(const Arena *a, int64_t i, double *ts_us, char *kind, ArenaCategory *cat,
                    size_t *bytes, size_t *offset, size_t cat_used[ARENA_CAT_COUNT],
                    const char **name);
/* The tensor of event i: its dtype and shape (ndim 0 for a marker). -1 out of range. */
int arena_trace_tensor(const Arena *a, int64_t i, ArenaDtype *dtype, int *ndim,
                       int64_t shape[ARENA_MAX_DIMS]);

/* Names and sizes. */
const char *arena_category_name(ArenaCategory cat); /* "params", "grads", ... */
const char *arena_dtype_name(ArenaDtype dt);        /* "f32", "f16", ... */
size_t arena_dtype_size(ArenaDtype dt);
const char *arena_backing_name(ArenaBacking b); /* "plan", "host", "device", "pinned" */
/* Inverse of arena_category_name; -1 when unknown. */
int arena_category_from_name(const char *name);

/* Reports (report.c). All write to f and return 0, or -1 on a write error.
 * Table: per-category current/peak/at-peak, high-water mark and holes, top_n tensors at peak.
 * JSON: a whole object; arena_report_json_fields writes the same members without braces so
 * a caller can embed them in a larger object. CSV: one row per tensor at peak, then one row
 * per category (kind column tells which). Trace: Chrome trace-event JSON (Perfetto). */
int arena_report_table(const Arena *a, FILE *f, int top_n);
int arena_report_json(const Arena *a, FILE *f);
int arena_report_json_fields(const Arena *a, FILE *f, const char *indent);
int arena_report_csv(const Arena *a, FILE *f);
int arena_report_trace(const Arena *a, FILE *f);

#endif
