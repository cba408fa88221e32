#!/usr/bin/env python3
"""make_wan_vae.py — golden fixtures for the Wan-VAE (diffusers AutoencoderKLWan).

For each tiny config writes tests/fixtures/wan_vae_<name>.safetensors (weights, diffusers
names, fp32) and wan_vae_<name>_io.safetensors with "video" [1,3,T,H,W] in [-1,1],
"latent_mean" (the raw encoder mean, encode(video).latent_dist.mean), "latents" (random
decoder input) and "decoded" (decode(latents).sample, clamped to [-1,1] by diffusers).
vae_b encodes 7 frames: diffusers encodes chunks of 1, 4, 4, ... frames and drops the
frames past the last full chunk (here frames 5 and 6), so 7 frames give 2 latent frames.
"""
import torch

from diffusers import AutoencoderKLWan
from fixture import rerandomize, save

CONFIGS = {
    "vae_a": dict(cfg=dict(base_dim=8, dim_mult=[1, 2, 2, 2], num_res_blocks=1),
                  video=(1, 3, 9, 16, 24), latents=(1, 16, 3, 2, 3)),
    "vae_b": dict(cfg=dict(base_dim=4, dim_mult=[1, 1, 2, 2], num_res_blocks=2),
                  video=(1, 3, 7, 24, 16), latents=(1, 16, 2, 3, 2)),
}


def main():
    torch.set_num_threads(2)
    for i, (name, spec) in enumerate(CONFIGS.items()):
        seed = 200 + i
        torch.manual_seed(seed)
        vae = AutoencoderKLWan(z_dim=16, temperal_downsample=[False, True, True],
                               **spec["cfg"]).eval()
        rerandomize(vae, seed, std=0.05)
        g = torch.Generator("cpu").manual_seed(seed)
        video = torch.rand(spec["video"], generator=g) * 2 - 1
        z = torch.randn(spec["latents"], generator=g)
        with torch.no_grad():
            mean = vae.encode(video).latent_dist.mean
            dec = vae.decode(z).sample
        assert dec.abs().max() <= 1.0
        config = dict(vae.config)
        save(f"wan_{name}.safetensors", vae.state_dict(), seed, config, "make_wan_vae.py")
        save(f"wan_{name}_io.safetensors",
             dict(video=video, latent_mean=mean, latents=z, decoded=dec), seed, config,
             "make_wan_vae.py")
        print(f"  {name}: video {tuple(video.shape)} -> mean {tuple(mean.shape)}; "
              f"latents {tuple(z.shape)} -> decoded {tuple(dec.shape)}, "
              f"{(dec.abs() >= 1).float().mean().item():.2%} clamped")


if __name__ == "__main__":
    main()
