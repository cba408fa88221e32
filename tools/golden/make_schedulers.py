#!/usr/bin/env python3
"""make_schedulers.py — golden fixtures for the flow-matching samplers.

For FlowMatchEulerDiscreteScheduler(shift) and UniPCMultistepScheduler(flow_prediction,
use_flow_sigmas, flow_shift) — the configs WanPipeline uses — and each (steps, shift):
the sigmas and the timesteps the pipeline passes to the transformer, and a trajectory
driven by a fake model C can evaluate too: v = tanh(x)·(t/1000) + c (c fixed random);
with guidance, two fakes (c_cond, c_uncond) combined as v_u + g(v_c − v_u).
Writes tests/fixtures/sched_<sampler>.safetensors with tensors named
"<steps>_<shift>.sigmas", ".timesteps", ".x_<i>" (after step i), and "x0", "c", "c_uncond".
"""
import torch

from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler
from fixture import save

CASES = [(4, 3.0), (10, 5.0), (50, 5.0), (7, 1.0)]
GUIDANCE = 5.0


def make(kind, shift):
    if kind == "euler":
        return FlowMatchEulerDiscreteScheduler(shift=shift)
    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                   flow_shift=shift, num_train_timesteps=1000, solver_order=2,
                                   predict_x0=True, solver_type="bh2", lower_order_final=True)


def main():
    g = torch.Generator().manual_seed(7)
    x0 = torch.randn(1, 4, 2, 3, 5, generator=g)
    c = torch.randn(x0.shape, generator=g)
    cu = torch.randn(x0.shape, generator=g)
    for kind in ("euler", "unipc"):
        out = {"x0": x0, "c": c, "c_uncond": cu}
        configs = {}
        for steps, shift in CASES:
            s = make(kind, shift)
            s.set_timesteps(steps)
            key = f"{steps}_{shift:g}"
            configs[key] = dict(s.config)
            out[key + ".sigmas"] = s.sigmas.double()
            out[key + ".timesteps"] = s.timesteps.float()
            x = x0.clone()
            for i, t in enumerate(s.timesteps):
                tt = t.float() / 1000
                vc = torch.tanh(x) * tt + c
                vu = torch.tanh(x) * tt + cu
                v = vu + GUIDANCE * (vc - vu)
                x = s.step(v, t, x, return_dict=False)[0]
                out[f"{key}.x_{i}"] = x
        save(f"sched_{kind}.safetensors", out, 7, {"guidance": GUIDANCE, "schedulers": configs},
             "make_schedulers.py")


if __name__ == "__main__":
    main()
