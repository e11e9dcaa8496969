/* test_hooks.c: see test_hooks.h. */
#include "test_hooks.h"

#include "../model/half.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int parse_i64(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return -1;
    *out = v;
    return 0;
}

static int parse_one(TestInjection *in, char *item) {
    char *fields[4] = {0};
    int n = 0;
    for (char *tok = strtok(item, ":"); tok; tok = strtok(NULL, ":")) {
        if (n == 4)
            return -1; /* more than 4 fields */
        fields[n++] = tok;
    }
    if (n < 2)
        return -1;
    memset(in, 0, sizeof *in);
    if (strcmp(fields[0], "loss") == 0)
        in->is_loss = 1;
    else if (strcmp(fields[0], "grad") != 0)
        return -1;
    if (parse_i64(fields[1], &in->iter) != 0 || in->iter < 1)
        return -1;
    in->value = NAN;
    if (n >= 3) {
        if (strcmp(fields[2], "inf") == 0)
            in->value = INFINITY;
        else if (strcmp(fields[2], "nan") != 0)
            return -1;
    }
    if (n == 4) {
        int64_t p;
        if (in->is_loss || parse_i64(fields[3], &p) != 0 || p > 100000)
            return -1;
        in->param = (int)p;
    }
    return 0;
}

int test_hooks_from_env(TestHooks *h, Err *err) {
    memset(h, 0, sizeof *h);
    const char *v = getenv("ARENAGPT_TEST_ALLOC_FAIL_AT");
    if (v && *v && (parse_i64(v, &h->alloc_fail_at) != 0 || h->alloc_fail_at < 1))
        return err_set(err,
                       "ARENAGPT_TEST_ALLOC_FAIL_AT = '%s': expected an allocation number >= 1", v);
    v = getenv("ARENAGPT_TEST_HOST_ALLOC_FAIL_AT");
    if (v && *v && (parse_i64(v, &h->host_alloc_fail_at) != 0 || h->host_alloc_fail_at < 1))
        return err_set(err,
                       "ARENAGPT_TEST_HOST_ALLOC_FAIL_AT = '%s': expected an allocation number "
                       ">= 1",
                       v);
    v = getenv("ARENAGPT_TEST_NONFINITE");
    if (!v || !*v)
        return 0;
    char buf[1024];
    if (strlen(v) >= sizeof buf)
        return err_set(err, "ARENAGPT_TEST_NONFINITE: longer than %zu characters", sizeof buf - 1);
    strcpy(buf, v);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        if (h->n_inject == TEST_HOOKS_MAX_INJECT)
            return err_set(err, "ARENAGPT_TEST_NONFINITE: more than %d items",
                           TEST_HOOKS_MAX_INJECT);
        char copy[256];
        snprintf(copy, sizeof copy, "%s", item);
        if (parse_one(&h->inject[h->n_inject], copy) != 0)
            return err_set(err,
                           "ARENAGPT_TEST_NONFINITE: item '%s' in '%s': expected "
                           "grad:ITER[:nan|inf[:INDEX]] or loss:ITER[:nan|inf]",
                           item, v);
        h->n_inject++;
    }
    return 0;
}

void test_hooks_arm_arena(const TestHooks *h, Arena *a) {
    if (h->alloc_fail_at > 0)
        arena_set_alloc_budget(a, h->alloc_fail_at - 1);
}

void test_hooks_arm_host_arena(const TestHooks *h, Arena *a) {
    if (h->host_alloc_fail_at > 0)
        arena_set_alloc_budget(a, h->host_alloc_fail_at - 1);
}

int test_hooks_arm_arena_from_env(Arena *a, Err *err) {
    TestHooks h;
    if (test_hooks_from_env(&h, err) != 0)
        return -1;
    test_hooks_arm_arena(&h, a);
    return 0;
}

int test_hooks_inject(const TestHooks *h, int64_t it, Gpt *g, float *loss, Err *err) {
    for (int i = 0; i < h->n_inject; i++) {
        const TestInjection *in = &h->inject[i];
        if (in->iter != it + 1)
            continue;
        if (in->is_loss) {
            *loss = in->value;
        } else if (in->param >= g->n_params || !g->params[in->param].grad->data) {
            return err_set(err,
                           "ARENAGPT_TEST_NONFINITE: parameter index %d: the model has %d "
                           "parameters (0..%d) with gradients",
                           in->param, g->n_params, g->n_params - 1);
        } else { /* element 0, in the gradient's dtype, wherever the backend keeps it */
            const Tensor *t = g->params[in->param].grad;
            uint16_t bits = t->dtype == ARENA_DTYPE_BF16 ? half_f32_to_bf16(in->value)
                                                         : half_f32_to_f16(in->value);
            if (t->dtype == ARENA_DTYPE_F32)
                g->backend->copy_from_host(t->data, &in->value, sizeof in->value, g->stream);
            else
                g->backend->copy_from_host(t->data, &bits, sizeof bits, g->stream);
        }
    }
    return 0;
}
