/*
 * safetensors.c — validated mmap reader, multi-file weight sets, atomic writer.
 * See safetensors.h for the format and the checks.
 */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Header larger than this is rejected: real checkpoints have < 10 MB of JSON. */
#define TS_ST_MAX_HEADER (256ull << 20)

typedef struct st_meta {
    char *key, *val;
} st_meta;

struct ts_st_file {
    char *path;
    void *map;          /* mmap base (NULL for a memory buffer) */
    size_t map_size;
    const unsigned char *bytes;
    size_t size;
    ts_tensor *tensors; /* sorted by data offset */
    char **names;
    const ts_tensor **by_name; /* sorted by name: bsearch in ts_st_find, duplicates adjacent */
    int n;
    st_meta *meta;
    int n_meta;
};

/* By begin, then by size: a zero-size tensor sharing its begin with a non-empty one
 * (what Python's writer emits) must come first, or the overlap check would flag it. */
static int cmp_by_data(const void *a, const void *b) {
    const ts_tensor *x = a, *y = b;
    const char *px = x->data, *py = y->data;
    if (px != py) return px < py ? -1 : 1;
    size_t nx = ts_tensor_nbytes(x), ny = ts_tensor_nbytes(y);
    return nx < ny ? -1 : nx > ny;
}

static int cmp_name_ptr(const void *a, const void *b) {
    const ts_tensor *x = *(const ts_tensor *const *)a, *y = *(const ts_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static ts_status parse_header(ts_st_file *f, ts_err *err) {
    const char *label = f->path;
    if (f->size < 8) return TS_ERR(err, TS_ERR_FORMAT, "%s: file too short (%zu bytes) for a safetensors header", label, f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->bytes[i];
    if (hlen > TS_ST_MAX_HEADER || hlen > f->size - 8)
        return TS_ERR(err, TS_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%zu bytes)",
                      label, (unsigned long long)hlen, f->size);
    if (hlen < 2) return TS_ERR(err, TS_ERR_FORMAT, "%s: header of %llu bytes is not JSON", label, (unsigned long long)hlen);
    const unsigned char *data = f->bytes + 8 + hlen;
    size_t data_size = f->size - 8 - (size_t)hlen;
    cJSON *root = cJSON_ParseWithLength((const char *)f->bytes + 8, (size_t)hlen);
    if (!root) return TS_ERR(err, TS_ERR_FORMAT, "%s: header is not valid JSON", label);
    ts_status st = TS_OK;
    if (!cJSON_IsObject(root)) {
        st = TS_ERR(err, TS_ERR_FORMAT, "%s: header JSON is not an object", label);
        goto done;
    }
    int count = 0;
    for (cJSON *it = root->child; it; it = it->next) count++;
    f->tensors = calloc((size_t)count + 1, sizeof *f->tensors);
    f->names = calloc((size_t)count + 1, sizeof *f->names);
    if (!f->tensors || !f->names) {
        st = TS_ERR(err, TS_ERR_NOMEM, "%s: out of memory", label);
        goto done;
    }
    for (cJSON *it = root->child; it; it = it->next) {
        const char *name = it->string ? it->string : "";
        if (strcmp(name, "__metadata__") == 0) {
            if (!cJSON_IsObject(it)) {
                st = TS_ERR(err, TS_ERR_FORMAT, "%s: __metadata__ is not an object", label);
                goto done;
            }
            if (f->meta) {
                st = TS_ERR(err, TS_ERR_FORMAT, "%s: __metadata__ appears twice", label);
                goto done;
            }
            int nm = 0;
            for (cJSON *m = it->child; m; m = m->next) nm++;
            f->meta = calloc((size_t)nm + 1, sizeof *f->meta);
            if (!f->meta) { st = TS_ERR(err, TS_ERR_NOMEM, "%s: out of memory", label); goto done; }
            for (cJSON *m = it->child; m; m = m->next) {
                if (!cJSON_IsString(m)) {
                    st = TS_ERR(err, TS_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string", label, m->string ? m->string : "");
                    goto done;
                }
                f->meta[f->n_meta].key = strdup(m->string ? m->string : "");
                f->meta[f->n_meta].val = strdup(m->valuestring);
                f->n_meta++;
                if (!f->meta[f->n_meta - 1].key || !f->meta[f->n_meta - 1].val) {
                    st = TS_ERR(err, TS_ERR_NOMEM, "%s: out of memory", label);
                    goto done;
                }
            }
            continue;
        }
        if (!cJSON_IsObject(it)) {
            st = TS_ERR(err, TS_ERR_FORMAT, "%s: entry '%s' is not an object", label, name);
            goto done;
        }
        cJSON *jd = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        cJSON *js = cJSON_GetObjectItemCaseSensitive(it, "shape");
        cJSON *jo = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo)) {
            st = TS_ERR(err, TS_ERR_FORMAT, "%s: tensor '%s' lacks dtype, shape or data_offsets", label, name);
            goto done;
        }
        ts_dtype dt;
        if (ts_dtype_from_name(jd->valuestring, &dt) != 0) {
            st = TS_ERR(err, TS_ERR_FORMAT, "%s: tensor '%s' has unknown dtype '%s'", label, name, jd->valuestring);
            goto done;
        }
        int nd = cJSON_GetArraySize(js);
        if (nd > TS_MAX_DIMS) {
            st = TS_ERR(err, TS_ERR_FORMAT, "%s: tensor '%s' has %d dims (max %d)", label, name, nd, TS_MAX_DIMS);
            goto done;
        }
        int64_t shape[TS_MAX_DIMS];
        /* span: the product of the non-zero dims, which the strides reach even where a zero
         * dim makes numel 0 */
        uint64_t numel = 1, span = 1;
        int i = 0;
        for (cJSON *d = js->child; d; d = d->next, i++) {
            double v = cJSON_IsNumber(d) ? d->valuedouble : -1;
            if (v < 0 || v != floor(v) || v > 9.0e15) {
                st = TS_ERR(err, TS_ERR_FORMAT, "%s: tensor '%s' shape entry %d is not a non-negative integer", label, name, i);
                goto done;
            }
            shape[i] = (int64_t)v;
            if (shape[i] && span > UINT64_MAX / (uint64_t)shape[i] / 8) {
                st = TS_ERR(err, TS_ERR_FORMAT, "%s: tensor '%s' shape overflows", label, name);
                goto done;
            }
            if (shape[i]) span *= (uint64_t)shape[i];
            numel *= (uint64_t)shape[i];
        }
        if (cJSON_GetArraySize(jo) != 2 || !cJSON_IsNumber(jo->child) || !cJSON_IsNumber(jo->child->next)) {
            st = TS_ERR(err, TS_ERR_FORMAT, "%s: tensor '%s' data_offsets is not [begin, end]", label, name);
            goto done;
        }
        double b = jo->child->valuedouble, e = jo->child->next->valuedouble;
        if (b < 0 || e < b || b != floor(b) || e != floor(e) || e > 1.8e19) {
            st = TS_ERR(err, TS_ERR_FORMAT, "%s: tensor '%s' has bad data_offsets [%.0f, %.0f]", label, name, b, e);
            goto done;
        }
        uint64_t ub = (uint64_t)b, ue = (uint64_t)e;
        if (ue > data_size) {
            st = TS_ERR(err, TS_ERR_FORMAT, "%s: tensor '%s' data [%llu, %llu) lies outside the data section (%zu bytes)",
                        label, name, (unsigned long long)ub, (unsigned long long)ue, data_size);
            goto done;
        }
        if (ue - ub != numel * ts_dtype_size(dt)) {
            st = TS_ERR(err, TS_ERR_FORMAT, "%s: tensor '%s' has %llu bytes but shape x %s needs %llu", label, name,
                        (unsigned long long)(ue - ub), jd->valuestring, (unsigned long long)(numel * ts_dtype_size(dt)));
            goto done;
        }
        f->names[f->n] = strdup(name);
        if (!f->names[f->n]) {
            st = TS_ERR(err, TS_ERR_NOMEM, "%s: out of memory", label);
            goto done;
        }
        ts_tensor *t = &f->tensors[f->n];
        *t = ts_tensor_make(dt, nd, shape, (void *)(data + ub));
        t->name = f->names[f->n];
        f->n++;
    }
    qsort(f->tensors, (size_t)f->n, sizeof *f->tensors, cmp_by_data);
    /* Name index after the data sort (it points into f->tensors). Sorting finds
     * duplicates in O(n log n): a hostile header may hold millions of entries. */
    f->by_name = calloc((size_t)f->n + 1, sizeof *f->by_name);
    if (!f->by_name) {
        st = TS_ERR(err, TS_ERR_NOMEM, "%s: out of memory", label);
        goto done;
    }
    for (int k = 0; k < f->n; k++) f->by_name[k] = &f->tensors[k];
    qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name_ptr);
    for (int k = 1; k < f->n; k++)
        if (strcmp(f->by_name[k - 1]->name, f->by_name[k]->name) == 0) {
            st = TS_ERR(err, TS_ERR_FORMAT, "%s: tensor '%s' appears twice", label, f->by_name[k]->name);
            goto done;
        }
    for (int k = 1; k < f->n; k++) {
        const ts_tensor *a = &f->tensors[k - 1], *b2 = &f->tensors[k];
        if ((const unsigned char *)a->data + ts_tensor_nbytes(a) > (const unsigned char *)b2->data) {
            st = TS_ERR(err, TS_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", label, a->name, b2->name);
            goto done;
        }
    }
done:
    cJSON_Delete(root);
    return st;
}

static ts_status st_finish(ts_st_file *f, ts_st_file **out, ts_err *err) {
    ts_status s = parse_header(f, err);
    if (s != TS_OK) {
        ts_st_close(f);
        return s;
    }
    *out = f;
    return TS_OK;
}

ts_status ts_st_open(ts_st_file **out, const char *path, ts_err *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return TS_ERR(err, TS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return TS_ERR(err, TS_ERR_IO, "%s: not a regular file", path);
    }
    ts_st_file *f = calloc(1, sizeof *f);
    if (!f) {
        close(fd);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    f->path = strdup(path);
    if (!f->path) {
        close(fd);
        ts_st_close(f);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    f->size = (size_t)sb.st_size;
    if (f->size > 0) {
        f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            close(fd);
            ts_st_close(f);
            return TS_ERR(err, TS_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
        }
        f->map_size = f->size;
        f->bytes = f->map;
    }
    close(fd);
    return st_finish(f, out, err);
}

ts_status ts_st_open_mem(ts_st_file **out, const void *data, size_t size, const char *label,
                         ts_err *err) {
    *out = NULL;
    ts_st_file *f = calloc(1, sizeof *f);
    if (!f) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    f->path = strdup(label ? label : "<memory>");
    if (!f->path) {
        ts_st_close(f);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    f->bytes = data;
    f->size = size;
    return st_finish(f, out, err);
}

void ts_st_close(ts_st_file *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_size);
    for (int i = 0; i < f->n; i++) free(f->names[i]);
    for (int i = 0; i < f->n_meta; i++) free(f->meta[i].key), free(f->meta[i].val);
    free(f->names);
    free(f->by_name);
    free(f->tensors);
    free(f->meta);
    free(f->path);
    free(f);
}

int ts_st_count(const ts_st_file *f) { return f->n; }
const ts_tensor *ts_st_tensor(const ts_st_file *f, int i) {
    return i >= 0 && i < f->n ? &f->tensors[i] : NULL;
}
const ts_tensor *ts_st_find(const ts_st_file *f, const char *name) {
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(f->by_name[mid]->name, name);
        if (c == 0) return f->by_name[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}
const char *ts_st_meta(const ts_st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0) return f->meta[i].val;
    return NULL;
}
const char *ts_st_path(const ts_st_file *f) { return f->path; }

/* ------------------------------------------------------------------ weight sets */

struct ts_weights {
    ts_st_file **files;
    int n_files;
    const ts_tensor **by_name; /* sorted by name, for bsearch */
    unsigned char *used;       /* parallel to by_name */
    int n;
    ts_tensor *owned;          /* ts_weights_from_list: copies */
    char **owned_names;
};

void ts_weights_release(const ts_weights *w, const void *data, size_t n) {
    if (!w || !data || !n) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t a = (uintptr_t)data, b = a + n;
    for (int i = 0; i < w->n_files; i++) {
        const ts_st_file *f = w->files[i];
        const uintptr_t m0 = (uintptr_t)f->map, m1 = m0 + f->map_size;
        if (!f->map || a < m0 || b > m1) continue;
        /* whole pages only; the mapping starts on a page, so the rounded range stays in it */
        const uintptr_t p0 = a & ~(page - 1), p1 = (b + page - 1) & ~(page - 1);
        (void)madvise((void *)p0, (size_t)((p1 < m1 ? p1 : m1) - p0), MADV_DONTNEED);
        return;
    }
}

void ts_weights_release_all(const ts_weights *w) {
    for (int i = 0; w && i < w->n_files; i++)
        if (w->files[i]->map) (void)madvise(w->files[i]->map, w->files[i]->map_size, MADV_DONTNEED);
}

static ts_status weights_index(ts_weights *w, ts_err *err) {
    int total = 0;
    for (int i = 0; i < w->n_files; i++) total += ts_st_count(w->files[i]);
    if (w->owned) total = w->n;
    w->by_name = calloc((size_t)total + 1, sizeof *w->by_name);
    w->used = calloc((size_t)total + 1, 1);
    if (!w->by_name || !w->used) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    int n = 0;
    if (w->owned)
        for (int i = 0; i < total; i++) w->by_name[n++] = &w->owned[i];
    else
        for (int i = 0; i < w->n_files; i++)
            for (int j = 0; j < ts_st_count(w->files[i]); j++) w->by_name[n++] = ts_st_tensor(w->files[i], j);
    w->n = n;
    qsort(w->by_name, (size_t)n, sizeof *w->by_name, cmp_name_ptr);
    /* Within one file duplicates were already rejected, so here they span files
     * (or come from a caller's list). */
    for (int i = 1; i < n; i++)
        if (strcmp(w->by_name[i - 1]->name, w->by_name[i]->name) == 0)
            return TS_ERR(err, TS_ERR_FORMAT, "tensor '%s' appears %s", w->by_name[i]->name,
                          w->owned ? "twice in the list" : "in more than one file");
    return TS_OK;
}

static ts_status weights_add_file(ts_weights *w, const char *path, ts_err *err) {
    ts_st_file **nf = realloc(w->files, (size_t)(w->n_files + 1) * sizeof *nf);
    if (!nf) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    w->files = nf;
    TS_TRY(ts_st_open(&w->files[w->n_files], path, err));
    w->n_files++;
    return TS_OK;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static char *read_text(const char *path, ts_err *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        TS_ERR(err, TS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    if (sz < 0 || sz > (64l << 20)) {
        fclose(fp);
        TS_ERR(err, TS_ERR_FORMAT, "%s: unreasonable size", path);
        return NULL;
    }
    char *buf = malloc((size_t)sz + 1);
    if (!buf || fread(buf, 1, (size_t)sz, fp) != (size_t)sz) {
        free(buf);
        fclose(fp);
        TS_ERR(err, TS_ERR_IO, "%s: read failed", path);
        return NULL;
    }
    buf[sz] = 0;
    fclose(fp);
    return buf;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Opens the shards of an index.json; checks every weight_map name exists in its shard. */
static ts_status weights_open_index(ts_weights *w, const char *index, ts_err *err) {
    char *txt = read_text(index, err);
    if (!txt) return err ? err->code : TS_ERR_IO;
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    cJSON *map = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return TS_ERR(err, TS_ERR_FORMAT, "%s: no \"weight_map\" object", index);
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", index);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0;
    else dir[0] = 0;
    ts_status st = TS_OK;
    /* distinct shard names, in sorted order */
    int n = 0;
    for (cJSON *it = map->child; it; it = it->next) n++;
    char **shards = calloc((size_t)n + 1, sizeof *shards);
    int ns = 0;
    if (!shards) st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    for (cJSON *it = map->child; it && st == TS_OK; it = it->next) {
        if (!cJSON_IsString(it) || strchr(it->valuestring, '/') != NULL) {
            st = TS_ERR(err, TS_ERR_FORMAT, "%s: weight_map entry '%s' is not a shard file name", index, it->string);
            break;
        }
        int seen = 0;
        for (int i = 0; i < ns; i++) seen |= strcmp(shards[i], it->valuestring) == 0;
        if (!seen) shards[ns++] = it->valuestring;
    }
    if (st == TS_OK) qsort(shards, (size_t)ns, sizeof *shards, cmp_str);
    for (int i = 0; i < ns && st == TS_OK; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s%s", dir, shards[i]);
        st = weights_add_file(w, p, err);
    }
    for (cJSON *it = map->child; it && st == TS_OK; it = it->next) {
        int found = 0;
        for (int i = 0; i < w->n_files && !found; i++) {
            const char *base = strrchr(ts_st_path(w->files[i]), '/');
            base = base ? base + 1 : ts_st_path(w->files[i]);
            if (strcmp(base, it->valuestring) == 0 && ts_st_find(w->files[i], it->string)) found = 1;
        }
        if (!found)
            st = TS_ERR(err, TS_ERR_MISSING, "%s: tensor '%s' is not in shard %s", index, it->string, it->valuestring);
    }
    free(shards);
    cJSON_Delete(root);
    return st;
}

ts_status ts_weights_open(ts_weights **out, const char *path, ts_err *err) {
    *out = NULL;
    ts_weights *w = calloc(1, sizeof *w);
    if (!w) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    ts_status st = TS_OK;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        st = TS_ERR(err, TS_ERR_IO, "%s: %s", path, strerror(errno));
    } else if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        char **idx = NULL, **files = NULL;
        int ni = 0, nf = 0;
        struct dirent *de;
        if (!d) st = TS_ERR(err, TS_ERR_IO, "%s: cannot list the directory: %s", path, strerror(errno));
        while (d && st == TS_OK && (de = readdir(d))) {
            int is_idx = ends_with(de->d_name, ".safetensors.index.json");
            if (!is_idx && !ends_with(de->d_name, ".safetensors")) continue;
            char ***list = is_idx ? &idx : &files;
            int *cnt = is_idx ? &ni : &nf;
            char **grown = realloc(*list, (size_t)(*cnt + 1) * sizeof **list);
            char *name = strdup(de->d_name);
            if (grown) *list = grown;
            if (!grown || !name) {
                free(name);
                st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
                break;
            }
            (*list)[(*cnt)++] = name;
        }
        if (d) closedir(d);
        char p[PATH_MAX];
        if (st != TS_OK) {
            /* already reported */
        } else if (ni > 1) {
            st = TS_ERR(err, TS_ERR_FORMAT, "%s: more than one *.safetensors.index.json", path);
        } else if (ni == 1) {
            snprintf(p, sizeof p, "%s/%s", path, idx[0]);
            st = weights_open_index(w, p, err);
        } else if (nf == 0) {
            st = TS_ERR(err, TS_ERR_MISSING, "%s: no .safetensors files in this directory", path);
        } else {
            qsort(files, (size_t)nf, sizeof *files, cmp_str);
            for (int i = 0; i < nf && st == TS_OK; i++) {
                snprintf(p, sizeof p, "%s/%s", path, files[i]);
                st = weights_add_file(w, p, err);
            }
        }
        for (int i = 0; i < ni; i++) free(idx[i]);
        for (int i = 0; i < nf; i++) free(files[i]);
        free(idx);
        free(files);
    } else if (ends_with(path, ".json")) {
        st = weights_open_index(w, path, err);
    } else {
        st = weights_add_file(w, path, err);
    }
    if (st == TS_OK) st = weights_index(w, err);
    if (st != TS_OK) {
        ts_weights_close(w);
        return st;
    }
    *out = w;
    return TS_OK;
}

ts_status ts_weights_from_list(ts_weights **out, const ts_tensor *list, int n, ts_err *err) {
    *out = NULL;
    if (n < 0 || (n > 0 && !list)) return TS_ERR(err, TS_ERR_INVALID_ARG, "weights list: bad count %d or NULL list", n);
    ts_weights *w = calloc(1, sizeof *w);
    if (!w) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    w->owned = calloc((size_t)n + 1, sizeof *w->owned);
    w->owned_names = calloc((size_t)n + 1, sizeof *w->owned_names);
    if (!w->owned || !w->owned_names) {
        ts_weights_close(w);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    w->n = n;
    for (int i = 0; i < n; i++) {
        w->owned[i] = list[i];
        w->owned_names[i] = strdup(list[i].name ? list[i].name : "");
        w->owned[i].name = w->owned_names[i];
        if (!w->owned_names[i]) {
            ts_weights_close(w);
            return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        }
    }
    ts_status st = weights_index(w, err);
    if (st != TS_OK) {
        ts_weights_close(w);
        return st;
    }
    *out = w;
    return TS_OK;
}

void ts_weights_close(ts_weights *w) {
    if (!w) return;
    for (int i = 0; i < w->n_files; i++) ts_st_close(w->files[i]);
    if (w->owned_names)
        for (int i = 0; i < w->n; i++) free(w->owned_names[i]);
    free(w->owned_names);
    free(w->owned);
    free(w->files);
    free(w->by_name);
    free(w->used);
    free(w);
}

int ts_weights_count(const ts_weights *w) { return w->n; }
const ts_tensor *ts_weights_at(const ts_weights *w, int i) {
    return i >= 0 && i < w->n ? w->by_name[i] : NULL;
}

static int find_index(const ts_weights *w, const char *name) {
    int lo = 0, hi = w->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(w->by_name[mid]->name, name);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

const ts_tensor *ts_weights_get(ts_weights *w, const char *name) {
    int i = find_index(w, name);
    if (i < 0) return NULL;
    w->used[i] = 1;
    return w->by_name[i];
}
const ts_tensor *ts_weights_peek(const ts_weights *w, const char *name) {
    int i = find_index(w, name);
    return i < 0 ? NULL : w->by_name[i];
}
int ts_weights_is_used(const ts_weights *w, int i) { return i >= 0 && i < w->n && w->used[i]; }
void ts_weights_clear_used(ts_weights *w) { memset(w->used, 0, (size_t)w->n); }
const char *ts_weights_meta(const ts_weights *w, const char *key) {
    for (int i = 0; i < w->n_files; i++) {
        const char *v = ts_st_meta(w->files[i], key);
        if (v) return v;
    }
    return NULL;
}

/* ------------------------------------------------------------------ writer */

static int write_all(int fd, const void *buf, size_t n) {
    const unsigned char *p = buf;
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Data order: larger elements first (stable), as Python's writer does, so every
 * tensor starts at a multiple of its element size without gaps (the Rust/Python
 * reader rejects gaps); the header is padded to 8 so the data section is aligned. */
ts_status ts_st_write(const char *path, const ts_st_item *items, int n_items,
                      const char *const *meta, int n_meta, ts_err *err) {
    if (!path || n_items < 0 || n_meta < 0 || (n_items > 0 && !items) || (n_meta > 0 && !meta))
        return TS_ERR(err, TS_ERR_INVALID_ARG, "safetensors write: bad arguments");
    for (int i = 0; i < n_meta; i++)
        if (!meta[2 * i] || !meta[2 * i + 1])
            return TS_ERR(err, TS_ERR_INVALID_ARG, "%s: metadata pair %d has a NULL key or value", path, i);
    for (int i = 0; i < n_items; i++) {
        const ts_tensor *t = &items[i].t;
        const char *name = items[i].name;
        if (!name || strcmp(name, "__metadata__") == 0)
            return TS_ERR(err, TS_ERR_INVALID_ARG, "%s: item %d has no usable name", path, i);
        if (ts_dtype_size(t->dtype) == 0 || t->ndim < 0 || t->ndim > TS_MAX_DIMS)
            return TS_ERR(err, TS_ERR_INVALID_ARG, "%s: tensor '%s' has a bad dtype or rank", path, name);
        if (!ts_tensor_is_contiguous(t))
            return TS_ERR(err, TS_ERR_INVALID_ARG, "%s: tensor '%s' is not contiguous", path, name);
        if (ts_tensor_nbytes(t) > 0 && !t->data)
            return TS_ERR(err, TS_ERR_INVALID_ARG, "%s: tensor '%s' has no data", path, name);
        for (int j = 0; j < i; j++)
            if (strcmp(items[j].name, name) == 0)
                return TS_ERR(err, TS_ERR_INVALID_ARG, "%s: tensor '%s' given twice", path, name);
    }
    /* order[k]: item written k-th in the data section; insertion sort keeps it stable */
    int *order = malloc(((size_t)n_items + 1) * sizeof *order);
    uint64_t *begin = malloc(((size_t)n_items + 1) * sizeof *begin);
    if (!order || !begin) {
        free(order);
        free(begin);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n_items; i++) {
        int k = i;
        size_t es = ts_dtype_size(items[i].t.dtype);
        while (k > 0 && ts_dtype_size(items[order[k - 1]].t.dtype) < es) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
    uint64_t off = 0;
    for (int k = 0; k < n_items; k++) {
        begin[order[k]] = off;
        off += ts_tensor_nbytes(&items[order[k]].t);
    }
    /* JSON keys in item order, __metadata__ first */
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    if (ok && n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        ok = m != NULL;
        for (int i = 0; i < n_meta && ok; i++) ok = cJSON_AddStringToObject(m, meta[2 * i], meta[2 * i + 1]) != NULL;
    }
    for (int i = 0; i < n_items && ok; i++) {
        const ts_tensor *t = &items[i].t;
        cJSON *e = cJSON_AddObjectToObject(root, items[i].name);
        ok = e && cJSON_AddStringToObject(e, "dtype", ts_dtype_name(t->dtype));
        cJSON *s = ok ? cJSON_AddArrayToObject(e, "shape") : NULL;
        cJSON *o = s ? cJSON_AddArrayToObject(e, "data_offsets") : NULL;
        ok = o != NULL;
        for (int d = 0; d < t->ndim && ok; d++) {
            cJSON *v = cJSON_CreateNumber((double)t->shape[d]);
            ok = v && cJSON_AddItemToArray(s, v);
        }
        cJSON *b = ok ? cJSON_CreateNumber((double)begin[i]) : NULL;
        ok = b && cJSON_AddItemToArray(o, b);
        cJSON *en = ok ? cJSON_CreateNumber((double)(begin[i] + ts_tensor_nbytes(t))) : NULL;
        ok = en && cJSON_AddItemToArray(o, en);
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    free(begin);
    if (!json) {
        free(order);
        return TS_ERR(err, TS_ERR_NOMEM, "%s: out of memory building the header", path);
    }
    size_t jl = strlen(json), padded = (jl + 7) & ~(size_t)7;
    char tmpl[PATH_MAX];
    if ((size_t)snprintf(tmpl, sizeof tmpl, "%s.tmp.XXXXXX", path) >= sizeof tmpl) {
        free(json);
        free(order);
        return TS_ERR(err, TS_ERR_INVALID_ARG, "%s: path too long", path);
    }
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        int e = errno;
        free(json);
        free(order);
        return TS_ERR(err, TS_ERR_IO, "%s: cannot create a temporary file: %s", path, strerror(e));
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    /* mkstemp makes the file 0600; a checkpoint is meant to be readable like any other file */
    int bad = fchmod(fd, 0644) != 0;
    if (!bad) bad = write_all(fd, len8, 8) || write_all(fd, json, jl);
    if (!bad && padded > jl) bad = write_all(fd, "        ", padded - jl);
    free(json);
    for (int k = 0; k < n_items && !bad; k++)
        bad = write_all(fd, items[order[k]].t.data, ts_tensor_nbytes(&items[order[k]].t));
    free(order);
    if (!bad) bad = fsync(fd) != 0;
    int e = errno;
    if (close(fd) != 0 && !bad) bad = 1, e = errno;
    if (!bad && rename(tmpl, path) != 0) bad = 1, e = errno;
    if (bad) {
        unlink(tmpl);
        return TS_ERR(err, TS_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    return TS_OK;
}

/* See safetensors.h. */
ts_status ts_st_ids(const ts_st_file *f, const char *name, int required, int64_t B, int64_t L, int32_t **out,
                    const ts_tensor **t_out, ts_err *err) {
    *out = NULL;
    const ts_tensor *x = ts_st_find(f, name);
    if (t_out) *t_out = x;
    if (!x) return required ? TS_ERR(err, TS_ERR_MISSING, "inputs lack '%s' (expected [B, L] token ids)", name) : TS_OK;
    char got[96];
    if (x->ndim != 2 || (B >= 0 && (x->shape[0] != B || x->shape[1] != L)))
        return TS_ERR(err, TS_ERR_SHAPE, "input '%s' has shape %s, expected [B, L]%s", name, ts_shape_str(x, got, sizeof got),
                      B >= 0 ? " like input_ids" : "");
    int64_t n = ts_tensor_numel(x);
    int32_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        int64_t k;
        switch (x->dtype) {
        case TS_DTYPE_I64: k = ((const int64_t *)x->data)[i]; break;
        case TS_DTYPE_I32: k = ((const int32_t *)x->data)[i]; break;
        case TS_DTYPE_I16: k = ((const int16_t *)x->data)[i]; break;
        case TS_DTYPE_U8: k = ((const uint8_t *)x->data)[i]; break;
        case TS_DTYPE_BOOL: k = ((const uint8_t *)x->data)[i] != 0; break;
        case TS_DTYPE_F32: k = (int64_t)((const float *)x->data)[i]; break;
        default:
            free(v);
            return TS_ERR(err, TS_ERR_FORMAT, "input '%s' has dtype %s; expected integers", name, ts_dtype_name(x->dtype));
        }
        if (k < INT32_MIN || k > INT32_MAX) {
            free(v);
            return TS_ERR(err, TS_ERR_FORMAT, "input '%s' holds %lld, out of range", name, (long long)k);
        }
        v[i] = (int32_t)k;
    }
    *out = v;
    return TS_OK;
}
