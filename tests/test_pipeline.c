/*
 * test_pipeline.c — the Wan2.1 pipeline end to end on the tiny fixture models.
 *
 * Builds checkpoint directories in both layouts from the fixtures (diffusers:
 * transformer/ + vae/ with config.json; original: diffusion_pytorch_model.safetensors +
 * Wan2.1_VAE.safetensors under the original names), runs 4 sampling steps with CFG
 * (g = 5, shift 3) with Euler and with UniPC, and compares the final latents with
 * diffusers' (tools/golden/make_wan_sampling.py; rel-L2 ≤ 1e-3), then decodes them to
 * frames. Bad parameters are rejected before any work.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline.h"
#include "test.h"
#include "wan_rename.h"

static char root[] = "/tmp/tessera-pipe-XXXXXX";

static const char *path(const char *rel) {
    static char buf[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, rel);
    return buf[k];
}

static void write_text(const char *p, const char *txt) {
    FILE *f = fopen(p, "w");
    if (f) fputs(txt, f), fclose(f);
}

static int copy_file(const char *src, const char *dst) {
    FILE *a = fopen(src, "rb"), *b = fopen(dst, "wb");
    if (!a || !b) return -1;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
    fclose(a);
    fclose(b);
    return 0;
}

static void make_dirs(void) {
    char dit[512], vae[512];
    snprintf(dit, sizeof dit, "%s", ts_test_fixture("wan_dit_b.safetensors"));
    snprintf(vae, sizeof vae, "%s", ts_test_fixture("wan_vae_a.safetensors"));
    mkdir(path("diffusers"), 0700);
    mkdir(path("diffusers/transformer"), 0700);
    mkdir(path("diffusers/vae"), 0700);
    write_text(path("diffusers/model_index.json"), "{\"_class_name\": \"WanPipeline\"}");
    write_text(path("diffusers/transformer/config.json"),
               "{\"_class_name\": \"WanTransformer3DModel\", \"attention_head_dim\": 64, \"num_attention_heads\": 2}");
    copy_file(dit, path("diffusers/transformer/diffusion_pytorch_model.safetensors"));
    copy_file(vae, path("diffusers/vae/diffusion_pytorch_model.safetensors"));
    mkdir(path("original"), 0700);
    write_text(path("original/config.json"), "{\"dim\": 128, \"num_heads\": 2}");
    st_copy_renamed(dit, path("original/diffusion_pytorch_model.safetensors"), wan_dit_rename_cb, 0);
    st_copy_renamed(vae, path("original/Wan2.1_VAE.safetensors"), wan_vae_to_original, 1);
}

static void run(const char *layout, ts_sampler_kind kind) {
    char fx[64];
    snprintf(fx, sizeof fx, "wan_sample_%s.safetensors", ts_sampler_name(kind));
    ts_st_file *f = NULL;
    ts_err e = {0};
    if (ts_st_open(&f, ts_test_fixture(fx), &e) != TS_OK) {
        TS_CHECK(0, "%s", e.msg);
        return;
    }
    const ts_tensor *noise = ts_st_find(f, "noise"), *ctx = ts_st_find(f, "context"),
                    *ctxu = ts_st_find(f, "context_uncond"), *ref = ts_st_find(f, "latents_final");
    ts_wan_pipeline p;
    TS_CHECK(ts_wan_pipeline_open(&p, path(layout), &e) == TS_OK, "%s open: %s", layout, e.msg);
    if (!p.dit) {
        ts_st_close(f);
        return;
    }
    ts_wan_params prm = ts_wan_params_default();
    prm.frames = 1 + 4 * (noise->shape[2] - 1);
    prm.height = 8 * noise->shape[3];
    prm.width = 8 * noise->shape[4];
    prm.steps = 4, prm.cfg_scale = 5.0f, prm.flow_shift = 3.0, prm.sampler = kind, prm.text_len = 0;
    int64_t n = ts_tensor_numel(noise);
    float *lat = malloc((size_t)n * sizeof *lat);
    ts_ctx c;
    ts_ctx_init(&c, 0);
    ts_status s = ts_wan_generate(&c, &p, &prm, ctx->data, ctx->shape[1], ctxu->data, ctxu->shape[1],
                                  noise->data, lat, NULL, NULL, &e);
    TS_CHECK(s == TS_OK, "%s %s generate: %s", layout, ts_sampler_name(kind), e.msg);
    char what[96];
    snprintf(what, sizeof what, "%s %s 4-step CFG final latents", layout, ts_sampler_name(kind));
    if (s == TS_OK) ts_test_compare(what, lat, ref->data, n, 1e-3, NULL);
    /* decode to frames: right count, finite, in [-1, 1] */
    int64_t T = prm.frames, HW = prm.height * prm.width;
    float *frames = malloc((size_t)(3 * T * HW) * sizeof *frames);
    s = wan_vae_decode_to(&c, p.vae, lat, noise->shape[2], noise->shape[3], noise->shape[4], frames, &e);
    TS_CHECK(s == TS_OK, "decode: %s", e.msg);
    int ok = 1;
    double sum2 = 0;
    for (int64_t i = 0; i < 3 * T * HW; i++) {
        ok &= isfinite(frames[i]) && frames[i] >= -1.0f && frames[i] <= 1.0f;
        sum2 += (double)frames[i] * frames[i];
    }
    TS_CHECK(ok && sum2 > 0, "%s frames finite, in [-1, 1], not all zero", layout);
    /* parameter checks happen before any work */
    ts_wan_params bad = prm;
    bad.frames = 6;
    TS_CHECK(ts_wan_generate(&c, &p, &bad, ctx->data, ctx->shape[1], ctxu->data, ctxu->shape[1], NULL, lat, NULL,
                             NULL, &e) == TS_ERR_INVALID_ARG && strstr(e.msg, "1 + 4k"), "frames 6 rejected: %s", e.msg);
    bad = prm;
    bad.width = 40;
    TS_CHECK(ts_wan_generate(&c, &p, &bad, ctx->data, ctx->shape[1], ctxu->data, ctxu->shape[1], NULL, lat, NULL,
                             NULL, &e) == TS_ERR_INVALID_ARG && strstr(e.msg, "multiples of 16"), "width 40 rejected: %s", e.msg);
    free(lat), free(frames);
    ts_wan_pipeline_close(&p);
    ts_st_close(f);
}

int main(void) {
    if (!mkdtemp(root)) return 1;
    make_dirs();
    run("diffusers", TS_SAMPLER_EULER);
    run("diffusers", TS_SAMPLER_UNIPC);
    run("original", TS_SAMPLER_UNIPC);
    ts_wan_pipeline p;
    ts_err e = {0};
    TS_CHECK(ts_wan_pipeline_open(&p, root, &e) == TS_ERR_MISSING, "empty dir rejected: %s", e.msg);
    const char *files[] = {"diffusers/model_index.json", "diffusers/transformer/config.json",
                           "diffusers/transformer/diffusion_pytorch_model.safetensors",
                           "diffusers/vae/diffusion_pytorch_model.safetensors", "original/config.json",
                           "original/diffusion_pytorch_model.safetensors", "original/Wan2.1_VAE.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) unlink(path(files[i]));
    rmdir(path("diffusers/transformer")), rmdir(path("diffusers/vae")), rmdir(path("diffusers"));
    rmdir(path("original")), rmdir(root);
    return ts_test_summary("pipeline");
}
