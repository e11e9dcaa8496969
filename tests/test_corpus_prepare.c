/* test_corpus_prepare.c: the sharded prepare (data/corpus_prepare.h) on a corpus generated at
 * test time (about 16 MB; 2 MB when ARENAGPT_SLOW_TESTS=0): plain text documents split by a
 * separator (some longer than an item, so cut inside), a stretch with no cut point (the
 * reader's growth path), JSON Lines with escapes, bad lines, blank lines and an empty text,
 * the same gzip-compressed, text zstd-compressed, and tinyshakespeare as one document.
 * Checks: the concatenated ids of all shards equal the one-thread in-process encoding (eot,
 * then tokenizer_encode of each document) for 1 and 2 threads and for a run stopped after a
 * few shards and resumed; shard names and sizes; tinyshakespeare's ids against the reference
 * GPT-2 encoder's count, sum and hash (as test_tokenizer.c); bad lines counted or, strict,
 * refused with file and line; truncated gzip and zstd, corrupt data, empty input, parquet,
 * an existing run without resume. Also the corpus file list and the work pool alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>
#include <zstd.h>

#include "../data/corpus.h"
#include "../data/corpus_prepare.h"
#include "../data/shard.h"
#include "../data/tokenizer.h"
#include "../data/workpool.h"
#include "test_util.h"

/* tinyshakespeare through the reference GPT-2 encoder (see test_tokenizer.c) */
#define SHAKESPEARE_TOKENS 338025
#define SHAKESPEARE_ID_SUM 1405356689ull
#define SHAKESPEARE_ID_HASH 0x31fec1550d50fbbfull

#define DOC_SEP "\n=====\n"
#define EOT 50256

typedef struct Corpus {
    char dir[4096 + 8]; /* the input folder, work/in */
    char work[4096];    /* outputs */
    Tokenizer *tok;
    TokenBuf ref;     /* the expected ids */
    int64_t n_docs;   /* documents in ref */
    int64_t n_bad;    /* bad JSON lines generated */
    int64_t shake_at; /* index in ref of tinyshakespeare's eot */
    int64_t shard_tokens, val_tokens;
} Corpus;

static Corpus C;

/* ---------- generating the corpus ---------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static const char *const WORDS[] = {"the",
                                    "of",
                                    "and",
                                    "to",
                                    "in",
                                    "a",
                                    "is",
                                    "that",
                                    "for",
                                    "it",
                                    "as",
                                    "was",
                                    "with",
                                    "be",
                                    "by",
                                    "on",
                                    "not",
                                    "he",
                                    "I",
                                    "this",
                                    "are",
                                    "or",
                                    "his",
                                    "from",
                                    "at",
                                    "which",
                                    "but",
                                    "have",
                                    "an",
                                    "had",
                                    "they",
                                    "you",
                                    "were",
                                    "their",
                                    "one",
                                    "all",
                                    "we",
                                    "can",
                                    "her",
                                    "has",
                                    "there",
                                    "been",
                                    "if",
                                    "more",
                                    "when",
                                    "will",
                                    "would",
                                    "who",
                                    "so",
                                    "no",
                                    "don't",
                                    "it's",
                                    "we'll",
                                    "they're",
                                    "I'd",
                                    "2024",
                                    "3.14159",
                                    "1,000,000",
                                    "(see",
                                    "above)",
                                    "--",
                                    "e.g.",
                                    "caf\xc3\xa9",
                                    "na\xc3\xafve",
                                    "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",
                                    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
                                    "\xf0\x9f\x98\x80",
                                    "<|endoftext|>",
                                    "x\ty",
                                    "    indented",
                                    "end.\r\n",
                                    "QUOTE\"",
                                    "back\\slash",
                                    "\xd9\xa3\xd9\xa4"};
#define N_WORDS (sizeof WORDS / sizeof *WORDS)

/* Appends about n bytes of text; invalid adds a stray byte now and then. */
static void gen_text(TokenBuf *unused, char **buf, size_t *len, size_t *cap, size_t n,
                     int invalid) {
    (void)unused;
    size_t end = *len + n;
    while (*len < end) {
        const char *w = WORDS[rnd(N_WORDS)];
        char extra[4] = {0};
        if (invalid && rnd(500) == 0)
            extra[0] = rnd(2) ? (char)0xff : (char)0xc3;
        static const char *const runs[] = {"\n", "\n\n", "  ", "\n\n\n", " \n", "\t", "   "};
        const char *sp = rnd(5) == 0 ? runs[rnd(7)] : " "; /* runs: cuts must not split them */
        size_t need = strlen(w) + strlen(extra) + strlen(sp);
        if (*len + need + 1 > *cap) {
            *cap = (*len + need + 1) * 2;
            *buf = realloc(*buf, *cap);
            assert_non_null(*buf);
        }
        *len += (size_t)sprintf(*buf + *len, "%s%s%s", w, extra, sp);
    }
}

static void ref_doc(const char *text, size_t len) {
    if (len == 0)
        return;
    int32_t *ids;
    size_t n;
    Err err;
    int32_t eot = EOT;
    assert_int_equal(token_buf_append(&C.ref, &eot, 1), 0);
    if (tokenizer_encode(C.tok, text, len, &ids, &n, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(token_buf_append(&C.ref, ids, n), 0);
    free(ids);
    C.n_docs++;
}

static void path_in(char *buf, size_t len, const char *name) {
    snprintf(buf, len, "%s/%s", C.dir, name);
}

/* Plain text documents joined by DOC_SEP; lengths from 10 bytes to 2.5 items. */
static void gen_text_file(const char *name, size_t total, int compress) {
    char *all = NULL, *doc = NULL;
    size_t all_len = 0, all_cap = 0, doc_cap = 0;
    while (all_len < total) {
        size_t doc_len = 0, want = rnd(4) == 0 ? rnd(5 * CORPUS_ITEM_BYTES / 2) : 10 + rnd(20000);
        gen_text(NULL, &doc, &doc_len, &doc_cap, want, 1);
        ref_doc(doc, doc_len);
        size_t need = all_len + doc_len + sizeof DOC_SEP;
        if (need > all_cap) {
            all_cap = need * 2;
            all = realloc(all, all_cap);
            assert_non_null(all);
        }
        memcpy(all + all_len, doc, doc_len);
        all_len += doc_len;
        memcpy(all + all_len, DOC_SEP, strlen(DOC_SEP)); /* a trailing one: an empty doc */
        all_len += strlen(DOC_SEP);
    }
    char p[4200];
    path_in(p, sizeof p, name);
    if (!compress) {
        test_write_file(p, all, all_len);
    } else {
        size_t bound = ZSTD_compressBound(all_len);
        void *z = malloc(bound);
        size_t zn = ZSTD_compress(z, bound, all, all_len, 3);
        assert_false(ZSTD_isError(zn));
        test_write_file(p, z, zn);
        free(z);
    }
    free(all);
    free(doc);
}

/* One document: CJK words split by U+3000 (whitespace, but not ASCII: no cut point) for
 * cjk_bytes, then ASCII text, ascii_bytes: with more than CORPUS_ITEM_LIMIT_BYTES of CJK and
 * more than twice that in all, the reader grows its look-ahead and cuts just after the CJK. */
static void gen_no_cut_file(const char *name, size_t cjk_bytes, size_t ascii_bytes) {
    size_t len = 0, cap = cjk_bytes + ascii_bytes + 300000;
    char *t = malloc(cap);
    assert_non_null(t);
    static const char *const cjk[] = {"\xe6\x97\xa5", "\xe6\x9c\xac", "\xe8\xaa\x9e",
                                      "\xe4\xb8\xad", "\xe6\x96\x87"};
    while (len < cjk_bytes) {
        for (int k = 1 + (int)rnd(4); k > 0; k--)
            len += (size_t)sprintf(t + len, "%s", cjk[rnd(5)]);
        len += (size_t)sprintf(t + len, "\xe3\x80\x80");
    }
    char *rest = NULL;
    size_t rest_len = 0, rest_cap = 0;
    gen_text(NULL, &rest, &rest_len, &rest_cap, ascii_bytes, 0);
    memcpy(t + len, rest, rest_len);
    len += rest_len;
    free(rest);
    ref_doc(t, len);
    char p[4200];
    path_in(p, sizeof p, name);
    test_write_file(p, t, len);
    free(t);
}

/* s as a JSON string (quotes included): "é" and "😀" as \u escapes, the rest raw UTF-8. */
static void json_string(char **out, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + 12 * n + 16 > *cap) {
        *cap = (*len + 12 * n + 16) * 2;
        *out = realloc(*out, *cap);
        assert_non_null(*out);
    }
    char *o = *out + *len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c == '\n') {
            o += sprintf(o, "\\n");
        } else if (c < 0x20) {
            o += sprintf(o, "\\u%04x", c);
        } else if (c == 0xc3 && i + 1 < n && (unsigned char)s[i + 1] == 0xa9) {
            o += sprintf(o, "\\u00e9");
            i++;
        } else if (c == 0xf0 && i + 3 < n && memcmp(s + i, "\xf0\x9f\x98\x80", 4) == 0) {
            o += sprintf(o, "\\ud83d\\ude00");
            i += 3;
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    *len = (size_t)(o - *out);
}

static void append(char **out, size_t *len, size_t *cap, const char *s) {
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *out = realloc(*out, *cap);
        assert_non_null(*out);
    }
    memcpy(*out + *len, s, n);
    *len += n;
}

/* JSON Lines: documents as {"id": k, "text": "..."}; bad lines now and then. */
static void gen_jsonl_file(const char *name, size_t total, int gz) {
    char *all = NULL, *doc = NULL;
    size_t len = 0, cap = 0, doc_cap = 0;
    static const char *const bad[] = {"not json at all\n", "{\"meta\": 1}\n",
                                      "{\"text\": 5}\n",   "{\"text\": \"unterminated\n",
                                      "[\"text\"]\n",      "{\"text\": \"a\"} trailing\n"};
    for (int k = 0; len < total; k++) {
        int r = (int)rnd(40);
        if (r == 0) {
            append(&all, &len, &cap, bad[rnd(6)]);
            C.n_bad++;
            continue;
        }
        if (r == 1) {
            append(&all, &len, &cap, rnd(2) ? "\n" : "   \r\n"); /* blank: ignored */
            continue;
        }
        if (r == 2) {
            append(&all, &len, &cap, "{\"text\": \"\"}\n"); /* empty: skipped */
            continue;
        }
        size_t doc_len = 0;
        gen_text(NULL, &doc, &doc_len, &doc_cap, 10 + rnd(r == 3 ? 300000 : 6000), 0);
        char head[64];
        snprintf(head, sizeof head, "{\"id\": %d, \"text\": ", k);
        append(&all, &len, &cap, head);
        json_string(&all, &len, &cap, doc, doc_len);
        append(&all, &len, &cap, ", \"url\": \"http://x/\"}\n");
        ref_doc(doc, doc_len);
    }
    char p[4200];
    path_in(p, sizeof p, name);
    if (!gz) {
        test_write_file(p, all, len);
    } else {
        gzFile f = gzopen(p, "wb");
        assert_non_null(f);
        size_t half = len / 2; /* two gzip members, as concatenated .gz files are */
        assert_int_equal(gzwrite(f, all, (unsigned)half), (int)half);
        assert_int_equal(gzclose(f), Z_OK);
        f = gzopen(p, "ab");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, all + half, (unsigned)(len - half)), (int)(len - half));
        assert_int_equal(gzclose(f), Z_OK);
    }
    free(all);
    free(doc);
}

static int corpus_setup(void **state) {
    (void)state;
    Err err;
    char vocab[4200];
    snprintf(vocab, sizeof vocab, "%s/encoder.json", test_vocab_dir());
    if (access(vocab, R_OK) || access(test_shakespeare_path(), R_OK))
        return 0; /* each test then reports the missing data */
    C.tok = tokenizer_gpt2_from_vocab(test_vocab_dir(), &err);
    if (!C.tok) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    test_tmpdir(C.work, sizeof C.work);
    snprintf(C.dir, sizeof C.dir, "%s/in", C.work);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/sub'", C.dir);
    if (test_run(cmd))
        return -1;
    int slow = test_slow();
    size_t mb = slow ? (1u << 20) : (1u << 17);
    /* files in sorted order: the reference is built in the order prepare reads them */
    gen_text_file("a_text.txt", 4 * mb, 0);
    if (slow)
        gen_no_cut_file("b_no_cut.txt", CORPUS_ITEM_LIMIT_BYTES + (1u << 19),
                        CORPUS_ITEM_LIMIT_BYTES);
    else
        gen_no_cut_file("b_no_cut.txt", 300000, 200000);
    gen_jsonl_file("c_docs.jsonl", 3 * mb, 0);
    gen_jsonl_file("d_docs.jsonl.gz", 2 * mb, 1);
    gen_text_file("e_text.txt.zst", 2 * mb, 1);
    size_t n;
    char *shake = test_read_file(test_shakespeare_path(), &n);
    C.shake_at = (int64_t)C.ref.n;
    ref_doc(shake, n);
    char p[4200];
    path_in(p, sizeof p, "sub/f_shakespeare.txt");
    test_write_file(p, shake, n);
    free(shake);
    C.shard_tokens = slow ? 500000 : 60000;
    C.val_tokens = C.shard_tokens * 3 / 2;
    return 0;
}

static int corpus_teardown(void **state) {
    (void)state;
    if (C.work[0])
        test_rmtree(C.work);
    tokenizer_free(C.tok);
    token_buf_free(&C.ref);
    return 0;
}

static void need_corpus(void) {
    if (!C.tok)
        test_data_missing("the GPT-2 vocabulary and tinyshakespeare", test_vocab_dir());
}

/* ---------- running and reading back ---------- */

typedef struct StopAfter {
    int64_t shards; /* set *stop once this many shards are complete */
    volatile sig_atomic_t flag;
} StopAfter;

static void stop_progress(void *ctx, const CorpusPrepareStats *st) {
    StopAfter *s = ctx;
    if (st->shards >= s->shards)
        s->flag = 1;
}

static CorpusPrepareOptions options(const char *out, int threads) {
    CorpusPrepareOptions o = {
        .inputs = C.dir,
        .out_dir = out,
        .name = "gen",
        .text_key = "text",
        .doc_sep = DOC_SEP,
        .shard_tokens = C.shard_tokens,
        .val_tokens = C.val_tokens,
        .threads = threads,
        .tok = C.tok,
    };
    return o;
}

static void out_dir(char *buf, size_t len, const char *name) {
    snprintf(buf, len, "%s/%s", C.work, name);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", buf);
    assert_int_equal(test_run(cmd), 0);
}

/* Reads shard k = 0, 1, ... in order, checking names (val while the split lasts) and sizes
 * (shard_tokens, the val split's end, the last train shard); ids into *all. */
static int64_t read_shards(const char *dir, TokenBuf *all) {
    int64_t k = 0;
    all->n = 0;
    for (;; k++) {
        int64_t before = (int64_t)all->n;
        int is_val = before < C.val_tokens;
        char p[4200], other[4200];
        corpus_shard_path(p, sizeof p, dir, "gen", is_val, k);
        corpus_shard_path(other, sizeof other, dir, "gen", !is_val, k);
        assert_int_not_equal(access(other, F_OK), 0); /* never the other split's name */
        size_t n;
        char *b = test_read_file(p, &n);
        if (!b)
            break;
        int32_t h[3];
        memcpy(h, b, sizeof h);
        assert_int_equal(h[0], SHARD_MAGIC);
        assert_int_equal(n, SHARD_HEADER_BYTES + 2 * (size_t)h[2]);
        int64_t want = is_val ? (C.val_tokens - before < C.shard_tokens ? C.val_tokens - before
                                                                        : C.shard_tokens)
                              : C.shard_tokens;
        if (h[2] != want) { /* only the last train shard may be short */
            assert_false(is_val);
            assert_true(h[2] < want);
            corpus_shard_path(p, sizeof p, dir, "gen", 0, k + 1);
            assert_int_not_equal(access(p, F_OK), 0);
        }
        const uint16_t *t = (const uint16_t *)(b + SHARD_HEADER_BYTES);
        for (int32_t i = 0; i < h[2]; i++) {
            int32_t id = t[i];
            assert_int_equal(token_buf_append(all, &id, 1), 0);
        }
        free(b);
    }
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q '\\.tmp$'", dir);
    assert_int_not_equal(test_run(cmd), 0); /* no partial file left */
    return k;
}

static void assert_ids_equal_ref(const TokenBuf *got) {
    size_t n = got->n < C.ref.n ? got->n : C.ref.n;
    for (size_t i = 0; i < n; i++)
        if (got->ids[i] != C.ref.ids[i])
            fail_msg("id %zu: %d, expected %d (of %zu)", i, got->ids[i], C.ref.ids[i], C.ref.n);
    assert_int_equal(got->n, C.ref.n);
}

static void run_ok(const CorpusPrepareOptions *o, CorpusPrepareStats *st) {
    Err err = {{0}};
    int rc = corpus_prepare_run(o, st, &err);
    if (rc != 0)
        fail_msg("corpus_prepare_run: %d: %s", rc, err.msg);
}

/* ---------- tests ---------- */

static void check_run(const char *name, int threads) {
    need_corpus();
    char dir[4200];
    out_dir(dir, sizeof dir, name);
    CorpusPrepareOptions o = options(dir, threads);
    CorpusPrepareStats st;
    run_ok(&o, &st);
    TokenBuf got = {0};
    int64_t shards = read_shards(dir, &got);
    assert_ids_equal_ref(&got);
    assert_int_equal(st.shards, shards);
    assert_int_equal(st.tokens, (int64_t)C.ref.n);
    assert_int_equal(st.docs, C.n_docs);
    assert_int_equal(st.bad_lines, C.n_bad);
    assert_int_equal(st.n_files, 6);
    assert_true(shards >= 4); /* two val shards and some train shards */
    token_buf_free(&got);
}

static void test_corpus_prepare_one_thread(void **state) {
    (void)state;
    check_run("t1", 1);
}

static void test_corpus_prepare_two_threads(void **state) {
    (void)state;
    check_run("t2", 2);
}

/* tinyshakespeare, one document of the corpus: eot, then the reference encoder's ids. */
static void test_corpus_prepare_reference_sample(void **state) {
    (void)state;
    need_corpus();
    char dir[4200];
    out_dir(dir, sizeof dir, "t2");
    TokenBuf got = {0};
    read_shards(dir, &got);
    assert_true((int64_t)got.n >= C.shake_at + 1 + SHAKESPEARE_TOKENS);
    assert_int_equal(got.ids[C.shake_at], EOT);
    uint64_t sum = 0, h = 0;
    for (int64_t i = 0; i < SHAKESPEARE_TOKENS; i++) {
        uint64_t id = (uint64_t)got.ids[C.shake_at + 1 + i];
        sum += id;
        h = h * 31 + id;
    }
    assert_int_equal(sum, SHAKESPEARE_ID_SUM);
    assert_int_equal(h, SHAKESPEARE_ID_HASH);
    assert_int_equal((int64_t)got.n, C.shake_at + 1 + SHAKESPEARE_TOKENS); /* it is the last */
    token_buf_free(&got);
}

/* Stopped after 3 shards (the shard in progress removed), then resumed: the same shards. */
static void test_corpus_prepare_resume(void **state) {
    (void)state;
    need_corpus();
    char dir[4200];
    out_dir(dir, sizeof dir, "resume");
    CorpusPrepareOptions o = options(dir, 2);
    StopAfter stop = {.shards = 3};
    o.stop = &stop.flag;
    o.progress = stop_progress;
    o.progress_ctx = &stop;
    CorpusPrepareStats st;
    Err err = {{0}};
    assert_int_equal(corpus_prepare_run(&o, &st, &err), 1);
    TokenBuf got = {0};
    assert_int_equal(read_shards(dir, &got), st.shards);
    assert_true(st.shards >= 3);
    /* a fresh run over it is refused */
    CorpusPrepareOptions fresh = options(dir, 1);
    assert_int_equal(corpus_prepare_run(&fresh, &st, &err), -1);
    assert_non_null(strstr(err.msg, "--resume"));
    CorpusPrepareOptions again = options(dir, 1); /* another thread count: the same ids */
    again.resume = 1;
    run_ok(&again, &st);
    assert_true(st.resumed_shards >= 3);
    read_shards(dir, &got);
    assert_ids_equal_ref(&got);
    assert_int_equal(st.docs, C.n_docs);
    assert_int_equal(st.bad_lines, C.n_bad);
    /* resuming a finished run does nothing and says the same */
    run_ok(&again, &st);
    assert_int_equal(st.tokens, (int64_t)C.ref.n);
    token_buf_free(&got);
}

/* One small input file in its own folder; runs prepare on it and returns rc and err. */
static int run_small(const char *name, const void *data, size_t n, int strict, Err *err) {
    char in[4200], out[4200], cmd[17000];
    snprintf(in, sizeof in, "%s/small_%s", C.work, name);
    snprintf(out, sizeof out, "%s/small_out_%s", C.work, name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'; mkdir -p '%s' '%s'", in, out, in, out);
    assert_int_equal(test_run(cmd), 0);
    char p[8400];
    snprintf(p, sizeof p, "%s/%s", in, name);
    test_write_file(p, data, n);
    CorpusPrepareOptions o = options(out, 2);
    o.inputs = in;
    o.strict = strict;
    o.val_tokens = 1;
    CorpusPrepareStats st;
    err->msg[0] = 0;
    return corpus_prepare_run(&o, &st, err);
}

static void test_corpus_prepare_bad_input(void **state) {
    (void)state;
    need_corpus();
    Err err;
    const char jl[] = "{\"text\": \"one two\"}\n{\"text\": \"three\"}\n{\"txt\": \"x\"}\n";
    assert_int_equal(run_small("s.jsonl", jl, strlen(jl), 0, &err), 0);
    assert_int_equal(run_small("s.jsonl", jl, strlen(jl), 1, &err), -1);
    assert_non_null(strstr(err.msg, "s.jsonl:3: no \"text\" key"));
    assert_non_null(strstr(err.msg, "--strict"));
    /* gzip and zstd cut short, and corrupt */
    char text[20000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = "abc def\n"[i % 8] + (char)(i % 97 == 0);
    uLongf gz_n = compressBound(sizeof text) + 64;
    uint8_t *gz = malloc(gz_n + 18);
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)text;
    z.avail_in = sizeof text;
    z.next_out = gz;
    z.avail_out = (uInt)gz_n;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t gzlen = z.total_out;
    deflateEnd(&z);
    assert_int_equal(run_small("t.txt.gz", gz, gzlen, 0, &err), 0);
    assert_int_equal(run_small("t.txt.gz", gz, gzlen - 9, 0, &err), -1);
    assert_non_null(strstr(err.msg, "t.txt.gz: truncated gzip"));
    gz[gzlen / 2] ^= 0x55;
    assert_int_equal(run_small("t.txt.gz", gz, gzlen, 0, &err), -1);
    assert_non_null(strstr(err.msg, "t.txt.gz"));
    free(gz);
    size_t zb = ZSTD_compressBound(sizeof text);
    uint8_t *zs = malloc(zb);
    size_t zn = ZSTD_compress(zs, zb, text, sizeof text, 3);
    assert_int_equal(run_small("t.zst", zs, zn, 0, &err), 0);
    assert_int_equal(run_small("t.zst", zs, zn - 5, 0, &err), -1);
    assert_non_null(strstr(err.msg, "t.zst: truncated zstd"));
    free(zs);
    /* empty input, blank lines only, parquet */
    assert_int_equal(run_small("e.txt", "", 0, 0, &err), -1);
    assert_non_null(strstr(err.msg, "empty input"));
    assert_int_equal(run_small("e.jsonl", "\n\n", 2, 0, &err), -1);
    assert_non_null(strstr(err.msg, "empty input"));
    assert_int_equal(run_small("x.parquet", "PAR1", 4, 0, &err), -1);
    assert_non_null(strstr(err.msg, "x.parquet: parquet is not read directly"));
    assert_non_null(strstr(err.msg, "JSON Lines"));
}

static void test_corpus_list(void **state) {
    (void)state;
    need_corpus();
    CorpusList l;
    Err err;
    char in[3 * sizeof C.dir + 32];
    snprintf(in, sizeof in, "%s/c_docs.jsonl,%s/*.txt,%s", C.dir, C.dir, C.dir);
    assert_int_equal(corpus_list(in, &l, &err), 0);
    assert_int_equal(l.n, 6); /* duplicates removed, sorted, the sub-folder included */
    for (int i = 1; i < l.n; i++)
        assert_true(strcmp(l.files[i - 1].path, l.files[i].path) < 0);
    assert_int_equal(l.files[2].format, CORPUS_FORMAT_JSONL);
    assert_int_equal(l.files[3].format, CORPUS_FORMAT_JSONL); /* .jsonl.gz */
    assert_int_equal(l.files[4].format, CORPUS_FORMAT_TEXT);  /* .txt.zst */
    corpus_list_free(&l);
    snprintf(in, sizeof in, "%s/nothing_*.txt", C.dir);
    assert_int_equal(corpus_list(in, &l, &err), -1);
    assert_non_null(strstr(err.msg, "nothing_*.txt"));
}

static void square(void *ctx, int worker, void *item) {
    int *x = item;
    *x = *x * *x + ((int *)ctx)[worker] * 0;
}

static void test_workpool_order(void **state) {
    (void)state;
    int ctx[3] = {0};
    Err err;
    WorkPool *p = workpool_start(3, 4, square, ctx, &err);
    assert_non_null(p);
    int x[100], done[100];
    for (int i = 0; i < 100; i++) {
        x[i] = i;
        workpool_submit(p, &x[i], &done[i]);
        if (i >= 8)
            workpool_wait(p, &done[i - 8]);
    }
    for (int i = 0; i < 100; i++) {
        workpool_wait(p, &done[i]);
        assert_int_equal(x[i], i * i);
    }
    workpool_free(p);
    assert_null(workpool_start(0, 4, square, ctx, &err));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workpool_order),
        cmocka_unit_test(test_corpus_list),
        cmocka_unit_test(test_corpus_prepare_one_thread),
        cmocka_unit_test(test_corpus_prepare_two_threads),
        cmocka_unit_test(test_corpus_prepare_reference_sample),
        cmocka_unit_test(test_corpus_prepare_resume),
        cmocka_unit_test(test_corpus_prepare_bad_input),
    };
    return cmocka_run_group_tests(tests, corpus_setup, corpus_teardown);
}
