/*
 * test_attn_methods.c — the static attention methods and the schedule.
 *
 * - the NA predicate on hand-checked 1-D cases (border shift, stride groups, dilation,
 *   causal) and on 3-D grids (every non-causal query sees exactly the window's volume);
 * - the CLEAR circle (centre, shrinking at corners, never across frames);
 * - the tiling permutation is a bijection and lays tiles out contiguously; padded, each tile
 *   (and the image after text) starts a block and edge tiles are followed by padding;
 * - built block maps miss no allowed pair, flag full only full blocks, report the
 *   density exactly (GNA and CLEAR, with text tokens before and after the grid, in the plain
 *   and the padded tile order);
 * - the CPU kernel against the float64 executor on those plans (odd grids, several block
 *   sizes, a head range whose other heads stay untouched);
 * - DraftAttention: the region order (padding at the edges), the threshold and the
 *   diagonal, kernel vs executor on its padded plans, sparsity 0 = dense, and a crafted
 *   input whose draft map is the identity (each token averages its region);
 * - SLA: the block selection and the output of both variants (linear branch over all keys /
 *   the complement) against the reference's operations; without proj_l it is top-k
 *   block-sparse;
 * - the schedule: matching (last rule wins, layers, steps, fractions, timesteps, heads,
 *   cross), --attn specs, and every error naming its rule and field;
 * - PARO: the six axis orders, the INT8 Q·Kᵀ kernel against the executor's quantisation
 *   (dense and permuted block-sparse plans, odd sizes), calibration files (round trip, the
 *   timestep groups, each malformed case), the schedule's paro rules (relative file names,
 *   --attn, quant=none) and their densities;
 * - the Wan DiT: a schedule that is dense everywhere gives the unscheduled output exactly;
 *   GNA with a window covering the grid equals dense; densities are recorded per layer.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attention.h"
#include "attn_paths.h"
#include "backend.h"
#include "build.h"
#include "dit/wan.h"
#include "draft.h"
#include "paro.h"
#include "plan.h"
#include "safetensors.h"
#include "schedule.h"
#include "sla.h"
#include "test.h"
#include "wan_rename.h"
#include "wan_run.h"

static ts_mask na1d(int64_t W, int w, int s, int d, int causal) {
    ts_mask m;
    memset(&m, 0, sizeof m);
    m.kind = TS_MASK_NA;
    m.grid[0] = 1, m.grid[1] = 1, m.grid[2] = W;
    for (int i = 0; i < 3; i++) m.window[i] = 1, m.stride[i] = 1, m.dilation[i] = 1;
    m.window[2] = w, m.stride[2] = s, m.dilation[2] = d, m.causal[2] = causal;
    return m;
}

/* The keys of query x as a bit mask (W <= 63). */
static uint64_t keys_of(const ts_mask *m, int64_t x, int64_t n) {
    uint64_t b = 0;
    for (int64_t k = 0; k < n; k++)
        if (ts_mask_allows(m, x, k)) b |= 1ull << k;
    return b;
}

static uint64_t set_of(const int *ks, int n) {
    uint64_t b = 0;
    for (int i = 0; i < n; i++) b |= 1ull << ks[i];
    return b;
}

static void test_na_semantics(void) {
    struct { int W, w, s, d, c, x, n, keys[8]; } c[] = {
        {10, 3, 1, 1, 0, 0, 3, {0, 1, 2}},  /* shifted at the left border, not shrunk */
        {10, 3, 1, 1, 0, 9, 3, {7, 8, 9}},  /* ... and at the right */
        {10, 3, 1, 1, 0, 5, 3, {4, 5, 6}},
        {8, 4, 2, 1, 0, 0, 4, {0, 1, 2, 3}}, /* even window: left 2, right 1; stride 2 leaders */
        {8, 4, 2, 1, 0, 2, 4, {1, 2, 3, 4}},
        {8, 4, 2, 1, 0, 3, 4, {1, 2, 3, 4}}, /* same stride group as 2: same window */
        {8, 4, 2, 1, 0, 7, 4, {4, 5, 6, 7}},
        {10, 3, 1, 2, 0, 4, 3, {2, 4, 6}},  /* dilation 2: group 0, in-group window */
        {10, 3, 1, 2, 0, 0, 3, {0, 2, 4}},
        {10, 3, 1, 2, 0, 9, 3, {5, 7, 9}},  /* group 1 at its right border */
        {10, 3, 1, 1, 1, 5, 3, {3, 4, 5}},  /* causal */
        {10, 3, 1, 1, 1, 0, 1, {0}},
        {10, 3, 1, 1, 1, 1, 2, {0, 1}},
        {9, 3, 3, 1, 0, 4, 3, {3, 4, 5}},   /* stride = window: blocked (Swin-like) */
        {9, 3, 3, 1, 0, 5, 3, {3, 4, 5}},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        ts_mask m = na1d(c[i].W, c[i].w, c[i].s, c[i].d, c[i].c);
        uint64_t got = keys_of(&m, c[i].x, c[i].W), want = set_of(c[i].keys, c[i].n);
        TS_CHECK(got == want, "NA W=%d w=%d s=%d d=%d causal=%d: keys of %d are %#llx, want %#llx", c[i].W, c[i].w,
                 c[i].s, c[i].d, c[i].c, c[i].x, (unsigned long long)got, (unsigned long long)want);
    }
    /* 3-D: every query sees exactly w0·w1·w2 keys (non-causal) */
    ts_mask m;
    memset(&m, 0, sizeof m);
    m.kind = TS_MASK_NA;
    int64_t g[3] = {3, 5, 7};
    int w[3] = {2, 3, 3}, s[3] = {1, 2, 3}, d[3] = {1, 1, 2};
    memcpy(m.grid, g, sizeof g);
    memcpy(m.window, w, sizeof w), memcpy(m.stride, s, sizeof s), memcpy(m.dilation, d, sizeof d);
    int64_t n = g[0] * g[1] * g[2];
    int bad = 0;
    for (int64_t q = 0; q < n; q++) {
        int64_t cnt = 0;
        for (int64_t k = 0; k < n; k++) cnt += ts_mask_allows(&m, q, k);
        bad += cnt != w[0] * w[1] * w[2];
    }
    TS_CHECK(bad == 0, "3-D NA: %d queries do not see exactly %d keys", bad, w[0] * w[1] * w[2]);
}

static void test_clear_semantics(void) {
    ts_mask m;
    memset(&m, 0, sizeof m);
    m.kind = TS_MASK_CLEAR;
    m.grid[0] = 2, m.grid[1] = 5, m.grid[2] = 5;
    struct { double r; int64_t q; int want; } c[] = {
        {2.0, 12, 9},   /* centre (2,2): |dy|,|dx| <= 1; (2,0) has d² = 4, not < 4 */
        {2.0, 0, 4},    /* corner: the window shrinks */
        {2.5, 12, 21},  /* + (±2,0),(0,±2) and the 8 (±2,±1),(±1,±2) */
        {1.0, 37, 1},   /* frame 1: only itself */
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        m.radius = c[i].r;
        int cnt = 0, other_frame = 0;
        for (int64_t k = 0; k < 50; k++) {
            int a = ts_mask_allows(&m, c[i].q, k);
            cnt += a;
            other_frame += a && (k / 25 != c[i].q / 25);
        }
        TS_CHECK(cnt == c[i].want && !other_frame, "CLEAR r=%g query %lld: %d keys (want %d), %d in another frame",
                 c[i].r, (long long)c[i].q, cnt, c[i].want, other_frame);
    }
    /* text: with 3 text tokens first, text queries see all, every query sees text keys */
    m.img0 = 3, m.radius = 1.0;
    TS_CHECK(ts_mask_allows(&m, 0, 40) && ts_mask_allows(&m, 20, 1) && !ts_mask_allows(&m, 3, 40),
             "CLEAR text rules");
}

static void test_tile_perm(void) {
    ts_mask m;
    memset(&m, 0, sizeof m);
    int64_t grids[][4] = {{4, 8, 8, 0}, {3, 5, 7, 2}};
    int tiles[][3] = {{1, 8, 8}, {2, 4, 4}};
    for (int gi = 0; gi < 2; gi++) {
        memcpy(m.grid, grids[gi], 3 * sizeof(int64_t));
        m.img0 = grids[gi][3];
        int64_t n = m.img0 + m.grid[0] * m.grid[1] * m.grid[2] + 3;
        int32_t *perm = malloc((size_t)n * 4);
        char *seen = calloc((size_t)n, 1);
        ts_err e;
        TS_CHECK(ts_plan_tile_perm(&m, n, tiles[gi], perm, &e) == TS_OK, "tile perm: %s", e.msg);
        int ok = 1;
        for (int64_t i = 0; i < n; i++) {
            ok &= perm[i] >= 0 && perm[i] < n && !seen[perm[i]];
            if (perm[i] >= 0 && perm[i] < n) seen[perm[i]] = 1;
        }
        TS_CHECK(ok, "tile permutation %d is a bijection", gi);
        TS_CHECK(perm[0] == 0 && perm[n - 1] == n - 1, "text tokens keep their places");
        if (gi == 0) { /* each run of 64 is one 8x8 frame tile */
            int tile_ok = 1;
            for (int64_t i = 0; i < 256; i++) tile_ok &= perm[i] / 64 == i / 64;
            TS_CHECK(tile_ok, "1x8x8 tiles are contiguous");
        }
        free(perm), free(seen);
    }
    /* the padded order: tiles (and the image after the text) start blocks, an edge tile's
     * padding follows its tokens; by hand, grid 3x5x7 in 2x4x4 tiles (real volumes 32, 24, 8,
     * 6, 16, 12, 4, 3) after 2 text tokens, 3 after: blocks of 16 give 16 + 32 + 32 + 16 · 6 +
     * 3 = 179 slots, blocks of 32 32 + 32 · 8 + 3 = 291; 1x8x8 tiles with blocks of 64 on a
     * 4x8x8 grid need none, and 2x4x4 tiles with blocks of 48 (not a divisor) are not padded */
    struct { int64_t g[4]; int tile[3]; int64_t blk, want; } pc[] = {
        {{3, 5, 7, 2}, {2, 4, 4}, 16, 179},
        {{3, 5, 7, 2}, {2, 4, 4}, 32, 291},
        {{4, 8, 8, 0}, {1, 8, 8}, 64, 4 * 64 + 3},
        {{3, 5, 7, 2}, {2, 4, 4}, 48, 2 + 105 + 3},
    };
    for (size_t ci = 0; ci < sizeof pc / sizeof pc[0]; ci++) {
        memcpy(m.grid, pc[ci].g, 3 * sizeof(int64_t));
        m.img0 = pc[ci].g[3];
        const int64_t T = m.grid[0], H = m.grid[1], W = m.grid[2], blk = pc[ci].blk;
        const int *tl = pc[ci].tile;
        int64_t n = m.img0 + T * H * W + 3, len = ts_plan_tile_len(&m, n, tl, blk);
        TS_CHECK(len == pc[ci].want, "padded tile order %zu: %lld slots, want %lld", ci, (long long)len,
                 (long long)pc[ci].want);
        if (len != pc[ci].want) continue;
        int32_t *perm = malloc((size_t)len * 4);
        char *seen = calloc((size_t)n, 1);
        ts_err e;
        TS_CHECK(ts_plan_tile_perm_padded(&m, n, tl, blk, perm, &e) == TS_OK, "padded tile perm: %s", e.msg);
        int ok = 1, aligned = 1, pads = 0;
        int64_t last_tile = -1;
        for (int64_t i = 0; i < len; i++) {
            int32_t t = perm[i];
            if (t < 0) {
                pads++;
                aligned &= len > n; /* padding only where the order is longer */
                continue;
            }
            ok &= t < n && !seen[t];
            if (t < n) seen[t] = 1;
            ok &= i == 0 || perm[i - 1] >= 0 || i % blk == 0; /* a token after padding starts a block */
            int64_t gi = t - m.img0, tile = -2; /* -2: text after the image */
            if (gi < 0) tile = -1;
            else if (gi < T * H * W)
                tile = ((gi / (H * W)) / tl[0] * ((H + tl[1] - 1) / tl[1]) + ((gi / W) % H) / tl[1]) *
                           ((W + tl[2] - 1) / tl[2]) + (gi % W) / tl[2];
            if (tile != last_tile && len > n) aligned &= i % blk == 0 || tile == -2; /* a new tile: a new block */
            last_tile = tile;
        }
        for (int64_t t = 0; t < n; t++) ok &= seen[t];
        TS_CHECK(ok, "padded tile order %zu: every token once, padding only before a block's start", ci);
        TS_CHECK(aligned && pads == len - n, "padded tile order %zu: each tile starts a block", ci);
        TS_CHECK(perm[len - 1] == n - 1 && perm[0] == 0, "padded tile order %zu: text keeps its places", ci);
        free(perm), free(seen);
    }
    /* sub-tiles, by hand: a 1x6x10 grid in 1x8x8 tiles of 1x4x4 sub-tiles, blocks of 64. The
     * 6x8 tile: rows 0-3 x cols 0-3, rows 0-3 x cols 4-7, rows 4-5 x cols 0-3, rows 4-5 x cols
     * 4-7 (16, 16, 8, 8 tokens), 16 slots of padding; the 6x2 tile: rows 0-3, rows 4-5 (8, 4) */
    {
        memset(&m, 0, sizeof m);
        m.grid[0] = 1, m.grid[1] = 6, m.grid[2] = 10;
        const int tl[3] = {1, 8, 8}, sub[3] = {1, 4, 4};
        const int64_t n = 60, len = ts_plan_tile_len(&m, n, tl, 64);
        int32_t perm[128];
        ts_err e;
        TS_CHECK(len == 128, "sub-tile order: %lld slots, want 128", (long long)len);
        TS_CHECK(ts_plan_tile_perm_sub(&m, n, tl, sub, 64, perm, &e) == TS_OK, "sub-tile perm: %s", e.msg);
        const int32_t want[][2] = {{0, 0},   {3, 3},   {4, 10},  {15, 33}, {16, 4},  {31, 37}, {32, 40},
                                   {35, 43}, {36, 50}, {40, 44}, {47, 57}, {48, -1}, {63, -1}, {64, 8},
                                   {66, 18}, {71, 39}, {72, 48}, {75, 59}, {76, -1}, {127, -1}};
        int ok = 1;
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) ok &= perm[want[i][0]] == want[i][1];
        char seen[60] = {0};
        for (int i = 0; i < 128; i++)
            if (perm[i] >= 0) ok &= perm[i] < 60 && !seen[perm[i]]++;
        for (int t = 0; t < 60; t++) ok &= seen[t];
        TS_CHECK(ok, "sub-tile order: the slots by hand, every token once");
        const int bad[3] = {1, 0, 4};
        TS_CHECK(ts_plan_tile_perm_sub(&m, n, tl, bad, 64, perm, &e) == TS_ERR_INVALID_ARG, "sub-tile 1x0x4 refused");
    }
    /* nested tiles, by hand: a 3x2x5 grid after 2 text tokens, 1 after, in 1x2x2 tiles (edge
     * tiles 1x2x1, padded to blocks of 4) nested h, w, t: the tile at columns 0-1 in frames 0,
     * 1, 2, then columns 2-3 in frames 0, 1, 2, then column 4 */
    {
        memset(&m, 0, sizeof m);
        m.grid[0] = 3, m.grid[1] = 2, m.grid[2] = 5, m.img0 = 2;
        const int tl[3] = {1, 2, 2}, nest[3] = {1, 2, 0};
        const int64_t n = 33, len = ts_plan_tile_len(&m, n, tl, 4);
        int32_t perm[48];
        const int32_t want[] = {0,  1,  -1, -1, /* the text, padded */
                                2,  3,  7,  8,  12, 13, 17, 18, 22, 23, 27, 28, /* columns 0-1, frames 0-2 */
                                4,  5,  9,  10, 14, 15, 19, 20, 24, 25, 29, 30, /* columns 2-3 */
                                6,  11, -1, -1, 16, 21, -1, -1, 26, 31, -1, -1, /* column 4 */
                                32};
        ts_err e;
        TS_CHECK(len == 41, "nested tile order: %lld slots, want 41", (long long)len);
        TS_CHECK(ts_plan_tile_perm_nest(&m, n, tl, NULL, nest, 4, perm, &e) == TS_OK, "nested tile perm: %s", e.msg);
        int ok = len == 41;
        for (int i = 0; ok && i < 41; i++) ok &= perm[i] == want[i];
        TS_CHECK(ok, "nested tile order: the slots by hand");
        const int dup[3] = {1, 1, 0}, out[3] = {0, 3, 1};
        TS_CHECK(ts_plan_tile_perm_nest(&m, n, tl, NULL, dup, 4, perm, &e) == TS_ERR_INVALID_ARG &&
                     ts_plan_tile_perm_nest(&m, n, tl, NULL, out, 4, perm, &e) == TS_ERR_INVALID_ARG,
                 "nests 1,1,0 and 0,3,1 refused");
    }
    /* the nest a window asks for: the axis it spans the most tiles of innermost */
    {
        struct { ts_mask_kind kind; int64_t g[3]; int w[3], d[3]; double r; int tile[3], want[3]; } nc[] = {
            {TS_MASK_NA, {21, 30, 52}, {17, 8, 24}, {1, 1, 1}, 0, {1, 8, 8}, {1, 2, 0}}, /* 17, 1, 3 tiles */
            {TS_MASK_NA, {16, 32, 32}, {3, 24, 24}, {1, 1, 1}, 0, {1, 8, 8}, {0, 1, 2}}, /* 3, 3, 3: as it was */
            {TS_MASK_NA, {4, 32, 32}, {2, 8, 24}, {1, 1, 1}, 0, {1, 8, 8}, {1, 0, 2}},   /* 2, 1, 3 */
            {TS_MASK_NA, {4, 32, 32}, {9, 8, 8}, {1, 2, 1}, 0, {1, 8, 8}, {2, 1, 0}},    /* 4 (the grid's), 2, 1 */
            {TS_MASK_CLEAR, {21, 30, 52}, {0}, {0}, 11.0, {1, 8, 8}, {0, 1, 2}},         /* 1, 2.75, 2.75 */
        };
        int ok = 1;
        for (size_t i = 0; i < sizeof nc / sizeof nc[0]; i++) {
            memset(&m, 0, sizeof m);
            m.kind = nc[i].kind, m.radius = nc[i].r;
            memcpy(m.grid, nc[i].g, sizeof m.grid);
            memcpy(m.window, nc[i].w, sizeof m.window), memcpy(m.dilation, nc[i].d, sizeof m.dilation);
            int nest[3];
            ts_plan_tile_nest(&m, nc[i].tile, nest);
            ok &= !memcmp(nest, nc[i].want, sizeof nest);
        }
        TS_CHECK(ok, "tile nests: each window's axes by the tiles it spans");
    }
}

/* Builds a plan for mask m over n tokens and checks it against the predicate. pad: 0 the
 * plain tile order, 1 the padded one, 2 the padded one in sub-tiles of half the tile (rounded
 * up), 3 that with the tiles nested as ts_plan_tile_nest says, or w, t, h where it says t, h, w
 * (so that each case runs a nest other than the plain one). */
static int build_and_check(ts_attn_plan *p, ts_plan_store *st, const ts_mask *m, int64_t n, const int tile[3],
                           int32_t blk, int pad, const char *what) {
    *p = ts_attn_plan_dense(n, n, 1, 1, blk, blk);
    p->mask = *m;
    ts_err e;
    const int64_t L = pad ? ts_plan_tile_len(m, n, tile, blk) : n;
    st->perm = malloc((size_t)(L > n ? L : n) * 4);
    const int sub[3] = {(tile[0] + 1) / 2, (tile[1] + 1) / 2, (tile[2] + 1) / 2};
    int nest[3];
    ts_plan_tile_nest(m, tile, nest);
    if (nest[0] == 0 && nest[1] == 1) nest[0] = 2, nest[1] = 0, nest[2] = 1; /* not t, h, w */
    if ((pad == 3   ? ts_plan_tile_perm_nest(m, n, tile, sub, nest, blk, st->perm, &e)
         : pad == 2 ? ts_plan_tile_perm_sub(m, n, tile, sub, blk, st->perm, &e)
         : pad == 1 ? ts_plan_tile_perm_padded(m, n, tile, blk, st->perm, &e)
                    : ts_plan_tile_perm(m, n, tile, st->perm, &e)) != TS_OK) {
        TS_CHECK(0, "%s: %s", what, e.msg);
        return 0;
    }
    p->perm = st->perm;
    if (L > n) p->n_kern = L, p->n_qblk = p->n_kblk = (int32_t)((L + blk - 1) / blk);
    if (ts_plan_build_masked(p, st, &e) != TS_OK) {
        TS_CHECK(0, "%s: %s", what, e.msg);
        return 0;
    }
    int missed = 0, wrong_full = 0, pad_listed = 0;
    double cnt = 0;
    for (int32_t a = 0; a < p->n_qblk; a++) {
        for (int64_t i = (int64_t)a * blk; i < (int64_t)(a + 1) * blk && i < L; i++)
            for (int64_t j = 0; j < L; j++) {
                int listed = 0, full = 0;
                for (int32_t li = p->exact_ptr[a]; li < p->exact_ptr[a + 1]; li++)
                    if (p->exact_idx[li] == j / blk) listed = 1, full = p->exact_full[li];
                if (p->perm[i] < 0 || p->perm[j] < 0) { /* a full block's key padding is at its end */
                    if (p->perm[j] < 0 && full)
                        for (int64_t j2 = j + 1; j2 < (j / blk + 1) * blk && j2 < L; j2++) pad_listed += p->perm[j2] >= 0;
                    continue;
                }
                int allowed = ts_mask_allows(m, p->perm[i], p->perm[j]);
                cnt += allowed;
                missed += allowed && !listed;
                wrong_full += full && !allowed;
            }
    }
    TS_CHECK(!missed && !wrong_full && !pad_listed,
             "%s: %d allowed pairs not listed, %d pairs in blocks wrongly flagged full, %d tokens after a full block's "
             "padding", what, missed, wrong_full, pad_listed);
    TS_CHECK(fabs(p->density - cnt / ((double)n * n)) < 1e-12, "%s: density %g, counted %g", what, p->density,
             cnt / ((double)n * n));
    TS_CHECK(p->density < 1.0, "%s: density %g is not sparse", what, p->density);
    return 1;
}

static void kernel_vs_ref(ts_ctx *c, ts_attn_plan *p, int64_t H, int64_t D, int64_t h0, int64_t h1, const char *what) {
    int64_t n = p->nq, HD = H * D;
    p->heads = H, p->head_dim = D, p->scale = (float)(1.0 / sqrt((double)D)), p->h0 = h0, p->h1 = h1;
    float *q = malloc((size_t)(n * HD) * 4), *k = malloc((size_t)(n * HD) * 4), *v = malloc((size_t)(n * HD) * 4);
    float *out = malloc((size_t)(n * HD) * 4), *ref = malloc((size_t)(n * HD) * 4);
    ts_test_randn(q, n * HD, 5 + (uint64_t)n, 2.0f);
    ts_test_randn(k, n * HD, 6 + (uint64_t)n, 1.0f);
    ts_test_randn(v, n * HD, 7 + (uint64_t)n, 1.0f);
    for (int64_t i = 0; i < n * HD; i++) out[i] = ref[i] = 7.0f;
    TS_CHECK(ts_attn_ref(p, q, k, v, ref) == 0, "ref");
    for (int path = 0; path < TS_TEST_ATTN_PATHS; path++) { /* the backend's entry, then each path built */
        for (int64_t i = 0; i < n * HD; i++) out[i] = 7.0f;
        ts_status st = ts_test_attn_run(c, path, p, q, k, v, out);
        if (st == TS_ERR_UNSUPPORTED) continue;
        char w2[256];
        snprintf(w2, sizeof w2, "%s %s", what, ts_test_attn_path_name[path]);
        TS_CHECK(st == TS_OK, "%s: kernel ran", w2);
        ts_test_compare(w2, out, ref, n * HD, 1e-5, NULL);
        if (h1 > 0) {
            int untouched = 1;
            for (int64_t t = 0; t < n; t++)
                for (int64_t h = 0; h < H; h++)
                    if (h < h0 || h >= h1)
                        for (int64_t d = 0; d < D; d++) untouched &= out[t * HD + h * D + d] == 7.0f;
            TS_CHECK(untouched, "%s: heads outside [%lld, %lld) written", w2, (long long)h0, (long long)h1);
        }
    }
    free(q), free(k), free(v), free(out), free(ref);
}

static void bf16_case(ts_ctx *c, ts_attn_plan *p, int64_t H, int64_t D, const char *what);

static void test_plans(ts_ctx *c) {
    struct { const char *what; ts_mask_kind kind; int64_t g[3], img0, tail; int w[3], s[3], d[3], causal[3];
             double r; int tile[3]; int32_t blk; int64_t H, D, h0, h1; } cs[] = {
        {"gna 3x6x10 w3x3x5", TS_MASK_NA, {3, 6, 10}, 0, 0, {3, 3, 5}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, {1, 4, 4}, 16, 2, 16, 0, 0},
        {"gna 5x7x9 stride, dilation", TS_MASK_NA, {5, 7, 9}, 0, 0, {2, 3, 3}, {1, 2, 3}, {1, 2, 1}, {0, 0, 0}, 0, {1, 8, 8}, 32, 2, 24, 0, 0},
        {"gna causal in t, text around", TS_MASK_NA, {4, 5, 6}, 7, 5, {2, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 0, 0}, 0, {2, 3, 3}, 16, 3, 16, 1, 2},
        {"clear r3 4x9x11", TS_MASK_CLEAR, {4, 9, 11}, 0, 0, {0}, {0}, {0}, {0}, 3.0, {1, 8, 8}, 64, 2, 64, 0, 0},
        {"clear r2.5 with text", TS_MASK_CLEAR, {2, 8, 8}, 10, 3, {0}, {0}, {0}, {0}, 2.5, {1, 4, 4}, 16, 2, 12, 0, 1},
        /* blocks of 48: a partial block's mask bits cross the 64-bit words of a chunk's row */
        {"gna 2x12x14 w1x5x7, blocks of 48", TS_MASK_NA, {2, 12, 14}, 0, 0, {1, 5, 7}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, {1, 4, 4}, 48, 2, 32, 0, 0},
        {"clear r3.5 blocks of 48, text", TS_MASK_CLEAR, {3, 10, 12}, 9, 4, {0}, {0}, {0}, {0}, 3.5, {1, 4, 4}, 48, 2, 32, 0, 0},
        /* padded, edge tiles of 32 and 16 tokens: short blocks inside a chunk */
        {"gna 2x12x20 w1x5x7, edge tiles of 32 and 16", TS_MASK_NA, {2, 12, 20}, 0, 0, {1, 5, 7}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, {1, 8, 8}, 64, 2, 32, 0, 0},
        {"clear r4.5 2x12x20, edge tiles of 32 and 16", TS_MASK_CLEAR, {2, 12, 20}, 0, 0, {0}, {0}, {0}, {0}, 4.5, {1, 8, 8}, 64, 2, 32, 0, 0},
        /* a window deep in t, at stride = the tile on frames the tiles do not divide (Wan's
         * shape, small): the frames innermost, edge tiles padded */
        {"gna 7x10x13 w5x4x8 stride 1x4x4, text", TS_MASK_NA, {7, 10, 13}, 5, 3, {5, 4, 8}, {1, 4, 4}, {1, 1, 1}, {0, 0, 0}, 0, {1, 4, 4}, 16, 2, 16, 0, 0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        ts_mask m;
        memset(&m, 0, sizeof m);
        m.kind = cs[i].kind;
        memcpy(m.grid, cs[i].g, sizeof m.grid);
        m.img0 = cs[i].img0;
        memcpy(m.window, cs[i].w, sizeof m.window), memcpy(m.stride, cs[i].s, sizeof m.stride);
        memcpy(m.dilation, cs[i].d, sizeof m.dilation), memcpy(m.causal, cs[i].causal, sizeof m.causal);
        m.radius = cs[i].r;
        int64_t n = cs[i].img0 + cs[i].g[0] * cs[i].g[1] * cs[i].g[2] + cs[i].tail;
        /* each in the plain tile order, the padded one (edge tiles padded to whole blocks,
         * where the tile is a multiple of the block), that in sub-tiles, and that nested */
        for (int pad = 0; pad < 4; pad++) {
            if (pad == 1 && ts_plan_tile_len(&m, n, cs[i].tile, cs[i].blk) == n) continue;
            ts_attn_plan p;
            ts_plan_store st = {0};
            char what[96];
            snprintf(what, sizeof what, "%s%s", cs[i].what,
                     pad == 3 ? ", padded sub-tiles, nested" : pad == 2 ? ", padded sub-tiles" : pad ? ", padded tiles" : "");
            if (build_and_check(&p, &st, &m, n, cs[i].tile, cs[i].blk, pad, what)) {
                kernel_vs_ref(c, &p, cs[i].H, cs[i].D, cs[i].h0, cs[i].h1, what);
                char w2[128];
                if ((i + pad) % 2 == 1) { /* with a linear branch, either variant: the kernel adds it */
                    float *lw = malloc((size_t)(cs[i].D * (cs[i].D + 1)) * 4);
                    ts_test_randn(lw, cs[i].D * (cs[i].D + 1), 90 + (uint64_t)i, 0.3f);
                    for (int all = 1; all >= 0; all--) {
                        p.lin_w = lw, p.lin_b = lw + cs[i].D * cs[i].D, p.lin_all = all;
                        snprintf(w2, sizeof w2, "%s, linear branch over %s", what, all ? "all keys" : "the rest");
                        kernel_vs_ref(c, &p, cs[i].H, cs[i].D, cs[i].h0, cs[i].h1, w2);
                    }
                    p.lin_w = p.lin_b = NULL, p.lin_all = 0;
                    free(lw);
                }
                snprintf(w2, sizeof w2, "bf16 %s", what);
                p.h0 = p.h1 = 0;
                if ((i + pad) % 2 == 0) bf16_case(c, &p, cs[i].H, cs[i].D, w2);
            }
            ts_plan_store_free(&st);
        }
    }
}

/* A window over the whole frame in the padded order: each query block lists its frame's
 * blocks, every one full (its padding aside), so that the kernel runs none through the mask. */
static void test_padded_full(void) {
    ts_mask m;
    memset(&m, 0, sizeof m);
    m.kind = TS_MASK_NA;
    const int64_t g[3] = {2, 5, 7}, n = 70;
    memcpy(m.grid, g, sizeof m.grid);
    for (int i = 0; i < 3; i++) m.window[i] = i ? (int)g[i] : 1, m.stride[i] = m.dilation[i] = 1;
    const int tile[3] = {1, 4, 4};
    ts_attn_plan p;
    ts_plan_store st = {0};
    if (!build_and_check(&p, &st, &m, n, tile, 16, 1, "gna window = a frame, padded tiles")) return;
    int n_full = 0, n_list = p.exact_ptr[p.n_qblk];
    for (int i = 0; i < n_list; i++) n_full += p.exact_full[i];
    /* 2 frames of 4 tiles (16, 12, 4, 3 tokens): 8 blocks, 4 to a frame */
    TS_CHECK(p.n_kern == 128 && n_list == 32 && n_full == 32, "%lld slots, %d blocks listed, %d full; want 128, 32, 32",
             (long long)p.n_kern, n_list, n_full);
    ts_plan_store_free(&st);
}

/* ------------------------------------------------------------------ DraftAttention */

static void test_draft(ts_ctx *c) {
    /* the region order: every token once, each slot inside its region, a region's padding
     * after all its tokens (the kernel then runs edge regions as full, shorter blocks) */
    int64_t g[3] = {2, 10, 13};
    int pool[2] = {4, 8};
    int32_t *perm = NULL;
    int64_t n = 2 * 10 * 13, nk = ts_draft_perm(g, pool, &perm);
    TS_CHECK(nk == 2 * 3 * 2 * 32, "n_kern %lld", (long long)nk);
    char *seen = calloc((size_t)n, 1);
    int ok = 1, pad = 0;
    for (int64_t i = 0; i < nk; i++) {
        int64_t tok = perm[i], reg = i / 32;
        if (tok < 0) {
            pad++;
            continue;
        }
        ok &= i % 32 == 0 || perm[i - 1] >= 0; /* no token after a padding slot of its region */
        ok &= !seen[tok];
        seen[tok] = 1;
        int64_t t = tok / 130, y = (tok / 13) % 10, x = tok % 13;
        ok &= reg == (t * 3 + y / 4) * 2 + x / 8;
    }
    for (int64_t i = 0; i < n; i++) ok &= seen[i];
    TS_CHECK(ok && pad == nk - n, "draft region order (%d padding slots)", pad);
    free(seen), free(perm);

    /* kernel vs the float64 executor on draft plans; the threshold keeps >= S² - k + 1 */
    const int64_t H = 2, D = 16, HD = H * D;
    float *q = malloc((size_t)(n * HD) * 4), *k = malloc((size_t)(n * HD) * 4), *v = malloc((size_t)(n * HD) * 4);
    float *out = malloc((size_t)(n * HD) * 4), *ref = malloc((size_t)(n * HD) * 4);
    ts_test_randn(q, n * HD, 21, 1.0f), ts_test_randn(k, n * HD, 22, 1.0f), ts_test_randn(v, n * HD, 23, 1.0f);
    ts_draft_params dp = {{4, 8}, 0.6};
    ts_err e = {0};
    float *heads = malloc((size_t)(n * HD) * 4); /* every head's reference output */
    for (int64_t h = 0; h < H; h++) {
        ts_attn_plan p;
        ts_plan_store st = {0};
        TS_CHECK(ts_draft_plan(g, H, D, h, &dp, q, k, &p, &st, &e) == TS_OK, "draft plan: %s", e.msg);
        int64_t S = p.n_qblk, kept = p.exact_ptr[S], diag = 0;
        for (int64_t a2 = 0; a2 < S; a2++)
            for (int32_t li = p.exact_ptr[a2]; li < p.exact_ptr[a2 + 1]; li++) diag += p.exact_idx[li] == a2;
        TS_CHECK(kept >= S * S - (int64_t)floor(0.6 * S * S) + 1 - S && kept < S * S && diag == S,
                 "head %lld keeps %lld of %lld region pairs, %lld diagonal", (long long)h, (long long)kept,
                 (long long)(S * S), (long long)diag);
        for (int64_t i = 0; i < n * HD; i++) out[i] = ref[i] = 7.0f;
        TS_CHECK(ts_attn_ref(&p, q, k, v, ref) == 0, "ref");
        TS_CHECK(c->backend->attn(c, &p, q, k, v, out) == TS_OK, "draft kernel");
        ts_test_compare("draft kernel vs float64 executor", out, ref, n * HD, 1e-5, NULL);
        for (int64_t t = 0; t < n; t++) memcpy(heads + t * HD + h * D, ref + t * HD + h * D, (size_t)D * 4);
        ts_plan_store_free(&st);
    }
    /* ts_draft_attention runs the heads' plans joined into one (a list per head) */
    double dens = 0;
    for (int64_t i = 0; i < n * HD; i++) out[i] = 7.0f;
    TS_CHECK(ts_draft_attention(c, g, n, 0, H, D, 0, H, &dp, q, k, v, NULL, out, &dens, &e) == TS_OK, "draft: %s", e.msg);
    ts_test_compare("draft, heads [0, 2) in one call vs float64 executor", out, heads, n * HD, 1e-5, NULL);
    TS_CHECK(dens > 0 && dens < 1, "draft density %g", dens);
    for (int64_t i = 0; i < n * HD; i++) out[i] = 7.0f;
    for (int64_t t = 0; t < n; t++)
        for (int64_t d = 0; d < D; d++) heads[t * HD + d] = 7.0f; /* head 0 not run: untouched */
    TS_CHECK(ts_draft_attention(c, g, n, 0, H, D, 1, H, &dp, q, k, v, NULL, out, &dens, &e) == TS_OK, "draft: %s", e.msg);
    ts_test_compare("draft, heads [1, 2) vs float64 executor", out, heads, n * HD, 1e-5, NULL);
    TS_CHECK(ts_draft_attention(c, g, n, 0, H, D, 1, 1, &dp, q, k, v, NULL, out, &dens, &e) == TS_ERR_INVALID_ARG,
             "draft with no heads is refused");
    { /* 1 x 1 regions on 65 x 64 tokens: 4,160 regions, over the 4,096 whose maps are planned */
        const int64_t gb[3] = {1, 65, 64}, nb = 65 * 64;
        const ts_draft_params d1 = {{1, 1}, 0.5};
        float *qb = malloc((size_t)nb * 16 * 4), *ob = malloc((size_t)nb * 16 * 4);
        ts_test_randn(qb, nb * 16, 51, 1.0f);
        TS_CHECK(ts_draft_attention(c, gb, nb, 0, 1, 16, 0, 1, &d1, qb, qb, qb, NULL, ob, NULL, &e) == TS_ERR_INVALID_ARG &&
                     strstr(e.msg, "pool 1x1 makes 4160 regions on this 1x65x64 grid (at most 4096)"),
                 "too many regions: %s", e.msg);
        free(qb), free(ob);
    }
    free(heads);
    /* the selection equals the reference's operations (tools/golden/make_draft.py) */
    ts_st_file *fx = NULL;
    if (ts_st_open(&fx, ts_test_fixture("draft_select.safetensors"), &e) == TS_OK) {
        const ts_tensor *fq = ts_st_find(fx, "q"), *fk = ts_st_find(fx, "k");
        struct { const char *name; ts_draft_params p; } dc[] = {{"p4x8_s60.keep", {{4, 8}, 0.6}},
                                                              {"p3x5_s85.keep", {{3, 5}, 0.85}}};
        int64_t fH = fq->shape[1], fD = fq->shape[2];
        for (int ci = 0; ci < 2; ci++) {
            const ts_tensor *keep = ts_st_find(fx, dc[ci].name);
            int64_t S = keep->shape[1];
            int diff = 0;
            for (int64_t h = 0; h < fH; h++) {
                ts_attn_plan p;
                ts_plan_store st = {0};
                ts_draft_plan(g, fH, fD, h, &dc[ci].p, fq->data, fk->data, &p, &st, &e);
                TS_CHECK(p.n_qblk == S, "%s: %d regions, reference %lld", dc[ci].name, p.n_qblk, (long long)S);
                for (int64_t a2 = 0; a2 < S && p.n_qblk == S; a2++) {
                    char row[1024] = {0};
                    for (int32_t li = p.exact_ptr[a2]; li < p.exact_ptr[a2 + 1]; li++) row[p.exact_idx[li]] = 1;
                    for (int64_t b2 = 0; b2 < S; b2++) diff += row[b2] != ((const int32_t *)keep->data)[(h * S + a2) * S + b2];
                }
                ts_plan_store_free(&st);
            }
            TS_CHECK(diff == 0, "%s: %d region pairs differ from the reference selection", dc[ci].name, diff);
        }
        ts_st_close(fx);
    } else {
        TS_CHECK(0, "draft fixture: %s", e.msg);
    }
    /* sparsity 0 keeps everything: dense attention */
    ts_attn_plan dense = ts_attn_plan_dense(n, n, H, D, 64, 64);
    ts_attn_ref(&dense, q, k, v, ref);
    dp.sparsity = 0;
    TS_CHECK(ts_draft_attention(c, g, n, 0, H, D, 0, H, &dp, q, k, v, NULL, out, &dens, &e) == TS_OK, "draft: %s", e.msg);
    ts_test_compare("draft at sparsity 0 vs dense", out, ref, n * HD, 1e-5, NULL);
    TS_CHECK(fabs(dens - 1.0) < 1e-12, "density at sparsity 0: %g", dens);
    free(q), free(k), free(v), free(out), free(ref);

    /* regions that only see themselves: q = k = a one-hot per region makes the draft map
     * the identity; at sparsity 13/16 only the diagonal survives, and every token's output is
     * its region's mean of v */
    int64_t g2[3] = {1, 8, 8}, n2 = 64, H2 = 1, D2 = 8;
    float *q2 = calloc((size_t)(n2 * D2), 4), *v2 = malloc((size_t)(n2 * D2) * 4), *o2 = malloc((size_t)(n2 * D2) * 4);
    float *want = calloc((size_t)(n2 * D2), 4);
    ts_test_randn(v2, n2 * D2, 24, 1.0f);
    for (int64_t t = 0; t < n2; t++) q2[t * D2 + ((t / 8) / 4) * 2 + (t % 8) / 4] = 10.0f;
    for (int64_t t = 0; t < n2; t++)
        for (int64_t u = 0; u < n2; u++)
            if ((t / 8) / 4 == (u / 8) / 4 && (t % 8) / 4 == (u % 8) / 4)
                for (int64_t d = 0; d < D2; d++) want[t * D2 + d] += v2[u * D2 + d] / 16.0f;
    ts_draft_params dp2 = {{4, 4}, 13.0 / 16.0};
    TS_CHECK(ts_draft_attention(c, g2, n2, 0, H2, D2, 0, 1, &dp2, q2, q2, v2, NULL, o2, &dens, &e) == TS_OK, "draft: %s", e.msg);
    ts_test_compare("draft diagonal: region means", o2, want, n2 * D2, 1e-5, NULL);
    TS_CHECK(fabs(dens - 4.0 * 16 * 16 / (64.0 * 64)) < 1e-12, "diagonal density %g", dens);
    free(q2), free(v2), free(o2), free(want);
}

/* ------------------------------------------------------------------ SLA */

/* Selection and output against the reference's operations (tools/golden/make_sla.py). */
static void test_sla(ts_ctx *c) {
    ts_st_file *f = NULL;
    ts_err e = {0};
    if (ts_st_open(&f, ts_test_fixture("sla.safetensors"), &e) != TS_OK) {
        TS_CHECK(0, "sla fixture: %s", e.msg);
        return;
    }
    const ts_tensor *q = ts_st_find(f, "q"), *k = ts_st_find(f, "k"), *v = ts_st_find(f, "v");
    const ts_tensor *pw = ts_st_find(f, "proj_w"), *pb = ts_st_find(f, "proj_b"), *sel = ts_st_find(f, "sel");
    const int64_t n = q->shape[0], H = q->shape[1], D = q->shape[2], nq = sel->shape[1], nk = sel->shape[2];
    ts_sla_params sp = {0.3, 64, 32, 0};
    int diff = 0;
    for (int64_t h = 0; h < H; h++) {
        ts_attn_plan p;
        ts_plan_store st = {0};
        TS_CHECK(ts_sla_plan(n, H, D, h, &sp, q->data, k->data, &p, &st, &e) == TS_OK, "sla plan: %s", e.msg);
        TS_CHECK(p.n_qblk == nq && p.n_kblk == nk, "sla blocks %dx%d", p.n_qblk, p.n_kblk);
        for (int64_t a2 = 0; a2 < nq && p.n_qblk == nq; a2++) {
            char row[64] = {0};
            for (int32_t li = p.exact_ptr[a2]; li < p.exact_ptr[a2 + 1]; li++) row[p.exact_idx[li]] = 1;
            for (int64_t b2 = 0; b2 < nk; b2++) diff += row[b2] != ((const int32_t *)sel->data)[(h * nq + a2) * nk + b2];
        }
        ts_plan_store_free(&st);
    }
    TS_CHECK(diff == 0, "sla: %d block pairs differ from the reference selection", diff);
    float *out = malloc((size_t)(n * H * D) * 4), *sparse = malloc((size_t)(n * H * D) * 4);
    const char *names[2] = {"out_all", "out_complement"};
    for (int variant = 0; variant < 2; variant++) {
        sp.complement = variant;
        double dens = 0;
        TS_CHECK(ts_sla_attention(c, n, H, D, 0, H, &sp, q->data, k->data, v->data, NULL, pw->data, pb->data, out, &dens, &e) == TS_OK,
                 "sla: %s", e.msg);
        char what[64];
        snprintf(what, sizeof what, "sla %s vs the reference", names[variant]);
        ts_test_compare(what, out, ts_st_find(f, names[variant])->data, n * H * D, 1e-4, NULL);
        TS_CHECK(dens > 0.2 && dens < 0.5, "sla density %g", dens);
    }
    /* without proj_l: the sparse branch alone, as the float64 executor runs the plan */
    TS_CHECK(ts_sla_attention(c, n, H, D, 0, H, &sp, q->data, k->data, v->data, NULL, NULL, NULL, out, NULL, &e) == TS_OK, "sla");
    for (int64_t h = 0; h < H; h++) {
        ts_attn_plan p;
        ts_plan_store st = {0};
        ts_sla_plan(n, H, D, h, &sp, q->data, k->data, &p, &st, &e);
        ts_attn_ref(&p, q->data, k->data, v->data, sparse);
        ts_plan_store_free(&st);
    }
    ts_test_compare("sla without proj_l = top-k block-sparse", out, sparse, n * H * D, 1e-5, NULL);
    /* heads [1, H) alone: head 0's columns untouched, the others as in the call over all heads */
    {
        float *part = malloc((size_t)(n * H * D) * 4);
        sp.complement = 0;
        TS_CHECK(ts_sla_attention(c, n, H, D, 0, H, &sp, q->data, k->data, v->data, NULL, pw->data, pb->data, out,
                                  NULL, &e) == TS_OK, "sla: %s", e.msg);
        for (int64_t i = 0; i < n * H * D; i++) part[i] = 7.0f;
        TS_CHECK(ts_sla_attention(c, n, H, D, 1, H, &sp, q->data, k->data, v->data, NULL, pw->data, pb->data, part,
                                  NULL, &e) == TS_OK, "sla heads [1, H): %s", e.msg);
        int bad = 0;
        for (int64_t t = 0; t < n; t++)
            for (int64_t i = 0; i < H * D; i++) bad += part[t * H * D + i] != (i < D ? 7.0f : out[t * H * D + i]);
        TS_CHECK(bad == 0, "sla heads [1, H): %d values differ from the call over all heads", bad);
        TS_CHECK(ts_sla_attention(c, n, H, D, 1, 1, &sp, q->data, k->data, v->data, NULL, NULL, NULL, part, NULL, &e) ==
                     TS_ERR_INVALID_ARG, "sla with no heads is refused");
        free(part);
    }
    /* against the float64 executor running each head's plan with its linear branch (plan.lin_w):
     * TurboDiffusion's variant, and the paper's with most blocks selected (the kernel adds the
     * others' sums up) and with few (the total less the selected blocks' sums) */
    const struct { double topk; int complement, threads; } lv[] = {{0.3, 0, 0}, {0.7, 1, 0}, {0.2, 1, 0},
                                                                   {0.3, 0, 1}, {0.2, 1, 1}, {0.2, 1, 3},
                                                                   {0.3, 0, 3}};
    for (int vi = 0; vi < (int)(sizeof lv / sizeof lv[0]); vi++) {
        /* the context's threads, then one and three (the all-keys variant's 300 keys are two
         * chunks of rows: one thread sums none) */
        ts_sla_params sc = {lv[vi].topk, 64, 32, lv[vi].complement};
        ts_ctx ct = *c;
        if (lv[vi].threads) ct.n_threads = lv[vi].threads;
        ts_workspace ws = {0}; /* NaN bytes in every slot: the branch's sums must be written before read */
        ts_test_dirty_workspace(&ws, 4u << 20);
        ct.ws = &ws;
        TS_CHECK(ts_sla_attention(&ct, n, H, D, 0, H, &sc, q->data, k->data, v->data, NULL, pw->data, pb->data, out,
                                  NULL, &e) == TS_OK, "sla: %s", e.msg);
        ts_workspace_free(&ws);
        int most = 1;
        for (int64_t h = 0; h < H; h++) {
            ts_attn_plan p;
            ts_plan_store st = {0};
            ts_sla_plan(n, H, D, h, &sc, q->data, k->data, &p, &st, &e);
            p.lin_w = pw->data, p.lin_b = pb->data, p.lin_all = !sc.complement;
            TS_CHECK(ts_attn_ref(&p, q->data, k->data, v->data, sparse) == 0, "ref");
            for (int64_t a2 = 0; a2 < p.n_qblk; a2++) most &= 2 * (p.exact_ptr[a2 + 1] - p.exact_ptr[a2]) > p.n_kblk;
            ts_plan_store_free(&st);
        }
        char what[96];
        snprintf(what, sizeof what, "sla %s, topk %g, %d threads, vs the executor's linear branch",
                 sc.complement ? "complement" : "all keys", sc.topk, ct.n_threads);
        ts_test_compare(what, out, sparse, n * H * D, 1e-5, NULL);
        if (sc.complement) TS_CHECK(most == (sc.topk > 0.5), "topk %g: most blocks selected: %d", sc.topk, most);
    }
    { /* the kernel adds the linear branch, on bf16 operands only from fp32 ones of its own
       * (plan.lin_q, lin_k, lin_v): it refuses bf16 operands without them rather than drop the
       * branch. A dense plan names every block: the paper's variant then adds the bias alone. */
        ts_attn_plan p = ts_attn_plan_dense(n, n, H, D, 64, 32);
        p.lin_w = pw->data, p.lin_b = pb->data;
        TS_CHECK(c->backend->attn(c, &p, q->data, k->data, v->data, out) == TS_OK, "dense plan, the paper's branch");
        TS_CHECK(ts_attn_ref(&p, q->data, k->data, v->data, sparse) == 0, "ref");
        ts_test_compare("dense plan, the paper's branch: the bias alone", out, sparse, n * H * D, 1e-5, NULL);
        p.lin_b = NULL;
        TS_CHECK(ts_attn_ref(&p, q->data, k->data, v->data, sparse) == 0, "ref");
        TS_CHECK(c->backend->attn(c, &p, q->data, k->data, v->data, out) == TS_OK, "dense plan, no bias");
        ts_test_compare("dense plan, the paper's branch without a bias: dense attention", out, sparse, n * H * D, 1e-5,
                        NULL);
        p.lin_all = 1, p.in_bf16 = 1;
        TS_CHECK(c->backend->attn(c, &p, q->data, k->data, v->data, out) == TS_ERR_UNSUPPORTED,
                 "the kernel refuses a linear branch on bf16 operands without fp32 ones");
    }
    { /* bf16 kernel operands: the kernel adds the all-keys branch from the fp32 q, k, v
       * (plan.lin_q, lin_k, lin_v): the sparse branch on the bf16 copies plus the executor's
       * linear term on the fp32 operands */
        const int64_t N = n * H * D;
        uint16_t *b = malloc((size_t)(3 * N) * 2);
        float *lin = malloc((size_t)N * 4), *bare = malloc((size_t)N * 4);
        float *tf = malloc((size_t)N * 4), *tb = malloc((size_t)N * 4), *r1 = malloc((size_t)N * 4);
        for (int64_t i = 0; i < N; i++)
            b[i] = ts_f32_to_bf16(((const float *)q->data)[i]), b[N + i] = ts_f32_to_bf16(((const float *)k->data)[i]),
            b[2 * N + i] = ts_f32_to_bf16(((const float *)v->data)[i]);
        const ts_attn_operands bo = {b, b + N, b + 2 * N, 1};
        sp.complement = 0;
        TS_CHECK(ts_sla_attention(c, n, H, D, 0, H, &sp, q->data, k->data, v->data, &bo, pw->data, pb->data, out,
                                  NULL, &e) == TS_OK, "sla bf16: %s", e.msg);
        TS_CHECK(ts_sla_attention(c, n, H, D, 0, H, &sp, q->data, k->data, v->data, &bo, NULL, NULL, bare, NULL,
                                  &e) == TS_OK, "sla bf16 without proj_l: %s", e.msg);
        for (int64_t h = 0; h < H; h++) { /* the linear term: the executor with the branch less without */
            ts_attn_plan p;
            ts_plan_store st = {0};
            ts_sla_plan(n, H, D, h, &sp, q->data, k->data, &p, &st, &e);
            ts_attn_ref(&p, q->data, k->data, v->data, sparse);
            p.lin_w = pw->data, p.lin_b = pb->data, p.lin_all = 1;
            ts_attn_ref(&p, q->data, k->data, v->data, lin);
            /* the executor on the bf16 plan, its branch from lin_q, lin_k, lin_v: the same term */
            p.in_bf16 = 1, p.lin_q = q->data, p.lin_k = k->data, p.lin_v = v->data;
            ts_attn_ref(&p, b, b + N, b + 2 * N, r1);
            p.lin_w = NULL;
            ts_attn_ref(&p, b, b + N, b + 2 * N, tb);
            for (int64_t t = 0; t < n; t++)
                for (int64_t d = 0; d < D; d++) {
                    const int64_t o = t * H * D + h * D + d;
                    bare[o] += lin[o] - sparse[o];
                    tf[o] = lin[o] - sparse[o], tb[o] = r1[o] - tb[o];
                }
            ts_plan_store_free(&st);
        }
        ts_test_compare("executor, bf16 plan: the linear branch from lin_q, lin_k, lin_v", tb, tf, N, 1e-6, NULL);
        ts_test_compare("sla, bf16 operands: sparse branch on them, linear branch on fp32", out, bare, N, 1e-5, NULL);
        free(b), free(lin), free(bare), free(tf), free(tb), free(r1);
    }
    /* through a schedule, with the projection on the site: each variant, named by the rule
     * or (no 'variant') by the site, the checkpoint's */
    ts_attn_site site = {TS_ATTN_SELF, 0, 0, 1, {1, 1, n}, 500.0f, pw->data, pb->data, 0, 0};
    for (int run = 0; run < 4; run++) {
        const int variant = run & 1, named = run < 2;
        ts_attn_schedule *s = NULL;
        ts_attn_schedule_from_spec(&s, !named ? "sla:topk=0.3,block_q=64,block_k=32"
                                       : variant ? "sla:topk=0.3,block_q=64,block_k=32,variant=complement"
                                                 : "sla:topk=0.3,block_q=64,block_k=32,variant=all", &e);
        site.lin_complement = named ? !variant : variant; /* a named variant overrides the site's */
        TS_CHECK(s && ts_attention(c, s, &site, n, n, H, D, q->data, k->data, v->data, out, &e) == TS_OK,
                 "sla schedule: %s", e.msg);
        char what[96];
        snprintf(what, sizeof what, "sla %s (%s) through a schedule vs the reference", names[variant],
                 named ? "the rule's" : "the site's");
        ts_test_compare(what, out, ts_st_find(f, names[variant])->data, n * H * D, 1e-4, NULL);
        ts_attn_schedule_free(s);
    }
    free(out), free(sparse);
    ts_st_close(f);
}

/* SLA's top-k ranks by score and breaks ties toward the lower block index, as the
 * reference's sort does: every key block holds the same integer rows (their centred means
 * are exactly zero) but block 6, which adds 1 to dim 0 where every query is positive, so each
 * query block takes block 6 and then blocks 0 and 1 of the seven tied ones. */
static void test_sla_ties(void) {
    enum { n = 256, H = 2, D = 16, B = 32 };
    float *q = malloc(sizeof(float) * n * H * D), *k = malloc(sizeof(float) * n * H * D), base[B * H * D];
    ts_test_randn(q, n * H * D, 31, 1.0f);
    ts_test_randn(base, B * H * D, 32, 1.5f);
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < H * D; i++) {
            k[t * H * D + i] = roundf(base[(t % B) * H * D + i]) + (t / B == 6 && i % D == 0);
            if (i % D == 0) q[t * H * D + i] = 3.0f + 0.5f * q[t * H * D + i];
        }
    ts_sla_params sp = {3.0 / 8.0, B, B, 0};
    int bad = 0;
    for (int64_t h = 0; h < H; h++) {
        ts_attn_plan p;
        ts_plan_store st = {0};
        ts_err e = {0};
        TS_CHECK(ts_sla_plan(n, H, D, h, &sp, q, k, &p, &st, &e) == TS_OK, "sla plan: %s", e.msg);
        for (int32_t a = 0; a < p.n_qblk; a++) {
            const int32_t *ix = p.exact_idx + p.exact_ptr[a];
            bad += p.exact_ptr[a + 1] - p.exact_ptr[a] != 3 || ix[0] != 0 || ix[1] != 1 || ix[2] != 6;
        }
        ts_plan_store_free(&st);
    }
    TS_CHECK(bad == 0, "sla top-k with ties: %d query blocks did not take blocks 0, 1 and 6", bad);
    free(q), free(k);
}

/* SLA's top-k against a full sort, with many ties: q and k in {-1, 0, 1}, so every block
 * mean, centred mean and block score is exact in double and equal scores are common. For each
 * query block the list must be the first kc blocks by (higher score, lower index), ascending. */
static void test_sla_topk_sorted(void) {
    enum { n = 512, D = 8, B = 32, NB = n / B };
    float *q = malloc(sizeof(float) * n * D), *k = malloc(sizeof(float) * n * D);
    ts_test_randn(q, n * D, 41, 1.0f), ts_test_randn(k, n * D, 42, 1.0f);
    for (int64_t i = 0; i < n * D; i++) q[i] = q[i] > 0.5f ? 1.0f : q[i] < -0.5f ? -1.0f : 0.0f;
    for (int64_t i = 0; i < n * D; i++) k[i] = k[i] > 0.5f ? 1.0f : k[i] < -0.5f ? -1.0f : 0.0f;
    double pq[NB][D] = {{0}}, pk[NB][D] = {{0}}, km[D] = {0};
    for (int64_t t = 0; t < n; t++)
        for (int64_t d = 0; d < D; d++) {
            pq[t / B][d] += q[t * D + d] / B, pk[t / B][d] += k[t * D + d] / B;
            km[d] += k[t * D + d] / n;
        }
    const double topks[] = {1.0 / NB, 0.25, 0.5, 13.0 / NB, 1.0};
    int bad = 0, ties = 0;
    for (int ti = 0; ti < (int)(sizeof topks / sizeof topks[0]); ti++) {
        ts_sla_params sp = {topks[ti], B, B, 0};
        ts_attn_plan p;
        ts_plan_store st = {0};
        ts_err e = {0};
        TS_CHECK(ts_sla_plan(n, 1, D, 0, &sp, q, k, &p, &st, &e) == TS_OK, "sla plan: %s", e.msg);
        const int kc = (int)(topks[ti] * NB);
        for (int a = 0; a < NB; a++) {
            double sc[NB];
            int ord[NB];
            for (int b = 0; b < NB; b++) {
                sc[b] = 0, ord[b] = b;
                for (int d = 0; d < D; d++) sc[b] += pq[a][d] * (pk[b][d] - km[d]);
            }
            for (int i = 1; i < NB; i++) /* insertion sort: higher score first, ties to the lower index */
                for (int j = i; j > 0; j--) {
                    const int x = ord[j], y = ord[j - 1];
                    if (!(sc[x] > sc[y] || (sc[x] == sc[y] && x < y))) break;
                    ord[j] = y, ord[j - 1] = x;
                }
            if (kc < NB) ties += sc[ord[kc - 1]] == sc[ord[kc]];
            char want[NB] = {0};
            for (int r = 0; r < kc; r++) want[ord[r]] = 1;
            int got = p.exact_ptr[a + 1] - p.exact_ptr[a], prev = -1;
            bad += got != kc;
            for (int32_t li = p.exact_ptr[a]; li < p.exact_ptr[a + 1]; li++) {
                const int b = p.exact_idx[li];
                bad += !want[b] || b <= prev;
                prev = b;
            }
        }
        ts_plan_store_free(&st);
    }
    TS_CHECK(bad == 0, "sla top-k: %d differences from a full sort", bad);
    TS_CHECK(ties > 0, "sla top-k test: no tie at the cut (the case it is for)");
    free(q), free(k);
}

/* ------------------------------------------------------------------ schedule */

static ts_attn_schedule *parse(const char *json, ts_status want, const char *needle) {
    ts_attn_schedule *s = NULL;
    ts_err e = {0};
    ts_status st = ts_attn_schedule_parse(&s, json, "sched.json", &e);
    TS_CHECK(st == want && (!needle || strstr(e.msg, needle)), "schedule %.60s: status %s, msg '%s' (want '%s')",
             json, ts_status_str(st), e.msg, needle ? needle : "");
    if (want != TS_OK) ts_attn_schedule_free(s), s = NULL;
    return s;
}

static void test_schedule_errors(ts_ctx *ctx) {
    struct { const char *json; ts_status st; const char *needle; } c[] = {
        {"{\"rules\": [{\"method\": \"dense\"}]}", TS_OK, NULL},
        {"not json", TS_ERR_FORMAT, "not valid JSON"},
        {"{\"rule\": []}", TS_ERR_FORMAT, "unknown top-level field 'rule'"},
        {"{\"rules\": {}}", TS_ERR_FORMAT, "'rules' must be a list"},
        {"{\"rules\": [{\"method\": \"dense\"}, {\"method\": \"fancy\"}]}", TS_ERR_FORMAT, "rule 2: unknown method 'fancy'"},
        {"{\"rules\": [{\"layers\": [0]}]}", TS_ERR_FORMAT, "rule 1: 'method' is missing"},
        {"{\"rules\": [{\"method\": \"paro\"}]}", TS_ERR_FORMAT, "rule 1: method paro needs 'calibration'"},
        {"{\"rules\": [{\"method\": \"paro\", \"params\": {\"calibration\": \"/nonexistent/c.safetensors\"}}]}",
         TS_ERR_IO, "rule 1: 'calibration': /nonexistent/c.safetensors: cannot open"},
        {"{\"rules\": [{\"method\": \"paro\", \"params\": {\"calibration\": 3}}]}", TS_ERR_FORMAT,
         "'calibration' must be a file name"},
        {"{\"rules\": [{\"method\": \"sla\", \"params\": {\"variant\": \"half\"}}]}", TS_ERR_FORMAT, "'variant' must be"},
        {"{\"rules\": [{\"method\": \"sla\", \"params\": {\"topk\": 0}}]}", TS_ERR_FORMAT, "'topk' must be"},
        {"{\"rules\": [{\"method\": \"sla\", \"params\": {\"block_q\": 100}}]}", TS_ERR_FORMAT, "'block_q' must be a multiple of 16"},
        {"{\"rules\": [{\"method\": \"draft\", \"params\": {\"pool\": [16, 32]}}]}", TS_ERR_FORMAT, "'pool' must be"},
        {"{\"rules\": [{\"method\": \"draft\", \"params\": {\"sparsity\": 1.0}}]}", TS_ERR_FORMAT, "'sparsity'"},
        {"{\"rules\": [{\"method\": \"draft\", \"params\": {\"window\": 3}}]}", TS_ERR_FORMAT, "method draft has no parameter 'window'"},
        {"{\"rules\": [{\"method\": \"gna\", \"layers\": [\"5-2\"]}]}", TS_ERR_FORMAT, "rule 1: 'layers' entry 1"},
        {"{\"rules\": [{\"method\": \"gna\", \"steps\": [-1]}]}", TS_ERR_FORMAT, "rule 1: 'steps' entry 1"},
        {"{\"rules\": [{\"method\": \"gna\", \"layers\": [0, 1e89]}]}", TS_ERR_FORMAT, "rule 1: 'layers' entry 2"},
        {"{\"rules\": [{\"method\": \"gna\", \"steps\": {\"fraction\": [0.5, 0.2]}}]}", TS_ERR_FORMAT, "'steps.fraction'"},
        {"{\"rules\": [{\"method\": \"gna\", \"timesteps\": [0, 2000]}]}", TS_ERR_FORMAT, "'timesteps'"},
        {"{\"rules\": [{\"method\": \"gna\", \"params\": {\"window\": [3, 0, 7]}}]}", TS_ERR_FORMAT, "rule 1: 'window' entry 2"},
        {"{\"rules\": [{\"method\": \"gna\", \"params\": {\"radius\": 3}}]}", TS_ERR_FORMAT, "method gna has no parameter 'radius'"},
        {"{\"rules\": [{\"method\": \"clear\", \"params\": {\"radius\": -1}}]}", TS_ERR_FORMAT, "'radius'"},
        {"{\"rules\": [{\"method\": \"gna\", \"params\": {\"block\": 20}}]}", TS_ERR_FORMAT, "multiple of 16"},
        {"{\"rules\": [{\"method\": \"gna\", \"params\": {\"causal\": [true, 1, false]}}]}", TS_ERR_FORMAT, "'causal' entry 2"},
        {"{\"rules\": [{\"method\": \"gna\", \"attention\": \"cross\"}]}", TS_ERR_FORMAT, "needs self-attention"},
        {"{\"rules\": [{\"method\": \"dense\", \"colour\": 1}]}", TS_ERR_FORMAT, "rule 1: unknown field 'colour'"},
        {"{\"rules\": [{\"method\": \"dense\", \"heads\": []}]}", TS_ERR_FORMAT, "'heads' is an empty list"},
        {"{\"rules\": [{\"method\": \"dense\", \"params\": {\"precision\": \"bf16\"}}]}", TS_OK, NULL},
        {"{\"rules\": [{\"method\": \"gna\", \"params\": {\"precision\": \"fp32\"}}]}", TS_OK, NULL},
        {"{\"rules\": [{\"method\": \"dense\", \"params\": {\"precision\": \"fp16\"}}]}", TS_ERR_FORMAT,
         "rule 1: 'precision' must be \"fp32\""},
        {"{\"rules\": [{\"method\": \"sla\", \"params\": {\"precision\": 16}}]}", TS_ERR_FORMAT, "'precision' must be"},
        {"{\"rules\": [{\"method\": \"dense\"}, 3]}", TS_ERR_FORMAT, "rule 2 is not an object"},
        {"{\"rules\": [{\"method\": \"gna\", \"params\": [3]}]}", TS_ERR_FORMAT, "rule 1: 'params' must be an object"},
        {"{\"rules\": [{\"method\": \"dense\", \"attention\": \"both\"}]}", TS_ERR_FORMAT,
         "rule 1: 'attention' must be \"self\" or \"cross\""},
        {"{\"rules\": [{\"method\": \"gna\", \"steps\": {\"first\": 3}}]}", TS_ERR_FORMAT,
         "rule 1: 'steps' as an object takes only \"fraction\""},
        {"{\"rules\": [{\"method\": \"gna\", \"timesteps\": {\"above\": 1200}}]}", TS_ERR_FORMAT,
         "rule 1: 'timesteps' as an object is {\"above\": t}"},
        {"{\"rules\": [{\"method\": \"gna\", \"params\": {\"tile\": [1, 2048, 8]}}]}", TS_ERR_FORMAT,
         "rule 1: 'tile' entry 2 must be an integer in [1, 1024]"},
        {"{\"rules\": [{\"method\": \"gna\", \"params\": {\"causal\": \"yes\"}}]}", TS_ERR_FORMAT,
         "rule 1: 'causal' must be true/false or three of them"},
        {"{\"rules\": [{\"method\": \"sla\", \"params\": {\"block_k\": 272}}]}", TS_ERR_FORMAT,
         "'block_k' must be a multiple of 16 in [16, 256]"},
        {"{\"rules\": [{\"method\": \"sla\", \"params\": {\"topk\": 1.5}}]}", TS_ERR_FORMAT, "'topk' must be a number in (0, 1]"},
        {"{\"rules\": [{\"method\": \"gna\", \"params\": {\"window\": 3, \"tile\": 8, \"window\": 5}}]}",
         TS_ERR_FORMAT, "rule 1: parameter 'window' is given twice"},
        {"{\"rules\": [{\"method\": \"dense\"}, {\"layers\": [1], \"method\": \"gna\", \"layers\": [2]}]}", TS_ERR_FORMAT,
         "rule 2: 'layers' is given twice"},
        {"{\"rules\": [{\"method\": \"dense\"}], \"rules\": []}", TS_ERR_FORMAT, "'rules' is given twice"},
        {"[{\"method\": \"dense\"}]", TS_ERR_FORMAT, "the schedule must be an object {\"rules\": [...]}"},
        {"{\"rules\": [{\"method\": \"gna\", \"params\": {\"stride\": 0}}]}", TS_ERR_FORMAT,
         "rule 1: 'stride' must be an integer in [1, "},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) ts_attn_schedule_free(parse(c[i].json, c[i].st, c[i].needle));
    ts_attn_schedule *s = NULL;
    ts_err e = {0};
    TS_CHECK(ts_attn_schedule_load(&s, "/nonexistent/s.json", &e) == TS_ERR_IO && strstr(e.msg, "/nonexistent/s.json"),
             "missing file: %s", e.msg);
    char big[64];
    snprintf(big, sizeof big, "/tmp/ts_sched_big_%d.json", (int)getpid());
    FILE *fb = fopen(big, "w");
    if (fb) { /* valid JSON, padded with spaces past 1 MB */
        fputs("{\"rules\": [{\"method\": \"dense\"}]", fb);
        for (int i = 0; i < (1 << 20); i++) fputc(' ', fb);
        fputs("}", fb);
        fclose(fb);
    }
    TS_CHECK(fb && ts_attn_schedule_load(&s, big, &e) == TS_ERR_FORMAT && strstr(e.msg, "larger than 1 MB"),
             "a schedule over 1 MB: %s", e.msg);
    remove(big);
    struct { const char *spec; ts_status st; const char *needle; } sp[] = {
        {"gna:window=3x7x7,stride=1,causal=1x0x0", TS_OK, NULL},
        {"clear:radius=4.5,block=32", TS_OK, NULL},
        {"dense", TS_OK, NULL},
        {"gna:window", TS_ERR_INVALID_ARG, "not key=value"},
        {"gna:window=3x7", TS_ERR_FORMAT, "'window' must be one integer or three"},
        {"gna:window=3xx7", TS_ERR_INVALID_ARG, "not a number or AxB[xC]"},
        {"draft:pool=8x16,sparsity=0.9", TS_OK, NULL},
        {"gna:radius=2", TS_ERR_FORMAT, "--attn gna:radius=2: rule 1: method gna has no parameter 'radius'"},
        {"nope", TS_ERR_FORMAT, "unknown method 'nope'"},
        {"clear:radius=3,precision=bf16", TS_OK, NULL},
        {"dense:precision=half", TS_ERR_FORMAT, "--attn dense:precision=half: rule 1: 'precision' must be"},
        {"draft:sparsity=0.5,sparsity=0.8", TS_ERR_FORMAT, "rule 1: parameter 'sparsity' is given twice"},
    };
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++) {
        ts_status st = ts_attn_schedule_from_spec(&s, sp[i].spec, &e);
        TS_CHECK(st == sp[i].st && (!sp[i].needle || strstr(e.msg, sp[i].needle)), "--attn %s: %s '%s'", sp[i].spec,
                 ts_status_str(st), e.msg);
        ts_attn_schedule_free(s);
        s = NULL;
    }
    /* before a run: a DraftAttention pool that makes more regions than a plan takes (the
     * rule that sets it, not the one before; 2 x 64 x 64 in 1 x 2 regions: 4,096, the most) */
    const int64_t g[3] = {2, 64, 64};
    struct { const char *json; ts_status st; const char *needle; } ck[] = {
        {"{\"rules\": [{\"method\": \"draft\", \"params\": {\"pool\": [1, 2]}}]}", TS_OK, NULL},
        {"{\"rules\": [{\"method\": \"draft\"}, {\"method\": \"draft\", \"layers\": [1], \"params\": "
         "{\"pool\": [1, 1]}}]}",
         TS_ERR_INVALID_ARG, "rule 2: 'pool' 1x1 makes 8192 regions on this video's 2x64x64 token grid (at most 4096)"},
    };
    /* the same pool in a call without that check (tessera-probe's, tessera-bench's): the
     * method's error, with the rule and the call named */
    {
        s = parse(ck[1].json, TS_OK, NULL);
        const int64_t n = g[0] * g[1] * g[2], D = 16;
        float *q = malloc((size_t)(3 * n * D) * sizeof *q), *o = malloc((size_t)(n * D) * sizeof *o);
        TS_CHECK(q && o && s, "room and the schedule for the run-time error");
        if (q && o && s) {
            ts_test_randn(q, 3 * n * D, 91, 1.0f);
            ts_attn_site site = {TS_ATTN_SELF, 1, 3, 10, {g[0], g[1], g[2]}, 500.0f, NULL, NULL, 0, 0};
            ts_status st = ts_attention(ctx, s, &site, n, n, 1, D, q, q + n * D, q + 2 * n * D, o, &e);
            const char *want = "attention schedule: rule 2 at layer 1, step 3: draft: pool 1x1 makes 8192 regions";
            TS_CHECK(st == TS_ERR_INVALID_ARG && !strncmp(e.msg, want, strlen(want)),
                     "the failing rule named, once: %s '%s'", ts_status_str(st), e.msg);
        }
        free(q), free(o);
        ts_attn_schedule_free(s);
    }
    for (size_t i = 0; i < sizeof ck / sizeof ck[0]; i++) {
        s = parse(ck[i].json, TS_OK, NULL);
        ts_status st = s ? ts_attn_schedule_check(s, 2, 2, g, &e) : TS_ERR_INVALID_ARG;
        TS_CHECK(s && st == ck[i].st && (!ck[i].needle || strstr(e.msg, ck[i].needle)), "check %zu: %s '%s'", i,
                 ts_status_str(st), e.msg);
        ts_attn_schedule_free(s);
        s = NULL;
    }
}

/* "precision": "bf16": the kernels run on bf16 copies of q, k, v. Dense (self and cross) equals
 * the kernel on copies made by the scalar conversion, bit for bit, which checks the copies and
 * where k and v sit in them. The other methods plan from the fp32 q, k either way, so their
 * bf16 runs differ from their fp32 runs by the rounding of the operands to bf16 alone (and the
 * bf16 kernels' own error): over 5e-4 (so the kernel did get the bf16 copies; fp32 operands
 * would give ~1e-7) and under 1e-2. So does a schedule that runs some heads in bf16 and others
 * in fp32. */
static void test_precision(ts_ctx *c) {
    const int64_t n = 192, nk_x = 40, H = 3, D = 64, HD = H * D, ne = n * HD;
    ts_attn_site site = {TS_ATTN_SELF, 0, 0, 1, {2, 8, 12}, 500.0f, NULL, NULL, 0, 0};
    float *q = malloc((size_t)ne * 4), *k = malloc((size_t)ne * 4), *v = malloc((size_t)ne * 4);
    float *ob = malloc((size_t)ne * 4), *of = malloc((size_t)ne * 4), *od = malloc((size_t)ne * 4);
    uint16_t *b = malloc((size_t)(3 * ne) * 2);
    ts_test_randn(q, ne, 41, 1.0f), ts_test_randn(k, ne, 42, 1.0f), ts_test_randn(v, ne, 43, 1.0f);
    ts_attn_schedule *s = NULL;
    ts_err e = {0};
    for (int cross = 0; cross < 2; cross++) {
        const int64_t nk = cross ? nk_x : n;
        const char *spec = cross ? "{\"rules\": [{\"method\": \"dense\", \"attention\": \"cross\", "
                                   "\"params\": {\"precision\": \"bf16\"}}]}"
                                 : "{\"rules\": [{\"method\": \"dense\", \"params\": {\"precision\": \"bf16\"}}]}";
        ts_attn_site st = site;
        st.kind = cross ? TS_ATTN_CROSS : TS_ATTN_SELF;
        TS_CHECK(ts_attn_schedule_parse(&s, spec, "precision", &e) == TS_OK, "%s", e.msg);
        TS_CHECK(ts_attention(c, s, &st, n, nk, H, D, q, k, v, ob, &e) == TS_OK, "dense bf16: %s", e.msg);
        ts_attn_schedule_free(s), s = NULL;
        for (int64_t i = 0; i < ne; i++) b[i] = ts_f32_to_bf16(q[i]);
        for (int64_t i = 0; i < nk * HD; i++) b[ne + i] = ts_f32_to_bf16(k[i]), b[2 * ne + i] = ts_f32_to_bf16(v[i]);
        ts_attn_plan p = ts_attn_plan_dense(n, nk, H, D, TS_ATTN_BLK_Q, TS_ATTN_BLK_K);
        p.in_bf16 = 1;
        TS_CHECK(c->backend->attn(c, &p, b, b + ne, b + 2 * ne, od) == TS_OK, "dense kernel on bf16");
        TS_CHECK(!memcmp(ob, od, (size_t)ne * 4), "precision bf16, dense %s: not the kernel on bf16 copies",
                 cross ? "cross" : "self");
    }
    const char *const specs[] = {
        "{\"rules\": [{\"method\": \"gna\", \"params\": {\"window\": [1, 3, 5], \"tile\": [1, 4, 4], \"block\": 16 %s}}]}",
        "{\"rules\": [{\"method\": \"clear\", \"params\": {\"radius\": 3, \"tile\": [1, 4, 4], \"block\": 16 %s}}]}",
        "{\"rules\": [{\"method\": \"draft\", \"params\": {\"pool\": [2, 3], \"sparsity\": 0.5 %s}}]}",
        "{\"rules\": [{\"method\": \"sla\", \"params\": {\"topk\": 0.5, \"block_q\": 16, \"block_k\": 16 %s}}]}",
        ("{\"rules\": [{\"method\": \"clear\", \"params\": {\"radius\": 4, \"block\": 16 %s}},"
         " {\"heads\": [1], \"method\": \"dense\"}, {\"heads\": [2], \"method\": \"draft\", \"params\": {\"pool\": [4, 3] %s}}]}"),
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        double dens[2] = {0, 0};
        for (int bf = 0; bf < 2; bf++) {
            char json[512];
            const char *x = bf ? ", \"precision\": \"bf16\"" : "";
            snprintf(json, sizeof json, specs[i], x, x);
            TS_CHECK(ts_attn_schedule_parse(&s, json, "precision", &e) == TS_OK, "%s: %s", json, e.msg);
            TS_CHECK(ts_attention(c, s, &site, n, n, H, D, q, k, v, bf ? ob : of, &e) == TS_OK, "%s: %s", json, e.msg);
            dens[bf] = ts_attn_schedule_mean_density(s);
            ts_attn_schedule_free(s), s = NULL;
        }
        char what[64];
        snprintf(what, sizeof what, "precision bf16, schedule %zu", i + 1);
        ts_test_stats ts;
        ts_test_compare(what, ob, of, ne, 1e-2, &ts);
        TS_CHECK(ts.rel_l2 > 5e-4, "%s: rel err %.2e to fp32: were the operands bf16?", what, ts.rel_l2);
        TS_CHECK(dens[0] == dens[1] && dens[0] < 1, "%s: density %g in bf16, %g in fp32", what, dens[1], dens[0]);
        if (i == 4) { /* the mixed schedule's head 1 is dense in fp32 either way: the same bits */
            int same = 1;
            for (int64_t t = 0; t < n; t++) same &= !memcmp(ob + t * HD + D, of + t * HD + D, (size_t)D * 4);
            TS_CHECK(same, "%s: head 1 (fp32) differs between the runs", what);
        }
    }
    free(q), free(k), free(v), free(ob), free(of), free(od), free(b);
}

/* Every shipped example schedule parses. */
static void test_shipped_schedules(void) {
    const char *assets = getenv("TS_ASSETS") ? getenv("TS_ASSETS") : "assets";
    const char *names[] = {"dense.json",      "draft-wan.json",  "gna-wan.json",   "clear-r16.json", "sla-turbodiffusion.json",
                           "draft-tiny.json", "gna-tiny.json",   "clear-tiny.json", "sla-tiny.json", "paro-tiny.json",
                           "dense-bf16.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/schedules/%s", assets, names[i]);
        ts_attn_schedule *s = NULL;
        ts_err e = {0};
        TS_CHECK(ts_attn_schedule_load(&s, path, &e) == TS_OK && ts_attn_schedule_rules(s) >= 1, "%s: %s", path, e.msg);
        ts_attn_schedule_free(s);
    }
}

/* Which method a call at this site runs, read back from the density: dense 1, sparse < 1. */
static double density_at(ts_ctx *c, ts_attn_schedule *s, ts_attn_site site, int64_t heads) {
    int64_t n = site.grid[0] * site.grid[1] * site.grid[2], HD = heads * 8;
    float *x = malloc((size_t)(n * HD) * 4), *o = malloc((size_t)(n * HD) * 4);
    ts_test_randn(x, n * HD, 3, 1.0f);
    ts_err e = {0};
    ts_attn_schedule_clear_records(s);
    ts_status st = ts_attention(c, s, &site, n, n, heads, 8, x, x, x, o, &e);
    TS_CHECK(st == TS_OK, "scheduled attention: %s", e.msg);
    free(x), free(o);
    return ts_attn_schedule_n_records(s) == 1 ? ts_attn_schedule_record(s, 0)->density : -1;
}

/* ts_attn_schedule_set_error: each call's record holds ||out - dense|| / ||dense||, computed
 * here from the scheduled call's output and a dense call's on the same q, k, v; 0 where every
 * head ran dense in fp32; -1 when not asked. */
static void test_attn_error(ts_ctx *c) {
    static const char *const specs[] = {"gna:window=1x3x3,tile=1x4x4,block=16", "sla:topk=0.25,block_q=16,block_k=16",
                                        "dense:precision=bf16", "dense"};
    enum { HEADS = 2, D = 8 };
    const ts_attn_site site = {TS_ATTN_SELF, 1, 2, 4, {2, 8, 12}, 500.0f, NULL, NULL, 0, 0};
    const int64_t n = 2 * 8 * 12, HD = HEADS * D;
    float *q = malloc((size_t)(n * HD) * 4), *k = malloc((size_t)(n * HD) * 4), *v = malloc((size_t)(n * HD) * 4);
    float *o = malloc((size_t)(n * HD) * 4), *od = malloc((size_t)(n * HD) * 4);
    ts_test_randn(q, n * HD, 81, 1.0f), ts_test_randn(k, n * HD, 82, 1.0f), ts_test_randn(v, n * HD, 83, 1.0f);
    ts_err e = {0};
    TS_CHECK(ts_attention(c, NULL, &site, n, n, HEADS, D, q, k, v, od, &e) == TS_OK, "dense: %s", e.msg);
    for (int i = 0; i < 4; i++) {
        ts_attn_schedule *s = NULL;
        TS_CHECK(ts_attn_schedule_from_spec(&s, specs[i], &e) == TS_OK, "%s: %s", specs[i], e.msg);
        if (!s) continue;
        TS_CHECK(ts_attention(c, s, &site, n, n, HEADS, D, q, k, v, o, &e) == TS_OK, "%s: %s", specs[i], e.msg);
        const ts_attn_record *r = ts_attn_schedule_record(s, 0);
        TS_CHECK(r && r->error == -1 && ts_attn_schedule_mean_error(s) == -1, "%s: no error measured unless asked",
                 specs[i]);
        ts_attn_schedule_set_error(s, 1);
        ts_attn_schedule_clear_records(s);
        TS_CHECK(ts_attention(c, s, &site, n, n, HEADS, D, q, k, v, o, &e) == TS_OK, "%s: %s", specs[i], e.msg);
        double d2 = 0, r2 = 0;
        for (int64_t j = 0; j < n * HD; j++) d2 += ((double)o[j] - od[j]) * ((double)o[j] - od[j]), r2 += (double)od[j] * od[j];
        const double want = sqrt(d2 / r2);
        r = ts_attn_schedule_record(s, 0);
        TS_CHECK(r && r->layer == 1 && r->step == 2 && fabs(r->error - want) <= 1e-12 * want + 1e-300,
                 "%s: error %.15g, want %.15g", specs[i], r ? r->error : -2.0, want);
        TS_CHECK(i == 3 ? want == 0 : i == 2 ? want > 1e-5 && want < 1e-2 : want > 0.05, "%s: error %g", specs[i], want);
        TS_CHECK(ts_attn_schedule_mean_error(s) == (r ? r->error : -2.0), "%s: mean error", specs[i]);
        ts_attn_site cross = site;
        cross.kind = TS_ATTN_CROSS;
        TS_CHECK(ts_attention(c, s, &cross, n, n, HEADS, D, q, k, v, o, &e) == TS_OK &&
                     ts_attn_schedule_n_records(s) == 1, "%s: cross-attention is not measured", specs[i]);
        ts_attn_schedule_free(s);
    }
    free(q), free(k), free(v), free(o), free(od);
}

static void test_schedule_matching(ts_ctx *c) {
    ts_attn_schedule *s = parse(
        "{\"comment\": \"general to specific\", \"rules\": ["
        " {\"method\": \"gna\", \"params\": {\"window\": [1, 3, 3], \"tile\": [1, 4, 4], \"block\": 16}},"
        " {\"layers\": [0, \"5-6\"], \"method\": \"dense\"},"
        " {\"steps\": {\"fraction\": [0, 0.2]}, \"method\": \"dense\"},"
        " {\"timesteps\": {\"above\": 925}, \"method\": \"dense\"},"
        " {\"layers\": [\"2-3\"], \"steps\": [\"7-8\"], \"heads\": [1], \"method\": \"dense\"}"
        "]}", TS_OK, NULL);
    if (!s) return;
    ts_attn_site site = {TS_ATTN_SELF, 1, 5, 10, {2, 8, 8}, 500.0f, NULL, NULL, 0, 0};
    double sparse = density_at(c, s, site, 2);
    TS_CHECK(sparse > 0 && sparse < 0.5, "rule 1 (gna) at layer 1 step 5: density %g", sparse);
    site.layer = 6;
    TS_CHECK(density_at(c, s, site, 2) == 1.0, "rule 2 (dense) at layer 6");
    site.layer = 1, site.step = 1;
    TS_CHECK(density_at(c, s, site, 2) == 1.0, "rule 3 (first 20%%) at step 1 of 10");
    site.step = 2;
    TS_CHECK(density_at(c, s, site, 2) == sparse, "step 2 of 10 is past 20%%");
    site.timestep = 950.0f;
    TS_CHECK(density_at(c, s, site, 2) == 1.0, "rule 4 (t > 925)");
    site.timestep = 925.0f;
    TS_CHECK(density_at(c, s, site, 2) == sparse, "t = 925 is not above 925");
    site.timestep = 500.0f, site.layer = 3, site.step = 7;
    double half = density_at(c, s, site, 2);
    TS_CHECK(fabs(half - (1.0 + sparse) / 2) < 1e-12, "rule 5: head 1 dense, head 0 gna: density %g", half);
    /* cross-attention (text keys) at a site where rule 1 (gna) matches self-attention: dense,
     * the same bits as no schedule, and not recorded */
    site.kind = TS_ATTN_CROSS, site.layer = 1, site.step = 5;
    {
        const int64_t nq = 128, nk = 20, HD = 2 * 8;
        float *xq = malloc((size_t)(nq * HD) * 4), *xk = malloc((size_t)(nk * HD) * 4), *xv = malloc((size_t)(nk * HD) * 4);
        float *o1 = malloc((size_t)(nq * HD) * 4), *o2 = malloc((size_t)(nq * HD) * 4);
        ts_test_randn(xq, nq * HD, 61, 1.0f), ts_test_randn(xk, nk * HD, 62, 1.0f), ts_test_randn(xv, nk * HD, 63, 1.0f);
        ts_err e = {0};
        ts_attn_schedule_clear_records(s);
        TS_CHECK(ts_attention(c, s, &site, nq, nk, 2, 8, xq, xk, xv, o1, &e) == TS_OK &&
                     ts_attention(c, NULL, &site, nq, nk, 2, 8, xq, xk, xv, o2, &e) == TS_OK,
                 "cross-attention: %s", e.msg);
        TS_CHECK(!memcmp(o1, o2, (size_t)(nq * HD) * 4), "cross-attention under self-attention rules runs dense");
        TS_CHECK(ts_attn_schedule_n_records(s) == 0, "cross-attention calls are not recorded");
        free(xq), free(xk), free(xv), free(o1), free(o2);
    }
    ts_attn_schedule_free(s);
}

/* Block density: the fraction of block pairs a plan runs, by hand. GNA with a 3x3 window on a
 * 32x32 grid in 8x8 tiles (blocks of 64): a query tile's keys reach one pixel past it, so an
 * edge tile visits 2 tiles along a dimension and an inner one 3: (2+3+3+2)² = 100 of 256 pairs,
 * while each query sees 9 of 1,024 keys. Per-head lists count each head's pairs. */
static void test_block_density(ts_ctx *c) {
    ts_attn_schedule *s = NULL;
    ts_err e = {0};
    TS_CHECK(ts_attn_schedule_from_spec(&s, "gna:window=1x3x3,tile=1x8x8,block=64", &e) == TS_OK, "%s", e.msg);
    if (s) {
        ts_attn_site site = {TS_ATTN_SELF, 0, 0, 1, {1, 32, 32}, 500.0f, NULL, NULL, 0, 0};
        double d = density_at(c, s, site, 2);
        const ts_attn_record *r = ts_attn_schedule_record(s, 0);
        TS_CHECK(fabs(d - 9.0 / 1024.0) < 1e-12, "gna 3x3 on 32x32: density %g, want 9/1024", d);
        TS_CHECK(r && r->block_density == 100.0 / 256.0, "gna 3x3 on 32x32: block density %g, want 100/256",
                 r ? r->block_density : -1.0);
        TS_CHECK(ts_attn_schedule_mean_block_density(s) == 100.0 / 256.0, "mean block density");
        /* tiles: GNA lays 8x8 tiles out as 4x4 sub-tiles, so 4 queries are a sub-tile's row and
         * 16 keys a sub-tile. A row's window (3 rows) reaches the sub-tile above or below from
         * the sub-tile's first or last row, except at the grid's edge: per 4 rows 5, 6, ..., 6, 5
         * sub-tile rows, 46 in all; 4 columns' windows reach 3 sub-tile columns, 2 at the edges:
         * 22. 46 x 22 of 256 x 64 tiles. */
        TS_CHECK(r && r->tile_density == 46.0 * 22.0 / (256.0 * 64.0), "gna 3x3 on 32x32: tile density %g, want %g",
                 r ? r->tile_density : -1.0, 46.0 * 22.0 / (256.0 * 64.0));
        TS_CHECK(ts_attn_schedule_mean_tile_density(s) == r->tile_density, "mean tile density");
        ts_attn_schedule_free(s);
    }
    TS_CHECK(ts_attn_schedule_from_spec(&s, "sla:topk=0.25", &e) == TS_OK, "%s", e.msg);
    if (s) { /* whole blocks: the three densities are one */
        ts_attn_site site = {TS_ATTN_SELF, 0, 0, 1, {1, 16, 16}, 500.0f, NULL, NULL, 0, 0};
        density_at(c, s, site, 2);
        const ts_attn_record *r = ts_attn_schedule_record(s, 0);
        TS_CHECK(r && r->density == 0.25 && r->block_density == 0.25 && r->tile_density == 0.25,
                 "sla topk 0.25: densities %g, %g, %g", r ? r->density : -1, r ? r->block_density : -1,
                 r ? r->tile_density : -1);
        ts_attn_schedule_free(s);
    }
    TS_CHECK(ts_attn_schedule_from_spec(&s, "dense", &e) == TS_OK, "%s", e.msg);
    if (s) {
        ts_attn_site site = {TS_ATTN_SELF, 0, 0, 1, {1, 8, 12}, 500.0f, NULL, NULL, 0, 0};
        density_at(c, s, site, 2);
        TS_CHECK(ts_attn_schedule_mean_block_density(s) == 1.0 && ts_attn_schedule_mean_tile_density(s) == 1.0,
                 "dense: block and tile density 1");
        ts_attn_schedule_free(s);
    }
    /* two heads with their own lists over 2 query blocks x 4 key blocks: 3 and 5 pairs */
    static const int32_t ptr[6] = {0, 1, 3, 3, 7, 8}, idx[8] = {0, 1, 2, 0, 1, 2, 3, 3};
    ts_attn_plan p = ts_attn_plan_dense(32, 64, 2, 16, 16, 16);
    p.exact_ptr = ptr, p.exact_idx = idx, p.exact_per_head = 1;
    TS_CHECK(ts_attn_plan_block_density(&p) == 8.0 / 16.0, "per-head lists, both heads: %g", ts_attn_plan_block_density(&p));
    p.exact_ptr = ptr + 3, p.h0 = 1, p.h1 = 2;
    TS_CHECK(ts_attn_plan_block_density(&p) == 5.0 / 8.0, "per-head lists, head 1: %g", ts_attn_plan_block_density(&p));
    p.exact_ptr = ptr, p.exact_per_head = 0, p.h0 = p.h1 = 0;
    TS_CHECK(ts_attn_plan_block_density(&p) == 3.0 / 8.0, "one list for all heads: %g", ts_attn_plan_block_density(&p));
    /* tiles: a full block counts all its own (4 x 1 per 16 x 16 block: entry 0); a partial block
     * its bits' tiles: entry 1 (query block 1, key block 1) allows query 5 key 3 and query 6
     * key 20 (past the block's 16 keys: no tile holds it), entry 2 (key block 2) query 15 key 15 */
    static const uint8_t full[8] = {1, 0, 0, 1, 1, 1, 1, 1};
    uint64_t bits[48] = {0};
    static const int64_t off[8] = {0, 0, 16, 0, 0, 0, 0, 0};
    bits[5] = 1u << 3, bits[6] = 1u << 20, bits[16 + 15] = 1u << 15;
    p.exact_full = full, p.exact_bits = bits, p.exact_bits_off = off;
    TS_CHECK(ts_attn_plan_tile_density(&p) == (4.0 + 1 + 1) / (8 * 4), "tiles, one list: %g, want 6/32",
             ts_attn_plan_tile_density(&p));
    p.exact_bits = NULL; /* partial blocks without bits: all their tiles */
    TS_CHECK(ts_attn_plan_tile_density(&p) == 12.0 / 32, "tiles, no bits: %g, want 12/32", ts_attn_plan_tile_density(&p));
    /* ragged tails round up: 30 queries (blocks of 16 and 14 rows: 4 tiles each) x 56 keys (the
     * last block 8 keys: 1 tile); head 1's list, all full: 4 key blocks for query block 0, the
     * last one for query block 1, 4 x 4 + 4 x 1 of 8 x 4 tiles */
    p.nq = 30, p.nk = 56, p.exact_per_head = 1, p.exact_ptr = ptr + 3, p.h0 = 1, p.h1 = 2;
    TS_CHECK(ts_attn_plan_tile_density(&p) == 20.0 / 32, "tiles, ragged: %g, want 20/32", ts_attn_plan_tile_density(&p));
    p.exact_ptr = NULL;
    TS_CHECK(ts_attn_plan_tile_density(&p) == 1.0, "tiles, dense: %g", ts_attn_plan_tile_density(&p));
    /* a padded layout (Wan 480p's 30 x 52 frames in 8 x 8 tiles, 4 x 4 sub-tiles: edge tiles
     * padded to whole blocks) against a count from the mask: a listed tile of the kernel order
     * is live when a real query and a real key in it are allowed; dense runs the 1,560 tokens
     * in blocks of 64 without padding */
    ts_mask m = {0};
    m.kind = TS_MASK_NA, m.grid[0] = 1, m.grid[1] = 30, m.grid[2] = 52;
    for (int d = 0; d < 3; d++) m.window[d] = d ? 17 : 1, m.stride[d] = m.dilation[d] = 1; /* full blocks too */
    const int tile[3] = {1, 8, 8};
    ts_attn_plan pp;
    ts_plan_store ps = {0};
    if (build_and_check(&pp, &ps, &m, 1560, tile, 64, 2, "gna 17x17 on 30x52, padded")) {
        const int64_t L = pp.n_kern;
        double live = 0;
        for (int32_t a = 0; a < pp.n_qblk; a++)
            for (int32_t li = pp.exact_ptr[a]; li < pp.exact_ptr[a + 1]; li++)
                for (int64_t i0 = (int64_t)a * 64; i0 < (a + 1) * 64 && i0 < L; i0 += 4)
                    for (int64_t j0 = (int64_t)pp.exact_idx[li] * 64; j0 < (pp.exact_idx[li] + 1) * 64 && j0 < L; j0 += 16) {
                        int any = 0;
                        for (int64_t i = i0; i < i0 + 4 && !any; i++)
                            for (int64_t j = j0; j < j0 + 16 && !any; j++)
                                any = pp.perm[i] >= 0 && pp.perm[j] >= 0 && ts_mask_allows(&m, pp.perm[i], pp.perm[j]);
                        live += any;
                    }
        /* dense: 1,560 = 24 x 64 + 24 tokens, 24 blocks of 16 row tiles and one of 6, of 4 key
         * tiles and one of 2 */
        const double all = 24 * 16 + 6, kt = 24 * 4 + 2;
        TS_CHECK(L > 1560 && fabs(ts_attn_plan_tile_density(&pp) - live / (all * kt)) < 1e-12,
                 "gna 17x17 on 30x52, padded to %lld slots: tile density %g, counted %g", (long long)L,
                 ts_attn_plan_tile_density(&pp), live / (all * kt));
    }
    ts_plan_store_free(&ps);
}

/* ------------------------------------------------------------------ PARO */

static void test_paro_orders(void) {
    const int64_t g[3] = {2, 3, 4}, n = 24;
    int32_t perm[24];
    for (int o = 0; o < TS_PARO_ORDERS; o++) {
        ts_paro_order_perm(g, o, perm);
        int seen[24] = {0}, ok = 1;
        for (int64_t i = 0; i < n; i++) ok &= perm[i] >= 0 && perm[i] < n && !seen[perm[i]]++;
        TS_CHECK(ok, "order %s is a bijection", ts_paro_order_name(o));
    }
    /* hand-checked positions: token = f·12 + y·4 + x */
    struct { int o, pos, tok; } c[] = {
        {0, 5, 5}, {1, 1, 4}, {1, 3, 1}, {2, 1, 12}, {2, 2, 1}, {3, 4, 12}, {4, 1, 12}, {4, 2, 4}, {5, 1, 4}, {5, 3, 12},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        ts_paro_order_perm(g, c[i].o, perm);
        TS_CHECK(perm[c[i].pos] == c[i].tok, "order %s: position %d holds token %d (want %d)",
                 ts_paro_order_name(c[i].o), c[i].pos, perm[c[i].pos], c[i].tok);
    }
}

/* Kernel vs executor with INT8 Q·Kᵀ, and the quantised result near (not equal to) fp32. */
static void quant_case(ts_ctx *c, ts_attn_plan *p, int64_t H, int64_t D, const char *what) {
    p->quant = TS_QUANT_INT8_QK;
    kernel_vs_ref(c, p, H, D, 0, 0, what);
    int64_t n = p->nq, HD = H * D;
    float *q = malloc((size_t)(n * HD) * 4), *k = malloc((size_t)(n * HD) * 4), *v = malloc((size_t)(n * HD) * 4);
    float *o8 = malloc((size_t)(n * HD) * 4), *o32 = malloc((size_t)(n * HD) * 4);
    ts_test_randn(q, n * HD, 5 + (uint64_t)n, 2.0f);
    ts_test_randn(k, n * HD, 6 + (uint64_t)n, 1.0f);
    ts_test_randn(v, n * HD, 7 + (uint64_t)n, 1.0f);
    TS_CHECK(c->backend->attn(c, p, q, k, v, o8) == TS_OK, "%s: int8", what);
    p->quant = TS_QUANT_NONE;
    TS_CHECK(ts_attn_ref(p, q, k, v, o32) == 0, "%s: fp32 ref", what);
    double num = 0, den = 0;
    for (int64_t i = 0; i < n * HD; i++) num += (double)(o8[i] - o32[i]) * (o8[i] - o32[i]), den += (double)o32[i] * o32[i];
    double rel = sqrt(num / den);
    TS_CHECK(rel > 1e-4 && rel < 5e-2, "%s: INT8 vs fp32 rel-L2 %.3e (quantised, and close)", what, rel);
    free(q), free(k), free(v), free(o8), free(o32);
}

/* bf16 operands on each kernel path: kernel vs executor (which widens them), and where the
 * path widens them to fp32 (all but BF16 dots) the same result as on the same values held
 * in fp32. */
static void bf16_case(ts_ctx *c, ts_attn_plan *p, int64_t H, int64_t D, const char *what) {
    int64_t n = p->nq, HD = H * D, N = n * HD;
    p->heads = H, p->head_dim = D, p->scale = (float)(1.0 / sqrt((double)D));
    float *f[3], *o16 = malloc((size_t)N * 4), *o32 = malloc((size_t)N * 4), *ref = malloc((size_t)N * 4);
    uint16_t *b[3];
    for (int i = 0; i < 3; i++) {
        f[i] = malloc((size_t)N * 4), b[i] = malloc((size_t)N * 2);
        ts_test_randn(f[i], N, 70 + (uint64_t)i, i ? 1.0f : 2.0f);
        for (int64_t j = 0; j < N; j++) b[i][j] = ts_f32_to_bf16(f[i][j]), f[i][j] = ts_bf16_to_f32(b[i][j]);
    }
    if (p->lin_w) p->lin_q = f[0], p->lin_k = f[1], p->lin_v = f[2]; /* the linear branch's fp32 operands */
    p->in_bf16 = 1;
    TS_CHECK(ts_attn_ref(p, b[0], b[1], b[2], ref) == 0, "%s: ref", what);
    for (int path = 0; path < TS_TEST_ATTN_PATHS; path++) {
        p->in_bf16 = 1;
        ts_status st = ts_test_attn_run(c, path, p, b[0], b[1], b[2], o16);
        if (st == TS_ERR_UNSUPPORTED) continue;
        char w2[160];
        snprintf(w2, sizeof w2, "%s %s", what, ts_test_attn_path_name[path]);
        TS_CHECK(st == TS_OK, "%s: bf16 kernel ran", w2);
        const double tol = ts_test_attn_tol(p, path);
        ts_test_compare(w2, o16, ref, N, tol, NULL);
        const int run = ts_cpu_attn_runs(p, ts_test_attn_path[path]);
        if (run == TS_ATTN_RUN_BF16 || run == TS_ATTN_RUN_FP16) continue; /* bf16 plans only; P rounded too */
        p->in_bf16 = 0;
        TS_CHECK(ts_test_attn_run(c, path, p, f[0], f[1], f[2], o32) == TS_OK, "%s: fp32 kernel ran", w2);
        int same = 1;
        for (int64_t j = 0; j < N; j++) same &= o16[j] == o32[j];
        TS_CHECK(same, "%s: bf16 operands give exactly the fp32 kernel's result on the same values", w2);
    }
    p->in_bf16 = 0;
    for (int i = 0; i < 3; i++) free(f[i]), free(b[i]);
    free(o16), free(o32), free(ref);
}

/* DraftAttention's and SLA's plans (each head's joined into one, as their calls run them) on
 * bf16 Q, K, V against the executor: padded edge regions (draft), ragged blocks (SLA). */
static void test_bf16_dynamic(ts_ctx *c) {
    const int64_t g[3] = {2, 9, 13}, n = 2 * 9 * 13, H = 2, D = 16;
    float *q = malloc((size_t)(n * H * D) * 4), *k = malloc((size_t)(n * H * D) * 4);
    ts_test_randn(q, n * H * D, 81, 1.0f), ts_test_randn(k, n * H * D, 82, 1.0f);
    ts_attn_plan hp[2], all;
    ts_plan_store st[2] = {{0}}, js = {0};
    ts_err e = {0};
    const ts_draft_params dp = {{4, 3}, 0.6};
    for (int h = 0; h < 2; h++) TS_CHECK(ts_draft_plan(g, H, D, h, &dp, q, k, &hp[h], &st[h], &e) == TS_OK, "%s", e.msg);
    TS_CHECK(ts_plan_join_heads(hp, 2, &all, &js, &e) == TS_OK, "%s", e.msg);
    bf16_case(c, &all, H, D, "bf16 draft 2x9x13, regions 4x3, 2 heads");
    const ts_sla_params sp = {0.4, 32, 16, 0};
    for (int h = 0; h < 2; h++) TS_CHECK(ts_sla_plan(n, H, D, h, &sp, q, k, &hp[h], &st[h], &e) == TS_OK, "%s", e.msg);
    TS_CHECK(ts_plan_join_heads(hp, 2, &all, &js, &e) == TS_OK, "%s", e.msg);
    bf16_case(c, &all, H, D, "bf16 sla 234 tokens, blocks 32x16, 2 heads");
    float *lw = malloc((size_t)(D * D + D) * 4); /* and with each linear branch (all keys, then the paper's) */
    ts_test_randn(lw, D * D + D, 83, 0.3f);
    all.lin_w = lw, all.lin_b = lw + D * D, all.lin_all = 1;
    bf16_case(c, &all, H, D, "bf16 sla 234 tokens, blocks 32x16, 2 heads, linear branch");
    all.lin_all = 0, all.lin_q = all.lin_k = all.lin_v = NULL;
    bf16_case(c, &all, H, D, "bf16 sla 234 tokens, blocks 32x16, 2 heads, the paper's linear branch");
    free(lw);
    for (int h = 0; h < 2; h++) ts_plan_store_free(&st[h]);
    ts_plan_store_free(&js);
    free(q), free(k);
}

/* A permuted block-sparse plan of 50 tokens (the 2x5x5 grid in order WHF), blocks of 16 (the
 * last of 2), each query block listing itself and the next; 3 heads of 32. Its arrays are the
 * caller's. */
enum { PP_N = 50, PP_B = 16, PP_NB = 4 };
static ts_attn_plan permuted_plan(int32_t perm[PP_N], int32_t ptr[PP_NB + 1], int32_t idx[2 * PP_NB]) {
    const int64_t g[3] = {2, 5, 5};
    ts_paro_order_perm(g, 4, perm);
    for (int i = 0; i < PP_NB; i++) ptr[i] = 2 * i, idx[2 * i] = i, idx[2 * i + 1] = (i + 1) % PP_NB;
    ptr[PP_NB] = 2 * PP_NB;
    ts_attn_plan p = ts_attn_plan_dense(PP_N, PP_N, 3, 32, PP_B, PP_B);
    p.perm = perm, p.exact_ptr = ptr, p.exact_idx = idx;
    return p;
}

/* ------------------------------------------------------------ text tokens */

/* Float64 attention of every head under its own mask (allow [H, n, n]: query i sees key j). */
static void naive_masked(const float *q, const float *k, const float *v, int64_t n, int64_t H, int64_t D,
                         const uint8_t *allow, float *out) {
    const int64_t HD = H * D;
    const double sc = 1.0 / sqrt((double)D);
    double *s = malloc((size_t)n * sizeof *s), *o = malloc((size_t)D * sizeof *o);
    for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < n; i++) {
            const uint8_t *al = allow + (h * n + i) * n;
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < n; j++) {
                if (!al[j]) continue;
                double acc = 0;
                for (int64_t d = 0; d < D; d++) acc += (double)q[i * HD + h * D + d] * k[j * HD + h * D + d];
                s[j] = acc * sc;
                mx = s[j] > mx ? s[j] : mx;
            }
            for (int64_t d = 0; d < D; d++) o[d] = 0;
            for (int64_t j = 0; j < n; j++) {
                if (!al[j]) continue;
                const double e = exp(s[j] - mx);
                sum += e;
                for (int64_t d = 0; d < D; d++) o[d] += e * v[j * HD + h * D + d];
            }
            for (int64_t d = 0; d < D; d++) out[i * HD + h * D + d] = (float)(o[d] / sum);
        }
    free(s), free(o);
}

/* Marks in allow [n, n] the pairs a one-list plan without an element mask runs, its tokens
 * shifted by off (an image plan placed at token off of a longer call). */
static void plan_pairs(const ts_attn_plan *p, int64_t off, int64_t n, uint8_t *allow) {
    const int64_t L = p->n_kern ? p->n_kern : p->nq, bq = p->blk_q, bk = p->blk_k;
    for (int64_t a = 0; a < p->n_qblk; a++)
        for (int32_t e = p->exact_ptr[a]; e < p->exact_ptr[a + 1]; e++) {
            const int64_t b = p->exact_idx[e];
            for (int64_t i = a * bq; i < (a + 1) * bq && i < L; i++) {
                const int64_t ti = p->perm ? p->perm[i] : i;
                for (int64_t j = b * bk; j < (b + 1) * bk && j < L && ti >= 0; j++) {
                    const int64_t tj = p->perm ? p->perm[j] : j;
                    if (tj >= 0) allow[(ti + off) * n + tj + off] = 1;
                }
            }
        }
}

/* Every pair with a text token (outside [img0, img0 + G)) allowed, in each head's mask. */
static void text_pairs(int64_t n, int64_t H, int64_t img0, int64_t G, uint8_t *allow) {
    for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++)
                if (i < img0 || i >= img0 + G || j < img0 || j >= img0 + G) allow[(h * n + i) * n + j] = 1;
}

/* Self-attention with text tokens beside the image, as joint-attention models have them (text
 * after the image, before it, and on both sides): GNA and CLEAR through a schedule against the
 * executor applying their masks' text rules; DraftAttention against float64 attention under
 * the mask it should run (text rows and columns dense, image pairs those of its plan of the
 * image alone) and its density; the plans with text blocks on every kernel path, fp32, bf16
 * and INT8 (ragged image blocks padded). */
static void test_text_tokens(ts_ctx *c) {
    const int64_t g[3] = {2, 5, 7}, G = 70, H = 2, D = 16, HD = H * D;
    const int64_t cases[3][2] = {{0, 13}, {13, 13}, {9, 13}}; /* img0, text tokens */
    ts_err e = {0};
    for (int ci = 0; ci < 3; ci++) {
        const int64_t img0 = cases[ci][0], n = G + cases[ci][1];
        float *q = malloc((size_t)(n * HD) * 4), *k = malloc((size_t)(n * HD) * 4), *v = malloc((size_t)(n * HD) * 4);
        float *out = malloc((size_t)(n * HD) * 4), *ref = malloc((size_t)(n * HD) * 4);
        uint8_t *allow = calloc((size_t)(H * n * n), 1);
        ts_test_randn(q, n * HD, 91 + (uint64_t)ci, 1.5f), ts_test_randn(k, n * HD, 94 + (uint64_t)ci, 1.0f);
        ts_test_randn(v, n * HD, 97 + (uint64_t)ci, 1.0f);
        char what[160];
        /* GNA and CLEAR through a schedule vs the executor on the mask alone */
        const char *specs[2] = {"gna:window=1x3x5,tile=1x4x4,block=16", "clear:radius=2.5,tile=1x4x4,block=16"};
        for (int m = 0; m < 2; m++) {
            ts_attn_schedule *s = NULL;
            TS_CHECK(ts_attn_schedule_from_spec(&s, specs[m], &e) == TS_OK, "%s", e.msg);
            ts_attn_site site = {TS_ATTN_SELF, 0, 0, 1, {g[0], g[1], g[2]}, 500.0f, NULL, NULL, img0, 0};
            for (int64_t i = 0; i < n * HD; i++) out[i] = ref[i] = 7.0f;
            TS_CHECK(s && ts_attention(c, s, &site, n, n, H, D, q, k, v, out, &e) == TS_OK, "%s: %s", specs[m], e.msg);
            ts_attn_plan p = ts_attn_plan_dense(n, n, H, D, 16, 16);
            p.mask.kind = m == 0 ? TS_MASK_NA : TS_MASK_CLEAR;
            memcpy(p.mask.grid, g, sizeof p.mask.grid);
            p.mask.img0 = img0, p.mask.radius = 2.5;
            for (int d = 0; d < 3; d++) {
                p.mask.window[d] = d == 0 ? 1 : d == 1 ? 3 : 5;
                p.mask.stride[d] = p.mask.dilation[d] = 1;
            }
            TS_CHECK(ts_attn_ref(&p, q, k, v, ref) == 0, "ref");
            snprintf(what, sizeof what, "%s, image at %lld of %lld tokens, vs the executor", specs[m], (long long)img0,
                     (long long)n);
            ts_test_compare(what, out, ref, n * HD, 1e-5, NULL);
            const ts_attn_record *r = s ? ts_attn_schedule_record(s, 0) : NULL;
            double cnt = 0;
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < n; j++) cnt += ts_mask_allows(&p.mask, i, j);
            TS_CHECK(r && fabs(r->density - cnt / ((double)n * n)) < 1e-12, "%s: density %g, counted %g", what,
                     r ? r->density : -1, cnt / ((double)n * n));
            ts_attn_schedule_free(s);
        }
        /* DraftAttention: the mask it should run, from its plans of the image alone */
        const ts_draft_params dp = {{2, 4}, 0.7};
        double want = 0;
        for (int64_t h = 0; h < H; h++) {
            ts_attn_plan ip;
            ts_plan_store is = {0};
            TS_CHECK(ts_draft_plan(g, H, D, h, &dp, q + img0 * HD, k + img0 * HD, &ip, &is, &e) == TS_OK, "%s", e.msg);
            plan_pairs(&ip, img0, n, allow + h * n * n);
            ts_plan_store_free(&is);
        }
        text_pairs(n, H, img0, G, allow);
        for (int64_t i = 0; i < H * n * n; i++) want += allow[i];
        want /= (double)(H * n * n);
        naive_masked(q, k, v, n, H, D, allow, ref);
        double dens = 0;
        TS_CHECK(ts_draft_attention(c, g, n, img0, H, D, 0, H, &dp, q, k, v, NULL, out, &dens, &e) == TS_OK,
                 "draft with text: %s", e.msg);
        snprintf(what, sizeof what, "draft, image at %lld of %lld tokens, vs float64 attention under its mask",
                 (long long)img0, (long long)n);
        ts_test_compare(what, out, ref, n * HD, 1e-5, NULL);
        TS_CHECK(fabs(dens - want) < 1e-12, "%s: density %g, counted %g", what, dens, want);
        { /* through a schedule: the site's img0 reaches it */
            ts_attn_schedule *s = NULL;
            ts_attn_site site = {TS_ATTN_SELF, 0, 0, 1, {g[0], g[1], g[2]}, 500.0f, NULL, NULL, img0, 0};
            TS_CHECK(ts_attn_schedule_from_spec(&s, "draft:pool=2x4,sparsity=0.7", &e) == TS_OK, "%s", e.msg);
            TS_CHECK(s && ts_attention(c, s, &site, n, n, H, D, q, k, v, ref, &e) == TS_OK, "draft schedule: %s", e.msg);
            int same = 1;
            for (int64_t i = 0; i < n * HD; i++) same &= out[i] == ref[i];
            TS_CHECK(same, "draft through a schedule, image at %lld: not the direct call's output", (long long)img0);
            ts_attn_schedule_free(s);
        }
        /* the plan with text blocks on every kernel path, fp32 and bf16 */
        ts_attn_plan ip, tp;
        ts_plan_store is = {0}, tst = {0};
        TS_CHECK(ts_draft_plan(g, H, D, 1, &dp, q + img0 * HD, k + img0 * HD, &ip, &is, &e) == TS_OK, "%s", e.msg);
        TS_CHECK(ts_plan_add_text(&ip, n, img0, &tp, &tst, &e) == TS_OK, "%s", e.msg);
        snprintf(what, sizeof what, "draft plan with %lld text tokens, image at %lld", (long long)(n - G),
                 (long long)img0);
        kernel_vs_ref(c, &tp, H, D, 1, 2, what);
        tp.h0 = tp.h1 = 0; /* bf16_case compares every head */
        bf16_case(c, &tp, H, D, what);
        ts_plan_store_free(&is), ts_plan_store_free(&tst);
        free(q), free(k), free(v), free(out), free(ref), free(allow);
    }
    { /* INT8 Q·Kᵀ: a permuted plan of 50 image tokens in blocks of 16 (the last of 2, padded
       * before the text blocks) and 11 text tokens around it */
        int32_t perm[PP_N], ptr[PP_NB + 1], idx[2 * PP_NB];
        ts_attn_plan p = permuted_plan(perm, ptr, idx), tp;
        p.quant = TS_QUANT_INT8_QK;
        ts_plan_store tst = {0};
        TS_CHECK(ts_plan_add_text(&p, PP_N + 11, 4, &tp, &tst, &e) == TS_OK, "%s", e.msg);
        TS_CHECK(tp.n_kern == 5 * PP_B && tp.n_qblk == 5, "50 + 11 tokens: %lld slots, %d blocks (want 80, 5)",
                 (long long)tp.n_kern, tp.n_qblk);
        int lists = 1; /* image query blocks: their own two blocks, then text block 4; text: all */
        for (int a = 0; a < 5; a++)
            for (int32_t li = tp.exact_ptr[a]; li < tp.exact_ptr[a + 1]; li++) {
                const int32_t r = li - tp.exact_ptr[a];
                lists &= tp.exact_idx[li] == (a < 4 ? (r < 2 ? idx[2 * a + r] : 4) : r) && tp.exact_full[li];
            }
        TS_CHECK(lists && tp.exact_ptr[4] == 12 && tp.exact_ptr[5] == 17, "text blocks in the lists");
        quant_case(c, &tp, 3, 32, "int8 permuted sparse 50 tokens, 11 text tokens");
        bf16_case(c, &tp, 3, 32, "bf16 int8 permuted sparse 50 tokens, 11 text tokens");
        ts_plan_store_free(&tst);
        /* an image that does not fit, and a plan with element bits, are refused */
        TS_CHECK(ts_plan_add_text(&p, PP_N + 3, 4, &tp, &tst, &e) == TS_ERR_SHAPE && strstr(e.msg, "does not fit"),
                 "image past the call: %s", e.msg);
        uint64_t bits[1] = {1};
        p.exact_bits = bits;
        TS_CHECK(ts_plan_add_text(&p, PP_N + 11, 4, &tp, &tst, &e) == TS_ERR_INVALID_ARG && strstr(e.msg, "element mask"),
                 "a plan with bits: %s", e.msg);
        p.exact_bits = NULL, p.mask.kind = TS_MASK_CLEAR; /* a mask evaluated per element */
        TS_CHECK(ts_plan_add_text(&p, PP_N + 11, 4, &tp, &tst, &e) == TS_ERR_INVALID_ARG && strstr(e.msg, "element mask"),
                 "a plan with a mask: %s", e.msg);
    }
}

static void test_paro_kernel(ts_ctx *c) {
    ts_attn_plan p = ts_attn_plan_dense(77, 77, 2, 24, 32, 16); /* D 24: the dot's scalar tail */
    quant_case(c, &p, 2, 24, "int8 dense 77 tokens, D 24, q block 32");
    p = ts_attn_plan_dense(77, 77, 2, 20, 32, 12); /* key blocks of 12: the untiled dot */
    quant_case(c, &p, 2, 20, "int8 dense 77 tokens, key blocks of 12");
    p = ts_attn_plan_dense(77, 77, 2, 64, 48, 32);
    p.quant_rows = 8;
    quant_case(c, &p, 2, 64, "int8 dense 77 tokens, D 64, 8 rows per scale");
    /* a permuted block-sparse plan with a ragged last block */
    int32_t perm[PP_N], ptr[PP_NB + 1], idx[2 * PP_NB];
    p = permuted_plan(perm, ptr, idx);
    quant_case(c, &p, 3, 32, "int8 permuted sparse 50 tokens");
    /* the same plans with bf16 Q, K, V */
    bf16_case(c, &p, 3, 32, "bf16 int8 permuted sparse 50 tokens");
    p.quant = TS_QUANT_NONE;
    bf16_case(c, &p, 3, 32, "bf16 permuted sparse 50 tokens");
    p = ts_attn_plan_dense(77, 77, 2, 24, 32, 16);
    bf16_case(c, &p, 2, 24, "bf16 dense 77 tokens");
    p.quant = TS_QUANT_INT8_QK;
    bf16_case(c, &p, 2, 24, "bf16 int8 dense 77 tokens");
}

static char paro_dir[64];

/* A calibration for grid 2x4x6 (48 tokens), block 16 (3 blocks), 2 layers x 2 heads, 2
 * groups of a 10-step run: group 0 all blocks but (0, 2); group 1 the diagonal only. */
static int write_calib(const char *path, int empty_row, const char *format, const char *grid) {
    ts_paro_desc d = {{2, 4, 6}, 16, 2, 2, 2, 10, 0.5};
    int32_t orders[4] = {0, 2, 5, 3};
    uint8_t m[2 * 4 * 9];
    for (int gi = 0; gi < 2; gi++)
        for (int lh = 0; lh < 4; lh++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) m[((gi * 4 + lh) * 3 + i) * 3 + j] = gi == 0 ? !(i == 0 && j == 2) : i == j;
    if (empty_row) m[(1 * 4 + 3) * 9 + 3 + 1] = 0; /* group 1, layer 1, head 1, block 1 */
    ts_err e = {0};
    if (format) { /* the file with another format string or grid (masks for no blocks where the grid's
                   * product wraps to 0) */
        const int wraps = grid && strlen(grid) > 10;
        int64_t so[2] = {2, 2}, sm[5] = {2, 2, 2, wraps ? 0 : 3, wraps ? 0 : 1};
        uint8_t bits[24] = {0};
        ts_st_item it[2] = {{"orders", ts_tensor_make(TS_DTYPE_I32, 2, so, orders)},
                            {"masks", ts_tensor_make(TS_DTYPE_U8, 5, sm, bits)}};
        const char *meta[] = {"format", format, "grid", grid ? grid : "2,4,6", "block", "16", "steps", "10", "groups", "2"};
        return ts_st_write(path, it, 2, meta, 5, &e) == TS_OK;
    }
    const char *meta[] = {"model", "test"};
    return ts_paro_write(path, &d, orders, m, meta, 1, &e) == TS_OK;
}

static void test_paro_calib(ts_ctx *c) {
    snprintf(paro_dir, sizeof paro_dir, "/tmp/ts_paro_XXXXXX");
    if (!mkdtemp(paro_dir)) return;
    char path[128], bad[128];
    snprintf(path, sizeof path, "%s/calib.safetensors", paro_dir);
    TS_CHECK(write_calib(path, 0, NULL, NULL), "calibration written");
    ts_paro *pc = NULL;
    ts_err e = {0};
    TS_CHECK(ts_paro_load(&pc, path, &e) == TS_OK, "calibration loads: %s", e.msg);
    if (!pc) return;
    const ts_paro_desc *d = ts_paro_info(pc);
    TS_CHECK(d->grid[0] == 2 && d->grid[1] == 4 && d->grid[2] == 6 && d->block == 16 && d->layers == 2 &&
             d->heads == 2 && d->groups == 2 && d->steps == 10, "calibration header");
    TS_CHECK(ts_paro_order(pc, 0, 1) == 2 && ts_paro_order(pc, 1, 0) == 5 && ts_paro_order(pc, 1, 1) == 3, "orders");
    TS_CHECK(!ts_paro_block_on(pc, 0, 1, 1, 0, 2) && ts_paro_block_on(pc, 0, 1, 1, 2, 0) &&
             ts_paro_block_on(pc, 1, 0, 0, 1, 1) && !ts_paro_block_on(pc, 1, 0, 0, 1, 2), "mask bits");
    TS_CHECK(ts_paro_group(pc, 4, 10) == 0 && ts_paro_group(pc, 5, 10) == 1 && ts_paro_group(pc, 9, 10) == 1 &&
             ts_paro_group(pc, 2, 4) == 1 && ts_paro_group(pc, -1, 10) == 0, "step -> group");
    /* a call at layer 1, step 7 of 10 (group 1, the diagonal) against the executor on the
     * plan written out by hand: head 0 in order WFH, head 1 in HFW */
    const int64_t g[3] = {2, 4, 6}, n = 48, H = 2, D = 16, HD = H * D;
    float *q = malloc(n * HD * 4), *k = malloc(n * HD * 4), *v = malloc(n * HD * 4);
    float *out = malloc(n * HD * 4), *ref = malloc(n * HD * 4);
    ts_test_randn(q, n * HD, 41, 1.5f), ts_test_randn(k, n * HD, 42, 1.0f), ts_test_randn(v, n * HD, 43, 1.0f);
    ts_attn_site site = {TS_ATTN_SELF, 1, 7, 10, {2, 4, 6}, 300.0f, NULL, NULL, 0, 0};
    double dens = 0;
    TS_CHECK(ts_paro_attention(c, pc, &site, n, H, D, 0, H, TS_QUANT_INT8_QK, q, k, v, NULL, out, &dens, &e) == TS_OK,
             "paro attention: %s", e.msg);
    TS_CHECK(fabs(dens - 1.0 / 3.0) < 1e-12, "diagonal of 3 blocks: density %g", dens);
    int32_t perm[48], ptr[4] = {0, 1, 2, 3}, idx[3] = {0, 1, 2};
    for (int h = 0; h < 2; h++) {
        ts_paro_order_perm(g, h == 0 ? 5 : 3, perm);
        ts_attn_plan p = ts_attn_plan_dense(n, n, H, D, 16, 16);
        p.perm = perm, p.exact_ptr = ptr, p.exact_idx = idx, p.quant = TS_QUANT_INT8_QK, p.h0 = h, p.h1 = h + 1;
        TS_CHECK(ts_attn_ref(&p, q, k, v, ref) == 0, "ref");
    }
    ts_test_compare("paro layer 1 group 1 vs executor", out, ref, n * HD, 1e-5, NULL);
    site.step = 2; /* group 0: 8 of 9 blocks */
    TS_CHECK(ts_paro_attention(c, pc, &site, n, H, D, 0, H, TS_QUANT_NONE, q, k, v, NULL, out, &dens, &e) == TS_OK &&
             fabs(dens - 8.0 / 9.0) < 1e-12, "group 0 density %g", dens);
    { /* 3 text tokens before the image and 5 after: text rows and columns dense, the image's pairs
       * the calibration's (group 0: every block pair but (0, 2) in the head's order, WFH and HFW) */
        const int64_t img0 = 3, nt = n + 8;
        float *qt = malloc((size_t)(nt * HD) * 4), *kt = malloc((size_t)(nt * HD) * 4);
        float *vt = malloc((size_t)(nt * HD) * 4), *ot = malloc((size_t)(nt * HD) * 4), *rt = malloc((size_t)(nt * HD) * 4);
        uint8_t *allow = calloc((size_t)(H * nt * nt), 1);
        ts_test_randn(qt, nt * HD, 44, 1.5f), ts_test_randn(kt, nt * HD, 45, 1.0f), ts_test_randn(vt, nt * HD, 46, 1.0f);
        int32_t pos[48];
        for (int h = 0; h < 2; h++) {
            ts_paro_order_perm(g, h == 0 ? 5 : 3, perm);
            for (int i = 0; i < 48; i++) pos[perm[i]] = i;
            for (int i = 0; i < 48; i++)
                for (int j = 0; j < 48; j++)
                    allow[(h * nt + img0 + i) * nt + img0 + j] = !(pos[i] / 16 == 0 && pos[j] / 16 == 2);
        }
        text_pairs(nt, H, img0, n, allow);
        double want = 0;
        for (int64_t i = 0; i < H * nt * nt; i++) want += allow[i];
        want /= (double)(H * nt * nt);
        naive_masked(qt, kt, vt, nt, H, D, allow, rt);
        ts_attn_site ts = site;
        ts.img0 = img0;
        TS_CHECK(ts_paro_attention(c, pc, &ts, nt, H, D, 0, H, TS_QUANT_NONE, qt, kt, vt, NULL, ot, &dens, &e) == TS_OK,
                 "paro with text: %s", e.msg);
        ts_test_compare("paro with text tokens around the image vs float64 attention under its mask", ot, rt, nt * HD,
                        1e-5, NULL);
        TS_CHECK(fabs(dens - want) < 1e-12, "paro with text: density %g, counted %g", dens, want);
        ts.img0 = 9; /* the image past the call's end */
        TS_CHECK(ts_paro_attention(c, pc, &ts, nt, H, D, 0, H, TS_QUANT_NONE, qt, kt, vt, NULL, ot, &dens, &e) ==
                         TS_ERR_SHAPE && strstr(e.msg, "do not fit"), "paro image past the end: %s", e.msg);
        /* the calibrator observes the image's tokens of a call with text: the same file as from
         * the image alone */
        const int64_t g246[3] = {2, 4, 6};
        int32_t o1[4], o2[4];
        uint8_t m1[2 * 4 * 9], m2[2 * 4 * 9];
        ts_paro_calib *c1 = NULL, *c2 = NULL;
        TS_CHECK(ts_paro_calib_new(&c1, g246, 16, 2, 2, 2, 1, TS_PARO_CALIB_ONE_PASS, NULL, &e) == TS_OK &&
                     ts_paro_calib_new(&c2, g246, 16, 2, 2, 2, 1, TS_PARO_CALIB_ONE_PASS, NULL, &e) == TS_OK,
                 "calibrators: %s", e.msg);
        if (c1 && c2) {
            ts.img0 = img0;
            for (int l = 0; l < 2; l++) {
                ts.layer = l;
                ts_paro_calib_observe(c1, &ts, nt, H, D, qt, kt);
                ts_paro_calib_observe(c2, &ts, n, H, D, qt + img0 * HD, kt + img0 * HD);
            }
            TS_CHECK(ts_paro_calib_finish(c1, 0.5, o1, m1, NULL, &e) == TS_OK &&
                         ts_paro_calib_finish(c2, 0.5, o2, m2, NULL, &e) == TS_OK,
                     "calibrate with text: %s", e.msg);
            TS_CHECK(!memcmp(o1, o2, sizeof o1) && !memcmp(m1, m2, sizeof m1),
                     "calibrating a call with text tokens: not the image's orders and masks");
            ts.img0 = 9; /* the image past the call's end */
            ts_paro_calib_observe(c1, &ts, nt, H, D, qt, kt);
            TS_CHECK(ts_paro_calib_status(c1, &e) == TS_ERR_SHAPE && strstr(e.msg, "from token 9 do not fit"),
                     "calibrating an image past the call: %s", e.msg);
        }
        ts_paro_calib_free(c1), ts_paro_calib_free(c2);
        free(qt), free(kt), free(vt), free(ot), free(rt), free(allow);
    }
    ts_attn_site other = site;
    other.grid[2] = 8;
    TS_CHECK(ts_paro_attention(c, pc, &other, 64, H, D, 0, H, TS_QUANT_NONE, q, k, v, NULL, out, &dens, &e) == TS_ERR_SHAPE &&
             strstr(e.msg, "calibrated for a 2x4x6 token grid"), "grid mismatch: %s", e.msg);
    other = site, other.layer = 2;
    TS_CHECK(ts_paro_attention(c, pc, &other, n, H, D, 0, H, TS_QUANT_NONE, q, k, v, NULL, out, &dens, &e) == TS_ERR_SHAPE &&
             strstr(e.msg, "covers 2 layers x 2 heads"), "layer past the calibration: %s", e.msg);
    ts_paro_free(pc);
    /* malformed files */
    snprintf(bad, sizeof bad, "%s/empty_row.safetensors", paro_dir);
    pc = NULL;
    TS_CHECK(write_calib(bad, 1, NULL, NULL) && ts_paro_load(&pc, bad, &e) == TS_ERR_FORMAT &&
             strstr(e.msg, "group 1, layer 1, head 1: query block 1 has no key block"), "empty row: %s", e.msg);
    snprintf(bad, sizeof bad, "%s/format.safetensors", paro_dir);
    TS_CHECK(write_calib(bad, 0, "other/1", NULL) && ts_paro_load(&pc, bad, &e) == TS_ERR_FORMAT &&
             strstr(e.msg, "not a PARO calibration file"), "format: %s", e.msg);
    /* 2^32 x 2^32 x 1 tokens: the product wraps to 0 in 64 bits (it once passed the bound and
     * the loader wrote past a 0-byte permutation) */
    TS_CHECK(write_calib(bad, 0, TS_PARO_FORMAT, "4294967296,4294967296,1") &&
             ts_paro_load(&pc, bad, &e) == TS_ERR_FORMAT && strstr(e.msg, "metadata 'grid'"), "wrapping grid: %s", e.msg);
    TS_CHECK(write_calib(bad, 0, TS_PARO_FORMAT, "1024,1024,1025") && ts_paro_load(&pc, bad, &e) == TS_ERR_FORMAT &&
             strstr(e.msg, "at most 2^30 tokens"), "grid over 2^30 tokens: %s", e.msg);
    { /* no layers: masks of no bytes fit any grid (2^30 tokens: 24 GB of permutations) */
        int64_t so[2] = {0, 2}, sm[5] = {2, 0, 2, 1 << 26, 1 << 23};
        ts_st_item it[2] = {{"orders", ts_tensor_make(TS_DTYPE_I32, 2, so, NULL)},
                            {"masks", ts_tensor_make(TS_DTYPE_U8, 5, sm, NULL)}};
        const char *meta[] = {"format", TS_PARO_FORMAT, "grid", "1024,1024,1024", "block", "16", "steps", "10",
                              "groups", "2"};
        TS_CHECK(ts_st_write(bad, it, 2, meta, 5, &e) == TS_OK && ts_paro_load(&pc, bad, &e) == TS_ERR_FORMAT &&
                 strstr(e.msg, "at least one of each"), "no layers: %s", e.msg);
    }
    TS_CHECK(ts_paro_load(&pc, "/nonexistent/p.safetensors", &e) == TS_ERR_IO, "missing: %s", e.msg);
    { /* the calibrator's maps: all six orders per group, summed over groups, or per group under given orders */
        const int64_t g246[3] = {2, 4, 6}; /* 3 blocks of 16 */
        TS_CHECK(ts_paro_calib_bytes(g246, 16, 2, 2, 2, TS_PARO_CALIB_ONE_PASS) == 2 * 2 * 2 * 6 * 9 * 8 &&
                     ts_paro_calib_bytes(g246, 16, 2, 2, 2, TS_PARO_CALIB_ORDERS) == 2 * 2 * 6 * 9 * 8 &&
                     ts_paro_calib_bytes(g246, 16, 2, 2, 2, TS_PARO_CALIB_MASKS) == 2 * 2 * 2 * 9 * 8,
                 "calibration map sizes");
        ts_paro_calib *cb = NULL;
        const int32_t ord[4] = {0, 1, 6, 2};
        TS_CHECK(ts_paro_calib_new(&cb, g246, 16, 2, 2, 2, 1, TS_PARO_CALIB_MASKS, NULL, &e) == TS_ERR_INVALID_ARG &&
                     ts_paro_calib_new(&cb, g246, 16, 2, 2, 2, 1, TS_PARO_CALIB_ORDERS, ord, &e) == TS_ERR_INVALID_ARG &&
                     ts_paro_calib_new(&cb, g246, 16, 2, 2, 2, 1, TS_PARO_CALIB_MASKS, ord, &e) == TS_ERR_INVALID_ARG &&
                     strstr(e.msg, "order 6 is not 0..5") && !cb,
                 "calibrator arguments: %s", e.msg);
    }
    TS_CHECK(pc == NULL, "nothing returned on errors");

    /* the schedule: a file name relative to the schedule's directory, --attn, quant=none */
    char sched[128];
    snprintf(sched, sizeof sched, "%s/paro.json", paro_dir);
    FILE *f = fopen(sched, "w");
    if (f) {
        fputs("{\"rules\": [{\"method\": \"paro\", \"params\": {\"calibration\": \"calib.safetensors\"}}]}", f);
        fclose(f);
    }
    ts_attn_schedule *s = NULL;
    TS_CHECK(ts_attn_schedule_load(&s, sched, &e) == TS_OK, "paro schedule with a relative file: %s", e.msg);
    if (s) { /* the checks before a run: the calibration's grid, heads and layers against the model's */
        const int64_t g246[3] = {2, 4, 6}, g248[3] = {2, 4, 8};
        TS_CHECK(ts_attn_schedule_check(s, 2, 2, g246, &e) == TS_OK, "paro check, the calibration's model: %s", e.msg);
        TS_CHECK(ts_attn_schedule_check(s, 2, 2, g248, &e) == TS_ERR_SHAPE &&
                     strstr(e.msg, "rule 1: ") && strstr(e.msg, "calibrated for a 2x4x6 token grid; this video's is 2x4x8"),
                 "paro check, another grid: %s", e.msg);
        TS_CHECK(ts_attn_schedule_check(s, 2, 3, g246, &e) == TS_ERR_SHAPE && strstr(e.msg, "rule 1: ") &&
                     strstr(e.msg, "covers 2 heads; this model has 3"), "paro check, heads: %s", e.msg);
        TS_CHECK(ts_attn_schedule_check(s, 4, 2, g246, &e) == TS_ERR_SHAPE &&
                     strstr(e.msg, "covers 2 layers; the rule reaches layer 2 of this model's 4"), "paro check, layers: %s",
                 e.msg);
        ts_attn_schedule *s2 = NULL; /* a rule over layers 0-1 only fits a deeper model */
        char js[320];
        snprintf(js, sizeof js, "{\"rules\": [{\"layers\": [\"0-1\"], \"method\": \"paro\", \"params\": "
                 "{\"calibration\": \"%s\"}}]}", path);
        TS_CHECK(ts_attn_schedule_parse(&s2, js, "layers01", &e) == TS_OK &&
                     ts_attn_schedule_check(s2, 4, 2, g246, &e) == TS_OK, "paro check, layers 0-1 of 4: %s", e.msg);
        ts_attn_schedule_free(s2);
        double dd = density_at(c, s, site, 2);
        TS_CHECK(fabs(dd - 8.0 / 9.0) < 1e-12, "scheduled paro at step 2: density %g", dd);
        ts_attn_schedule_free(s);
    }
    char spec[256];
    snprintf(spec, sizeof spec, "paro:calibration=%s,quant=none", path);
    s = NULL;
    TS_CHECK(ts_attn_schedule_from_spec(&s, spec, &e) == TS_OK, "--attn %s: %s", spec, e.msg);
    if (s) {
        site.step = 9;
        double dd = density_at(c, s, site, 2);
        TS_CHECK(fabs(dd - 1.0 / 3.0) < 1e-12, "--attn paro at step 9: density %g", dd);
        ts_attn_schedule_free(s);
    }
    /* bf16 operands: with quant none only; then within the rounding's reach of fp32 */
    snprintf(spec, sizeof spec, "paro:calibration=%s,precision=bf16", path);
    s = NULL;
    TS_CHECK(ts_attn_schedule_from_spec(&s, spec, &e) == TS_ERR_FORMAT && strstr(e.msg, "needs paro's 'quant' \"none\""),
             "paro int8 with bf16: %s", e.msg);
    ts_attn_schedule_free(s);
    for (int bf = 0; bf < 2; bf++) {
        snprintf(spec, sizeof spec, "paro:calibration=%s,quant=none%s", path, bf ? ",precision=bf16" : "");
        s = NULL;
        TS_CHECK(ts_attn_schedule_from_spec(&s, spec, &e) == TS_OK, "--attn %s: %s", spec, e.msg);
        TS_CHECK(s && ts_attention(c, s, &site, n, n, H, D, q, k, v, bf ? out : ref, &e) == TS_OK, "%s: %s", spec,
                 e.msg);
        ts_attn_schedule_free(s);
    }
    ts_test_stats pst;
    ts_test_compare("paro in bf16 vs fp32", out, ref, n * HD, 1e-2, &pst);
    TS_CHECK(pst.rel_l2 > 5e-4, "paro in bf16: rel err %.2e to fp32: were the operands bf16?", pst.rel_l2);
    snprintf(spec, sizeof spec, "paro:calibration=%s,quant=int4", path);
    s = NULL;
    TS_CHECK(ts_attn_schedule_from_spec(&s, spec, &e) == TS_ERR_FORMAT && strstr(e.msg, "'quant' must be"),
             "quant=int4: %s", e.msg);
    ts_attn_schedule_free(s);
    free(q), free(k), free(v), free(out), free(ref);
    remove(path), remove(sched);
    snprintf(bad, sizeof bad, "%s/empty_row.safetensors", paro_dir), remove(bad);
    snprintf(bad, sizeof bad, "%s/format.safetensors", paro_dir), remove(bad);
    rmdir(paro_dir);
}

/* ------------------------------------------------------------------ the DiT with a schedule */

/* The DiT fixture's forward (files dir/<fixture>.safetensors and its _io file; dir NULL: the
 * fixtures' directory) with sched. */
static float *dit_run_in(const char *dir, const char *fixture, ts_attn_schedule *sched, int64_t *n_out) {
    char wpath[4200], iopath[4200];
    if (dir) {
        snprintf(wpath, sizeof wpath, "%s/%s.safetensors", dir, fixture);
        snprintf(iopath, sizeof iopath, "%s/%s_io.safetensors", dir, fixture);
    } else {
        snprintf(wpath, sizeof wpath, "%s.safetensors", ts_test_fixture(fixture));
        snprintf(iopath, sizeof iopath, "%s_io.safetensors", ts_test_fixture(fixture));
    }
    ts_st_file *io = NULL;
    ts_err e = {0};
    wan_model *m = NULL;
    float *out = NULL;
    if (ts_st_open(&io, iopath, &e) == TS_OK && wan_load(&m, wpath, NULL, &e) == TS_OK)
        out = ts_test_wan_forward(m, io, sched, 3, 10, NULL, NULL, n_out, &e);
    TS_CHECK(out, "%s: %s", fixture, e.msg);
    wan_free(m);
    ts_st_close(io);
    return out;
}

static float *dit_run(const char *fixture, ts_attn_schedule *sched, int64_t *n_out) {
    return dit_run_in(NULL, fixture, sched, n_out);
}

/* wan_dit_a in the original layout plus SLA proj_l tensors per block (TurboDiffusion's
 * names) and, where variant is not NULL, the metadata "sla_variant"; bad = 1: a mis-shaped
 * weight, bad = 2: a weight without its bias. */
static int write_sla_dit(const char *dst, int bad, const char *variant) {
    char src[4200], names[4][64];
    snprintf(src, sizeof src, "%s", ts_test_fixture("wan_dit_a.safetensors"));
    static float w[2][144], b[2][12];
    ts_test_randn(&w[0][0], 288, 77, 0.3f);
    ts_test_randn(&b[0][0], 24, 78, 0.1f);
    ts_st_item add[4];
    int k = 0;
    for (int l = 0; l < 2; l++) {
        snprintf(names[k], sizeof names[k], "blocks.%d.self_attn.attn_op.local_attn.proj_l.weight", l);
        int64_t sw[2] = {12, bad == 1 && l == 1 ? 6 : 12}, sb[1] = {12};
        if (bad == 1 && l == 1) sw[0] = 24;
        add[k].name = names[k], add[k].t = ts_tensor_make(TS_DTYPE_F32, 2, sw, w[l]), k++;
        if (bad == 2 && l == 1) continue;
        snprintf(names[k], sizeof names[k], "blocks.%d.self_attn.attn_op.local_attn.proj_l.bias", l);
        add[k].name = names[k], add[k].t = ts_tensor_make(TS_DTYPE_F32, 1, sb, b[l]), k++;
    }
    const ts_test_rewrite r = {.rename = wan_dit_rename_cb, .keep_meta = 1, .add = add, .n_add = k,
                               .meta_key = variant ? "sla_variant" : NULL, .meta_val = variant};
    return ts_test_write_variant(src, dst, &r);
}

static void test_dit_sla(void) {
    char dir[] = "/tmp/ts_sla_XXXXXX";
    if (!mkdtemp(dir)) return;
    char path[600];
    snprintf(path, sizeof path, "%s/wan_dit_a.safetensors", dir);
    /* the io file is found next to the weights by dit_run_in: link it */
    char io[600], io_src[4200];
    snprintf(io, sizeof io, "%s/wan_dit_a_io.safetensors", dir);
    TS_CHECK(realpath(ts_test_fixture("wan_dit_a_io.safetensors"), io_src) != NULL, "fixture path");
    TS_CHECK(symlink(io_src, io) == 0, "link io");
    TS_CHECK(write_sla_dit(path, 0, NULL) == 0, "write an SLA checkpoint");
    wan_model *m = NULL;
    ts_err e = {0};
    TS_CHECK(wan_load(&m, path, NULL, &e) == TS_OK, "SLA checkpoint loads: %s", e.msg);
    int64_t count = m ? wan_tensor_count(m) : 0;
    wan_free(m);
    TS_CHECK(count == 2 + 15 + 2 * (27 + 2) - 2, "bound tensors incl. proj_l: %lld", (long long)count);
    ts_attn_schedule *s = NULL;
    ts_attn_schedule_from_spec(&s, "sla:topk=0.5,block_q=16,block_k=16", &e);
    int64_t n = 0;
    float *with = dit_run_in(dir, "wan_dit_a", s, &n), *without = dit_run("wan_dit_a", s, &n);
    ts_test_stats st;
    if (with && without) {
        ts_test_compare("DiT with proj_l vs without (expected to differ)", with, without, n, 1e9, &st);
        TS_CHECK(st.rel_l2 > 1e-4, "the SLA linear branch changes the DiT output (rel-L2 %g)", st.rel_l2);
    }
    free(with), free(without);
    ts_attn_schedule_free(s);
    /* the variant a rule leaves out is the checkpoint's: its metadata "sla_variant", else all keys */
    {
        const char *specs[3] = {"sla:topk=0.5,block_q=16,block_k=16", "sla:topk=0.5,block_q=16,block_k=16,variant=all",
                                "sla:topk=0.5,block_q=16,block_k=16,variant=complement"};
        for (int f = 0; f < 2; f++) { /* the file says "complement", then nothing */
            TS_CHECK(write_sla_dit(path, 0, f ? NULL : "complement") == 0, "write an SLA checkpoint (%d)", f);
            float *o[3] = {NULL, NULL, NULL};
            for (int i = 0; i < 3; i++) {
                ts_attn_schedule *si = NULL;
                TS_CHECK(ts_attn_schedule_from_spec(&si, specs[i], &e) == TS_OK, "%s: %s", specs[i], e.msg);
                o[i] = dit_run_in(dir, "wan_dit_a", si, &n);
                const char *nt = ts_attn_schedule_notes(si);
                const int said = nt && strstr(nt, "sla: the checkpoint's proj_l was trained with the paper's linear branch");
                TS_CHECK(said == (f == 0 && i == 0), "file %d, spec %d: the variant from the checkpoint %s: '%s'", f, i,
                         said ? "said" : "not said", nt ? nt : "");
                ts_attn_schedule_free(si);
            }
            if (o[0] && o[1] && o[2]) {
                const int same = f ? 1 : 2, other = f ? 2 : 1;
                TS_CHECK(!memcmp(o[0], o[same], (size_t)n * sizeof(float)),
                         "metadata %s: no variant runs '%s'", f ? "absent" : "complement", f ? "all" : "complement");
                ts_test_compare("the variants (expected to differ)", o[0], o[other], n, 1e9, &st);
                TS_CHECK(st.rel_l2 > 1e-4, "metadata %s: the other variant differs (rel-L2 %g)",
                         f ? "absent" : "complement", st.rel_l2);
            }
            for (int i = 0; i < 3; i++) free(o[i]);
        }
        /* a value that names neither: refused where there is a proj_l to use it, ignored where not */
        TS_CHECK(write_sla_dit(path, 0, "both") == 0, "write a bad sla_variant");
        ts_status r2 = wan_load(&m, path, NULL, &e);
        TS_CHECK(r2 == TS_ERR_FORMAT && strstr(e.msg, "sla_variant") && strstr(e.msg, "both"), "bad sla_variant: %s",
                 e.msg);
        wan_free(m);
        m = NULL;
        const ts_test_rewrite r = {.rename = wan_dit_rename_cb, .keep_meta = 1, .meta_key = "sla_variant",
                                   .meta_val = "both"};
        char src[4200];
        snprintf(src, sizeof src, "%s", ts_test_fixture("wan_dit_a.safetensors"));
        TS_CHECK(ts_test_write_variant(src, path, &r) == 0, "write a bad sla_variant without proj_l");
        r2 = wan_load(&m, path, NULL, &e);
        TS_CHECK(r2 == TS_OK, "a bad sla_variant without proj_l loads: %s", e.msg);
        wan_free(m);
        m = NULL;
    }
    for (int bad = 1; bad <= 2; bad++) {
        write_sla_dit(path, bad, NULL);
        ts_status r = wan_load(&m, path, NULL, &e);
        TS_CHECK(bad == 1 ? r == TS_ERR_SHAPE && strstr(e.msg, "proj_l.weight") : r == TS_ERR_MISSING && strstr(e.msg, "proj_l"),
                 "bad proj_l %d: %s", bad, e.msg);
        wan_free(m);
        m = NULL;
    }
    unlink(path), unlink(io), rmdir(dir);
}

static void test_dit(void) {
    int64_t n = 0;
    float *plain = dit_run("wan_dit_a", NULL, &n); /* grid 3 x 3 x 5 */
    ts_attn_schedule *dense = NULL, *wide = NULL, *narrow = NULL;
    ts_err e = {0};
    ts_attn_schedule_from_spec(&dense, "dense", &e);
    ts_attn_schedule_from_spec(&wide, "gna:window=3x3x5,block=16", &e);
    ts_attn_schedule_from_spec(&narrow, "gna:window=1x3x3,block=16,tile=1x3x3", &e);
    if (!plain || !dense || !wide || !narrow) {
        TS_CHECK(0, "setup: %s", e.msg);
    } else {
        float *a = dit_run("wan_dit_a", dense, &n);
        TS_CHECK(a && memcmp(a, plain, (size_t)n * sizeof(float)) == 0, "dense-everywhere schedule = no schedule, exactly");
        TS_CHECK(ts_attn_schedule_n_records(dense) == 2 && ts_attn_schedule_mean_density(dense) == 1.0,
                 "one density record per layer (2), all dense");
        float *b = dit_run("wan_dit_a", wide, &n);
        if (b) ts_test_compare("GNA window = the whole grid vs dense", b, plain, n, 1e-5, NULL);
        float *d = dit_run("wan_dit_a", narrow, &n);
        ts_test_stats stt;
        if (d) {
            ts_test_compare("narrow GNA vs dense (expected to differ)", d, plain, n, 1e9, &stt);
            TS_CHECK(stt.rel_l2 > 1e-3, "a narrow window changes the output (rel-L2 %g)", stt.rel_l2);
        }
        TS_CHECK(ts_attn_schedule_mean_density(narrow) < 0.5, "narrow density %g", ts_attn_schedule_mean_density(narrow));
        /* dense with bf16 operands (self and cross-attention): near the fp32 output, not equal */
        ts_attn_schedule *half = NULL;
        TS_CHECK(ts_attn_schedule_parse(&half, "{\"rules\": [{\"method\": \"dense\", \"params\": {\"precision\": \"bf16\"}},"
                                              " {\"attention\": \"cross\", \"method\": \"dense\", \"params\": {\"precision\": \"bf16\"}}]}",
                                        "bf16", &e) == TS_OK, "%s", e.msg);
        float *h = half ? dit_run("wan_dit_a", half, &n) : NULL;
        if (h) {
            ts_test_compare("dense in bf16 vs fp32", h, plain, n, 1e-2, &stt);
            TS_CHECK(stt.rel_l2 > 1e-5, "bf16 operands change the output a little (rel-L2 %g)", stt.rel_l2);
        }
        ts_attn_schedule_free(half);
        free(a), free(b), free(d), free(h);
    }
    free(plain);
    ts_attn_schedule_free(dense), ts_attn_schedule_free(wide), ts_attn_schedule_free(narrow);
}

int main(void) {
    ts_ctx c;
    ts_ctx_init(&c, 1);
    test_na_semantics();
    test_clear_semantics();
    test_tile_perm();
    test_plans(&c);
    test_padded_full();
    test_draft(&c);
    test_sla(&c);
    test_sla_ties();
    test_sla_topk_sorted();
    test_schedule_errors(&c);
    test_shipped_schedules();
    test_schedule_matching(&c);
    test_precision(&c);
    test_block_density(&c);
    test_attn_error(&c);
    test_paro_orders();
    test_paro_kernel(&c);
    test_bf16_dynamic(&c);
    test_text_tokens(&c);
    { /* the plans and the INT8 kernel again with a workspace that starts full of NaN bytes
       * and is reused from plan to plan (as the library's handle keeps one) */
        ts_workspace ws = {0};
        ts_test_dirty_workspace(&ws, 4u << 20);
        ts_ctx cw = c;
        cw.ws = &ws;
        test_plans(&cw);
        test_paro_kernel(&cw);
        test_precision(&cw);
        test_attn_error(&cw);
        ts_workspace_free(&ws);
    }
    test_paro_calib(&c);
    test_dit();
    test_dit_sla();
    return ts_test_summary("attn_methods");
}
