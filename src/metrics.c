/* metrics.c — PSNR and SSIM of 8-bit RGB frames; see metrics.h. */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>

double ts_psnr_u8(const uint8_t *a, const uint8_t *b, int64_t n) {
    double se = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)a[i] - (double)b[i];
        se += d * d;
    }
    if (se == 0) return INFINITY;
    return 10.0 * log10(255.0 * 255.0 / (se / (double)n));
}

/* The 11 Gaussian weights, sigma 1.5, summing to 1 (scipy.ndimage's kernel for truncate 3.5). */
static void gauss11(double g[TS_SSIM_WIN]) {
    double sum = 0;
    for (int i = 0; i < TS_SSIM_WIN; i++) {
        const double x = i - TS_SSIM_PAD;
        g[i] = exp(-0.5 * x * x / (1.5 * 1.5));
        sum += g[i];
    }
    for (int i = 0; i < TS_SSIM_WIN; i++) g[i] /= sum;
}

ts_status ts_ssim_rgb(const uint8_t *a, const uint8_t *b, int64_t h, int64_t w, double *ssim, ts_err *err) {
    if (h < TS_SSIM_WIN || w < TS_SSIM_WIN)
        return TS_ERR(err, TS_ERR_SHAPE, "SSIM needs frames of at least %dx%d pixels (these are %lldx%lld)",
                      TS_SSIM_WIN, TS_SSIM_WIN, (long long)w, (long long)h);
    const int64_t wo = w - 2 * TS_SSIM_PAD, ho = h - 2 * TS_SSIM_PAD, plane = h * wo;
    double *m = malloc((size_t)(5 * plane) * sizeof *m); /* rows filtered along w: x, y, x², y², xy */
    if (!m) return TS_ERR(err, TS_ERR_NOMEM, "out of memory for SSIM");
    double g[TS_SSIM_WIN];
    gauss11(g);
    const double C1 = (0.01 * 255) * (0.01 * 255), C2 = (0.03 * 255) * (0.03 * 255);
    double total = 0;
    for (int ch = 0; ch < 3; ch++) {
        for (int64_t r = 0; r < h; r++)
            for (int64_t c = 0; c < wo; c++) {
                double s[5] = {0};
                for (int t = 0; t < TS_SSIM_WIN; t++) {
                    const double x = a[(r * w + c + t) * 3 + ch], y = b[(r * w + c + t) * 3 + ch];
                    s[0] += g[t] * x, s[1] += g[t] * y, s[2] += g[t] * x * x, s[3] += g[t] * y * y,
                        s[4] += g[t] * x * y;
                }
                for (int q = 0; q < 5; q++) m[q * plane + r * wo + c] = s[q];
            }
        double sum = 0;
        for (int64_t r = 0; r < ho; r++)
            for (int64_t c = 0; c < wo; c++) {
                double s[5] = {0};
                for (int t = 0; t < TS_SSIM_WIN; t++)
                    for (int q = 0; q < 5; q++) s[q] += g[t] * m[q * plane + (r + t) * wo + c];
                const double ux = s[0], uy = s[1];
                const double vx = s[2] - ux * ux, vy = s[3] - uy * uy, vxy = s[4] - ux * uy;
                sum += (2 * ux * uy + C1) * (2 * vxy + C2) / ((ux * ux + uy * uy + C1) * (vx + vy + C2));
            }
        total += sum / (double)(ho * wo);
    }
    free(m);
    *ssim = total / 3;
    return TS_OK;
}
