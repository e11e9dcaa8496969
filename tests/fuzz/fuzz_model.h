/* fuzz_model.h: a small CPU model for the model-file and checkpoint targets: built on a host
 * arena sized by a plan, freed at exit. */
#ifndef ARENAGPT_FUZZ_MODEL_H
#define ARENAGPT_FUZZ_MODEL_H

#include "../../alloc/arena.h"
#include "../../model/gpt.h"

typedef struct FuzzModel {
    Gpt g;
    Arena *arena;
} FuzzModel;

/* 0 on success; the shape is c's, batch 1 x max_seq_len. */
int fuzz_model_build(FuzzModel *m, const GptConfig *c, Err *err);
void fuzz_model_free(FuzzModel *m);
/* The fixed shape the seeds are made with: L 1, NH 1, C 4, V 5, Vp 8, maxT 3. */
void fuzz_model_small_config(GptConfig *c, int bias);

#endif
