/*
 * test_namemap.c — the checkpoint name binder on real files.
 *
 * A toy model (global entries, per-block entries, one optional entry, one entry that
 * exists in only one layout) is written with random data in the original layout, the
 * diffusers layout and the original layout under a ComfyUI prefix; each must bind with
 * the right layout detected and every field a view of the file's tensor. Then the error
 * cases: a missing tensor (named in the detected layout), an unexpected tensor, a
 * checkpoint mixing layouts, a checkpoint of something else. Also the shape check and
 * the fp32 copy helper.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "namemap.h"
#include "safetensors.h"
#include "test.h"

enum { NB = 3, D = 4 };

typedef struct toy_block {
    ts_tensor w, b, norm;
} toy_block;

typedef struct toy {
    ts_tensor embed, head, extra;
    toy_block blocks[NB];
} toy;

static const ts_name_entry toy_names[] = {
    {offsetof(toy, embed), {"embed.weight", "patch_embedder.proj.weight"}, 0, 0},
    {offsetof(toy, head), {"head.weight", "proj_out.weight"}, 0, 0},
    {offsetof(toy, extra), {"extra.weight", "extra_proj.weight"}, 0, 1},
    {offsetof(toy_block, w), {"blocks.%d.fc.weight", "transformer_blocks.%d.ff.weight"}, 1, 0},
    {offsetof(toy_block, b), {"blocks.%d.fc.bias", "transformer_blocks.%d.ff.bias"}, 1, 0},
    /* folded away by the diffusers conversion: only in the original layout */
    {offsetof(toy_block, norm), {"blocks.%d.norm.weight", NULL}, 1, 0},
};
static const char *const toy_prefixes[] = {"model.diffusion_model.", NULL};
static const ts_namemap toy_map = {toy_names, 6, NB, offsetof(toy, blocks), sizeof(toy_block), toy_prefixes, "toy"};

static char dir[] = "/tmp/tessera-nm-XXXXXX";
static float vals[64][D]; /* random data, one row per written tensor */

static const char *tpath(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

/* Names of a full checkpoint in layout lay (extra included when with_extra). */
static int toy_keys(int lay, int with_extra, const char *prefix, char names[][96]) {
    int n = 0;
    for (int i = 0; i < 6; i++) {
        const ts_name_entry *e = &toy_names[i];
        if (!e->key[lay] || (e->optional && !with_extra)) continue;
        for (int b = 0; b < (e->per_block ? NB : 1); b++) {
            char k[64];
            if (e->per_block) snprintf(k, sizeof k, e->key[lay], b);
            else snprintf(k, sizeof k, "%s", e->key[lay]);
            snprintf(names[n++], 96, "%s%s", prefix, k);
        }
    }
    return n;
}

/* Writes the named tensors ([D] bf16 or f32, random values) to file and opens it. */
static ts_weights *write_open(const char *file, char names[][96], int n) {
    ts_st_item it[64];
    static uint16_t bf[64][D];
    int64_t s[1] = {D};
    for (int i = 0; i < n; i++) {
        it[i].name = names[i];
        if (i % 2) {
            for (int j = 0; j < D; j++) bf[i][j] = ts_f32_to_bf16(vals[i][j]);
            it[i].t = ts_tensor_make(TS_DTYPE_BF16, 1, s, bf[i]);
        } else {
            it[i].t = ts_tensor_make(TS_DTYPE_F32, 1, s, vals[i]);
        }
    }
    ts_err e = {0};
    ts_weights *w = NULL;
    if (ts_st_write(tpath(file), it, n, NULL, 0, &e) != TS_OK || ts_weights_open(&w, tpath(file), &e) != TS_OK) {
        TS_CHECK(0, "write/open %s: %s", file, e.msg);
        return NULL;
    }
    unlink(tpath(file));
    return w;
}

/* Every bound field is the file's tensor (same data pointer) under the key of lay. */
static int fields_match(const toy *t, ts_weights *w, int lay, const char *prefix) {
    int ok = 1;
    for (int i = 0; i < 6; i++) {
        const ts_name_entry *e = &toy_names[i];
        for (int b = 0; b < (e->per_block ? NB : 1); b++) {
            const unsigned char *base = e->per_block ? (const unsigned char *)&t->blocks[b] : (const unsigned char *)t;
            const ts_tensor *f = (const ts_tensor *)(base + e->offset);
            char k[128], k2[64];
            if (!e->key[lay]) {
                ok &= f->data == NULL && f->ndim == 0;
                continue;
            }
            if (e->per_block) snprintf(k2, sizeof k2, e->key[lay], b);
            else snprintf(k2, sizeof k2, "%s", e->key[lay]);
            snprintf(k, sizeof k, "%s%s", prefix, k2);
            const ts_tensor *want = ts_weights_peek(w, k);
            if (!want) ok &= e->optional && f->data == NULL;
            else ok &= f->data == want->data && f->dtype == want->dtype && f->shape[0] == D;
        }
    }
    return ok;
}

static void test_layouts(void) {
    static char names[64][96];
    ts_err e = {0};
    ts_layout lay = (ts_layout)-1;
    toy t;

    int n = toy_keys(TS_LAYOUT_ORIGINAL, 0, "", names);
    ts_weights *w = write_open("orig.safetensors", names, n);
    memset(&t, 0x5a, sizeof t); /* garbage: the binder must clear what it does not fill */
    int bound = w && ts_namemap_bind(&toy_map, w, &t, &lay, &e) == TS_OK;
    TS_CHECK(bound && lay == TS_LAYOUT_ORIGINAL, "original: %s", e.msg);
    TS_CHECK(w && fields_match(&t, w, TS_LAYOUT_ORIGINAL, "") && t.extra.data == NULL, "original fields are views");
    TS_CHECK(w && ts_namemap_count_blocks(w, toy_prefixes, "blocks.") == NB, "original block count");
    /* values come through (the head is the second tensor written: bf16) */
    float *h = NULL;
    TS_CHECK(bound && ts_tensor_to_f32_alloc(&t.head, &h, &e) == TS_OK && h, "head to f32: %s", e.msg);
    if (h) TS_CHECK(h[2] == ts_bf16_to_f32(ts_f32_to_bf16(vals[1][2])), "head value %g", h[2]);
    free(h);
    ts_weights_close(w);

    n = toy_keys(TS_LAYOUT_DIFFUSERS, 1, "", names);
    w = write_open("diff.safetensors", names, n);
    memset(&t, 0x5a, sizeof t);
    TS_CHECK(w && ts_namemap_bind(&toy_map, w, &t, &lay, &e) == TS_OK && lay == TS_LAYOUT_DIFFUSERS, "diffusers: %s", e.msg);
    TS_CHECK(w && fields_match(&t, w, TS_LAYOUT_DIFFUSERS, "") && t.extra.data != NULL, "diffusers fields, optional bound");
    TS_CHECK(w && ts_namemap_count_blocks(w, toy_prefixes, "transformer_blocks.") == NB, "diffusers block count");
    ts_weights_close(w);

    n = toy_keys(TS_LAYOUT_ORIGINAL, 1, "model.diffusion_model.", names);
    w = write_open("comfy.safetensors", names, n);
    memset(&t, 0x5a, sizeof t);
    TS_CHECK(w && ts_namemap_bind(&toy_map, w, &t, &lay, &e) == TS_OK && lay == TS_LAYOUT_ORIGINAL, "prefixed: %s", e.msg);
    TS_CHECK(w && fields_match(&t, w, TS_LAYOUT_ORIGINAL, "model.diffusion_model.") && t.extra.data, "prefixed fields");
    TS_CHECK(w && ts_namemap_count_blocks(w, toy_prefixes, "blocks.") == NB, "prefixed block count");
    /* binding twice on the same set works (the used flags are reset) */
    TS_CHECK(w && ts_namemap_bind(&toy_map, w, &t, NULL, &e) == TS_OK, "second bind: %s", e.msg);
    ts_weights_close(w);
}

static void test_errors(void) {
    static char names[64][96];
    ts_err e = {0};
    ts_layout lay;
    toy t;

    /* missing: named by its key in the detected (diffusers) layout */
    int n = toy_keys(TS_LAYOUT_DIFFUSERS, 0, "", names);
    int drop = -1;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], "transformer_blocks.2.ff.bias") == 0) drop = i;
    TS_CHECK(drop >= 0, "key to drop");
    if (drop >= 0) memcpy(names[drop], names[n - 1], sizeof names[0]);
    ts_weights *w = write_open("miss.safetensors", names, n - 1);
    TS_CHECK(w && ts_namemap_bind(&toy_map, w, &t, &lay, &e) == TS_ERR_MISSING &&
                 strstr(e.msg, "'transformer_blocks.2.ff.bias'") && strstr(e.msg, "diffusers"),
             "missing: %s", e.msg);
    ts_weights_close(w);

    /* unexpected: a tensor no entry consumes */
    n = toy_keys(TS_LAYOUT_ORIGINAL, 0, "", names);
    snprintf(names[n++], 96, "blocks.1.fc.scale");
    w = write_open("extra.safetensors", names, n);
    TS_CHECK(w && ts_namemap_bind(&toy_map, w, &t, &lay, &e) == TS_ERR_UNEXPECTED && strstr(e.msg, "'blocks.1.fc.scale'"),
             "unexpected: %s", e.msg);
    ts_weights_close(w);

    /* mixed layouts: the majority layout wins and the stray key is reported */
    n = toy_keys(TS_LAYOUT_DIFFUSERS, 0, "", names);
    snprintf(names[n++], 96, "extra.weight");
    w = write_open("mixed.safetensors", names, n);
    TS_CHECK(w && ts_namemap_bind(&toy_map, w, &t, &lay, &e) == TS_ERR_UNEXPECTED && strstr(e.msg, "'extra.weight'"),
             "mixed layouts: %s", e.msg);
    ts_weights_close(w);

    /* an unrelated checkpoint: no known name at all */
    snprintf(names[0], 96, "encoder.conv_in.weight");
    snprintf(names[1], 96, "decoder.conv_out.weight");
    w = write_open("other.safetensors", names, 2);
    TS_CHECK(w && ts_namemap_bind(&toy_map, w, &t, &lay, &e) == TS_ERR_FORMAT && strstr(e.msg, "toy"),
             "unrelated checkpoint: %s", e.msg);
    TS_CHECK(w && ts_namemap_count_blocks(w, toy_prefixes, "blocks.") == 0, "no blocks");
    ts_weights_close(w);

    /* block count: the highest index counts, names that only look alike do not */
    const char *bn[] = {"blocks.0.a", "model.diffusion_model.blocks.6.a", "blocks.x.a", "blocks.9", "blocksx.12.a"};
    ts_tensor list[5];
    int64_t s1[1] = {1};
    for (int i = 0; i < 5; i++) {
        list[i] = ts_tensor_make(TS_DTYPE_F32, 1, s1, NULL);
        list[i].name = bn[i];
    }
    TS_CHECK(ts_weights_from_list(&w, list, 5, &e) == TS_OK, "list: %s", e.msg);
    TS_CHECK(w && ts_namemap_count_blocks(w, toy_prefixes, "blocks.") == 7, "count_blocks with prefix and noise");
    TS_CHECK(w && ts_namemap_count_blocks(w, NULL, "blocks.") == 1, "count_blocks without stripping");
    ts_weights_close(w);
}

static void test_helpers(void) {
    ts_err e = {0};
    int64_t s2[2] = {2, 3}, want[2] = {3, 2};
    ts_tensor tt = ts_tensor_make(TS_DTYPE_F32, 2, s2, NULL);
    tt.name = "blk.w";
    TS_CHECK(ts_check_shape(&tt, "w", 2, s2, &e) == TS_OK, "shape ok");
    TS_CHECK(ts_check_shape(&tt, "w", 2, want, &e) == TS_ERR_SHAPE && strstr(e.msg, "blk.w") && strstr(e.msg, "[2, 3]") &&
                 strstr(e.msg, "[3, 2]"),
             "shape message: %s", e.msg);
    TS_CHECK(ts_check_shape(&tt, "w", 1, s2, &e) == TS_ERR_SHAPE, "rank mismatch");

    float src[6];
    uint16_t h[6];
    ts_test_randn(src, 6, 5, 2.0f);
    for (int i = 0; i < 6; i++) h[i] = ts_f32_to_f16(src[i]);
    ts_tensor th = ts_tensor_make(TS_DTYPE_F16, 2, s2, h);
    float *out = NULL;
    TS_CHECK(ts_tensor_to_f32_alloc(&th, &out, &e) == TS_OK && out, "f16 to f32: %s", e.msg);
    int ok = out != NULL;
    for (int i = 0; i < 6 && out; i++) ok &= out[i] == ts_f16_to_f32(h[i]);
    TS_CHECK(ok, "f16 values");
    free(out);
    TS_CHECK(ts_tensor_to_f32_alloc(NULL, &out, &e) == TS_OK && out == NULL, "NULL tensor");
    int64_t iv[6] = {1, 2, 3, 4, 5, 6};
    ts_tensor ti = ts_tensor_make(TS_DTYPE_I64, 2, s2, iv);
    ti.name = "idx";
    TS_CHECK(ts_tensor_to_f32_alloc(&ti, &out, &e) == TS_ERR_FORMAT && out == NULL && strstr(e.msg, "idx"),
             "integer tensor: %s", e.msg);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    ts_test_randn(&vals[0][0], 64 * D, 1234, 1.0f);
    test_layouts();
    test_errors();
    test_helpers();
    rmdir(dir);
    return ts_test_summary("namemap");
}
