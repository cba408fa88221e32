/*
 * ref.c — float64 reference executor for attention plans (the obvious way).
 *
 * Per head of the plan's range: map kernel order to tokens through perm, materialise every
 * score of the listed key blocks in double, keep those the element mask allows (on every
 * listed block, full or not: a block wrongly flagged full shows up as a mismatch), softmax
 * over exactly those (a sparse plan renormalises over its computed elements, as the kernels
 * do), multiply by V. Rows with no computed key give zeros; heads outside the range are
 * not written. With TS_QUANT_INT8_QK the scores come from the int8 Q and K the plan
 * defines (ts_quant_i8_group over the same groups), the dot in integers. bf16 operands
 * (plan.in_bf16) are widened to fp32 first. A plan's linear branch (SLA: lin_w) is added
 * to each row from its definition in plan.h (on lin_q, lin_k, lin_v where given), φ(k) found
 * once per head. Slow by design: every kernel is tested against it.
 */
#include <math.h>
#include <stdlib.h>

#include "plan.h"

/* y = softmax(x) over n values, in double. */
static void softmax_d(const float *x, int64_t n, double *y) {
    double mx = -INFINITY, sum = 0;
    for (int64_t d = 0; d < n; d++) mx = x[d] > mx ? x[d] : mx;
    for (int64_t d = 0; d < n; d++) sum += y[d] = exp(x[d] - mx);
    for (int64_t d = 0; d < n; d++) y[d] /= sum;
}

static int ref_f32(const ts_attn_plan *p, const float *q, const float *k, const float *v, float *out) {
    const int64_t H = p->heads, D = p->head_dim, HD = H * D;
    /* rows and keys in kernel order (with padding slots when n_kern is set) */
    const int64_t Nq = p->n_kern ? p->n_kern : p->nq, Nk = p->n_kern ? p->n_kern : p->nk;
    double *s = malloc((size_t)Nk * sizeof(double));
    unsigned char *use = malloc((size_t)Nk);
    double *o = malloc((size_t)D * sizeof(double));
    const int quant = p->quant == TS_QUANT_INT8_QK;
    const int64_t qrows = p->quant_rows > 0 ? p->quant_rows : TS_QUANT_ROWS;
    /* quantised Q and K of one head in kernel order, one scale per row */
    int16_t *q8 = quant ? malloc((size_t)(Nq * D) * sizeof(int16_t)) : NULL;
    int16_t *k8 = quant ? malloc((size_t)(Nk * D) * sizeof(int16_t)) : NULL;
    float *qs = quant ? malloc((size_t)Nq * sizeof(float)) : NULL;
    float *ks = quant ? malloc((size_t)Nk * sizeof(float)) : NULL;
    const float **rows = quant ? malloc((size_t)(Nq > Nk ? Nq : Nk) * sizeof(*rows)) : NULL;
    /* the linear branch: φ(k) of one head [Nk, D], φ(q) of a row, its sums, which keys it takes */
    const int lin = p->lin_w != NULL;
    const int own = ts_attn_plan_lin_own(p); /* the branch's own fp32 operands */
    const float *lq = own ? p->lin_q : q, *lk = own ? p->lin_k : k, *lv = own ? p->lin_v : v;
    double *fk = lin ? malloc((size_t)(Nk * D) * sizeof(double)) : NULL, *fq = lin ? malloc((size_t)D * sizeof(double)) : NULL;
    double *num = lin ? malloc((size_t)D * sizeof(double)) : NULL;
    unsigned char *listed = lin ? malloc((size_t)Nk) : NULL;
    if (!s || !use || !o || (quant && (!q8 || !k8 || !qs || !ks || !rows)) || (lin && (!fk || !fq || !num || !listed))) {
        free(s), free(use), free(o), free(q8), free(k8), free(qs), free(ks), free(rows);
        free(fk), free(fq), free(num), free(listed);
        return -1;
    }
    const int64_t h0 = p->h1 > 0 ? p->h0 : 0, h1 = p->h1 > 0 ? p->h1 : H;
    for (int64_t h = h0; h < h1; h++) {
        for (int64_t r0 = 0; quant && r0 < Nq;) { /* groups of qrows inside each query block */
            int64_t blk_end = (r0 / p->blk_q + 1) * p->blk_q, n = qrows;
            if (r0 + n > blk_end) n = blk_end - r0;
            if (r0 + n > Nq) n = Nq - r0;
            for (int64_t i = 0; i < n; i++) {
                int64_t t = p->perm ? p->perm[r0 + i] : r0 + i;
                rows[i] = t < 0 ? NULL : q + t * HD + h * D;
            }
            float sc = ts_quant_i8_group(rows, n, D, q8 + r0 * D);
            for (int64_t i = 0; i < n; i++) qs[r0 + i] = sc;
            r0 += n;
        }
        for (int64_t j0 = 0; quant && j0 < Nk; j0 += p->blk_k) { /* key blocks */
            int64_t n = j0 + p->blk_k < Nk ? p->blk_k : Nk - j0;
            for (int64_t i = 0; i < n; i++) {
                int64_t t = p->perm ? p->perm[j0 + i] : j0 + i;
                rows[i] = t < 0 ? NULL : k + t * HD + h * D;
            }
            float sc = ts_quant_i8_group(rows, n, D, k8 + j0 * D);
            for (int64_t i = 0; i < n; i++) ks[j0 + i] = sc;
        }
        for (int64_t j = 0; lin && j < Nk; j++) { /* φ(k_j): a softmax over the head dim */
            const int64_t kt = p->perm ? p->perm[j] : j;
            if (kt < 0) continue;
            softmax_d(lk + kt * HD + h * D, D, fk + j * D);
        }
        for (int64_t r = 0; r < Nq; r++) {
            int64_t qb = r / p->blk_q;
            for (int64_t j = 0; j < Nk; j++) use[j] = p->exact_ptr ? 0 : 1;
            if (p->exact_ptr) {
                const int32_t *ptr = ts_attn_plan_ptr(p, h);
                for (int32_t li = ptr[qb]; li < ptr[qb + 1]; li++) {
                    int64_t k0 = (int64_t)p->exact_idx[li] * p->blk_k;
                    for (int64_t j = k0; j < k0 + p->blk_k && j < Nk; j++) use[j] = 1;
                }
            }
            if (lin)
                for (int64_t j = 0; j < Nk; j++) listed[j] = use[j];
            int64_t qt = p->perm ? p->perm[r] : r;
            if (qt < 0) continue; /* a padding row */
            for (int64_t j = 0; j < Nk && p->perm; j++)
                if (p->perm[j] < 0) use[j] = 0;
            for (int64_t j = 0; j < Nk && p->mask.kind != TS_MASK_NONE; j++)
                if (use[j]) use[j] = (unsigned char)ts_mask_allows(&p->mask, qt, p->perm ? p->perm[j] : j);
            const float *qr = q + qt * HD + h * D;
            double mx = -INFINITY;
            for (int64_t j = 0; j < Nk; j++) {
                if (!use[j]) continue;
                int64_t kt = p->perm ? p->perm[j] : j;
                const float *kr = k + kt * HD + h * D;
                double acc = 0;
                if (quant) {
                    int64_t dot = 0;
                    for (int64_t d = 0; d < D; d++) dot += (int64_t)q8[r * D + d] * k8[j * D + d];
                    acc = (double)dot * qs[r] * ks[j];
                } else {
                    for (int64_t d = 0; d < D; d++) acc += (double)qr[d] * kr[d];
                }
                s[j] = acc * p->scale;
                if (s[j] > mx) mx = s[j];
            }
            double sum = 0;
            for (int64_t d = 0; d < D; d++) o[d] = 0;
            for (int64_t j = 0; j < Nk; j++) {
                if (!use[j]) continue;
                double e = exp(s[j] - mx);
                sum += e;
                int64_t kt = p->perm ? p->perm[j] : j;
                const float *vr = v + kt * HD + h * D;
                for (int64_t d = 0; d < D; d++) o[d] += e * vr[d];
            }
            for (int64_t d = 0; d < D; d++) o[d] = sum > 0 ? o[d] / sum : 0.0;
            if (lin) { /* o += proj_l(o_l) */
                double den = 1e-5;
                softmax_d(lq + qt * HD + h * D, D, fq);
                for (int64_t d = 0; d < D; d++) num[d] = 0;
                for (int64_t j = 0; j < Nk; j++) {
                    const int64_t kt = p->perm ? p->perm[j] : j;
                    if (kt < 0 || (!p->lin_all && listed[j])) continue;
                    double w = 0;
                    for (int64_t d = 0; d < D; d++) w += fq[d] * fk[j * D + d];
                    den += w;
                    const float *vr = lv + kt * HD + h * D;
                    for (int64_t d = 0; d < D; d++) num[d] += w * vr[d];
                }
                for (int64_t e = 0; e < D; e++) {
                    double y = p->lin_b ? p->lin_b[e] : 0.0;
                    for (int64_t d = 0; d < D; d++) y += (double)p->lin_w[e * D + d] * (num[d] / den);
                    o[e] += y;
                }
            }
            float *dst = out + qt * HD + h * D;
            for (int64_t d = 0; d < D; d++) dst[d] = (float)o[d];
        }
    }
    free(s), free(use), free(o), free(q8), free(k8), free(qs), free(ks), free(rows);
    free(fk), free(fq), free(num), free(listed);
    return 0;
}

/* bf16 operands are widened to fp32 first (exactly), then run as fp32. */
int ts_attn_ref(const ts_attn_plan *p, const void *q, const void *k, const void *v, float *out) {
    if (!p->in_bf16) return ref_f32(p, q, k, v, out);
    const int64_t HD = p->heads * p->head_dim, n[3] = {p->nq * HD, p->nk * HD, p->nk * HD};
    const void *src[3] = {q, k, v};
    float *f[3] = {NULL, NULL, NULL};
    int rc = 0;
    for (int i = 0; i < 3 && !rc; i++) {
        f[i] = malloc((size_t)(n[i] ? n[i] : 1) * sizeof(float));
        if (!f[i]) rc = -1;
        else ts_attn_load_row(f[i], src[i], 0, n[i], 1, 1.0f);
    }
    if (!rc) rc = ref_f32(p, f[0], f[1], f[2], out);
    free(f[0]), free(f[1]), free(f[2]);
    return rc;
}
