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

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

ts_status ts_draft_plan(const int64_t g[3], int64_t H, int64_t D, int64_t h, const ts_draft_params *dp,
                        const float *q, const float *k, ts_attn_plan *p, ts_plan_store *st, ts_err *err) {
    ts_plan_store_free(st);
    const int64_t n = g[0] * g[1] * g[2], HD = H * D, blk = (int64_t)dp->pool[0] * dp->pool[1];
    if (blk < 1 || blk > 256 || !(dp->sparsity >= 0 && dp->sparsity < 1))
        return TS_ERR(err, TS_ERR_INVALID_ARG, "draft: pool %dx%d (at most 256 tokens) and sparsity %g in [0, 1)",
                      dp->pool[0], dp->pool[1], dp->sparsity);
    int64_t n_kern = ts_draft_perm(g, dp->pool, &st->perm);
    if (n_kern < 0) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    const int64_t S = n_kern / blk;
    double *pq = calloc((size_t)(S * D), sizeof *pq), *pk = calloc((size_t)(S * D), sizeof *pk);
    double *A = malloc((size_t)(S * S) * sizeof *A), *sorted = malloc((size_t)(S * S) * sizeof *sorted);
    int64_t *cnt = calloc((size_t)S, sizeof *cnt);
    st->ptr = malloc((size_t)(S + 1) * sizeof *st->ptr);
    st->idx = malloc((size_t)(S * S) * sizeof *st->idx);
    st->full = malloc((size_t)(S * S));
    ts_status rc = TS_OK;
    if (!pq || !pk || !A || !sorted || !cnt || !st->ptr || !st->idx || !st->full) {
        rc = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* average pooling over each region's real tokens */
    for (int64_t s = 0; s < S; s++) {
        for (int64_t j = 0; j < blk; j++) {
            int64_t tok = st->perm[s * blk + j];
            if (tok < 0) continue;
            cnt[s]++;
            for (int64_t d = 0; d < D; d++) {
                pq[s * D + d] += q[tok * HD + h * D + d];
                pk[s * D + d] += k[tok * HD + h * D + d];
            }
        }
        for (int64_t d = 0; d < D; d++) pq[s * D + d] /= (double)cnt[s], pk[s * D + d] /= (double)cnt[s];
    }
    /* the draft map, row softmax */
    const double scale = 1.0 / sqrt((double)D);
    for (int64_t a = 0; a < S; a++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t b = 0; b < S; b++) {
            double acc = 0;
            for (int64_t d = 0; d < D; d++) acc += pq[a * D + d] * pk[b * D + d];
            A[a * S + b] = acc * scale;
            if (A[a * S + b] > mx) mx = A[a * S + b];
        }
        for (int64_t b = 0; b < S; b++) sum += (A[a * S + b] = exp(A[a * S + b] - mx));
        for (int64_t b = 0; b < S; b++) A[a * S + b] /= sum;
    }
    /* one threshold per head over the whole map: the k-th smallest entry */
    int64_t kth = (int64_t)floor(dp->sparsity * (double)(S * S));
    double thr = -INFINITY;
    if (kth >= 1) {
        memcpy(sorted, A, (size_t)(S * S) * sizeof *A);
        qsort(sorted, (size_t)(S * S), sizeof *sorted, cmp_double);
        thr = sorted[kth - 1];
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

ts_status ts_draft_attention(ts_ctx *c, const int64_t g[3], int64_t n, int64_t H, int64_t D, int64_t h0,
                             int64_t h1, const ts_draft_params *dp, const float *q, const float *k,
                             const float *v, float *out, double *density, ts_err *err) {
    if (g[0] * g[1] * g[2] != n || n <= 0)
        return TS_ERR(err, TS_ERR_SHAPE, "draft: needs the token grid (got %lldx%lldx%lld for %lld tokens)",
                      (long long)g[0], (long long)g[1], (long long)g[2], (long long)n);
    /* the heads' plans are built in parallel (each is serial work), then run one by one (each
     * kernel call is parallel) */
    const int64_t nh = h1 - h0;
    ts_plan_store *st = calloc((size_t)nh, sizeof *st);
    ts_attn_plan *p = malloc((size_t)nh * sizeof *p);
    ts_status *rc = malloc((size_t)nh * sizeof *rc);
    ts_err *errs = calloc((size_t)nh, sizeof *errs);
    if (!st || !p || !rc || !errs) {
        free(st), free(p), free(rc), free(errs);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    const int nt = c->n_threads > 0 ? c->n_threads : 1;
    (void)nt;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t i = 0; i < nh; i++) rc[i] = ts_draft_plan(g, H, D, h0 + i, dp, q, k, &p[i], &st[i], &errs[i]);
    ts_status out_rc = TS_OK;
    double sum = 0;
    for (int64_t i = 0; i < nh; i++) {
        if (rc[i] != TS_OK) {
            *err = errs[i];
            out_rc = rc[i];
            break;
        }
        ts_status s = c->backend->attn(c, &p[i], q, k, v, out);
        sum += p[i].density;
        if (s != TS_OK) {
            out_rc = TS_ERR(err, s, "attention kernel failed (%s)", ts_status_str(s));
            break;
        }
    }
    for (int64_t i = 0; i < nh; i++) ts_plan_store_free(&st[i]);
    free(st), free(p), free(rc), free(errs);
    if (out_rc == TS_OK && density) *density = sum / (double)nh;
    return out_rc;
}
