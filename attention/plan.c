/* plan.c — plan constructors; see plan.h. */
#include "plan.h"

#include <math.h>
#include <string.h>

ts_attn_plan ts_attn_plan_dense(int64_t nq, int64_t nk, int64_t heads, int64_t head_dim,
                                int32_t blk_q, int32_t blk_k) {
    ts_attn_plan p;
    memset(&p, 0, sizeof p);
    p.nq = nq;
    p.nk = nk;
    p.heads = heads;
    p.head_dim = head_dim;
    p.scale = (float)(1.0 / sqrt((double)head_dim));
    p.blk_q = blk_q;
    p.blk_k = blk_k;
    p.n_qblk = (int32_t)((nq + blk_q - 1) / blk_q);
    p.n_kblk = (int32_t)((nk + blk_k - 1) / blk_k);
    p.density = 1.0;
    return p;
}

double ts_attn_plan_block_density(const ts_attn_plan *p) {
    if (!p->exact_ptr || p->n_qblk <= 0 || p->n_kblk <= 0) return 1.0;
    const int64_t h0 = p->h1 > 0 ? p->h0 : 0, h1 = p->h1 > 0 ? p->h1 : p->heads;
    const int64_t nl = p->exact_per_head ? h1 - h0 : 1;
    double pairs = 0;
    for (int64_t h = h0; h < h0 + nl; h++) {
        const int32_t *ptr = ts_attn_plan_ptr(p, h);
        pairs += ptr[p->n_qblk] - ptr[0];
    }
    return pairs / ((double)nl * (double)p->n_qblk * (double)p->n_kblk);
}
