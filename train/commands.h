/* commands.h: the subcommands of arenagpt. Each takes the parsed, validated config and returns
 * the process exit code: 0 success, 1 a run/data/model error (printed, naming the file and
 * value), 2 a usage error (CONFIG_EXIT_USAGE). */
#ifndef ARENAGPT_COMMANDS_H
#define ARENAGPT_COMMANDS_H

#include "config.h"

int cmd_train(const TrainConfig *cfg);   /* cmd_train.c */
int cmd_mem(const TrainConfig *cfg);     /* cmd_mem.c */
int cmd_eval(const TrainConfig *cfg);    /* cmd_eval.c */
int cmd_sample(const TrainConfig *cfg);  /* cmd_sample.c */
int cmd_prepare(const TrainConfig *cfg); /* cmd_prepare.c */
int cmd_export(const TrainConfig *cfg);  /* cmd_export.c */

#endif
