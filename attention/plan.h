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
 * Parts: an optional permutation; a CSR list of key blocks per query block, computed
 * exactly with online softmax, each flagged full (every element allowed) or partial; an
 * element mask for the partial blocks (a tagged kind with parameters, not a function
 * pointer, so a GPU kernel can evaluate it too); an optional head range; an optional
 * quantisation of Q·Kᵀ (PARO's INT8); an optional linear branch (SLA's, either variant).
 */
#ifndef TS_ATTENTION_PLAN_H
#define TS_ATTENTION_PLAN_H

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef enum ts_mask_kind {
    TS_MASK_NONE = 0,
    TS_MASK_NA,    /* generalized neighborhood attention over the T x H x W grid */
    TS_MASK_CLEAR  /* CLEAR: dx² + dy² < r² on the H x W grid of the same frame */
} ts_mask_kind;

/* Token indices are in the caller's order: image tokens [img0, img0 + T·H·W) in row-major
 * (t, y, x) order, text tokens the rest ([0, img0) and past the image). Text keys are seen by
 * every query and text queries see every key; the rules below are for image-image pairs. */
typedef struct ts_mask {
    ts_mask_kind kind;
    int64_t grid[3];     /* T, H, W */
    int64_t img0;        /* first image token */
    /* NA, per dimension (t, h, w), after NATTEN: window w, stride s, dilation d, causal c.
     * With dilation, tokens attend within their group x mod d, in in-group coordinates
     * x div d; left = w/2, right = w/2 + w%2 - 1. Non-causal: the centre is the stride
     * group's leader min((x/s)s + s/2, L-1) clamped to [left, L-1-right] (the window shifts
     * at borders, never shrinks); key k is a neighbor iff centre-left <= k <= centre+right.
     * Causal: leader = min((x/s)s + s-1, L-1); neighbor iff k <= x and leader - k < w. */
    int window[3], stride[3], dilation[3], causal[3];
    double radius;       /* CLEAR: strict circle, radius in tokens */
} ts_mask;

static inline int ts_mask_na_dim(int64_t x, int64_t k, int64_t L, int w, int s, int d, int causal) {
    if (x % d != k % d) return 0;
    int64_t g = x % d, Lg = (L - g + d - 1) / d, xi = x / d, ki = k / d;
    if (causal) {
        int64_t leader = (xi / s) * s + s - 1;
        if (leader > Lg - 1) leader = Lg - 1;
        return ki <= xi && leader - ki < w;
    }
    int64_t left = w / 2, right = w / 2 + w % 2 - 1;
    int64_t c = (xi / s) * s + s / 2;
    if (c > Lg - 1) c = Lg - 1;
    if (c < left) c = left;
    if (c > Lg - 1 - right) c = Lg - 1 - right;
    return ki >= c - left && ki <= c + right;
}

/* 1 when query token qt may attend key token kt. */
static inline int ts_mask_allows(const ts_mask *m, int64_t qt, int64_t kt) {
    if (m->kind == TS_MASK_NONE) return 1;
    const int64_t T = m->grid[0], H = m->grid[1], W = m->grid[2], G = T * H * W;
    int64_t qi = qt - m->img0, ki = kt - m->img0;
    if (qi < 0 || qi >= G || ki < 0 || ki >= G) return 1; /* a text token on either side */
    int64_t qc[3] = {qi / (H * W), (qi / W) % H, qi % W}, kc[3] = {ki / (H * W), (ki / W) % H, ki % W};
    if (m->kind == TS_MASK_CLEAR) {
        if (qc[0] != kc[0]) return 0;
        double dy = (double)(qc[1] - kc[1]), dx = (double)(qc[2] - kc[2]);
        return dy * dy + dx * dx < m->radius * m->radius;
    }
    for (int i = 0; i < 3; i++)
        if (!ts_mask_na_dim(qc[i], kc[i], m->grid[i], m->window[i], m->stride[i], m->dilation[i], m->causal[i]))
            return 0;
    return 1;
}

/* Quantisation of the scores (PARO). TS_QUANT_INT8_QK, per head and in kernel order: the
 * rows of each query block are cut into groups of quant_rows (0: 32) and the keys into
 * the key blocks; a group gets the scale s = max|x| / 127 over its real rows and
 * x8 = clamp(rint(x · 127 / max|x|), −127, 127), computed in float exactly as
 * ts_quant_i8_group does (all zero: s = 0); a score is (Σ_d q8·k8) · s_q · s_k · scale.
 * The integer dot is exact, so a kernel differs from the reference only in how it rounds
 * that product. P·V stays fp32. */
typedef enum ts_quant { TS_QUANT_NONE = 0, TS_QUANT_INT8_QK } ts_quant;

#define TS_QUANT_ROWS 32

/* Quantises n rows of D floats (rows[i] == NULL: a padding row, zeros) to int8 values
 * held in int16 (out [n, D]); returns the group's scale. */
static inline float ts_quant_i8_group(const float *const *rows, int64_t n, int64_t D, int16_t *out) {
    /* max |x| as the largest bit pattern with the sign cleared: for floats that are not NaN
     * the integer order is the float order, and an integer max vectorises where a float
     * one (NaN rules) does not */
    uint32_t mbits = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!rows[i]) continue;
        const float *r = rows[i];
        for (int64_t d = 0; d < D; d++) {
            uint32_t u;
            memcpy(&u, r + d, sizeof u);
            u &= 0x7fffffffu;
            mbits = u > mbits ? u : mbits;
        }
    }
    float amax;
    memcpy(&amax, &mbits, sizeof amax);
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int64_t i = 0; i < n; i++)
        for (int64_t d = 0; d < D; d++) {
            float x = rows[i] ? rintf(rows[i][d] * inv) : 0.0f;
            out[i * D + d] = (int16_t)(x > 127.0f ? 127.0f : x < -127.0f ? -127.0f : x);
        }
    return amax / 127.0f;
}

typedef struct ts_attn_plan {
    int64_t nq, nk;          /* tokens */
    int64_t heads, head_dim; /* H, D */
    float scale;             /* usually 1/sqrt(D) */
    /* [n_kern or Nq] kernel token order (slot → token), or NULL (identity). No inverse is
     * kept: a kernel gathers q, k, v rows and scatters its output rows through perm itself. */
    const int32_t *perm;
    /* Length of the kernel order when it has padding slots (perm entries −1: no token; a
     * padded query row is skipped, a padded key never attended), so that blocks can align
     * with regions of a grid that is not a multiple of them. 0: nq. Needs perm, nq == nk. */
    int64_t n_kern;
    int32_t blk_q, blk_k;
    int32_t n_qblk, n_kblk;
    /* CSR: query block i computes key blocks exact_idx[exact_ptr[i] .. exact_ptr[i+1])
     * exactly (online softmax). NULL exact_ptr means every key block (dense). */
    const int32_t *exact_ptr, *exact_idx;
    /* 1: every head run has its own lists: exact_ptr holds h1 − h0 arrays of n_qblk + 1
     * offsets one after the other (head h's at (h − h0) · (n_qblk + 1); ts_attn_plan_ptr),
     * all into the same exact_idx, exact_full and exact_bits_off. 0: one list for all heads. */
    int exact_per_head;
    /* per CSR entry: 1 = every element of the block is allowed (the kernel skips the mask),
     * 0 = partial (the mask decides per element). NULL: every listed block is full. With an
     * element mask (or its bits) and padding slots, full means every pair of tokens, and the
     * block's key padding must then be at its end (a kernel runs the block shortened). */
    const uint8_t *exact_full;
    /* optional, per CSR entry: the partial block's element mask precomputed by the builder,
     * blk_q rows of ceil(blk_k / 64) 64-bit words (bit j of row i: key j of the block allowed
     * for query i), at exact_bits + exact_bits_off[entry]; kernels use it instead of
     * evaluating the mask per element. NULL: evaluate the mask. */
    const uint64_t *exact_bits;
    const int64_t *exact_bits_off;
    ts_mask mask;
    int64_t h0, h1;       /* heads [h0, h1) run; h1 == 0: all heads */
    double density;       /* fraction of the nq x nk scores computed (1 for dense) */
    /* optional linear branch (SLA): each query row t adds proj_l(o_l), with φ a softmax over the
     * head dim, o_l = Σ_j φ(q_t)·φ(k_j) v_j / (1e-5 + Σ_j φ(q_t)·φ(k_j)) over every key j
     * (lin_all, TurboDiffusion's variant) or over the keys of the blocks t's query block does
     * not list (the paper's), and proj_l(x) = lin_w x + lin_b (lin_w [D, D] row-major by
     * output, lin_b [D] or NULL), on lin_q, lin_k, lin_v (fp32, laid out as q, k, v; all three
     * or none: the plan's operands, widened) — SLA's bf16 calls plan on bf16 copies but read
     * the branch from the fp32 originals. NULL lin_w: none. The executor and the CPU kernel
     * (its tasks add the branch to the rows they write) run either variant, the kernel on bf16
     * operands only with lin_q, lin_k, lin_v (else TS_ERR_UNSUPPORTED). */
    const float *lin_w, *lin_b;
    int lin_all;
    const float *lin_q, *lin_k, *lin_v;
    ts_quant quant;
    int32_t quant_rows;   /* TS_QUANT_INT8_QK: query rows per scale (0: TS_QUANT_ROWS) */
    int in_bf16;          /* q, k, v are bf16 (uint16_t) instead of fp32; out stays fp32 */
} ts_attn_plan;

/* What a method's kernel calls run on when it is not the method's own fp32 q, k, v: bf16
 * copies of them (plan.in_bf16), made by the schedule for a rule whose precision is bf16.
 * The methods still plan from (and SLA's linear branch still reads) the fp32 q, k, v. */
typedef struct ts_attn_operands {
    const void *q, *k, *v;
    int bf16;
} ts_attn_operands;

/* Whether the plan's linear branch reads operands of its own (lin_q, lin_k, lin_v: all three
 * given) rather than the plan's. */
static inline int ts_attn_plan_lin_own(const ts_attn_plan *p) { return p->lin_q && p->lin_k && p->lin_v; }

/* bf16 -> fp32 (exact). */
static inline float ts_attn_bf16(uint16_t h) {
    union { uint32_t u; float f; } x = {(uint32_t)h << 16};
    return x.f;
}

/* Row `row` (D values from element offset off) of an fp32 or bf16 operand, as fp32 · scale. */
/* Asks for the cache lines of the bytes at x (rw 1: for writing; a constant). One head's rows
 * sit H·D apart, over a 4 KiB page for 12 heads of 128, where the hardware's stride prefetch
 * does not follow them. */
#define TS_PREFETCH_LINES(x, bytes, rw)                                                              \
    do {                                                                                           \
        const char *pf_ = (const char *)(x);                                                       \
        for (int64_t o_ = 0; o_ < (int64_t)(bytes); o_ += 64) __builtin_prefetch(pf_ + o_, rw, 3); \
    } while (0)

static inline void ts_attn_load_row(float *dst, const void *base, int64_t off, int64_t D, int bf16, float scale) {
    if (bf16) {
        const uint16_t *s = (const uint16_t *)base + off;
        for (int64_t d = 0; d < D; d++) dst[d] = ts_attn_bf16(s[d]) * scale;
    } else {
        const float *s = (const float *)base + off;
        for (int64_t d = 0; d < D; d++) dst[d] = s[d] * scale;
    }
}

/* Head h's CSR offsets (exact_ptr must be set): query block i's entries are
 * [ptr[i], ptr[i + 1]). */
static inline const int32_t *ts_attn_plan_ptr(const ts_attn_plan *p, int64_t h) {
    const int64_t h0 = p->h1 > 0 ? p->h0 : 0;
    return p->exact_per_head ? p->exact_ptr + (h - h0) * ((int64_t)p->n_qblk + 1) : p->exact_ptr;
}

/* A dense plan over nq x nk tokens with the given block sizes. */
ts_attn_plan ts_attn_plan_dense(int64_t nq, int64_t nk, int64_t heads, int64_t head_dim,
                                int32_t blk_q, int32_t blk_k);

/* The fraction of (query block, key block) pairs the plan runs, over the heads it runs: the
 * kernel's work, for plans without padding slots. Above density where listed blocks are partly
 * masked (GNA at stride 1, CLEAR), so speedup x block density / 0.8 rates the kernel apart from
 * the window's geometry. */
double ts_attn_plan_block_density(const ts_attn_plan *p);

/* The 4-query x 16-key tiles (in kernel order) the plan runs that hold an allowed score, over
 * the heads it runs, as a fraction of the tiles dense attention runs (the tokens in blocks of
 * the same sizes, ragged tails rounded up): the finest unit the AVX-512 kernel skips (8-row
 * register tiles run as 4-row halves, 16-key panels), so at dense's rate per tile its speedup
 * is at most 1 / this. A full block counts its tiles over the slots holding tokens (the kernel
 * runs a block with padding at its end shortened), and so does a partial block without the
 * builder's bits (an upper bound there); a partial block with bits counts the tiles with a bit. */
#define TS_ATTN_TILE_Q 4
#define TS_ATTN_TILE_K 16
double ts_attn_plan_tile_density(const ts_attn_plan *p);

/* Float64 reference executor: materialises the scores of each head, applies
 * exactly what the plan says, softmax in double. Slow, obvious; every kernel is
 * tested against it. Returns 0, or -1 on allocation failure. */
int ts_attn_ref(const ts_attn_plan *plan, const void *q, const void *k, const void *v,
                float *out);

#endif
