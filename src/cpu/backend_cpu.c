/*
 * backend_cpu.c — the CPU backend's vtable (OpenBLAS GEMM, OpenMP threads).
 */
#include "cpu_internal.h"

static int cpu_supports(ts_op op) { return op >= 0 && op < TS_OP_COUNT; }

static const ts_backend cpu_backend = {
    .name = "cpu",
    .supports = cpu_supports,
    .linear = ts_cpu_linear,
    .gemm = ts_cpu_gemm,
    .layer_norm = ts_cpu_layer_norm,
    .rms_norm = ts_cpu_rms_norm,
    .l2_norm_ch = ts_cpu_l2_norm_ch,
    .unary = ts_cpu_unary,
    .modulate = ts_cpu_modulate,
    .add_gated = ts_cpu_add_gated,
    .mul = ts_cpu_mul,
    .rope = ts_cpu_rope,
    .conv3d = ts_cpu_conv3d,
    .upsample2x = ts_cpu_upsample2x,
    .attn = ts_cpu_attn,
};

const ts_backend *ts_backend_cpu(void) { return &cpu_backend; }
