/* arena.c: placement, lifetimes, statistics, the peak snapshot and the event trace of the
 * Arena (arena.h). Reports live in report.c; the device reservation in arena_cuda.cu.
 *
 * Invariants (the tests check them through arena_live_tensors and arena_stats; arena_release
 * ASSERTs the last one):
 *   - live[] is sorted by offset and no two live tensors overlap;
 *   - used_bytes == sum of live bytes == sum of cat_used_bytes;
 *   - act_stack[] holds the live activations in allocation order (LIFO). */
#include "arena.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sanitizer/asan_interface.h> /* ASAN_(UN)POISON_MEMORY_REGION: no-ops without ASan */

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_POISON 1 /* poison outside live tensors, NaN-fill new ones (arena.h) */
#else
#define ARENA_POISON 0
#endif
#define ARENA_FRESH_BYTE 0xff /* a fresh tensor's bytes: NaN as f32 and as f16 */

#define ARENA_SLOT_CHUNK 1024          /* Tensor records are allocated in chunks: stable pointers */
#define ARENA_TRACE_MAX_EVENTS 4000000 /* a trace is for a few steps; past this it is cut (said) */

typedef struct ArenaEvent {
    double ts_us;
    int64_t seq;
    char kind; /* 'A' alloc, 'F' free, 'M' marker */
    ArenaCategory category;
    size_t bytes;
    size_t offset;
    size_t cat_used[ARENA_CAT_COUNT];
    char name[ARENA_NAME_LEN];
    ArenaDtype dtype; /* alloc/free: the tensor's dtype and shape; markers: ndim 0 */
    int ndim;
    int64_t shape[ARENA_MAX_DIMS];
} ArenaEvent;

struct Arena {
    ArenaBackingOps ops;
    void *base;
    size_t capacity;
    size_t limit;

    Tensor **live; /* sorted by offset */
    int64_t n_live, cap_live;
    Tensor **act_stack;
    int64_t n_act, cap_act;

    Tensor **chunks;
    int64_t n_chunks, cap_chunks;
    Tensor **free_slots;
    int64_t n_free_slots, cap_free_slots;

    size_t used;
    size_t cat_used[ARENA_CAT_COUNT];
    size_t cat_peak[ARENA_CAT_COUNT];
    size_t peak_used;
    size_t at_peak[ARENA_CAT_COUNT];
    size_t high_water;
    int64_t n_allocs;
    int64_t n_refused;
    int64_t alloc_budget; /* allocations allowed in all (arena_set_alloc_budget); -1 = no cap */

    ArenaPeakTensor *peak;
    int64_t n_peak, cap_peak;

    int tracing;
    int trace_truncated;
    ArenaEvent *events;
    int64_t n_events, cap_events;
    int64_t event_seq;
    struct timespec t0;

    char last_error[ERR_MSG_LEN];
};

/* ---- names ---- */

static const char *const category_names[ARENA_CAT_COUNT] = {"params", "grads", "optimizer",
                                                            "activations", "workspace"};
static const char *const dtype_names[ARENA_DTYPE_COUNT] = {"f32", "f16", "bf16", "f64",
                                                           "i32", "u16", "u8"};
static const size_t dtype_sizes[ARENA_DTYPE_COUNT] = {4, 2, 2, 8, 4, 2, 1};

const char *arena_category_name(ArenaCategory cat) {
    ASSERT(cat >= 0 && cat < ARENA_CAT_COUNT);
    return category_names[cat];
}

int arena_category_from_name(const char *name) {
    for (int i = 0; i < ARENA_CAT_COUNT; i++)
        if (strcmp(name, category_names[i]) == 0)
            return i;
    return -1;
}

const char *arena_dtype_name(ArenaDtype dt) {
    ASSERT(dt >= 0 && dt < ARENA_DTYPE_COUNT);
    return dtype_names[dt];
}

size_t arena_dtype_size(ArenaDtype dt) {
    ASSERT(dt >= 0 && dt < ARENA_DTYPE_COUNT);
    return dtype_sizes[dt];
}

const char *arena_backing_name(ArenaBacking b) {
    switch (b) {
    case ARENA_BACKING_PLAN:
        return "plan";
    case ARENA_BACKING_HOST:
        return "host";
    case ARENA_BACKING_DEVICE:
        return "device";
    case ARENA_BACKING_PINNED:
        return "pinned";
    }
    return "?";
}

/* ---- small growable arrays ---- */

static void grow(void **arr, int64_t *cap, int64_t need, size_t elem) {
    if (need <= *cap)
        return;
    int64_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, (size_t)n * elem);
    ASSERT_MSG(p != NULL, "out of host memory for arena bookkeeping");
    *arr = p;
    *cap = n;
}

/* ---- host backing ---- */

static void *host_reserve(size_t bytes, Err *err) {
    size_t n = size_align_up(bytes ? bytes : ARENA_ALIGNMENT, ARENA_ALIGNMENT);
    void *p = aligned_alloc(ARENA_ALIGNMENT, n);
    if (!p) {
        char buf[32];
        err_set(err, "host reservation of %zu bytes (%s) failed", bytes,
                size_format(bytes, buf, sizeof buf));
    }
    return p;
}

static void host_release(void *base) { free(base); }

static const ArenaBackingOps host_ops = {ARENA_BACKING_HOST, host_reserve, host_release, NULL};

/* ---- lifecycle ---- */

Arena *arena_init_with(const ArenaBackingOps *ops, size_t capacity_bytes, size_t limit_bytes,
                       Err *err) {
    Arena *a = calloc(1, sizeof *a);
    if (!a) {
        err_set(err, "out of host memory for the arena");
        return NULL;
    }
    if (ops) {
        a->ops = *ops;
        if (capacity_bytes == 0) {
            free(a);
            err_set(err, "a %s arena needs a capacity (got 0 bytes)",
                    arena_backing_name(ops->backing));
            return NULL;
        }
        a->base = ops->reserve(capacity_bytes, err);
        if (!a->base) {
            free(a);
            return NULL;
        }
        a->capacity = capacity_bytes;
        ASAN_POISON_MEMORY_REGION(a->base, capacity_bytes); /* nothing is live yet */
    } else {
        a->ops.backing = ARENA_BACKING_PLAN;
        a->capacity = SIZE_MAX;
    }
    a->limit = limit_bytes;
    a->alloc_budget = -1;
    clock_gettime(CLOCK_MONOTONIC, &a->t0);
    return a;
}

Arena *arena_init(ArenaBacking backing, size_t capacity_bytes, size_t limit_bytes, Err *err) {
    switch (backing) {
    case ARENA_BACKING_PLAN:
        return arena_init_with(NULL, 0, limit_bytes, err);
    case ARENA_BACKING_HOST:
        return arena_init_with(&host_ops, capacity_bytes, limit_bytes, err);
    case ARENA_BACKING_DEVICE: {
        const ArenaBackingOps *ops = arena_device_ops();
        if (!ops) {
            err_set(err, "the device backing needs the CUDA build (this binary was built "
                         "without CUDA: rebuild with nvcc on PATH, or use the host backing)");
            return NULL;
        }
        return arena_init_with(ops, capacity_bytes, limit_bytes, err);
    }
    case ARENA_BACKING_PINNED: {
        const ArenaBackingOps *ops = arena_pinned_ops();
        if (!ops) {
            err_set(err, "the pinned host backing needs the CUDA build (this binary was built "
                         "without CUDA: rebuild with nvcc on PATH)");
            return NULL;
        }
        return arena_init_with(ops, capacity_bytes, limit_bytes, err);
    }
    }
    err_set(err, "unknown arena backing %d", (int)backing);
    return NULL;
}

void arena_free(Arena *a) {
    if (!a)
        return;
    if (a->base && a->ops.release) {
        ASAN_UNPOISON_MEMORY_REGION(a->base, a->capacity);
        a->ops.release(a->base);
    }
    for (int64_t i = 0; i < a->n_chunks; i++)
        free(a->chunks[i]);
    free(a->chunks);
    free(a->free_slots);
    free(a->live);
    free(a->act_stack);
    free(a->peak);
    free(a->events);
    free(a);
}

/* ---- records ---- */

static Tensor *slot_get(Arena *a) {
    if (a->n_free_slots == 0) {
        Tensor *chunk = calloc(ARENA_SLOT_CHUNK, sizeof *chunk);
        ASSERT_MSG(chunk != NULL, "out of host memory for arena bookkeeping");
        grow((void **)&a->chunks, &a->cap_chunks, a->n_chunks + 1, sizeof(Tensor *));
        a->chunks[a->n_chunks++] = chunk;
        grow((void **)&a->free_slots, &a->cap_free_slots, ARENA_SLOT_CHUNK, sizeof(Tensor *));
        for (int64_t i = ARENA_SLOT_CHUNK - 1; i >= 0; i--)
            a->free_slots[a->n_free_slots++] = &chunk[i];
    }
    return a->free_slots[--a->n_free_slots];
}

static void slot_put(Arena *a, Tensor *t) {
    grow((void **)&a->free_slots, &a->cap_free_slots, a->n_free_slots + 1, sizeof(Tensor *));
    a->free_slots[a->n_free_slots++] = t;
}

/* ---- trace ---- */

static double now_us(const Arena *a) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - a->t0.tv_sec) * 1e6 + (double)(t.tv_nsec - a->t0.tv_nsec) / 1e3;
}

static void trace_event(Arena *a, char kind, ArenaCategory cat, size_t bytes, size_t offset,
                        const char *name, const Tensor *t) {
    if (!a->tracing)
        return;
    if (a->n_events >= ARENA_TRACE_MAX_EVENTS) {
        a->trace_truncated = 1;
        return;
    }
    grow((void **)&a->events, &a->cap_events, a->n_events + 1, sizeof(ArenaEvent));
    ArenaEvent *e = &a->events[a->n_events++];
    e->seq = a->event_seq++;
    e->ts_us = a->ops.backing == ARENA_BACKING_PLAN ? (double)e->seq : now_us(a);
    e->kind = kind;
    e->category = cat;
    e->bytes = bytes;
    e->offset = offset;
    memcpy(e->cat_used, a->cat_used, sizeof e->cat_used);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->dtype = t ? t->dtype : ARENA_DTYPE_U8;
    e->ndim = t ? t->ndim : 0;
    for (int d = 0; d < ARENA_MAX_DIMS; d++)
        e->shape[d] = t && d < t->ndim ? t->shape[d] : 0;
}

void arena_trace_enable(Arena *a, int on) { a->tracing = on; }

void arena_trace_mark(Arena *a, const char *fmt, ...) {
    if (!a->tracing)
        return;
    char name[ARENA_NAME_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    trace_event(a, 'M', ARENA_CAT_WORKSPACE, 0, 0, name, NULL);
}

int64_t arena_trace_count(const Arena *a, int *truncated) {
    if (truncated)
        *truncated = a->trace_truncated;
    return a->n_events;
}

int arena_trace_get(const Arena *a, int64_t i, double *ts_us, char *kind, ArenaCategory *cat,
                    size_t *bytes, size_t *offset, size_t cat_used[ARENA_CAT_COUNT],
                    const char **name) {
    if (i < 0 || i >= a->n_events)
        return -1;
    const ArenaEvent *e = &a->events[i];
    *ts_us = e->ts_us;
    *kind = e->kind;
    *cat = e->category;
    *bytes = e->bytes;
    *offset = e->offset;
    memcpy(cat_used, e->cat_used, sizeof e->cat_used);
    *name = e->name;
    return 0;
}

int arena_trace_tensor(const Arena *a, int64_t i, ArenaDtype *dtype, int *ndim,
                       int64_t shape[ARENA_MAX_DIMS]) {
    if (i < 0 || i >= a->n_events)
        return -1;
    const ArenaEvent *e = &a->events[i];
    *dtype = e->dtype;
    *ndim = e->ndim;
    memcpy(shape, e->shape, sizeof e->shape);
    return 0;
}

/* ---- peak snapshot ---- */

static void peak_snapshot(Arena *a) {
    a->peak_used = a->used;
    memcpy(a->at_peak, a->cat_used, sizeof a->at_peak);
    grow((void **)&a->peak, &a->cap_peak, a->n_live, sizeof(ArenaPeakTensor));
    for (int64_t i = 0; i < a->n_live; i++) {
        const Tensor *t = a->live[i];
        ArenaPeakTensor *p = &a->peak[i];
        memcpy(p->name, t->name, sizeof p->name);
        p->category = t->category;
        p->dtype = t->dtype;
        p->ndim = t->ndim;
        memcpy(p->shape, t->shape, sizeof p->shape);
        p->offset = t->offset;
        p->bytes = t->bytes;
    }
    a->n_peak = a->n_live;
}

/* ---- allocation ---- */

static size_t top_of(const Arena *a) {
    if (a->n_live == 0)
        return 0;
    const Tensor *t = a->live[a->n_live - 1];
    return t->offset + t->bytes;
}

static void refusal_report(Arena *a, const char *name, ArenaCategory cat, ArenaDtype dtype,
                           int ndim, const int64_t *shape, size_t nbytes, size_t bytes, size_t end,
                           const char *why) {
    char b1[32], b2[32], b3[32], shp[96];
    int off = 0;
    shp[0] = 0;
    for (int i = 0; i < ndim; i++)
        off += snprintf(shp + off, sizeof shp - (size_t)off, "%s%lld", i ? "," : "",
                        (long long)shape[i]);
    int n = snprintf(a->last_error, sizeof a->last_error,
                     "arena: cannot allocate %zu bytes (%s) for '%s' (%s, %s [%s]): it would end "
                     "at %zu bytes, past %s; held now:",
                     nbytes, size_format(bytes, b1, sizeof b1), name, category_names[cat],
                     dtype_names[dtype], shp, end, why);
    for (int c = 0; c < ARENA_CAT_COUNT && n > 0 && (size_t)n < sizeof a->last_error; c++)
        n += snprintf(a->last_error + n, sizeof a->last_error - (size_t)n, " %s %zu (%s)%s",
                      category_names[c], a->cat_used[c], size_format(a->cat_used[c], b2, sizeof b2),
                      c + 1 < ARENA_CAT_COUNT ? "," : ";");
    if (n > 0 && (size_t)n < sizeof a->last_error)
        snprintf(a->last_error + n, sizeof a->last_error - (size_t)n,
                 " used %zu, peak so far %zu (%s), high-water %zu", a->used, a->peak_used,
                 size_format(a->peak_used, b3, sizeof b3), a->high_water);
}

static Tensor *arena_vtry_alloc(Arena *a, ArenaCategory cat, ArenaDtype dtype, int ndim,
                                const int64_t *shape, const char *fmt, va_list ap) {
    ASSERT(cat >= 0 && cat < ARENA_CAT_COUNT);
    ASSERT(dtype >= 0 && dtype < ARENA_DTYPE_COUNT);
    ASSERT(ndim >= 0 && ndim <= ARENA_MAX_DIMS);
    char name[ARENA_NAME_LEN];
    vsnprintf(name, sizeof name, fmt, ap);

    size_t nbytes = dtype_sizes[dtype];
    int overflow = 0;
    for (int i = 0; i < ndim; i++) {
        ASSERT_MSG(shape[i] >= 0, name);
        if (size_mul(nbytes, (size_t)shape[i], &nbytes) != 0)
            overflow = 1;
    }
    if (overflow || nbytes > SIZE_MAX - ARENA_ALIGNMENT) {
        refusal_report(a, name, cat, dtype, ndim, shape, SIZE_MAX, SIZE_MAX, SIZE_MAX,
                       "the size_t range (the shape's byte count overflows)");
        a->n_refused++;
        return NULL;
    }
    /* zero-element tensors still take one aligned slot so every live tensor has its own offset */
    size_t bytes = size_align_up(nbytes ? nbytes : 1, ARENA_ALIGNMENT);

    /* first fit: the lowest gap between live tensors that holds `bytes` */
    size_t offset = 0;
    int64_t pos = 0;
    for (; pos < a->n_live; pos++) {
        const Tensor *t = a->live[pos];
        if (t->offset >= offset && t->offset - offset >= bytes)
            break;
        offset = t->offset + t->bytes;
    }
    size_t end;
    if (size_add(offset, bytes, &end) != 0)
        end = SIZE_MAX;
    const char *why = NULL;
    char whybuf[128];
    if (a->alloc_budget >= 0 && a->n_allocs >= a->alloc_budget) {
        snprintf(whybuf, sizeof whybuf, "the allocation budget of %lld allocations",
                 (long long)a->alloc_budget);
        why = whybuf;
    } else if (a->limit && end > a->limit) {
        snprintf(whybuf, sizeof whybuf, "the memory limit of %zu bytes", a->limit);
        why = whybuf;
    } else if (end > a->capacity) {
        snprintf(whybuf, sizeof whybuf, "the %s reservation of %zu bytes",
                 arena_backing_name(a->ops.backing), a->capacity);
        why = whybuf;
    }
    if (why) {
        refusal_report(a, name, cat, dtype, ndim, shape, nbytes, bytes, end, why);
        a->n_refused++;
        return NULL;
    }

    Tensor *t = slot_get(a);
    memset(t, 0, sizeof *t);
    t->offset = offset;
    t->nbytes = nbytes;
    t->bytes = bytes;
    t->data = a->base ? (char *)a->base + offset : NULL;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->dtype = dtype;
    t->category = cat;
    memcpy(t->name, name, sizeof t->name);
    t->seq = a->n_allocs++;
    t->live = 1;
    if (t->data) {
        ASAN_UNPOISON_MEMORY_REGION(t->data, nbytes); /* the padding up to t->bytes stays */
        if (ARENA_POISON && nbytes) {
            if (a->ops.fill)
                a->ops.fill(t->data, ARENA_FRESH_BYTE, nbytes);
            else
                memset(t->data, ARENA_FRESH_BYTE, nbytes);
        }
    }

    grow((void **)&a->live, &a->cap_live, a->n_live + 1, sizeof(Tensor *));
    memmove(&a->live[pos + 1], &a->live[pos], (size_t)(a->n_live - pos) * sizeof(Tensor *));
    a->live[pos] = t;
    a->n_live++;
    if (cat == ARENA_CAT_ACTIVATIONS) {
        grow((void **)&a->act_stack, &a->cap_act, a->n_act + 1, sizeof(Tensor *));
        a->act_stack[a->n_act++] = t;
    }

    a->used += bytes;
    a->cat_used[cat] += bytes;
    if (a->cat_used[cat] > a->cat_peak[cat])
        a->cat_peak[cat] = a->cat_used[cat];
    if (end > a->high_water)
        a->high_water = end;
    if (a->used > a->peak_used)
        peak_snapshot(a);
    trace_event(a, 'A', cat, bytes, offset, name, t);
    return t;
}

Tensor *arena_try_alloc(Arena *a, ArenaCategory cat, ArenaDtype dtype, int ndim,
                        const int64_t *shape, const char *name_fmt, ...) {
    va_list ap;
    va_start(ap, name_fmt);
    Tensor *t = arena_vtry_alloc(a, cat, dtype, ndim, shape, name_fmt, ap);
    va_end(ap);
    if (t)
        a->last_error[0] = 0;
    return t;
}

Tensor *arena_alloc(Arena *a, ArenaCategory cat, ArenaDtype dtype, int ndim, const int64_t *shape,
                    const char *name_fmt, ...) {
    va_list ap;
    va_start(ap, name_fmt);
    Tensor *t = arena_vtry_alloc(a, cat, dtype, ndim, shape, name_fmt, ap);
    va_end(ap);
    if (!t)
        fprintf(stderr, "%s\n", a->last_error);
    ASSERT_MSG(t != NULL, "arena_alloc refused (report above)");
    return t;
}

static int64_t live_index(const Arena *a, const Tensor *t) {
    int64_t lo = 0, hi = a->n_live - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (a->live[mid]->offset == t->offset)
            return a->live[mid] == t ? mid : -1;
        if (a->live[mid]->offset < t->offset)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

void arena_release(Arena *a, Tensor *t) {
    if (!t)
        return;
    ASSERT_MSG(t->live, "double free of an arena tensor");
    int64_t i = live_index(a, t);
    ASSERT_MSG(i >= 0, "tensor does not belong to this arena");
    if (t->category == ARENA_CAT_ACTIVATIONS) {
        if (a->n_act == 0 || a->act_stack[a->n_act - 1] != t) {
            fprintf(stderr,
                    "arena: activation '%s' freed out of order: the most recent live "
                    "activation is '%s' (activations are a stack: backward frees in the reverse "
                    "order of forward)\n",
                    t->name, a->n_act ? a->act_stack[a->n_act - 1]->name : "(none)");
            ASSERT_MSG(0, "activations must be freed in LIFO order");
        }
        a->n_act--;
    }
    memmove(&a->live[i], &a->live[i + 1], (size_t)(a->n_live - i - 1) * sizeof(Tensor *));
    a->n_live--;
    a->used -= t->bytes;
    a->cat_used[t->category] -= t->bytes;
    trace_event(a, 'F', t->category, t->bytes, t->offset, t->name, t);
    if (t->data)
        ASAN_POISON_MEMORY_REGION(t->data, t->bytes);
    t->live = 0;
    t->data = NULL;
    slot_put(a, t);
}

int64_t arena_release_category(Arena *a, ArenaCategory cat) {
    int64_t n = 0;
    if (cat == ARENA_CAT_ACTIVATIONS) {
        while (a->n_act > 0) {
            arena_release(a, a->act_stack[a->n_act - 1]);
            n++;
        }
        return n;
    }
    for (int64_t i = a->n_live - 1; i >= 0; i--) {
        if (i < a->n_live && a->live[i]->category == cat) {
            arena_release(a, a->live[i]);
            n++;
        }
    }
    return n;
}

/* ---- queries ---- */

Tensor *arena_activation_top(const Arena *a) {
    return a->n_act > 0 ? a->act_stack[a->n_act - 1] : NULL;
}

ArenaStats arena_stats(const Arena *a) {
    ArenaStats s;
    memset(&s, 0, sizeof s);
    s.used_bytes = a->used;
    memcpy(s.cat_used_bytes, a->cat_used, sizeof s.cat_used_bytes);
    memcpy(s.cat_peak_bytes, a->cat_peak, sizeof s.cat_peak_bytes);
    s.peak_used_bytes = a->peak_used;
    memcpy(s.at_peak_bytes, a->at_peak, sizeof s.at_peak_bytes);
    s.high_water_bytes = a->high_water;
    s.top_bytes = top_of(a);
    size_t prev = 0;
    for (int64_t i = 0; i < a->n_live; i++) {
        if (a->live[i]->offset > prev) {
            s.hole_bytes += a->live[i]->offset - prev;
            s.n_holes++;
        }
        prev = a->live[i]->offset + a->live[i]->bytes;
    }
    s.n_live = a->n_live;
    s.n_allocs = a->n_allocs;
    s.n_refused = a->n_refused;
    s.capacity_bytes = a->capacity;
    s.limit_bytes = a->limit;
    return s;
}

ArenaBacking arena_backing(const Arena *a) { return a->ops.backing; }
int arena_is_plan(const Arena *a) { return a->ops.backing == ARENA_BACKING_PLAN; }
void *arena_base(const Arena *a) { return a->base; }
const char *arena_last_error(const Arena *a) { return a->last_error; }

void arena_set_alloc_budget(Arena *a, int64_t n_allocs) { a->alloc_budget = n_allocs; }

void arena_peaks_reset(Arena *a) {
    memcpy(a->cat_peak, a->cat_used, sizeof a->cat_peak);
    peak_snapshot(a);
}

const ArenaPeakTensor *arena_peak_tensors(const Arena *a, int64_t *n_out) {
    *n_out = a->n_peak;
    return a->peak;
}

int64_t arena_live_tensors(const Arena *a, const Tensor **out, int64_t max_n) {
    int64_t n = a->n_live < max_n ? a->n_live : max_n;
    for (int64_t i = 0; i < n; i++)
        out[i] = a->live[i];
    return n;
}
