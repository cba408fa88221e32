#!/usr/bin/env python3
"""make_st_fixture.py — a small safetensors file written by the Python safetensors package,
so the C reader is checked against the reference writer (tests/fixtures/st_python.safetensors).
Values: arange(n) * 0.5 - 1 in F32 [2,3], BF16 [4], F16 [4]; arange(3) in I64."""
import os

import torch
from safetensors.torch import save_file

from fixture import FIXTURES, versions


def main():
    t = {"f32": (torch.arange(6, dtype=torch.float32) * 0.5 - 1).reshape(2, 3),
         "bf16": torch.arange(4, dtype=torch.float32).mul(0.5).sub(1).to(torch.bfloat16),
         "f16": torch.arange(4, dtype=torch.float32).mul(0.5).sub(1).to(torch.float16),
         "i64": torch.arange(3, dtype=torch.int64)}
    meta = {"made_by": "make_st_fixture.py", **versions()}
    path = os.path.join(FIXTURES, "st_python.safetensors")
    save_file(t, path, metadata=meta)
    print(f"wrote {os.path.relpath(path)}")


if __name__ == "__main__":
    main()
