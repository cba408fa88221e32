/*
 * sla.c — SLA's dynamic plans and its linear branch; see sla.h.
 *
 * Reference: thu-ml/SLA sparse_linear_attention/{utils.py get_block_map, core.py
 * SparseLinearAttention.forward}, TurboDiffusion turbodiffusion/SLA/core.py (read for the
 * semantics, not translated). The block scores are tiny (nQ x nK per head), computed in
 * double; the sparse branch is the shared block-sparse kernel; the linear branch is two
 * GEMMs per head (the complement variant keeps per-key-block partial sums).
 */
#include "sla.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/backend.h"
#include "../src/cpu/cpu_internal.h"

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
    char *taken = malloc((size_t)nkb);
    st->ptr = malloc((size_t)(nq + 1) * sizeof *st->ptr);
    st->idx = malloc((size_t)(nq * kc) * sizeof *st->idx);
    st->full = malloc((size_t)(nq * kc));
    if (!km || !pq || !pk || !row || !taken || !st->ptr || !st->idx || !st->full) {
        free(km), free(pq), free(pk), free(row), free(taken);
        ts_plan_store_free(st);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    for (int64_t t = 0; t < n; t++)
        for (int64_t d = 0; d < D; d++) km[d] += k[t * HD + h * D + d];
    for (int64_t d = 0; d < D; d++) km[d] /= (double)n;
    for (int64_t t = 0; t < n; t++)
        for (int64_t d = 0; d < D; d++) {
            pq[(t / bq) * D + d] += q[t * HD + h * D + d];
            pk[(t / bk) * D + d] += k[t * HD + h * D + d] - km[d];
        }
    for (int64_t a = 0; a < nq; a++) {
        int64_t cnt = (a + 1) * bq <= n ? bq : n - a * bq;
        for (int64_t d = 0; d < D; d++) pq[a * D + d] /= (double)cnt;
    }
    for (int64_t b = 0; b < nkb; b++) {
        int64_t cnt = (b + 1) * bk <= n ? bk : n - b * bk;
        for (int64_t d = 0; d < D; d++) pk[b * D + d] /= (double)cnt;
    }
    double allowed = 0;
    for (int64_t a = 0; a < nq; a++) {
        for (int64_t b = 0; b < nkb; b++) {
            double acc = 0;
            for (int64_t d = 0; d < D; d++) acc += pq[a * D + d] * pk[b * D + d];
            row[b] = acc;
        }
        memset(taken, 0, (size_t)nkb);
        st->ptr[a] = (int32_t)(a * kc);
        for (int64_t r = 0; r < kc; r++) { /* the r-th largest, ties to the lower index */
            int64_t best = -1;
            for (int64_t b = 0; b < nkb; b++)
                if (!taken[b] && (best < 0 || row[b] > row[best])) best = b;
            if (best >= 0) taken[best] = 1;
        }
        int64_t used = a * kc, qn = (a + 1) * bq <= n ? bq : n - a * bq;
        for (int64_t b = 0; b < nkb; b++) /* ascending, so the kernel merges neighbouring blocks */
            if (taken[b]) {
                st->idx[used] = (int32_t)b;
                st->full[used++] = 1;
                allowed += (double)qn * (double)((b + 1) * bk <= n ? bk : n - b * bk);
            }
    }
    st->ptr[nq] = (int32_t)(nq * kc);
    free(km), free(pq), free(pk), free(row), free(taken);
    *p = ts_attn_plan_dense(n, n, H, D, (int32_t)bq, (int32_t)bk);
    p->exact_ptr = st->ptr, p->exact_idx = st->idx, p->exact_full = st->full;
    p->h0 = h, p->h1 = h + 1;
    p->density = allowed / ((double)n * (double)n);
    return TS_OK;
}

/* Row-wise softmax over D of x (row stride ld) into y [n, D]. */
static void feature_map(const float *x, int64_t ld, int64_t n, int64_t D, float *y) {
#pragma omp parallel for if (n >= 256)
    for (int64_t t = 0; t < n; t++) {
        const float *r = x + t * ld;
        float *o = y + t * D, mx = -INFINITY;
        for (int64_t d = 0; d < D; d++) mx = r[d] > mx ? r[d] : mx;
        double sum = 0;
        for (int64_t d = 0; d < D; d++) sum += (o[d] = expf(r[d] - mx));
        float inv = (float)(1.0 / sum);
        for (int64_t d = 0; d < D; d++) o[d] *= inv;
    }
}

/* out[:, h] += proj_l(o_l) for one head; the linear branch over all keys or, per query block,
 * over the key blocks the plan did not select. */
static ts_status linear_branch(ts_ctx *c, int64_t n, int64_t H, int64_t D, int64_t h, const ts_attn_plan *p,
                               int complement, const float *q, const float *k, const float *v, const float *pw,
                               const float *pb, float *out, ts_err *err) {
    const int64_t HD = H * D, bq = p->blk_q, bk = p->blk_k, nq = p->n_qblk, nkb = p->n_kblk;
    float *fq = malloc((size_t)(n * D) * 4), *fk = malloc((size_t)(n * D) * 4), *ol = malloc((size_t)(n * D) * 4);
    float *pr = malloc((size_t)(n * D) * 4);
    int64_t parts = complement ? nkb : 1;
    float *kv = malloc((size_t)(parts * D * D) * 4), *ks = calloc((size_t)(parts * D), 4);
    float *kvc = malloc((size_t)(D * D) * 4), *ksc = malloc((size_t)D * 4);
    if (!fq || !fk || !ol || !pr || !kv || !ks || !kvc || !ksc) {
        free(fq), free(fk), free(ol), free(pr), free(kv), free(ks), free(kvc), free(ksc);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    ts_cpu_blas_threads(c);
    feature_map(q + h * D, HD, n, D, fq);
    feature_map(k + h * D, HD, n, D, fk);
    /* Σ φ(k) vᵀ and Σ φ(k): over all keys, or per key block */
    for (int64_t b = 0; b < parts; b++) {
        int64_t k0 = complement ? b * bk : 0, k1 = complement ? (k0 + bk < n ? k0 + bk : n) : n;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)D, (int)D, (int)(k1 - k0), 1.0f, fk + k0 * D, (int)D,
                    v + k0 * HD + h * D, (int)HD, 0.0f, kv + b * D * D, (int)D);
        for (int64_t t = k0; t < k1; t++)
            for (int64_t d = 0; d < D; d++) ks[b * D + d] += fk[t * D + d];
    }
    for (int64_t a = 0; a < nq; a++) {
        int64_t q0 = a * bq, qn = q0 + bq < n ? bq : n - q0;
        const float *KV = kv, *KS = ks;
        if (complement) { /* total minus the selected blocks */
            memset(kvc, 0, (size_t)(D * D) * 4), memset(ksc, 0, (size_t)D * 4);
            int32_t li = p->exact_ptr[a];
            for (int64_t b = 0; b < nkb; b++) {
                if (li < p->exact_ptr[a + 1] && p->exact_idx[li] == b) {
                    li++;
                    continue;
                }
                for (int64_t i = 0; i < D * D; i++) kvc[i] += kv[b * D * D + i];
                for (int64_t d = 0; d < D; d++) ksc[d] += ks[b * D + d];
            }
            KV = kvc, KS = ksc;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)qn, (int)D, (int)D, 1.0f, fq + q0 * D, (int)D, KV,
                    (int)D, 0.0f, ol + q0 * D, (int)D);
        for (int64_t t = q0; t < q0 + qn; t++) {
            double den = 1e-5;
            for (int64_t d = 0; d < D; d++) den += (double)fq[t * D + d] * KS[d];
            float inv = (float)(1.0 / den);
            for (int64_t d = 0; d < D; d++) ol[t * D + d] *= inv;
        }
    }
    /* proj_l, then into the output */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)D, (int)D, 1.0f, ol, (int)D, pw, (int)D, 0.0f, pr,
                (int)D);
    for (int64_t t = 0; t < n; t++)
        for (int64_t d = 0; d < D; d++) out[t * HD + h * D + d] += pr[t * D + d] + (pb ? pb[d] : 0.0f);
    free(fq), free(fk), free(ol), free(pr), free(kv), free(ks), free(kvc), free(ksc);
    return TS_OK;
}

ts_status ts_sla_attention(ts_ctx *c, int64_t n, int64_t H, int64_t D, int64_t h0, int64_t h1,
                           const ts_sla_params *sp, const float *q, const float *k, const float *v,
                           const ts_attn_operands *kop, const float *proj_w, const float *proj_b, float *out,
                           double *density, ts_err *err) {
    const ts_attn_operands ops = kop ? *kop : (ts_attn_operands){q, k, v, 0};
    double sum = 0;
    ts_plan_store st = {0};
    for (int64_t h = h0; h < h1; h++) {
        ts_attn_plan p;
        TS_TRY(ts_sla_plan(n, H, D, h, sp, q, k, &p, &st, err));
        p.in_bf16 = ops.bf16;
        ts_status s = c->backend->attn(c, &p, ops.q, ops.k, ops.v, out);
        if (s == TS_OK && proj_w) s = linear_branch(c, n, H, D, h, &p, sp->complement, q, k, v, proj_w, proj_b, out, err);
        else if (s != TS_OK) s = TS_ERR(err, s, "attention kernel failed (%s)", ts_status_str(s));
        sum += p.density;
        ts_plan_store_free(&st);
        if (s != TS_OK) return s;
    }
    if (density) *density = sum / (double)(h1 - h0);
    return TS_OK;
}
