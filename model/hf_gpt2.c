/* hf_gpt2.c: GPT-2's Hugging Face names and layouts onto our parameters (see hf_gpt2.h):
 * finding the files, the shape from config.json and the tensors, loading tensor by tensor
 * through host f32 staging (the checkpoint stays mapped, never copied whole), and export. */
#define _GNU_SOURCE
#include "hf_gpt2.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "half.h"
#include "safetensors.h"

#define HF_LN_EPS 1e-5 /* the LayerNorm epsilon of our kernels (and GPT-2's) */
#define HF_CONFIG_MAX_BYTES (1 << 20)

/* Our parameter kinds with their Hugging Face names (after "h.<l>." for per-layer kinds). */
static const struct {
    GptParamKind kind;
    const char *name;
    int conv1d; /* stored (IC, OC): transposed */
} HF_NAMES[GPT_PARAM_KIND_COUNT] = {
    {GPT_PARAM_WTE, "wte.weight", 0},
    {GPT_PARAM_WPE, "wpe.weight", 0},
    {GPT_PARAM_LN1W, "ln_1.weight", 0},
    {GPT_PARAM_LN1B, "ln_1.bias", 0},
    {GPT_PARAM_QKVW, "attn.c_attn.weight", 1},
    {GPT_PARAM_QKVB, "attn.c_attn.bias", 0},
    {GPT_PARAM_ATTPROJW, "attn.c_proj.weight", 1},
    {GPT_PARAM_ATTPROJB, "attn.c_proj.bias", 0},
    {GPT_PARAM_LN2W, "ln_2.weight", 0},
    {GPT_PARAM_LN2B, "ln_2.bias", 0},
    {GPT_PARAM_FCW, "mlp.c_fc.weight", 1},
    {GPT_PARAM_FCB, "mlp.c_fc.bias", 0},
    {GPT_PARAM_FCPROJW, "mlp.c_proj.weight", 1},
    {GPT_PARAM_FCPROJB, "mlp.c_proj.bias", 0},
    {GPT_PARAM_LNFW, "ln_f.weight", 0},
    {GPT_PARAM_LNFB, "ln_f.bias", 0},
};

static int is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int hf_gpt2_locate(const char *path, HfGpt2Info *info, Err *err) {
    memset(info, 0, sizeof *info);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return 0;
    char p[4096];
    if (S_ISDIR(sb.st_mode)) {
        snprintf(p, sizeof p, "%s/config.json", path);
        if (is_file(p))
            snprintf(info->config_path, sizeof info->config_path, "%s", p);
        snprintf(p, sizeof p, "%s/model.safetensors", path);
        if (!is_file(p)) {
            snprintf(p, sizeof p, "%s/model.safetensors.index.json", path);
            info->sharded = is_file(p);
            if (!info->sharded && !info->config_path[0])
                return 0;
            if (!info->sharded)
                return err_set(err,
                               "%s: a Hugging Face model folder (config.json) without "
                               "model.safetensors or model.safetensors.index.json (only "
                               "safetensors weights are read, not pytorch_model.bin)",
                               path);
        }
        snprintf(info->weights_path, sizeof info->weights_path, "%s", p);
        return 1;
    }
    info->sharded = ends_with(path, ".safetensors.index.json");
    if (!info->sharded && !ends_with(path, ".safetensors"))
        return 0;
    snprintf(info->weights_path, sizeof info->weights_path, "%s", path);
    const char *slash = strrchr(path, '/');
    snprintf(p, sizeof p, "%.*sconfig.json", slash ? (int)(slash - path + 1) : 0, path);
    if (is_file(p))
        snprintf(info->config_path, sizeof info->config_path, "%s", p);
    return 1;
}

static int hf_open(Safetensors *st, const HfGpt2Info *info, Err *err) {
    return info->sharded ? safetensors_open_index(st, info->weights_path, err)
                         : safetensors_open(st, info->weights_path, err);
}

/* "transformer." when the file uses GPT2LMHeadModel's names, "" for GPT2Model's. */
static int hf_prefix(const Safetensors *st, const char **prefix, Err *err) {
    *prefix = "";
    if (safetensors_find(st, "transformer.wte.weight"))
        *prefix = "transformer.";
    else if (safetensors_find(st, "wte.weight"))
        *prefix = "";
    else
        return err_set(err,
                       "%s: no tensor 'wte.weight' or 'transformer.wte.weight': not a "
                       "GPT-2 checkpoint",
                       st->n_files ? st->files[0].path : "?");
    return 0;
}

/* prefix + "h.<layer>." (for layer >= 0) + name */
static void hf_name(char *buf, size_t len, const char *prefix, int layer, const char *name) {
    if (layer >= 0)
        snprintf(buf, len, "%sh.%d.%s", prefix, layer, name);
    else
        snprintf(buf, len, "%s%s", prefix, name);
}

static const SafeTensor *hf_find(const Safetensors *st, const char *prefix, int layer,
                                 const char *name) {
    char full[SAFETENSORS_NAME_LEN + 64];
    hf_name(full, sizeof full, prefix, layer, name);
    return safetensors_find(st, full);
}

/* The shape the tensors give: V, C (wte), n_positions (wpe), n_layer, bias. */
static int hf_shape_from_tensors(const Safetensors *st, HfGpt2Info *info, Err *err) {
    const char *prefix = "";
    if (hf_prefix(st, &prefix, err) != 0)
        return -1;
    const SafeTensor *wte = hf_find(st, prefix, -1, "wte.weight");
    const SafeTensor *wpe = hf_find(st, prefix, -1, "wpe.weight");
    if (wte->ndim != 2 || wte->shape[0] < 1 || wte->shape[1] < 1)
        return err_set(err, "%s: tensor '%s' must be 2-D (vocab_size, n_embd)",
                       safetensors_path(st, wte), wte->name);
    if (!wpe || wpe->ndim != 2 || wpe->shape[1] != wte->shape[1] || wpe->shape[0] < 1)
        return err_set(err, "%s: tensor '%swpe.weight' %s: expected (n_positions, %lld)",
                       safetensors_path(st, wte), prefix, wpe ? "has another shape" : "is missing",
                       (long long)wte->shape[1]);
    info->vocab_size = wte->shape[0];
    info->n_embd = wte->shape[1];
    info->n_positions = wpe->shape[0];
    info->n_layer = 0;
    while (info->n_layer < 100000 && hf_find(st, prefix, (int)info->n_layer, "ln_1.weight"))
        info->n_layer++;
    if (info->n_layer == 0)
        return err_set(err, "%s: missing tensor '%sh.0.ln_1.weight': no transformer blocks",
                       safetensors_path(st, wte), prefix);
    info->bias = hf_find(st, prefix, 0, "ln_1.bias") != NULL;
    return 0;
}

/* One config.json number that must equal what the tensors say (when given). */
static int hf_config_agrees(const cJSON *root, const char *key, int64_t have, const char *path,
                            const char *what, Err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)have)
        return err_set(err, "%s: %s = %g, but the weights have %s %lld", path, key,
                       cJSON_IsNumber(v) ? v->valuedouble : NAN, what, (long long)have);
    return 0;
}

static int hf_config_activation(const cJSON *root, HfGpt2Info *info, Err *err) {
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "activation_function");
    const char *a = cJSON_IsString(act) ? act->valuestring : "gelu_new"; /* GPT2Config's default */
    info->gelu_known = 1;
    if (strcmp(a, "gelu_new") == 0 || strcmp(a, "gelu_pytorch_tanh") == 0)
        info->gelu = GPT_GELU_TANH;
    else if (strcmp(a, "gelu") == 0)
        info->gelu = GPT_GELU_ERF;
    else
        return err_set(err,
                       "%s: activation_function = '%.40s' is not supported: expected gelu_new "
                       "(GPT-2's tanh GELU, gelu=tanh) or gelu (erf, gelu=erf)",
                       info->config_path, a);
    return 0;
}

/* config.json: n_head, the GELU and the epsilon; the sizes checked against the tensors. */
static int hf_read_config(HfGpt2Info *info, Err *err) {
    const char *path = info->config_path;
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(err, "%s: cannot open: %s", path, strerror(errno));
    char *text = malloc(HF_CONFIG_MAX_BYTES + 1);
    size_t n = text ? fread(text, 1, HF_CONFIG_MAX_BYTES + 1, f) : 0;
    fclose(f);
    cJSON *root = text && n <= HF_CONFIG_MAX_BYTES ? cJSON_ParseWithLength(text, n) : NULL;
    free(text);
    int rc = 0;
    const cJSON *nh = cJSON_GetObjectItemCaseSensitive(root, "n_head");
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_epsilon");
    if (!cJSON_IsObject(root))
        rc = err_set(err, "%s: not a JSON object (a Hugging Face config.json)", path);
    else if (!cJSON_IsNumber(nh) || nh->valuedouble < 1 || nh->valuedouble > 1024 ||
             nh->valuedouble != floor(nh->valuedouble))
        rc = err_set(err, "%s: n_head is missing or not a positive integer", path);
    else if (eps && (!cJSON_IsNumber(eps) || fabs(eps->valuedouble - HF_LN_EPS) > 1e-12))
        rc = err_set(err,
                     "%s: layer_norm_epsilon = %g is not supported: this program's LayerNorm "
                     "uses 1e-05 (GPT-2's)",
                     path, cJSON_IsNumber(eps) ? eps->valuedouble : NAN);
    else if (hf_config_agrees(root, "n_layer", info->n_layer, path, "n_layer", err) ||
             hf_config_agrees(root, "n_embd", info->n_embd, path, "n_embd", err) ||
             hf_config_agrees(root, "vocab_size", info->vocab_size, path, "wte rows", err) ||
             hf_config_agrees(root, "n_positions", info->n_positions, path, "wpe rows", err) ||
             hf_config_activation(root, info, err))
        rc = -1;
    if (rc == 0) {
        info->n_head = (int64_t)nh->valuedouble;
        if (info->n_embd % info->n_head != 0)
            rc = err_set(err, "%s: n_head = %lld does not divide n_embd = %lld", path,
                         (long long)info->n_head, (long long)info->n_embd);
    }
    cJSON_Delete(root);
    return rc;
}

int hf_gpt2_probe(const char *path, HfGpt2Info *info, Err *err) {
    int r = hf_gpt2_locate(path, info, err);
    if (r <= 0)
        return r < 0 ? -1 : err_set(err, "%s: not a safetensors file or model folder", path);
    Safetensors st;
    if (hf_open(&st, info, err) != 0)
        return -1;
    int rc = hf_shape_from_tensors(&st, info, err);
    safetensors_close(&st);
    if (rc == 0 && info->config_path[0])
        rc = hf_read_config(info, err);
    return rc;
}

int64_t hf_gpt2_padded_vocab(int64_t V) {
    return (V + HF_GPT2_VOCAB_MULTIPLE - 1) / HF_GPT2_VOCAB_MULTIPLE * HF_GPT2_VOCAB_MULTIPLE;
}

/* The Hugging Face shape of a kind: Conv1D weights (IC, OC); wte (V, C); wpe (n_pos, C). */
static int hf_expected_shape(const HfGpt2Info *info, GptParamKind kind, int64_t shape[2]) {
    int64_t C = info->n_embd;
    switch (kind) {
    case GPT_PARAM_WTE:
        return shape[0] = info->vocab_size, shape[1] = C, 2;
    case GPT_PARAM_WPE:
        return shape[0] = info->n_positions, shape[1] = C, 2;
    case GPT_PARAM_QKVW:
        return shape[0] = C, shape[1] = 3 * C, 2;
    case GPT_PARAM_ATTPROJW:
        return shape[0] = C, shape[1] = C, 2;
    case GPT_PARAM_FCW:
        return shape[0] = C, shape[1] = 4 * C, 2;
    case GPT_PARAM_FCPROJW:
        return shape[0] = 4 * C, shape[1] = C, 2;
    case GPT_PARAM_QKVB:
        return shape[0] = 3 * C, 1;
    case GPT_PARAM_FCB:
        return shape[0] = 4 * C, 1;
    default:
        return shape[0] = C, 1; /* LayerNorm weights and biases, the projections' biases */
    }
}

/* A present tensor must have a float dtype and the shape its name implies. */
static int hf_check_tensor(const Safetensors *st, const SafeTensor *t, const HfGpt2Info *info,
                           GptParamKind kind, Err *err) {
    int64_t want[2];
    int nd = hf_expected_shape(info, kind, want);
    if (t->dtype == SAFE_DTYPE_OTHER)
        return err_set(err, "%s: tensor '%s' has dtype %s: expected F32, F16 or BF16",
                       safetensors_path(st, t), t->name, t->dtype_name);
    if (t->ndim != nd || t->shape[0] != want[0] || (nd == 2 && t->shape[1] != want[1]))
        return err_set(err, "%s: tensor '%s' has shape (%lld%s%lld), expected (%lld%s%lld)",
                       safetensors_path(st, t), t->name, (long long)t->shape[0],
                       t->ndim > 1 ? ", " : "", t->ndim > 1 ? (long long)t->shape[1] : 0LL,
                       (long long)want[0], nd > 1 ? ", " : "", nd > 1 ? (long long)want[1] : 0LL);
    return 0;
}

/* Element i of a float tensor as f32 (for comparisons without a buffer). */
static float hf_value(const SafeTensor *t, uint64_t i) {
    const uint8_t *p = t->data;
    float f;
    if (t->dtype == SAFE_DTYPE_F32) {
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
    return t->dtype == SAFE_DTYPE_F16 ? half_f16_to_f32(h) : half_bf16_to_f32(h);
}

/* Every name must be GPT-2's: a parameter, a skipped mask buffer or the tied lm_head. */
static int hf_check_names(const Safetensors *st, const char *prefix, const HfGpt2Info *info,
                          Err *err) {
    size_t np = strlen(prefix);
    for (int i = 0; i < st->n_tensors; i++) {
        const char *name = st->tensors[i].name, *rest = name + np;
        int ok = strcmp(name, "lm_head.weight") == 0;
        if (!ok && strncmp(name, prefix, np) == 0) {
            int layer = -1, used = 0;
            if (sscanf(rest, "h.%d.%n", &layer, &used) == 1 && used > 0 && layer >= 0 &&
                layer < info->n_layer) {
                rest += used;
                ok = strcmp(rest, "attn.bias") == 0 || strcmp(rest, "attn.masked_bias") == 0;
                for (int k = 0; k < GPT_PARAM_KIND_COUNT && !ok; k++)
                    ok = gpt_param_is_per_layer(HF_NAMES[k].kind) &&
                         strcmp(rest, HF_NAMES[k].name) == 0;
            } else {
                for (int k = 0; k < GPT_PARAM_KIND_COUNT && !ok; k++)
                    ok = !gpt_param_is_per_layer(HF_NAMES[k].kind) &&
                         strcmp(rest, HF_NAMES[k].name) == 0;
            }
        }
        if (!ok)
            return err_set(err,
                           "%s: tensor '%s' is not a parameter of a %lld-layer GPT-2 "
                           "(expected GPT2LMHeadModel's names, with or without 'transformer.')",
                           safetensors_path(st, &st->tensors[i]), name, (long long)info->n_layer);
    }
    return 0;
}

/* lm_head.weight, when present, must be wte.weight (the head is tied to the embedding). */
static int hf_check_lm_head(const Safetensors *st, const char *prefix, const HfGpt2Info *info,
                            Err *err) {
    const SafeTensor *head = safetensors_find(st, "lm_head.weight");
    if (!head)
        return 0;
    const SafeTensor *wte = hf_find(st, prefix, -1, "wte.weight");
    if (hf_check_tensor(st, head, info, GPT_PARAM_WTE, err) != 0)
        return -1;
    for (uint64_t i = 0; i < head->numel; i++)
        if (hf_value(head, i) != hf_value(wte, i))
            return err_set(err,
                           "%s: tensor 'lm_head.weight' differs from '%s' at index %llu (%g vs "
                           "%g): this model ties the LM head to the token embedding, so an "
                           "untied head cannot be loaded",
                           safetensors_path(st, head), wte->name, (unsigned long long)i,
                           (double)hf_value(head, i), (double)hf_value(wte, i));
    return 0;
}

typedef struct HfLoad {
    const Safetensors *st;
    const HfGpt2Info *info;
    const char *prefix;
    float *buf;  /* one tensor as read: max(Vp, n_positions, 4C) * C floats */
    float *tbuf; /* a transposed Conv1D weight: 4 * C * C floats */
} HfLoad;

/* Tensor kind k of layer (-1: not per layer) from the file into g. */
static int hf_load_param(Gpt *g, HfLoad *L, int k, int layer, Err *err) {
    GptParamKind kind = HF_NAMES[k].kind;
    const SafeTensor *t = hf_find(L->st, L->prefix, layer, HF_NAMES[k].name);
    if (!t) {
        char full[SAFETENSORS_NAME_LEN + 64];
        hf_name(full, sizeof full, L->prefix, layer, HF_NAMES[k].name);
        return err_set(err, "%s: missing tensor '%s'", L->info->weights_path, full);
    }
    if (hf_check_tensor(L->st, t, L->info, kind, err) != 0 ||
        safetensors_read_f32(L->st, t, L->buf, err) != 0)
        return -1;
    GptParam *p = gpt_param(g, kind, layer);
    if (!p) { /* a bias-free model: the file's biases must be zero */
        for (uint64_t i = 0; i < t->numel; i++)
            if (L->buf[i] != 0.0f)
                return err_set(err,
                               "%s: tensor '%s' has a non-zero value %g at index %llu, but the "
                               "model has bias=False (load it with --bias=True)",
                               safetensors_path(L->st, t), t->name, (double)L->buf[i],
                               (unsigned long long)i);
        return 0;
    }
    const float *src = L->buf;
    if (HF_NAMES[k].conv1d) { /* (IC, OC) -> (OC, IC) */
        int64_t IC = t->shape[0], OC = t->shape[1];
        for (int64_t i = 0; i < IC; i++)
            for (int64_t o = 0; o < OC; o++)
                L->tbuf[o * IC + i] = L->buf[i * OC + o];
        src = L->tbuf;
    } else if (kind == GPT_PARAM_WTE) { /* zero rows up to Vp */
        memset(L->buf + t->numel, 0, (size_t)(p->numel - (int64_t)t->numel) * sizeof(float));
    } /* wpe: the first block_size rows (the rest cropped) */
    gpt_param_write_f32(g, p, src);
    return 0;
}

int hf_gpt2_load(Gpt *g, const HfGpt2Info *info, Err *err) {
    const GptConfig *c = &g->config;
    if (c->n_layer != info->n_layer || c->channels != info->n_embd ||
        c->vocab_size != info->vocab_size || c->max_seq_len > info->n_positions ||
        (info->n_head && c->n_head != info->n_head))
        return err_set(err,
                       "%s: the weights are n_layer %lld, n_head %lld, n_embd %lld, vocab_size "
                       "%lld, n_positions %lld; the model built is %lld, %lld, %lld, %lld, "
                       "block_size %lld",
                       info->weights_path, (long long)info->n_layer, (long long)info->n_head,
                       (long long)info->n_embd, (long long)info->vocab_size,
                       (long long)info->n_positions, (long long)c->n_layer, (long long)c->n_head,
                       (long long)c->channels, (long long)c->vocab_size, (long long)c->max_seq_len);
    Safetensors st;
    if (hf_open(&st, info, err) != 0)
        return -1;
    int64_t C = info->n_embd, rows = c->padded_vocab_size; /* rows of C floats: any tensor */
    rows = info->n_positions > rows ? info->n_positions : rows;
    rows = 4 * C > rows ? 4 * C : rows;
    HfLoad L = {&st, info, "", malloc((size_t)(rows * C) * sizeof(float)),
                malloc((size_t)(4 * C * C) * sizeof(float))};
    int rc = hf_prefix(&st, &L.prefix, err);
    if (rc == 0 && (!L.buf || !L.tbuf))
        rc = err_set(err, "%s: cannot allocate the staging buffers (%lld floats)",
                     info->weights_path, (long long)(rows * C + 4 * C * C));
    if (rc == 0)
        rc = hf_check_names(&st, L.prefix, info, err) || hf_check_lm_head(&st, L.prefix, info, err);
    for (int k = 0; k < GPT_PARAM_KIND_COUNT && rc == 0; k++) {
        int per_layer = gpt_param_is_per_layer(HF_NAMES[k].kind);
        for (int l = 0; l < (per_layer ? info->n_layer : 1) && rc == 0; l++)
            rc = hf_load_param(g, &L, k, per_layer ? l : -1, err);
    }
    free(L.buf);
    free(L.tbuf);
    safetensors_close(&st);
    return rc ? -1 : 0;
}

/* ---- export ---- */

typedef struct HfExport {
    Gpt *g;
    float *tmp; /* one of our parameters: max(Vp * C, maxT * C, 4 * C * C) floats */
    struct {
        GptParamKind kind;
        int layer;
    } * which;
} HfExport;

/* Tensor i of the file (our parameter, transposed back for Conv1D; zeros for a missing
 * bias; wte's first V rows) into out. */
static int hf_export_fill(void *ctx, int i, float *out, Err *err) {
    HfExport *x = ctx;
    Gpt *g = x->g;
    GptParamKind kind = x->which[i].kind;
    const GptParam *p = gpt_param(g, kind, x->which[i].layer);
    int64_t shape[2] = {0, 1};
    HfGpt2Info info = {.n_embd = g->config.channels,
                       .vocab_size = g->config.vocab_size,
                       .n_positions = g->config.max_seq_len};
    int nd = hf_expected_shape(&info, kind, shape);
    size_t numel = (size_t)(shape[0] * (nd > 1 ? shape[1] : 1));
    if (!p) {
        memset(out, 0, numel * sizeof(float));
        return 0;
    }
    if (p->master) /* the f32 weights the optimizer updates, not their 16-bit copy */
        g->backend->copy_to_host(x->tmp, p->master->data, (size_t)p->numel * sizeof(float),
                                 g->stream);
    else
        gpt_param_read_f32(g, p, x->tmp);
    if (HF_NAMES[kind].conv1d) { /* (OC, IC) -> (IC, OC) */
        int64_t IC = shape[0], OC = shape[1];
        for (int64_t o = 0; o < OC; o++)
            for (int64_t c = 0; c < IC; c++)
                out[c * OC + o] = x->tmp[o * IC + c];
    } else {
        memcpy(out, x->tmp, numel * sizeof(float)); /* wte: the first V rows */
    }
    (void)err;
    return 0;
}

/* Writes text to path atomically (temp file, fsync, rename). */
static int hf_write_text(const char *path, const char *text, Err *err) {
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return err_set(err, "%s: cannot create a temporary file next to it: %s", path,
                       strerror(errno));
    fchmod(fd, 0644);
    size_t n = strlen(text);
    int ok = write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return err_set(err, "%s: write failed (temporary %s): %s", path, tmp, strerror(e));
    }
    return 0;
}

/* config.json of GPT2LMHeadModel for g's shape. */
static int hf_write_config(Gpt *g, const char *path, int bf16, Err *err) {
    const GptConfig *c = &g->config;
    cJSON *r = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(r, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("GPT2LMHeadModel"));
    cJSON_AddStringToObject(r, "model_type", "gpt2");
    cJSON_AddNumberToObject(r, "vocab_size", (double)c->vocab_size);
    cJSON_AddNumberToObject(r, "n_positions", (double)c->max_seq_len);
    cJSON_AddNumberToObject(r, "n_ctx", (double)c->max_seq_len);
    cJSON_AddNumberToObject(r, "n_embd", (double)c->channels);
    cJSON_AddNumberToObject(r, "n_layer", (double)c->n_layer);
    cJSON_AddNumberToObject(r, "n_head", (double)c->n_head);
    cJSON_AddStringToObject(r, "activation_function",
                            c->gelu == GPT_GELU_ERF ? "gelu" : "gelu_new");
    cJSON_AddNumberToObject(r, "layer_norm_epsilon", HF_LN_EPS);
    cJSON_AddNumberToObject(r, "resid_pdrop", 0.0);
    cJSON_AddNumberToObject(r, "embd_pdrop", 0.0);
    cJSON_AddNumberToObject(r, "attn_pdrop", 0.0);
    cJSON_AddNumberToObject(r, "initializer_range", 0.02);
    cJSON_AddBoolToObject(r, "tie_word_embeddings", 1);
    cJSON_AddStringToObject(r, "torch_dtype", bf16 ? "bfloat16" : "float32");
    char *text = cJSON_Print(r);
    cJSON_Delete(r);
    if (!text)
        return err_set(err, "%s: out of memory", path);
    int rc = hf_write_text(path, text, err);
    cJSON_free(text);
    return rc;
}

int hf_gpt2_export_as(Gpt *g, const char *dir, int bf16, Err *err) {
    const GptConfig *c = &g->config;
    size_t n_max = 4 + 12 * (size_t)c->n_layer; /* wte, wpe, ln_f (2); 12 per block */
    int n = 0;
    SafeWriteTensor *t = calloc(n_max, sizeof *t);
    char(*names)[80] = calloc(n_max, sizeof *names);
    HfExport x = {g, NULL, calloc(n_max, sizeof *x.which)};
    int64_t C = c->channels, rows = c->padded_vocab_size;
    rows = c->max_seq_len > rows ? c->max_seq_len : rows;
    rows = 4 * C > rows ? 4 * C : rows;
    x.tmp = malloc((size_t)(rows * C) * sizeof(float));
    int rc = 0;
    if (!t || !names || !x.which || !x.tmp)
        rc = err_set(err, "%s: out of memory", dir);
    HfGpt2Info info = {.n_embd = C, .vocab_size = c->vocab_size, .n_positions = c->max_seq_len};
    /* the state dict's order: wte, wpe, block by block (ln_1 ... mlp.c_proj), ln_f */
    for (int l = -1; l <= c->n_layer && rc == 0; l++) {
        for (int k = 0; k < GPT_PARAM_KIND_COUNT; k++) {
            int per_layer = gpt_param_is_per_layer(HF_NAMES[k].kind);
            int first = HF_NAMES[k].kind < GPT_PARAM_LN1W;
            if (per_layer != (l >= 0 && l < c->n_layer) || (!per_layer && first != (l < 0)))
                continue;
            hf_name(names[n], sizeof names[n], "transformer.", per_layer ? l : -1,
                    HF_NAMES[k].name);
            t[n].name = names[n];
            t[n].ndim = hf_expected_shape(&info, HF_NAMES[k].kind, t[n].shape);
            x.which[n].kind = HF_NAMES[k].kind;
            x.which[n].layer = per_layer ? l : -1;
            n++;
        }
    }
    char path[4200];
    static const char *const meta[] = {"format", "pt", NULL};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (rc == 0)
        rc = safetensors_write(path, bf16 ? SAFE_DTYPE_BF16 : SAFE_DTYPE_F32, t, n, meta,
                               hf_export_fill, &x, err);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (rc == 0)
        rc = hf_write_config(g, path, bf16, err);
    free(t);
    free(names);
    free(x.which);
    free(x.tmp);
    return rc;
}

int hf_gpt2_export(Gpt *g, const char *dir, Err *err) { return hf_gpt2_export_as(g, dir, 0, err); }
