/* plan.c: the one memory planner. gpt_plan builds the model on a plan arena (no memory; the
 * plan backend's kernels do nothing) and runs the phase sequence of a command on it
 * (gpt_plan_steps): the arena then holds the offsets, peaks and tensors of the real run, to
 * the byte, because the run executes the same code with the same calls (gpt.c's invariant).
 * Every command, the memory page, `mem --fit` and the tests plan through here; a test holds a
 * plan against a run by calling gpt_plan_steps on a real arena with the same arguments.
 * With optimizer_offload a training plan has two arenas, the device's and the host's (the
 * optimizer state and the update's staging), both planned by the same calls. */
#include <stdlib.h>

#include "gpt_internal.h"

/* The three phase sequences (train, eval, sample) side by side, each with the calls its
 * command makes, in that order. */
int gpt_plan_steps(Gpt *g, const GptPlanArgs *a, const int32_t *inputs, const int32_t *targets,
                   Err *err) {
    int64_t B = a->B, T = a->T;
    int32_t *zeros = calloc((size_t)(B * T), sizeof(int32_t));
    float *logits = a->phase == GPT_PLAN_SAMPLE
                        ? calloc((size_t)(B * g->config.padded_vocab_size), sizeof(float))
                        : NULL;
    if (!zeros || (a->phase == GPT_PLAN_SAMPLE && !logits)) {
        free(zeros);
        free(logits);
        return err_set(err, "gpt_plan: out of host memory for a %lld x %lld batch", (long long)B,
                       (long long)T);
    }
    inputs = inputs ? inputs : zeros;
    targets = targets ? targets : zeros;
    int rc = 0;
    switch (a->phase) {
    case GPT_PLAN_TRAIN:
        /* an evaluation (estimate_loss), then one optimizer step of grad_accum micro-steps */
        rc = gpt_forward(g, inputs, targets, B, T, 0, NULL, err);
        if (rc == 0)
            rc = gpt_zero_grad(g);
        for (int64_t k = 0; rc == 0 && k < a->grad_accum; k++) {
            rc = gpt_forward(g, inputs, targets, B, T, 1, NULL, err);
            if (rc == 0)
                rc = gpt_backward(g, err);
        }
        if (rc == 0)
            rc = gpt_update(g, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 1, (float)a->grad_accum, NULL,
                            err);
        break;
    case GPT_PLAN_EVAL:
        rc = gpt_forward(g, inputs, targets, B, T, 0, NULL, err);
        break;
    case GPT_PLAN_SAMPLE: { /* the cache, a step, and past the window an uncached forward */
        GptKvCache kv;
        rc = gpt_kv_init(g, &kv, err);
        if (rc == 0)
            rc = gpt_kv_step(g, &kv, inputs[0], logits, err);
        if (rc == 0)
            rc = gpt_forward_last_logits(g, inputs, B, T, logits, err);
        gpt_kv_free(g, &kv);
        break;
    }
    }
    free(zeros);
    free(logits);
    return rc;
}

int gpt_plan_build(Gpt *g, const GptConfig *c, GptDevice dev, Arena *arena, const GptPlanArgs *a,
                   Err *err) {
    if (a->phase == GPT_PLAN_TRAIN) /* refuses optimizer_offload: gpt_build_offload */
        return gpt_build(g, c, dev, arena, a->B, a->T, err);
    return gpt_build_inference(g, c, dev, arena, a->B, a->T, err);
}

int gpt_plan(const GptConfig *c, GptDevice dev, const GptPlanArgs *a, GptPlan **out, Err *err) {
    *out = NULL;
    if (a->phase == GPT_PLAN_TRAIN && a->grad_accum < 1)
        return err_set(err, "gpt_plan: grad_accum %lld must be >= 1", (long long)a->grad_accum);
    GptPlan *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(err, "gpt_plan: out of host memory");
    p->arena = arena_init(ARENA_BACKING_PLAN, 0, a->limit_bytes, err);
    if (!p->arena) {
        free(p);
        return -1;
    }
    *out = p;
    arena_trace_enable(p->arena, a->trace);
    if (c->optimizer_offload && a->phase == GPT_PLAN_TRAIN) {
        /* optimizer_offload: the optimizer state's arena is planned beside the device's */
        if (!(p->host_arena = arena_init(ARENA_BACKING_PLAN, 0, 0, err)))
            return -1;
        arena_trace_enable(p->host_arena, a->trace);
        if (gpt_build_offload(&p->model, c, dev, p->arena, p->host_arena, a->B, a->T, err))
            return -1;
    } else if (gpt_plan_build(&p->model, c, dev, p->arena, a, err)) {
        return -1;
    }
    /* the model stays built: the arena describes a run in progress until gpt_plan_free */
    return gpt_plan_steps(&p->model, a, NULL, NULL, err);
}

void gpt_plan_free(GptPlan *p) {
    if (!p)
        return;
    gpt_free(&p->model);
    arena_free(p->arena);
    arena_free(p->host_arena);
    free(p);
}

/* Whether a plan of args (with batch B) fits within args->limit_bytes; its high-water in *hw. */
static int plan_fits(const GptConfig *c, GptDevice dev, const GptPlanArgs *args, int64_t B,
                     size_t *hw) {
    GptPlanArgs a = *args;
    a.B = B;
    a.trace = 0;
    GptPlan *p = NULL;
    Err e;
    int rc = gpt_plan(c, dev, &a, &p, &e);
    *hw = p ? arena_stats(p->arena).high_water_bytes : 0;
    gpt_plan_free(p);
    return rc == 0;
}

int64_t gpt_plan_fit(const GptConfig *c, GptDevice dev, const GptPlanArgs *args, int64_t max_batch,
                     size_t *hw_out) {
    int64_t lo = 0, hi = 1;
    size_t hw_lo = 0, hw;
    while (plan_fits(c, dev, args, hi, &hw)) {
        lo = hi;
        hw_lo = hw;
        if (hi >= max_batch)
            break;
        hi = hi * 2 < max_batch ? hi * 2 : max_batch;
    }
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (plan_fits(c, dev, args, mid, &hw)) {
            lo = mid;
            hw_lo = hw;
        } else {
            hi = mid;
        }
    }
    *hw_out = hw_lo;
    return lo;
}
