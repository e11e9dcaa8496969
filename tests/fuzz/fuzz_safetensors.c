/* fuzz_safetensors.c: libFuzzer target for the safetensors reader (model/safetensors.c) and
 * GPT-2's mapping onto our parameters (model/hf_gpt2.c). Input: a .safetensors file. Refused
 * inputs must say why; an accepted container's tensors must lie inside the input, and its
 * float tensors read (or be refused for a non-finite value). The same bytes as
 * model.safetensors beside a config.json with n_head 1: a checkpoint the probe accepts, when
 * small, is built into a CPU model, loaded, exported and loaded again (a round trip that must
 * succeed and give the same weights). Seeds: tests/fuzz/corpus/safetensors/ (a small GPT-2,
 * L 1, C 4, V 5, n_positions 3, with and without the transformer. prefix, F32/F16/BF16). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../model/hf_gpt2.h"
#include "../../model/safetensors.h"
#include "fuzz_common.h"
#include "fuzz_model.h"

#define FUZZ_MAX_READ (1 << 16)   /* floats read per tensor */
#define FUZZ_MAX_PARAMS (1 << 16) /* bigger models are probed but not built */

static void container(const uint8_t *data, size_t size) {
    Safetensors st;
    Err err;
    err.msg[0] = 0;
    if (safetensors_open_mem(&st, "fuzz.safetensors", data, size, &err) != 0) {
        if (!err.msg[0])
            abort();
        return;
    }
    static float buf[FUZZ_MAX_READ];
    for (int i = 0; i < st.n_tensors; i++) {
        const SafeTensor *t = &st.tensors[i];
        if (t->data < data + 8 || t->data + t->n_bytes > data + size)
            abort(); /* a tensor outside the file */
        if (safetensors_find(&st, t->name) != t)
            abort();
        if (t->dtype != SAFE_DTYPE_OTHER && t->numel <= FUZZ_MAX_READ)
            safetensors_read_f32(&st, t, buf, &err);
    }
    safetensors_close(&st);
}

/* A CPU model of the probed shape (bias on: the loader checks or takes the biases). */
static void build(FuzzModel *m, const HfGpt2Info *info) {
    Err err;
    GptConfig c = {.max_seq_len = info->n_positions,
                   .vocab_size = info->vocab_size,
                   .padded_vocab_size = hf_gpt2_padded_vocab(info->vocab_size),
                   .n_layer = info->n_layer,
                   .n_head = info->n_head,
                   .channels = info->n_embd,
                   .bias = 1,
                   .gelu = info->gelu};
    if (fuzz_model_build(m, &c, &err) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    container(data, size);
    static const char config[] = "{\"n_head\": 1}";
    fuzz_dir_file(0, "config.json", (const uint8_t *)config, sizeof config - 1);
    fuzz_dir_file(1, "model.safetensors", data, size);
    HfGpt2Info info;
    Err err;
    err.msg[0] = 0;
    if (hf_gpt2_probe(fuzz_dir(), &info, &err) != 0) {
        if (!err.msg[0])
            abort();
        return 0;
    }
    int64_t C = info.n_embd,
            params = info.n_layer * 13 * C * C + (info.vocab_size + info.n_positions) * C;
    if (params > FUZZ_MAX_PARAMS || info.n_layer > 64 || info.n_positions > 256)
        return 0;
    FuzzModel m, back;
    build(&m, &info);
    if (hf_gpt2_load(&m.g, &info, &err) == 0) {
        char out[4096];
        snprintf(out, sizeof out, "%s/export", fuzz_dir());
        mkdir(out, 0755);
        HfGpt2Info info2;
        if (hf_gpt2_export(&m.g, out, &err) != 0 || hf_gpt2_probe(out, &info2, &err) != 0)
            abort();
        build(&back, &info2);
        if (hf_gpt2_load(&back.g, &info2, &err) != 0)
            abort();
        for (int k = 0; k < GPT_PARAM_KIND_COUNT; k++) {
            int nl = gpt_param_is_per_layer((GptParamKind)k) ? (int)info.n_layer : 1;
            for (int l = 0; l < nl; l++) {
                GptParam *a = gpt_param(&m.g, (GptParamKind)k, l),
                         *b = gpt_param(&back.g, (GptParamKind)k, l);
                if (memcmp(a->param->data, b->param->data, (size_t)a->numel * sizeof(float)) != 0)
                    abort(); /* export then import changed a weight */
            }
        }
        fuzz_model_free(&back);
    }
    fuzz_model_free(&m);
    return 0;
}
