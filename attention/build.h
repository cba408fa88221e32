/*
 * build.h — building block maps for the static masked methods (GNA, CLEAR): the tiling
 * permutation and the CSR block list derived from a plan's element mask.
 *
 * A built plan points into a ts_plan_store that owns its arrays.
 */
#ifndef TS_ATTENTION_BUILD_H
#define TS_ATTENTION_BUILD_H

#include <stdint.h>

#include "../src/ctx.h"
#include "../src/status.h"
#include "plan.h"

typedef struct ts_plan_store {
    int32_t *perm, *ptr, *idx;
    uint8_t *full;
    uint64_t *bits;
    int64_t *bits_off;
} ts_plan_store;

void ts_plan_store_free(ts_plan_store *s);

/* Kernel token order for n tokens whose image part (mask->grid at mask->img0) is laid out
 * tile by tile: tiles of tile[0] x tile[1] x tile[2] in row-major tile order, row-major
 * inside a tile, edge tiles smaller; text tokens keep their places before and after the
 * image. perm[kernel position] = token. */
ts_status ts_plan_tile_perm(const ts_mask *mask, int64_t n, const int tile[3], int32_t *perm,
                            ts_err *err);

/* The same order with each tile (and the image after the text before it) starting a block:
 * an edge tile's tokens are followed by padding slots (perm −1) up to the next multiple of
 * blk, so that a block never mixes tiles and a tile's blocks are full ones wherever the mask
 * allows. Only when the tile's volume is a multiple of blk (otherwise every tile would be
 * padded): else the order is ts_plan_tile_perm's. ts_plan_tile_len gives the order's length
 * (the plan's n_kern when it is over n; −1 for a bad grid or tile); perm holds that many. */
int64_t ts_plan_tile_len(const ts_mask *mask, int64_t n, const int tile[3], int64_t blk);
ts_status ts_plan_tile_perm_padded(const ts_mask *mask, int64_t n, const int tile[3], int64_t blk,
                                   int32_t *perm, ts_err *err);

/* The padded order with each tile laid out in sub-tiles of sub[0] x sub[1] x sub[2] (sub NULL:
 * the tile), row-major sub-tile order inside the tile and row-major inside a sub-tile, edge
 * sub-tiles smaller. Same length as the padded order. The kernels' units are 16 keys and 8
 * query rows in this order, so the sub-tile sets their shape: 4 x 4 squares follow a CLEAR
 * circle's edge closer than a row-major tile's 2 x 8 strips. */
ts_status ts_plan_tile_perm_sub(const ts_mask *mask, int64_t n, const int tile[3], const int sub[3], int64_t blk,
                                int32_t *perm, ts_err *err);

/* The same order with the tiles nested as nest[0] (outermost), nest[1], nest[2] (innermost),
 * axes 0 t, 1 h, 2 w (NULL: t, h, w, the row-major tile order above): a query block's
 * neighbours in the kernel order are then its tile's neighbours along nest[2]. A nest that is
 * not an order of 0, 1, 2 is refused. */
ts_status ts_plan_tile_perm_nest(const ts_mask *mask, int64_t n, const int tile[3], const int sub[3],
                                 const int nest[3], int64_t blk, int32_t *perm, ts_err *err);

/* The nest for a mask's window: the axes by how many tiles a query's window spans along them
 * (NA: window x dilation; CLEAR: its own frame, and 2 x radius across; else the grid), fewest
 * outermost, ties in t, h, w order. The kernel runs a thread's query blocks in kernel order,
 * so neighbours along the innermost axis share the most key blocks: a window 17 frames deep
 * with one 8 x 8 tile row shares 16 of 17 frames' blocks from one query tile to the next
 * along t, 2 of 3 along w. */
void ts_plan_tile_nest(const ts_mask *mask, const int tile[3], int nest[3]);

/* Joins the one-head plans p[0 .. nh) of heads p[0].h0 onwards (the same blocks, order and
 * kernel length; lists differ; exact_full NULL: all full) into *all: a list per head
 * (exact_per_head), in st (freed first), the density their mean. The lists' total length
 * must fit in int32. */
ts_status ts_plan_join_heads(const ts_attn_plan *p, int64_t nh, ts_attn_plan *all, ts_plan_store *st, ts_err *err);

/* Extends a one-list plan over an image alone (G = img->nq tokens, token i the image's i-th;
 * square blocks; kernel order img->perm of img->n_kern slots, or the identity) to a call of n
 * tokens whose image is [img0, img0 + G) and the rest text, kept dense both ways as
 * DraftAttention and PARO do (shared/docs/attention-methods.md): the kernel order is the
 * image's, padded to a whole block, then the text tokens in order in blocks (the last padded);
 * each image query block lists its image blocks as before and every text block, each text
 * query block every block. Image entries keep their flags, text ones are full. The density
 * counts every pair with a text token. Plans with an element mask are refused (GNA and CLEAR
 * take text through the mask's img0). The arrays go to st (freed first). */
ts_status ts_plan_add_text(const ts_attn_plan *img, int64_t n, int64_t img0, ts_attn_plan *out, ts_plan_store *st,
                           ts_err *err);

/* A method's plan of head h from q, k [n, H·D] (its arrays in st): what ts_plan_heads_run builds. */
typedef ts_status (*ts_head_plan_fn)(const void *user, int64_t h, const float *q, const float *k, ts_attn_plan *p,
                                     ts_plan_store *st, ts_err *err);
typedef struct ts_head_plans {
    int64_t nh;
    ts_attn_plan *p;   /* [nh] each head's plan, */
    ts_plan_store *st; /* [nh] and its arrays */
    double density;    /* their mean */
} ts_head_plans;

/* SLA's linear branch for ts_plan_heads_run: proj_l's weights and bias (b may be NULL), the
 * fp32 v the branch reads with the call's fp32 q and k, and which keys it takes (all: every
 * key, plan.lin_all; 0: the keys of the blocks a query block's list does not name). */
typedef struct ts_lin_branch {
    const float *w, *b, *v;
    int all;
} ts_lin_branch;

/* A dynamic method's call (DraftAttention, SLA): the plans of heads [h0, h0 + nh) built in
 * parallel (each is serial work), joined into one plan with a list per head (the same
 * kernel order for all) and run in one kernel call on ops, which lays out K and V once for
 * all heads instead of once a head; with lin (or NULL), the kernel adds SLA's linear branch,
 * from q, k and lin->v whatever ops are. The heads' plans stay in *hp (and their mean
 * density); ts_head_plans_free frees them, on errors too. */
ts_status ts_plan_heads_run(ts_ctx *c, int64_t h0, int64_t nh, ts_head_plan_fn fn, const void *user, const float *q,
                            const float *k, const ts_attn_operands *ops, const ts_lin_branch *lin, float *out,
                            ts_head_plans *hp, ts_err *err);
void ts_head_plans_free(ts_head_plans *hp);

/* Fills p's block list from its mask and permutation: for each query block, every key block
 * holding an allowed pair (text keys are allowed for every query, text queries allow every
 * key), flagged full when every pair is allowed, with the element mask of each partial block
 * precomputed (exact_bits); and p->density. p needs nq == nk, the block
 * sizes, perm (or NULL) and mask; the arrays go to st (freed first). */
ts_status ts_plan_build_masked(ts_attn_plan *p, ts_plan_store *st, ts_err *err);

#endif
