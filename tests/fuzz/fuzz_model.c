/* fuzz_model.c: see fuzz_model.h. */
#include "fuzz_model.h"

#include <string.h>

int fuzz_model_build(FuzzModel *m, const GptConfig *c, Err *err) {
    memset(m, 0, sizeof *m);
    Arena *plan = arena_init(ARENA_BACKING_PLAN, 0, 0, err);
    if (!plan)
        return -1;
    Gpt pg;
    if (gpt_build(&pg, c, GPT_DEVICE_CPU, plan, 1, c->max_seq_len, err) != 0) {
        arena_free(plan);
        return -1;
    }
    size_t need = arena_stats(plan).high_water_bytes;
    gpt_free(&pg);
    arena_free(plan);
    m->arena = arena_init(ARENA_BACKING_HOST, need, 0, err);
    if (!m->arena)
        return -1;
    if (gpt_build(&m->g, c, GPT_DEVICE_CPU, m->arena, 1, c->max_seq_len, err) != 0) {
        arena_free(m->arena);
        m->arena = NULL;
        return -1;
    }
    gpt_init_weights(&m->g, 1);
    return 0;
}

void fuzz_model_free(FuzzModel *m) {
    if (!m->arena)
        return;
    gpt_free(&m->g);
    arena_free(m->arena);
    m->arena = NULL;
}

void fuzz_model_small_config(GptConfig *c, int bias) {
    memset(c, 0, sizeof *c);
    c->max_seq_len = 3;
    c->vocab_size = 5;
    c->padded_vocab_size = 8;
    c->n_layer = 1;
    c->n_head = 1;
    c->channels = 4;
    c->bias = bias;
}
