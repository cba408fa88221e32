/*
 * test.h — tiny test harness shared by every test executable (header-only).
 *
 *   TS_CHECK(cond, fmt, ...)    record a failure with a message, keep going
 *   ts_test_compare(...)        rel-L2 / max-abs / max-rel of got vs ref, NaN/Inf
 *                               check, prints the first mismatches on failure
 *   ts_test_fixture(name)       path of tests/fixtures/<name> (TS_FIXTURES env)
 *   return ts_test_summary("name") from main: prints "N passed, N failed",
 *                               returns the exit code (77 = skipped when nothing ran)
 */
#ifndef TS_TESTS_TEST_H
#define TS_TESTS_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ts_test_pass_ = 0, ts_test_fail_ = 0;

#define TS_CHECK(cond, ...)                                                              \
    do {                                                                                 \
        if (cond) {                                                                      \
            ts_test_pass_++;                                                             \
        } else {                                                                         \
            ts_test_fail_++;                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                        \
            fprintf(stderr, __VA_ARGS__);                                                \
            fprintf(stderr, "\n");                                                       \
        }                                                                                \
    } while (0)

static inline const char *ts_test_fixture(const char *name) {
    static char buf[4096];
    const char *dir = getenv("TS_FIXTURES");
    if (!dir) dir = "tests/fixtures";
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

typedef struct ts_test_stats {
    double rel_l2, max_abs, max_rel;
    int64_t n_nonfinite;
} ts_test_stats;

/* Compares got against ref (n floats). Passes when every got value is finite and
 * rel_l2 = ||got-ref|| / ||ref|| <= tol. On failure prints the first 5 pairs whose
 * difference is largest relative to tol. Returns 1 on pass. */
static inline int ts_test_compare(const char *what, const float *got, const float *ref, int64_t n,
                                  double tol, ts_test_stats *st_out) {
    double num = 0, den = 0, max_abs = 0, max_rel = 0;
    int64_t nonfinite = 0;
    for (int64_t i = 0; i < n; i++) {
        double g = got[i], r = ref[i];
        if (!isfinite(g)) nonfinite++;
        double d = fabs(g - r);
        num += d * d;
        den += r * r;
        if (d > max_abs) max_abs = d;
        double rel = d / (fabs(r) + 1e-6);
        if (rel > max_rel) max_rel = rel;
    }
    ts_test_stats st = {den > 0 ? sqrt(num / den) : sqrt(num), max_abs, max_rel, nonfinite};
    if (st_out) *st_out = st;
    int ok = nonfinite == 0 && st.rel_l2 <= tol && n > 0;
    if (!ok) {
        fprintf(stderr,
                "  %s: rel_l2=%.3e (tol %.1e) max_abs=%.3e max_rel=%.3e nonfinite=%lld n=%lld\n",
                what, st.rel_l2, tol, max_abs, max_rel, (long long)nonfinite, (long long)n);
        int shown = 0;
        double thr = max_abs * 0.5;
        for (int64_t i = 0; i < n && shown < 5; i++) {
            double d = fabs((double)got[i] - ref[i]);
            if (d >= thr || !isfinite(got[i])) {
                fprintf(stderr, "    [%lld] got % .7e ref % .7e diff %.3e\n", (long long)i,
                        got[i], ref[i], d);
                shown++;
            }
        }
    }
    TS_CHECK(ok, "%s mismatch (rel_l2 %.3e > %.1e or non-finite)", what, st.rel_l2, tol);
    return ok;
}

/* Fills x with N(0, std) using a simple seeded generator (random, never zeros). */
static inline void ts_test_randn(float *x, int64_t n, uint64_t seed, float std) {
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int64_t i = 0; i < n; i += 2) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        double u1 = ((s >> 11) + 1.0) * 0x1.0p-53;
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        double u2 = (s >> 11) * 0x1.0p-53;
        double m = sqrt(-2.0 * log(u1));
        x[i] = (float)(std * m * cos(6.283185307179586 * u2));
        if (i + 1 < n) x[i + 1] = (float)(std * m * sin(6.283185307179586 * u2));
    }
}

static inline int ts_test_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, ts_test_pass_, ts_test_fail_);
    if (ts_test_fail_) return 1;
    return ts_test_pass_ ? 0 : 77;
}

#endif
