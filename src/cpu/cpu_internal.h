/*
 * cpu_internal.h — declarations shared by the CPU backend's files.
 */
#ifndef TS_SRC_CPU_CPU_INTERNAL_H
#define TS_SRC_CPU_CPU_INTERNAL_H

#include "../backend.h"

ts_status ts_cpu_linear(ts_ctx *c, float *y, const float *x, int64_t M, const ts_tensor *w,
                        const float *b);
ts_status ts_cpu_gemm(ts_ctx *c, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                      const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                      int64_t ldc);
ts_status ts_cpu_layer_norm(ts_ctx *c, float *y, const float *x, int64_t M, int64_t C, float eps,
                            const float *gamma, const float *beta);
ts_status ts_cpu_rms_norm(ts_ctx *c, float *y, const float *x, int64_t M, int64_t C, float eps,
                          const float *gamma);
ts_status ts_cpu_l2_norm_ch(ts_ctx *c, float *y, const float *x, int64_t C, int64_t S,
                            const float *gamma);
ts_status ts_cpu_unary(ts_ctx *c, ts_unary_op op, float *y, const float *x, int64_t n);
ts_status ts_cpu_modulate(ts_ctx *c, float *y, const float *x, int64_t M, int64_t C,
                          const float *shift, const float *scale);
ts_status ts_cpu_mul(ts_ctx *c, float *y, const float *a, const float *b, int64_t n);
ts_status ts_cpu_add_gated(ts_ctx *c, float *x, const float *y, int64_t M, int64_t C,
                           const float *gate);
ts_status ts_cpu_rope(ts_ctx *c, float *x, int64_t N, int64_t H, int64_t D, const float *cos_t,
                      const float *sin_t);
ts_status ts_cpu_conv3d(ts_ctx *c, float *y, const float *x, const ts_conv3d_params *p,
                        const ts_tensor *w, const float *b);
ts_status ts_cpu_upsample2x(ts_ctx *c, float *y, const float *x, int64_t C, int64_t H, int64_t W);
ts_status ts_cpu_attn(ts_ctx *c, const struct ts_attn_plan *plan, const void *q, const void *k,
                      const void *v, float *out);
/* The same on a chosen path, so tests check each on the same plans: the sgemm path, the AVX2
 * register tiles, the AVX-512 fp32 tiles (bf16 operands widened to fp32 panels), the
 * AVX512-BF16 dots (bf16 operands only), or the best built (what ts_cpu_attn runs: for bf16
 * operands the BF16 dots where ts_cpu_bf16_dots_fast() says they beat the fp32 FMAs, else the
 * fp16 products where AVX512-FP16 is built, else the fp32 tiles). Plans the tiles do not take
 * (head dim or key block not a multiple of 16, INT8 Q·Kᵀ) run the sgemm path on any; TS_ERR_UNSUPPORTED: a path this build has not compiled (or
 * the BF16 dots for an fp32 or INT8 plan). TS_ATTN_PATH_FP16: bf16 operands on AVX512-FP16
 * products (fp16 values scaled by powers of two, sums folded into fp32; bf16 plans only). */
enum { TS_ATTN_PATH_SGEMM, TS_ATTN_PATH_AVX2, TS_ATTN_PATH_AVX512, TS_ATTN_PATH_BEST, TS_ATTN_PATH_BF16,
       TS_ATTN_PATH_FP16 };
ts_status ts_cpu_attn_path(ts_ctx *c, const struct ts_attn_plan *plan, const void *q, const void *k,
                           const void *v, float *out, int path);
/* What a plan runs on a path: TS_ATTN_RUN_*, or -1 for a path this build has not compiled
 * (or that does not apply to the plan). */
enum { TS_ATTN_RUN_SGEMM, TS_ATTN_RUN_AVX2, TS_ATTN_RUN_AVX512, TS_ATTN_RUN_BF16, TS_ATTN_RUN_FP16 };
int ts_cpu_attn_runs(const struct ts_attn_plan *plan, int path);
/* Whether this CPU's AVX512-BF16 dots (vdpbf16ps: two products a lane, fp32 accumulate) do
 * more work per second than its fp32 FMAs (one a lane). A rule by vendor, so that a CPU
 * always takes the same path and gives the same bits: AMD yes (on the Zen 4 EPYC of
 * bench/README's 2026-12-02 sessions the BF16 tiles ran 1.6-1.75x the fp32 sgemm rate),
 * others no (on an Intel Xeon, Emerald Rapids, `tessera-bench isa` measured a quarter as many
 * dots as FMAs a second: half the work). 0 where the build has no AVX512-BF16. */
int ts_cpu_bf16_dots_fast(void);

/* SLA's linear branch (cpu_lin.c). φ: a softmax over the head dim of each of n rows of x
 * (row stride ld) into y [n, D]; the rows of also (the same stride, or NULL), which the caller
 * reads next, are asked for along the way. */
void ts_cpu_lin_phi(const float *x, int64_t ld, int64_t n, int64_t D, float *y, const float *also);
/* The all-keys variant's sums of heads [ha, ha + gn) over all n keys, on nt threads (called
 * outside a parallel region, OpenBLAS at one thread): sums [gn][D·D + D], each head's
 * (Σ φ(k) vᵀ)·wᵀ (w [D, D] the projection's weights, row-major by output; NULL: the sum
 * itself) then Σ φ(k). 0: out of memory. */
#define TS_CPU_LIN_ROWS 256 /* rows per sgemm */
int ts_cpu_lin_sums(int nt, int64_t n, int64_t H, int64_t D, int64_t ha, int64_t gn, const float *k, const float *v,
                    const float *w, float *sums);
/* The paper's variant's sums for each query block of heads [ha, ha + gn) of plan p: comp
 * [gn][n_qblk][D·D + D], Σ φ(k) vᵀ then Σ φ(k) over the keys of the blocks the query block's
 * list does not name (zero where it names all), from blocks [gn][n_kblk + 1][D·D + D] (each
 * head's total, then each key block's sums, computed here), a strip of values at a time, so
 * that each block's sums come from memory once, not once for each query block that takes
 * them. k and v: the branch's. On nt threads, outside a parallel region, OpenBLAS at one
 * thread. 0: out of memory. */
int ts_cpu_lin_paper(int nt, const struct ts_attn_plan *p, int64_t ha, int64_t gn, const float *k, const float *v,
                     float *blocks, float *comp);

/* inv[j] = sqrt(C) / max(||x[:, j]||₂, 1e-12) over C channels cstride apart, for n
 * positions: the per-position factor of ts_cpu_l2_norm_ch (and of convs that norm their
 * input on the fly). */
void ts_cpu_l2_inv(float *inv, const float *x, int64_t C, int64_t cstride, int64_t n);

/* Sets OpenBLAS's thread count to the context's (OpenBLAS keeps it as process state). */
void ts_cpu_blas_threads(const ts_ctx *c);

/* Weight rows [r0, r0+n) of a 2-D view (rows of length K) as fp32: returns a pointer
 * into w when w is F32, else converts into scratch (n*K floats) and returns scratch. */
const float *ts_cpu_weight_rows(const ts_tensor *w, int64_t K, int64_t r0, int64_t n,
                                float *scratch);

#endif
