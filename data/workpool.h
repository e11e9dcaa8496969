/* workpool.h: a fixed pool of threads running one function on submitted items.
 *
 * The caller submits items (at most `capacity` waiting at once: submit blocks while the queue
 * is full) and waits for a given item with workpool_wait; each item has an int `done` flag the
 * pool sets when the function has returned for it. Items are taken in submission order but
 * may finish in any order: the caller restores order by waiting for them in turn. fn gets the
 * worker's index (0..n_threads-1), so per-thread state (a tokenizer copy) can live in ctx.
 * The pool owns no item memory. workpool_free waits for every submitted item first. */
#ifndef ARENAGPT_WORKPOOL_H
#define ARENAGPT_WORKPOOL_H

#include "../alloc/base.h"

typedef struct WorkPool WorkPool;
typedef void (*WorkFn)(void *ctx, int worker, void *item);

WorkPool *workpool_start(int n_threads, int capacity, WorkFn fn, void *ctx, Err *err);
/* Queues item; *done is set to 0 now and to 1 when fn(ctx, worker, item) has returned. */
void workpool_submit(WorkPool *p, void *item, int *done);
/* Blocks until *done (of a submitted item) is 1. */
void workpool_wait(WorkPool *p, const int *done);
int workpool_n_threads(const WorkPool *p);
void workpool_free(WorkPool *p);

#endif
