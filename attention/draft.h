/*
 * draft.h — DraftAttention (arXiv 2505.14708; shared/docs/attention-methods.md §2): a
 * low-resolution attention map picks, per head, which region pairs run exactly.
 *
 * Per frame the T x H x W token grid is cut into pool_h x pool_w regions (regions at the
 * right and bottom edge are padded: any resolution works); Q and K are average-pooled per
 * region (over the region's real tokens), A = softmax(q̃ k̃ᵀ / sqrt(D)) per head over the
 * S regions; one global threshold per head keeps the entries >= the k-th smallest,
 * k = floor(sparsity · S²) (ties kept), plus the diagonal so no row is empty. Tokens are
 * reordered so each region is one kernel block of pool_h · pool_w slots (its tokens
 * row-major, then its padding slots, which hold no token, so the kernel runs an edge region
 * as a shorter full block instead of masking it), block-sparse attention runs, and the
 * output lands in token order.
 */
#ifndef TS_ATTENTION_DRAFT_H
#define TS_ATTENTION_DRAFT_H

#include <stdint.h>

#include "../src/ctx.h"
#include "../src/status.h"
#include "build.h"
#include "plan.h"

typedef struct ts_draft_params {
    int pool[2];     /* pool_h, pool_w; pool_h · pool_w <= 256 (the block size) */
    double sparsity; /* [0, 1): the fraction of the map's entries below the threshold */
} ts_draft_params;

/* The most regions a plan takes: its map and the map's sorted copy are S x S doubles per
 * head (2 x 128 MiB at 4,096), a head per thread. */
#define TS_DRAFT_MAX_REGIONS 4096

/* The regions (pooled blocks) pool makes on grid: T · ⌈H / pool_h⌉ · ⌈W / pool_w⌉. */
int64_t ts_draft_regions(const int64_t grid[3], const int pool[2]);

/* The region order: perm [n_kern] (slot → token or −1) for the grid; returns n_kern, or
 * −1 when perm cannot be allocated. *perm malloc'd. */
int64_t ts_draft_perm(const int64_t grid[3], const int pool[2], int32_t **perm);

/* Head h's plan from q, k [n, H·D] (n = the grid's tokens): pooled map, threshold, block
 * list. The plan points into st (perm included) and covers head h only. */
ts_status ts_draft_plan(const int64_t grid[3], int64_t H, int64_t D, int64_t h, const ts_draft_params *dp,
                        const float *q, const float *k, ts_attn_plan *p, ts_plan_store *st, ts_err *err);

/* Runs heads [h0, h1) of one self-attention call of n tokens, planned from q, k; the kernel
 * runs on kop (NULL: q, k, v). The grid's tokens are [img0, img0 + T·H·W); any others are
 * text, whose query and key blocks run dense (ts_plan_add_text), as the reference sets text
 * rows and columns of the block mask. *density (may be NULL) gets the mean fraction of scores
 * computed over those heads. */
ts_status ts_draft_attention(ts_ctx *c, const int64_t grid[3], int64_t n, int64_t img0, int64_t H, int64_t D,
                             int64_t h0, int64_t h1, const ts_draft_params *dp, const float *q, const float *k,
                             const float *v, const ts_attn_operands *kop, float *out, double *density, ts_err *err);

#endif
