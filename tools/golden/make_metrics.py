#!/usr/bin/env python3
"""make_metrics.py — PSNR and SSIM of frame pairs as scikit-image computes them, for the
comparison harness's metrics (src/metrics.c, tessera_compare): peak_signal_noise_ratio with
data_range=255 and structural_similarity with gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255, channel_axis=-1 (Wang et al.'s settings).

Writes tests/fixtures/metrics.safetensors: a, b [F, H, W, 3] (U8; odd sizes) and psnr, ssim
[F] (F32). The pairs: b is a with noise of growing strength, a copy shifted by one pixel,
and a with one channel inverted.
"""
import numpy as np
import skimage
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from fixture import save

SEED = 900
F, H, W = 4, 27, 37


def main():
    rng = np.random.default_rng(SEED)
    y, x = np.mgrid[0:H, 0:W]
    a = np.empty((F, H, W, 3), np.uint8)
    b = np.empty_like(a)
    for f in range(F):
        base = np.stack([128 + 70 * np.sin(0.25 * x + 0.15 * y + c + f) for c in range(3)], -1)
        a[f] = np.clip(base + 15 * rng.standard_normal(base.shape), 0, 255).round()
    for f, sd in enumerate((3.0, 12.0)):
        b[f] = np.clip(a[f] + sd * rng.standard_normal(a[f].shape), 0, 255).round()
    b[2] = np.roll(a[2], 1, axis=1)
    b[3] = a[3]
    b[3, ..., 1] = 255 - a[3, ..., 1]
    psnr = [peak_signal_noise_ratio(a[f], b[f], data_range=255) for f in range(F)]
    ssim = [structural_similarity(a[f], b[f], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                  data_range=255, channel_axis=-1) for f in range(F)]
    print("psnr", psnr, "ssim", ssim)
    save("metrics.safetensors",
         {"a": torch.from_numpy(a), "b": torch.from_numpy(b), "psnr": torch.tensor(psnr, dtype=torch.float64),
          "ssim": torch.tensor(ssim, dtype=torch.float64)},
         SEED, {"frames": F, "height": H, "width": W, "scikit-image": skimage.__version__,
                "numpy": np.__version__}, "tools/golden/make_metrics.py")


if __name__ == "__main__":
    main()
