/*
 * test_attn.c — the CPU attention kernel against the float64 plan executor (ref.c),
 * and ts_attention (the entry models use) against a direct softmax.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "attn_paths.h"
#include "backend.h"
#include "cpu/cpu_internal.h"
#include "plan.h"
#include "test.h"

/* bf16: Q, K, V as bf16 (the reference widens the same values); kstd, vstd: K's and V's
 * spread (1 but in the range cases) */
static void run_case_x(ts_ctx *c, int64_t nq, int64_t nk, int64_t H, int64_t D, int32_t bq, int32_t bk, int sparse,
                       int permute, float qstd, float kstd, float vstd, int bf16) {
    float *q = malloc((size_t)(nq * H * D) * 4), *k = malloc((size_t)(nk * H * D) * 4);
    float *v = malloc((size_t)(nk * H * D) * 4);
    ts_test_randn(q, nq * H * D, (uint64_t)(nq * 7 + D), qstd);
    ts_test_randn(k, nk * H * D, (uint64_t)(nk * 11 + H), kstd);
    ts_test_randn(v, nk * H * D, (uint64_t)(nk * 13 + bq), vstd);
    uint16_t *qb = NULL, *kb = NULL, *vb = NULL;
    if (bf16) {
        qb = malloc((size_t)(nq * H * D) * 2), kb = malloc((size_t)(nk * H * D) * 2), vb = malloc((size_t)(nk * H * D) * 2);
        for (int64_t i = 0; i < nq * H * D; i++) qb[i] = ts_f32_to_bf16(q[i]);
        for (int64_t i = 0; i < nk * H * D; i++) kb[i] = ts_f32_to_bf16(k[i]), vb[i] = ts_f32_to_bf16(v[i]);
    }
    const void *qx = bf16 ? (const void *)qb : q, *kx = bf16 ? (const void *)kb : k, *vx = bf16 ? (const void *)vb : v;
    ts_attn_plan p = ts_attn_plan_dense(nq, nk, H, D, bq, bk);
    p.in_bf16 = bf16;
    int32_t *ptr = NULL, *idx = NULL, *perm = NULL;
    if (sparse) { /* query block i keeps key blocks i, 0 and (i*3+1) mod n, deduplicated;
                   * sparse == 2 also leaves every third query block's list empty; sparse == 3
                   * gives every head its own lists (exact_per_head): head h keeps i,
                   * (i*3+1+h) mod n and (5h+2) mod n, and head 1 lists nothing for i % 3 == 1;
                   * sparse == 4 keeps every other key block, upwards from 0 for even i and
                   * downwards from the last for odd i (chunks of blocks that are not
                   * consecutive; a short last block first in its list) */
        const int64_t nl = sparse == 3 ? H : 1;
        ptr = malloc((size_t)(nl * (p.n_qblk + 1)) * 4);
        idx = malloc((size_t)(nl * p.n_qblk * (sparse == 4 ? p.n_kblk : 3)) * 4);
        int32_t n = 0;
        for (int64_t h = 0; h < nl; h++) {
            int32_t *hp = ptr + h * (p.n_qblk + 1);
            for (int32_t i = 0; i < p.n_qblk; i++) {
                hp[i] = n;
                if ((sparse == 2 || (sparse == 3 && h == 1)) && i % 3 == 1) continue; /* the rows output zeros */
                if (sparse == 4) {
                    if (i % 2 == 0)
                        for (int32_t b = 0; b < p.n_kblk; b += 2) idx[n++] = b;
                    else
                        for (int32_t b = p.n_kblk - 1; b >= 0; b -= 2) idx[n++] = b;
                    continue;
                }
                int32_t cand[3] = {i % p.n_kblk, 0, (i * 3 + 1) % p.n_kblk};
                if (sparse == 3)
                    cand[1] = (int32_t)((i * 3 + 1 + h) % p.n_kblk), cand[2] = (int32_t)((5 * h + 2) % p.n_kblk);
                for (int a = 0; a < 3; a++) {
                    int dup = 0;
                    for (int32_t b = hp[i]; b < n; b++) dup |= idx[b] == cand[a];
                    if (!dup) idx[n++] = cand[a];
                }
            }
            hp[p.n_qblk] = n;
        }
        p.exact_ptr = ptr;
        p.exact_idx = idx;
        p.exact_per_head = sparse == 3;
    }
    if (permute) { /* a fixed pseudo-random permutation */
        perm = malloc((size_t)nq * 4);
        for (int64_t i = 0; i < nq; i++) perm[i] = (int32_t)i;
        uint64_t s = 99;
        for (int64_t i = nq - 1; i > 0; i--) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            int64_t j = (int64_t)((s >> 33) % (uint64_t)(i + 1));
            int32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        p.perm = perm;
    }
    float *out = malloc((size_t)(nq * H * D + 16) * 4), *ref = malloc((size_t)(nq * H * D) * 4);
    TS_CHECK(ts_attn_ref(&p, qx, kx, vx, ref) == 0, "ref ran");
    /* the backend's entry (the best tiles the plan allows), then each path built */
    for (int path = 0; path < TS_TEST_ATTN_PATHS; path++) {
        for (int i = 0; i < 16; i++) out[nq * H * D + i] = 7.0f;
        memset(out, 0xff, (size_t)(nq * H * D) * 4); /* NaN: a row left unwritten fails */
        ts_status st = ts_test_attn_run(c, path, &p, qx, kx, vx, out);
        if (st == TS_ERR_UNSUPPORTED) continue;
        TS_CHECK(st == TS_OK, "kernel ran");
        char what[160];
        snprintf(what, sizeof what, "attn nq=%lld nk=%lld H=%lld D=%lld blk=%dx%d sparse=%d perm=%d%s %s",
                 (long long)nq, (long long)nk, (long long)H, (long long)D, bq, bk, sparse, permute,
                 bf16 ? " bf16" : "", ts_test_attn_path_name[path]);
        ts_test_compare(what, out, ref, nq * H * D, ts_test_attn_tol(&p, path), NULL);
        if (sparse == 2) { /* query blocks with an empty list must give exact zeros */
            int zero = 1;
            for (int32_t i = 1; i < p.n_qblk; i += 3)
                for (int64_t r = (int64_t)i * bq; r < (int64_t)(i + 1) * bq && r < nq; r++) {
                    int64_t tok = perm ? perm[r] : r;
                    for (int64_t j = 0; j < H * D; j++) zero &= out[tok * H * D + j] == 0.0f;
                }
            TS_CHECK(zero, "%s: rows of a query block with no key block are not zero", what);
        }
        int sent = 1;
        for (int i = 0; i < 16; i++) sent &= out[nq * H * D + i] == 7.0f;
        TS_CHECK(sent, "%s wrote past its output", what);
    }
    free(q), free(k), free(v), free(out), free(ref), free(ptr), free(idx), free(perm), free(qb), free(kb), free(vb);
}

static void run_case_t(ts_ctx *c, int64_t nq, int64_t nk, int64_t H, int64_t D, int32_t bq, int32_t bk, int sparse,
                       int permute, float qstd, int bf16) {
    run_case_x(c, nq, nk, H, D, bq, bk, sparse, permute, qstd, 1.0f, 1.0f, bf16);
}

static void run_case(ts_ctx *c, int64_t nq, int64_t nk, int64_t H, int64_t D, int32_t bq, int32_t bk, int sparse,
                     int permute, float qstd) {
    run_case_t(c, nq, nk, H, D, bq, bk, sparse, permute, qstd, 0);
}

/* ts_attention (dense) against a naive double softmax(q kᵀ/√D) v written here, so the
 * reference executor itself is checked too. */
static void test_entry_point(ts_ctx *c) {
    int64_t nq = 37, nk = 23, H = 2, D = 12;
    float *q = malloc((size_t)(nq * H * D) * 4), *k = malloc((size_t)(nk * H * D) * 4),
          *v = malloc((size_t)(nk * H * D) * 4), *out = malloc((size_t)(nq * H * D) * 4),
          *ref = malloc((size_t)(nq * H * D) * 4);
    ts_test_randn(q, nq * H * D, 1, 1.5f);
    ts_test_randn(k, nk * H * D, 2, 1.0f);
    ts_test_randn(v, nk * H * D, 3, 1.0f);
    for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < nq; i++) {
            double s[64], mx = -1e300, sum = 0;
            for (int64_t j = 0; j < nk; j++) {
                double a = 0;
                for (int64_t d = 0; d < D; d++) a += (double)q[(i * H + h) * D + d] * k[(j * H + h) * D + d];
                s[j] = a / sqrt((double)D);
                if (s[j] > mx) mx = s[j];
            }
            for (int64_t j = 0; j < nk; j++) sum += (s[j] = exp(s[j] - mx));
            for (int64_t d = 0; d < D; d++) {
                double o = 0;
                for (int64_t j = 0; j < nk; j++) o += s[j] * v[(j * H + h) * D + d];
                ref[(i * H + h) * D + d] = (float)(o / sum);
            }
        }
    ts_attn_site site = {TS_ATTN_CROSS, 0, 0, 1, {0, 0, 0}, 0.0f, NULL, NULL, 0, 0};
    ts_err e = {0};
    TS_CHECK(ts_attention(c, NULL, &site, nq, nk, H, D, q, k, v, out, &e) == TS_OK, "%s", e.msg);
    ts_test_compare("ts_attention vs naive softmax", out, ref, nq * H * D, 1e-5, NULL);
    TS_CHECK(ts_attention(c, NULL, &site, 0, nk, H, D, q, k, v, out, &e) == TS_ERR_INVALID_ARG,
             "bad shape rejected");
    free(q), free(k), free(v), free(out), free(ref);
}

/* A kernel order with padding slots (n_kern > n): blocks whose padding sits at their end
 * (the kernel runs them as shorter full blocks), blocks with a hole inside (masked), and one
 * block of padding only; every listed block flagged partial where it holds padding. */
static void run_padded(ts_ctx *c, int64_t H, int64_t D, int32_t B) {
    enum { N = 150 };
    const int32_t nb = (N + B - 1) / B + 3; /* room for the padding below */
    const int64_t nk = (int64_t)nb * B, HD = H * D;
    int32_t *perm = malloc((size_t)nk * 4), *ptr = malloc((size_t)(nb + 1) * 4), *idx = malloc((size_t)nb * 3 * 4);
    uint8_t *full = malloc((size_t)nb * 3), *hasp = calloc((size_t)nb, 1);
    int64_t t = 0;
    for (int32_t b = 0; b < nb; b++) { /* padding: none, 1 at the end, 5 at the end, a hole at slot 1 */
        int kind = b == 2 ? 4 : b % 4;
        for (int32_t j = 0; j < B; j++) {
            int pad = kind == 4 || (kind == 1 && j == B - 1) || (kind == 2 && j >= B - 5) || (kind == 3 && j == 1) ||
                      t >= N;
            perm[(int64_t)b * B + j] = pad ? -1 : (int32_t)((t++ * 7) % N); /* 7 is prime to 150 */
            hasp[b] |= (uint8_t)pad;
        }
    }
    TS_CHECK(t == N, "padded order holds every token (%lld)", (long long)t);
    int32_t n = 0;
    for (int32_t i = 0; i < nb; i++) {
        ptr[i] = n;
        int32_t cand[3] = {i, (i + 1) % nb, (i * 3 + 2) % nb};
        for (int a = 0; a < 3; a++) {
            int dup = 0;
            for (int32_t e = ptr[i]; e < n; e++) dup |= idx[e] == cand[a];
            if (!dup) full[n] = !hasp[cand[a]], idx[n++] = cand[a];
        }
    }
    ptr[nb] = n;
    ts_attn_plan p = ts_attn_plan_dense(N, N, H, D, B, B);
    p.perm = perm, p.n_kern = nk, p.n_qblk = p.n_kblk = nb;
    p.exact_ptr = ptr, p.exact_idx = idx, p.exact_full = full;
    float *q = malloc((size_t)(N * HD) * 4), *k = malloc((size_t)(N * HD) * 4), *v = malloc((size_t)(N * HD) * 4);
    float *out = malloc((size_t)(N * HD) * 4), *ref = malloc((size_t)(N * HD) * 4);
    ts_test_randn(q, N * HD, 5, 2.0f), ts_test_randn(k, N * HD, 6, 1.0f), ts_test_randn(v, N * HD, 8, 1.0f);
    TS_CHECK(ts_attn_ref(&p, q, k, v, ref) == 0, "ref ran");
    for (int path = 0; path < TS_TEST_ATTN_PATHS; path++) {
        memset(out, 0xff, (size_t)(N * HD) * 4);
        ts_status st = ts_test_attn_run(c, path, &p, q, k, v, out);
        if (st == TS_ERR_UNSUPPORTED) continue;
        TS_CHECK(st == TS_OK, "kernel ran");
        char what[96];
        snprintf(what, sizeof what, "attn padded kernel order H=%lld D=%lld blk=%d %s", (long long)H, (long long)D, B,
                 ts_test_attn_path_name[path]);
        ts_test_compare(what, out, ref, N * HD, 1e-5, NULL);
    }
    free(q), free(k), free(v), free(out), free(ref), free(perm), free(ptr), free(idx), free(full), free(hasp);
}

/* The tiled paths' panels are packed by the first task that needs them, the other threads
 * waiting for a panel being packed. One head (so every thread's tasks share its panels), many
 * threads on few cores (so they interleave every which way), a workspace of NaN bytes at
 * every round (a panel read before it is packed gives NaN): each path's output must be the
 * one-thread output bit for bit, round after round. Dense lists (every first task needs every
 * panel) and lists of every other block. */
static void test_panel_race(void) {
    enum { N = 1024, D = 64, B = 64, ROUNDS = 12 };
    float *q = malloc((size_t)(N * D) * 4), *k = malloc((size_t)(N * D) * 4), *v = malloc((size_t)(N * D) * 4);
    uint16_t *qb = malloc((size_t)(N * D) * 2), *kb = malloc((size_t)(N * D) * 2), *vb = malloc((size_t)(N * D) * 2);
    float *one = malloc((size_t)(N * D) * 4), *out = malloc((size_t)(N * D) * 4);
    ts_test_randn(q, N * D, 31, 1.0f), ts_test_randn(k, N * D, 32, 1.0f), ts_test_randn(v, N * D, 33, 1.0f);
    for (int64_t i = 0; i < N * D; i++) qb[i] = ts_f32_to_bf16(q[i]), kb[i] = ts_f32_to_bf16(k[i]), vb[i] = ts_f32_to_bf16(v[i]);
    const int32_t nb = N / B;
    int32_t ptr[N / B + 1], idx[N / B * (N / B / 2)];
    int32_t n = 0;
    for (int32_t i = 0; i < nb; i++) {
        ptr[i] = n;
        for (int32_t b = i % 2; b < nb; b += 2) idx[n++] = b;
    }
    ptr[nb] = n;
    for (int bf16 = 0; bf16 < 2; bf16++)
        for (int sparse = 0; sparse < 2; sparse++) {
            ts_attn_plan p = ts_attn_plan_dense(N, N, 1, D, B, B);
            p.in_bf16 = bf16;
            if (sparse) p.exact_ptr = ptr, p.exact_idx = idx;
            const void *qx = bf16 ? (const void *)qb : q, *kx = bf16 ? (const void *)kb : k, *vx = bf16 ? (const void *)vb : v;
            for (int path = 0; path < TS_TEST_ATTN_PATHS; path++) {
                ts_ctx c1;
                ts_ctx_init(&c1, 1);
                c1.n_threads = 1;
                if (ts_test_attn_run(&c1, path, &p, qx, kx, vx, one) == TS_ERR_UNSUPPORTED) continue;
                int64_t bad = 0;
                for (int r = 0; r < ROUNDS; r++) {
                    ts_workspace ws = {0};
                    ts_test_dirty_workspace(&ws, 4u << 20);
                    ts_ctx cn;
                    ts_ctx_init(&cn, 1);
                    cn.n_threads = 3 + r % 6; /* 3 .. 8 */
                    cn.ws = &ws;
                    memset(out, 0xff, (size_t)(N * D) * 4);
                    TS_CHECK(ts_test_attn_run(&cn, path, &p, qx, kx, vx, out) == TS_OK, "kernel ran");
                    bad += memcmp(out, one, (size_t)(N * D) * 4) != 0;
                    ts_workspace_free(&ws);
                }
                TS_CHECK(bad == 0, "panel race, %s, %s lists, %s: %lld of %d rounds on 3-8 threads differ from one thread",
                         bf16 ? "bf16" : "fp32", sparse ? "every other block's" : "dense", ts_test_attn_path_name[path],
                         (long long)bad, ROUNDS);
            }
        }
    free(q), free(k), free(v), free(qb), free(kb), free(vb), free(one), free(out);
}

static void run_all(ts_ctx *cp);

int main(void) {
    ts_ctx c;
    ts_ctx_init(&c, 1);
    {
        ts_attn_plan t = ts_attn_plan_dense(64, 64, 1, 64, 64, 64);
        t.in_bf16 = 1;
        printf("paths built: avx2 tiles %s, avx512 tiles %s, bf16 dots %s, fp16 products %s (bf16 operands run "
               "the %s)\n",
               ts_cpu_attn_runs(&t, TS_ATTN_PATH_AVX2) >= 0 ? "yes" : "no",
               ts_cpu_attn_runs(&t, TS_ATTN_PATH_AVX512) >= 0 ? "yes" : "no",
               ts_cpu_attn_runs(&t, TS_ATTN_PATH_BF16) >= 0 ? "yes" : "no",
               ts_cpu_attn_runs(&t, TS_ATTN_PATH_FP16) >= 0 ? "yes" : "no",
               ts_cpu_attn_runs(&t, TS_ATTN_PATH_BEST) == TS_ATTN_RUN_BF16   ? "bf16 dots"
               : ts_cpu_attn_runs(&t, TS_ATTN_PATH_BEST) == TS_ATTN_RUN_FP16 ? "fp16 products"
                                                                             : "fp32 tiles, widened");
    }
    test_entry_point(&c);
    test_panel_race();
    run_all(&c);
    /* again on 3 threads (the first run has OpenMP's default): the heads fall into other
     * groups for the K/V layout and the query blocks go to threads in another order */
    ts_ctx c3;
    ts_ctx_init(&c3, 1);
    c3.n_threads = 3;
    run_all(&c3);
    /* with a workspace (as the library's handle keeps one): the kernel's buffers are reused
     * from case to case, larger and smaller ones, holding what the last case (or, at first,
     * the NaN bytes) left in them */
    ts_workspace ws = {0};
    ts_test_dirty_workspace(&ws, 8u << 20);
    ts_ctx cw;
    ts_ctx_init(&cw, 1);
    cw.ws = &ws;
    run_all(&cw);
    ts_workspace_free(&ws);
    return ts_test_summary("attn");
}

static void run_all(ts_ctx *cp) {
    ts_ctx c = *cp;
    run_case(&c, 64, 64, 1, 12, 64, 64, 0, 0, 1.0f);
    run_case(&c, 100, 100, 2, 12, 64, 64, 0, 0, 1.0f);   /* ragged last block */
    run_case(&c, 130, 77, 3, 64, 32, 16, 0, 0, 1.0f);    /* cross: Nq != Nk */
    run_case(&c, 200, 200, 2, 128, 64, 64, 0, 0, 3.0f);  /* peaky softmax */
    run_case(&c, 1, 5, 1, 7, 64, 64, 0, 0, 1.0f);        /* one query, odd D */
    /* dense rows spanning several of the kernel's 256-key chunks: the online-softmax
     * rescale between chunks is exercised (ragged last chunk) */
    run_case(&c, 70, 600, 2, 40, 64, 64, 0, 0, 3.0f);
    run_case(&c, 300, 513, 1, 128, 64, 256, 0, 0, 3.0f);
    run_case(&c, 190, 190, 2, 64, 32, 32, 1, 0, 1.0f);   /* block-sparse list */
    run_case(&c, 150, 150, 2, 12, 32, 32, 0, 1, 1.0f);   /* permuted */
    run_case(&c, 130, 90, 2, 24, 16, 16, 2, 0, 1.0f);    /* some query blocks list nothing */
    run_case(&c, 130, 130, 1, 24, 16, 16, 2, 1, 1.0f);   /* ... with a permutation */
    run_case(&c, 150, 150, 1, 16, 16, 32, 1, 1, 2.0f);   /* sparse + permuted */
    /* head dims the register tiles take (multiples of 16), ragged key tails (nk % 16 != 0),
     * row counts that are not multiples of the tiles' 6 */
    run_case(&c, 150, 150, 2, 32, 32, 32, 0, 1, 1.0f);   /* permuted */
    run_case(&c, 130, 90, 2, 48, 16, 16, 2, 0, 2.0f);    /* empty lists */
    run_case(&c, 131, 131, 3, 16, 16, 16, 2, 1, 1.0f);   /* ... with a permutation */
    run_case(&c, 97, 1000, 2, 64, 256, 64, 0, 0, 3.0f);  /* many chunks, ragged tail */
    run_case(&c, 4096, 4096, 4, 128, 64, 64, 1, 1, 1.0f); /* heads in several layout groups */
    run_case(&c, 190, 190, 3, 64, 32, 32, 3, 0, 1.0f);   /* a list per head */
    run_case(&c, 150, 150, 3, 32, 16, 32, 3, 1, 2.0f);   /* ... permuted */
    run_case(&c, 600, 600, 4, 128, 64, 64, 3, 1, 1.0f);  /* ... heads in layout groups */
    /* chunks of blocks that are not consecutive: 38 blocks of 4 keys, 50 of 1 (sgemm); 10 of 16,
     * permuted, the ragged last block first in the odd lists; 3 of 48 */
    run_case(&c, 300, 300, 2, 12, 8, 4, 4, 0, 2.0f);
    run_case(&c, 100, 100, 2, 12, 4, 1, 4, 1, 2.0f); /* blocks of one key: 50 segments a chunk */
    run_case(&c, 301, 301, 2, 32, 16, 16, 4, 1, 2.0f);
    run_case(&c, 250, 250, 2, 64, 32, 48, 4, 0, 1.0f);
    /* one head's panels over 16 MiB (8,320 keys x 256 dims): each chunk's panels are asked for
     * ahead, here 3 segments of 16 V ranges each */
    run_case(&c, 8320, 8320, 1, 256, 64, 64, 1, 1, 1.0f);
    /* bf16 operands (BF16 dots where built): odd key tails (a last pair with one key),
     * head dims of 16, 48 (a last single panel) and 64, permuted and empty lists */
    run_case_t(&c, 97, 1001, 2, 64, 256, 64, 0, 0, 3.0f, 1);
    run_case_t(&c, 131, 131, 3, 16, 16, 16, 2, 1, 1.0f, 1);
    run_case_t(&c, 131, 131, 3, 64, 16, 16, 3, 1, 1.0f, 1); /* a list per head */
    run_case_t(&c, 301, 301, 2, 64, 16, 16, 4, 1, 1.0f, 1); /* chunks of blocks not consecutive */
    run_case_t(&c, 130, 90, 2, 48, 16, 16, 2, 0, 2.0f, 1);
    run_case_t(&c, 200, 200, 2, 128, 64, 64, 0, 0, 3.0f, 1);
    run_case_t(&c, 150, 150, 2, 12, 32, 32, 0, 1, 1.0f, 1); /* D 12: sgemm on every path */
    /* bf16 values outside fp16's range as they come: the fp16 products scale them by powers of
     * two (Q tiny against K huge; V near fp16's largest, and V below its smallest normal) */
    run_case_x(&c, 150, 150, 2, 64, 32, 32, 0, 1, 1e-3f, 2e3f, 3e4f, 1);
    run_case_x(&c, 150, 150, 2, 64, 32, 32, 1, 0, 1e3f, 1e-3f, 1e-6f, 1);
    run_padded(&c, 2, 32, 16); /* the register tiles */
    run_padded(&c, 2, 24, 16); /* the sgemm path */
    run_padded(&c, 1, 64, 32);
    *cp = c;
}
