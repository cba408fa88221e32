/*
 * test_golden_vae.c — the Wan-VAE against diffusers golden fixtures
 * (tools/golden/make_wan_vae.py): decode and encode rel-L2 ≤ 1e-4; the same weights
 * under the original Wan key names give identical results; frames stream in order;
 * bad shapes are rejected; latent normalisation round-trips.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"
#include "test.h"
#include "wan_rename.h"
#include "vae/wan_vae.h"

typedef struct order {
    int64_t next, calls;
} order;

static ts_status check_order(void *user, const float *f, int64_t first, int64_t n, int64_t H,
                             int64_t W, ts_err *err) {
    (void)f, (void)H, (void)W, (void)err;
    order *o = user;
    TS_CHECK(first == o->next && n >= 1, "chunk %lld: first %lld n %lld",
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
            TS_CHECK(st_copy_renamed(wpath, orig, wan_vae_to_original, nr) == 0, "write original layout");
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
        if (layout == 0) { /* low-memory mode: fp16 caches stay within 1e-3 of the reference */
            float *o16 = malloc((size_t)nd * sizeof *o16);
            wan_vae_set_half_cache(v, 1);
            TS_CHECK(wan_vae_decode_to(&c, v, lat->data, t, h, w, o16, &e) == TS_OK, "half-cache decode: %s", e.msg);
            ts_test_stats hs;
            snprintf(what, sizeof what, "%s decode with fp16 caches", name);
            ts_test_compare(what, o16, dec->data, nd, 1e-3, &hs);
            TS_CHECK(memcmp(o16, out, (size_t)nd * sizeof *o16) != 0, "%s: fp16 caches are really used", name);
            fprintf(stderr, "  %s: fp16-cache decode rel-L2 vs diffusers %.2e\n", name, hs.rel_l2);
            wan_vae_set_half_cache(v, 0);
            free(o16);
        }
        if (layout == 0) {
            order o = {0, 0};
            TS_CHECK(wan_vae_decode(&c, v, lat->data, t, h, w, check_order, &o, &e) == TS_OK &&
                         o.next == 1 + 4 * (t - 1) && o.calls >= t,
                     "streamed %lld frames in %lld calls", (long long)o.next, (long long)o.calls);
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
    run_fixture("wan_vae_c", tmpdir);
    rmdir(tmpdir);
    /* normalisation round trip on random latents: Wan2.1's statistics by default */
    wan_vae *v = NULL;
    ts_err e = {0};
    TS_CHECK(wan_vae_load(&v, ts_test_fixture("wan_vae_a.safetensors"), &e) == TS_OK, "load: %s", e.msg);
    float z[16 * 6], z0[16 * 6];
    ts_test_randn(z, 16 * 6, 3, 2.0f);
    memcpy(z0, z, sizeof z);
    wan_vae_normalize(v, z, 1, 2, 3);
    TS_CHECK(z[0] != z0[0], "normalise changes values");
    TS_CHECK(z[0] == (z0[0] + 0.7571f) / 2.8184f, "normalise channel 0");
    wan_vae_denormalize(v, z, 1, 2, 3);
    ts_test_compare("normalise round trip", z, z0, 16 * 6, 1e-6, NULL);
    wan_vae_free(v);
    v = NULL;
    /* a config.json beside the weights with its own latents_mean / latents_std */
    char cdir[] = "/tmp/tessera-vae-cfg-XXXXXX", wpath[128], cpath[128];
    if (mkdtemp(cdir)) {
        snprintf(wpath, sizeof wpath, "%s/diffusion_pytorch_model.safetensors", cdir);
        snprintf(cpath, sizeof cpath, "%s/config.json", cdir);
        TS_CHECK(symlink(ts_test_fixture("wan_vae_a.safetensors"), wpath) == 0, "link the weights");
        char js[2048] = "{\"latents_mean\": [";
        for (int i = 0; i < 16; i++) snprintf(js + strlen(js), sizeof js - strlen(js), "%s%d", i ? ", " : "", i);
        strcat(js, "], \"latents_std\": [");
        for (int i = 0; i < 16; i++) snprintf(js + strlen(js), sizeof js - strlen(js), "%s%g", i ? ", " : "", 0.5 + i);
        strcat(js, "]}");
        FILE *f = fopen(cpath, "w");
        if (f) fputs(js, f), fclose(f);
        TS_CHECK(wan_vae_load(&v, cdir, &e) == TS_OK, "load with config.json: %s", e.msg);
        memcpy(z, z0, sizeof z);
        if (v) wan_vae_normalize(v, z, 1, 2, 3);
        TS_CHECK(z[0] == z0[0] / 0.5f && z[6 * 3] == (z0[6 * 3] - 3.0f) / 3.5f, "config.json statistics used");
        wan_vae_free(v);
        v = NULL;
        f = fopen(cpath, "w");
        if (f) fputs("{\"latents_mean\": [0, 1], \"latents_std\": [1, 1]}", f), fclose(f);
        TS_CHECK(wan_vae_load(&v, cdir, &e) == TS_ERR_FORMAT && strstr(e.msg, "must be 16 numbers each") && !v,
                 "wrong-length statistics rejected: %s", e.msg);
        remove(cpath), remove(wpath), rmdir(cdir);
    }
    /* a file that is not a VAE */
    TS_CHECK(wan_vae_load(&v, ts_test_fixture("wan_dit_a.safetensors"), &e) == TS_ERR_MISSING, "DiT file rejected: %s", e.msg);
    return ts_test_summary("golden_vae");
}
