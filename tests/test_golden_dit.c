/*
 * test_golden_dit.c — the Wan DiT against diffusers golden fixtures (tools/golden/make_wan_dit.py).
 *
 * For each tiny config: forward in fp32 and compare the output and every named
 * intermediate (rel-L2 ≤ 1e-4); the same weights renamed to the original Wan layout,
 * and with ComfyUI's prefix, give the same output; BF16 weights stay within 1e-2; a
 * checkpoint with a missing, an extra or a mis-shaped tensor is rejected by name.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dit/wan.h"
#include "namemap.h"
#include "safetensors.h"
#include "test.h"
#include "wan_rename.h"

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
    if (st_out) *st_out = st;
    if (st != TS_OK) return NULL;
    const ts_tensor *x = ts_st_find(io, "x"), *t = ts_st_find(io, "t"), *ctx = ts_st_find(io, "context");
    const wan_config *cfg = wan_model_config(m);
    int64_t F = x->shape[2], H = x->shape[3], W = x->shape[4], L = ctx->shape[1];
    ts_ctx c;
    ts_ctx_init(&c, 0);
    ts_arena arena;
    ts_arena_init(&arena, wan_arena_bytes(cfg, F, H, W, L));
    c.arena = &arena;
    float *out = malloc((size_t)(cfg->out_ch * F * H * W) * sizeof(float));
    st = wan_forward(&c, m, NULL, 0, 1, x->data, F, H, W, ((float *)t->data)[0], ctx->data, L, out,
                     hk ? on_hook : NULL, hk, err);
    if (st_out) *st_out = st;
    ts_arena_free(&arena);
    wan_free(m);
    if (st != TS_OK) {
        free(out);
        return NULL;
    }
    return out;
}

/* Writes the weights of src with each name passed through rename() (and optionally
 * dtype-converted to BF16, one tensor dropped, one added, one reshaped). */
typedef struct rewrite {
    const char *prefix;     /* prepended to every name */
    int to_original;        /* diffusers → original names */
    int bf16;
    const char *drop;       /* diffusers name to leave out */
    int add_extra;
    const char *reshape;    /* diffusers name written with a wrong shape */
} rewrite;

static int write_variant(const char *src, const char *dst, const rewrite *r) {
    ts_st_file *f = NULL;
    ts_err e = {0};
    if (ts_st_open(&f, src, &e) != TS_OK) return -1;
    int n = ts_st_count(f);
    ts_st_item *items = calloc((size_t)n + 1, sizeof *items);
    char (*names)[300] = calloc((size_t)n + 1, sizeof *names);
    void **bufs = calloc((size_t)n + 1, sizeof *bufs);
    int k = 0;
    for (int i = 0; i < n; i++) {
        const ts_tensor *t = ts_st_tensor(f, i);
        if (r->drop && strcmp(t->name, r->drop) == 0) continue;
        char nm[256];
        if (r->to_original) wan_dit_to_original(t->name, nm, sizeof nm);
        else snprintf(nm, sizeof nm, "%s", t->name);
        snprintf(names[k], sizeof names[k], "%s%s", r->prefix ? r->prefix : "", nm);
        items[k].name = names[k];
        items[k].t = *t;
        if (r->reshape && strcmp(t->name, r->reshape) == 0 && t->ndim == 2) {
            int64_t s[2] = {t->shape[1], t->shape[0]};
            items[k].t = ts_tensor_make(t->dtype, 2, s, t->data);
        }
        if (r->bf16) {
            int64_t ne = ts_tensor_numel(t);
            uint16_t *b = malloc((size_t)ne * 2);
            for (int64_t j = 0; j < ne; j++) b[j] = ts_f32_to_bf16(((const float *)t->data)[j]);
            bufs[k] = b;
            items[k].t.dtype = TS_DTYPE_BF16;
            items[k].t.data = b;
        }
        k++;
    }
    float extra[3] = {1, 2, 3};
    if (r->add_extra) {
        int64_t s[1] = {3};
        items[k].name = "blocks.0.surprise.weight";
        items[k].t = ts_tensor_make(TS_DTYPE_F32, 1, s, extra);
        k++;
    }
    int rc = ts_st_write(dst, items, k, NULL, 0, &e) == TS_OK ? 0 : -1;
    for (int i = 0; i < n; i++) free(bufs[i]);
    free(bufs), free(items), free(names);
    ts_st_close(f);
    return rc;
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

    struct { const char *label; rewrite r; double tol; } vars[] = {
        {"original layout", {NULL, 1, 0, NULL, 0, NULL}, 1e-6},
        {"ComfyUI prefix", {"model.diffusion_model.", 1, 0, NULL, 0, NULL}, 1e-6},
        {"bf16 weights", {NULL, 0, 1, NULL, 0, NULL}, 2e-2},
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        snprintf(tmp, sizeof tmp, "%s/variant.safetensors", tmpdir);
        TS_CHECK(write_variant(wpath, tmp, &vars[i].r) == 0, "write %s", vars[i].label);
        float *o2 = run(tmp, io, head_dim, NULL, &e, &st);
        TS_CHECK(o2 != NULL, "%s %s: %s", name, vars[i].label, e.msg);
        if (o2) {
            snprintf(what, sizeof what, "%s %s vs diffusers layout", name, vars[i].label);
            ts_test_compare(what, o2, vars[i].tol < 1e-3 ? out : ref->data, n, vars[i].tol, NULL);
        }
        free(o2);
    }
    /* rejections, each must name the tensor */
    struct { rewrite r; ts_status want; const char *needle; } bad[] = {
        {{NULL, 0, 0, "blocks.0.attn2.to_k.bias", 0, NULL}, TS_ERR_MISSING, "blocks.0.attn2.to_k.bias"},
        {{NULL, 0, 0, NULL, 1, NULL}, TS_ERR_UNEXPECTED, "blocks.0.surprise.weight"},
        {{NULL, 0, 0, NULL, 0, "blocks.0.ffn.net.0.proj.weight"}, TS_ERR_SHAPE, "blocks.0.ffn.net.0.proj.weight"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(tmp, sizeof tmp, "%s/bad.safetensors", tmpdir);
        write_variant(wpath, tmp, &bad[i].r);
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

int main(void) {
    char tmpdir[] = "/tmp/tessera-dit-XXXXXX";
    if (!mkdtemp(tmpdir)) return 1;
    test_config("wan_dit_a", 12, tmpdir);
    test_config("wan_dit_b", 64, tmpdir);
    test_config("wan_dit_c", 128, tmpdir);
    char p[300];
    snprintf(p, sizeof p, "%s/variant.safetensors", tmpdir);
    unlink(p);
    rmdir(tmpdir);
    return ts_test_summary("golden_dit");
}
