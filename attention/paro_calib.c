/*
 * paro_calib.c — PARO calibration: block-binned attention maps under the six axis orders,
 * the choice of order and the static masks; see paro.h.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../src/cpu/cpu_internal.h"
#include "paro.h"

struct ts_paro_calib {
    int64_t grid[3], n, nb;
    int block, layers, heads, groups, row_stride;
    ts_paro_calib_mode mode;
    int n_grp, n_ord;             /* the maps kept: per group or summed (1), per order or the head's (1) */
    int32_t *fixed;               /* TS_PARO_CALIB_MASKS: [L·H] the heads' orders */
    int32_t *blk[TS_PARO_ORDERS]; /* [n]: token -> its block under each order */
    double *acc;                  /* [n_grp][L][H][n_ord][nb][nb] */
    int64_t *rows;                /* [G]: query rows summed per (layer, head) in that group */
    int64_t calls;
    ts_status st;
    char msg[256];
};

/* The map of stored group g, layer l, head h, stored order slot o. */
#define ACC(c, g, l, h, o) ((c)->acc + ((((int64_t)(g) * (c)->layers + (l)) * (c)->heads + (h)) * (c)->n_ord + (o)) * (c)->nb * (c)->nb)

int64_t ts_paro_calib_bytes(const int64_t grid[3], int block, int layers, int heads, int groups,
                            ts_paro_calib_mode mode) {
    const int64_t nb = (grid[0] * grid[1] * grid[2] + block - 1) / block;
    const int64_t f[6] = {mode == TS_PARO_CALIB_ORDERS ? 1 : groups, layers, heads,
                          mode == TS_PARO_CALIB_MASKS ? 1 : TS_PARO_ORDERS, nb, nb};
    int64_t b = (int64_t)sizeof(double);
    for (int i = 0; i < 6; i++)
        if (__builtin_mul_overflow(b, f[i], &b)) return INT64_MAX; /* past any machine */
    return b;
}

ts_status ts_paro_calib_new(ts_paro_calib **out, const int64_t grid[3], int block, int layers, int heads,
                            int groups, int row_stride, ts_paro_calib_mode mode, const int32_t *orders, ts_err *err) {
    *out = NULL;
    if (grid[0] < 1 || grid[1] < 1 || grid[2] < 1 || grid[0] > (1 << 20) || grid[1] > (1 << 20) ||
        grid[2] > (1 << 20) || grid[0] * grid[1] * grid[2] > (1 << 30) || block < 16 || block > 256 || block % 16 ||
        layers < 1 || heads < 1 || groups < 1 || row_stride < 1)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "paro calibration: bad geometry (block a multiple of 16 in [16, 256], "
                      "positive layers, heads, groups and row stride, at most 2^30 tokens)");
    if ((mode == TS_PARO_CALIB_MASKS) != (orders != NULL))
        return TS_ERR(err, TS_ERR_INVALID_ARG, "paro calibration: the masks pass takes the heads' orders, the others none");
    for (int64_t i = 0; orders && i < (int64_t)layers * heads; i++)
        if (orders[i] < 0 || orders[i] >= TS_PARO_ORDERS)
            return TS_ERR(err, TS_ERR_INVALID_ARG, "paro calibration: order %d is not 0..5", orders[i]);
    ts_paro_calib *c = calloc(1, sizeof *c);
    if (!c) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    memcpy(c->grid, grid, sizeof c->grid);
    c->n = grid[0] * grid[1] * grid[2];
    c->nb = (c->n + block - 1) / block;
    c->block = block, c->layers = layers, c->heads = heads, c->groups = groups, c->row_stride = row_stride;
    c->mode = mode;
    c->n_grp = mode == TS_PARO_CALIB_ORDERS ? 1 : groups, c->n_ord = mode == TS_PARO_CALIB_MASKS ? 1 : TS_PARO_ORDERS;
    const int64_t bytes = ts_paro_calib_bytes(grid, block, layers, heads, groups, mode);
    size_t na = (size_t)(bytes / (int64_t)sizeof(double));
    c->acc = bytes < INT64_MAX && (uint64_t)bytes <= SIZE_MAX ? calloc(na, sizeof(double)) : NULL;
    if (orders && (c->fixed = malloc((size_t)layers * heads * sizeof *c->fixed)))
        memcpy(c->fixed, orders, (size_t)layers * heads * sizeof *c->fixed);
    c->rows = calloc((size_t)groups, sizeof(int64_t));
    int ok = c->acc && c->rows && (!orders || c->fixed);
    int32_t *perm = ok ? malloc((size_t)c->n * sizeof(int32_t)) : NULL;
    ok = ok && perm;
    for (int o = 0; ok && o < TS_PARO_ORDERS; o++) {
        ok = (c->blk[o] = malloc((size_t)c->n * sizeof(int32_t))) != NULL;
        if (!ok) break;
        ts_paro_order_perm(grid, o, perm);
        for (int64_t pos = 0; pos < c->n; pos++) c->blk[o][perm[pos]] = (int32_t)(pos / block);
    }
    free(perm);
    if (!ok) {
        ts_paro_calib_free(c);
        return TS_ERR(err, TS_ERR_NOMEM, "paro calibration: out of memory for the maps (%zu MB)", na * 8 >> 20);
    }
    *out = c;
    return TS_OK;
}

void ts_paro_calib_free(ts_paro_calib *c) {
    if (!c) return;
    for (int o = 0; o < TS_PARO_ORDERS; o++) free(c->blk[o]);
    free(c->acc), free(c->rows), free(c->fixed);
    free(c);
}

#define QCHUNK 32

void ts_paro_calib_observe(void *user, const struct ts_attn_site *site, int64_t n, int64_t H, int64_t D,
                           const float *q, const float *k) {
    ts_paro_calib *c = user;
    if (c->st != TS_OK) return;
    const int64_t *g = site->grid, G = g[0] * g[1] * g[2];
    if (G > 0 && n > G) { /* text tokens too: the image's maps */
        if (site->img0 < 0 || site->img0 + G > n) {
            c->st = TS_ERR_SHAPE;
            snprintf(c->msg, sizeof c->msg, "paro calibration: the image's %lld tokens from token %lld do not fit in "
                     "the call's %lld", (long long)G, (long long)site->img0, (long long)n);
            return;
        }
        q += site->img0 * H * D, k += site->img0 * H * D;
        n = G;
    }
    if (g[0] != c->grid[0] || g[1] != c->grid[1] || g[2] != c->grid[2] || n != c->n || H != c->heads ||
        site->layer < 0 || site->layer >= c->layers) {
        c->st = TS_ERR_SHAPE;
        snprintf(c->msg, sizeof c->msg, "paro calibration: a call on grid %lldx%lldx%lld, layer %d, %lld heads does "
                 "not fit the calibration (%lldx%lldx%lld, %d layers, %d heads)", (long long)g[0], (long long)g[1],
                 (long long)g[2], site->layer, (long long)H, (long long)c->grid[0], (long long)c->grid[1],
                 (long long)c->grid[2], c->layers, c->heads);
        return;
    }
    int grp = 0;
    if (site->step >= 0 && site->n_steps > 0) {
        grp = (int)((int64_t)site->step * c->groups / site->n_steps);
        if (grp >= c->groups) grp = c->groups - 1;
    }
    const int64_t HD = H * D, nb = c->nb, stride = c->row_stride;
    const float scale = (float)(1.0 / sqrt((double)D));
    int64_t nrows = 0; /* sampled rows: every stride-th */
    for (int64_t i = 0; i < n; i += stride) nrows++;
    const int64_t chunks = (nrows + QCHUNK - 1) / QCHUNK;
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
#endif
    float *scratch = malloc((size_t)nt * (size_t)(QCHUNK * (n + D)) * sizeof(float));
    if (!scratch) {
        c->st = TS_ERR_NOMEM;
        snprintf(c->msg, sizeof c->msg, "paro calibration: out of memory");
        return;
    }
    openblas_set_num_threads(1);
    /* one head per thread at a time: a head's bins are written by its thread only */
#pragma omp parallel num_threads(nt)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *S = scratch + (size_t)tid * (size_t)(QCHUNK * (n + D)), *Q = S + QCHUNK * n;
#pragma omp for schedule(static, 1)
        for (int64_t h = 0; h < H; h++) {
            double *bins = ACC(c, c->n_grp == 1 ? 0 : grp, site->layer, h, 0);
            for (int64_t t = 0; t < chunks; t++) {
                int64_t r0 = t * QCHUNK, nr = nrows - r0 < QCHUNK ? nrows - r0 : QCHUNK;
                for (int64_t r = 0; r < nr; r++)
                    for (int64_t d = 0; d < D; d++) Q[r * D + d] = q[(r0 + r) * stride * HD + h * D + d] * scale;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)n, (int)D, 1.0f, Q, (int)D,
                            k + h * D, (int)HD, 0.0f, S, (int)n);
                for (int64_t r = 0; r < nr; r++) {
                    float *s = S + r * n, mx = -INFINITY;
                    for (int64_t j = 0; j < n; j++) mx = s[j] > mx ? s[j] : mx;
                    double sum = 0;
                    for (int64_t j = 0; j < n; j++) sum += (s[j] = expf(s[j] - mx));
                    const float inv = (float)(1.0 / sum);
                    const int64_t i = (r0 + r) * stride;
                    for (int oi = 0; oi < c->n_ord; oi++) { /* every order, or the head's */
                        const int o = c->fixed ? c->fixed[site->layer * c->heads + h] : oi;
                        double *row = bins + (int64_t)oi * nb * nb + (int64_t)c->blk[o][i] * nb;
                        const int32_t *bj = c->blk[o];
                        for (int64_t j = 0; j < n; j++) row[bj[j]] += s[j] * inv;
                    }
                }
            }
        }
    }
    /* OpenBLAS stays single-threaded: the next op sets its own thread count */
    free(scratch);
    if (site->layer == 0) c->rows[grp] += nrows;
    c->calls++;
}

ts_status ts_paro_calib_status(const ts_paro_calib *c, ts_err *err) {
    return c->st == TS_OK ? TS_OK : TS_ERR(err, c->st, "%s", c->msg);
}

int64_t ts_paro_calib_calls(const ts_paro_calib *c) { return c->calls; }

typedef struct ent {
    double v;
    int32_t i;
} ent;

static int by_mass(const void *a, const void *b) {
    const ent *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? 1 : -1;
    return x->i < y->i ? -1 : x->i > y->i; /* ties: lower index first (deterministic) */
}

/* The top-k blocks of map m [nb·nb] into sel (0/1); returns their mass. */
static double top_blocks(const double *m, int64_t nb, int64_t kk, ent *e, uint8_t *sel) {
    for (int64_t i = 0; i < nb * nb; i++) e[i] = (ent){m[i], (int32_t)i};
    qsort(e, (size_t)(nb * nb), sizeof *e, by_mass);
    double got = 0;
    if (sel) memset(sel, 0, (size_t)(nb * nb));
    for (int64_t i = 0; i < kk; i++) {
        got += e[i].v;
        if (sel) sel[e[i].i] = 1;
    }
    return got;
}

ts_status ts_paro_calib_finish(const ts_paro_calib *c, double density, int32_t *orders, uint8_t *masks,
                               double *captured, ts_err *err) {
    TS_TRY(ts_paro_calib_status(c, err));
    if (!(density > 0 && density <= 1))
        return TS_ERR(err, TS_ERR_INVALID_ARG, "paro calibration: density must be in (0, 1]");
    if (!c->calls) return TS_ERR(err, TS_ERR_INVALID_ARG, "paro calibration: no attention call was observed");
    if (c->mode == TS_PARO_CALIB_ORDERS && (masks || captured))
        return TS_ERR(err, TS_ERR_INVALID_ARG, "paro calibration: the orders pass gives orders only");
    const int64_t nb = c->nb, nn = nb * nb;
    int64_t kk = (int64_t)llround(density * (double)nn);
    if (kk < 1) kk = 1;
    ent *e = malloc((size_t)nn * sizeof *e);
    double *sum = malloc((size_t)nn * sizeof *sum);
    if (!e || !sum) {
        free(e), free(sum);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    for (int l = 0; l < c->layers; l++)
        for (int h = 0; h < c->heads; h++) {
            int best = 0; /* the order, and its slot in the maps */
            if (c->fixed) {
                best = c->fixed[l * c->heads + h];
            } else {
                double best_mass = -1;
                for (int o = 0; o < TS_PARO_ORDERS; o++) {
                    memset(sum, 0, (size_t)nn * sizeof *sum);
                    for (int g = 0; g < c->n_grp; g++)
                        for (int64_t i = 0; i < nn; i++) sum[i] += ACC(c, g, l, h, o)[i];
                    double m = top_blocks(sum, nb, kk, e, NULL);
                    if (m > best_mass * (1 + 1e-12)) best = o, best_mass = m;
                }
            }
            orders[l * c->heads + h] = best;
            if (!masks) continue;
            const int slot = c->fixed ? 0 : best;
            memset(sum, 0, (size_t)nn * sizeof *sum);
            for (int g = 0; g < c->groups; g++)
                for (int64_t i = 0; i < nn; i++) sum[i] += ACC(c, g, l, h, slot)[i];
            double cap = 0;
            for (int g = 0; g < c->groups; g++) {
                /* a group no step fell into takes the map of all groups */
                const double *m = c->rows[g] ? ACC(c, g, l, h, slot) : sum;
                uint8_t *sel = masks + (((int64_t)g * c->layers + l) * c->heads + h) * nn;
                double total = 0;
                for (int64_t i = 0; i < nn; i++) total += m[i];
                double got = top_blocks(m, nb, kk, e, sel);
                for (int64_t i = 0; i < nb; i++) { /* no empty query block */
                    int64_t arg = 0, any = 0;
                    for (int64_t j = 0; j < nb; j++) {
                        any |= sel[i * nb + j];
                        if (m[i * nb + j] > m[i * nb + arg]) arg = j;
                    }
                    if (!any) sel[i * nb + arg] = 1, got += m[i * nb + arg];
                }
                cap += total > 0 ? got / total : 1;
            }
            if (captured) captured[l * c->heads + h] = cap / c->groups;
        }
    free(e), free(sum);
    return TS_OK;
}
