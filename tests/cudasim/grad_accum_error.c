/* grad_accum_error.c: measures on the CUDA simulator what accumulating weight gradients in f16
 * (the default CUDA layout), or in bf16 (dtype=bfloat16, grad_dtype=bfloat16), costs against
 * accumulating them in f32 (grad_dtype=float32), over
 * N micro-steps of gradient accumulation, as `arenagpt train` does them: per micro-step one
 * fused forward (the loss head adds each chunk's grad.wte) and one backward, every gradient
 * scaled by the loss scale; the sum divided by scale * N at the end (what gpt_update sees).
 *
 * The same model (f16-representable weights), the same batches (byte tokens of a text file)
 * and the same f16 activations run three times: CUDA with f16 grads, CUDA with f32 grads, and
 * the CPU (f32 everything) as a reference. The loss scale is where the GradScaler settles: the
 * largest power of two up to train's initial 65536 under which the accumulated f16 gradients
 * do not overflow (found from the f32 run's largest sum, then halved while the f16 run still
 * overflows). Printed per N: relative L2 errors ||a - b|| / ||b|| over all weight gradients,
 * grad.wte's alone, and the worst tensor. With dtype=bf16 the same with bf16 weights,
 * activations and (16-bit) gradients, and no loss scaling (scale 1, as train runs bfloat16).
 *
 * Usage: grad_accum_error TEXT_FILE [chunk=K] [dtype=f16|bf16] [N ...]   (default: loss_chunk
 * 32 tokens, 4 chunks per micro-step; f16; N 4 40). Only in simulated builds
 * (make grad-accum-sim); its figures are simulator figures. Exits 1 on a failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../alloc/arena.h"
#include "../../model/backend.h"
#include "../../model/gpt.h"

#define L 2
#define NH 4
#define CH 64
#define T 32
#define B 4
#define V 256
/* default tokens per loss-head chunk: B*T / 32 = 4 chunks add into grad.wte per micro-step */
#define LOSS_CHUNK 32
#define SCALE_INIT 65536.0f
#define F16_MAX 65504.0
#define DEV_BYTES ((size_t)256 << 20)
#define HOST_BYTES ((size_t)256 << 20)

typedef struct {
    float **g; /* per parameter, host f32, divided by scale * N */
    int n;
    int finite;
} Grads;

static int64_t g_loss_chunk = LOSS_CHUNK;
static int g_bf16; /* dtype=bf16: the bfloat16 layout, no loss scaling */

/* x rounded to the storage type (f16, or bf16: 8 significant bits, to nearest even) */
static float round16(float x) {
    if (!g_bf16)
        return (float)(_Float16)x;
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u; /* finite inputs only (weights) */
    memcpy(&x, &u, sizeof x);
    return x;
}

static GptConfig model_config(int grad_f32) {
    GptConfig c;
    memset(&c, 0, sizeof(c));
    c.n_layer = L;
    c.n_head = NH;
    c.channels = CH;
    c.max_seq_len = T;
    c.vocab_size = V;
    c.padded_vocab_size = V;
    c.bias = 1;
    c.loss_chunk = g_loss_chunk;
    c.grad_f32 = grad_f32;
    c.bf16 = g_bf16;
    return c;
}

static void grads_free(Grads *r) {
    for (int i = 0; i < r->n; i++)
        free(r->g[i]);
    free(r->g);
    memset(r, 0, sizeof(*r));
}

/* N micro-steps on a fresh model of dev (f32 grads when grad_f32) with weights w. */
static int run(GptDevice dev, int grad_f32, Arena *arena, float **w, const int32_t *tok,
               int n_micro, float scale, Grads *out) {
    Err err = {{0}};
    GptConfig c = model_config(grad_f32);
    Gpt g;
    if (gpt_build(&g, &c, dev, arena, B, T, &err) != 0) {
        fprintf(stderr, "grad_accum_error: gpt_build: %s\n", err.msg);
        return -1;
    }
    for (int i = 0; i < g.n_params; i++)
        gpt_param_write_f32(&g, &g.params[i], w[i]);
    if (gpt_zero_grad(&g) != 0)
        return -1;
    float s = dev == GPT_DEVICE_CUDA ? scale : 1.0f;
    for (int m = 0; m < n_micro; m++) {
        int32_t inp[B * T], tgt[B * T];
        for (int i = 0; i < B * T; i++) {
            inp[i] = tok[(int64_t)m * B * T + i];
            tgt[i] = tok[(int64_t)m * B * T + i + 1];
        }
        float loss = 0.0f;
        gpt_set_loss_scale(&g, s);
        if (gpt_forward(&g, inp, tgt, B, T, 1, &loss, &err) != 0 || gpt_backward(&g, &err) != 0) {
            fprintf(stderr, "grad_accum_error: micro-step %d: %s\n", m, err.msg);
            gpt_free(&g);
            return -1;
        }
    }
    memset(out, 0, sizeof(*out));
    out->n = g.n_params;
    out->g = calloc((size_t)g.n_params, sizeof(float *));
    out->finite = 1;
    for (int i = 0; i < g.n_params; i++) {
        GptParam *p = &g.params[i];
        out->g[i] = malloc((size_t)p->numel * sizeof(float));
        g.backend->params_to_host_f32(out->g[i], p->grad->data, p->grad->dtype, p->numel, g.stream);
        for (int64_t j = 0; j < p->numel; j++) {
            if (!isfinite(out->g[i][j]))
                out->finite = 0;
            out->g[i][j] /= s * (float)n_micro;
        }
    }
    char msg[512];
    int bad = g.backend->last_error && g.backend->last_error(msg, sizeof(msg)) != 0;
    gpt_free(&g);
    if (bad) {
        fprintf(stderr, "grad_accum_error: device error: %s\n", msg);
        return -1;
    }
    return 0;
}

/* ||a - b|| / ||b|| over parameters [lo, hi) */
static double rel_l2(const Grads *a, const Grads *b, const int64_t *numel, int lo, int hi) {
    double num = 0.0, den = 0.0;
    for (int i = lo; i < hi; i++)
        for (int64_t j = 0; j < numel[i]; j++) {
            double d = (double)a->g[i][j] - b->g[i][j];
            num += d * d;
            den += (double)b->g[i][j] * b->g[i][j];
        }
    return den > 0.0 ? sqrt(num / den) : (num > 0.0 ? INFINITY : 0.0);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: grad_accum_error TEXT_FILE [chunk=K] [N ...]\n");
        return 2;
    }
    int steps[16] = {4, 40}, n_steps = 2, first = 2;
    for (; first < argc && strchr(argv[first], '='); first++) {
        if (strncmp(argv[first], "chunk=", 6) == 0) {
            g_loss_chunk = atoi(argv[first] + 6);
            if (g_loss_chunk < 1 || g_loss_chunk > B * T) {
                fprintf(stderr, "grad_accum_error: '%s': expected chunk=1..%d\n", argv[first],
                        B * T);
                return 2;
            }
        } else if (strcmp(argv[first], "dtype=bf16") == 0 ||
                   strcmp(argv[first], "dtype=f16") == 0) {
            g_bf16 = argv[first][6] == 'b';
        } else {
            fprintf(stderr, "grad_accum_error: '%s': expected chunk=K or dtype=f16|bf16\n",
                    argv[first]);
            return 2;
        }
    }
    if (argc > first) {
        n_steps = 0;
        for (int a = first; a < argc && n_steps < 16; a++) {
            steps[n_steps] = atoi(argv[a]);
            if (steps[n_steps] < 1 || steps[n_steps] > 1000) {
                fprintf(stderr, "grad_accum_error: N = '%s': expected 1..1000\n", argv[a]);
                return 2;
            }
            n_steps++;
        }
    }
    int max_n = 0;
    for (int i = 0; i < n_steps; i++)
        max_n = steps[i] > max_n ? steps[i] : max_n;
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        fprintf(stderr, "grad_accum_error: cannot open '%s'\n", argv[1]);
        return 2;
    }
    int64_t need = (int64_t)max_n * B * T + 1;
    int32_t *tok = malloc((size_t)need * sizeof(int32_t));
    int64_t got = 0;
    int ch;
    while (got < need && (ch = fgetc(f)) != EOF)
        tok[got++] = (int32_t)(unsigned char)ch;
    fclose(f);
    if (got < need) {
        fprintf(stderr, "grad_accum_error: '%s' has %lld bytes, %lld needed for N = %d\n", argv[1],
                (long long)got, (long long)need, max_n);
        return 2;
    }
    if (!gpt_backend(GPT_DEVICE_CUDA)) {
        fprintf(stderr, "grad_accum_error: no CUDA backend (run the build/sim/ binary)\n");
        return 1;
    }
    Err err = {{0}};
    Arena *host = arena_init(ARENA_BACKING_HOST, HOST_BYTES, 0, &err);
    Arena *dev = arena_init_with(arena_device_ops(), DEV_BYTES, 0, &err);
    if (!host || !dev) {
        fprintf(stderr, "grad_accum_error: arena: %s\n", err.msg);
        return 1;
    }
    /* nanoGPT init on the CPU, rounded to the 16-bit type so that every run starts from the same
     * weights */
    GptConfig c = model_config(0);
    Gpt g0;
    if (gpt_build(&g0, &c, GPT_DEVICE_CPU, host, B, T, &err) != 0) {
        fprintf(stderr, "grad_accum_error: %s\n", err.msg);
        return 1;
    }
    gpt_init_weights(&g0, 1234);
    int n_params = g0.n_params;
    float **w = calloc((size_t)n_params, sizeof(float *));
    int64_t *numel = calloc((size_t)n_params, sizeof(int64_t));
    const char **names = calloc((size_t)n_params, sizeof(char *));
    char(*label)[64] = calloc((size_t)n_params, 64);
    int wte = -1;
    for (int i = 0; i < n_params; i++) {
        GptParam *p = &g0.params[i];
        numel[i] = p->numel;
        w[i] = malloc((size_t)p->numel * sizeof(float));
        gpt_param_read_f32(&g0, p, w[i]);
        for (int64_t j = 0; j < p->numel; j++)
            w[i][j] = round16(w[i][j]);
        names[i] = gpt_param_kind_name(p->kind);
        if (p->layer >= 0)
            snprintf(label[i], 64, "h.%d.%s", p->layer, names[i]);
        else
            snprintf(label[i], 64, "%s", names[i]);
        if (p->kind == GPT_PARAM_WTE)
            wte = i;
    }
    gpt_free(&g0);

    printf("model: n_layer %d, n_head %d, n_embd %d, block_size %d, vocab %d (bytes of %s), "
           "batch %d, loss_chunk %d (%d chunks per micro-step), %s\n",
           L, NH, CH, T, V, argv[1], B, (int)g_loss_chunk,
           (int)((B * T + g_loss_chunk - 1) / g_loss_chunk), g_bf16 ? "bfloat16" : "float16");
    const char *x = g_bf16 ? "bf16" : "f16";
    printf("| micro-steps N | loss scale | %s-accumulated vs f32-accumulated (all grads) | "
           "same, grad.wte | worst tensor | CUDA %s grads vs CPU f32 | CUDA f32 grads vs CPU "
           "f32 |\n|---|---|---|---|---|---|---|\n",
           x, x);
    int rc = 0;
    for (int k = 0; k < n_steps; k++) {
        int n = steps[k];
        Grads g16 = {0}, g32 = {0}, gcpu = {0};
        float scale = g_bf16 ? 1.0f : SCALE_INIT; /* bf16: no loss scaling */
        if (run(GPT_DEVICE_CUDA, 1, dev, w, tok, n, scale, &g32) != 0)
            return 1;
        double gmax = 0.0; /* largest |accumulated gradient| / scale */
        for (int i = 0; i < n_params; i++)
            for (int64_t j = 0; j < numel[i]; j++)
                gmax = fmax(gmax, fabs((double)g32.g[i][j]) * n);
        while (scale > 1.0f && gmax * scale > F16_MAX)
            scale *= 0.5f;
        for (;;) {
            if (run(GPT_DEVICE_CUDA, 0, dev, w, tok, n, scale, &g16) != 0)
                return 1;
            if (g16.finite || scale <= 1.0f)
                break;
            grads_free(&g16); /* overflow: the GradScaler would halve the scale */
            scale *= 0.5f;
        }
        if (!g16.finite) {
            fprintf(stderr, "grad_accum_error: f16 gradients overflow even at scale 1\n");
            return 1;
        }
        if (scale != (g_bf16 ? 1.0f : SCALE_INIT)) { /* the f32 run again, under its scale */
            grads_free(&g32);
            if (run(GPT_DEVICE_CUDA, 1, dev, w, tok, n, scale, &g32) != 0)
                return 1;
        }
        if (run(GPT_DEVICE_CPU, 0, host, w, tok, n, 1.0f, &gcpu) != 0)
            return 1;
        int worst = 0;
        double worst_e = -1.0;
        for (int i = 0; i < n_params; i++) {
            double e = rel_l2(&g16, &g32, numel, i, i + 1);
            if (e > worst_e) {
                worst_e = e;
                worst = i;
            }
        }
        double e_all = rel_l2(&g16, &g32, numel, 0, n_params);
        double e_wte = wte >= 0 ? rel_l2(&g16, &g32, numel, wte, wte + 1) : 0.0;
        printf("| %d | %.0f | %.3e | %.3e | %s %.3e | %.3e | %.3e |\n", n, (double)scale, e_all,
               e_wte, label[worst], worst_e, rel_l2(&g16, &gcpu, numel, 0, n_params),
               rel_l2(&g32, &gcpu, numel, 0, n_params));
        fflush(stdout);
        if (!(e_all >= 0.0))
            rc = 1;
        grads_free(&g16);
        grads_free(&g32);
        grads_free(&gcpu);
    }
    for (int i = 0; i < n_params; i++)
        free(w[i]);
    free(w);
    free(numel);
    free(names);
    free(label);
    free(tok);
    arena_free(dev);
    arena_free(host);
    return rc;
}
