/* init_from.c: Hugging Face checkpoints and nanoGPT's pretrained names as init_from (see
 * init_from.h): the cache lookup, the run's shape from the weights, loading. */
#include "init_from.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../model/hf_gpt2.h"
#include "../model/model_io.h"

static const char *const PRETRAINED[] = {"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", NULL};

static int is_pretrained(const char *s) {
    for (int i = 0; PRETRAINED[i]; i++)
        if (strcmp(s, PRETRAINED[i]) == 0)
            return 1;
    return 0;
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* The hub cache roots, in the order huggingface_hub honours them ("" for unset ones). */
static void cache_roots(char roots[4][2048]) {
    const char *hub = getenv("HF_HUB_CACHE"), *home = getenv("HF_HOME");
    const char *xdg = getenv("XDG_CACHE_HOME"), *user = getenv("HOME");
    snprintf(roots[0], 2048, "%s", hub && *hub ? hub : "");
    snprintf(roots[1], 2048, "%s%s", home && *home ? home : "", home && *home ? "/hub" : "");
    snprintf(roots[2], 2048, "%s%s", xdg && *xdg ? xdg : "", xdg && *xdg ? "/huggingface/hub" : "");
    snprintf(roots[3], 2048, "%s%s", user && *user ? user : "",
             user && *user ? "/.cache/huggingface/hub" : "");
}

/* A snapshot of repo_dir holding weights: the one refs/main names, else the first (by name). */
static int snapshot_find(const char *repo_dir, char *out, size_t len) {
    char p[4400], rev[256] = "";
    HfGpt2Info info;
    Err e;
    snprintf(p, sizeof p, "%s/refs/main", repo_dir);
    FILE *f = fopen(p, "r");
    if (f) {
        if (!fgets(rev, sizeof rev, f))
            rev[0] = 0;
        fclose(f);
        rev[strcspn(rev, "\r\n")] = 0;
        snprintf(out, len, "%s/snapshots/%s", repo_dir, rev);
        if (rev[0] && !strchr(rev, '/') && hf_gpt2_locate(out, &info, &e) == 1)
            return 1;
    }
    snprintf(p, sizeof p, "%s/snapshots", repo_dir);
    struct dirent **names = NULL;
    int n = scandir(p, &names, NULL, alphasort), found = 0;
    for (int i = 0; i < n; i++) {
        if (!found && names[i]->d_name[0] != '.') {
            snprintf(out, len, "%s/%s", p, names[i]->d_name);
            found = hf_gpt2_locate(out, &info, &e) == 1;
        }
        free(names[i]);
    }
    free(names);
    return found;
}

void init_from_hf_cache_find(const char *name, char *dir, size_t len) {
    char roots[4][2048], repo[4096];
    cache_roots(roots);
    dir[0] = 0;
    for (int r = 0; r < 4; r++) {
        if (!roots[r][0])
            continue;
        /* "gpt2" as nanoGPT asks for it, and the repository it now redirects to */
        for (int k = 0; k < 2; k++) {
            snprintf(repo, sizeof repo,
                     k ? "%.2000s/models--openai-community--%.100s" : "%.2000s/models--%.100s",
                     roots[r], name);
            if (is_dir(repo) && snapshot_find(repo, dir, len))
                return;
        }
    }
    dir[0] = 0;
}

int init_from_hf_resolve(const char *from, char *path, size_t len, int *exit_code, Err *err) {
    *exit_code = 0;
    if (is_pretrained(from)) {
        init_from_hf_cache_find(from, path, len);
        if (path[0])
            return 1;
        char roots[4][2048], where[8300] = "";
        cache_roots(roots);
        for (int r = 0; r < 4; r++)
            if (roots[r][0]) {
                size_t n = strlen(where);
                snprintf(where + n, sizeof where - n, "%s%s", n ? ", " : "", roots[r]);
            }
        err_set(err,
                "init_from = '%s': not in the local Hugging Face cache (looked for "
                "models--%s/snapshots/*/ with model.safetensors in %s; weights are never "
                "downloaded here). Fetch them with:\n  hf download %s config.json "
                "model.safetensors vocab.json merges.txt\n(huggingface_hub >= 0.34; older "
                "versions: huggingface-cli download %s config.json model.safetensors vocab.json "
                "merges.txt), or pass a local file or folder: --init_from=PATH",
                from, from, where[0] ? where : "(no cache directory: HOME is unset)", from, from);
        *exit_code = CONFIG_EXIT_USAGE;
        return 1;
    }
    HfGpt2Info info;
    int r = hf_gpt2_locate(from, &info, err);
    if (r < 0) {
        *exit_code = 1;
        return 1;
    }
    if (r == 1)
        snprintf(path, len, "%s", from);
    return r;
}

/* A shape key set in the config or on the command line must equal what the weights say. */
static int key_agrees(const RunSetup *rs, const char *key, int64_t set, int64_t have,
                      const char *what, Err *err) {
    const TrainConfig *c = &rs->cfg;
    if (!config_is_set(c, key) || set == have)
        return 0;
    return err_set(err,
                   "%s = %lld (%s) contradicts the weights: %s has %s %lld (leave %s unset: "
                   "the shape comes from the weights)",
                   key, (long long)set, c->config_file[0] ? c->config_file : "the command line",
                   rs->model_path, what, (long long)have, key);
}

/* The shape keys set in the config file or on the command line (n_layer, n_head, n_embd,
 * vocab_size: V or the padded Vp) against the weights'; -1 with err naming both on the first
 * that differs (n_head 0: not known, not checked). */
static int keys_agree(const RunSetup *rs, int64_t n_layer, int64_t n_head, int64_t n_embd,
                      int64_t V, int64_t Vp, Err *err) {
    const TrainConfig *c = &rs->cfg;
    if (key_agrees(rs, "n_layer", c->n_layer, n_layer, "n_layer", err) ||
        key_agrees(rs, "n_embd", c->n_embd, n_embd, "n_embd", err) ||
        (n_head && key_agrees(rs, "n_head", c->n_head, n_head, "n_head", err)) ||
        (c->vocab_size != V && key_agrees(rs, "vocab_size", c->vocab_size, Vp, "vocab_size", err)))
        return -1;
    return 0;
}

/* bias, gelu and block_size against the weights; the user's where they may choose. */
static int hf_choices(RunSetup *rs, const HfGpt2Info *info, Err *err) {
    TrainConfig *c = &rs->cfg;
    if (config_is_set(c, "bias") && c->bias && !info->bias)
        return err_set(err, "bias = True, but %s has no bias tensors (use --bias=False)",
                       rs->model_path);
    if (!config_is_set(c, "bias"))
        c->bias = info->bias;
    GptGelu g = info->gelu;
    if (info->gelu_known && config_is_set(c, "gelu") && c->gelu != g)
        return err_set(err, "gelu = %s contradicts %s: its activation_function means gelu = %s",
                       GPT_GELU_NAMES[c->gelu], info->config_path, GPT_GELU_NAMES[g]);
    if (info->gelu_known || !config_is_set(c, "gelu"))
        c->gelu = g;
    if (!config_is_set(c, "block_size"))
        c->block_size = info->n_positions;
    if (c->block_size > info->n_positions)
        return err_set(err,
                       "block_size %lld exceeds the model's n_positions %lld (%s): use "
                       "--block_size=%lld or less (smaller crops the position table)",
                       (long long)c->block_size, (long long)info->n_positions, rs->model_path,
                       (long long)info->n_positions);
    return 0;
}

int init_from_hf_shape(RunSetup *rs, int *rc, Err *err) {
    HfGpt2Info info;
    Err e;
    if (hf_gpt2_locate(rs->model_path, &info, &e) != 1)
        return 0;
    *rc = 1;
    if (hf_gpt2_probe(rs->model_path, &info, err) != 0)
        return 1;
    TrainConfig *c = &rs->cfg;
    int64_t Vp = hf_gpt2_padded_vocab(info.vocab_size);
    *rc = CONFIG_EXIT_USAGE;
    if (keys_agree(rs, info.n_layer, info.n_head, info.n_embd, info.vocab_size, Vp, err))
        return 1;
    if (!info.n_head && !config_is_set(c, "n_head")) {
        err_set(err,
                "%s: n_head is not in the weights and there is no config.json beside them: "
                "put the model's config.json there (or give --n_head for train and mem)",
                rs->model_path);
        return 1;
    }
    if (hf_choices(rs, &info, err) != 0)
        return 1;
    c->n_layer = info.n_layer;
    c->n_head = info.n_head ? info.n_head : c->n_head;
    c->n_embd = info.n_embd;
    c->vocab_size = Vp;
    run_gpt_config(c, &rs->model);
    rs->model.vocab_size = info.vocab_size;
    rs->model.padded_vocab_size = Vp;
    *rc = 0;
    return 1;
}

int init_from_read(Gpt *g, const char *path, Err *err) {
    HfGpt2Info info;
    int r = hf_gpt2_locate(path, &info, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return model_file_read(g, path, err);
    if (hf_gpt2_probe(path, &info, err) != 0)
        return -1;
    return hf_gpt2_load(g, &info, err);
}

Tokenizer *init_from_tokenizer(const RunSetup *rs, Err *err) {
    struct stat sb;
    HfGpt2Info info;
    Err e;
    if (rs->cfg.tokenizer_file[0] || stat(rs->tokenizer_path, &sb) == 0 ||
        hf_gpt2_locate(rs->model_path, &info, &e) != 1)
        return tokenizer_load(rs->tokenizer_path, err);
    char enc[4200], merges[4200];
    const char *slash = strrchr(info.weights_path, '/');
    int dir = slash ? (int)(slash - info.weights_path) : 1;
    const char *base = slash ? info.weights_path : ".";
    snprintf(enc, sizeof enc, "%.*s/vocab.json", dir, base);
    snprintf(merges, sizeof merges, "%.*s/merges.txt", dir, base);
    if (stat(enc, &sb) != 0 || stat(merges, &sb) != 0)
        return tokenizer_load(rs->tokenizer_path, err);
    Tokenizer *t = tokenizer_gpt2_from_files(enc, merges, err);
    if (t && tokenizer_vocab_size(t) > rs->model.vocab_size) {
        err_set(err,
                "the tokenizer %s has %lld tokens, more than the model's vocabulary "
                "(vocab_size %lld in %s)",
                enc, (long long)tokenizer_vocab_size(t), (long long)rs->model.vocab_size,
                rs->model_path);
        tokenizer_free(t);
        return NULL;
    }
    return t;
}
