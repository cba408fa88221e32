/* test_core.c — status, tensor views, dtype conversions, arena, rng. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "ctx.h"
#include "metrics.h"
#include "safetensors.h"
#include "status.h"
#include "tensor.h"
#include "tessera.h"
#include "test.h"

static void test_dtype_conversions(void) {
    /* bf16/f16 round trips of values exactly representable, and rounding. */
    const float exact[] = {0.0f, 1.0f, -2.5f, 0.15625f, 65504.0f, -0.0009765625f};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        TS_CHECK(ts_f16_to_f32(ts_f32_to_f16(exact[i])) == exact[i], "f16 round trip %g", exact[i]);
        TS_CHECK(ts_bf16_to_f32(ts_f32_to_bf16(exact[i])) == exact[i] || fabsf(exact[i]) > 256,
                 "bf16 round trip %g", exact[i]);
    }
    /* f16 subnormal: 2^-24 is the smallest. */
    TS_CHECK(ts_f16_to_f32(0x0001) == ldexpf(1.0f, -24), "f16 min subnormal");
    TS_CHECK(ts_f32_to_f16(ldexpf(1.0f, -24)) == 0x0001, "f16 encode min subnormal");
    TS_CHECK(ts_f32_to_f16(1e6f) == 0x7c00, "f16 overflow to inf");
    TS_CHECK(isnan(ts_f16_to_f32(ts_f32_to_f16(NAN))), "f16 nan");
    TS_CHECK(isnan(ts_bf16_to_f32(ts_f32_to_bf16(NAN))), "bf16 nan");
    /* bf16 round-to-nearest-even: 1 + 2^-8 is a tie between 1 and 1+2^-7 -> 1. */
    TS_CHECK(ts_bf16_to_f32(ts_f32_to_bf16(1.0f + ldexpf(1.0f, -8))) == 1.0f, "bf16 RNE tie");
    TS_CHECK(ts_bf16_to_f32(ts_f32_to_bf16(1.0f + 3 * ldexpf(1.0f, -9))) == 1.0f + ldexpf(1.0f, -7),
             "bf16 rounds up");
    /* Every f16 bit pattern (finite) converts back to itself. */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if (((h >> 10) & 0x1f) == 0x1f) continue;
        if (ts_f32_to_f16(ts_f16_to_f32((uint16_t)h)) != h) bad++;
    }
    TS_CHECK(bad == 0, "f16 bit patterns that do not round-trip: %d", bad);
    /* the bulk bf16 conversion equals the scalar one: random bit patterns (every class:
     * normals, subnormals, infinities, NaNs, values that round up to inf) and the edges */
    {
        enum { NB = 100003 };
        float *f = malloc(NB * sizeof *f);
        uint16_t *b = malloc(NB * sizeof *b);
        uint64_t x = 0x9e3779b97f4a7c15u;
        const uint32_t edge[] = {0x7f7fffffu, 0x7f7f8000u, 0x7f800000u, 0xff800000u, 0x7f800001u, 0xffc00000u,
                                 0x00000001u, 0x80000000u, 0x3f808000u, 0x3f818000u};
        for (int i = 0; i < NB; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            uint32_t u = i < 10 ? edge[i] : (uint32_t)x;
            memcpy(f + i, &u, 4);
        }
        ts_f32_to_bf16_n(f, b, NB);
        int nbad = 0;
        for (int i = 0; i < NB; i++) nbad += b[i] != ts_f32_to_bf16(f[i]);
        TS_CHECK(nbad == 0, "ts_f32_to_bf16_n differs from ts_f32_to_bf16 at %d of %d values", nbad, NB);
        free(f), free(b);
    }
    uint16_t src[3] = {ts_f32_to_bf16(1.5f), ts_f32_to_bf16(-3.0f), ts_f32_to_bf16(0.25f)};
    float dst[2];
    TS_CHECK(ts_convert_to_f32(dst, src, TS_DTYPE_BF16, 1, 2) == TS_OK && dst[0] == -3.0f &&
                 dst[1] == 0.25f, "convert bf16 with offset");
    TS_CHECK(ts_convert_to_f32(dst, src, TS_DTYPE_I32, 0, 1) == TS_ERR_UNSUPPORTED,
             "convert rejects ints");
    /* every 16-bit pattern through the vector loops and their tails (from an odd offset, a
     * count not a multiple of 8) equals the one-value conversions; NaNs stay NaNs */
    for (int di = 0; di < 2; di++) {
        const ts_dtype dt = di ? TS_DTYPE_F16 : TS_DTYPE_BF16;
        uint16_t *all = malloc((65536 + 1) * sizeof *all);
        float *got = malloc(65536 * sizeof *got);
        for (uint32_t i = 0; i < 65536; i++) all[i + 1] = (uint16_t)i;
        TS_CHECK(ts_convert_to_f32(got, all, dt, 1, 65535) == TS_OK, "convert %s", ts_dtype_name(dt));
        int nbad = 0;
        for (uint32_t i = 0; i < 65535; i++) {
            const float want = di ? ts_f16_to_f32((uint16_t)i) : ts_bf16_to_f32((uint16_t)i);
            nbad += isnan(want) ? !isnan(got[i]) : memcmp(&want, got + i, 4) != 0;
        }
        TS_CHECK(nbad == 0, "convert %s: %d of 65535 values differ from the one-value conversion",
                 ts_dtype_name(dt), nbad);
        free(all), free(got);
    }
}

static void test_tensor(void) {
    int64_t shape[3] = {2, 3, 4};
    ts_tensor t = ts_tensor_make(TS_DTYPE_BF16, 3, shape, NULL);
    TS_CHECK(ts_tensor_numel(&t) == 24 && ts_tensor_nbytes(&t) == 48, "numel/nbytes");
    TS_CHECK(t.stride[0] == 12 && t.stride[1] == 4 && t.stride[2] == 1, "strides");
    TS_CHECK(ts_tensor_is_contiguous(&t), "contiguous");
    char buf[64];
    TS_CHECK(strcmp(ts_shape_str(&t, buf, sizeof buf), "[2, 3, 4]") == 0, "shape str %s", buf);
    ts_dtype d;
    TS_CHECK(ts_dtype_from_name("F8_E4M3", &d) == 0 && d == TS_DTYPE_F8_E4M3, "dtype parse");
    TS_CHECK(ts_dtype_from_name("F33", &d) == -1, "dtype reject");
}

static void test_arena(void) {
    ts_arena m;
    ts_arena_init(&m, 0);
    TS_CHECK(ts_arena_alloc(&m, 100) == NULL, "measuring arena hands out nothing");
    ts_arena_alloc(&m, 10);
    size_t need = ts_arena_peak(&m);
    TS_CHECK(need >= 110 + 64 - 100 % 64, "measured peak %zu", need);
    ts_arena a;
    TS_CHECK(ts_arena_init(&a, need) == 0, "arena init");
    char *p = ts_arena_alloc(&a, 100);
    char *q = ts_arena_alloc(&a, 10);
    TS_CHECK(p && q && ((uintptr_t)q % 64) == 0 && q >= p + 100, "aligned, disjoint");
    TS_CHECK(ts_arena_alloc(&a, 1 << 20) == NULL, "overflow returns NULL");
    ts_arena b;
    TS_CHECK(ts_arena_init(&b, 4096) == 0, "arena init");
    TS_CHECK(ts_arena_alloc(&b, 8192) == NULL, "too large");
    TS_CHECK(ts_arena_alloc(&b, 1) == NULL, "a failure is sticky: a small allocation after it fails too");
    ts_arena_reset(&b, 0);
    TS_CHECK(ts_arena_alloc(&b, 1) != NULL, "reset clears the failure");
    ts_arena_free(&b);
    size_t mark = ts_arena_mark(&a);
    ts_arena_alloc(&a, 1);
    ts_arena_reset(&a, mark);
    TS_CHECK(ts_arena_mark(&a) == mark, "reset to mark");
    ts_arena_free(&a);
    ts_arena_free(&m);
    /* large buffers: 2 MiB pages from 32 MiB up, else 64-byte alignment; every byte of the
     * size given back is usable (under ASan a write past it would fail) */
    size_t cap = 1;
    char *big = ts_alloc_big(((size_t)33 << 20) + 5, &cap);
    TS_CHECK(big && (uintptr_t)big % ((size_t)2 << 20) == 0 && cap == (size_t)34 << 20, "big buffer: %p, %zu bytes",
             (void *)big, cap);
    if (big) memset(big, 1, cap);
    free(big);
    char *small = ts_alloc_big(((size_t)3 << 20) + 5, &cap);
    TS_CHECK(small && (uintptr_t)small % 64 == 0 && cap == ((size_t)3 << 20) + 64, "3 MiB: %zu bytes", cap);
    if (small) memset(small, 1, cap);
    free(small);
    TS_CHECK(ts_alloc_big(0, &cap) == NULL && cap == 0, "no bytes: NULL");
    TS_CHECK(ts_alloc_big(SIZE_MAX - 10, &cap) == NULL && cap == 0, "too many bytes: NULL");
    ts_arena h;
    TS_CHECK(ts_arena_init(&h, (size_t)33 << 20) == 0 && (uintptr_t)h.base % ((size_t)2 << 20) == 0 &&
                 h.cap == (size_t)33 << 20, "a large arena on 2 MiB pages, handing out what it was asked for");
    TS_CHECK(ts_arena_alloc(&h, ((size_t)33 << 20) + 1) == NULL, "no more than asked for");
    ts_arena_free(&h);
}

static void test_status_rng(void) {
    ts_err e;
    ts_err_clear(&e);
    ts_status s = TS_ERR(&e, TS_ERR_FORMAT, "bad %s at %d", "thing", 7);
    TS_CHECK(s == TS_ERR_FORMAT && strcmp(e.msg, "bad thing at 7") == 0 && e.line > 0, "err set");
    TS_CHECK(strcmp(ts_status_str(TS_ERR_IO), "io") == 0, "status str");
    ts_rng r1, r2;
    ts_rng_seed(&r1, 42);
    ts_rng_seed(&r2, 42);
    TS_CHECK(ts_rng_u64(&r1) == ts_rng_u64(&r2), "rng deterministic");
    float x[20000];
    ts_rng_normal(&r1, x, 20000);
    double m = 0, v = 0;
    for (int i = 0; i < 20000; i++) m += x[i];
    m /= 20000;
    for (int i = 0; i < 20000; i++) v += (x[i] - m) * (x[i] - m);
    v /= 20000;
    TS_CHECK(fabs(m) < 0.03 && fabs(v - 1) < 0.05, "normal moments m=%g v=%g", m, v);
}

/* tessera_blas_core_advice: nothing while OPENBLAS_CORETYPE is set (the user's or the
 * machine's choice; setting it here changes nothing for the OpenBLAS already loaded); without
 * it, a family only when OpenBLAS runs one of its generic pre-AVX cores, and the family the CPU
 * has. */
static void test_blas_core(void) {
    const char *core = tessera_blas_core();
    TS_CHECK(core && *core, "tessera_blas_core names the kernels");
    char *was = getenv("OPENBLAS_CORETYPE") ? strdup(getenv("OPENBLAS_CORETYPE")) : NULL;
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    TS_CHECK(tessera_blas_core_advice() == NULL, "advice while OPENBLAS_CORETYPE is set");
    unsetenv("OPENBLAS_CORETYPE");
    const char *adv = tessera_blas_core_advice();
    /* OpenBLAS 0.3.21's x86 cores without AVX */
    static const char *const generic[] = {"Unknown", "Katmai", "Coppermine", "Northwood", "Prescott", "Banias",
                                          "Atom", "Core2", "Penryn", "Dunnington", "Nehalem", "Athlon",
                                          "Opteron", "Opteron_SSE3", "Barcelona", "Nano", "Bobcat"};
    int is_generic = 0;
    for (size_t i = 0; i < sizeof generic / sizeof *generic; i++) is_generic |= !strcasecmp(core, generic[i]);
    if (!is_generic) {
        TS_CHECK(adv == NULL, "advice %s for OpenBLAS's %s kernels", adv ? adv : "-", core);
    } else {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
        const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                           __builtin_cpu_supports("avx512cd");
        const char *want = avx512 ? "SkylakeX"
                           : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? "Haswell"
                           : __builtin_cpu_supports("avx")                                     ? "SandyBridge"
                                                                                               : NULL;
        TS_CHECK((adv == NULL && want == NULL) || (adv && want && !strcmp(adv, want)),
                 "advice for generic %s kernels: %s, want %s", core, adv ? adv : "none", want ? want : "none");
#endif
    }
    printf("OpenBLAS kernels: %s, advice: %s\n", core, adv ? adv : "none");
    if (was) setenv("OPENBLAS_CORETYPE", was, 1);
    free(was);
}

/* The parameters text's density table: per step and layer, or per step past 4,096 values. */
static void test_density_metadata(void) {
    tessera_params p;
    memset(&p, 0, sizeof p);
    p.prompt = "x", p.steps = 2, p.width = 16, p.height = 16, p.frames = 1, p.flow_shift = 3, p.attn = "gna";
    double dd[4] = {0.5, 1.0, 0.25, -0.0};
    tessera_output o;
    memset(&o, 0, sizeof o);
    o.n_steps = 2, o.attn_layers = 2, o.attn_density = dd, o.attn_mean = 0.4375;
    char *s = tessera_format_parameters(NULL, &p, &o);
    TS_CHECK(s && strstr(s, "Attention density: 0.4375, Attention density by step and layer: 0.500 1.000; 0.250 "
                            "0.000, Version"), "table by step and layer: %s", s ? s : "(null)");
    free(s);
    enum { STEPS = 2049, LAYERS = 2 }; /* 4,098 values: each step's mean */
    double *big = malloc(STEPS * LAYERS * sizeof *big);
    for (int i = 0; i < STEPS * LAYERS; i++) big[i] = i % 2 ? 0.25 : 0.75;
    o.n_steps = STEPS, o.attn_density = big;
    s = tessera_format_parameters(NULL, &p, &o);
    int steps = 0;
    for (const char *c = s ? strstr(s, "Attention density by step: ") : NULL; c && (c = strstr(c, "0.500")); c += 5) steps++;
    TS_CHECK(s && !strstr(s, "by step and layer") && steps == STEPS, "per step past 4,096 values: %d steps", steps);
    free(s), free(big);
    o.n_steps = 2, o.attn_density = dd; /* big is gone */
    p.attn = NULL; /* no schedule: no table */
    s = tessera_format_parameters(NULL, &p, &o);
    TS_CHECK(s && strstr(s, "Attention density: 0.4375, Version"), "no schedule: %s", s ? s : "(null)");
    free(s);
    /* the run's notes, a line each: joined, quoted as JSON quotes a string (they may hold
     * commas, quotes, control characters), after the density table */
    p.attn = "gna", o.n_steps = 2, o.attn_density = dd;
    char notes[] = "sla: no proj_l, so plain top-k\nsaid \"twice\" \\ once\tthen\n";
    o.notes = notes;
    s = tessera_format_parameters(NULL, &p, &o);
    TS_CHECK(s && strstr(s, "0.250 0.000, Attention notes: \"sla: no proj_l, so plain top-k; said "
                            "\\\"twice\\\" \\\\ once\\u0009then\", Version"),
             "notes: %s", s ? s : "(null)");
    free(s);
    o.notes = (char *)"";
    s = tessera_format_parameters(NULL, &p, &o);
    TS_CHECK(s && strstr(s, "0.250 0.000, Version"), "no notes: %s", s ? s : "(null)");
    free(s);
}

/* SSIM the plain way, in float64: the 11 x 11 Gaussian window summed directly (not a row pass
 * then a column pass) at every pixel whose window lies inside the frame. */
static double ssim_ref(const uint8_t *a, const uint8_t *b, int h, int w) {
    double g[11], gs = 0, total = 0;
    for (int i = 0; i < 11; i++) g[i] = exp(-0.5 * (i - 5) * (i - 5) / 2.25), gs += g[i];
    for (int i = 0; i < 11; i++) g[i] /= gs;
    const double C1 = 2.55 * 2.55, C2 = 7.65 * 7.65;
    for (int ch = 0; ch < 3; ch++) {
        double sum = 0;
        for (int r = 5; r < h - 5; r++)
            for (int c = 5; c < w - 5; c++) {
                double ux = 0, uy = 0, xx = 0, yy = 0, xy = 0;
                for (int i = 0; i < 11; i++)
                    for (int j = 0; j < 11; j++) {
                        const double wt = g[i] * g[j];
                        const double x = a[((r + i - 5) * w + c + j - 5) * 3 + ch], y = b[((r + i - 5) * w + c + j - 5) * 3 + ch];
                        ux += wt * x, uy += wt * y, xx += wt * x * x, yy += wt * y * y, xy += wt * x * y;
                    }
                sum += (2 * ux * uy + C1) * (2 * (xy - ux * uy) + C2) /
                       ((ux * ux + uy * uy + C1) * (xx - ux * ux + yy - uy * uy + C2));
            }
        total += sum / ((h - 10) * (w - 10));
    }
    return total / 3;
}

/* PSNR and SSIM of frames (metrics.h) and tessera_compare over outputs, against float64
 * references written here; random frames, odd sizes. */
static void test_metrics(void) {
    enum { H = 23, W = 31, N = H * W * 3, F = 3 };
    uint8_t *a = malloc(F * N), *b = malloc(F * N);
    float *r = malloc(2 * F * N * sizeof *r);
    ts_test_randn(r, 2 * F * N, 71, 1.0f);
    for (int i = 0; i < F * N; i++) { /* a smooth-ish image and a noisier copy; frame f noisier by f */
        const int f = i / N, x = (i / 3) % W, y = (i / 3 / W) % H;
        double v = 128 + 60 * sin(0.3 * x + 0.2 * y + (i % 3)) + 20 * r[i];
        a[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        double u = a[i] + (4.0 + 8.0 * f) * r[F * N + i];
        b[i] = (uint8_t)(u < 0 ? 0 : u > 255 ? 255 : u + 0.5);
    }
    double se = 0;
    for (int i = 0; i < N; i++) se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    const double p0 = ts_psnr_u8(a, b, N), want = 10 * log10(255.0 * 255.0 * N / se);
    TS_CHECK(fabs(p0 - want) < 1e-9, "psnr %.12f, want %.12f", p0, want);
    uint8_t *c = malloc(N);
    for (int i = 0; i < N; i++) c[i] = a[i] ^ 1; /* every value off by one: MSE 1 */
    TS_CHECK(fabs(ts_psnr_u8(a, c, N) - 48.130803608679) < 1e-9, "psnr of an off-by-one frame %.12f",
             ts_psnr_u8(a, c, N));
    TS_CHECK(isinf(ts_psnr_u8(a, a, N)), "psnr of equal frames is infinite");
    ts_err e = {0};
    double s0 = -1, s1 = -1;
    TS_CHECK(ts_ssim_rgb(a, b, H, W, &s0, &e) == TS_OK, "ssim: %s", e.msg);
    const double sr = ssim_ref(a, b, H, W);
    TS_CHECK(fabs(s0 - sr) < 1e-12 && s0 > 0.2 && s0 < 0.99, "ssim %.15f, want %.15f", s0, sr);
    TS_CHECK(ts_ssim_rgb(a, a, H, W, &s1, &e) == TS_OK && fabs(s1 - 1) < 1e-12, "ssim of equal frames %.15f", s1);
    TS_CHECK(ts_ssim_rgb(a, b, 10, 40, &s1, &e) == TS_ERR_SHAPE && strstr(e.msg, "11x11"), "ssim of a 10-row frame: %s",
             e.msg);
    /* tessera_compare: per frame, and outputs of different sizes refused */
    tessera_output oa = {.frames = F, .width = W, .height = H, .rgb = a}, ob = oa;
    ob.rgb = b;
    double psnr[F], ssim[F];
    tessera_error te = {0};
    TS_CHECK(tessera_compare(&oa, &ob, psnr, ssim, &te) == TESSERA_OK, "tessera_compare: %s", te.msg);
    for (int f = 0; f < F; f++) {
        const double pf = ts_psnr_u8(a + f * N, b + f * N, N), sf = ssim_ref(a + f * N, b + f * N, H, W);
        TS_CHECK(psnr[f] == pf && fabs(ssim[f] - sf) < 1e-12, "frame %d: psnr %g (want %g), ssim %g (want %g)", f,
                 psnr[f], pf, ssim[f], sf);
    }
    TS_CHECK(psnr[0] > psnr[1] && psnr[1] > psnr[2] && ssim[0] > ssim[1] && ssim[1] > ssim[2],
             "noisier frames score lower: psnr %g %g %g, ssim %g %g %g", psnr[0], psnr[1], psnr[2], ssim[0], ssim[1],
             ssim[2]);
    ob.width = W - 1;
    TS_CHECK(tessera_compare(&oa, &ob, psnr, NULL, &te) == TESSERA_ERR_SHAPE && strstr(te.msg, "differ in size"),
             "outputs of different sizes: %s", te.msg);
    free(a), free(b), free(c), free(r);
    /* scikit-image's values on its frames (tools/golden/make_metrics.py): noise of two strengths,
     * a one-pixel shift, an inverted channel */
    ts_st_file *fx = NULL;
    TS_CHECK(ts_st_open(&fx, ts_test_fixture("metrics.safetensors"), &e) == TS_OK, "%s", e.msg);
    const ts_tensor *ga = fx ? ts_st_find(fx, "a") : NULL, *gb = fx ? ts_st_find(fx, "b") : NULL;
    const ts_tensor *gp = fx ? ts_st_find(fx, "psnr") : NULL, *gs = fx ? ts_st_find(fx, "ssim") : NULL;
    if (ga && gb && gp && gs && ga->ndim == 4) {
        const int64_t gh = ga->shape[1], gw = ga->shape[2], gn = gh * gw * 3;
        for (int64_t f = 0; f < ga->shape[0]; f++) {
            const uint8_t *fa = (const uint8_t *)ga->data + f * gn, *fb = (const uint8_t *)gb->data + f * gn;
            double sv = -1;
            const double pv = ts_psnr_u8(fa, fb, gn), pw = ((const float *)gp->data)[f], sw = ((const float *)gs->data)[f];
            TS_CHECK(ts_ssim_rgb(fa, fb, gh, gw, &sv, &e) == TS_OK, "%s", e.msg);
            TS_CHECK(fabs(pv - pw) < 1e-4 && fabs(sv - sw) < 1e-6, "scikit-image frame %lld: psnr %.6f (%.6f), ssim %.8f (%.8f)",
                     (long long)f, pv, pw, sv, sw);
        }
    } else {
        TS_CHECK(0, "metrics.safetensors lacks a, b, psnr or ssim");
    }
    ts_st_close(fx);
}

int main(void) {
    test_metrics();
    test_density_metadata();
    test_dtype_conversions();
    test_tensor();
    test_arena();
    test_status_rng();
    test_blas_core();
    return ts_test_summary("core");
}
