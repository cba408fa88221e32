/*
 * sla.h — SLA, sparse-linear attention (arXiv 2509.24006; shared/docs/attention-methods.md §1).
 *
 * Per head: K is smoothed (its mean over all tokens subtracted), Q and the smoothed K are
 * mean-pooled per block, S̄ = q̄ k̄ᵀ, and each query block keeps its top kc = max(1,
 * min(nK, floor(topk · nK))) key blocks (ties to the lower index), computed exactly with
 * a softmax renormalised over them. The linear branch, when the layer has proj_l weights:
 * φ = softmax over the head dimension of Q and of K (tied),
 *   o_l = φ(Q)·(Σ φ(k)vᵀ) / (1e-5 + φ(Q)·Σ φ(k))
 * with the sums over all keys (TurboDiffusion, what its checkpoints were trained with) or
 * over the key blocks the query block did not select (the paper, SLA-1), then
 * o = o_s + proj_l(o_l), proj_l one D x D linear with bias per layer, shared by the heads.
 * proj_l is zero-initialised in training, so without it SLA is plain top-k block-sparse
 * attention, which is what runs then.
 */
#ifndef TS_ATTENTION_SLA_H
#define TS_ATTENTION_SLA_H

#include <stdint.h>

#include "../src/ctx.h"
#include "../src/status.h"
#include "build.h"
#include "plan.h"

typedef struct ts_sla_params {
    double topk;    /* fraction of key blocks each query block keeps */
    int blk_q, blk_k;
    int complement; /* 0: linear branch over all keys (TurboDiffusion), 1: over the rest */
} ts_sla_params;

/* Head h's block-sparse plan (top-k key blocks per query block) from q, k [n, H·D]. */
ts_status ts_sla_plan(int64_t n, int64_t H, int64_t D, int64_t h, const ts_sla_params *sp, const float *q,
                      const float *k, ts_attn_plan *p, ts_plan_store *st, ts_err *err);

/* Heads [h0, h1) of one self-attention call. kop: what the sparse branch's kernel runs on
 * (NULL: q, k, v); the plan and the linear branch use q, k, v. proj_w [D, D] and proj_b [D]
 * (fp32) may be NULL: no linear branch. *density (may be NULL): the sparse branch's fraction
 * of scores. */
ts_status ts_sla_attention(ts_ctx *c, int64_t n, int64_t H, int64_t D, int64_t h0, int64_t h1,
                           const ts_sla_params *sp, const float *q, const float *k, const float *v,
                           const ts_attn_operands *kop, const float *proj_w, const float *proj_b, float *out,
                           double *density, ts_err *err);

#endif
