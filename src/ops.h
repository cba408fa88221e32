/*
 * ops.h — how models call the backend: one wrapper per vtable entry.
 *
 * Each wrapper dispatches to c->backend and returns TS_ERR_UNSUPPORTED when
 * the backend lacks the op (reported, never a silent fallback). Semantics of
 * every op are documented at its vtable entry in backend.h.
 */
#ifndef TS_SRC_OPS_H
#define TS_SRC_OPS_H

#include "backend.h"

#define TS_OP_DISPATCH(c, entry, ...)                                                    \
    ((c)->backend->entry ? (c)->backend->entry((c), __VA_ARGS__) : TS_ERR_UNSUPPORTED)

static inline ts_status ts_linear(ts_ctx *c, float *y, const float *x, int64_t M,
                                  const ts_tensor *w, const float *b) {
    return TS_OP_DISPATCH(c, linear, y, x, M, w, b);
}
static inline ts_status ts_gemm(ts_ctx *c, int ta, int tb, int64_t M, int64_t N, int64_t K,
                                float alpha, const float *A, int64_t lda, const float *B,
                                int64_t ldb, float beta, float *C, int64_t ldc) {
    return TS_OP_DISPATCH(c, gemm, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
static inline ts_status ts_layer_norm(ts_ctx *c, float *y, const float *x, int64_t M, int64_t C,
                                      float eps, const float *gamma, const float *beta) {
    return TS_OP_DISPATCH(c, layer_norm, y, x, M, C, eps, gamma, beta);
}
static inline ts_status ts_rms_norm(ts_ctx *c, float *y, const float *x, int64_t M, int64_t C,
                                    float eps, const float *gamma) {
    return TS_OP_DISPATCH(c, rms_norm, y, x, M, C, eps, gamma);
}
static inline ts_status ts_l2_norm_ch(ts_ctx *c, float *y, const float *x, int64_t C, int64_t S,
                                      const float *gamma) {
    return TS_OP_DISPATCH(c, l2_norm_ch, y, x, C, S, gamma);
}
static inline ts_status ts_unary(ts_ctx *c, ts_unary_op op, float *y, const float *x, int64_t n) {
    return TS_OP_DISPATCH(c, unary, op, y, x, n);
}
static inline ts_status ts_modulate(ts_ctx *c, float *y, const float *x, int64_t M, int64_t C,
                                    const float *shift, const float *scale) {
    return TS_OP_DISPATCH(c, modulate, y, x, M, C, shift, scale);
}
static inline ts_status ts_add_gated(ts_ctx *c, float *x, const float *y, int64_t M, int64_t C,
                                     const float *gate) {
    return TS_OP_DISPATCH(c, add_gated, x, y, M, C, gate);
}
static inline ts_status ts_mul(ts_ctx *c, float *y, const float *a, const float *b, int64_t n) {
    return TS_OP_DISPATCH(c, mul, y, a, b, n);
}
static inline ts_status ts_rope(ts_ctx *c, float *x, int64_t N, int64_t H, int64_t D,
                                const float *cos_t, const float *sin_t) {
    return TS_OP_DISPATCH(c, rope, x, N, H, D, cos_t, sin_t);
}
static inline ts_status ts_conv3d(ts_ctx *c, float *y, const float *x, const ts_conv3d_params *p,
                                  const ts_tensor *w, const float *b) {
    return TS_OP_DISPATCH(c, conv3d, y, x, p, w, b);
}
static inline ts_status ts_upsample2x(ts_ctx *c, float *y, const float *x, int64_t C, int64_t H,
                                      int64_t W) {
    return TS_OP_DISPATCH(c, upsample2x, y, x, C, H, W);
}

/* Output extent of a conv along one axis. */
static inline int64_t ts_conv_out(int64_t in, int k, int stride, int pad0, int pad1) {
    return (in + pad0 + pad1 - k) / stride + 1;
}

#endif
