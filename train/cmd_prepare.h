/* cmd_prepare.h: `arenagpt prepare`: text file -> train.bin, val.bin (token shards) and
 * tokenizer.bin in one directory. See cmd_prepare.c for what it writes and how. */
#ifndef ARENAGPT_CMD_PREPARE_H
#define ARENAGPT_CMD_PREPARE_H

#include "config.h"

/* Returns the process exit code (0 ok, 1 data error, 2 usage error); prints errors to stderr. */
int cmd_prepare(const TrainConfig *cfg);

/* Where the GPT-2 vocabulary is looked for when vocab_dir is "": $ARENAGPT_ROOT/.cache/gpt2,
 * then .cache/gpt2 beside the arenagpt executable (the repository root), then ./.cache/gpt2.
 * Writes the first that holds encoder.json into buf; returns 0, or -1 (buf then names the
 * place tried last). */
int prepare_find_vocab_dir(char *buf, size_t len);

#endif
