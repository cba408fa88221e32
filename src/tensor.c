/* tensor.c — dtype table, views and conversions; see tensor.h. */
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif

static const struct {
    const char *name;
    size_t size;
} dtype_info[TS_DTYPE_COUNT] = {
    [TS_DTYPE_F32] = {"F32", 4},      [TS_DTYPE_F16] = {"F16", 2},
    [TS_DTYPE_BF16] = {"BF16", 2},    [TS_DTYPE_F64] = {"F64", 8},
    [TS_DTYPE_I64] = {"I64", 8},      [TS_DTYPE_I32] = {"I32", 4},
    [TS_DTYPE_I16] = {"I16", 2},      [TS_DTYPE_I8] = {"I8", 1},
    [TS_DTYPE_U64] = {"U64", 8},      [TS_DTYPE_U32] = {"U32", 4},
    [TS_DTYPE_U16] = {"U16", 2},      [TS_DTYPE_U8] = {"U8", 1},
    [TS_DTYPE_BOOL] = {"BOOL", 1},    [TS_DTYPE_F8_E4M3] = {"F8_E4M3", 1},
    [TS_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
};

size_t ts_dtype_size(ts_dtype t) {
    return (unsigned)t < TS_DTYPE_COUNT ? dtype_info[t].size : 0;
}

const char *ts_dtype_name(ts_dtype t) {
    return (unsigned)t < TS_DTYPE_COUNT ? dtype_info[t].name : "?";
}

int ts_dtype_from_name(const char *s, ts_dtype *out) {
    for (int i = 0; i < TS_DTYPE_COUNT; i++) {
        if (strcmp(s, dtype_info[i].name) == 0) {
            *out = (ts_dtype)i;
            return 0;
        }
    }
    return -1;
}

ts_tensor ts_tensor_make(ts_dtype dtype, int ndim, const int64_t *shape, void *data) {
    ts_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dtype;
    t.ndim = ndim;
    t.data = data;
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        t.shape[i] = shape[i];
        t.stride[i] = s;
        s *= shape[i];
    }
    return t;
}

int64_t ts_tensor_numel(const ts_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t ts_tensor_nbytes(const ts_tensor *t) {
    return (size_t)ts_tensor_numel(t) * ts_dtype_size(t->dtype);
}

int ts_tensor_is_contiguous(const ts_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return 0;
        s *= t->shape[i];
    }
    return 1;
}

const char *ts_shape_str(const ts_tensor *t, char *buf, size_t n) {
    size_t o = 0;
    if (n == 0) return buf;
    buf[0] = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int i = 0; i < t->ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
    return buf;
}

int ts_tensor_has_shape(const ts_tensor *t, int ndim, const int64_t *shape) {
    if (t->ndim != ndim) return 0;
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i]) return 0;
    return 1;
}

float ts_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* f's bits u to bf16: to nearest even, a NaN made quiet; without a branch, so that loops over
 * it vectorise */
static inline uint16_t bf16_of_bits(uint32_t u) {
    const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, nan = (u >> 16) | 0x40u;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : r);
}

uint16_t ts_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return bf16_of_bits(u);
}

void ts_f32_to_bf16_n(const float *src, uint16_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, src + i, 4);
        dst[i] = bf16_of_bits(u);
    }
}

float ts_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: value = man * 2^-24 */
            float f = ldexpf((float)man, -24);
            memcpy(&u, &f, 4);
            u |= sign;
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 112u) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t ts_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;
    if (a >= 0x477ff000u) return sign | 0x7c00u; /* overflow -> inf */
    if (a < 0x38800000u) {                        /* subnormal or zero */
        float af;
        memcpy(&af, &a, 4);
        float m = af * 16777216.0f; /* 2^24 */
        return sign | (uint16_t)lrintf(m);
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u) - (112u << 23);
    return sign | (uint16_t)(r >> 13);
}

ts_status ts_convert_to_f32(float *dst, const void *src, ts_dtype dtype, int64_t off, int64_t n) {
    switch (dtype) {
    case TS_DTYPE_F32:
        memcpy(dst, (const float *)src + off, (size_t)n * 4);
        return TS_OK;
    case TS_DTYPE_BF16: {
        /* the bits shifted up (a weight tile at a time: gemm_cpu.c) */
        const uint16_t *s = (const uint16_t *)src + off;
        int64_t i = 0;
#ifdef __AVX2__
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(
                                          _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + i))), 16)));
#endif
        for (; i < n; i++) {
            const uint32_t u = (uint32_t)s[i] << 16;
            memcpy(dst + i, &u, 4);
        }
        return TS_OK;
    }
    case TS_DTYPE_F16: {
        const uint16_t *s = (const uint16_t *)src + off;
        int64_t i = 0;
#ifdef __F16C__
        for (; i + 8 <= n; i += 8) /* exact, subnormals, infinities and NaNs included */
            _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
#endif
        for (; i < n; i++) dst[i] = ts_f16_to_f32(s[i]);
        return TS_OK;
    }
    case TS_DTYPE_F64: {
        const double *s = (const double *)src + off;
        for (int64_t i = 0; i < n; i++) dst[i] = (float)s[i];
        return TS_OK;
    }
    default:
        return TS_ERR_UNSUPPORTED;
    }
}
