/* cmd_prepare_shards.c: `arenagpt prepare` in the sharded layout (a corpus -> llm.c-style
 * shards, data/corpus_prepare.h): option checks, the GPT-2 tokenizer, Ctrl-C, the progress
 * line and the summary. cmd_prepare.c chooses this layout (prepare_is_sharded).
 *
 * Progress goes to stderr: on a terminal one line rewritten at most every PROGRESS_TTY_S
 * seconds; otherwise a line every PROGRESS_LOG_S seconds. The first Ctrl-C (SIGINT) or SIGTERM
 * stops after the item being written: the shard in progress is removed, complete shards and
 * the state stay, and the exit code is 130; `--resume` continues. A second Ctrl-C exits at
 * once (the shard in progress stays a .tmp file, which a resume overwrites). */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../data/corpus.h"
#include "../data/corpus_prepare.h"
#include "../data/shard.h"
#include "../data/tokenizer.h"
#include "cmd_prepare.h"
#include "run_common.h"

#define PROGRESS_TTY_S 0.5
#define PROGRESS_LOG_S 60.0
#define EXIT_INTERRUPTED 130

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig) {
    if (stop_requested)
        _exit(EXIT_INTERRUPTED);
    stop_requested = 1;
    (void)sig;
}

/* Keys that only the sharded layout uses. */
static const char *const SHARD_KEYS[] = {"name",       "text_key", "doc_sep", "shard_tokens",
                                         "val_tokens", "resume",   "strict",  "threads"};

int prepare_is_sharded(const TrainConfig *cfg) {
    const char *in = cfg->input;
    size_t n = strlen(in);
    if (cfg->name[0] || strpbrk(in, ",*?[") || corpus_format_of(in) == CORPUS_FORMAT_JSONL)
        return 1;
    if ((n >= 3 && strcmp(in + n - 3, ".gz") == 0) || (n >= 4 && strcmp(in + n - 4, ".zst") == 0) ||
        (n >= 8 && strcmp(in + n - 8, ".parquet") == 0))
        return 1;
    char probe[PATH_MAX];
    snprintf(probe, sizeof probe, "%s/.", in);
    return access(probe, F_OK) == 0; /* a folder */
}

const char *prepare_shard_only_key(const TrainConfig *cfg) {
    for (size_t i = 0; i < sizeof SHARD_KEYS / sizeof *SHARD_KEYS; i++)
        if (config_is_set(cfg, SHARD_KEYS[i]))
            return SHARD_KEYS[i];
    return NULL;
}

/* doc_sep's C escapes (\n \t \r \\) -> bytes; -1 on an unknown escape. */
static int unescape(const char *in, char *out, size_t len) {
    size_t k = 0;
    for (const char *p = in; *p && k + 1 < len; p++) {
        if (*p != '\\') {
            out[k++] = *p;
            continue;
        }
        p++;
        if (*p == 'n')
            out[k++] = '\n';
        else if (*p == 't')
            out[k++] = '\t';
        else if (*p == 'r')
            out[k++] = '\r';
        else if (*p == '\\')
            out[k++] = '\\';
        else
            return -1;
    }
    out[k] = 0;
    return 0;
}

typedef struct Progress {
    double t0, last;
    int tty;
    int64_t start_bytes;
} Progress;

static void progress_line(void *ctx, const CorpusPrepareStats *st) {
    Progress *p = ctx;
    double now = run_now_s();
    if (now - p->last < (p->tty ? PROGRESS_TTY_S : PROGRESS_LOG_S))
        return;
    p->last = now;
    double dt = now - p->t0, mib = 1024.0 * 1024.0;
    double rate = dt > 0 ? (double)(st->file_bytes - p->start_bytes) / dt : 0;
    double left = st->total_bytes - st->file_bytes;
    char eta[32] = "?";
    if (rate > 0)
        snprintf(eta, sizeof eta, "%.0f min", left / rate / 60.0);
    fprintf(stderr,
            "%sprepare: %.0f of %.0f MiB (%.1f%%), file %d of %d, %lld docs, %lld tokens, %lld "
            "shards, %.1f MiB/s, ETA %s%s",
            p->tty ? "\r" : "", (double)st->file_bytes / mib, (double)st->total_bytes / mib,
            st->total_bytes ? 100.0 * (double)st->file_bytes / (double)st->total_bytes : 100.0,
            st->files_done + 1, st->n_files, (long long)st->docs, (long long)st->tokens,
            (long long)st->shards, rate / mib, eta, p->tty ? "   " : "\n");
}

static int check_options(const TrainConfig *cfg, char *sep, size_t sep_len) {
    const char *bad = NULL;
    if (cfg->tokenizer != CONFIG_TOKENIZER_GPT2)
        bad = "the sharded layout needs --tokenizer=gpt2 (documents are separated by GPT-2's "
              "<|endoftext|>; a char vocabulary would need the whole corpus first)";
    else if (config_is_set(cfg, "val_fraction"))
        bad = "val_fraction is the single-file layout's split; the sharded layout takes "
              "--val_tokens=N";
    else if (cfg->data_format == CONFIG_DATA_NANOGPT)
        bad = "the sharded layout writes llm.c shards (data_format=llmc)";
    else if (!cfg->text_key[0])
        bad = "text_key is empty; expected the JSON field with the text (default text)";
    else if (strchr(cfg->name, '/'))
        bad = "name must not contain '/' (it is a file name prefix)";
    if (bad) {
        fprintf(stderr, "arenagpt prepare: %s\n", bad);
        return -1;
    }
    if (unescape(cfg->doc_sep, sep, sep_len)) {
        fprintf(stderr,
                "arenagpt prepare: doc_sep '%s': unknown escape; expected \\n, \\t, \\r or \\\\\n",
                cfg->doc_sep);
        return -1;
    }
    return 0;
}

static void print_summary(const TrainConfig *cfg, const CorpusPrepareOptions *o,
                          const CorpusPrepareStats *st, double dt) {
    double mib = (double)(st->file_bytes) / (1024.0 * 1024.0);
    printf("prepare: %s: %d files, %.1f MiB, %lld documents, %lld tokens (val %lld) in %lld "
           "shards in %s (%s_val_000000.bin first); %d threads\n",
           cfg->input, st->n_files, (double)st->total_bytes / (1024.0 * 1024.0),
           (long long)st->docs, (long long)st->tokens,
           (long long)(st->tokens < o->val_tokens ? st->tokens : o->val_tokens),
           (long long)st->shards, o->out_dir, o->name, o->threads);
    if (st->resumed_shards)
        printf("prepare: resumed after %lld complete shards\n", (long long)st->resumed_shards);
    double text_mib = (double)st->text_bytes / (1024.0 * 1024.0);
    printf("prepare: %.2f s: %.1f MiB of text (%.1f MiB/s), %.1f MiB of files (%.1f MiB/s), %.0f "
           "tokens/s\n",
           dt, text_mib, dt > 0 ? text_mib / dt : 0.0, mib, dt > 0 ? mib / dt : 0.0,
           dt > 0 ? (double)(st->tokens - st->resumed_tokens) / dt : 0.0);
    if (st->bad_lines)
        printf("prepare: %lld bad JSON lines skipped (--strict refuses them); the first: %s\n",
               (long long)st->bad_lines, st->first_bad);
}

static Tokenizer *load_gpt2(const TrainConfig *cfg, Err *err) {
    char vocab_dir[PATH_MAX];
    if (cfg->vocab_dir[0]) {
        snprintf(vocab_dir, sizeof vocab_dir, "%s", cfg->vocab_dir);
    } else if (prepare_find_vocab_dir(vocab_dir, sizeof vocab_dir)) {
        err_set(err, "no GPT-2 vocabulary found (encoder.json and vocab.bpe in .cache/gpt2 of "
                     "the repository or the current directory); run scripts/fetch_vocab.sh, "
                     "or pass --vocab_dir=DIR");
        return NULL;
    }
    return tokenizer_gpt2_from_vocab(vocab_dir, err);
}

/* Writes tokenizer.bin and tokenizer_llmc.bin beside the shards. */
static int save_tokenizers(const Tokenizer *tok, const char *out, Err *err) {
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/tokenizer.bin", out);
    if (tokenizer_save(tok, p, err))
        return -1;
    snprintf(p, sizeof p, "%s/tokenizer_llmc.bin", out);
    return tokenizer_save_llmc(tok, p, err);
}

int prepare_shards_run(const TrainConfig *cfg) {
    char sep[CONFIG_STR_LEN];
    if (check_options(cfg, sep, sizeof sep))
        return CONFIG_EXIT_USAGE;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    CorpusPrepareOptions o = {
        .inputs = cfg->input,
        .out_dir = cfg->out,
        .name = cfg->name[0] ? cfg->name : "corpus",
        .text_key = cfg->text_key,
        .doc_sep = sep,
        .shard_tokens = cfg->shard_tokens,
        .val_tokens = cfg->val_tokens ? cfg->val_tokens : cfg->shard_tokens,
        .threads = cfg->threads ? (int)cfg->threads : (cores > 0 ? (int)cores : 1),
        .strict = cfg->strict,
        .resume = cfg->resume,
        .stop = &stop_requested,
    };
    Progress pr = {.t0 = run_now_s(), .tty = isatty(fileno(stderr))};
    pr.last = pr.t0;
    o.progress = progress_line;
    o.progress_ctx = &pr;
    Err err = {{0}};
    CorpusPrepareStats st;
    Tokenizer *tok = load_gpt2(cfg, &err);
    int rc = -1;
    if (tok && !run_mkdir_p(cfg->out, &err) && !save_tokenizers(tok, cfg->out, &err)) {
        o.tok = tok;
        signal(SIGINT, on_stop);
        signal(SIGTERM, on_stop);
        rc = corpus_prepare_run(&o, &st, &err);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
    }
    if (pr.tty && pr.last > pr.t0)
        fputc('\n', stderr);
    tokenizer_free(tok);
    if (rc < 0) {
        fprintf(stderr, "arenagpt prepare: %s\n", err.msg);
        return 1;
    }
    if (rc == 1) {
        fprintf(stderr,
                "arenagpt prepare: interrupted: %lld complete shards kept in %s, the shard in "
                "progress removed; run the same command with --resume to continue\n",
                (long long)st.shards, o.out_dir);
        return EXIT_INTERRUPTED;
    }
    print_summary(cfg, &o, &st, run_now_s() - pr.t0);
    return 0;
}
