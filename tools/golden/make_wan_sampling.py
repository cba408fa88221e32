#!/usr/bin/env python3
"""make_wan_sampling.py — a 4-step sampling loop with CFG on the tiny Wan DiT.

Mirrors WanPipeline's denoising loop (diffusers pipelines/wan/pipeline_wan.py): for each
scheduler timestep t, v_c = DiT(x, t, ctx), v_u = DiT(x, t, ctx_uncond),
v = v_u + g (v_c − v_u), x = scheduler.step(v, t, x). The transformer is the "dit_b"
fixture (make_wan_dit.py: rebuilt here from the same seed, not stored again).
Writes tests/fixtures/wan_sample_<sampler>.safetensors: "noise" [1,16,2,8,6], "context",
"context_uncond" [1,12,32], "timesteps", "sigmas", "latents_step_i", "latents_final".
"""
import torch

from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler
from fixture import save
from make_wan_dit import CONFIGS, build

STEPS, GUIDANCE, SHIFT = 4, 5.0, 3.0


def schedulers():
    return {
        "euler": FlowMatchEulerDiscreteScheduler(shift=SHIFT),
        "unipc": UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                         flow_shift=SHIFT, num_train_timesteps=1000,
                                         solver_order=2, predict_x0=True, solver_type="bh2",
                                         lower_order_final=True),
    }


def main():
    torch.set_num_threads(2)
    spec = CONFIGS["dit_b"]
    model = build(spec["cfg"], 101)  # dit_b is the second config: seed 100 + 1
    g = torch.Generator("cpu").manual_seed(300)
    noise = torch.randn(1, 16, 2, 8, 6, generator=g)
    ctx = torch.randn(1, 12, 32, generator=g)
    ctx_u = torch.randn(1, 12, 32, generator=g)
    for name, sched in schedulers().items():
        sched.set_timesteps(STEPS)
        x = noise.clone()
        out = {"noise": noise, "context": ctx, "context_uncond": ctx_u,
               "timesteps": sched.timesteps.float(), "sigmas": sched.sigmas.float()}
        with torch.no_grad():
            for i, t in enumerate(sched.timesteps):
                ts = t.expand(1)
                vc = model(x, ts, ctx, return_dict=False)[0]
                vu = model(x, ts, ctx_u, return_dict=False)[0]
                v = vu + GUIDANCE * (vc - vu)
                x = sched.step(v, t, x, return_dict=False)[0]
                out[f"latents_step_{i}"] = x
        out["latents_final"] = x.clone()
        cfg = {"steps": STEPS, "guidance": GUIDANCE, "shift": SHIFT, "dit": "wan_dit_b",
               "scheduler": dict(sched.config)}
        save(f"wan_sample_{name}.safetensors", out, 300, cfg, "make_wan_sampling.py")


if __name__ == "__main__":
    main()
