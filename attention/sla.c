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
#include "../src/cpu/vmath.h"

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

/* Row-wise softmax over D of x (row stride ld) into y [n, D], on nt threads. */
static void feature_map(const float *x, int64_t ld, int64_t n, int64_t D, float *y, int nt) {
    (void)nt;
#pragma omp parallel for num_threads(nt) if (nt > 1 && n >= 256)
    for (int64_t t = 0; t < n; t++) {
        const float *r = x + t * ld;
        float *o = y + t * D, mx = -INFINITY, sum = 0.0f;
#pragma omp simd reduction(max : mx)
        for (int64_t d = 0; d < D; d++) mx = r[d] > mx ? r[d] : mx;
#pragma omp simd reduction(+ : sum)
        for (int64_t d = 0; d < D; d++) sum += (o[d] = ts_expf(r[d] - mx));
        const float inv = 1.0f / sum;
#pragma omp simd
        for (int64_t d = 0; d < D; d++) o[d] *= inv;
    }
}

/* A thread's room for one head's linear branch. */
typedef struct lin_scratch {
    float *fq, *fk, *ol, *pr, *kv, *ks, *kvc, *ksc;
    uint8_t *sel;
} lin_scratch;

static void lin_scratch_free(lin_scratch *w) {
    free(w->fq), free(w->fk), free(w->ol), free(w->pr), free(w->kv), free(w->ks), free(w->kvc), free(w->ksc);
    free(w->sel);
    memset(w, 0, sizeof *w);
}

static int lin_scratch_alloc(lin_scratch *w, int64_t n, int64_t D, int64_t parts, int64_t nkb) {
    w->fq = malloc((size_t)(n * D) * 4), w->fk = malloc((size_t)(n * D) * 4);
    w->ol = malloc((size_t)(n * D) * 4), w->pr = malloc((size_t)(n * D) * 4);
    w->kv = malloc((size_t)(parts * D * D) * 4), w->ks = malloc((size_t)(parts * D) * 4);
    w->kvc = malloc((size_t)(D * D) * 4), w->ksc = malloc((size_t)D * 4), w->sel = malloc((size_t)nkb);
    if (w->fq && w->fk && w->ol && w->pr && w->kv && w->ks && w->kvc && w->ksc && w->sel) return 1;
    lin_scratch_free(w);
    return 0;
}

/* out[:, h] += proj_l(o_l) for one head; the linear branch over all keys or, per query block,
 * over the key blocks the plan did not select: the sums over all keys less those over the
 * selected blocks (or the unselected blocks' added up, where they are fewer), so a query block
 * costs its list's length in D x D sums, not the number of key blocks. */
static void linear_branch(int64_t n, int64_t H, int64_t D, int64_t h, const ts_attn_plan *p, int complement,
                          const float *q, const float *k, const float *v, const float *pw, const float *pb, float *out,
                          lin_scratch *w, int nt) {
    const int64_t HD = H * D, bq = p->blk_q, bk = p->blk_k, nq = p->n_qblk, nkb = p->n_kblk;
    const int64_t parts = complement ? 1 + nkb : 1; /* all keys, then each key block */
    float *fq = w->fq, *fk = w->fk, *ol = w->ol, *pr = w->pr, *kv = w->kv, *ks = w->ks, *kvc = w->kvc, *ksc = w->ksc;
    feature_map(q + h * D, HD, n, D, fq, nt);
    feature_map(k + h * D, HD, n, D, fk, nt);
    /* Σ φ(k) vᵀ and Σ φ(k): over all keys (slot 0), and for the complement per key block (slot
     * 1 + b), the total then the sum of the blocks' (so that less the selected ones, or the
     * unselected ones added up, sum the same terms) */
    memset(ks, 0, (size_t)(parts * D) * 4);
    for (int64_t b = complement ? 1 : 0; b < parts; b++) {
        int64_t k0 = b ? (b - 1) * bk : 0, k1 = b ? (k0 + bk < n ? k0 + bk : n) : n;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)D, (int)D, (int)(k1 - k0), 1.0f, fk + k0 * D, (int)D,
                    v + k0 * HD + h * D, (int)HD, 0.0f, kv + b * D * D, (int)D);
        for (int64_t t = k0; t < k1; t++)
#pragma omp simd
            for (int64_t d = 0; d < D; d++) ks[b * D + d] += fk[t * D + d];
    }
    if (complement) {
        memset(kv, 0, (size_t)(D * D) * 4);
        for (int64_t b = 1; b < parts; b++) {
#pragma omp simd
            for (int64_t i = 0; i < D * D; i++) kv[i] += kv[b * D * D + i];
            for (int64_t d = 0; d < D; d++) ks[d] += ks[b * D + d];
        }
    }
    for (int64_t a = 0; a < nq; a++) {
        int64_t q0 = a * bq, qn = q0 + bq < n ? bq : n - q0;
        const float *KV = kv, *KS = ks;
        if (complement) {
            const int32_t l0 = p->exact_ptr[a], l1 = p->exact_ptr[a + 1];
            const int minus = 2 * (int64_t)(l1 - l0) <= nkb; /* fewer selected: the total less them */
            memset(w->sel, 0, (size_t)nkb);
            for (int32_t li = l0; li < l1; li++) w->sel[p->exact_idx[li]] = 1;
            if (minus) memcpy(kvc, kv, (size_t)(D * D) * 4), memcpy(ksc, ks, (size_t)D * 4);
            else memset(kvc, 0, (size_t)(D * D) * 4), memset(ksc, 0, (size_t)D * 4);
            const float sg = minus ? -1.0f : 1.0f;
            for (int64_t b = 0; b < nkb; b++) {
                if (w->sel[b] != minus) continue;
                const float *kb = kv + (1 + b) * D * D, *sb = ks + (1 + b) * D;
#pragma omp simd
                for (int64_t i = 0; i < D * D; i++) kvc[i] += sg * kb[i];
                for (int64_t d = 0; d < D; d++) ksc[d] += sg * sb[d];
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
}

/* The linear branch of heads h0 .. h0 + nh (plans p): a head per thread (up to nh threads)
 * with one-thread sgemms, or one head on all the threads. Each thread keeps its own scratch:
 * 4·n·D floats, and for the paper's variant (1 + key blocks)·D² more (about 100 MB at 480p
 * and 81 frames, 230 MB at 720p). */
static ts_status linear_heads(ts_ctx *c, int64_t n, int64_t H, int64_t D, int64_t h0, int64_t nh,
                              const ts_attn_plan *p, int complement, const float *q, const float *k, const float *v,
                              const float *pw, const float *pb, float *out, ts_err *err) {
    const int nt = c->n_threads > 0 ? c->n_threads : 1, par = nh >= 2 && nt > 1;
    const int64_t nkb = p[0].n_kblk, parts = complement ? 1 + nkb : 1;
    int oom = 0;
    if (par) openblas_set_num_threads(1);
    else ts_cpu_blas_threads(c);
#pragma omp parallel num_threads(par ? (nh < nt ? (int)nh : nt) : 1)
    {
        lin_scratch w = {0};
        const int ok = lin_scratch_alloc(&w, n, D, parts, nkb);
        if (!ok) {
#pragma omp atomic write
            oom = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < nh; i++)
            if (ok) linear_branch(n, H, D, h0 + i, &p[i], complement, q, k, v, pw, pb, out, &w, par ? 1 : nt);
        lin_scratch_free(&w);
    }
    ts_cpu_blas_threads(c);
    return oom ? TS_ERR(err, TS_ERR_NOMEM, "sla: out of memory for the linear branch") : TS_OK;
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
    ts_status st = ts_plan_heads_run(c, h0, h1 - h0, sla_plan_head, &sh, q, k, &ops, out, &hp, err);
    if (st == TS_OK && proj_w)
        st = linear_heads(c, n, H, D, h0, hp.nh, hp.p, sp->complement, q, k, v, proj_w, proj_b, out, err);
    if (st == TS_OK && density) *density = hp.density;
    ts_head_plans_free(&hp);
    return st;
}
