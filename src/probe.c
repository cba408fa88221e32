/*
 * probe.c — the component registry and ts_probe_run; see probe.h.
 */
#include "probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "pipeline.h"
#include "safetensors.h"

/* ------------------------------------------------------------------ outputs */

typedef struct out_item {
    char name[64];
    int ndim;
    int64_t shape[TS_MAX_DIMS];
    float *data;
} out_item;

typedef struct outputs {
    out_item *items;
    int n, cap;
    int64_t batch; /* for intermediates: [B, ...] */
    int64_t b;     /* current batch element */
    int64_t N, L, D; /* DiT: tokens, text tokens, dim (to shape intermediates) */
    int oom;
} outputs;

static out_item *out_add(outputs *o, const char *name, int ndim, const int64_t *shape) {
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 16;
        out_item *it = realloc(o->items, (size_t)cap * sizeof *it);
        if (!it) return NULL;
        o->items = it, o->cap = cap;
    }
    out_item *it = &o->items[o->n];
    memset(it, 0, sizeof *it);
    snprintf(it->name, sizeof it->name, "%s", name);
    it->ndim = ndim;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) it->shape[i] = shape[i], n *= shape[i];
    it->data = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!it->data) return NULL;
    o->n++;
    return it;
}

static void outputs_free(outputs *o) {
    for (int i = 0; i < o->n; i++) free(o->items[i].data);
    free(o->items);
}

/* Hook: stores intermediate `name` of batch element o->b, shaped [B, N, D], [B, L, D]
 * or [B, n]. */
static void on_intermediate(void *user, const char *name, const float *data, int64_t n) {
    outputs *o = user;
    out_item *it = NULL;
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->items[i].name, name) == 0) it = &o->items[i];
    if (!it) {
        int64_t s[3] = {o->batch, n, 0};
        int nd = 2;
        if (o->D && n == o->N * o->D) s[1] = o->N, s[2] = o->D, nd = 3;
        else if (o->D && n == o->L * o->D) s[1] = o->L, s[2] = o->D, nd = 3;
        if (!(it = out_add(o, name, nd, s))) {
            o->oom = 1;
            return;
        }
    }
    memcpy(it->data + o->b * n, data, (size_t)n * sizeof(float));
}

static ts_status write_outputs(const outputs *o, const ts_probe_opts *po, ts_ctx *c,
                               const char *config, ts_err *err) {
    ts_st_item *items = calloc((size_t)o->n + 1, sizeof *items);
    if (!items) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < o->n; i++) {
        items[i].name = o->items[i].name;
        items[i].t = ts_tensor_make(TS_DTYPE_F32, o->items[i].ndim, o->items[i].shape, o->items[i].data);
    }
    char threads[16];
    snprintf(threads, sizeof threads, "%d", c->n_threads);
    const char *meta[] = {"component", po->component, "model", po->model, "backend", c->backend->name,
                          "threads", threads, "tessera", po->version ? po->version : "unknown",
                          "config", config};
    ts_status st = ts_st_write(po->out, items, o->n, meta, 6, err);
    free(items);
    return st;
}

/* ------------------------------------------------------------------ inputs */

/* Input `name` as fp32 (F32 used in place; F16/BF16/F64 converted into *owned). Checks
 * the rank and, where want[i] >= 0, each dim; the error names the input and the
 * expected shape (`doc`). */
static ts_status get_input(const ts_st_file *f, const char *name, int ndim, const int64_t *want,
                           const char *doc, const float **data, float **owned, const ts_tensor **t,
                           ts_err *err) {
    *owned = NULL;
    const ts_tensor *x = ts_st_find(f, name);
    if (!x) return TS_ERR(err, TS_ERR_MISSING, "inputs lack '%s' (expected %s)", name, doc);
    int ok = x->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = want[i] < 0 || x->shape[i] == want[i];
    char got[96];
    if (!ok) return TS_ERR(err, TS_ERR_SHAPE, "input '%s' has shape %s, expected %s", name, ts_shape_str(x, got, sizeof got), doc);
    *t = x;
    if (x->dtype == TS_DTYPE_F32) {
        *data = x->data;
        return TS_OK;
    }
    int64_t n = ts_tensor_numel(x);
    *owned = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!*owned) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    if (ts_convert_to_f32(*owned, x->data, x->dtype, 0, n) != TS_OK)
        return TS_ERR(err, TS_ERR_FORMAT, "input '%s' has dtype %s; expected a float type", name, ts_dtype_name(x->dtype));
    *data = *owned;
    return TS_OK;
}

/* A whole-pipeline directory is narrowed to the component's part. */
static void component_path(const char *model, int vae, char *out, size_t n) {
    char dit[4096], v[4096];
    ts_err ignore;
    if (ts_wan_find_components(model, dit, v, sizeof dit, &ignore) == TS_OK)
        snprintf(out, n, "%s", vae ? v : dit);
    else
        snprintf(out, n, "%s", model);
}

/* ------------------------------------------------------------------ components */

static ts_status run_dit(ts_ctx *c, const ts_probe_opts *o, ts_err *err) {
    char path[4096];
    component_path(o->model, 0, path, sizeof path);
    ts_st_file *in = NULL;
    TS_TRY(ts_st_open(&in, o->inputs, err));
    wan_model *m = NULL;
    outputs outs = {0};
    float *ox = NULL, *ot = NULL, *oc = NULL;
    ts_arena arena = {0};
    ts_status st = wan_load(&m, path, NULL, err);
    if (st != TS_OK) goto done;
    const wan_config *cfg = wan_model_config(m);
    const float *x, *t, *ctx;
    const ts_tensor *tx, *tt, *tc;
    int64_t wx[5] = {-1, cfg->in_ch, -1, -1, -1};
    char docx[96], docc[96];
    snprintf(docx, sizeof docx, "[B, %lld, F, H, W]", (long long)cfg->in_ch);
    snprintf(docc, sizeof docc, "[B, L, %lld]", (long long)cfg->text_dim);
    if ((st = get_input(in, "x", 5, wx, docx, &x, &ox, &tx, err)) != TS_OK) goto done;
    int64_t B = tx->shape[0], wt[1] = {B}, wc2[3] = {B, -1, cfg->text_dim};
    if ((st = get_input(in, "t", 1, wt, "[B] (timestep 0..1000)", &t, &ot, &tt, err)) != TS_OK) goto done;
    if ((st = get_input(in, "context", 3, wc2, docc, &ctx, &oc, &tc, err)) != TS_OK) goto done;
    int64_t F = tx->shape[2], H = tx->shape[3], W = tx->shape[4], L = tc->shape[1];
    if (ts_arena_init(&arena, wan_arena_bytes(cfg, F, H, W, L)) != 0) {
        st = TS_ERR(err, TS_ERR_NOMEM, "out of memory for the activations");
        goto done;
    }
    ts_arena *old = c->arena;
    c->arena = &arena;
    int64_t so[5] = {B, cfg->out_ch, F, H, W};
    out_item *out = out_add(&outs, "out", 5, so);
    outs.batch = B;
    outs.N = (F / cfg->patch[0]) * (H / cfg->patch[1]) * (W / cfg->patch[2]);
    outs.L = L, outs.D = cfg->dim;
    if (!out) st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    for (int64_t b = 0; b < B && st == TS_OK; b++) {
        outs.b = b;
        st = wan_forward(c, m, NULL, 0, 1, x + b * cfg->in_ch * F * H * W, F, H, W, t[b],
                         ctx + b * L * cfg->text_dim, L, outs.items[0].data + b * cfg->out_ch * F * H * W,
                         o->dump_intermediates ? on_intermediate : NULL, &outs, err);
    }
    c->arena = old;
    if (st == TS_OK && outs.oom) st = TS_ERR(err, TS_ERR_NOMEM, "out of memory for intermediates");
    if (st == TS_OK) {
        char config[512];
        snprintf(config, sizeof config,
                 "{\"model\": \"wan\", \"dim\": %lld, \"ffn_dim\": %lld, \"heads\": %lld, \"head_dim\": %lld, "
                 "\"layers\": %lld, \"in_channels\": %lld, \"out_channels\": %lld, \"text_dim\": %lld, "
                 "\"freq_dim\": %lld, \"patch\": [%d, %d, %d]}",
                 (long long)cfg->dim, (long long)cfg->ffn_dim, (long long)cfg->heads, (long long)cfg->head_dim,
                 (long long)cfg->layers, (long long)cfg->in_ch, (long long)cfg->out_ch, (long long)cfg->text_dim,
                 (long long)cfg->freq_dim, cfg->patch[0], cfg->patch[1], cfg->patch[2]);
        st = write_outputs(&outs, o, c, config, err);
    }
done:
    free(ox), free(ot), free(oc);
    ts_arena_free(&arena);
    outputs_free(&outs);
    wan_free(m);
    ts_st_close(in);
    return st;
}

static void vae_config_json(const wan_vae *v, char *buf, size_t n) {
    const wan_vae_config *c = wan_vae_model_config(v);
    snprintf(buf, n,
             "{\"model\": \"wan-vae\", \"base_dim\": %lld, \"z_dim\": %lld, \"dim_mult\": [%d, %d, %d, %d], "
             "\"num_res_blocks\": %d, \"temporal_downsample\": [%d, %d, %d]}",
             (long long)c->base_dim, (long long)c->z_dim, c->dim_mult[0], c->dim_mult[1], c->dim_mult[2],
             c->dim_mult[3], c->num_res_blocks, c->temporal_downsample[0], c->temporal_downsample[1],
             c->temporal_downsample[2]);
}

static ts_status run_vae(ts_ctx *c, const ts_probe_opts *o, int encode, ts_err *err) {
    char path[4096];
    component_path(o->model, 1, path, sizeof path);
    ts_st_file *in = NULL;
    TS_TRY(ts_st_open(&in, o->inputs, err));
    wan_vae *v = NULL;
    outputs outs = {0};
    float *owned = NULL, *tmp = NULL;
    ts_status st = wan_vae_load(&v, path, err);
    if (st != TS_OK) goto done;
    const int64_t Z = wan_vae_model_config(v)->z_dim;
    const float *x;
    const ts_tensor *tx;
    if (encode) {
        int64_t want[5] = {-1, 3, -1, -1, -1};
        if ((st = get_input(in, "video", 5, want, "[B, 3, T, H, W] in [-1, 1]", &x, &owned, &tx, err)) != TS_OK) goto done;
        int64_t B = tx->shape[0], T = tx->shape[2], H = tx->shape[3], W = tx->shape[4];
        int64_t t = 1 + (T - 1) / 4, so[5] = {B, Z, t, H / 8, W / 8};
        out_item *out = out_add(&outs, "out", 5, so);
        if (!out) st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        for (int64_t b = 0; b < B && st == TS_OK; b++) {
            float *dst = out->data + b * Z * t * (H / 8) * (W / 8);
            st = wan_vae_encode(c, v, x + b * 3 * T * H * W, T, H, W, dst, err);
            if (st == TS_OK && o->normalized) wan_vae_normalize(dst, t, H / 8, W / 8);
        }
    } else {
        int64_t want[5] = {-1, Z, -1, -1, -1};
        char doc[64];
        snprintf(doc, sizeof doc, "[B, %lld, t, h, w]", (long long)Z);
        if ((st = get_input(in, "latents", 5, want, doc, &x, &owned, &tx, err)) != TS_OK) goto done;
        int64_t B = tx->shape[0], t = tx->shape[2], h = tx->shape[3], w = tx->shape[4];
        int64_t n1 = Z * t * h * w, T = 1 + 4 * (t - 1), so[5] = {B, 3, T, 8 * h, 8 * w};
        out_item *out = out_add(&outs, "out", 5, so);
        tmp = malloc((size_t)n1 * sizeof *tmp);
        if (!out || !tmp) st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        for (int64_t b = 0; b < B && st == TS_OK; b++) {
            memcpy(tmp, x + b * n1, (size_t)n1 * sizeof *tmp);
            if (o->normalized) wan_vae_denormalize(tmp, t, h, w);
            st = wan_vae_decode_to(c, v, tmp, t, h, w, out->data + b * 3 * T * 64 * h * w, err);
        }
    }
    if (st == TS_OK) {
        char config[512];
        vae_config_json(v, config, sizeof config);
        st = write_outputs(&outs, o, c, config, err);
    }
done:
    free(owned), free(tmp);
    outputs_free(&outs);
    wan_vae_free(v);
    ts_st_close(in);
    return st;
}

static ts_status run_vae_encode(ts_ctx *c, const ts_probe_opts *o, ts_err *err) { return run_vae(c, o, 1, err); }
static ts_status run_vae_decode(ts_ctx *c, const ts_probe_opts *o, ts_err *err) { return run_vae(c, o, 0, err); }

static const ts_component comp_dit = {"dit", "x [B,C,F,H,W], t [B], context [B,L,D]", run_dit};
static const ts_component comp_vae_enc = {"vae-encode", "video [B,3,T,H,W] in [-1,1]", run_vae_encode};
static const ts_component comp_vae_dec = {"vae-decode", "latents [B,16,t,h,w]", run_vae_decode};
static const ts_component *const registry[] = {&comp_dit, &comp_vae_enc, &comp_vae_dec, NULL};

const ts_component *const *ts_components(void) { return registry; }

const ts_component *ts_component_find(const char *name) {
    for (int i = 0; registry[i]; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

ts_status ts_probe_run(ts_ctx *c, const ts_probe_opts *o, ts_err *err) {
    if (!o->component || !o->model || !o->inputs || !o->out)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "component, model, inputs and out are all required");
    const ts_component *comp = ts_component_find(o->component);
    if (!comp) {
        char names[256] = "";
        for (int i = 0; registry[i]; i++) {
            if (i) strncat(names, ", ", sizeof names - strlen(names) - 1);
            strncat(names, registry[i]->name, sizeof names - strlen(names) - 1);
        }
        return TS_ERR(err, TS_ERR_INVALID_ARG, "unknown component '%s' (available: %s)", o->component, names);
    }
    return comp->run(c, o, err);
}
