/*
 * attn_paths.h — the CPU attention kernel's paths, for tests that run each on the same plan:
 * the backend's entry (the best built), the AVX-512 fp32 tiles, the AVX2 tiles, the sgemm path
 * the AVX512-BF16 dots and the AVX512-FP16 products (bf16 plans only). A path this build has not
 * compiled, or that does not take the plan, is left out (ts_cpu_attn_runs < 0).
 */
#ifndef TS_TESTS_ATTN_PATHS_H
#define TS_TESTS_ATTN_PATHS_H

#include <string.h>

#include "backend.h"
#include "cpu/cpu_internal.h"
#include "plan.h"
#include "test.h"

enum { TS_TEST_ATTN_PATHS = 6 };
static const int ts_test_attn_path[TS_TEST_ATTN_PATHS] = {TS_ATTN_PATH_BEST, TS_ATTN_PATH_AVX512, TS_ATTN_PATH_AVX2,
                                                          TS_ATTN_PATH_SGEMM, TS_ATTN_PATH_BF16, TS_ATTN_PATH_FP16};
static const char *const ts_test_attn_path_name[TS_TEST_ATTN_PATHS] = {"backend", "avx512 path", "avx2 path",
                                                                       "sgemm path", "bf16 dots", "fp16 products"};

/* Runs path i (the backend's own entry for i == 0); TS_ERR_UNSUPPORTED: not built, or not for this plan. */
static inline ts_status ts_test_attn_run(ts_ctx *c, int i, const ts_attn_plan *p, const void *q, const void *k,
                                         const void *v, float *out) {
    if (ts_cpu_attn_runs(p, ts_test_attn_path[i]) < 0) return TS_ERR_UNSUPPORTED;
    return i == 0 ? c->backend->attn(c, p, q, k, v, out) : ts_cpu_attn_path(c, p, q, k, v, out, ts_test_attn_path[i]);
}

/* A context's workspace whose slots start as bytes 0xff (NaN as floats), as if a
 * larger call had left its data there: a kernel that reads a buffer before writing it fails
 * its comparisons. */
static inline void ts_test_dirty_workspace(ts_workspace *ws, size_t bytes) {
    for (int s = 0; s < TS_WS_SLOTS; s++) {
        void *p = ts_workspace_get(ws, s, bytes);
        TS_CHECK(p != NULL, "workspace slot %d of %zu bytes", s, bytes);
        if (p) memset(p, 0xff, bytes);
    }
}

/* The relative-L2 tolerance against the float64 executor: fp32 products 1e-5; BF16 dots round
 * P to bf16 as well (about 2^-9 relative per weight), 3e-3; the fp16 products sum in fp16 (2^-11
 * relative per addition, runs of 16 products a lane for S, 32 for P·V) and round P to fp16:
 * 8e-4 to 2.1e-3 measured on these cases, 3e-3 too. For scale: rounding fp32 inputs to bf16
 * moves the output by about 3e-3 (tessera-bench attn, dense-bf16 against dense). */
static inline double ts_test_attn_tol(const ts_attn_plan *p, int i) {
    const int run = ts_cpu_attn_runs(p, ts_test_attn_path[i]);
    return run == TS_ATTN_RUN_FP16 || run == TS_ATTN_RUN_BF16 ? 3e-3 : 1e-5;
}

#endif
