#!/usr/bin/python3
"""make_fixture.py: the PyTorch reference that the C GPT-2 is checked against.

Run with Debian's python3-torch (it belongs to /usr/bin/python3):
    /usr/bin/python3 scripts/make_fixture.py [--out tests/fixtures]

The model is written here from the math, nanoGPT-equivalent: pre-LN GPT-2, LayerNorm eps 1e-5,
causal self-attention scaled by 1/sqrt(HS), MLP 4C with GELU (tanh approximation or erf), final
LayerNorm, LM head tied to wte (the tied matrix gets gradient from both uses), learned wpe,
`bias` on or off (off: no Linear and no LayerNorm biases, as nanoGPT's bias=False).
Parameters are kept in llm.c's layout (per-layer tensors stacked over layers, Linear weights
(out, in)), so they are written as an llm.c model file unchanged.

Precision: weights are drawn in float64, rounded to float32 (so the C side loads exactly the
same values), and everything after that is computed in float64. The results are stored as
float32 (losses, learning rates and gradient norms also as float64).

Cases (tiny config L=2, NH=3, C=18, maxT=T=16, B=2):
    nobias_tanh, nobias_erf, bias_tanh, bias_erf   V = Vp = 64
    padvocab_nobias_tanh                           V = 57 < Vp = 64 (llm.c padded vocabulary:
                                                   the 7 padded wte rows are non-zero here and
                                                   take no part in the softmax)
Per case two files:
    <case>_model.bin   the weights, llm.c GPT-2 model file (magic 20240326, version 3, fp32)
    <case>_ref.bin     named arrays (format below): the batch, logits (B,T,V), loss, every
                       parameter gradient (llm.c order and names, "d.<name>"; bias gradients
                       only when bias is on), and 10 AdamW steps; with V < Vp also
                       "loss.all_vp_rows", the loss if the padded rows were (wrongly) in
                       the softmax.
The 10 AdamW steps follow nanoGPT's train.py: decay only on the 2-D weights (wte, wpe and the
Linear weights; LayerNorm weights and all biases undecayed), torch.optim.AdamW semantics,
global-norm clipping with torch.nn.utils.clip_grad_norm_ (coefficient max/(norm+1e-6), capped
at 1), and nanoGPT's get_lr (linear warmup lr*(it+1)/(warmup+1), cosine to min_lr, min_lr
after lr_decay_iters). Every step uses the same batch. Stored: "adam.hparams" (f64: lr, min_lr,
warmup_iters, lr_decay_iters, beta1, beta2, eps, weight_decay, grad_clip), "adam.lr" (f64, the
lr of steps 0..9), "adam.grad_norm" (f64, the global norm before clipping at steps 0..9) and
"adam.loss" (f64, 11 values: the loss before step 0..9 and after the last step).

Also written: eval_shard.bin (an llm.c token shard, magic 20240520, version 1) and
eval_expected.txt, one line per check "<case> <bias> <gelu> <B> <T> <N> <loss>": the mean cross-entropy over
the first N*B windows of the shard taken in order with stride T (window i = tokens
[i*T, i*T+T], targets shifted by one), what `arenagpt eval` must print.

Hugging Face GPT-2 checkpoints (--only hf writes just these, from the eval_shard.bin already
there): the case hf_bias_tanh (bias on, tanh GELU, V = 57 < Vp = 64, the padded wte rows
zero) as hf_bias_tanh_model.bin (llm.c) and in Hugging Face's layout, its state dict written
here by hand (transformers is not needed): Conv1D weights (attn.c_attn, attn.c_proj, mlp.c_fc,
mlp.c_proj) stored (in, out), wte with V rows, the safetensors container written with struct
and json. Folders under hf/, each with config.json:
    f32/       model.safetensors, F32, GPT2LMHeadModel's names (transformer. prefix) plus the
               tied lm_head.weight and the attn.bias / attn.masked_bias buffers
    f16/, bf16/  F16 / BF16, GPT2Model's names (no prefix)
    sharded/   F32 in two shards, model-0000N-of-00002.safetensors + model.safetensors.index.json
hf_expected.txt, one line per check "<folder> <B> <T> <N> <loss>": the mean cross-entropy of an
independent float64 forward over the stored (rounded, for f16/bf16) weights in Hugging Face's
layout (x @ W + b for Conv1D, GPT-2's tanh GELU written out), windows as for eval_expected.txt.

llm.c's bf16 model file (--only llmc_bf16 writes just this one): llmc_bf16_model.bin, the
hf_bias_tanh weights as an llm.c model file of version 5: the same 256-int32 header with
version 5, then every value as bf16 (little-endian, the top 16 bits of the float32), in the
order and shapes of version 3. The float32 weights are rounded to bf16 by PyTorch's own
conversion (torch.Tensor.to(torch.bfloat16): round to nearest even), so the file is made
independently of the C rounding. Its values are those of hf/bf16 (the padded wte rows zero),
so hf_expected.txt's bf16 losses are its losses too; hf_bias_tanh_model.bin holds the float32
values it was rounded from.

Array file format (little-endian):
    header  int32 magic 0x58464741 ("AGFX"), int32 version 1, int32 n_arrays, int32 0
    array   char name[64] (NUL-padded), int32 dtype (0 f32, 1 i32, 2 f64), int32 ndim,
            int64 dims[4] (unused dims 1), then prod(dims) elements
"""
import argparse
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

FX_MAGIC = 0x58464741
FX_VERSION = 1
MODEL_MAGIC = 20240326
MODEL_VERSION_FP32 = 3
MODEL_VERSION_BF16 = 5
SHARD_MAGIC = 20240520
SHARD_VERSION = 1

L, NH, C, MAXT = 2, 3, 18, 16
B, T = 2, 16
WEIGHT_STD = 0.1  # larger than GPT-2's 0.02 so attention and LayerNorm are far from trivial

ADAM = dict(lr=1e-2, min_lr=1e-3, warmup_iters=3, lr_decay_iters=8, beta1=0.9, beta2=0.95,
            eps=1e-8, weight_decay=0.1, grad_clip=1.0)
N_STEPS = 10

CASES = [
    # name, bias, gelu, V, Vp, seed
    ("nobias_tanh", False, "tanh", 64, 64, 1),
    ("nobias_erf", False, "erf", 64, 64, 2),
    ("bias_tanh", True, "tanh", 64, 64, 3),
    ("bias_erf", True, "erf", 64, 64, 4),
    ("padvocab_nobias_tanh", False, "tanh", 57, 64, 5),
]

# llm.c tensor order; is_bias marks the tensors that bias=False models do not have
# (they are written as zeros in the model file).
ORDER = [
    ("wte", False), ("wpe", False), ("ln1w", False), ("ln1b", True), ("qkvw", False),
    ("qkvb", True), ("attprojw", False), ("attprojb", True), ("ln2w", False), ("ln2b", True),
    ("fcw", False), ("fcb", True), ("fcprojw", False), ("fcprojb", True), ("lnfw", False),
    ("lnfb", True),
]
DECAY = {"wte", "wpe", "qkvw", "attprojw", "fcw", "fcprojw"}


def shapes(V, Vp):
    return {
        "wte": (Vp, C), "wpe": (MAXT, C), "ln1w": (L, C), "ln1b": (L, C),
        "qkvw": (L, 3 * C, C), "qkvb": (L, 3 * C), "attprojw": (L, C, C), "attprojb": (L, C),
        "ln2w": (L, C), "ln2b": (L, C), "fcw": (L, 4 * C, C), "fcb": (L, 4 * C),
        "fcprojw": (L, C, 4 * C), "fcprojb": (L, C), "lnfw": (C,), "lnfb": (C,),
    }


def init_params(rng, bias, V, Vp):
    """Random weights rounded to float32, returned as float64 numpy arrays."""
    p = {}
    for name, is_bias in ORDER:
        shp = shapes(V, Vp)[name]
        if is_bias:
            a = 0.1 * rng.standard_normal(shp) if bias else np.zeros(shp)
        elif name in ("ln1w", "ln2w", "lnfw"):
            a = 1.0 + 0.1 * rng.standard_normal(shp)
        else:
            a = WEIGHT_STD * rng.standard_normal(shp)
        p[name] = a.astype(np.float32).astype(np.float64)
    return p


def layernorm(x, w, b):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps=1e-5)


def forward(P, idx, bias, gelu, V):
    """Logits (B,T,V) over the real vocabulary only (padded wte rows excluded)."""
    Bn, Tn = idx.shape
    HS = C // NH
    x = P["wte"][idx] + P["wpe"][:Tn]
    mask = torch.tril(torch.ones(Tn, Tn, dtype=torch.bool))
    for l in range(L):
        h = layernorm(x, P["ln1w"][l], P["ln1b"][l] if bias else None)
        qkv = F.linear(h, P["qkvw"][l], P["qkvb"][l] if bias else None)
        q, k, v = qkv.split(C, dim=2)
        q = q.view(Bn, Tn, NH, HS).transpose(1, 2)
        k = k.view(Bn, Tn, NH, HS).transpose(1, 2)
        v = v.view(Bn, Tn, NH, HS).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(HS))
        att = att.masked_fill(~mask, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(Bn, Tn, C)
        x = x + F.linear(y, P["attprojw"][l], P["attprojb"][l] if bias else None)
        h = layernorm(x, P["ln2w"][l], P["ln2b"][l] if bias else None)
        h = F.linear(h, P["fcw"][l], P["fcb"][l] if bias else None)
        h = F.gelu(h, approximate="tanh" if gelu == "tanh" else "none")
        x = x + F.linear(h, P["fcprojw"][l], P["fcprojb"][l] if bias else None)
    x = layernorm(x, P["lnfw"], P["lnfb"] if bias else None)
    return x @ P["wte"][:V].t()


def loss_of(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def torch_params(p, bias):
    P = {}
    for name, is_bias in ORDER:
        P[name] = torch.tensor(p[name], dtype=torch.float64, requires_grad=(bias or not is_bias))
    return P


def get_lr(it):
    a = ADAM
    if it < a["warmup_iters"]:
        return a["lr"] * (it + 1) / (a["warmup_iters"] + 1)
    if it > a["lr_decay_iters"]:
        return a["min_lr"]
    ratio = (it - a["warmup_iters"]) / (a["lr_decay_iters"] - a["warmup_iters"])
    coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))
    return a["min_lr"] + coeff * (a["lr"] - a["min_lr"])


def adamw_run(p, bias, gelu, V, idx, tgt):
    P = torch_params(p, bias)
    trainable = [n for n, is_bias in ORDER if bias or not is_bias]
    decay = [P[n] for n in trainable if n in DECAY]
    no_decay = [P[n] for n in trainable if n not in DECAY]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": ADAM["weight_decay"]},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=ADAM["lr"], betas=(ADAM["beta1"], ADAM["beta2"]), eps=ADAM["eps"], foreach=False)
    losses, lrs, norms = [], [], []
    for it in range(N_STEPS):
        lr = get_lr(it)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss = loss_of(forward(P, idx, bias, gelu, V), tgt)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_([P[n] for n in trainable], ADAM["grad_clip"])
        opt.step()
        losses.append(loss.item())
        lrs.append(lr)
        norms.append(norm.item())
    with torch.no_grad():
        losses.append(loss_of(forward(P, idx, bias, gelu, V), tgt).item())
    return losses, lrs, norms


def write_model(path, p, V, Vp):
    header = np.zeros(256, dtype="<i4")
    header[:8] = [MODEL_MAGIC, MODEL_VERSION_FP32, MAXT, V, L, NH, C, Vp]
    with open(path, "wb") as f:
        f.write(header.tobytes())
        for name, _ in ORDER:
            f.write(np.ascontiguousarray(p[name], dtype="<f4").tobytes())


def bf16_bits(a):
    """float32 values of a rounded to bf16 by PyTorch, as little-endian uint16 bytes."""
    t = torch.tensor(np.asarray(a, dtype=np.float32)).to(torch.bfloat16)
    return t.view(torch.int16).numpy().astype("<i2").tobytes()


def write_model_bf16(path, p, V, Vp):
    """An llm.c model file of version 5: write_model's header and order, bf16 values."""
    header = np.zeros(256, dtype="<i4")
    header[:8] = [MODEL_MAGIC, MODEL_VERSION_BF16, MAXT, V, L, NH, C, Vp]
    with open(path, "wb") as f:
        f.write(header.tobytes())
        for name, _ in ORDER:
            f.write(bf16_bits(p[name]))


def write_arrays(path, arrays):
    dt = {np.dtype("<f4"): 0, np.dtype("<i4"): 1, np.dtype("<f8"): 2}
    with open(path, "wb") as f:
        f.write(struct.pack("<4i", FX_MAGIC, FX_VERSION, len(arrays), 0))
        for name, a in arrays:
            assert len(name) < 64 and a.ndim <= 4
            dims = list(a.shape) + [1] * (4 - a.ndim)
            f.write(name.encode().ljust(64, b"\0"))
            f.write(struct.pack("<2i4q", dt[a.dtype], a.ndim, *dims))
            f.write(np.ascontiguousarray(a).tobytes())


def write_shard(path, tokens):
    header = np.zeros(256, dtype="<i4")
    header[:3] = [SHARD_MAGIC, SHARD_VERSION, len(tokens)]
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(np.asarray(tokens, dtype="<u2").tobytes())


def eval_loss(p, bias, gelu, V, tokens, Bn, Tn, n_batches):
    """Mean over batches of the batch-mean cross-entropy; windows in order, stride T."""
    P = torch_params(p, bias)
    total = 0.0
    with torch.no_grad():
        for b in range(n_batches):
            idx = np.zeros((Bn, Tn), dtype=np.int64)
            tgt = np.zeros((Bn, Tn), dtype=np.int64)
            for r in range(Bn):
                w = b * Bn + r
                idx[r] = tokens[w * Tn: w * Tn + Tn]
                tgt[r] = tokens[w * Tn + 1: w * Tn + Tn + 1]
            logits = forward(P, torch.from_numpy(idx), bias, gelu, V)
            total += loss_of(logits, torch.from_numpy(tgt)).item()
    return total / n_batches


def make_case(out, name, bias, gelu, V, Vp, seed):
    rng = np.random.default_rng(seed)
    p = init_params(rng, bias, V, Vp)
    idx_np = rng.integers(0, V, size=(B, T))
    tgt_np = rng.integers(0, V, size=(B, T))
    idx = torch.from_numpy(idx_np)
    tgt = torch.from_numpy(tgt_np)

    P = torch_params(p, bias)
    logits = forward(P, idx, bias, gelu, V)
    loss = loss_of(logits, tgt)
    loss.backward()

    config = np.array([L, NH, C, MAXT, V, Vp, B, T, int(bias), 0 if gelu == "tanh" else 1],
                      dtype="<i4")
    arrays = [
        ("config", config),
        ("inputs", idx_np.astype("<i4")),
        ("targets", tgt_np.astype("<i4")),
        ("logits", logits.detach().numpy().astype("<f4")),
        ("loss", np.array([loss.item()], dtype="<f8")),
    ]
    if V < Vp:
        # what the loss would be if the padded rows took part in the softmax: the C test
        # checks that the fixture can tell the two apart
        with torch.no_grad():
            x_all = forward(P, idx, bias, gelu, Vp)
        arrays.append(("loss.all_vp_rows", np.array([loss_of(x_all, tgt).item()], dtype="<f8")))
    for n, is_bias in ORDER:
        if bias or not is_bias:
            arrays.append(("d." + n, P[n].grad.numpy().astype("<f4")))

    losses, lrs, norms = adamw_run(p, bias, gelu, V, idx, tgt)
    a = ADAM
    hp = [a["lr"], a["min_lr"], a["warmup_iters"], a["lr_decay_iters"], a["beta1"], a["beta2"],
          a["eps"], a["weight_decay"], a["grad_clip"]]
    arrays += [
        ("adam.hparams", np.array(hp, dtype="<f8")),
        ("adam.lr", np.array(lrs, dtype="<f8")),
        ("adam.grad_norm", np.array(norms, dtype="<f8")),
        ("adam.loss", np.array(losses, dtype="<f8")),
    ]
    write_model(os.path.join(out, name + "_model.bin"), p, V, Vp)
    write_arrays(os.path.join(out, name + "_ref.bin"), arrays)
    print(f"{name}: loss {loss.item():.6f}, after {N_STEPS} AdamW steps {losses[-1]:.6f}, "
          f"grad norms {norms[0]:.3f}..{norms[-1]:.3f}")
    return p


# eval checks: (case, B, T, N); T < maxT exercises a shorter context than the file's maxT
EVAL_CHECKS = [("nobias_tanh", 2, 16, 3), ("bias_erf", 3, 8, 2), ("padvocab_nobias_tanh", 2, 16, 3)]
EVAL_NTOK = 200


# ---- Hugging Face GPT-2 checkpoints ----

HF_CASE = ("hf_bias_tanh", True, "tanh", 57, 64, 7)  # name, bias, gelu, V, Vp, seed
HF_EVAL_CHECKS = [(2, 16, 3), (2, 8, 3)]  # B, T, N; T 8 < n_positions 16 crops wpe
HF_LAYER_NAMES = [  # (Hugging Face name after "h.<l>.", llm.c array, Conv1D: stored transposed)
    ("ln_1.weight", "ln1w", False), ("ln_1.bias", "ln1b", False),
    ("attn.c_attn.weight", "qkvw", True), ("attn.c_attn.bias", "qkvb", False),
    ("attn.c_proj.weight", "attprojw", True), ("attn.c_proj.bias", "attprojb", False),
    ("ln_2.weight", "ln2w", False), ("ln_2.bias", "ln2b", False),
    ("mlp.c_fc.weight", "fcw", True), ("mlp.c_fc.bias", "fcb", False),
    ("mlp.c_proj.weight", "fcprojw", True), ("mlp.c_proj.bias", "fcprojb", False),
]


def hf_state_dict(p, V):
    """GPT2Model's state dict (no prefix) from llm.c-layout arrays: float64 numpy."""
    sd = {"wte.weight": p["wte"][:V], "wpe.weight": p["wpe"]}
    for layer in range(L):
        for name, src, conv1d in HF_LAYER_NAMES:
            a = p[src][layer]
            sd[f"h.{layer}.{name}"] = a.T.copy() if conv1d else a
    sd["ln_f.weight"] = p["lnfw"]
    sd["ln_f.bias"] = p["lnfb"]
    return sd


def st_bytes(a, dtype):
    """Little-endian bytes of a as F32, F16 or BF16 (round to nearest even)."""
    if dtype == "F32":
        return np.ascontiguousarray(a, dtype="<f4").tobytes()
    if dtype == "F16":
        return np.ascontiguousarray(a, dtype="<f2").tobytes()
    return bf16_bits(a)


def st_round(a, dtype):
    """The values a file of that dtype holds, as float64."""
    if dtype == "F32":
        return np.asarray(a, dtype=np.float32).astype(np.float64)
    if dtype == "F16":
        return np.asarray(a, dtype=np.float16).astype(np.float64)
    t = torch.tensor(np.asarray(a, dtype=np.float32)).to(torch.bfloat16)
    return t.to(torch.float64).numpy()


def write_safetensors(path, tensors):
    """tensors: list of (name, array, dtype) -> a safetensors file (header padded to 8 bytes)."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, a, dtype in tensors:
        b = st_bytes(a, dtype)
        header[name] = {"dtype": dtype, "shape": list(np.shape(a)),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_hf_config(path, V):
    cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": V,
           "n_positions": MAXT, "n_ctx": MAXT, "n_embd": C, "n_layer": L, "n_head": NH,
           "activation_function": "gelu_new", "layer_norm_epsilon": 1e-05}
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)


def hf_forward(sd, idx, V):
    """Logits (B,T,V) from a GPT2Model state dict (float64 tensors): Hugging Face's layout."""
    Bn, Tn = idx.shape
    HS = C // NH

    def ln(x, pre):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + 1e-5) * sd[pre + ".weight"] + sd[pre + ".bias"]

    def conv1d(x, pre):  # GPT-2's Conv1D: x @ W + b with W (in, out)
        return x @ sd[pre + ".weight"] + sd[pre + ".bias"]

    def gelu_new(x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))

    x = sd["wte.weight"][idx] + sd["wpe.weight"][:Tn]
    causal = torch.tril(torch.ones(Tn, Tn, dtype=torch.bool))
    for layer in range(L):
        h = f"h.{layer}."
        qkv = conv1d(ln(x, h + "ln_1"), h + "attn.c_attn")
        q, k, v = (t.reshape(Bn, Tn, NH, HS).permute(0, 2, 1, 3) for t in qkv.split(C, dim=2))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(HS)
        scores = torch.where(causal, scores, torch.tensor(float("-inf"), dtype=torch.float64))
        y = (torch.softmax(scores, dim=-1) @ v).permute(0, 2, 1, 3).reshape(Bn, Tn, C)
        x = x + conv1d(y, h + "attn.c_proj")
        x = x + conv1d(gelu_new(conv1d(ln(x, h + "ln_2"), h + "mlp.c_fc")), h + "mlp.c_proj")
    return ln(x, "ln_f") @ sd["wte.weight"][:V].t()


def hf_eval_loss(sd, V, tokens, Bn, Tn, n_batches):
    S = {k: torch.tensor(v, dtype=torch.float64) for k, v in sd.items()}
    total = 0.0
    with torch.no_grad():
        for b in range(n_batches):
            w0 = b * Bn
            idx = np.stack([tokens[(w0 + r) * Tn:(w0 + r) * Tn + Tn] for r in range(Bn)])
            tgt = np.stack([tokens[(w0 + r) * Tn + 1:(w0 + r) * Tn + Tn + 1] for r in range(Bn)])
            logits = hf_forward(S, torch.from_numpy(idx.astype(np.int64)), V)
            total += loss_of(logits, torch.from_numpy(tgt.astype(np.int64))).item()
    return total / n_batches


def read_shard(path):
    with open(path, "rb") as f:
        header = np.frombuffer(f.read(1024), dtype="<i4")
        assert header[0] == SHARD_MAGIC
        return np.frombuffer(f.read(), dtype="<u2").astype(np.int64)[:header[2]]


def hf_params():
    """The hf_bias_tanh weights (float64 arrays holding float32 values) and V, Vp."""
    name, bias, gelu, V, Vp, seed = HF_CASE
    p = init_params(np.random.default_rng(seed), bias, V, Vp)
    p["wte"][V:] = 0.0  # Hugging Face's wte has V rows: the llm.c file's padding is zero
    return p, V, Vp


def make_llmc_bf16(out):
    p, V, Vp = hf_params()
    write_model_bf16(os.path.join(out, "llmc_bf16_model.bin"), p, V, Vp)


def make_hf(out):
    name = HF_CASE[0]
    p, V, Vp = hf_params()
    write_model(os.path.join(out, name + "_model.bin"), p, V, Vp)
    sd = hf_state_dict(p, V)
    tokens = read_shard(os.path.join(out, "eval_shard.bin"))
    assert tokens.max() < V
    folders = {"f32": ("F32", "transformer."), "f16": ("F16", ""), "bf16": ("BF16", ""),
               "sharded": ("F32", "")}
    lines = ["# folder B T N loss  (make_fixture.py: arenagpt eval --init_from=hf/<folder>)"]
    for folder, (dtype, prefix) in folders.items():
        d = os.path.join(out, "hf", folder)
        os.makedirs(d, exist_ok=True)
        write_hf_config(os.path.join(d, "config.json"), V)
        tensors = [(prefix + k, v, dtype) for k, v in sd.items()]
        if folder == "f32":  # the tied head and the causal-mask buffers, as old exports have
            tensors.append(("lm_head.weight", sd["wte.weight"], dtype))
            for layer in range(L):
                mask = np.tril(np.ones((MAXT, MAXT))).reshape(1, 1, MAXT, MAXT)
                tensors.append((f"{prefix}h.{layer}.attn.bias", mask, "F32"))
                tensors.append((f"{prefix}h.{layer}.attn.masked_bias", np.array(-1e4), "F32"))
        if folder == "sharded":
            half = len(tensors) // 2
            parts = [tensors[:half], tensors[half:]]
            index = {"metadata": {"total_size": 0}, "weight_map": {}}
            for i, part in enumerate(parts):
                fname = f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors"
                write_safetensors(os.path.join(d, fname), part)
                for t in part:
                    index["weight_map"][t[0]] = fname
                    index["metadata"]["total_size"] += 4 * int(np.size(t[1]))
            with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
                json.dump(index, f, indent=2)
        else:
            write_safetensors(os.path.join(d, "model.safetensors"), tensors)
        stored = {k: st_round(v, dtype) for k, v in sd.items()}
        for Bn, Tn, N in HF_EVAL_CHECKS:
            val = hf_eval_loss(stored, V, tokens, Bn, Tn, N)
            lines.append(f"{folder} {Bn} {Tn} {N} {val:.6f}")
            print(f"hf {folder} B={Bn} T={Tn} N={N}: loss {val:.6f}")
    with open(os.path.join(out, "hf_expected.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                  "fixtures"))
    ap.add_argument("--only", choices=["hf", "llmc_bf16"],
                    help="write only the Hugging Face checkpoints, or only llm.c's bf16 file")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)  # deterministic reductions
    if args.only == "hf":
        make_hf(args.out)
        return
    if args.only == "llmc_bf16":
        make_llmc_bf16(args.out)
        return

    params = {}
    for name, bias, gelu, V, Vp, seed in CASES:
        params[name] = (make_case(args.out, name, bias, gelu, V, Vp, seed), bias, gelu, V)

    rng = np.random.default_rng(1234)
    minV = min(c[3] for c in CASES)
    tokens = rng.integers(0, minV, size=EVAL_NTOK)
    write_shard(os.path.join(args.out, "eval_shard.bin"), tokens)
    with open(os.path.join(args.out, "eval_expected.txt"), "w") as f:
        f.write("# case bias gelu B T N loss  (make_fixture.py: arenagpt eval on eval_shard.bin)\n")
        for name, Bn, Tn, N in EVAL_CHECKS:
            assert (N * Bn) * Tn + 1 <= EVAL_NTOK
            p, bias, gelu, V = params[name]
            val = eval_loss(p, bias, gelu, V, tokens, Bn, Tn, N)
            f.write(f"{name} {'True' if bias else 'False'} {gelu} {Bn} {Tn} {N} {val:.6f}\n")
            print(f"eval {name} B={Bn} T={Tn} N={N}: loss {val:.6f}")
    make_hf(args.out)
    make_llmc_bf16(args.out)


if __name__ == "__main__":
    main()
