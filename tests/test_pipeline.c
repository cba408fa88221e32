/*
 * test_pipeline.c — the Wan2.1 pipeline end to end on the tiny fixture models.
 *
 * Builds checkpoint directories in both layouts from the fixtures (diffusers:
 * transformer/ + vae/ with config.json; original: diffusion_pytorch_model.safetensors +
 * Wan2.1_VAE.safetensors under the original names), runs 4 sampling steps with CFG
 * (g = 5, shift 3) with Euler and with UniPC, and compares the final latents with
 * diffusers' (tools/golden/make_wan_sampling.py; rel-L2 ≤ 1e-3), then decodes them to
 * frames. Bad parameters are rejected before any work. From a prompt (tests/fixtures/wan_t2v,
 * with the text encoder and tokenizer): embeddings, latents and frames equal WanPipeline's.
 */
#include <cjson/cJSON.h>
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
    /* the text encoder as Wan ships it (converted to safetensors) and its tokenizer folder */
    char te[512];
    snprintf(te, sizeof te, "%s", ts_test_fixture("wan_te.safetensors"));
    st_copy_renamed(te, path("original/models_t5_umt5-xxl-enc-bf16.safetensors"), t5_rename_cb, 0);
    mkdir(path("original/google"), 0700);
    mkdir(path("original/google/umt5-xxl"), 0700);
    copy_file(ts_test_fixture("spm_tiny.model"), path("original/google/umt5-xxl/spiece.model"));
}

/* The original layout's text encoder (Wan's names) gives diffusers' prompt embeddings. */
static void run_original_text(void) {
    ts_st_file *f = NULL;
    ts_err e = {0};
    ts_wan_pipeline p;
    TS_CHECK(ts_wan_pipeline_open(&p, path("original"), &e) == TS_OK, "original open: %s", e.msg);
    TS_CHECK(p.te && p.tok, "original layout: text encoder and tokenizer found");
    if (p.te && ts_st_open(&f, ts_test_fixture("wan_t2v_io.safetensors"), &e) == TS_OK) {
        ts_ctx c;
        ts_ctx_init(&c, 0);
        const ts_tensor *ref = ts_st_find(f, "red.prompt_embeds");
        float *pe = malloc((size_t)ts_tensor_numel(ref) * sizeof *pe);
        TS_CHECK(ts_wan_encode_prompt(&c, &p, "a red circle moving to the right", 512, pe, NULL, &e) == TS_OK,
                 "original encode: %s", e.msg);
        ts_test_compare("original-layout prompt embeddings", pe, ref->data, ts_tensor_numel(ref), 1e-4, NULL);
        free(pe);
    }
    ts_st_close(f);
    ts_wan_pipeline_close(&p);
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

/* Prompt to frames on tests/fixtures/wan_t2v (tools/golden/make_wan_t2v.py): the prompt
 * embeddings of the prompt and the negative prompt (rel-L2 ≤ 1e-4), the final latents of 4
 * UniPC steps with CFG 5 (≤ 1e-3) and the decoded frames in [0, 1] (≤ 1e-3) equal
 * diffusers' WanPipeline. */
static void run_t2v(void) {
    ts_st_file *f = NULL;
    ts_err e = {0};
    if (ts_st_open(&f, ts_test_fixture("wan_t2v_io.safetensors"), &e) != TS_OK) {
        TS_CHECK(0, "%s", e.msg);
        return;
    }
    cJSON *cfg = cJSON_Parse(ts_st_meta(f, "config"));
    ts_wan_pipeline p;
    char dir[512];
    snprintf(dir, sizeof dir, "%s", ts_test_fixture("wan_t2v"));
    TS_CHECK(ts_wan_pipeline_open(&p, dir, &e) == TS_OK, "open %s: %s", dir, e.msg);
    if (!p.dit || !p.te || !cfg) {
        TS_CHECK(p.te != NULL, "wan_t2v has a text encoder");
        cJSON_Delete(cfg);
        ts_wan_pipeline_close(&p);
        ts_st_close(f);
        return;
    }
    ts_ctx c;
    ts_ctx_init(&c, 0);
    const int64_t L = 512, D = wan_model_config(p.dit)->text_dim;
    float *pe = malloc((size_t)(L * D) * sizeof *pe), *ne = malloc((size_t)(L * D) * sizeof *ne);
    const cJSON *cs;
    cJSON_ArrayForEach(cs, cJSON_GetObjectItemCaseSensitive(cfg, "cases")) {
        const char *name = cJSON_GetObjectItemCaseSensitive(cs, "name")->valuestring;
        const char *prompt = cJSON_GetObjectItemCaseSensitive(cs, "prompt")->valuestring;
        const char *neg = cJSON_GetObjectItemCaseSensitive(cs, "negative_prompt")->valuestring;
        char key[128], what[160];
#define FX(suffix) (snprintf(key, sizeof key, "%s.%s", name, suffix), ts_st_find(f, key))
        const ts_tensor *noise = FX("noise"), *rpe = FX("prompt_embeds"), *rne = FX("negative_prompt_embeds");
        const ts_tensor *rlat = FX("latents_final"), *rvid = FX("video");
#undef FX
        int64_t n_tok = 0;
        TS_CHECK(ts_wan_encode_prompt(&c, &p, prompt, L, pe, &n_tok, &e) == TS_OK, "encode '%s': %s", prompt, e.msg);
        snprintf(what, sizeof what, "%s prompt embeddings (%lld tokens)", name, (long long)n_tok);
        ts_test_compare(what, pe, rpe->data, L * D, 1e-4, NULL);
        TS_CHECK(ts_wan_encode_prompt(&c, &p, neg, L, ne, &n_tok, &e) == TS_OK, "encode '%s': %s", neg, e.msg);
        snprintf(what, sizeof what, "%s negative prompt embeddings (%lld tokens)", name, (long long)n_tok);
        ts_test_compare(what, ne, rne->data, L * D, 1e-4, NULL);
        ts_wan_params prm = ts_wan_params_default();
        prm.frames = 1 + 4 * (noise->shape[2] - 1), prm.height = 8 * noise->shape[3];
        prm.width = 8 * noise->shape[4];
        prm.steps = 4, prm.cfg_scale = 5.0f, prm.flow_shift = 3.0, prm.sampler = TS_SAMPLER_UNIPC;
        int64_t n = ts_tensor_numel(noise), T = prm.frames, H = prm.height, W = prm.width;
        float *lat = malloc((size_t)n * sizeof *lat), *frames = malloc((size_t)(3 * T * H * W) * sizeof *frames);
        ts_status st = ts_wan_generate(&c, &p, &prm, pe, L, ne, L, noise->data, lat, NULL, NULL, &e);
        TS_CHECK(st == TS_OK, "%s generate: %s", name, e.msg);
        snprintf(what, sizeof what, "%s final latents", name);
        if (st == TS_OK) ts_test_compare(what, lat, rlat->data, n, 1e-3, NULL);
        /* the sampler works on normalised latents; the VAE takes raw ones */
        wan_vae_denormalize(p.vae, lat, noise->shape[2], noise->shape[3], noise->shape[4]);
        st = wan_vae_decode_to(&c, p.vae, lat, noise->shape[2], noise->shape[3], noise->shape[4], frames, &e);
        TS_CHECK(st == TS_OK, "%s decode: %s", name, e.msg);
        if (st == TS_OK) { /* [3, T, H, W] in [-1, 1] → [T, H, W, 3] in [0, 1], as postprocess_video */
            float *rgb = malloc((size_t)(3 * T * H * W) * sizeof *rgb);
            for (int64_t ch = 0; ch < 3; ch++)
                for (int64_t i = 0; i < T * H * W; i++) {
                    float v = frames[ch * T * H * W + i] * 0.5f + 0.5f;
                    rgb[i * 3 + ch] = v < 0 ? 0 : v > 1 ? 1 : v;
                }
            snprintf(what, sizeof what, "%s frames", name);
            TS_CHECK(ts_tensor_numel(rvid) == 3 * T * H * W, "%s: video size", name);
            if (ts_tensor_numel(rvid) == 3 * T * H * W) ts_test_compare(what, rgb, rvid->data, 3 * T * H * W, 1e-3, NULL);
            free(rgb);
        }
        free(lat), free(frames);
    }
    int64_t n_tok;
    TS_CHECK(ts_wan_encode_prompt(&c, &p, "bad \xff", L, pe, &n_tok, &e) == TS_ERR_INVALID_ARG, "invalid UTF-8 prompt: %s", e.msg);
    free(pe), free(ne);
    cJSON_Delete(cfg);
    ts_wan_pipeline_close(&p);
    ts_st_close(f);
}

int main(void) {
    if (!mkdtemp(root)) return 1;
    make_dirs();
    run("diffusers", TS_SAMPLER_EULER);
    run("diffusers", TS_SAMPLER_UNIPC);
    run("original", TS_SAMPLER_UNIPC);
    run_t2v();
    run_original_text();
    ts_wan_pipeline p;
    ts_err e = {0};
    TS_CHECK(ts_wan_pipeline_open(&p, root, &e) == TS_ERR_MISSING, "empty dir rejected: %s", e.msg);
    const char *files[] = {"diffusers/model_index.json", "diffusers/transformer/config.json",
                           "diffusers/transformer/diffusion_pytorch_model.safetensors",
                           "diffusers/vae/diffusion_pytorch_model.safetensors", "original/config.json",
                           "original/diffusion_pytorch_model.safetensors", "original/Wan2.1_VAE.safetensors",
                           "original/models_t5_umt5-xxl-enc-bf16.safetensors", "original/google/umt5-xxl/spiece.model"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) unlink(path(files[i]));
    rmdir(path("diffusers/transformer")), rmdir(path("diffusers/vae")), rmdir(path("diffusers"));
    rmdir(path("original/google/umt5-xxl")), rmdir(path("original/google"));
    rmdir(path("original")), rmdir(root);
    return ts_test_summary("pipeline");
}
