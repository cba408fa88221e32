#!/usr/bin/env python3
"""bench_umt5.py — the UMT5-XXL text encoder at its real size, Tessera vs transformers/PyTorch.

Wan2.1's text encoder is umt5-xxl: 5.7 B parameters, shipped as ~11 GB of bf16 safetensors
in shards. This builds a UMT5EncoderModel at that config with random weights (seeded), in
bf16, and saves it as the diffusers checkpoints do (text_encoder/: config.json,
model-0000N-of-0000M.safetensors, model.safetensors.index.json). Then, on one prompt of
--prompt-tokens tokens padded to --len (512, as WanPipeline pads):

1. Tessera (`tessera-bench text`) on the shards, memory-mapped: the forward over all --len
   rows as transformers computes them (the first call apart, which faults the weights in),
   and over the unpadded tokens only, which is what Tessera's pipeline runs; its peak RSS.
2. PyTorch, the same bf16 weights: the forward in float32 (each block converted to float32
   for its turn, so the 5.7 B weights never sit in memory as float32), the reference the
   output is checked against; and the forward in bf16, as a diffusers user runs it on a CPU.

Tessera runs first, with PyTorch's model not yet loaded: the two never hold the weights at
once. Prints the times, the ratios and the output rel-L2 against the float32 reference.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python tools/bench/bench_umt5.py \\
        --tessera build/tools/tessera-bench --threads 2 --workdir /tmp/umt5-xxl

The weights take ~11 GB of disk in --workdir (kept, and reused when present; without
--workdir a temporary directory, removed) and ~12 GB of memory while PyTorch runs.
"""
import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time

import torch
from safetensors import safe_open
from safetensors.torch import save_file

import transformers
from transformers import UMT5Config, UMT5EncoderModel

from common import run_tessera, write_json

# umt5-xxl (google/umt5-xxl, as Wan2.1 ships it)
XXL = dict(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
           relative_attention_num_buckets=32, relative_attention_max_distance=128,
           feed_forward_proj="gated-gelu", dropout_rate=0.0, layer_norm_epsilon=1e-6,
           pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=False,
           is_encoder_decoder=False)

SHARD_BYTES = 2_500_000_000


def make_weights(cfg, te_dir, seed):
    """Random bf16 weights, made and written a shard at a time: at most one shard (2.5 GB)
    in memory, never anything in float32 beyond a 64 M-value slice."""
    with torch.device("meta"):
        shapes = {k: tuple(p.shape) for k, p in UMT5EncoderModel(cfg).state_dict().items()}
    del shapes["encoder.embed_tokens.weight"]  # shared.weight's tie: saved once, as transformers saves it
    names = sorted(shapes, key=lambda k: (k != "shared.weight", k))
    plan, cur, size = [], [], 0  # the shards' names first: a file's name holds their count
    for k in names:
        nbytes = torch.Size(shapes[k]).numel() * 2
        if cur and size + nbytes > SHARD_BYTES:
            plan.append(cur)
            cur, size = [], 0
        cur.append(k)
        size += nbytes
    plan.append(cur)
    g = torch.Generator().manual_seed(seed)  # drawn in the names' order, shard after shard
    os.makedirs(te_dir, exist_ok=True)
    weight_map = {}
    for i, keys in enumerate(plan):
        sd = {}
        for k in keys:
            shape = shapes[k]
            t = sd[k] = torch.empty(shape, dtype=torch.bfloat16)
            if "layer_norm" in k:
                t.copy_(1.0 + 0.1 * torch.randn(shape, generator=g))
                continue
            # T5's own scales (transformers' _init_weights, factor 1): a row by its fan-in, q
            # also by d_kv (T5 does not scale its scores), the embedding by 1. Anything larger
            # makes 24 random layers' attention nearly one-hot, and their output chaotic.
            std = 1.0 if k == "shared.weight" else shape[-1] ** -0.5
            if k.endswith(".q.weight"):
                std /= cfg.d_kv ** 0.5
            rows = max(1, 64_000_000 // shape[-1])
            for r0 in range(0, shape[0], rows):
                r1 = min(shape[0], r0 + rows)
                t[r0:r1].copy_(std * torch.randn((r1 - r0,) + shape[1:], generator=g))
        name = f"model-{i + 1:05d}-of-{len(plan):05d}.safetensors"
        save_file(sd, os.path.join(te_dir, name + ".tmp"), metadata={"format": "pt"})
        os.replace(os.path.join(te_dir, name + ".tmp"), os.path.join(te_dir, name))
        weight_map.update({k: name for k in sd})
        print(f"wrote {name} ({len(sd)} tensors)", flush=True)
        del sd, t
    with open(os.path.join(te_dir, "config.json"), "w") as f:
        f.write(cfg.to_json_string())
    total = sum(torch.Size(s).numel() * 2 for s in shapes.values())
    write_json(os.path.join(te_dir, "model.safetensors.index.json"),
               {"metadata": {"total_size": total, "seed": seed}, "weight_map": weight_map})


def load_model(cfg, te_dir):
    with open(os.path.join(te_dir, "model.safetensors.index.json")) as f:
        files = sorted(set(json.load(f)["weight_map"].values()))
    sd = {}
    for name in files:
        with safe_open(os.path.join(te_dir, name), "pt") as s:
            for k in s.keys():
                sd[k] = s.get_tensor(k)
    with torch.device("meta"):
        model = UMT5EncoderModel(cfg)
    missing, unexpected = model.load_state_dict(sd, assign=True, strict=False)
    if unexpected or missing != ["encoder.embed_tokens.weight"]:
        sys.exit(f"bench_umt5.py: {te_dir}: missing {missing}, unexpected {unexpected}")
    model.encoder.embed_tokens = model.shared
    return model.eval()


def fp32_blocks(model):
    """Hooks that run the encoder's embedding output and blocks in float32 on its bf16
    weights: each block converted for its turn and back (exact: the values are bf16 to begin
    with), so the weights never sit in memory as float32; the final norm stays float32. The
    caller removes them."""
    def to_fp32(m, args):
        m.float()  # returns None: the block's inputs stay as they are

    def to_bf16(m, args, out):
        m.to(torch.bfloat16)  # returns None: the block's output stays

    hooks = [model.shared.register_forward_hook(lambda m, args, out: out.float())]
    for blk in model.encoder.block:
        hooks += [blk.register_forward_pre_hook(to_fp32), blk.register_forward_hook(to_bf16)]
    model.encoder.final_layer_norm.float()
    return hooks


def forward_fp32(model, ids, mask):
    hooks = fp32_blocks(model)
    try:
        return model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
    finally:
        for h in hooks:
            h.remove()
        model.encoder.final_layer_norm.to(torch.bfloat16)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tessera", required=True, help="path to the tessera-bench binary")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1, help="forwards timed after the first (best kept)")
    ap.add_argument("--len", type=int, default=512, help="padded length (WanPipeline: 512)")
    ap.add_argument("--prompt-tokens", type=int, default=32, help="the prompt's tokens, </s> included")
    ap.add_argument("--layers", type=int, default=0, help="override the layer count (0 = real, 24)")
    ap.add_argument("--no-bf16", action="store_true", help="skip PyTorch's bf16 forward")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None, help="scratch dir, kept; weights reused when present")
    ap.add_argument("--json", default=None, help="write the results as JSON here")
    a = ap.parse_args()
    if not 1 <= a.prompt_tokens <= a.len:
        sys.exit("bench_umt5.py: --prompt-tokens must be in 1 .. --len")

    torch.set_num_threads(a.threads)
    spec = dict(XXL)
    if a.layers:
        spec["num_layers"] = a.layers
    cfg = UMT5Config(**spec)
    tmp = a.workdir or tempfile.mkdtemp(prefix="tessera-bench-umt5-")
    te_dir = os.path.join(tmp, f"text_encoder-{spec['num_layers']}l-seed{a.seed}")
    if not os.path.exists(os.path.join(te_dir, "model.safetensors.index.json")):
        t0 = time.perf_counter()
        make_weights(cfg, te_dir, a.seed)
        print(f"weights: {time.perf_counter() - t0:.0f} s", flush=True)

    g = torch.Generator().manual_seed(a.seed + 1)
    n = a.prompt_tokens
    ids = torch.zeros(1, a.len, dtype=torch.int64)  # pad 0
    ids[0, :n - 1] = torch.randint(2, spec["vocab_size"], (n - 1,), generator=g)
    ids[0, n - 1] = 1  # </s>
    mask = torch.zeros(1, a.len, dtype=torch.int64)
    mask[0, :n] = 1
    ipath, opath = os.path.join(tmp, "umt5_inputs.safetensors"), os.path.join(tmp, "umt5_out.safetensors")
    save_file({"input_ids": ids, "attention_mask": mask}, ipath)
    print(f"umt5 layers {spec['num_layers']}, {n} prompt tokens padded to {a.len}, threads {a.threads}",
          flush=True)

    cmd = [a.tessera, "text", "--model", te_dir, "--inputs", ipath, "--out", opath,
           "--threads", str(a.threads), "--repeats", str(a.repeats), "--json"]
    ours = run_tessera(cmd)
    with safe_open(opath, "pt") as s:
        out = s.get_tensor("out")
    print(f"tessera  {a.len} tokens: {ours['forward_s']:.3f} s (first call {ours['first_s']:.3f} s); "
          f"{n} tokens: {ours['prompt_s']:.3f} s; peak RSS {ours['peak_rss_mb']:.0f} MB", flush=True)

    t0 = time.perf_counter()
    model = load_model(cfg, te_dir)
    t_load = time.perf_counter() - t0
    with torch.no_grad():
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            ref = forward_fp32(model, ids, mask)
            times.append(time.perf_counter() - t0)
        t_fp32 = min(times)
        t_bf16, rel_bf16 = None, None
        if not a.no_bf16:
            times = []
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                hb = model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
                times.append(time.perf_counter() - t0)
            t_bf16 = min(times)
            rel_bf16 = (torch.linalg.norm(hb[0, :n] - ref[0, :n]) / torch.linalg.norm(ref[0, :n])).item()
    rss_torch = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del model
    rel = (torch.linalg.norm(out - ref) / torch.linalg.norm(ref)).item()
    rel_prompt = (torch.linalg.norm(out[0, :n] - ref[0, :n]) / torch.linalg.norm(ref[0, :n])).item()
    print(f"pytorch  {a.len} tokens, float32: {t_fp32:.3f} s; load {t_load:.1f} s; peak RSS {rss_torch:.0f} MB")
    if t_bf16 is not None:
        print(f"pytorch  {a.len} tokens, bf16: {t_bf16:.3f} s (rel-L2 against float32 on the prompt's rows "
              f"{rel_bf16:.2e})")
    print(f"ratio tessera/pytorch float32, {a.len} tokens: {ours['forward_s'] / t_fp32:.3f}")
    if t_bf16 is not None:
        print(f"ratio tessera/pytorch bf16, {a.len} tokens: {ours['forward_s'] / t_bf16:.3f}; "
              f"tessera's {n} tokens against pytorch bf16's {a.len}: {ours['prompt_s'] / t_bf16:.3f}")
    print(f"output rel-L2 against pytorch float32: all rows {rel:.2e}, the prompt's rows {rel_prompt:.2e}")
    result = dict(layers=spec["num_layers"], len=a.len, prompt_tokens=n, threads=a.threads,
                  tessera_s=ours["forward_s"], tessera_first_s=ours["first_s"], tessera_prompt_s=ours["prompt_s"],
                  tessera_peak_rss_mb=ours["peak_rss_mb"], pytorch_fp32_s=t_fp32, pytorch_bf16_s=t_bf16,
                  pytorch_peak_rss_mb=rss_torch, rel_l2=rel, rel_l2_prompt=rel_prompt, rel_l2_bf16=rel_bf16,
                  torch=torch.__version__, transformers=transformers.__version__, seed=a.seed)
    if a.json:
        write_json(a.json, result)
    if not a.workdir:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
