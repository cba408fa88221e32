#!/usr/bin/env python3
"""bench_vae.py — Wan-VAE decode at the real config: time and peak memory vs frame count.

Builds AutoencoderKLWan with the real Wan2.1 config (base_dim 96, dim_mult [1,2,4,4])
and random (seeded) weights, saves them, then runs `tessera-bench vae` decoding random
latents of 1+k latent frames at the given latent size (default 60x104 = 480x832 video)
for each k, and reports seconds and peak RSS per run, so flatness in the frame count
shows directly. With --torch it also times diffusers' decode on the largest case
(slow and memory hungry: off by default).

    .venv/bin/python tools/bench/bench_vae.py --tessera build/tools/tessera-bench \
        --frames 2,6,21 --latent-hw 60,104 --threads 2

Unset OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for the benchmark command only.
"""
import argparse
import os
import tempfile
import time

import torch
from safetensors.torch import save_file

from diffusers import AutoencoderKLWan

from common import run_tessera, write_json


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--frames", default="2,6,21", help="latent frame counts to decode")
    ap.add_argument("--latent-hw", default="60,104")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--torch", action="store_true", help="also time diffusers on the first case")
    ap.add_argument("--half-cache", action="store_true", help="fp16 conv caches (low memory)")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    vae = AutoencoderKLWan().eval()  # real Wan2.1 config (diffusers defaults)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in vae.named_parameters():
            if "gamma" in n:
                p.copy_(1.0 + 0.05 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)
    tmp = a.workdir or tempfile.mkdtemp(prefix="tessera-bench-")
    os.makedirs(tmp, exist_ok=True)
    wpath = os.path.join(tmp, "vae.safetensors")
    save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, wpath)
    h, w = (int(v) for v in a.latent_hw.split(","))
    results = []
    for t in (int(v) for v in a.frames.split(",")):
        ipath = os.path.join(tmp, f"latents_{t}.safetensors")
        z = torch.randn(1, 16, t, h, w, generator=g)
        save_file({"latents": z}, ipath)
        cmd = [a.tessera, "vae", "--model", wpath, "--inputs", ipath,
               "--threads", str(a.threads), "--json"] + (["--half-cache"] if a.half_cache else [])
        r = run_tessera(cmd)
        r["latent_frames"] = t
        r["half_cache"] = a.half_cache
        results.append(r)
        print(f"tessera decode {t:3d} latent frames -> {r['frames']} frames "
              f"{r['height']}x{r['width']}: {r['decode_s']:.1f} s, peak RSS "
              f"{r['peak_rss_mb']:.0f} MB", flush=True)
        if a.torch and len(results) == 1:
            import resource
            with torch.no_grad():
                t0 = time.perf_counter()
                vae.decode(z, return_dict=False)
                dt = time.perf_counter() - t0
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"pytorch decode {t:3d} latent frames: {dt:.1f} s, peak RSS (incl. weights, "
                  f"python) {rss:.0f} MB")
            r["pytorch_decode_s"] = dt
        os.remove(ipath)
    if a.json:
        write_json(a.json, results)
    if not a.workdir:
        os.remove(wpath)
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
