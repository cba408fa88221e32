/*
 * draft.c — DraftAttention's dynamic plans; see draft.h.
 *
 * Reference: shared/docs/attention-methods.md §2 (draft_attention.py:
 * sample_qk_attention_2d, attention_percentile_mask_headwise,
 * generate_reorg_restore_indices). The pooled map is tiny (S = T · ceil(H/ph) · ceil(W/pw)
 * regions), so it is computed in double, and the threshold by sorting a copy.
 */
#include "draft.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/backend.h"

#define DRAFT_PF 4 /* pooling: rows asked for ahead */

int64_t ts_draft_regions(const int64_t g[3], const int pool[2]) {
    return g[0] * ((g[1] + pool[0] - 1) / pool[0]) * ((g[2] + pool[1] - 1) / pool[1]);
}

int64_t ts_draft_perm(const int64_t g[3], const int pool[2], int32_t **perm) {
    const int64_t T = g[0], Hl = g[1], Wl = g[2], ph = pool[0], pw = pool[1];
    const int64_t RH = (Hl + ph - 1) / ph, RW = (Wl + pw - 1) / pw, n_kern = T * RH * RW * ph * pw;
    int32_t *p = malloc((size_t)n_kern * sizeof *p);
    if (!p) return -1;
    int64_t i = 0;
    for (int64_t t = 0; t < T; t++)
        for (int64_t ry = 0; ry < RH; ry++)
            for (int64_t rx = 0; rx < RW; rx++) { /* the region's tokens row-major, then its padding */
                const int64_t i1 = i + ph * pw;
                for (int64_t y = ry * ph; y < ry * ph + ph && y < Hl; y++)
                    for (int64_t x = rx * pw; x < rx * pw + pw && x < Wl; x++) p[i++] = (int32_t)((t * Hl + y) * Wl + x);
                while (i < i1) p[i++] = -1;
            }
    *perm = p;
    return n_kern;
}

/* The k-th smallest (from 0) of a[0 .. n): quickselect with a median-of-three pivot and a
 * three-way partition (runs of equal values end it early); reorders a. */
static double kth_smallest(double *a, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi];
        double piv = x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y);
        int64_t lt = lo, i = lo, gt = hi; /* [lo, lt) < piv, [lt, i) == piv, (gt, hi] > piv */
        while (i <= gt) {
            double t = a[i];
            if (t < piv) a[i++] = a[lt], a[lt++] = t;
            else if (t > piv) a[i] = a[gt], a[gt--] = t;
            else i++;
        }
        if (k < lt) hi = lt - 1;
        else if (k > gt) lo = gt + 1;
        else return piv;
    }
    return a[lo];
}

ts_status ts_draft_plan(const int64_t g[3], int64_t H, int64_t D, int64_t h, const ts_draft_params *dp,
                        const float *q, const float *k, ts_attn_plan *p, ts_plan_store *st, ts_err *err) {
    ts_plan_store_free(st);
    const int64_t n = g[0] * g[1] * g[2], HD = H * D, blk = (int64_t)dp->pool[0] * dp->pool[1];
    if (blk < 1 || blk > 256 || !(dp->sparsity >= 0 && dp->sparsity < 1))
        return TS_ERR(err, TS_ERR_INVALID_ARG, "draft: pool %dx%d (at most 256 tokens) and sparsity %g in [0, 1)",
                      dp->pool[0], dp->pool[1], dp->sparsity);
    const int64_t S = ts_draft_regions(g, dp->pool); /* the region order's n_kern / blk */
    if (S > TS_DRAFT_MAX_REGIONS) /* the CLIs' ts_attn_schedule_check refuses this before a render */
        return TS_ERR(err, TS_ERR_INVALID_ARG, "draft: pool %dx%d makes %lld regions on this %lldx%lldx%lld grid (at "
                      "most %d): use a larger pool", dp->pool[0], dp->pool[1], (long long)S, (long long)g[0],
                      (long long)g[1], (long long)g[2], TS_DRAFT_MAX_REGIONS);
    const int64_t n_kern = ts_draft_perm(g, dp->pool, &st->perm); /* S · blk */
    if (n_kern < 0) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    double *pq = calloc((size_t)(S * D), sizeof *pq), *pk = calloc((size_t)(S * D), sizeof *pk);
    double *A = malloc((size_t)(S * (S > D ? S : D)) * sizeof *A), *sorted = malloc((size_t)(S * S) * sizeof *sorted);
    int64_t *cnt = calloc((size_t)S, sizeof *cnt);
    st->ptr = malloc((size_t)(S + 1) * sizeof *st->ptr);
    st->idx = malloc((size_t)(S * S) * sizeof *st->idx);
    st->full = malloc((size_t)(S * S));
    ts_status rc = TS_OK;
    if (!pq || !pk || !A || !sorted || !cnt || !st->ptr || !st->idx || !st->full) {
        rc = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* average pooling over each region's real tokens (K's sums in the rows of A, free until
     * the map, then transposed: [D, S]); the next rows are asked for ahead */
    double *pkr = A;
    memset(pkr, 0, (size_t)(S * D) * sizeof *pkr);
    for (int64_t s = 0; s < S; s++) {
        double *aq = pq + s * D, *ak = pkr + s * D;
        for (int64_t j = 0; j < blk; j++) {
            const int64_t tok = st->perm[s * blk + j];
            const int64_t jn = s * blk + j + DRAFT_PF, tn = jn < n_kern ? st->perm[jn] : -1;
            if (tn >= 0) {
                TS_PREFETCH_LINES(q + tn * HD + h * D, D * sizeof(float), 0);
                TS_PREFETCH_LINES(k + tn * HD + h * D, D * sizeof(float), 0);
            }
            if (tok < 0) continue;
            cnt[s]++;
            const float *qr = q + tok * HD + h * D, *kr = k + tok * HD + h * D;
            for (int64_t d = 0; d < D; d++) aq[d] += qr[d], ak[d] += kr[d];
        }
        for (int64_t d = 0; d < D; d++) aq[d] /= (double)cnt[s], pk[d * S + s] = ak[d] / (double)cnt[s];
    }
    /* the draft map, row softmax; with pooled K transposed the dot products run along a row of
     * A (each entry still sums over d in order) */
    const double scale = 1.0 / sqrt((double)D);
    for (int64_t a = 0; a < S; a++) {
        double mx = -INFINITY, sum = 0, *row = A + a * S;
        for (int64_t b = 0; b < S; b++) row[b] = 0;
        for (int64_t d = 0; d < D; d++) {
            const double x = pq[a * D + d], *kt = pk + d * S;
            for (int64_t b = 0; b < S; b++) row[b] += x * kt[b];
        }
        for (int64_t b = 0; b < S; b++) {
            row[b] *= scale;
            if (row[b] > mx) mx = row[b];
        }
        for (int64_t b = 0; b < S; b++) sum += (A[a * S + b] = exp(A[a * S + b] - mx));
        for (int64_t b = 0; b < S; b++) A[a * S + b] /= sum;
    }
    /* one threshold per head over the whole map: the k-th smallest entry */
    int64_t kth = (int64_t)floor(dp->sparsity * (double)(S * S));
    double thr = -INFINITY;
    if (kth >= 1) {
        memcpy(sorted, A, (size_t)(S * S) * sizeof *A);
        thr = kth_smallest(sorted, S * S, kth - 1);
    }
    double allowed = 0;
    int64_t used = 0;
    for (int64_t a = 0; a < S; a++) {
        st->ptr[a] = (int32_t)used;
        for (int64_t b = 0; b < S; b++) {
            if (!(A[a * S + b] >= thr || a == b)) continue;
            st->idx[used] = (int32_t)b;
            st->full[used] = cnt[b] == blk; /* padding keys need the mask pass */
            used++;
            allowed += (double)cnt[a] * (double)cnt[b];
        }
    }
    st->ptr[S] = (int32_t)used;
    *p = ts_attn_plan_dense(n, n, H, D, (int32_t)blk, (int32_t)blk);
    p->perm = st->perm;
    p->n_kern = n_kern;
    p->n_qblk = p->n_kblk = (int32_t)S;
    p->exact_ptr = st->ptr, p->exact_idx = st->idx, p->exact_full = st->full;
    p->h0 = h, p->h1 = h + 1;
    p->density = allowed / ((double)n * (double)n);
done:
    free(pq), free(pk), free(A), free(sorted), free(cnt);
    if (rc != TS_OK) ts_plan_store_free(st);
    return rc;
}

typedef struct draft_head {
    const int64_t *g;
    int64_t n, img0, H, D;
    const ts_draft_params *dp;
} draft_head;

/* With text tokens: the image's plan from its own tokens, then the text blocks added. */
static ts_status draft_plan_head(const void *user, int64_t h, const float *q, const float *k, ts_attn_plan *p,
                                 ts_plan_store *st, ts_err *err) {
    const draft_head *d = user;
    if (d->n == d->g[0] * d->g[1] * d->g[2]) return ts_draft_plan(d->g, d->H, d->D, h, d->dp, q, k, p, st, err);
    const int64_t off = d->img0 * d->H * d->D;
    ts_attn_plan img;
    ts_plan_store is = {0};
    ts_status rc = ts_draft_plan(d->g, d->H, d->D, h, d->dp, q + off, k + off, &img, &is, err);
    if (rc == TS_OK) rc = ts_plan_add_text(&img, d->n, d->img0, p, st, err);
    ts_plan_store_free(&is);
    return rc;
}

ts_status ts_draft_attention(ts_ctx *c, const int64_t g[3], int64_t n, int64_t img0, int64_t H, int64_t D,
                             int64_t h0, int64_t h1, const ts_draft_params *dp, const float *q, const float *k,
                             const float *v, const ts_attn_operands *kop, float *out, double *density, ts_err *err) {
    const int64_t G = g[0] * g[1] * g[2];
    if (g[0] <= 0 || g[1] <= 0 || g[2] <= 0 || img0 < 0 || img0 + G > n)
        return TS_ERR(err, TS_ERR_SHAPE, "draft: needs the token grid (got %lldx%lldx%lld from token %lld for %lld "
                      "tokens)", (long long)g[0], (long long)g[1], (long long)g[2], (long long)img0, (long long)n);
    if (h0 < 0 || h1 > H || h0 >= h1)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "draft: heads [%lld, %lld) of %lld", (long long)h0, (long long)h1,
                      (long long)H);
    const ts_attn_operands ops = kop ? *kop : (ts_attn_operands){q, k, v, 0};
    const draft_head dh = {g, n, img0, H, D, dp};
    ts_head_plans hp;
    ts_status st = ts_plan_heads_run(c, h0, h1 - h0, draft_plan_head, &dh, q, k, &ops, NULL, out, &hp, err);
    if (st == TS_OK && density) *density = hp.density;
    ts_head_plans_free(&hp);
    return st;
}
