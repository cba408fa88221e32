/*
 * gemm_cpu.c — linear and gemm on OpenBLAS.
 *
 * Each op runs as one one-thread sgemm per thread, each on its share of the output. A
 * linear with F32 weights is a gemm. BF16/F16 weights are converted in row tiles
 * (TS_CPU_WTILE output features at a time) into a scratch buffer per thread, each tile one
 * sgemm: memory stays at a tile per thread, never a whole-matrix fp32 copy.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

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

/* Both ops give each thread a one-thread sgemm on its share of the output: its columns when
 * each gets 64 or more, else its rows. Faster than OpenBLAS's own threads on the DiT's
 * linears, and on a prompt's few tokens, where those threads mostly waited (bench/README.md,
 * fourteenth session). by_cols says which; share gives thread me of team its [p0, p1) of L. */
static int by_cols(int64_t N, int nt) { return N >= 64 * nt; }

static void share(int64_t L, int *p_me, int64_t *p0, int64_t *p1) {
    int me = 0, team = 1;
#ifdef _OPENMP
    me = omp_get_thread_num(), team = omp_get_num_threads();
#endif
    *p_me = me, *p0 = L * me / team, *p1 = L * (me + 1) / team;
}

/* y[m0..m1) columns [q0, q1) = x's rows · w's rows [q0, q1)ᵀ on the calling thread (OpenBLAS
 * at one thread), the 16-bit weights converted TS_CPU_WTILE rows at a time into scratch. */
static void linear_part(float *y, const float *x, int64_t m0, int64_t m1, const ts_tensor *w, int64_t N, int64_t K,
                        int64_t q0, int64_t q1, float *scratch) {
    if (m1 <= m0) return;
    for (int64_t r0 = q0; r0 < q1; r0 += TS_CPU_WTILE) {
        const int64_t n = q1 - r0 < TS_CPU_WTILE ? q1 - r0 : TS_CPU_WTILE;
        const float *wt = ts_cpu_weight_rows(w, K, r0, n, scratch);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(m1 - m0), (int)n, (int)K, 1.0f, x + m0 * K,
                    (int)K, wt, (int)K, 0.0f, y + m0 * N + r0, (int)N);
    }
}

ts_status ts_cpu_linear(ts_ctx *c, float *y, const float *x, int64_t M, const ts_tensor *w,
                        const float *b) {
    if (w->ndim < 2) return TS_ERR_SHAPE;
    int64_t N = w->shape[0];
    int64_t K = ts_tensor_numel(w) / N;
    if (M <= 0 || N <= 0 || K <= 0) return TS_ERR_SHAPE;
    if (w->dtype == TS_DTYPE_F32) {
        ts_cpu_gemm(c, 0, 1, M, N, K, 1.0f, x, K, (const float *)w->data, K, 0.0f, y, N);
    } else {
        if (w->dtype != TS_DTYPE_BF16 && w->dtype != TS_DTYPE_F16) return TS_ERR_UNSUPPORTED;
        /* converted on every thread, into a tile of scratch each */
        const int nt = c->n_threads > 1 ? c->n_threads : 1, cols = by_cols(N, nt);
        const int64_t tile = N < TS_CPU_WTILE ? N : TS_CPU_WTILE;
        ts_arena *a = c->arena;
        size_t mark = a ? ts_arena_mark(a) : 0;
        float *scratch = a ? ts_arena_f32(a, nt * tile * K) : NULL;
        int own = 0;
        if (!scratch) {
            if (a) ts_arena_reset(a, mark);
            scratch = malloc((size_t)(nt * tile * K) * sizeof(float));
            if (!scratch) return TS_ERR_NOMEM;
            own = 1;
        }
        openblas_set_num_threads(1);
#pragma omp parallel num_threads(nt)
        {
            int me;
            int64_t p0, p1;
            share(cols ? N : M, &me, &p0, &p1);
            if (cols) linear_part(y, x, 0, M, w, N, K, p0, p1, scratch + me * tile * K);
            else linear_part(y, x, p0, p1, w, N, K, 0, N, scratch + me * tile * K);
        }
        ts_cpu_blas_threads(c);
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
    const int nt = c->n_threads > 1 ? c->n_threads : 1, cols = by_cols(N, nt);
    openblas_set_num_threads(1);
#pragma omp parallel num_threads(nt)
    {
        int me;
        int64_t p0, p1;
        share(cols ? N : M, &me, &p0, &p1);
        if (p1 > p0) {
            const float *a = A, *b = B;
            if (cols) b += tb ? p0 * ldb : p0;
            else a += ta ? p0 : p0 * lda;
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                        (int)(cols ? M : p1 - p0), (int)(cols ? p1 - p0 : N), (int)K, alpha, a, (int)lda, b,
                        (int)ldb, beta, C + (cols ? p0 : p0 * ldc), (int)ldc);
        }
    }
    ts_cpu_blas_threads(c);
    return TS_OK;
}
