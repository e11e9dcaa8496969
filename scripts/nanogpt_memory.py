#!/usr/bin/python3
"""nanogpt_memory.py: what nanoGPT keeps in memory for a config, recorded by PyTorch itself.

Run with Debian's python3-torch (it belongs to /usr/bin/python3; the python3 first on PATH may
have no torch):
    /usr/bin/python3 scripts/nanogpt_memory.py configs/small_4070.conf
        [--out configs/nanogpt/small_4070.json] [--device meta|cpu] [--batch_size N]

It builds nanoGPT's model (model.py: pre-LN GPT-2 blocks, LayerNorm eps 1e-5 with optional
bias, exact-erf GELU, lm_head tied to wte; the same architecture as scripts/make_fixture.py)
for the config's shape, runs one forward and backward of a batch under
torch.autograd.graph.saved_tensors_hooks, and records every tensor autograd saves for backward:
the op that saved it, its shape, its dtype and the storage it keeps alive (views of one storage,
such as q, k and v of one c_attn output, are counted once).

What it models rather than runs:
  - Precision: nanoGPT trains under torch.autocast(device_type='cuda', dtype=torch.float16);
    Debian's PyTorch runs on the CPU, where autocast has other lists. So every op is given the
    dtype CUDA fp16 autocast gives it, from PyTorch's documented op lists (torch.amp docs,
    "CUDA Ops that can autocast to float16" / "... to float32"; ops in neither list run in
    their inputs' dtype): linear -> float16 (inputs and weights cast; autocast caches each
    weight's cast for the forward), layer_norm and cross_entropy -> float32,
    scaled_dot_product_attention -> float16 (PyTorch 2's lower-precision list), embedding, add,
    gelu, view/transpose/contiguous -> their inputs' dtype. Each record names its list.
  - Attention: Debian's PyTorch (1.13) has no F.scaled_dot_product_attention, so nanoGPT would
    take its slow path and save the (B, NH, T, T) attention matrices. nanoGPT on PyTorch 2 with
    a GPU uses the flash kernel; FlashSDPA below is an autograd Function that saves what
    PyTorch's flash backend saves (q, k, v, the output, and the float32 log-sum-exp (B, NH, T);
    its RNG seed/offset scalars are left out: bytes). Its backward recomputes the attention
    with plain ops (the gradients are right; what flash's backward allocates is not modelled).
  - dropout = 0 (the shipped configs): nn.Dropout(p=0) returns its input and saves nothing.

Added to the saved set: float32 parameters and gradients, AdamW's m and v (float32 each), and
the float32 logits (B, T, V) that autocast makes for cross_entropy, and the float16 logits
(B, T, V) that model() returns and train.py holds through backward.

--device meta (default) runs on PyTorch's meta device: the same ops, shapes, dtypes and saved
tensors with no data, so the large configs need no memory. --device cpu --dtypes float32 runs
real tensors without autocast (PyTorch's CPU has no float16 matmul), to check that the meta
device records the same saved tensors as real ones (compare with --device meta --dtypes float32). The JSON is written to --out (default
configs/nanogpt/<config name>.json), in the format arenagpt's memory page reads
("format": "arenagpt-nanogpt-memory/1"; the page checks config.n_layer ... batch_size).
"""
import argparse
import ast
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

FORMAT = "arenagpt-nanogpt-memory/1"
MIB = 1024 * 1024

FP16_LIST = "autocast to float16"
FP32_LIST = "autocast to float32"
NOT_LISTED = "in neither list: its inputs' dtype"

# nanoGPT's train.py defaults for the keys used here
DEFAULTS = dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=50304, bias=False,
                dropout=0.0, batch_size=12, gradient_accumulation_steps=40)

# The report that started the project (README): nanoGPT on a 12 GB RTX 4070 for this shape
REPORTED_4070 = dict(shape=dict(n_layer=6, n_head=6, n_embd=384, block_size=512, vocab_size=50304,
                                bias=False, batch_size=16),
                     process_mib=4464, card_mib=6582,
                     source="nanoGPT with fp16 AMP on an RTX 4070, as reported by nvidia-smi")

NOT_SEEN = [
    "the CUDA caching allocator's rounding (blocks rounded to 512 B, large ones to 2 MiB "
    "segments) and fragmentation: memory it holds in reserve but no tensor uses",
    "torch.compile's buffers and the different saved set its fused kernels keep (this script "
    "runs eager PyTorch, as compile=False)",
    "the CUDA context, cuBLAS/cuDNN workspaces and loaded kernels (in nvidia-smi's figure, not "
    "in any tensor)",
    "transients inside an op (cuBLAS workspaces, the flash backward's scratch, the gradient "
    "buffers of backward) and the previous micro-step's logits still held while the next "
    "forward runs",
]


# ---- config ---------------------------------------------------------------------------------

def literal(text, where):
    """A nanoGPT config value: a Python literal, or a product/sum of numbers (5 * 8)."""
    node = ast.parse(text, mode="eval").body

    def ev(n):
        if isinstance(n, ast.Constant):
            return n.value
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Mult, ast.Add, ast.Sub, ast.Div)):
            a, b = ev(n.left), ev(n.right)
            return {ast.Mult: a * b, ast.Add: a + b, ast.Sub: a - b,
                    ast.Div: a / b if b else math.nan}[type(n.op)]
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return -ev(n.operand)
        raise ValueError(f"{where}: '{text}' is not a literal or a product of numbers")
    return ev(node)


def load_config(path):
    cfg = dict(DEFAULTS)
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if "=" not in line:
                sys.exit(f"{path}:{lineno}: expected 'key = value', got '{line}'")
            key, value = (s.strip() for s in line.split("=", 1))
            if key in cfg:
                try:
                    cfg[key] = literal(value, f"{path}:{lineno}")
                except (SyntaxError, ValueError) as e:
                    sys.exit(f"{path}:{lineno}: {key} = {value}: {e}")
    for k in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "batch_size"):
        if not isinstance(cfg[k], int) or cfg[k] <= 0:
            sys.exit(f"{path}: {k} = {cfg[k]!r}: expected a positive integer")
    if cfg["n_embd"] % cfg["n_head"]:
        sys.exit(f"{path}: n_embd = {cfg['n_embd']} is not a multiple of n_head = {cfg['n_head']}")
    if cfg["dropout"] != 0:
        sys.exit(f"{path}: dropout = {cfg['dropout']}: only 0 is modelled (dropout saves masks)")
    return cfg


# ---- recording ------------------------------------------------------------------------------

class Recorder:
    """The saved-tensor hooks' pack side: one record per saved tensor, the current op's tag."""

    def __init__(self, params):
        self.op = ("(untagged)", NOT_LISTED)
        self.records = []
        self.keep = []  # the storages' base tensors, kept so id() stays unique
        self.param_ids = {id(p) for p in params}

    def pack(self, t):
        base = t._base if t._base is not None else t
        self.keep.append(base)
        self.records.append(dict(op=self.op[0], autocast=self.op[1], shape=list(t.shape),
                                 dtype=str(t.dtype).replace("torch.", ""), storage=id(base),
                                 storage_bytes=base.numel() * base.element_size(),
                                 param=id(base) in self.param_ids))
        return t

    @staticmethod
    def unpack(t):
        return t

    def run(self, name, lst, fn, *args, **kw):
        self.op = (name, lst)
        try:
            return fn(*args, **kw)
        finally:
            self.op = ("(untagged)", NOT_LISTED)


class Autocast:
    """CUDA fp16 autocast's casts, made explicit: leaf weights are cast once per forward
    (autocast's cast cache), other tensors at every use."""

    def __init__(self, enabled=True):
        self.cache = {}
        self.enabled = enabled

    def fp16(self, t):
        if not self.enabled or t.dtype == torch.float16:
            return t
        if t.is_leaf and t.requires_grad:
            if id(t) not in self.cache:
                self.cache[id(t)] = t.to(torch.float16)
            return self.cache[id(t)]
        return t.to(torch.float16)

    @staticmethod
    def fp32(t):
        return t if t.dtype == torch.float32 else t.to(torch.float32)


def causal_attention(q, k, v):
    """Plain causal attention (B, NH, T, HS), computed in float32."""
    T, HS = q.shape[-2], q.shape[-1]
    att = (q.float() @ k.float().transpose(-2, -1)) * (1.0 / math.sqrt(HS))
    mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    return (att @ v.float()).to(q.dtype), torch.logsumexp(att, dim=-1)


class FlashSDPA(torch.autograd.Function):
    """F.scaled_dot_product_attention(q, k, v, is_causal=True) as PyTorch 2's flash backend
    keeps it for backward: q, k, v, the output and the float32 log-sum-exp (B, NH, T)."""

    @staticmethod
    def forward(ctx, q, k, v):
        B, NH, T, HS = q.shape
        # flash writes its output in (B, T, NH, HS) layout and returns it transposed, so
        # nanoGPT's y.transpose(1, 2).contiguous() is a no-op and c_proj saves this storage
        out = torch.empty(B, T, NH, HS, dtype=q.dtype, device=q.device).transpose(1, 2)
        lse = torch.empty(B, NH, T, dtype=torch.float32, device=q.device)
        if q.device.type != "meta":
            o, l = causal_attention(q, k, v)
            out.copy_(o)
            lse.copy_(l)
        ctx.save_for_backward(q, k, v, out, lse)
        return out

    @staticmethod
    def backward(ctx, dout):
        q, k, v, _, _ = ctx.saved_tensors
        with torch.enable_grad():
            qq, kk, vv = (t.detach().requires_grad_() for t in (q, k, v))
            o, _ = causal_attention(qq, kk, vv)
            return torch.autograd.grad(o, (qq, kk, vv), dout)


def build_params(cfg, device):
    C, L, V, Tm = cfg["n_embd"], cfg["n_layer"], cfg["vocab_size"], cfg["block_size"]
    P = {}

    def p(name, *shape):
        P[name] = torch.empty(*shape, dtype=torch.float32, device=device).normal_(0, 0.02) \
            if device != "meta" else torch.empty(*shape, dtype=torch.float32, device=device)
        P[name].requires_grad_(True)

    p("wte", V, C)
    p("wpe", Tm, C)
    for i in range(L):
        for ln in ("ln_1", "ln_2"):
            p(f"h.{i}.{ln}.weight", C)
            if cfg["bias"]:
                p(f"h.{i}.{ln}.bias", C)
        for name, shape in (("attn.c_attn", (3 * C, C)), ("attn.c_proj", (C, C)),
                            ("mlp.c_fc", (4 * C, C)), ("mlp.c_proj", (C, 4 * C))):
            p(f"h.{i}.{name}.weight", *shape)
            if cfg["bias"]:
                p(f"h.{i}.{name}.bias", shape[0])
    p("ln_f.weight", C)
    if cfg["bias"]:
        p("ln_f.bias", C)
    if device != "meta":
        with torch.no_grad():
            for k in P:
                if k.endswith("ln_1.weight") or k.endswith("ln_2.weight") or k == "ln_f.weight":
                    P[k].fill_(1.0)
                elif k.endswith(".bias"):
                    P[k].zero_()
    return P


def forward(cfg, P, idx, targets, rec, ac):
    """nanoGPT's GPT.forward under CUDA fp16 autocast (model.py, flash attention path)."""
    B, T = idx.shape
    C, NH, V = cfg["n_embd"], cfg["n_head"], cfg["vocab_size"]
    bias = cfg["bias"]
    b = (lambda name: P.get(name)) if bias else (lambda name: None)
    pos = torch.arange(0, T, dtype=torch.long, device=idx.device)
    tok = rec.run("embedding (wte)", NOT_LISTED, F.embedding, idx, P["wte"])
    pe = rec.run("embedding (wpe)", NOT_LISTED, F.embedding, pos, P["wpe"])
    x = tok + pe

    def linear(name, h):
        w = ac.fp16(P[name + ".weight"])
        bb = ac.fp16(P[name + ".bias"]) if bias else None
        return rec.run("linear " + name.split(".", 2)[-1], FP16_LIST, F.linear, ac.fp16(h), w, bb)

    def layer_norm(name, h):
        return rec.run("layer_norm", FP32_LIST, F.layer_norm, ac.fp32(h), (C,), P[name + ".weight"],
                       b(name + ".bias"), 1e-5)

    for i in range(cfg["n_layer"]):
        h = layer_norm(f"h.{i}.ln_1", x)
        q, k, v = linear(f"h.{i}.attn.c_attn", h).split(C, dim=2)
        q, k, v = (t.view(B, T, NH, C // NH).transpose(1, 2) for t in (q, k, v))
        y = rec.run("scaled_dot_product_attention (flash)", FP16_LIST, FlashSDPA.apply, q, k, v)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        x = x + linear(f"h.{i}.attn.c_proj", y)
        h = layer_norm(f"h.{i}.ln_2", x)
        h = linear(f"h.{i}.mlp.c_fc", h)
        h = rec.run("gelu", NOT_LISTED, F.gelu, h)
        x = x + linear(f"h.{i}.mlp.c_proj", h)
    x = layer_norm("ln_f", x)
    logits = rec.run("linear lm_head (tied to wte)", FP16_LIST, F.linear, ac.fp16(x),
                     ac.fp16(P["wte"]))
    logits32 = ac.fp32(logits)  # cross_entropy is in the float32 list: autocast's copy
    loss = rec.run("cross_entropy", FP32_LIST, F.cross_entropy, logits32.view(-1, V),
                   targets.view(-1), ignore_index=-1)
    return logits, logits32, loss


def measure(cfg, device, batch_size, autocast):
    torch.manual_seed(0)
    B, T = batch_size, cfg["block_size"]
    P = build_params(cfg, device)
    n_params = sum(p.numel() for p in P.values())
    rec = Recorder(P.values())
    if device == "meta":
        idx = torch.empty(B, T, dtype=torch.long, device="meta")
        tgt = torch.empty(B, T, dtype=torch.long, device="meta")
    else:
        idx = torch.randint(0, cfg["vocab_size"], (B, T))
        tgt = torch.randint(0, cfg["vocab_size"], (B, T))
    with torch.autograd.graph.saved_tensors_hooks(rec.pack, rec.unpack):
        logits, logits32, loss = forward(cfg, P, idx, tgt, rec, Autocast(autocast))
    loss.backward()
    missing = [k for k, p in P.items() if p.grad is None or p.grad.shape != p.shape]
    if missing:
        sys.exit(f"backward left no gradient for {missing[:3]}")
    return n_params, rec.records, logits, logits32


def summarise(cfg, args, n_params, records, logits, logits32):
    seen = set()
    by_op = {}
    saved_bytes = 0
    tensors = []
    for r in records:
        if r["param"]:
            continue  # a float32 parameter itself: counted with the parameters
        first = r["storage"] not in seen
        seen.add(r["storage"])
        if first:
            saved_bytes += r["storage_bytes"]
        o = by_op.setdefault(r["op"], dict(op=r["op"], autocast=r["autocast"], count=0, bytes=0))
        o["count"] += 1
        o["bytes"] += r["storage_bytes"] if first else 0
        tensors.append(dict(op=r["op"], shape=r["shape"], dtype=r["dtype"],
                            storage_bytes=r["storage_bytes"], shared_storage=not first))
    by_op = sorted(by_op.values(), key=lambda o: -o["bytes"])
    f32 = 4 * n_params
    logits32_b = logits32.numel() * logits32.element_size()
    logits16_b = logits.numel() * logits.element_size()
    totals = [
        dict(what=f"parameters, float32 ({n_params:,})", bytes=f32),
        dict(what="gradients, float32", bytes=f32),
        dict(what="AdamW m and v, float32", bytes=2 * f32),
        dict(what=f"saved for backward ({'autocast dtypes' if args.dtypes == 'autocast' else 'float32'}"
                  "; each storage once)", bytes=saved_bytes),
    ]
    if logits32 is not logits:
        totals.append(dict(what="float32 logits (B, T, V): autocast's copy for cross_entropy",
                           bytes=logits32_b))
    totals.append(dict(what=f"{str(logits.dtype).replace('torch.', '')} logits (B, T, V): "
                            "returned by model(), held by train.py", bytes=logits16_b))
    totals.append(dict(what="sum of the above", total=True,
                       bytes=sum(t["bytes"] for t in totals)))
    shape = {k: cfg[k] for k in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size",
                                 "bias")}
    out = dict(
        format=FORMAT,
        config=dict(shape, batch_size=args.batch_size, dropout=cfg["dropout"],
                    gradient_accumulation_steps=cfg["gradient_accumulation_steps"],
                    config_file=args.config),
        torch_version=torch.__version__,
        device=args.device,
        dtypes=args.dtypes,
        method=("scripts/nanogpt_memory.py: nanoGPT's model, one forward and backward under "
                "torch.autograd.graph.saved_tensors_hooks on PyTorch " + torch.__version__ +
                f" ({args.device} device); " + ("CUDA fp16 autocast dtypes from PyTorch's op lists; "
                                                 if args.dtypes == "autocast" else
                                                 "float32 throughout (no autocast); ") +
                "flash attention modelled by an autograd Function that saves what PyTorch 2's "
                "flash backend saves"),
        saved=dict(count=len(tensors), storages=len(seen), bytes=saved_bytes, by_op=by_op,
                   tensors=tensors),
        totals=totals,
        not_seen=NOT_SEEN,
    )
    r = REPORTED_4070
    if all(shape.get(k, args.batch_size if k == "batch_size" else None) == v
           for k, v in r["shape"].items()):
        out["reported"] = dict(process_mib=r["process_mib"], card_mib=r["card_mib"],
                               source=r["source"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config", help="a nanoGPT-style config file (configs/*.conf)")
    ap.add_argument("--out", help="JSON file (default configs/nanogpt/<config name>.json)")
    ap.add_argument("--device", choices=("meta", "cpu"), default="meta")
    ap.add_argument("--batch_size", type=int, help="override the config's batch_size")
    ap.add_argument("--dtypes", choices=("autocast", "float32"), default="autocast",
                    help="autocast: CUDA fp16 autocast's dtypes; float32: no autocast (the CPU "
                         "device has no float16 matmul, so --device cpu needs this)")
    args = ap.parse_args()
    if args.device == "cpu" and args.dtypes == "autocast":
        sys.exit("--device cpu: PyTorch's CPU has no float16 matmul; use --dtypes float32 (to "
                 "check the meta device's records against real tensors) or --device meta")
    cfg = load_config(args.config)
    args.batch_size = args.batch_size or cfg["batch_size"]
    if args.batch_size <= 0:
        sys.exit(f"--batch_size = {args.batch_size}: expected a positive integer")
    n_params, records, logits, logits32 = measure(cfg, args.device, args.batch_size,
                                                  args.dtypes == "autocast")
    out = summarise(cfg, args, n_params, records, logits, logits32)
    path = args.out or os.path.join(os.path.dirname(args.config), "nanogpt",
                                    os.path.splitext(os.path.basename(args.config))[0] + ".json")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"{path}: saved for backward {out['saved']['bytes'] / MIB:.1f} MiB "
          f"({out['saved']['storages']} storages, {out['saved']['count']} saved tensors)")
    for t in out["totals"]:
        print(f"  {t['what']:<66} {t['bytes'] / MIB:10.1f} MiB")
    if "reported" in out:
        print(f"  reported: {out['reported']['process_mib']} MiB in the process, "
              f"{out['reported']['card_mib']} MiB on the card")


if __name__ == "__main__":
    main()
