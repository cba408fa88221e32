/*
 * tensor.h — dtypes and the tensor view used for weights and activations.
 *
 * Shapes are in PyTorch order (outermost first), as safetensors and the
 * reference implementations write them, so a shape comment `// [B, L, D]`
 * reads the same in C and Python. (ggml stores innermost first; we do not,
 * because every tensor here arrives from a PyTorch-written file and is compared
 * against one.) Strides are in elements. A ts_tensor never owns its data:
 * weights point into an mmapped file, activations into an arena.
 */
#ifndef TS_SRC_TENSOR_H
#define TS_SRC_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define TS_MAX_DIMS 8

typedef enum ts_dtype {
    TS_DTYPE_F32 = 0,
    TS_DTYPE_F16,
    TS_DTYPE_BF16,
    TS_DTYPE_F64,
    TS_DTYPE_I64,
    TS_DTYPE_I32,
    TS_DTYPE_I16,
    TS_DTYPE_I8,
    TS_DTYPE_U64,
    TS_DTYPE_U32,
    TS_DTYPE_U16,
    TS_DTYPE_U8,
    TS_DTYPE_BOOL,
    TS_DTYPE_F8_E4M3,
    TS_DTYPE_F8_E5M2,
    TS_DTYPE_COUNT
} ts_dtype;

typedef struct ts_tensor {
    ts_dtype dtype;
    int ndim;
    int64_t shape[TS_MAX_DIMS];  /* outermost first */
    int64_t stride[TS_MAX_DIMS]; /* in elements; contiguous = row-major */
    void *data;                  /* not owned */
    const char *name;            /* checkpoint key, or NULL; not owned */
} ts_tensor;

/* Size in bytes of one element; 0 for an invalid dtype. */
size_t ts_dtype_size(ts_dtype t);
/* safetensors spelling ("F32", "BF16", ...). */
const char *ts_dtype_name(ts_dtype t);
/* Parses a safetensors dtype name; returns 0 and sets *out, or -1 if unknown. */
int ts_dtype_from_name(const char *s, ts_dtype *out);

/* Fills a contiguous view. ndim <= TS_MAX_DIMS. */
ts_tensor ts_tensor_make(ts_dtype dtype, int ndim, const int64_t *shape, void *data);
int64_t ts_tensor_numel(const ts_tensor *t);
size_t ts_tensor_nbytes(const ts_tensor *t);
int ts_tensor_is_contiguous(const ts_tensor *t);
/* "[1536, 16, 1, 2, 2]" into buf; returns buf. */
const char *ts_shape_str(const ts_tensor *t, char *buf, size_t n);
/* 1 when t has exactly ndim dims equal to shape. */
int ts_tensor_has_shape(const ts_tensor *t, int ndim, const int64_t *shape);

/* Scalar conversions. fp16/bf16 -> f32 are exact; f32 -> bf16/fp16 round to
 * nearest even (NaN stays NaN). */
float ts_bf16_to_f32(uint16_t h);
uint16_t ts_f32_to_bf16(float f);
float ts_f16_to_f32(uint16_t h);
uint16_t ts_f32_to_f16(float f);
/* dst[i] = ts_f32_to_bf16(src[i]) for n values, in a loop the compiler vectorises. */
void ts_f32_to_bf16_n(const float *src, uint16_t *dst, int64_t n);

/* Converts n contiguous elements of a float dtype (F32, F16, BF16, F64) starting at
 * element offset `off` of src into dst (f32). Returns TS_ERR_UNSUPPORTED for
 * other dtypes. */
ts_status ts_convert_to_f32(float *dst, const void *src, ts_dtype dtype, int64_t off, int64_t n);

#endif
