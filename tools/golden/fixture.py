"""fixture.py — shared helpers for the golden-fixture generators.

Every fixture is a safetensors file whose metadata records the seed, the config and
the versions of torch / diffusers / transformers that produced it, so a fixture can be
traced and remade (see README.md).
"""
import json
import os
import struct

import torch
from safetensors.torch import save as save_bytes

# TS_GOLDEN_OUT redirects the output (to regenerate into a scratch folder and compare).
FIXTURES = os.environ.get("TS_GOLDEN_OUT") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures")


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


def _clean(obj):
    # diffusers' "_use_default_values" is a set turned list: its order changes per run.
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items() if k != "_use_default_values"}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _canonical(blob):
    """Rewrites a safetensors file's header with sorted metadata keys and the tensor entries
    in data order: the Rust writer emits the metadata map in arbitrary order, which is the
    only thing that would make two runs differ byte for byte. The data is unchanged."""
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {"__metadata__": dict(sorted(meta.items()))}
    for k, v in sorted(header.items(), key=lambda kv: (kv[1]["data_offsets"][0], kv[0])):
        out[k] = v
    text = json.dumps(out, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + blob[8 + n:]


def save(name, tensors, seed, config, generator):
    meta = {"seed": str(seed), "config": json.dumps(_clean(config), default=str, sort_keys=True),
            "generator": generator}
    meta.update(versions())
    path = os.path.join(FIXTURES, name)
    blob = save_bytes({k: v.detach().contiguous().float() if v.is_floating_point() else v.contiguous()
                       for k, v in tensors.items()}, metadata=meta)
    with open(path, "wb") as f:
        f.write(_canonical(blob))
    print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path) / 1024:.0f} KiB)")
