/*
 * metrics.h — how far one 8-bit RGB frame is from another: PSNR and SSIM, for the
 * comparison harness (tessera-compare: a sparse attention schedule's render against dense).
 *
 * SSIM is Wang et al. (2004) as scikit-image's structural_similarity computes it with
 * gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255: per color
 * channel, local means, variances and covariance under an 11 x 11 Gaussian window (sigma 1.5,
 * weights normalised over the 11 taps), K1 = 0.01, K2 = 0.03, averaged over the pixels whose
 * window lies inside the frame; the channels' values averaged. In float64. No library the
 * project uses computes it on frames in memory (FFmpeg's is a libavfilter filter graph).
 */
#ifndef TS_SRC_METRICS_H
#define TS_SRC_METRICS_H

#include <stdint.h>

#include "status.h"

/* Window side and its half. */
#define TS_SSIM_WIN 11
#define TS_SSIM_PAD 5

/* PSNR in dB of b against a, n bytes each, peak 255; INFINITY when they are equal. */
double ts_psnr_u8(const uint8_t *a, const uint8_t *b, int64_t n);
/* SSIM of frames a and b, [h][w][3] each; h and w at least TS_SSIM_WIN (else
 * TS_ERR_SHAPE). Allocates 5 planes of h x (w - 10) doubles. */
ts_status ts_ssim_rgb(const uint8_t *a, const uint8_t *b, int64_t h, int64_t w, double *ssim, ts_err *err);

#endif
