/*
 * conv_cpu.c — 3-D convolution as banded im2col + sgemm.
 *
 * For each output frame the im2col matrix [Cin·kt·kh·kw, rows·Wo] is built for a band
 * of output rows small enough that it stays under TS_CPU_COL_FLOATS, then one sgemm
 * Y[Cout, rows·Wo] = W[Cout, K] · col writes the band of all output channels. Scratch
 * is bounded whatever the frame size (the real Wan-VAE runs 96..384 channels on
 * 480x832 frames). 1x1x1 unpadded stride-1 convs are a single gemm with no copy.
 * Frames before x may come from a separate prefix buffer (a causal conv's cache), and
 * the input may be read as if nearest-upsampled 2x (the VAE's upsample + conv, without
 * materialising the 4x larger frame).
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "../ops.h"
#include "cpu_internal.h"

#define TS_CPU_COL_FLOATS (16 * 1024 * 1024)

ts_status ts_cpu_conv3d(ts_ctx *c, float *y, const float *x, const ts_conv3d_params *p,
                        const ts_tensor *w, const float *b) {
    if (w->ndim != 5 || w->shape[1] != p->cin) return TS_ERR_SHAPE;
    const int64_t Cout = w->shape[0], Cin = p->cin;
    const int kt = (int)w->shape[2], kh = (int)w->shape[3], kw = (int)w->shape[4];
    const int st = p->stride[0], sh = p->stride[1], sw = p->stride[2];
    if (st < 1 || sh < 1 || sw < 1) return TS_ERR_INVALID_ARG;
    const int64_t T = p->t, TP = p->prefix ? p->prefix_t : 0;
    const int up = p->upsample2x ? 1 : 0;   /* the conv sees x nearest-upsampled 2x */
    const int64_t SH = p->h, SW = p->w;     /* stored frame size */
    const int64_t H = SH << up, W = SW << up; /* frame size the conv sees */
    if (TP < 0) return TS_ERR_INVALID_ARG;
    const int64_t To = ts_conv_out(TP + T, kt, st, p->pad[0], p->pad[1]);
    const int64_t Ho = ts_conv_out(H, kh, sh, p->pad[2], p->pad[3]);
    const int64_t Wo = ts_conv_out(W, kw, sw, p->pad[4], p->pad[5]);
    if (To <= 0 || Ho <= 0 || Wo <= 0) return TS_ERR_SHAPE;
    const int64_t K = Cin * kt * kh * kw;
    const int64_t HWo = Ho * Wo, S = To * HWo;

    ts_cpu_blas_threads(c);
    float *wbuf = NULL;
    const float *wf = w->dtype == TS_DTYPE_F32 ? (const float *)w->data : NULL;
    if (!wf) {
        wbuf = malloc((size_t)(Cout * K) * sizeof(float));
        if (!wbuf) return TS_ERR_NOMEM;
        if (ts_convert_to_f32(wbuf, w->data, w->dtype, 0, Cout * K) != TS_OK) {
            free(wbuf);
            return TS_ERR_UNSUPPORTED;
        }
        wf = wbuf;
    }

    int pointwise = TP == 0 && !up && kt == 1 && kh == 1 && kw == 1 && st == 1 && sh == 1 && sw == 1 &&
                    !p->pad[0] && !p->pad[1] && !p->pad[2] && !p->pad[3] && !p->pad[4] &&
                    !p->pad[5];
    if (pointwise) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Cout, (int)S, (int)Cin, 1.0f,
                    wf, (int)K, x, (int)S, 0.0f, y, (int)S);
    } else {
        int64_t rows = TS_CPU_COL_FLOATS / (K * Wo);
        if (rows < 1) rows = 1;
        if (rows > Ho) rows = Ho;
        float *col = malloc((size_t)(K * rows * Wo) * sizeof(float));
        if (!col) {
            free(wbuf);
            return TS_ERR_NOMEM;
        }
        for (int64_t to = 0; to < To; to++) {
            for (int64_t r0 = 0; r0 < Ho; r0 += rows) {
                int64_t nr = Ho - r0 < rows ? Ho - r0 : rows;
                int64_t ncol = nr * Wo;
#pragma omp parallel for num_threads(c->n_threads) if (K * ncol > 65536)
                for (int64_t kk = 0; kk < K; kk++) {
                    int64_t ci = kk / (kt * kh * kw);
                    int rem = (int)(kk % (kt * kh * kw));
                    int it = rem / (kh * kw), ih = (rem / kw) % kh, iw = rem % kw;
                    int64_t ti = to * st + it - p->pad[0];
                    float *dst = col + kk * ncol;
                    if (ti < 0 || ti >= TP + T) {
                        memset(dst, 0, (size_t)ncol * sizeof(float));
                        continue;
                    }
                    const float *src = ti < TP ? p->prefix + (ci * TP + ti) * SH * SW
                                               : x + (ci * T + ti - TP) * SH * SW;
                    for (int64_t r = 0; r < nr; r++) {
                        int64_t hi = (r0 + r) * sh + ih - p->pad[2];
                        float *d = dst + r * Wo;
                        if (hi < 0 || hi >= H) {
                            memset(d, 0, (size_t)Wo * sizeof(float));
                            continue;
                        }
                        const float *srow = src + (hi >> up) * SW;
                        for (int64_t o = 0; o < Wo; o++) {
                            int64_t wi = o * sw + iw - p->pad[4];
                            d[o] = (wi >= 0 && wi < W) ? srow[wi >> up] : 0.0f;
                        }
                    }
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Cout, (int)ncol,
                            (int)K, 1.0f, wf, (int)K, col, (int)ncol, 0.0f,
                            y + to * HWo + r0 * Wo, (int)S);
            }
        }
        free(col);
    }
    free(wbuf);
    if (b) {
#pragma omp parallel for num_threads(c->n_threads) if (Cout * S > 65536)
        for (int64_t co = 0; co < Cout; co++) {
            float *yr = y + co * S;
            for (int64_t i = 0; i < S; i++) yr[i] += b[co];
        }
    }
    return TS_OK;
}
