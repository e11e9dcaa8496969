#!/usr/bin/env python3
"""torch_baseline.py: the PyTorch baseline that arenagpt's GPU numbers are held against.

nanoGPT's GPT-2 (pre-LayerNorm blocks, tied token embedding and head, causal self-attention,
4x MLP with GELU, nanoGPT's initialisation) and its training step, written for this project:
fp16 autocast with GradScaler, AdamW with weight decay on the 2-D weights (fused where PyTorch
has it), flash attention through scaled_dot_product_attention, gradient accumulation, gradient
clipping; eager or torch.compile. The model and the batch come from an arenagpt config file (our
keys, which are nanoGPT's) and an llm.c-format shard (what `arenagpt prepare` writes).

It times `steps` iterations after `warmup` iterations (compilation happens in warm-up) and
prints one line that gpu_check.sh reads:

  torch_baseline: RESULT mode=eager device=cuda tokens_per_iter=... ms_per_iter=...
    tokens_per_s=... peak_allocated_mib=... peak_reserved_mib=... device_used_mib=...
    loss_first=... loss_last=... fallbacks=...

peak_*_mib are torch.cuda's own peaks (max_memory_allocated / max_memory_reserved over the
whole run, warm-up included; n/a on the CPU); device_used_mib is cudaMemGetInfo's total - free
at the end (the whole device: context, kernels, cuBLAS and the caching allocator's pool, plus
any other process). The process's memory as the driver lists it is sampled from outside by
gpu_check.sh. Where this PyTorch lacks
a feature (Debian's 1.13 on the CPU: no scaled_dot_product_attention, no fused AdamW, no
torch.compile, no fp16 autocast on the CPU), it falls back and says so on a `FALLBACK` line:
the numbers are then not the baseline's.

Usage: torch_baseline.py CONFIG --data_dir=DIR [--mode=eager|compile] [--steps=N]
       [--warmup=N] [--device=cuda|cpu] [--seed=N] [--key=value ...]
The --key=value overrides take the config's keys (batch_size, block_size, n_layer, ...).
Exit status: 0 done; 2 bad arguments or config; 1 a run that failed (non-finite loss).
"""
import ast
import contextlib
import math
import os
import sys
import time

# config keys this baseline reads; anything else in the file is accepted and ignored
MODEL_KEYS = {"n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 1024,
              "vocab_size": 50304, "bias": False, "dropout": 0.0, "gelu": "tanh"}
TRAIN_KEYS = {"batch_size": 12, "gradient_accumulation_steps": 1, "learning_rate": 6e-4,
              "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95, "grad_clip": 1.0,
              "dtype": "float16"}
RUN_KEYS = {"data_dir": "", "mode": "eager", "steps": 20, "warmup": 5, "device": "cuda",
            "seed": 1337}


def die(msg):
    print("torch_baseline: error: " + msg, file=sys.stderr)
    sys.exit(2)


def literal(text, where):
    """A Python literal, or a product/sum of numbers such as `5 * 8` (as our configs allow)."""
    text = text.strip()
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        die("%s: cannot read value '%s'" % (where, text))

    def ev(n):
        if isinstance(n, ast.Constant):
            return n.value
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return -ev(n.operand)
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Mult, ast.Add, ast.Sub, ast.Div)):
            a, b = ev(n.left), ev(n.right)
            return {ast.Mult: a * b, ast.Add: a + b, ast.Sub: a - b,
                    ast.Div: a / b if b else math.nan}[type(n.op)]
        if isinstance(n, ast.Name) and n.id in ("True", "False"):
            return n.id == "True"
        die("%s: '%s' is not a literal" % (where, text))

    return ev(node)


def typed(key, value, default, where):
    if isinstance(default, bool):
        if isinstance(value, str):
            value = value in ("True", "true", "1")
        return bool(value)
    if isinstance(default, int):
        if isinstance(value, float) and value != int(value):
            die("%s: %s = %r: expected an integer" % (where, key, value))
        try:
            return int(value)
        except (TypeError, ValueError):
            die("%s: %s = %r: expected an integer" % (where, key, value))
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            die("%s: %s = %r: expected a number" % (where, key, value))
    return str(value)


def read_args(argv):
    if len(argv) < 2 or argv[1].startswith("--"):
        die("usage: torch_baseline.py CONFIG --data_dir=DIR [--mode=eager|compile] "
            "[--steps=N] [--warmup=N] [--device=cuda|cpu] [--key=value ...]")
    defaults = dict(MODEL_KEYS, **TRAIN_KEYS, **RUN_KEYS)
    cfg = dict(defaults)
    path = argv[1]
    try:
        lines = open(path).read().splitlines()
    except OSError as e:
        die("cannot read config '%s': %s" % (path, e.strerror))
    for i, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            die("%s:%d: expected 'key = value', got '%s'" % (path, i, line))
        k, v = (s.strip() for s in line.split("=", 1))
        if k in defaults:
            cfg[k] = typed(k, literal(v, "%s:%d" % (path, i)), defaults[k], "%s:%d" % (path, i))
    for a in argv[2:]:
        if not a.startswith("--") or "=" not in a:
            die("argument '%s': expected --key=value" % a)
        k, v = a[2:].split("=", 1)
        if k not in defaults:
            die("argument '%s': unknown key '%s' (known: %s)" % (a, k, ", ".join(sorted(defaults))))
        # text keys (paths, names) are taken as written, quoted or not
        val = v.strip("'\"") if isinstance(defaults[k], str) else literal(v, "argument " + a)
        cfg[k] = typed(k, val, defaults[k], "argument " + a)
    if cfg["mode"] not in ("eager", "compile"):
        die("--mode=%s: expected eager or compile" % cfg["mode"])
    if cfg["device"] not in ("cuda", "cpu"):
        die("--device=%s: expected cuda or cpu" % cfg["device"])
    if cfg["n_embd"] % cfg["n_head"]:
        die("n_embd %d is not a multiple of n_head %d" % (cfg["n_embd"], cfg["n_head"]))
    if cfg["gelu"] not in ("tanh", "erf"):
        die("gelu = %s: expected tanh or erf" % cfg["gelu"])
    for k in ("steps", "batch_size", "block_size", "gradient_accumulation_steps"):
        if cfg[k] < 1:
            die("%s = %d: expected at least 1" % (k, cfg[k]))
    if cfg["warmup"] < 0:
        die("warmup = %d: expected 0 or more" % cfg["warmup"])
    if not cfg["data_dir"]:
        die("--data_dir=DIR is needed (a folder with train.bin from arenagpt prepare)")
    return cfg


def read_shard(path):
    """llm.c shard: 256 int32 header (magic 20240520, version 1, token count), uint16 tokens."""
    import numpy as np
    try:
        header = np.fromfile(path, dtype=np.int32, count=256)
    except OSError as e:
        die("cannot read shard '%s': %s" % (path, e.strerror))
    if header.size < 256 or header[0] != 20240520 or header[1] != 1:
        die("'%s' is not an llm.c token shard (magic 20240520, version 1)" % path)
    tokens = np.memmap(path, dtype=np.uint16, mode="r", offset=256 * 4, shape=(int(header[2]),))
    return tokens


def main():
    cfg = read_args(sys.argv)
    import numpy as np
    import torch
    import torch.nn as nn
    from torch.nn import functional as F

    fallbacks = []
    dev = cfg["device"]
    if dev == "cuda" and not torch.cuda.is_available():
        die("--device=cuda, but torch.cuda.is_available() is False")
    has_sdpa = hasattr(F, "scaled_dot_product_attention")
    if not has_sdpa:
        fallbacks.append("no scaled_dot_product_attention (PyTorch %s): attention written out "
                         "(masked softmax), not flash" % torch.__version__)
    use_amp = dev == "cuda" and cfg["dtype"] == "float16"
    if dev != "cuda":
        fallbacks.append("fp16 autocast and GradScaler are CUDA-only here: float32 on the CPU")
    elif not use_amp:
        fallbacks.append("dtype = %s: no fp16 autocast" % cfg["dtype"])

    torch.manual_seed(cfg["seed"])
    np.random.seed(cfg["seed"])
    C, H, T, L = cfg["n_embd"], cfg["n_head"], cfg["block_size"], cfg["n_layer"]
    V, bias = cfg["vocab_size"], cfg["bias"]
    gelu_approx = "tanh" if cfg["gelu"] == "tanh" else "none"

    class LayerNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(C))
            self.bias = nn.Parameter(torch.zeros(C)) if bias else None

        def forward(self, x):
            return F.layer_norm(x, (C,), self.weight, self.bias, 1e-5)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(C, 3 * C, bias=bias)
            self.c_proj = nn.Linear(C, C, bias=bias)
            if not has_sdpa:
                mask = torch.tril(torch.ones(T, T, dtype=torch.bool)).view(1, 1, T, T)
                self.register_buffer("mask", mask, persistent=False)

        def forward(self, x):
            B, t, _ = x.size()
            q, k, v = self.c_attn(x).split(C, dim=2)
            q, k, v = (z.view(B, t, H, C // H).transpose(1, 2) for z in (q, k, v))
            if has_sdpa:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
                att = att.masked_fill(~self.mask[:, :, :t, :t], float("-inf"))
                y = F.softmax(att, dim=-1) @ v
            return self.c_proj(y.transpose(1, 2).contiguous().view(B, t, C))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = LayerNorm(), Attention()
            self.ln_2 = LayerNorm()
            self.c_fc = nn.Linear(C, 4 * C, bias=bias)
            self.c_proj = nn.Linear(4 * C, C, bias=bias)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate=gelu_approx))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(V, C)
            self.wpe = nn.Embedding(T, C)
            self.h = nn.ModuleList(Block() for _ in range(L))
            self.ln_f = LayerNorm()
            self.lm_head = nn.Linear(C, V, bias=False)
            self.lm_head.weight = self.wte.weight  # tied, as GPT-2
            self.apply(self._init)
            for name, p in self.named_parameters():  # scaled residual projections
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * L))

        @staticmethod
        def _init(m):
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)

        def forward(self, idx, targets):
            t = idx.size(1)
            pos = torch.arange(t, device=idx.device)
            x = self.wte(idx) + self.wpe(pos)
            for blk in self.h:
                x = blk(x)
            logits = self.lm_head(self.ln_f(x))
            return F.cross_entropy(logits.view(-1, V).float(), targets.view(-1))

    model = GPT().to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg["weight_decay"]},
              {"params": no_decay, "weight_decay": 0.0}]
    import inspect
    adamw_args = dict(lr=cfg["learning_rate"], betas=(cfg["beta1"], cfg["beta2"]))
    if "fused" in inspect.signature(torch.optim.AdamW).parameters and dev == "cuda":
        adamw_args["fused"] = True
        adam_kind = "fused"
    else:
        adam_kind = "plain"
        fallbacks.append("no fused AdamW (PyTorch %s on %s): the default AdamW"
                         % (torch.__version__, dev))
    optimizer = torch.optim.AdamW(groups, **adamw_args)
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):  # PyTorch 2.3 and later
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    else:
        scaler = torch.cuda.amp.GradScaler(enabled=use_amp)

    step_model = model
    if cfg["mode"] == "compile":
        if hasattr(torch, "compile"):
            step_model = torch.compile(model)
        else:
            fallbacks.append("no torch.compile (PyTorch %s): mode=compile runs eager"
                             % torch.__version__)

    tokens = read_shard(os.path.join(cfg["data_dir"], "train.bin"))
    B, accum = cfg["batch_size"], cfg["gradient_accumulation_steps"]
    if len(tokens) <= T + 1:
        die("train.bin has %d tokens: fewer than block_size + 1 = %d" % (len(tokens), T + 1))

    def get_batch():
        ix = np.random.randint(0, len(tokens) - T - 1, size=B)
        x = torch.from_numpy(np.stack([tokens[i:i + T].astype(np.int64) for i in ix]))
        y = torch.from_numpy(np.stack([tokens[i + 1:i + 1 + T].astype(np.int64) for i in ix]))
        if dev == "cuda":
            return x.pin_memory().to(dev, non_blocking=True), y.pin_memory().to(dev, non_blocking=True)
        return x, y

    def sync():
        if dev == "cuda":
            torch.cuda.synchronize()

    def amp_ctx():
        if use_amp:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def step():  # returns the mean loss as a tensor: no host sync inside the timed loop
        total = 0.0
        x, y = get_batch()
        for _ in range(accum):
            with amp_ctx():
                loss = step_model(x, y) / accum
            x, y = get_batch()  # the next batch loads while the GPU works, as nanoGPT
            scaler.scale(loss).backward()
            total += loss.detach()
        if cfg["grad_clip"] > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        return total

    print("torch_baseline: PyTorch %s, device %s%s, mode %s, %d parameters, AdamW %s, "
          "attention %s, autocast %s" % (torch.__version__, dev,
                                         " (" + torch.cuda.get_device_name(0) + ")"
                                         if dev == "cuda" else "", cfg["mode"], n_params,
                                         adam_kind, "sdpa" if has_sdpa else "written out",
                                         "fp16" if use_amp else "off"), flush=True)
    for f in fallbacks:
        print("torch_baseline: FALLBACK " + f, flush=True)
    if dev == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t_warm = time.time()
    first = None
    for i in range(cfg["warmup"]):
        loss = step()
        first = float(loss) if first is None else first
    sync()
    print("torch_baseline: warm-up %d iterations in %.1f s" % (cfg["warmup"], time.time() - t_warm),
          flush=True)
    losses = []
    t0 = time.time()
    for i in range(cfg["steps"]):
        losses.append(step())
    sync()
    dt = time.time() - t0
    losses = [float(v) for v in losses]
    first = losses[0] if first is None else first
    tokens_per_iter = B * T * accum
    if dev == "cuda":
        alloc = "%.1f" % (torch.cuda.max_memory_allocated() / 2**20)
        reserved = "%.1f" % (torch.cuda.max_memory_reserved() / 2**20)
        free, total = torch.cuda.mem_get_info()
        device_used = "%.1f" % ((total - free) / 2**20)
    else:
        alloc = reserved = device_used = "n/a"
    print("torch_baseline: RESULT mode=%s device=%s tokens_per_iter=%d ms_per_iter=%.2f "
          "tokens_per_s=%.0f peak_allocated_mib=%s peak_reserved_mib=%s device_used_mib=%s "
          "loss_first=%.4f loss_last=%.4f fallbacks=%d"
          % (cfg["mode"], dev, tokens_per_iter, 1000 * dt / cfg["steps"],
             tokens_per_iter * cfg["steps"] / dt, alloc, reserved, device_used, first, losses[-1],
             len(fallbacks)), flush=True)
    if not all(math.isfinite(v) for v in losses):
        print("torch_baseline: error: non-finite loss", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
