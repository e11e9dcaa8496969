/* test_hf_gpt2.c: Hugging Face GPT-2 checkpoints (model/safetensors.c, model/hf_gpt2.c).
 * The fixtures are scripts/make_fixture.py's tests/fixtures/hf/ (one bias=True model in
 * Hugging Face's names and Conv1D layout, F32/F16/BF16, sharded) and the same weights as an
 * llm.c model file. Checked: each loads to the llm.c file's weights (F32 and sharded bit for
 * bit, F16/BF16 within their rounding); export then import is bit-identical; f16/bf16
 * conversion of known values; and every bad file is refused naming the file, the tensor and
 * the reason (variants of the F32 fixture written here: header edited with cJSON, data bytes
 * patched). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../model/half.h"
#include "../model/hf_gpt2.h"
#include "../model/model_io.h"
#include "../model/safetensors.h"
#include "test_util.h"

/* F16 keeps 11 significant bits, BF16 8: a weight read from them is within half a unit in the
 * last place of the f32 value (round to nearest). */
#define F16_RTOL (1.0 / 2048)
#define BF16_RTOL (1.0 / 256)
#define F16_ATOL 6e-8 /* F16's smallest subnormal: values below it round to 0 */

static void fixture(char *buf, size_t len, const char *rel) {
    snprintf(buf, len, "%s/tests/fixtures/%s", test_root(), rel);
}

/* A CPU model of the fixture's shape (L 2, NH 3, C 18, maxT 16, V 57, Vp 64, bias). */
static Arena *fixture_model(Gpt *g, int64_t maxT, int bias) {
    GptConfig c = test_gpt_config(2, 3, 18, maxT, 57, 64, bias, GPT_GELU_TANH, GPT_RECOMPUTE_NONE);
    return test_model_build(g, &c, 1, maxT, 99);
}

static int load_hf(Gpt *g, const char *path, Err *err) {
    HfGpt2Info info;
    if (hf_gpt2_probe(path, &info, err) != 0)
        return -1;
    return hf_gpt2_load(g, &info, err);
}

/* Every parameter of a and b, as f32, compared with the given tolerances (0, 0: bitwise). */
static void params_close(Gpt *a, Gpt *b, double atol, double rtol) {
    for (int k = 0; k < GPT_PARAM_KIND_COUNT; k++)
        for (int l = 0; l < (gpt_param_is_per_layer((GptParamKind)k) ? a->config.n_layer : 1);
             l++) {
            GptParam *pa = gpt_param(a, (GptParamKind)k, l), *pb = gpt_param(b, (GptParamKind)k, l);
            if (!pa)
                continue;
            float *x = malloc((size_t)pa->numel * sizeof *x), *y = malloc((size_t)pa->numel * 4);
            gpt_param_read_f32(a, pa, x);
            gpt_param_read_f32(b, pb, y);
            if (atol == 0 && rtol == 0)
                assert_memory_equal(x, y, (size_t)pa->numel * sizeof *x);
            else
                assert_allclose(x, y, (size_t)pa->numel, atol, rtol);
            free(x);
            free(y);
        }
}

static void test_hf_gpt2_loads_as_llmc(void **state) {
    (void)state;
    char p[4096];
    Gpt ref, g;
    Err err;
    Arena *ar = fixture_model(&ref, 16, 1);
    fixture(p, sizeof p, "hf_bias_tanh_model.bin");
    assert_int_equal(model_file_read(&ref, p, &err), 0);
    const struct {
        const char *dir;
        double atol, rtol;
    } cases[] = {{"hf/f32", 0, 0},
                 {"hf/sharded", 0, 0},
                 {"hf/f32/model.safetensors", 0, 0},
                 {"hf/f16", F16_ATOL, F16_RTOL},
                 {"hf/bf16", 0, BF16_RTOL}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Arena *a = fixture_model(&g, 16, 1);
        fixture(p, sizeof p, cases[i].dir);
        if (load_hf(&g, p, &err) != 0)
            print_error("%s: %s\n", cases[i].dir, err.msg);
        assert_int_equal(load_hf(&g, p, &err), 0);
        params_close(&g, &ref, cases[i].atol, cases[i].rtol);
        test_model_free(&g, a);
    }
    test_model_free(&ref, ar);
}

/* The probe: shape, bias, GELU from the folder; block_size 8 < n_positions crops wpe. */
static void test_hf_gpt2_probe_and_crop(void **state) {
    (void)state;
    char p[4096];
    HfGpt2Info info;
    Err err;
    fixture(p, sizeof p, "hf/sharded");
    assert_int_equal(hf_gpt2_probe(p, &info, &err), 0);
    assert_true(info.sharded && info.n_layer == 2 && info.n_head == 3 && info.n_embd == 18 &&
                info.n_positions == 16 && info.vocab_size == 57 && info.bias &&
                info.gelu == GPT_GELU_TANH && info.gelu_known);
    assert_int_equal(hf_gpt2_padded_vocab(50257), 50304);
    assert_int_equal(hf_gpt2_padded_vocab(64), 64);
    Gpt g, full;
    Arena *a = fixture_model(&g, 8, 1), *af = fixture_model(&full, 16, 1);
    assert_int_equal(hf_gpt2_load(&g, &info, &err), 0);
    assert_int_equal(hf_gpt2_load(&full, &info, &err), 0);
    float wpe8[8 * 18], wpe16[16 * 18];
    gpt_param_read_f32(&g, gpt_param(&g, GPT_PARAM_WPE, -1), wpe8);
    gpt_param_read_f32(&full, gpt_param(&full, GPT_PARAM_WPE, -1), wpe16);
    assert_memory_equal(wpe8, wpe16, sizeof wpe8);
    test_model_free(&g, a);
    test_model_free(&full, af);
}

static void test_hf_gpt2_export_round_trip(void **state) {
    (void)state;
    char p[4096], dir[4096];
    Gpt g, back;
    Err err;
    Arena *a = fixture_model(&g, 16, 1), *ab = fixture_model(&back, 16, 1);
    fixture(p, sizeof p, "hf/f32");
    assert_int_equal(load_hf(&g, p, &err), 0);
    snprintf(dir, sizeof dir, "%s", test_dir());
    assert_int_equal(hf_gpt2_export(&g, dir, &err), 0);
    assert_int_equal(load_hf(&back, dir, &err), 0);
    params_close(&back, &g, 0, 0);
    /* a bias-free model exports zero biases; loading them back into bias-free is accepted.
     * Its wte's padded rows (random from the init) are not exported: they come back zero. */
    Gpt nb, nb2;
    Arena *an = fixture_model(&nb, 16, 0), *an2 = fixture_model(&nb2, 16, 0);
    GptParam *wte = gpt_param(&nb, GPT_PARAM_WTE, -1);
    float *w = malloc((size_t)wte->numel * sizeof *w);
    gpt_param_read_f32(&nb, wte, w);
    memset(w + 57 * 18, 0, (size_t)(64 - 57) * 18 * sizeof *w);
    gpt_param_write_f32(&nb, wte, w);
    free(w);
    assert_int_equal(hf_gpt2_export(&nb, dir, &err), 0);
    assert_int_equal(load_hf(&nb2, dir, &err), 0);
    params_close(&nb2, &nb, 0, 0);
    /* non-zero biases into a bias-free model are refused */
    fixture(p, sizeof p, "hf/f32");
    assert_int_equal(load_hf(&nb2, p, &err), -1);
    assert_non_null(strstr(err.msg, "bias=False"));
    test_model_free(&nb, an);
    test_model_free(&nb2, an2);
    test_model_free(&back, ab);
    test_model_free(&g, a);
}

static void test_hf_gpt2_half_conversions(void **state) {
    (void)state;
    const struct {
        uint16_t h;
        float f;
    } f16[] = {{0x3C00, 1.0f},
               {0xC000, -2.0f},
               {0x7BFF, 65504.0f},
               {0x0001, 0x1p-24f},
               {0x03FF, 1023 * 0x1p-24f},
               {0x0400, 0x1p-14f},
               {0x3555, 0x1.554p-2f},
               {0x8000, -0.0f}};
    for (size_t i = 0; i < sizeof f16 / sizeof f16[0]; i++)
        assert_true(half_f16_to_f32(f16[i].h) == f16[i].f);
    assert_true(isinf(half_f16_to_f32(0x7C00)));
    assert_true(isnan(half_f16_to_f32(0x7E00)));
    assert_true(half_bf16_to_f32(0x3F80) == 1.0f);
    assert_true(half_bf16_to_f32(0xC0A0) == -5.0f);
    assert_true(isnan(half_bf16_to_f32(0x7FC0)));
}

/* ---- bad files: variants of the F32 fixture ---- */

typedef struct Variant {
    cJSON *header;
    uint8_t *data;
    size_t data_n;
} Variant;

static void variant_read(Variant *v) {
    char p[4096];
    fixture(p, sizeof p, "hf/f32/model.safetensors");
    size_t n = 0;
    uint8_t *buf = (uint8_t *)test_read_file(p, &n);
    assert_non_null(buf);
    uint64_t hn = 0;
    for (int k = 7; k >= 0; k--)
        hn = hn << 8 | buf[k];
    v->header = cJSON_ParseWithLength((const char *)buf + 8, (size_t)hn);
    assert_non_null(v->header);
    v->data_n = n - 8 - hn;
    v->data = malloc(v->data_n);
    memcpy(v->data, buf + 8 + hn, v->data_n);
    free(buf);
}

/* dir/model.safetensors (+ the fixture's config.json unless config is given). */
static void variant_write(const Variant *v, const char *dir, const char *config) {
    char p[4200], cfg_path[4096];
    char *h = cJSON_PrintUnformatted(v->header);
    uint64_t hn = strlen(h);
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    for (int k = 0; k < 8; k++)
        fputc((int)(hn >> (8 * k)) & 0xff, f);
    fwrite(h, 1, hn, f);
    fwrite(v->data, 1, v->data_n, f);
    fclose(f);
    cJSON_free(h);
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (config) {
        test_write_file(p, config, strlen(config));
    } else {
        fixture(cfg_path, sizeof cfg_path, "hf/f32/config.json");
        size_t n;
        char *text = test_read_file(cfg_path, &n);
        test_write_file(p, text, n);
        free(text);
    }
}

static uint8_t *tensor_data(Variant *v, const char *name) {
    const cJSON *off = cJSON_GetObjectItem(cJSON_GetObjectItem(v->header, name), "data_offsets");
    assert_non_null(off);
    return v->data + (size_t)cJSON_GetArrayItem(off, 0)->valuedouble;
}

static void set_offsets(Variant *v, const char *name, double begin, double end) {
    cJSON *e = cJSON_GetObjectItem(v->header, name);
    double o[2] = {begin, end};
    cJSON_ReplaceItemInObject(e, "data_offsets", cJSON_CreateDoubleArray(o, 2));
}

/* Loading dir into the fixture's model must fail with every one of the wanted texts. */
static void expect_refused(const char *dir, const char *want1, const char *want2) {
    Gpt g;
    Err err = {{0}};
    Arena *a = fixture_model(&g, 16, 1);
    int rc = load_hf(&g, dir, &err);
    if (rc == 0 || !strstr(err.msg, want1) || (want2 && !strstr(err.msg, want2)))
        print_error("%s: rc %d, '%s' (want '%s', '%s')\n", dir, rc, err.msg, want1,
                    want2 ? want2 : "");
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err.msg, want1));
    if (want2)
        assert_non_null(strstr(err.msg, want2));
    test_model_free(&g, a);
}

static void test_hf_gpt2_bad_tensors(void **state) {
    (void)state;
    char dir[4096];
    const char *LNF = "transformer.ln_f.weight";
    for (int c = 0; c < 9; c++) {
        Variant v;
        variant_read(&v);
        snprintf(dir, sizeof dir, "%s/bad%d", test_dir(), c);
        const char *want1 = "model.safetensors", *want2 = NULL;
        float nan = NAN;
        switch (c) {
        case 0: /* offsets past the data section */
            set_offsets(&v, LNF, 0, (double)v.data_n + 4);
            want2 = "ln_f.weight': data_offsets [0, ";
            break;
        case 1: /* two tensors on the same bytes */
            set_offsets(&v, "transformer.wpe.weight", 0, 16 * 18 * 4);
            want2 = "overlap";
            break;
        case 2: /* a dtype that is not a float, same byte count */
            cJSON_ReplaceItemInObject(cJSON_GetObjectItem(v.header, LNF), "dtype",
                                      cJSON_CreateString("I32"));
            want2 = "'transformer.ln_f.weight' has dtype I32: expected F32, F16 or BF16";
            break;
        case 3: /* a dtype whose size does not match the bytes */
            cJSON_ReplaceItemInObject(cJSON_GetObjectItem(v.header, LNF), "dtype",
                                      cJSON_CreateString("F16"));
            want2 = "hold 72 bytes, its dtype F16 and shape need 36";
            break;
        case 4: { /* the Conv1D weight in Linear's (out, in) order: same size, wrong shape */
            int s[2] = {54, 18};
            cJSON_ReplaceItemInObject(
                cJSON_GetObjectItem(v.header, "transformer.h.1.attn.c_attn.weight"), "shape",
                cJSON_CreateIntArray(s, 2));
            want2 = "'transformer.h.1.attn.c_attn.weight' has shape (54, 18), expected (18, 54)";
            break;
        }
        case 5:
            cJSON_DeleteItemFromObject(v.header, "transformer.h.1.mlp.c_fc.bias");
            want2 = "missing tensor 'transformer.h.1.mlp.c_fc.bias'";
            break;
        case 6:
            memcpy(tensor_data(&v, LNF) + 3 * 4, &nan, 4);
            want2 = "'transformer.ln_f.weight' has a non-finite value (nan) at index 3";
            break;
        case 7: /* an untied head */
            tensor_data(&v, "lm_head.weight")[40] ^= 1;
            want2 = "'lm_head.weight' differs from 'transformer.wte.weight' at index 10";
            break;
        default: { /* a tensor GPT-2 does not have */
            cJSON *e = cJSON_DetachItemFromObject(v.header, "transformer.h.0.attn.masked_bias");
            cJSON_AddItemToObject(v.header, "transformer.h.0.attn.rotary", e);
            want2 = "'transformer.h.0.attn.rotary' is not a parameter of a 2-layer GPT-2";
            break;
        }
        }
        variant_write(&v, dir, NULL);
        expect_refused(dir, want1, want2);
        cJSON_Delete(v.header);
        free(v.data);
    }
}

/* Whole-file damage, config.json and sharded indexes. */
static void test_hf_gpt2_bad_files(void **state) {
    (void)state;
    char dir[4096], p[13000];
    Variant v;
    variant_read(&v);
    snprintf(dir, sizeof dir, "%s/whole", test_dir());
    variant_write(&v, dir, NULL);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    size_t n;
    char *bytes = test_read_file(p, &n);
    test_write_file(p, bytes, n - 100); /* truncated */
    expect_refused(dir, p, "out of range (the data section has");
    uint8_t big[8] = {0xff, 0xff, 0, 0, 0, 0, 0, 0}; /* header length past the end */
    memcpy(bytes, big, 8);
    test_write_file(p, bytes, n);
    expect_refused(dir, p, "header length 65535 is past the end of the file");
    test_write_file(p, bytes, 5);
    expect_refused(dir, p, "too short for a safetensors file");
    free(bytes);
    const char *hdr = "\x10\0\0\0\0\0\0\0{\"a\": [1, 2,]}  ";
    test_write_file(p, hdr, 24);
    expect_refused(dir, p, "the header is not a JSON object");
    /* config.json that this program cannot honour, or that contradicts the tensors */
    const struct {
        const char *config, *want;
    } cfgs[] = {
        {"{\"n_head\": 3, \"layer_norm_epsilon\": 1e-6}",
         "layer_norm_epsilon = 1e-06 is not supported"},
        {"{\"n_head\": 3, \"activation_function\": \"relu\"}",
         "activation_function = 'relu' is not supported"},
        {"{\"n_head\": 3, \"n_layer\": 3}", "n_layer = 3, but the weights have n_layer 2"},
        {"{\"n_head\": 3, \"vocab_size\": 50257}",
         "vocab_size = 50257, but the weights have wte rows 57"},
        {"{\"n_head\": 4}", "n_head = 4 does not divide n_embd = 18"},
        {"{\"n_layer\": 2}", "n_head is missing"},
        {"[1]", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        variant_write(&v, dir, cfgs[i].config);
        expect_refused(dir, "config.json", cfgs[i].want);
    }
    cJSON_Delete(v.header);
    free(v.data);
    /* a sharded index naming a shard that is not there, or the wrong shard for a tensor */
    char fx[4096];
    fixture(fx, sizeof fx, "hf/sharded");
    snprintf(dir, sizeof dir, "%s/shards", test_dir());
    snprintf(p, sizeof p, "rm -rf '%s' && cp -r '%s' '%s'", dir, fx, dir);
    assert_int_equal(test_run(p), 0);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    const char *missing =
        "{\"weight_map\": {\"wte.weight\": \"model-00003-of-00003.safetensors\"}}";
    test_write_file(p, missing, strlen(missing));
    expect_refused(dir, "model-00003-of-00003.safetensors: cannot open", NULL);
    const char *wrong = "{\"weight_map\": {\"wte.weight\": \"model-00002-of-00002.safetensors\", "
                        "\"ln_f.bias\": \"model-00001-of-00002.safetensors\"}}";
    test_write_file(p, wrong, strlen(wrong));
    expect_refused(dir, "tensor 'wte.weight' is not in model-00002-of-00002.safetensors", NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hf_gpt2_loads_as_llmc),
        cmocka_unit_test(test_hf_gpt2_probe_and_crop),
        cmocka_unit_test(test_hf_gpt2_export_round_trip),
        cmocka_unit_test(test_hf_gpt2_half_conversions),
        cmocka_unit_test(test_hf_gpt2_bad_tensors),
        cmocka_unit_test(test_hf_gpt2_bad_files),
    };
    return cmocka_run_group_tests(tests, test_dir_setup, test_dir_teardown);
}
