#!/usr/bin/python3
"""bench_torch_cpu.py: the PyTorch side of scripts/bench_cpu.sh. Times a GPT-2 training step
(forward, backward, global-norm clip, AdamW) on the CPU in fp32 and prints two lines (wall
and process CPU time per step, the second less disturbed by other load on the machine):
    torch ms/step median <ms> min <ms> tok/s median <n> best <n> (...)
    torch cpu time ms/step median <ms> min <ms> (all threads)

Run with Debian's python3-torch (/usr/bin/python3). The model is nanoGPT's (pre-LN GPT-2,
tied LM head, learned positions, GELU, bias option, naive causal attention: torch 1.13 has
no scaled_dot_product_attention), written here; the optimizer is torch.optim.AdamW with
nanoGPT's two groups (decay on the 2-D tensors). The batch is random tokens, the same each
step. Threads: torch.set_num_threads(--threads) (OpenMP/OpenBLAS follow OMP_NUM_THREADS,
which bench_cpu.sh sets to the same value).
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, NH, bias, gelu):
        super().__init__()
        self.NH = NH
        self.ln1 = nn.LayerNorm(C, elementwise_affine=True)
        self.ln2 = nn.LayerNorm(C, elementwise_affine=True)
        if not bias:
            self.ln1.bias = None
            self.ln2.bias = None
        self.c_attn = nn.Linear(C, 3 * C, bias=bias)
        self.c_proj = nn.Linear(C, C, bias=bias)
        self.c_fc = nn.Linear(C, 4 * C, bias=bias)
        self.mlp_proj = nn.Linear(4 * C, C, bias=bias)
        self.approx = "tanh" if gelu == "tanh" else "none"

    def forward(self, x, mask):
        Bn, Tn, C = x.shape
        HS = C // self.NH
        q, k, v = self.c_attn(self.ln1(x)).split(C, dim=2)
        q = q.view(Bn, Tn, self.NH, HS).transpose(1, 2)
        k = k.view(Bn, Tn, self.NH, HS).transpose(1, 2)
        v = v.view(Bn, Tn, self.NH, HS).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(HS))
        att = F.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(Bn, Tn, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln2(x)), approximate=self.approx))


class GPT(nn.Module):
    def __init__(self, L, NH, C, V, maxT, bias, gelu):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(maxT, C)
        self.blocks = nn.ModuleList([Block(C, NH, bias, gelu) for _ in range(L)])
        self.lnf = nn.LayerNorm(C)
        if not bias:
            self.lnf.bias = None
        for n, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * L) if n.endswith("c_proj.weight") or n.endswith(
                    "mlp_proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif n.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        Tn = idx.shape[1]
        mask = ~torch.tril(torch.ones(Tn, Tn, dtype=torch.bool))
        x = self.wte(idx) + self.wpe(torch.arange(Tn))
        for b in self.blocks:
            x = b(x, mask)
        logits = self.lnf(x) @ self.wte.weight.t()  # tied LM head
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="model")
    ap.add_argument("--n_layer", type=int, required=True)
    ap.add_argument("--n_head", type=int, required=True)
    ap.add_argument("--n_embd", type=int, required=True)
    ap.add_argument("--vocab_size", type=int, required=True)
    ap.add_argument("--block_size", type=int, required=True)
    ap.add_argument("--batch_size", type=int, required=True)
    ap.add_argument("--bias", type=int, default=0)
    ap.add_argument("--gelu", default="tanh")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(1337)
    model = GPT(a.n_layer, a.n_head, a.n_embd, a.vocab_size, a.block_size, bool(a.bias), a.gelu)
    params = [p for p in model.parameters()]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=6e-4, betas=(0.9, 0.95), eps=1e-8)
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(0, a.vocab_size, (a.batch_size, a.block_size), generator=g)
    tgt = torch.randint(0, a.vocab_size, (a.batch_size, a.block_size), generator=g)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(idx, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    times, cpu = [], []
    for _ in range(a.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    times.sort()
    cpu.sort()
    med, best = times[len(times) // 2], times[0]
    tok = a.batch_size * a.block_size
    print(f"torch ms/step median {med * 1e3:.1f} min {best * 1e3:.1f} tok/s median "
          f"{tok / med:.0f} best {tok / best:.0f} ({a.steps} steps after {a.warmup} warm-up, "
          f"threads {torch.get_num_threads()}, params {sum(p.numel() for p in params)})")
    print(f"torch cpu time ms/step median {cpu[len(cpu) // 2] * 1e3:.1f} min {cpu[0] * 1e3:.1f} "
          f"(all threads)")

if __name__ == "__main__":
    main()
