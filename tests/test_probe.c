/*
 * test_probe.c — the golden fixtures through the probe (ts_probe_run, what
 * tessera-probe runs): DiT output and intermediates, VAE encode and decode, the text
 * encoder from ids + mask and from a prompt, at the same tolerances as the unit tests; and
 * the errors for bad inputs.
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

/* Every block output in the fixture (diffusers' hooks, chunks concatenated in time) equals
 * the probe's tensor of the same name and shape; the probe writes no other block. */
static void compare_blocks(const char *outp, const char *blocks, const char *prefix) {
    ts_st_file *o = NULL, *r = NULL;
    ts_err e = {0};
    TS_CHECK(ts_st_open(&o, outp, &e) == TS_OK && ts_st_open(&r, ts_test_fixture(blocks), &e) == TS_OK, "open: %s", e.msg);
    int n_ref = 0, n_out = 0;
    for (int i = 0; r && o && i < ts_st_count(r); i++) {
        const ts_tensor *b = ts_st_tensor(r, i);
        if (strncmp(b->name, prefix, strlen(prefix))) continue;
        n_ref++;
        const ts_tensor *a = ts_st_find(o, b->name);
        int same = a && a->ndim == b->ndim;
        for (int d = 0; same && d < a->ndim; d++) same = a->shape[d] == b->shape[d];
        TS_CHECK(same, "%s: probe has '%s' with the fixture's shape", blocks, b->name);
        char what[160];
        snprintf(what, sizeof what, "probe %s %s", blocks, b->name);
        if (same) ts_test_compare(what, a->data, b->data, ts_tensor_numel(a), 1e-4, NULL);
    }
    for (int i = 0; o && i < ts_st_count(o); i++) n_out += strncmp(ts_st_tensor(o, i)->name, prefix, strlen(prefix)) == 0;
    TS_CHECK(n_ref > 3 && n_out == n_ref, "%s %s*: %d blocks in the fixture, %d from the probe", blocks, prefix, n_ref, n_out);
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
    ts_probe_opts o = {.component = "dit", .model = model, .inputs = tmp("dit_in.safetensors"),
                       .out = tmp("dit_out.safetensors"), .dump_intermediates = 1, .version = "test"};
    TS_CHECK(ts_probe_run(&c, &o, &e) == TS_OK, "probe dit: %s", e.msg);
    compare(tmp("dit_out.safetensors"), "out", "wan_dit_c_io.safetensors", "out", 1e-4);
    compare(tmp("dit_out.safetensors"), "blocks.0", "wan_dit_c_io.safetensors", "blocks.0", 1e-4);
    compare(tmp("dit_out.safetensors"), "text_emb", "wan_dit_c_io.safetensors", "text_emb", 1e-4);
    /* with a dense schedule the output is the same; the schedule lands in the metadata */
    char din[512], dout[512]; /* tmp() reuses its buffers */
    snprintf(din, sizeof din, "%s", tmp("dit_in.safetensors"));
    snprintf(dout, sizeof dout, "%s", tmp("dit_out.safetensors"));
    o.inputs = din, o.out = dout;
    o.attn = "dense", o.dump_intermediates = 0;
    TS_CHECK(ts_probe_run(&c, &o, &e) == TS_OK, "probe dit --attn dense: %s", e.msg);
    compare(dout, "out", "wan_dit_c_io.safetensors", "out", 1e-4);
    {
        ts_st_file *f = NULL;
        ts_st_open(&f, dout, &e);
        const char *cfgm = f ? ts_st_meta(f, "config") : NULL;
        TS_CHECK(cfgm && strstr(cfgm, "\"attn\": \"dense\"") && strstr(cfgm, "\"attn_mean_density\": 1.000000"),
                 "schedule in the metadata: %s", cfgm ? cfgm : "(none)");
        ts_st_close(f);
    }
    o.attn = "fancy";
    TS_CHECK(ts_probe_run(&c, &o, &e) == TS_ERR_FORMAT && strstr(e.msg, "unknown method"), "bad --attn: %s", e.msg);
    o.attn = NULL;

    snprintf(model, sizeof model, "%s", ts_test_fixture("wan_vae_a.safetensors"));
    const char *vn[] = {"latents"};
    make_inputs("wan_vae_a_io.safetensors", vn, vn, 1, tmp("vae_in.safetensors"));
    ts_probe_opts od = {.component = "vae-decode", .model = model, .inputs = tmp("vae_in.safetensors"),
                        .out = tmp("vae_out.safetensors"), .version = "test"};
    TS_CHECK(ts_probe_run(&c, &od, &e) == TS_OK, "probe vae-decode: %s", e.msg);
    compare(tmp("vae_out.safetensors"), "out", "wan_vae_a_io.safetensors", "decoded", 1e-4);
    const char *en[] = {"video"};
    make_inputs("wan_vae_a_io.safetensors", en, en, 1, tmp("vae_in.safetensors"));
    ts_probe_opts oe = {.component = "vae-encode", .model = model, .inputs = tmp("vae_in.safetensors"),
                        .out = tmp("vae_out.safetensors"), .version = "test"};
    TS_CHECK(ts_probe_run(&c, &oe, &e) == TS_OK, "probe vae-encode: %s", e.msg);
    compare(tmp("vae_out.safetensors"), "out", "wan_vae_a_io.safetensors", "latent_mean", 1e-4);
    /* block outputs of both fixture configs, decode and encode */
    for (int k = 0; k < 2; k++) {
        char wname[64], io[64], blocks[64];
        snprintf(wname, sizeof wname, "wan_vae_%c.safetensors", 'a' + k);
        snprintf(io, sizeof io, "wan_vae_%c_io.safetensors", 'a' + k);
        snprintf(blocks, sizeof blocks, "wan_vae_%c_blocks.safetensors", 'a' + k);
        snprintf(model, sizeof model, "%s", ts_test_fixture(wname));
        for (int enc = 0; enc < 2; enc++) {
            char vin[512], vout[512];
            snprintf(vin, sizeof vin, "%s", tmp("vae_in.safetensors"));
            snprintf(vout, sizeof vout, "%s", tmp("vae_out.safetensors"));
            make_inputs(io, enc ? en : vn, enc ? en : vn, 1, vin);
            ts_probe_opts ob = {.component = enc ? "vae-encode" : "vae-decode", .model = model, .inputs = vin,
                                .out = vout, .dump_intermediates = 1, .version = "test"};
            TS_CHECK(ts_probe_run(&c, &ob, &e) == TS_OK, "probe %s --dump-intermediates: %s", ob.component, e.msg);
            compare(vout, "out", io, enc ? "latent_mean" : "decoded", 1e-4);
            compare_blocks(vout, blocks, enc ? "encoder." : "decoder.");
        }
    }

    /* text encoder from ids + mask: every row (the padded ones too) and every block */
    snprintf(model, sizeof model, "%s", ts_test_fixture("umt5_a.safetensors"));
    const char *tn[] = {"input_ids", "attention_mask"};
    make_inputs("umt5_a_io.safetensors", tn, tn, 2, tmp("te_in.safetensors"));
    ts_probe_opts ot = {.component = "text-encoder", .model = model, .inputs = tmp("te_in.safetensors"),
                        .out = tmp("te_out.safetensors"), .dump_intermediates = 1, .version = "test"};
    TS_CHECK(ts_probe_run(&c, &ot, &e) == TS_OK, "probe text-encoder: %s", e.msg);
    compare(tmp("te_out.safetensors"), "out", "umt5_a_io.safetensors", "out", 1e-4);
    compare(tmp("te_out.safetensors"), "blocks.2", "umt5_a_io.safetensors", "blocks.2", 1e-4);
    /* from a prompt through a whole pipeline directory: the unpadded rows are Wan's embeddings */
    char pipe[512];
    snprintf(pipe, sizeof pipe, "%s", ts_test_fixture("wan_t2v"));
    ts_probe_opts op = {.component = "text-encoder", .model = pipe, .prompt = "a red circle moving to the right",
                        .out = tmp("te_out.safetensors"), .version = "test"};
    TS_CHECK(ts_probe_run(&c, &op, &e) == TS_OK, "probe text-encoder --prompt: %s", e.msg);
    ts_st_file *po = NULL, *pr = NULL;
    ts_st_open(&po, tmp("te_out.safetensors"), &e);
    ts_st_open(&pr, ts_test_fixture("wan_t2v_io.safetensors"), &e);
    if (po && pr) {
        const ts_tensor *out = ts_st_find(po, "out"), *mask = ts_st_find(po, "attention_mask");
        const ts_tensor *ref = ts_st_find(pr, "red.prompt_embeds");
        int64_t n = 0;
        for (int64_t i = 0; mask && i < mask->shape[1]; i++) n += ((const float *)mask->data)[i] > 0;
        TS_CHECK(out && ref && out->shape[1] == 512 && n > 1 && n < 20, "prompt output [1, 512, D], %lld tokens", (long long)n);
        if (out && ref) ts_test_compare("probe --prompt embeddings", out->data, ref->data, n * out->shape[2], 1e-4, NULL);
    }
    ts_st_close(po), ts_st_close(pr);
    /* a mask that is not right padding */
    {
        ts_st_file *f = NULL;
        ts_st_open(&f, ts_test_fixture("umt5_a_io.safetensors"), &e);
        const ts_tensor *ids = ts_st_find(f, "input_ids");
        int32_t bad_mask[80];
        for (int i = 0; i < 80; i++) bad_mask[i] = i % 2;
        ts_st_item it[2] = {{"input_ids", *ids}, {"attention_mask", ts_tensor_make(TS_DTYPE_I32, 2, ids->shape, bad_mask)}};
        ts_st_write(tmp("te_in.safetensors"), it, 2, NULL, 0, &e);
        ts_st_close(f);
        ot.out = tmp("te_bad.safetensors");
        TS_CHECK(ts_probe_run(&c, &ot, &e) == TS_ERR_INVALID_ARG && strstr(e.msg, "right padding"), "bad mask: %s", e.msg);
        const char *only_mask[] = {"attention_mask"};
        make_inputs("umt5_a_io.safetensors", only_mask, only_mask, 1, tmp("te_in.safetensors"));
        TS_CHECK(ts_probe_run(&c, &ot, &e) == TS_ERR_MISSING && strstr(e.msg, "input_ids"), "no ids: %s", e.msg);
        TS_CHECK(access(tmp("te_bad.safetensors"), F_OK) != 0, "no output on failure");
    }

    /* bad inputs: missing tensor, wrong shape, unknown component — each named */
    const char *only_x[] = {"x"};
    make_inputs("wan_dit_c_io.safetensors", only_x, only_x, 1, tmp("bad.safetensors"));
    snprintf(model, sizeof model, "%s", ts_test_fixture("wan_dit_c.safetensors"));
    ts_probe_opts ob = {.component = "dit", .model = model, .inputs = tmp("bad.safetensors"),
                        .out = tmp("x.safetensors"), .version = "test"};
    TS_CHECK(ts_probe_run(&c, &ob, &e) == TS_ERR_MISSING && strstr(e.msg, "'t'") && strstr(e.msg, "[B]"),
             "missing t named: %s", e.msg);
    const char *ctx_as_x[] = {"context", "t", "context"}, *names[] = {"x", "t", "context"};
    make_inputs("wan_dit_c_io.safetensors", ctx_as_x, names, 3, tmp("bad.safetensors"));
    TS_CHECK(ts_probe_run(&c, &ob, &e) == TS_ERR_SHAPE && strstr(e.msg, "'x'") && strstr(e.msg, "[B, 16, F, H, W]"),
             "mis-shaped x named: %s", e.msg);
    ob.component = "flux";
    TS_CHECK(ts_probe_run(&c, &ob, &e) == TS_ERR_INVALID_ARG && strstr(e.msg, "available: dit") &&
             strstr(e.msg, "text-encoder"), "unknown component: %s", e.msg);
    ob.component = "dit", ob.prompt = "a prompt";
    TS_CHECK(ts_probe_run(&c, &ob, &e) == TS_ERR_INVALID_ARG && strstr(e.msg, "text-encoder"), "prompt to the DiT: %s", e.msg);
    ob.prompt = NULL;
    TS_CHECK(access(tmp("x.safetensors"), F_OK) != 0, "no output written on failure");

    const char *files[] = {"dit_in.safetensors", "dit_out.safetensors", "vae_in.safetensors", "vae_out.safetensors",
                           "bad.safetensors", "te_in.safetensors", "te_out.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) unlink(tmp(files[i]));
    rmdir(dir);
    return ts_test_summary("probe");
}
