/* cmd_prepare.h: `arenagpt prepare`: a text file -> train.bin, val.bin (token shards) and
 * tokenizer.bin in one directory (cmd_prepare.c), or a corpus -> many llm.c-style shards
 * (cmd_prepare_shards.c, data/corpus_prepare.h). */
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

/* The sharded layout: --name given, or an input that is a corpus (a folder, a glob pattern,
 * a comma-separated list, JSON Lines, .gz, .zst, .parquet). */
int prepare_is_sharded(const TrainConfig *cfg);
/* The first key set that only the sharded layout uses, or NULL. */
const char *prepare_shard_only_key(const TrainConfig *cfg);
/* `prepare` in the sharded layout; returns the exit code (0, 1 data error, 2 usage,
 * 130 interrupted). */
int prepare_shards_run(const TrainConfig *cfg);

#endif
