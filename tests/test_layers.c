/* test_layers.c: every CPU kernel against a double-precision reference written here, and every
 * backward against central finite differences of that reference. The scalar checked is
 * L = sum(out * R) with a fixed random R, so the backward is fed dout = R.
 * Also: backward accumulation (+=) where the interface says so, the padded-vocabulary
 * columns of the loss, and AdamW against its formula. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../data/rng.h"
#include "../model/cpu/cpu_kernels.h"
#include "test_util.h"

/* fp32 kernel vs double reference, forward: a few float roundings per output */
#define FWD_ATOL 1e-5
#define FWD_RTOL 1e-4
/* fp32 backward vs central differences of the double reference (step FD_H: truncation error
 * ~1e-10, so the tolerance covers the fp32 kernel's own rounding) */
#define FD_H 1e-5
#define BWD_ATOL 1e-4
#define BWD_RTOL 1e-3

typedef double (*LossFn)(void *ctx);

static void fd_grad(double *x, int64_t n, LossFn f, void *ctx, double *g) {
    for (int64_t i = 0; i < n; i++) {
        double o = x[i];
        x[i] = o + FD_H;
        double lp = f(ctx);
        x[i] = o - FD_H;
        double lm = f(ctx);
        x[i] = o;
        g[i] = (lp - lm) / (2 * FD_H);
    }
}

static float *randf(int64_t n, double scale, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    float *x = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(rng_normal(&r) * scale);
    return x;
}
static double *to_f64(const float *x, int64_t n) {
    double *d = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}
static float *to_f32(const double *x, int64_t n) {
    float *d = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        d[i] = (float)x[i];
    return d;
}
static float *zerosf(int64_t n) { return calloc((size_t)n, sizeof(float)); }
static double dot_r(const double *y, const float *r, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += y[i] * r[i];
    return s;
}
/* fp32 gradient vs FD gradient */
#define CHECK_GRAD(got_f32, fd_f64, n)                                                             \
    do {                                                                                           \
        float *e_ = to_f32((fd_f64), (n));                                                         \
        assert_allclose((got_f32), e_, (size_t)(n), BWD_ATOL, BWD_RTOL);                           \
        free(e_);                                                                                  \
    } while (0)
#define CHECK_FWD(got_f32, ref_f64, n)                                                             \
    do {                                                                                           \
        float *e_ = to_f32((ref_f64), (n));                                                        \
        assert_allclose((got_f32), e_, (size_t)(n), FWD_ATOL, FWD_RTOL);                           \
        free(e_);                                                                                  \
    } while (0)

/* ------------------------------------------------------------------------------------- */
/* LayerNorm */

typedef struct LnCtx {
    double *x, *w, *b, *y;
    const float *r;
    int64_t N, C;
} LnCtx;

static void ref_layernorm(double *y, const double *x, const double *w, const double *b, int64_t N,
                          int64_t C) {
    for (int64_t n = 0; n < N; n++) {
        const double *xr = x + n * C;
        double m = 0, v = 0;
        for (int64_t i = 0; i < C; i++)
            m += xr[i];
        m /= C;
        for (int64_t i = 0; i < C; i++)
            v += (xr[i] - m) * (xr[i] - m);
        v /= C;
        double rs = 1.0 / sqrt(v + 1e-5);
        for (int64_t i = 0; i < C; i++)
            y[n * C + i] = (xr[i] - m) * rs * w[i] + (b ? b[i] : 0.0);
    }
}
static double ln_loss(void *p) {
    LnCtx *c = p;
    ref_layernorm(c->y, c->x, c->w, c->b, c->N, c->C);
    return dot_r(c->y, c->r, c->N * c->C);
}

static void test_layers_layernorm(void **state) {
    int64_t N = 6, C = 13;
    for (int with_bias = 0; with_bias <= 1; with_bias++) {
        float *x = randf(N * C, 1.5, 1), *w = randf(C, 1.0, 2), *b = randf(C, 1.0, 3);
        float *r = randf(N * C, 1.0, 4);
        for (int64_t i = 0; i < N * C; i++)
            x[i] += 0.5f; /* a non-zero mean */
        float *y = zerosf(N * C), *mean = zerosf(N), *rstd = zerosf(N);
        cpu_layernorm_forward(y, mean, rstd, x, w, with_bias ? b : NULL, N, C, NULL);
        LnCtx c = {to_f64(x, N * C),
                   to_f64(w, C),
                   with_bias ? to_f64(b, C) : NULL,
                   calloc((size_t)(N * C), sizeof(double)),
                   r,
                   N,
                   C};
        ln_loss(&c);
        CHECK_FWD(y, c.y, N * C);
        /* backward accumulates: start from 1 and subtract it afterwards */
        float *dx = zerosf(N * C), *dw = zerosf(C), *db = zerosf(C);
        for (int64_t i = 0; i < N * C; i++)
            dx[i] = 1.0f;
        cpu_layernorm_backward(dx, dw, with_bias ? db : NULL, r, x, w, mean, rstd, N, C, NULL);
        for (int64_t i = 0; i < N * C; i++)
            dx[i] -= 1.0f;
        double *g = malloc((size_t)(N * C) * sizeof(double));
        fd_grad(c.x, N * C, ln_loss, &c, g);
        CHECK_GRAD(dx, g, N * C);
        fd_grad(c.w, C, ln_loss, &c, g);
        CHECK_GRAD(dw, g, C);
        if (with_bias) {
            fd_grad(c.b, C, ln_loss, &c, g);
            CHECK_GRAD(db, g, C);
        }
        free(g);
        free(c.x), free(c.w), free(c.b), free(c.y);
        free(x), free(w), free(b), free(r), free(y), free(mean), free(rstd), free(dx), free(dw),
            free(db);
    }
}

/* ------------------------------------------------------------------------------------- */
/* Linear */

typedef struct MmCtx {
    double *x, *w, *b, *res, *y;
    const float *r;
    int64_t N, IC, OC;
} MmCtx;

static double mm_loss(void *p) {
    MmCtx *c = p;
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t o = 0; o < c->OC; o++) {
            double s = (c->b ? c->b[o] : 0.0) + (c->res ? c->res[n * c->OC + o] : 0.0);
            for (int64_t i = 0; i < c->IC; i++)
                s += c->x[n * c->IC + i] * c->w[o * c->IC + i];
            c->y[n * c->OC + o] = s;
        }
    return dot_r(c->y, c->r, c->N * c->OC);
}

static void test_layers_matmul(void **state) {
    int64_t N = 7, IC = 9, OC = 5;
    for (int variant = 0; variant < 3; variant++) { /* plain, bias, bias + residual */
        int with_bias = variant >= 1, with_res = variant == 2;
        float *x = randf(N * IC, 1, 10), *w = randf(OC * IC, 1, 11), *b = randf(OC, 1, 12);
        float *res = randf(N * OC, 1, 13), *r = randf(N * OC, 1, 14);
        float *y = zerosf(N * OC);
        cpu_matmul_forward(y, x, w, with_bias ? b : NULL, with_res ? res : NULL, N, IC, OC, NULL);
        MmCtx c = {to_f64(x, N * IC),
                   to_f64(w, OC * IC),
                   with_bias ? to_f64(b, OC) : NULL,
                   with_res ? to_f64(res, N * OC) : NULL,
                   calloc((size_t)(N * OC), sizeof(double)),
                   r,
                   N,
                   IC,
                   OC};
        mm_loss(&c);
        CHECK_FWD(y, c.y, N * OC);
        /* dweight, dbias accumulate; dinp overwrites */
        float *dx = randf(N * IC, 1, 15), *dw = zerosf(OC * IC), *db = zerosf(OC);
        for (int64_t i = 0; i < OC * IC; i++)
            dw[i] = 2.0f;
        cpu_matmul_backward(dx, dw, with_bias ? db : NULL, r, x, w, N, IC, OC, NULL);
        for (int64_t i = 0; i < OC * IC; i++)
            dw[i] -= 2.0f;
        double *g = malloc((size_t)(N * IC + OC * IC) * sizeof(double));
        fd_grad(c.x, N * IC, mm_loss, &c, g);
        CHECK_GRAD(dx, g, N * IC);
        fd_grad(c.w, OC * IC, mm_loss, &c, g);
        CHECK_GRAD(dw, g, OC * IC);
        if (with_bias) {
            fd_grad(c.b, OC, mm_loss, &c, g);
            CHECK_GRAD(db, g, OC);
        }
        /* the residual passes its gradient straight through: dres = dout (done by the caller) */
        free(g);
        free(c.x), free(c.w), free(c.b), free(c.res), free(c.y);
        free(x), free(w), free(b), free(res), free(r), free(y), free(dx), free(dw), free(db);
    }
}

static void test_layers_matmul_backward_in_place(void **state) {
    /* the loss head writes dinp over inp: same result as separate buffers */
    int64_t N = 4, IC = 6, OC = 8;
    float *x = randf(N * IC, 1, 20), *w = randf(OC * IC, 1, 21), *d = randf(N * OC, 1, 22);
    float *dw1 = zerosf(OC * IC), *dw2 = zerosf(OC * IC), *dx1 = zerosf(N * IC);
    cpu_matmul_backward(dx1, dw1, NULL, d, x, w, N, IC, OC, NULL);
    cpu_matmul_backward(x, dw2, NULL, d, x, w, N, IC, OC, NULL);
    assert_memory_equal(dw1, dw2, (size_t)(OC * IC) * sizeof(float));
    assert_memory_equal(dx1, x, (size_t)(N * IC) * sizeof(float));
    free(x), free(w), free(d), free(dw1), free(dw2), free(dx1);
}

/* ------------------------------------------------------------------------------------- */
/* attention */

typedef struct AttCtx {
    double *qkv, *y;
    const float *r;
    int64_t B, T, C, NH;
} AttCtx;

static double att_loss(void *p) {
    AttCtx *c = p;
    int64_t B = c->B, T = c->T, C = c->C, NH = c->NH, HS = C / NH;
    double scale = 1.0 / sqrt((double)HS);
    double *s = malloc((size_t)T * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < NH; h++)
            for (int64_t t = 0; t < T; t++) {
                const double *q = c->qkv + (b * T + t) * 3 * C + h * HS;
                double mx = -INFINITY, sum = 0;
                for (int64_t u = 0; u <= t; u++) {
                    const double *k = c->qkv + (b * T + u) * 3 * C + C + h * HS;
                    double d = 0;
                    for (int64_t i = 0; i < HS; i++)
                        d += q[i] * k[i];
                    s[u] = d * scale;
                    if (s[u] > mx)
                        mx = s[u];
                }
                for (int64_t u = 0; u <= t; u++) {
                    s[u] = exp(s[u] - mx);
                    sum += s[u];
                }
                double *o = c->y + (b * T + t) * C + h * HS;
                for (int64_t i = 0; i < HS; i++) {
                    double acc = 0;
                    for (int64_t u = 0; u <= t; u++)
                        acc += s[u] / sum * c->qkv[(b * T + u) * 3 * C + 2 * C + h * HS + i];
                    o[i] = acc;
                }
            }
    free(s);
    return dot_r(c->y, c->r, B * T * C);
}

static void test_layers_attention(void **state) {
    int64_t B = 2, T = 5, C = 12, NH = 3;
    float *qkv = randf(B * T * 3 * C, 1.0, 30), *r = randf(B * T * C, 1.0, 31);
    float *y = zerosf(B * T * C), *att = zerosf(B * NH * T * T);
    cpu_attention_forward(y, att, NULL, qkv, B, T, C, NH, NULL);
    AttCtx c = {
        to_f64(qkv, B * T * 3 * C), calloc((size_t)(B * T * C), sizeof(double)), r, B, T, C, NH};
    att_loss(&c);
    CHECK_FWD(y, c.y, B * T * C);
    /* probabilities: rows sum to 1, zero above the diagonal */
    for (int64_t row = 0; row < B * NH * T; row++) {
        int64_t t = row % T;
        double s = 0;
        for (int64_t u = 0; u < T; u++) {
            s += att[row * T + u];
            if (u > t)
                assert_true(att[row * T + u] == 0.0f);
        }
        assert_true(fabs(s - 1.0) < 1e-5);
    }
    float *dqkv = randf(B * T * 3 * C, 1.0, 32); /* overwritten */
    cpu_attention_backward(dqkv, att, NULL, r, NULL, qkv, B, T, C, NH, NULL);
    double *g = malloc((size_t)(B * T * 3 * C) * sizeof(double));
    fd_grad(c.qkv, B * T * 3 * C, att_loss, &c, g);
    CHECK_GRAD(dqkv, g, B * T * 3 * C);
    free(g), free(c.qkv), free(c.y), free(qkv), free(r), free(y), free(att), free(dqkv);
}

/* ------------------------------------------------------------------------------------- */
/* GELU */

typedef struct GeluCtx {
    double *x, *y;
    const float *r;
    int64_t n;
    int gelu;
} GeluCtx;

static double gelu_loss(void *p) {
    GeluCtx *c = p;
    for (int64_t i = 0; i < c->n; i++) {
        double x = c->x[i];
        c->y[i] = c->gelu == 0 ? 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)))
                               : 0.5 * x * (1 + erf(x / sqrt(2.0)));
    }
    return dot_r(c->y, c->r, c->n);
}

static void test_layers_gelu(void **state) {
    int64_t n = 101;
    for (int gelu = 0; gelu <= 1; gelu++) {
        float *x = randf(n, 2.0, 40), *r = randf(n, 1.0, 41), *y = zerosf(n), *dx = zerosf(n);
        cpu_gelu_forward(y, x, n, gelu, NULL);
        GeluCtx c = {to_f64(x, n), calloc((size_t)n, sizeof(double)), r, n, gelu};
        gelu_loss(&c);
        CHECK_FWD(y, c.y, n);
        cpu_gelu_backward(dx, x, r, n, gelu, NULL);
        double *g = malloc((size_t)n * sizeof(double));
        fd_grad(c.x, n, gelu_loss, &c, g);
        CHECK_GRAD(dx, g, n);
        free(g), free(c.x), free(c.y), free(x), free(r), free(y), free(dx);
    }
}

/* ------------------------------------------------------------------------------------- */
/* encoder */

static void test_layers_encoder(void **state) {
    int64_t B = 3, T = 4, C = 20, Vp = 7;
    int32_t inp[12] = {1, 2, 1, 6, 0, 0, 3, 1, 5, 5, 5, 2};
    float *wte = randf(Vp * C, 1, 50), *wpe = randf(T * C, 1, 51), *out = zerosf(B * T * C);
    cpu_encoder_forward(out, inp, wte, wpe, B, T, C, NULL);
    for (int64_t bt = 0; bt < B * T; bt++)
        for (int64_t i = 0; i < C; i++)
            assert_true(out[bt * C + i] == wte[inp[bt] * C + i] + wpe[(bt % T) * C + i]);
    /* the encoder is linear: its gradient is the scatter, summed in double here */
    float *d = randf(B * T * C, 1, 52), *dwte = zerosf(Vp * C), *dwpe = zerosf(T * C);
    cpu_encoder_backward(dwte, dwpe, d, inp, B, T, C, NULL);
    cpu_encoder_backward(dwte, dwpe, d, inp, B, T, C, NULL); /* accumulates: twice */
    double *ewte = calloc((size_t)(Vp * C), sizeof(double)),
           *ewpe = calloc((size_t)(T * C), sizeof(double));
    for (int64_t bt = 0; bt < B * T; bt++)
        for (int64_t i = 0; i < C; i++) {
            ewte[inp[bt] * C + i] += 2.0 * d[bt * C + i];
            ewpe[(bt % T) * C + i] += 2.0 * d[bt * C + i];
        }
    CHECK_FWD(dwte, ewte, Vp * C);
    CHECK_FWD(dwpe, ewpe, T * C);
    free(wte), free(wpe), free(out), free(d), free(dwte), free(dwpe), free(ewte), free(ewpe);
}

/* ------------------------------------------------------------------------------------- */
/* softmax + cross-entropy with a padded vocabulary */

typedef struct XentCtx {
    double *l;
    const int32_t *tg;
    int64_t N, V, Vp;
} XentCtx;

static double xent_loss(void *p) {
    XentCtx *c = p;
    double total = 0;
    for (int64_t n = 0; n < c->N; n++) {
        const double *l = c->l + n * c->Vp;
        double mx = -INFINITY, s = 0;
        for (int64_t i = 0; i < c->V; i++)
            mx = l[i] > mx ? l[i] : mx;
        for (int64_t i = 0; i < c->V; i++)
            s += exp(l[i] - mx);
        total += log(s) + mx - l[c->tg[n]];
    }
    return total / (double)c->N;
}

static void test_layers_crossentropy_padded(void **state) {
    int64_t N = 5, V = 11, Vp = 16;
    int32_t tg[5] = {0, 10, 3, 3, 7};
    float *l = randf(N * Vp, 3.0, 60);
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = V; i < Vp; i++)
            l[n * Vp + i] = 50.0f; /* padded columns: would dominate if they took part */
    XentCtx c = {to_f64(l, N * Vp), tg, N, V, Vp};
    double ref = xent_loss(&c);
    float losses[5];
    float *lf = malloc((size_t)(N * Vp) * sizeof(float));
    memcpy(lf, l, (size_t)(N * Vp) * sizeof(float));
    cpu_crossentropy_forward(lf, losses, tg, N, V, Vp, 0.0f, NULL); /* loss only: logits kept */
    assert_memory_equal(lf, l, (size_t)(N * Vp) * sizeof(float));
    double mean = 0;
    for (int64_t n = 0; n < N; n++)
        mean += losses[n];
    assert_true(fabs(mean / N - ref) < 1e-5);
    cpu_crossentropy_forward(l, losses, tg, N, V, Vp, 1.0f / (float)N, NULL);
    double *g = malloc((size_t)(N * Vp) * sizeof(double));
    fd_grad(c.l, N * Vp, xent_loss, &c, g);
    CHECK_GRAD(l, g, N * Vp);
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = V; i < Vp; i++)
            assert_true(l[n * Vp + i] == 0.0f);
    free(g), free(c.l), free(l), free(lf);
}

/* ------------------------------------------------------------------------------------- */
/* AdamW and the reductions */

static void test_layers_adamw(void **state) {
    int64_t n = 33;
    float *p = randf(n, 1, 70), *m = zerosf(n), *v = zerosf(n);
    double *pd = to_f64(p, n), *md = calloc((size_t)n, sizeof(double)),
           *vd = calloc((size_t)n, sizeof(double));
    double lr = 1e-2, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1, mul = 0.5;
    for (int step = 1; step <= 5; step++) {
        float *g = randf(n, 1, 71 + (uint64_t)step);
        float bc1 = 1.0f - powf(0.9f, (float)step), bc2 = 1.0f - powf(0.95f, (float)step);
        cpu_adamw_update(p, g, m, v, n, (float)lr, 0.9f, 0.95f, 1e-8f, (float)wd, (float)mul, bc1,
                         bc2);
        for (int64_t i = 0; i < n; i++) {
            double gi = g[i] * mul;
            md[i] = b1 * md[i] + (1 - b1) * gi;
            vd[i] = b2 * vd[i] + (1 - b2) * gi * gi;
            double mh = md[i] / (1 - pow(b1, step)), vh = vd[i] / (1 - pow(b2, step));
            pd[i] -= lr * (mh / (sqrt(vh) + eps) + wd * pd[i]);
        }
        free(g);
    }
    /* five fp32 updates of size ~lr */
    float *e = to_f32(pd, n);
    assert_allclose(p, e, (size_t)n, 1e-6, 1e-5);
    free(e), free(p), free(m), free(v), free(pd), free(md), free(vd);
}

static void test_layers_reductions(void **state) {
    int64_t n = 1001;
    float *x = randf(n, 1, 80);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
    }
    float out = 0, acc = 1.0f;
    cpu_reduce_sum(&out, x, n, NULL);
    cpu_norm_squared_accumulate(&acc, x, n, NULL);
    assert_true(fabs(out - s) < 1e-4);
    assert_true(fabs(acc - (1.0 + s2)) < 1e-3);
    free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layers_layernorm),
        cmocka_unit_test(test_layers_matmul),
        cmocka_unit_test(test_layers_matmul_backward_in_place),
        cmocka_unit_test(test_layers_attention),
        cmocka_unit_test(test_layers_gelu),
        cmocka_unit_test(test_layers_encoder),
        cmocka_unit_test(test_layers_crossentropy_padded),
        cmocka_unit_test(test_layers_adamw),
        cmocka_unit_test(test_layers_reductions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
