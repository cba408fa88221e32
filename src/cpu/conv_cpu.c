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
 * frame). With norm_gamma the input is normed and activated as it is read, a row at a
 * time (every channel and frame of it) into a small per-thread ring of rows, so the VAE's
 * norm → SiLU → conv needs no full-size copy of its input: each thread takes a contiguous
 * range of output rows and walks it once for all output frames, so every input row is
 * normed once per thread (its halo rows at the range's ends twice), where norming per
 * (frame, band) normed each row kt·(rows + kh − 1) / rows times, 9x at the full-resolution
 * stage's one-row bands (an 8 % slower decode).
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
#define TS_CPU_NORM_FLOATS (2 * 1024 * 1024) /* norm_gamma: the ring of normed rows, per thread */

typedef struct conv_geom {
    const ts_conv3d_params *p;
    const float *x, *wf, *b;
    float *y;
    int64_t Cout, Cin, K, T, TP, SH, SW, H, W, To, Ho, Wo, HWo, S;
    int kt, kh, kw, st, sh, sw, up;
} conv_geom;

/* The normed and activated input (norm_gamma) of one thread: a ring of R row slots, input
 * row r in slot r mod R, each slot frames f0 .. f0+nf−1 of [prefix | x] and every channel:
 * tb[((slot·nf + ti − f0)·Cin + ci)·W]; slot_row[slot]: the row it holds (−1: none). */
typedef struct band_in {
    float *tb, *inv;
    int64_t *slot_row;
    int64_t R, f0, nf;
} band_in;

/* Input row hrow (in the frame the conv sees) of channel ci, frame ti of [prefix | x]. */
static inline const float *src_row(const conv_geom *g, const band_in *bi, int64_t ci, int64_t ti, int64_t hrow) {
    if (bi) return bi->tb + (((hrow % bi->R) * bi->nf + ti - bi->f0) * g->Cin + ci) * g->W;
    const float *frame = ti < g->TP ? g->p->prefix + (ci * g->TP + ti) * g->SH * g->SW
                                    : g->x + (ci * g->T + ti - g->TP) * g->SH * g->SW;
    return frame + (hrow >> g->up) * g->SW;
}

/* Makes bi hold the input rows output rows r0 .. r0+nr−1 read (stride 1, no upsample),
 * norming those it lacks: SiLU(x · sqrt(C) / ||x|| · gamma), the values ts_l2_norm_ch then
 * ts_unary(SILU) give. Needs nr + kh − 1 ≤ R. */
static void band_fill(const conv_geom *g, band_in *bi, int64_t r0, int64_t nr) {
    const ts_conv3d_params *p = g->p;
    const int64_t W = g->W, HW = g->H * W;
    int64_t lo = r0 - p->pad[2], hi = r0 + nr - 1 + g->kh - 1 - p->pad[2];
    if (lo < 0) lo = 0;
    if (hi > g->H - 1) hi = g->H - 1;
    for (int64_t row = lo; row <= hi; row++) {
        const int64_t slot = row % bi->R;
        if (bi->slot_row[slot] == row) continue;
        bi->slot_row[slot] = row;
        for (int64_t a = 0; a < bi->nf; a++) {
            const int64_t ti = bi->f0 + a;
            if (ti < 0 || ti >= g->TP + g->T) continue; /* im2col zero-fills these frames */
            const float *xr = (ti < g->TP ? p->prefix + ti * HW : g->x + (ti - g->TP) * HW) + row * W;
            const int64_t cs = (ti < g->TP ? g->TP : g->T) * HW; /* channel stride */
            ts_cpu_l2_inv(bi->inv, xr, g->Cin, cs, W);
            for (int64_t ci = 0; ci < g->Cin; ci++) {
                const float *xc = xr + ci * cs;
                float *d = bi->tb + ((slot * bi->nf + a) * g->Cin + ci) * W;
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

/* Y[:, band] (+)= W · col for output frame to, rows from r0 (ncol columns), then the bias. */
static void conv_band_gemm(const conv_geom *g, const float *col, int64_t to, int64_t r0, int64_t ncol, float beta) {
    float *yb = g->y + to * g->HWo + r0 * g->Wo;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g->Cout, (int)ncol, (int)g->K, 1.0f, g->wf,
                (int)g->K, col, (int)ncol, beta, yb, (int)g->S);
    if (g->b)
        for (int64_t co = 0; co < g->Cout; co++) {
            float *yr = yb + co * g->S;
            for (int64_t i = 0; i < ncol; i++) yr[i] += g->b[co];
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
        ts_cpu_gemm(c, 0, 0, Cout, S, g.Cin, 1.0f, g.wf, K, x, S, beta, y, S);
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
    /* norm_gamma: each thread a contiguous range of output rows; output frames in groups
     * whose input frames (group + kt − 1) fit the ring's budget, all of them when they fit */
    const int64_t R = rows + g.kh - 1;
    int64_t G = g.To;
    if (p->norm_gamma) {
        const int64_t per_frame = R * g.Cin * g.W, fit = TS_CPU_NORM_FLOATS / per_frame - (g.kt - 1);
        G = fit < 1 ? 1 : fit < g.To ? fit : g.To;
    }
    const int use = p->norm_gamma ? (g.Ho < nt ? (int)g.Ho : nt) : items < nt ? (int)items : nt;
    float *col = malloc((size_t)use * (size_t)(K * rows * g.Wo) * sizeof(float));
    const size_t tbn = p->norm_gamma ? (size_t)(R * (G + g.kt - 1) * g.Cin * g.W + g.W) : 0;
    float *tball = tbn ? malloc((size_t)use * tbn * sizeof(float)) : NULL;
    int64_t *slots = tbn ? malloc((size_t)use * (size_t)R * sizeof(int64_t)) : NULL;
    if (!col || (tbn && (!tball || !slots))) {
        free(col), free(tball), free(slots), free(wbuf);
        return TS_ERR_NOMEM;
    }
    openblas_set_num_threads(1); /* each band's sgemm runs on its own thread */
#pragma omp parallel num_threads(use)
    {
        int tid = 0, team = 1;
#ifdef _OPENMP
        tid = omp_get_thread_num();
        team = omp_get_num_threads(); /* may be fewer than use (nested, thread limits) */
#endif
        float *mine = col + (size_t)tid * (size_t)(K * rows * g.Wo);
        if (tbn) {
            band_in bi = {.tb = tball + (size_t)tid * tbn, .slot_row = slots + (size_t)tid * (size_t)R, .R = R};
            bi.inv = bi.tb + tbn - (size_t)g.W;
            const int64_t ra = g.Ho * tid / team, rb = g.Ho * (tid + 1) / team; /* my output rows */
            for (int64_t to0 = 0; to0 < g.To; to0 += G) {
                const int64_t gn = g.To - to0 < G ? g.To - to0 : G;
                bi.f0 = to0 - p->pad[0], bi.nf = gn + g.kt - 1;
                for (int64_t i = 0; i < R; i++) bi.slot_row[i] = -1;
                for (int64_t r0 = ra; r0 < rb; r0 += rows) {
                    const int64_t nr = rb - r0 < rows ? rb - r0 : rows, ncol = nr * g.Wo;
                    band_fill(&g, &bi, r0, nr);
                    for (int64_t to = to0; to < to0 + gn; to++) {
                        im2col_band(&g, &bi, mine, to, r0, nr);
                        conv_band_gemm(&g, mine, to, r0, ncol, beta);
                    }
                }
            }
        } else {
#pragma omp for schedule(dynamic, 1)
            for (int64_t it = 0; it < items; it++) {
                const int64_t to = it / nb, r0 = (it % nb) * rows;
                const int64_t nr = g.Ho - r0 < rows ? g.Ho - r0 : rows;
                im2col_band(&g, NULL, mine, to, r0, nr);
                conv_band_gemm(&g, mine, to, r0, nr * g.Wo, beta);
            }
        }
    }
    ts_cpu_blas_threads(c);
    free(col);
    free(tball);
    free(slots);
    free(wbuf);
    return TS_OK;
}
