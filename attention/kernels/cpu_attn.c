/*
 * cpu_attn.c — block-sparse flash attention on the CPU (executes any plan's exact part).
 *
 * One task per (head, query block), OpenMP over all of them. A task copies its query
 * block pre-scaled by scale·log2(e) (so softmax uses exp2), then walks the key blocks
 * the plan lists (all, when dense), taking them in chunks of up to TS_ATTN_KCHUNK keys,
 * consecutive blocks or not (the products run per segment of consecutive blocks; the row
 * pass once over the chunk, so a scattered list, DraftAttention's, pays it half as often as
 * block by block). Per chunk: S = Q·Kᵀ, an online-softmax update of the running
 * max / sum and a rescale of the accumulator, then O += P·V. fp32 throughout; the N x N
 * score matrix is never materialised. Partial blocks (plan.exact_full[i] == 0) get the
 * element mask: masked scores are left out of the running max and zeroed after the exp (with
 * AVX-512 and the builder's precomputed bits, the bits are the lane masks of one vectorised
 * row pass, and the AVX-512 tiles, fp32 and fp16, skip the 16-key panels that none of a tile's
 * 8 query rows sees, and run a tile's 4-row halves apart where they see different panels;
 * otherwise a byte mask per chunk).
 *
 * The two products, with a head dim that is a multiple of 16 (up to 256) and key blocks of a
 * multiple of 16: register tiles over each head's K and V laid out once per call in 16-wide
 * panels, so each step's loads are contiguous and nothing is packed per chunk. AVX-512: 8
 * query rows x 32 keys or dims (two panels, 16 accumulators); AVX2 + FMA: 6 x 16 (12). With
 * bf16 operands, where ts_cpu_bf16_dots_fast() says AVX512-BF16 beats the FMAs (AMD), the tiles
 * are vdpbf16ps dots over bf16 panels (pairs of dims for Q·Kᵀ, pairs of keys for P·V, P rounded
 * to bf16): twice the fp32 FMA's work per instruction, at about 1e-3 relative error from that
 * rounding. Elsewhere, where AVX512-FP16 is built (Intel), bf16 operands run the same tiles
 * as vfmadd231ph over fp16 panels (values scaled by powers of two, sums folded into fp32 every
 * 16 pairs of dims or 32 pairs of keys): twice the fp32 FMA's work per instruction at its rate
 * on an Intel Xeon, about 1.45x the fp32 tiles' speed, at 1e-3 to 2e-3 relative error from the
 * fp16 sums; else bf16 operands are widened into the fp32 panels. Otherwise: one
 * single-threaded sgemm each, reading K and V in place (row stride H·D), or gathered (and
 * widened) into kernel order once per call for a permuted or bf16 plan. With the sgemms,
 * OpenBLAS packed Q, K, S and V again for every chunk and cleared S first: a fifth of the
 * kernel's time at head dim 128 (perf), which the tiles do not spend.
 *
 * exp2: an AVX-512 or AVX2 + FMA row pass (exp2_row512 / exp2_row) where no element is masked,
 * the masked AVX-512 pass (exp2_row512_masked) over the builder's mask bits, else ts_exp2f
 * (src/cpu/vmath.h), which vectorises; libm's expf is scalar and was a fifth of the
 * kernel's time.
 *
 * TS_QUANT_INT8_QK (PARO): K is quantised once per head and key block (kernel order) before
 * the tasks run, each task quantises its query rows in groups of quant_rows, and S comes
 * from integer dots on int8 values held in int16 (AVX512-VNNI vpdpwssd, 8 rows x 32 keys, on
 * the AVX-512 path; AVX2 vpmaddwd, 4 x 8; a plain loop elsewhere), scaled back to float; the
 * softmax and P·V are the fp32 path's (P·V on the register tiles where they fit).
 *
 * plan.lin_w (SLA's linear branch, from fp32 operands or plan.lin_q, lin_k, lin_v): before a
 * group's tasks, each head's Σ φ(k)vᵀ and Σ φ(k) (cpu_lin.c): over all keys and times the
 * projection's weights for lin_all; for the paper's variant by key block, then each query
 * block's over the blocks its list does not name, a strip of values at a time (kept in a
 * workspace slot: 6 MB a head at 4,096 tokens, 51 MB at 32,760). Each task then adds
 * φ(q)·KV / (φ(q)·KS), projected, and the bias to its rows as it writes them (lin_rows),
 * while its query rows and outputs are in cache. Added by SLA after the kernel, as before,
 * the branch read q, k, v again and the output twice: at 4,096 tokens, 12 heads and ~10 %,
 * lin_all is 3 to 5 % faster (bench/README, tenth session), the paper's variant 5 to 8 % at
 * 32,760 tokens (eleventh; with each task gathering its blocks' sums itself, 3 % slower).
 */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "../../src/cpu/cpu_internal.h"
#include "../../src/cpu/vmath.h"
#include "../plan.h"

#define TS_ATTN_KCHUNK 256
#define TS_ATTN_MAXQ 1024 /* INT8_QK: the largest query block */

#if defined(__AVX2__) && defined(__FMA__)
#define TS_ATTN_TILE 1
#else
#define TS_ATTN_TILE 0
#endif
#if defined(__AVX512F__)
#define TS_ATTN_TILE512 1
#else
#define TS_ATTN_TILE512 0
#endif
#if TS_ATTN_TILE512 && defined(__AVX512BF16__)
#define TS_ATTN_BFDOT 1
#else
#define TS_ATTN_BFDOT 0
#endif
#if TS_ATTN_TILE512 && defined(__AVX512FP16__)
#define TS_ATTN_FP16 1
#else
#define TS_ATTN_FP16 0
#endif
#if TS_ATTN_TILE512 && defined(__AVX512VNNI__)
#define TS_ATTN_VNNI 1
#else
#define TS_ATTN_VNNI 0
#endif
#define TS_ATTN_MR 6  /* register tiles: query rows */
#define TS_ATTN_MR5 8 /* AVX-512 tiles: query rows (x 32 keys or dims, 16 accumulators) */
#define TS_ATTN_ROWPAD 8 /* scratch rows past a query block: room for either tile's rounding */
#define TS_ATTN_NR 16 /* register tiles: keys of a K panel (S), head-dim columns (P·V) */
#define TS_ATTN_MAXD 256 /* register tiles: the largest head dim */
#define TS_ATTN_OKW (TS_ATTN_KCHUNK / 64 + 1) /* a row's mask bits over a chunk, in words (one spare) */
#define TS_ATTN_RUP(n, mr) (((n) + (mr) - 1) / (mr) * (mr))
#define TS_ATTN_PFQ 4 /* query rows loaded ahead of their use */
#define TS_ATTN_PF_BYTES (16 << 20) /* one head's K and V panels above this: prefetched per chunk */
#define TS_ATTN_GROUP_BYTES (48 << 20) /* the tiled path's groups: a head per thread where its panels fit */

/* Which products a call runs (cpu_internal.h): sgemm, AVX2 tiles, AVX-512 fp32 tiles,
 * AVX-512 BF16 dots. */
#define TK_SGEMM TS_ATTN_RUN_SGEMM
#define TK_AVX2 TS_ATTN_RUN_AVX2
#define TK_AVX512 TS_ATTN_RUN_AVX512
#define TK_BF16 TS_ATTN_RUN_BF16
#define TK_FP16 TS_ATTN_RUN_FP16
#define TK_DOTS(tk) ((tk) == TK_BF16 || (tk) == TK_FP16) /* Q, P and the panels in pairs of 16-bit values */

typedef struct attn_scratch {
    float *q, *s, *acc, *m, *l; /* q, s, acc: ROWPAD rows past the block, for the tiles */
    uint32_t *pb; /* TK_BF16: P rounded to bf16, pairs of keys [rows][KCHUNK / 2] (q then holds
                   * the block's bf16 query rows as pairs of dims, [rows][D / 2], unscaled);
                   * TK_FP16: the same in fp16, q's rows in fp16 scaled by qs */
    int tk;       /* TK_*: the products this call runs */
    uint8_t *ok; /* [blk_q, KCHUNK] element mask of a chunk with partial blocks */
    int16_t *q16; /* INT8_QK: the task's quantised query rows [blk_q + ROWPAD, D], zero past the block */
    float *qs;    /* INT8_QK: their scales, one per row; TK_FP16: the fp16 rows' (with scale · log2 e) */
    const float *kh, *vh; /* permuted or bf16 plans: this head's K and V in kernel order, fp32
                           * [Lk, D]; NULL: K and V are read in place */
    const float *kt;      /* register-tiled path: this head's K in panels of TS_ATTN_NR keys,
                           * [Lkp / NR][D][NR], and vh its V in panels of NR dimensions,
                           * [D / NR][Lkp][NR] (kh is then NULL) */
    int64_t lkp;          /* Lk rounded up to NR */
    /* a permuted plan with padding slots, or with no element mask: per key block, the length
     * without the padding at its end (the chunk's columns stop there); with no element mask
     * also ktail, whether that leaves no padding inside (the block then runs as a full one) */
    const int16_t *kreal;
    const uint8_t *ktail;
    int pf; /* the panels are over TS_ATTN_PF_BYTES: each chunk's are prefetched (pf_list) */
    uint64_t *okw;  /* AVX-512, a chunk with partial blocks: each row's allowed keys as bits,
                     * [rows][TS_ATTN_OKW] */
    uint32_t *live; /* ... and per half tile of HR5 rows, the 16-key panels any of its rows sees */
    _Atomic unsigned char *pst; /* panels packed by the tasks (ready_panels): this head's state
                                 * per 16-key panel, PANEL_*; NULL: packed before the tasks */
    float *pbase;               /* ... and where they go (kt, writable) */
    /* a linear branch: its sums from head lin_h on, lin_all: each head's (ts_cpu_lin_sums),
     * [heads][D·D + D]; the paper's: each head's query blocks' (ts_cpu_lin_paper),
     * [heads][n_qblk][D·D + D] */
    const float *lin;
    int64_t lin_h;
    float *lf;      /* ... room for the block's φ(q) rows, [blk_q][D], */
    float *lo;      /* ... and for the paper's variant φ(q)·KV, [blk_q][D] */
} attn_scratch;

/* The quantised K of one head: k16 [Lk, D] in kernel order, ks [n_kblk]; with AVX2 (even D,
 * key blocks a multiple of 8) also kpk, the same values in tiles of kw = 8 keys with each pair
 * of dimensions interleaved, [Lk / 8][D / 2][8 keys][2], for the register-tiled Q8·K8ᵀ; with
 * AVX512-VNNI on the AVX-512 path (key blocks a multiple of 16) tiles of kw = 16 keys. */
typedef struct qk_head {
    const int16_t *k16, *kpk;
    const float *ks;
    int kw;
} qk_head;

#if defined(__AVX2__)
/* S[r][j] for 4 query rows x 8 keys per step: one vpmaddwd per row and pair of dimensions
 * (the row's pair broadcast, the 8 keys' pairs loaded), int32 accumulators, then the scales.
 * q16 rows [nq, D], keys k0 .. k0 + nk of the packed head (k0 a multiple of 8). */
static void s_int8_tiles(const int16_t *q16, const float *qs, const qk_head *qk, int64_t D, int64_t nq, int64_t k0,
                         int64_t nk, int64_t bk, float *S, int64_t lds) {
    const int64_t P = D / 2;
    for (int64_t t = 0; t < (nk + 7) / 8; t++) {
        const int16_t *kt = qk->kpk + ((k0 / 8 + t) * P) * 16;
        const __m256 ksc = _mm256_set1_ps(qk->ks[(k0 + 8 * t) / bk]);
        const int64_t nj = nk - 8 * t < 8 ? nk - 8 * t : 8;
        for (int64_t r = 0; r < nq; r += 4) {
            const int nr = nq - r < 4 ? (int)(nq - r) : 4;
            const int32_t *qp[4];
            for (int i = 0; i < 4; i++) qp[i] = (const int32_t *)(q16 + (r + (i < nr ? i : 0)) * D);
            __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
            for (int64_t p = 0; p < P; p++) {
                const __m256i kv = _mm256_loadu_si256((const __m256i *)(kt + p * 16));
                a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_set1_epi32(qp[0][p]), kv));
                a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_set1_epi32(qp[1][p]), kv));
                a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_set1_epi32(qp[2][p]), kv));
                a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_set1_epi32(qp[3][p]), kv));
            }
            const __m256i acc[4] = {a0, a1, a2, a3};
            for (int i = 0; i < nr; i++) {
                __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[i]), _mm256_mul_ps(_mm256_set1_ps(qs[r + i]), ksc));
                float *dst = S + (r + i) * lds + 8 * t;
                if (nj == 8) {
                    _mm256_storeu_ps(dst, v);
                } else {
                    float tmp[8];
                    _mm256_storeu_ps(tmp, v);
                    memcpy(dst, tmp, (size_t)nj * sizeof(float));
                }
            }
        }
    }
}
#endif

#if TS_ATTN_VNNI
/* c + the pairwise int16 dots of a and b: vpdpwssd written out, because GCC 12 copies the
 * accumulator of _mm512_dpwssd_epi32 in and out of another register at every call (two
 * moves per dot in the tile's loop, and spills). */
static inline __attribute__((always_inline)) __m512i dpwssd512(__m512i c, __m512i a, __m512i b) {
    __asm__("vpdpwssd %2, %1, %0" : "+v"(c) : "v"(a), "v"(b));
    return c;
}

/* S for 8 query rows x 32 keys (two tiles of 16) per step with vpdpwssd: each 32-bit lane
 * takes a pair of dimensions, 16 int32 accumulators; then the scales. The query rows (and
 * their scales) are zero up to the next multiple of 8, and those rows of S are written too;
 * so are the columns up to the tile's end. k0 a multiple of 16. One base pointer for the
 * rows. */
static inline __attribute__((always_inline)) void s_tile_vnni(const int32_t *q, int64_t P, const int16_t *t0, int np,
                                                              __m512 ks0, __m512 ks1, const float *qs, float *s,
                                                              int64_t lds) {
    __m512i c0[TS_ATTN_MR5], c1[TS_ATTN_MR5];
    for (int i = 0; i < TS_ATTN_MR5; i++) c0[i] = c1[i] = _mm512_setzero_si512();
    const int16_t *t1 = t0 + P * 32;
    for (int64_t p = 0; p < P; p++) {
        const __m512i b0 = _mm512_loadu_si512((const void *)(t0 + p * 32));
        const __m512i b1 = np == 2 ? _mm512_loadu_si512((const void *)(t1 + p * 32)) : b0;
        for (int i = 0; i < TS_ATTN_MR5; i++) {
            const __m512i a = _mm512_set1_epi32(q[i * P + p]);
            c0[i] = dpwssd512(c0[i], a, b0);
            if (np == 2) c1[i] = dpwssd512(c1[i], a, b1);
        }
    }
    for (int i = 0; i < TS_ATTN_MR5; i++) {
        const __m512 sq = _mm512_set1_ps(qs[i]);
        _mm512_storeu_ps(s + i * lds, _mm512_mul_ps(_mm512_cvtepi32_ps(c0[i]), _mm512_mul_ps(sq, ks0)));
        if (np == 2) _mm512_storeu_ps(s + i * lds + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(c1[i]), _mm512_mul_ps(sq, ks1)));
    }
}

static void s_int8_vnni(const int16_t *q16, const float *qs, const qk_head *qk, int64_t D, int64_t nq, int64_t k0,
                        int64_t nk, int64_t bk, float *S, int64_t lds) {
    const int64_t P = D / 2;
    for (int64_t j = 0; j < nk; j += 32) {
        const int two = nk - j > 16;
        const int16_t *t0 = qk->kpk + ((k0 + j) / 16) * P * 32;
        const __m512 ks0 = _mm512_set1_ps(qk->ks[(k0 + j) / bk]),
                     ks1 = _mm512_set1_ps(two ? qk->ks[(k0 + j + 16) / bk] : 0.0f);
        for (int64_t r = 0; r < nq; r += TS_ATTN_MR5) {
            const int32_t *qp = (const int32_t *)(q16 + r * D);
            if (two) s_tile_vnni(qp, P, t0, 2, ks0, ks1, qs + r, S + r * lds + j, lds);
            else s_tile_vnni(qp, P, t0, 1, ks0, ks1, qs + r, S + r * lds + j, lds);
        }
    }
}
#endif

static inline int32_t dot_i16(const int16_t *a, const int16_t *b, int64_t D) {
    int64_t d = 0;
    int32_t r = 0;
#if defined(__AVX2__)
    __m256i acc = _mm256_setzero_si256();
    for (; d + 16 <= D; d += 16)
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(a + d)),
                                                      _mm256_loadu_si256((const __m256i *)(b + d))));
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    h = _mm_hadd_epi32(h, h);
    h = _mm_hadd_epi32(h, h);
    r = _mm_cvtsi128_si32(h);
#endif
    for (; d < D; d++) r += (int32_t)a[d] * b[d];
    return r;
}

#if defined(__AVX2__) && defined(__FMA__) && !TS_ATTN_TILE512
/* s[j] = 2^(s[j] - mx) for j < n; returns their sum. ts_exp2f's polynomial with FMAs (the
 * C version compiles to separate multiplies and adds under -std=c11) and without its
 * upper clamp (s[j] - mx <= 0 here); one pass. */
static float exp2_row(float *s, int64_t n, float mx) {
    const __m256 vmx = _mm256_set1_ps(mx), lo = _mm256_set1_ps(-126.0f);
    const __m256 c6 = _mm256_set1_ps(1.546974027e-04f), c5 = _mm256_set1_ps(1.340044171e-03f),
                 c4 = _mm256_set1_ps(9.618025577e-03f), c3 = _mm256_set1_ps(5.550327190e-02f),
                 c2 = _mm256_set1_ps(2.402265121e-01f), c1 = _mm256_set1_ps(6.931472067e-01f),
                 c0 = _mm256_set1_ps(1.0f);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 acc = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 x = _mm256_max_ps(_mm256_sub_ps(_mm256_loadu_ps(s + j), vmx), lo);
        const __m256 r = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), f = _mm256_sub_ps(x, r);
        __m256 p = _mm256_fmadd_ps(c6, f, c5);
        p = _mm256_fmadd_ps(p, f, c4);
        p = _mm256_fmadd_ps(p, f, c3);
        p = _mm256_fmadd_ps(p, f, c2);
        p = _mm256_fmadd_ps(p, f, c1);
        p = _mm256_fmadd_ps(p, f, c0);
        const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(r), bias), 23);
        p = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
        _mm256_storeu_ps(s + j, p);
        acc = _mm256_add_ps(acc, p);
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float sum = _mm_cvtss_f32(h);
    for (; j < n; j++) sum += s[j] = ts_exp2f(s[j] - mx);
    return sum;
}
#endif

#if TS_ATTN_TILE
/* The fp32 path's two products as AVX2 register tiles over operands laid out once per head
 * (K in panels of 16 keys, V in panels of 16 dims), so every step loads 64 contiguous bytes
 * and no chunk is packed or S cleared first. A tile is MR x 16: 12 accumulators, 2 loads
 * and 6 broadcasts per step. */

#if TS_ATTN_TILE512
/* r[i][c] becomes r[c][i]: for s = 8, 4, 2, 1 each pair of rows (i, i + s) with i & s clear
 * swaps its off-diagonal s x s blocks (element c of the pair's first row takes the second
 * row's c - s where c & s is set; the second row's c takes the first's c + s where it is clear). */
static inline __attribute__((always_inline)) void transpose16(__m512 r[16]) {
#pragma GCC unroll 4
    for (int s = 8; s >= 1; s /= 2) {
        int lo[16], hi[16];
        for (int c = 0; c < 16; c++) lo[c] = c & s ? 16 + c - s : c, hi[c] = c & s ? 16 + c : c + s;
        const __m512i il = _mm512_loadu_si512((const void *)lo), ih = _mm512_loadu_si512((const void *)hi);
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            if (i & s) continue;
            const __m512 a = r[i], b = r[i + s];
            r[i] = _mm512_permutex2var_ps(a, il, b);
            r[i + s] = _mm512_permutex2var_ps(a, ih, b);
        }
    }
}
#endif

/* Panel pi of head h (keys pi·16 .. pi·16 + 15 in kernel order; zeros past Lk and for
 * padding): K's panel [D][16] at base + pi·16·D, and each V panel's 16 rows at
 * base + Lkp·D + (d / 16)·Lkp·16 + pi·16·16. fp32 rows are read in place. Without with_k
 * (INT8 Q·Kᵀ, which reads its own packed K) only V's panels are written. */
static void head_panels(const ts_attn_plan *p, const void *k, const void *v, int64_t h, int64_t Lk, int64_t Lkp,
                        int64_t pi, int with_k, float *base) {
    enum { NR = TS_ATTN_NR };
    const int64_t D = p->head_dim, HD = p->heads * D;
    float wide[2][NR][TS_ATTN_MAXD]; /* bf16 rows, widened */
    const float *kr[NR], *vr[NR];
    for (int jj = 0; jj < NR; jj++) {
        const int64_t j = pi * NR + jj, tok = j >= Lk ? -1 : p->perm ? p->perm[j] : j;
        if (tok < 0) {
            kr[jj] = vr[jj] = NULL;
        } else if (p->in_bf16) {
            if (with_k) ts_attn_load_row(wide[0][jj], k, tok * HD + h * D, D, 1, 1.0f);
            ts_attn_load_row(wide[1][jj], v, tok * HD + h * D, D, 1, 1.0f);
            kr[jj] = wide[0][jj], vr[jj] = wide[1][jj];
        } else {
            kr[jj] = (const float *)k + tok * HD + h * D, vr[jj] = (const float *)v + tok * HD + h * D;
        }
    }
    float *kt = base + pi * NR * D;
#if TS_ATTN_TILE512
    for (int64_t d0 = 0; with_k && d0 < D; d0 += NR) { /* 16 keys x 16 dims at a time, in registers */
        __m512 r[NR];
        for (int jj = 0; jj < NR; jj++) r[jj] = kr[jj] ? _mm512_loadu_ps(kr[jj] + d0) : _mm512_setzero_ps();
        transpose16(r);
        for (int i = 0; i < NR; i++) _mm512_storeu_ps(kt + (d0 + i) * NR, r[i]);
    }
#else
    for (int64_t d = 0; with_k && d < D; d++)
        for (int jj = 0; jj < NR; jj++) kt[d * NR + jj] = kr[jj] ? kr[jj][d] : 0.0f;
#endif
    for (int64_t d0 = 0; d0 < D; d0 += NR) {
        float *vt = base + Lkp * D + (d0 / NR) * Lkp * NR + pi * NR * NR;
        for (int jj = 0; jj < NR; jj++) {
            if (vr[jj]) memcpy(vt + jj * NR, vr[jj] + d0, NR * sizeof(float));
            else memset(vt + jj * NR, 0, NR * sizeof(float));
        }
    }
}

/* S [MR, 16] = Q rows [MR, D] · one K panel [D][16]ᵀ. */
static inline void s_tile(const float *q, int64_t D, const float *kp, float *s, int64_t lds) {
    __m256 c[TS_ATTN_MR][2];
    for (int i = 0; i < TS_ATTN_MR; i++) c[i][0] = c[i][1] = _mm256_setzero_ps();
    for (int64_t d = 0; d < D; d++) {
        const __m256 b0 = _mm256_loadu_ps(kp + d * 16), b1 = _mm256_loadu_ps(kp + d * 16 + 8);
        for (int i = 0; i < TS_ATTN_MR; i++) {
            const __m256 a = _mm256_broadcast_ss(q + i * D + d);
            c[i][0] = _mm256_fmadd_ps(a, b0, c[i][0]);
            c[i][1] = _mm256_fmadd_ps(a, b1, c[i][1]);
        }
    }
    for (int i = 0; i < TS_ATTN_MR; i++) {
        _mm256_storeu_ps(s + i * lds, c[i][0]);
        _mm256_storeu_ps(s + i * lds + 8, c[i][1]);
    }
}

/* S [nq, nk] (row stride KCHUNK) for keys k0 .. k0 + nk, k0 a multiple of 16: columns up to
 * the next multiple of 16 and rows up to the next multiple of MR are written too (the panels
 * are zero past Lk, the query rows zero past nq). */
static void s_tiles(const float *q, int64_t nq, int64_t D, const float *kt, int64_t k0, int64_t nk, float *S) {
    for (int64_t j = 0; j < nk; j += TS_ATTN_NR) {
        const float *kp = kt + (k0 + j) * D; /* panel (k0 + j) / 16 */
        for (int64_t r = 0; r < nq; r += TS_ATTN_MR) s_tile(q + r * D, D, kp, S + r * TS_ATTN_KCHUNK + j, TS_ATTN_KCHUNK);
    }
}

/* acc [MR, 16] += P rows [MR, nk] · one V panel's keys [nk][16]. */
static inline void pv_tile(const float *P, const float *vp, int64_t D, int64_t nk, float *acc) {
    __m256 c[TS_ATTN_MR][2];
    for (int i = 0; i < TS_ATTN_MR; i++)
        c[i][0] = _mm256_loadu_ps(acc + i * D), c[i][1] = _mm256_loadu_ps(acc + i * D + 8);
    for (int64_t j = 0; j < nk; j++) {
        const __m256 b0 = _mm256_loadu_ps(vp + j * 16), b1 = _mm256_loadu_ps(vp + j * 16 + 8);
        for (int i = 0; i < TS_ATTN_MR; i++) {
            const __m256 a = _mm256_broadcast_ss(P + i * TS_ATTN_KCHUNK + j);
            c[i][0] = _mm256_fmadd_ps(a, b0, c[i][0]);
            c[i][1] = _mm256_fmadd_ps(a, b1, c[i][1]);
        }
    }
    for (int i = 0; i < TS_ATTN_MR; i++)
        _mm256_storeu_ps(acc + i * D, c[i][0]), _mm256_storeu_ps(acc + i * D + 8, c[i][1]);
}

/* acc [nq, D] += P [nq, nk] · V of keys k0 .. k0 + nk, from the head's V panels
 * [D / 16][Lkp][16] (rows up to the next multiple of MR too: P's and acc's padding rows
 * are zero). */
static void pv_tiles(const float *P, int64_t nq, int64_t D, const float *vt, int64_t Lkp, int64_t k0, int64_t nk,
                     float *acc) {
    for (int64_t d0 = 0; d0 < D; d0 += TS_ATTN_NR) {
        const float *vp = vt + (d0 / TS_ATTN_NR) * Lkp * TS_ATTN_NR + k0 * TS_ATTN_NR;
        for (int64_t r = 0; r < nq; r += TS_ATTN_MR) pv_tile(P + r * TS_ATTN_KCHUNK, vp, D, nk, acc + r * D + d0);
    }
}
#endif

#if TS_ATTN_TILE512
/* The same two products as AVX-512 tiles: MR5 query rows x 32 keys (S) or 32 head-dim
 * columns (P·V), that is two of the 16-wide panels at once, 16 accumulators, 2 loads and 8
 * broadcasts per step; the last 16 keys or columns of an odd panel count take one panel.
 * Same panels as the AVX2 tiles. np (1 or 2) is a constant at every call. */
#define MR5 TS_ATTN_MR5
#define HR5 (TS_ATTN_MR5 / 2) /* a half tile's rows */

/* A tile's accumulators: MR5 rows of 16·np floats, rows ld apart (shared by the fp32 and
 * the BF16 tiles). */
static inline __attribute__((always_inline)) void c_load512(__m512 c[MR5][2], const float *src, int64_t ld, int np) {
    for (int i = 0; i < MR5; i++) {
        c[i][0] = _mm512_loadu_ps(src + i * ld);
        c[i][1] = np == 2 ? _mm512_loadu_ps(src + i * ld + 16) : c[i][0];
    }
}

static inline __attribute__((always_inline)) void c_store512(__m512 c[MR5][2], float *dst, int64_t ld, int np) {
    for (int i = 0; i < MR5; i++) {
        _mm512_storeu_ps(dst + i * ld, c[i][0]);
        if (np == 2) _mm512_storeu_ps(dst + i * ld + 16, c[i][1]);
    }
}

/* S tile: nr (MR5, or HR5 for a half tile) query rows against the 16-key K panels kp0 and kp1
 * (np 2; np 1: kp0 only), the scores of kp0's keys stored at s0 and kp1's at s1 (rows
 * TS_ATTN_KCHUNK apart). The two panels need not be neighbours. A half tile's lone panel
 * sums the even and the odd dims apart, so that 8 FMA chains are in flight, not 4 (the
 * FMA's latency would halve its rate). np and nr are constants at every call. */
static inline __attribute__((always_inline)) void s_tile512(const float *q, int64_t D, const float *kp0,
                                                            const float *kp1, int np, int nr, float *s0,
                                                            float *s1) {
    __m512 c[MR5][2];
    for (int i = 0; i < nr; i++) c[i][0] = c[i][1] = _mm512_setzero_ps();
    if (np == 1 && nr < MR5) { /* D is even (a multiple of 16) */
        for (int64_t d = 0; d < D; d += 2) {
            const __m512 b0 = _mm512_loadu_ps(kp0 + d * 16), b1 = _mm512_loadu_ps(kp0 + d * 16 + 16);
            for (int i = 0; i < nr; i++) {
                c[i][0] = _mm512_fmadd_ps(_mm512_set1_ps(q[i * D + d]), b0, c[i][0]);
                c[i][1] = _mm512_fmadd_ps(_mm512_set1_ps(q[i * D + d + 1]), b1, c[i][1]);
            }
        }
        for (int i = 0; i < nr; i++) _mm512_storeu_ps(s0 + i * TS_ATTN_KCHUNK, _mm512_add_ps(c[i][0], c[i][1]));
        return;
    }
    for (int64_t d = 0; d < D; d++) {
        const __m512 b0 = _mm512_loadu_ps(kp0 + d * 16), b1 = np == 2 ? _mm512_loadu_ps(kp1 + d * 16) : b0;
        for (int i = 0; i < nr; i++) {
            const __m512 a = _mm512_set1_ps(q[i * D + d]);
            c[i][0] = _mm512_fmadd_ps(a, b0, c[i][0]);
            if (np == 2) c[i][1] = _mm512_fmadd_ps(a, b1, c[i][1]);
        }
    }
    for (int i = 0; i < nr; i++) {
        _mm512_storeu_ps(s0 + i * TS_ATTN_KCHUNK, c[i][0]);
        if (np == 2) _mm512_storeu_ps(s1 + i * TS_ATTN_KCHUNK, c[i][1]);
    }
}

/* The S tiles of the nr rows at q (scores at sr) for panels a and b (b < 0: none) where la
 * and lb say the rows see them. */
static inline __attribute__((always_inline)) void s_pair512(const float *q, int64_t D, const float *ka,
                                                            const float *kb, int a, int b, int la, int lb,
                                                            int nr, float *sr) {
    if (la && lb) s_tile512(q, D, ka, kb, 2, nr, sr + 16 * a, sr + 16 * b);
    else if (la) s_tile512(q, D, ka, ka, 1, nr, sr + 16 * a, sr + 16 * a);
    else if (lb) s_tile512(q, D, kb, kb, 1, nr, sr + 16 * b, sr + 16 * b);
}

/* The bits of a chunk's npc 16-key panels (a chunk holds at most 16: live's and l's 32 bits). */
_Static_assert(TS_ATTN_KCHUNK / TS_ATTN_NR <= 32, "a chunk's panels must fit 32 bits");
static inline uint32_t chunk_panels(int npc) { return (uint32_t)(((uint64_t)1 << npc) - 1u); }

/* acc rows i0 .. i1 − 1 of [MR5, 16·np] += P rows [MR5, n] · V panel vp (keys [n][16]; np 2:
 * and vp + vstride, the next 16 head-dim columns). i0, i1 and np are constants at every call. */
static inline __attribute__((always_inline)) void pv_panel512(__m512 c[MR5][2], const float *P, const float *vp,
                                                              int64_t vstride, int64_t n, int np, int i0, int i1) {
    for (int64_t j = 0; j < n; j++) {
        const __m512 b0 = _mm512_loadu_ps(vp + j * 16), b1 = np == 2 ? _mm512_loadu_ps(vp + vstride + j * 16) : b0;
        for (int i = i0; i < i1; i++) {
            const __m512 a = _mm512_set1_ps(P[i * TS_ATTN_KCHUNK + j]);
            c[i][0] = _mm512_fmadd_ps(a, b0, c[i][0]);
            if (np == 2) c[i][1] = _mm512_fmadd_ps(a, b1, c[i][1]);
        }
    }
}

/* Rows i0 .. i1 − 1 of a tile += P · V over the panels in bits l (pk as s_chunk's) of a
 * chunk of nk keys. Only the chunk's keys: its last panel may run past them (the end of the
 * keys, a padded block's end), and there V's rows are zeros but P's columns hold what S held
 * before (the AVX2 INT8 tiles, used where AVX-512 lacks VNNI, write no columns past the keys:
 * possibly a stale or never-written value, NaN included). */
static inline __attribute__((always_inline)) void pv_panels512(__m512 c[MR5][2], const float *P, const float *vd,
                                                               int64_t Lkp, const int64_t *pk, uint32_t l,
                                                               int64_t nk, int np, int i0, int i1) {
    while (l) {
        const int p = __builtin_ctz(l);
        l &= l - 1u;
        if (nk - 16 * p >= 16) pv_panel512(c, P + 16 * p, vd + pk[p] * 16, Lkp * 16, 16, np, i0, i1);
        else pv_panel512(c, P + 16 * p, vd + pk[p] * 16, Lkp * 16, nk - 16 * p, np, i0, i1);
    }
}

/* One tile of acc [MR5, 16·np] at head-dim column d0 += P · V over the panels both its halves
 * see (bits l), then those only its top half (lt) or only its bottom half (lu) sees: a half's
 * rows of P are zero in the panels it does not see. */
static inline __attribute__((always_inline)) void pv_tile512(const float *P, const float *vt, int64_t Lkp,
                                                             const int64_t *pk, uint32_t l, uint32_t lt,
                                                             uint32_t lu, int64_t nk, int64_t D, int64_t d0,
                                                             int np, float *acc) {
    __m512 c[MR5][2];
    c_load512(c, acc, D, np);
    const float *vd = vt + (d0 / 16) * Lkp * 16;
    pv_panels512(c, P, vd, Lkp, pk, l, nk, np, 0, MR5);
    pv_panels512(c, P, vd, Lkp, pk, lt, nk, np, 0, HR5);
    pv_panels512(c, P, vd, Lkp, pk, lu, nk, np, HR5, MR5);
    c_store512(c, acc, D, np);
}

/* 2^(s − mx) for 16 lanes (ts_exp2_16), the exponent clamped at −126 (no upper clamp: the
 * lanes a caller keeps have s ≤ mx). */
static inline __attribute__((always_inline)) __m512 exp2_512(__m512 s, __m512 vmx) {
    return ts_exp2_16(_mm512_max_ps(_mm512_sub_ps(s, vmx), _mm512_set1_ps(-126.0f)));
}

/* exp2_row with 16 lanes, the tail under a mask. */
static float exp2_row512(float *s, int64_t n, float mx) {
    const __m512 vmx = _mm512_set1_ps(mx);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 m = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
        const __m512 p = exp2_512(_mm512_maskz_loadu_ps(m, s + j), vmx);
        _mm512_mask_storeu_ps(s + j, m, p);
        acc = _mm512_mask_add_ps(acc, m, acc, p);
    }
    return _mm512_reduce_add_ps(acc);
}

/* Bits [pos, pos + nbits) of dst |= the low nbits of word (nbits <= 64). */
static inline void bits_put(uint64_t *dst, int64_t pos, uint64_t word, int64_t nbits) {
    if (nbits < 64) word &= ((uint64_t)1 << nbits) - 1;
    const int64_t wi = pos >> 6, sh = pos & 63;
    dst[wi] |= word << sh;
    if (sh && sh + nbits > 64) dst[wi + 1] |= word >> (64 - sh);
}

/* Row r's allowed keys of a chunk of nb blocks as bits: full blocks all set, partial ones
 * from the builder's precomputed masks (entries e0 .. e0 + nb − 1); block b at columns bc[b]
 * .. bc[b] + bl[b]. */
static void chunk_bits(const ts_attn_plan *p, const uint8_t *full, int64_t e0, int64_t r, int32_t nb, int64_t bk,
                       const int16_t *bc, const int16_t *bl, uint64_t *okw) {
    const int64_t wpr = (bk + 63) / 64;
    for (int32_t b = 0; b < nb; b++) {
        const int64_t j0 = bc[b], len = bl[b];
        if (len <= 0) continue;
        const uint64_t *row = full[b] ? NULL : p->exact_bits + p->exact_bits_off[e0 + b] + r * wpr;
        for (int64_t o = 0; o < len; o += 64) bits_put(okw, j0 + o, row ? row[o >> 6] : ~(uint64_t)0, len - o < 64 ? len - o : 64);
    }
}

/* The online-softmax row pass over a chunk with masked keys (okw: bits of the allowed ones):
 * *mx becomes the max of the running max and the allowed scores; s [0, n) becomes exp2(s − *mx)
 * where allowed and 0 elsewhere; returns their sum. A row with no allowed key yet (max still
 * −FLT_MAX) gets zeros. Not inlined: kept out of attn_task, whose other rows' code it would
 * otherwise crowd. */
static __attribute__((noinline)) float exp2_row512_masked(float *s, int64_t n, float *mx_io, const uint64_t *okw) {
    __m512 vm = _mm512_set1_ps(*mx_io);
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 m = (__mmask16)(okw[j >> 6] >> (j & 63));
        if (n - j < 16) m &= (__mmask16)((1u << (n - j)) - 1);
        vm = _mm512_mask_max_ps(vm, m, vm, _mm512_maskz_loadu_ps(m, s + j));
    }
    const float mx = _mm512_reduce_max_ps(vm);
    *mx_io = mx;
    if (mx == -FLT_MAX) {
        memset(s, 0, (size_t)n * sizeof *s);
        return 0.0f;
    }
    const __m512 vmx = _mm512_set1_ps(mx);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 t = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
        const __mmask16 m = (__mmask16)(okw[j >> 6] >> (j & 63)) & t;
        if (!m) { /* a panel this row does not see: zeros, no exp */
            _mm512_mask_storeu_ps(s + j, t, _mm512_setzero_ps());
            continue;
        }
        const __m512 p = _mm512_maskz_mov_ps(m, exp2_512(_mm512_maskz_loadu_ps(m, s + j), vmx));
        _mm512_mask_storeu_ps(s + j, t, p);
        acc = _mm512_add_ps(acc, p);
    }
    return _mm512_reduce_add_ps(acc);
}

/* A chunk's rows' mask bits (okw, TS_ATTN_OKW words a row; rows nq .. up to the tile's end
 * zero) and per half tile of HR5 rows the 16-key panels any of its rows sees (live). */
static void chunk_masks(const ts_attn_plan *p, const uint8_t *full, int64_t e0, int64_t nq, int32_t nb, int64_t bk,
                        const int16_t *bc, const int16_t *bl, int64_t nk, uint64_t *okw, uint32_t *live) {
    const int64_t W = TS_ATTN_OKW, n8 = TS_ATTN_RUP(nq, MR5), np = (nk + 15) / 16;
    memset(okw, 0, (size_t)(n8 * W) * sizeof *okw);
    for (int64_t r = 0; r < nq; r++) chunk_bits(p, full, e0, r, nb, bk, bc, bl, okw + r * W);
    for (int64_t r = 0; r < n8; r += HR5) {
        uint64_t any[TS_ATTN_OKW] = {0};
        for (int64_t i = r; i < r + HR5; i++)
            for (int64_t k = 0; k < W; k++) any[k] |= okw[i * W + k];
        uint32_t l = 0;
        for (int64_t c = 0; c < np; c++) l |= (uint32_t)(((any[c >> 2] >> ((c & 3) * 16)) & 0xffffu) != 0) << c;
        live[r / HR5] = l;
    }
}
#endif

#if TS_ATTN_BFDOT
/* bf16 operands with AVX512-BF16: vdpbf16ps takes two products per lane and instruction (a
 * pair of bf16 in each 32-bit lane, fp32 accumulate), twice the fp32 FMA's. K in panels of 16
 * keys with each pair of dims in one lane, [Lkp / 16][D / 2][16]; V in panels of 16 dims with
 * each pair of keys in one lane, [D / 16][Lkp / 2][16]; Q's bf16 rows as they are (pairs of
 * dims), unscaled (S is scaled on its way out); P rounded to bf16 once per chunk, pairs of keys
 * (the rounding of P is the only one added to the bf16 inputs'). */
static inline uint32_t bf_pair(const uint16_t *a, const uint16_t *b, int64_t i) {
    return (uint32_t)(a ? a[i] : 0) | (uint32_t)(b ? b[i] : 0) << 16;
}

/* Panel pi of head h, bf16 (as head_panels: zeros past Lk and for padding); base as uint32:
 * K's panel at base + pi·16·D/2, V's pairs of keys 8·pi .. 8·pi + 7 at
 * base + Lkp·D + (d / 16)·(Lkp / 2)·16 + pi·8·16. */
static void head_panels_bf(const ts_attn_plan *p, const void *k, const void *v, int64_t h, int64_t Lk, int64_t Lkp,
                           int64_t pi, uint32_t *base) {
    const int64_t D = p->head_dim, HD = p->heads * D, P2 = D / 2;
    const uint16_t *kr[16], *vr[16];
    for (int jj = 0; jj < 16; jj++) {
        const int64_t j = pi * 16 + jj, tok = j >= Lk ? -1 : p->perm ? p->perm[j] : j;
        kr[jj] = tok < 0 ? NULL : (const uint16_t *)k + tok * HD + h * D;
        vr[jj] = tok < 0 ? NULL : (const uint16_t *)v + tok * HD + h * D;
    }
    uint32_t *kt = base + pi * 16 * P2;
    for (int64_t dp = 0; dp < P2; dp++)
        for (int jj = 0; jj < 16; jj++) kt[dp * 16 + jj] = kr[jj] ? bf_pair(kr[jj], kr[jj] + 1, 2 * dp) : 0;
    for (int64_t d0 = 0; d0 < D; d0 += 16) {
        uint32_t *vt = base + Lkp * D + (d0 / 16) * (Lkp / 2) * 16 + pi * 8 * 16;
        for (int jp = 0; jp < 8; jp++)
            for (int dd = 0; dd < 16; dd++) vt[jp * 16 + dd] = bf_pair(vr[2 * jp], vr[2 * jp + 1], d0 + dd);
    }
}

static inline __m512bh bf_bcast(uint32_t x) { return (__m512bh)_mm512_set1_epi32((int)x); }
static inline __m512bh bf_load(const uint32_t *x) { return (__m512bh)_mm512_loadu_si512((const void *)x); }

static inline __attribute__((always_inline)) void s_tile_bf(const uint32_t *q, int64_t P2, const uint32_t *kp, int np,
                                                            float qscale, float *s) {
    __m512 c[MR5][2];
    for (int i = 0; i < MR5; i++) c[i][0] = c[i][1] = _mm512_setzero_ps();
    const uint32_t *kp1 = kp + 16 * P2;
    for (int64_t dp = 0; dp < P2; dp++) {
        const __m512bh b0 = bf_load(kp + dp * 16), b1 = np == 2 ? bf_load(kp1 + dp * 16) : b0;
        for (int i = 0; i < MR5; i++) {
            const __m512bh a = bf_bcast(q[i * P2 + dp]);
            c[i][0] = _mm512_dpbf16_ps(c[i][0], a, b0);
            if (np == 2) c[i][1] = _mm512_dpbf16_ps(c[i][1], a, b1);
        }
    }
    const __m512 sc = _mm512_set1_ps(qscale);
    for (int i = 0; i < MR5; i++) c[i][0] = _mm512_mul_ps(c[i][0], sc), c[i][1] = _mm512_mul_ps(c[i][1], sc);
    c_store512(c, s, TS_ATTN_KCHUNK, np);
}

static void s_tiles_bf(const uint32_t *q, int64_t nq, int64_t D, const uint32_t *kt, int64_t k0, int64_t nk,
                       float qscale, float *S) {
    const int64_t P2 = D / 2;
    for (int64_t j = 0; j < nk; j += 32) {
        const uint32_t *kp = kt + (k0 + j) * P2;
        for (int64_t r = 0; r < nq; r += MR5) {
            if (nk - j > 16) s_tile_bf(q + r * P2, P2, kp, 2, qscale, S + r * TS_ATTN_KCHUNK + j);
            else s_tile_bf(q + r * P2, P2, kp, 1, qscale, S + r * TS_ATTN_KCHUNK + j);
        }
    }
}

/* pb [ceil(n / 2)] = s [0, n) rounded to bf16 (nearest even), pairs of keys; a last odd key's
 * partner is 0. */
static void p_to_bf(const float *s, int64_t n, uint32_t *pb) {
    for (int64_t j = 0; j < n; j += 32) {
        const int64_t m = n - j;
        const __mmask16 m0 = m >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << m) - 1);
        const __mmask16 m1 = m >= 32 ? (__mmask16)0xffff : m <= 16 ? 0 : (__mmask16)((1u << (m - 16)) - 1);
        const __m512 lo = _mm512_maskz_loadu_ps(m0, s + j), hi = _mm512_maskz_loadu_ps(m1, s + j + 16);
        const __m512i b = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
        const int64_t pairs = m >= 32 ? 16 : (m + 1) / 2;
        _mm512_mask_storeu_epi32(pb + j / 2, (__mmask16)((1u << pairs) - 1), b);
    }
}

static inline __attribute__((always_inline)) void pv_tile_bf(const uint32_t *P, const uint32_t *vp, int64_t vstride,
                                                             int64_t D, int64_t npair, int np, float *acc) {
    __m512 c[MR5][2];
    c_load512(c, acc, D, np);
    for (int64_t jp = 0; jp < npair; jp++) {
        const __m512bh b0 = bf_load(vp + jp * 16), b1 = np == 2 ? bf_load(vp + vstride + jp * 16) : b0;
        for (int i = 0; i < MR5; i++) {
            const __m512bh a = bf_bcast(P[i * (TS_ATTN_KCHUNK / 2) + jp]);
            c[i][0] = _mm512_dpbf16_ps(c[i][0], a, b0);
            if (np == 2) c[i][1] = _mm512_dpbf16_ps(c[i][1], a, b1);
        }
    }
    c_store512(c, acc, D, np);
}

/* acc [nq, D] += P (bf16 pairs) · V of keys k0 .. k0 + nk (k0 even: key blocks are multiples
 * of 16); an odd nk's last pair has P 0 for its second key. */
static void pv_tiles_bf(const uint32_t *P, int64_t nq, int64_t D, const uint32_t *vt, int64_t Lkp, int64_t k0,
                        int64_t nk, float *acc) {
    const int64_t vstride = (Lkp / 2) * 16, npair = (nk + 1) / 2;
    for (int64_t d0 = 0; d0 < D; d0 += 32) {
        const uint32_t *vp = vt + (d0 / 16) * vstride + (k0 / 2) * 16;
        for (int64_t r = 0; r < nq; r += MR5) {
            if (D - d0 > 16) pv_tile_bf(P + r * (TS_ATTN_KCHUNK / 2), vp, vstride, D, npair, 2, acc + r * D + d0);
            else pv_tile_bf(P + r * (TS_ATTN_KCHUNK / 2), vp, vstride, D, npair, 1, acc + r * D + d0);
        }
    }
}
#endif

#if TS_ATTN_FP16
/* bf16 operands with AVX512-FP16: vfmadd231ph does 32 fp16 products a lane-pair per
 * instruction, twice the fp32 FMA's work, at the fp32 FMA's rate on an Intel Xeon (Emerald
 * Rapids: `tessera-bench isa`). The panels are the BF16 dots' (pairs of dims of K, pairs of
 * keys of V, one pair per 32-bit lane), in fp16; a lane sums its even or its odd products in
 * fp16 and the two are added in fp32 on the way out (h2_sum). Ranges, so that fp16 neither
 * overflows nor loses the bf16 values: each Q row and each key's K row is scaled by the power
 * of two that puts its largest magnitude in [4, 8) (exact: a bf16 value there is an fp16
 * value), the scale taken back out of S in fp32 (qs per row, the key scales ks per panel);
 * V by one power of two per head, the same way; P is in [0, 1]. The roundings added to the
 * bf16 inputs': the fp16 sums (11 bits) and P's rounding to fp16. S's sums err in proportion
 * to the scores, so the error grows with their spread: against the float64 executor (D 128,
 * 1,024 keys, Q's std 1 / 3 / 10 / 30 against K's 1) 1.2e-3 / 1.9e-3 / 3.2e-3 / 5.2e-3, where
 * the BF16 dots' (rounding P) falls, 1.5e-3 / 6.4e-4 / 3.3e-4 / 1.8e-4. Channels of V more than
 * about 2^17 below the head's largest |V| lose precision (fp16 subnormals). */
#define TS_ATTN_H_FOLD 32 /* P·V: pairs of keys summed in fp16 before a fold into fp32 */
#define TS_ATTN_H_SFOLD 16 /* S: pairs of dims summed in fp16 before a fold into fp32 */

/* dst [n] fp16 = src [n] bf16 · 2^e (n a multiple of 16) */
static void bf_to_h(uint16_t *dst, const uint16_t *src, int64_t n, float sc) {
    const __m512 vs = _mm512_set1_ps(sc);
    for (int64_t i = 0; i < n; i += 16) {
        const __m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + i))), 16);
        const __m512 x = _mm512_mul_ps(_mm512_castsi512_ps(w), vs);
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_castph_si256(_mm512_cvtxps_ph(x)));
    }
}

/* max |src [n]| (bf16, n a multiple of 16) */
static float bf_absmax(const uint16_t *src, int64_t n) {
    __m512i mx = _mm512_setzero_si512();
    for (int64_t i = 0; i < n; i += 16) /* |bf16| as the top of an fp32: its bits order as its magnitude */
        mx = _mm512_max_epu32(mx, _mm512_and_si512(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + i))),
                                                   _mm512_set1_epi32(0x7fff)));
    const uint32_t top = (uint32_t)_mm512_reduce_max_epu32(mx) << 16;
    float m;
    memcpy(&m, &top, sizeof m);
    return m;
}

/* The power of two 2^e that puts a largest magnitude m in [4, 8): 1 for zero (and inf or NaN,
 * left as they are), and e kept within fp32's range for m near its bottom. */
static float h_scale_of(float m) {
    if (!(m > 0.0f) || m > FLT_MAX) return 1.0f;
    int ex;
    (void)frexpf(m, &ex);
    int e = 3 - ex;
    if (e > 100) e = 100;
    return ldexpf(1.0f, e);
}

static float h_scale(const uint16_t *src, int64_t n) { return h_scale_of(bf_absmax(src, n)); }

/* 16 pairs of fp16 sums (lo, hi in each 32-bit lane) as 16 fp32 sums: the pair added in fp16
 * (one more rounding, as one more step of either sum), then widened */
static inline __attribute__((always_inline)) __m512 h2_sum(__m512h c) {
    const __m512i ci = _mm512_castph_si512(c);
    const __m512h t = _mm512_add_ph(c, _mm512_castsi512_ph(_mm512_srli_epi32(ci, 16)));
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_castph_si512(t)));
}

/* Panel pi of head h in fp16 (head_panels_bf's layout and addresses), each key's K row scaled
 * by its own power of two (ks [key] the inverse; 1 for padding keys, whose K is zero) and V by
 * vsc (the head's). tmp: 16 x D halves of scratch. */
static void head_panels_h(const ts_attn_plan *p, const void *k, const void *v, int64_t h, int64_t Lk, int64_t pi,
                          float vsc, uint32_t *kt0, float *ks, uint32_t *vt0, int64_t Lkp, uint16_t *tmp) {
    const int64_t D = p->head_dim, HD = p->heads * D, P2 = D / 2;
    const uint16_t *vr[16];
    uint32_t *kt = kt0 + pi * 16 * P2;
    for (int jj = 0; jj < 16; jj++) {
        const int64_t j = pi * 16 + jj, tok = j >= Lk ? -1 : p->perm ? p->perm[j] : j;
        const uint16_t *kr = tok < 0 ? NULL : (const uint16_t *)k + tok * HD + h * D;
        vr[jj] = tok < 0 ? NULL : (const uint16_t *)v + tok * HD + h * D;
        if (!kr) {
            ks[pi * 16 + jj] = 1.0f;
            for (int64_t dp = 0; dp < P2; dp++) kt[dp * 16 + jj] = 0;
            continue;
        }
        const float sc = h_scale(kr, D);
        ks[pi * 16 + jj] = 1.0f / sc;
        bf_to_h(tmp, kr, D, sc);
        for (int64_t dp = 0; dp < P2; dp++) kt[dp * 16 + jj] = (uint32_t)tmp[2 * dp] | (uint32_t)tmp[2 * dp + 1] << 16;
    }
    for (int jj = 0; jj < 16; jj++) {
        if (vr[jj]) bf_to_h(tmp + jj * D, vr[jj], D, vsc);
        else memset(tmp + jj * D, 0, (size_t)D * sizeof *tmp);
    }
    for (int64_t d0 = 0; d0 < D; d0 += 16) {
        uint32_t *vt = vt0 + (d0 / 16) * (Lkp / 2) * 16 + pi * 8 * 16;
        for (int jp = 0; jp < 8; jp++)
            for (int dd = 0; dd < 16; dd++)
                vt[jp * 16 + dd] = (uint32_t)tmp[2 * jp * D + d0 + dd] | (uint32_t)tmp[(2 * jp + 1) * D + d0 + dd] << 16;
    }
}

static inline __m512h h_bcast(uint32_t x) { return _mm512_castsi512_ph(_mm512_set1_epi32((int)x)); }
static inline __m512h h_load(const uint32_t *x) { return _mm512_castsi512_ph(_mm512_loadu_si512((const void *)x)); }

/* S tile: nr rows (MR5, or HR5 for a half tile) against the 16-key panels kp0 and kp1 (np 2;
 * np 1: kp0 only) whose keys' scales are at ks0 and ks1, scores stored at s0 and s1 (rows
 * TS_ATTN_KCHUNK apart). A half tile's lone panel sums the even and the odd pairs of dims
 * apart, so that 8 FMA chains are in flight (as s_tile512). np and nr are constants at every
 * call. */
static inline __attribute__((always_inline)) void s_tile_h(const uint32_t *q, int64_t P2, const uint32_t *kp0,
                                                           const uint32_t *kp1, const float *ks0, const float *ks1,
                                                           int np, int nr, const float *qs, float *s0, float *s1) {
    const int split = np == 1 && nr < MR5; /* P2 and the runs are even: D is a multiple of 16 */
    for (int64_t f0 = 0; f0 < P2; f0 += TS_ATTN_H_SFOLD) { /* runs of pairs of dims summed in fp16 */
        const int64_t f1 = f0 + TS_ATTN_H_SFOLD < P2 ? f0 + TS_ATTN_H_SFOLD : P2;
        __m512h c[MR5][2];
        for (int i = 0; i < nr; i++) c[i][0] = c[i][1] = _mm512_setzero_ph();
        if (split) {
            for (int64_t dp = f0; dp < f1; dp += 2) {
                const __m512h b0 = h_load(kp0 + dp * 16), b1 = h_load(kp0 + dp * 16 + 16);
                for (int i = 0; i < nr; i++) {
                    c[i][0] = _mm512_fmadd_ph(h_bcast(q[i * P2 + dp]), b0, c[i][0]);
                    c[i][1] = _mm512_fmadd_ph(h_bcast(q[i * P2 + dp + 1]), b1, c[i][1]);
                }
            }
        } else {
            for (int64_t dp = f0; dp < f1; dp++) {
                const __m512h b0 = h_load(kp0 + dp * 16), b1 = np == 2 ? h_load(kp1 + dp * 16) : b0;
                for (int i = 0; i < nr; i++) {
                    const __m512h a = h_bcast(q[i * P2 + dp]);
                    c[i][0] = _mm512_fmadd_ph(a, b0, c[i][0]);
                    if (np == 2) c[i][1] = _mm512_fmadd_ph(a, b1, c[i][1]);
                }
            }
        }
        /* the run's sums into S in fp32; after the last, times the key's and the row's scales */
        const int last = f1 == P2;
        const __m512 k0 = _mm512_loadu_ps(ks0), k1 = np == 2 ? _mm512_loadu_ps(ks1) : k0;
        for (int i = 0; i < nr; i++) {
            const __m512 sq = _mm512_set1_ps(qs[i]);
            for (int j = 0; j < np; j++) {
                float *si = (j ? s1 : s0) + i * TS_ATTN_KCHUNK;
                __m512 x = split ? _mm512_add_ps(h2_sum(c[i][0]), h2_sum(c[i][1])) : h2_sum(c[i][j]);
                if (f0) x = _mm512_add_ps(x, _mm512_loadu_ps(si));
                if (last) x = _mm512_mul_ps(_mm512_mul_ps(x, j ? k1 : k0), sq);
                _mm512_storeu_ps(si, x);
            }
        }
    }
}

/* The S tiles of the nr rows at q (row scales qs, scores at sr) for panels a and b (b < 0:
 * none) where la and lb say the rows see them; the panels start at keys ka and kb. */
static inline __attribute__((always_inline)) void s_pair_h(const uint32_t *q, int64_t P2, const uint32_t *kt,
                                                           const float *ks, int64_t ka, int64_t kb, int a, int b,
                                                           int la, int lb, int nr, const float *qs, float *sr) {
    if (la && lb) s_tile_h(q, P2, kt + ka * P2, kt + kb * P2, ks + ka, ks + kb, 2, nr, qs, sr + 16 * a, sr + 16 * b);
    else if (la) s_tile_h(q, P2, kt + ka * P2, NULL, ks + ka, NULL, 1, nr, qs, sr + 16 * a, NULL);
    else if (lb) s_tile_h(q, P2, kt + kb * P2, NULL, ks + kb, NULL, 1, nr, qs, sr + 16 * b, NULL);
}

/* pb [ceil(n / 2)] = s [0, n) rounded to fp16, pairs of keys; a last odd key's partner is 0. */
static void p_to_h(const float *s, int64_t n, uint32_t *pb) {
    uint16_t *ph = (uint16_t *)pb;
    for (int64_t j = 0; j < n; j += 16) {
        const int64_t m = n - j < 16 ? n - j : 16, me = (m + 1) & ~(int64_t)1;
        const __m512 x = _mm512_maskz_loadu_ps((__mmask16)((1u << m) - 1), s + j);
        _mm256_mask_storeu_epi16(ph + j, (__mmask16)((1u << me) - 1), _mm256_castph_si256(_mm512_cvtxps_ph(x)));
    }
}

/* Rows i0 .. i1 − 1 of acc [MR5, 16·np] (rows D apart) += vs · P · V over the 16-key panels in
 * bits l of a chunk of nk keys: P's pairs of keys at P (rows TS_ATTN_KCHUNK / 2 apart), V's
 * panels at vd (pairs of keys; np 2: and vd + vstride, the next 16 dims), panel c starting at
 * key pk[c]. Summed in fp16 over runs of TS_ATTN_H_FOLD pairs (4 panels), each folded into
 * acc. Only the chunk's keys, as pv_panels512. i0, i1 and np are constants at every call. */
static inline __attribute__((always_inline)) void pv_panels_h(const uint32_t *P, const uint32_t *vd, int64_t vstride,
                                                              const int64_t *pk, uint32_t l, int64_t nk, int64_t D,
                                                              int np, __m512 vs, int i0, int i1, float *acc) {
    _Static_assert(TS_ATTN_H_FOLD % 8 == 0, "a run of P·V's fp16 sums is whole panels");
    while (l) {
        __m512h c[MR5][2];
        for (int i = i0; i < i1; i++) c[i][0] = c[i][1] = _mm512_setzero_ph();
        for (int n = 0; n < TS_ATTN_H_FOLD / 8 && l; n++) {
            const int p = __builtin_ctz(l);
            l &= l - 1u;
            const int64_t npair = nk - 16 * p >= 16 ? 8 : (nk - 16 * p + 1) / 2;
            const uint32_t *vp = vd + (pk[p] / 2) * 16, *pp = P + 8 * p;
            for (int64_t jp = 0; jp < npair; jp++) {
                const __m512h b0 = h_load(vp + jp * 16), b1 = np == 2 ? h_load(vp + vstride + jp * 16) : b0;
                for (int i = i0; i < i1; i++) {
                    const __m512h a = h_bcast(pp[i * (TS_ATTN_KCHUNK / 2) + jp]);
                    c[i][0] = _mm512_fmadd_ph(a, b0, c[i][0]);
                    if (np == 2) c[i][1] = _mm512_fmadd_ph(a, b1, c[i][1]);
                }
            }
        }
        for (int i = i0; i < i1; i++) {
            float *a = acc + i * D;
            _mm512_storeu_ps(a, _mm512_fmadd_ps(h2_sum(c[i][0]), vs, _mm512_loadu_ps(a)));
            if (np == 2) _mm512_storeu_ps(a + 16, _mm512_fmadd_ps(h2_sum(c[i][1]), vs, _mm512_loadu_ps(a + 16)));
        }
    }
}

/* One tile of acc [MR5, 16·np] (rows D apart) += vs · P · V over the panels both its halves see
 * (bits l), then those only its top half (lt) or only its bottom half (lu) sees, as pv_tile512:
 * P and V at pr and vd as pv_panels_h takes them. */
static inline __attribute__((always_inline)) void pv_tile_h(const uint32_t *pr, const uint32_t *vd, int64_t vstride,
                                                            const int64_t *pk, uint32_t l, uint32_t lt, uint32_t lu,
                                                            int64_t nk, int64_t D, int np, __m512 vs, float *ar) {
    pv_panels_h(pr, vd, vstride, pk, l, nk, D, np, vs, 0, MR5, ar);
    pv_panels_h(pr, vd, vstride, pk, lt, nk, D, np, vs, 0, HR5, ar);
    pv_panels_h(pr, vd, vstride, pk, lu, nk, D, np, vs, HR5, MR5, ar);
}
#endif

#if TS_ATTN_TILE512
/* The S tiles of rows r0 .. r0 + nr − 1 for panels a and b of a chunk (s_pair512's or, h16,
 * s_pair_h's), the panels starting at keys ka and kb. */
static inline __attribute__((always_inline)) void s_pair_any(int h16, const void *q, int64_t D, const void *kt,
                                                             const float *ks, const float *qs, int64_t ka,
                                                             int64_t kb, int a, int b, int la, int lb, int nr,
                                                             int64_t r0, float *sr) {
#if TS_ATTN_FP16
    if (h16) {
        s_pair_h((const uint32_t *)q + r0 * (D / 2), D / 2, (const uint32_t *)kt, ks, ka, kb, a, b, la, lb, nr,
                 qs + r0, sr);
        return;
    }
#else
    (void)h16, (void)ks, (void)qs;
#endif
    s_pair512((const float *)q + r0 * D, D, (const float *)kt + ka * D, (const float *)kt + kb * D, a, b, la, lb, nr,
              sr);
}

/* A chunk's scores, S [nq, 16 · npc] = Q · Kᵀ, over its 16-key panels: panel c (columns 16c ..
 * 16c + 15 of S) is the K panel that starts at key pk[c]. live (or NULL: all) has per half
 * tile of HR5 rows bit c set where one of its rows sees a key of panel c; a panel no row of a
 * half tile sees is not computed for it (the masked row pass reads none of those scores). A
 * tile whose halves see the same panels runs whole, else each half apart. The panels any tile
 * sees are taken two at a time, neighbours or not, so a lone panel of one block pairs with
 * the next block's. The fp32 tiles, or with h16 the fp16 ones: then q and kt are pairs of dims
 * in fp16, ks the keys' scales and qs the rows' (unused for fp32). */
static void s_chunk(const void *q, int64_t nq, int64_t D, const void *kt, const float *ks, const float *qs,
                    const int64_t *pk, int npc, float *S, const uint32_t *live, int h16) {
    const uint32_t all = chunk_panels(npc);
    uint32_t any = live ? 0u : all;
    for (int64_t r = 0; live && r < nq; r += HR5) any |= live[r / HR5];
    any &= all;
    while (any) {
        const int a = __builtin_ctz(any);
        any &= any - 1u;
        const int b = any ? __builtin_ctz(any) : -1;
        if (b >= 0) any &= any - 1u;
        const int64_t ka = pk[a], kb = b >= 0 ? pk[b] : ka;
        for (int64_t r = 0; r < nq; r += MR5) {
            const uint32_t lt = live ? live[r / HR5] : all, lu = live ? live[r / HR5 + 1] : all;
            const int ta = (lt >> a) & 1u, tb = b >= 0 && ((lt >> b) & 1u);
            const int ua = (lu >> a) & 1u, ub = b >= 0 && ((lu >> b) & 1u);
            float *sr = S + r * TS_ATTN_KCHUNK;
            if (ta == ua && tb == ub) {
                s_pair_any(h16, q, D, kt, ks, qs, ka, kb, a, b, ta, tb, MR5, r, sr);
            } else {
                s_pair_any(h16, q, D, kt, ks, qs, ka, kb, a, b, ta, tb, HR5, r, sr);
                s_pair_any(h16, q, D, kt, ks, qs, ka, kb, a, b, ua, ub, HR5, r + HR5, sr + HR5 * TS_ATTN_KCHUNK);
            }
        }
    }
}

/* The P·V tile of rows r .. r + MR5 − 1 and head-dim columns d0 .. d0 + 31 (pv_tile512's or,
 * h16, pv_tile_h's on the fp16 pairs of P and V, the head's V scale vsc). */
static inline __attribute__((always_inline)) void pv_tile_any(int h16, const void *P, int64_t r, const void *vt,
                                                              int64_t Lkp, const int64_t *pk, uint32_t l, uint32_t lt,
                                                              uint32_t lu, int64_t nk, int64_t D, int64_t d0,
                                                              float vsc, float *ar) {
#if TS_ATTN_FP16
    if (h16) {
        const int64_t vstride = (Lkp / 2) * 16;
        const uint32_t *pr = (const uint32_t *)P + r * (TS_ATTN_KCHUNK / 2);
        const uint32_t *vd = (const uint32_t *)vt + (d0 / 16) * vstride;
        const __m512 vs = _mm512_set1_ps(vsc);
        if (D - d0 > 16) pv_tile_h(pr, vd, vstride, pk, l, lt, lu, nk, D, 2, vs, ar);
        else pv_tile_h(pr, vd, vstride, pk, l, lt, lu, nk, D, 1, vs, ar);
        return;
    }
#else
    (void)h16, (void)vsc;
#endif
    const float *pr = (const float *)P + r * TS_ATTN_KCHUNK;
    if (D - d0 > 16) pv_tile512(pr, (const float *)vt, Lkp, pk, l, lt, lu, nk, D, d0, 2, ar);
    else pv_tile512(pr, (const float *)vt, Lkp, pk, l, lt, lu, nk, D, d0, 1, ar);
}

/* acc [nq, D] += P · V over a chunk of nk keys (pk, npc, live as s_chunk's): each tile of
 * MR5 rows and 32 head-dim columns keeps its accumulators in registers over all the panels
 * its rows see, a half tile's rows alone over the panels only that half sees. h16: P and V are
 * the fp16 path's pairs of keys, and its sums are multiplied by vsc, the head's V scale. */
static void pv_chunk(const void *P, int64_t nq, int64_t D, const void *vt, int64_t Lkp, const int64_t *pk, int npc,
                     int64_t nk, float vsc, float *acc, const uint32_t *live, int h16) {
    const uint32_t all = chunk_panels(npc);
    for (int64_t d0 = 0; d0 < D; d0 += 32)
        for (int64_t r = 0; r < nq; r += MR5) {
            const uint32_t t = (live ? live[r / HR5] : all) & all, u = (live ? live[r / HR5 + 1] : all) & all;
            pv_tile_any(h16, P, r, vt, Lkp, pk, t & u, t & ~u, u & ~t, nk, D, d0, vsc, acc + r * D + d0);
        }
}
#endif

/* Rows [r0, r0 + n) of the kernel order, head h, as fp32 row pointers (NULL: padding): into
 * x itself, or, for bf16 operands, into tmp [n, D] where they are widened. */
static void row_ptrs(const ts_attn_plan *p, const void *x, int64_t h, int64_t r0, int64_t n, const float **rows,
                     float *tmp) {
    const int64_t HD = p->heads * p->head_dim, D = p->head_dim;
    for (int64_t i = 0; i < n; i++) {
        int64_t t = p->perm ? p->perm[r0 + i] : r0 + i;
        if (t < 0) {
            rows[i] = NULL;
        } else if (p->in_bf16) {
            ts_attn_load_row(tmp + i * D, x, t * HD + h * D, D, 1, 1.0f);
            rows[i] = tmp + i * D;
        } else {
            rows[i] = (const float *)x + t * HD + h * D;
        }
    }
}

/* Byte ranges to ask L2 for, a few lines at a time: a chunk's V panels (per segment, one range
 * per 16 dims) and the next key block's K panel, spread over the chunk's softmax rows. Where one
 * head's panels are larger than TS_ATTN_PF_BYTES they come from L3 or memory, and a plan that
 * jumps between key blocks (DraftAttention's selection) reads them in runs the hardware
 * prefetch does not see coming: at 32,760 tokens (32 MiB of panels a head) the panel loads
 * were a quarter of the tiles' time (perf). At 16,384 tokens (16 MiB) the prefetches made
 * DraftAttention 3-8 % faster but GNA, whose neighbouring query blocks share key blocks, up to
 * 9 % slower; at 4,096 tokens all three methods were slower with them. So a listed plan gets
 * them only where consecutive query blocks share under TS_ATTN_PF_SHARE of their key blocks
 * (list_share; on the Wan grid DraftAttention 0.12-0.22, GNA 0.70-0.84, PARO's bands 0.98):
 * at 32,760 tokens, ABBA, GNA 1x8x8-tiled 10 % 3.15/3.18 -> 3.09/3.03 s, stride-1 GNA
 * 4.68/4.74 -> 4.59/4.64 s, PARO 2.31/2.29 -> 2.20/2.19 s without them. */
#define TS_ATTN_PF_SHARE 0.5 /* prefetch a listed plan's panels below this share (list_share) */

/* Of the key blocks each query block lists (head h's lists), the fraction the previous query
 * block listed too: a local window's neighbours share most of theirs, which then come from
 * L2 without help; DraftAttention's selections share few. */
static double list_share(const ts_attn_plan *p, int64_t h) {
    const int32_t *ptr = ts_attn_plan_ptr(p, h);
    int32_t *stamp = malloc((size_t)p->n_kblk * sizeof *stamp);
    if (!stamp) return 0.0;
    for (int32_t b = 0; b < p->n_kblk; b++) stamp[b] = -1;
    int64_t shared = 0, total = 0;
    for (int32_t i = 0; i < p->n_qblk; i++)
        for (int32_t e = ptr[i]; e < ptr[i + 1]; e++) {
            const int32_t kb = p->exact_idx[e];
            if (i > 0) shared += stamp[kb] == i - 1, total++;
            stamp[kb] = i;
        }
    free(stamp);
    return total ? (double)shared / (double)total : 0.0;
}

#define TS_ATTN_PF_RANGES (2 * (TS_ATTN_MAXD / TS_ATTN_NR) + 1) /* two segments' V at the largest D, one K */
typedef struct pf_list {
    const char *p[TS_ATTN_PF_RANGES];
    int64_t len[TS_ATTN_PF_RANGES], lines;
    int n, cur;
    int64_t off;
} pf_list;

static void pf_add(pf_list *f, const void *p, int64_t bytes) {
    f->p[f->n] = (const char *)p, f->len[f->n++] = bytes;
    f->lines += (bytes + 63) / 64;
}

/* The next n lines of f. */
static inline void pf_next(pf_list *f, int64_t n) {
    while (n > 0 && f->cur < f->n) {
        __builtin_prefetch(f->p[f->cur] + f->off, 0, 2);
        n--;
        if ((f->off += 64) >= f->len[f->cur]) f->off = 0, f->cur++;
    }
}

/* The panels of keys k0 .. k0 + nk of this call's layout: K's (with_k) and V's (with_v). A
 * chunk's V ranges stop one short of the list's end, so the next block's K always fits (a
 * chunk of more segments than fit is asked for in part: the hardware fetches the rest). */
static void pf_panels(pf_list *f, const attn_scratch *w, const qk_head *qk, int64_t D, int64_t k0, int64_t nk,
                      int with_k, int with_v) {
    const int bf = TK_DOTS(w->tk); /* panels of 16-bit pairs */
    if (with_v)
        for (int64_t d0 = 0; d0 < D && f->n < TS_ATTN_PF_RANGES - 1; d0 += TS_ATTN_NR) {
            if (bf) pf_add(f, (const uint32_t *)w->vh + (d0 / 16) * (w->lkp / 2) * 16 + (k0 / 2) * 16, (nk + 1) / 2 * 64);
            else pf_add(f, w->vh + (d0 / 16) * w->lkp * 16 + k0 * 16, nk * 64);
        }
    if (with_k && f->n < TS_ATTN_PF_RANGES) {
        if (qk && qk->kpk && qk->kw == 16) pf_add(f, qk->kpk + (k0 / 16) * (D / 2) * 32, nk * D * 2);
        else if (!qk) pf_add(f, (const char *)w->kt + k0 * D * (bf ? 2 : 4), nk * D * (bf ? 2 : 4));
    }
}

enum { PANEL_TODO, PANEL_BUSY, PANEL_READY };

#if TS_ATTN_TILE
/* The panels of the task's listed key blocks (list NULL: all n_list blocks): each is packed
 * once, by the first task that needs it (claimed PANEL_BUSY first), which finds it in its
 * cache when it reads it next; a local window's neighbouring tasks, the same thread's, reuse
 * it there. A task that finds a panel claimed by another thread packs its other panels first
 * and then waits for that one. */
static void ready_panels(const ts_attn_plan *p, const void *k, const void *v, int64_t h, int64_t Lk,
                         const int32_t *list, int32_t n_list, int quant, const attn_scratch *w) {
    const int64_t bk = p->blk_k;
    for (int pass = 0; pass < 2; pass++)
        for (int32_t li = 0; li < n_list; li++) {
            const int64_t j0 = (int64_t)(list ? list[li] : li) * bk, j1 = j0 + bk < Lk ? j0 + bk : Lk;
            for (int64_t pi = j0 / TS_ATTN_NR; pi * TS_ATTN_NR < j1; pi++) {
                _Atomic unsigned char *st = &w->pst[pi];
                if (atomic_load_explicit(st, memory_order_acquire) == PANEL_READY) continue;
                if (pass == 1) { /* another task's, still being packed */
                    while (atomic_load_explicit(st, memory_order_acquire) != PANEL_READY) _mm_pause();
                    continue;
                }
                unsigned char todo = PANEL_TODO;
                if (!atomic_compare_exchange_strong_explicit(st, &todo, PANEL_BUSY, memory_order_acquire,
                                                             memory_order_acquire))
                    continue;
#if TS_ATTN_BFDOT
                if (w->tk == TK_BF16) head_panels_bf(p, k, v, h, Lk, w->lkp, pi, (uint32_t *)w->pbase);
                else
#endif
                    head_panels(p, k, v, h, Lk, w->lkp, pi, !quant, w->pbase);
                atomic_store_explicit(st, PANEL_READY, memory_order_release);
            }
        }
}
#endif

/* A task's output rows with SLA's linear branch (plan.lin_w): row r of the block is
 * acc_r / l_r + proj(φ(q_r)·KV / (1e-5 + φ(q_r)·KS)), proj(x) = x·Wᵀ + b, q_r from plan.lin_q
 * where given, else from the (then fp32) operand q. All keys (lin_all): the head's sums from
 * ts_cpu_lin_sums, KV there already times Wᵀ (the projection is linear and the row's scale
 * commutes with it), one product. The paper's variant: the query block's own sums over the
 * keys of the blocks its list does not name (ts_cpu_lin_paper), φ(q)·KV, then that times Wᵀ;
 * where the list names every block they are zero, and the row gets the bias alone, as in the
 * float64 executor (0 / 1e-5). */
static void lin_rows(const ts_attn_plan *p, const void *qop, float *out, int64_t h, int64_t qb, int64_t nq,
                     attn_scratch *w) {
    const int64_t D = p->head_dim, HD = p->heads * D, DD = D * D, q0 = qb * p->blk_q;
    const float *q = ts_attn_plan_lin_own(p) ? p->lin_q : qop, *b = p->lin_b;
    const float *KV = w->lin + (h - w->lin_h) * (DD + D), *KS = KV + DD;
    if (!p->lin_all) KV = w->lin + ((h - w->lin_h) * p->n_qblk + qb) * (DD + D), KS = KV + DD;
    if (!p->perm) ts_cpu_lin_phi(q + q0 * HD + h * D, HD, nq, D, w->lf, NULL);
    for (int64_t r = 0; r < nq; r++) {
        const int64_t tok = p->perm ? p->perm[q0 + r] : q0 + r;
        float *f = w->lf + r * D, *a = w->acc + r * D;
        if (tok < 0) { /* padding row: nothing written */
            memset(f, 0, (size_t)D * sizeof(float));
            continue;
        }
        const float inv = w->l[r] > 0.0f ? 1.0f / w->l[r] : 0.0f;
        if (p->perm) ts_cpu_lin_phi(q + tok * HD + h * D, HD, 1, D, f, NULL);
        double den = 1e-5;
#pragma omp simd reduction(+ : den)
        for (int64_t d = 0; d < D; d++) den += (double)f[d] * (double)KS[d];
        const float fi = (float)(1.0 / den);
#pragma omp simd
        for (int64_t d = 0; d < D; d++) f[d] *= fi, a[d] *= inv;
    }
    if (p->lin_all)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)D, (int)D, 1.0f, w->lf, (int)D, KV,
                    (int)D, 1.0f, w->acc, (int)D);
    else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)D, (int)D, 1.0f, w->lf, (int)D, KV,
                    (int)D, 0.0f, w->lo, (int)D);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)D, (int)D, 1.0f, w->lo, (int)D, p->lin_w,
                    (int)D, 1.0f, w->acc, (int)D);
    }
    for (int64_t r = 0; r < nq; r++) {
        const int64_t tok = p->perm ? p->perm[q0 + r] : q0 + r;
        if (tok < 0) continue;
        float *dst = out + tok * HD + h * D;
        const float *a = w->acc + r * D;
#pragma omp simd
        for (int64_t d = 0; d < D; d++) dst[d] = a[d] + (b ? b[d] : 0.0f);
    }
}

static void attn_task(const ts_attn_plan *p, const void *q, const void *k, const void *v,
                      float *out, int64_t h, int32_t qb, const qk_head *qk, attn_scratch *w) {
    const int64_t H = p->heads, D = p->head_dim, HD = H * D;
    const int64_t q0 = (int64_t)qb * p->blk_q;
    const int64_t Lq = p->n_kern ? p->n_kern : p->nq, Lk = p->n_kern ? p->n_kern : p->nk;
    int64_t nq = Lq - q0 < p->blk_q ? Lq - q0 : p->blk_q;
    if (p->perm) /* padding rows at the block's end output nothing: not computed */
        while (nq > 0 && p->perm[q0 + nq - 1] < 0) nq--;
    const int64_t bk = p->blk_k;
    const float qscale = p->scale * 1.4426950408889634f; /* log2(e) */

    const int tk = w->tk;
    const int64_t qw = TK_DOTS(tk) ? D / 2 : D; /* floats (or pairs of 16-bit values) per query row */
    const int64_t es = p->in_bf16 ? 2 : 4; /* bytes per element of q */
    for (int64_t r = 0; r < nq && r < TS_ATTN_PFQ; r++) {
        const int64_t tok = p->perm ? p->perm[q0 + r] : q0 + r;
        if (tok >= 0) TS_PREFETCH_LINES((const char *)q + (tok * HD + h * D) * es, D * es, 0);
    }
    for (int64_t r = 0; r < nq; r++) {
        int64_t tok = p->perm ? p->perm[q0 + r] : q0 + r;
        if (r + TS_ATTN_PFQ < nq) {
            const int64_t tn = p->perm ? p->perm[q0 + r + TS_ATTN_PFQ] : q0 + r + TS_ATTN_PFQ;
            if (tn >= 0) TS_PREFETCH_LINES((const char *)q + (tn * HD + h * D) * es, D * es, 0);
        }
        if (qk) { /* INT8 Q·Kᵀ quantises from the rows in place (below): no fp32 copy */
        } else if (tok < 0) memset(w->q + r * qw, 0, (size_t)qw * sizeof(float));
        else if (tk == TK_BF16) memcpy(w->q + r * qw, (const uint16_t *)q + tok * HD + h * D, (size_t)D * 2);
#if TS_ATTN_FP16
        else if (tk == TK_FP16) {
            const uint16_t *qr = (const uint16_t *)q + tok * HD + h * D;
            const float sc = h_scale(qr, D);
            bf_to_h((uint16_t *)(w->q + r * qw), qr, D, sc);
            w->qs[r] = qscale / sc;
        }
#endif
        else ts_attn_load_row(w->q + r * D, q, tok * HD + h * D, D, p->in_bf16, qscale);
        if (tk == TK_FP16 && tok < 0) w->qs[r] = 0.0f;
        w->m[r] = -FLT_MAX;
        w->l[r] = 0.0f;
    }
    /* the tiles' rows: the padding rows' Q (and bf16 P) are zero, so P·V adds nothing there */
    const int64_t nq_pad = tk == TK_AVX2 ? TS_ATTN_RUP(nq, TS_ATTN_MR) : tk ? TS_ATTN_RUP(nq, TS_ATTN_MR5) : nq;
    if (nq_pad > nq && !qk) memset(w->q + nq * qw, 0, (size_t)((nq_pad - nq) * qw) * sizeof(float));
    if (TK_DOTS(tk) && nq_pad > nq)
        memset(w->pb + nq * (TS_ATTN_KCHUNK / 2), 0, (size_t)((nq_pad - nq) * (TS_ATTN_KCHUNK / 2)) * 4);
    if (tk == TK_FP16)
        for (int64_t r = nq; r < nq_pad; r++) w->qs[r] = 0.0f;
    if (qk && nq_pad > nq) /* the AVX2 and plain INT8 S leave them alone: P·V's tiles read them as zero P */
        memset(w->s + nq * TS_ATTN_KCHUNK, 0, (size_t)((nq_pad - nq) * TS_ATTN_KCHUNK) * sizeof(float));
    if (qk) { /* quantise the block's query rows, groups of quant_rows (acc is free scratch here) */
        const int64_t g = p->quant_rows > 0 ? p->quant_rows : TS_QUANT_ROWS;
        const float *rows[TS_ATTN_MAXQ];
        for (int64_t r0 = 0; r0 < nq; r0 += g) {
            int64_t n = r0 + g < nq ? g : nq - r0;
            row_ptrs(p, q, h, q0 + r0, n, rows, w->acc);
            float sc = ts_quant_i8_group(rows, n, D, w->q16 + r0 * D);
            for (int64_t i = 0; i < n; i++) w->qs[r0 + i] = sc * qscale;
        }
        for (int64_t r = nq; r < TS_ATTN_RUP(nq, TS_ATTN_MR5); r++) { /* the VNNI tiles' padding rows: S = 0 there */
            memset(w->q16 + r * D, 0, (size_t)D * sizeof(int16_t));
            w->qs[r] = 0.0f;
        }
    }
    memset(w->acc, 0, (size_t)(nq_pad * D) * sizeof(float));

    const int32_t *ptr = p->exact_ptr ? ts_attn_plan_ptr(p, h) : NULL;
    const int32_t n_list = ptr ? ptr[qb + 1] - ptr[qb] : p->n_kblk;
    const int32_t *list = ptr ? p->exact_idx + ptr[qb] : NULL;
#if TS_ATTN_TILE
    if (w->pst) ready_panels(p, k, v, h, Lk, list, n_list, qk != NULL, w);
#endif
    for (int32_t li = 0; li < n_list;) {
        /* a chunk: the next listed key blocks, at most TS_ATTN_KCHUNK keys, consecutive or not,
         * in segments of consecutive blocks (a run of the panels each, at columns col of S).
         * Block b of the chunk sits at columns bc[b] .. bc[b] + bl[b] of S. A block shortened
         * by padding at its end (GNA's and CLEAR's edge tiles, DraftAttention's edge regions)
         * or by the end of the keys to a length that is not a multiple of 16 ends the chunk,
         * so that every segment starts on a 16-key panel of S. */
        struct { int64_t k0, nk, col; } sg[TS_ATTN_KCHUNK]; /* (blocks of a single key on the sgemm path) */
        int16_t bc[TS_ATTN_KCHUNK], bl[TS_ATTN_KCHUNK];
        int ns = 0;
        int32_t nb = 0;
        int64_t nk = 0;
        while (li + nb < n_list && nk + bk <= TS_ATTN_KCHUNK) {
            const int64_t kb = list ? list[li + nb] : li + nb, j0 = kb * bk;
            int64_t len = w->kreal ? w->kreal[kb] : bk; /* less the padding at its end */
            if (j0 + len > Lk) len = Lk - j0;
            if (ns > 0 && sg[ns - 1].k0 + sg[ns - 1].nk == j0) sg[ns - 1].nk += len;
            else sg[ns].k0 = j0, sg[ns].nk = len, sg[ns].col = nk, ns++;
            bc[nb] = (int16_t)nk, bl[nb] = (int16_t)len;
            nk += len, nb++;
            if (len < bk && len % 16) break;
        }
        const int32_t li0 = li;
#define KBLK(b) ((int64_t)(list ? list[li0 + (b)] : li0 + (b))) /* block b of the chunk */
        const uint8_t *full = p->exact_full && list ? p->exact_full + ptr[qb] + li : NULL;
        int partial = 0;
        for (int32_t b = 0; full && b < nb; b++) partial |= !(full[b] || (w->ktail && w->ktail[KBLK(b)]));
        li += nb;
        pf_list pf = {0};
        if (w->kt && w->pf) { /* asked for during the softmax rows: this chunk's V, the next block's K */
            for (int i = 0; i < ns; i++) pf_panels(&pf, w, qk, D, sg[i].k0, sg[i].nk, 0, 1);
            if (li < n_list) {
                const int64_t kn = (int64_t)(list ? list[li] : li) * bk;
                pf_panels(&pf, w, qk, D, kn, kn + bk < Lk ? bk : Lk - kn, 1, 0);
            }
        }
        const int64_t pf_row = nq > 0 ? (pf.lines + nq - 1) / nq : 0;
        const float *kbase, *vbase; /* key 0's row of K and V (the sgemm path), row stride ld */
        int64_t ld;
        if (w->kt) { /* the head's K and V panels, laid out once per call */
            kbase = NULL, vbase = w->vh, ld = D;
        } else if (w->kh) { /* the head's K and V, permuted (and widened) once per call */
            kbase = w->kh, vbase = w->vh, ld = D;
        } else {
            kbase = (const float *)k + h * D, vbase = (const float *)v + h * D, ld = HD;
        }
#if TS_ATTN_TILE512
        /* partial blocks with the builder's bits: the rows below read them as lane masks, and the
         * AVX-512 tiles skip the 16-key panels none of a tile's rows sees */
        const int maskbits = partial && p->exact_bits;
        if (maskbits) chunk_masks(p, full, ptr[qb] + li - nb, nq, nb, bk, bc, bl, nk, w->okw, w->live);
        const uint32_t *live = maskbits ? w->live : NULL;
#else
        const int maskbits = 0;
#endif
#if TS_ATTN_TILE512
        /* the AVX-512 tiles take the chunk as its 16-key panels: panel c starts at key pk[c] */
        int64_t pk[TS_ATTN_KCHUNK / TS_ATTN_NR];
        const int npc = (int)((nk + TS_ATTN_NR - 1) / TS_ATTN_NR);
        if (tk == TK_AVX512 || tk == TK_FP16)
            for (int32_t b = 0; b < nb; b++)
                for (int64_t o = 0; o < bl[b]; o += TS_ATTN_NR) pk[(bc[b] + o) / TS_ATTN_NR] = KBLK(b) * bk + o;
        if ((tk == TK_AVX512 && !qk) || tk == TK_FP16) /* fp16: the keys' scales follow the K panels */
            s_chunk(w->q, nq, D, w->kt, tk == TK_FP16 ? w->kt + w->lkp * D / 2 : NULL, w->qs, pk, npc, w->s, live,
                    tk == TK_FP16);
        const int seg_s = !(tk == TK_AVX512 && !qk) && tk != TK_FP16;
#else
        const int seg_s = 1;
#endif
        for (int i = 0; seg_s && i < ns; i++) {
            const int64_t k0 = sg[i].k0, nks = sg[i].nk;
            float *S = w->s + sg[i].col;
#if TS_ATTN_VNNI
            if (qk && qk->kpk && qk->kw == 16) {
                s_int8_vnni(w->q16, w->qs, qk, D, nq, k0, nks, bk, S, TS_ATTN_KCHUNK);
            } else
#endif
#if defined(__AVX2__)
            if (qk && qk->kpk) {
                s_int8_tiles(w->q16, w->qs, qk, D, nq, k0, nks, bk, S, TS_ATTN_KCHUNK);
            } else
#endif
            if (qk) { /* S = (Q8 · K8ᵀ) · s_q · s_k (s_q carries scale · log2 e) */
                for (int64_t r = 0; r < nq; r++) {
                    const int16_t *qr = w->q16 + r * D;
                    float *sr = S + r * TS_ATTN_KCHUNK;
                    for (int64_t j = 0; j < nks; j++)
                        sr[j] = (float)dot_i16(qr, qk->k16 + (k0 + j) * D, D) * (w->qs[r] * qk->ks[(k0 + j) / bk]);
                }
            }
#if TS_ATTN_TILE
            else if (tk == TK_AVX2) {
                s_tiles(w->q, nq, D, w->kt, k0, nks, S);
            }
#endif
#if TS_ATTN_BFDOT
            else if (tk == TK_BF16) {
                s_tiles_bf((const uint32_t *)w->q, nq, D, (const uint32_t *)w->kt, k0, nks, qscale, S);
            }
#endif
            else { /* S [nq, nks] = Q · Kᵀ */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nks, (int)D, 1.0f, w->q,
                            (int)D, kbase + k0 * ld, (int)ld, 0.0f, S, TS_ATTN_KCHUNK);
            }
        }
        if (partial && p->exact_bits && !maskbits) { /* the builder's precomputed element masks */
            const int64_t wpr = (bk + 63) / 64, e0 = ptr[qb] + li - nb;
            for (int64_t r = 0; r < nq; r++) {
                uint8_t *ok = w->ok + r * TS_ATTN_KCHUNK;
                for (int32_t b = 0; b < nb; b++) {
                    const int64_t j0 = bc[b], j1 = j0 + bl[b];
                    if (full[b]) {
                        memset(ok + j0, 1, (size_t)(j1 - j0));
                        continue;
                    }
                    const uint64_t *row = p->exact_bits + p->exact_bits_off[e0 + b] + r * wpr;
                    for (int64_t j = j0; j < j1; j++) ok[j] = (uint8_t)((row[(j - j0) >> 6] >> ((j - j0) & 63)) & 1);
                }
            }
        } else if (partial && !maskbits) {
            for (int64_t r = 0; r < nq; r++) {
                int64_t qt = p->perm ? p->perm[q0 + r] : q0 + r;
                uint8_t *ok = w->ok + r * TS_ATTN_KCHUNK;
                for (int32_t b = 0; b < nb; b++)
                    for (int64_t j = bc[b]; j < bc[b] + bl[b]; j++) {
                        const int64_t kj = KBLK(b) * bk + (j - bc[b]);
                        int64_t kt = p->perm ? p->perm[kj] : kj;
                        ok[j] = full[b] ? 1 : kt < 0 || qt < 0 ? 0 : (uint8_t)ts_mask_allows(&p->mask, qt, kt);
                    }
            }
        }
        for (int64_t r = 0; r < nq; r++) {
            float *s = w->s + r * TS_ATTN_KCHUNK;
            const uint8_t *ok = w->ok + r * TS_ATTN_KCHUNK;
            pf_next(&pf, pf_row);
            if (li == n_list) { /* the last chunk: the output rows, for the stores at the end */
                const int64_t tok = p->perm ? p->perm[q0 + r] : q0 + r;
                if (tok >= 0) TS_PREFETCH_LINES(out + tok * HD + h * D, D * 4, 1);
            }
            float mx = w->m[r], sum = 0.0f;
#if TS_ATTN_TILE512
            if (maskbits) { /* the mask's bits as AVX-512 lane masks: no byte mask, no scalar exp */
                sum = exp2_row512_masked(s, nk, &mx, w->okw + r * TS_ATTN_OKW);
            } else
#endif
            {
                if (partial)
                    for (int64_t j = 0; j < nk; j++) s[j] = ok[j] ? s[j] : -FLT_MAX;
                /* simd reductions: without them the max and the sum stay scalar (float order) and
                 * were over half of the kernel's own time */
#pragma omp simd reduction(max : mx)
                for (int64_t j = 0; j < nk; j++) mx = s[j] > mx ? s[j] : mx;
#if TS_ATTN_TILE512
                if (!partial) {
                    sum = exp2_row512(s, nk, mx);
                } else
#elif defined(__AVX2__) && defined(__FMA__)
                if (!partial) {
                    sum = exp2_row(s, nk, mx);
                } else
#endif
                {
#pragma omp simd
                    for (int64_t j = 0; j < nk; j++) s[j] = ts_exp2f(s[j] - mx);
                    if (partial)
                        for (int64_t j = 0; j < nk; j++) s[j] = ok[j] ? s[j] : 0.0f;
#pragma omp simd reduction(+ : sum)
                    for (int64_t j = 0; j < nk; j++) sum += s[j];
                }
            }
            float corr = ts_exp2f(w->m[r] - mx);
            w->l[r] = w->l[r] * corr + sum;
            w->m[r] = mx;
            if (corr != 1.0f) {
                float *a = w->acc + r * D;
                for (int64_t d = 0; d < D; d++) a[d] *= corr;
            }
#if TS_ATTN_BFDOT
            if (tk == TK_BF16) p_to_bf(s, nk, w->pb + r * (TS_ATTN_KCHUNK / 2));
#endif
#if TS_ATTN_FP16
            if (tk == TK_FP16) p_to_h(s, nk, w->pb + r * (TS_ATTN_KCHUNK / 2));
#endif
        }
#undef KBLK
        /* acc [nq, D] += P · V, the chunk's panels at once (AVX-512) or a segment at a time */
#if TS_ATTN_TILE512
        if (tk == TK_AVX512 || tk == TK_FP16) /* fp16: the head's V scale follows the V panels */
            pv_chunk(tk == TK_FP16 ? (const void *)w->pb : w->s, nq, D, vbase, w->lkp, pk, npc, nk,
                     tk == TK_FP16 ? vbase[w->lkp * D / 2] : 1.0f, w->acc, live, tk == TK_FP16);
        const int seg_pv = tk != TK_AVX512 && tk != TK_FP16;
#else
        const int seg_pv = 1;
#endif
        for (int i = 0; seg_pv && i < ns; i++) {
            const int64_t k0 = sg[i].k0, nks = sg[i].nk, col = sg[i].col;
#if TS_ATTN_TILE
            if (tk == TK_AVX2) {
                pv_tiles(w->s + col, nq, D, vbase, w->lkp, k0, nks, w->acc);
                continue;
            }
#endif
#if TS_ATTN_BFDOT
            if (tk == TK_BF16) { /* col is even: segments start at whole blocks of a multiple of 16 */
                pv_tiles_bf(w->pb + col / 2, nq, D, (const uint32_t *)vbase, w->lkp, k0, nks, w->acc);
                continue;
            }
#endif
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)D, (int)nks, 1.0f, w->s + col,
                        TS_ATTN_KCHUNK, vbase + k0 * ld, (int)ld, 1.0f, w->acc, (int)D);
        }
    }
    if (w->lin) {
        lin_rows(p, q, out, h, qb, nq, w);
        return;
    }
    for (int64_t r = 0; r < nq; r++) {
        int64_t tok = p->perm ? p->perm[q0 + r] : q0 + r;
        if (tok < 0) continue; /* padding row */
        float *dst = out + tok * HD + h * D;
        float inv = w->l[r] > 0.0f ? 1.0f / w->l[r] : 0.0f;
        for (int64_t d = 0; d < D; d++) dst[d] = w->acc[r * D + d] * inv;
    }
}

/* Floats of scratch per thread: Q block, scores, accumulator (rows rounded up to MR for the
 * tiles), row max and sum, the byte mask (a multiple of 4 floats' worth), for INT8_QK the
 * row scales and int16 rows, and with a linear branch (lin: LIN_ALL or LIN_PAPER) the block's
 * φ(q) rows, and for the paper's variant φ(q)·KV. */
enum { LIN_NONE, LIN_ALL, LIN_PAPER };
static size_t lin_floats(int64_t bqp, int64_t D, int lin) {
    return (size_t)((lin == LIN_PAPER ? 2 : lin ? 1 : 0) * bqp * D);
}

static size_t scratch_floats(int64_t bq, int64_t D, int quant, int tk, int lin) {
    const int64_t KC = TS_ATTN_KCHUNK, bqp = bq + TS_ATTN_ROWPAD;
    return (size_t)(2 * bqp * D + bqp * KC + 2 * bq) + lin_floats(bqp, D, lin) + (size_t)(bq * KC / 4 + 1) +
           (quant ? (size_t)(bqp + bqp * D / 2 + 1) : 0) + (TK_DOTS(tk) ? (size_t)(bqp * KC / 2) : 0) +
           (tk == TK_FP16 ? (size_t)(bqp + 16 * D / 2) : 0) +
           (size_t)(2 * bqp * TS_ATTN_OKW + 2 + bqp / (TS_ATTN_MR5 / 2) + 1);
}

/* The calling thread's part of the per-thread scratch (call inside a parallel region). */
static attn_scratch scratch_of(float *scratch, size_t per, int64_t bq, int64_t D, int quant, int tk, int lin) {
    const int64_t KC = TS_ATTN_KCHUNK, bqp = bq + TS_ATTN_ROWPAD;
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    float *b = scratch + per * (size_t)tid; /* laid out as scratch_floats counts it */
    attn_scratch w = {0};
    w.q = b, b += bqp * D;
    w.s = b, b += bqp * KC;
    w.acc = b, b += bqp * D;
    w.m = b, b += bq;
    w.l = b, b += bq;
    w.ok = (uint8_t *)b, b += bq * KC / 4 + 1;
    if (quant) w.qs = b, b += bqp, w.q16 = (int16_t *)b, b += bqp * D / 2 + 1;
    if (TK_DOTS(tk)) w.pb = (uint32_t *)b, b += bqp * KC / 2;
    if (tk == TK_FP16) w.qs = b, b += bqp + 16 * D / 2; /* and 16 x D halves for head_panels_h */
    if (lin) w.lf = b, b += bqp * D;
    if (lin == LIN_PAPER) w.lo = b, b += bqp * D;
    w.okw = (uint64_t *)(((uintptr_t)b + 7) & ~(uintptr_t)7), b += 2 * bqp * TS_ATTN_OKW + 2;
    w.live = (uint32_t *)b;
    return w;
}

/* Keys j0 .. j0 + n - 1 of a head's INT8 K (k8 [n, D], row-major) into the packed tiles
 * the integer products read (kpk: tile j / kw, dim pair d / 2, slot j % kw, the pair's two
 * values side by side). A pair is one 32-bit word, so a tile of 16 keys is a 16 x D/2 word
 * transpose: in registers 16 x 16 words at a time where the tile is whole. */
static void pack_k8(const int16_t *k8, int64_t n, int64_t D, int kw, int64_t j0, int16_t *kpk) {
    int64_t j = 0;
#if TS_ATTN_TILE512
    if (kw == 16 && j0 % 16 == 0 && D % 32 == 0)
        for (; j + 16 <= n; j += 16) {
            int16_t *tile = kpk + (j0 + j) / 16 * (D / 2) * 32;
            for (int64_t e0 = 0; e0 < D / 2; e0 += 16) {
                __m512 r[16];
                for (int jj = 0; jj < 16; jj++) r[jj] = _mm512_castsi512_ps(_mm512_loadu_si512((const void *)(k8 + (j + jj) * D + 2 * e0)));
                transpose16(r);
                for (int e = 0; e < 16; e++) _mm512_storeu_si512((void *)(tile + (e0 + e) * 32), _mm512_castps_si512(r[e]));
            }
        }
#endif
    for (; j < n; j++) {
        const int64_t jk = j0 + j;
        for (int64_t d = 0; d < D; d++)
            kpk[((jk / kw) * (D / 2) + d / 2) * 2 * kw + (jk % kw) * 2 + d % 2] = k8[j * D + d];
    }
}

int ts_cpu_bf16_dots_fast(void) {
#if TS_ATTN_BFDOT && (defined(__GNUC__) || defined(__clang__))
    return __builtin_cpu_is("amd");
#else
    return 0;
#endif
}

/* The register tiles take head dims and key blocks that are multiples of 16 (with INT8 Q·Kᵀ,
 * for P·V); the best path is the AVX-512 one where built, else AVX2. bf16 operands: the BF16
 * dots where built and faster than the fp32 FMAs on this CPU (ts_cpu_bf16_dots_fast), else the
 * fp16 products where AVX512-FP16 is built, else the fp32 tiles over panels widened once per
 * call. */
int ts_cpu_attn_runs(const ts_attn_plan *p, int path) {
    if ((path == TS_ATTN_PATH_AVX2 && !TS_ATTN_TILE) || (path == TS_ATTN_PATH_AVX512 && !TS_ATTN_TILE512)) return -1;
    const int64_t D = p->head_dim;
    const int fits = p->blk_k % TS_ATTN_NR == 0 && D % TS_ATTN_NR == 0 && D <= TS_ATTN_MAXD;
    const int bfdot = TS_ATTN_BFDOT && fits && p->in_bf16 && p->quant == TS_QUANT_NONE;
    const int hdot = TS_ATTN_FP16 && fits && p->in_bf16 && p->quant == TS_QUANT_NONE;
    if (path == TS_ATTN_PATH_BF16) return bfdot ? TK_BF16 : -1;
    if (path == TS_ATTN_PATH_FP16) return hdot ? TK_FP16 : -1;
    if (!fits || path == TS_ATTN_PATH_SGEMM) return TK_SGEMM;
    if (path == TS_ATTN_PATH_AVX2) return TK_AVX2;
    if (path == TS_ATTN_PATH_BEST && bfdot && ts_cpu_bf16_dots_fast()) return TK_BF16;
    if (path == TS_ATTN_PATH_BEST && hdot) return TK_FP16;
    if (TS_ATTN_TILE512) return TK_AVX512;
    return TS_ATTN_TILE ? TK_AVX2 : TK_SGEMM;
}

/* A large per-call buffer of n bytes: the context's workspace slot where it has a workspace
 * (kept between calls), else malloc'd for this call (the caller frees it). */
static void *big_buf(ts_ctx *c, int slot, size_t n) {
    return c->ws ? ts_workspace_get(c->ws, slot, n) : malloc(n);
}

/* The linear branch's sums of heads [ha, ha + gn) into sums (attn_scratch.lin), from the
 * branch's k and v (the paper's variant: its key blocks' sums in room first); 1 without a
 * branch. 0: out of memory. */
static int lin_group(const ts_attn_plan *p, int lin, int nt, int64_t ha, int64_t gn, const float *k, const float *v,
                     float *sums, float *room) {
    if (lin == LIN_ALL) return ts_cpu_lin_sums(nt, p->nk, p->heads, p->head_dim, ha, gn, k, v, p->lin_w, sums);
    if (lin == LIN_PAPER) return ts_cpu_lin_paper(nt, p, ha, gn, k, v, room, sums);
    return 1;
}

/* per thread's run of the tiled path: its next task, a cache line each (the threads take
 * them in turn) */
struct run_next {
    _Atomic int64_t t;
    char pad[64 - sizeof(int64_t)];
};

ts_status ts_cpu_attn_path(ts_ctx *c, const ts_attn_plan *p, const void *q, const void *k, const void *v,
                           float *out, int path) {
    if (p->nq <= 0 || p->nk <= 0 || p->heads <= 0 || p->head_dim <= 0 || p->blk_q <= 0 ||
        p->blk_k <= 0 || p->blk_k > TS_ATTN_KCHUNK)
        return TS_ERR_INVALID_ARG;
    if (p->perm && p->nq != p->nk) return TS_ERR_INVALID_ARG;
    if (p->n_kern && (!p->perm || p->n_kern < p->nq || !p->exact_ptr)) return TS_ERR_INVALID_ARG;
    if (p->exact_per_head && !p->exact_ptr) return TS_ERR_INVALID_ARG;
    const int lin_own = ts_attn_plan_lin_own(p); /* the branch's own fp32 operands */
    if (p->lin_w && p->in_bf16 && !lin_own) return TS_ERR_UNSUPPORTED; /* the branch reads fp32 operands */
    if (p->quant != TS_QUANT_NONE && p->quant != TS_QUANT_INT8_QK) return TS_ERR_UNSUPPORTED;
    if (p->quant == TS_QUANT_INT8_QK && (p->blk_q > TS_ATTN_MAXQ || p->quant_rows < 0)) return TS_ERR_INVALID_ARG;
    const int64_t h0 = p->h1 > 0 ? p->h0 : 0, h1 = p->h1 > 0 ? p->h1 : p->heads;
    if (h0 < 0 || h1 > p->heads || h0 >= h1) return TS_ERR_INVALID_ARG;
    const int tk = ts_cpu_attn_runs(p, path);
    if (tk < 0) return TS_ERR_UNSUPPORTED;
    const int64_t D = p->head_dim, bq = p->blk_q, nh = h1 - h0;
    const int quant = p->quant == TS_QUANT_INT8_QK;
    const int tile = tk != TK_SGEMM;
    const int lin = !p->lin_w ? LIN_NONE : p->lin_all ? LIN_ALL : LIN_PAPER; /* added by the tasks, */
    const float *lk = lin_own ? p->lin_k : k, *lv = lin_own ? p->lin_v : v; /* from these */
    const size_t per = scratch_floats(bq, D, quant, tk, lin);
    int nt = c->n_threads > 0 ? c->n_threads : 1;
    ts_status rc = TS_OK;
    /* the large buffers (big_buf) come from the context's workspace where it has one (kept
     * between calls), else from malloc for this call */
    float *scratch = NULL, *ks = NULL, *ktmp = NULL, *kvh = NULL;
    int16_t *k16 = NULL, *kpk = NULL, *kreal = NULL;
    qk_head *qkh = NULL;
    struct run_next *next = NULL;
    _Atomic unsigned char *pst = NULL; /* the tiled paths' panel states (ready_panels) */
    float *lins = NULL;                /* lin: the heads' sums (attn_scratch.lin) */
    scratch = big_buf(c, TS_WS_ATTN_SCRATCH, per * (size_t)nt * sizeof(float));
    if (!scratch) return TS_ERR_NOMEM;
    /* INT8_QK: every head's K quantised once, per key block in kernel order */
    const int64_t Lk = p->n_kern ? p->n_kern : p->nk;
    if (quant) {
        k16 = big_buf(c, TS_WS_ATTN_K16, (size_t)(nh * Lk * D) * sizeof(int16_t));
        ks = malloc((size_t)(nh * p->n_kblk) * sizeof(float));
        qkh = malloc((size_t)nh * sizeof *qkh);
    }
    int packed = 0, kw = 8; /* tiles of kw keys: 8 for AVX2, 16 for AVX512-VNNI */
#if defined(__AVX2__)
    packed = quant && D % 2 == 0 && p->blk_k % 8 == 0;
#endif
#if TS_ATTN_VNNI
    if (packed && p->blk_k % 16 == 0 && (path == TS_ATTN_PATH_AVX512 || path == TS_ATTN_PATH_BEST)) kw = 16;
#endif
    const int64_t Lk8 = (Lk + kw - 1) / kw * kw;
    if (packed) kpk = big_buf(c, TS_WS_ATTN_KPK, (size_t)(nh * Lk8 * D) * sizeof(int16_t));
    if (quant && (!k16 || !ks || !qkh || (packed && !kpk))) {
        rc = TS_ERR_NOMEM;
        goto done;
    }
    ktmp = quant && p->in_bf16 ? malloc((size_t)nt * (size_t)(p->blk_k * D) * sizeof(float)) : NULL;
    if (quant && p->in_bf16 && !ktmp) {
        rc = TS_ERR_NOMEM;
        goto done;
    }
    if (quant) {
        /* kpk's keys past Lk in the last tile of kw are left as they are (pack_k8 writes
         * those below): their scores land past the chunk's keys, which neither the row pass
         * nor P·V reads */
        for (int64_t i = 0; i < nh; i++)
            qkh[i] = (qk_head){k16 + i * Lk * D, packed ? kpk + i * Lk8 * D : NULL, ks + i * p->n_kblk, kw};
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
        for (int64_t t = 0; t < nh * p->n_kblk; t++) {
            const int64_t hi = t / p->n_kblk, kb = t % p->n_kblk, j0 = kb * p->blk_k;
            const int64_t n = j0 + p->blk_k < Lk ? p->blk_k : Lk - j0;
            const float *rows[TS_ATTN_KCHUNK];
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            row_ptrs(p, k, h0 + hi, j0, n, rows, ktmp ? ktmp + (size_t)tid * (size_t)(p->blk_k * D) : NULL);
            ks[t] = ts_quant_i8_group(rows, n, D, k16 + (hi * Lk + j0) * D);
            if (packed) pack_k8(k16 + (hi * Lk + j0) * D, n, D, kw, j0, kpk + hi * Lk8 * D);
        }
    }
    /* A permuted (or bf16) plan gathers each head's K and V into kernel order once, instead
     * of once per visiting query block, and so does the register-tiled path (into panels,
     * each packed by the first task that needs it: ready_panels); the group's query blocks
     * run in parallel. The tiled path takes heads in groups big enough to give every thread
     * several tasks, and a head of its own where the group's panels stay within
     * TS_ATTN_GROUP_BYTES (else as many as the first rule gives, one head when a head has many
     * query blocks, so the copy stays at one head's K and V). */
    const int gather = p->perm || p->in_bf16 || tile;
    const int64_t Lkp = tile ? (Lk + TS_ATTN_NR - 1) / TS_ATTN_NR * TS_ATTN_NR : Lk;
    const int64_t hbytes = 2 * Lkp * D * (TK_DOTS(tk) ? 2 : 4); /* one head's K and V panels */
    int pf = tile && hbytes > TS_ATTN_PF_BYTES;
    if (pf && p->exact_ptr) { /* per-chunk prefetch only where a query block's key blocks are mostly new */
        const double sh = list_share(p, h0);
        pf = sh < TS_ATTN_PF_SHARE;
    }
    int64_t g = tile ? (8 * (int64_t)nt + p->n_qblk - 1) / p->n_qblk : 1;
    if (tile && g < nt && (int64_t)nt * hbytes <= TS_ATTN_GROUP_BYTES) g = nt;
    if (g > nh) g = nh;
    if (gather) kvh = big_buf(c, TS_WS_ATTN_KV, (size_t)(g * 2 * Lkp * D) * sizeof(float));
    if (gather && !kvh) {
        rc = TS_ERR_NOMEM;
        goto done;
    }
    /* The tiled paths' panels are packed by the tasks that first need them (ready_panels),
     * except fp16's, whose V scale needs all of a head's V first. Packed in a pass of their own
     * before the tasks, they were out of cache by the time a task read them: at 4,096 tokens
     * and ~10 % the pass took ~12 % of the call. */
#if TS_ATTN_TILE
    if (tile && tk != TK_FP16) {
        pst = malloc((size_t)(g * (Lkp / TS_ATTN_NR)));
        if (!pst) {
            rc = TS_ERR_NOMEM;
            goto done;
        }
    }
#endif
    /* Padding keys are masked; where a block's padding is all at its end (DraftAttention's
     * edge regions) and there is no element mask, the block runs as a full one, shortened. A
     * masked plan's full blocks have their padding at their end (plan.h): they run shortened,
     * and its partial blocks too (their mask never allows a padding key). */
    const uint8_t *ktail = NULL;
    const int unmasked = p->mask.kind == TS_MASK_NONE && !p->exact_bits;
    if (p->perm && (unmasked || p->n_kern > p->nq)) {
        kreal = malloc((size_t)p->n_kblk * (sizeof *kreal + 1));
        if (!kreal) {
            rc = TS_ERR_NOMEM;
            goto done;
        }
        uint8_t *tail = (uint8_t *)(kreal + p->n_kblk);
        ktail = unmasked ? tail : NULL;
        for (int32_t b = 0; b < p->n_kblk; b++) {
            const int64_t j0 = (int64_t)b * p->blk_k, j1 = j0 + p->blk_k < Lk ? j0 + p->blk_k : Lk;
            int64_t e = j1;
            while (e > j0 && p->perm[e - 1] < 0) e--;
            int holes = 0;
            for (int64_t j = j0; j < e; j++) holes |= p->perm[j] < 0;
            kreal[b] = (int16_t)(e - j0);
            tail[b] = (uint8_t)!holes;
        }
    }
    /* the runs' next tasks (struct run_next) */
    next = kvh ? aligned_alloc(64, (size_t)nt * sizeof *next) : NULL;
    if (kvh && !next) {
        rc = TS_ERR_NOMEM;
        goto done;
    }
    /* the linear branch's sums: all heads' for lin_all; the paper's, a head group's at a time
     * (a head's are 51 MB at 32,760 tokens in blocks of 128 x 64: its key blocks' 34 MB, its
     * query blocks' 17): the tiled path's groups, else one head */
    const int64_t lper = D * D + D, lgn = lin == LIN_PAPER ? (kvh ? g : 1) : nh;
    const int64_t lhead = lin == LIN_PAPER ? (p->n_qblk + p->n_kblk + 1) * lper : lper;
    if (lin && !(lins = big_buf(c, TS_WS_ATTN_LIN, (size_t)(lgn * lhead) * sizeof(float)))) {
        rc = TS_ERR_NOMEM;
        goto done;
    }
    float *lroom = lin == LIN_PAPER ? lins + lgn * p->n_qblk * lper : NULL; /* the paper's block sums */
    openblas_set_num_threads(1); /* each task's sgemms run on its own thread */
    if (kvh) {
        const int64_t HD = p->heads * D, per_head = 2 * Lkp * D;
        for (int64_t hh0 = 0; hh0 < nh; hh0 += g) {
            const int64_t gn = nh - hh0 < g ? nh - hh0 : g;
#if TS_ATTN_FP16
            if (tk == TK_FP16) {
                /* each head's V scale from its largest |V| (the panels' maxima first, parked in
                 * the key scales' room), then the panels */
                const int64_t np = Lkp / TS_ATTN_NR;
#pragma omp parallel for num_threads(nt) schedule(static)
                for (int64_t t = 0; t < gn * np; t++) {
                    float m = 0.0f;
                    for (int64_t j = (t % np) * 16; j < (t % np) * 16 + 16 && j < Lk; j++) {
                        const int64_t tok = p->perm ? p->perm[j] : j;
                        if (tok < 0) continue;
                        const float x = bf_absmax((const uint16_t *)v + tok * HD + (h0 + hh0 + t / np) * D, D);
                        if (x > m && x <= FLT_MAX) m = x; /* finite rows: an inf or NaN stays what it is */
                    }
                    kvh[(t / np) * per_head + Lkp * D / 2 + (t % np)] = m;
                }
                for (int64_t gi = 0; gi < gn; gi++) {
                    float *base = kvh + gi * per_head, m = 0.0f;
                    for (int64_t pi = 0; pi < np; pi++) m = base[Lkp * D / 2 + pi] > m ? base[Lkp * D / 2 + pi] : m;
                    base[Lkp * D + Lkp * D / 2] = 1.0f / h_scale_of(m); /* what S·V's sums are multiplied by */
                }
#pragma omp parallel num_threads(nt)
                {
                    attn_scratch ws = scratch_of(scratch, per, bq, D, quant, tk, lin);
                    uint16_t *tmp = (uint16_t *)(ws.qs + bq + TS_ATTN_ROWPAD);
#pragma omp for schedule(static)
                    for (int64_t t = 0; t < gn * np; t++) {
                        float *base = kvh + (t / np) * per_head;
                        head_panels_h(p, k, v, h0 + hh0 + t / np, Lk, t % np, 1.0f / base[Lkp * D + Lkp * D / 2],
                                      (uint32_t *)base, base + Lkp * D / 2, (uint32_t *)(base + Lkp * D), Lkp, tmp);
                    }
                }
            } else
#endif
            if (pst) /* the tasks pack the panels (ready_panels) */
                memset((void *)pst, PANEL_TODO, (size_t)(gn * (Lkp / TS_ATTN_NR)));
            else
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int64_t t = 0; t < gn * Lkp; t++) {
                const int64_t gi = t / Lkp, j = t % Lkp, h = h0 + hh0 + gi;
                const int64_t tok = j >= Lk ? -1 : p->perm ? p->perm[j] : j;
                float *base = kvh + gi * per_head, *vr = base + (Lkp + j) * D;
                if (tok < 0) {
                    memset(base + j * D, 0, (size_t)D * sizeof(float));
                    memset(vr, 0, (size_t)D * sizeof(float));
                    continue;
                }
                if (!quant) {
                    ts_attn_load_row(base + j * D, k, tok * HD + h * D, D, p->in_bf16, 1.0f);
                }
                ts_attn_load_row(vr, v, tok * HD + h * D, D, p->in_bf16, 1.0f);
            }
            /* the group's linear sums before its tasks, which then find its K and V in cache */
            if (!lin_group(p, lin, nt, h0 + hh0, gn, lk, lv, lins + (lin == LIN_ALL ? hh0 * lper : 0), lroom)) {
                rc = TS_ERR_NOMEM;
                break;
            }
            /* the group's tasks, head by head, cut into nt runs of consecutive query blocks:
             * thread i starts on run i, then helps the others, each run handed out in order
             * (next[r]). A thread's next task thus mostly neighbours its last one, and a local
             * window (GNA, CLEAR) finds most of its key blocks still in that core's L2; dealt
             * out one by one (dynamic, 1), two threads took every other query block of one head.
             * With a head per thread (the group rule above), 2 threads at 4,096 tokens and ~10 %:
             * GNA 1x8x8-tiled 5.5 % faster, PARO 5 %, DraftAttention and CLEAR 3 %; at 32,760
             * DraftAttention 7 %; dense and 16,384 tokens within the noise. */
            const int64_t n_t = gn * p->n_qblk;
            for (int r = 0; r < nt; r++) atomic_init(&next[r].t, n_t * r / nt);
#pragma omp parallel num_threads(nt)
            {
                attn_scratch w = scratch_of(scratch, per, bq, D, quant, tk, lin);
                w.kreal = kreal, w.ktail = ktail, w.tk = tk;
                w.pf = pf;
                w.lkp = Lkp;
                w.lin = lins, w.lin_h = lin == LIN_ALL ? h0 : h0 + hh0;
                int tid = 0;
#ifdef _OPENMP
                tid = omp_get_thread_num();
#endif
                for (int o = 0; o < nt; o++) {
                    const int r = (tid + o) % nt;
                    const int64_t end = n_t * (r + 1) / nt;
                    for (int64_t t; (t = atomic_fetch_add_explicit(&next[r].t, 1, memory_order_relaxed)) < end;) {
                        const int64_t gi = t / p->n_qblk, qb = t % p->n_qblk;
                        float *base = kvh + gi * per_head;
                        w.kt = tile ? base : NULL;
                        w.pst = pst ? pst + gi * (Lkp / TS_ATTN_NR) : NULL;
                        w.pbase = base;
                        w.kh = tile ? NULL : base;
                        w.vh = base + Lkp * D;
                        attn_task(p, q, k, v, out, h0 + hh0 + gi, (int32_t)qb, quant ? &qkh[hh0 + gi] : NULL, &w);
                    }
                }
            }
        }
    } else { /* heads in groups of lgn: all of them, or one at a time for the paper's sums */
        const int64_t gl = lin == LIN_PAPER ? lgn : nh;
        for (int64_t hh0 = 0; hh0 < nh; hh0 += gl) {
            const int64_t gn = nh - hh0 < gl ? nh - hh0 : gl;
            if (!lin_group(p, lin, nt, h0 + hh0, gn, lk, lv, lins, lroom)) {
                rc = TS_ERR_NOMEM;
                break;
            }
#pragma omp parallel num_threads(nt)
            {
                attn_scratch w = scratch_of(scratch, per, bq, D, quant, tk, lin);
                w.kreal = kreal, w.ktail = ktail, w.tk = tk;
                w.lin = lins, w.lin_h = h0 + hh0;
#pragma omp for schedule(dynamic, 1)
                for (int64_t task = 0; task < gn * p->n_qblk; task++)
                    attn_task(p, q, k, v, out, h0 + hh0 + task % gn, (int32_t)(task / gn),
                              quant ? &qkh[hh0 + task % gn] : NULL, &w);
            }
        }
    }
    ts_cpu_blas_threads(c);
done:
    if (!c->ws) free(scratch), free(k16), free(kpk), free(kvh), free(lins); /* big_buf's */
    free(ks), free(qkh), free(ktmp), free(kreal), free(next), free((void *)pst);
    return rc;
}

ts_status ts_cpu_attn(ts_ctx *c, const ts_attn_plan *p, const void *q, const void *k, const void *v, float *out) {
    return ts_cpu_attn_path(c, p, q, k, v, out, TS_ATTN_PATH_BEST);
}
