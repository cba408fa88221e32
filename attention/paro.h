/*
 * paro.h — PAROAttention (arXiv 2506.16054; shared/docs/attention-methods.md §5): per head,
 * the video tokens are reordered by one of the six axis orders of the F x H x W grid so that
 * the head's attention pattern becomes block-shaped, and a static block mask, calibrated
 * offline per timestep group, picks the key blocks each query block computes; Q·Kᵀ runs in
 * INT8 (plan.h, TS_QUANT_INT8_QK).
 *
 * Orders, outermost axis first (the reference's codes): 0 FHW (the tokens' own order),
 * 1 FWH, 2 HWF, 3 HFW, 4 WHF, 5 WFH.
 *
 * Calibration file (a safetensors file, written by tessera-calibrate):
 *   orders  I32 [L, H]                        the order code of each layer and head
 *   masks   U8  [G, L, H, nb, ceil(nb / 8)]   bit j % 8 of byte j / 8 of row i: query block
 *                                             i computes key block j (blocks of `block`
 *                                             tokens in the head's order; the last ragged)
 *   metadata: format "tessera-paro/1", grid "F,H,W", block, steps (the sampling steps it was
 *   calibrated with), groups, density (the target), and free-form provenance (model,
 *   prompts, seed, tessera version).
 * Step s of an n-step run uses group floor(s · G / n), so a run with another step count
 * maps its trajectory onto the same groups. Every query block lists at least one key block.
 */
#ifndef TS_ATTENTION_PARO_H
#define TS_ATTENTION_PARO_H

#include <stdint.h>

#include "../src/ctx.h"
#include "../src/status.h"
#include "attention.h"
#include "plan.h"

#define TS_PARO_FORMAT "tessera-paro/1"
#define TS_PARO_ORDERS 6

const char *ts_paro_order_name(int order); /* "FHW" .. "WFH" (outermost first); "?" past them */

/* perm[position] = token for the grid flattened in order `order` (0..5). */
void ts_paro_order_perm(const int64_t grid[3], int order, int32_t *perm);

typedef struct ts_paro_desc {
    int64_t grid[3];
    int block, groups, layers, heads, steps;
    double density; /* the target fraction of blocks */
} ts_paro_desc;

typedef struct ts_paro ts_paro;

/* Loads and validates a calibration file. */
ts_status ts_paro_load(ts_paro **out, const char *path, ts_err *err);
/* The same from an open safetensors file (path names it in messages; f stays open and may be
 * closed once this returns: nothing in *out points into it). */
typedef struct ts_st_file ts_st_file;
ts_status ts_paro_read(ts_paro **out, const ts_st_file *f, const char *path, ts_err *err);
void ts_paro_free(ts_paro *p); /* NULL is a no-op */
const ts_paro_desc *ts_paro_info(const ts_paro *p);
int ts_paro_order(const ts_paro *p, int layer, int head);
/* 1 when query block i of (group, layer, head) computes key block j. */
int ts_paro_block_on(const ts_paro *p, int group, int layer, int head, int i, int j);
/* The group of step `step` in an n-step run (0 when either is unknown). */
int ts_paro_group(const ts_paro *p, int step, int n_steps);

/* The plan of one head (cached in p): its order's permutation, the group's block list,
 * the quantisation asked for. */
ts_status ts_paro_plan(ts_paro *p, int group, int layer, int head, int64_t H, int64_t D, ts_quant quant,
                       ts_attn_plan *out, ts_err *err);

/* Runs heads [h0, h1) of one self-attention call at `site` (its grid and layer must be the
 * calibration's); the kernel runs on kop (NULL: q, k, v). *density (may be NULL) gets the
 * mean fraction of scores computed. */
ts_status ts_paro_attention(ts_ctx *c, ts_paro *p, const ts_attn_site *site, int64_t n, int64_t H, int64_t D,
                            int64_t h0, int64_t h1, ts_quant quant, const float *q, const float *k, const float *v,
                            const ts_attn_operands *kop, float *out, double *density, ts_err *err);

/* Writes a calibration file (temp file + rename): orders [L·H], masks [G·L·H·nb·nb] as 0/1
 * bytes (query block major); extra metadata pairs in meta[2i], meta[2i+1]. */
ts_status ts_paro_write(const char *path, const ts_paro_desc *d, const int32_t *orders, const uint8_t *masks,
                        const char *const *meta, int n_meta, ts_err *err);

/* ---- calibration (tessera-calibrate): attention maps in, orders and masks out ----
 *
 * The calibrator watches dense self-attention calls (as the schedule's observer) and, per
 * timestep group, layer and head, sums each sampled query row's softmax probabilities into
 * block bins under all six orders. Finishing picks, per layer and head, the order whose
 * summed map puts the most mass in its top density·nb² blocks (the most block-concentrated
 * map; ties go to the lower code), then per group keeps that order's top density·nb² blocks
 * (plus each empty row's heaviest block, so no query block is left without keys).
 *
 * The maps of every group under every order take G·L·H·6·nb² doubles (45 GB for Wan2.1 1.3B
 * at 480p and 81 frames in blocks of 64), so the work can be split in two passes over the same
 * prompts: TS_PARO_CALIB_ORDERS keeps the maps summed over the groups (L·H·6·nb²) and finishes
 * with the orders alone; TS_PARO_CALIB_MASKS, given those orders, keeps each group's map under
 * its head's order (G·L·H·nb²) and finishes with the masks. The two give what one
 * TS_PARO_CALIB_ONE_PASS gives (the sums' order aside). */
typedef struct ts_paro_calib ts_paro_calib;
typedef enum ts_paro_calib_mode { TS_PARO_CALIB_ONE_PASS = 0, TS_PARO_CALIB_ORDERS, TS_PARO_CALIB_MASKS } ts_paro_calib_mode;

/* orders: [L·H], for TS_PARO_CALIB_MASKS only (else NULL). */
ts_status ts_paro_calib_new(ts_paro_calib **out, const int64_t grid[3], int block, int layers, int heads,
                            int groups, int row_stride, ts_paro_calib_mode mode, const int32_t *orders, ts_err *err);
/* Bytes of maps a calibrator of this geometry and mode keeps (INT64_MAX past that). */
int64_t ts_paro_calib_bytes(const int64_t grid[3], int block, int layers, int heads, int groups,
                            ts_paro_calib_mode mode);
void ts_paro_calib_free(ts_paro_calib *c); /* NULL is a no-op */
/* A ts_attn_observer (user = the calibrator); a call it cannot use (another grid, layer or
 * head count) makes ts_paro_calib_status fail. */
void ts_paro_calib_observe(void *user, const struct ts_attn_site *site, int64_t n, int64_t heads, int64_t head_dim,
                           const float *q, const float *k);
ts_status ts_paro_calib_status(const ts_paro_calib *c, ts_err *err);
int64_t ts_paro_calib_calls(const ts_paro_calib *c);
/* orders [L·H], masks [G·L·H·nb·nb] (0/1), captured [L·H] (may be NULL): the fraction of the
 * attention mass the chosen blocks hold, averaged over groups. TS_PARO_CALIB_ORDERS: orders
 * only (masks and captured NULL); TS_PARO_CALIB_MASKS: orders are the given ones. */
ts_status ts_paro_calib_finish(const ts_paro_calib *c, double density, int32_t *orders, uint8_t *masks,
                               double *captured, ts_err *err);

#endif
