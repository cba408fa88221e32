/*
 * test_golden_dit.c — the Wan DiT against diffusers golden fixtures (tools/golden/make_wan_dit.py).
 *
 * For each tiny config: forward in fp32 and compare the output and every named
 * intermediate (rel-L2 ≤ 1e-4); the same weights renamed to the original Wan layout,
 * and with ComfyUI's prefix, give the same output; BF16 weights stay within 1e-2; a
 * checkpoint with a missing, an extra or a mis-shaped tensor is rejected by name.
 * Also: head_dim from a config.json beside the weights (diffusers and original
 * spelling), and forward's errors for a missing or too small arena and a latent that is
 * not a multiple of the patch.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dit/wan.h"
#include "namemap.h"
#include "safetensors.h"
#include "test.h"
#include "wan_rename.h"
#include "wan_run.h"
#include "st_variant.h"

typedef struct hook_ctx {
    const ts_st_file *io;
    int checked;
    const char *cfg;
} hook_ctx;

static void on_hook(void *user, const char *name, const float *data, int64_t n) {
    hook_ctx *h = user;
    const ts_tensor *ref = ts_st_find(h->io, name);
    if (!ref) return;
    char what[96];
    snprintf(what, sizeof what, "%s %s", h->cfg, name);
    TS_CHECK(ts_tensor_numel(ref) == n, "%s: %lld values, fixture has %lld", what, (long long)n,
             (long long)ts_tensor_numel(ref));
    if (ts_tensor_numel(ref) == n) ts_test_compare(what, data, ref->data, n, 1e-4, NULL);
    h->checked++;
}

/* Runs the model at path on the fixture inputs; returns the output (malloc'd) or NULL. */
static float *run(const char *path, const ts_st_file *io, int64_t head_dim, hook_ctx *hk,
                  ts_err *err, ts_status *st_out) {
    wan_load_opts o = {head_dim};
    wan_model *m = NULL;
    ts_status st = wan_load(&m, path, &o, err);
    float *out = st == TS_OK ? ts_test_wan_forward(m, io, NULL, 0, 1, hk ? on_hook : NULL, hk, NULL, err) : NULL;
    if (st_out) *st_out = out ? TS_OK : err->code;
    wan_free(m);
    return out;
}

static void test_config(const char *name, int64_t head_dim, const char *tmpdir) {
    char wpath[256], iopath[256], tmp[512];
    snprintf(wpath, sizeof wpath, "%s", ts_test_fixture(name));
    strcat(wpath, ".safetensors");
    char ioname[64];
    snprintf(ioname, sizeof ioname, "%s_io.safetensors", name);
    snprintf(iopath, sizeof iopath, "%s", ts_test_fixture(ioname));
    ts_st_file *io = NULL;
    ts_err e = {0};
    if (ts_st_open(&io, iopath, &e) != TS_OK) {
        TS_CHECK(0, "cannot open fixture: %s", e.msg);
        return;
    }
    const ts_tensor *ref = ts_st_find(io, "out");
    int64_t n = ts_tensor_numel(ref);
    hook_ctx hk = {io, 0, name};
    ts_status st;
    float *out = run(wpath, io, head_dim, &hk, &e, &st);
    TS_CHECK(out != NULL, "%s: forward failed: %s", name, e.msg);
    if (!out) goto done;
    char what[128];
    snprintf(what, sizeof what, "%s out (diffusers layout)", name);
    ts_test_compare(what, out, ref->data, n, 1e-4, NULL);
    TS_CHECK(hk.checked >= 5, "%s: only %d intermediates compared", name, hk.checked);

    struct { const char *label; ts_test_rewrite r; double tol; } vars[] = {
        {"original layout", {.rename = wan_dit_rename_cb}, 1e-6},
        {"ComfyUI prefix", {.rename = wan_dit_rename_cb, .prefix = "model.diffusion_model."}, 1e-6},
        {"bf16 weights", {.bf16 = 1}, 1e-2}, /* measured 3e-3 .. 5e-3 */
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        snprintf(tmp, sizeof tmp, "%s/variant.safetensors", tmpdir);
        TS_CHECK(ts_test_write_variant(wpath, tmp, &vars[i].r) == 0, "write %s", vars[i].label);
        float *o2 = run(tmp, io, head_dim, NULL, &e, &st);
        TS_CHECK(o2 != NULL, "%s %s: %s", name, vars[i].label, e.msg);
        if (o2) {
            snprintf(what, sizeof what, "%s %s vs %s", name, vars[i].label,
                     vars[i].tol < 1e-3 ? "the diffusers-layout run" : "the fixture");
            ts_test_stats stats;
            ts_test_compare(what, o2, vars[i].tol < 1e-3 ? out : ref->data, n, vars[i].tol, &stats);
            printf("  %s: rel-L2 %.2e\n", what, stats.rel_l2);
        }
        free(o2);
    }
    /* rejections, each must name the tensor */
    struct { ts_test_rewrite r; ts_status want; const char *needle; } bad[] = {
        {{.drop = "blocks.0.attn2.to_k.bias"}, TS_ERR_MISSING, "blocks.0.attn2.to_k.bias"},
        {{.extra = "blocks.0.surprise.weight"}, TS_ERR_UNEXPECTED, "blocks.0.surprise.weight"},
        {{.reshape = "blocks.0.ffn.net.0.proj.weight"}, TS_ERR_SHAPE, "blocks.0.ffn.net.0.proj.weight"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(tmp, sizeof tmp, "%s/bad.safetensors", tmpdir);
        ts_test_write_variant(wpath, tmp, &bad[i].r);
        wan_model *m = NULL;
        wan_load_opts o = {head_dim};
        ts_err_clear(&e);
        ts_status s = wan_load(&m, tmp, &o, &e);
        TS_CHECK(s == bad[i].want && strstr(e.msg, bad[i].needle), "%s: bad checkpoint %zu: status %s, msg '%s'",
                 name, i, ts_status_str(s), e.msg);
        wan_free(m);
    }
    unlink(tmp);
    free(out);
done:
    ts_st_close(io);
}

static int write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    if (!fp) return -1;
    fputs(text, fp);
    return fclose(fp);
}

/* dit_a (dim 24, head_dim 12): head_dim from the fixture's metadata; for a copy without
 * metadata the default 128 does not divide dim and the load fails saying so; a
 * config.json in the weights' directory supplies it. */
static void test_config_json(const char *tmpdir) {
    char wpath[256], wcopy[300], iopath[256], cfgpath[300], dir[256];
    snprintf(wpath, sizeof wpath, "%s", ts_test_fixture("wan_dit_a.safetensors")); /* static buffer */
    snprintf(iopath, sizeof iopath, "%s", ts_test_fixture("wan_dit_a_io.safetensors"));
    ts_st_file *io = NULL;
    ts_err e = {0};
    if (ts_st_open(&io, iopath, &e) != TS_OK) {
        TS_CHECK(0, "cannot open fixture: %s", e.msg);
        return;
    }
    const ts_tensor *ref = ts_st_find(io, "out");
    ts_status s;
    /* the fixture carries its diffusers config in the safetensors metadata */
    float *o0 = run(wpath, io, 0, NULL, &e, &s);
    TS_CHECK(o0 != NULL, "dit_a, head_dim from the file's metadata: %s", e.msg);
    if (o0) ts_test_compare("dit_a head_dim from metadata", o0, ref->data, ts_tensor_numel(ref), 1e-4, NULL);
    free(o0);

    /* a copy without metadata (ts_test_write_variant keeps none unless told) and no config.json */
    snprintf(dir, sizeof dir, "%s/cfg", tmpdir);
    mkdir(dir, 0700);
    snprintf(wcopy, sizeof wcopy, "%s/model.safetensors", dir);
    snprintf(cfgpath, sizeof cfgpath, "%s/config.json", dir);
    ts_test_rewrite plain = {0};
    TS_CHECK(ts_test_write_variant(wpath, wcopy, &plain) == 0, "copy dit_a");
    wan_model *m = NULL;
    s = wan_load(&m, wcopy, NULL, &e);
    TS_CHECK(s == TS_ERR_SHAPE && strstr(e.msg, "head_dim"), "dit_a without head_dim: %s '%s'",
             ts_status_str(s), e.msg);
    wan_free(m);
    const char *cfgs[] = {"{\"attention_head_dim\": 12, \"num_attention_heads\": 2, \"num_layers\": 2}",
                          "{\"dim\": 24, \"num_heads\": 2, \"num_layers\": 2}"};
    for (int i = 0; i < 2; i++) {
        TS_CHECK(write_text(cfgpath, cfgs[i]) == 0, "write config.json");
        const char *paths[] = {wcopy, dir};
        for (int j = 0; j < 2; j++) {
            float *o = run(paths[j], io, 0, NULL, &e, &s);
            TS_CHECK(o != NULL, "dit_a, config.json %d, path %s: %s", i, paths[j], e.msg);
            if (o) {
                char what[64];
                snprintf(what, sizeof what, "dit_a head_dim from config.json %d path %d", i, j);
                ts_test_compare(what, o, ref->data, ts_tensor_numel(ref), 1e-4, NULL);
            }
            free(o);
        }
    }

    /* forward errors: no arena, an arena too small, a latent not a multiple of the patch */
    wan_load_opts o = {12};
    s = wan_load(&m, wpath, &o, &e);
    TS_CHECK(s == TS_OK, "load dit_a: %s", e.msg);
    if (s == TS_OK) {
        const ts_tensor *x = ts_st_find(io, "x"), *ctx = ts_st_find(io, "context");
        int64_t F = x->shape[2], H = x->shape[3], W = x->shape[4], L = ctx->shape[1];
        float *out = malloc((size_t)ts_tensor_numel(ref) * sizeof(float));
        ts_ctx c;
        ts_ctx_init(&c, 0);
        ts_arena arena;
        c.arena = NULL;
        s = wan_forward(&c, m, NULL, 0, 1, x->data, F, H, W, 500.0f, ctx->data, L, out, NULL, NULL, &e);
        TS_CHECK(s != TS_OK && strstr(e.msg, "arena"), "no arena: %s '%s'", ts_status_str(s), e.msg);
        ts_arena_init(&arena, wan_arena_bytes(wan_model_config(m), F, H, W, L) / 2);
        c.arena = &arena;
        s = wan_forward(&c, m, NULL, 0, 1, x->data, F, H, W, 500.0f, ctx->data, L, out, NULL, NULL, &e);
        TS_CHECK(s == TS_ERR_NOMEM && strstr(e.msg, "arena"), "small arena: %s '%s'", ts_status_str(s), e.msg);
        s = wan_forward(&c, m, NULL, 0, 1, x->data, F, H - 1, W, 500.0f, ctx->data, L, out, NULL, NULL, &e);
        TS_CHECK(s == TS_ERR_SHAPE && strstr(e.msg, "patch"), "odd latent: %s '%s'", ts_status_str(s), e.msg);
        ts_arena_free(&arena);
        free(out);
    }
    wan_free(m);
    unlink(cfgpath);
    unlink(wcopy);
    rmdir(dir);
    ts_st_close(io);
}

int main(void) {
    char tmpdir[] = "/tmp/tessera-dit-XXXXXX";
    if (!mkdtemp(tmpdir)) return 1;
    test_config("wan_dit_a", 12, tmpdir);
    test_config("wan_dit_b", 64, tmpdir);
    test_config("wan_dit_c", 128, tmpdir);
    test_config_json(tmpdir);
    char p[300];
    snprintf(p, sizeof p, "%s/variant.safetensors", tmpdir);
    unlink(p);
    rmdir(tmpdir);
    return ts_test_summary("golden_dit");
}
