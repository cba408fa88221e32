/*
 * norm_cpu.c — LayerNorm, RMSNorm (row-wise over the last dim) and the Wan-VAE
 * channel L2 norm (over channels of a [C, S] map). Statistics in double: the
 * rows are up to 5120 wide and the references compute in fp32 with pairwise sums;
 * double keeps us well inside their rounding.
 */
#include <math.h>

#include "cpu_internal.h"

ts_status ts_cpu_layer_norm(ts_ctx *c, float *y, const float *x, int64_t M, int64_t C, float eps,
                            const float *gamma, const float *beta) {
#pragma omp parallel for num_threads(c->n_threads) if (M * C > 32768)
    for (int64_t m = 0; m < M; m++) {
        const float *xr = x + m * C;
        float *yr = y + m * C;
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < C; i++) s += xr[i];
        double mean = s / (double)C;
        for (int64_t i = 0; i < C; i++) {
            double d = xr[i] - mean;
            s2 += d * d;
        }
        float inv = (float)(1.0 / sqrt(s2 / (double)C + eps));
        float mu = (float)mean;
        for (int64_t i = 0; i < C; i++) {
            float v = (xr[i] - mu) * inv;
            if (gamma) v *= gamma[i];
            if (beta) v += beta[i];
            yr[i] = v;
        }
    }
    return TS_OK;
}

ts_status ts_cpu_rms_norm(ts_ctx *c, float *y, const float *x, int64_t M, int64_t C, float eps,
                          const float *gamma) {
#pragma omp parallel for num_threads(c->n_threads) if (M * C > 32768)
    for (int64_t m = 0; m < M; m++) {
        const float *xr = x + m * C;
        float *yr = y + m * C;
        double s2 = 0;
        for (int64_t i = 0; i < C; i++) s2 += (double)xr[i] * xr[i];
        float inv = (float)(1.0 / sqrt(s2 / (double)C + eps));
        if (gamma)
            for (int64_t i = 0; i < C; i++) yr[i] = xr[i] * inv * gamma[i];
        else
            for (int64_t i = 0; i < C; i++) yr[i] = xr[i] * inv;
    }
    return TS_OK;
}

void ts_cpu_l2_inv(float *inv, const float *x, int64_t C, int64_t cstride, int64_t n) {
    const float sq = sqrtf((float)C);
    double acc[256];
    for (int64_t j0 = 0; j0 < n; j0 += 256) {
        const int64_t m = n - j0 < 256 ? n - j0 : 256;
        for (int64_t j = 0; j < m; j++) acc[j] = 0;
        for (int64_t ch = 0; ch < C; ch++) {
            const float *xr = x + ch * cstride + j0;
            for (int64_t j = 0; j < m; j++) acc[j] += (double)xr[j] * xr[j];
        }
        for (int64_t j = 0; j < m; j++) {
            double nrm = sqrt(acc[j]);
            inv[j0 + j] = (float)(1.0 / (nrm > 1e-12 ? nrm : 1e-12)) * sq;
        }
    }
}

/* x [C, S]: one norm per column s. Work on column strips so the inner loops run
 * along s (contiguous) and vectorise. */
ts_status ts_cpu_l2_norm_ch(ts_ctx *c, float *y, const float *x, int64_t C, int64_t S,
                            const float *gamma) {
    const int64_t strip = 256;
    int64_t nstrip = (S + strip - 1) / strip;
#pragma omp parallel for num_threads(c->n_threads) if (C * S > 32768)
    for (int64_t st = 0; st < nstrip; st++) {
        int64_t s0 = st * strip, n = S - s0 < strip ? S - s0 : strip;
        float inv[256];
        ts_cpu_l2_inv(inv, x + s0, C, S, n);
        for (int64_t ch = 0; ch < C; ch++) {
            const float *xr = x + ch * S + s0;
            float *yr = y + ch * S + s0;
            float g = gamma ? gamma[ch] : 1.0f;
            for (int64_t j = 0; j < n; j++) yr[j] = xr[j] * inv[j] * g;
        }
    }
    return TS_OK;
}
