/* corpus_prepare.c: the streaming, parallel, ordered corpus -> shards pipeline of
 * corpus_prepare.h: the reader that cuts items, the workers that encode them, the writer that
 * fills shards in order, and the resume state. Does not print (progress goes to a callback). */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corpus.h"
#include "corpus_prepare.h"
#include "jsonl.h"
#include "shard.h"
#include "token_maps.h"
#include "workpool.h"

#define STATE_VERSION 1
#define BAD_MSG_LEN 512

/* ---------- items ---------- */

/* A run of text inside an item: a whole document, or a piece of one cut at a cut point. */
typedef struct Piece {
    size_t off, len;
    int doc_start; /* begins a document (eot first) */
} Piece;

/* Work for one thread: pieces of one file, back to back in text, about CORPUS_ITEM_BYTES in
 * all (JSON Lines: one piece of whole lines). Its ids are the pieces' ids in order. */
typedef struct Item {
    /* input, set by the reader */
    uint8_t *text; /* (len) */
    size_t len, cap;
    Piece *pieces; /* (n_pieces) */
    size_t n_pieces, pieces_cap;
    CorpusFormat format;
    int file;             /* index into the list */
    int doc_start;        /* of the first piece */
    int64_t offset, line; /* where it starts in the file's (decompressed) bytes; line 1-based */
    int64_t file_bytes;   /* progress: the file bytes read when it was cut */
    int64_t consumed;     /* text bytes it stands for (separators included) */
    /* output, set by a worker */
    TokenBuf ids;
    int64_t n_docs, n_bad;
    char bad[BAD_MSG_LEN]; /* first bad line: "LINE: reason" */
    int rc;
    Err err;
    int done;
} Item;

typedef struct Pipeline {
    const CorpusPrepareOptions *o;
    const CorpusList *files;
    Tokenizer **toks; /* (threads) */
} Pipeline;

static int is_ascii_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* A cut before s[c] keeps the GPT-2 ids (see corpus_prepare.h). */
static int safe_cut(const uint8_t *s, size_t c) {
    return s[c - 1] > 0x20 && s[c - 1] < 0x7f && is_ascii_space(s[c]);
}

static void item_bad(Item *it, int64_t line, const char *why) {
    if (it->n_bad++ == 0)
        snprintf(it->bad, sizeof it->bad, "%" PRId64 ": %.400s", line, why);
}

/* eot, then the ids of a document's text (or of its first piece) */
static int encode_doc(Item *it, const Tokenizer *tok, const char *text, size_t len) {
    size_t used;
    int32_t eot = tokenizer_eot(tok);
    if (token_buf_append(&it->ids, &eot, 1))
        return err_set(&it->err, "out of memory");
    it->n_docs++;
    return tokenizer_encode_prefix(tok, text, len, 1, &it->ids, &used, &it->err);
}

static int encode_jsonl(Item *it, const Tokenizer *tok, const char *key) {
    const char *p = (const char *)it->text, *end = p + it->len;
    int64_t line = it->line;
    for (; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *q = p;
        while (q < le && is_ascii_space((uint8_t)*q))
            q++;
        if (q < le) { /* not a blank line */
            JsonlDoc d;
            Err e;
            if (jsonl_doc_parse(&d, p, (size_t)(le - p), key, &e)) {
                item_bad(it, line, e.msg);
            } else {
                int rc = d.text_len ? encode_doc(it, tok, d.text, d.text_len) : 0;
                jsonl_doc_free(&d);
                if (rc)
                    return err_prefix(&it->err, "line %" PRId64, line);
            }
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

static void item_encode(void *ctx, int worker, void *vitem) {
    Pipeline *pl = ctx;
    Item *it = vitem;
    const Tokenizer *tok = pl->toks[worker];
    it->ids.n = 0;
    it->n_docs = it->n_bad = 0;
    it->bad[0] = 0;
    it->rc = 0;
    if (it->format == CORPUS_FORMAT_JSONL) {
        it->rc = encode_jsonl(it, tok, pl->o->text_key);
        return;
    }
    for (size_t i = 0; i < it->n_pieces && !it->rc; i++) {
        const Piece *pc = &it->pieces[i];
        const char *s = (const char *)it->text + pc->off;
        size_t used;
        if (pc->doc_start)
            it->rc = encode_doc(it, tok, s, pc->len);
        else
            it->rc = tokenizer_encode_prefix(tok, s, pc->len, 1, &it->ids, &used, &it->err);
    }
}

/* ---------- the reader ---------- */

typedef struct Reader {
    const CorpusList *files;
    const char *sep;
    size_t sep_len;
    int fi; /* current file */
    CorpusStream *s;
    uint8_t *buf; /* bytes [pos, len) are the pending bytes of the current file, from offset */
    size_t pos, len, cap;
    int eof; /* the current file is all in buf */
    int64_t offset, line;
    int doc_start;
    int64_t done_bytes; /* file bytes of the files before fi */
} Reader;

/* Reads until buf holds want pending bytes or the file ends. */
static int reader_fill(Reader *r, size_t want, Err *err) {
    if (r->len - r->pos >= want || r->eof)
        return 0;
    if (r->pos > 0 && r->pos + want > r->cap) { /* move the pending bytes to the front */
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    if (want > r->cap && array_grow((void **)&r->buf, &r->cap, want, 1))
        return err_set(err, "%s: out of memory for %zu bytes", r->files->files[r->fi].path, want);
    while (r->len - r->pos < want && !r->eof) {
        int64_t got = corpus_stream_read(r->s, r->buf + r->len, r->cap - r->len, err);
        if (got < 0)
            return -1;
        if (got == 0)
            r->eof = 1;
        r->len += (size_t)got;
    }
    return 0;
}

static int reader_open(Reader *r, Err *err) {
    r->s = corpus_stream_open(r->files->files[r->fi].path, err);
    if (!r->s)
        return -1;
    r->pos = r->len = 0;
    r->eof = 0;
    r->offset = 0;
    r->line = 1;
    r->doc_start = 1;
    return 0;
}

/* Appends the next take pending bytes to it as a piece (none when take is 0) and drops
 * consume (>= take) bytes. */
static int reader_emit(Reader *r, Item *it, size_t take, size_t consume, Err *err) {
    const uint8_t *s = r->buf + r->pos;
    if (it->n_pieces == 0) {
        it->file = r->fi;
        it->format = r->files->files[r->fi].format;
        it->doc_start = r->doc_start;
        it->offset = r->offset;
        it->line = r->line;
        it->consumed = 0;
    }
    if (take) {
        if (array_grow((void **)&it->text, &it->cap, it->len + take, 1) ||
            array_grow((void **)&it->pieces, &it->pieces_cap, it->n_pieces + 1, sizeof(Piece)))
            return err_set(err, "out of memory for an item of %zu bytes", it->len + take);
        memcpy(it->text + it->len, s, take);
        it->pieces[it->n_pieces++] = (Piece){it->len, take, r->doc_start};
        it->len += take;
    }
    if (it->format == CORPUS_FORMAT_JSONL)
        for (const uint8_t *p = s; (p = memchr(p, '\n', (size_t)(s + consume - p))); p++)
            r->line++;
    it->file_bytes = r->done_bytes + corpus_stream_file_bytes(r->s);
    it->consumed += (int64_t)consume;
    r->pos += consume;
    r->offset += (int64_t)consume;
    return 0;
}

/* A separator starting at or before lim: its offset, or -1. */
static int64_t find_sep(const Reader *r, size_t lim) {
    if (!r->sep_len)
        return -1;
    size_t n = r->len - r->pos;
    size_t span = n < lim + r->sep_len ? n : lim + r->sep_len;
    const uint8_t *p = memmem(r->buf + r->pos, span, r->sep, r->sep_len);
    return p ? (int64_t)(p - (r->buf + r->pos)) : -1;
}

/* Text: where the next piece ends (see corpus_prepare.h), looking at most lim bytes ahead (the
 * reader holds lim + sep_len + 1 bytes unless the file ends first). In order: a separator in
 * the first CORPUS_ITEM_BYTES ends the document; the end of the file within them ends it too;
 * else the last cut point in them; else, as far as lim, the same three with the first cut
 * point. 0: nothing within lim (the caller doubles lim). */
static int text_cut(const Reader *r, size_t lim, size_t *take, size_t *consume, int *ends_doc) {
    const uint8_t *s = r->buf + r->pos;
    size_t n = r->len - r->pos, c = 0;
    for (int wide = 0; wide < 2; wide++) {
        size_t reach = wide ? lim : CORPUS_ITEM_BYTES;
        int64_t p = find_sep(r, reach);
        if (p >= 0) {
            *take = (size_t)p;
            *consume = *take + r->sep_len;
            *ends_doc = 1;
            return 1;
        }
        if (r->eof && n <= reach) {
            *take = *consume = n;
            *ends_doc = 1;
            return 1;
        }
        if (!wide) { /* n > CORPUS_ITEM_BYTES here */
            for (size_t i = CORPUS_ITEM_BYTES; i >= 1 && !c; i--)
                if (safe_cut(s, i))
                    c = i;
        } else {
            for (size_t i = CORPUS_ITEM_BYTES + 1; !c && i <= lim && i < n; i++)
                if (safe_cut(s, i))
                    c = i; /* n > lim unless the file ended */
        }
        if (c) {
            *take = *consume = c;
            *ends_doc = 0;
            return 1;
        }
    }
    return 0;
}

/* The next piece of a text file into it: 1, or 0 at the end of the file. */
static int next_text(Reader *r, Item *it, Err *err) {
    size_t take, consume;
    int ends_doc;
    for (size_t lim = CORPUS_ITEM_LIMIT_BYTES;; lim *= 2) {
        if (reader_fill(r, lim + r->sep_len + 1, err)) /* + 1: s[lim] decides a cut at lim */
            return -1;
        if (r->len == r->pos)
            return 0;
        if (text_cut(r, lim, &take, &consume, &ends_doc))
            break;
        if (lim >= CORPUS_MAX_ITEM_BYTES)
            return err_set(err,
                           "%s: %u MiB from byte %" PRId64 " without a place to cut (an ASCII "
                           "character followed by whitespace)",
                           r->files->files[r->fi].path, CORPUS_MAX_ITEM_BYTES >> 20, r->offset);
    }
    if (reader_emit(r, it, take, consume, err))
        return -1;
    r->doc_start = ends_doc;
    return 1;
}

/* JSON Lines: whole lines, at least CORPUS_ITEM_BYTES of them unless the file ends. */
static int next_jsonl(Reader *r, Item *it, Err *err) {
    size_t pos = 0;
    if (reader_fill(r, CORPUS_ITEM_BYTES, err))
        return -1;
    if (r->len == r->pos)
        return 0;
    while (pos < CORPUS_ITEM_BYTES) {
        const uint8_t *s = r->buf + r->pos, *nl = memchr(s + pos, '\n', r->len - r->pos - pos);
        if (nl) {
            pos = (size_t)(nl - s) + 1;
            continue;
        }
        if (r->eof) {
            pos = r->len - r->pos;
            break;
        }
        if (r->len - r->pos - pos >= CORPUS_MAX_ITEM_BYTES)
            return err_set(err, "%s: a line longer than %u MiB after line %" PRId64,
                           r->files->files[r->fi].path, CORPUS_MAX_ITEM_BYTES >> 20, r->line);
        if (reader_fill(r, r->len - r->pos + CORPUS_ITEM_BYTES, err))
            return -1;
    }
    return reader_emit(r, it, pos, pos, err) ? -1 : 1;
}

static void reader_next_file(Reader *r) {
    r->done_bytes += corpus_stream_file_bytes(r->s);
    corpus_stream_close(r->s);
    r->s = NULL;
    r->fi++;
}

/* The next item (pieces of one file, CORPUS_ITEM_BYTES or the rest of the file): 1, or 0 when
 * every file is read, -1 on an error. */
static int reader_next(Reader *r, Item *it, Err *err) {
    it->len = 0;
    it->n_pieces = 0;
    while (r->fi < r->files->n) {
        if (!r->s && reader_open(r, err))
            return -1;
        int jsonl = r->files->files[r->fi].format == CORPUS_FORMAT_JSONL;
        int got = jsonl ? next_jsonl(r, it, err) : next_text(r, it, err);
        if (got < 0)
            return -1;
        if (got == 0) { /* this file is done */
            reader_next_file(r);
            if (it->n_pieces)
                return 1;
            continue;
        }
        if (it->len >= CORPUS_ITEM_BYTES || (jsonl && it->n_pieces))
            return 1;
    }
    return it->n_pieces ? 1 : 0;
}

/* Resume: opens file fi and reads past its first offset bytes. */
static int reader_seek(Reader *r, int fi, int64_t offset, int64_t line, int doc_start, Err *err) {
    for (int i = 0; i < fi; i++)
        r->done_bytes += r->files->files[i].bytes;
    r->fi = fi;
    if (fi >= r->files->n)
        return 0;
    if (reader_open(r, err))
        return -1;
    while (r->offset < offset) {
        if (reader_fill(r, CORPUS_ITEM_BYTES, err))
            return -1;
        size_t n = r->len - r->pos;
        size_t k = (int64_t)n < offset - r->offset ? n : (size_t)(offset - r->offset);
        if (k == 0)
            return err_set(err,
                           "%s: shorter than when the interrupted run read it (%" PRId64
                           " bytes expected)",
                           r->files->files[fi].path, offset);
        r->pos += k;
        r->offset += (int64_t)k;
    }
    r->line = line;
    r->doc_start = doc_start;
    return 0;
}

/* ---------- shards and the resume state ---------- */

int corpus_shard_path(char *buf, size_t len, const char *dir, const char *name, int is_val,
                      int64_t index) {
    int n = snprintf(buf, len, "%s/%s_%s_%06" PRId64 ".bin", dir, name, is_val ? "val" : "train",
                     index);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Where the next shard starts: at token skip of the item that begins at (file, offset). */
typedef struct PrepState {
    uint64_t fingerprint;
    int64_t shards, tokens, docs, bad;
    int64_t file, offset, line, doc_start, skip;
    int64_t complete;
} PrepState;

typedef struct Writer {
    const CorpusPrepareOptions *o;
    char state_path[4096];
    ShardWriter *w;
    char shard_path[4096];
    int64_t shard_end; /* token count at which the open shard is full */
    int64_t skip;      /* ids of the next item already written (resume) */
    PrepState st;      /* tokens, docs, bad: of the items written so far */
} Writer;

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* What must match for a resume: the options that shape the ids and the files as they were. */
static uint64_t prep_fingerprint(const CorpusPrepareOptions *o, const CorpusList *l) {
    uint64_t h = 0xcbf29ce484222325ull;
    const char *sep = o->doc_sep ? o->doc_sep : "";
    int64_t nums[4] = {o->shard_tokens, o->val_tokens, tokenizer_vocab_size(o->tok),
                       tokenizer_eot(o->tok)};
    h = fnv1a(h, o->name, strlen(o->name) + 1);
    h = fnv1a(h, o->text_key, strlen(o->text_key) + 1);
    h = fnv1a(h, sep, strlen(sep) + 1);
    h = fnv1a(h, nums, sizeof nums);
    for (int i = 0; i < l->n; i++) {
        h = fnv1a(h, l->files[i].path, strlen(l->files[i].path) + 1);
        h = fnv1a(h, &l->files[i].bytes, sizeof l->files[i].bytes);
        h = fnv1a(h, &l->files[i].mtime, sizeof l->files[i].mtime);
    }
    return h;
}

static int state_save(const Writer *wr, Err *err) {
    char tmp[4100];
    snprintf(tmp, sizeof tmp, "%s.tmp", wr->state_path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return err_set(err, "%s: cannot create: %s", tmp, strerror(errno));
    const PrepState *s = &wr->st;
    fprintf(f,
            "arenagpt prepare state %d\nfingerprint %016" PRIx64 "\nshards %" PRId64
            "\ntokens %" PRId64 "\ndocs %" PRId64 "\nbad %" PRId64 "\nfile %" PRId64
            "\noffset %" PRId64 "\nline %" PRId64 "\ndoc_start %" PRId64 "\nskip %" PRId64
            "\ncomplete %" PRId64 "\n",
            STATE_VERSION, s->fingerprint, s->shards, s->tokens, s->docs, s->bad, s->file,
            s->offset, s->line, s->doc_start, s->skip, s->complete);
    int bad = fflush(f) || fsync(fileno(f));
    if (fclose(f) || bad) {
        remove(tmp);
        return err_set(err, "%s: write failed: %s", tmp, strerror(errno));
    }
    if (rename(tmp, wr->state_path)) {
        remove(tmp);
        return err_set(err, "%s: cannot rename into place: %s", wr->state_path, strerror(errno));
    }
    return 0;
}

static int state_load(const char *path, PrepState *s, Err *err) {
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(err, "%s: cannot open: %s", path, strerror(errno));
    int version = 0;
    int n = fscanf(f,
                   "arenagpt prepare state %d fingerprint %" SCNx64 " shards %" SCNd64
                   " tokens %" SCNd64 " docs %" SCNd64 " bad %" SCNd64 " file %" SCNd64
                   " offset %" SCNd64 " line %" SCNd64 " doc_start %" SCNd64 " skip %" SCNd64
                   " complete %" SCNd64,
                   &version, &s->fingerprint, &s->shards, &s->tokens, &s->docs, &s->bad, &s->file,
                   &s->offset, &s->line, &s->doc_start, &s->skip, &s->complete);
    fclose(f);
    if (n != 12 || version != STATE_VERSION || s->shards < 0 || s->file < 0 || s->offset < 0 ||
        s->skip < 0 || s->tokens < 0)
        return err_set(err, "%s: not a prepare state file of version %d (damaged?)", path,
                       STATE_VERSION);
    return 0;
}

static int writer_open_shard(Writer *wr, Err *err) {
    const CorpusPrepareOptions *o = wr->o;
    int64_t t = wr->st.tokens;
    int is_val = t < o->val_tokens;
    wr->shard_end = t + o->shard_tokens;
    if (is_val && wr->shard_end > o->val_tokens)
        wr->shard_end = o->val_tokens;
    if (corpus_shard_path(wr->shard_path, sizeof wr->shard_path, o->out_dir, o->name, is_val,
                          wr->st.shards))
        return err_set(err, "%s: path too long", o->out_dir);
    wr->w = shard_writer_open(wr->shard_path, 0, err);
    return wr->w ? 0 : -1;
}

/* Closes the open shard and records where the next one starts (inside item it at ids used). */
static int writer_close_shard(Writer *wr, const Item *it, int64_t used, int complete, Err *err) {
    int rc = shard_writer_close(wr->w, err);
    wr->w = NULL;
    if (rc)
        return -1;
    wr->st.shards++;
    if (it) {
        wr->st.file = it->file;
        wr->st.offset = it->offset;
        wr->st.line = it->line;
        wr->st.doc_start = it->doc_start;
        wr->st.skip = used;
    }
    wr->st.complete = complete;
    return state_save(wr, err);
}

/* Writes an item's ids into the shards, closing each that fills. */
static int writer_item(Writer *wr, const Item *it, Err *err) {
    int64_t n = (int64_t)it->ids.n - wr->skip;
    const int32_t *ids = n > 0 ? it->ids.ids + wr->skip : NULL;
    if (n < 0)
        return err_set(err,
                       "resume: the item at byte %" PRId64 " has %zu ids, fewer than the %" PRId64
                       " the state says were written (the input changed?)",
                       it->offset, it->ids.n, wr->skip);
    wr->skip = 0;
    while (n > 0) {
        if (!wr->w && writer_open_shard(wr, err))
            return -1;
        int64_t k = wr->shard_end - wr->st.tokens;
        if (k > n)
            k = n;
        if (shard_writer_append(wr->w, ids, (size_t)k, err))
            return -1;
        wr->st.tokens += k;
        ids += k;
        n -= k;
        if (wr->st.tokens == wr->shard_end &&
            writer_close_shard(wr, it, (int64_t)it->ids.n - n, 0, err))
            return -1;
    }
    return 0;
}

/* ---------- the run ---------- */

typedef struct Run {
    Pipeline pl;
    Reader rd;
    Writer wr;
    WorkPool *pool;
    Item *items; /* (n_items) a ring: items[head] is the oldest in flight */
    int n_items, head, in_flight;
    CorpusList files;
    CorpusPrepareStats *st;
} Run;

/* Fresh run: refuses shards or a state already there. Resume: loads the state and puts the
 * reader and writer where it says. */
static int run_start_point(Run *r, Err *err) {
    const CorpusPrepareOptions *o = r->wr.o;
    char first[4096];
    corpus_shard_path(first, sizeof first, o->out_dir, o->name, 1, 0);
    int have_state = access(r->wr.state_path, F_OK) == 0;
    r->wr.st.fingerprint = prep_fingerprint(o, &r->files);
    if (!o->resume || !have_state) {
        if (!o->resume && (have_state || access(first, F_OK) == 0))
            return err_set(err,
                           "%s: shards named '%s' are already there (%s); --resume continues "
                           "that run, or remove them or choose another --out or --name",
                           o->out_dir, o->name, have_state ? r->wr.state_path : first);
        return 0;
    }
    PrepState ps;
    if (state_load(r->wr.state_path, &ps, err))
        return -1;
    if (ps.fingerprint != r->wr.st.fingerprint)
        return err_set(err,
                       "%s: the interrupted run had other inputs or options (files, their sizes "
                       "or times, name, text_key, doc_sep, shard_tokens, val_tokens): --resume "
                       "needs the same ones",
                       r->wr.state_path);
    if (ps.file > r->files.n)
        return err_set(err, "%s: file %" PRId64 " of %d", r->wr.state_path, ps.file, r->files.n);
    r->wr.st = ps;
    r->wr.skip = ps.skip;
    r->st->resumed_shards = ps.shards;
    r->st->resumed_tokens = ps.tokens;
    if (ps.complete)
        return 0;
    return reader_seek(&r->rd, (int)ps.file, ps.offset, ps.line, (int)ps.doc_start, err);
}

static int run_setup(Run *r, const CorpusPrepareOptions *o, CorpusPrepareStats *st, Err *err) {
    r->st = st;
    if (corpus_list(o->inputs, &r->files, err))
        return -1;
    st->total_bytes = r->files.total_bytes;
    st->n_files = r->files.n;
    r->pl.o = o;
    r->pl.files = &r->files;
    r->rd.files = &r->files;
    r->rd.sep = o->doc_sep;
    r->rd.sep_len = o->doc_sep ? strlen(o->doc_sep) : 0;
    r->wr.o = o;
    if ((size_t)snprintf(r->wr.state_path, sizeof r->wr.state_path, "%s/%s_prepare.state",
                         o->out_dir, o->name) >= sizeof r->wr.state_path)
        return err_set(err, "%s: path too long", o->out_dir);
    if (run_start_point(r, err))
        return -1;
    r->pl.toks = calloc((size_t)o->threads, sizeof *r->pl.toks);
    r->n_items = 2 * o->threads + 2;
    r->items = calloc((size_t)r->n_items, sizeof *r->items);
    if (!r->pl.toks || !r->items)
        return err_set(err, "out of memory");
    for (int i = 0; i < o->threads; i++)
        if (!(r->pl.toks[i] = tokenizer_clone(o->tok, err)))
            return -1;
    r->pool = workpool_start(o->threads, r->n_items, item_encode, &r->pl, err);
    return r->pool ? 0 : -1;
}

static void run_free(Run *r) {
    workpool_free(r->pool); /* waits for the items in flight */
    if (r->wr.w)
        shard_writer_abort(r->wr.w);
    for (int i = 0; r->items && i < r->n_items; i++) {
        free(r->items[i].text);
        free(r->items[i].pieces);
        token_buf_free(&r->items[i].ids);
    }
    free(r->items);
    for (int i = 0; r->pl.toks && i < r->wr.o->threads; i++)
        tokenizer_free(r->pl.toks[i]);
    free(r->pl.toks);
    corpus_stream_close(r->rd.s);
    free(r->rd.buf);
    corpus_list_free(&r->files);
}

/* The oldest item in flight: waits for it and writes it. */
static int run_write_oldest(Run *r, Err *err) {
    Item *it = &r->items[r->head];
    workpool_wait(r->pool, &it->done);
    r->head = (r->head + 1) % r->n_items;
    r->in_flight--;
    const char *path = r->files.files[it->file].path;
    if (it->rc) {
        *err = it->err;
        return err_prefix(err, "%s", path);
    }
    if (it->n_bad && r->wr.o->strict)
        return err_set(err,
                       "%s:%s (--strict: a bad line stops the run; without it, bad lines "
                       "are skipped and counted)",
                       path, it->bad);
    if (it->n_bad && !r->st->first_bad[0])
        snprintf(r->st->first_bad, sizeof r->st->first_bad, "%s:%s", path, it->bad);
    if (writer_item(&r->wr, it, err))
        return -1;
    r->wr.st.docs += it->n_docs;
    r->wr.st.bad += it->n_bad;
    r->st->file_bytes = it->file_bytes;
    r->st->text_bytes += it->consumed;
    r->st->files_done = it->file;
    return 0;
}

static void run_stats(Run *r) {
    r->st->docs = r->wr.st.docs;
    r->st->bad_lines = r->wr.st.bad;
    r->st->tokens = r->wr.st.tokens;
    r->st->shards = r->wr.st.shards;
}

/* Reads, encodes and writes until the end; 1 when stopped. */
static int run_loop(Run *r, Err *err) {
    const CorpusPrepareOptions *o = r->wr.o;
    int eof = r->wr.st.complete;
    for (;;) {
        while (!eof && r->in_flight < r->n_items) {
            Item *it = &r->items[(r->head + r->in_flight) % r->n_items];
            int got = reader_next(&r->rd, it, err);
            if (got < 0)
                return -1;
            if (got == 0) {
                eof = 1;
                break;
            }
            workpool_submit(r->pool, it, &it->done);
            r->in_flight++;
        }
        if (r->in_flight == 0)
            break;
        if (run_write_oldest(r, err))
            return -1;
        run_stats(r);
        if (o->progress)
            o->progress(o->progress_ctx, r->st);
        if (o->stop && *o->stop)
            return 1;
    }
    return 0;
}

int corpus_prepare_run(const CorpusPrepareOptions *o, CorpusPrepareStats *st, Err *err) {
    memset(st, 0, sizeof *st);
    Run r;
    memset(&r, 0, sizeof r);
    int rc = run_setup(&r, o, st, err);
    int was_complete = r.wr.st.complete;
    if (!rc)
        rc = run_loop(&r, err);
    if (!rc && !was_complete) {
        if (r.wr.w)
            rc = writer_close_shard(&r.wr, NULL, 0, 1, err);
        else
            rc = (r.wr.st.complete = 1, state_save(&r.wr, err));
    }
    run_stats(&r);
    st->files_done = st->n_files;
    if (!rc && st->tokens == 0)
        rc = err_set(err, "%s: no documents (empty input)", o->inputs);
    else if (!rc && st->tokens <= o->val_tokens)
        rc = err_set(err,
                     "%s: %" PRId64 " tokens, all in the validation split (val_tokens = %" PRId64
                     "): no train shard; set --val_tokens lower",
                     o->inputs, st->tokens, o->val_tokens);
    run_free(&r);
    return rc;
}
