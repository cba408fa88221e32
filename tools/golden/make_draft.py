#!/usr/bin/env python3
"""make_draft.py — DraftAttention's region selection, computed with the reference code's
operations (draft_attention.py: per-frame avg_pool2d with ceil_mode over (pool_h, pool_w),
softmax(q̃ k̃ᵀ / sqrt(D)) per head, torch.kthvalue over the whole map as the threshold,
keep >= threshold, plus the diagonal), in float64, on a grid that is not a multiple of the
pool (the reference refuses such shapes; ceil_mode pools the edge regions over their real
tokens, which is what Tessera does).

Writes tests/fixtures/draft_select.safetensors: q, k [N, H, D] (token order t, y, x) and,
per case "<name>", keep [H, S, S] (I32, region order t, region row, region column).
"""
import math

import torch
import torch.nn.functional as F

from fixture import save

SEED = 500
GRID, H, D = (2, 10, 13), 3, 16
CASES = {"p4x8_s60": ((4, 8), 0.6), "p3x5_s85": ((3, 5), 0.85)}


def select(q, k, pool, sparsity):
    T, Hl, Wl = GRID

    def pooled(x):  # [N, H, D] -> [H, S, D]
        x = x.reshape(T, Hl, Wl, H, D).permute(3, 0, 4, 1, 2).reshape(H * T, D, Hl, Wl)
        p = F.avg_pool2d(x, kernel_size=pool, stride=pool, ceil_mode=True)
        return p.reshape(H, T, D, -1).permute(0, 1, 3, 2).reshape(H, -1, D)

    qp, kp = pooled(q), pooled(k)
    a = torch.softmax(qp @ kp.transpose(1, 2) / math.sqrt(D), dim=-1)
    S = a.shape[1]
    kth = int(math.floor(sparsity * S * S))
    keep = torch.ones_like(a, dtype=torch.bool)
    for h in range(H):
        if kth >= 1:
            thr = torch.kthvalue(a[h].flatten(), kth).values
            keep[h] = a[h] >= thr
        keep[h] |= torch.eye(S, dtype=torch.bool)
    return keep.to(torch.int32)


def main():
    g = torch.Generator().manual_seed(SEED)
    n = GRID[0] * GRID[1] * GRID[2]
    q = torch.randn(n, H, D, generator=g, dtype=torch.float64)
    k = torch.randn(n, H, D, generator=g, dtype=torch.float64)
    out = {"q": q.float(), "k": k.float()}
    # the selection sees the fp32 values the C test reads
    q, k = q.float().double(), k.float().double()
    for name, (pool, sp) in CASES.items():
        out[f"{name}.keep"] = select(q, k, pool, sp)
    save("draft_select.safetensors", out, SEED,
         {"grid": GRID, "heads": H, "head_dim": D,
          "cases": {n_: {"pool": p, "sparsity": s} for n_, (p, s) in CASES.items()}}, "make_draft.py")


if __name__ == "__main__":
    main()
