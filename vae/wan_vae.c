/*
 * wan_vae.c — Wan-VAE encoder and decoder, streamed in time with causal-conv caches.
 *
 * Reference: shared/docs/models.md §2; diffusers autoencoder_kl_wan.py (the golden
 * fixtures come from it). The network is built at load time as a flat list of modules
 * (residual blocks, attention, resamples) from the config read off the tensor shapes;
 * one table of tensor keys (diffusers and original name for every tensor) is generated
 * alongside, so both layouts bind through the same code.
 *
 * Streaming: each causal 3×3×3 conv keeps the last two frames of its input stream
 * (zeros before the first chunk, i.e. the causal zero padding); a chunk is convolved as
 * [cache | chunk] with no temporal padding, which equals the whole-sequence convolution.
 * upsample3d skips its time conv on the very first chunk (frame 0) and runs frames 1..
 * as their own causal stream; downsample3d passes frame 0 through and convolves
 * [previous frame | chunk] with stride 2 afterwards — exactly the reference's cache rules.
 *
 * Activations: [C, T, H·W] channel-major per chunk, in three workspace buffers sized by
 * walking the modules; all state is allocated once per call, never per chunk.
 *
 * Memory at high resolution: a residual block's convs norm and activate their input as
 * they read it (ts_conv3d's norm_gamma), and the second adds onto the block's input in
 * place, so a block uses two buffers, not three; the caches hold the conv inputs as they
 * are (un-normed). From the last temporal upsample on, the decoder runs frame by frame
 * out of the time conv's output, kept frame-major in the third buffer (or in a buffer of
 * its own when a block there needs three: a shortcut conv, as in some small configs).
 * Checkpoint weight pages are handed back after each conv (ts_weights_release).
 */
#include "wan_vae.h"

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../attention/attention.h"
#include "../src/namemap.h"
#include "../src/ops.h"

typedef struct cconv {
    int w_slot, b_slot;   /* tensor slots */
    ts_tensor w5;         /* [cout, cin, kt, kh, kw] view (2-D convs get kt = 1) */
    float *b;             /* [cout] */
    int64_t cin, cout;
    int kt, kh;
    int id;               /* cache index (causal kt = 3 convs), −1 otherwise */
    int lvl;              /* resolution level the conv runs at */
    int partial;          /* causal kt = 3 conv with cout < cin: caches partial outputs */
    float *wp;            /* partial: fp32 [3, cout, cin, kh, kw] (W[:, :, k] as block k) */
    ts_tensor wp5;        /* partial: wp viewed as [3·cout, cin, 1, kh, kw] */
} cconv;

typedef enum vm_kind { VM_RES, VM_ATTN, VM_DOWN2D, VM_DOWN3D, VM_UP2D, VM_UP3D } vm_kind;

typedef struct vmod {
    vm_kind kind;
    int64_t cin, cout;
    int g1_slot, g2_slot;
    float *g1, *g2;       /* RMS gammas [cin], [cout] (attention: g1 only) */
    cconv c1, c2, sc;     /* residual convs; sc.w_slot < 0 when in == out */
    cconv rs, tc;         /* resample conv (2-D) and time conv */
    float *qkv_w, *qkv_b, *proj_w, *proj_b; /* attention, fp32 [3C, C], [3C], [C, C], [C] */
    int qkv_slot, qkvb_slot, proj_slot, projb_slot;
    int state;            /* first-chunk flag index for DOWN3D/UP3D */
    char hook[48];        /* diffusers' module path when this module ends one, else "" */
} vmod;

typedef struct key2 {
    char *k[2]; /* [original, diffusers] */
} key2;

struct wan_vae {
    wan_vae_config cfg;
    int half_cache;       /* decoder conv caches stored as fp16 (see wan_vae_set_half_cache) */
    ts_weights *w;
    ts_tensor *slots;
    key2 *keys;
    int n_slots, cap_slots;
    cconv enc_in, enc_out, quant, post_quant, dec_in, dec_out;
    int enc_norm_slot, dec_norm_slot;
    float *enc_norm, *dec_norm;
    vmod *mods;  /* encoder modules [0, n_enc), then decoder [n_enc, n_enc + n_dec) */
    int n_enc, n_dec, cap_mods;
    int n_conv_ids, n_states;
    int64_t enc_dims[5], dec_dims[5];
    wan_vae_hook_fn hook;
    void *hook_user;
    float *lat_mean, *lat_std; /* [z_dim] */
};

/* ------------------------------------------------------------------ building */

static int add_slot(wan_vae *v, const char *orig, const char *diff) {
    if (v->n_slots == v->cap_slots) {
        int cap = v->cap_slots ? 2 * v->cap_slots : 128;
        key2 *k = realloc(v->keys, (size_t)cap * sizeof *k);
        if (!k) return -1;
        v->keys = k;
        v->cap_slots = cap;
    }
    v->keys[v->n_slots].k[0] = strdup(orig);
    v->keys[v->n_slots].k[1] = strdup(diff);
    return v->n_slots++;
}

static void add_conv(wan_vae *v, cconv *cv, const char *po, const char *pd, int64_t cin,
                     int64_t cout, int kt, int kh, int causal, int lvl) {
    char o[160], d[160];
    snprintf(o, sizeof o, "%s.weight", po);
    snprintf(d, sizeof d, "%s.weight", pd);
    cv->w_slot = add_slot(v, o, d);
    snprintf(o, sizeof o, "%s.bias", po);
    snprintf(d, sizeof d, "%s.bias", pd);
    cv->b_slot = add_slot(v, o, d);
    cv->cin = cin, cv->cout = cout, cv->kt = kt, cv->kh = kh, cv->lvl = lvl;
    cv->id = causal && kt == 3 ? v->n_conv_ids++ : -1;
    /* A conv that narrows the channels (the decoder head: 96 -> 3) keeps the two partial
     * output frames W0·x[t-1] + W1·x[t] and W0·x[t] instead of its last two input frames:
     * 2·cout instead of 2·cin floats per pixel (the decoder head's cache at 480x832 drops
     * from 307 MB to 10 MB). Same sums, added in another order. */
    cv->partial = cv->id >= 0 && cout < cin;
}

static vmod *add_mod(wan_vae *v, vm_kind kind, int64_t cin, int64_t cout) {
    if (v->n_enc + v->n_dec == v->cap_mods) {
        int cap = v->cap_mods ? 2 * v->cap_mods : 64;
        vmod *m = realloc(v->mods, (size_t)cap * sizeof *m);
        if (!m) return NULL;
        v->mods = m;
        v->cap_mods = cap;
    }
    vmod *m = &v->mods[v->n_enc + v->n_dec];
    memset(m, 0, sizeof *m);
    m->kind = kind, m->cin = cin, m->cout = cout;
    m->sc.w_slot = -1;
    m->state = -1;
    return m;
}

static void build_res(wan_vae *v, vmod *m, const char *po, const char *pd, int lvl) {
    char o[160], d[160];
    snprintf(o, sizeof o, "%s.residual.0.gamma", po);
    snprintf(d, sizeof d, "%s.norm1.gamma", pd);
    m->g1_slot = add_slot(v, o, d);
    snprintf(o, sizeof o, "%s.residual.2", po);
    snprintf(d, sizeof d, "%s.conv1", pd);
    add_conv(v, &m->c1, o, d, m->cin, m->cout, 3, 3, 1, lvl);
    snprintf(o, sizeof o, "%s.residual.3.gamma", po);
    snprintf(d, sizeof d, "%s.norm2.gamma", pd);
    m->g2_slot = add_slot(v, o, d);
    snprintf(o, sizeof o, "%s.residual.6", po);
    snprintf(d, sizeof d, "%s.conv2", pd);
    add_conv(v, &m->c2, o, d, m->cout, m->cout, 3, 3, 1, lvl);
    if (m->cin != m->cout) {
        snprintf(o, sizeof o, "%s.shortcut", po);
        snprintf(d, sizeof d, "%s.conv_shortcut", pd);
        add_conv(v, &m->sc, o, d, m->cin, m->cout, 1, 1, 1, lvl);
    }
}

static void build_attn(wan_vae *v, vmod *m, const char *po, const char *pd) {
    char o[160], d[160];
    snprintf(o, sizeof o, "%s.norm.gamma", po);
    snprintf(d, sizeof d, "%s.norm.gamma", pd);
    m->g1_slot = add_slot(v, o, d);
    const char *nm[4] = {"to_qkv.weight", "to_qkv.bias", "proj.weight", "proj.bias"};
    int *sl[4] = {&m->qkv_slot, &m->qkvb_slot, &m->proj_slot, &m->projb_slot};
    for (int i = 0; i < 4; i++) {
        snprintf(o, sizeof o, "%s.%s", po, nm[i]);
        snprintf(d, sizeof d, "%s.%s", pd, nm[i]);
        *sl[i] = add_slot(v, o, d);
    }
}

static void build_mid(wan_vae *v, int64_t C, const char *side, int lvl) {
    char o[96], d[96];
    snprintf(o, sizeof o, "%s.middle.0", side);
    snprintf(d, sizeof d, "%s.mid_block.resnets.0", side);
    build_res(v, add_mod(v, VM_RES, C, C), o, d, lvl);
    if (!strcmp(side, "encoder")) v->n_enc++; else v->n_dec++;
    snprintf(o, sizeof o, "%s.middle.1", side);
    snprintf(d, sizeof d, "%s.mid_block.attentions.0", side);
    build_attn(v, add_mod(v, VM_ATTN, C, C), o, d);
    if (!strcmp(side, "encoder")) v->n_enc++; else v->n_dec++;
    snprintf(o, sizeof o, "%s.middle.2", side);
    snprintf(d, sizeof d, "%s.mid_block.resnets.1", side);
    vmod *last = add_mod(v, VM_RES, C, C);
    build_res(v, last, o, d, lvl);
    snprintf(last->hook, sizeof last->hook, "%s.mid_block", side);
    if (!strcmp(side, "encoder")) v->n_enc++; else v->n_dec++;
}

/* The module lists and the key table for a config (diffusers' WanEncoder3d/Decoder3d
 * with is_residual = False, attn_scales = []). */
static void build(wan_vae *v) {
    const wan_vae_config *c = &v->cfg;
    int64_t d[5];
    d[0] = c->base_dim;
    for (int i = 0; i < 4; i++) d[i + 1] = c->base_dim * c->dim_mult[i];
    memcpy(v->enc_dims, d, sizeof d);
    char o[96], df[96];
    add_conv(v, &v->enc_in, "encoder.conv1", "encoder.conv_in", 3, d[0], 3, 3, 1, 0);
    int k = 0;
    for (int i = 0; i < 4; i++) {
        int64_t in = d[i];
        for (int r = 0; r < c->num_res_blocks; r++, k++) {
            snprintf(o, sizeof o, "encoder.downsamples.%d", k);
            snprintf(df, sizeof df, "encoder.down_blocks.%d", k);
            vmod *m = add_mod(v, VM_RES, in, d[i + 1]);
            build_res(v, m, o, df, i);
            snprintf(m->hook, sizeof m->hook, "encoder.down_blocks.%d", k);
            v->n_enc++;
            in = d[i + 1];
        }
        if (i != 3) {
            int t3 = c->temporal_downsample[i];
            vmod *m = add_mod(v, t3 ? VM_DOWN3D : VM_DOWN2D, d[i + 1], d[i + 1]);
            snprintf(m->hook, sizeof m->hook, "encoder.down_blocks.%d", k);
            snprintf(o, sizeof o, "encoder.downsamples.%d.resample.1", k);
            snprintf(df, sizeof df, "encoder.down_blocks.%d.resample.1", k);
            add_conv(v, &m->rs, o, df, d[i + 1], d[i + 1], 1, 3, 0, i);
            if (t3) {
                snprintf(o, sizeof o, "encoder.downsamples.%d.time_conv", k);
                snprintf(df, sizeof df, "encoder.down_blocks.%d.time_conv", k);
                add_conv(v, &m->tc, o, df, d[i + 1], d[i + 1], 3, 1, 1, i + 1); /* cache: last frame */
                m->state = v->n_states++;
            }
            v->n_enc++;
            k++;
        }
    }
    build_mid(v, d[4], "encoder", 3);
    v->enc_norm_slot = add_slot(v, "encoder.head.0.gamma", "encoder.norm_out.gamma");
    add_conv(v, &v->enc_out, "encoder.head.2", "encoder.conv_out", d[4], 2 * c->z_dim, 3, 3, 1, 3);
    add_conv(v, &v->quant, "conv1", "quant_conv", 2 * c->z_dim, 2 * c->z_dim, 1, 1, 0, 0);
    add_conv(v, &v->post_quant, "conv2", "post_quant_conv", c->z_dim, c->z_dim, 1, 1, 0, 0);

    /* decoder: dims = [d4, d4, d3, d2, d1] (dim_mult reversed, first repeated) */
    int64_t e[5] = {d[4], d[4], d[3], d[2], d[1]};
    memcpy(v->dec_dims, e, sizeof e);
    add_conv(v, &v->dec_in, "decoder.conv1", "decoder.conv_in", c->z_dim, e[0], 3, 3, 1, 0);
    build_mid(v, e[0], "decoder", 0);
    k = 0;
    for (int i = 0; i < 4; i++) {
        int64_t in = i > 0 ? e[i] / 2 : e[i], out = e[i + 1];
        for (int r = 0; r < c->num_res_blocks + 1; r++, k++) {
            snprintf(o, sizeof o, "decoder.upsamples.%d", k);
            snprintf(df, sizeof df, "decoder.up_blocks.%d.resnets.%d", i, r);
            vmod *m = add_mod(v, VM_RES, in, out);
            build_res(v, m, o, df, i);
            if (i == 3 && r == c->num_res_blocks) snprintf(m->hook, sizeof m->hook, "decoder.up_blocks.%d", i);
            v->n_dec++;
            in = out;
        }
        if (i != 3) {
            int t3 = c->temporal_downsample[2 - i];
            vmod *m = add_mod(v, t3 ? VM_UP3D : VM_UP2D, out, out / 2);
            snprintf(m->hook, sizeof m->hook, "decoder.up_blocks.%d", i);
            snprintf(o, sizeof o, "decoder.upsamples.%d.resample.1", k);
            snprintf(df, sizeof df, "decoder.up_blocks.%d.upsamplers.0.resample.1", i);
            add_conv(v, &m->rs, o, df, out, out / 2, 1, 3, 0, i + 1);
            if (t3) {
                snprintf(o, sizeof o, "decoder.upsamples.%d.time_conv", k);
                snprintf(df, sizeof df, "decoder.up_blocks.%d.upsamplers.0.time_conv", i);
                add_conv(v, &m->tc, o, df, out, 2 * out, 3, 1, 1, i);
                m->state = v->n_states++;
            }
            v->n_dec++;
            k++;
        }
    }
    v->dec_norm_slot = add_slot(v, "decoder.head.0.gamma", "decoder.norm_out.gamma");
    add_conv(v, &v->dec_out, "decoder.head.2", "decoder.conv_out", e[4], 3, 3, 3, 1, 3);
}

/* ------------------------------------------------------------------ loading */

static const ts_tensor *peek_any(const ts_weights *w, const char *a, const char *b) {
    const ts_tensor *t = ts_weights_peek(w, a);
    return t ? t : ts_weights_peek(w, b);
}

static ts_status config_from_weights(const ts_weights *w, wan_vae_config *c, ts_err *err) {
    memset(c, 0, sizeof *c);
    const ts_tensor *ci = peek_any(w, "encoder.conv1.weight", "encoder.conv_in.weight");
    const ts_tensor *pq = peek_any(w, "conv2.weight", "post_quant_conv.weight");
    if (!ci || !pq || ci->ndim != 5 || pq->ndim != 5)
        return TS_ERR(err, TS_ERR_MISSING, "Wan VAE: checkpoint lacks encoder.conv_in / post_quant_conv (is this a Wan2.1 VAE?)");
    int diff = ts_weights_peek(w, "encoder.conv_in.weight") != NULL;
    c->base_dim = ci->shape[0];
    c->z_dim = pq->shape[0];
    if (diff) {
        c->num_res_blocks = ts_namemap_count_blocks(w, NULL, "decoder.up_blocks.0.resnets.") - 1;
    } else {
        int n = ts_namemap_count_blocks(w, NULL, "decoder.upsamples.");
        c->num_res_blocks = (n - 3) / 4 - 1;
    }
    if (c->num_res_blocks < 1 || c->base_dim < 1)
        return TS_ERR(err, TS_ERR_FORMAT, "Wan VAE: cannot read the block structure from the tensor names");
    const char *pre = diff ? "encoder.down_blocks" : "encoder.downsamples";
    const char *res1 = diff ? "conv1" : "residual.2";
    for (int i = 0; i < 4; i++) {
        char name[160];
        snprintf(name, sizeof name, "%s.%d.%s.weight", pre, i * (c->num_res_blocks + 1), res1);
        const ts_tensor *t = ts_weights_peek(w, name);
        if (!t || t->shape[0] % c->base_dim)
            return TS_ERR(err, TS_ERR_MISSING, "Wan VAE: checkpoint lacks '%s'", name);
        c->dim_mult[i] = (int)(t->shape[0] / c->base_dim);
        if (i < 3) {
            snprintf(name, sizeof name, "%s.%d.time_conv.weight", pre,
                     i * (c->num_res_blocks + 1) + c->num_res_blocks);
            c->temporal_downsample[i] = ts_weights_peek(w, name) != NULL;
        }
    }
    return TS_OK;
}

static ts_status bind_conv(wan_vae *v, cconv *cv, ts_err *err) {
    ts_tensor *w = &v->slots[cv->w_slot];
    int64_t s5[5] = {cv->cout, cv->cin, cv->kt, cv->kh, cv->kh};
    if (w->ndim == 4) { /* 2-D conv [cout, cin, kh, kw] → [cout, cin, 1, kh, kw] */
        int64_t s4[4] = {cv->cout, cv->cin, cv->kh, cv->kh};
        TS_TRY(ts_check_shape(w, "", 4, s4, err));
    } else {
        TS_TRY(ts_check_shape(w, "", 5, s5, err));
    }
    cv->w5 = ts_tensor_make(w->dtype, 5, s5, w->data);
    cv->w5.name = w->name;
    if (cv->partial) { /* [cout, cin, 3, kh, kw] -> [3, cout, cin, 1, kh, kw] */
        float *full = NULL;
        TS_TRY(ts_tensor_to_f32_alloc(w, &full, err));
        const int64_t taps = (int64_t)cv->kh * cv->kh, n = cv->cout * cv->cin * 3 * taps;
        cv->wp = malloc((size_t)n * sizeof(float));
        if (!cv->wp) {
            free(full);
            return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        }
        for (int64_t co = 0; co < cv->cout; co++)
            for (int64_t ci = 0; ci < cv->cin; ci++)
                for (int k = 0; k < 3; k++)
                    memcpy(cv->wp + ((k * cv->cout + co) * cv->cin + ci) * taps,
                           full + ((co * cv->cin + ci) * 3 + k) * taps, (size_t)taps * sizeof(float));
        free(full);
        int64_t sp[5] = {3 * cv->cout, cv->cin, 1, cv->kh, cv->kh};
        cv->wp5 = ts_tensor_make(TS_DTYPE_F32, 5, sp, cv->wp);
    }
    int64_t sb[1] = {cv->cout};
    TS_TRY(ts_check_shape(&v->slots[cv->b_slot], "", 1, sb, err));
    return ts_tensor_to_f32_alloc(&v->slots[cv->b_slot], &cv->b, err);
}

static ts_status load_gamma(wan_vae *v, int slot, int64_t C, float **out, ts_err *err) {
    const ts_tensor *t = &v->slots[slot];
    if (ts_tensor_numel(t) != C || t->shape[0] != C)
        return TS_ERR(err, TS_ERR_SHAPE, "tensor '%s' should hold %lld gammas", t->name, (long long)C);
    return ts_tensor_to_f32_alloc(t, out, err);
}

static ts_status bind_all(wan_vae *v, ts_err *err) {
    cconv *top[] = {&v->enc_in, &v->enc_out, &v->quant, &v->post_quant, &v->dec_in, &v->dec_out};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) TS_TRY(bind_conv(v, top[i], err));
    TS_TRY(load_gamma(v, v->enc_norm_slot, v->enc_out.cin, &v->enc_norm, err));
    TS_TRY(load_gamma(v, v->dec_norm_slot, v->dec_out.cin, &v->dec_norm, err));
    for (int i = 0; i < v->n_enc + v->n_dec; i++) {
        vmod *m = &v->mods[i];
        switch (m->kind) {
        case VM_RES:
            TS_TRY(bind_conv(v, &m->c1, err));
            TS_TRY(bind_conv(v, &m->c2, err));
            if (m->sc.w_slot >= 0) TS_TRY(bind_conv(v, &m->sc, err));
            TS_TRY(load_gamma(v, m->g1_slot, m->cin, &m->g1, err));
            TS_TRY(load_gamma(v, m->g2_slot, m->cout, &m->g2, err));
            break;
        case VM_ATTN: {
            int64_t C = m->cin;
            TS_TRY(load_gamma(v, m->g1_slot, C, &m->g1, err));
            int64_t sq[4] = {3 * C, C, 1, 1}, sp[4] = {C, C, 1, 1}, b3[1] = {3 * C}, b1[1] = {C};
            TS_TRY(ts_check_shape(&v->slots[m->qkv_slot], "", 4, sq, err));
            TS_TRY(ts_check_shape(&v->slots[m->proj_slot], "", 4, sp, err));
            TS_TRY(ts_check_shape(&v->slots[m->qkvb_slot], "", 1, b3, err));
            TS_TRY(ts_check_shape(&v->slots[m->projb_slot], "", 1, b1, err));
            TS_TRY(ts_tensor_to_f32_alloc(&v->slots[m->qkv_slot], &m->qkv_w, err));
            TS_TRY(ts_tensor_to_f32_alloc(&v->slots[m->qkvb_slot], &m->qkv_b, err));
            TS_TRY(ts_tensor_to_f32_alloc(&v->slots[m->proj_slot], &m->proj_w, err));
            TS_TRY(ts_tensor_to_f32_alloc(&v->slots[m->projb_slot], &m->proj_b, err));
            break;
        }
        default:
            TS_TRY(bind_conv(v, &m->rs, err));
            if (m->kind == VM_DOWN3D || m->kind == VM_UP3D) TS_TRY(bind_conv(v, &m->tc, err));
        }
    }
    return TS_OK;
}

static ts_status latent_defaults(wan_vae *v, ts_err *err);

ts_status wan_vae_load_from(wan_vae **out, ts_weights *w, ts_err *err) {
    *out = NULL;
    wan_vae *v = calloc(1, sizeof *v);
    if (!v) {
        ts_weights_close(w);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    v->w = w;
    ts_status st = config_from_weights(w, &v->cfg, err);
    if (st == TS_OK) {
        build(v);
        v->slots = calloc((size_t)v->n_slots, sizeof *v->slots);
        ts_name_entry *e = calloc((size_t)v->n_slots, sizeof *e);
        if (!v->slots || !e) {
            st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        } else {
            for (int i = 0; i < v->n_slots; i++) {
                e[i].offset = (size_t)i * sizeof(ts_tensor);
                e[i].key[0] = v->keys[i].k[0];
                e[i].key[1] = v->keys[i].k[1];
            }
            ts_namemap map = {e, v->n_slots, 0, 0, 0, NULL, "Wan VAE"};
            st = ts_namemap_bind(&map, w, v->slots, NULL, err);
        }
        free(e);
    }
    if (st == TS_OK) st = bind_all(v, err);
    if (st == TS_OK) st = latent_defaults(v, err); /* wan_vae_load then reads config.json */
    if (st != TS_OK) {
        wan_vae_free(v);
        return st;
    }
    /* binding copied the biases, norms, attention and split-tap weights; the convs read
     * their own pages again when they run */
    for (int i = 0; i < v->n_slots; i++) ts_weights_release(w, v->slots[i].data, ts_tensor_nbytes(&v->slots[i]));
    *out = v;
    return TS_OK;
}

/* Wan2.1 latent statistics (wan/modules/vae.py; AutoencoderKLWan defaults). */
static const float wan_latent_mean[16] = {-0.7571f, -0.7089f, -0.9113f, 0.1075f, -0.1745f, 0.9653f,
                                          -0.1517f, 1.5508f,  0.4134f,  -0.0715f, 0.5517f, -0.3632f,
                                          -0.1922f, -0.9497f, 0.2503f,  -0.2921f};
static const float wan_latent_std[16] = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f,
                                         2.6052f, 2.0743f, 3.2687f, 2.1526f, 2.8652f, 1.5579f,
                                         1.6382f, 1.1253f, 2.8251f, 1.9160f};

/* The default latent statistics: Wan2.1's for z_dim 16, else 0 / 1. */
static ts_status latent_defaults(wan_vae *v, ts_err *err) {
    const int64_t Z = v->cfg.z_dim;
    v->lat_mean = malloc((size_t)Z * sizeof(float));
    v->lat_std = malloc((size_t)Z * sizeof(float));
    if (!v->lat_mean || !v->lat_std) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < Z; i++) {
        v->lat_mean[i] = Z == 16 ? wan_latent_mean[i] : 0.0f;
        v->lat_std[i] = Z == 16 ? wan_latent_std[i] : 1.0f;
    }
    return TS_OK;
}

/* config.json's latents_mean / latents_std (z_dim numbers each) over the defaults. */
static ts_status latent_stats_from_config(wan_vae *v, const char *path, ts_err *err) {
    const int64_t Z = v->cfg.z_dim;
    char *text = ts_config_json_near(path);
    if (!text) return TS_OK;
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "latents_mean"), *s = cJSON_GetObjectItemCaseSensitive(j, "latents_std");
    ts_status st = TS_OK;
    if (cJSON_IsArray(m) || cJSON_IsArray(s)) {
        int ok = cJSON_IsArray(m) && cJSON_IsArray(s) && cJSON_GetArraySize(m) == Z && cJSON_GetArraySize(s) == Z;
        for (int64_t i = 0; ok && i < Z; i++) {
            const cJSON *a = cJSON_GetArrayItem(m, (int)i), *b = cJSON_GetArrayItem(s, (int)i);
            ok = cJSON_IsNumber(a) && cJSON_IsNumber(b) && b->valuedouble > 0;
            if (ok) v->lat_mean[i] = (float)a->valuedouble, v->lat_std[i] = (float)b->valuedouble;
        }
        if (!ok)
            st = TS_ERR(err, TS_ERR_FORMAT, "Wan VAE: config.json's latents_mean / latents_std must be %lld numbers each "
                        "(std > 0)", (long long)Z);
    }
    cJSON_Delete(j);
    return st;
}

ts_status wan_vae_load(wan_vae **out, const char *path, ts_err *err) {
    *out = NULL;
    ts_weights *w = NULL;
    TS_TRY(ts_weights_open(&w, path, err));
    TS_TRY(wan_vae_load_from(out, w, err));
    ts_status st = latent_stats_from_config(*out, path, err);
    if (st != TS_OK) wan_vae_free(*out), *out = NULL;
    return st;
}

const wan_vae_config *wan_vae_model_config(const wan_vae *v) { return &v->cfg; }

void wan_vae_set_half_cache(wan_vae *v, int on) { v->half_cache = on != 0; }

void wan_vae_set_hook(wan_vae *v, wan_vae_hook_fn fn, void *user) { v->hook = fn, v->hook_user = user; }

static void free_conv(cconv *c) { free(c->b), free(c->wp); }

void wan_vae_free(wan_vae *v) {
    if (!v) return;
    cconv *top[] = {&v->enc_in, &v->enc_out, &v->quant, &v->post_quant, &v->dec_in, &v->dec_out};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) free_conv(top[i]);
    for (int i = 0; i < v->n_enc + v->n_dec; i++) {
        vmod *m = &v->mods[i];
        free_conv(&m->c1), free_conv(&m->c2), free_conv(&m->sc), free_conv(&m->rs), free_conv(&m->tc);
        free(m->g1), free(m->g2), free(m->qkv_w), free(m->qkv_b), free(m->proj_w), free(m->proj_b);
    }
    for (int i = 0; i < v->n_slots; i++) free(v->keys[i].k[0]), free(v->keys[i].k[1]);
    free(v->keys);
    free(v->mods);
    free(v->slots);
    free(v->enc_norm);
    free(v->dec_norm);
    free(v->lat_mean), free(v->lat_std);
    ts_weights_close(v->w);
    free(v);
}

/* ------------------------------------------------------------------ running */

typedef struct vrun {
    ts_ctx *c;
    const wan_vae *v;
    float *buf[3];
    size_t cap;      /* floats per buffer */
    float **cache;   /* per causal conv id: [cin, 2, H, W] */
    uint16_t **hcache; /* the same in fp16 when half caches are on (decoder 3x3x3 convs) */
    float *ctmp;     /* a half cache widened to fp32 for the conv */
    float *zbuf;     /* partial convs: the three tap outputs [3·cout, T, H, W] */
    size_t zcap;
    int *started;    /* per resample state: first chunk seen */
    float *hold;     /* decoder: the chunk at the split point, fed on frame by frame, when it
                      * cannot live in a work buffer (see split_needs_hold) */
    size_t hold_cap;
    float *reserved; /* the work buffer holding the split chunk meanwhile: pick skips it */
    ts_err *err;
} vrun;

#define OPT(x)                                                                                \
    do {                                                                                      \
        ts_status s_ = (x);                                                                   \
        if (s_ != TS_OK) return TS_ERR(r->err, s_, "Wan VAE: op failed at %s:%d (%s)",        \
                                       __FILE__, __LINE__, ts_status_str(s_));                \
    } while (0)

/* A workspace buffer that is none of the given ones. */
static float *pick(vrun *r, const float *a, const float *b) {
    for (int i = 0; i < 3; i++)
        if (r->buf[i] != a && r->buf[i] != b && r->buf[i] != r->reserved) return r->buf[i];
    return NULL;
}

static ts_status need(vrun *r, int64_t n) {
    if ((size_t)n > r->cap)
        return TS_ERR(r->err, TS_ERR_INTERNAL, "Wan VAE: workspace too small (%lld > %zu floats)",
                      (long long)n, r->cap);
    return TS_OK;
}

/* fp16 <-> fp32 for the half caches: F16C when the build has it (8 at a time), else the
 * scalar conversions of src/tensor.c. Round to nearest even either way. */
static void f16_to_f32(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
#if defined(__F16C__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
#endif
    for (; i < n; i++) dst[i] = ts_f16_to_f32(src[i]);
}

static void f32_to_f16(uint16_t *dst, const float *src, int64_t n) {
    int64_t i = 0;
#if defined(__F16C__)
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
#endif
    for (; i < n; i++) dst[i] = ts_f32_to_f16(src[i]);
}

/* ts_conv3d with a checkpoint weight, whose pages are then handed back (ts_weights_release):
 * the decoder streams through all its weights once per chunk, so the process holds only
 * the conv in use (-0.27 GiB at the real config) for a minor fault per page on the next. */
static ts_status conv3d_w(vrun *r, float *y, const float *x, const ts_conv3d_params *p, const ts_tensor *w,
                          const float *b) {
    OPT(ts_conv3d(r->c, y, x, p, w, b));
    ts_weights_release(r->v->w, w->data, ts_tensor_nbytes(w));
    return TS_OK;
}

/* y [cout, T, H, W] = conv(x [cin, T, H, W]). Causal kt = 3 convs read [cache | x]
 * (the cache as the conv's prefix frames) and keep the last two input frames. */
static ts_status conv_run_n(vrun *r, const cconv *cv, const float *x, const float *g, int acc, int64_t T,
                            int64_t H, int64_t W, float *y) {
    const int64_t HW = H * W, C = cv->cin;
    const int ps = cv->kh / 2;
    ts_conv3d_params p = {C, T, H, W, {1, 1, 1}, {0, 0, ps, ps, ps, ps}, NULL, 0, 0, g, acc};
    TS_TRY(need(r, cv->cout * T * HW));
    if ((g || acc) && cv->partial) return TS_ERR(r->err, TS_ERR_INTERNAL, "Wan VAE: a split-tap conv with a norm");
    if (cv->id < 0) {
        TS_TRY(conv3d_w(r, y, x, &p, &cv->w5, cv->b));
        return TS_OK;
    }
    if (cv->partial) { /* y[t] = P0 + W2·x[t]; P0 = P1 + W1·x[t]; P1 = W0·x[t] */
        const int64_t Co = cv->cout;
        if ((size_t)(3 * Co * T * HW) > r->zcap) { /* sized for one frame; grows once */
            float *z = realloc(r->zbuf, (size_t)(3 * Co * T * HW) * sizeof(float));
            if (!z) return TS_ERR(r->err, TS_ERR_NOMEM, "Wan VAE: out of memory");
            r->zbuf = z, r->zcap = (size_t)(3 * Co * T * HW);
        }
        float *Z = r->zbuf, *P = r->cache[cv->id]; /* P [2, cout, HW] */
        OPT(ts_conv3d(r->c, Z, x, &p, &cv->wp5, NULL));
        for (int64_t t = 0; t < T; t++)
            for (int64_t co = 0; co < Co; co++) {
                float *p0 = P + co * HW, *p1 = P + (Co + co) * HW, *yo = y + (co * T + t) * HW;
                const float *z0 = Z + (co * T + t) * HW, *z1 = Z + ((Co + co) * T + t) * HW;
                const float *z2 = Z + ((2 * Co + co) * T + t) * HW;
                const float bias = cv->b[co];
                for (int64_t i = 0; i < HW; i++) {
                    yo[i] = (p0[i] + z2[i]) + bias;
                    p0[i] = p1[i] + z1[i];
                    p1[i] = z0[i];
                }
            }
        return TS_OK;
    }
    uint16_t *hc = r->hcache ? r->hcache[cv->id] : NULL;
    float *cache = hc ? r->ctmp : r->cache[cv->id];
    if (hc) f16_to_f32(cache, hc, C * 2 * HW);
    p.prefix = cache, p.prefix_t = 2;
    TS_TRY(conv3d_w(r, y, x, &p, &cv->w5, cv->b));
    if (hc) {
        for (int64_t ch = 0; ch < C; ch++) { /* last two frames of [cache | x], rounded */
            uint16_t *cc = hc + ch * 2 * HW;
            const float *xc = x + ch * T * HW;
            const float *f0 = T >= 2 ? xc + (T - 2) * HW : cache + ch * 2 * HW + HW;
            const float *f1 = T >= 2 ? xc + (T - 1) * HW : xc;
            f32_to_f16(cc, f0, HW);
            f32_to_f16(cc + HW, f1, HW);
        }
        return TS_OK;
    }
    for (int64_t ch = 0; ch < C; ch++) { /* cache = last two frames of [cache | x] */
        float *cc = cache + ch * 2 * HW;
        const float *xc = x + ch * T * HW;
        if (T >= 2) {
            memcpy(cc, xc + (T - 2) * HW, (size_t)(2 * HW) * sizeof(float));
        } else {
            memmove(cc, cc + HW, (size_t)HW * sizeof(float));
            memcpy(cc + HW, xc, (size_t)HW * sizeof(float));
        }
    }
    return TS_OK;
}

/* y = conv(x); the cache keeps x's frames as they are (a conv that norms its input norms
 * the cached frames as it reads them too). */
static ts_status conv_run(vrun *r, const cconv *cv, const float *x, int64_t T, int64_t H, int64_t W, float *y) {
    return conv_run_n(r, cv, x, NULL, 0, T, H, W, y);
}

/* RMS (L2) norm over channels then SiLU, [C, S] in place. */
static ts_status norm_silu(vrun *r, float *x, int64_t C, int64_t S, const float *g) {
    OPT(ts_l2_norm_ch(r->c, x, x, C, S, g));
    OPT(ts_unary(r->c, TS_UNARY_SILU, x, x, C * S));
    return TS_OK;
}

/* Hs = X or shortcut(X); Z = conv1(SiLU(norm1(X))); Hs += conv2(SiLU(norm2(Z))). The convs
 * norm their input as they read it, so a block needs two work buffers (three with a
 * shortcut), not a normed copy of X besides. */
static ts_status res_run(vrun *r, const vmod *m, float **xp, int64_t T, int64_t H, int64_t W) {
    float *X = *xp, *Hs = X;
    if (m->sc.w_slot >= 0) {
        Hs = pick(r, X, NULL);
        if (!Hs) return TS_ERR(r->err, TS_ERR_INTERNAL, "Wan VAE: no work buffer for the shortcut");
        TS_TRY(conv_run(r, &m->sc, X, T, H, W, Hs));
    }
    float *Z = pick(r, X, Hs);
    if (!Z) return TS_ERR(r->err, TS_ERR_INTERNAL, "Wan VAE: no work buffer for a residual block");
    TS_TRY(conv_run_n(r, &m->c1, X, m->g1, 0, T, H, W, Z));
    TS_TRY(conv_run_n(r, &m->c2, Z, m->g2, 1, T, H, W, Hs));
    *xp = Hs;
    return TS_OK;
}

/* Single-head attention over the H·W positions of each frame, residual. In place. */
static ts_status attn_run(vrun *r, const vmod *m, float *X, int64_t T, int64_t H, int64_t W) {
    const int64_t C = m->cin, HW = H * W;
    float *A = pick(r, X, NULL), *B = pick(r, X, A);
    TS_TRY(need(r, 4 * C * HW));
    float *F = A, *QKV = A + C * HW;           /* [C, HW], [HW, 3C] */
    float *Q = B, *K = B + C * HW, *V = B + 2 * C * HW, *O = B + 3 * C * HW; /* [HW, C] */
    ts_attn_site site = {TS_ATTN_CROSS, -1, -1, 0, {1, H, W}, 0.0f, NULL, NULL, 0, 0};
    for (int64_t t = 0; t < T; t++) {
        for (int64_t ch = 0; ch < C; ch++)
            memcpy(F + ch * HW, X + (ch * T + t) * HW, (size_t)HW * sizeof(float));
        OPT(ts_l2_norm_ch(r->c, F, F, C, HW, m->g1));
        /* QKV [HW, 3C] = Fᵀ · Wᵀ */
        OPT(ts_gemm(r->c, 1, 1, HW, 3 * C, C, 1.0f, F, HW, m->qkv_w, C, 0.0f, QKV, 3 * C));
        for (int64_t s = 0; s < HW; s++) {
            const float *row = QKV + s * 3 * C;
            for (int64_t ch = 0; ch < C; ch++) {
                Q[s * C + ch] = row[ch] + m->qkv_b[ch];
                K[s * C + ch] = row[C + ch] + m->qkv_b[C + ch];
                V[s * C + ch] = row[2 * C + ch] + m->qkv_b[2 * C + ch];
            }
        }
        TS_TRY(ts_attention(r->c, NULL, &site, HW, HW, 1, C, Q, K, V, O, r->err));
        /* F [C, HW] = Wp · Oᵀ + b, then residual into the frame */
        OPT(ts_gemm(r->c, 0, 1, C, HW, C, 1.0f, m->proj_w, C, O, C, 0.0f, F, HW));
        for (int64_t ch = 0; ch < C; ch++) {
            float *xr = X + (ch * T + t) * HW;
            const float *fr = F + ch * HW;
            for (int64_t s = 0; s < HW; s++) xr[s] += fr[s] + m->proj_b[ch];
        }
    }
    return TS_OK;
}

/* downsample2d (+ time conv for 3d): per frame zero-pad right/bottom, conv 3x3 stride 2. */
static ts_status down_run(vrun *r, const vmod *m, float **xp, int64_t *T, int64_t *H, int64_t *W) {
    float *X = *xp, *Y = pick(r, X, NULL);
    const int64_t C = m->cin, Ho = *H / 2, Wo = *W / 2;
    ts_conv3d_params p = {C, *T, *H, *W, {1, 2, 2}, {0, 0, 0, 1, 0, 1}, NULL, 0, 0, NULL, 0};
    TS_TRY(need(r, C * *T * Ho * Wo));
    TS_TRY(conv3d_w(r, Y, X, &p, &m->rs.w5, m->rs.b));
    *H = Ho, *W = Wo, *xp = Y;
    if (m->kind != VM_DOWN3D) return TS_OK;
    const int64_t HW = Ho * Wo;
    float *cache = r->cache[m->tc.id]; /* one frame, [C, 1, HW] */
    if (!r->started[m->state]) { /* frame 0 passes; remember the chunk's last frame */
        r->started[m->state] = 1;
        for (int64_t ch = 0; ch < C; ch++)
            memcpy(cache + ch * HW, Y + (ch * *T + *T - 1) * HW, (size_t)HW * sizeof(float));
        return TS_OK;
    }
    float *Z = pick(r, Y, NULL);
    int64_t T1 = *T + 1, To = (T1 - 3) / 2 + 1;
    if (To < 1) return TS_ERR(r->err, TS_ERR_SHAPE, "Wan VAE: encoder chunk too short");
    TS_TRY(need(r, C * To * HW));
    ts_conv3d_params pt = {C, *T, Ho, Wo, {2, 1, 1}, {0, 0, 0, 0, 0, 0}, cache, 1, 0, NULL, 0};
    TS_TRY(conv3d_w(r, Z, Y, &pt, &m->tc.w5, m->tc.b)); /* [previous frame | chunk] */
    for (int64_t ch = 0; ch < C; ch++)
        memcpy(cache + ch * HW, Y + (ch * *T + *T - 1) * HW, (size_t)HW * sizeof(float));
    *T = To, *xp = Z;
    return TS_OK;
}

/* upsample3d's temporal half: after the first chunk, the time conv C → 2C turns each
 * frame into two (channels [0, C) are frame 2t, [C, 2C) frame 2t+1). frame_major (the
 * decoder's split): the output is [2T, C, HW], each frame one block that the
 * frame-by-frame half reads in place; else [C, 2T, HW]. Frame 0's [C, 1, HW] is both. */
static ts_status up_time_run(vrun *r, const vmod *m, float **xp, int64_t *T, int64_t H, int64_t W, int frame_major) {
    if (!r->started[m->state]) { /* frame 0 skips the time conv */
        r->started[m->state] = 1;
        return TS_OK;
    }
    float *X = *xp, *Y = pick(r, X, NULL), *Z = pick(r, X, Y);
    const int64_t C = m->cin, HW = H * W, T2 = 2 * *T;
    TS_TRY(conv_run(r, &m->tc, X, *T, H, W, Y)); /* [2C, T, HW] */
    TS_TRY(need(r, C * T2 * HW));
    for (int64_t ch = 0; ch < C; ch++)
        for (int64_t t = 0; t < *T; t++)
            for (int k = 0; k < 2; k++) { /* output frame 2t + k */
                const int64_t f = 2 * t + k;
                float *dst = Z + (frame_major ? f * C + ch : ch * T2 + f) * HW;
                memcpy(dst, Y + ((k * C + ch) * *T + t) * HW, (size_t)HW * sizeof(float));
            }
    *T = T2;
    *xp = Z;
    return TS_OK;
}

/* The spatial half of upsample2d/3d: nearest 2x then conv 3x3 C → C/2, fused (the conv
 * reads its input as if upsampled). */
static ts_status up_space_run(vrun *r, const vmod *m, float **xp, int64_t T, int64_t *H, int64_t *W) {
    float *X = *xp, *O = pick(r, X, NULL);
    const int64_t Ho = 2 * *H, Wo = 2 * *W;
    TS_TRY(need(r, m->cout * T * Ho * Wo));
    ts_conv3d_params p = {m->cin, T, *H, *W, {1, 1, 1}, {0, 0, 1, 1, 1, 1}, NULL, 0, 1, NULL, 0};
    TS_TRY(conv3d_w(r, O, X, &p, &m->rs.w5, m->rs.b));
    *H = Ho, *W = Wo, *xp = O;
    return TS_OK;
}

static ts_status up_run(vrun *r, const vmod *m, float **xp, int64_t *T, int64_t *H, int64_t *W) {
    if (m->kind == VM_UP3D) TS_TRY(up_time_run(r, m, xp, T, *H, *W, 0));
    return up_space_run(r, m, xp, *T, H, W);
}

#define MAXZ(a, b) ((a) > (b) ? (a) : (b))

/* Index of the decoder's last UP3D module (absolute), or −1. From its spatial half on the
 * decoder runs frame by frame: nothing after its time conv mixes frames except through
 * causal caches, so splitting a chunk into single frames gives the same result with a
 * quarter of the activation memory at the highest resolutions. */
static int dec_split(const wan_vae *v) {
    int s = -1;
    for (int i = v->n_enc; i < v->n_enc + v->n_dec; i++)
        if (v->mods[i].kind == VM_UP3D) s = i;
    return s;
}

/* 1 when the decoder's frame-by-frame half (after the split) needs three work buffers at
 * once (a residual block with a shortcut conv, or attention), so that the split chunk
 * needs a buffer of its own; else it stays in the work buffer the time conv wrote. */
static int split_needs_hold(const wan_vae *v, int split) {
    for (int i = split + 1; i < v->n_enc + v->n_dec; i++)
        if ((v->mods[i].kind == VM_RES && v->mods[i].sc.w_slot >= 0) || v->mods[i].kind == VM_ATTN) return 1;
    return 0;
}

/* Workspace floats per buffer: walks the modules with the chunk shapes the run will
 * see (the largest chunk: after the first, UP3D doubles frames; DOWN3D halves them)
 * and takes the largest need() of any step. *hold gets the decoder's split chunk. */
static size_t workspace_floats(const wan_vae *v, int dec, int64_t h0, int64_t w0, size_t *hold) {
    int64_t C = dec ? v->cfg.z_dim : 3, T = dec ? 1 : 4, HW = h0 * w0;
    int64_t need = C * T * HW;
    const cconv *in = dec ? &v->dec_in : &v->enc_in;
    need = MAXZ(need, in->cout * T * HW);
    C = in->cout;
    int m0 = dec ? v->n_enc : 0, m1 = dec ? v->n_enc + v->n_dec : v->n_enc;
    int split = dec ? dec_split(v) : -1;
    if (hold) *hold = 0;
    for (int i = m0; i < m1; i++) {
        const vmod *m = &v->mods[i];
        switch (m->kind) {
        case VM_RES:
            need = MAXZ(need, MAXZ(m->cin, m->cout) * T * HW);
            C = m->cout;
            break;
        case VM_ATTN: need = MAXZ(need, 4 * C * HW); break;
        case VM_DOWN2D:
        case VM_DOWN3D:
            HW /= 4;
            need = MAXZ(need, C * T * HW);
            if (m->kind == VM_DOWN3D) T = (T + 1 - 3) / 2 + 1;
            break;
        case VM_UP3D:
            need = MAXZ(need, 2 * C * T * HW);
            T *= 2;
            if (i == split) { /* the time-conv output is held; frames go on one by one */
                if (hold && split_needs_hold(v, split)) *hold = (size_t)(C * T * HW);
                T = 1;
            }
            /* fall through */
        case VM_UP2D:
            need = MAXZ(need, m->cout * T * 4 * HW);  /* the output chunk */
            HW *= 4;
            C = m->cout;
            break;
        }
    }
    const cconv *out = dec ? &v->dec_out : &v->enc_out;
    need = MAXZ(need, MAXZ(out->cin, out->cout) * T * HW);
    return (size_t)need;
}

static void vrun_free(vrun *r) {
    for (int i = 0; i < 3; i++) free(r->buf[i]);
    free(r->hold);
    if (r->cache)
        for (int i = 0; i < r->v->n_conv_ids; i++) free(r->cache[i]);
    if (r->hcache)
        for (int i = 0; i < r->v->n_conv_ids; i++) free(r->hcache[i]);
    free(r->cache);
    free(r->hcache);
    free(r->ctmp);
    free(r->zbuf);
    free(r->started);
}

/* Allocates the workspace and zeroed caches for a stream whose level-0 size is h0 x w0. */
static ts_status vrun_init(vrun *r, ts_ctx *c, const wan_vae *v, int dec, int64_t h0, int64_t w0,
                           ts_err *err) {
    memset(r, 0, sizeof *r);
    r->c = c, r->v = v, r->err = err;
    r->cap = workspace_floats(v, dec, h0, w0, &r->hold_cap);
    r->cache = calloc((size_t)v->n_conv_ids + 1, sizeof *r->cache);
    r->started = calloc((size_t)v->n_states + 1, sizeof *r->started);
    int ok = r->cache && r->started;
    int half = dec && v->half_cache;
    if (half) ok = ok && (r->hcache = calloc((size_t)v->n_conv_ids + 1, sizeof *r->hcache)) != NULL;
    size_t ctmp = 0;
    for (int i = 0; i < 3 && ok; i++) ok = (r->buf[i] = malloc(r->cap * sizeof(float))) != NULL;
    if (ok && r->hold_cap) ok = (r->hold = malloc(r->hold_cap * sizeof(float))) != NULL;
    /* one cache per causal conv of this half, at its level's resolution */
    const cconv *top[3] = {dec ? &v->dec_in : &v->enc_in, dec ? &v->dec_out : &v->enc_out, NULL};
    int m0 = dec ? v->n_enc : 0, m1 = dec ? v->n_enc + v->n_dec : v->n_enc;
    for (int i = m0; i <= m1 && ok; i++) {
        const cconv *list[4] = {NULL, NULL, NULL, NULL};
        if (i == m1) {
            list[0] = top[0], list[1] = top[1];
        } else {
            const vmod *m = &v->mods[i];
            if (m->kind == VM_RES) list[0] = &m->c1, list[1] = &m->c2;
            if (m->kind == VM_UP3D || m->kind == VM_DOWN3D) list[0] = &m->tc;
        }
        for (int k = 0; k < 4 && list[k] && ok; k++) {
            const cconv *cv = list[k];
            if (cv->id < 0) continue;
            int64_t hl = dec ? h0 << cv->lvl : h0 >> cv->lvl, wl = dec ? w0 << cv->lvl : w0 >> cv->lvl;
            size_t n = (size_t)((cv->partial ? cv->cout : cv->cin) * 2 * hl * wl);
            if (cv->partial) { /* small: fp32 in either mode */
                ok = (r->cache[cv->id] = calloc(n, sizeof(float))) != NULL;
                if ((size_t)(3 * cv->cout * hl * wl) > r->zcap) r->zcap = (size_t)(3 * cv->cout * hl * wl);
            } else if (half) { /* fp16 zeros are all-zero bits */
                ok = (r->hcache[cv->id] = calloc(n, sizeof(uint16_t))) != NULL;
                if (n > ctmp) ctmp = n;
            } else {
                ok = (r->cache[cv->id] = calloc(n, sizeof(float))) != NULL;
            }
        }
    }
    if (ok && ctmp) ok = (r->ctmp = malloc(ctmp * sizeof(float))) != NULL;
    if (ok && r->zcap) ok = (r->zbuf = malloc(r->zcap * sizeof(float))) != NULL;
    if (!ok) {
        vrun_free(r);
        return TS_ERR(err, TS_ERR_NOMEM, "Wan VAE: out of memory for the workspace (%zu MB)",
                      r->cap * 3 * sizeof(float) >> 20);
    }
    return TS_OK;
}

static ts_status run_mods(vrun *r, int m0, int m1, float **x, int64_t *T, int64_t *H, int64_t *W) {
    for (int i = m0; i < m1; i++) {
        const vmod *m = &r->v->mods[i];
        switch (m->kind) {
        case VM_RES: TS_TRY(res_run(r, m, x, *T, *H, *W)); break;
        case VM_ATTN: TS_TRY(attn_run(r, m, *x, *T, *H, *W)); break;
        case VM_DOWN2D:
        case VM_DOWN3D: TS_TRY(down_run(r, m, x, T, H, W)); break;
        case VM_UP2D:
        case VM_UP3D: TS_TRY(up_run(r, m, x, T, H, W)); break;
        }
        if (m->hook[0] && r->v->hook) r->v->hook(r->v->hook_user, m->hook, *x, m->cout, *T, *H, *W);
    }
    return TS_OK;
}

/* norm_out + SiLU + conv_out of either half. */
static ts_status head_run(vrun *r, const cconv *cv, const float *g, float **x, int64_t T,
                          int64_t H, int64_t W) {
    float *X = *x, *Y = pick(r, X, NULL);
    TS_TRY(norm_silu(r, X, cv->cin, T * H * W, g));
    TS_TRY(conv_run(r, cv, X, T, H, W, Y));
    *x = Y;
    return TS_OK;
}

ts_status wan_vae_decode(ts_ctx *c, const wan_vae *v, const float *z, int64_t t, int64_t h,
                         int64_t w, wan_vae_frames_fn fn, void *user, ts_err *err) {
    if (t < 1 || h < 1 || w < 1)
        return TS_ERR(err, TS_ERR_SHAPE, "Wan VAE: latents %lldx%lldx%lld are empty", (long long)t,
                      (long long)h, (long long)w);
    vrun r;
    TS_TRY(vrun_init(&r, c, v, 1, h, w, err));
    ts_status st = TS_OK;
    const int64_t Z = v->cfg.z_dim, hw = h * w;
    int64_t first = 0;
    const int split = dec_split(v), m_end = v->n_enc + v->n_dec;
    for (int64_t i = 0; i < t && st == TS_OK; i++) {
        float *x = r.buf[0], *y = r.buf[1];
        for (int64_t ch = 0; ch < Z; ch++) memcpy(x + ch * hw, z + (ch * t + i) * hw, (size_t)hw * sizeof(float));
        int64_t T = 1, H = h, W = w;
        st = conv_run(&r, &v->post_quant, x, 1, h, w, y);
        if (st == TS_OK) st = conv_run(&r, &v->dec_in, y, 1, h, w, x);
        if (st == TS_OK) st = run_mods(&r, v->n_enc, split < 0 ? m_end : split, &x, &T, &H, &W);
        if (st == TS_OK && split >= 0) st = up_time_run(&r, &v->mods[split], &x, &T, H, W, 1);
        if (st != TS_OK) break;
        const int64_t C = split < 0 ? 0 : v->mods[split].cin, S = H * W;
        float *held = x; /* the split chunk, frame-major: frame f at held + f·C·S */
        if (split >= 0 && r.hold) {
            if ((size_t)(C * T * S) > r.hold_cap) {
                st = TS_ERR(err, TS_ERR_INTERNAL, "Wan VAE: split chunk larger than planned");
                break;
            }
            memcpy(r.hold, x, (size_t)(C * T * S) * sizeof(float));
            held = r.hold;
        } else if (split >= 0) {
            r.reserved = x; /* the frames below run in the other two buffers */
        }
        const int64_t nf = split < 0 ? 1 : T; /* frame by frame after the split */
        for (int64_t f = 0; f < nf && st == TS_OK; f++) {
            int64_t Tf = split < 0 ? T : 1, Hf = H, Wf = W;
            float *xf = x;
            if (split >= 0) {
                xf = held + f * C * S;
                st = up_space_run(&r, &v->mods[split], &xf, 1, &Hf, &Wf);
                const vmod *sm = &v->mods[split];
                if (st == TS_OK && sm->hook[0] && v->hook) v->hook(v->hook_user, sm->hook, xf, sm->cout, 1, Hf, Wf);
                if (st == TS_OK) st = run_mods(&r, split + 1, m_end, &xf, &Tf, &Hf, &Wf);
            }
            if (st == TS_OK) st = head_run(&r, &v->dec_out, v->dec_norm, &xf, Tf, Hf, Wf);
            if (st != TS_OK) break;
            for (int64_t k = 0; k < 3 * Tf * Hf * Wf; k++)
                xf[k] = xf[k] < -1.0f ? -1.0f : xf[k] > 1.0f ? 1.0f : xf[k];
            if (fn) st = fn(user, xf, first, Tf, Hf, Wf, err);
            first += Tf;
        }
        r.reserved = NULL;
    }
    vrun_free(&r);
    return st;
}

typedef struct to_buf {
    float *out;
    int64_t total;
} to_buf;

static ts_status copy_frames(void *user, const float *f, int64_t first, int64_t n, int64_t H,
                             int64_t W, ts_err *err) {
    to_buf *b = user;
    if (first + n > b->total) return TS_ERR(err, TS_ERR_INTERNAL, "Wan VAE: more frames than expected");
    for (int64_t ch = 0; ch < 3; ch++)
        memcpy(b->out + (ch * b->total + first) * H * W, f + ch * n * H * W, (size_t)(n * H * W) * sizeof(float));
    return TS_OK;
}

ts_status wan_vae_decode_to(ts_ctx *c, const wan_vae *v, const float *z, int64_t t, int64_t h,
                            int64_t w, float *out, ts_err *err) {
    to_buf b = {out, 1 + 4 * (t - 1)};
    return wan_vae_decode(c, v, z, t, h, w, copy_frames, &b, err);
}

ts_status wan_vae_encode(ts_ctx *c, const wan_vae *v, const float *video, int64_t T, int64_t H,
                         int64_t W, float *mean, ts_err *err) {
    if (T < 1 || H % 8 || W % 8 || H < 8 || W < 8)
        return TS_ERR(err, TS_ERR_SHAPE, "Wan VAE: video %lldx%lld with %lld frames: width and height must be multiples of 8",
                      (long long)W, (long long)H, (long long)T);
    vrun r;
    TS_TRY(vrun_init(&r, c, v, 0, H, W, err));
    ts_status st = TS_OK;
    const int64_t n_chunks = 1 + (T - 1) / 4, t_out = n_chunks, hw = (H / 8) * (W / 8), Z = v->cfg.z_dim;
    int64_t lat = 0;
    for (int64_t i = 0; i < n_chunks && st == TS_OK; i++) {
        int64_t f0 = i == 0 ? 0 : 1 + 4 * (i - 1), nf = i == 0 ? 1 : 4;
        float *x = r.buf[0];
        st = need(&r, 3 * nf * H * W);
        if (st != TS_OK) break;
        for (int64_t ch = 0; ch < 3; ch++)
            memcpy(x + ch * nf * H * W, video + (ch * T + f0) * H * W, (size_t)(nf * H * W) * sizeof(float));
        int64_t Tc = nf, Hc = H, Wc = W;
        float *y = r.buf[1];
        st = conv_run(&r, &v->enc_in, x, Tc, Hc, Wc, y);
        x = y;
        if (st == TS_OK) st = run_mods(&r, 0, v->n_enc, &x, &Tc, &Hc, &Wc);
        if (st == TS_OK) st = head_run(&r, &v->enc_out, v->enc_norm, &x, Tc, Hc, Wc);
        if (st != TS_OK) break;
        if (Hc * Wc != hw || lat + Tc > t_out) {
            st = TS_ERR(err, TS_ERR_INTERNAL, "Wan VAE: encoder produced an unexpected shape");
            break;
        }
        /* mean = the first z channels of quant_conv (1x1x1) */
        float *q = pick(&r, x, NULL);
        st = conv_run(&r, &v->quant, x, Tc, Hc, Wc, q);
        if (st != TS_OK) break;
        for (int64_t ch = 0; ch < Z; ch++)
            memcpy(mean + (ch * t_out + lat) * hw, q + ch * Tc * hw, (size_t)(Tc * hw) * sizeof(float));
        lat += Tc;
    }
    vrun_free(&r);
    return st;
}

void wan_vae_normalize(const wan_vae *v, float *z, int64_t t, int64_t h, int64_t w) {
    const int64_t n = t * h * w;
    for (int64_t ch = 0; ch < v->cfg.z_dim; ch++)
        for (int64_t i = 0; i < n; i++) z[ch * n + i] = (z[ch * n + i] - v->lat_mean[ch]) / v->lat_std[ch];
}

void wan_vae_denormalize(const wan_vae *v, float *z, int64_t t, int64_t h, int64_t w) {
    const int64_t n = t * h * w;
    for (int64_t ch = 0; ch < v->cfg.z_dim; ch++)
        for (int64_t i = 0; i < n; i++) z[ch * n + i] = z[ch * n + i] * v->lat_std[ch] + v->lat_mean[ch];
}
