#!/usr/bin/env python3
"""gpu_estimate.py: a roofline ESTIMATE of one training micro-step of the CUDA backend, per
kernel family, on an RTX 4070 and an H100 SXM, before and after the speed work of issue 20, and
for llm.c's kernels at the same shapes. Nothing here is measured; every figure follows from the
launch shapes and the model's stated constants below.

Per kernel launch the model counts, from the shapes the backend launches with:
  tensor FLOPs  (f16 inputs, f32 accumulate: cuBLASLt GEMMs, tensor-core attention)
  FP32 FLOPs    (CUDA-core arithmetic: today's FlashAttention kernels, per-thread dot loops)
  DRAM bytes    (each tensor read or written once per kernel, all through DRAM: no L2 reuse
                 is credited, except in the loss-head chunk table's second column)
  L1 sectors    (32-byte sectors that uncoalesced loads request: a per-thread row loop whose
                 32 lanes read 32 different rows asks for 32 sectors per warp-wide load)
and takes time = max(tensor / (peak x EFF_TENSOR), fp32 / (peak x EFF_FP32),
bytes / (bandwidth x EFF_BW[access width] x SM fill), sectors / (L1 sectors per clock x SMs x
clock)) + launches x LAUNCH_S.

Usage: scripts/gpu_estimate.py [CONFIG] [--arenagpt ./arenagpt] > docs/results/gpu_estimate.md
The chunk the loss head uses after this work is asked from `arenagpt mem --format=json` (the
code's own rule); without the binary it is computed by the same rule (model/loss_chunk.h).
"""
import argparse
import json
import math
import os
import subprocess
import sys

# ---- the cards: peak figures and their sources ------------------------------------------------
GPUS = {
    "RTX 4070": dict(
        tensor=58e12, fp32=29e12, bw=504e9, sms=46, clock=2.475e9, l2=36 << 20,
        source="the figures issue 20 gives (58 TFLOP/s f16 tensor with f32 accumulate, 29 "
               "TFLOP/s FP32, 504 GB/s GDDR6X); 46 SMs, 2.475 GHz boost, 36 MiB L2: NVIDIA "
               "GeForce RTX 4070 specifications and the Ada (AD104) whitepaper"),
    "H100 SXM": dict(
        tensor=989.4e12, fp32=66.9e12, bw=3.35e12, sms=132, clock=1.98e9, l2=50 << 20,
        source="NVIDIA H100 Tensor Core GPU datasheet, SXM5: 989.4 TFLOP/s dense FP16 tensor "
               "(f32 accumulate), 66.9 TFLOP/s FP32, 3.35 TB/s HBM3; 132 SMs, 1.98 GHz boost, "
               "50 MiB L2 (H100 whitepaper)"),
}
# ---- the model's constants (assumptions, not measurements) -----------------------------------
EFF_TENSOR = 0.70  # share of the tensor peak a cuBLASLt GEMM of these sizes reaches
EFF_FP32 = 0.70    # share of the FP32 peak an FMA-bound kernel reaches
EFF_BW = {"v128": 0.90, "s32": 0.80, "s16": 0.60, "gemm": 0.85}  # share of DRAM bandwidth
LAUNCH_S = 3e-6    # per kernel launch: launch and tail, not hidden behind the previous kernel
L1_SECTORS_PER_SM_CLK = 4  # L1 returns 128 bytes (4 sectors of 32 B) per clock per SM


class K:
    """One kernel family's launches in one micro-step."""

    def __init__(self, family, name, tensor=0.0, fp32=0.0, bytes_=0.0, access="gemm",
                 lanes=0.0, launches=1, blocks=None):
        self.family, self.name = family, name
        self.tensor, self.fp32, self.bytes, self.access = tensor, fp32, bytes_, access
        self.lanes, self.launches, self.blocks = lanes, launches, blocks

    def time(self, g):
        fill = 1.0 if self.blocks is None else min(1.0, self.blocks / g["sms"])
        t = max(self.tensor / (g["tensor"] * EFF_TENSOR), self.fp32 / (g["fp32"] * EFF_FP32),
                self.bytes / (g["bw"] * EFF_BW[self.access] * fill),
                self.lanes / (g["sms"] * L1_SECTORS_PER_SM_CLK * g["clock"]))
        return t + self.launches * LAUNCH_S


def read_config(path):
    keys = {}
    for line in open(path):
        line = line.split("#")[0].strip()
        if "=" in line:
            k, v = (x.strip() for x in line.split("=", 1))
            keys[k] = v.strip("'\"")
    return keys


def auto_chunk(n, vp, act_bytes=2, budget=160 << 20, align=64):
    """model/loss_chunk.h's rule (used when the binary is not there to ask)."""
    max_rows = budget // (vp * act_bytes)
    if max_rows >= align:
        max_rows -= max_rows % align
    max_rows = max(1, min(max_rows, n))
    k = -(-n // max_rows)
    rows = -(-n // k)
    up = -(-rows // align) * align
    return min(up if up <= max_rows else rows, n)


def loss_head(S, chunk, ce_reads, ce_access, l2_bytes=0):
    """The chunked loss head over all N rows: per chunk the logits GEMM, the cross-entropy, the
    dW GEMM (grad.wte +=) and the dx GEMM. With l2_bytes > 0 a chunk's logits that fit in half
    of it are credited to L2 (no DRAM bytes); the main tables count everything through DRAM."""
    N, C, Vp = S["N"], S["C"], S["Vp"]
    chunks = -(-N // chunk)
    in_l2 = l2_bytes > 0 and chunk * Vp * 2 <= l2_bytes / 2
    lg = 0 if in_l2 else N * Vp * 2  # every chunk's logits, once
    wte = Vp * C * 2 * chunks  # wte (or grad.wte) once per chunk
    f = 2.0 * N * C * Vp
    x = N * C * 2
    ks = [
        K("loss head", "logits GEMM", tensor=f, bytes_=x + wte + lg, launches=chunks),
        K("loss head", f"cross-entropy ({ce_reads} reads)", bytes_=(ce_reads + 1) * lg,
          access=ce_access, launches=chunks),
        K("loss head", "dW GEMM (grad.wte +=)", tensor=f, bytes_=lg + x + 2 * wte,
          launches=chunks),
        K("loss head", "dx GEMM", tensor=f, bytes_=lg + wte + x, launches=chunks),
    ]
    return ks, chunks, in_l2


def gemm(name, family, M, IC, OC, count, fwd_residual=False):
    """Forward and backward of y (M, OC) = x (M, IC) W^T: forward, dinp, dW (+=, f16)."""
    f = 2.0 * M * IC * OC
    x, w, y = M * IC * 2, IC * OC * 2, M * OC * 2
    return [
        K(family, name + " fwd", tensor=f * count,
          bytes_=(x + w + y + (y if fwd_residual else 0)) * count, launches=count),
        K(family, name + " bwd dinp", tensor=f * count, bytes_=(y + w + x) * count,
          launches=count),
        K(family, name + " bwd dW", tensor=f * count, bytes_=(y + x + 2 * w) * count,
          launches=count),
    ]


def attention(S, kind, variant):
    B, T, C, NH, HS, L = S["B"], S["T"], S["C"], S["NH"], S["HS"], S["L"]
    sq = B * NH * T * T  # the (B, NH, T, T) scores
    tri = B * NH * T * (T + 1) / 2  # their causal half
    g = 2.0 * sq * HS  # one full-square batched GEMM over the heads
    qkv, y = B * T * 3 * C * 2, B * T * C * 2
    fam = "attention " + kind
    if kind == "naive":
        ks = [
            K(fam, "scores GEMM", tensor=g * L, bytes_=(2 * y + sq * 2) * L, launches=B * L),
            K(fam, "causal softmax", bytes_=2 * sq * 2 * L, access="s16", launches=L),
            K(fam, "att V GEMM", tensor=g * L, bytes_=(sq * 2 + 2 * y) * L, launches=B * L),
            K(fam, "dV GEMM", tensor=g * L, bytes_=(sq * 2 + 2 * y) * L, launches=B * L),
        ]
        if variant == "before_dscores":
            # one block per row; each thread dots its own row of v (HS scalar loads and FMAs
            # per score: the 32 lanes of a warp read 32 rows, 32 L1 sectors per load), then D
            # and the softmax backward in place
            ks.append(K(fam, "dscores (per-thread dot loops)", fp32=2.0 * tri * HS * L,
                        bytes_=(2 * sq * 2 + y) * L, access="s16", lanes=tri * HS * L,
                        launches=L))
        else:
            # dP = dO V^T through the batched GEMM, then a warp per row: P (dP - D) in place
            ks.append(K(fam, "dP GEMM", tensor=g * L, bytes_=(2 * y + sq * 2) * L,
                        launches=B * L))
            ks.append(K(fam, "softmax backward (warp per row)", bytes_=3 * sq * 2 * L,
                        access="v128" if variant != "llmc" else "s16", launches=L))
        ks.append(K(fam, "dQ, dK GEMMs", tensor=2 * g * L, bytes_=2 * (sq * 2 + 2 * y) * L,
                    launches=2 * B * L))
        if variant == "llmc":  # llm.c copies q, k, v out of qkv and y back, both ways
            ks.append(K(fam, "permute / unpermute (llm.c)", bytes_=(4 * qkv + 4 * y) * L,
                        access="s16", launches=4 * L))
        return ks
    lse = B * NH * T * 4
    if kind == "flash (FP32 FMA kernels)":
        # forward: S = Q K^T and O = P V over the causal half on CUDA cores; backward: the
        # dK/dV pass (S, dP, dV, dK) and the dQ pass (S, dP, dQ): 7 products
        return [
            K(fam, "forward", fp32=2 * 2.0 * tri * HS * L, bytes_=(qkv + y + lse) * L,
              launches=L),
            K(fam, "rowdot D", bytes_=(2 * y + lse) * L, access="s16", launches=L),
            K(fam, "backward (dK/dV and dQ passes)", fp32=7 * 2.0 * tri * HS * L,
              bytes_=(2 * qkv + 2 * y + 2 * lse) * L, launches=2 * L),
        ]
    # tensor-core FlashAttention-2 (issue 21) and cuDNN: 2 GEMMs forward, 5 backward, causal half
    return [
        K(fam, "forward", tensor=2 * 2.0 * tri * HS * L, bytes_=(qkv + y + lse) * L, launches=L),
        K(fam, "backward", tensor=5 * 2.0 * tri * HS * L, bytes_=(2 * qkv + 2 * y + 2 * lse) * L,
          launches=2 * L),
    ]


def micro_step(S, v, g, chunk, attn_kind, attn_variant):
    """Every kernel of one micro-step (forward, fused loss head, backward) and the optimizer's
    share (one update per gradient_accumulation_steps micro-steps)."""
    B, T, C, L, N, Vp = S["B"], S["T"], S["C"], S["L"], S["N"], S["Vp"]
    ew = "v128" if v["vector"] else "s16"
    act = N * C * 2
    ks = []
    ks.append(K("encoder", "encoder forward", bytes_=3 * act + N * 4, access=ew))
    ks.append(K("encoder", "encoder backward (wpe, sorted wte)", bytes_=act * 2 + 4 * T * C * 2
                + 2 * min(N, S["V"]) * C * 2, access="s16", launches=8))
    n_ln = 2 * L + 1
    ks.append(K("layernorm", "layernorm forward", bytes_=(2 * act + 8 * N) * n_ln, access=ew,
                launches=n_ln))
    ks.append(K("layernorm", "layernorm backward dinp", bytes_=(4 * act + 8 * N) * n_ln,
                access=ew, launches=n_ln))
    ks.append(K("layernorm", "layernorm weight/bias column sums", bytes_=(2 * act + 8 * N) * n_ln,
                access="s16", launches=n_ln * (2 if v["col_slices"] else 1),
                blocks=None if v["col_slices"] else math.ceil(C / 32)))
    for name, ic, oc, res in (("qkv", C, 3 * C, False), ("attn proj", C, C, True),
                              ("mlp fc", C, 4 * C, False), ("mlp proj", 4 * C, C, True)):
        ks += gemm(name, "matmul (cuBLASLt)", N, ic, oc, L, fwd_residual=res)
    ks.append(K("gelu", "gelu forward", bytes_=2 * 4 * act * L, access=ew, launches=L))
    ks.append(K("gelu", "gelu backward", bytes_=3 * 4 * act * L, access=ew, launches=L))
    ks += attention(S, attn_kind, attn_variant)
    lh, chunks, in_l2 = loss_head(S, chunk, v["ce_reads"], ew)
    ks += lh
    P, gas = S["params"], S["gas"]
    # AdamW: param f16, master f32, grad f16, m and v f32 read; param, master, m, v written
    # both read one value per access, ours and llm.c's (adamw_kernel3, global_norm_squared)
    ks.append(K("optimizer (1/gas)", "grad norm", bytes_=P * 2 / gas, access="s16",
                launches=(S["n_tensors"] if v["per_tensor_optim"] else 2) / gas))
    ks.append(K("optimizer (1/gas)", "AdamW", bytes_=P * 30 / gas, access="s32", launches=(S["n_tensors"] if v["per_tensor_optim"] else 1) / gas))
    return ks, chunks, in_l2


VARIANTS = {
    # the CUDA backend before issue 20's work
    "before": dict(vector=False, col_slices=False, ce_reads=3, per_tensor_optim=True,
                   attn="before_dscores"),
    # this work, as committed (see the table of what changed)
    "after": dict(vector=True, col_slices=True, ce_reads=2, per_tensor_optim=False,
                  attn="gemm"),
    # llm.c's kernels (read from karpathy/llm.c: fused_classifier.cuh, layernorm.cuh,
    # attention.cuh, adamw.cuh, global_norm.cuh): 128-bit access throughout, the logits of all
    # B*T rows at once, dP through cuBLAS and a softmax-backward kernel, one AdamW and one
    # norm launch over the flat parameter buffer
    "llm.c": dict(vector=True, col_slices=True, ce_reads=2, per_tensor_optim=False,
                  attn="llmc"),
}


def shapes(cfg):
    L, NH, C = int(cfg["n_layer"]), int(cfg["n_head"]), int(cfg["n_embd"])
    T, B = int(cfg["block_size"]), int(cfg["batch_size"])
    V = int(cfg.get("vocab_size", 50304))
    Vp = -(-V // 128) * 128
    gas = int(eval(cfg.get("gradient_accumulation_steps", "1"), {}))
    params = Vp * C + T * C + L * (12 * C * C + 4 * C) + 2 * C  # bias-free GPT-2
    n_tensors = 2 + L * 6 + 1  # wte, wpe; per layer ln_1, qkv, proj, ln_2, fc, proj; ln_f
    return dict(L=L, NH=NH, C=C, HS=C // NH, T=T, B=B, V=V, Vp=Vp, N=B * T, gas=gas,
                params=params, n_tensors=n_tensors)


def ask_chunk(binary, config):
    try:
        out = subprocess.run([binary, "mem", config, "--device=cuda", "--format=json"],
                             capture_output=True, text=True, check=True).stdout
        return int(json.loads(out)["loss_chunk"]), f"`{binary} mem {config} --format=json`"
    except (OSError, subprocess.CalledProcessError, ValueError, KeyError):
        return None, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config", nargs="?", default="configs/small_4070.conf")
    ap.add_argument("--arenagpt", default="./arenagpt")
    a = ap.parse_args()
    S = shapes(read_config(a.config))
    old_chunk = max(1, (32 << 20) // (S["Vp"] * 4))  # the rule before: 32 MiB of 4-byte rows
    new_chunk, how = ask_chunk(a.arenagpt, a.config)
    if new_chunk is None:
        new_chunk, how = auto_chunk(S["N"], S["Vp"]), "model/loss_chunk.h's rule (computed)"
    chunks = {"before": old_chunk, "after": new_chunk, "llm.c": S["N"]}
    write(S, a.config, chunks, how)


def fmt_ms(t):
    return f"{t * 1e3:.2f}"


def write(S, config, chunks, how):
    p = print
    p("# GPU time per micro-step: a roofline ESTIMATE (not a measurement)\n")
    p("**Every figure on this page is an estimate from a model, not a GPU measurement.** "
      "No GPU has run this code. Generated by `scripts/gpu_estimate.py " + config + " > "
      "docs/results/gpu_estimate.md`; the model, its constants and the cards' figures are below "
      "and in the script. `scripts/gpu_check.sh RESULTS_DIR kernels` times the same kernel "
      "families with CUDA events on a card, so the estimate can be checked.\n")
    p(f"Shapes ({config}): B {S['B']}, T {S['T']}, C {S['C']}, NH {S['NH']}, L {S['L']}, "
      f"V {S['V']} (Vp {S['Vp']}), f16 activations and gradients, f32 master weights and AdamW "
      f"state, recompute none, gradient_accumulation_steps {S['gas']} (the optimizer's launches "
      f"are counted as 1/{S['gas']} per micro-step). Loss-head chunk: before {chunks['before']} "
      f"rows (the old rule: 32 MiB of 4-byte logits), after {chunks['after']} rows ({how}), "
      f"llm.c all {S['N']} rows at once.\n")
    p("## Model\n")
    p("Per kernel: time = max(tensor FLOPs / (tensor peak x {:.2f}), FP32 FLOPs / (FP32 peak x "
      "{:.2f}), DRAM bytes / (bandwidth x access efficiency x SM fill), L1 sectors of uncoalesced loads / "
      "(SMs x {} sectors x clock)) + launches x {:.0f} us. Access efficiency (share of DRAM "
      "bandwidth reached): 128-bit {:.2f}, 32-bit {:.2f}, 16-bit {:.2f}, GEMM operands {:.2f}. SM "
      "fill: a kernel with fewer blocks than SMs reaches blocks/SMs of the bandwidth. Every "
      "tensor goes through DRAM (no L2 reuse is credited; see the loss-head table for what "
      "that assumption changes). These constants are assumptions; the counts (FLOPs, "
      "bytes, launches) follow from the launch shapes."
      .format(EFF_TENSOR, EFF_FP32, L1_SECTORS_PER_SM_CLK, LAUNCH_S * 1e6, EFF_BW["v128"],
              EFF_BW["s32"], EFF_BW["s16"], EFF_BW["gemm"]))
    p("")
    for gname, g in GPUS.items():
        p(f"- {gname}: {g['source']}.")
    p("")
    p("What \"after\" has (this work): the loss-head chunk from the 160 MiB rule, the "
      "cross-entropy in one read pass before the gradient pass (2 reads of the logits instead of "
      "3), 128-bit access in the encoder, LayerNorm, GELU and bias kernels, the LayerNorm column "
      "sums over enough blocks to fill the card, the naive attention backward's dP through the "
      "batched GEMM and a warp per row for P (dP - D) (128-bit), one multi-tensor AdamW launch and "
      "one gradient-norm reduction per step. AdamW and the norm still read one value per access, "
      "as llm.c's do (modelled as 32- and 16-bit access in every column).\n")
    totals = {}
    for gname, g in GPUS.items():
        p(f"## {gname}\n")
        fams = {}
        for vname, v in VARIANTS.items():
            ks, n_chunks, in_l2 = micro_step(S, v, g, chunks[vname], "naive", v["attn"])
            for k in ks:
                f = fams.setdefault(k.family, {})
                r = f.setdefault(vname, [0.0, 0.0, 0.0, 0.0])
                r[0] += k.tensor + k.fp32
                r[1] += k.bytes
                r[2] += k.time(g)
                r[3] += k.launches
            totals[(gname, vname, "naive")] = sum(k.time(g) for k in ks)
            fams.setdefault("_chunks", {})[vname] = (n_chunks, in_l2)
        p("Naive attention, per kernel family (GFLOP, DRAM GB, estimated ms):\n")
        p("| family | before GFLOP | before GB | before ms | after GB | after ms | llm.c GB "
          "| llm.c ms |")
        p("|---|---:|---:|---:|---:|---:|---:|---:|")
        for fam, r in fams.items():
            if fam.startswith("_"):
                continue
            b, a_, l = r["before"], r["after"], r["llm.c"]
            p(f"| {fam} | {b[0] / 1e9:.1f} | {b[1] / 1e9:.3f} | {fmt_ms(b[2])} | "
              f"{a_[1] / 1e9:.3f} | {fmt_ms(a_[2])} | {l[1] / 1e9:.3f} | {fmt_ms(l[2])} |")
        tb, ta, tl = (totals[(gname, x, "naive")] for x in ("before", "after", "llm.c"))
        p(f"| **micro-step** | | | **{fmt_ms(tb)}** | | **{fmt_ms(ta)}** | | **{fmt_ms(tl)}** |\n")
        ch = fams["_chunks"]
        p("Loss head: " + "; ".join(f"{x} {ch[x][0]} chunk(s) of {chunks[x]} rows"
                                    for x in ("before", "after", "llm.c")) + ".\n")
        p("Micro-step by attention kind (the rest of the step as in each column):\n")
        p("| attention | before ms | after ms | llm.c ms |")
        p("|---|---:|---:|---:|")
        for kind, label in (("naive", "naive"),
                            ("flash (FP32 FMA kernels)", "flash: today's FP32-FMA kernels"),
                            ("flash (tensor cores)", "flash: tensor-core FlashAttention-2 "
                                                     "(issue 21; llm.c: cuDNN)"),
                            ("cudnn", "cudnn")):
            row = []
            for vname, v in VARIANTS.items():
                var = v["attn"]
                kk = kind
                if vname == "llm.c" and kind.startswith("flash (FP32"):
                    row.append("-")  # llm.c has no FP32 flash kernel
                    continue
                ks, _, _ = micro_step(S, v, g, chunks[vname], kk, var)
                row.append(fmt_ms(sum(k.time(g) for k in ks)))
            p(f"| {label} | " + " | ".join(row) + " |")
        p("")
    g = GPUS["RTX 4070"]
    tb, ta, tl = (totals[("RTX 4070", x, "naive")] for x in ("before", "after", "llm.c"))
    p("## Reading\n")
    p(f"- RTX 4070, naive attention: estimated {fmt_ms(tb)} ms per micro-step before, "
      f"{fmt_ms(ta)} ms after ({tb / ta:.2f}x), llm.c's kernels {fmt_ms(tl)} ms (after / llm.c "
      f"= {ta / tl:.2f}).")
    p("- The loss head's FLOPs do not depend on the chunk (6 N C Vp); the chunk changes the wte "
      "and grad.wte traffic (once per chunk) and whether a chunk's logits could stay in L2 "
      "between its four kernels (at most half the L2: about 180 rows at Vp 50304 on the 4070). "
      "The model credits no L2 reuse; the second column below credits it for the logits, "
      "which favours small chunks. Which of the two a card is closer to is for a GPU run to "
      "say (`gpu_check.sh ... kernels` at two loss_chunk values).")
    p("")
    p("Loss head alone on the RTX 4070 (after's kernels; estimated ms per micro-step):\n")
    p("| chunk rows | chunks | wte traffic GB | est. ms, all through DRAM | est. ms, logits "
      "credited to L2 when they fit |")
    p("|---:|---:|---:|---:|---:|")
    for c in sorted({64, chunks["before"], 512, 1024, chunks["after"], 4096, S["N"]}):
        ks, n, _ = loss_head(S, c, 2, "v128")
        ks2, _, in_l2 = loss_head(S, c, 2, "v128", g["l2"])
        wte_gb = n * 4 * S["Vp"] * S["C"] * 2 / 1e9
        p(f"| {c} | {n} | {wte_gb:.2f} | {fmt_ms(sum(k.time(g) for k in ks))} | "
          f"{fmt_ms(sum(k.time(g) for k in ks2))}{' (in L2)' if in_l2 else ''} |")
    p("")
    p("What only a GPU shows: the real efficiency of each kernel (the constants above), L2 "
      "hit rates, launch overlap, and cuBLASLt's choice of algorithm for the thin loss-head "
      "GEMMs. `scripts/gpu_check.sh RESULTS_DIR kernels` records per-family CUDA-event times "
      "at this config to compare with the tables.")


if __name__ == "__main__":
    sys.exit(main())
