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

/* Tiles of n tokens' block b (blocks of blk, the last one ragged) along one side. */
static int64_t side_tiles(int64_t n, int64_t blk, int64_t b, int64_t t) {
    const int64_t len = (b + 1) * blk <= n ? blk : n - b * blk;
    return (len + t - 1) / t;
}

/* Slots of block b (blocks of blk over a kernel order of len slots) that hold a token: the
 * kernel runs a block with padding at its end shortened to them. */
static int64_t real_slots(const ts_attn_plan *p, int64_t len, int64_t blk, int64_t b) {
    const int64_t s0 = b * blk, s1 = s0 + blk < len ? s0 + blk : len;
    if (!p->perm) return s1 - s0;
    int64_t r = 0;
    for (int64_t i = s0; i < s1; i++) r += p->perm[i] >= 0;
    return r;
}

/* Live TS_ATTN_TILE_Q x TS_ATTN_TILE_K tiles of a partial block's bits (rows x keys). */
static int64_t bit_tiles(const uint64_t *bits, int64_t rows, int64_t keys, int64_t words) {
    int64_t live = 0;
    for (int64_t r0 = 0; r0 < rows; r0 += TS_ATTN_TILE_Q)
        for (int64_t k0 = 0; k0 < keys; k0 += TS_ATTN_TILE_K) {
            int any = 0;
            for (int64_t r = r0; r < r0 + TS_ATTN_TILE_Q && r < rows && !any; r++)
                for (int64_t j = k0; j < k0 + TS_ATTN_TILE_K && j < keys && !any; j++)
                    any = (int)((bits[r * words + j / 64] >> (j % 64)) & 1u);
            live += any;
        }
    return live;
}

double ts_attn_plan_tile_density(const ts_attn_plan *p) {
    if (!p->exact_ptr || p->n_qblk <= 0 || p->n_kblk <= 0) return 1.0;
    const int64_t h0 = p->h1 > 0 ? p->h0 : 0, h1 = p->h1 > 0 ? p->h1 : p->heads;
    const int64_t nl = p->exact_per_head ? h1 - h0 : 1, bq = p->blk_q, bk = p->blk_k;
    const int64_t lq = p->n_kern ? p->n_kern : p->nq, lk = p->n_kern ? p->n_kern : p->nk;
    const int64_t words = (bk + 63) / 64;
    /* dense's tiles: the tokens in blocks of the same sizes, no padding */
    double all = 0, kt = 0, live = 0;
    for (int64_t a = 0; a < (p->nq + bq - 1) / bq; a++) all += (double)side_tiles(p->nq, bq, a, TS_ATTN_TILE_Q);
    for (int64_t b = 0; b < (p->nk + bk - 1) / bk; b++) kt += (double)side_tiles(p->nk, bk, b, TS_ATTN_TILE_K);
    all *= kt * (double)nl;
    for (int64_t h = h0; h < h0 + nl; h++) {
        const int32_t *ptr = ts_attn_plan_ptr(p, h);
        for (int64_t a = 0; a < p->n_qblk; a++) {
            const int64_t rows = (a + 1) * bq <= lq ? bq : lq - a * bq;
            const int64_t rq = ptr[a] < ptr[a + 1] ? real_slots(p, lq, bq, a) : 0;
            for (int32_t e = ptr[a]; e < ptr[a + 1]; e++) {
                const int64_t b = p->exact_idx[e], keys = (b + 1) * bk <= lk ? bk : lk - b * bk;
                if (p->exact_full && !p->exact_full[e] && p->exact_bits && p->exact_bits_off)
                    live += (double)bit_tiles(p->exact_bits + p->exact_bits_off[e], rows, keys, words);
                else /* the kernel runs the block shortened to its tokens */
                    live += (double)(((rq + TS_ATTN_TILE_Q - 1) / TS_ATTN_TILE_Q) *
                                     ((real_slots(p, lk, bk, b) + TS_ATTN_TILE_K - 1) / TS_ATTN_TILE_K));
            }
        }
    }
    return live / all;
}
