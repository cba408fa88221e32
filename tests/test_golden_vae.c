/*
 * test_golden_vae.c — the Wan-VAE against diffusers golden fixtures
 * (tools/golden/make_wan_vae.py): decode and encode rel-L2 ≤ 1e-4; the same weights
 * under the original Wan key names give identical results; frames stream in order;
 * bad shapes are rejected; latent normalisation round-trips.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"
#include "test.h"
#include "vae/wan_vae.h"

/* diffusers → original names, the inverse of models.md §2.7, written for the test. */
static void to_original(const char *in, char *out, size_t n, int nrb) {
    char b[256];
    snprintf(b, sizeof b, "%s", in);
    struct { const char *d, *o; } r[] = {
        {"encoder.conv_in.", "encoder.conv1."}, {"decoder.conv_in.", "decoder.conv1."},
        {"quant_conv.", "conv1."}, {"post_quant_conv.", "conv2."},
        {"mid_block.resnets.0.", "middle.0."}, {"mid_block.attentions.0.", "middle.1."},
        {"mid_block.resnets.1.", "middle.2."}, {"norm_out.gamma", "head.0.gamma"},
        {"conv_out.", "head.2."}, {"encoder.down_blocks.", "encoder.downsamples."},
        {".norm1.gamma", ".residual.0.gamma"}, {".conv1.", ".residual.2."},
        {".norm2.gamma", ".residual.3.gamma"}, {".conv2.", ".residual.6."},
        {".conv_shortcut.", ".shortcut."},
    };
    int i, j, len;
    if (sscanf(b, "decoder.up_blocks.%d.resnets.%d.%n", &i, &j, &len) == 2) {
        char t[256];
        snprintf(t, sizeof t, "decoder.upsamples.%d.%s", i * (nrb + 2) + j, b + len);
        snprintf(b, sizeof b, "%s", t);
    } else if (sscanf(b, "decoder.up_blocks.%d.upsamplers.0.%n", &i, &len) == 1 && len > 0) {
        char t[256];
        snprintf(t, sizeof t, "decoder.upsamples.%d.%s", i * (nrb + 2) + nrb + 1, b + len);
        snprintf(b, sizeof b, "%s", t);
    }
    for (size_t k = 0; k < sizeof r / sizeof r[0]; k++) {
        if (!strcmp(r[k].d, "quant_conv.") || !strcmp(r[k].d, "post_quant_conv.")) {
            if (strncmp(b, r[k].d, strlen(r[k].d)) == 0) {
                char t[256];
                snprintf(t, sizeof t, "%s%s", r[k].o, b + strlen(r[k].d));
                snprintf(b, sizeof b, "%s", t);
                break;
            }
            continue;
        }
        char *p = strstr(b, r[k].d);
        if (!p) continue;
        /* residual-block renames only inside residual blocks */
        if (r[k].d[0] == '.' && !strstr(b, "samples.") && !strstr(b, "middle.0.") && !strstr(b, "middle.2."))
            continue;
        char t[256];
        snprintf(t, sizeof t, "%.*s%s%s", (int)(p - b), b, r[k].o, p + strlen(r[k].d));
        snprintf(b, sizeof b, "%s", t);
    }
    snprintf(out, n, "%s", b);
}

static int write_original(const char *src, const char *dst, int nrb) {
    ts_st_file *f = NULL;
    ts_err e = {0};
    if (ts_st_open(&f, src, &e) != TS_OK) return -1;
    int n = ts_st_count(f);
    ts_st_item *it = calloc((size_t)n, sizeof *it);
    char (*names)[256] = calloc((size_t)n, sizeof *names);
    for (int i = 0; i < n; i++) {
        to_original(ts_st_tensor(f, i)->name, names[i], sizeof names[i], nrb);
        it[i].name = names[i];
        it[i].t = *ts_st_tensor(f, i);
    }
    int rc = ts_st_write(dst, it, n, NULL, 0, &e) == TS_OK ? 0 : -1;
    if (rc) fprintf(stderr, "%s\n", e.msg);
    free(it), free(names);
    ts_st_close(f);
    return rc;
}

typedef struct order {
    int64_t next, calls;
} order;

static ts_status check_order(void *user, const float *f, int64_t first, int64_t n, int64_t H,
                             int64_t W, ts_err *err) {
    (void)f, (void)H, (void)W, (void)err;
    order *o = user;
    TS_CHECK(first == o->next && n == (o->calls == 0 ? 1 : 4), "chunk %lld: first %lld n %lld",
             (long long)o->calls, (long long)first, (long long)n);
    o->next = first + n;
    o->calls++;
    return TS_OK;
}

static void run_fixture(const char *name, const char *tmpdir) {
    char wpath[512], iopath[512], ioname[64];
    snprintf(wpath, sizeof wpath, "%s.safetensors", ts_test_fixture(name));
    snprintf(ioname, sizeof ioname, "%s_io.safetensors", name);
    snprintf(iopath, sizeof iopath, "%s", ts_test_fixture(ioname));
    ts_st_file *io = NULL;
    ts_err e = {0};
    if (ts_st_open(&io, iopath, &e) != TS_OK) {
        TS_CHECK(0, "%s", e.msg);
        return;
    }
    const ts_tensor *video = ts_st_find(io, "video"), *mean = ts_st_find(io, "latent_mean"),
                    *lat = ts_st_find(io, "latents"), *dec = ts_st_find(io, "decoded");
    char orig[600];
    snprintf(orig, sizeof orig, "%s/vae_orig.safetensors", tmpdir);
    ts_ctx c;
    ts_ctx_init(&c, 0);
    float *ref_out = NULL;
    for (int layout = 0; layout < 2; layout++) {
        wan_vae *v = NULL;
        const char *path = wpath;
        if (layout == 1) {
            wan_vae *tmp = NULL;
            wan_vae_load(&tmp, wpath, &e);
            int nr = tmp ? wan_vae_model_config(tmp)->num_res_blocks : 1;
            wan_vae_free(tmp);
            TS_CHECK(write_original(wpath, orig, nr) == 0, "write original layout");
            path = orig;
        }
        TS_CHECK(wan_vae_load(&v, path, &e) == TS_OK, "%s load (%s): %s", name, layout ? "original" : "diffusers", e.msg);
        if (!v) continue;
        /* decode */
        int64_t t = lat->shape[2], h = lat->shape[3], w = lat->shape[4];
        int64_t nd = ts_tensor_numel(dec);
        float *out = malloc((size_t)nd * sizeof *out);
        TS_CHECK(dec->shape[2] == 1 + 4 * (t - 1), "fixture frame count");
        TS_CHECK(wan_vae_decode_to(&c, v, lat->data, t, h, w, out, &e) == TS_OK, "%s decode: %s", name, e.msg);
        char what[96];
        snprintf(what, sizeof what, "%s decode (%s)", name, layout ? "original" : "diffusers");
        ts_test_compare(what, out, dec->data, nd, 1e-4, NULL);
        if (layout == 0) ref_out = out;
        else {
            TS_CHECK(memcmp(out, ref_out, (size_t)nd * sizeof *out) == 0, "%s: layouts decode identically", name);
            free(out);
        }
        /* encode */
        int64_t nm = ts_tensor_numel(mean);
        float *mu = malloc((size_t)nm * sizeof *mu);
        TS_CHECK(wan_vae_encode(&c, v, video->data, video->shape[2], video->shape[3], video->shape[4], mu, &e) == TS_OK,
                 "%s encode: %s", name, e.msg);
        snprintf(what, sizeof what, "%s encode mean (%s)", name, layout ? "original" : "diffusers");
        ts_test_compare(what, mu, mean->data, nm, 1e-4, NULL);
        if (layout == 0) {
            order o = {0, 0};
            TS_CHECK(wan_vae_decode(&c, v, lat->data, t, h, w, check_order, &o, &e) == TS_OK && o.calls == t,
                     "streamed %lld chunks", (long long)o.calls);
            TS_CHECK(wan_vae_encode(&c, v, video->data, video->shape[2], 12, 20, mu, &e) == TS_ERR_SHAPE,
                     "encode rejects H not a multiple of 8: %s", e.msg);
            TS_CHECK(wan_vae_decode(&c, v, lat->data, 0, h, w, NULL, NULL, &e) == TS_ERR_SHAPE, "decode rejects t = 0");
        }
        free(mu);
        wan_vae_free(v);
    }
    free(ref_out);
    unlink(orig);
    ts_st_close(io);
}

int main(void) {
    char tmpdir[] = "/tmp/tessera-vae-XXXXXX";
    if (!mkdtemp(tmpdir)) return 1;
    run_fixture("wan_vae_a", tmpdir);
    run_fixture("wan_vae_b", tmpdir);
    rmdir(tmpdir);
    /* normalisation round trip on random latents */
    float z[16 * 6], z0[16 * 6];
    ts_test_randn(z, 16 * 6, 3, 2.0f);
    memcpy(z0, z, sizeof z);
    wan_vae_normalize(z, 1, 2, 3);
    TS_CHECK(z[0] != z0[0], "normalise changes values");
    TS_CHECK(z[0] == (z0[0] + 0.7571f) / 2.8184f, "normalise channel 0");
    wan_vae_denormalize(z, 1, 2, 3);
    ts_test_compare("normalise round trip", z, z0, 16 * 6, 1e-6, NULL);
    /* a file that is not a VAE */
    wan_vae *v = NULL;
    ts_err e = {0};
    TS_CHECK(wan_vae_load(&v, ts_test_fixture("wan_dit_a.safetensors"), &e) == TS_ERR_MISSING, "DiT file rejected: %s", e.msg);
    return ts_test_summary("golden_vae");
}
