#!/usr/bin/env python3
"""evaluate.py — a quick read of a DiT checkpoint before exporting it: samples the prompts of
tests/test_tiny.c (its table, its seeds' order) in PyTorch and measures each render the way
test_tiny.c does (the same background, foreground, object region, colour, shape-overlap and
centroid rules).

The sampler is a plain flow-matching Euler loop (test_tiny renders with Tessera's UniPC), so the
pass counts are a proxy for the real test, for comparing runs and checkpoints; `meson test tiny`
on the exported model is the measurement.

    .venv/bin/python tools/train-tiny/evaluate.py --work /tmp/tiny [--ckpt dit.pt] [--cfg 3 5] [--png grid.png]
"""
import argparse
import json
import os
import re
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_tiny as T  # noqa: E402
import data  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def test_prompts():
    """(text, colour, shape, motion or None) from tests/test_tiny.c's prompt table."""
    src = open(os.path.join(HERE, "..", "..", "tests", "test_tiny.c")).read()
    rows = re.findall(r'\{"([^"]+)", "(\w+)", "(\w+)", (?:"(\w+)"|NULL), \d+\}', src)
    if not rows:
        sys.exit("evaluate.py: no prompt table found in tests/test_tiny.c")
    return [(t, c, s, m or None) for t, c, s, m in rows]


def largest_component(m):
    """The largest 8-connected region of the bool mask m [H, W] (first found among equals)."""
    H, W = m.shape
    lab = np.zeros((H, W), np.int32)
    best, best_n, k = 0, 0, 0
    for y0, x0 in zip(*np.nonzero(m)):
        if lab[y0, x0]:
            continue
        k += 1
        lab[y0, x0], stack, n = k, [(y0, x0)], 0
        while stack:
            y, x = stack.pop()
            n += 1
            for yy in range(max(y - 1, 0), min(y + 2, H)):
                for xx in range(max(x - 1, 0), min(x + 2, W)):
                    if m[yy, xx] and not lab[yy, xx]:
                        lab[yy, xx] = k
                        stack.append((yy, xx))
        if n > best_n:
            best, best_n = k, n
    return lab == best if best else m


def shape_overlaps(m):
    """test_tiny.c's in_template: the intersection over union of the mask m [H, W] with a circle,
    a square and an apex-up triangle (data.SHAPES' order) of its area, centred on its centroid."""
    H, W = m.shape
    ys, xs = np.nonzero(m)
    n, cx, cy = len(xs), xs.mean(), ys.mean()
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    r = np.sqrt(n / 2)
    top = cy - 4 * r / 3
    tmpl = [(x - cx) ** 2 + (y - cy) ** 2 < n / 3.14159265358979,
            (np.abs(x - cx) < np.sqrt(n) / 2) & (np.abs(y - cy) < np.sqrt(n) / 2),
            (y >= top) & (y < cy + 2 * r / 3) & (np.abs(x - cx) < (y - top) / 2)]
    return tuple(float((m & t).sum() / (m | t).sum()) for t in tmpl)


def measure(v):
    """test_tiny.c's measure_output on uint8 frames [F, H, W, 3]: (colour, shape, motion, IoUs)."""
    F_, H, W, _ = v.shape
    border = np.concatenate([v[0, 0], v[0, H - 1], v[0, :, 0], v[0, :, W - 1]]).astype(np.int64)
    bg = np.array([np.sort(border[:, c])[len(border) // 2] for c in range(3)], np.float64)
    # the object: the largest connected region of the pixels far from the background
    fg = lambda f: largest_component(((v[f].astype(np.float64) - bg) ** 2).sum(-1) >= 60.0 ** 2)  # noqa: E731
    k = 1 if F_ < 3 else 3
    total, rgb, p0, p1 = 0, np.zeros(3), np.zeros(2), np.zeros(2)
    for f in range(F_):
        m = fg(f)
        n = int(m.sum())
        total += n
        c = np.zeros(2)
        if n:
            ys, xs = np.nonzero(m)
            c = np.array([xs.mean(), ys.mean()])
            rgb += v[f][m].sum(0)
        if f < k:
            p0 += c / k
        if f >= F_ - k:
            p1 += c / k
    m = fg(F_ // 2)
    if not total or not m.any():
        return "none", "none", "none", (0.0, 0.0, 0.0)
    mean = rgb / total
    colour = min(data.COLOURS, key=lambda c: ((mean - data.COLOURS[c]) ** 2).sum())
    iou = shape_overlaps(m)
    shape = data.SHAPES[int(np.argmax(iou))]
    dx, dy = p1 - p0
    if np.hypot(dx, dy) < W / 12.0:
        motion = "still"
    elif abs(dx) > 2 * abs(dy) and abs(dx) > W / 6.0:
        motion = "right" if dx > 0 else "left"
    elif abs(dy) > 2 * abs(dx) and abs(dy) > H / 6.0:
        motion = "down" if dy > 0 else "up"
    else:
        motion = "unclear"
    return colour, shape, motion, iou


@torch.no_grad()
def sample(te, dit, vae, sp, mean, std, caps, frames, cfg, steps, seed):
    B = len(caps)
    ctx, unc = T.encode_text(te, sp, caps), T.encode_text(te, sp, [""] * B)
    u = torch.linspace(1, 0, steps + 1)
    sig = T.SHIFT * u / (1 + (T.SHIFT - 1) * u)
    x = torch.randn(B, 16, (frames - 1) // 4 + 1, T.S // 8, T.S // 8, generator=torch.Generator().manual_seed(seed))
    for i in range(steps):
        t = torch.full((2 * B,), sig[i].item() * 1000)
        v = dit(torch.cat([x, x]), t, torch.cat([ctx, unc]), return_dict=False)[0]
        x = x + (sig[i + 1] - sig[i]) * (v[B:] + cfg * (v[:B] - v[B:]))
    img = vae.decode(x * std + mean).sample.clamp(-1, 1)
    return ((img.permute(0, 2, 3, 4, 1) + 1) * 127.5).round().byte().numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", required=True, help="train_tiny.py's working directory")
    ap.add_argument("--ckpt", help="DiT checkpoint (default: WORK/dit.pt)")
    ap.add_argument("--raw", action="store_true", help="the trained weights, not their moving average")
    ap.add_argument("--cfg", type=float, nargs="+", default=[5.0], help="guidance scales to try")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--seed", type=int, default=100, help="noise seed (videos; images use seed + 100)")
    ap.add_argument("--seeds", type=int, default=1,
                    help="render the prompts with this many noise seeds (seed, seed + 1000, ...) and count them all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--png", help="also write a grid of the renders (5 frames each) at the first scale")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(a.work, "spiece.model"))
    stats = json.load(open(os.path.join(a.work, "latents_log.json")))  # not the 60 MB latents.pt
    mean, std = (torch.tensor(stats[k]).view(1, -1, 1, 1, 1) for k in ("latents_mean", "latents_std"))
    ck = torch.load(a.ckpt or os.path.join(a.work, "dit.pt"))
    sfx = "_raw" if a.raw else ""
    te, dit = T.te_model(sp.get_piece_size()).eval(), T.dit_model().eval()
    te.load_state_dict(ck["te" + sfx])
    dit.load_state_dict(ck["dit" + sfx])
    vae = T.vae_model().eval()
    vae.load_state_dict(torch.load(os.path.join(a.work, "vae.pt")))
    prompts = test_prompts()
    videos = [p for p in prompts if p[3]]
    images = [p for p in prompts if not p[3]]
    for ci, cfg in enumerate(a.cfg):
        out, runs = [], []
        for k in range(a.seeds):
            seed = a.seed + 1000 * k
            out += list(sample(te, dit, vae, sp, mean, std, [p[0] for p in videos], T.FRAMES, cfg, a.steps, seed))
            out += list(sample(te, dit, vae, sp, mean, std, [p[0] for p in images], 1, cfg, a.steps, seed + 100))
            runs += videos + images
        ok = [0, 0, 0, 0]
        rows = []
        for p, v in zip(runs, out):
            c, s, m, iou = measure(v)
            r = (c == p[1], s == p[2], p[3] is None or m == p[3])
            ok = [o + x for o, x in zip(ok, (all(r),) + r)]
            print(f"  {'ok  ' if all(r) else 'FAIL'} {p[0]:58s} colour {c:6s}{' *'[not r[0]]} shape {s:8s}"
                  f"{' *'[not r[1]]} (IoU c {iou[0]:.2f} s {iou[1]:.2f} t {iou[2]:.2f}) motion {m if p[3] else '-':7s}{' *'[not r[2]]}")
            idx = [0, 4, 8, 12, 16] if len(v) > 1 else [0] * 5
            if len(rows) < len(prompts):
                rows.append(np.concatenate([v[j] for j in idx], 1))
        print(f"guidance {cfg:g}: {ok[0]} of {len(runs)} pass (colour {ok[1]}, shape {ok[2]}, motion {ok[3]})")
        if a.png and ci == 0:
            from PIL import Image
            Image.fromarray(np.concatenate(rows, 0)).save(a.png)


if __name__ == "__main__":
    main()
