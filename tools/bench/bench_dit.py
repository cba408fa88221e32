#!/usr/bin/env python3
"""bench_dit.py — one Wan DiT forward, Tessera vs diffusers/PyTorch, same run, same weights.

Builds a WanTransformer3DModel at the real Wan2.1-T2V-1.3B config with random weights
(seeded), saves the weights and the inputs as safetensors in a scratch directory, times
one forward in PyTorch (CPU, --threads threads, fp32), then runs `tessera-bench dit` on
the same files with the same thread count, checks the two outputs agree, and prints the
ratio tessera / pytorch. --attn runs Tessera once per attention schedule given (a file or a
METHOD[:k=v,...] spec, as the CLIs take; "dense" first by default), each against the same
dense PyTorch forward: what a schedule buys in time and costs in the output, side by side.

    .venv/bin/python tools/bench/bench_dit.py --tessera build/tools/tessera-bench \
        --latent 5,60,52 --threads 2 --attn dense dense:precision=bf16 gna:window=3x7x7

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE slow OpenBLAS (and PyTorch) on this machine: unset
them for the benchmark command only, e.g. `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ...`.
"""
import argparse
import json
import os
import tempfile
import time

import torch
from safetensors.torch import load_file, save_file

from diffusers import WanTransformer3DModel

from common import run_tessera, write_json

CONFIGS = {
    "1.3B": dict(num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30),
    "14B": dict(num_attention_heads=40, attention_head_dim=128, ffn_dim=13824, num_layers=40),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tessera", required=True, help="path to the tessera-bench binary")
    ap.add_argument("--config", default="1.3B", choices=CONFIGS)
    ap.add_argument("--layers", type=int, default=0, help="override the layer count (0 = real)")
    ap.add_argument("--latent", default="5,60,52", help="latent F,H,W (tokens = F*H/2*W/2)")
    ap.add_argument("--ctx-len", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--workdir", default=None, help="scratch dir (default: a temp dir, removed)")
    ap.add_argument("--json", default=None, help="write the results as JSON here")
    ap.add_argument("--attn", nargs="+", default=["dense"],
                    help="attention schedules for Tessera (files or METHOD[:k=v,...] specs), one run each")
    ap.add_argument("--step", default="0/1",
                    help="S/N: the denoising step the forward stands for, for the schedules' step rules")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = dict(CONFIGS[a.config])
    if a.layers:
        cfg["num_layers"] = a.layers
    model = WanTransformer3DModel(
        patch_size=(1, 2, 2), in_channels=16, out_channels=16, text_dim=4096, freq_dim=256,
        cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024,
        **cfg).eval()
    # Re-randomise so no layer is zero-initialised (zero layers would make the work trivial
    # for neither side, but a meaningful output check needs non-zero paths).
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.ndim == 1 or "norm" in n:
                p.copy_(1.0 + 0.05 * torch.randn(p.shape, generator=g) if "norm" in n
                        else 0.02 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel() if p.ndim > 1 else p.numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)

    F, H, W = (int(v) for v in a.latent.split(","))
    tokens = F * (H // 2) * (W // 2)
    x = torch.randn(1, 16, F, H, W, generator=g)
    t = torch.tensor([500.0])
    ctx = torch.randn(1, a.ctx_len, 4096, generator=g)

    tmp = a.workdir or tempfile.mkdtemp(prefix="tessera-bench-")
    os.makedirs(tmp, exist_ok=True)
    wpath = os.path.join(tmp, "dit.safetensors")
    ipath = os.path.join(tmp, "inputs.safetensors")
    opath = os.path.join(tmp, "out.safetensors")
    meta = {"config": json.dumps(dict(model.config))}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, wpath, metadata=meta)
    save_file({"x": x, "t": t, "context": ctx}, ipath)
    print(f"config {a.config} layers {cfg['num_layers']} tokens {tokens} ctx {a.ctx_len} "
          f"threads {a.threads}", flush=True)

    times = []
    with torch.no_grad():
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            ref = model(x, t, ctx, return_dict=False)[0]
            times.append(time.perf_counter() - t0)
    t_torch = min(times)
    print(f"pytorch  forward: {t_torch:.3f} s", flush=True)
    del model

    results = []
    for spec in a.attn:
        cmd = [a.tessera, "dit", "--model", wpath, "--inputs", ipath, "--out", opath,
               "--threads", str(a.threads), "--repeats", str(a.repeats), "--json", "--attn", spec,
               "--step", a.step]
        ours = run_tessera(cmd)
        t_ours = ours["forward_s"]
        out = load_file(opath)["out"]
        rel = (torch.linalg.norm(out - ref) / torch.linalg.norm(ref)).item()
        print(f"tessera  forward ({spec}, self-attention density {ours['attn_density']:.4f}): {t_ours:.3f} s")
        print(f"ratio tessera/pytorch: {t_ours / t_torch:.3f}   output rel-L2 vs pytorch (dense): {rel:.2e}")
        results.append(dict(config=a.config, layers=cfg["num_layers"], tokens=tokens, ctx_len=a.ctx_len,
                            threads=a.threads, pytorch_s=t_torch, tessera_s=t_ours, attn=spec,
                            attn_density=ours["attn_density"], ratio=t_ours / t_torch, rel_l2=rel,
                            torch=torch.__version__))
    if a.json:
        write_json(a.json, results[0] if len(results) == 1 else results)
    if not a.workdir:
        for p in (wpath, ipath, opath):
            os.remove(p)
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
