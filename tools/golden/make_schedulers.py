#!/usr/bin/env python3
"""make_schedulers.py — golden fixtures for the flow-matching samplers.

For FlowMatchEulerDiscreteScheduler(shift) and UniPCMultistepScheduler(flow_prediction,
use_flow_sigmas, flow_shift, solver_order 2, bh2, predict_x0, lower_order_final) — the
configs the Wan pipelines use (diffusers' Wan docs: UniPC with flow_shift 3.0 by default;
the pipeline tests use FlowMatchEuler) — and each (steps, shift): the sigmas, the timesteps
the pipeline passes to the transformer (UniPC: int64, Euler: float32), and trajectories
driven by a fake model C can evaluate too: v = tanh(x)·(t/1000) + c (c fixed random).
Guided trajectories (every case) combine two fakes (c, c_uncond) as v_u + g(v_c − v_u)
with g = 5; plain trajectories (PLAIN cases) use the conditional fake alone.
Writes tests/fixtures/sched_<sampler>.safetensors with tensors named
"<steps>_<shift>.sigmas", ".timesteps", ".x_<i>" (guided, after step i), ".plain.x_<i>",
and "x0", "c", "c_uncond".
"""
import torch

from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler
from fixture import save

# The brief's cases, then edge cases: one step (UniPC lands on sigma 0 from its first
# step) and two steps (UniPC never reaches order 2).
CASES = [(4, 3.0), (10, 5.0), (50, 5.0), (7, 1.0), (1, 5.0), (2, 3.0)]
PLAIN = {(10, 5.0), (1, 5.0), (2, 3.0)}
GUIDANCE = 5.0


def make(kind, shift):
    if kind == "euler":
        return FlowMatchEulerDiscreteScheduler(shift=shift)
    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                   flow_shift=shift, num_train_timesteps=1000, solver_order=2,
                                   predict_x0=True, solver_type="bh2", lower_order_final=True)


def fake(x, t, c):
    # t is what the pipeline hands the transformer; its time embedding casts it to float.
    return torch.tanh(x) * (t.float() / 1000) + c


def trajectory(kind, steps, shift, x0, c, cu, guidance):
    s = make(kind, shift)
    s.set_timesteps(steps)
    x, xs = x0.clone(), []
    for t in s.timesteps:
        v = fake(x, t, c)
        if guidance is not None:
            vu = fake(x, t, cu)
            v = vu + guidance * (v - vu)
        x = s.step(v, t, x, return_dict=False)[0]
        xs.append(x)
    return s, xs


def main():
    g = torch.Generator().manual_seed(7)
    x0 = torch.randn(1, 4, 2, 3, 5, generator=g)
    c = torch.randn(x0.shape, generator=g)
    cu = torch.randn(x0.shape, generator=g)
    for kind in ("euler", "unipc"):
        out = {"x0": x0, "c": c, "c_uncond": cu}
        configs = {}
        for steps, shift in CASES:
            key = f"{steps}_{shift:g}"
            s, xs = trajectory(kind, steps, shift, x0, c, cu, GUIDANCE)
            configs[key] = dict(s.config)
            out[key + ".sigmas"] = s.sigmas
            out[key + ".timesteps"] = s.timesteps.float()
            for i, x in enumerate(xs):
                out[f"{key}.x_{i}"] = x
            if (steps, shift) in PLAIN:
                for i, x in enumerate(trajectory(kind, steps, shift, x0, c, cu, None)[1]):
                    out[f"{key}.plain.x_{i}"] = x
        save(f"sched_{kind}.safetensors", out, 7, {"guidance": GUIDANCE, "schedulers": configs},
             "make_schedulers.py")


if __name__ == "__main__":
    main()
