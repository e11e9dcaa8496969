/* fuzz_jsonl.c: libFuzzer target for the JSON Lines reader: jsonl_doc_parse (data/jsonl.h) on
 * every line of the input, and, for one input in 16 (byte 0), the whole sharded prepare
 * (data/corpus_prepare.h) on the input as a .jsonl file with the real GPT-2 vocabulary
 * ($ARENAGPT_VOCAB_DIR or .cache/gpt2). Checks: a refused line says why; an accepted one's
 * text has no NUL inside text_len and parses back to the same text after cJSON prints it;
 * prepare either refuses with a reason or writes shards whose ids are eot + encode(text) of
 * each accepted non-empty line in order, with the bad lines counted. Byte 0 also picks the key
 * ("text" or "t"); the rest is the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../../data/corpus_prepare.h"
#include "../../data/jsonl.h"
#include "../../data/shard.h"
#include "../../data/tokenizer.h"
#include "fuzz_common.h"

static Tokenizer *gpt2;

static void free_gpt2(void) { tokenizer_free(gpt2); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *dir = getenv("ARENAGPT_VOCAB_DIR");
    Err err;
    gpt2 = tokenizer_gpt2_from_vocab(dir ? dir : ".cache/gpt2", &err);
    if (!gpt2) {
        fprintf(stderr, "fuzz_jsonl: %s (run scripts/fetch_vocab.sh, or set ARENAGPT_VOCAB_DIR)\n",
                err.msg);
        exit(1);
    }
    atexit(free_gpt2);
    return 0;
}

/* Parses one line; appends eot + ids of an accepted non-empty text to want. 1 = bad line. */
static int check_line(const char *line, size_t len, const char *key, TokenBuf *want) {
    JsonlDoc d;
    Err err;
    err.msg[0] = 0;
    if (jsonl_doc_parse(&d, line, len, key, &err)) {
        if (!err.msg[0])
            abort(); /* a refusal says why */
        return 1;
    }
    if (strlen(d.text) != d.text_len)
        abort();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, key, d.text);
    char *printed = cJSON_PrintUnformatted(o);
    JsonlDoc back;
    if (!printed || jsonl_doc_parse(&back, printed, strlen(printed), key, &err) ||
        back.text_len != d.text_len || memcmp(back.text, d.text, d.text_len))
        abort(); /* printed and parsed again: the same text */
    jsonl_doc_free(&back);
    free(printed);
    cJSON_Delete(o);
    if (d.text_len) {
        int32_t eot = tokenizer_eot(gpt2), *ids;
        size_t n;
        if (token_buf_append(want, &eot, 1) ||
            tokenizer_encode(gpt2, d.text, d.text_len, &ids, &n, &err))
            abort();
        token_buf_append(want, ids, n);
        free(ids);
    }
    jsonl_doc_free(&d);
    return 0;
}

/* The ids of shards 0 and 1 (val: 1 token, train: the rest) in out. */
static void read_back(const char *out, TokenBuf *got) {
    for (int k = 0; k < 2; k++) {
        char p[4200];
        corpus_shard_path(p, sizeof p, out, "f", k == 0, k);
        FILE *f = fopen(p, "rb");
        if (!f)
            abort(); /* a run that succeeded wrote both */
        int32_t h[256];
        uint16_t t;
        if (fread(h, sizeof h, 1, f) != 1)
            abort();
        for (int32_t i = 0; i < h[2]; i++) {
            int32_t id;
            if (fread(&t, 2, 1, f) != 1)
                abort();
            id = t;
            token_buf_append(got, &id, 1);
        }
        fclose(f);
        unlink(p);
    }
}

static void run_prepare(const uint8_t *data, size_t n, const char *key, const TokenBuf *want,
                        int64_t n_bad) {
    char in[4200], out[4200], state[4300];
    snprintf(in, sizeof in, "%s/in", fuzz_dir());
    mkdir(in, 0700); /* once; it exists after */
    fuzz_dir_file(0, "in/x.jsonl", data, n);
    snprintf(out, sizeof out, "%s", fuzz_dir());
    snprintf(state, sizeof state, "%s/f_prepare.state", out);
    unlink(state);
    CorpusPrepareOptions o = {.inputs = in,
                              .out_dir = out,
                              .name = "f",
                              .text_key = key,
                              .shard_tokens = 1 << 20,
                              .val_tokens = 1,
                              .threads = 1,
                              .tok = gpt2};
    CorpusPrepareStats st;
    Err err;
    err.msg[0] = 0;
    int rc = corpus_prepare_run(&o, &st, &err);
    if ((rc == 0) != (want->n > 1) || (rc != 0 && !err.msg[0]))
        abort(); /* refused exactly when there is no train token, with a reason */
    if (rc == 0) {
        TokenBuf got = {0};
        read_back(out, &got);
        if (got.n != want->n || memcmp(got.ids, want->ids, got.n * sizeof *got.ids) ||
            st.bad_lines != n_bad)
            abort();
        token_buf_free(&got);
    }
    unlink(state);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzInput in = {data, size};
    uint8_t b0 = fuzz_u8(&in);
    const char *key = (b0 & 0x10) ? "t" : "text";
    TokenBuf want = {0};
    int64_t n_bad = 0;
    const char *p = (const char *)in.p, *end = p + in.n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *q = p;
        while (q < le && (*q == ' ' || (*q >= '\t' && *q <= '\r')))
            q++;
        if (q < le) /* blank lines are skipped, not parsed */
            n_bad += check_line(p, (size_t)(le - p), key, &want);
        p = nl ? nl + 1 : end;
    }
    if ((b0 & 15) == 0)
        run_prepare(in.p, in.n, key, &want, n_bad);
    token_buf_free(&want);
    return 0;
}
