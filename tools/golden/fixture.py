"""fixture.py — shared helpers for the golden-fixture generators.

Every fixture is a safetensors file whose metadata records the seed, the config and
the versions of torch / diffusers / transformers that produced it, so a fixture can be
traced and remade (see README.md).
"""
import json
import os

import torch
from safetensors.torch import save_file

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures")


def versions():
    import diffusers
    import transformers
    return {"torch": torch.__version__.split("+")[0], "diffusers": diffusers.__version__,
            "transformers": transformers.__version__}


def rerandomize(module, seed, std=0.1):
    """Gives every parameter a seeded random value: the references zero-init several
    layers (adaLN, heads, VAE attention proj), which would hide bugs. Norm weights and
    gammas become 1 + small noise, everything else N(0, std^2) scaled by fan-in so
    activations stay O(1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name or "gamma" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1 or "scale_shift_table" in name:
                p.copy_(std * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)


def save(name, tensors, seed, config, generator):
    # diffusers' "_use_default_values" is a set turned list: its order changes per run.
    config = {k: v for k, v in config.items() if k != "_use_default_values"}
    meta = {"seed": str(seed), "config": json.dumps(config, default=str, sort_keys=True),
            "generator": generator}
    meta.update(versions())
    path = os.path.join(FIXTURES, name)
    save_file({k: v.detach().contiguous().float() if v.is_floating_point() else v.contiguous()
               for k, v in tensors.items()}, path, metadata=meta)
    print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path) / 1024:.0f} KiB)")
