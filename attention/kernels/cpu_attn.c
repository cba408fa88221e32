/*
 * cpu_attn.c — block-sparse flash attention on the CPU (executes any plan's exact part).
 *
 * One task per (head, query block), OpenMP over all of them. A task gathers its query
 * tile [bq, D], then for each key block the plan lists (all, when dense) gathers the key
 * tile transposed [D, bk] and the value tile [bk, D], computes scores with axpy-shaped
 * loops that vectorise (inner loops run over keys or over D, never a horizontal
 * reduction), and folds them into the running max / sum / accumulator of an online
 * softmax (flash attention). Never materialises Nq x Nk. fp32 throughout.
 *
 * Permutation: when plan->perm is set, kernel row r of queries and keys is token
 * perm[r] (self-attention only, Nq == Nk), and the output goes back to token perm[r].
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../../src/cpu/cpu_internal.h"
#include "../plan.h"

typedef struct attn_scratch {
    float *q, *kt, *v, *s, *acc, *m, *l;
} attn_scratch;

static void attn_task(const ts_attn_plan *p, const float *q, const float *k, const float *v,
                      float *out, int64_t h, int32_t qb, attn_scratch *w) {
    const int64_t H = p->heads, D = p->head_dim, HD = H * D;
    const int64_t q0 = (int64_t)qb * p->blk_q;
    const int64_t nq = p->nq - q0 < p->blk_q ? p->nq - q0 : p->blk_q;
    const int64_t bk = p->blk_k;
    const float scale = p->scale;

    for (int64_t r = 0; r < nq; r++) {
        int64_t tok = p->perm ? p->perm[q0 + r] : q0 + r;
        const float *src = q + tok * HD + h * D;
        for (int64_t d = 0; d < D; d++) w->q[r * D + d] = src[d] * scale;
        w->m[r] = -FLT_MAX;
        w->l[r] = 0.0f;
    }
    memset(w->acc, 0, (size_t)(nq * D) * sizeof(float));

    int32_t n_list = p->exact_ptr ? p->exact_ptr[qb + 1] - p->exact_ptr[qb] : p->n_kblk;
    for (int32_t li = 0; li < n_list; li++) {
        int32_t kb = p->exact_ptr ? p->exact_idx[p->exact_ptr[qb] + li] : li;
        int64_t k0 = (int64_t)kb * bk;
        int64_t nk = p->nk - k0 < bk ? p->nk - k0 : bk;
        for (int64_t j = 0; j < nk; j++) {
            int64_t tok = p->perm ? p->perm[k0 + j] : k0 + j;
            const float *ks = k + tok * HD + h * D, *vs = v + tok * HD + h * D;
            for (int64_t d = 0; d < D; d++) w->kt[d * bk + j] = ks[d];
            memcpy(w->v + j * D, vs, (size_t)D * sizeof(float));
        }
        for (int64_t r = 0; r < nq; r++) {
            float *s = w->s + r * bk;
            const float *qr = w->q + r * D;
            for (int64_t j = 0; j < nk; j++) s[j] = 0.0f;
            for (int64_t d = 0; d < D; d++) {
                const float qd = qr[d];
                const float *kr = w->kt + d * bk;
                for (int64_t j = 0; j < nk; j++) s[j] += qd * kr[j];
            }
            float mx = w->m[r];
            for (int64_t j = 0; j < nk; j++) mx = s[j] > mx ? s[j] : mx;
            float corr = expf(w->m[r] - mx);
            float sum = 0.0f;
            for (int64_t j = 0; j < nk; j++) {
                s[j] = expf(s[j] - mx);
                sum += s[j];
            }
            w->l[r] = w->l[r] * corr + sum;
            w->m[r] = mx;
            float *a = w->acc + r * D;
            if (corr != 1.0f)
                for (int64_t d = 0; d < D; d++) a[d] *= corr;
            for (int64_t j = 0; j < nk; j++) {
                const float pj = s[j];
                const float *vr = w->v + j * D;
                for (int64_t d = 0; d < D; d++) a[d] += pj * vr[d];
            }
        }
    }
    for (int64_t r = 0; r < nq; r++) {
        int64_t tok = p->perm ? p->perm[q0 + r] : q0 + r;
        float *dst = out + tok * HD + h * D;
        float inv = w->l[r] > 0.0f ? 1.0f / w->l[r] : 0.0f;
        for (int64_t d = 0; d < D; d++) dst[d] = w->acc[r * D + d] * inv;
    }
}

ts_status ts_cpu_attn(ts_ctx *c, const ts_attn_plan *p, const float *q, const float *k,
                      const float *v, float *out) {
    if (p->nq <= 0 || p->nk <= 0 || p->heads <= 0 || p->head_dim <= 0 || p->blk_q <= 0 ||
        p->blk_k <= 0)
        return TS_ERR_INVALID_ARG;
    if (p->perm && p->nq != p->nk) return TS_ERR_INVALID_ARG;
    if (p->mask.kind != TS_MASK_NONE || p->lin_ptr || p->quant != TS_QUANT_NONE)
        return TS_ERR_UNSUPPORTED;
    const int64_t D = p->head_dim, bq = p->blk_q, bk = p->blk_k;
    const int64_t n_tasks = p->heads * p->n_qblk;
    const size_t per = (size_t)(bq * D + D * bk + bk * D + bq * bk + bq * D + 2 * bq);
    int nt = c->n_threads > 0 ? c->n_threads : 1;
    float *scratch = malloc(per * (size_t)nt * sizeof(float));
    if (!scratch) return TS_ERR_NOMEM;
#pragma omp parallel num_threads(nt)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *base = scratch + per * (size_t)tid;
        attn_scratch w = {base, base + bq * D, base + bq * D + D * bk,
                          base + bq * D + 2 * D * bk, base + bq * D + 2 * D * bk + bq * bk,
                          base + 2 * bq * D + 2 * D * bk + bq * bk,
                          base + 2 * bq * D + 2 * D * bk + bq * bk + bq};
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < n_tasks; task++)
            attn_task(p, q, k, v, out, task % p->heads, (int32_t)(task / p->heads), &w);
    }
    free(scratch);
    return TS_OK;
}
