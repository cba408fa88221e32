#!/usr/bin/env python3
"""make_wan_dit.py — golden fixtures for the Wan2.1 DiT (diffusers WanTransformer3DModel).

For each tiny config writes tests/fixtures/wan_<name>.safetensors (weights, diffusers key
names, fp32) and wan_<name>_io.safetensors: inputs x [1,C,F,H,W], t [1], context [1,L,D];
output "out"; intermediates "patch_embedding" [1,N,dim], "temb" [1,dim],
"timestep_proj" [1,6*dim], "text_emb" [1,L,dim], "blocks.i" [1,N,dim].
"""
import torch

from diffusers import WanTransformer3DModel
from fixture import rerandomize, save

CONFIGS = {
    # head_dim 12 (t = h = w = 4 RoPE dims), odd grid 3x3x5
    "dit_a": dict(cfg=dict(num_attention_heads=2, attention_head_dim=12, in_channels=4,
                           out_channels=4, text_dim=16, ffn_dim=32, num_layers=2),
                  x=(1, 4, 3, 6, 10), L=7, t=523.37),
    # head_dim 64
    "dit_b": dict(cfg=dict(num_attention_heads=2, attention_head_dim=64, in_channels=16,
                           out_channels=16, text_dim=32, ffn_dim=96, num_layers=2),
                  x=(1, 16, 2, 8, 6), L=12, t=871.0),
    # head_dim 128 (the real models' head size), 5 latent frames
    "dit_c": dict(cfg=dict(num_attention_heads=1, attention_head_dim=128, in_channels=16,
                           out_channels=16, text_dim=24, ffn_dim=64, num_layers=1),
                  x=(1, 16, 5, 4, 4), L=5, t=42.5),
}


def build(cfg, seed):
    torch.manual_seed(seed)
    m = WanTransformer3DModel(patch_size=(1, 2, 2), freq_dim=256, cross_attn_norm=True,
                              qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024,
                              **cfg).eval()
    rerandomize(m, seed)
    return m


def main():
    torch.set_num_threads(2)
    for i, (name, spec) in enumerate(CONFIGS.items()):
        seed = 100 + i
        m = build(spec["cfg"], seed)
        g = torch.Generator("cpu").manual_seed(seed)
        x = torch.randn(spec["x"], generator=g)
        ctx = torch.randn(1, spec["L"], spec["cfg"]["text_dim"], generator=g)
        t = torch.tensor([spec["t"]], dtype=torch.float32)
        inter = {}

        def hook(key, fn=lambda o: o):
            def h(_mod, _inp, out):
                inter[key] = fn(out).detach().clone()
            return h

        hs = [m.patch_embedding.register_forward_hook(
            hook("patch_embedding", lambda o: o.flatten(2).transpose(1, 2))),
              m.condition_embedder.register_forward_hook(hook("temb", lambda o: o[0])),
              m.condition_embedder.register_forward_hook(hook("timestep_proj", lambda o: o[1])),
              m.condition_embedder.register_forward_hook(hook("text_emb", lambda o: o[2]))]
        for bi, blk in enumerate(m.blocks):
            hs.append(blk.register_forward_hook(hook(f"blocks.{bi}")))
        with torch.no_grad():
            out = m(x, t, ctx, return_dict=False)[0]
        for h in hs:
            h.remove()
        config = dict(m.config)
        save(f"wan_{name}.safetensors", m.state_dict(), seed, config, "make_wan_dit.py")
        save(f"wan_{name}_io.safetensors", dict(x=x, t=t, context=ctx, out=out, **inter), seed,
             config, "make_wan_dit.py")


if __name__ == "__main__":
    main()
