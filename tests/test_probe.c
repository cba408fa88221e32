/*
 * test_probe.c — the golden fixtures through the probe (ts_probe_run, what
 * tessera-probe runs): DiT output and intermediates, VAE encode and decode, at the same
 * tolerances as the unit tests; and the errors for bad inputs.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "probe.h"
#include "safetensors.h"
#include "test.h"

static char dir[] = "/tmp/tessera-probe-XXXXXX";

static const char *tmp(const char *name) {
    static char buf[2][512];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* Writes a subset of the fixture io file's tensors (renamed) as probe inputs. */
static void make_inputs(const char *io, const char *const *names, const char *const *as, int n,
                        const char *dst) {
    ts_st_file *f = NULL;
    ts_err e = {0};
    ts_st_open(&f, ts_test_fixture(io), &e);
    ts_st_item it[8];
    for (int i = 0; i < n; i++) {
        it[i].name = as[i];
        it[i].t = *ts_st_find(f, names[i]);
    }
    TS_CHECK(ts_st_write(dst, it, n, NULL, 0, &e) == TS_OK, "write inputs: %s", e.msg);
    ts_st_close(f);
}

/* Compares tensor `name` of out with `ref_name` of the fixture io file. */
static void compare(const char *outp, const char *name, const char *io, const char *ref_name, double tol) {
    ts_st_file *o = NULL, *r = NULL;
    ts_err e = {0};
    TS_CHECK(ts_st_open(&o, outp, &e) == TS_OK, "open out: %s", e.msg);
    ts_st_open(&r, ts_test_fixture(io), &e);
    if (o && r) {
        const ts_tensor *a = ts_st_find(o, name), *b = ts_st_find(r, ref_name);
        TS_CHECK(a && b && ts_tensor_numel(a) == ts_tensor_numel(b) && a->ndim == b->ndim,
                 "%s: '%s' present with the fixture's shape", io, name);
        char what[128];
        snprintf(what, sizeof what, "probe %s %s", io, name);
        if (a && b && ts_tensor_numel(a) == ts_tensor_numel(b))
            ts_test_compare(what, a->data, b->data, ts_tensor_numel(a), tol, NULL);
        TS_CHECK(ts_st_meta(o, "component") && ts_st_meta(o, "config") && ts_st_meta(o, "threads"),
                 "metadata recorded");
    }
    ts_st_close(o);
    ts_st_close(r);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    ts_ctx c;
    ts_ctx_init(&c, 0);
    ts_err e = {0};
    char model[512];

    const char *dn[] = {"x", "t", "context"};
    make_inputs("wan_dit_c_io.safetensors", dn, dn, 3, tmp("dit_in.safetensors"));
    snprintf(model, sizeof model, "%s", ts_test_fixture("wan_dit_c.safetensors"));
    ts_probe_opts o = {"dit", model, tmp("dit_in.safetensors"), tmp("dit_out.safetensors"), 1, 0, "test"};
    TS_CHECK(ts_probe_run(&c, &o, &e) == TS_OK, "probe dit: %s", e.msg);
    compare(tmp("dit_out.safetensors"), "out", "wan_dit_c_io.safetensors", "out", 1e-4);
    compare(tmp("dit_out.safetensors"), "blocks.0", "wan_dit_c_io.safetensors", "blocks.0", 1e-4);
    compare(tmp("dit_out.safetensors"), "text_emb", "wan_dit_c_io.safetensors", "text_emb", 1e-4);

    snprintf(model, sizeof model, "%s", ts_test_fixture("wan_vae_a.safetensors"));
    const char *vn[] = {"latents"};
    make_inputs("wan_vae_a_io.safetensors", vn, vn, 1, tmp("vae_in.safetensors"));
    ts_probe_opts od = {"vae-decode", model, tmp("vae_in.safetensors"), tmp("vae_out.safetensors"), 0, 0, "test"};
    TS_CHECK(ts_probe_run(&c, &od, &e) == TS_OK, "probe vae-decode: %s", e.msg);
    compare(tmp("vae_out.safetensors"), "out", "wan_vae_a_io.safetensors", "decoded", 1e-4);
    const char *en[] = {"video"};
    make_inputs("wan_vae_a_io.safetensors", en, en, 1, tmp("vae_in.safetensors"));
    ts_probe_opts oe = {"vae-encode", model, tmp("vae_in.safetensors"), tmp("vae_out.safetensors"), 0, 0, "test"};
    TS_CHECK(ts_probe_run(&c, &oe, &e) == TS_OK, "probe vae-encode: %s", e.msg);
    compare(tmp("vae_out.safetensors"), "out", "wan_vae_a_io.safetensors", "latent_mean", 1e-4);

    /* bad inputs: missing tensor, wrong shape, unknown component — each named */
    const char *only_x[] = {"x"};
    make_inputs("wan_dit_c_io.safetensors", only_x, only_x, 1, tmp("bad.safetensors"));
    snprintf(model, sizeof model, "%s", ts_test_fixture("wan_dit_c.safetensors"));
    ts_probe_opts ob = {"dit", model, tmp("bad.safetensors"), tmp("x.safetensors"), 0, 0, "test"};
    TS_CHECK(ts_probe_run(&c, &ob, &e) == TS_ERR_MISSING && strstr(e.msg, "'t'") && strstr(e.msg, "[B]"),
             "missing t named: %s", e.msg);
    const char *ctx_as_x[] = {"context", "t", "context"}, *names[] = {"x", "t", "context"};
    make_inputs("wan_dit_c_io.safetensors", ctx_as_x, names, 3, tmp("bad.safetensors"));
    TS_CHECK(ts_probe_run(&c, &ob, &e) == TS_ERR_SHAPE && strstr(e.msg, "'x'") && strstr(e.msg, "[B, 16, F, H, W]"),
             "mis-shaped x named: %s", e.msg);
    ob.component = "text-encoder";
    TS_CHECK(ts_probe_run(&c, &ob, &e) == TS_ERR_INVALID_ARG && strstr(e.msg, "available: dit"), "unknown component: %s", e.msg);
    TS_CHECK(access(tmp("x.safetensors"), F_OK) != 0, "no output written on failure");

    const char *files[] = {"dit_in.safetensors", "dit_out.safetensors", "vae_in.safetensors", "vae_out.safetensors", "bad.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) unlink(tmp(files[i]));
    rmdir(dir);
    return ts_test_summary("probe");
}
