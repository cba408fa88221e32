/*
 * schedule.h — the attention schedule: which method runs at each attention call.
 *
 * A schedule file is JSON: {"rules": [RULE, ...]}, an ordered list; for each call (and
 * head) the LAST rule that matches wins, so files read from general to specific. A call
 * no rule matches runs dense; cross-attention runs dense unless a rule says
 * "attention": "cross". A rule:
 *
 *   {"layers": [0, "2-5"],          optional; ints and inclusive "a-b" ranges; default all
 *    "steps": ["0-9", 12],          optional; step indices (0-based), or
 *    "steps": {"fraction": [0, 0.2]},  the part [a, b) of the trajectory (step / n_steps)
 *    "timesteps": [925, 1000],      optional; the model timestep t in [a, b], or
 *    "timesteps": {"above": 925},   t > a
 *    "heads": ["0-5"],              optional; default all heads
 *    "attention": "self",           optional; "self" (default) or "cross"
 *    "method": "gna",               dense | gna | clear | draft | sla | paro
 *    "params": {...}}               the method's parameters (below)
 *
 * gna:   window [t, h, w] (or one int for all) default [3, 7, 7]; stride default 1;
 *        dilation default 1; causal [bool x3] default false; tile [t, h, w] default
 *        [1, 8, 8]; block default 64. A window (or dilation) larger than the grid is
 *        clamped to it, a stride larger than the window to the window.
 * clear: radius (tokens, strict dx² + dy² < r², same frame) default 8; tile default
 *        [1, 8, 8]; block default 64.
 *        (gna, clear) Tokens run tile by tile. Where the tile's volume is a multiple of the
 *        block, each tile starts a block and an edge tile the grid cuts short is padded to
 *        whole blocks (a 30 x 52 frame in 8 x 8 tiles: 32 x 56 slots), so that no block mixes
 *        tiles; the padding is never computed past a block's last token.
 * draft: pool [h, w] (regions per frame, h·w <= 256: the block) default [8, 16];
 *        sparsity in [0, 1) default 0.75 (Wan's setting in the reference code). The pool
 *        must make at most TS_DRAFT_MAX_REGIONS (4,096) regions, T·⌈H/h⌉·⌈W/w⌉, on the grid.
 * sla:   topk (fraction of key blocks per query block) default 0.1 (TurboDiffusion);
 *        block_q default 128, block_k default 64; variant "all" (the linear branch over
 *        all keys: TurboDiffusion, what its checkpoints were trained with) or "complement"
 *        (over the non-selected blocks: the paper); default: the branch the model's proj_l
 *        was trained with (ts_attn_site.lin_complement: for Wan the checkpoint's metadata
 *        "sla_variant", else "all"). The linear branch needs the layer's proj_l weights;
 *        without them SLA is top-k block-sparse (and says so).
 * paro:  calibration (required): a file made by tessera-calibrate (attention/paro.h), relative
 *        to the schedule file's directory (to the working directory for --attn); quant
 *        "int8" (Q·Kᵀ in INT8, the default) or "none" (fp32). The file fixes the token grid,
 *        the block size, each head's axis order and a block mask per timestep group.
 * dense: no parameters but precision.
 * every method: precision "fp32" (the default) or "bf16": the kernel runs on copies of q, k, v
 *        rounded to bf16 (made once per call, for the rules that ask). On CPUs with AVX512-FP16
 *        (Intel since Sapphire Rapids) or AVX512-BF16 (AMD) that kernel is the faster one
 *        (cpu_attn.c); elsewhere it only rounds. The methods still plan from the fp32 q, k, and
 *        SLA's linear branch reads them; the output is fp32. Costs about 3e-3 relative error
 *        against fp32 at head dim 128 (more where the scores are very peaked). paro takes it
 *        only with quant "none": with INT8 Q·Kᵀ the scores do not run in 16 bits, and P·V
 *        on bf16 V would only add rounding. The copies (2 bytes per value of q, k and v) stay
 *        in the context's workspace between calls, as the kernel's panels do.
 *
 * Errors name the rule (1-based) and the field. `--attn METHOD[:k=v,...]` on the command
 * line is a one-rule schedule (ts_attn_schedule_from_spec: "gna:window=3x7x7,stride=1").
 *
 * The schedule also caches the static plans it builds (per rule and shape) and records
 * the density each self-attention call achieved, for reports.
 */
#ifndef TS_ATTENTION_SCHEDULE_H
#define TS_ATTENTION_SCHEDULE_H

#include <stdint.h>

#include "../src/status.h"

typedef struct ts_attn_schedule ts_attn_schedule;
struct ts_attn_site; /* attention.h */

ts_status ts_attn_schedule_load(ts_attn_schedule **out, const char *path, ts_err *err);
/* label names the source in messages. */
ts_status ts_attn_schedule_parse(ts_attn_schedule **out, const char *json, const char *label, ts_err *err);
ts_status ts_attn_schedule_from_spec(ts_attn_schedule **out, const char *spec, ts_err *err);
/* A schedule file when s ends in .json, else a METHOD[:k=v,...] spec (tessera-probe's and
 * tessera-bench's --attn). */
ts_status ts_attn_schedule_open(ts_attn_schedule **out, const char *s, ts_err *err);
void ts_attn_schedule_free(ts_attn_schedule *s); /* NULL is a no-op */
/* Before a run: whether the rules fit a model of `layers` DiT blocks with `heads` heads on
 * the token grid `grid` (what is known before any call; a PARO calibration must be for this
 * grid and heads and cover every layer its rule reaches, whether or not later rules or the
 * steps leave it any call; a DraftAttention pool must make at most TS_DRAFT_MAX_REGIONS
 * regions). Errors name the rule. */
ts_status ts_attn_schedule_check(const ts_attn_schedule *s, int layers, int64_t heads, const int64_t grid[3],
                                 ts_err *err);
int ts_attn_schedule_rules(const ts_attn_schedule *s);

/* Density records of the self-attention calls so far: layer, step, fraction of scores,
 * fraction of (query block, key block) pairs the kernel ran (ts_attn_plan_block_density), and
 * of 4-query x 16-key tiles holding a score (ts_attn_plan_tile_density). For SLA and PARO,
 * whose blocks are whole, the three are the same; DraftAttention's block and tile densities
 * are recorded as its density too, the real tokens' pairs: its region blocks carry padding at
 * the grid's edges, which the kernel skips (a padded block runs as a shorter one). */
typedef struct ts_attn_record {
    int layer, step;
    double density, block_density, tile_density;
    double error; /* with ts_attn_schedule_set_error: the call's output against dense attention on
                   * the same q, k, v, relative L2 (0 where every head ran dense in fp32); else -1 */
} ts_attn_record;
int ts_attn_schedule_n_records(const ts_attn_schedule *s);
const ts_attn_record *ts_attn_schedule_record(const ts_attn_schedule *s, int i);
/* Mean density over the records (1 when there are none). */
double ts_attn_schedule_mean_density(const ts_attn_schedule *s);
double ts_attn_schedule_mean_block_density(const ts_attn_schedule *s);
double ts_attn_schedule_mean_tile_density(const ts_attn_schedule *s);
void ts_attn_schedule_clear_records(ts_attn_schedule *s);
/* on: every self-attention call also runs dense attention on its q, k, v (one more dense
 * attention a call, its output in the context's workspace) and records the relative L2 error
 * ||out - dense|| / ||dense|| of what the schedule ran (ts_attn_record.error): what a sparse
 * schedule costs at each layer and step, on the inputs the schedule's own run produced. */
void ts_attn_schedule_set_error(ts_attn_schedule *s, int on);
/* Mean error over the records that measured one (-1 when none did). */
double ts_attn_schedule_mean_error(const ts_attn_schedule *s);
/* What the calls so far did that the user should know of (e.g. SLA without its proj_l
 * weights runs as plain top-k block-sparse attention), a line each, or NULL: each is said
 * once per schedule (and to the context's logger as a warning). */
const char *ts_attn_schedule_notes(const ts_attn_schedule *s);

/* Called with every self-attention call's q and k ([n, heads·head_dim]) before it runs
 * (the PARO calibration tool records attention maps through it). NULL: none. */
typedef void (*ts_attn_observer)(void *user, const struct ts_attn_site *site, int64_t n, int64_t heads,
                                 int64_t head_dim, const float *q, const float *k);
void ts_attn_schedule_set_observer(ts_attn_schedule *s, ts_attn_observer fn, void *user);

#endif
