/*
 * test_safetensors.c — reader, writer, weight sets, name maps.
 *
 * Round trip through ts_st_write; a file written by Python's safetensors package
 * (tests/fixtures/st_python.safetensors) reads back with the right values; every kind
 * of malformed file gives TS_ERR_FORMAT (never a crash); sharded checkpoints and
 * directories load as one set, and so does a list of names and shapes; released pages of a
 * mapping leave the resident set and read back the same. The name-map
 * binder is tested in test_namemap.c.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    TS_CHECK(s == TS_ERR_FORMAT && f == NULL && strstr(e.msg, "bad.safetensors"), "%s: status %s msg '%s'", label,
             ts_status_str(s), e.msg);
}

/* 1 if dir holds a leftover "<name>.tmp.XXXXXX" from the writer. */
static int temp_left(void) {
    DIR *d = opendir(dir);
    int found = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) found |= strstr(de->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return found;
}

static void test_roundtrip(void) {
    float a[6];
    ts_test_randn(a, 6, 11, 1.0f);
    uint16_t b[4], h[3];
    for (int i = 0; i < 4; i++) b[i] = ts_f32_to_bf16(a[i] * 3);
    for (int i = 0; i < 3; i++) h[i] = ts_f32_to_f16(a[i + 2] * 5);
    int64_t c[2] = {-7, 1ll << 40};
    uint8_t u[5] = {200, 3, 7, 1, 99};
    double d1[1] = {-3.0e-300};
    int64_t sa[2] = {2, 3}, sb[1] = {4}, sc[1] = {2}, sz[2] = {0, 5}, sh[1] = {3}, su[1] = {5}, sd[0];
    /* the odd-sized F16 and U8 come first: the writer must still align the F32/I64/F64 data */
    ts_st_item items[] = {
        {"h.f16", ts_tensor_make(TS_DTYPE_F16, 1, sh, h)},
        {"u", ts_tensor_make(TS_DTYPE_U8, 1, su, u)},
        {"a", ts_tensor_make(TS_DTYPE_F32, 2, sa, a)},
        {"b.bf16", ts_tensor_make(TS_DTYPE_BF16, 1, sb, b)},
        {"c", ts_tensor_make(TS_DTYPE_I64, 1, sc, c)},
        {"empty", ts_tensor_make(TS_DTYPE_F16, 2, sz, NULL)},
        {"scalar", ts_tensor_make(TS_DTYPE_F64, 0, sd, d1)},
    };
    const int n = (int)(sizeof items / sizeof items[0]);
    const char *meta[] = {"seed", "42", "note", "hello"};
    ts_err e = {0};
    TS_CHECK(ts_st_write(tpath("rt.safetensors"), items, n, meta, 2, &e) == TS_OK, "write: %s", e.msg);
    TS_CHECK(!temp_left(), "no temp file after a write");
    ts_st_file *f = NULL;
    TS_CHECK(ts_st_open(&f, tpath("rt.safetensors"), &e) == TS_OK, "open: %s", e.msg);
    if (!f) return;
    TS_CHECK(ts_st_count(f) == n, "count %d", ts_st_count(f));
    for (int i = 0; i < n; i++) {
        const ts_tensor *t = ts_st_find(f, items[i].name);
        size_t nb = ts_tensor_nbytes(&items[i].t);
        TS_CHECK(t && t->dtype == items[i].t.dtype && ts_tensor_has_shape(t, items[i].t.ndim, items[i].t.shape) &&
                     ts_tensor_is_contiguous(t) && strcmp(t->name, items[i].name) == 0 &&
                     (nb == 0 || memcmp(t->data, items[i].t.data, nb) == 0),
                 "round trip of '%s'", items[i].name);
        TS_CHECK(t && (uintptr_t)t->data % ts_dtype_size(t->dtype) == 0, "'%s' data aligned", items[i].name);
    }
    /* ts_st_tensor walks in data order */
    for (int i = 1; i < n; i++)
        TS_CHECK((const char *)ts_st_tensor(f, i - 1)->data <= (const char *)ts_st_tensor(f, i)->data, "data order");
    TS_CHECK(ts_st_tensor(f, n) == NULL && ts_st_tensor(f, -1) == NULL, "index out of range");
    TS_CHECK(ts_st_meta(f, "seed") && strcmp(ts_st_meta(f, "seed"), "42") == 0, "metadata");
    TS_CHECK(ts_st_meta(f, "note") && strcmp(ts_st_meta(f, "note"), "hello") == 0, "metadata 2");
    TS_CHECK(ts_st_meta(f, "nope") == NULL && ts_st_find(f, "nope") == NULL, "absent name");
    ts_st_close(f);
    /* header: length a multiple of 8, __metadata__ first, keys in item order */
    FILE *fp = fopen(tpath("rt.safetensors"), "rb");
    unsigned char hdr[1024] = {0};
    size_t got = fp ? fread(hdr, 1, sizeof hdr - 1, fp) : 0;
    if (fp) fclose(fp);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | hdr[i];
    TS_CHECK(got > 8 && hl % 8 == 0, "header length %llu is a multiple of 8", (unsigned long long)hl);
    const char *js = (const char *)hdr + 8;
    const char *ph = strstr(js, "\"h.f16\""), *pu = strstr(js, "\"u\""), *pa = strstr(js, "\"a\"");
    TS_CHECK(strncmp(js, "{\"__metadata__\"", 15) == 0 && ph && pu && pa && ph < pu && pu < pa, "header key order");

    /* bad writer arguments: an error, no file, no temp */
    ts_st_item dup[2] = {items[2], items[2]};
    TS_CHECK(ts_st_write(tpath("w.safetensors"), dup, 2, NULL, 0, &e) == TS_ERR_INVALID_ARG && strstr(e.msg, "'a'"),
             "duplicate item: %s", e.msg);
    ts_st_item nodata = {"x", ts_tensor_make(TS_DTYPE_F32, 2, sa, NULL)};
    TS_CHECK(ts_st_write(tpath("w.safetensors"), &nodata, 1, NULL, 0, &e) == TS_ERR_INVALID_ARG, "NULL data: %s", e.msg);
    ts_st_item metaname = {"__metadata__", items[2].t};
    TS_CHECK(ts_st_write(tpath("w.safetensors"), &metaname, 1, NULL, 0, &e) == TS_ERR_INVALID_ARG, "reserved name");
    ts_st_item strided = items[2];
    strided.t.stride[0] = 1;
    TS_CHECK(ts_st_write(tpath("w.safetensors"), &strided, 1, NULL, 0, &e) == TS_ERR_INVALID_ARG, "not contiguous");
    TS_CHECK(access(tpath("w.safetensors"), F_OK) != 0 && !temp_left(), "nothing written on bad arguments");
    /* writing into a missing directory fails cleanly */
    TS_CHECK(ts_st_write("/nonexistent-dir/x.safetensors", items, 1, NULL, 0, &e) == TS_ERR_IO, "write to missing dir");
    /* the final rename fails (the target is a directory): the temp file is removed */
    mkdir(tpath("adir"), 0700);
    TS_CHECK(ts_st_write(tpath("adir"), items, n, meta, 2, &e) == TS_ERR_IO && !temp_left(),
             "failed rename leaves no temp: %s", e.msg);
    rmdir(tpath("adir"));
    /* an empty file (no tensors, no metadata) is valid */
    TS_CHECK(ts_st_write(tpath("w.safetensors"), NULL, 0, NULL, 0, &e) == TS_OK, "empty write: %s", e.msg);
    TS_CHECK(ts_st_open(&f, tpath("w.safetensors"), &e) == TS_OK && ts_st_count(f) == 0, "empty read: %s", e.msg);
    ts_st_close(f);
    unlink(tpath("w.safetensors"));
}

/* Many tensors: every name found (the lookup is a binary search over a name index). */
static void test_many(void) {
    enum { N = 300 };
    static ts_st_item it[N];
    static char names[N][24];
    static float vals[N];
    int64_t s1[1] = {1};
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "blocks.%d.w", (i * 7919) % N);
        vals[i] = (float)i + 0.25f;
        it[i].name = names[i];
        it[i].t = ts_tensor_make(TS_DTYPE_F32, 1, s1, &vals[i]);
    }
    ts_err e = {0};
    ts_st_file *f = NULL;
    TS_CHECK(ts_st_write(tpath("many.safetensors"), it, N, NULL, 0, &e) == TS_OK, "write many: %s", e.msg);
    TS_CHECK(ts_st_open(&f, tpath("many.safetensors"), &e) == TS_OK, "open many: %s", e.msg);
    int ok = f && ts_st_count(f) == N;
    for (int i = 0; i < N && ok; i++) {
        const ts_tensor *t = ts_st_find(f, names[i]);
        ok = t && *(const float *)t->data == vals[i];
    }
    TS_CHECK(ok, "every name found with its value");
    ts_st_close(f);
    unlink(tpath("many.safetensors"));
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
    expect_bad("empty header", "", 8, -1);
    expect_bad("JSON string", "\"abc\"", 8, -1);
    expect_bad("shape not array", "{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, -1);
    expect_bad("string shape entry", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, -1);
    expect_bad("negative offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, -1);
    expect_bad("fractional offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.5,4.5]}}", 8, -1);
    expect_bad("metadata not object", "{\"__metadata__\":[\"a\"]}", 0, -1);
    expect_bad("JSON array", "[1, 2, 3]", 8, -1);
    expect_bad("entry not object", "{\"a\": 5}", 8, -1);
    expect_bad("missing dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1);
    expect_bad("unknown dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1);
    expect_bad("size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 12, -1);
    expect_bad("negative shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, -1);
    expect_bad("fractional shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8, -1);
    expect_bad("overflowing shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,8]}}", 8, -1);
    /* found by the fuzzer: a zero dim first made numel 0, so the rest's product (the strides)
     * went unchecked and overflowed */
    expect_bad("overflowing shape after a zero dim",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,4294967296,4294967296,4],\"data_offsets\":[0,0]}}", 0, -1);
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
    /* valid: a zero-size tensor sharing its begin with a non-empty one, listed after it */
    write_raw("zs.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]},"
                                "\"e2\":{\"dtype\":\"BF16\",\"shape\":[4,0],\"data_offsets\":[8,8]}}", 8, -1);
    TS_CHECK(ts_st_open(&f, tpath("zs.safetensors"), &e) == TS_OK && ts_st_count(f) == 3, "zero-size at a shared begin: %s", e.msg);
    ts_st_close(f);
    unlink(tpath("zs.safetensors"));
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
    /* a weights set from a list of names and shapes (no data) */
    int64_t s3[2] = {3, 2};
    ts_tensor list[3] = {ts_tensor_make(TS_DTYPE_BF16, 2, s3, NULL), ts_tensor_make(TS_DTYPE_F32, 1, s3, NULL),
                         ts_tensor_make(TS_DTYPE_F32, 1, s3, NULL)};
    char nm[3][8] = {"k.b", "k.a", "k.c"};
    for (int i = 0; i < 3; i++) list[i].name = nm[i];
    TS_CHECK(ts_weights_from_list(&w, list, 3, &e) == TS_OK, "from list: %s", e.msg);
    memset(nm, 0, sizeof nm); /* names were copied */
    const ts_tensor *kb = w ? ts_weights_peek(w, "k.b") : NULL;
    TS_CHECK(kb && kb->dtype == TS_DTYPE_BF16 && kb->shape[1] == 2 && kb->data == NULL && !ts_weights_is_used(w, 1),
             "list entry");
    TS_CHECK(w && ts_weights_get(w, "k.b") && ts_weights_is_used(w, 1) && !ts_weights_is_used(w, 0), "get marks used");
    if (w) ts_weights_clear_used(w);
    TS_CHECK(w && !ts_weights_is_used(w, 1) && strcmp(ts_weights_at(w, 0)->name, "k.a") == 0, "clear used, sorted");
    ts_weights_close(w);
    list[0].name = "k.b", list[1].name = "k.a", list[2].name = "k.a";
    TS_CHECK(ts_weights_from_list(&w, list, 3, &e) == TS_ERR_FORMAT && strstr(e.msg, "'k.a'") && !w, "duplicate in list: %s", e.msg);
    TS_CHECK(ts_weights_from_list(&w, list, -1, &e) == TS_ERR_INVALID_ARG && !w, "negative count");
    unlink(tpath("sharded/m-00001-of-00002.safetensors"));
    unlink(tpath("sharded/m-00002-of-00002.safetensors"));
    rmdir(sub);
}

/* The process's resident pages (statm's second field). */
static long resident_pages(void) {
    long size = 0, rss = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &rss) != 2) rss = -1;
        fclose(f);
    }
    return rss;
}

/* ts_weights_release: a mapped tensor's pages leave the resident set and read back the
 * same; a tensor outside any mapping (a list's caller-owned data) is left alone. */
static void test_release(void) {
    enum { N = 4 << 20 }; /* 16 MB */
    float *v = malloc((size_t)N * sizeof(float));
    uint32_t s = 12345;
    for (int i = 0; i < N; i++) v[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
    int64_t sh[1] = {N};
    ts_st_item it = {"big", ts_tensor_make(TS_DTYPE_F32, 1, sh, v)};
    ts_err e = {0};
    ts_weights *w = NULL;
    TS_CHECK(ts_st_write(tpath("big.safetensors"), &it, 1, NULL, 0, &e) == TS_OK, "write big: %s", e.msg);
    TS_CHECK(ts_weights_open(&w, tpath("big.safetensors"), &e) == TS_OK, "open big: %s", e.msg);
    const ts_tensor *t = w ? ts_weights_peek(w, "big") : NULL;
    if (t) {
        const float *d = t->data;
        double sum = 0;
        for (int i = 0; i < N; i++) sum += d[i]; /* fault every page in */
        long before = resident_pages();
        ts_weights_release(w, t->data, ts_tensor_nbytes(t));
        long after = resident_pages();
        long want = (long)(N * sizeof(float) / (size_t)sysconf(_SC_PAGESIZE)) * 9 / 10;
        TS_CHECK(before > 0 && before - after >= want, "release: resident pages %ld -> %ld (want %ld fewer; sum %g)",
                 before, after, want, sum);
        TS_CHECK(!memcmp(d, v, (size_t)N * sizeof(float)), "released pages read back the same");
        before = resident_pages(); /* the read faulted them in again */
        ts_weights_release_all(w);
        after = resident_pages();
        TS_CHECK(before - after >= want, "release_all: resident pages %ld -> %ld (want %ld fewer)", before, after, want);
        TS_CHECK(!memcmp(d, v, (size_t)N * sizeof(float)), "pages released with the rest read back the same");
        ts_weights_release_all(NULL);
        float first = v[0], mid = v[N / 2], last = v[N - 1];
        ts_weights_release(w, v, (size_t)N * sizeof(float)); /* not in w's mapping */
        TS_CHECK(v[0] == first && v[N / 2] == mid && v[N - 1] == last && mid != 0.0f,
                 "memory outside the mappings is left alone");
    }
    ts_weights_close(w);
    unlink(tpath("big.safetensors"));
    free(v);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    test_release();
    test_roundtrip();
    test_many();
    test_python_file();
    test_malformed();
    test_sharded();
    const char *files[] = {"rt.safetensors", "bad.safetensors", "short.safetensors", "pad.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) unlink(tpath(files[i]));
    rmdir(dir);
    return ts_test_summary("safetensors");
}
