/* report.c: the arena's reports: a human table, JSON, CSV and a Chrome trace-event timeline.
 * Everything here reads the arena's statistics and snapshots; nothing changes the arena.
 * Sizes are printed as exact bytes, with MiB beside them in the table. */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

#define MIB (1024.0 * 1024.0)

static void shape_text(const int64_t *shape, int ndim, char sep, char *buf, size_t len) {
    int off = 0;
    buf[0] = 0;
    for (int i = 0; i < ndim && (size_t)off < len; i++) {
        if (i)
            off += snprintf(buf + off, len - (size_t)off, "%c%lld", sep, (long long)shape[i]);
        else
            off += snprintf(buf + off, len - (size_t)off, "%lld", (long long)shape[i]);
    }
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static int cmp_bytes_desc(const void *x, const void *y) {
    const ArenaPeakTensor *a = *(const ArenaPeakTensor *const *)x;
    const ArenaPeakTensor *b = *(const ArenaPeakTensor *const *)y;
    if (a->bytes != b->bytes)
        return a->bytes < b->bytes ? 1 : -1;
    return a->offset < b->offset ? -1 : (a->offset > b->offset);
}

int arena_report_table(const Arena *a, FILE *f, int top_n) {
    ArenaStats s = arena_stats(a);
    fprintf(f, "arena (%s backing, %d-byte alignment, padding charged to each tensor)\n",
            arena_backing_name(arena_backing(a)), ARENA_ALIGNMENT);
    fprintf(f, "  %-12s %14s %10s %14s %10s %14s %10s\n", "category", "now bytes", "MiB",
            "peak bytes", "MiB", "at peak bytes", "MiB");
    for (int c = 0; c < ARENA_CAT_COUNT; c++)
        fprintf(f, "  %-12s %14zu %10.2f %14zu %10.2f %14zu %10.2f\n",
                arena_category_name((ArenaCategory)c), s.cat_used_bytes[c],
                s.cat_used_bytes[c] / MIB, s.cat_peak_bytes[c], s.cat_peak_bytes[c] / MIB,
                s.at_peak_bytes[c], s.at_peak_bytes[c] / MIB);
    fprintf(f, "  %-12s %14zu %10.2f %14s %10s %14zu %10.2f\n", "total", s.used_bytes,
            s.used_bytes / MIB, "", "", s.peak_used_bytes, s.peak_used_bytes / MIB);
    if (s.n_refused)
        fprintf(f,
                "  high-water mark %zu bytes (%.2f MiB) when an allocation was refused: "
                "partial, not what the run needs\n",
                s.high_water_bytes, s.high_water_bytes / MIB);
    else
        fprintf(f, "  high-water mark %zu bytes (%.2f MiB): the reservation this run needs\n",
                s.high_water_bytes, s.high_water_bytes / MIB);
    fprintf(f,
            "  fragmentation at the peak: %zu bytes (%.2f MiB) between the peak's live tensors "
            "and the high-water mark; now %lld holes, %zu bytes\n",
            s.high_water_bytes - s.peak_used_bytes, (s.high_water_bytes - s.peak_used_bytes) / MIB,
            (long long)s.n_holes, s.hole_bytes);
    if (s.limit_bytes)
        fprintf(f, "  memory limit %zu bytes (%.2f MiB)\n", s.limit_bytes, s.limit_bytes / MIB);
    if (s.n_refused)
        fprintf(f, "  refused allocations: %lld\n", (long long)s.n_refused);

    int64_t n = 0;
    const ArenaPeakTensor *pt = arena_peak_tensors(a, &n);
    if (top_n > 0 && n > 0) {
        const ArenaPeakTensor **order = malloc((size_t)n * sizeof *order);
        if (!order)
            return -1;
        for (int64_t i = 0; i < n; i++)
            order[i] = &pt[i];
        qsort(order, (size_t)n, sizeof *order, cmp_bytes_desc);
        int64_t show = n < top_n ? n : top_n;
        fprintf(f, "  top %lld of %lld tensors live at the peak:\n", (long long)show, (long long)n);
        fprintf(f, "    %-36s %-12s %-5s %-20s %14s %10s\n", "name", "category", "dtype", "shape",
                "bytes", "MiB");
        for (int64_t i = 0; i < show; i++) {
            char shp[96];
            shape_text(order[i]->shape, order[i]->ndim, 'x', shp, sizeof shp);
            fprintf(f, "    %-36s %-12s %-5s %-20s %14zu %10.2f\n", order[i]->name,
                    arena_category_name(order[i]->category), arena_dtype_name(order[i]->dtype), shp,
                    order[i]->bytes, order[i]->bytes / MIB);
        }
        free(order);
    }
    return ferror(f) ? -1 : 0;
}

int arena_report_json_fields(const Arena *a, FILE *f, const char *ind) {
    ArenaStats s = arena_stats(a);
    fprintf(f, "%s\"backing\": \"%s\",\n", ind, arena_backing_name(arena_backing(a)));
    fprintf(f, "%s\"alignment_bytes\": %d,\n", ind, ARENA_ALIGNMENT);
    fprintf(f, "%s\"peak_bytes\": %zu,\n", ind, s.peak_used_bytes);
    fprintf(f, "%s\"high_water_bytes\": %zu,\n", ind, s.high_water_bytes);
    fprintf(f, "%s\"fragmentation_bytes\": %zu,\n", ind, s.high_water_bytes - s.peak_used_bytes);
    fprintf(f, "%s\"used_bytes\": %zu,\n", ind, s.used_bytes);
    fprintf(f, "%s\"limit_bytes\": %zu,\n", ind, s.limit_bytes);
    fprintf(f, "%s\"n_allocs\": %lld,\n", ind, (long long)s.n_allocs);
    fprintf(f, "%s\"n_refused\": %lld,\n", ind, (long long)s.n_refused);
    fprintf(f, "%s\"categories\": {\n", ind);
    for (int c = 0; c < ARENA_CAT_COUNT; c++)
        fprintf(f, "%s  \"%s\": {\"current_bytes\": %zu, \"peak_bytes\": %zu}%s\n", ind,
                arena_category_name((ArenaCategory)c), s.cat_used_bytes[c], s.cat_peak_bytes[c],
                c + 1 < ARENA_CAT_COUNT ? "," : "");
    fprintf(f, "%s},\n", ind);
    fprintf(f, "%s\"at_peak\": {", ind);
    for (int c = 0; c < ARENA_CAT_COUNT; c++)
        fprintf(f, "\"%s_bytes\": %zu%s", arena_category_name((ArenaCategory)c), s.at_peak_bytes[c],
                c + 1 < ARENA_CAT_COUNT ? ", " : "");
    fprintf(f, "},\n");
    int64_t n = 0;
    const ArenaPeakTensor *pt = arena_peak_tensors(a, &n);
    fprintf(f, "%s\"tensors\": [", ind);
    for (int64_t i = 0; i < n; i++) {
        fprintf(f, "%s\n%s  {\"name\": ", i ? "," : "", ind);
        json_string(f, pt[i].name);
        fprintf(f, ", \"category\": \"%s\", \"dtype\": \"%s\", \"shape\": [",
                arena_category_name(pt[i].category), arena_dtype_name(pt[i].dtype));
        for (int d = 0; d < pt[i].ndim; d++)
            fprintf(f, "%s%lld", d ? ", " : "", (long long)pt[i].shape[d]);
        fprintf(f, "], \"offset\": %zu, \"bytes\": %zu}", pt[i].offset, pt[i].bytes);
    }
    fprintf(f, "%s]\n", n ? "\n  " : "");
    return ferror(f) ? -1 : 0;
}

int arena_report_json(const Arena *a, FILE *f) {
    fprintf(f, "{\n");
    int rc = arena_report_json_fields(a, f, "  ");
    fprintf(f, "}\n");
    return rc || ferror(f) ? -1 : 0;
}

int arena_report_csv(const Arena *a, FILE *f) {
    ArenaStats s = arena_stats(a);
    fprintf(f, "kind,name,category,dtype,shape,offset,bytes,current_bytes,peak_bytes,"
               "at_peak_bytes\n");
    int64_t n = 0;
    const ArenaPeakTensor *pt = arena_peak_tensors(a, &n);
    for (int64_t i = 0; i < n; i++) {
        char shp[96];
        shape_text(pt[i].shape, pt[i].ndim, 'x', shp, sizeof shp);
        /* names are [A-Za-z0-9._] in practice; quote anyway so a comma can never split a row */
        fprintf(f, "tensor,\"%s\",%s,%s,%s,%zu,%zu,,,\n", pt[i].name,
                arena_category_name(pt[i].category), arena_dtype_name(pt[i].dtype), shp,
                pt[i].offset, pt[i].bytes);
    }
    for (int c = 0; c < ARENA_CAT_COUNT; c++)
        fprintf(f, "category,,%s,,,,,%zu,%zu,%zu\n", arena_category_name((ArenaCategory)c),
                s.cat_used_bytes[c], s.cat_peak_bytes[c], s.at_peak_bytes[c]);
    fprintf(f, "total,,,,,,%zu,%zu,%zu,%zu\n", s.high_water_bytes, s.used_bytes, s.peak_used_bytes,
            s.peak_used_bytes);
    return ferror(f) ? -1 : 0;
}

int arena_report_trace(const Arena *a, FILE *f) {
    int truncated = 0;
    int64_t n = arena_trace_count(a, &truncated);
    fprintf(f,
            "{\"displayTimeUnit\": \"ms\",\n \"otherData\": {\"backing\": \"%s\", "
            "\"truncated\": %s},\n \"traceEvents\": [\n",
            arena_backing_name(arena_backing(a)), truncated ? "true" : "false");
    fprintf(f, "  {\"name\": \"process_name\", \"ph\": \"M\", \"pid\": 1, \"args\": {\"name\": "
               "\"arena\"}}");
    for (int64_t i = 0; i < n; i++) {
        double ts;
        char kind;
        ArenaCategory cat;
        size_t bytes, offset, used[ARENA_CAT_COUNT];
        const char *name;
        arena_trace_get(a, i, &ts, &kind, &cat, &bytes, &offset, used, &name);
        fprintf(f, ",\n  {\"name\": ");
        json_string(f, name);
        if (kind == 'M') {
            fprintf(f, ", \"ph\": \"i\", \"s\": \"g\", \"ts\": %.3f, \"pid\": 1, \"tid\": 1}", ts);
            continue;
        }
        fprintf(f,
                ", \"cat\": \"%s\", \"ph\": \"i\", \"s\": \"t\", \"ts\": %.3f, \"pid\": 1, "
                "\"tid\": 1, \"args\": {\"event\": \"%s\", \"bytes\": %zu, \"offset\": %zu}}",
                arena_category_name(cat), ts, kind == 'A' ? "alloc" : "free", bytes, offset);
        fprintf(f,
                ",\n  {\"name\": \"arena bytes\", \"ph\": \"C\", \"ts\": %.3f, \"pid\": 1, "
                "\"args\": {",
                ts);
        for (int c = 0; c < ARENA_CAT_COUNT; c++)
            fprintf(f, "\"%s\": %zu%s", arena_category_name((ArenaCategory)c), used[c],
                    c + 1 < ARENA_CAT_COUNT ? ", " : "");
        fprintf(f, "}}");
    }
    fprintf(f, "\n]}\n");
    return ferror(f) ? -1 : 0;
}
