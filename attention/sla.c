/*
 * sla.c — SLA's dynamic plans; see sla.h.
 *
 * Reference: thu-ml/SLA sparse_linear_attention/{utils.py get_block_map, core.py
 * SparseLinearAttention.forward}, TurboDiffusion turbodiffusion/SLA/core.py (read for the
 * semantics, not translated). The block scores are tiny (nQ x nK per head), computed in
 * double; the sparse branch is the shared block-sparse kernel, and so is the linear branch,
 * either variant (plan.lin_w: its tasks add it to their rows as they write them, from the fp32
 * q, k, v whatever the kernel's operands; cpu_lin.c).
 */
#include "sla.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/backend.h"

/* Rows asked for ahead: a head's rows sit H·D apart, past a 4 KiB page for 12 heads of 128,
 * where the hardware's prefetch does not follow them (TS_PREFETCH_LINES). */
#define SLA_PF 4

/* Σ a[d]·b[d] in eight running sums (they vectorise; one sum is a chain of dependent adds). */
static double dot8(const double *a, const double *b, int64_t D) {
    double s[8] = {0}, acc = 0;
    int64_t d = 0;
    for (; d + 8 <= D; d += 8)
        for (int l = 0; l < 8; l++) s[l] += a[d + l] * b[d + l];
    for (; d < D; d++) acc += a[d] * b[d];
    for (int l = 0; l < 8; l++) acc += s[l];
    return acc;
}

/* Block x before block y: the higher score, ties to the lower index. */
static int ranks_first(const double *row, int32_t x, int32_t y) {
    return row[x] > row[y] || (row[x] == row[y] && x < y);
}

/* Reorders idx[0 .. m) so that its first kc entries are the kc best blocks by ranks_first
 * (quickselect; the order is total, so that set is the one a sort would give). */
static void top_k(const double *row, int32_t *idx, int64_t m, int64_t kc) {
    int64_t lo = 0, hi = m - 1;
    const int64_t want = kc - 1;
    while (lo < hi) {
        int32_t t = idx[lo + (hi - lo) / 2];
        idx[lo + (hi - lo) / 2] = idx[hi], idx[hi] = t;
        int64_t s = lo;
        for (int64_t i = lo; i < hi; i++)
            if (ranks_first(row, idx[i], t)) {
                int32_t u = idx[i];
                idx[i] = idx[s], idx[s++] = u;
            }
        idx[hi] = idx[s], idx[s] = t; /* [lo, s) rank before the pivot, now at s; (s, hi] after */
        if (s == want) return;
        if (s < want) lo = s + 1;
        else hi = s - 1;
    }
}

ts_status ts_sla_plan(int64_t n, int64_t H, int64_t D, int64_t h, const ts_sla_params *sp, const float *q,
                      const float *k, ts_attn_plan *p, ts_plan_store *st, ts_err *err) {
    ts_plan_store_free(st);
    if (sp->blk_q < 16 || sp->blk_q > 1024 || sp->blk_k < 16 || sp->blk_k > 256 || !(sp->topk > 0 && sp->topk <= 1))
        return TS_ERR(err, TS_ERR_INVALID_ARG, "sla: blocks %dx%d (query 16..1024, key 16..256), topk %g in (0, 1]",
                      sp->blk_q, sp->blk_k, sp->topk);
    const int64_t HD = H * D, bq = sp->blk_q, bk = sp->blk_k, nq = (n + bq - 1) / bq, nkb = (n + bk - 1) / bk;
    int64_t kc = (int64_t)floor(sp->topk * (double)nkb);
    if (kc > nkb) kc = nkb;
    if (kc < 1) kc = 1;
    double *km = calloc((size_t)D, sizeof *km), *pq = calloc((size_t)(nq * D), sizeof *pq);
    double *pk = calloc((size_t)(nkb * D), sizeof *pk), *row = malloc((size_t)nkb * sizeof *row);
    int32_t *order = malloc((size_t)nkb * sizeof *order);
    char *taken = malloc((size_t)nkb);
    st->ptr = malloc((size_t)(nq + 1) * sizeof *st->ptr);
    st->idx = malloc((size_t)(nq * kc) * sizeof *st->idx);
    st->full = malloc((size_t)(nq * kc));
    if (!km || !pq || !pk || !row || !order || !taken || !st->ptr || !st->idx || !st->full) {
        free(km), free(pq), free(pk), free(row), free(order), free(taken);
        ts_plan_store_free(st);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    /* One pass over the head's rows of q and k (asked for ahead: they sit H·D apart): the
     * blocks' sums; then K's mean, and each key block's mean less it (the mean of k - mean k). */
    const float *qh = q + h * D, *kh = k + h * D;
    for (int64_t t = 0; t < n; t++) {
        if (t + SLA_PF < n) {
            TS_PREFETCH_LINES(qh + (t + SLA_PF) * HD, D * sizeof(float), 0);
            TS_PREFETCH_LINES(kh + (t + SLA_PF) * HD, D * sizeof(float), 0);
        }
        const float *qr = qh + t * HD, *kr = kh + t * HD;
        double *a = pq + (t / bq) * D, *b = pk + (t / bk) * D;
#pragma omp simd
        for (int64_t d = 0; d < D; d++) a[d] += qr[d], b[d] += kr[d];
    }
    for (int64_t b = 0; b < nkb; b++)
        for (int64_t d = 0; d < D; d++) km[d] += pk[b * D + d];
    for (int64_t d = 0; d < D; d++) km[d] /= (double)n;
    for (int64_t a = 0; a < nq; a++) {
        int64_t cnt = (a + 1) * bq <= n ? bq : n - a * bq;
        for (int64_t d = 0; d < D; d++) pq[a * D + d] /= (double)cnt;
    }
    for (int64_t b = 0; b < nkb; b++) {
        int64_t cnt = (b + 1) * bk <= n ? bk : n - b * bk;
        for (int64_t d = 0; d < D; d++) pk[b * D + d] = pk[b * D + d] / (double)cnt - km[d];
    }
    double allowed = 0;
    for (int64_t a = 0; a < nq; a++) {
        for (int64_t b = 0; b < nkb; b++) row[b] = dot8(pq + a * D, pk + b * D, D), order[b] = (int32_t)b;
        top_k(row, order, nkb, kc);
        memset(taken, 0, (size_t)nkb);
        for (int64_t r = 0; r < kc; r++) taken[order[r]] = 1;
        st->ptr[a] = (int32_t)(a * kc);
        int64_t used = a * kc, qn = (a + 1) * bq <= n ? bq : n - a * bq;
        for (int64_t b = 0; b < nkb; b++) /* ascending, so the kernel merges neighbouring blocks */
            if (taken[b]) {
                st->idx[used] = (int32_t)b;
                st->full[used++] = 1;
                allowed += (double)qn * (double)((b + 1) * bk <= n ? bk : n - b * bk);
            }
    }
    st->ptr[nq] = (int32_t)(nq * kc);
    free(km), free(pq), free(pk), free(row), free(order), free(taken);
    *p = ts_attn_plan_dense(n, n, H, D, (int32_t)bq, (int32_t)bk);
    p->exact_ptr = st->ptr, p->exact_idx = st->idx, p->exact_full = st->full;
    p->h0 = h, p->h1 = h + 1;
    p->density = allowed / ((double)n * (double)n);
    return TS_OK;
}

typedef struct sla_head {
    int64_t n, H, D;
    const ts_sla_params *sp;
} sla_head;

static ts_status sla_plan_head(const void *user, int64_t h, const float *q, const float *k, ts_attn_plan *p,
                               ts_plan_store *st, ts_err *err) {
    const sla_head *s = user;
    return ts_sla_plan(s->n, s->H, s->D, h, s->sp, q, k, p, st, err);
}

ts_status ts_sla_attention(ts_ctx *c, int64_t n, int64_t H, int64_t D, int64_t h0, int64_t h1,
                           const ts_sla_params *sp, const float *q, const float *k, const float *v,
                           const ts_attn_operands *kop, const float *proj_w, const float *proj_b, float *out,
                           double *density, ts_err *err) {
    if (h0 < 0 || h1 > H || h0 >= h1)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "sla: heads [%lld, %lld) of %lld", (long long)h0, (long long)h1,
                      (long long)H);
    const ts_attn_operands ops = kop ? *kop : (ts_attn_operands){q, k, v, 0};
    const sla_head sh = {n, H, D, sp};
    ts_head_plans hp;
    /* the linear branch runs in the kernel's tasks, from the fp32 q, k, v */
    const ts_lin_branch lin = {proj_w, proj_b, v, !sp->complement};
    ts_status st = ts_plan_heads_run(c, h0, h1 - h0, sla_plan_head, &sh, q, k, &ops, proj_w ? &lin : NULL, out, &hp,
                                     err);
    if (st == TS_OK && density) *density = hp.density;
    ts_head_plans_free(&hp);
    return st;
}
