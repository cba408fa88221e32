#!/usr/bin/env python3
"""make_wan_keys.py — the real Wan2.1-T2V 1.3B and 14B DiT key sets, names and shapes only.

Diffusers names come from WanTransformer3DModel built with the real configs on the meta
device (no memory, no weights). Original (Wan repo) names come from the mapping below,
the inverse of diffusers' scripts/convert_wan_to_diffusers.py table; the script checks
it is 1:1 and covers every key. Writes tests/fixtures/wan_dit_keys.txt, one line per
tensor: `<model> <layout> <name> <dtype> <d0,d1,...>`. dtype is BF16, the dtype of the
published checkpoints.
"""
import os
import re

import torch

from diffusers import WanTransformer3DModel
from fixture import FIXTURES

CONFIGS = {
    "1.3B": dict(num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30),
    "14B": dict(num_attention_heads=40, attention_head_dim=128, ffn_dim=13824, num_layers=40),
}

# diffusers -> original, applied in order to the name (block index kept).
RULES = [
    (r"^condition_embedder\.text_embedder\.linear_1\.", "text_embedding.0."),
    (r"^condition_embedder\.text_embedder\.linear_2\.", "text_embedding.2."),
    (r"^condition_embedder\.time_embedder\.linear_1\.", "time_embedding.0."),
    (r"^condition_embedder\.time_embedder\.linear_2\.", "time_embedding.2."),
    (r"^condition_embedder\.time_proj\.", "time_projection.1."),
    (r"^scale_shift_table$", "head.modulation"),
    (r"^proj_out\.", "head.head."),
    (r"^blocks\.(\d+)\.scale_shift_table$", r"blocks.\1.modulation"),
    (r"^blocks\.(\d+)\.attn1\.to_out\.0\.", r"blocks.\1.self_attn.o."),
    (r"^blocks\.(\d+)\.attn1\.to_([qkv])\.", r"blocks.\1.self_attn.\2."),
    (r"^blocks\.(\d+)\.attn1\.norm_([qk])\.", r"blocks.\1.self_attn.norm_\2."),
    (r"^blocks\.(\d+)\.attn2\.to_out\.0\.", r"blocks.\1.cross_attn.o."),
    (r"^blocks\.(\d+)\.attn2\.to_([qkv])\.", r"blocks.\1.cross_attn.\2."),
    (r"^blocks\.(\d+)\.attn2\.norm_([qk])\.", r"blocks.\1.cross_attn.norm_\2."),
    (r"^blocks\.(\d+)\.norm2\.", r"blocks.\1.norm3."),
    (r"^blocks\.(\d+)\.ffn\.net\.0\.proj\.", r"blocks.\1.ffn.0."),
    (r"^blocks\.(\d+)\.ffn\.net\.2\.", r"blocks.\1.ffn.2."),
    (r"^patch_embedding\.", "patch_embedding."),
]


def to_original(name):
    for pat, rep in RULES:
        new, n = re.subn(pat, rep, name)
        if n:
            return new
    raise KeyError(f"no original name for {name}")


def main():
    lines = []
    for model, cfg in CONFIGS.items():
        with torch.device("meta"):
            m = WanTransformer3DModel(patch_size=(1, 2, 2), in_channels=16, out_channels=16,
                                      text_dim=4096, freq_dim=256, cross_attn_norm=True,
                                      qk_norm="rms_norm_across_heads", eps=1e-6,
                                      rope_max_seq_len=1024, **cfg)
        sd = m.state_dict()
        orig = {to_original(k): v for k, v in sd.items()}
        assert len(orig) == len(sd), "mapping is not 1:1"
        for layout, d in (("diffusers", sd), ("original", orig)):
            for k, v in sorted(d.items()):
                lines.append(f"{model} {layout} {k} BF16 {','.join(str(s) for s in v.shape)}")
    path = os.path.join(FIXTURES, "wan_dit_keys.txt")
    with open(path, "w") as f:
        f.write("# Wan2.1-T2V DiT key sets (names, shapes); made by tools/golden/make_wan_keys.py\n")
        f.write("\n".join(lines) + "\n")
    print(f"wrote {os.path.relpath(path)}: {len(lines)} lines")


if __name__ == "__main__":
    main()
