/*
 * cpu_lin.c — SLA's linear branch for the attention kernel, which adds it to its own output
 * rows (cpu_attn.c, lin_rows): the feature map φ, a softmax over the head dim, and the keys'
 * sums Σ φ(k) vᵀ and Σ φ(k), over all keys (plan.lin_all, TurboDiffusion's variant) or by key
 * block (the paper's, whose query blocks each take the blocks their list does not name). See
 * cpu_internal.h.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../../src/cpu/cpu_internal.h"
#include "../../src/cpu/vmath.h"
#include "../plan.h"

/* The longest row the AVX-512 feature map holds in registers. */
#define LIN_ROW_MAX 256

/* Rows asked for ahead: a head's rows sit H·D apart, past a 4 KiB page for 12 heads of 128,
 * where the hardware's prefetch does not follow them (TS_PREFETCH_LINES); at 4 rows, the
 * vectorised map still waited on its loads (SLA, 4,096 tokens: about 1 ms of a 39 ms call). */
#define LIN_PF 12

void ts_cpu_lin_phi(const float *x, int64_t ld, int64_t n, int64_t D, float *y, const float *also) {
    for (int64_t u = 1; u < LIN_PF && u < n; u++) TS_PREFETCH_LINES(x + u * ld, D * sizeof(float), 0);
    for (int64_t t = 0; t < n; t++) {
        const float *r = x + t * ld;
        if (t + LIN_PF < n) TS_PREFETCH_LINES(r + LIN_PF * ld, D * sizeof(float), 0);
        if (also) TS_PREFETCH_LINES(also + t * ld, D * sizeof(float), 0);
        float *o = y + t * D, mx = -INFINITY, sum = 0.0f;
#ifdef __AVX512F__
        if (D % 16 == 0 && D <= LIN_ROW_MAX) { /* the row in registers, one read; ts_expf's steps (ts_exp2_16) */
            __m512 v[LIN_ROW_MAX / 16], vm = _mm512_set1_ps(-INFINITY), vs = _mm512_setzero_ps();
            const int nv = (int)(D / 16);
            for (int i = 0; i < nv; i++) v[i] = _mm512_loadu_ps(r + 16 * i), vm = _mm512_max_ps(vm, v[i]);
            const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(vm)), l2e = _mm512_set1_ps(1.4426950408889634f);
            for (int i = 0; i < nv; i++) {
                __m512 e = _mm512_mul_ps(_mm512_sub_ps(v[i], m), l2e);
                e = _mm512_min_ps(_mm512_max_ps(e, _mm512_set1_ps(-126.0f)), _mm512_set1_ps(126.0f));
                v[i] = ts_exp2_16(e);
                vs = _mm512_add_ps(vs, v[i]);
            }
            const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vs));
            for (int i = 0; i < nv; i++) _mm512_storeu_ps(o + 16 * i, _mm512_mul_ps(v[i], inv));
            continue;
        }
#endif
#pragma omp simd reduction(max : mx)
        for (int64_t d = 0; d < D; d++) mx = r[d] > mx ? r[d] : mx;
#pragma omp simd reduction(+ : sum)
        for (int64_t d = 0; d < D; d++) sum += (o[d] = ts_expf(r[d] - mx));
        const float inv = 1.0f / sum;
#pragma omp simd
        for (int64_t d = 0; d < D; d++) o[d] *= inv;
    }
}

/* Σ φ(k) vᵀ [D, D] and Σ φ(k) [D] over keys k0 .. k1 of head h of k, v [n, HD], into (beta 0)
 * or onto (beta 1) kv and ks; f: room for k1 − k0 rows of D. One-thread sgemm: call it with
 * OpenBLAS at one thread. */
static void key_sums(int64_t k0, int64_t k1, int64_t HD, int64_t D, int64_t h, const float *k, const float *v,
                     float beta, float *kv, float *ks, float *f) {
    ts_cpu_lin_phi(k + k0 * HD + h * D, HD, k1 - k0, D, f, v + k0 * HD + h * D);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)D, (int)D, (int)(k1 - k0), 1.0f, f, (int)D,
                v + k0 * HD + h * D, (int)HD, beta, kv, (int)D);
    if (beta == 0.0f) memset(ks, 0, (size_t)D * 4);
    for (int64_t t = 0; t < k1 - k0; t++)
#pragma omp simd
        for (int64_t d = 0; d < D; d++) ks[d] += f[t * D + d];
}

int ts_cpu_lin_sums(int nt, int64_t n, int64_t H, int64_t D, int64_t ha, int64_t gn, const float *k, const float *v,
                    const float *w, float *sums) {
    const int64_t HD = H * D, DD = D * D, per = DD + D, R = TS_CPU_LIN_ROWS, nck = (n + R - 1) / R;
    if (nt < 1) nt = 1;
    float *part = calloc((size_t)(nt * gn * per), 4), *f = malloc((size_t)(nt * R * D) * 4);
    if (!part || !f) {
        free(part), free(f);
        return 0;
    }
#pragma omp parallel num_threads(nt)
    {
        int me = 0, team = 1;
#ifdef _OPENMP
        me = omp_get_thread_num(), team = omp_get_num_threads();
#endif
        /* thread me: its share of each head's chunks of rows, its sums in its own slots (a
         * head's sums thus do not depend on which heads the call takes) */
        float *mine = part + me * gn * per;
        for (int64_t gi = 0; gi < gn; gi++)
            for (int64_t t = me * nck / team; t < (me + 1) * nck / team; t++) {
                const int64_t r0 = t * R, r1 = r0 + R < n ? r0 + R : n;
                key_sums(r0, r1, HD, D, ha + gi, k, v, 1.0f, mine + gi * per, mine + gi * per + DD, f + me * R * D);
            }
#pragma omp barrier
        /* the threads' slots added up into thread 0's, a row (of D) at a time */
#pragma omp for schedule(static)
        for (int64_t j = 0; j < gn * (D + 1); j++) {
            float *dst = part + j / (D + 1) * per + j % (D + 1) * D;
            for (int th = 1; th < nt; th++)
#pragma omp simd
                for (int64_t d = 0; d < D; d++) dst[d] += dst[th * gn * per + d];
        }
#pragma omp for schedule(static)
        for (int64_t gi = 0; gi < gn; gi++) {
            const float *src = part + gi * per;
            float *dst = sums + gi * per;
            if (w)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)D, (int)D, (int)D, 1.0f, src, (int)D, w,
                            (int)D, 0.0f, dst, (int)D);
            else memcpy(dst, src, (size_t)DD * 4);
            memcpy(dst + DD, src + DD, (size_t)D * 4);
        }
    }
    free(part), free(f);
    return 1;
}

/* The paper's variant's sums of heads [ha, ha + gn), by key block in kernel order (blocks of
 * bk of Lk slots; perm: the token at each slot, −1 none, or NULL for the identity): sums
 * [gn][nkb + 1][D·D + D], a head's slot 0 its total over all keys, slot 1 + b block b's, each
 * Σ φ(k) vᵀ then Σ φ(k). On nt threads, called outside a parallel region with OpenBLAS at one
 * thread. 0: out of memory. */
static int block_sums(int nt, int64_t Lk, int64_t bk, const int32_t *perm, int64_t H, int64_t D, int64_t ha,
                      int64_t gn, const float *k, const float *v, float *sums) {
    const int64_t HD = H * D, per = D * D + D, nkb = (Lk + bk - 1) / bk;
    if (nt < 1) nt = 1;
    /* per thread: each head's total over its blocks, the block's φ(k) rows, and with perm its
     * k and v rows gathered */
    const int64_t room = gn * per + bk * D * (perm ? 3 : 1);
    float *tmp = malloc((size_t)(nt * room) * 4);
    if (!tmp) return 0;
#pragma omp parallel num_threads(nt)
    {
        int me = 0, team = 1;
#ifdef _OPENMP
        me = omp_get_thread_num(), team = omp_get_num_threads();
#endif
        float *tot = tmp + me * room, *f = tot + gn * per, *gk = f + bk * D, *gv = gk + bk * D;
        /* thread me: its share of each head's blocks (a head's sums thus do not depend on
         * which heads the call takes), each block's sums into its slot and onto its total */
        memset(tot, 0, (size_t)(gn * per) * 4);
        for (int64_t gi = 0; gi < gn; gi++) {
            const int64_t h = ha + gi;
            for (int64_t b = me * nkb / team; b < (me + 1) * nkb / team; b++) {
                float *kv = sums + (gi * (nkb + 1) + 1 + b) * per, *t = tot + gi * per;
                const int64_t j0 = b * bk, j1 = j0 + bk < Lk ? j0 + bk : Lk;
                if (!perm) key_sums(j0, j1, HD, D, h, k, v, 0.0f, kv, kv + D * D, f);
                else {
                    int64_t m = 0; /* the block's tokens (padding slots hold none) */
                    for (int64_t j = j0; j < j1; j++) {
                        if (perm[j] < 0) continue;
                        memcpy(gk + m * D, k + perm[j] * HD + h * D, (size_t)D * 4);
                        memcpy(gv + m * D, v + perm[j] * HD + h * D, (size_t)D * 4);
                        m++;
                    }
                    if (m) key_sums(0, m, D, D, 0, gk, gv, 0.0f, kv, kv + D * D, f);
                    else memset(kv, 0, (size_t)per * 4);
                }
#pragma omp simd
                for (int64_t e = 0; e < per; e++) t[e] += kv[e];
            }
        }
#pragma omp barrier
        /* each head's total, slot 0: the threads' added up in their order, a row (of D) at a time */
#pragma omp for schedule(static)
        for (int64_t j = 0; j < gn * (D + 1); j++) {
            const int64_t gi = j / (D + 1), o = gi * per + j % (D + 1) * D;
            float *dst = sums + gi * (nkb + 1) * per + j % (D + 1) * D;
            memcpy(dst, tmp + o, (size_t)D * 4);
            for (int th = 1; th < team; th++)
#pragma omp simd
                for (int64_t d = 0; d < D; d++) dst[d] += tmp[th * room + o + d];
        }
    }
    free(tmp);
    return 1;
}

/* dst[0 .. ne) = (minus ? tot : 0) ∓ Σ_i P[idx[i]·ps + ...]: one strip of a query block's
 * complement, from the block sums' same strip (in cache: the strip pass reads them all). */
static void strip_sum(float *dst, const float *tot, const float *P, int64_t ps, const int32_t *idx, int64_t m,
                      int64_t ne, int minus) {
    int64_t e0 = 0;
#ifdef __AVX512F__
    for (; e0 + 128 <= ne; e0 += 128) {
        __m512 a[8];
        for (int j = 0; j < 8; j++) a[j] = minus ? _mm512_loadu_ps(tot + e0 + 16 * j) : _mm512_setzero_ps();
        if (minus)
            for (int64_t i = 0; i < m; i++) {
                const float *x = P + idx[i] * ps + e0;
                for (int j = 0; j < 8; j++) a[j] = _mm512_sub_ps(a[j], _mm512_loadu_ps(x + 16 * j));
            }
        else
            for (int64_t i = 0; i < m; i++) {
                const float *x = P + idx[i] * ps + e0;
                for (int j = 0; j < 8; j++) a[j] = _mm512_add_ps(a[j], _mm512_loadu_ps(x + 16 * j));
            }
        for (int j = 0; j < 8; j++) _mm512_storeu_ps(dst + e0 + 16 * j, a[j]);
    }
#endif
    const float sg = minus ? -1.0f : 1.0f;
    for (int64_t e = e0; e < ne; e++) dst[e] = minus ? tot[e] : 0.0f;
    for (int64_t i = 0; i < m; i++) {
        const float *x = P + idx[i] * ps;
#pragma omp simd
        for (int64_t e = e0; e < ne; e++) dst[e] += sg * x[e];
    }
}

int ts_cpu_lin_paper(int nt, const ts_attn_plan *p, int64_t ha, int64_t gn, const float *k, const float *v,
                     float *blocks, float *comp) {
    const int64_t D = p->head_dim, per = D * D + D, nkb = p->n_kblk, nqb = p->n_qblk;
    const int64_t half = nkb / 2 + 1;
    if (nt < 1) nt = 1;
    if (!block_sums(nt, p->n_kern ? p->n_kern : p->nk, p->blk_k, p->perm, p->heads, D, ha, gn, k, v, blocks))
        return 0;
    /* each query block's list: the blocks its plan names (minus: the total less their sums) or
     * the others (their sums added up), the fewer; none: every block named */
    int32_t *idx = malloc((size_t)(gn * nqb * half) * sizeof(int32_t)), *cnt = malloc((size_t)(gn * nqb) * 4);
    uint8_t *sel = malloc((size_t)(nt * nkb));
    if (!idx || !cnt || !sel) {
        free(idx), free(cnt), free(sel);
        return 0;
    }
    /* the strips: E values of every block's sums in L2 while each query block adds its up */
    const int64_t E = nkb <= 512 ? 256 : nkb <= 1024 ? 128 : 64, ns = (per + E - 1) / E;
#pragma omp parallel num_threads(nt)
    {
        int me = 0;
#ifdef _OPENMP
        me = omp_get_thread_num();
#endif
        uint8_t *mk = sel + me * nkb;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < gn * nqb; t++) {
            const int64_t h = ha + t / nqb, a = t % nqb;
            int64_t named = nkb;
            if (p->exact_ptr) {
                const int32_t *ptr = ts_attn_plan_ptr(p, h);
                memset(mk, 0, (size_t)nkb);
                named = 0;
                for (int32_t li = ptr[a]; li < ptr[a + 1]; li++) {
                    named += !mk[p->exact_idx[li]];
                    mk[p->exact_idx[li]] = 1;
                }
            } else memset(mk, 1, (size_t)nkb);
            const int minus = named < nkb - named;
            int32_t *l = idx + t * half, m = 0;
            for (int64_t b = 0; b < nkb && named < nkb; b++)
                if (mk[b] == minus) l[m++] = (int32_t)b;
            cnt[t] = named == nkb ? -1 : minus ? m : -2 - m; /* -1 none; m ≥ 0 minus; -2 - m plus */
        }
#pragma omp for schedule(static)
        for (int64_t t = 0; t < gn * ns; t++) {
            const int64_t gi = t / ns, e0 = t % ns * E, ne = e0 + E < per ? E : per - e0;
            const float *tot = blocks + gi * (nkb + 1) * per + e0, *P = tot + per;
            for (int64_t a = 0; a < nqb; a++) {
                const int32_t c = cnt[gi * nqb + a];
                float *dst = comp + (gi * nqb + a) * per + e0;
                if (c == -1) memset(dst, 0, (size_t)ne * 4);
                else strip_sum(dst, tot, P, per, idx + (gi * nqb + a) * half, c >= 0 ? c : -2 - c, ne, c >= 0);
            }
        }
    }
    free(idx), free(cnt), free(sel);
    return 1;
}
