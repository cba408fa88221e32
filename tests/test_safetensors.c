/*
 * test_safetensors.c — reader, writer, weight sets, name maps.
 *
 * Round trip through ts_st_write; a file written by Python's safetensors package
 * (tests/fixtures/st_python.safetensors) reads back with the right values; every kind
 * of malformed file gives TS_ERR_FORMAT (never a crash); sharded checkpoints and
 * directories load as one set; the name-map binder detects the layout, strips prefixes
 * and names missing and unexpected tensors.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "namemap.h"
#include "safetensors.h"
#include "test.h"

static char dir[] = "/tmp/tessera-st-XXXXXX";

static const char *tpath(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_raw(const char *name, const char *json, size_t data_bytes, int64_t hlen_override) {
    FILE *fp = fopen(tpath(name), "wb");
    uint64_t hl = hlen_override >= 0 ? (uint64_t)hlen_override : strlen(json);
    unsigned char l8[8];
    for (int i = 0; i < 8; i++) l8[i] = (unsigned char)(hl >> (8 * i));
    fwrite(l8, 1, 8, fp);
    fwrite(json, 1, strlen(json), fp);
    for (size_t i = 0; i < data_bytes; i++) fputc((int)(i * 7 + 1), fp);
    fclose(fp);
}

static void expect_bad(const char *label, const char *json, size_t data, int64_t hl) {
    write_raw("bad.safetensors", json, data, hl);
    ts_st_file *f = NULL;
    ts_err e = {0};
    ts_status s = ts_st_open(&f, tpath("bad.safetensors"), &e);
    TS_CHECK(s == TS_ERR_FORMAT && f == NULL && e.msg[0], "%s: status %s msg '%s'", label,
             ts_status_str(s), e.msg);
}

static void test_roundtrip(void) {
    float a[6] = {1.5f, -2, 3, 4.25f, 5, 6};
    uint16_t b[4];
    for (int i = 0; i < 4; i++) b[i] = ts_f32_to_bf16((float)i - 1.5f);
    int64_t c[2] = {-7, 1ll << 40};
    int64_t sa[2] = {2, 3}, sb[1] = {4}, sc[1] = {2}, sz[2] = {0, 5};
    ts_st_item items[] = {
        {"a", ts_tensor_make(TS_DTYPE_F32, 2, sa, a)},
        {"b.bf16", ts_tensor_make(TS_DTYPE_BF16, 1, sb, b)},
        {"c", ts_tensor_make(TS_DTYPE_I64, 1, sc, c)},
        {"empty", ts_tensor_make(TS_DTYPE_F16, 2, sz, NULL)},
    };
    const char *meta[] = {"seed", "42", "note", "hello"};
    ts_err e = {0};
    TS_CHECK(ts_st_write(tpath("rt.safetensors"), items, 4, meta, 2, &e) == TS_OK, "write: %s", e.msg);
    ts_st_file *f = NULL;
    TS_CHECK(ts_st_open(&f, tpath("rt.safetensors"), &e) == TS_OK, "open: %s", e.msg);
    if (!f) return;
    TS_CHECK(ts_st_count(f) == 4, "count %d", ts_st_count(f));
    const ts_tensor *ta = ts_st_find(f, "a"), *tb = ts_st_find(f, "b.bf16"), *tc = ts_st_find(f, "c");
    TS_CHECK(ta && ta->ndim == 2 && ta->shape[1] == 3 && memcmp(ta->data, a, sizeof a) == 0, "a round trip");
    TS_CHECK(tb && tb->dtype == TS_DTYPE_BF16 && memcmp(tb->data, b, sizeof b) == 0, "bf16 round trip");
    TS_CHECK(tc && memcmp(tc->data, c, sizeof c) == 0, "i64 round trip");
    TS_CHECK(ts_st_find(f, "empty") && ts_tensor_numel(ts_st_find(f, "empty")) == 0, "empty tensor");
    TS_CHECK(ts_st_meta(f, "seed") && strcmp(ts_st_meta(f, "seed"), "42") == 0, "metadata");
    TS_CHECK(ts_st_find(f, "nope") == NULL, "absent name");
    ts_st_close(f);
    /* no temp file left behind */
    TS_CHECK(access(tpath("rt.safetensors.tmp"), F_OK) != 0, "no temp file");
    /* writing into a missing directory fails cleanly */
    TS_CHECK(ts_st_write("/nonexistent-dir/x.safetensors", items, 1, NULL, 0, &e) == TS_ERR_IO, "write to missing dir");
}

static void test_python_file(void) {
    ts_st_file *f = NULL;
    ts_err e = {0};
    TS_CHECK(ts_st_open(&f, ts_test_fixture("st_python.safetensors"), &e) == TS_OK, "python file: %s", e.msg);
    if (!f) return;
    const ts_tensor *a = ts_st_find(f, "f32"), *b = ts_st_find(f, "bf16"), *h = ts_st_find(f, "f16"),
                    *i = ts_st_find(f, "i64");
    TS_CHECK(a && a->dtype == TS_DTYPE_F32 && ts_tensor_numel(a) == 6, "f32 present");
    TS_CHECK(b && b->dtype == TS_DTYPE_BF16 && h && h->dtype == TS_DTYPE_F16 && i, "bf16/f16/i64 present");
    if (a && b && h && i) {
        /* values are arange(n) * 0.5 - 1 in every float dtype, arange in i64 */
        int ok = 1;
        float v[6];
        ts_convert_to_f32(v, a->data, a->dtype, 0, 6);
        for (int k = 0; k < 6; k++) ok &= v[k] == k * 0.5f - 1;
        ts_convert_to_f32(v, b->data, b->dtype, 0, 4);
        for (int k = 0; k < 4; k++) ok &= v[k] == k * 0.5f - 1;
        ts_convert_to_f32(v, h->data, h->dtype, 0, 4);
        for (int k = 0; k < 4; k++) ok &= v[k] == k * 0.5f - 1;
        for (int k = 0; k < 3; k++) ok &= ((const int64_t *)i->data)[k] == k;
        TS_CHECK(ok, "python-written values");
    }
    TS_CHECK(ts_st_meta(f, "made_by") != NULL, "python metadata");
    ts_st_close(f);
}

static void test_malformed(void) {
    FILE *fp = fopen(tpath("short.safetensors"), "wb");
    fwrite("abc", 1, 3, fp);
    fclose(fp);
    ts_st_file *f = NULL;
    ts_err e = {0};
    TS_CHECK(ts_st_open(&f, tpath("short.safetensors"), &e) == TS_ERR_FORMAT, "3-byte file: %s", e.msg);
    TS_CHECK(ts_st_open(&f, tpath("does-not-exist"), &e) == TS_ERR_IO, "missing file");
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    expect_bad("header length past EOF", ok, 8, 1 << 20);
    expect_bad("header length huge", ok, 8, (int64_t)1 << 62);
    expect_bad("data cut short", ok, 4, -1);
    expect_bad("not JSON", "{\"a\": [1, 2", 8, -1);
    expect_bad("JSON array", "[1, 2, 3]", 8, -1);
    expect_bad("entry not object", "{\"a\": 5}", 8, -1);
    expect_bad("missing dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1);
    expect_bad("unknown dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1);
    expect_bad("size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 12, -1);
    expect_bad("negative shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, -1);
    expect_bad("fractional shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8, -1);
    expect_bad("overflowing shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,8]}}", 8, -1);
    expect_bad("begin > end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, -1);
    expect_bad("out of range", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 8, -1);
    expect_bad("offsets not 2", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, -1);
    expect_bad("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, -1);
    expect_bad("duplicate key", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, -1);
    expect_bad("bad metadata", "{\"__metadata__\":{\"k\":3}}", 0, -1);
    /* found by the fuzzer: a second __metadata__ overflowed the metadata table */
    expect_bad("duplicate metadata", "{\"__metadata__\":{\"a\":\"1\",\"b\":\"2\"},\"__metadata__\":{\"c\":\"3\"}}", 0, -1);
    expect_bad("too many dims", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, -1);
    /* a valid file with trailing spaces in the header */
    write_raw("pad.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}    ", 3, -1);
    TS_CHECK(ts_st_open(&f, tpath("pad.safetensors"), &e) == TS_OK, "space-padded header: %s", e.msg);
    ts_st_close(f);
}

static void write_shard(const char *name, const char *t1, const char *t2) {
    float v[2] = {1, 2};
    int64_t s[1] = {2};
    ts_st_item it[2] = {{t1, ts_tensor_make(TS_DTYPE_F32, 1, s, v)}, {t2, ts_tensor_make(TS_DTYPE_F32, 1, s, v)}};
    ts_st_write(tpath(name), it, 2, NULL, 0, NULL);
}

static void test_sharded(void) {
    char sub[600];
    snprintf(sub, sizeof sub, "%s/sharded", dir);
    mkdir(sub, 0700);
    write_shard("sharded/m-00001-of-00002.safetensors", "x.0", "x.1");
    write_shard("sharded/m-00002-of-00002.safetensors", "y.0", "y.1");
    FILE *fp = fopen(tpath("sharded/m.safetensors.index.json"), "w");
    fprintf(fp, "{\"metadata\":{},\"weight_map\":{\"x.0\":\"m-00001-of-00002.safetensors\","
                "\"x.1\":\"m-00001-of-00002.safetensors\",\"y.0\":\"m-00002-of-00002.safetensors\","
                "\"y.1\":\"m-00002-of-00002.safetensors\"}}");
    fclose(fp);
    ts_weights *w = NULL;
    ts_err e = {0};
    TS_CHECK(ts_weights_open(&w, tpath("sharded/m.safetensors.index.json"), &e) == TS_OK, "index: %s", e.msg);
    TS_CHECK(w && ts_weights_count(w) == 4 && ts_weights_peek(w, "y.1"), "index has 4 tensors");
    ts_weights_close(w);
    TS_CHECK(ts_weights_open(&w, sub, &e) == TS_OK && ts_weights_count(w) == 4, "directory with index: %s", e.msg);
    ts_weights_close(w);
    fp = fopen(tpath("sharded/m.safetensors.index.json"), "w");
    fprintf(fp, "{\"weight_map\":{\"x.0\":\"m-00001-of-00002.safetensors\",\"z\":\"m-00002-of-00002.safetensors\"}}");
    fclose(fp);
    TS_CHECK(ts_weights_open(&w, sub, &e) == TS_ERR_MISSING && strstr(e.msg, "'z'"), "index names a missing tensor: %s", e.msg);
    unlink(tpath("sharded/m.safetensors.index.json"));
    TS_CHECK(ts_weights_open(&w, sub, &e) == TS_OK && ts_weights_count(w) == 4, "directory of shards: %s", e.msg);
    ts_weights_close(w);
    write_shard("sharded/z-dup.safetensors", "x.0", "q");
    TS_CHECK(ts_weights_open(&w, sub, &e) == TS_ERR_FORMAT && strstr(e.msg, "x.0"), "duplicate across files: %s", e.msg);
    unlink(tpath("sharded/z-dup.safetensors"));
    unlink(tpath("sharded/m-00001-of-00002.safetensors"));
    unlink(tpath("sharded/m-00002-of-00002.safetensors"));
    rmdir(sub);
}

typedef struct toy_block {
    ts_tensor w, b;
} toy_block;
typedef struct toy {
    ts_tensor emb, opt;
    toy_block blocks[2];
} toy;

static const ts_name_entry toy_names[] = {
    {offsetof(toy, emb), {"embed.weight", "embedder.weight"}, 0, 0},
    {offsetof(toy, opt), {"extra.weight", "extra_proj.weight"}, 0, 1},
    {offsetof(toy_block, w), {"layers.%d.fc.weight", "blocks.%d.linear.weight"}, 1, 0},
    {offsetof(toy_block, b), {"layers.%d.fc.bias", "blocks.%d.linear.bias"}, 1, 0},
};
static const char *const toy_prefixes[] = {"model.diffusion_model.", NULL};

static ts_status bind_names(const char *const *names, int n, toy *t, ts_layout *lay, ts_err *e) {
    ts_tensor list[8];
    int64_t s[1] = {3};
    for (int i = 0; i < n; i++) {
        list[i] = ts_tensor_make(TS_DTYPE_F32, 1, s, NULL);
        list[i].name = names[i];
    }
    ts_weights *w = NULL;
    TS_TRY(ts_weights_from_list(&w, list, n, e));
    ts_namemap map = {toy_names, 4, 2, offsetof(toy, blocks), sizeof(toy_block), toy_prefixes, "toy"};
    ts_status st = ts_namemap_bind(&map, w, t, lay, e);
    TS_CHECK(st != TS_OK || ts_namemap_count_blocks(w, toy_prefixes, lay && *lay ? "blocks." : "layers.") == 2, "count blocks");
    ts_weights_close(w);
    return st;
}

static void test_namemap(void) {
    toy t;
    ts_layout lay;
    ts_err e = {0};
    const char *orig[] = {"embed.weight", "layers.0.fc.weight", "layers.0.fc.bias", "layers.1.fc.weight", "layers.1.fc.bias"};
    TS_CHECK(bind_names(orig, 5, &t, &lay, &e) == TS_OK && lay == TS_LAYOUT_ORIGINAL, "original: %s", e.msg);
    TS_CHECK(t.opt.ndim == 0 && t.opt.data == NULL && t.blocks[1].b.ndim == 1 && t.blocks[0].w.shape[0] == 3, "fields bound");
    const char *diff[] = {"embedder.weight", "extra_proj.weight", "blocks.0.linear.weight", "blocks.0.linear.bias",
                          "blocks.1.linear.weight", "blocks.1.linear.bias"};
    TS_CHECK(bind_names(diff, 6, &t, &lay, &e) == TS_OK && lay == TS_LAYOUT_DIFFUSERS && t.opt.ndim == 1, "diffusers: %s", e.msg);
    const char *pref[] = {"model.diffusion_model.embed.weight", "model.diffusion_model.layers.0.fc.weight",
                          "model.diffusion_model.layers.0.fc.bias", "model.diffusion_model.layers.1.fc.weight",
                          "model.diffusion_model.layers.1.fc.bias"};
    TS_CHECK(bind_names(pref, 5, &t, &lay, &e) == TS_OK && lay == TS_LAYOUT_ORIGINAL, "prefixed: %s", e.msg);
    const char *miss[] = {"embed.weight", "layers.0.fc.weight", "layers.0.fc.bias", "layers.1.fc.weight"};
    TS_CHECK(bind_names(miss, 4, &t, &lay, &e) == TS_ERR_MISSING && strstr(e.msg, "layers.1.fc.bias"), "missing: %s", e.msg);
    const char *ext[] = {"embed.weight", "layers.0.fc.weight", "layers.0.fc.bias", "layers.1.fc.weight", "layers.1.fc.bias", "bonus"};
    TS_CHECK(bind_names(ext, 6, &t, &lay, &e) == TS_ERR_UNEXPECTED && strstr(e.msg, "bonus"), "extra: %s", e.msg);
    const char *none[] = {"what.ever"};
    TS_CHECK(bind_names(none, 1, &t, &lay, &e) == TS_ERR_FORMAT, "unknown model: %s", e.msg);
    int64_t s2[2] = {2, 3};
    ts_tensor tt = ts_tensor_make(TS_DTYPE_F32, 2, s2, NULL);
    tt.name = "w";
    int64_t want[2] = {3, 2};
    TS_CHECK(ts_check_shape(&tt, "w", 2, want, &e) == TS_ERR_SHAPE && strstr(e.msg, "[2, 3]") && strstr(e.msg, "[3, 2]"),
             "shape message: %s", e.msg);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    test_roundtrip();
    test_python_file();
    test_malformed();
    test_sharded();
    test_namemap();
    const char *files[] = {"rt.safetensors", "bad.safetensors", "short.safetensors", "pad.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) unlink(tpath(files[i]));
    rmdir(dir);
    return ts_test_summary("safetensors");
}
