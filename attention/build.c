/*
 * build.c — tiling permutation and block maps from an element mask; see build.h.
 *
 * The block map is found in two passes: a bounding-box test narrows each query block's
 * candidate key blocks (a key block whose tokens cannot be anyone's neighbor is skipped
 * without looking at its pairs), then every candidate pair of blocks is classified
 * exactly — none, partial or full — by evaluating the mask on its elements. Static
 * methods build this once per shape (the schedule caches it), so exactness wins over
 * speed here; the pair test reads each token's coordinates and reach, found once
 * (tok_at), which makes it ~11x faster than ts_mask_allows per pair (stride-1 GNA on the
 * Wan 480p grid, 10 %: 18.0 -> 1.6 s on one core). The tests check it against
 * ts_mask_allows on every pair.
 */
#include "build.h"

#include <stdlib.h>
#include <string.h>

void ts_plan_store_free(ts_plan_store *s) {
    if (!s) return;
    free(s->perm), free(s->ptr), free(s->idx), free(s->full), free(s->bits), free(s->bits_off);
    memset(s, 0, sizeof *s);
}

ts_status ts_plan_join_heads(const ts_attn_plan *p, int64_t nh, ts_attn_plan *all, ts_plan_store *st, ts_err *err) {
    ts_plan_store_free(st);
    const int64_t S = p[0].n_qblk;
    int64_t used = 0;
    double sum = 0;
    for (int64_t i = 0; i < nh; i++) used += p[i].exact_ptr[S], sum += p[i].density;
    if (used > INT32_MAX)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "attention: %lld listed block pairs over %lld heads (at most 2^31 - 1): "
                      "use larger blocks or fewer of them", (long long)used, (long long)nh);
    st->ptr = malloc((size_t)(nh * (S + 1)) * sizeof *st->ptr);
    st->idx = malloc((size_t)(used > 0 ? used : 1) * sizeof *st->idx);
    st->full = malloc((size_t)(used > 0 ? used : 1));
    if (!st->ptr || !st->idx || !st->full) {
        ts_plan_store_free(st);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    int64_t off = 0;
    for (int64_t i = 0; i < nh; i++) {
        const int32_t m = p[i].exact_ptr[S];
        for (int64_t a = 0; a <= S; a++) st->ptr[i * (S + 1) + a] = (int32_t)(off + p[i].exact_ptr[a]);
        memcpy(st->idx + off, p[i].exact_idx, (size_t)m * sizeof *st->idx);
        if (p[i].exact_full) memcpy(st->full + off, p[i].exact_full, (size_t)m);
        else memset(st->full + off, 1, (size_t)m);
        off += m;
    }
    *all = p[0];
    all->exact_ptr = st->ptr, all->exact_idx = st->idx, all->exact_full = st->full, all->exact_per_head = 1;
    all->h1 = p[0].h0 + nh;
    all->density = sum / (double)nh;
    return TS_OK;
}

/* The tile order's length with tiles and the text before the image starting on multiples of
 * pad (1: none), writing it to perm when perm is not NULL; the tiles nested as nest says (axes
 * outermost first; NULL: t, h, w), inside a tile sub-tiles of sub (NULL: the tile) in
 * row-major order. */
static int64_t tile_order(const ts_mask *m, int64_t n, const int tile[3], const int *sub, const int *nest,
                          int64_t pad, int32_t *perm) {
    static const int thw[3] = {0, 1, 2};
    const int64_t T = m->grid[0], H = m->grid[1], W = m->grid[2], G = T * H * W;
    const int64_t tt = tile[0], th = tile[1], tw = tile[2];
    const int64_t st = sub ? sub[0] : tt, sh = sub ? sub[1] : th, sw = sub ? sub[2] : tw;
    const int64_t nt[3] = {(T + tt - 1) / tt, (H + th - 1) / th, (W + tw - 1) / tw};
    if (!nest) nest = thw;
    int64_t pos = 0;
    for (int64_t i = 0; i < m->img0; i++, pos++)
        if (perm) perm[pos] = (int32_t)i;
    for (; pos % pad; pos++)
        if (perm) perm[pos] = -1;
    for (int64_t ti = 0; ti < nt[0] * nt[1] * nt[2]; ti++) { /* tile ti of the nest: its first token */
        int64_t o[3], rest = ti;
        for (int j = 2; j >= 0; j--) o[nest[j]] = rest % nt[nest[j]] * tile[nest[j]], rest /= nt[nest[j]];
        const int64_t t0 = o[0], y0 = o[1], x0 = o[2];
        const int64_t t1 = t0 + tt < T ? t0 + tt : T, y1 = y0 + th < H ? y0 + th : H,
                      x1 = x0 + tw < W ? x0 + tw : W;
        for (int64_t u0 = t0; u0 < t1; u0 += st)
            for (int64_t v0 = y0; v0 < y1; v0 += sh)
                for (int64_t w0 = x0; w0 < x1; w0 += sw)
                    for (int64_t t = u0; t < u0 + st && t < t1; t++)
                        for (int64_t y = v0; y < v0 + sh && y < y1; y++)
                            for (int64_t x = w0; x < w0 + sw && x < x1; x++, pos++)
                                if (perm) perm[pos] = (int32_t)(m->img0 + (t * H + y) * W + x);
        for (; pos % pad; pos++) /* an edge tile's padding */
            if (perm) perm[pos] = -1;
    }
    for (int64_t i = m->img0 + G; i < n; i++, pos++)
        if (perm) perm[pos] = (int32_t)i;
    return pos;
}

void ts_plan_tile_nest(const ts_mask *m, const int tile[3], int nest[3]) {
    double span[3]; /* tiles a query's window spans, per axis */
    for (int i = 0; i < 3; i++) {
        double len = (double)m->grid[i];
        if (m->kind == TS_MASK_NA) len = (double)m->window[i] * (double)m->dilation[i];
        else if (m->kind == TS_MASK_CLEAR) len = i ? 2.0 * m->radius : 1.0; /* the query's own frame */
        if (len > (double)m->grid[i]) len = (double)m->grid[i];
        span[i] = len / (double)(tile[i] > 0 ? tile[i] : 1);
        nest[i] = i;
    }
    for (int i = 1; i < 3; i++) /* fewest first; ties keep t, h, w */
        for (int j = i; j > 0 && span[nest[j - 1]] > span[nest[j]]; j--) {
            const int x = nest[j];
            nest[j] = nest[j - 1], nest[j - 1] = x;
        }
}

static int64_t tile_pad(const int tile[3], int64_t blk) {
    return blk > 0 && ((int64_t)tile[0] * tile[1] * tile[2]) % blk == 0 ? blk : 1;
}

static ts_status tile_check(const ts_mask *m, int64_t n, const int tile[3], const int *sub, ts_err *err) {
    const int64_t T = m->grid[0], H = m->grid[1], W = m->grid[2], G = T * H * W;
    if (m->img0 < 0 || m->img0 + G > n)
        return TS_ERR(err, TS_ERR_SHAPE, "attention: a %lldx%lldx%lld grid at token %lld does not fit %lld tokens",
                      (long long)T, (long long)H, (long long)W, (long long)m->img0, (long long)n);
    for (int i = 0; i < 3; i++)
        if (tile[i] < 1 || (sub && sub[i] < 1))
            return TS_ERR(err, TS_ERR_INVALID_ARG, "attention: tile sizes must be positive");
    return TS_OK;
}

ts_status ts_plan_tile_perm_nest(const ts_mask *m, int64_t n, const int tile[3], const int sub[3],
                                 const int nest[3], int64_t blk, int32_t *perm, ts_err *err) {
    ts_status st = tile_check(m, n, tile, sub, err);
    if (st == TS_OK && nest) {
        int seen = 0;
        for (int i = 0; i < 3; i++) seen |= nest[i] >= 0 && nest[i] < 3 ? 1 << nest[i] : 8;
        if (seen != 7) st = TS_ERR(err, TS_ERR_INVALID_ARG, "attention: a tile nest must order the axes 0, 1, 2");
    }
    if (st == TS_OK) tile_order(m, n, tile, sub, nest, tile_pad(tile, blk), perm);
    return st;
}

ts_status ts_plan_tile_perm_sub(const ts_mask *m, int64_t n, const int tile[3], const int sub[3], int64_t blk,
                                int32_t *perm, ts_err *err) {
    return ts_plan_tile_perm_nest(m, n, tile, sub, NULL, blk, perm, err);
}

ts_status ts_plan_tile_perm_padded(const ts_mask *m, int64_t n, const int tile[3], int64_t blk, int32_t *perm,
                                   ts_err *err) {
    return ts_plan_tile_perm_sub(m, n, tile, NULL, blk, perm, err);
}

ts_status ts_plan_tile_perm(const ts_mask *m, int64_t n, const int tile[3], int32_t *perm, ts_err *err) {
    return ts_plan_tile_perm_padded(m, n, tile, 1, perm, err); /* blocks of 1: no padding */
}

int64_t ts_plan_tile_len(const ts_mask *m, int64_t n, const int tile[3], int64_t blk) {
    if (tile_check(m, n, tile, NULL, NULL) != TS_OK) return -1;
    return tile_order(m, n, tile, NULL, NULL, tile_pad(tile, blk), NULL);
}

/* Inclusive coordinate box, per dimension; empty when lo > hi. */
typedef struct box {
    int64_t lo[3], hi[3];
    int text; /* holds a text token */
    int img;  /* holds an image token */
} box;

static void box_empty(box *b) {
    for (int i = 0; i < 3; i++) b->lo[i] = INT64_MAX, b->hi[i] = INT64_MIN;
    b->text = b->img = 0;
}

static void box_add(box *b, const int64_t lo[3], const int64_t hi[3]) {
    for (int i = 0; i < 3; i++) {
        if (lo[i] < b->lo[i]) b->lo[i] = lo[i];
        if (hi[i] > b->hi[i]) b->hi[i] = hi[i];
    }
    b->img = 1;
}

static int box_meet(const box *a, const box *b) {
    if (!a->img || !b->img) return 0;
    for (int i = 0; i < 3; i++)
        if (a->hi[i] < b->lo[i] || b->hi[i] < a->lo[i]) return 0;
    return 1;
}

/* The coordinates image query c may attend (a superset box) under mask m. */
static void reach(const ts_mask *m, const int64_t c[3], int64_t lo[3], int64_t hi[3]) {
    if (m->kind == TS_MASK_CLEAR) {
        int64_t r = (int64_t)m->radius;
        lo[0] = hi[0] = c[0];
        for (int i = 1; i < 3; i++) lo[i] = c[i] - r, hi[i] = c[i] + r;
        return;
    }
    for (int i = 0; i < 3; i++) { /* NA: the in-group interval, back to grid coordinates */
        int64_t L = m->grid[i], d = m->dilation[i], s = m->stride[i], w = m->window[i];
        int64_t g = c[i] % d, Lg = (L - g + d - 1) / d, xi = c[i] / d, a, b;
        if (m->causal[i]) {
            int64_t leader = (xi / s) * s + s - 1;
            if (leader > Lg - 1) leader = Lg - 1;
            a = leader - w + 1, b = xi;
        } else {
            int64_t left = w / 2, right = w / 2 + w % 2 - 1, ctr = (xi / s) * s + s / 2;
            if (ctr > Lg - 1) ctr = Lg - 1;
            if (ctr < left) ctr = left;
            if (ctr > Lg - 1 - right) ctr = Lg - 1 - right;
            a = ctr - left, b = ctr + right;
        }
        if (a < 0) a = 0;
        lo[i] = a * d + g, hi[i] = b * d + g;
    }
}

/* A kernel position's token for the pair test: its coordinates, residues mod the dilation and
 * what it reaches (reach's interval per dimension: exact for NA, where a key is a neighbor iff
 * it lies in the interval and its residue is the query's), computed once, without the
 * divisions ts_mask_allows makes per pair. */
typedef struct tok_at {
    int32_t kind; /* 0 image, 1 text, 2 padding */
    int32_t c[3], res[3], lo[3], hi[3];
} tok_at;

/* ts_mask_allows(m, q, k) for two tokens of the kernel order (not padding). */
static inline int pair_allowed(const ts_mask *m, const tok_at *q, const tok_at *k, double r2) {
    if (q->kind | k->kind || m->kind == TS_MASK_NONE) return 1; /* a text token on either side */
    if (m->kind == TS_MASK_CLEAR) {
        if (q->c[0] != k->c[0]) return 0;
        double dy = (double)(q->c[1] - k->c[1]), dx = (double)(q->c[2] - k->c[2]);
        return dy * dy + dx * dx < r2;
    }
    int ok = 1;
    for (int i = 0; i < 3; i++) ok &= (k->c[i] >= q->lo[i]) & (k->c[i] <= q->hi[i]) & (k->res[i] == q->res[i]);
    return ok;
}

/* Appends n words to a growing array. */
static int grow_bits(uint64_t **bits, int64_t *cap, int64_t used, int64_t n) {
    if (used + n <= *cap) return 0;
    int64_t c = *cap ? *cap : 4096;
    while (c < used + n) c *= 2;
    uint64_t *nb = realloc(*bits, (size_t)c * sizeof *nb);
    if (!nb) return -1;
    *bits = nb, *cap = c;
    return 0;
}

ts_status ts_plan_build_masked(ts_attn_plan *p, ts_plan_store *st, ts_err *err) {
    free(st->ptr), free(st->idx), free(st->full), free(st->bits), free(st->bits_off);
    st->ptr = NULL, st->idx = NULL, st->full = NULL, st->bits = NULL, st->bits_off = NULL;
    if (p->nq != p->nk) return TS_ERR(err, TS_ERR_INVALID_ARG, "attention: masked plans are self-attention (nq == nk)");
    const ts_mask *m = &p->mask;
    const int64_t n = p->nq, L = p->n_kern ? p->n_kern : n, bq = p->blk_q, bk = p->blk_k;
    const int64_t nqb = p->n_qblk, nkb = p->n_kblk;
    if ((p->n_kern && (!p->perm || p->n_kern < n)) || nqb != (L + bq - 1) / bq || nkb != (L + bk - 1) / bk)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "attention: the plan's blocks do not cover its kernel order");
    const int64_t H = m->grid[1], W = m->grid[2], G = m->grid[0] * H * W;
    box *qbox = malloc((size_t)nqb * sizeof *qbox), *kbox = malloc((size_t)nkb * sizeof *kbox);
    int32_t *ptr = malloc((size_t)(nqb + 1) * sizeof *ptr);
    int64_t cap = nqb * 4 + 16, used = 0, wpr = (bk + 63) / 64, bits_cap = 0, bits_used = 0;
    int32_t *idx = malloc((size_t)cap * sizeof *idx);
    uint8_t *full = malloc((size_t)cap);
    int64_t *boff = malloc((size_t)cap * sizeof *boff);
    uint64_t *bits = NULL, *tmp = malloc((size_t)(bq * wpr) * sizeof *tmp);
    tok_at *at = malloc((size_t)L * sizeof *at);
    if (!qbox || !kbox || !ptr || !idx || !full || !boff || !tmp || !at) {
        free(qbox), free(kbox), free(ptr), free(idx), free(full), free(boff), free(tmp), free(at);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory building an attention plan");
    }
    const double r2 = m->radius * m->radius;
    /* boxes: what each query block may reach, where each key block's tokens lie */
    for (int64_t b = 0; b < (nqb > nkb ? nqb : nkb); b++) {
        if (b < nqb) box_empty(&qbox[b]);
        if (b < nkb) box_empty(&kbox[b]);
    }
    for (int64_t i = 0; i < L; i++) {
        int64_t tok = p->perm ? p->perm[i] : i, gi = tok - m->img0;
        memset(&at[i], 0, sizeof at[i]);
        if (tok < 0) { /* a padding slot */
            at[i].kind = 2;
            continue;
        }
        box *qb = &qbox[i / bq], *kb = &kbox[i / bk];
        if (gi < 0 || gi >= G) {
            qb->text = kb->text = 1;
            at[i].kind = 1;
            continue;
        }
        int64_t c[3] = {gi / (H * W), (gi / W) % H, gi % W}, lo[3], hi[3];
        reach(m, c, lo, hi);
        box_add(qb, lo, hi);
        box_add(kb, c, c);
        for (int d = 0; d < 3; d++) {
            at[i].c[d] = (int32_t)c[d];
            if (m->kind != TS_MASK_NA) continue; /* CLEAR tests the circle itself */
            at[i].lo[d] = (int32_t)lo[d], at[i].hi[d] = (int32_t)hi[d];
            at[i].res[d] = (int32_t)(c[d] % m->dilation[d]);
        }
    }
    double allowed = 0;
    for (int64_t a = 0; a < nqb; a++) {
        ptr[a] = (int32_t)used;
        int64_t q0 = a * bq, q1 = q0 + bq < L ? q0 + bq : L, nqr = 0; /* nqr: its tokens */
        for (int64_t i = q0; i < q1; i++) nqr += at[i].kind != 2;
        for (int64_t b = 0; b < nkb; b++) {
            if (!qbox[a].text && !kbox[b].text && !box_meet(&qbox[a], &kbox[b])) continue;
            int64_t k0 = b * bk, k1 = k0 + bk < L ? k0 + bk : L, cnt = 0, nkr = 0, holes = 0;
            for (int64_t j = k0; j < k1; j++) { /* its tokens; padding before a token is a hole */
                int real = at[j].kind != 2;
                holes |= real && nkr < j - k0;
                nkr += real;
            }
            memset(tmp, 0, (size_t)(bq * wpr) * sizeof *tmp);
            for (int64_t i = q0; i < q1; i++) {
                if (at[i].kind == 2) continue;
                uint64_t *row = tmp + (i - q0) * wpr;
                for (int64_t j = k0; j < k1; j++) {
                    uint64_t ok = at[j].kind != 2 && pair_allowed(m, &at[i], &at[j], r2);
                    cnt += (int64_t)ok;
                    row[(j - k0) / 64] |= ok << ((j - k0) % 64);
                }
            }
            if (!cnt) continue;
            if (used == cap) {
                cap *= 2;
                int32_t *ni = realloc(idx, (size_t)cap * sizeof *idx);
                uint8_t *nf = ni ? realloc(full, (size_t)cap) : NULL;
                int64_t *no = nf ? realloc(boff, (size_t)cap * sizeof *boff) : NULL;
                if (ni) idx = ni;
                if (nf) full = nf;
                if (no) boff = no;
                if (!ni || !nf || !no) {
                    free(qbox), free(kbox), free(ptr), free(idx), free(full), free(boff), free(tmp), free(bits), free(at);
                    return TS_ERR(err, TS_ERR_NOMEM, "out of memory building an attention plan");
                }
            }
            idx[used] = (int32_t)b;
            /* full: every pair of tokens allowed, and the key padding (which a kernel runs a full
             * block without) only at the block's end */
            full[used] = cnt == nqr * nkr && !holes;
            boff[used] = -1;
            if (!full[used]) { /* keep the element mask for the kernel */
                if (grow_bits(&bits, &bits_cap, bits_used, bq * wpr) != 0) {
                    free(qbox), free(kbox), free(ptr), free(idx), free(full), free(boff), free(tmp), free(bits), free(at);
                    return TS_ERR(err, TS_ERR_NOMEM, "out of memory building an attention plan");
                }
                memcpy(bits + bits_used, tmp, (size_t)(bq * wpr) * sizeof *tmp);
                boff[used] = bits_used;
                bits_used += bq * wpr;
            }
            used++;
            allowed += (double)cnt;
        }
    }
    ptr[nqb] = (int32_t)used;
    free(qbox), free(kbox), free(tmp), free(at);
    st->ptr = ptr, st->idx = idx, st->full = full, st->bits = bits, st->bits_off = boff;
    p->exact_ptr = ptr, p->exact_idx = idx, p->exact_full = full;
    p->exact_bits = bits, p->exact_bits_off = boff;
    p->density = allowed / ((double)n * (double)n);
    return TS_OK;
}

ts_status ts_plan_add_text(const ts_attn_plan *img, int64_t n, int64_t img0, ts_attn_plan *out, ts_plan_store *st,
                           ts_err *err) {
    ts_plan_store_free(st);
    const int64_t G = img->nq, blk = img->blk_q, L = img->n_kern ? img->n_kern : G;
    const char *why = img->blk_k != blk || img->nk != G ? "a self-attention plan of square blocks"
                      : !img->exact_ptr || img->exact_per_head  ? "a block list shared by the heads"
                      : img->exact_bits || img->mask.kind != TS_MASK_NONE
                          ? "no element mask (GNA and CLEAR take text through their masks' img0)"
                          : NULL;
    if (why) return TS_ERR(err, TS_ERR_INVALID_ARG, "attention: adding text tokens needs %s", why);
    if (img0 < 0 || img0 + G > n)
        return TS_ERR(err, TS_ERR_SHAPE, "attention: an image of %lld tokens from token %lld does not fit in %lld",
                      (long long)G, (long long)img0, (long long)n);
    const int64_t nib = img->n_qblk, ntb = (n - G + blk - 1) / blk, nb = nib + ntb, len = nb * blk;
    const int64_t n_img = img->exact_ptr[nib], total = n_img + nib * ntb + ntb * nb;
    if (total > INT32_MAX || len > INT32_MAX)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "attention: %lld text tokens make a plan too large",
                      (long long)(n - G));
    st->perm = malloc((size_t)len * sizeof *st->perm);
    st->ptr = malloc((size_t)(nb + 1) * sizeof *st->ptr);
    st->idx = malloc((size_t)(total ? total : 1) * sizeof *st->idx);
    st->full = malloc((size_t)(total ? total : 1));
    if (!st->perm || !st->ptr || !st->idx || !st->full) {
        ts_plan_store_free(st);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    int64_t i = 0;
    for (; i < L; i++) {
        const int32_t tok = img->perm ? img->perm[i] : (int32_t)i;
        st->perm[i] = tok < 0 ? -1 : (int32_t)(img0 + tok);
    }
    for (; i < nib * blk; i++) st->perm[i] = -1;
    for (int64_t t = 0; t < n; t++)
        if (t < img0 || t >= img0 + G) st->perm[i++] = (int32_t)t;
    for (; i < len; i++) st->perm[i] = -1;
    int64_t e = 0;
    for (int64_t a = 0; a < nb; a++) {
        st->ptr[a] = (int32_t)e;
        if (a < nib)
            for (int32_t li = img->exact_ptr[a]; li < img->exact_ptr[a + 1]; li++, e++)
                st->idx[e] = img->exact_idx[li], st->full[e] = img->exact_full ? img->exact_full[li] : 1;
        for (int64_t b = a < nib ? nib : 0; b < nb; b++, e++) st->idx[e] = (int32_t)b, st->full[e] = 1;
    }
    st->ptr[nb] = (int32_t)e;
    *out = *img;
    out->nq = out->nk = n;
    out->perm = st->perm, out->n_kern = len;
    out->n_qblk = out->n_kblk = (int32_t)nb;
    out->exact_ptr = st->ptr, out->exact_idx = st->idx, out->exact_full = st->full;
    out->density = (img->density * (double)G * (double)G + ((double)n * (double)n - (double)G * (double)G)) /
                   ((double)n * (double)n);
    return TS_OK;
}
