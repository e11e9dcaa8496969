/* kernel_times.c: time per kernel family of one micro-step's launches, at a config's shapes,
 * on the CUDA or the CPU backend, so that docs/results/gpu_estimate.md (an estimate) can be
 * checked on a card (scripts/gpu_check.sh RESULTS_DIR kernels). Each family's launches run as
 * the model runs them in one micro-step (every layer, every loss-head chunk), REPS times after
 * one warm-up; the time is the mean per micro-step. With the CUDA backend in the GPU bundle
 * (built with ARENAGPT_KERNEL_TIMES_EVENTS) it is measured with CUDA events on the default
 * stream; otherwise with the host clock around the launches and the backend's synchronize.
 * Tensors are zero-filled (the kernels' speed does not depend on the values; zeros keep every
 * exp and rsqrt finite). Prints one line per family:
 *     family <name> ms <mean ms per micro-step> (<timer>)
 * Usage: kernel_times CONFIG [--key=value ...] [--device=cuda|cpu] [--reps=N]
 * Not part of arenagpt: the Makefile builds it for the bundle and for the CPU. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef ARENAGPT_KERNEL_TIMES_EVENTS
#include <cuda_runtime_api.h>
#endif

#include "../alloc/arena.h"
#include "../model/backend.h"
#include "../model/gpt.h"
#include "../train/config.h"
#include "../train/run_common.h"

#define ARENA_SLACK ((size_t)64 << 20) /* over the tensors' sum: 256-byte rounding, workspace */

typedef struct Shapes {
    int64_t B, T, C, NH, L, V, Vp, N, chunk;
    int gelu;
} Shapes;

typedef struct Bufs {
    void *x, *x2, *ln, *qkv, *att, *y, *fc, *gelu, *dfc, *logits, *dx;
    void *w_qkv, *w_proj, *w_fc, *w_fcp, *wte, *wpe, *lnw, *dw, *dwte, *dwpe;
    float *mean, *rstd, *losses, *lse, *fd, *master, *m, *v, *acc;
    int32_t *tokens;
} Bufs;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One family: its launches in one micro-step. */
typedef void (*FamilyFn)(const GptBackend *be, const Shapes *s, Bufs *b);

static void fam_encoder(const GptBackend *be, const Shapes *s, Bufs *b) {
    be->encoder_forward(b->x, b->tokens, b->wte, b->wpe, s->B, s->T, s->C, NULL);
    be->encoder_backward(b->dwte, b->dwpe, b->x, b->tokens, s->B, s->T, s->C, NULL);
}

static void fam_layernorm(const GptBackend *be, const Shapes *s, Bufs *b) {
    for (int64_t i = 0; i < 2 * s->L + 1; i++) {
        be->layernorm_forward(b->ln, b->mean, b->rstd, b->x, b->lnw, NULL, s->N, s->C, NULL);
        be->layernorm_backward(b->x2, b->dw, NULL, b->ln, b->x, b->lnw, b->mean, b->rstd, s->N,
                               s->C, NULL);
    }
}

static void fam_matmul(const GptBackend *be, const Shapes *s, Bufs *b) {
    int64_t N = s->N, C = s->C;
    for (int64_t l = 0; l < s->L; l++) {
        be->matmul_forward(b->qkv, b->ln, b->w_qkv, NULL, NULL, N, C, 3 * C, NULL);
        be->matmul_forward(b->x2, b->y, b->w_proj, NULL, b->x2, N, C, C, NULL);
        be->matmul_forward(b->fc, b->ln, b->w_fc, NULL, NULL, N, C, 4 * C, NULL);
        be->matmul_forward(b->x2, b->gelu, b->w_fcp, NULL, b->x2, N, 4 * C, C, NULL);
        be->matmul_backward(b->dfc, b->dw, NULL, b->x2, b->gelu, b->w_fcp, N, 4 * C, C, NULL);
        be->matmul_backward(b->ln, b->dw, NULL, b->fc, b->ln, b->w_fc, N, C, 4 * C, NULL);
        be->matmul_backward(b->y, b->dw, NULL, b->x2, b->y, b->w_proj, N, C, C, NULL);
        be->matmul_backward(b->ln, b->dw, NULL, b->qkv, b->ln, b->w_qkv, N, C, 3 * C, NULL);
    }
}

static void fam_gelu(const GptBackend *be, const Shapes *s, Bufs *b) {
    for (int64_t l = 0; l < s->L; l++) {
        be->gelu_forward(b->gelu, b->fc, s->N * 4 * s->C, s->gelu, NULL);
        be->gelu_backward(b->dfc, b->fc, b->dfc, s->N * 4 * s->C, s->gelu, NULL);
    }
}

static void fam_attention_naive(const GptBackend *be, const Shapes *s, Bufs *b) {
    for (int64_t l = 0; l < s->L; l++) {
        const GptAttentionKernels *k = &be->attention[GPT_ATTENTION_NAIVE];
        k->forward(b->y, b->att, NULL, b->qkv, s->B, s->T, s->C, s->NH, NULL);
        k->backward(b->qkv, b->att, NULL, b->y, NULL, b->qkv, s->B, s->T, s->C, s->NH, NULL);
    }
}

static void fam_attention_flash(const GptBackend *be, const Shapes *s, Bufs *b) {
    for (int64_t l = 0; l < s->L; l++) {
        const GptAttentionKernels *k = &be->attention[GPT_ATTENTION_FLASH];
        k->forward(b->y, b->lse, NULL, b->qkv, s->B, s->T, s->C, s->NH, NULL);
        k->backward(b->qkv, b->lse, b->fd, b->y, b->y, b->qkv, s->B, s->T, s->C, s->NH, NULL);
    }
}

static void fam_loss_head(const GptBackend *be, const Shapes *s, Bufs *b) {
    for (int64_t r = 0; r < s->N; r += s->chunk) {
        int64_t n = s->N - r < s->chunk ? s->N - r : s->chunk;
        be->matmul_forward(b->logits, b->ln, b->wte, NULL, NULL, n, s->C, s->Vp, NULL);
        be->crossentropy_forward(b->logits, b->losses, b->tokens, n, s->V, s->Vp, 1.0f, NULL);
        be->matmul_backward(b->dx, b->dwte, NULL, b->logits, b->ln, b->wte, n, s->C, s->Vp, NULL);
    }
}

/* AdamW and the squared norm over a wte-sized tensor: the optimizer's traffic for the largest
 * parameter (one launch each here). */
static void fam_optimizer(const GptBackend *be, const Shapes *s, Bufs *b) {
    int64_t n = s->Vp * s->C;
    be->norm_squared_accumulate(b->acc, b->dwte, n, NULL);
    be->adamw_update(b->wte, be->device == GPT_DEVICE_CUDA ? b->master : NULL, b->dwte, b->m, b->v,
                     n, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 1.0f, 1.0f, NULL);
}

/* Mean seconds per call of f over reps calls (after one warm-up call). */
static double time_family(const GptBackend *be, const Shapes *s, Bufs *b, FamilyFn f, int reps,
                          const char **timer) {
    f(be, s, b);
    be->synchronize(NULL);
#ifdef ARENAGPT_KERNEL_TIMES_EVENTS
    if (be->device == GPT_DEVICE_CUDA) {
        cudaEvent_t e0, e1;
        float ms = 0.0f;
        if (cudaEventCreate(&e0) == cudaSuccess && cudaEventCreate(&e1) == cudaSuccess &&
            cudaEventRecord(e0, 0) == cudaSuccess) {
            for (int i = 0; i < reps; i++)
                f(be, s, b);
            if (cudaEventRecord(e1, 0) == cudaSuccess && cudaEventSynchronize(e1) == cudaSuccess &&
                cudaEventElapsedTime(&ms, e0, e1) == cudaSuccess) {
                cudaEventDestroy(e0);
                cudaEventDestroy(e1);
                *timer = "CUDA events";
                return (double)ms / 1e3 / reps;
            }
        }
    }
#endif
    double t0 = now_s();
    for (int i = 0; i < reps; i++)
        f(be, s, b);
    be->synchronize(NULL);
    *timer = "host clock";
    return (now_s() - t0) / reps;
}

static void *talloc(Arena *a, ArenaDtype dt, int64_t n, const char *name, size_t *bytes) {
    int64_t shape[1] = {n};
    Tensor *t = arena_alloc(a, ARENA_CAT_WORKSPACE, dt, 1, shape, "%s", name);
    *bytes += arena_dtype_size(dt) * (size_t)n;
    return t ? t->data : NULL;
}

/* Every buffer the families use, zero-filled (be NULL: a plan arena, nothing to fill). */
static int bufs_alloc(Arena *a, const GptBackend *be, ArenaDtype act, const Shapes *s, Bufs *b) {
    int64_t N = s->N, C = s->C, att = s->B * s->NH * s->T * s->T, rows = s->B * s->NH * s->T;
    ArenaDtype f32 = ARENA_DTYPE_F32;
    size_t total = 0;
    struct {
        void **p;
        ArenaDtype dt;
        int64_t n;
        const char *name;
    } list[] = {
        {&b->x, act, N * C, "x"},
        {&b->x2, act, N * C, "x2"},
        {&b->ln, act, N * C, "ln"},
        {&b->qkv, act, N * 3 * C, "qkv"},
        {&b->att, act, att, "att"},
        {&b->y, act, N * C, "y"},
        {&b->fc, act, N * 4 * C, "fc"},
        {&b->gelu, act, N * 4 * C, "gelu"},
        {&b->dfc, act, N * 4 * C, "dfc"},
        {&b->logits, act, s->chunk * s->Vp, "logits"},
        {&b->dx, act, s->chunk * C, "dx"},
        {&b->w_qkv, act, 3 * C * C, "w_qkv"},
        {&b->w_proj, act, C * C, "w_proj"},
        {&b->w_fc, act, 4 * C * C, "w_fc"},
        {&b->w_fcp, act, 4 * C * C, "w_fcp"},
        {&b->wte, act, s->Vp * C, "wte"},
        {&b->wpe, act, s->T * C, "wpe"},
        {&b->lnw, act, C, "lnw"},
        {&b->dw, act, 4 * C * C, "dw"},
        {&b->dwte, act, s->Vp * C, "dwte"},
        {&b->dwpe, act, s->T * C, "dwpe"},
        {(void **)&b->mean, f32, N, "mean"},
        {(void **)&b->rstd, f32, N, "rstd"},
        {(void **)&b->losses, f32, N, "losses"},
        {(void **)&b->lse, f32, rows, "lse"},
        {(void **)&b->fd, f32, rows, "flash_d"},
        {(void **)&b->master, f32, s->Vp * C, "master"},
        {(void **)&b->m, f32, s->Vp * C, "m"},
        {(void **)&b->v, f32, s->Vp * C, "v"},
        {(void **)&b->acc, f32, 1, "acc"},
        {(void **)&b->tokens, ARENA_DTYPE_I32, N, "tokens"},
    };
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
        *list[i].p = talloc(a, list[i].dt, list[i].n, list[i].name, &total);
        if (!be)
            continue;
        if (!*list[i].p)
            return -1;
        be->memset_zero(*list[i].p, arena_dtype_size(list[i].dt) * (size_t)list[i].n, NULL);
    }
    return 0;
}

static const struct {
    const char *name;
    FamilyFn fn;
    int flash; /* needs the flash entries (NULL in a backend without them) */
} FAMILIES[] = {
    {"encoder", fam_encoder, 0},
    {"layernorm", fam_layernorm, 0},
    {"matmul", fam_matmul, 0},
    {"gelu", fam_gelu, 0},
    {"attention_naive", fam_attention_naive, 0},
    {"attention_flash", fam_attention_flash, 1},
    {"loss_head", fam_loss_head, 0},
    {"optimizer_wte", fam_optimizer, 0},
};

/* Plans the buffers, allocates them (and the backend workspace) on the device, times every
 * family and prints its line. */
static int kernel_times_run(const GptBackend *be, const GptLayout *lay, const Shapes *s, int reps) {
    Err err = {{0}};
    Bufs b;
    Arena *plan = arena_init(ARENA_BACKING_PLAN, 0, 0, &err);
    if (!plan || bufs_alloc(plan, NULL, lay->act_dtype, s, &b) != 0) {
        fprintf(stderr, "kernel_times: plan: %s\n", err.msg);
        arena_free(plan);
        return 1;
    }
    size_t bytes = arena_stats(plan).high_water_bytes + lay->backend_workspace_bytes + 4096;
    arena_free(plan);
    Arena *a = arena_init(be->device == GPT_DEVICE_CUDA ? ARENA_BACKING_DEVICE : ARENA_BACKING_HOST,
                          bytes, 0, &err);
    if (!a || bufs_alloc(a, be, lay->act_dtype, s, &b) != 0) {
        fprintf(stderr, "kernel_times: %zu bytes on %s: %s\n", bytes, be->name, err.msg);
        arena_free(a);
        return 1;
    }
    void *ws = NULL;
    if (lay->backend_workspace_bytes && be->workspace_set) {
        size_t unused = 0;
        ws =
            talloc(a, ARENA_DTYPE_U8, (int64_t)lay->backend_workspace_bytes, "ws.backend", &unused);
        be->workspace_set(ws, lay->backend_workspace_bytes);
    }
    printf("shapes B %" PRId64 " T %" PRId64 " C %" PRId64 " NH %" PRId64 " L %" PRId64
           " Vp %" PRId64 " loss_chunk %" PRId64 " device %s reps %d\n",
           s->B, s->T, s->C, s->NH, s->L, s->Vp, s->chunk, be->name, reps);
    int rc = 0;
    for (size_t i = 0; i < sizeof FAMILIES / sizeof FAMILIES[0]; i++) {
        if (FAMILIES[i].flash &&
            (!be->attention[GPT_ATTENTION_FLASH].forward ||
             (be->device == GPT_DEVICE_CUDA && s->C / s->NH > GPT_FLASH_CUDA_MAX_HS))) {
            printf("family %s skipped (no flash kernels for head size %" PRId64 ")\n",
                   FAMILIES[i].name, s->C / s->NH);
            continue;
        }
        const char *timer = "";
        double t = time_family(be, s, &b, FAMILIES[i].fn, reps, &timer);
        char msg[256] = "";
        if (be->last_error && be->last_error(msg, sizeof msg)) {
            fprintf(stderr, "kernel_times: %s: device error: %s\n", FAMILIES[i].name, msg);
            rc = 1;
            break;
        }
        printf("family %s ms %.3f (%s)\n", FAMILIES[i].name, t * 1e3, timer);
        fflush(stdout);
    }
    if (ws)
        be->workspace_set(NULL, 0);
    arena_free(a);
    return rc;
}

int main(int argc, char **argv) {
    int reps = 5;
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int n_rest = 0;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--reps=", 7) == 0)
            reps = atoi(argv[i] + 7);
        else
            rest[n_rest++] = argv[i];
    }
    if (reps < 1) {
        fprintf(stderr, "kernel_times: --reps=%d: expected at least 1\n", reps);
        free(rest);
        return 2;
    }
    TrainConfig cfg;
    config_defaults(&cfg);
    Err err = {{0}};
    int help = 0;
    int parsed = config_parse_args(&cfg, n_rest, rest, CONFIG_CMD_TRAIN, &help, &err);
    free(rest);
    if (parsed) {
        fprintf(stderr, "kernel_times: %s\n", err.msg);
        return 2;
    }
    GptConfig c;
    run_gpt_config(&cfg, &c);
    gpt_set_threads((int)cfg.threads);
    GptDevice dev = cfg.device == CONFIG_DEVICE_CPU ? GPT_DEVICE_CPU : GPT_DEVICE_CUDA;
    const GptLayout *lay = gpt_layout(dev);
    const GptBackend *be = gpt_backend_for(lay);
    if (!be) {
        fprintf(stderr, "kernel_times: no usable CUDA device (pass --device=cpu to time the CPU "
                        "backend)\n");
        return 1;
    }
    Shapes s = {cfg.batch_size, cfg.block_size,      c.channels, c.n_head, c.n_layer,
                c.vocab_size,   c.padded_vocab_size, 0,          0,        c.gelu};
    s.N = s.B * s.T;
    s.chunk = gpt_loss_chunk(&c, dev, s.B, s.T);
    return kernel_times_run(be, lay, &s, reps);
}
