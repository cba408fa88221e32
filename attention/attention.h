/*
 * attention.h — the one entry point models use for attention.
 *
 * A model passes the site of the call (layer, step, self/cross) and the query
 * token grid; the schedule (NULL = dense everywhere) picks the method, the
 * method builds a plan (plan.h), and the context's backend executes it.
 * attention/ never knows which model calls it.
 */
#ifndef TS_ATTENTION_ATTENTION_H
#define TS_ATTENTION_ATTENTION_H

#include <stdint.h>

#include "../src/ctx.h"
#include "../src/status.h"
#include "plan.h"

typedef enum ts_attn_kind { TS_ATTN_SELF = 0, TS_ATTN_CROSS } ts_attn_kind;

/* Where an attention call happens; the schedule matches on these. */
typedef struct ts_attn_site {
    ts_attn_kind kind;
    int layer;       /* DiT block index */
    int step;        /* denoising step index (0-based), -1 outside sampling */
    int n_steps;     /* steps in the trajectory, 0 if unknown */
    int64_t grid[3]; /* query token grid T, H, W (row-major), or zeros */
    float timestep;  /* the model timestep (0..1000), for rules on timesteps */
    /* the layer's SLA projection (proj_l: weight [D, D], bias [D], fp32), or NULL */
    const float *lin_w, *lin_b;
    /* A self-attention call whose grid holds fewer tokens than the call has text tokens too:
     * the image is tokens [img0, img0 + T·H·W), the text the rest (0: text after the image, as
     * HunyuanVideo has it; FLUX and CogVideoX put it first). GNA and CLEAR apply their text
     * rules; DraftAttention and PARO run text query and key blocks dense and plan the image;
     * SLA plans the whole sequence, text included. */
    int64_t img0;
    /* the branch lin_w was trained with: 0 over all keys (TurboDiffusion), 1 over the
     * non-selected blocks (the paper); an sla rule without 'variant' runs it */
    int lin_complement;
} ts_attn_site;

typedef struct ts_attn_schedule ts_attn_schedule; /* schedule.h */

/* Block sizes of the dense plan. Dense attention has no block structure to respect, so
 * the query block is as large as keeps the CPU kernel's sgemm tiles efficient (measured
 * with 3,900 tokens, 12 heads x 128: 256 rows ~1.6x faster than 64). */
#define TS_ATTN_BLK_Q 256
#define TS_ATTN_BLK_K 64

/* out[Nq, H·D] = attention(q [Nq, H·D], k/v [Nk, H·D]) with scale 1/sqrt(D), as the
 * schedule plans it for this site (NULL: dense). The schedule caches static plans and
 * records densities, so it is not const. A method's error names the rule that ran, the
 * layer and the step. */
ts_status ts_attention(ts_ctx *c, ts_attn_schedule *sched, const ts_attn_site *site,
                       int64_t nq, int64_t nk, int64_t heads, int64_t head_dim, const float *q,
                       const float *k, const float *v, float *out, ts_err *err);

#endif
