/*
 * vmath.h — exp approximations the compiler vectorises (libm's expf is scalar).
 *
 * 2^x = 2^n · 2^f with n = rint(x), |f| ≤ 1/2 and 2^f from a degree-6 polynomial fit;
 * max relative error about 1e-7 (measured over x ∈ [−100, 0]). Arguments are clamped
 * to [−126, 126], so results stay normal and finite.
 */
#ifndef TS_SRC_CPU_VMATH_H
#define TS_SRC_CPU_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float ts_exp2f(float x) {
    x = x < -126.0f ? -126.0f : x > 126.0f ? 126.0f : x;
    float n = rintf(x), f = x - n;
    float p = 1.546974027e-04f;
    p = p * f + 1.340044171e-03f;
    p = p * f + 9.618025577e-03f;
    p = p * f + 5.550327190e-02f;
    p = p * f + 2.402265121e-01f;
    p = p * f + 6.931472067e-01f;
    p = p * f + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    return p * s;
}

static inline float ts_expf(float x) { return ts_exp2f(x * 1.4426950408889634f); }

#ifdef __AVX512F__
#include <immintrin.h>
/* ts_exp2f for 16 lanes that the caller has clamped to [−126, 126]: the same polynomial on the
 * fraction, 2^n applied by vscalefps. */
static inline __attribute__((always_inline)) __m512 ts_exp2_16(__m512 x) {
    const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), f = _mm512_sub_ps(x, n);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.546974027e-04f), f, _mm512_set1_ps(1.340044171e-03f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618025577e-03f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550327190e-02f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402265121e-01f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931472067e-01f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}
#endif

static inline float ts_silu(float x) { return x / (1.0f + ts_expf(-x)); }

#endif
