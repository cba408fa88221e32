/*
 * sla.c — SLA's dynamic plans and its linear branch; see sla.h.
 *
 * Reference: thu-ml/SLA sparse_linear_attention/{utils.py get_block_map, core.py
 * SparseLinearAttention.forward}, TurboDiffusion turbodiffusion/SLA/core.py (read for the
 * semantics, not translated). The block scores are tiny (nQ x nK per head), computed in
 * double; the sparse branch is the shared block-sparse kernel. The all-keys linear branch
 * runs in the kernel too (plan.lin_all, from the fp32 q, k, v whatever the kernel's operands:
 * its tasks add it to their rows as they write them, where q and the output are in cache);
 * the paper's complement variant is added here after the kernel, by key block
 * (complement_heads; the pieces it shares with the kernel: cpu_lin.c).
 */
#include "sla.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../src/backend.h"
#include "../src/cpu/cpu_internal.h"
#include "../src/cpu/vmath.h"

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

/* A thread's room: one query block's features, outputs and projected outputs (rows x D
 * each), its D x D sum and D-vector, and the selected-block flags. */
typedef struct lin_room {
    float *f, *o, *pr, *kv, *ks;
    uint8_t *sel;
} lin_room;

static void lin_room_free(lin_room *w) {
    free(w->f), free(w->o), free(w->pr), free(w->kv), free(w->ks), free(w->sel);
    memset(w, 0, sizeof *w);
}

static int lin_room_alloc(lin_room *w, int64_t rows, int64_t D, int64_t nkb) {
    w->f = malloc((size_t)(rows * D) * 4), w->o = malloc((size_t)(rows * D) * 4);
    w->pr = malloc((size_t)(rows * D) * 4), w->kv = malloc((size_t)(D * D) * 4);
    w->ks = malloc((size_t)D * 4), w->sel = malloc((size_t)nkb);
    if (w->f && w->o && w->pr && w->kv && w->ks && w->sel) return 1;
    lin_room_free(w);
    return 0;
}

/* out[q0 .. q0 + qn, h] += proj_l(φ(q) KV / (φ(q)·KS + 1e-5)) for one query block. */
static void query_block(int64_t q0, int64_t qn, int64_t HD, int64_t D, int64_t h, const float *q, const float *KV,
                        const float *KS, const float *pw, const float *pb, float *out, lin_room *w) {
    ts_cpu_lin_phi(q + q0 * HD + h * D, HD, qn, D, w->f, out + q0 * HD + h * D, 1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)qn, (int)D, (int)D, 1.0f, w->f, (int)D, KV, (int)D,
                0.0f, w->o, (int)D);
    for (int64_t t = 0; t < qn; t++) {
        double den = 1e-5;
#pragma omp simd reduction(+ : den)
        for (int64_t d = 0; d < D; d++) den += (double)w->f[t * D + d] * (double)KS[d];
        const float inv = (float)(1.0 / den);
#pragma omp simd
        for (int64_t d = 0; d < D; d++) w->o[t * D + d] *= inv;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)qn, (int)D, (int)D, 1.0f, w->o, (int)D, pw, (int)D, 0.0f,
                w->pr, (int)D);
    for (int64_t t = 0; t < qn; t++) {
        float *y = out + (q0 + t) * HD + h * D;
        const float *r = w->pr + t * D;
#pragma omp simd
        for (int64_t d = 0; d < D; d++) y[d] += r[d] + (pb ? pb[d] : 0.0f);
    }
}

/* The paper's linear branch of heads h0 .. h0 + nh (plans p): o += proj_l(o_l), per query
 * block over the key blocks its plan did not select (the all-keys variant runs in the
 * kernel: plan.lin_all). A head at a time on all the threads, with one-thread sgemms over
 * blocks: the key sums by key block, then the query blocks, each from its features to the
 * output, so no n x D intermediate exists. A query block's sums are the total less the
 * selected blocks' (or the unselected blocks' added up, where they are fewer): its list's
 * length in D x D sums, not the number of key blocks. Memory: (1 + key blocks)·(D² + D)
 * floats (33 MB at 480p and 81 frames), and per thread 3 blocks of rows x D plus D². */
static ts_status complement_heads(ts_ctx *c, int64_t n, int64_t H, int64_t D, int64_t h0, int64_t nh,
                                  const ts_attn_plan *p, const float *q, const float *k, const float *v,
                                  const float *pw, const float *pb, float *out, ts_err *err) {
    const int nt = c->n_threads > 0 ? c->n_threads : 1;
    const int64_t HD = H * D, bq = p[0].blk_q, bk = p[0].blk_k, nkb = p[0].n_kblk, nqb = p[0].n_qblk, DD = D * D;
    /* slot 0 the total, then one per key block */
    float *kv = malloc((size_t)((1 + nkb) * (DD + D)) * 4), *ks = kv ? kv + (1 + nkb) * DD : NULL;
    int oom = !kv;
    openblas_set_num_threads(1);
#pragma omp parallel num_threads(nt) if (!oom && nt > 1)
    {
        lin_room w = {0};
        if (!lin_room_alloc(&w, bq > bk ? bq : bk, D, nkb)) { /* oom is read only after the barrier */
#pragma omp atomic write
            oom = 1;
        }
#pragma omp barrier
        for (int64_t i = 0; i < nh && !oom; i++) {
            const int64_t h = h0 + i;
#pragma omp for schedule(dynamic, 1)
            for (int64_t b = 0; b < nkb; b++)
                ts_cpu_lin_key_sums(b * bk, (b + 1) * bk < n ? (b + 1) * bk : n, HD, D, h, k, v, 0.0f,
                                    kv + (1 + b) * DD, ks + (1 + b) * D, w.f);
            /* the total, slot 0: the per-block sums added up, split over D² */
#pragma omp for schedule(static)
            for (int64_t j = 0; j < D + 1; j++) {
                float *dst = j < D ? kv + j * D : ks;
                const float *src = j < D ? kv + DD + j * D : ks + D;
                const int64_t step = j < D ? DD : D;
                memcpy(dst, src, (size_t)D * 4);
                for (int64_t b = 1; b < nkb; b++)
#pragma omp simd
                    for (int64_t d = 0; d < D; d++) dst[d] += src[b * step + d];
            }
#pragma omp for schedule(dynamic, 1)
            for (int64_t a = 0; a < nqb; a++) {
                const int64_t q0 = a * bq, qn = q0 + bq < n ? bq : n - q0;
                const int32_t l0 = p[i].exact_ptr[a], l1 = p[i].exact_ptr[a + 1];
                const int minus = 2 * (int64_t)(l1 - l0) <= nkb; /* fewer selected: the total less them */
                memset(w.sel, 0, (size_t)nkb);
                for (int32_t li = l0; li < l1; li++) w.sel[p[i].exact_idx[li]] = 1;
                if (minus) memcpy(w.kv, kv, (size_t)DD * 4), memcpy(w.ks, ks, (size_t)D * 4);
                else memset(w.kv, 0, (size_t)DD * 4), memset(w.ks, 0, (size_t)D * 4);
                const float sg = minus ? -1.0f : 1.0f;
                for (int64_t b = 0; b < nkb; b++) {
                    if (w.sel[b] != minus) continue;
                    const float *kb = kv + (1 + b) * DD, *sb = ks + (1 + b) * D;
#pragma omp simd
                    for (int64_t e = 0; e < DD; e++) w.kv[e] += sg * kb[e];
#pragma omp simd
                    for (int64_t d = 0; d < D; d++) w.ks[d] += sg * sb[d];
                }
                query_block(q0, qn, HD, D, h, q, w.kv, w.ks, pw, pb, out, &w);
            }
        }
        lin_room_free(&w);
    }
    ts_cpu_blas_threads(c);
    free(kv);
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
    /* the all-keys branch runs in the kernel's tasks (plan.lin_all), from the fp32 q, k, v */
    const ts_lin_branch lin = {proj_w, proj_b, v};
    ts_status st = ts_plan_heads_run(c, h0, h1 - h0, sla_plan_head, &sh, q, k, &ops,
                                     proj_w && !sp->complement ? &lin : NULL, out, &hp, err);
    if (st == TS_OK && proj_w && sp->complement)
        st = complement_heads(c, n, H, D, h0, hp.nh, hp.p, q, k, v, proj_w, proj_b, out, err);
    if (st == TS_OK && density) *density = hp.density;
    ts_head_plans_free(&hp);
    return st;
}
