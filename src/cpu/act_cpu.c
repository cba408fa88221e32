/*
 * act_cpu.c — elementwise ops: activations, adaLN modulation, gated residual.
 */
#include <math.h>

#include "cpu_internal.h"
#include "vmath.h"

/* 0.5·x·(1 + tanh(u)) written as x·σ(2u), which stays finite for any |x| (ts_expf
 * clamps its argument). */
static inline float gelu_tanh(float x) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    float u = k * (x + 0.044715f * x * x * x);
    return x / (1.0f + ts_expf(-2.0f * u));
}

static inline float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f)); }

ts_status ts_cpu_unary(ts_ctx *c, ts_unary_op op, float *y, const float *x, int64_t n) {
    switch (op) {
    case TS_UNARY_SILU:
#pragma omp parallel for num_threads(c->n_threads) if (n > 65536)
        for (int64_t i = 0; i < n; i++) y[i] = ts_silu(x[i]);
        return TS_OK;
    case TS_UNARY_GELU_TANH:
#pragma omp parallel for num_threads(c->n_threads) if (n > 65536)
        for (int64_t i = 0; i < n; i++) y[i] = gelu_tanh(x[i]);
        return TS_OK;
    case TS_UNARY_GELU_ERF:
#pragma omp parallel for num_threads(c->n_threads) if (n > 65536)
        for (int64_t i = 0; i < n; i++) y[i] = gelu_erf(x[i]);
        return TS_OK;
    }
    return TS_ERR_INVALID_ARG;
}

ts_status ts_cpu_modulate(ts_ctx *c, float *y, const float *x, int64_t M, int64_t C,
                          const float *shift, const float *scale) {
#pragma omp parallel for num_threads(c->n_threads) if (M * C > 65536)
    for (int64_t m = 0; m < M; m++) {
        const float *xr = x + m * C;
        float *yr = y + m * C;
        for (int64_t i = 0; i < C; i++) yr[i] = xr[i] * (1.0f + scale[i]) + shift[i];
    }
    return TS_OK;
}

ts_status ts_cpu_add_gated(ts_ctx *c, float *x, const float *y, int64_t M, int64_t C,
                           const float *gate) {
#pragma omp parallel for num_threads(c->n_threads) if (M * C > 65536)
    for (int64_t m = 0; m < M; m++) {
        float *xr = x + m * C;
        const float *yr = y + m * C;
        if (gate)
            for (int64_t i = 0; i < C; i++) xr[i] += gate[i] * yr[i];
        else
            for (int64_t i = 0; i < C; i++) xr[i] += yr[i];
    }
    return TS_OK;
}

ts_status ts_cpu_mul(ts_ctx *c, float *y, const float *a, const float *b, int64_t n) {
#pragma omp parallel for simd num_threads(c->n_threads) if (n > 65536)
    for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i];
    return TS_OK;
}

ts_status ts_cpu_rope(ts_ctx *c, float *x, int64_t N, int64_t H, int64_t D, const float *cos_t,
                      const float *sin_t) {
    if (D % 2) return TS_ERR_SHAPE;
    int64_t P = D / 2;
#pragma omp parallel for num_threads(c->n_threads) if (N * H * D > 65536)
    for (int64_t n = 0; n < N; n++) {
        const float *cr = cos_t + n * P, *sr = sin_t + n * P;
        for (int64_t h = 0; h < H; h++) {
            float *v = x + (n * H + h) * D;
            for (int64_t j = 0; j < P; j++) {
                float a = v[2 * j], b = v[2 * j + 1];
                v[2 * j] = a * cr[j] - b * sr[j];
                v[2 * j + 1] = a * sr[j] + b * cr[j];
            }
        }
    }
    return TS_OK;
}

ts_status ts_cpu_upsample2x(ts_ctx *c, float *y, const float *x, int64_t C, int64_t H, int64_t W) {
#pragma omp parallel for num_threads(c->n_threads) if (C * H * W > 16384)
    for (int64_t ch = 0; ch < C; ch++) {
        for (int64_t i = 0; i < H; i++) {
            const float *xr = x + (ch * H + i) * W;
            float *y0 = y + (ch * 2 * H + 2 * i) * 2 * W;
            float *y1 = y0 + 2 * W;
            for (int64_t j = 0; j < W; j++) {
                y0[2 * j] = y0[2 * j + 1] = xr[j];
                y1[2 * j] = y1[2 * j + 1] = xr[j];
            }
        }
    }
    return TS_OK;
}
