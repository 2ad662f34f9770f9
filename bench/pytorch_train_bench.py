#!/usr/bin/python3
"""PyTorch reference for bench/train_bench.sh: the shakespeare-char configuration of
`toy train --preset shakespeare-char` written as a plain PyTorch llama (RMSNorm,
RoPE on adjacent pairs, SwiGLU, untied output), trained with AdamW on random
windows of tinyshakespeare.txt; prints tokens/s over the timed steps.

  /usr/bin/python3 bench/pytorch_train_bench.py DATA [STEPS] [THREADS]

Debian's python3-torch (install libopenblas0-pthread too, or PyTorch runs on the
reference BLAS and looks several times slower than it is).
"""
import math
import os
import sys
import time

# PyTorch parallelises each op itself; OpenBLAS's own threads on top of that spin
# against them (measured 5x slower on 2 cores), so BLAS stays single-threaded.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch
import torch.nn as nn
import torch.nn.functional as F

data_path = sys.argv[1]
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 200
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
torch.set_num_threads(threads)
torch.manual_seed(1)

n_embd, n_layer, n_head, n_ff, ctx, batch = 128, 4, 4, 384, 64, 12
text = open(data_path, encoding="utf-8").read()
chars = sorted(set(text))
ids = torch.tensor([chars.index(c) for c in text], dtype=torch.long)
vocab = len(chars)
head_dim = n_embd // n_head


def rope_tables(T):
    inv = 10000.0 ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angle = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
    return angle.cos(), angle.sin()


def rope(x, cos, sin):  # x (B, H, T, D): rotate adjacent pairs
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
    return out.flatten(-2)


class RMSNorm(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn_norm, self.ffn_norm = RMSNorm(n_embd), RMSNorm(n_embd)
        self.q = nn.Linear(n_embd, n_embd, bias=False)
        self.k = nn.Linear(n_embd, n_embd, bias=False)
        self.v = nn.Linear(n_embd, n_embd, bias=False)
        self.o = nn.Linear(n_embd, n_embd, bias=False)
        self.gate = nn.Linear(n_embd, n_ff, bias=False)
        self.up = nn.Linear(n_embd, n_ff, bias=False)
        self.down = nn.Linear(n_ff, n_embd, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.attn_norm(x)
        split = lambda t: t.view(B, T, n_head, head_dim).transpose(1, 2)
        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(head_dim)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        x = x + self.o((att @ v).transpose(1, 2).reshape(B, T, n_embd))
        h = self.ffn_norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embd = nn.Embedding(vocab, n_embd)
        self.blocks = nn.ModuleList(Block() for _ in range(n_layer))
        self.norm = RMSNorm(n_embd)
        self.out = nn.Linear(n_embd, vocab, bias=False)

    def forward(self, idx):
        T = idx.shape[1]
        cos, sin = rope_tables(T)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        x = self.embd(idx)
        for b in self.blocks:
            x = b(x, cos, sin, mask)
        return self.out(self.norm(x))


model = Model()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)


def step():
    starts = torch.randint(0, len(ids) - ctx - 1, (batch,))
    x = torch.stack([ids[s : s + ctx] for s in starts])
    y = torch.stack([ids[s + 1 : s + ctx + 1] for s in starts])
    loss = F.cross_entropy(model(x).view(-1, vocab), y.view(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


for _ in range(10):  # warm-up
    step()
t0 = time.time()
for _ in range(steps):
    loss = step()
elapsed = time.time() - t0
print(f"pytorch: {steps * batch * ctx / elapsed:.0f} tokens/s on {threads} threads "
      f"(torch {torch.__version__}, loss {loss:.3f})")
