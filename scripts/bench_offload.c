/* bench_offload.c: the CPU side of optimizer_offload's AdamW step (offload_adamw_host,
 * model/offload.h), timed per parameter on this machine: widen the f16 gradients, AdamW on the
 * f32 master, m and v (the CPU backend's kernel), round the master to f16. Run by
 * scripts/bench_offload.sh. No device: the transfers between the GPU and pinned memory are not
 * part of this figure (they need a GPU to measure).
 * Usage: bench_offload N_PARAMS REPS   prints one line: params, reps, threads, the median and
 * the minimum seconds per update, ns per parameter (median) and the bytes the update touches
 * per parameter. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../model/offload.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bench_offload N_PARAMS REPS\n");
        return 2;
    }
    long long n = atoll(argv[1]);
    int reps = atoi(argv[2]);
    if (n <= 0 || reps <= 0 || reps > 1000) {
        fprintf(stderr, "bench_offload: N_PARAMS %s must be > 0 and REPS %s in 1..1000\n", argv[1],
                argv[2]);
        return 2;
    }
    float *master = malloc((size_t)n * sizeof(float)), *m = malloc((size_t)n * sizeof(float));
    float *v = malloc((size_t)n * sizeof(float)), *gf = malloc((size_t)n * sizeof(float));
    uint16_t *g16 = malloc((size_t)n * sizeof(uint16_t)), *p16 = malloc((size_t)n * 2);
    double *t = malloc((size_t)reps * sizeof(double));
    if (!master || !m || !v || !gf || !g16 || !p16 || !t) {
        fprintf(stderr, "bench_offload: out of memory for %lld parameters\n", n);
        return 1;
    }
#pragma omp parallel for schedule(static)
    for (long long i = 0; i < n; i++) { /* first touch by the threads that update */
        master[i] = 0.01f * (float)(i % 97);
        m[i] = v[i] = gf[i] = 0.0f;
        g16[i] = offload_f32_to_f16(1e-3f * (float)(i % 89) - 0.04f);
        p16[i] = 0;
    }
    for (int r = -1; r < reps; r++) { /* one warm-up */
        double t0 = now_s();
        offload_adamw_host(p16, master, g16, gf, m, v, n, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f,
                           0.1f, 0.05f);
        if (r >= 0)
            t[r] = now_s() - t0;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    double med = t[reps / 2];
    /* read: g16 2, master 4, m 4, v 4; written: gf 4 (then read 4), master 4, m 4, v 4, p16 2 */
    printf("params %lld reps %d threads %d: median %.4f s, min %.4f s per update; %.3f ns/param "
           "(median); 40 bytes moved per param, %.2f GB/s\n",
           n, reps, omp_get_max_threads(), med, t[0], 1e9 * med / (double)n,
           40.0 * (double)n / med / 1e9);
    printf("checksum %.6g\n", (double)master[n / 2] + (double)p16[n / 3]);
    free(master), free(m), free(v), free(gf), free(g16), free(p16), free(t);
    return 0;
}
