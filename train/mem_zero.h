/* mem_zero.h: `arenagpt mem --world_size=N`: the per-rank view of a data-parallel run. Each
 * rank's plan is the same (model/dist.h), so one plan is every rank's. mem_zero_header says
 * which world a report is for; mem_zero_compare plans ZeRO stage 0 and stage 1 side by side
 * (mem --compare with world_size > 1), per category, with the model states held against the
 * ZeRO paper's figures (K = 12 bytes/parameter of f32 optimizer state in the mixed-precision
 * layout, 8 on the CPU's f32 layout, which has no master copy). */
#ifndef ARENAGPT_MEM_ZERO_H
#define ARENAGPT_MEM_ZERO_H

#include "run_common.h"

/* One line for the table reports when world_size > 1 (nothing otherwise). */
void mem_zero_header(const RunSetup *rs);
/* The ZeRO formula's model-state bytes per rank: params + grads + optimizer state, unpadded. */
double mem_zero_formula_bytes(const GptConfig *c, GptDevice dev, int zero_stage);
/* Stages 0 and 1 side by side for rs's world (table or JSON); 0, or 1 when a plan fails. */
int mem_zero_compare(const RunSetup *rs);

#endif
