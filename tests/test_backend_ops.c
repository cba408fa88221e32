/*
 * test_backend_ops.c — every backend op against a float64 reference written here.
 *
 * Random inputs (never zeros), several shapes including odd ones and M = 1, NaN/Inf
 * checks (inside ts_test_compare), and sentinels past the end of every output to catch
 * out-of-bounds writes. Runs on every compiled backend (only "cpu" so far).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend.h"
#include "ctx.h"
#include "ops.h"
#include "test.h"

#define SENT 16
static const float sentinel = 12345.678f;

static float *alloc_out(int64_t n) {
    float *p = malloc((size_t)(n + SENT) * sizeof(float));
    for (int64_t i = 0; i < n + SENT; i++) p[i] = sentinel;
    return p;
}

static void check_sentinel(const char *what, const float *p, int64_t n) {
    int ok = 1;
    for (int i = 0; i < SENT; i++) ok &= p[n + i] == sentinel;
    TS_CHECK(ok, "%s wrote past the end of its output", what);
}

static float *randv(int64_t n, uint64_t seed, float std) {
    float *p = malloc((size_t)n * sizeof(float));
    ts_test_randn(p, n, seed, std);
    return p;
}

/* Rounds x to what a weight of dtype dt holds and returns the stored bits buffer. */
static void *to_dtype(const float *x, int64_t n, ts_dtype dt, float *rounded) {
    if (dt == TS_DTYPE_F32) {
        float *p = malloc((size_t)n * 4);
        memcpy(p, x, (size_t)n * 4);
        memcpy(rounded, x, (size_t)n * 4);
        return p;
    }
    uint16_t *p = malloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) {
        p[i] = dt == TS_DTYPE_BF16 ? ts_f32_to_bf16(x[i]) : ts_f32_to_f16(x[i]);
        rounded[i] = dt == TS_DTYPE_BF16 ? ts_bf16_to_f32(p[i]) : ts_f16_to_f32(p[i]);
    }
    return p;
}

static void test_linear(ts_ctx *c) {
    const int64_t shapes[][3] = {{1, 7, 5}, {13, 33, 17}, {64, 96, 300}, {5, 600, 70}};
    const ts_dtype dts[] = {TS_DTYPE_F32, TS_DTYPE_BF16, TS_DTYPE_F16};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        for (size_t di = 0; di < 3; di++) {
            for (int with_b = 0; with_b < 2; with_b++) {
                int64_t M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
                float *x = randv(M * K, 1 + si, 1.0f), *w = randv(N * K, 2 + si, 0.1f);
                float *b = randv(N, 3 + si, 0.5f);
                float *wr = malloc((size_t)(N * K) * 4);
                void *wd = to_dtype(w, N * K, dts[di], wr);
                int64_t shape[2] = {N, K};
                ts_tensor wt = ts_tensor_make(dts[di], 2, shape, wd);
                float *y = alloc_out(M * N), *ref = malloc((size_t)(M * N) * 4);
                for (int64_t m = 0; m < M; m++)
                    for (int64_t n = 0; n < N; n++) {
                        double acc = with_b ? b[n] : 0;
                        for (int64_t k = 0; k < K; k++) acc += (double)x[m * K + k] * wr[n * K + k];
                        ref[m * N + n] = (float)acc;
                    }
                char what[96];
                snprintf(what, sizeof what, "linear %lldx%lldx%lld %s bias=%d", (long long)M,
                         (long long)N, (long long)K, ts_dtype_name(dts[di]), with_b);
                TS_CHECK(ts_linear(c, y, x, M, &wt, with_b ? b : NULL) == TS_OK, "%s status", what);
                ts_test_compare(what, y, ref, M * N, 1e-5, NULL);
                check_sentinel(what, y, M * N);
                free(x), free(w), free(b), free(wr), free(wd), free(y), free(ref);
            }
        }
    }
}

/* BF16 linear taking its conversion tile from c->arena: one arena large enough, one too
 * small (falls back to malloc). Either way the result is right and the arena is left
 * where it was. */
static void test_linear_arena(ts_ctx *c) {
    const int64_t M = 6, N = 300, K = 40; /* N > one 256-row tile */
    const size_t caps[] = {1 << 20, 256};
    for (size_t ci = 0; ci < 2; ci++) {
        ts_arena a;
        TS_CHECK(ts_arena_init(&a, caps[ci]) == 0, "arena init");
        float *x = randv(M * K, 5, 1.0f), *w = randv(N * K, 6, 0.1f), *b = randv(N, 7, 0.5f);
        float *wr = malloc((size_t)(N * K) * 4);
        void *wd = to_dtype(w, N * K, TS_DTYPE_BF16, wr);
        int64_t shape[2] = {N, K};
        ts_tensor wt = ts_tensor_make(TS_DTYPE_BF16, 2, shape, wd);
        float *y = alloc_out(M * N), *ref = malloc((size_t)(M * N) * 4);
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double acc = b[n];
                for (int64_t k = 0; k < K; k++) acc += (double)x[m * K + k] * wr[n * K + k];
                ref[m * N + n] = (float)acc;
            }
        ts_arena *saved = c->arena;
        c->arena = &a;
        size_t used0 = ts_arena_mark(&a);
        char what[64];
        snprintf(what, sizeof what, "linear bf16 arena cap=%zu", caps[ci]);
        TS_CHECK(ts_linear(c, y, x, M, &wt, b) == TS_OK, "%s status", what);
        c->arena = saved;
        ts_test_compare(what, y, ref, M * N, 1e-5, NULL);
        check_sentinel(what, y, M * N);
        TS_CHECK(ts_arena_mark(&a) == used0, "%s left the arena moved", what);
        ts_arena_free(&a);
        free(x), free(w), free(b), free(wr), free(wd), free(y), free(ref);
    }
}

/* Several shapes incl. M = 1 (threads split rows of C) and N = 301 (they split columns),
 * with leading dimensions padded past the row length so
 * stride handling is checked; the padding columns of C must stay untouched. */
static void test_gemm(ts_ctx *c) {
    const int64_t shapes[][3] = {{9, 11, 13}, {1, 7, 5}, {17, 3, 33}, {70, 65, 129}, {33, 301, 40}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int64_t M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
                int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 5;
                int64_t ra = ta ? K : M, rb = tb ? N : K; /* stored rows of A, B */
                float *A = randv(ra * lda, 10 + si, 1), *B = randv(rb * ldb, 11 + si, 1);
                float *C0 = randv(M * ldc, 12 + si, 1);
                float *C = alloc_out(M * ldc), *ref = malloc((size_t)(M * ldc) * 4);
                memcpy(C, C0, (size_t)(M * ldc) * 4);
                memcpy(ref, C0, (size_t)(M * ldc) * 4); /* padding columns stay as they were */
                for (int64_t m = 0; m < M; m++)
                    for (int64_t n = 0; n < N; n++) {
                        double acc = 0;
                        for (int64_t k = 0; k < K; k++)
                            acc += (double)(ta ? A[k * lda + m] : A[m * lda + k]) *
                                   (tb ? B[n * ldb + k] : B[k * ldb + n]);
                        ref[m * ldc + n] = (float)(0.5 * acc + 2.0 * C0[m * ldc + n]);
                    }
                TS_CHECK(ts_gemm(c, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 2.0f, C, ldc) == TS_OK,
                         "gemm status");
                char what[96];
                snprintf(what, sizeof what, "gemm %lldx%lldx%lld ta=%d tb=%d", (long long)M,
                         (long long)N, (long long)K, ta, tb);
                ts_test_compare(what, C, ref, M * ldc, 1e-5, NULL);
                int pad_ok = 1;
                for (int64_t m = 0; m < M; m++)
                    for (int64_t n = N; n < ldc; n++) pad_ok &= C[m * ldc + n] == C0[m * ldc + n];
                TS_CHECK(pad_ok, "%s wrote into C's padding columns", what);
                check_sentinel(what, C, M * ldc);
                free(A), free(B), free(C0), free(C), free(ref);
            }
}

static void test_norms(ts_ctx *c) {
    const int64_t shapes[][2] = {{1, 5}, {7, 33}, {64, 1536}};
    for (size_t si = 0; si < 3; si++) {
        int64_t M = shapes[si][0], C = shapes[si][1];
        float *x = randv(M * C, 20 + si, 3.0f), *g = randv(C, 21 + si, 1.0f),
              *b = randv(C, 22 + si, 1.0f);
        for (int64_t i = 0; i < M * C; i++) x[i] += 0.7f; /* non-zero mean */
        float *ref = malloc((size_t)(M * C) * 4), *y = alloc_out(M * C);
        for (int affine = 0; affine < 2; affine++) {
            for (int64_t m = 0; m < M; m++) {
                double mu = 0, var = 0;
                for (int64_t i = 0; i < C; i++) mu += x[m * C + i];
                mu /= C;
                for (int64_t i = 0; i < C; i++) var += (x[m * C + i] - mu) * (x[m * C + i] - mu);
                var /= C;
                for (int64_t i = 0; i < C; i++)
                    ref[m * C + i] = (float)((x[m * C + i] - mu) / sqrt(var + 1e-6) *
                                                 (affine ? g[i] : 1) + (affine ? b[i] : 0));
            }
            ts_layer_norm(c, y, x, M, C, 1e-6f, affine ? g : NULL, affine ? b : NULL);
            ts_test_compare("layer_norm", y, ref, M * C, 1e-6, NULL);
            check_sentinel("layer_norm", y, M * C);
            memcpy(y, x, (size_t)(M * C) * 4); /* in place: y aliases x */
            ts_layer_norm(c, y, y, M, C, 1e-6f, affine ? g : NULL, affine ? b : NULL);
            ts_test_compare("layer_norm in place", y, ref, M * C, 1e-6, NULL);
            for (int64_t m = 0; m < M; m++) {
                double ms = 0;
                for (int64_t i = 0; i < C; i++) ms += (double)x[m * C + i] * x[m * C + i];
                ms /= C;
                for (int64_t i = 0; i < C; i++)
                    ref[m * C + i] = (float)(x[m * C + i] / sqrt(ms + 1e-6) * (affine ? g[i] : 1));
            }
            ts_rms_norm(c, y, x, M, C, 1e-6f, affine ? g : NULL);
            ts_test_compare("rms_norm", y, ref, M * C, 1e-6, NULL);
            check_sentinel("rms_norm", y, M * C);
            memcpy(y, x, (size_t)(M * C) * 4);
            ts_rms_norm(c, y, y, M, C, 1e-6f, affine ? g : NULL);
            ts_test_compare("rms_norm in place", y, ref, M * C, 1e-6, NULL);
            /* channel L2 norm: treat x as [C=M, S=C] */
            int64_t CH = M, S = C;
            for (int64_t s = 0; s < S; s++) {
                double n2 = 0;
                for (int64_t ch = 0; ch < CH; ch++) n2 += (double)x[ch * S + s] * x[ch * S + s];
                double nrm = sqrt(n2);
                if (nrm < 1e-12) nrm = 1e-12;
                for (int64_t ch = 0; ch < CH; ch++)
                    ref[ch * S + s] =
                        (float)(x[ch * S + s] / nrm * sqrt((double)CH) * (affine ? g[ch % C] : 1));
            }
            float *gch = malloc((size_t)CH * 4);
            for (int64_t ch = 0; ch < CH; ch++) gch[ch] = g[ch % C];
            ts_l2_norm_ch(c, y, x, CH, S, affine ? gch : NULL);
            ts_test_compare("l2_norm_ch", y, ref, CH * S, 1e-6, NULL);
            check_sentinel("l2_norm_ch", y, CH * S);
            /* in place */
            float *xc = malloc((size_t)(M * C) * 4);
            memcpy(xc, x, (size_t)(M * C) * 4);
            ts_l2_norm_ch(c, xc, xc, CH, S, affine ? gch : NULL);
            ts_test_compare("l2_norm_ch in place", xc, ref, CH * S, 1e-6, NULL);
            free(gch), free(xc);
        }
        free(x), free(g), free(b), free(ref), free(y);
    }
}

static void test_elementwise(ts_ctx *c) {
    const int64_t n = 70001;
    float *x = randv(n, 30, 3.0f), *y = alloc_out(n), *ref = malloc((size_t)n * 4);
    x[0] = 120.0f, x[1] = -120.0f, x[2] = 1e4f, x[3] = -1e4f; /* large magnitudes */
    const char *names[] = {"silu", "gelu_tanh", "gelu_erf"};
    for (int op = 0; op < 3; op++) {
        for (int64_t i = 0; i < n; i++) {
            double v = x[i], r;
            if (op == 0) r = v / (1 + exp(-v));
            else if (op == 1) r = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
            else r = 0.5 * v * (1 + erf(v / sqrt(2.0)));
            ref[i] = (float)r;
        }
        ts_unary(c, (ts_unary_op)op, y, x, n);
        ts_test_compare(names[op], y, ref, n, 1e-6, NULL);
        check_sentinel(names[op], y, n);
        TS_CHECK(isfinite(y[0]) && isfinite(y[1]) && isfinite(y[2]) && isfinite(y[3]),
                 "%s not finite at |x| = 120 / 1e4", names[op]);
        memcpy(y, x, (size_t)n * 4); /* in place: y aliases x */
        ts_unary(c, (ts_unary_op)op, y, y, n);
        ts_test_compare(names[op], y, ref, n, 1e-6, NULL);
    }
    int64_t M = 37, C = 29;
    float *sh = randv(C, 31, 1), *sc = randv(C, 32, 1), *g = randv(C, 33, 1), *z = randv(M * C, 34, 1);
    for (int64_t m = 0; m < M; m++)
        for (int64_t i = 0; i < C; i++)
            ref[m * C + i] = (float)((double)x[m * C + i] * (1.0 + sc[i]) + sh[i]);
    float *ym = alloc_out(M * C);
    ts_modulate(c, ym, x, M, C, sh, sc);
    ts_test_compare("modulate", ym, ref, M * C, 1e-6, NULL);
    check_sentinel("modulate", ym, M * C);
    memcpy(ym, x, (size_t)(M * C) * 4); /* in place: y aliases x */
    ts_modulate(c, ym, ym, M, C, sh, sc);
    ts_test_compare("modulate in place", ym, ref, M * C, 1e-6, NULL);
    free(ym);
    float *acc = alloc_out(M * C);
    memcpy(acc, x, (size_t)(M * C) * 4);
    for (int64_t m = 0; m < M; m++)
        for (int64_t i = 0; i < C; i++)
            ref[m * C + i] = (float)((double)x[m * C + i] + (double)g[i] * z[m * C + i]);
    ts_add_gated(c, acc, z, M, C, g);
    ts_test_compare("add_gated", acc, ref, M * C, 1e-6, NULL);
    check_sentinel("add_gated", acc, M * C);
    memcpy(acc, x, (size_t)(M * C) * 4);
    for (int64_t i = 0; i < M * C; i++) ref[i] = x[i] + z[i];
    ts_add_gated(c, acc, z, M, C, NULL);
    ts_test_compare("add_gated no gate", acc, ref, M * C, 1e-6, NULL);
    for (int64_t i = 0; i < M * C; i++) ref[i] = (float)((double)x[i] * (double)z[i]);
    ts_mul(c, acc, x, z, M * C);
    ts_test_compare("mul", acc, ref, M * C, 1e-6, NULL);
    check_sentinel("mul", acc, M * C);
    memcpy(acc, x, (size_t)(M * C) * 4); /* in place: y aliases a */
    ts_mul(c, acc, acc, z, M * C);
    ts_test_compare("mul in place", acc, ref, M * C, 1e-6, NULL);
    free(x), free(y), free(ref), free(sh), free(sc), free(g), free(z), free(acc);
}

static void test_rope(ts_ctx *c) {
    const int64_t shapes[][3] = {{19, 3, 12}, {1, 5, 2}, {33, 2, 128}, {7, 1, 42}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int64_t N = shapes[si][0], H = shapes[si][1], D = shapes[si][2], P = D / 2;
        float *x = alloc_out(N * H * D), *ang = randv(N * P, 41 + si, 3);
        ts_test_randn(x, N * H * D, 40 + si, 1);
        float *cs = malloc((size_t)(N * P) * 4), *sn = malloc((size_t)(N * P) * 4);
        for (int64_t i = 0; i < N * P; i++) cs[i] = cosf(ang[i]), sn[i] = sinf(ang[i]);
        float *ref = malloc((size_t)(N * H * D) * 4);
        for (int64_t n = 0; n < N; n++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t j = 0; j < P; j++) {
                    const float *v = x + (n * H + h) * D;
                    double a = v[2 * j], b = v[2 * j + 1], th = ang[n * P + j];
                    ref[(n * H + h) * D + 2 * j] = (float)(a * cos(th) - b * sin(th));
                    ref[(n * H + h) * D + 2 * j + 1] = (float)(a * sin(th) + b * cos(th));
                }
        char what[64];
        snprintf(what, sizeof what, "rope N=%lld H=%lld D=%lld", (long long)N, (long long)H,
                 (long long)D);
        TS_CHECK(ts_rope(c, x, N, H, D, cs, sn) == TS_OK, "%s status", what);
        ts_test_compare(what, x, ref, N * H * D, 1e-6, NULL);
        check_sentinel(what, x, N * H * D);
        free(x), free(ang), free(cs), free(sn), free(ref);
    }
    float odd[3] = {1, 2, 3}, cs1[1] = {1}, sn1[1] = {0};
    TS_CHECK(ts_rope(c, odd, 1, 1, 3, cs1, sn1) == TS_ERR_SHAPE, "rope with odd D rejected");
}

static void conv_ref(float *y, const float *x, const ts_conv3d_params *p, const float *w,
                     const float *b, int64_t Cout, int kt, int kh, int kw) {
    int64_t To = ts_conv_out(p->t, kt, p->stride[0], p->pad[0], p->pad[1]);
    int64_t Ho = ts_conv_out(p->h, kh, p->stride[1], p->pad[2], p->pad[3]);
    int64_t Wo = ts_conv_out(p->w, kw, p->stride[2], p->pad[4], p->pad[5]);
    for (int64_t co = 0; co < Cout; co++)
        for (int64_t to = 0; to < To; to++)
            for (int64_t ho = 0; ho < Ho; ho++)
                for (int64_t wo = 0; wo < Wo; wo++) {
                    double acc = b ? b[co] : 0;
                    for (int64_t ci = 0; ci < p->cin; ci++)
                        for (int a = 0; a < kt; a++)
                            for (int bb = 0; bb < kh; bb++)
                                for (int cc = 0; cc < kw; cc++) {
                                    int64_t ti = to * p->stride[0] + a - p->pad[0];
                                    int64_t hi = ho * p->stride[1] + bb - p->pad[2];
                                    int64_t wi = wo * p->stride[2] + cc - p->pad[4];
                                    if (ti < 0 || ti >= p->t || hi < 0 || hi >= p->h || wi < 0 ||
                                        wi >= p->w)
                                        continue;
                                    acc += (double)w[(((co * p->cin + ci) * kt + a) * kh + bb) * kw + cc] *
                                           x[((ci * p->t + ti) * p->h + hi) * p->w + wi];
                                }
                    y[((co * To + to) * Ho + ho) * Wo + wo] = (float)acc;
                }
}

static void test_conv3d(ts_ctx *c) {
    struct {
        int cin, cout, t, h, w, kt, kh, kw, st, sh, sw, pad[6];
        ts_dtype dt;
    } cases[] = {
        {3, 5, 3, 7, 9, 3, 3, 3, 1, 1, 1, {2, 0, 1, 1, 1, 1}, TS_DTYPE_F32},  /* causal 3x3x3 */
        {4, 6, 2, 5, 6, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0, 0, 0}, TS_DTYPE_F32},  /* pointwise */
        {4, 6, 2, 5, 6, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0, 0, 0}, TS_DTYPE_BF16}, /* pointwise bf16 */
        {3, 4, 1, 9, 8, 1, 3, 3, 1, 2, 2, {0, 0, 0, 1, 0, 1}, TS_DTYPE_F32},  /* down2d pad r/b */
        {5, 10, 5, 4, 3, 3, 1, 1, 2, 1, 1, {0, 0, 0, 0, 0, 0}, TS_DTYPE_F16}, /* time_conv s2 */
        {4, 8, 3, 4, 5, 3, 1, 1, 1, 1, 1, {2, 0, 0, 0, 0, 0}, TS_DTYPE_F32},  /* time_conv up */
        {2, 3, 2, 6, 5, 1, 2, 2, 1, 2, 2, {0, 0, 0, 0, 0, 0}, TS_DTYPE_F32},  /* patch embed */
        {7, 3, 1, 3, 40, 1, 3, 3, 1, 1, 1, {0, 0, 1, 1, 1, 1}, TS_DTYPE_BF16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ts_conv3d_params p = {cases[i].cin, cases[i].t, cases[i].h, cases[i].w,
                              {cases[i].st, cases[i].sh, cases[i].sw}, {0}, NULL, 0, 0, NULL, 0};
        memcpy(p.pad, cases[i].pad, sizeof p.pad);
        int64_t Cout = cases[i].cout, K = (int64_t)cases[i].cin * cases[i].kt * cases[i].kh * cases[i].kw;
        float *x = randv((int64_t)p.cin * p.t * p.h * p.w, 50 + i, 1), *w = randv(Cout * K, 60 + i, 0.3f);
        float *b = randv(Cout, 70 + i, 0.5f), *wr = malloc((size_t)(Cout * K) * 4);
        void *wd = to_dtype(w, Cout * K, cases[i].dt, wr);
        int64_t shape[5] = {Cout, p.cin, cases[i].kt, cases[i].kh, cases[i].kw};
        ts_tensor wt = ts_tensor_make(cases[i].dt, 5, shape, wd);
        int64_t To = ts_conv_out(p.t, cases[i].kt, p.stride[0], p.pad[0], p.pad[1]);
        int64_t Ho = ts_conv_out(p.h, cases[i].kh, p.stride[1], p.pad[2], p.pad[3]);
        int64_t Wo = ts_conv_out(p.w, cases[i].kw, p.stride[2], p.pad[4], p.pad[5]);
        int64_t n = Cout * To * Ho * Wo;
        float *y = alloc_out(n), *ref = malloc((size_t)n * 4);
        conv_ref(ref, x, &p, wr, i % 2 ? NULL : b, Cout, cases[i].kt, cases[i].kh, cases[i].kw);
        char what[64];
        snprintf(what, sizeof what, "conv3d case %zu", i);
        TS_CHECK(ts_conv3d(c, y, x, &p, &wt, i % 2 ? NULL : b) == TS_OK, "%s status", what);
        ts_test_compare(what, y, ref, n, 1e-5, NULL);
        check_sentinel(what, y, n);
        free(x), free(w), free(b), free(wr), free(wd), free(y), free(ref);
    }
}

/* A conv reading [prefix | x] equals the conv of the concatenated input. */
static void test_conv3d_prefix(ts_ctx *c) {
    const int cin = 3, cout = 4, tp = 2, t = 3, h = 5, w = 6;
    float *pre = randv(cin * tp * h * w, 90, 1), *x = randv(cin * t * h * w, 91, 1);
    float *cat = malloc((size_t)(cin * (tp + t) * h * w) * 4), *wt = randv(cout * cin * 27, 92, 0.3f);
    for (int ci = 0; ci < cin; ci++) {
        memcpy(cat + ci * (tp + t) * h * w, pre + ci * tp * h * w, (size_t)(tp * h * w) * 4);
        memcpy(cat + (ci * (tp + t) + tp) * h * w, x + ci * t * h * w, (size_t)(t * h * w) * 4);
    }
    int64_t shape[5] = {cout, cin, 3, 3, 3};
    ts_tensor wten = ts_tensor_make(TS_DTYPE_F32, 5, shape, wt);
    ts_conv3d_params pc = {cin, tp + t, h, w, {1, 1, 1}, {0, 0, 1, 1, 1, 1}, NULL, 0, 0, NULL, 0};
    ts_conv3d_params pp = {cin, t, h, w, {1, 1, 1}, {0, 0, 1, 1, 1, 1}, pre, tp, 0, NULL, 0};
    int64_t n = cout * t * h * w;
    float *ref = malloc((size_t)n * 4), *y = alloc_out(n);
    conv_ref(ref, cat, &pc, wt, NULL, cout, 3, 3, 3);
    TS_CHECK(ts_conv3d(c, y, x, &pp, &wten, NULL) == TS_OK, "prefix conv status");
    ts_test_compare("conv3d with prefix frames", y, ref, n, 1e-5, NULL);
    check_sentinel("conv3d with prefix frames", y, n);
    free(pre), free(x), free(cat), free(wt), free(ref), free(y);
}

/* A conv reading its input as nearest-upsampled 2x equals upsample2x then the conv. */
static void test_conv3d_upsampled(ts_ctx *c) {
    const int cin = 3, cout = 5, t = 2, h = 4, w = 7;
    float *x = randv(cin * t * h * w, 95, 1), *wt = randv(cout * cin * 9, 96, 0.3f), *b = randv(cout, 97, 0.5f);
    float *up = malloc((size_t)(cin * t * 4 * h * w) * 4);
    ts_upsample2x(c, up, x, cin * t, h, w);
    int64_t shape[5] = {cout, cin, 1, 3, 3};
    ts_tensor wten = ts_tensor_make(TS_DTYPE_F32, 5, shape, wt);
    ts_conv3d_params pr = {cin, t, 2 * h, 2 * w, {1, 1, 1}, {0, 0, 1, 1, 1, 1}, NULL, 0, 0, NULL, 0};
    ts_conv3d_params pf = {cin, t, h, w, {1, 1, 1}, {0, 0, 1, 1, 1, 1}, NULL, 0, 1, NULL, 0};
    int64_t n = cout * t * 4 * h * w;
    float *ref = malloc((size_t)n * 4), *y = alloc_out(n);
    conv_ref(ref, up, &pr, wt, b, cout, 1, 3, 3);
    TS_CHECK(ts_conv3d(c, y, x, &pf, &wten, b) == TS_OK, "upsampled conv status");
    ts_test_compare("conv3d reading a 2x upsampled input", y, ref, n, 1e-5, NULL);
    check_sentinel("conv3d upsampled", y, n);
    free(x), free(wt), free(b), free(up), free(ref), free(y);
}

/* [prefix | x] frames [cin, tp + t, hw], each pixel SiLU(l2-normed · gamma), in float64. */
static float *normed_cat(const float *pre, const float *x, const float *g, int cin, int tp, int t, int64_t hw) {
    const int T = tp + t;
    float *cat = malloc((size_t)(cin * T * hw) * 4);
    for (int ci = 0; ci < cin; ci++)
        for (int f = 0; f < T; f++)
            for (int64_t j = 0; j < hw; j++)
                cat[(ci * T + f) * hw + j] = f < tp ? pre[(ci * tp + f) * hw + j] : x[(ci * t + f - tp) * hw + j];
    for (int f = 0; f < T; f++)
        for (int64_t j = 0; j < hw; j++) {
            double ss = 0;
            for (int ci = 0; ci < cin; ci++) ss += (double)cat[(ci * T + f) * hw + j] * cat[(ci * T + f) * hw + j];
            double inv = sqrt((double)cin) / fmax(sqrt(ss), 1e-12);
            for (int ci = 0; ci < cin; ci++) {
                double v = cat[(ci * T + f) * hw + j] * inv * g[ci];
                cat[(ci * T + f) * hw + j] = (float)(v / (1 + exp(-v)));
            }
        }
    return cat;
}

/* ts_conv3d at `threads` threads against ref, and no write past y's n floats. */
static void conv_at_threads(const ts_ctx *c, int threads, const char *label, float *y, const float *x,
                            const ts_conv3d_params *p, const ts_tensor *w, const float *b, const float *ref,
                            int64_t n) {
    ts_ctx cc = *c;
    cc.n_threads = threads;
    char what[128];
    snprintf(what, sizeof what, "%s, %d thread(s)", label, threads);
    TS_CHECK(ts_conv3d(&cc, y, x, p, w, b) == TS_OK, "%s: status", what);
    ts_test_compare(what, y, ref, n, 1e-5, NULL);
    check_sentinel(what, y, n);
}

/* norm_gamma: the conv of SiLU(l2-normed · gamma) input, prefix frames included, equals
 * the float64 conv of the input transformed in float64; accumulate adds onto y. Row bands of
 * 2-3 rows (one or two threads), so the kernel's halo rows cross band edges. */
static void test_conv3d_normed(ts_ctx *c) {
    const int cin = 6, cout = 4, tp = 2, t = 3, h = 7, w = 5, T = tp + t;
    float *pre = randv(cin * tp * h * w, 110, 1), *x = randv(cin * t * h * w, 111, 1);
    float *wt = randv(cout * cin * 27, 112, 0.3f), *b = randv(cout, 113, 0.5f), *g = randv(cin, 114, 1);
    float *cat = normed_cat(pre, x, g, cin, tp, t, h * w); /* [prefix | x], transformed */
    int64_t shape[5] = {cout, cin, 3, 3, 3};
    ts_tensor wten = ts_tensor_make(TS_DTYPE_F32, 5, shape, wt);
    ts_conv3d_params pc = {cin, T, h, w, {1, 1, 1}, {0, 0, 1, 1, 1, 1}, NULL, 0, 0, NULL, 0};
    ts_conv3d_params pp = {cin, t, h, w, {1, 1, 1}, {0, 0, 1, 1, 1, 1}, pre, tp, 0, g, 0};
    const int64_t n = cout * t * h * w;
    float *ref = malloc((size_t)n * 4), *y = alloc_out(n), *acc = randv(n, 115, 1);
    conv_ref(ref, cat, &pc, wt, b, cout, 3, 3, 3);
    for (int threads = 1; threads <= 2; threads++) {
        conv_at_threads(c, threads, "conv3d of a normed + SiLU input, prefix frames", y, x, &pp, &wten, b, ref, n);
        /* accumulate: y = acc + conv */
        ts_ctx cc = *c;
        cc.n_threads = threads;
        char what[96];
        memcpy(y, acc, (size_t)n * 4);
        pp.accumulate = 1;
        TS_CHECK(ts_conv3d(&cc, y, x, &pp, &wten, b) == TS_OK, "conv3d normed, accumulate, %d thread(s): status",
                 threads);
        pp.accumulate = 0;
        float *ra = malloc((size_t)n * 4);
        for (int64_t i = 0; i < n; i++) ra[i] = ref[i] + acc[i];
        snprintf(what, sizeof what, "conv3d normed, accumulating onto y, %d thread(s)", threads);
        ts_test_compare(what, y, ra, n, 1e-5, NULL);
        free(ra);
    }
#ifdef _OPENMP
    /* asked for 2 threads inside another parallel region, the conv gets a team of one:
     * every row must still be computed */
    {
        ts_ctx cc = *c;
        cc.n_threads = 2;
        ts_status st = TS_ERR_INVALID_ARG;
        const int levels = omp_get_max_active_levels();
        omp_set_max_active_levels(1);
#pragma omp parallel num_threads(2)
#pragma omp master
        st = ts_conv3d(&cc, y, x, &pp, &wten, b);
        omp_set_max_active_levels(levels);
        TS_CHECK(st == TS_OK, "normed conv in a one-thread team: status");
        ts_test_compare("conv3d normed, 2 threads asked, a team of one", y, ref, n, 1e-5, NULL);
    }
#endif
    /* no prefix: the causal pad zero-fills before the first frame, after the norm */
    ts_conv3d_params pz = {cin, t, h, w, {1, 1, 1}, {2, 0, 1, 1, 1, 1}, NULL, 0, 0, g, 0};
    ts_conv3d_params pzr = {cin, t, h, w, {1, 1, 1}, {2, 0, 1, 1, 1, 1}, NULL, 0, 0, NULL, 0};
    {
        float *cx = malloc((size_t)(cin * t * h * w) * 4); /* the transformed x frames alone */
        for (int ci = 0; ci < cin; ci++) memcpy(cx + ci * t * h * w, cat + (ci * T + tp) * h * w, (size_t)(t * h * w) * 4);
        conv_ref(ref, cx, &pzr, wt, NULL, cout, 3, 3, 3);
        free(cx);
    }
    TS_CHECK(ts_conv3d(c, y, x, &pz, &wten, NULL) == TS_OK, "normed conv without prefix: status");
    ts_test_compare("conv3d normed, causal zero pad", y, ref, n, 1e-5, NULL);
    ts_conv3d_params ps = {cin, t, h, w, {1, 2, 2}, {0, 0, 1, 1, 1, 1}, NULL, 0, 0, g, 0};
    TS_CHECK(ts_conv3d(c, y, x, &ps, &wten, NULL) == TS_ERR_UNSUPPORTED, "normed conv with stride 2 is refused");
    free(pre), free(x), free(wt), free(b), free(g), free(cat), free(ref), free(y), free(acc);
}

/* norm_gamma with frames too many for one pass of the per-thread ring of normed rows (64
 * channels x 1024 columns x 3-4 rows a frame; 22 input frames): the output frames go in
 * groups, each starting the ring afresh. */
static void test_conv3d_normed_groups(ts_ctx *c) {
    const int cin = 64, cout = 2, tp = 2, t = 20, h = 4, w = 1024;
    const int64_t hw = (int64_t)h * w;
    float *pre = randv(cin * tp * hw, 120, 1), *x = randv(cin * t * hw, 121, 1);
    float *wt = randv(cout * cin * 27, 122, 0.1f), *b = randv(cout, 123, 0.5f), *g = randv(cin, 124, 1);
    float *cat = normed_cat(pre, x, g, cin, tp, t, hw);
    int64_t shape[5] = {cout, cin, 3, 3, 3};
    ts_tensor wten = ts_tensor_make(TS_DTYPE_F32, 5, shape, wt);
    ts_conv3d_params pc = {cin, tp + t, h, w, {1, 1, 1}, {0, 0, 1, 1, 1, 1}, NULL, 0, 0, NULL, 0};
    ts_conv3d_params pp = {cin, t, h, w, {1, 1, 1}, {0, 0, 1, 1, 1, 1}, pre, tp, 0, g, 0};
    const int64_t n = cout * t * hw;
    float *ref = malloc((size_t)n * 4), *y = alloc_out(n);
    conv_ref(ref, cat, &pc, wt, b, cout, 3, 3, 3);
    for (int threads = 1; threads <= 2; threads++)
        conv_at_threads(c, threads, "conv3d normed, 20 output frames in groups", y, x, &pp, &wten, b, ref, n);
    free(pre), free(x), free(wt), free(b), free(g), free(cat), free(ref), free(y);
}

/* A frame big enough that its im2col (K·Ho·Wo floats) exceeds the CPU backend's 4 Mi-float
 * bound, so the conv runs in several row bands (last one ragged); BF16 weights and a bias.
 * K = 40·27 = 1080, Ho·Wo = 130·131: about 18.4 Mi floats, several bands. */
static void test_conv3d_bands(ts_ctx *c) {
    const int cin = 40, cout = 3, t = 2, h = 130, w = 131;
    ts_conv3d_params p = {cin, t, h, w, {1, 1, 1}, {2, 0, 1, 1, 1, 1}, NULL, 0, 0, NULL, 0};
    int64_t K = (int64_t)cin * 27, nx = (int64_t)cin * t * h * w;
    float *x = randv(nx, 100, 1), *wf = randv(cout * K, 101, 0.1f), *b = randv(cout, 102, 0.5f);
    float *wr = malloc((size_t)(cout * K) * 4);
    void *wd = to_dtype(wf, cout * K, TS_DTYPE_BF16, wr);
    int64_t shape[5] = {cout, cin, 3, 3, 3};
    ts_tensor wt = ts_tensor_make(TS_DTYPE_BF16, 5, shape, wd);
    /* output frame 0 reads only padding and frame 0; compare both output frames */
    int64_t n = (int64_t)cout * t * h * w;
    float *y = alloc_out(n), *ref = malloc((size_t)n * 4);
    conv_ref(ref, x, &p, wr, b, cout, 3, 3, 3);
    TS_CHECK(ts_conv3d(c, y, x, &p, &wt, b) == TS_OK, "banded conv status");
    ts_test_compare("conv3d in row bands", y, ref, n, 1e-5, NULL);
    check_sentinel("conv3d in row bands", y, n);
    free(x), free(wf), free(b), free(wr), free(wd), free(y), free(ref);
}

static void test_upsample(ts_ctx *c) {
    int64_t C = 3, H = 5, W = 7;
    float *x = randv(C * H * W, 80, 1), *y = alloc_out(C * 4 * H * W), *ref = malloc((size_t)(C * 4 * H * W) * 4);
    for (int64_t ch = 0; ch < C; ch++)
        for (int64_t i = 0; i < 2 * H; i++)
            for (int64_t j = 0; j < 2 * W; j++)
                ref[(ch * 2 * H + i) * 2 * W + j] = x[(ch * H + i / 2) * W + j / 2];
    ts_upsample2x(c, y, x, C, H, W);
    ts_test_compare("upsample2x", y, ref, C * 4 * H * W, 0, NULL);
    check_sentinel("upsample2x", y, C * 4 * H * W);
    free(x), free(y), free(ref);
}

int main(void) {
    const char *backends[] = {"cpu"};
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        ts_ctx c;
        ts_ctx_init(&c, 1);
        c.backend = ts_backend_by_name(backends[i]);
        if (!c.backend) {
            fprintf(stderr, "SKIP backend %s: not compiled in\n", backends[i]);
            continue;
        }
        test_linear(&c);
        test_linear_arena(&c);
        test_gemm(&c);
        test_norms(&c);
        test_elementwise(&c);
        test_rope(&c);
        test_conv3d(&c);
        test_conv3d_prefix(&c);
        test_conv3d_upsampled(&c);
        test_conv3d_bands(&c);
        test_conv3d_normed(&c);
        test_conv3d_normed_groups(&c);
        test_upsample(&c);
    }
    return ts_test_summary("backend_ops");
}
