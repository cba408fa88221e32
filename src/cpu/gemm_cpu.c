/*
 * gemm_cpu.c — linear and gemm on OpenBLAS.
 *
 * F32 weights go to cblas_sgemm directly. BF16/F16 weights are converted in row
 * tiles (TS_CPU_WTILE output features at a time) into a scratch buffer and each
 * tile is one sgemm: memory stays at one tile, never a whole-matrix fp32 copy.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

#define TS_CPU_WTILE 256

void ts_cpu_blas_threads(const ts_ctx *c) {
    openblas_set_num_threads(c->n_threads > 0 ? c->n_threads : 1);
}

const float *ts_cpu_weight_rows(const ts_tensor *w, int64_t K, int64_t r0, int64_t n,
                                float *scratch) {
    if (w->dtype == TS_DTYPE_F32) return (const float *)w->data + r0 * K;
    if (ts_convert_to_f32(scratch, w->data, w->dtype, r0 * K, n * K) != TS_OK) return NULL;
    return scratch;
}

ts_status ts_cpu_linear(ts_ctx *c, float *y, const float *x, int64_t M, const ts_tensor *w,
                        const float *b) {
    if (w->ndim < 2) return TS_ERR_SHAPE;
    int64_t N = w->shape[0];
    int64_t K = ts_tensor_numel(w) / N;
    if (M <= 0 || N <= 0 || K <= 0) return TS_ERR_SHAPE;
    ts_cpu_blas_threads(c);
    if (w->dtype == TS_DTYPE_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, x,
                    (int)K, (const float *)w->data, (int)K, 0.0f, y, (int)N);
    } else {
        if (w->dtype != TS_DTYPE_BF16 && w->dtype != TS_DTYPE_F16) return TS_ERR_UNSUPPORTED;
        int64_t tile = N < TS_CPU_WTILE ? N : TS_CPU_WTILE;
        ts_arena *a = c->arena;
        size_t mark = a ? ts_arena_mark(a) : 0;
        float *scratch = a ? ts_arena_f32(a, tile * K) : NULL;
        int own = 0;
        if (!scratch) {
            if (a) ts_arena_reset(a, mark);
            scratch = malloc((size_t)(tile * K) * sizeof(float));
            if (!scratch) return TS_ERR_NOMEM;
            own = 1;
        }
        for (int64_t r0 = 0; r0 < N; r0 += tile) {
            int64_t n = N - r0 < tile ? N - r0 : tile;
            const float *wt = ts_cpu_weight_rows(w, K, r0, n, scratch);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)n, (int)K, 1.0f,
                        x, (int)K, wt, (int)K, 0.0f, y + r0, (int)N);
        }
        if (own) free(scratch);
        else ts_arena_reset(a, mark);
    }
    if (b) {
#pragma omp parallel for num_threads(c->n_threads) if (M * N > 65536)
        for (int64_t m = 0; m < M; m++) {
            float *yr = y + m * N;
            for (int64_t j = 0; j < N; j++) yr[j] += b[j];
        }
    }
    return TS_OK;
}

ts_status ts_cpu_gemm(ts_ctx *c, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                      const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                      int64_t ldc) {
    if (M <= 0 || N <= 0 || K <= 0) return TS_ERR_SHAPE;
    ts_cpu_blas_threads(c);
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
    return TS_OK;
}
