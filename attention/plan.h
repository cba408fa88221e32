/*
 * plan.h — the attention plan: plain data that every backend's kernel and the
 * float64 reference executor (ref.c) can run. See ../shared docs DESIGN.md,
 * "The attention plan".
 *
 * Layout of the operands the plan is executed on (one batch element):
 *   q   [Nq, H, D]   (token-major, heads interleaved: what a linear produces)
 *   k,v [Nk, H, D]
 *   out [Nq, H, D]
 * Scores are (q·k)·scale. Blocks tile the (possibly permuted) token order:
 * query block i covers kernel-order rows [i·blk_q, min((i+1)·blk_q, Nq)).
 *
 * This issue fills only the dense parts (all blocks exact, no permutation, no
 * mask, no linear complement, no quantisation); the fields for the other parts
 * are declared so the methods of the attention issue plug in without changing
 * any kernel's signature.
 */
#ifndef TS_ATTENTION_PLAN_H
#define TS_ATTENTION_PLAN_H

#include <stdint.h>

typedef enum ts_mask_kind { TS_MASK_NONE = 0 } ts_mask_kind;

typedef struct ts_mask {
    ts_mask_kind kind;
} ts_mask;

typedef enum ts_quant { TS_QUANT_NONE = 0 } ts_quant;

typedef struct ts_attn_plan {
    int64_t nq, nk;          /* tokens */
    int64_t heads, head_dim; /* H, D */
    float scale;             /* usually 1/sqrt(D) */
    const int32_t *perm, *perm_inv; /* [Nq] kernel token order, or NULL (identity) */
    int32_t blk_q, blk_k;
    int32_t n_qblk, n_kblk;
    /* CSR: query block i computes key blocks exact_idx[exact_ptr[i] .. exact_ptr[i+1])
     * exactly (online softmax). NULL exact_ptr means every key block (dense). */
    const int32_t *exact_ptr, *exact_idx;
    ts_mask mask;
    const int32_t *lin_ptr, *lin_idx; /* linear complement (SLA), NULL: none */
    ts_quant quant;
} ts_attn_plan;

/* A dense plan over nq x nk tokens with the given block sizes. */
ts_attn_plan ts_attn_plan_dense(int64_t nq, int64_t nk, int64_t heads, int64_t head_dim,
                                int32_t blk_q, int32_t blk_k);

/* Float64 reference executor: materialises the scores of each head, applies
 * exactly what the plan says, softmax in double. Slow, obvious; every kernel is
 * tested against it. Returns 0, or -1 on allocation failure. */
int ts_attn_ref(const ts_attn_plan *plan, const float *q, const float *k, const float *v,
                float *out);

#endif
