/*
 * umt5.c — UMT5 / T5 encoder: config from shapes, one name table for the transformers and
 * the original Wan layout, forward pass.
 *
 * Reference: shared/docs/models.md §3.1–3.2; transformers modeling_umt5.py and
 * modeling_t5.py (the golden fixtures come from them), Wan2.1 wan/modules/t5.py.
 * Per layer: x += Wo·softmax(q·kᵀ + bias)·v with q, k, v from RMS(x) and no 1/√d scaling;
 * x += wo(GELU_tanh(wi_0·h) ⊙ wi_1·h) with h = RMS(x); a final RMS after the last layer.
 */
#include "umt5.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../namemap.h"
#include "../ops.h"

typedef struct umt5_block {
    ts_tensor norm1, q, k, v, o, rel_bias; /* [D]; [H·Dk, D] ×3; [D, H·Dk]; [buckets, H] */
    ts_tensor norm2, wi0, wi1, wo;         /* [D]; [FF, D] ×2; [D, FF] */
} umt5_block;

typedef struct umt5_weights {
    ts_tensor embed, embed_dup, final_norm, shared_bias; /* [V, D]; same; [D]; [buckets, H] */
    umt5_block blocks[];
} umt5_weights;

struct umt5_model {
    umt5_config cfg;
    ts_weights *w;
    umt5_weights *wt;
    float *final_norm;                 /* [D] */
    float **norm1, **norm2, **bias;    /* per layer: [D], [D], [buckets, H] (NULL: shared) */
    ts_layout layout;
};

/* TS_LAYOUT_ORIGINAL = Wan's t5.py names, TS_LAYOUT_DIFFUSERS = transformers' names. */
#define G(field) offsetof(umt5_weights, field)
#define B(field) offsetof(umt5_block, field)
#define HF_A "encoder.block.%d.layer.0."
#define HF_F "encoder.block.%d.layer.1."
static const ts_name_entry umt5_names[] = {
    {G(embed), {"token_embedding.weight", "shared.weight"}, 0, 0},
    /* transformers' state_dict also holds the tied table under this name */
    {G(embed_dup), {NULL, "encoder.embed_tokens.weight"}, 0, 1},
    {G(final_norm), {"norm.weight", "encoder.final_layer_norm.weight"}, 0, 0},
    /* Wan's T5 with shared_pos keeps the table at the top */
    {G(shared_bias), {"pos_embedding.embedding.weight", NULL}, 0, 1},
    {B(norm1), {"blocks.%d.norm1.weight", HF_A "layer_norm.weight"}, 1, 0},
    {B(q), {"blocks.%d.attn.q.weight", HF_A "SelfAttention.q.weight"}, 1, 0},
    {B(k), {"blocks.%d.attn.k.weight", HF_A "SelfAttention.k.weight"}, 1, 0},
    {B(v), {"blocks.%d.attn.v.weight", HF_A "SelfAttention.v.weight"}, 1, 0},
    {B(o), {"blocks.%d.attn.o.weight", HF_A "SelfAttention.o.weight"}, 1, 0},
    {B(rel_bias), {"blocks.%d.pos_embedding.embedding.weight",
                   HF_A "SelfAttention.relative_attention_bias.weight"}, 1, 1},
    {B(norm2), {"blocks.%d.norm2.weight", HF_F "layer_norm.weight"}, 1, 0},
    {B(wi0), {"blocks.%d.ffn.gate.0.weight", HF_F "DenseReluDense.wi_0.weight"}, 1, 0},
    {B(wi1), {"blocks.%d.ffn.fc1.weight", HF_F "DenseReluDense.wi_1.weight"}, 1, 0},
    {B(wo), {"blocks.%d.ffn.fc2.weight", HF_F "DenseReluDense.wo.weight"}, 1, 0},
};
#undef G
#undef B

static const char *const umt5_prefixes[] = {NULL};

/* The first present tensor among names, or NULL. */
static const ts_tensor *peek_any(const ts_weights *w, const char *const *names, int n) {
    for (int i = 0; i < n; i++) {
        const ts_tensor *t = ts_weights_peek(w, names[i]);
        if (t) return t;
    }
    return NULL;
}

int umt5_bucket(int64_t rel, int buckets, int max_distance) {
    int nb = buckets / 2;
    int b = rel > 0 ? nb : 0;
    int64_t a = rel < 0 ? -rel : rel;
    int exact = nb / 2;
    if (a < exact) return b + (int)a;
    /* float32 throughout, as torch computes it: log(a / exact) / log(md / exact) · (nb − exact) */
    float r = logf((float)a / (float)exact);
    r = r / (float)log((double)max_distance / (double)exact);
    r = r * (float)(nb - exact);
    int64_t large = exact + (int64_t)r;
    if (large > nb - 1) large = nb - 1;
    return b + (int)large;
}

/* relative_attention_max_distance from a JSON config, or 0. */
static int max_distance_from_json(const char *text) {
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    int md = 0;
    if (j) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "relative_attention_max_distance");
        if (cJSON_IsNumber(v) && v->valuedouble > 0) md = (int)v->valuedouble;
    }
    cJSON_Delete(j);
    return md;
}

/* max distance from a config.json in path (a directory) or beside it (a file), or 0. */
static int max_distance_from_config_json(const char *path) {
    char *text = ts_config_json_near(path);
    int md = text ? max_distance_from_json(text) : 0;
    free(text);
    return md;
}

static ts_status config_from_weights(const ts_weights *w, int max_distance, umt5_config *cfg,
                                     ts_err *err) {
    memset(cfg, 0, sizeof *cfg);
    static const char *const emb_n[] = {"shared.weight", "encoder.embed_tokens.weight",
                                        "token_embedding.weight"};
    static const char *const q_n[] = {"encoder.block.0.layer.0.SelfAttention.q.weight",
                                      "blocks.0.attn.q.weight"};
    static const char *const bias0_n[] = {
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "blocks.0.pos_embedding.embedding.weight", "pos_embedding.embedding.weight"};
    static const char *const bias1_n[] = {
        "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight",
        "blocks.1.pos_embedding.embedding.weight"};
    static const char *const ff_n[] = {"encoder.block.0.layer.1.DenseReluDense.wi_0.weight",
                                       "blocks.0.ffn.gate.0.weight"};
    const ts_tensor *emb = peek_any(w, emb_n, 3), *q = peek_any(w, q_n, 2);
    const ts_tensor *b0 = peek_any(w, bias0_n, 3), *ff = peek_any(w, ff_n, 2);
    const char *missing = !emb ? "shared.weight" : !q ? "encoder.block.0.layer.0.SelfAttention.q.weight"
                        : !b0 ? "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
                        : !ff ? "encoder.block.0.layer.1.DenseReluDense.wi_0.weight" : NULL;
    if (missing)
        return TS_ERR(err, TS_ERR_MISSING,
                      "T5 encoder: checkpoint lacks '%s' (is this a T5/UMT5 encoder? gated-GELU "
                      "encoders only)", missing);
    if (emb->ndim != 2 || q->ndim != 2 || b0->ndim != 2 || ff->ndim != 2)
        return TS_ERR(err, TS_ERR_SHAPE, "T5 encoder: unexpected rank of the embedding/attention tensors");
    cfg->vocab = emb->shape[0];
    cfg->dim = emb->shape[1];
    cfg->buckets = (int)b0->shape[0];
    cfg->heads = b0->shape[1];
    cfg->d_ff = ff->shape[0];
    if (cfg->heads <= 0 || q->shape[0] % cfg->heads)
        return TS_ERR(err, TS_ERR_SHAPE, "T5 encoder: q rows %lld are not a multiple of %lld heads",
                      (long long)q->shape[0], (long long)cfg->heads);
    cfg->d_kv = q->shape[0] / cfg->heads;
    cfg->layers = ts_namemap_count_blocks(w, umt5_prefixes, "encoder.block.");
    if (cfg->layers == 0) cfg->layers = ts_namemap_count_blocks(w, umt5_prefixes, "blocks.");
    if (cfg->layers < 1) return TS_ERR(err, TS_ERR_MISSING, "T5 encoder: checkpoint has no encoder blocks");
    cfg->shared_bias = cfg->layers > 1 && !peek_any(w, bias1_n, 2);
    if (max_distance <= 0) max_distance = max_distance_from_json(ts_weights_meta(w, "config"));
    cfg->max_distance = max_distance > 0 ? max_distance : 128;
    if (cfg->buckets < 4)
        return TS_ERR(err, TS_ERR_SHAPE, "T5 encoder: %d relative buckets (need >= 4)", cfg->buckets);
    cfg->eps = 1e-6f;
    return TS_OK;
}

static ts_status check_shapes(const umt5_model *m, ts_err *err) {
    const umt5_config *c = &m->cfg;
    const umt5_weights *w = m->wt;
    const int64_t D = c->dim, I = c->heads * c->d_kv;
    TS_TRY(ts_check_shape(&w->final_norm, "", 1, (int64_t[]){D}, err));
    if (w->embed_dup.data) TS_TRY(ts_check_shape(&w->embed_dup, "", 2, (int64_t[]){c->vocab, D}, err));
    for (int64_t l = 0; l < c->layers; l++) {
        const umt5_block *b = &w->blocks[l];
        struct { const ts_tensor *t; int nd; int64_t s[2]; } k[] = {
            {&b->norm1, 1, {D}}, {&b->q, 2, {I, D}}, {&b->k, 2, {I, D}}, {&b->v, 2, {I, D}},
            {&b->o, 2, {D, I}}, {&b->norm2, 1, {D}}, {&b->wi0, 2, {c->d_ff, D}},
            {&b->wi1, 2, {c->d_ff, D}}, {&b->wo, 2, {D, c->d_ff}},
        };
        for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) TS_TRY(ts_check_shape(k[i].t, "", k[i].nd, k[i].s, err));
        int need_bias = !c->shared_bias || (l == 0 && !w->shared_bias.data);
        if (need_bias && !b->rel_bias.data)
            return TS_ERR(err, TS_ERR_MISSING, "T5 encoder: block %lld has no relative_attention_bias",
                          (long long)l);
        if (b->rel_bias.data)
            TS_TRY(ts_check_shape(&b->rel_bias, "", 2, (int64_t[]){c->buckets, c->heads}, err));
    }
    if (w->shared_bias.data)
        TS_TRY(ts_check_shape(&w->shared_bias, "", 2, (int64_t[]){c->buckets, c->heads}, err));
    return TS_OK;
}

static ts_status load_small(umt5_model *m, ts_err *err) {
    const umt5_weights *w = m->wt;
    int64_t Lyr = m->cfg.layers;
    m->norm1 = calloc((size_t)Lyr, sizeof(float *));
    m->norm2 = calloc((size_t)Lyr, sizeof(float *));
    m->bias = calloc((size_t)Lyr, sizeof(float *));
    if (!m->norm1 || !m->norm2 || !m->bias) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    TS_TRY(ts_tensor_to_f32_alloc(&w->final_norm, &m->final_norm, err));
    for (int64_t l = 0; l < Lyr; l++) {
        TS_TRY(ts_tensor_to_f32_alloc(&w->blocks[l].norm1, &m->norm1[l], err));
        TS_TRY(ts_tensor_to_f32_alloc(&w->blocks[l].norm2, &m->norm2[l], err));
        const ts_tensor *bt = w->blocks[l].rel_bias.data ? &w->blocks[l].rel_bias
                            : (l == 0 && w->shared_bias.data) ? &w->shared_bias : NULL;
        if (bt) TS_TRY(ts_tensor_to_f32_alloc(bt, &m->bias[l], err));
    }
    return TS_OK;
}

ts_status umt5_load_from(umt5_model **out, ts_weights *w, int max_distance, ts_err *err) {
    *out = NULL;
    umt5_model *m = calloc(1, sizeof *m);
    if (!m) {
        ts_weights_close(w);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    m->w = w;
    ts_status st = config_from_weights(w, max_distance, &m->cfg, err);
    if (st == TS_OK) {
        m->wt = calloc(1, sizeof(umt5_weights) + (size_t)m->cfg.layers * sizeof(umt5_block));
        if (!m->wt) st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    if (st == TS_OK) {
        ts_namemap map = {umt5_names, (int)(sizeof umt5_names / sizeof umt5_names[0]),
                          (int)m->cfg.layers, offsetof(umt5_weights, blocks), sizeof(umt5_block),
                          umt5_prefixes, "T5 encoder"};
        st = ts_namemap_bind(&map, w, m->wt, &m->layout, err);
    }
    if (st == TS_OK) st = check_shapes(m, err);
    if (st == TS_OK) st = load_small(m, err);
    if (st != TS_OK) {
        umt5_free(m);
        return st;
    }
    *out = m;
    return TS_OK;
}

ts_status umt5_load(umt5_model **out, const char *path, ts_err *err) {
    *out = NULL;
    ts_weights *w = NULL;
    TS_TRY(ts_weights_open(&w, path, err));
    return umt5_load_from(out, w, max_distance_from_config_json(path), err);
}

const umt5_config *umt5_model_config(const umt5_model *m) { return &m->cfg; }

int64_t umt5_mask_keys(const int32_t *mask, int64_t L) {
    int64_t nk = 0;
    while (nk < L && mask[nk]) nk++;
    for (int64_t i = nk; i < L; i++)
        if (mask[i]) return -1;
    return nk;
}

void umt5_release(const umt5_model *m) {
    if (m) ts_weights_release_all(m->w);
}

void umt5_free(umt5_model *m) {
    if (!m) return;
    for (int64_t l = 0; m->wt && l < m->cfg.layers; l++) {
        if (m->norm1) free(m->norm1[l]);
        if (m->norm2) free(m->norm2[l]);
        if (m->bias) free(m->bias[l]);
    }
    free(m->norm1), free(m->norm2), free(m->bias), free(m->final_norm);
    free(m->wt);
    ts_weights_close(m->w);
    free(m);
}

/* ------------------------------------------------------------------ forward */

size_t umt5_arena_bytes(const umt5_config *cfg, int64_t n) {
    int64_t I = cfg->heads * cfg->d_kv;
    int64_t floats = 2 * n * cfg->dim + 4 * n * I + 2 * n * cfg->d_ff + n * n;
    /* + the bucket table (2n − 1 ints) and 64 bytes of alignment slack per allocation */
    return (size_t)floats * sizeof(float) + (size_t)(2 * n) * sizeof(int) + 16 * 64;
}

#define TRY_OP(x)                                                                               \
    do {                                                                                        \
        ts_status s_ = (x);                                                                     \
        if (s_ != TS_OK) {                                                                      \
            ts_arena_reset(a, mark);                                                            \
            return TS_ERR(err, s_, "T5 encoder: op failed at %s:%d (%s)", __FILE__, __LINE__,   \
                          ts_status_str(s_));                                                   \
        }                                                                                       \
    } while (0)

/* Row-wise S[i, :] = softmax(S[i, :] + bias[bucket(j − i)]) for head h over the nk keys of
 * the n query rows; bucket[r + n − 1] holds the bucket of rel = r. Text encoders run on the
 * CPU, so this stays here. */
static void bias_softmax(ts_ctx *c, float *S, int64_t n, int64_t nk, const int *bucket,
                         const float *bt, int64_t H, int64_t h) {
#pragma omp parallel for num_threads(c->n_threads) if (n >= 64)
    for (int64_t i = 0; i < n; i++) {
        float *row = S + i * nk;
        float mx = -INFINITY;
        for (int64_t j = 0; j < nk; j++) {
            row[j] += bt[(int64_t)bucket[j - i + n - 1] * H + h];
            if (row[j] > mx) mx = row[j];
        }
        double sum = 0;
        for (int64_t j = 0; j < nk; j++) {
            row[j] = expf(row[j] - mx);
            sum += row[j];
        }
        float inv = (float)(1.0 / sum);
        for (int64_t j = 0; j < nk; j++) row[j] *= inv;
    }
}

ts_status umt5_encode(ts_ctx *c, const umt5_model *m, const int32_t *ids, int64_t n, int64_t nk,
                      float *out, umt5_hook_fn hook, void *hook_user, ts_err *err) {
    const umt5_config *cfg = &m->cfg;
    const umt5_weights *wt = m->wt;
    if (n <= 0) return TS_ERR(err, TS_ERR_SHAPE, "T5 encoder: no tokens");
    if (nk < 1 || nk > n)
        return TS_ERR(err, TS_ERR_SHAPE, "T5 encoder: %lld attended tokens of %lld (need 1 .. n)", (long long)nk,
                      (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= cfg->vocab)
            return TS_ERR(err, TS_ERR_INVALID_ARG, "T5 encoder: token %lld has id %d, outside the vocabulary [0, %lld)",
                          (long long)i, ids[i], (long long)cfg->vocab);
    ts_arena *a = c->arena;
    if (!a) return TS_ERR(err, TS_ERR_INVALID_ARG, "T5 encoder: context has no arena");
    const int64_t D = cfg->dim, H = cfg->heads, Dk = cfg->d_kv, I = H * Dk, FF = cfg->d_ff;
    size_t mark = ts_arena_mark(a);
    float *X = ts_arena_f32(a, n * D), *Y = ts_arena_f32(a, n * D);
    float *Q = ts_arena_f32(a, n * I), *K = ts_arena_f32(a, n * I), *V = ts_arena_f32(a, n * I);
    float *A = ts_arena_f32(a, n * I);
    float *Gt = ts_arena_f32(a, n * FF), *U = ts_arena_f32(a, n * FF);
    float *S = ts_arena_f32(a, n * n);
    int *bucket = ts_arena_alloc(a, (size_t)(2 * n) * sizeof(int));
    if (!X || !Y || !Q || !K || !V || !A || !Gt || !U || !S || !bucket) {
        ts_arena_reset(a, mark);
        return TS_ERR(err, TS_ERR_NOMEM, "T5 encoder: arena too small (%zu bytes; need %zu)", a->cap,
                      umt5_arena_bytes(cfg, n));
    }
    for (int64_t r = -(n - 1); r <= nk - 1; r++) bucket[r + n - 1] = umt5_bucket(r, cfg->buckets, cfg->max_distance);

    for (int64_t i = 0; i < n; i++)
        TRY_OP(ts_convert_to_f32(X + i * D, wt->embed.data, wt->embed.dtype, (int64_t)ids[i] * D, D));

    for (int64_t l = 0; l < cfg->layers; l++) {
        const umt5_block *b = &wt->blocks[l];
        const float *bt = m->bias[cfg->shared_bias ? 0 : l];
        /* self-attention */
        TRY_OP(ts_rms_norm(c, Y, X, n, D, cfg->eps, m->norm1[l]));
        TRY_OP(ts_linear(c, Q, Y, n, &b->q, NULL));
        TRY_OP(ts_linear(c, K, Y, n, &b->k, NULL));
        TRY_OP(ts_linear(c, V, Y, n, &b->v, NULL));
        for (int64_t h = 0; h < H; h++) {
            TRY_OP(ts_gemm(c, 0, 1, n, nk, Dk, 1.0f, Q + h * Dk, I, K + h * Dk, I, 0.0f, S, nk));
            bias_softmax(c, S, n, nk, bucket, bt, H, h);
            TRY_OP(ts_gemm(c, 0, 0, n, Dk, nk, 1.0f, S, nk, V + h * Dk, I, 0.0f, A + h * Dk, I));
        }
        TRY_OP(ts_linear(c, Y, A, n, &b->o, NULL));
        TRY_OP(ts_add_gated(c, X, Y, n, D, NULL));
        /* gated-GELU feed-forward */
        TRY_OP(ts_rms_norm(c, Y, X, n, D, cfg->eps, m->norm2[l]));
        TRY_OP(ts_linear(c, Gt, Y, n, &b->wi0, NULL));
        TRY_OP(ts_unary(c, TS_UNARY_GELU_TANH, Gt, Gt, n * FF));
        TRY_OP(ts_linear(c, U, Y, n, &b->wi1, NULL));
        TRY_OP(ts_mul(c, Gt, Gt, U, n * FF));
        TRY_OP(ts_linear(c, Y, Gt, n, &b->wo, NULL));
        TRY_OP(ts_add_gated(c, X, Y, n, D, NULL));
        if (hook) {
            char name[32];
            snprintf(name, sizeof name, "blocks.%lld", (long long)l);
            hook(hook_user, name, X, n * D);
        }
    }
    TRY_OP(ts_rms_norm(c, out, X, n, D, cfg->eps, m->final_norm));
    ts_arena_reset(a, mark);
    return TS_OK;
}
