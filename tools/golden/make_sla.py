#!/usr/bin/env python3
"""make_sla.py — SLA's block selection and output, with the reference code's operations.

Selection as thu-ml/SLA utils.py get_block_map: K smoothed by its mean over tokens, Q and
the smoothed K mean-pooled per block (the ragged last block over its real rows),
S = q̄ k̄ᵀ, the top kc = max(1, min(nK, floor(topk · nK))) key blocks per query block.
Output as core.py SparseLinearAttention.forward: the sparse branch is softmax(q kᵀ/√D)
renormalised over the selected blocks; the linear branch φ = softmax over the head dim,
o_l = φ(q)(Σφ(k)vᵀ) / (1e-5 + φ(q)·Σφ(k)) over all keys ("all", TurboDiffusion) or over
the non-selected blocks ("complement", the SLA-1 branch); o = o_s + proj_l(o_l). All in
float64 (the reference runs bf16 on GPUs; the semantics are what is checked).

Writes tests/fixtures/sla.safetensors: q, k, v [N, H, D], proj_w [D, D], proj_b [D],
sel [H, nQ, nK] (I32), out_all, out_complement [N, H, D].
"""
import math

import torch

from fixture import save

SEED = 600
N, H, D, BQ, BK, TOPK = 300, 2, 16, 64, 32, 0.3


def pool(x, blk):  # [H, N, D] -> [H, nB, D], ragged last block over its rows
    return torch.stack([x[:, i:i + blk].mean(dim=1) for i in range(0, x.shape[1], blk)], dim=1)


def main():
    g = torch.Generator().manual_seed(SEED)
    q, k, v = (torch.randn(N, H, D, generator=g, dtype=torch.float64) for _ in range(3))
    q, k, v = q.float().double(), k.float().double(), v.float().double()  # what the C test reads
    pw = (torch.randn(D, D, generator=g, dtype=torch.float64) / D ** 0.5).float().double()
    pb = (0.1 * torch.randn(D, generator=g, dtype=torch.float64)).float().double()
    qh, kh, vh = (x.transpose(0, 1) for x in (q, k, v))  # [H, N, D]
    nq, nk = math.ceil(N / BQ), math.ceil(N / BK)
    kc = max(1, min(nk, int(math.floor(TOPK * nk))))
    score = pool(qh, BQ) @ pool(kh - kh.mean(dim=1, keepdim=True), BK).transpose(1, 2)
    lut = torch.topk(score, kc, dim=-1).indices
    sel = torch.zeros(H, nq, nk, dtype=torch.int32)
    sel.scatter_(-1, lut, 1)
    # element masks in token order
    qb = torch.arange(N) // BQ
    kb = torch.arange(N) // BK
    allowed = sel[:, qb][:, :, kb].bool()  # [H, N, N]
    s = qh @ kh.transpose(1, 2) / math.sqrt(D)
    o_s = torch.softmax(s.masked_fill(~allowed, float("-inf")), dim=-1) @ vh
    fq, fk = torch.softmax(qh, dim=-1), torch.softmax(kh, dim=-1)
    outs = {}
    for variant in ("all", "complement"):
        w = torch.ones_like(allowed, dtype=torch.float64) if variant == "all" else (~allowed).double()
        # o_l[i] = φq_i · Σ_j w_ij φk_j v_jᵀ / (1e-5 + φq_i · Σ_j w_ij φk_j)
        a = fq @ fk.transpose(1, 2) * w            # [H, N, N]: φq_i·φk_j for the summed keys
        o_l = (a @ vh) / (1e-5 + a.sum(-1, keepdim=True))
        o = o_s + o_l @ pw.T + pb
        outs[f"out_{variant}"] = o.transpose(0, 1)
    save("sla.safetensors", {"q": q, "k": k, "v": v, "proj_w": pw, "proj_b": pb, "sel": sel, **outs}, SEED,
         {"n": N, "heads": H, "head_dim": D, "blk_q": BQ, "blk_k": BK, "topk": TOPK}, "make_sla.py")


if __name__ == "__main__":
    main()
