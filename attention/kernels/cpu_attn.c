/*
 * cpu_attn.c — block-sparse flash attention on the CPU (executes any plan's exact part).
 *
 * One task per (head, query block), OpenMP over all of them. A task copies its query
 * block pre-scaled by scale·log2(e) (so softmax uses exp2), then walks the key blocks
 * the plan lists (all, when dense), merging runs of consecutive blocks into chunks of up
 * to TS_ATTN_KCHUNK keys. Per chunk: S = Q·Kᵀ with one single-threaded sgemm reading
 * K in place (row stride H·D), an online-softmax update of the running max / sum and a
 * rescale of the accumulator, then O += P·V with a second sgemm. fp32 throughout; the
 * N x N score matrix is never materialised. With a permutation the chunk's keys and
 * values are gathered first.
 *
 * exp2 is ts_exp2f (src/cpu/vmath.h), which vectorises; libm's expf is scalar and was
 * a fifth of the kernel's time.
 */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../../src/cpu/cpu_internal.h"
#include "../../src/cpu/vmath.h"
#include "../plan.h"

#define TS_ATTN_KCHUNK 256

typedef struct attn_scratch {
    float *q, *k, *v, *s, *acc, *m, *l;
} attn_scratch;

static void attn_task(const ts_attn_plan *p, const float *q, const float *k, const float *v,
                      float *out, int64_t h, int32_t qb, attn_scratch *w) {
    const int64_t H = p->heads, D = p->head_dim, HD = H * D;
    const int64_t q0 = (int64_t)qb * p->blk_q;
    const int64_t nq = p->nq - q0 < p->blk_q ? p->nq - q0 : p->blk_q;
    const int64_t bk = p->blk_k;
    const float qscale = p->scale * 1.4426950408889634f; /* log2(e) */

    for (int64_t r = 0; r < nq; r++) {
        int64_t tok = p->perm ? p->perm[q0 + r] : q0 + r;
        const float *src = q + tok * HD + h * D;
        for (int64_t d = 0; d < D; d++) w->q[r * D + d] = src[d] * qscale;
        w->m[r] = -FLT_MAX;
        w->l[r] = 0.0f;
    }
    memset(w->acc, 0, (size_t)(nq * D) * sizeof(float));

    const int32_t n_list = p->exact_ptr ? p->exact_ptr[qb + 1] - p->exact_ptr[qb] : p->n_kblk;
    const int32_t *list = p->exact_ptr ? p->exact_idx + p->exact_ptr[qb] : NULL;
    for (int32_t li = 0; li < n_list;) {
        /* a run of consecutive key blocks, at most TS_ATTN_KCHUNK keys */
        int32_t kb0 = list ? list[li] : li, nb = 1;
        while (li + nb < n_list && (nb + 1) * bk <= TS_ATTN_KCHUNK &&
               (list ? list[li + nb] : li + nb) == kb0 + nb)
            nb++;
        li += nb;
        const int64_t k0 = (int64_t)kb0 * bk;
        int64_t nk = (int64_t)nb * bk;
        if (k0 + nk > p->nk) nk = p->nk - k0;
        const float *kp, *vp;
        int64_t ld;
        if (p->perm) {
            for (int64_t j = 0; j < nk; j++) {
                int64_t tok = p->perm[k0 + j];
                memcpy(w->k + j * D, k + tok * HD + h * D, (size_t)D * sizeof(float));
                memcpy(w->v + j * D, v + tok * HD + h * D, (size_t)D * sizeof(float));
            }
            kp = w->k, vp = w->v, ld = D;
        } else {
            kp = k + k0 * HD + h * D, vp = v + k0 * HD + h * D, ld = HD;
        }
        /* S [nq, nk] = Q · Kᵀ */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nk, (int)D, 1.0f, w->q,
                    (int)D, kp, (int)ld, 0.0f, w->s, TS_ATTN_KCHUNK);
        for (int64_t r = 0; r < nq; r++) {
            float *s = w->s + r * TS_ATTN_KCHUNK;
            float mx = w->m[r];
            for (int64_t j = 0; j < nk; j++) mx = s[j] > mx ? s[j] : mx;
            float sum = 0.0f;
            for (int64_t j = 0; j < nk; j++) {
                s[j] = ts_exp2f(s[j] - mx);
                sum += s[j];
            }
            float corr = ts_exp2f(w->m[r] - mx);
            w->l[r] = w->l[r] * corr + sum;
            w->m[r] = mx;
            if (corr != 1.0f) {
                float *a = w->acc + r * D;
                for (int64_t d = 0; d < D; d++) a[d] *= corr;
            }
        }
        /* acc [nq, D] += P · V */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)D, (int)nk, 1.0f, w->s,
                    TS_ATTN_KCHUNK, vp, (int)ld, 1.0f, w->acc, (int)D);
    }
    for (int64_t r = 0; r < nq; r++) {
        int64_t tok = p->perm ? p->perm[q0 + r] : q0 + r;
        float *dst = out + tok * HD + h * D;
        float inv = w->l[r] > 0.0f ? 1.0f / w->l[r] : 0.0f;
        for (int64_t d = 0; d < D; d++) dst[d] = w->acc[r * D + d] * inv;
    }
}

#if defined(__AVX512F__)
#include <immintrin.h>

/* Variant 2 (AVX-512, dense and block lists, no permutation): keys pre-transposed per
 * head (kt [H, D, Nk], built once per call), 4 query rows x 64 keys of scores held in
 * 16 zmm accumulators while d runs over the head dim, softmax on the 64-key tile, then
 * P·V as 4 rows x 64 output columns per pass. Query rows are pre-scaled by
 * scale·log2(e); the online softmax works in base 2. */
#define V2_BK 64

static void attn_task_v2(const ts_attn_plan *p, const float *q, const float *kt, const float *v,
                         float *out, int64_t h, int32_t qb, float *qs, float *acc, float *mrow,
                         float *lrow, float *s) {
    const int64_t H = p->heads, D = p->head_dim, HD = H * D, Nk = p->nk;
    const int64_t q0 = (int64_t)qb * p->blk_q;
    const int64_t nq = p->nq - q0 < p->blk_q ? p->nq - q0 : p->blk_q;
    const int64_t nq4 = (nq + 3) & ~(int64_t)3;
    const float qscale = p->scale * 1.4426950408889634f;
    const float *kth = kt + h * D * Nk;
    for (int64_t r = 0; r < nq4; r++) {
        const float *src = q + (q0 + (r < nq ? r : nq - 1)) * HD + h * D;
        for (int64_t d = 0; d < D; d++) qs[r * D + d] = src[d] * qscale;
        mrow[r] = -FLT_MAX;
        lrow[r] = 0.0f;
    }
    memset(acc, 0, (size_t)(nq4 * D) * sizeof(float));
    const int32_t n_list = p->exact_ptr ? p->exact_ptr[qb + 1] - p->exact_ptr[qb] : p->n_kblk;
    const int32_t *list = p->exact_ptr ? p->exact_idx + p->exact_ptr[qb] : NULL;
    for (int32_t li = 0; li < n_list; li++) {
        const int64_t kb = list ? list[li] : li;
        for (int64_t k0 = kb * p->blk_k; k0 < (kb + 1) * p->blk_k && k0 < Nk; k0 += V2_BK) {
            const int64_t kend = (kb + 1) * p->blk_k < Nk ? (kb + 1) * p->blk_k : Nk;
            const int64_t nk = kend - k0 < V2_BK ? kend - k0 : V2_BK;
            const __mmask16 mk[4] = {
                (__mmask16)(nk >= 16 ? 0xffff : (1u << nk) - 1),
                (__mmask16)(nk >= 32 ? 0xffff : nk <= 16 ? 0 : (1u << (nk - 16)) - 1),
                (__mmask16)(nk >= 48 ? 0xffff : nk <= 32 ? 0 : (1u << (nk - 32)) - 1),
                (__mmask16)(nk >= 64 ? 0xffff : nk <= 48 ? 0 : (1u << (nk - 48)) - 1)};
            /* S [nq4, 64] = Qs · Kt[:, k0 : k0 + 64] */
            for (int64_t r = 0; r < nq4; r += 4) {
                __m512 c[4][4];
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++) c[i][j] = _mm512_setzero_ps();
                const float *q0p = qs + r * D;
                for (int64_t d = 0; d < D; d++) {
                    const float *kr = kth + d * Nk + k0;
                    __m512 k_0 = _mm512_maskz_loadu_ps(mk[0], kr);
                    __m512 k_1 = _mm512_maskz_loadu_ps(mk[1], kr + 16);
                    __m512 k_2 = _mm512_maskz_loadu_ps(mk[2], kr + 32);
                    __m512 k_3 = _mm512_maskz_loadu_ps(mk[3], kr + 48);
                    for (int i = 0; i < 4; i++) {
                        __m512 qb_ = _mm512_set1_ps(q0p[i * D + d]);
                        c[i][0] = _mm512_fmadd_ps(qb_, k_0, c[i][0]);
                        c[i][1] = _mm512_fmadd_ps(qb_, k_1, c[i][1]);
                        c[i][2] = _mm512_fmadd_ps(qb_, k_2, c[i][2]);
                        c[i][3] = _mm512_fmadd_ps(qb_, k_3, c[i][3]);
                    }
                }
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++) _mm512_storeu_ps(s + (r + i) * V2_BK + 16 * j, c[i][j]);
            }
            /* online softmax on the tile */
            for (int64_t r = 0; r < nq4; r++) {
                float *sr = s + r * V2_BK;
                float mx = mrow[r];
                for (int64_t j = 0; j < nk; j++) mx = sr[j] > mx ? sr[j] : mx;
                float sum = 0.0f;
                for (int64_t j = 0; j < nk; j++) {
                    sr[j] = ts_exp2f(sr[j] - mx);
                    sum += sr[j];
                }
                for (int64_t j = nk; j < V2_BK; j++) sr[j] = 0.0f;
                float corr = ts_exp2f(mrow[r] - mx);
                lrow[r] = lrow[r] * corr + sum;
                mrow[r] = mx;
                if (corr != 1.0f) {
                    float *a = acc + r * D;
                    for (int64_t d = 0; d < D; d++) a[d] *= corr;
                }
            }
            /* acc [nq4, D] += P · V[k0 : k0 + nk] */
            for (int64_t r = 0; r < nq4; r += 4) {
                for (int64_t d0 = 0; d0 < D; d0 += 64) {
                    const int64_t nd = D - d0 < 64 ? D - d0 : 64;
                    const __mmask16 md[4] = {
                        (__mmask16)(nd >= 16 ? 0xffff : (1u << nd) - 1),
                        (__mmask16)(nd >= 32 ? 0xffff : nd <= 16 ? 0 : (1u << (nd - 16)) - 1),
                        (__mmask16)(nd >= 48 ? 0xffff : nd <= 32 ? 0 : (1u << (nd - 32)) - 1),
                        (__mmask16)(nd >= 64 ? 0xffff : nd <= 48 ? 0 : (1u << (nd - 48)) - 1)};
                    __m512 c[4][4];
                    for (int i = 0; i < 4; i++)
                        for (int j = 0; j < 4; j++)
                            c[i][j] = _mm512_maskz_loadu_ps(md[j], acc + (r + i) * D + d0 + 16 * j);
                    for (int64_t j = 0; j < nk; j++) {
                        const float *vr = v + (k0 + j) * HD + h * D + d0;
                        __m512 v0 = _mm512_maskz_loadu_ps(md[0], vr);
                        __m512 v1 = _mm512_maskz_loadu_ps(md[1], vr + 16);
                        __m512 v2 = _mm512_maskz_loadu_ps(md[2], vr + 32);
                        __m512 v3 = _mm512_maskz_loadu_ps(md[3], vr + 48);
                        for (int i = 0; i < 4; i++) {
                            __m512 pb = _mm512_set1_ps(s[(r + i) * V2_BK + j]);
                            c[i][0] = _mm512_fmadd_ps(pb, v0, c[i][0]);
                            c[i][1] = _mm512_fmadd_ps(pb, v1, c[i][1]);
                            c[i][2] = _mm512_fmadd_ps(pb, v2, c[i][2]);
                            c[i][3] = _mm512_fmadd_ps(pb, v3, c[i][3]);
                        }
                    }
                    for (int i = 0; i < 4; i++)
                        for (int j = 0; j < 4; j++)
                            _mm512_mask_storeu_ps(acc + (r + i) * D + d0 + 16 * j, md[j], c[i][j]);
                }
            }
        }
    }
    for (int64_t r = 0; r < nq; r++) {
        float *dst = out + (q0 + r) * HD + h * D;
        float inv = lrow[r] > 0.0f ? 1.0f / lrow[r] : 0.0f;
        for (int64_t d = 0; d < D; d++) dst[d] = acc[r * D + d] * inv;
    }
}

static ts_status attn_v2(ts_ctx *c, const ts_attn_plan *p, const float *q, const float *k,
                         const float *v, float *out) {
    const int64_t H = p->heads, D = p->head_dim, Nk = p->nk, bq4 = (p->blk_q + 3) & ~3;
    float *kt = malloc((size_t)(H * D * Nk) * sizeof(float));
    int nt = c->n_threads > 0 ? c->n_threads : 1;
    const size_t per = (size_t)(2 * bq4 * D + 2 * bq4 + bq4 * V2_BK);
    float *scratch = malloc(per * (size_t)nt * sizeof(float));
    if (!kt || !scratch) {
        free(kt);
        free(scratch);
        return TS_ERR_NOMEM;
    }
    /* kt [H, D, Nk]: each head's keys transposed once */
#pragma omp parallel for num_threads(nt) collapse(2)
    for (int64_t h = 0; h < H; h++)
        for (int64_t j0 = 0; j0 < Nk; j0 += 64)
            for (int64_t j = j0; j < j0 + 64 && j < Nk; j++)
                for (int64_t d = 0; d < D; d++) kt[(h * D + d) * Nk + j] = k[(j * H + h) * D + d];
    const int64_t n_tasks = H * p->n_qblk;
#pragma omp parallel num_threads(nt)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *b = scratch + per * (size_t)tid;
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < n_tasks; task++)
            attn_task_v2(p, q, kt, v, out, task % H, (int32_t)(task / H), b, b + bq4 * D,
                         b + 2 * bq4 * D, b + 2 * bq4 * D + bq4, b + 2 * bq4 * D + 2 * bq4);
    }
    free(kt);
    free(scratch);
    return TS_OK;
}
#endif

ts_status ts_cpu_attn(ts_ctx *c, const ts_attn_plan *p, const float *q, const float *k,
                      const float *v, float *out) {
    if (p->nq <= 0 || p->nk <= 0 || p->heads <= 0 || p->head_dim <= 0 || p->blk_q <= 0 ||
        p->blk_k <= 0 || p->blk_k > TS_ATTN_KCHUNK)
        return TS_ERR_INVALID_ARG;
    if (p->perm && p->nq != p->nk) return TS_ERR_INVALID_ARG;
    if (p->mask.kind != TS_MASK_NONE || p->lin_ptr || p->quant != TS_QUANT_NONE)
        return TS_ERR_UNSUPPORTED;
#if defined(__AVX512F__)
    if (!p->perm) return attn_v2(c, p, q, k, v, out);
#endif
    const int64_t D = p->head_dim, bq = p->blk_q, KC = TS_ATTN_KCHUNK;
    const int64_t n_tasks = p->heads * p->n_qblk;
    const size_t per = (size_t)(bq * D + 2 * KC * D + bq * KC + bq * D + 2 * bq);
    int nt = c->n_threads > 0 ? c->n_threads : 1;
    float *scratch = malloc(per * (size_t)nt * sizeof(float));
    if (!scratch) return TS_ERR_NOMEM;
    openblas_set_num_threads(1); /* each task's sgemms run on its own thread */
#pragma omp parallel num_threads(nt)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *b = scratch + per * (size_t)tid;
        attn_scratch w = {b, b + bq * D, b + bq * D + KC * D, b + bq * D + 2 * KC * D,
                          b + bq * D + 2 * KC * D + bq * KC,
                          b + 2 * bq * D + 2 * KC * D + bq * KC,
                          b + 2 * bq * D + 2 * KC * D + bq * KC + bq};
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < n_tasks; task++)
            attn_task(p, q, k, v, out, task % p->heads, (int32_t)(task / p->heads), &w);
    }
    ts_cpu_blas_threads(c);
    free(scratch);
    return TS_OK;
}
