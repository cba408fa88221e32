/*
 * conv_cpu.c — 3-D convolution as banded im2col + sgemm.
 *
 * The output is cut into bands of output rows of one output frame; each OpenMP thread
 * takes bands, builds the band's im2col matrix [Cin·kt·kh·kw, rows·Wo] in its own
 * scratch (TS_CPU_COL_FLOATS per thread at most) and runs a single-threaded sgemm
 * Y[Cout, rows·Wo] = W[Cout, K] · col into the band, then adds the bias while the band
 * is in cache. One thread pool does both the copy and the GEMM (no hand-off between
 * OpenMP and OpenBLAS's own threads), and the scratch stays under the glibc mmap
 * threshold so it is not faulted in anew on every call. 1x1x1 unpadded stride-1 convs
 * are a single (threaded) gemm with no copy. Frames before x may come from a separate
 * prefix buffer (a causal conv's cache), and the input may be read as if
 * nearest-upsampled 2x (the VAE's upsample + conv, without materialising the 4x larger
 * frame). With norm_gamma each band first norms and activates the input rows it reads
 * (every channel of kt frames, the band's rows plus the kernel's halo) into a small
 * per-thread buffer, so the VAE's norm → SiLU → conv needs no full-size copy of its input.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../ops.h"
#include "cpu_internal.h"
#include "vmath.h"

#define TS_CPU_COL_FLOATS (4 * 1024 * 1024)

typedef struct conv_geom {
    const ts_conv3d_params *p;
    const float *x, *wf, *b;
    float *y;
    int64_t Cout, Cin, K, T, TP, SH, SW, H, W, To, Ho, Wo, HWo, S;
    int kt, kh, kw, st, sh, sw, up;
} conv_geom;

/* A band's input normed and activated (norm_gamma): frames t_lo .. t_lo+kt−1 (those that
 * exist), rows rlo .. rlo+nrow−1, every channel: tb[((ci·kt + ti − t_lo)·nrow + row − rlo)·W]. */
typedef struct band_in {
    float *tb, *inv;
    int64_t t_lo, rlo, nrow;
} band_in;

/* Input row hrow (in the frame the conv sees) of channel ci, frame ti of [prefix | x]. */
static inline const float *src_row(const conv_geom *g, const band_in *bi, int64_t ci, int64_t ti, int64_t hrow) {
    if (bi) return bi->tb + ((ci * g->kt + ti - bi->t_lo) * bi->nrow + hrow - bi->rlo) * g->W;
    const float *frame = ti < g->TP ? g->p->prefix + (ci * g->TP + ti) * g->SH * g->SW
                                    : g->x + (ci * g->T + ti - g->TP) * g->SH * g->SW;
    return frame + (hrow >> g->up) * g->SW;
}

/* Fills bi for output frame to, output rows r0 .. r0+nr−1 (stride 1, no upsample):
 * SiLU(x · sqrt(C) / ||x|| · gamma), the values ts_l2_norm_ch then ts_unary(SILU) give. */
static void band_fill(const conv_geom *g, band_in *bi, int64_t to, int64_t r0, int64_t nr) {
    const ts_conv3d_params *p = g->p;
    const int64_t W = g->W, HW = g->H * W;
    bi->t_lo = to - p->pad[0];
    int64_t lo = r0 - p->pad[2], hi = r0 + nr - 1 + g->kh - 1 - p->pad[2];
    if (lo < 0) lo = 0;
    if (hi > g->H - 1) hi = g->H - 1;
    bi->rlo = lo, bi->nrow = g->kh + nr - 1;
    for (int a = 0; a < g->kt; a++) {
        const int64_t ti = bi->t_lo + a;
        if (ti < 0 || ti >= g->TP + g->T) continue;
        const float *frame = ti < g->TP ? p->prefix + ti * HW : g->x + (ti - g->TP) * HW;
        const int64_t cs = (ti < g->TP ? g->TP : g->T) * HW; /* channel stride */
        for (int64_t row = lo; row <= hi; row++) {
            const float *xr = frame + row * W;
            ts_cpu_l2_inv(bi->inv, xr, g->Cin, cs, W);
            for (int64_t ci = 0; ci < g->Cin; ci++) {
                const float *xc = xr + ci * cs;
                float *d = bi->tb + ((ci * g->kt + a) * bi->nrow + row - lo) * W;
                const float gm = p->norm_gamma[ci];
                for (int64_t j = 0; j < W; j++) d[j] = ts_silu(xc[j] * bi->inv[j] * gm);
            }
        }
    }
}

/* col [K, nr·Wo] for output frame to, output rows r0 .. r0+nr−1. */
static void im2col_band(const conv_geom *g, const band_in *bi, float *col, int64_t to, int64_t r0, int64_t nr) {
    const ts_conv3d_params *p = g->p;
    const int64_t ncol = nr * g->Wo, Wo = g->Wo, W = g->W;
    const int taps = g->kt * g->kh * g->kw;
    for (int64_t kk = 0; kk < g->K; kk++) {
        const int64_t ci = kk / taps;
        const int rem = (int)(kk % taps);
        const int it = rem / (g->kh * g->kw), ih = (rem / g->kw) % g->kh, iw = rem % g->kw;
        const int64_t ti = to * g->st + it - p->pad[0];
        float *dst = col + kk * ncol;
        if (ti < 0 || ti >= g->TP + g->T) {
            memset(dst, 0, (size_t)ncol * sizeof(float));
            continue;
        }
        /* output columns whose input column is inside the frame */
        const int64_t off = iw - p->pad[4];
        int64_t lo = off >= 0 ? 0 : (-off + g->sw - 1) / g->sw;
        int64_t hi = W - 1 - off < 0 ? 0 : (W - 1 - off) / g->sw + 1;
        if (hi > Wo) hi = Wo;
        if (lo > hi) lo = hi;
        for (int64_t r = 0; r < nr; r++) {
            const int64_t hrow = (r0 + r) * g->sh + ih - p->pad[2];
            float *d = dst + r * Wo;
            if (hrow < 0 || hrow >= g->H) {
                memset(d, 0, (size_t)Wo * sizeof(float));
                continue;
            }
            const float *srow = src_row(g, bi, ci, ti, hrow);
            for (int64_t o = 0; o < lo; o++) d[o] = 0.0f;
            if (g->sw == 1 && !g->up) {
                memcpy(d + lo, srow + lo + off, (size_t)(hi - lo) * sizeof(float));
            } else {
                for (int64_t o = lo; o < hi; o++) d[o] = srow[(o * g->sw + off) >> g->up];
            }
            for (int64_t o = hi; o < Wo; o++) d[o] = 0.0f;
        }
    }
}

ts_status ts_cpu_conv3d(ts_ctx *c, float *y, const float *x, const ts_conv3d_params *p,
                        const ts_tensor *w, const float *b) {
    if (w->ndim != 5 || w->shape[1] != p->cin) return TS_ERR_SHAPE;
    conv_geom g = {.p = p, .x = x, .y = y, .b = b};
    g.Cout = w->shape[0], g.Cin = p->cin;
    g.kt = (int)w->shape[2], g.kh = (int)w->shape[3], g.kw = (int)w->shape[4];
    g.st = p->stride[0], g.sh = p->stride[1], g.sw = p->stride[2];
    if (g.st < 1 || g.sh < 1 || g.sw < 1) return TS_ERR_INVALID_ARG;
    g.T = p->t, g.TP = p->prefix ? p->prefix_t : 0;
    g.up = p->upsample2x ? 1 : 0;       /* the conv sees x nearest-upsampled 2x */
    g.SH = p->h, g.SW = p->w;           /* stored frame size */
    g.H = g.SH << g.up, g.W = g.SW << g.up; /* frame size the conv sees */
    if (g.TP < 0) return TS_ERR_INVALID_ARG;
    g.To = ts_conv_out(g.TP + g.T, g.kt, g.st, p->pad[0], p->pad[1]);
    g.Ho = ts_conv_out(g.H, g.kh, g.sh, p->pad[2], p->pad[3]);
    g.Wo = ts_conv_out(g.W, g.kw, g.sw, p->pad[4], p->pad[5]);
    if (g.To <= 0 || g.Ho <= 0 || g.Wo <= 0) return TS_ERR_SHAPE;
    if (p->norm_gamma && (g.up || g.st != 1 || g.sh != 1 || g.sw != 1)) return TS_ERR_UNSUPPORTED;
    g.K = g.Cin * g.kt * g.kh * g.kw;
    g.HWo = g.Ho * g.Wo, g.S = g.To * g.HWo;
    const int64_t Cout = g.Cout, K = g.K, S = g.S;

    float *wbuf = NULL;
    g.wf = w->dtype == TS_DTYPE_F32 ? (const float *)w->data : NULL;
    if (!g.wf) {
        wbuf = malloc((size_t)(Cout * K) * sizeof(float));
        if (!wbuf) return TS_ERR_NOMEM;
        if (ts_convert_to_f32(wbuf, w->data, w->dtype, 0, Cout * K) != TS_OK) {
            free(wbuf);
            return TS_ERR_UNSUPPORTED;
        }
        g.wf = wbuf;
    }

    const float beta = p->accumulate ? 1.0f : 0.0f;
    int pointwise = !p->norm_gamma && g.TP == 0 && !g.up && g.kt == 1 && g.kh == 1 && g.kw == 1 && g.st == 1 &&
                    g.sh == 1 && g.sw == 1 && !p->pad[0] && !p->pad[1] && !p->pad[2] &&
                    !p->pad[3] && !p->pad[4] && !p->pad[5];
    if (pointwise) {
        ts_cpu_blas_threads(c);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Cout, (int)S, (int)g.Cin, 1.0f,
                    g.wf, (int)K, x, (int)S, beta, y, (int)S);
        if (b) {
#pragma omp parallel for num_threads(c->n_threads) if (Cout * S > 65536)
            for (int64_t co = 0; co < Cout; co++)
                for (int64_t i = 0; i < S; i++) y[co * S + i] += b[co];
        }
        free(wbuf);
        return TS_OK;
    }

    /* bands: at most TS_CPU_COL_FLOATS of im2col each, and enough of them per frame that
     * every thread gets work */
    const int nt = c->n_threads > 0 ? c->n_threads : 1;
    int64_t rows = TS_CPU_COL_FLOATS / (K * g.Wo);
    if (rows < 1) rows = 1;
    int64_t fair = (g.Ho + 2 * nt - 1) / (2 * nt);
    if (g.To * g.Ho >= 2 * nt && rows > fair) rows = fair < 1 ? 1 : fair;
    if (rows > g.Ho) rows = g.Ho;
    const int64_t nb = (g.Ho + rows - 1) / rows, items = g.To * nb;
    const int use = items < nt ? (int)items : nt;
    float *col = malloc((size_t)use * (size_t)(K * rows * g.Wo) * sizeof(float));
    /* normed input per thread: Cin · kt frames of rows + kh − 1 rows, and a row of factors */
    const size_t tbn = p->norm_gamma ? (size_t)(g.Cin * g.kt * (rows + g.kh - 1) * g.W + g.W) : 0;
    float *tball = tbn ? malloc((size_t)use * tbn * sizeof(float)) : NULL;
    if (!col || (tbn && !tball)) {
        free(col), free(tball), free(wbuf);
        return TS_ERR_NOMEM;
    }
    openblas_set_num_threads(1); /* each band's sgemm runs on its own thread */
#pragma omp parallel num_threads(use)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *mine = col + (size_t)tid * (size_t)(K * rows * g.Wo);
        band_in bin = {0}, *bi = NULL;
        if (tbn) {
            bin.tb = tball + (size_t)tid * tbn;
            bin.inv = bin.tb + tbn - (size_t)g.W;
            bi = &bin;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            const int64_t to = it / nb, r0 = (it % nb) * rows;
            const int64_t nr = g.Ho - r0 < rows ? g.Ho - r0 : rows, ncol = nr * g.Wo;
            if (bi) band_fill(&g, bi, to, r0, nr);
            im2col_band(&g, bi, mine, to, r0, nr);
            float *yb = y + to * g.HWo + r0 * g.Wo;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Cout, (int)ncol, (int)K,
                        1.0f, g.wf, (int)K, mine, (int)ncol, beta, yb, (int)S);
            if (b)
                for (int64_t co = 0; co < Cout; co++) {
                    float *yr = yb + co * S;
                    for (int64_t i = 0; i < ncol; i++) yr[i] += b[co];
                }
        }
    }
    ts_cpu_blas_threads(c);
    free(col);
    free(tball);
    free(wbuf);
    return TS_OK;
}
