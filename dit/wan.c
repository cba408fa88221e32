/*
 * wan.c — Wan2.1 DiT: config from shapes, one name table for both key layouts,
 * forward pass (patch embed, time/text embedding, blocks, head, unpatchify).
 *
 * Reference: shared/docs/models.md §1; diffusers transformer_wan.py (the golden
 * fixtures come from it). Letters as in wan.h. All math in fp32 except the timestep
 * sinusoid and the RoPE angles, computed in double like the references.
 */
#include "wan.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/namemap.h"
#include "../src/ops.h"

typedef struct wan_block {
    ts_tensor mod;                    /* [1, 6, D] */
    ts_tensor sa_q_w, sa_q_b, sa_k_w, sa_k_b, sa_v_w, sa_v_b, sa_o_w, sa_o_b; /* [D, D], [D] */
    ts_tensor sa_norm_q, sa_norm_k;   /* [D] */
    ts_tensor ca_norm_w, ca_norm_b;   /* [D] cross-attn LayerNorm (affine) */
    ts_tensor ca_q_w, ca_q_b, ca_k_w, ca_k_b, ca_v_w, ca_v_b, ca_o_w, ca_o_b; /* [D, D], [D] */
    ts_tensor ca_norm_q, ca_norm_k;   /* [D] RMSNorm over all heads */
    ts_tensor ffn0_w, ffn0_b;         /* [FF, D], [FF] */
    ts_tensor ffn2_w, ffn2_b;         /* [D, FF], [D] */
    ts_tensor proj_l_w, proj_l_b;     /* optional: SLA's [Dh, Dh], [Dh] (TurboDiffusion) */
} wan_block;

typedef struct wan_weights {
    ts_tensor patch_w, patch_b;       /* [D, C, pt, ph, pw], [D] */
    ts_tensor text0_w, text0_b;       /* [D, text_dim] */
    ts_tensor text2_w, text2_b;       /* [D, D] */
    ts_tensor time0_w, time0_b;       /* [D, freq_dim] */
    ts_tensor time2_w, time2_b;       /* [D, D] */
    ts_tensor tproj_w, tproj_b;       /* [6D, D] */
    ts_tensor head_mod;               /* [1, 2, D] */
    ts_tensor head_w, head_b;         /* [out_ch·pt·ph·pw, D] */
    wan_block blocks[];
} wan_weights;

/* fp32 copies of the small tensors (biases, norms, modulation tables), per block. */
typedef struct wan_block_f32 {
    float *mod, *sa_q_b, *sa_k_b, *sa_v_b, *sa_o_b, *sa_norm_q, *sa_norm_k;
    float *ca_norm_w, *ca_norm_b, *ca_q_b, *ca_k_b, *ca_v_b, *ca_o_b, *ca_norm_q, *ca_norm_k;
    float *ffn0_b, *ffn2_b;
    float *proj_l_w, *proj_l_b; /* NULL when the checkpoint has no SLA projection */
} wan_block_f32;

struct wan_model {
    wan_config cfg;
    ts_weights *w;
    wan_weights *wt;
    float *patch_b, *text0_b, *text2_b, *time0_b, *time2_b, *tproj_b, *head_mod, *head_b;
    wan_block_f32 *bf;
    ts_layout layout;
};

#define G(field) offsetof(wan_weights, field)
#define B(field) offsetof(wan_block, field)
static const ts_name_entry wan_names[] = {
    {G(patch_w), {"patch_embedding.weight", "patch_embedding.weight"}, 0, 0},
    {G(patch_b), {"patch_embedding.bias", "patch_embedding.bias"}, 0, 0},
    {G(text0_w), {"text_embedding.0.weight", "condition_embedder.text_embedder.linear_1.weight"}, 0, 0},
    {G(text0_b), {"text_embedding.0.bias", "condition_embedder.text_embedder.linear_1.bias"}, 0, 0},
    {G(text2_w), {"text_embedding.2.weight", "condition_embedder.text_embedder.linear_2.weight"}, 0, 0},
    {G(text2_b), {"text_embedding.2.bias", "condition_embedder.text_embedder.linear_2.bias"}, 0, 0},
    {G(time0_w), {"time_embedding.0.weight", "condition_embedder.time_embedder.linear_1.weight"}, 0, 0},
    {G(time0_b), {"time_embedding.0.bias", "condition_embedder.time_embedder.linear_1.bias"}, 0, 0},
    {G(time2_w), {"time_embedding.2.weight", "condition_embedder.time_embedder.linear_2.weight"}, 0, 0},
    {G(time2_b), {"time_embedding.2.bias", "condition_embedder.time_embedder.linear_2.bias"}, 0, 0},
    {G(tproj_w), {"time_projection.1.weight", "condition_embedder.time_proj.weight"}, 0, 0},
    {G(tproj_b), {"time_projection.1.bias", "condition_embedder.time_proj.bias"}, 0, 0},
    {G(head_mod), {"head.modulation", "scale_shift_table"}, 0, 0},
    {G(head_w), {"head.head.weight", "proj_out.weight"}, 0, 0},
    {G(head_b), {"head.head.bias", "proj_out.bias"}, 0, 0},
    {B(mod), {"blocks.%d.modulation", "blocks.%d.scale_shift_table"}, 1, 0},
    {B(sa_q_w), {"blocks.%d.self_attn.q.weight", "blocks.%d.attn1.to_q.weight"}, 1, 0},
    {B(sa_q_b), {"blocks.%d.self_attn.q.bias", "blocks.%d.attn1.to_q.bias"}, 1, 0},
    {B(sa_k_w), {"blocks.%d.self_attn.k.weight", "blocks.%d.attn1.to_k.weight"}, 1, 0},
    {B(sa_k_b), {"blocks.%d.self_attn.k.bias", "blocks.%d.attn1.to_k.bias"}, 1, 0},
    {B(sa_v_w), {"blocks.%d.self_attn.v.weight", "blocks.%d.attn1.to_v.weight"}, 1, 0},
    {B(sa_v_b), {"blocks.%d.self_attn.v.bias", "blocks.%d.attn1.to_v.bias"}, 1, 0},
    {B(sa_o_w), {"blocks.%d.self_attn.o.weight", "blocks.%d.attn1.to_out.0.weight"}, 1, 0},
    {B(sa_o_b), {"blocks.%d.self_attn.o.bias", "blocks.%d.attn1.to_out.0.bias"}, 1, 0},
    {B(sa_norm_q), {"blocks.%d.self_attn.norm_q.weight", "blocks.%d.attn1.norm_q.weight"}, 1, 0},
    {B(sa_norm_k), {"blocks.%d.self_attn.norm_k.weight", "blocks.%d.attn1.norm_k.weight"}, 1, 0},
    {B(ca_norm_w), {"blocks.%d.norm3.weight", "blocks.%d.norm2.weight"}, 1, 0},
    {B(ca_norm_b), {"blocks.%d.norm3.bias", "blocks.%d.norm2.bias"}, 1, 0},
    {B(ca_q_w), {"blocks.%d.cross_attn.q.weight", "blocks.%d.attn2.to_q.weight"}, 1, 0},
    {B(ca_q_b), {"blocks.%d.cross_attn.q.bias", "blocks.%d.attn2.to_q.bias"}, 1, 0},
    {B(ca_k_w), {"blocks.%d.cross_attn.k.weight", "blocks.%d.attn2.to_k.weight"}, 1, 0},
    {B(ca_k_b), {"blocks.%d.cross_attn.k.bias", "blocks.%d.attn2.to_k.bias"}, 1, 0},
    {B(ca_v_w), {"blocks.%d.cross_attn.v.weight", "blocks.%d.attn2.to_v.weight"}, 1, 0},
    {B(ca_v_b), {"blocks.%d.cross_attn.v.bias", "blocks.%d.attn2.to_v.bias"}, 1, 0},
    {B(ca_o_w), {"blocks.%d.cross_attn.o.weight", "blocks.%d.attn2.to_out.0.weight"}, 1, 0},
    {B(ca_o_b), {"blocks.%d.cross_attn.o.bias", "blocks.%d.attn2.to_out.0.bias"}, 1, 0},
    {B(ca_norm_q), {"blocks.%d.cross_attn.norm_q.weight", "blocks.%d.attn2.norm_q.weight"}, 1, 0},
    {B(ca_norm_k), {"blocks.%d.cross_attn.norm_k.weight", "blocks.%d.attn2.norm_k.weight"}, 1, 0},
    {B(ffn0_w), {"blocks.%d.ffn.0.weight", "blocks.%d.ffn.net.0.proj.weight"}, 1, 0},
    {B(ffn0_b), {"blocks.%d.ffn.0.bias", "blocks.%d.ffn.net.0.proj.bias"}, 1, 0},
    {B(ffn2_w), {"blocks.%d.ffn.2.weight", "blocks.%d.ffn.net.2.weight"}, 1, 0},
    {B(ffn2_b), {"blocks.%d.ffn.2.bias", "blocks.%d.ffn.net.2.bias"}, 1, 0},
    /* SLA fine-tuned checkpoints (TurboDiffusion: module self_attn.attn_op.local_attn) */
    {B(proj_l_w), {"blocks.%d.self_attn.attn_op.local_attn.proj_l.weight", NULL}, 1, 1},
    {B(proj_l_b), {"blocks.%d.self_attn.attn_op.local_attn.proj_l.bias", NULL}, 1, 1},
};
#undef G
#undef B

static const char *const wan_prefixes[] = {"model.diffusion_model.", NULL};

/* Finds a tensor by either layout's name (used before binding, to read the config). */
static const ts_tensor *peek2(const ts_weights *w, const char *orig, const char *diff) {
    const char *names[2] = {orig, diff};
    for (int i = 0; i < 2; i++) {
        const ts_tensor *t = ts_weights_peek(w, names[i]);
        if (t) return t;
        char buf[256];
        snprintf(buf, sizeof buf, "%s%s", wan_prefixes[0], names[i]);
        t = ts_weights_peek(w, buf);
        if (t) return t;
    }
    return NULL;
}

/* head_dim from a model config in JSON (diffusers: attention_head_dim; original:
 * dim / num_heads), or 0 if it has neither. */
static int64_t head_dim_from_json(const char *text) {
    cJSON *j = cJSON_Parse(text);
    int64_t hd = 0;
    if (j) {
        cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "attention_head_dim");
        cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "dim");
        cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "num_heads");
        if (cJSON_IsNumber(a)) hd = (int64_t)a->valuedouble;
        else if (cJSON_IsNumber(d) && cJSON_IsNumber(h) && h->valuedouble > 0)
            hd = (int64_t)(d->valuedouble / h->valuedouble);
    }
    cJSON_Delete(j);
    return hd;
}

/* head_dim from a config.json in path (a directory) or beside it (a file), or 0. */
static int64_t head_dim_from_config_json(const char *path) {
    char *text = ts_config_json_near(path);
    int64_t hd = text ? head_dim_from_json(text) : 0;
    free(text);
    return hd;
}

static ts_status config_from_weights(const ts_weights *w, int64_t head_dim, wan_config *cfg,
                                     ts_err *err) {
    memset(cfg, 0, sizeof *cfg);
    const ts_tensor *pe = peek2(w, "patch_embedding.weight", "patch_embedding.weight");
    const ts_tensor *te = peek2(w, "text_embedding.0.weight", "condition_embedder.text_embedder.linear_1.weight");
    const ts_tensor *tm = peek2(w, "time_embedding.0.weight", "condition_embedder.time_embedder.linear_1.weight");
    const ts_tensor *hd = peek2(w, "head.head.weight", "proj_out.weight");
    const ts_tensor *ff = peek2(w, "blocks.0.ffn.0.weight", "blocks.0.ffn.net.0.proj.weight");
    const char *missing = !pe ? "patch_embedding.weight" : !te ? "text_embedding.0.weight"
                        : !tm ? "time_embedding.0.weight" : !hd ? "head.head.weight"
                        : !ff ? "blocks.0.ffn.0.weight" : NULL;
    if (missing) return TS_ERR(err, TS_ERR_MISSING, "Wan DiT: checkpoint lacks '%s' (is this a Wan2.1 DiT?)", missing);
    if (pe->ndim != 5 || te->ndim != 2 || tm->ndim != 2 || hd->ndim != 2 || ff->ndim != 2)
        return TS_ERR(err, TS_ERR_SHAPE, "Wan DiT: unexpected rank of the embedding/head tensors");
    cfg->dim = pe->shape[0];
    cfg->in_ch = pe->shape[1];
    for (int i = 0; i < 3; i++) cfg->patch[i] = (int)pe->shape[2 + i];
    cfg->text_dim = te->shape[1];
    cfg->freq_dim = tm->shape[1];
    cfg->ffn_dim = ff->shape[0];
    int64_t pp = (int64_t)cfg->patch[0] * cfg->patch[1] * cfg->patch[2];
    if (pp <= 0 || hd->shape[0] % pp)
        return TS_ERR(err, TS_ERR_SHAPE, "Wan DiT: head output %lld is not a multiple of the patch volume",
                      (long long)hd->shape[0]);
    cfg->out_ch = hd->shape[0] / pp;
    cfg->layers = ts_namemap_count_blocks(w, wan_prefixes, "blocks.");
    /* files exported with their config in the safetensors metadata (our fixtures are) */
    const char *meta = head_dim > 0 ? NULL : ts_weights_meta(w, "config");
    if (meta) head_dim = head_dim_from_json(meta);
    cfg->head_dim = head_dim > 0 ? head_dim : 128;
    if (cfg->dim % cfg->head_dim || cfg->freq_dim % 2 || cfg->head_dim % 2)
        return TS_ERR(err, TS_ERR_SHAPE, "Wan DiT: dim %lld is not a multiple of head_dim %lld (set head_dim)",
                      (long long)cfg->dim, (long long)cfg->head_dim);
    cfg->heads = cfg->dim / cfg->head_dim;
    cfg->eps = 1e-6f;
    /* SLA checkpoints: which linear branch proj_l was trained with (TurboDiffusion's, over all
     * keys, unless the file says otherwise; both branches have the same tensors). A value
     * other than these two is refused where there is a proj_l to use it (check_shapes). */
    const char *sv = ts_weights_meta(w, "sla_variant");
    cfg->sla_complement = sv && !strcmp(sv, "complement");
    if (cfg->layers < 1) return TS_ERR(err, TS_ERR_MISSING, "Wan DiT: checkpoint has no blocks.N tensors");
    return TS_OK;
}

ts_status wan_config_from_weights(const ts_weights *w, const wan_load_opts *opts, wan_config *cfg,
                                  ts_err *err) {
    return config_from_weights(w, opts ? opts->head_dim : 0, cfg, err);
}

static ts_status check_shapes(const wan_model *m, ts_err *err) {
    const wan_config *c = &m->cfg;
    const wan_weights *w = m->wt;
    int64_t D = c->dim, pp = (int64_t)c->patch[0] * c->patch[1] * c->patch[2];
    struct { const ts_tensor *t; int nd; int64_t s[5]; } g[] = {
        {&w->patch_w, 5, {D, c->in_ch, c->patch[0], c->patch[1], c->patch[2]}},
        {&w->patch_b, 1, {D}}, {&w->text0_w, 2, {D, c->text_dim}}, {&w->text0_b, 1, {D}},
        {&w->text2_w, 2, {D, D}}, {&w->text2_b, 1, {D}}, {&w->time0_w, 2, {D, c->freq_dim}},
        {&w->time0_b, 1, {D}}, {&w->time2_w, 2, {D, D}}, {&w->time2_b, 1, {D}},
        {&w->tproj_w, 2, {6 * D, D}}, {&w->tproj_b, 1, {6 * D}}, {&w->head_mod, 3, {1, 2, D}},
        {&w->head_w, 2, {c->out_ch * pp, D}}, {&w->head_b, 1, {c->out_ch * pp}},
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        TS_TRY(ts_check_shape(g[i].t, "", g[i].nd, g[i].s, err));
    int any_proj = 0; /* a block with SLA's proj_l */
    for (int64_t l = 0; l < c->layers; l++) {
        const wan_block *b = &w->blocks[l];
        struct { const ts_tensor *t; int nd; int64_t s[3]; } k[] = {
            {&b->mod, 3, {1, 6, D}},
            {&b->sa_q_w, 2, {D, D}}, {&b->sa_k_w, 2, {D, D}}, {&b->sa_v_w, 2, {D, D}}, {&b->sa_o_w, 2, {D, D}},
            {&b->sa_q_b, 1, {D}}, {&b->sa_k_b, 1, {D}}, {&b->sa_v_b, 1, {D}}, {&b->sa_o_b, 1, {D}},
            {&b->sa_norm_q, 1, {D}}, {&b->sa_norm_k, 1, {D}}, {&b->ca_norm_w, 1, {D}}, {&b->ca_norm_b, 1, {D}},
            {&b->ca_q_w, 2, {D, D}}, {&b->ca_k_w, 2, {D, D}}, {&b->ca_v_w, 2, {D, D}}, {&b->ca_o_w, 2, {D, D}},
            {&b->ca_q_b, 1, {D}}, {&b->ca_k_b, 1, {D}}, {&b->ca_v_b, 1, {D}}, {&b->ca_o_b, 1, {D}},
            {&b->ca_norm_q, 1, {D}}, {&b->ca_norm_k, 1, {D}},
            {&b->ffn0_w, 2, {c->ffn_dim, D}}, {&b->ffn0_b, 1, {c->ffn_dim}},
            {&b->ffn2_w, 2, {D, c->ffn_dim}}, {&b->ffn2_b, 1, {D}},
        };
        for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
            TS_TRY(ts_check_shape(k[i].t, "", k[i].nd, k[i].s, err));
        const int64_t Dh = c->head_dim;
        if (!b->proj_l_w.data != !b->proj_l_b.data)
            return TS_ERR(err, TS_ERR_MISSING, "Wan DiT: block %lld has half of the SLA proj_l (weight and bias go together)",
                          (long long)l);
        if (b->proj_l_w.data) {
            TS_TRY(ts_check_shape(&b->proj_l_w, "", 2, (int64_t[]){Dh, Dh}, err));
            TS_TRY(ts_check_shape(&b->proj_l_b, "", 1, (int64_t[]){Dh}, err));
            any_proj = 1;
        }
    }
    /* the branch proj_l was trained with (config_from_weights read it): only where there is one */
    const char *sv = any_proj ? ts_weights_meta(m->w, "sla_variant") : NULL;
    if (sv && strcmp(sv, "all") && strcmp(sv, "complement"))
        return TS_ERR(err, TS_ERR_FORMAT, "Wan DiT: metadata 'sla_variant' is \"%s\": it must be \"all\" "
                      "(TurboDiffusion's linear branch over all keys) or \"complement\" (the paper's)", sv);
    return TS_OK;
}

static ts_status load_small(wan_model *m, ts_err *err) {
    const wan_weights *w = m->wt;
    TS_TRY(ts_tensor_to_f32_alloc(&w->patch_b, &m->patch_b, err));
    TS_TRY(ts_tensor_to_f32_alloc(&w->text0_b, &m->text0_b, err));
    TS_TRY(ts_tensor_to_f32_alloc(&w->text2_b, &m->text2_b, err));
    TS_TRY(ts_tensor_to_f32_alloc(&w->time0_b, &m->time0_b, err));
    TS_TRY(ts_tensor_to_f32_alloc(&w->time2_b, &m->time2_b, err));
    TS_TRY(ts_tensor_to_f32_alloc(&w->tproj_b, &m->tproj_b, err));
    TS_TRY(ts_tensor_to_f32_alloc(&w->head_mod, &m->head_mod, err));
    TS_TRY(ts_tensor_to_f32_alloc(&w->head_b, &m->head_b, err));
    m->bf = calloc((size_t)m->cfg.layers, sizeof *m->bf);
    if (!m->bf) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    for (int64_t l = 0; l < m->cfg.layers; l++) {
        const wan_block *b = &w->blocks[l];
        wan_block_f32 *f = &m->bf[l];
        const ts_tensor *src[] = {&b->mod, &b->sa_q_b, &b->sa_k_b, &b->sa_v_b, &b->sa_o_b,
                                  &b->sa_norm_q, &b->sa_norm_k, &b->ca_norm_w, &b->ca_norm_b,
                                  &b->ca_q_b, &b->ca_k_b, &b->ca_v_b, &b->ca_o_b, &b->ca_norm_q,
                                  &b->ca_norm_k, &b->ffn0_b, &b->ffn2_b, &b->proj_l_w, &b->proj_l_b};
        float **dst[] = {&f->mod, &f->sa_q_b, &f->sa_k_b, &f->sa_v_b, &f->sa_o_b,
                         &f->sa_norm_q, &f->sa_norm_k, &f->ca_norm_w, &f->ca_norm_b,
                         &f->ca_q_b, &f->ca_k_b, &f->ca_v_b, &f->ca_o_b, &f->ca_norm_q,
                         &f->ca_norm_k, &f->ffn0_b, &f->ffn2_b, &f->proj_l_w, &f->proj_l_b};
        for (size_t i = 0; i < sizeof src / sizeof src[0]; i++)
            TS_TRY(ts_tensor_to_f32_alloc(src[i], dst[i], err));
    }
    return TS_OK;
}

ts_status wan_load_from(wan_model **out, ts_weights *w, const wan_load_opts *opts, ts_err *err) {
    *out = NULL;
    wan_model *m = calloc(1, sizeof *m);
    if (!m) {
        ts_weights_close(w);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    m->w = w;
    ts_status st = config_from_weights(w, opts ? opts->head_dim : 0, &m->cfg, err);
    if (st == TS_OK) {
        m->wt = calloc(1, sizeof(wan_weights) + (size_t)m->cfg.layers * sizeof(wan_block));
        if (!m->wt) st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    if (st == TS_OK) {
        ts_namemap map = {wan_names, (int)(sizeof wan_names / sizeof wan_names[0]),
                          (int)m->cfg.layers, offsetof(wan_weights, blocks), sizeof(wan_block),
                          wan_prefixes, "Wan DiT"};
        st = ts_namemap_bind(&map, w, m->wt, &m->layout, err);
    }
    if (st == TS_OK) st = check_shapes(m, err);
    if (st == TS_OK) st = load_small(m, err);
    if (st != TS_OK) {
        wan_free(m);
        return st;
    }
    *out = m;
    return TS_OK;
}

ts_status wan_load(wan_model **out, const char *path, const wan_load_opts *opts, ts_err *err) {
    *out = NULL;
    ts_weights *w = NULL;
    TS_TRY(ts_weights_open(&w, path, err));
    wan_load_opts o = opts ? *opts : (wan_load_opts){0};
    if (o.head_dim <= 0) o.head_dim = head_dim_from_config_json(path);
    return wan_load_from(out, w, &o, err);
}

const wan_config *wan_model_config(const wan_model *m) { return &m->cfg; }

void wan_free(wan_model *m) {
    if (!m) return;
    free(m->patch_b), free(m->text0_b), free(m->text2_b), free(m->time0_b), free(m->time2_b);
    free(m->tproj_b), free(m->head_mod), free(m->head_b);
    if (m->bf) {
        for (int64_t l = 0; l < m->cfg.layers; l++) {
            float **p = (float **)&m->bf[l];
            for (size_t i = 0; i < sizeof(wan_block_f32) / sizeof(float *); i++) free(p[i]);
        }
        free(m->bf);
    }
    free(m->wt);
    ts_weights_close(m->w);
    free(m);
}

#define WAN_N_NAMES ((int64_t)(sizeof wan_names / sizeof wan_names[0]))

/* The view of table entry e for block blk (globals: blk < 0). */
static const ts_tensor *entry_view(const wan_model *m, int64_t e, int64_t blk) {
    const char *base = blk >= 0 ? (const char *)&m->wt->blocks[blk] : (const char *)m->wt;
    return (const ts_tensor *)(base + wan_names[e].offset);
}

/* Bound views (those with a checkpoint name: optional entries the checkpoint lacks are
 * skipped) in table order: globals, then block 0, 1, ... */
int64_t wan_tensor_count(const wan_model *m) {
    int64_t n = 0;
    for (int64_t e = 0; e < WAN_N_NAMES; e++) {
        if (!wan_names[e].per_block) n += entry_view(m, e, -1)->name != NULL;
        else
            for (int64_t l = 0; l < m->cfg.layers; l++) n += entry_view(m, e, l)->name != NULL;
    }
    return n;
}

const ts_tensor *wan_tensor_at(const wan_model *m, int64_t i) {
    if (i < 0) return NULL;
    for (int64_t e = 0; e < WAN_N_NAMES; e++)
        if (!wan_names[e].per_block && entry_view(m, e, -1)->name && i-- == 0) return entry_view(m, e, -1);
    for (int64_t l = 0; l < m->cfg.layers; l++)
        for (int64_t e = 0; e < WAN_N_NAMES; e++)
            if (wan_names[e].per_block && entry_view(m, e, l)->name && i-- == 0) return entry_view(m, e, l);
    return NULL;
}

/* ------------------------------------------------------------------ forward */

#define F32_COUNT(N, L, c)                                                                    \
    ((N) * ((c)->in_ch * pp) + (N) * (c)->dim * 6 + (N) * (c)->ffn_dim + (L) * (c)->dim * 4 + \
     (N) * (c)->head_dim + (N) * (c)->out_ch * pp + (c)->freq_dim + (c)->dim * 20)

size_t wan_arena_bytes(const wan_config *cfg, int64_t F, int64_t H, int64_t W, int64_t L) {
    int64_t pp = (int64_t)cfg->patch[0] * cfg->patch[1] * cfg->patch[2];
    int64_t N = (F / cfg->patch[0]) * (H / cfg->patch[1]) * (W / cfg->patch[2]);
    /* + 64 bytes of alignment slack per allocation (24 allocations) */
    return (size_t)F32_COUNT(N, L, cfg) * sizeof(float) + 24 * 64 + 4096;
}

/* cos/sin tables [N, Dh/2] for the 3-D RoPE: pairs [0, t/2) rotate by the frame index,
 * then h/2 pairs by the row, w/2 pairs by the column; ω_j = 10000^(−2j/d_axis). */
static void rope_tables(const wan_config *c, int64_t f, int64_t h, int64_t w, float *cs,
                        float *sn) {
    int64_t Dh = c->head_dim, P = Dh / 2;
    int64_t dh = 2 * (Dh / 6), dt = Dh - 2 * dh;
    int64_t pt = dt / 2, ph = dh / 2;
    for (int64_t fi = 0; fi < f; fi++)
        for (int64_t hi = 0; hi < h; hi++)
            for (int64_t wi = 0; wi < w; wi++) {
                int64_t n = (fi * h + hi) * w + wi;
                for (int64_t j = 0; j < P; j++) {
                    double pos, om;
                    if (j < pt) pos = (double)fi, om = pow(10000.0, -2.0 * (double)j / (double)dt);
                    else if (j < pt + ph) pos = (double)hi, om = pow(10000.0, -2.0 * (double)(j - pt) / (double)dh);
                    else pos = (double)wi, om = pow(10000.0, -2.0 * (double)(j - pt - ph) / (double)dh);
                    cs[n * P + j] = (float)cos(pos * om);
                    sn[n * P + j] = (float)sin(pos * om);
                }
            }
}

#define TRY_OP(x)                                                                             \
    do {                                                                                      \
        ts_status s_ = (x);                                                                   \
        if (s_ != TS_OK) return TS_ERR(err, s_, "Wan DiT: op failed at %s:%d (%s)", __FILE__, \
                                       __LINE__, ts_status_str(s_));                          \
    } while (0)

ts_status wan_forward(ts_ctx *c, const wan_model *m, ts_attn_schedule *sched, int step,
                      int n_steps, const float *x, int64_t F, int64_t H, int64_t W, float t,
                      const float *context, int64_t L, float *out, wan_hook_fn hook,
                      void *hook_user, ts_err *err) {
    const wan_config *cfg = &m->cfg;
    const wan_weights *wt = m->wt;
    const int pt = cfg->patch[0], ph = cfg->patch[1], pw = cfg->patch[2];
    if (F <= 0 || H <= 0 || W <= 0 || F % pt || H % ph || W % pw)
        return TS_ERR(err, TS_ERR_SHAPE, "Wan DiT: latent %lldx%lldx%lld is not a multiple of the patch %dx%dx%d",
                      (long long)F, (long long)H, (long long)W, pt, ph, pw);
    if (L <= 0) return TS_ERR(err, TS_ERR_SHAPE, "Wan DiT: empty text context");
    int64_t tg[3];
    wan_token_grid(cfg, F, H, W, tg);
    const int64_t f = tg[0], h = tg[1], w = tg[2], N = f * h * w;
    const int64_t D = cfg->dim, C = cfg->in_ch, pp = (int64_t)pt * ph * pw, FF = cfg->ffn_dim;
    ts_arena *a = c->arena;
    if (!a) return TS_ERR(err, TS_ERR_INVALID_ARG, "Wan DiT: context has no arena");
    size_t mark = ts_arena_mark(a);
    float *patches = ts_arena_f32(a, N * C * pp); /* [N, C·pt·ph·pw] */
    float *X = ts_arena_f32(a, N * D);            /* [N, D] hidden state */
    float *Y = ts_arena_f32(a, N * D);            /* [N, D] normed/modulated */
    float *Q = ts_arena_f32(a, N * D), *K = ts_arena_f32(a, N * D), *V = ts_arena_f32(a, N * D);
    float *A = ts_arena_f32(a, N * D);            /* [N, D] attention output */
    float *Hf = ts_arena_f32(a, N * FF);          /* [N, FF] */
    float *ctx_e = ts_arena_f32(a, L * D), *ctx_t = ts_arena_f32(a, L * D); /* [L, D] */
    float *Kc = ts_arena_f32(a, L * D), *Vc = ts_arena_f32(a, L * D);
    float *cs = ts_arena_f32(a, N * cfg->head_dim / 2), *sn = ts_arena_f32(a, N * cfg->head_dim / 2);
    float *otok = ts_arena_f32(a, N * cfg->out_ch * pp); /* [N, out_ch·pp] */
    float *sinus = ts_arena_f32(a, cfg->freq_dim);
    float *e = ts_arena_f32(a, D), *e_tmp = ts_arena_f32(a, D), *e_act = ts_arena_f32(a, D);
    float *e0 = ts_arena_f32(a, 6 * D), *mod = ts_arena_f32(a, 6 * D), *hmod = ts_arena_f32(a, 2 * D);
    if (!hmod) {
        ts_arena_reset(a, mark);
        return TS_ERR(err, TS_ERR_NOMEM, "Wan DiT: arena too small (%zu bytes; need %zu)", a->cap,
                      wan_arena_bytes(cfg, F, H, W, L));
    }

    /* 1. Patch embedding: gather patches (c, kt, kh, kw order = the conv weight's) and
     * one GEMM with the weight viewed as [D, C·pp]. */
    for (int64_t fi = 0; fi < f; fi++)
        for (int64_t hi = 0; hi < h; hi++)
            for (int64_t wi = 0; wi < w; wi++) {
                float *p = patches + ((fi * h + hi) * w + wi) * C * pp;
                for (int64_t ch = 0; ch < C; ch++)
                    for (int a0 = 0; a0 < pt; a0++)
                        for (int b0 = 0; b0 < ph; b0++)
                            for (int d0 = 0; d0 < pw; d0++)
                                *p++ = x[((ch * F + fi * pt + a0) * H + hi * ph + b0) * W + wi * pw + d0];
            }
    TRY_OP(ts_linear(c, X, patches, N, &wt->patch_w, m->patch_b));
    if (hook) hook(hook_user, "patch_embedding", X, N * D);

    /* 2. Time embedding: sinusoid [cos | sin] in double, MLP, 6-way projection. */
    int64_t half = cfg->freq_dim / 2;
    for (int64_t i = 0; i < half; i++) {
        double fr = exp(-log(10000.0) * (double)i / (double)half);
        sinus[i] = (float)cos((double)t * fr);
        sinus[half + i] = (float)sin((double)t * fr);
    }
    TRY_OP(ts_linear(c, e_tmp, sinus, 1, &wt->time0_w, m->time0_b));
    TRY_OP(ts_unary(c, TS_UNARY_SILU, e_tmp, e_tmp, D));
    TRY_OP(ts_linear(c, e, e_tmp, 1, &wt->time2_w, m->time2_b));
    TRY_OP(ts_unary(c, TS_UNARY_SILU, e_act, e, D));
    TRY_OP(ts_linear(c, e0, e_act, 1, &wt->tproj_w, m->tproj_b));
    if (hook) hook(hook_user, "temb", e, D), hook(hook_user, "timestep_proj", e0, 6 * D);

    /* 3. Text embedding: Linear → GELU(tanh) → Linear. */
    TRY_OP(ts_linear(c, ctx_t, context, L, &wt->text0_w, m->text0_b));
    TRY_OP(ts_unary(c, TS_UNARY_GELU_TANH, ctx_t, ctx_t, L * D));
    TRY_OP(ts_linear(c, ctx_e, ctx_t, L, &wt->text2_w, m->text2_b));
    if (hook) hook(hook_user, "text_emb", ctx_e, L * D);

    rope_tables(cfg, f, h, w, cs, sn);
    const int64_t NH = cfg->heads, Dh = cfg->head_dim;
    ts_attn_site site = {TS_ATTN_SELF, 0, step, n_steps, {f, h, w}, t, NULL, NULL, 0, 0};

    for (int64_t l = 0; l < cfg->layers; l++) {
        const wan_block *b = &wt->blocks[l];
        const wan_block_f32 *bf = &m->bf[l];
        for (int64_t i = 0; i < 6 * D; i++) mod[i] = bf->mod[i] + e0[i];
        const float *shift_msa = mod, *scale_msa = mod + D, *gate_msa = mod + 2 * D;
        const float *c_shift = mod + 3 * D, *c_scale = mod + 4 * D, *c_gate = mod + 5 * D;

        /* self-attention */
        TRY_OP(ts_layer_norm(c, Y, X, N, D, cfg->eps, NULL, NULL));
        TRY_OP(ts_modulate(c, Y, Y, N, D, shift_msa, scale_msa));
        TRY_OP(ts_linear(c, Q, Y, N, &b->sa_q_w, bf->sa_q_b));
        TRY_OP(ts_linear(c, K, Y, N, &b->sa_k_w, bf->sa_k_b));
        TRY_OP(ts_linear(c, V, Y, N, &b->sa_v_w, bf->sa_v_b));
        TRY_OP(ts_rms_norm(c, Q, Q, N, D, cfg->eps, bf->sa_norm_q));
        TRY_OP(ts_rms_norm(c, K, K, N, D, cfg->eps, bf->sa_norm_k));
        TRY_OP(ts_rope(c, Q, N, NH, Dh, cs, sn));
        TRY_OP(ts_rope(c, K, N, NH, Dh, cs, sn));
        site.kind = TS_ATTN_SELF;
        site.layer = (int)l;
        site.lin_w = bf->proj_l_w, site.lin_b = bf->proj_l_b;
        site.lin_complement = m->cfg.sla_complement;
        TS_TRY(ts_attention(c, sched, &site, N, N, NH, Dh, Q, K, V, A, err));
        TRY_OP(ts_linear(c, Y, A, N, &b->sa_o_w, bf->sa_o_b));
        TRY_OP(ts_add_gated(c, X, Y, N, D, gate_msa));

        /* cross-attention: affine LN, q from x, k/v from the text, no RoPE, no gate */
        TRY_OP(ts_layer_norm(c, Y, X, N, D, cfg->eps, bf->ca_norm_w, bf->ca_norm_b));
        TRY_OP(ts_linear(c, Q, Y, N, &b->ca_q_w, bf->ca_q_b));
        TRY_OP(ts_linear(c, Kc, ctx_e, L, &b->ca_k_w, bf->ca_k_b));
        TRY_OP(ts_linear(c, Vc, ctx_e, L, &b->ca_v_w, bf->ca_v_b));
        TRY_OP(ts_rms_norm(c, Q, Q, N, D, cfg->eps, bf->ca_norm_q));
        TRY_OP(ts_rms_norm(c, Kc, Kc, L, D, cfg->eps, bf->ca_norm_k));
        site.kind = TS_ATTN_CROSS;
        site.lin_w = site.lin_b = NULL;
        TS_TRY(ts_attention(c, sched, &site, N, L, NH, Dh, Q, Kc, Vc, A, err));
        TRY_OP(ts_linear(c, Y, A, N, &b->ca_o_w, bf->ca_o_b));
        TRY_OP(ts_add_gated(c, X, Y, N, D, NULL));

        /* feed-forward */
        TRY_OP(ts_layer_norm(c, Y, X, N, D, cfg->eps, NULL, NULL));
        TRY_OP(ts_modulate(c, Y, Y, N, D, c_shift, c_scale));
        TRY_OP(ts_linear(c, Hf, Y, N, &b->ffn0_w, bf->ffn0_b));
        TRY_OP(ts_unary(c, TS_UNARY_GELU_TANH, Hf, Hf, N * FF));
        TRY_OP(ts_linear(c, Y, Hf, N, &b->ffn2_w, bf->ffn2_b));
        TRY_OP(ts_add_gated(c, X, Y, N, D, c_gate));
        if (hook) {
            char name[32];
            snprintf(name, sizeof name, "blocks.%lld", (long long)l);
            hook(hook_user, name, X, N * D);
        }
    }

    /* head: modulation from e (not e0), LN, projection */
    for (int64_t i = 0; i < 2 * D; i++) hmod[i] = m->head_mod[i] + e[i % D];
    TRY_OP(ts_layer_norm(c, Y, X, N, D, cfg->eps, NULL, NULL));
    TRY_OP(ts_modulate(c, Y, Y, N, D, hmod, hmod + D));
    TRY_OP(ts_linear(c, otok, Y, N, &wt->head_w, m->head_b));

    /* unpatchify: token vector is (pt, ph, pw, c) with c fastest */
    const int64_t OC = cfg->out_ch;
    for (int64_t fi = 0; fi < f; fi++)
        for (int64_t hi = 0; hi < h; hi++)
            for (int64_t wi = 0; wi < w; wi++) {
                const float *p = otok + ((fi * h + hi) * w + wi) * OC * pp;
                for (int a0 = 0; a0 < pt; a0++)
                    for (int b0 = 0; b0 < ph; b0++)
                        for (int d0 = 0; d0 < pw; d0++)
                            for (int64_t ch = 0; ch < OC; ch++)
                                out[((ch * F + fi * pt + a0) * H + hi * ph + b0) * W + wi * pw + d0] =
                                    p[((a0 * ph + b0) * pw + d0) * OC + ch];
            }
    ts_arena_reset(a, mark);
    return TS_OK;
}
