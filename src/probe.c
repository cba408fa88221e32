/*
 * probe.c — the component registry and ts_probe_run; see probe.h.
 */
#include "probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../attention/schedule.h"
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

/* Writes the collected outputs with the run's metadata (an intermediate that could not be
 * stored fails the run here). */
static ts_status write_outputs(const outputs *o, const ts_probe_opts *po, ts_ctx *c,
                               const char *config, ts_err *err) {
    if (o->oom) return TS_ERR(err, TS_ERR_NOMEM, "out of memory for intermediates");
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
    ts_attn_schedule *sched = NULL;
    ts_status st = TS_OK;
    if (o->attn) { /* a file when it ends in .json, else a one-method spec */
        st = ts_attn_schedule_open(&sched, o->attn, err);
        if (st != TS_OK) goto done;
    }
    st = wan_load(&m, path, NULL, err);
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
        st = wan_forward(c, m, sched, 0, 1, x + b * cfg->in_ch * F * H * W, F, H, W, t[b],
                         ctx + b * L * cfg->text_dim, L, outs.items[0].data + b * cfg->out_ch * F * H * W,
                         o->dump_intermediates ? on_intermediate : NULL, &outs, err);
    }
    c->arena = old;
    if (st == TS_OK) {
        char config[512];
        snprintf(config, sizeof config,
                 "{\"model\": \"wan\", \"dim\": %lld, \"ffn_dim\": %lld, \"heads\": %lld, \"head_dim\": %lld, "
                 "\"layers\": %lld, \"in_channels\": %lld, \"out_channels\": %lld, \"text_dim\": %lld, "
                 "\"freq_dim\": %lld, \"patch\": [%d, %d, %d]}",
                 (long long)cfg->dim, (long long)cfg->ffn_dim, (long long)cfg->heads, (long long)cfg->head_dim,
                 (long long)cfg->layers, (long long)cfg->in_ch, (long long)cfg->out_ch, (long long)cfg->text_dim,
                 (long long)cfg->freq_dim, cfg->patch[0], cfg->patch[1], cfg->patch[2]);
        if (sched) { /* the schedule and the density it reached, for comparisons */
            size_t l = strlen(config);
            snprintf(config + l - 1, sizeof config - l + 1, ", \"attn\": \"%s\", \"attn_mean_density\": %.6f}", o->attn,
                     ts_attn_schedule_mean_density(sched));
        }
        st = write_outputs(&outs, o, c, config, err);
    }
done:
    free(ox), free(ot), free(oc);
    ts_arena_free(&arena);
    outputs_free(&outs);
    wan_free(m);
    ts_attn_schedule_free(sched);
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

/* VAE block outputs arrive in chunks along time (wan_vae_set_hook): each name's frames are
 * kept frame-major ([T][C][H][W], appending is a copy) per batch element, and laid out as
 * [B, C, T, H, W] at the end. */
typedef struct vblock {
    char name[48];
    int64_t C, H, W;
    int64_t T;     /* frames of the current batch element so far */
    int64_t Tfull; /* frames of element 0 (every element must match) */
    int64_t cap;   /* frames allocated per element */
    float *fr;     /* [B][cap][C][H][W] */
} vblock;

typedef struct vhooks {
    vblock *b;
    int n, cap;
    int64_t batch, cur;
    int bad; /* out of memory, or a chunk that does not fit its block */
} vhooks;

static void on_vae_block(void *user, const char *name, const float *x, int64_t C, int64_t T, int64_t H, int64_t W) {
    vhooks *h = user;
    vblock *b = NULL;
    for (int i = 0; i < h->n; i++)
        if (!strcmp(h->b[i].name, name)) b = &h->b[i];
    if (!b) {
        if (h->cur != 0) return (void)(h->bad = 1); /* a block element 0 did not have */
        if (h->n == h->cap) {
            int cap = h->cap ? 2 * h->cap : 16;
            vblock *nb = realloc(h->b, (size_t)cap * sizeof *nb);
            if (!nb) return (void)(h->bad = 1);
            h->b = nb, h->cap = cap;
        }
        b = &h->b[h->n++];
        memset(b, 0, sizeof *b);
        snprintf(b->name, sizeof b->name, "%s", name);
        b->C = C, b->H = H, b->W = W;
    }
    const int64_t HW = H * W;
    if (b->C != C || b->H != H || b->W != W || (h->cur > 0 && b->T + T > b->Tfull)) return (void)(h->bad = 1);
    if (b->T + T > b->cap) { /* only while element 0 runs: nothing else is stored yet */
        int64_t cap = b->cap ? 2 * b->cap : 8;
        while (cap < b->T + T) cap *= 2;
        float *nf = malloc((size_t)(h->batch * cap * C * HW) * sizeof(float));
        if (!nf) return (void)(h->bad = 1);
        if (b->fr) memcpy(nf, b->fr, (size_t)(b->T * C * HW) * sizeof(float));
        free(b->fr);
        b->fr = nf, b->cap = cap;
    }
    float *base = b->fr + h->cur * b->cap * C * HW;
    for (int64_t t = 0; t < T; t++)
        for (int64_t ch = 0; ch < C; ch++)
            memcpy(base + ((b->T + t) * C + ch) * HW, x + (ch * T + t) * HW, (size_t)HW * sizeof(float));
    b->T += T;
}

/* Before batch element e runs, and after it: frame counts restart, and must match element 0's. */
static void vhooks_begin(vhooks *h, int64_t e) {
    h->cur = e;
    for (int i = 0; i < h->n; i++) h->b[i].T = 0;
}

static void vhooks_end(vhooks *h) {
    for (int i = 0; i < h->n; i++) {
        if (h->cur == 0) h->b[i].Tfull = h->b[i].T;
        else if (h->b[i].T != h->b[i].Tfull) h->bad = 1;
    }
}

/* Moves the collected blocks into outs as [B, C, T, H, W]. */
static ts_status vae_blocks_out(const vhooks *h, outputs *outs, ts_err *err) {
    if (h->bad) return TS_ERR(err, TS_ERR_NOMEM, "VAE intermediates: out of memory, or chunks that do not line up");
    for (int i = 0; i < h->n; i++) {
        const vblock *b = &h->b[i];
        const int64_t T = b->Tfull, HW = b->H * b->W, s[5] = {h->batch, b->C, T, b->H, b->W};
        out_item *it = out_add(outs, b->name, 5, s);
        if (!it) return TS_ERR(err, TS_ERR_NOMEM, "out of memory for intermediates");
        for (int64_t e = 0; e < h->batch; e++)
            for (int64_t t = 0; t < T; t++)
                for (int64_t ch = 0; ch < b->C; ch++)
                    memcpy(it->data + ((e * b->C + ch) * T + t) * HW, b->fr + ((e * b->cap + t) * b->C + ch) * HW,
                           (size_t)HW * sizeof(float));
    }
    return TS_OK;
}

static void vhooks_free(vhooks *h) {
    for (int i = 0; i < h->n; i++) free(h->b[i].fr);
    free(h->b);
}

static ts_status run_vae(ts_ctx *c, const ts_probe_opts *o, int encode, ts_err *err) {
    char path[4096];
    component_path(o->model, 1, path, sizeof path);
    ts_st_file *in = NULL;
    TS_TRY(ts_st_open(&in, o->inputs, err));
    wan_vae *v = NULL;
    outputs outs = {0};
    float *owned = NULL, *tmp = NULL;
    vhooks hk = {0};
    ts_status st = wan_vae_load(&v, path, err);
    if (st != TS_OK) goto done;
    if (o->dump_intermediates) wan_vae_set_hook(v, on_vae_block, &hk);
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
        hk.batch = B;
        for (int64_t b = 0; b < B && st == TS_OK; b++) {
            float *dst = out->data + b * Z * t * (H / 8) * (W / 8);
            vhooks_begin(&hk, b);
            st = wan_vae_encode(c, v, x + b * 3 * T * H * W, T, H, W, dst, err);
            vhooks_end(&hk);
            if (st == TS_OK && o->normalized) wan_vae_normalize(v, dst, t, H / 8, W / 8);
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
        hk.batch = B;
        for (int64_t b = 0; b < B && st == TS_OK; b++) {
            memcpy(tmp, x + b * n1, (size_t)n1 * sizeof *tmp);
            if (o->normalized) wan_vae_denormalize(v, tmp, t, h, w);
            vhooks_begin(&hk, b);
            st = wan_vae_decode_to(c, v, tmp, t, h, w, out->data + b * 3 * T * 64 * h * w, err);
            vhooks_end(&hk);
        }
    }
    if (st == TS_OK && o->dump_intermediates) st = vae_blocks_out(&hk, &outs, err);
    if (st == TS_OK) {
        char config[512];
        vae_config_json(v, config, sizeof config);
        st = write_outputs(&outs, o, c, config, err);
    }
done:
    free(owned), free(tmp);
    vhooks_free(&hk);
    outputs_free(&outs);
    wan_vae_free(v);
    ts_st_close(in);
    return st;
}

static ts_status run_vae_encode(ts_ctx *c, const ts_probe_opts *o, ts_err *err) { return run_vae(c, o, 1, err); }
static ts_status run_vae_decode(ts_ctx *c, const ts_probe_opts *o, ts_err *err) { return run_vae(c, o, 0, err); }

static ts_status run_text_encoder(ts_ctx *c, const ts_probe_opts *o, ts_err *err) {
    /* a whole pipeline directory is narrowed to text_encoder/ and tokenizer/ */
    ts_wan_paths *paths = calloc(1, sizeof *paths);
    if (!paths) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    ts_err ignore;
    char te_path[4096], tok_path[4096] = "";
    if (ts_wan_find_paths(o->model, paths, &ignore) == TS_OK && paths->text_encoder[0]) {
        snprintf(te_path, sizeof te_path, "%s", paths->text_encoder);
        snprintf(tok_path, sizeof tok_path, "%s", paths->tokenizer);
    } else {
        snprintf(te_path, sizeof te_path, "%s", o->model);
        /* diffusers keeps tokenizer/ beside text_encoder/; else the model's own directory */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", o->model);
        size_t l = strlen(dir);
        while (l > 1 && dir[l - 1] == '/') dir[--l] = 0;
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
        snprintf(tok_path, sizeof tok_path, "%s/tokenizer", dir);
    }
    free(paths);
    if (o->tokenizer) snprintf(tok_path, sizeof tok_path, "%s", o->tokenizer);
    ts_st_file *in = NULL;
    umt5_model *m = NULL;
    ts_tokenizer *tok = NULL;
    outputs outs = {0};
    int32_t *ids = NULL, *mask = NULL;
    ts_arena arena = {0};
    int64_t B = 1, L = 0;
    ts_status st = umt5_load(&m, te_path, err);
    if (st == TS_OK && o->prompt) {
        st = ts_tokenizer_open(&tok, tok_path, err);
        char *clean = NULL;
        int n = 0;
        L = 512;
        ids = calloc((size_t)L, sizeof *ids);
        mask = calloc((size_t)L, sizeof *mask);
        if (st == TS_OK && (!ids || !mask)) st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        if (st == TS_OK) st = ts_text_clean(o->prompt, &clean, err);
        if (st == TS_OK) st = ts_tokenize(tok, clean, ids, (int)L, &n, err);
        free(clean);
        for (int64_t i = 0; st == TS_OK && i < L; i++) {
            mask[i] = i < n;
            if (i >= n) ids[i] = ts_tokenizer_pad_id(tok);
        }
    } else if (st == TS_OK) {
        const ts_tensor *ti = NULL;
        st = ts_st_open(&in, o->inputs, err);
        if (st == TS_OK) st = ts_st_ids(in, "input_ids", 1, -1, -1, &ids, &ti, err);
        if (st == TS_OK) B = ti->shape[0], L = ti->shape[1], st = ts_st_ids(in, "attention_mask", 0, B, L, &mask, NULL, err);
    }
    const umt5_config *cfg = st == TS_OK ? umt5_model_config(m) : NULL;
    if (st == TS_OK && L < 1) st = TS_ERR(err, TS_ERR_SHAPE, "input_ids has no tokens");
    if (st == TS_OK && ts_arena_init(&arena, umt5_arena_bytes(cfg, L)) != 0)
        st = TS_ERR(err, TS_ERR_NOMEM, "out of memory for the activations");
    out_item *out = NULL;
    if (st == TS_OK) {
        int64_t so[3] = {B, L, cfg->dim}, si[2] = {B, L};
        out = out_add(&outs, "out", 3, so);
        out_item *oi = out ? out_add(&outs, "input_ids", 2, si) : NULL;
        out_item *om = oi ? out_add(&outs, "attention_mask", 2, si) : NULL;
        if (!om) st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        outs.batch = B, outs.N = L, outs.L = L, outs.D = cfg->dim;
    }
    ts_arena *old = c->arena;
    c->arena = &arena;
    for (int64_t b = 0; b < B && st == TS_OK; b++) {
        /* right padding only: ones, then zeros */
        const int64_t nk = mask ? umt5_mask_keys(mask + b * L, L) : L;
        if (nk < 0)
            st = TS_ERR(err, TS_ERR_INVALID_ARG, "attention_mask row %lld is not ones then zeros (right padding)",
                        (long long)b);
        else if (nk == 0) st = TS_ERR(err, TS_ERR_INVALID_ARG, "attention_mask row %lld is all zeros", (long long)b);
        for (int64_t i = 0; st == TS_OK && i < L; i++) {
            outs.items[1].data[b * L + i] = (float)ids[b * L + i];
            outs.items[2].data[b * L + i] = i < nk ? 1.0f : 0.0f;
        }
        outs.b = b;
        if (st == TS_OK)
            st = umt5_encode(c, m, ids + b * L, L, nk, out->data + b * L * cfg->dim,
                             o->dump_intermediates ? on_intermediate : NULL, &outs, err);
    }
    c->arena = old;
    if (st == TS_OK) {
        char config[512];
        snprintf(config, sizeof config,
                 "{\"model\": \"%s\", \"vocab\": %lld, \"d_model\": %lld, \"heads\": %lld, \"d_kv\": %lld, "
                 "\"d_ff\": %lld, \"layers\": %lld, \"buckets\": %d, \"max_distance\": %d}",
                 cfg->shared_bias ? "t5" : "umt5", (long long)cfg->vocab, (long long)cfg->dim, (long long)cfg->heads,
                 (long long)cfg->d_kv, (long long)cfg->d_ff, (long long)cfg->layers, cfg->buckets, cfg->max_distance);
        st = write_outputs(&outs, o, c, config, err);
    }
    ts_arena_free(&arena);
    outputs_free(&outs);
    free(ids), free(mask);
    ts_tokenizer_free(tok);
    umt5_free(m);
    ts_st_close(in);
    return st;
}

static const ts_component comp_dit = {"dit", "x [B,C,F,H,W], t [B], context [B,L,D]", run_dit};
static const ts_component comp_vae_enc = {"vae-encode", "video [B,3,T,H,W] in [-1,1]", run_vae_encode};
static const ts_component comp_vae_dec = {"vae-decode", "latents [B,16,t,h,w]", run_vae_decode};
static const ts_component comp_te = {"text-encoder",
                                     "input_ids [B,L] (+ attention_mask [B,L]), or --prompt TEXT", run_text_encoder};
static const ts_component *const registry[] = {&comp_dit, &comp_vae_enc, &comp_vae_dec, &comp_te, NULL};

const ts_component *const *ts_components(void) { return registry; }

const ts_component *ts_component_find(const char *name) {
    for (int i = 0; registry[i]; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

ts_status ts_probe_run(ts_ctx *c, const ts_probe_opts *o, ts_err *err) {
    if (!o->component || !o->model || (!o->inputs && !o->prompt) || !o->out)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "component, model, inputs (or a prompt) and out are all required");
    if (o->attn && strcmp(o->component, "dit") != 0)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "an attention schedule is the dit component's option only");
    if (o->prompt && strcmp(o->component, "text-encoder") != 0)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "a prompt is the text-encoder component's input only");
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
