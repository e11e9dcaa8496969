/* dist_nompi.c: train/dist.h where MPI is not installed (the GPU bundle): always rank 0 of 1,
 * and a process that a launcher started as one of several ranks is refused with what to do,
 * instead of training the same model N times side by side. */
#include <stdlib.h>

#include "dist.h"

static Dist g_dist = {.rank = 0, .world_size = 1, .name = "none"};

int dist_start(int start, Err *err) {
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (!n)
        n = getenv("PMI_SIZE");
    if (start && n && atoi(n) > 1)
        return err_set(err,
                       "launched as one of %s ranks, but this arenagpt was built without MPI: "
                       "install Open MPI (Debian: openmpi-bin libopenmpi-dev) and rebuild, or run "
                       "one process",
                       n);
    return 0;
}

const Dist *dist_world(void) { return &g_dist; }
int dist_end(int rc) { return rc; }
int dist_check_same(const char *text, size_t len, Err *err) { return 0; }
int dist_sum(double *vals, int n, Err *err) { return 0; }
int dist_max(int64_t *val, Err *err) { return 0; }
int dist_use_cuda(Err *err) { return 0; }
void dist_set_stream(void *stream) {}
