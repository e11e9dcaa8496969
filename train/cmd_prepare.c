/* cmd_prepare.c: `arenagpt prepare --input=TXT --out=DIR [--tokenizer=gpt2|char]
 * [--val_fraction=0.1]`, the single-file layout. A corpus (a folder, a pattern, several files,
 * JSON Lines, .gz/.zst) or --name=NAME selects the sharded layout instead
 * (cmd_prepare_shards.c; prepare_is_sharded says which).
 *
 * The single-file layout writes into DIR:
 *   train.bin, val.bin   token shards (llm.c format; nanoGPT's headerless one with
 *                        data_format=nanogpt). The split is nanoGPT's prepare.py: the first
 *                        int(n * (1 - val_fraction)) characters of the text are encoded as
 *                        train, the rest as val, each on its own (n counts characters: UTF-8
 *                        code points, a lone invalid byte counting as one). No end-of-text
 *                        token is added: the shards hold exactly the encoding of the text.
 *   tokenizer.bin        what `sample` needs to encode prompts and decode (data/tokenizer.h).
 *   tokenizer_llmc.bin   (gpt2 only) llm.c's decode-only tokenizer file, for interoperability.
 *
 * The text streams: it is read in 1 MiB pieces (two cheap passes to count characters and
 * find the split, a third for the char vocabulary, one to encode), so memory does not grow
 * with the input. Inputs over PROGRESS_MIN_BYTES show progress on stderr.
 * Exit codes: 0 ok, 1 data error (unreadable input or vocabulary, write failure), 2 usage. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../data/shard.h"
#include "../data/tokenizer.h"
#include "../data/utf8.h"
#include "cmd_prepare.h"
#include "run_common.h"

#define READ_CHUNK_BYTES (1u << 20)
#define PROGRESS_MIN_BYTES (32ll << 20)
#define PROGRESS_EVERY_BYTES (64ll << 20)

static int dir_has_vocab(const char *dir) {
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/encoder.json", dir);
    return access(p, R_OK) == 0;
}

int prepare_find_vocab_dir(char *buf, size_t len) {
    const char *root = getenv("ARENAGPT_ROOT");
    if (root && *root) {
        snprintf(buf, len, "%s/.cache/gpt2", root);
        if (dir_has_vocab(buf))
            return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(buf, len, "%s/.cache/gpt2", exe);
            if (dir_has_vocab(buf))
                return 0;
        }
    }
    snprintf(buf, len, ".cache/gpt2");
    return dir_has_vocab(buf) ? 0 : -1;
}

/* Counts characters (code points; a lone invalid byte is one) of the whole file, or finds the
 * byte offset where character number stop_at begins (stop_at < 0: count only). */
static int scan_chars(FILE *f, const char *path, int64_t stop_at, int64_t *n_chars,
                      int64_t *n_bytes, uint8_t *buf, Err *err) {
    if (fseeko(f, 0, SEEK_SET))
        return err_set(err, "%s: cannot seek: %s", path, strerror(errno));
    int64_t chars = 0, base = 0;
    size_t have = 0;
    for (;;) {
        size_t r = fread(buf + have, 1, READ_CHUNK_BYTES - have, f);
        if (ferror(f))
            return err_set(err, "%s: read error: %s", path, strerror(errno));
        have += r;
        int eof = r == 0;
        size_t pos = 0;
        while (pos < have) {
            if (stop_at >= 0 && chars == stop_at) {
                *n_bytes = base + (int64_t)pos;
                *n_chars = chars;
                return 0;
            }
            int l = utf8_seq_len(buf + pos, have - pos);
            if (l == 0 && !eof)
                break;
            pos += l > 0 ? (size_t)l : 1;
            chars++;
        }
        memmove(buf, buf + pos, have - pos);
        base += (int64_t)pos;
        have -= pos;
        if (eof)
            break;
    }
    *n_chars = chars;
    *n_bytes = base;
    return 0;
}

typedef struct Progress {
    int64_t total_bytes, done_bytes, next_report, tokens;
    double t0;
} Progress;

static void progress_update(Progress *p, int64_t bytes, int64_t tokens) {
    p->done_bytes += bytes;
    p->tokens += tokens;
    if (p->total_bytes < PROGRESS_MIN_BYTES || p->done_bytes < p->next_report)
        return;
    p->next_report += PROGRESS_EVERY_BYTES;
    double dt = run_now_s() - p->t0;
    fprintf(stderr, "prepare: %.0f of %.0f MiB (%.0f%%), %lld tokens, %.1f MiB/s\n",
            (double)p->done_bytes / (1 << 20), (double)p->total_bytes / (1 << 20),
            100.0 * (double)p->done_bytes / (double)p->total_bytes, (long long)p->tokens,
            dt > 0 ? (double)p->done_bytes / (1 << 20) / dt : 0.0);
}

/* Encodes bytes [begin, end) of f into the shard at out_path. */
static int encode_range(FILE *f, const char *path, int64_t begin, int64_t end, const Tokenizer *tok,
                        const char *out_path, int nanogpt, Progress *pr, int64_t *n_tokens,
                        Err *err) {
    if (fseeko(f, begin, SEEK_SET))
        return err_set(err, "%s: cannot seek: %s", path, strerror(errno));
    ShardWriter *w = shard_writer_open(out_path, nanogpt, err);
    if (!w)
        return -1;
    size_t cap = READ_CHUNK_BYTES, have = 0;
    uint8_t *buf = malloc(cap);
    TokenBuf ids = {0};
    int64_t left = end - begin;
    int rc = -1;
    if (!buf) {
        err_set(err, "out of memory");
        goto done;
    }
    for (;;) {
        size_t want = cap - have;
        if ((int64_t)want > left)
            want = (size_t)left;
        size_t r = fread(buf + have, 1, want, f);
        if (ferror(f) || r < want) {
            err_set(err, "%s: read error at byte %lld%s", path,
                    (long long)(end - left + (int64_t)r),
                    ferror(f) ? "" : " (the file got shorter while being read)");
            goto done;
        }
        have += r;
        left -= (int64_t)r;
        int at_eof = left == 0;
        size_t used;
        ids.n = 0;
        if (tokenizer_encode_prefix(tok, (const char *)buf, have, at_eof, &ids, &used, err)) {
            err_prefix(err, "%s", path);
            goto done;
        }
        if (shard_writer_append(w, ids.ids, ids.n, err))
            goto done;
        progress_update(pr, (int64_t)used, (int64_t)ids.n);
        memmove(buf, buf + used, have - used);
        have -= used;
        if (at_eof)
            break;
        if (used == 0 && have == cap) { /* one pre-token longer than the buffer: grow it */
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                err_set(err, "out of memory for a pre-token over %zu bytes", cap);
                goto done;
            }
            buf = nb;
            cap *= 2;
        }
    }
    *n_tokens = shard_writer_n_tokens(w);
    rc = shard_writer_close(w, err);
    w = NULL;
done:
    if (w)
        shard_writer_abort(w);
    free(buf);
    token_buf_free(&ids);
    return rc;
}

/* long: prepare's steps in order (tokenizer, character scan, split point, the two shards, the tokenizer file, the summary), each with its error path */
static int prepare_run(const TrainConfig *cfg, Err *err) {
    const char *in = cfg->input;
    int nanogpt = cfg->data_format == CONFIG_DATA_NANOGPT;
    FILE *f = fopen(in, "rb");
    if (!f)
        return err_set(err, "%s: cannot open the input: %s", in, strerror(errno));
    Tokenizer *tok = NULL;
    uint8_t *buf = malloc(READ_CHUNK_BYTES);
    int rc = -1;
    double t_start = run_now_s();
    char vocab_dir[PATH_MAX];
    if (!buf) {
        err_set(err, "out of memory");
        goto done;
    }
    if (cfg->tokenizer == CONFIG_TOKENIZER_GPT2) {
        if (cfg->vocab_dir[0]) {
            snprintf(vocab_dir, sizeof vocab_dir, "%s", cfg->vocab_dir);
        } else if (prepare_find_vocab_dir(vocab_dir, sizeof vocab_dir)) {
            err_set(err, "no GPT-2 vocabulary found (encoder.json and vocab.bpe in "
                         ".cache/gpt2 of the repository or the current directory); run "
                         "scripts/fetch_vocab.sh, or pass --vocab_dir=DIR");
            goto done;
        }
        tok = tokenizer_gpt2_from_vocab(vocab_dir, err);
    } else {
        tok = tokenizer_char_from_file(in, err);
    }
    if (!tok)
        goto done;
    if (tokenizer_vocab_size(tok) > SHARD_MAX_TOKEN + 1) {
        err_set(err, "%s: %lld distinct tokens; shards hold uint16 ids (at most %d)", in,
                (long long)tokenizer_vocab_size(tok), SHARD_MAX_TOKEN + 1);
        goto done;
    }
    int64_t n_chars, n_bytes, split_chars, split_bytes, dummy;
    if (scan_chars(f, in, -1, &n_chars, &n_bytes, buf, err))
        goto done;
    if (n_chars == 0) {
        err_set(err, "%s: empty input", in);
        goto done;
    }
    split_chars = (int64_t)((double)n_chars * (1.0 - cfg->val_fraction));
    if (split_chars == n_chars)
        split_bytes = n_bytes;
    else if (n_chars == n_bytes)
        split_bytes = split_chars; /* one byte per character */
    else if (scan_chars(f, in, split_chars, &dummy, &split_bytes, buf, err))
        goto done;
    if (run_mkdir_p(cfg->out, err))
        goto done;
    char train_path[PATH_MAX + 16], val_path[PATH_MAX + 16], tok_path[PATH_MAX + 16];
    snprintf(train_path, sizeof train_path, "%s/train.bin", cfg->out);
    snprintf(val_path, sizeof val_path, "%s/val.bin", cfg->out);
    Progress pr = {.total_bytes = n_bytes, .next_report = PROGRESS_EVERY_BYTES, .t0 = run_now_s()};
    int64_t n_train = 0, n_val = 0;
    double t_enc = run_now_s();
    if (encode_range(f, in, 0, split_bytes, tok, train_path, nanogpt, &pr, &n_train, err) ||
        encode_range(f, in, split_bytes, n_bytes, tok, val_path, nanogpt, &pr, &n_val, err))
        goto done;
    double dt_enc = run_now_s() - t_enc;
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.bin", cfg->out);
    if (tokenizer_save(tok, tok_path, err))
        goto done;
    if (tokenizer_kind(tok) == TOKENIZER_KIND_GPT2) {
        snprintf(tok_path, sizeof tok_path, "%s/tokenizer_llmc.bin", cfg->out);
        if (tokenizer_save_llmc(tok, tok_path, err))
            goto done;
    }
    printf("prepare: %s: %lld bytes, %lld characters; tokenizer %s (vocab %lld)\n", in,
           (long long)n_bytes, (long long)n_chars,
           cfg->tokenizer == CONFIG_TOKENIZER_GPT2 ? "gpt2" : "char",
           (long long)tokenizer_vocab_size(tok));
    printf("prepare: %s: %lld tokens (first %lld characters)\n", train_path, (long long)n_train,
           (long long)split_chars);
    printf("prepare: %s: %lld tokens\n", val_path, (long long)n_val);
    printf("prepare: encoded %lld tokens in %.3f s (%.0f tokens/s); total %.3f s\n",
           (long long)(n_train + n_val), dt_enc,
           dt_enc > 0 ? (double)(n_train + n_val) / dt_enc : 0.0, run_now_s() - t_start);
    if (n_val == 0)
        fprintf(stderr, "prepare: warning: val.bin is empty (val_fraction = %g)\n",
                cfg->val_fraction);
    rc = 0;
done:
    fclose(f);
    free(buf);
    tokenizer_free(tok);
    return rc;
}

int cmd_prepare(const TrainConfig *cfg) {
    if (!cfg->input[0] || !cfg->out[0]) {
        fprintf(stderr, "arenagpt prepare: --input=TEXT and --out=DIR are both required\n"
                        "usage: arenagpt prepare --input=TEXT --out=DIR "
                        "[--tokenizer=gpt2|char] [--val_fraction=0.1] [--vocab_dir=DIR]\n"
                        "       arenagpt prepare --input=FILES|FOLDER|PATTERN --out=DIR "
                        "[--name=NAME] [--shard_tokens=N] [--val_tokens=N] [--threads=N] "
                        "[--text_key=text] [--doc_sep=SEP] [--strict] [--resume]\n");
        return CONFIG_EXIT_USAGE;
    }
    if (prepare_is_sharded(cfg))
        return prepare_shards_run(cfg);
    const char *key = prepare_shard_only_key(cfg);
    if (key) {
        fprintf(stderr,
                "arenagpt prepare: %s applies to the sharded layout; %s is one plain text file, "
                "written as train.bin/val.bin: add --name=NAME for shards\n",
                key, cfg->input);
        return CONFIG_EXIT_USAGE;
    }
    if (!(cfg->val_fraction >= 0 && cfg->val_fraction < 1)) {
        fprintf(stderr, "arenagpt prepare: val_fraction = %g: expected 0 <= val_fraction < 1\n",
                cfg->val_fraction);
        return CONFIG_EXIT_USAGE;
    }
    Err err = {{0}};
    if (prepare_run(cfg, &err)) {
        fprintf(stderr, "arenagpt prepare: %s\n", err.msg);
        return 1;
    }
    return 0;
}
