/* workpool.c: the thread pool of workpool.h (pthreads, one mutex, a ring of queued items). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "workpool.h"

typedef struct Job {
    void *item;
    int *done;
} Job;

struct WorkPool {
    pthread_mutex_t mu;
    pthread_cond_t has_job, has_room, job_done;
    Job *ring; /* (capacity) */
    int capacity, head, n_queued, n_running;
    int stopping;
    pthread_t *threads; /* (n_threads) */
    int n_threads, n_started;
    WorkFn fn;
    void *ctx;
};

typedef struct WorkerArg {
    WorkPool *p;
    int index;
} WorkerArg;

static void *worker_main(void *arg) {
    WorkPool *p = ((WorkerArg *)arg)->p;
    int index = ((WorkerArg *)arg)->index;
    free(arg);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->n_queued == 0 && !p->stopping)
            pthread_cond_wait(&p->has_job, &p->mu);
        if (p->n_queued == 0)
            break; /* stopping, nothing left */
        Job j = p->ring[p->head];
        p->head = (p->head + 1) % p->capacity;
        p->n_queued--;
        p->n_running++;
        pthread_cond_signal(&p->has_room);
        pthread_mutex_unlock(&p->mu);
        p->fn(p->ctx, index, j.item);
        pthread_mutex_lock(&p->mu);
        *j.done = 1;
        p->n_running--;
        pthread_cond_broadcast(&p->job_done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

WorkPool *workpool_start(int n_threads, int capacity, WorkFn fn, void *ctx, Err *err) {
    if (n_threads < 1 || capacity < 1) {
        err_set(err, "work pool: %d threads, capacity %d; expected at least 1 each", n_threads,
                capacity);
        return NULL;
    }
    WorkPool *p = calloc(1, sizeof *p);
    if (!p || !(p->ring = calloc((size_t)capacity, sizeof *p->ring)) ||
        !(p->threads = calloc((size_t)n_threads, sizeof *p->threads))) {
        if (p)
            free(p->ring);
        free(p);
        err_set(err, "work pool: out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->has_job, NULL);
    pthread_cond_init(&p->has_room, NULL);
    pthread_cond_init(&p->job_done, NULL);
    p->capacity = capacity;
    p->n_threads = n_threads;
    p->fn = fn;
    p->ctx = ctx;
    for (int i = 0; i < n_threads; i++) {
        WorkerArg *a = malloc(sizeof *a);
        if (a) {
            a->p = p;
            a->index = i;
        }
        if (!a || pthread_create(&p->threads[i], NULL, worker_main, a)) {
            free(a);
            err_set(err, "work pool: cannot start thread %d of %d", i + 1, n_threads);
            workpool_free(p);
            return NULL;
        }
        p->n_started++;
    }
    return p;
}

void workpool_submit(WorkPool *p, void *item, int *done) {
    pthread_mutex_lock(&p->mu);
    while (p->n_queued == p->capacity)
        pthread_cond_wait(&p->has_room, &p->mu);
    *done = 0;
    p->ring[(p->head + p->n_queued) % p->capacity] = (Job){item, done};
    p->n_queued++;
    pthread_cond_signal(&p->has_job);
    pthread_mutex_unlock(&p->mu);
}

void workpool_wait(WorkPool *p, const int *done) {
    pthread_mutex_lock(&p->mu);
    while (!*done)
        pthread_cond_wait(&p->job_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

int workpool_n_threads(const WorkPool *p) { return p->n_threads; }

void workpool_free(WorkPool *p) {
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->has_job);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->has_job);
    pthread_cond_destroy(&p->has_room);
    pthread_cond_destroy(&p->job_done);
    free(p->ring);
    free(p->threads);
    free(p);
}
