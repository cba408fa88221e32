/*
 * paro.c — PAROAttention: calibration files, the six axis orders, per-head plans; see paro.h.
 */
#include "paro.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/backend.h"
#include "../src/safetensors.h"
#include "build.h"

const char *ts_paro_order_name(int order) {
    static const char *const names[TS_PARO_ORDERS] = {"FHW", "FWH", "HWF", "HFW", "WHF", "WFH"};
    return order >= 0 && order < TS_PARO_ORDERS ? names[order] : "?";
}

/* axes of each order, outermost first (0 = F, 1 = H, 2 = W) */
static const int order_axes[TS_PARO_ORDERS][3] = {{0, 1, 2}, {0, 2, 1}, {1, 2, 0}, {1, 0, 2}, {2, 1, 0}, {2, 0, 1}};

void ts_paro_order_perm(const int64_t grid[3], int order, int32_t *perm) {
    const int *ax = order_axes[order];
    const int64_t stride[3] = {grid[1] * grid[2], grid[2], 1}; /* token = f·H·W + y·W + x */
    int64_t pos = 0;
    for (int64_t a = 0; a < grid[ax[0]]; a++)
        for (int64_t b = 0; b < grid[ax[1]]; b++)
            for (int64_t c = 0; c < grid[ax[2]]; c++)
                perm[pos++] = (int32_t)(a * stride[ax[0]] + b * stride[ax[1]] + c * stride[ax[2]]);
}

typedef struct head_plan {
    int32_t *ptr, *idx; /* CSR over query blocks; NULL until built */
    double density;
} head_plan;

struct ts_paro {
    ts_paro_desc d;
    int64_t n, nb, row_bytes;
    int32_t *orders; /* [L·H] */
    uint8_t *bits;   /* [G·L·H·nb·row_bytes] */
    int32_t *perm[TS_PARO_ORDERS];
    head_plan *plans; /* [G·L·H] */
    char *path;
};

#define FAIL(...) TS_ERR(err, TS_ERR_FORMAT, __VA_ARGS__)

static int meta_int(const ts_st_file *f, const char *key, long long lo, long long hi, long long *out) {
    const char *s = ts_st_meta(f, key);
    char *end;
    if (!s) return 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

ts_status ts_paro_load(ts_paro **out, const char *path, ts_err *err) {
    *out = NULL;
    ts_st_file *f = NULL;
    TS_TRY(ts_st_open(&f, path, err));
    ts_status st = ts_paro_read(out, f, path, err);
    ts_st_close(f);
    return st;
}

ts_status ts_paro_read(ts_paro **out, const ts_st_file *f, const char *path, ts_err *err) {
    *out = NULL;
    ts_status st = TS_OK;
    ts_paro *p = calloc(1, sizeof *p);
    const char *fmt = ts_st_meta(f, "format"), *grid = ts_st_meta(f, "grid"), *dens = ts_st_meta(f, "density");
    long long blk = 0, steps = 0, groups = 0;
    long long g3[3];
    char tail;
    if (!p) st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    else if (!fmt || strcmp(fmt, TS_PARO_FORMAT))
        st = FAIL("%s: not a PARO calibration file (metadata format is '%s', want '%s')", path, fmt ? fmt : "",
                  TS_PARO_FORMAT);
    else if (!grid || sscanf(grid, "%lld,%lld,%lld%c", &g3[0], &g3[1], &g3[2], &tail) != 3 || g3[0] < 1 ||
             g3[1] < 1 || g3[2] < 1 || g3[0] > (1LL << 30) || g3[1] > (1LL << 30) || g3[2] > (1LL << 30) ||
             g3[0] * g3[1] > (1LL << 30) / g3[2]) /* each bounded first: the product cannot wrap */
        st = FAIL("%s: metadata 'grid' must be \"F,H,W\" (positive integers, at most 2^30 tokens), got '%s'", path,
                  grid ? grid : "");
    else if (!meta_int(f, "block", 16, 256, &blk) || blk % 16)
        st = FAIL("%s: metadata 'block' must be a multiple of 16 in [16, 256]", path);
    else if (!meta_int(f, "steps", 1, 100000, &steps) || !meta_int(f, "groups", 1, 100000, &groups))
        st = FAIL("%s: metadata 'steps' and 'groups' must be positive integers", path);
    const ts_tensor *to = st == TS_OK ? ts_st_find(f, "orders") : NULL, *tm = st == TS_OK ? ts_st_find(f, "masks") : NULL;
    /* at least one layer and head: the masks then hold nb · nb / 8 bytes or more, which bounds
     * the grid (and the permutations) by the file's size */
    if (st == TS_OK && (!to || to->dtype != TS_DTYPE_I32 || to->ndim != 2 || to->shape[0] < 1 || to->shape[1] < 1 ||
                        to->shape[0] > INT32_MAX || to->shape[1] > INT32_MAX))
        st = FAIL("%s: needs an I32 tensor 'orders' [layers, heads] (at least one of each)", path);
    if (st == TS_OK) {
        p->d.grid[0] = g3[0], p->d.grid[1] = g3[1], p->d.grid[2] = g3[2];
        p->d.block = (int)blk, p->d.steps = (int)steps, p->d.groups = (int)groups;
        p->d.layers = (int)to->shape[0], p->d.heads = (int)to->shape[1];
        p->d.density = dens ? atof(dens) : 0;
        p->n = g3[0] * g3[1] * g3[2];
        p->nb = (p->n + blk - 1) / blk;
        p->row_bytes = (p->nb + 7) / 8;
        int64_t want[5] = {groups, p->d.layers, p->d.heads, p->nb, p->row_bytes};
        int ok = tm && tm->dtype == TS_DTYPE_U8 && tm->ndim == 5;
        for (int i = 0; ok && i < 5; i++) ok = tm->shape[i] == want[i];
        if (!ok)
            st = FAIL("%s: needs a U8 tensor 'masks' [%lld, %d, %d, %lld, %lld] (groups, layers, heads, blocks, "
                      "bytes per row) for grid %s and block %lld", path, groups, p->d.layers, p->d.heads,
                      (long long)p->nb, (long long)p->row_bytes, grid, blk);
    }
    const int64_t LH = st == TS_OK ? (int64_t)p->d.layers * p->d.heads : 0;
    if (st == TS_OK) {
        size_t nbits = (size_t)ts_tensor_numel(tm);
        p->orders = malloc((size_t)LH * sizeof(int32_t));
        p->bits = malloc(nbits ? nbits : 1);
        p->plans = calloc((size_t)(groups * LH), sizeof *p->plans);
        p->path = strdup(path);
        if (!p->orders || !p->bits || !p->plans || !p->path) st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        else memcpy(p->orders, to->data, (size_t)LH * sizeof(int32_t)), memcpy(p->bits, tm->data, nbits);
    }
    for (int64_t i = 0; st == TS_OK && i < LH; i++)
        if (p->orders[i] < 0 || p->orders[i] >= TS_PARO_ORDERS)
            st = FAIL("%s: orders[%lld][%lld] = %d is not an order code 0..5", path, (long long)(i / p->d.heads),
                      (long long)(i % p->d.heads), p->orders[i]);
    for (int64_t r = 0; st == TS_OK && r < groups * LH * p->nb; r++) {
        const uint8_t *row = p->bits + r * p->row_bytes;
        int any = 0;
        for (int64_t j = 0; j < p->nb; j++) any |= (row[j >> 3] >> (j & 7)) & 1;
        int64_t gl = r / p->nb;
        if (!any)
            st = FAIL("%s: group %lld, layer %lld, head %lld: query block %lld has no key block", path,
                      (long long)(gl / LH), (long long)(gl % LH / p->d.heads), (long long)(gl % p->d.heads),
                      (long long)(r % p->nb));
    }
    for (int o = 0; st == TS_OK && o < TS_PARO_ORDERS; o++) {
        p->perm[o] = malloc((size_t)p->n * sizeof(int32_t));
        if (!p->perm[o]) st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        else ts_paro_order_perm(p->d.grid, o, p->perm[o]);
    }
    if (st != TS_OK) {
        ts_paro_free(p);
        return st;
    }
    *out = p;
    return TS_OK;
}

void ts_paro_free(ts_paro *p) {
    if (!p) return;
    if (p->plans)
        for (int64_t i = 0; i < (int64_t)p->d.groups * p->d.layers * p->d.heads; i++)
            free(p->plans[i].ptr), free(p->plans[i].idx);
    for (int o = 0; o < TS_PARO_ORDERS; o++) free(p->perm[o]);
    free(p->plans), free(p->orders), free(p->bits), free(p->path);
    free(p);
}

const ts_paro_desc *ts_paro_info(const ts_paro *p) { return &p->d; }

int ts_paro_order(const ts_paro *p, int layer, int head) { return p->orders[(int64_t)layer * p->d.heads + head]; }

int ts_paro_block_on(const ts_paro *p, int group, int layer, int head, int i, int j) {
    const int64_t r = (((int64_t)group * p->d.layers + layer) * p->d.heads + head) * p->nb + i;
    return (p->bits[r * p->row_bytes + (j >> 3)] >> (j & 7)) & 1;
}

int ts_paro_group(const ts_paro *p, int step, int n_steps) {
    if (step < 0 || n_steps <= 0) return 0;
    int64_t g = (int64_t)step * p->d.groups / n_steps;
    return (int)(g >= p->d.groups ? p->d.groups - 1 : g);
}

ts_status ts_paro_plan(ts_paro *p, int group, int layer, int head, int64_t H, int64_t D, ts_quant quant,
                       ts_attn_plan *out, ts_err *err) {
    if (group < 0 || group >= p->d.groups || layer < 0 || layer >= p->d.layers || head < 0 || head >= p->d.heads)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "paro: group %d, layer %d, head %d is outside the calibration %s",
                      group, layer, head, p->path);
    head_plan *hp = &p->plans[((int64_t)group * p->d.layers + layer) * p->d.heads + head];
    const int64_t nb = p->nb, B = p->d.block;
    if (!hp->ptr) {
        int64_t cnt = 0;
        for (int64_t i = 0; i < nb; i++)
            for (int64_t j = 0; j < nb; j++) cnt += ts_paro_block_on(p, group, layer, head, (int)i, (int)j);
        hp->ptr = malloc((size_t)(nb + 1) * sizeof(int32_t));
        hp->idx = malloc((size_t)(cnt ? cnt : 1) * sizeof(int32_t));
        if (!hp->ptr || !hp->idx) {
            free(hp->ptr), free(hp->idx);
            hp->ptr = hp->idx = NULL;
            return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        }
        double scores = 0;
        int32_t e = 0;
        for (int64_t i = 0; i < nb; i++) {
            hp->ptr[i] = e;
            const int64_t rows = i * B + B <= p->n ? B : p->n - i * B;
            for (int64_t j = 0; j < nb; j++)
                if (ts_paro_block_on(p, group, layer, head, (int)i, (int)j)) {
                    hp->idx[e++] = (int32_t)j;
                    scores += (double)rows * (double)(j * B + B <= p->n ? B : p->n - j * B);
                }
        }
        hp->ptr[nb] = e;
        hp->density = scores / ((double)p->n * (double)p->n);
    }
    ts_attn_plan pl = ts_attn_plan_dense(p->n, p->n, H, D, (int32_t)B, (int32_t)B);
    const int32_t *perm = p->perm[ts_paro_order(p, layer, head)];
    pl.perm = ts_paro_order(p, layer, head) == 0 ? NULL : perm; /* FHW is the identity */
    pl.exact_ptr = hp->ptr, pl.exact_idx = hp->idx;
    pl.density = hp->density;
    pl.quant = quant;
    pl.h0 = head, pl.h1 = head + 1;
    *out = pl;
    return TS_OK;
}

ts_status ts_paro_attention(ts_ctx *c, ts_paro *p, const ts_attn_site *site, int64_t n, int64_t H, int64_t D,
                            int64_t h0, int64_t h1, ts_quant quant, const float *q, const float *k, const float *v,
                            const ts_attn_operands *kop, float *out, double *density, ts_err *err) {
    const int64_t *g = site->grid;
    if (g[0] != p->d.grid[0] || g[1] != p->d.grid[1] || g[2] != p->d.grid[2] || n < p->n)
        return TS_ERR(err, TS_ERR_SHAPE, "paro: %s was calibrated for a %lldx%lldx%lld token grid; this call has "
                      "%lldx%lldx%lld (%lld tokens): calibrate for this size (tessera-calibrate)", p->path,
                      (long long)p->d.grid[0], (long long)p->d.grid[1], (long long)p->d.grid[2], (long long)g[0],
                      (long long)g[1], (long long)g[2], (long long)n);
    if (site->img0 < 0 || site->img0 + p->n > n)
        return TS_ERR(err, TS_ERR_SHAPE, "paro: the image's %lld tokens from token %lld do not fit in %lld",
                      (long long)p->n, (long long)site->img0, (long long)n);
    if (site->layer < 0 || site->layer >= p->d.layers || H != p->d.heads)
        return TS_ERR(err, TS_ERR_SHAPE, "paro: %s covers %d layers x %d heads; this call is layer %d of a model "
                      "with %lld heads", p->path, p->d.layers, p->d.heads, site->layer, (long long)H);
    const int grp = ts_paro_group(p, site->step, site->n_steps);
    const ts_attn_operands ops = kop ? *kop : (ts_attn_operands){q, k, v, 0};
    double dsum = 0;
    for (int64_t h = h0; h < h1; h++) {
        ts_attn_plan pl, tx;
        ts_plan_store ts = {0}; /* with text tokens: the image's plan with dense text blocks */
        TS_TRY(ts_paro_plan(p, grp, site->layer, (int)h, H, D, quant, &pl, err));
        if (n > p->n) {
            TS_TRY(ts_plan_add_text(&pl, n, site->img0, &tx, &ts, err));
            pl = tx;
        }
        pl.in_bf16 = ops.bf16;
        ts_status st = c->backend->attn(c, &pl, ops.q, ops.k, ops.v, out);
        ts_plan_store_free(&ts);
        if (st != TS_OK) return TS_ERR(err, st, "paro: attention kernel failed (%s)", ts_status_str(st));
        dsum += pl.density;
    }
    if (density) *density = h1 > h0 ? dsum / (double)(h1 - h0) : 1.0;
    return TS_OK;
}

ts_status ts_paro_write(const char *path, const ts_paro_desc *d, const int32_t *orders, const uint8_t *masks,
                        const char *const *meta, int n_meta, ts_err *err) {
    const int64_t n = d->grid[0] * d->grid[1] * d->grid[2], nb = (n + d->block - 1) / d->block, rb = (nb + 7) / 8;
    const int64_t rows = (int64_t)d->groups * d->layers * d->heads * nb;
    uint8_t *bits = calloc((size_t)(rows * rb), 1);
    const char **m = malloc((size_t)(2 * n_meta + 12) * sizeof(char *));
    if (!bits || !m) {
        free(bits), free(m);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < nb; j++)
            if (masks[r * nb + j]) bits[r * rb + (j >> 3)] |= (uint8_t)(1u << (j & 7));
    char grid[96], block[16], steps[16], groups[16], dens[32];
    snprintf(grid, sizeof grid, "%lld,%lld,%lld", (long long)d->grid[0], (long long)d->grid[1], (long long)d->grid[2]);
    snprintf(block, sizeof block, "%d", d->block);
    snprintf(steps, sizeof steps, "%d", d->steps);
    snprintf(groups, sizeof groups, "%d", d->groups);
    snprintf(dens, sizeof dens, "%.6g", d->density);
    const char *fixed[12] = {"format", TS_PARO_FORMAT, "grid", grid, "block", block, "steps", steps,
                             "groups", groups, "density", dens};
    memcpy(m, fixed, sizeof fixed);
    for (int i = 0; i < 2 * n_meta; i++) m[12 + i] = meta[i];
    int64_t so[2] = {d->layers, d->heads}, sm[5] = {d->groups, d->layers, d->heads, nb, rb};
    ts_st_item items[2] = {{"orders", ts_tensor_make(TS_DTYPE_I32, 2, so, (void *)orders)},
                           {"masks", ts_tensor_make(TS_DTYPE_U8, 5, sm, bits)}};
    ts_status st = ts_st_write(path, items, 2, m, n_meta + 6, err);
    free(bits), free(m);
    return st;
}
