#!/usr/bin/env python3
"""make_wan_vae.py — golden fixtures for the Wan-VAE (diffusers AutoencoderKLWan).

For each tiny config writes tests/fixtures/wan_vae_<name>.safetensors (weights, diffusers
names, fp32) and wan_vae_<name>_io.safetensors with "video" [1,3,T,H,W] in [-1,1],
"latent_mean" (the raw encoder mean, encode(video).latent_dist.mean), "latents" (random
decoder input) and "decoded" (decode(latents).sample, clamped to [-1,1] by diffusers; the
script asserts both). wan_vae_<name>_blocks.safetensors holds the block outputs that
tessera-probe --dump-intermediates writes: diffusers encodes and decodes chunk by chunk with
a causal cache, so a forward hook on a block sees one chunk per call; concatenated along
time those pieces are the block's output over the whole video ("encoder.down_blocks.N",
"encoder.mid_block", "decoder.mid_block", "decoder.up_blocks.N").
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
    # the real config's channel pattern (dim_mult [1, 2, 4, 4]): no shortcut conv after the
    # decoder's last temporal upsample, so the frame-by-frame half runs in two work buffers
    "vae_c": dict(cfg=dict(base_dim=4, dim_mult=[1, 2, 4, 4], num_res_blocks=1),
                  video=(1, 3, 5, 16, 16), latents=(1, 16, 3, 2, 2)),
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
        raw = []  # the decoder's per-frame outputs, before diffusers' clamp
        hk = vae.decoder.register_forward_hook(lambda _m, _i, o: raw.append(o.detach().clone()))
        with torch.no_grad():
            dist = vae.encode(video).latent_dist
            mean = dist.mean
            dec = vae.decode(z).sample
            enc = vae._encode(video)
            # frames past the last full 1 + 4k chunk do not reach the encoder at all
            t_used = 1 + 4 * ((video.shape[2] - 1) // 4)
            enc_cut = vae._encode(video[:, :, :t_used])
        hk.remove()
        # encode's "mean" is the first z_dim channels of quant_conv's output, no sampling
        assert torch.equal(mean, enc[:, :16]) and torch.equal(dist.mode(), mean)
        assert torch.equal(enc, enc_cut)
        # decode runs the decoder one latent frame at a time and clamps the result to [-1, 1]
        assert len(raw) == z.shape[2]
        assert torch.equal(dec, torch.cat(raw, 2).clamp(-1.0, 1.0))
        assert dec.abs().max() <= 1.0 and torch.cat(raw, 2).abs().max() > 1.0
        blocks = {}

        def hook(name):
            return lambda _m, _i, o: blocks.setdefault(name, []).append(o.detach().clone())
        mods = [(f"encoder.down_blocks.{k}", m) for k, m in enumerate(vae.encoder.down_blocks)]
        mods += [("encoder.mid_block", vae.encoder.mid_block), ("decoder.mid_block", vae.decoder.mid_block)]
        mods += [(f"decoder.up_blocks.{k}", m) for k, m in enumerate(vae.decoder.up_blocks)]
        hooks = [m.register_forward_hook(hook(n)) for n, m in mods]
        with torch.no_grad():
            vae.encode(video)
            vae.decode(z)
        for h in hooks:
            h.remove()
        blocks = {k: torch.cat(v, 2) for k, v in blocks.items()}
        config = dict(vae.config)
        save(f"wan_{name}.safetensors", vae.state_dict(), seed, config, "make_wan_vae.py")
        save(f"wan_{name}_io.safetensors",
             dict(video=video, latent_mean=mean, latents=z, decoded=dec), seed, config,
             "make_wan_vae.py")
        save(f"wan_{name}_blocks.safetensors", blocks, seed, config, "make_wan_vae.py")
        print(f"  {name}: video {tuple(video.shape)} -> mean {tuple(mean.shape)}; "
              f"latents {tuple(z.shape)} -> decoded {tuple(dec.shape)}, "
              f"{(dec.abs() >= 1).float().mean().item():.2%} clamped")


if __name__ == "__main__":
    main()
