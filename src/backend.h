/*
 * backend.h — the backend vtable: the generic ops the models need.
 *
 * Eager, not a graph: each entry runs one op now. Activations are contiguous
 * fp32 buffers the caller owns (arena memory); weights are ts_tensor views in
 * their checkpoint dtype (F32/BF16/F16), converted inside the op, tile by
 * tile, never as a whole-model fp32 copy. Backends never know which model or
 * attention method runs on them. Call the ops through ops.h.
 *
 * Entries may be NULL where a backend lacks the op; supports() tells, and
 * ops.h reports TS_ERR_UNSUPPORTED instead of silently falling back.
 */
#ifndef TS_SRC_BACKEND_H
#define TS_SRC_BACKEND_H

#include <stdint.h>

#include "ctx.h"
#include "tensor.h"

struct ts_attn_plan;

typedef enum ts_unary_op { TS_UNARY_SILU = 0, TS_UNARY_GELU_TANH, TS_UNARY_GELU_ERF } ts_unary_op;

typedef enum ts_op {
    TS_OP_LINEAR = 0,
    TS_OP_GEMM,
    TS_OP_LAYER_NORM,
    TS_OP_RMS_NORM,
    TS_OP_L2_NORM_CH,
    TS_OP_UNARY,
    TS_OP_MODULATE,
    TS_OP_ADD_GATED,
    TS_OP_MUL,
    TS_OP_ROPE,
    TS_OP_CONV3D,
    TS_OP_UPSAMPLE2X,
    TS_OP_ATTN,
    TS_OP_COUNT
} ts_op;

/* conv3d geometry. Input x [Cin, T, H, W]; weight [Cout, Cin, kt, kh, kw];
 * zero padding per side; output [Cout, To, Ho, Wo] with
 * To = (prefix_t + T + pad_t0 + pad_t1 - kt) / st + 1 and likewise for H, W.
 * prefix (optional): prefix_t frames [Cin, prefix_t, H, W] that precede x in time, so
 * a causal conv reads [cache | chunk] without copying them into one buffer.
 * upsample2x: the conv reads x (and prefix) as if nearest-upsampled 2x in H and W,
 * i.e. the input frame is [2H, 2W] with element (i, j) = x[i/2][j/2].
 * norm_gamma [cin] (optional): the conv reads every input frame (prefix and x) as
 * SiLU(l2_norm_ch(frame, gamma)) — Wan's RMS_norm then SiLU, the values ts_l2_norm_ch and
 * ts_unary(SILU) give — computed row band by row band instead of into a full copy of the
 * input. Stride 1 and no upsample2x only.
 * accumulate: y += conv (+ b) instead of y = conv (+ b) (a residual added in place). */
typedef struct ts_conv3d_params {
    int64_t cin, t, h, w;
    int stride[3];      /* t, h, w */
    int pad[6];         /* t_front, t_back, h_top, h_bottom, w_left, w_right */
    const float *prefix;
    int prefix_t;
    int upsample2x;
    const float *norm_gamma;
    int accumulate;
} ts_conv3d_params;

typedef struct ts_backend {
    const char *name;
    int (*supports)(ts_op op);

    /* y[M,N] = x[M,K] · w[N,K]ᵀ + b[N]. w F32/BF16/F16; b F32 or NULL. */
    ts_status (*linear)(ts_ctx *c, float *y, const float *x, int64_t M, const ts_tensor *w,
                        const float *b);
    /* C[M,N] = alpha·op(A)·op(B) + beta·C, row-major, fp32. */
    ts_status (*gemm)(ts_ctx *c, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                      float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                      float beta, float *C, int64_t ldc);
    /* Row-wise over C: y = (x-μ)/sqrt(σ²+eps)·γ + β; γ, β may be NULL. y may alias x. */
    ts_status (*layer_norm)(ts_ctx *c, float *y, const float *x, int64_t M, int64_t C, float eps,
                            const float *gamma, const float *beta);
    /* Row-wise over C: y = x / sqrt(mean(x²)+eps)·γ; γ may be NULL. y may alias x. */
    ts_status (*rms_norm)(ts_ctx *c, float *y, const float *x, int64_t M, int64_t C, float eps,
                          const float *gamma);
    /* x [C, S] (channel-major): y[c,s] = x[c,s] / max(‖x[:,s]‖₂, 1e-12)·√C·γ[c]
     * (Wan-VAE RMS_norm); γ may be NULL. y may alias x. */
    ts_status (*l2_norm_ch)(ts_ctx *c, float *y, const float *x, int64_t C, int64_t S,
                            const float *gamma);
    /* Elementwise activation; y may alias x. */
    ts_status (*unary)(ts_ctx *c, ts_unary_op op, float *y, const float *x, int64_t n);
    /* Row-wise: y[m,:] = x[m,:]·(1 + scale) + shift; scale, shift [C]. y may alias x. */
    ts_status (*modulate)(ts_ctx *c, float *y, const float *x, int64_t M, int64_t C,
                          const float *shift, const float *scale);
    /* Residual: x[m,:] += gate ⊙ y[m,:]; gate [C] or NULL for 1. */
    ts_status (*add_gated)(ts_ctx *c, float *x, const float *y, int64_t M, int64_t C,
                           const float *gate);
    /* Elementwise product: y[i] = a[i]·b[i] for n values; y may alias a or b. */
    ts_status (*mul)(ts_ctx *c, float *y, const float *a, const float *b, int64_t n);
    /* In-place rotary embedding on adjacent pairs of x [N, H, D]:
     * (x[2j], x[2j+1]) rotated by angle with cos/sin [N, D/2] (same for every head). */
    ts_status (*rope)(ts_ctx *c, float *x, int64_t N, int64_t H, int64_t D, const float *cos_t,
                      const float *sin_t);
    /* 3-D convolution, see ts_conv3d_params. w F32/BF16/F16 [Cout,Cin,kt,kh,kw]; b F32 [Cout]
     * or NULL. y [Cout, To, Ho, Wo]. */
    ts_status (*conv3d)(ts_ctx *c, float *y, const float *x, const ts_conv3d_params *p,
                        const ts_tensor *w, const float *b);
    /* Nearest 2x spatial upsample of x [C, H, W] (C may fold channels and frames) into
     * y [C, 2H, 2W]. */
    ts_status (*upsample2x)(ts_ctx *c, float *y, const float *x, int64_t C, int64_t H, int64_t W);
    /* Executes an attention plan, see attention/plan.h: q, k, v fp32, or bf16 (uint16_t) when
     * plan->in_bf16; out fp32. */
    ts_status (*attn)(ts_ctx *c, const struct ts_attn_plan *plan, const void *q, const void *k,
                      const void *v, float *out);
} ts_backend;

/* The CPU backend (OpenBLAS + OpenMP); always present. */
const ts_backend *ts_backend_cpu(void);
/* Backend by name ("cpu", later "cuda"), or NULL when not compiled in. */
const ts_backend *ts_backend_by_name(const char *name);

#endif
