/*
 * namemap.c — binding checkpoint tensors to a weights struct by a name table.
 * See namemap.h.
 */
#include "namemap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Returns the name with the first matching prefix removed. */
static const char *strip(const char *name, const char *const *prefixes) {
    if (prefixes)
        for (int i = 0; prefixes[i]; i++) {
            size_t n = strlen(prefixes[i]);
            if (strncmp(name, prefixes[i], n) == 0) return name + n;
        }
    return name;
}

/* Finds the checkpoint tensor whose stripped name equals key. Marks it used. */
static const ts_tensor *lookup(ts_weights *w, const char *const *prefixes, const char *key,
                               int mark) {
    const ts_tensor *t = mark ? ts_weights_get(w, key) : ts_weights_peek(w, key);
    if (t) return t;
    if (prefixes)
        for (int i = 0; prefixes[i]; i++) {
            char buf[512];
            snprintf(buf, sizeof buf, "%s%s", prefixes[i], key);
            t = mark ? ts_weights_get(w, buf) : ts_weights_peek(w, buf);
            if (t) return t;
        }
    return NULL;
}

static void entry_key(const ts_name_entry *e, int layout, int block, char *buf, size_t n) {
    if (e->per_block) snprintf(buf, n, e->key[layout], block);
    else snprintf(buf, n, "%s", e->key[layout]);
}

ts_status ts_namemap_bind(const ts_namemap *map, ts_weights *w, void *weights,
                          ts_layout *layout_out, ts_err *err) {
    const char *model = map->model_name ? map->model_name : "model";
    /* Layout detection: count hits of each layout's keys. */
    int hits[2] = {0, 0};
    char key[512];
    for (int layout = 0; layout < 2; layout++)
        for (int i = 0; i < map->n_entries; i++) {
            const ts_name_entry *e = &map->entries[i];
            if (!e->key[layout]) continue;
            int nb = e->per_block ? map->n_blocks : 1;
            for (int b = 0; b < nb; b++) {
                entry_key(e, layout, b, key, sizeof key);
                if (lookup(w, map->strip_prefixes, key, 0)) hits[layout]++;
            }
        }
    int layout = hits[TS_LAYOUT_DIFFUSERS] > hits[TS_LAYOUT_ORIGINAL] ? TS_LAYOUT_DIFFUSERS
                                                                       : TS_LAYOUT_ORIGINAL;
    if (hits[layout] == 0)
        return TS_ERR(err, TS_ERR_FORMAT, "%s: no tensor of the checkpoint has a known name", model);
    ts_weights_clear_used(w);
    unsigned char *base = weights;
    for (int i = 0; i < map->n_entries; i++) {
        const ts_name_entry *e = &map->entries[i];
        int nb = e->per_block ? map->n_blocks : 1;
        for (int b = 0; b < nb; b++) {
            unsigned char *dst = e->per_block ? base + map->block_off + (size_t)b * map->block_stride
                                              : base;
            ts_tensor *field = (ts_tensor *)(dst + e->offset);
            memset(field, 0, sizeof *field);
            if (!e->key[layout]) continue;
            entry_key(e, layout, b, key, sizeof key);
            const ts_tensor *t = lookup(w, map->strip_prefixes, key, 1);
            if (!t) {
                if (e->optional) continue;
                return TS_ERR(err, TS_ERR_MISSING, "%s: checkpoint lacks tensor '%s' (%s layout)",
                              model, key, layout == TS_LAYOUT_DIFFUSERS ? "diffusers" : "original");
            }
            *field = *t;
        }
    }
    for (int i = 0; i < ts_weights_count(w); i++)
        if (!ts_weights_is_used(w, i))
            return TS_ERR(err, TS_ERR_UNEXPECTED, "%s: unexpected tensor '%s' in the checkpoint",
                          model, ts_weights_at(w, i)->name);
    if (layout_out) *layout_out = (ts_layout)layout;
    return TS_OK;
}

int ts_namemap_count_blocks(const ts_weights *w, const char *const *strip_prefixes,
                            const char *prefix) {
    int n = 0;
    size_t pl = strlen(prefix);
    for (int i = 0; i < ts_weights_count(w); i++) {
        const char *name = strip(ts_weights_at(w, i)->name, strip_prefixes);
        if (strncmp(name, prefix, pl) != 0) continue;
        char *end;
        long v = strtol(name + pl, &end, 10);
        if (end != name + pl && *end == '.' && v >= 0 && v < 100000 && v + 1 > n) n = (int)v + 1;
    }
    return n;
}

ts_status ts_check_shape(const ts_tensor *t, const char *what, int ndim, const int64_t *shape,
                         ts_err *err) {
    if (ts_tensor_has_shape(t, ndim, shape)) return TS_OK;
    char got[128], want[128];
    ts_tensor exp = ts_tensor_make(t->dtype, ndim, shape, NULL);
    return TS_ERR(err, TS_ERR_SHAPE, "tensor '%s' has shape %s, expected %s",
                  t->name ? t->name : what, ts_shape_str(t, got, sizeof got),
                  ts_shape_str(&exp, want, sizeof want));
}

ts_status ts_tensor_to_f32_alloc(const ts_tensor *t, float **out, ts_err *err) {
    *out = NULL;
    if (!t || !t->data) return TS_OK;
    int64_t n = ts_tensor_numel(t);
    float *p = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!p) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    if (ts_convert_to_f32(p, t->data, t->dtype, 0, n) != TS_OK) {
        free(p);
        return TS_ERR(err, TS_ERR_FORMAT, "tensor '%s' has dtype %s, expected a float type",
                      t->name ? t->name : "?", ts_dtype_name(t->dtype));
    }
    *out = p;
    return TS_OK;
}

char *ts_config_json_near(const char *path) {
    char dir[4096], cfg[4200];
    snprintf(dir, sizeof dir, "%s", path);
    FILE *fp = NULL;
    for (int attempt = 0; attempt < 2 && !fp; attempt++) {
        if (attempt == 1) {
            char *slash = strrchr(dir, '/');
            if (!slash) snprintf(dir, sizeof dir, ".");
            else *slash = 0;
        }
        snprintf(cfg, sizeof cfg, "%s/config.json", dir);
        fp = fopen(cfg, "rb");
    }
    if (!fp) return NULL;
    char *buf = malloc(1 << 20);
    if (buf) {
        size_t n = fread(buf, 1, (1 << 20) - 1, fp);
        buf[n] = 0;
    }
    fclose(fp);
    return buf;
}
