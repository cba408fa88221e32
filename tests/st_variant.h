/*
 * st_variant.h — a copy of a safetensors file as another checkpoint would have it: names
 * renamed or prefixed, a tensor left out, added or written with the wrong shape, values in
 * bf16. The golden tests load such copies (header-only, tests).
 */
#ifndef TS_TESTS_ST_VARIANT_H
#define TS_TESTS_ST_VARIANT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

typedef struct ts_test_rewrite {
    void (*rename)(const char *in, char *out, size_t n, int arg); /* NULL: the names as they are */
    int rename_arg;      /* rename's last argument */
    const char *prefix;  /* prepended to every name (NULL: none) */
    int bf16;            /* 1: BF16 tensors; 2: F32 tensors of the values rounded to bf16 */
    int keep_meta;       /* copy the "config" metadata (else none is written) */
    const char *drop;    /* source name of a tensor to leave out */
    const char *extra;   /* name of a 3-value F32 tensor to add */
    const char *reshape; /* source name of a 2-D tensor written with its shape swapped */
    const ts_st_item *add; /* n_add more tensors, written after the others */
    int n_add;
    const char *meta_key, *meta_val; /* one more metadata pair (NULL: none) */
} ts_test_rewrite;

/* Writes src's tensors to dst as r says; 0 or −1. */
static inline int ts_test_write_variant(const char *src, const char *dst, const ts_test_rewrite *r) {
    ts_st_file *f = NULL;
    ts_err e = {0};
    if (ts_st_open(&f, src, &e) != TS_OK) return -1;
    int n = ts_st_count(f);
    ts_st_item *items = calloc((size_t)(n + 1 + r->n_add), sizeof *items);
    char (*names)[300] = calloc((size_t)n + 1, sizeof *names);
    void **bufs = calloc((size_t)n + 1, sizeof *bufs);
    int k = 0;
    for (int i = 0; i < n && items && names && bufs; i++) {
        const ts_tensor *t = ts_st_tensor(f, i);
        if (r->drop && strcmp(t->name, r->drop) == 0) continue;
        char nm[256];
        if (r->rename) r->rename(t->name, nm, sizeof nm, r->rename_arg);
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
            float *f32 = r->bf16 == 2 ? malloc((size_t)ne * 4) : NULL;
            for (int64_t j = 0; b && j < ne; j++) b[j] = ts_f32_to_bf16(((const float *)t->data)[j]);
            for (int64_t j = 0; b && f32 && j < ne; j++) f32[j] = ts_bf16_to_f32(b[j]);
            if (f32) free(b), b = NULL;
            bufs[k] = f32 ? (void *)f32 : (void *)b;
            items[k].t.dtype = f32 ? TS_DTYPE_F32 : TS_DTYPE_BF16;
            items[k].t.data = bufs[k];
        }
        k++;
    }
    static float extra[3] = {1, 2, 3};
    if (r->extra && items) {
        items[k].name = r->extra;
        items[k].t = ts_tensor_make(TS_DTYPE_F32, 1, (int64_t[]){3}, extra);
        k++;
    }
    for (int i = 0; i < r->n_add && items; i++) items[k++] = r->add[i];
    const char *meta[4], *config = ts_st_meta(f, "config"); /* key, value pairs */
    int nm = 0;
    if (r->keep_meta && config) meta[2 * nm] = "config", meta[2 * nm + 1] = config, nm++;
    if (r->meta_key && r->meta_val) meta[2 * nm] = r->meta_key, meta[2 * nm + 1] = r->meta_val, nm++;
    int rc = items && names && bufs &&
                     ts_st_write(dst, items, k, meta, nm, &e) == TS_OK
                 ? 0
                 : -1;
    for (int i = 0; bufs && i < n; i++) free(bufs[i]);
    free(bufs), free(items), free(names);
    ts_st_close(f);
    return rc;
}

#endif
