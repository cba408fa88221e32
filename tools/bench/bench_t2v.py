#!/usr/bin/env python3
"""bench_t2v.py — the whole Wan2.1 pipeline at the real model sizes, Tessera vs diffusers.

Builds a diffusers-layout checkpoint directory of random weights at Wan2.1-T2V-1.3B's
sizes: the DiT (WanTransformer3DModel, float32), the Wan-VAE (AutoencoderKLWan's defaults,
float32) and umt5-xxl (5.7 B parameters in bf16 shards, made as bench_umt5.py makes it),
with a small SentencePiece tokenizer (tests/fixtures/spm_tiny.model; no umt5 tokenizer can
be downloaded here, and the ids only have to be the text encoder's). Then renders one
prompt from the same seeded noise:

1. Tessera: `tessera-bench t2v` on the directory (weights memory-mapped), each stage timed.
2. diffusers' WanPipeline on the same weights, in float32 arithmetic: the prompts encoded
   with each text-encoder block converted to float32 for its turn (the bf16 weights never
   sit in memory as float32), then the sampler and the VAE decode (one timed call). The
   prompts are also encoded in bf16, as the pipeline runs by default, for the time alone.

Prints the stage times, the ratios and the frames' rel-L2 against diffusers' float32 run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python tools/bench/bench_t2v.py \\
        --tessera build/tools/tessera-bench --threads 2 --workdir /tmp/wan-1.3B

--workdir keeps the weights (~17 GB) and reuses them (a bench_umt5.py --workdir's text
encoder too); without it a temporary directory is used and removed. PyTorch needs ~18 GB of
memory; Tessera runs first, with nothing of PyTorch's loaded.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import torch
from safetensors import safe_open
from safetensors.torch import save_file

import diffusers
from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
from transformers import T5Tokenizer, UMT5Config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_umt5 import XXL, fp32_blocks, load_model as load_umt5, make_weights as make_umt5  # noqa: E402
from common import run_tessera, write_json  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DIT = dict(patch_size=(1, 2, 2), in_channels=16, out_channels=16, text_dim=4096, freq_dim=256,
           cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024,
           num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30)


def randomize(module, seed, gamma="norm"):
    """Seeded values everywhere (the references zero-initialise some layers): norms and
    gammas 1 + noise, other vectors small, matrices scaled by their fan-in."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in module.named_parameters():
            if gamma in n and p.ndim == 1 or "gamma" in n:
                p.copy_(1.0 + 0.05 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)


def save_component(model, d, seed):
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "diffusion_pytorch_model.safetensors")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path + ".tmp",
              metadata={"format": "pt", "seed": str(seed)})
    os.replace(path + ".tmp", path)
    model.save_config(d)


def load_component(cls, d):
    model = cls.from_config(cls.load_config(d))
    with safe_open(os.path.join(d, "diffusion_pytorch_model.safetensors"), "pt") as f:
        sd = {k: f.get_tensor(k) for k in f.keys()}
    model.load_state_dict(sd, strict=True)
    return model.eval()


def scheduler(shift):
    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift,
                                   num_train_timesteps=1000, solver_order=2, predict_x0=True, solver_type="bh2",
                                   lower_order_final=True)


def build(pipe_dir, te_dir, layers, seed):
    """The checkpoint directory, each part made when absent."""
    os.makedirs(pipe_dir, exist_ok=True)
    if not os.path.exists(os.path.join(te_dir, "model.safetensors.index.json")):
        cfg = dict(XXL)
        make_umt5(UMT5Config(**cfg), te_dir, seed)
    link = os.path.join(pipe_dir, "text_encoder")
    if not os.path.exists(link):
        os.symlink(os.path.abspath(te_dir), link)
    tok = os.path.join(pipe_dir, "tokenizer")
    os.makedirs(tok, exist_ok=True)
    shutil.copyfile(os.path.join(ROOT, "tests", "fixtures", "spm_tiny.model"), os.path.join(tok, "spiece.model"))
    tdir = os.path.join(pipe_dir, "transformer")
    if not os.path.exists(os.path.join(tdir, "diffusion_pytorch_model.safetensors")):
        torch.manual_seed(seed)
        dit = WanTransformer3DModel(**dict(DIT, num_layers=layers)).eval()
        randomize(dit, seed + 2)
        save_component(dit, tdir, seed + 2)
        del dit
    vdir = os.path.join(pipe_dir, "vae")
    if not os.path.exists(os.path.join(vdir, "diffusion_pytorch_model.safetensors")):
        vae = AutoencoderKLWan().eval()
        randomize(vae, seed + 3, gamma="gamma")
        save_component(vae, vdir, seed + 3)
        del vae
    sched_dir = os.path.join(pipe_dir, "scheduler")
    scheduler(3.0).save_config(sched_dir)
    index = {"_class_name": "WanPipeline", "_diffusers_version": diffusers.__version__,
             "_comment": "random weights at Wan2.1-T2V-1.3B's sizes (tools/bench/bench_t2v.py)",
             "scheduler": ["diffusers", "UniPCMultistepScheduler"],
             "text_encoder": ["transformers", "UMT5EncoderModel"], "tokenizer": ["transformers", "T5Tokenizer"],
             "transformer": ["diffusers", "WanTransformer3DModel"], "vae": ["diffusers", "AutoencoderKLWan"]}
    with open(os.path.join(pipe_dir, "model_index.json"), "w") as f:
        json.dump(index, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tessera", required=True, help="path to the tessera-bench binary")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-W", "--width", type=int, default=448)
    ap.add_argument("-H", "--height", type=int, default=256)
    ap.add_argument("--frames", type=int, default=5, help="video frames, 1 + 4k")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--cfg-scale", type=float, default=5.0)
    ap.add_argument("--flow-shift", type=float, default=3.0)
    ap.add_argument("-p", "--prompt", default="a red fox running through snow")
    ap.add_argument("-n", "--negative-prompt", default="blurry, low quality, static")
    ap.add_argument("--layers", type=int, default=30, help="DiT layers (30 = the real 1.3B)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None, help="scratch dir, kept; weights reused when present")
    ap.add_argument("--json", default=None, help="write the results as JSON here")
    a = ap.parse_args()
    if a.width % 16 or a.height % 16 or (a.frames - 1) % 4:
        sys.exit("bench_t2v.py: width and height must be multiples of 16, frames 1 + 4k")

    torch.set_num_threads(a.threads)
    tmp = a.workdir or tempfile.mkdtemp(prefix="tessera-bench-t2v-")
    te_dir = os.path.join(tmp, f"text_encoder-24l-seed{a.seed}")
    pipe_dir = os.path.join(tmp, f"wan-1.3B-{a.layers}l-seed{a.seed}")
    t0 = time.perf_counter()
    build(pipe_dir, te_dir, a.layers, a.seed)
    print(f"weights ready: {time.perf_counter() - t0:.0f} s", flush=True)

    t, h, w = 1 + (a.frames - 1) // 4, a.height // 8, a.width // 8
    noise = torch.randn(1, 16, t, h, w, generator=torch.Generator().manual_seed(a.seed + 5))
    npath, opath = os.path.join(tmp, "t2v_noise.safetensors"), os.path.join(tmp, "t2v_video.safetensors")
    save_file({"noise": noise}, npath)
    tokens = t * (h // 2) * (w // 2)
    print(f"{a.width}x{a.height}, {a.frames} frames ({tokens} DiT tokens), {a.steps} UniPC steps, cfg {a.cfg_scale}, "
          f"DiT layers {a.layers}, threads {a.threads}", flush=True)

    cmd = [a.tessera, "t2v", "--model", pipe_dir, "--inputs", npath, "--out", opath, "-p", a.prompt,
           "-n", a.negative_prompt, "--steps", str(a.steps), "--cfg-scale", str(a.cfg_scale),
           "--flow-shift", str(a.flow_shift), "--threads", str(a.threads), "--json"]
    ours = run_tessera(cmd)
    with safe_open(opath, "pt") as f:
        video = f.get_tensor("video")
    print(f"tessera  text {ours['text_s']:.2f} s ({ours['prompt_tokens']} + {ours['negative_tokens']} tokens), "
          f"sampling {ours['sample_s']:.2f} s, decode {ours['decode_s']:.2f} s; peak RSS {ours['peak_rss_mb']:.0f} MB",
          flush=True)

    # the DiT first: loading it holds two copies for a moment
    dit = load_component(WanTransformer3DModel, os.path.join(pipe_dir, "transformer"))
    vae = load_component(AutoencoderKLWan, os.path.join(pipe_dir, "vae"))
    te = load_umt5(UMT5Config(**XXL), te_dir)
    tok = T5Tokenizer.from_pretrained(os.path.join(pipe_dir, "tokenizer"), extra_ids=0)
    pipe = WanPipeline(tokenizer=tok, text_encoder=te, transformer=dit, vae=vae, scheduler=scheduler(a.flow_shift))
    kw = dict(do_classifier_free_guidance=a.cfg_scale != 1.0, max_sequence_length=512)
    with torch.no_grad():
        t0 = time.perf_counter()
        pipe.encode_prompt(a.prompt, a.negative_prompt, dtype=torch.float32, **kw)
        t_text_bf16 = time.perf_counter() - t0
        hooks = fp32_blocks(te)
        t0 = time.perf_counter()
        pe, ne = pipe.encode_prompt(a.prompt, a.negative_prompt, dtype=torch.float32, **kw)
        t_text = time.perf_counter() - t0
        for hk in hooks:
            hk.remove()
        t0 = time.perf_counter()
        ref = pipe(prompt_embeds=pe, negative_prompt_embeds=ne, latents=noise.clone(), height=a.height,
                   width=a.width, num_frames=a.frames, num_inference_steps=a.steps, guidance_scale=a.cfg_scale,
                   output_type="np").frames
        t_rest = time.perf_counter() - t0
    ref = torch.from_numpy(ref[0]).float()
    rel = (torch.linalg.norm(video - ref) / torch.linalg.norm(ref)).item()
    ours_rest = ours["sample_s"] + ours["decode_s"]
    print(f"diffusers text {t_text:.2f} s in float32 ({t_text_bf16:.2f} s in bf16), sampling + decode {t_rest:.2f} s")
    print(f"ratio tessera/diffusers: text {ours['text_s'] / t_text:.3f} (against bf16 {ours['text_s'] / t_text_bf16:.3f}),"
          f" sampling + decode {ours_rest / t_rest:.3f}, total {ours['total_s'] / (t_text + t_rest):.3f}"
          f" (against bf16 text {ours['total_s'] / (t_text_bf16 + t_rest):.3f})")
    print(f"frames rel-L2 against diffusers (float32): {rel:.2e}")
    result = dict(width=a.width, height=a.height, frames=a.frames, dit_tokens=tokens, steps=a.steps,
                  cfg_scale=a.cfg_scale, layers=a.layers, threads=a.threads, tessera=ours,
                  diffusers_text_fp32_s=t_text, diffusers_text_bf16_s=t_text_bf16, diffusers_sample_decode_s=t_rest,
                  rel_l2=rel, torch=torch.__version__, diffusers=diffusers.__version__, seed=a.seed)
    if a.json:
        write_json(a.json, result)
    if not a.workdir:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
