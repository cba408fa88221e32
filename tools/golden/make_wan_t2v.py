#!/usr/bin/env python3
"""make_wan_t2v.py — diffusers' WanPipeline from a prompt to frames, on tiny components.

The pipeline is tests/fixtures/wan_t2v/ (diffusers layout, every file a symlink to a
fixture): transformer = wan_dit_b, vae = wan_vae_a, tokenizer = spm_tiny.model (as
spiece.model), text_encoder = wan_te.safetensors, a tiny UMT5EncoderModel written here
(vocab 600 = the tokenizer's, d_model 32 = the DiT's text_dim). The scheduler is Wan's
UniPC (flow prediction, shift 3).

Writes wan_te.safetensors and wan_t2v_io.safetensors: for each prompt case the noise
[1,16,2,8,6] passed as latents, the prompt embeddings [1,512,32] of the prompt and the
negative prompt (pipe.encode_prompt), the final latents after 4 steps with guidance 5, and
the decoded frames "video" [5,64,48,3] in [0, 1] (output_type="np").
"""
import os

import torch
from safetensors.torch import load_file

from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
from transformers import T5Tokenizer, UMT5Config, UMT5EncoderModel
from fixture import rerandomize, save
from make_wan_dit import CONFIGS as DIT_CONFIGS
from make_wan_vae import CONFIGS as VAE_CONFIGS

# inputs (the other fixtures) always come from the repository, outputs go to FIXTURES
SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures")
SEED = 400
STEPS, GUIDANCE, SHIFT = 4, 5.0, 3.0
TE_CFG = dict(vocab_size=600, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
              relative_attention_num_buckets=32, relative_attention_max_distance=128,
              feed_forward_proj="gated-gelu", dropout_rate=0.0, layer_norm_epsilon=1e-6,
              pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
              tie_word_embeddings=False, is_encoder_decoder=False)
CASES = [
    ("red", "a red circle moving to the right", ""),
    ("neg", "A blue  square &amp; a green\ttriangle, moving up", "blurry, low quality"),
]


def main():
    torch.set_num_threads(2)
    root = os.path.join(SRC, "wan_t2v")
    torch.manual_seed(SEED)
    te = UMT5EncoderModel(UMT5Config(**TE_CFG)).eval()
    rerandomize(te, SEED)
    te_cfg = te.config.to_dict()
    for k in ("transformers_version", "_name_or_path", "architectures"):
        te_cfg.pop(k, None)
    sd = {k: v for k, v in te.state_dict().items() if k != "encoder.embed_tokens.weight"}
    save("wan_te.safetensors", sd, SEED, te_cfg, "make_wan_t2v.py")

    tok = T5Tokenizer.from_pretrained(os.path.join(root, "tokenizer"), extra_ids=0)
    dit = WanTransformer3DModel(patch_size=(1, 2, 2), freq_dim=256, cross_attn_norm=True,
                                qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024,
                                **DIT_CONFIGS["dit_b"]["cfg"]).eval()
    dit.load_state_dict(load_file(os.path.join(SRC, "wan_dit_b.safetensors")))
    vae = AutoencoderKLWan(z_dim=16, temperal_downsample=[False, True, True],
                           **VAE_CONFIGS["vae_a"]["cfg"]).eval()
    vae.load_state_dict(load_file(os.path.join(SRC, "wan_vae_a.safetensors")))
    sched = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                    flow_shift=SHIFT, num_train_timesteps=1000, solver_order=2,
                                    predict_x0=True, solver_type="bh2", lower_order_final=True)
    pipe = WanPipeline(tokenizer=tok, text_encoder=te, transformer=dit, vae=vae, scheduler=sched)
    g = torch.Generator("cpu").manual_seed(SEED)
    out = {}
    for name, prompt, negative in CASES:
        noise = torch.randn(1, 16, 2, 8, 6, generator=g)
        with torch.no_grad():
            pe, ne = pipe.encode_prompt(prompt, negative, do_classifier_free_guidance=True,
                                        max_sequence_length=512)
            kw = dict(prompt=prompt, negative_prompt=negative, height=64, width=48, num_frames=5,
                      num_inference_steps=STEPS, guidance_scale=GUIDANCE, max_sequence_length=512)
            lat = pipe(latents=noise.clone(), output_type="latent", **kw).frames
            video = pipe(latents=noise.clone(), output_type="np", **kw).frames
        out.update({f"{name}.noise": noise, f"{name}.prompt_embeds": pe,
                    f"{name}.negative_prompt_embeds": ne, f"{name}.latents_final": lat,
                    f"{name}.video": torch.from_numpy(video[0]).float()})
    cfg = {"steps": STEPS, "guidance": GUIDANCE, "shift": SHIFT, "size": [5, 64, 48],
           "cases": [{"name": n, "prompt": p, "negative_prompt": q} for n, p, q in CASES],
           "transformer": "wan_dit_b", "vae": "wan_vae_a", "text_encoder": "wan_te",
           "tokenizer": "spm_tiny.model", "scheduler": dict(sched.config)}
    save("wan_t2v_io.safetensors", out, SEED, cfg, "make_wan_t2v.py")


if __name__ == "__main__":
    main()
