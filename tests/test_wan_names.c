/*
 * test_wan_names.c — the Wan DiT name table against the real Wan2.1-T2V 1.3B and 14B
 * key sets (tests/fixtures/wan_dit_keys.txt: names and shapes, no data), in both the
 * original and the diffusers layout (and the original with ComfyUI's prefix): every key
 * binds, the config read from shapes is the real one, the two layouts map 1:1 (the name
 * table's entry i holds diffusers key d and original key o with o = the independent
 * renaming of d in wan_rename.h, same shape), and a set with a missing, an extra or a
 * mis-shaped tensor is rejected naming it.
 */
#include <stdlib.h>
#include <string.h>

#include "dit/wan.h"
#include "safetensors.h"
#include "test.h"
#include "wan_rename.h"

typedef struct keyset {
    ts_tensor *t;
    char **names;
    int n;
} keyset;

static void keyset_free(keyset *k) {
    for (int i = 0; i < k->n; i++) free(k->names[i]);
    free(k->names);
    free(k->t);
    memset(k, 0, sizeof *k);
}

static int load_keys(const char *model, const char *layout, keyset *k) {
    FILE *fp = fopen(ts_test_fixture("wan_dit_keys.txt"), "r");
    if (!fp) return -1;
    char line[512];
    int cap = 0;
    while (fgets(line, sizeof line, fp)) {
        char m[16], l[16], name[256], dt[16], shape[128];
        if (line[0] == '#' || sscanf(line, "%15s %15s %255s %15s %127s", m, l, name, dt, shape) != 5) continue;
        if (strcmp(m, model) || strcmp(l, layout)) continue;
        if (k->n == cap) {
            cap = cap ? 2 * cap : 256;
            k->t = realloc(k->t, (size_t)cap * sizeof *k->t);
            k->names = realloc(k->names, (size_t)cap * sizeof *k->names);
        }
        int64_t s[TS_MAX_DIMS];
        int nd = 0;
        for (char *tok = strtok(shape, ","); tok && nd < TS_MAX_DIMS; tok = strtok(NULL, ",")) s[nd++] = atoll(tok);
        ts_dtype d = TS_DTYPE_BF16;
        ts_dtype_from_name(dt, &d);
        k->t[k->n] = ts_tensor_make(d, nd, s, NULL);
        k->names[k->n] = strdup(name);
        k->t[k->n].name = k->names[k->n];
        k->n++;
    }
    fclose(fp);
    return k->n > 0 ? 0 : -1;
}

static ts_status bind(const keyset *k, wan_model **m, ts_err *e) {
    ts_weights *w = NULL;
    TS_TRY(ts_weights_from_list(&w, k->t, k->n, e));
    return wan_load_from(m, w, NULL, e);
}

/* Every bound tensor of the diffusers-layout model d has, at the same table position in
 * the original-layout model o, the renamed key (after prefix) and the same shape. */
static void check_one_to_one(const char *model, const wan_model *o, const wan_model *d,
                             const char *prefix, int64_t n_keys) {
    int64_t n = wan_tensor_count(d), bad = 0;
    TS_CHECK(n == wan_tensor_count(o) && n == n_keys, "%s: %lld / %lld bound tensors, %lld keys", model,
             (long long)n, (long long)wan_tensor_count(o), (long long)n_keys);
    for (int64_t i = 0; i < n && i < wan_tensor_count(o); i++) {
        const ts_tensor *td = wan_tensor_at(d, i), *to = wan_tensor_at(o, i);
        char want[300], nm[256];
        wan_dit_to_original(td->name, nm, sizeof nm);
        snprintf(want, sizeof want, "%s%s", prefix, nm);
        int same = strcmp(want, to->name) == 0 && td->ndim == to->ndim;
        for (int j = 0; same && j < td->ndim; j++) same = td->shape[j] == to->shape[j];
        if (!same && bad++ < 5)
            TS_CHECK(0, "%s: table entry %lld: diffusers %s vs original %s", model, (long long)i, td->name,
                     to->name);
    }
    TS_CHECK(bad == 0, "%s: %lld of %lld entries map 1:1 wrongly", model, (long long)bad, (long long)n);
    TS_CHECK(wan_tensor_at(d, n) == NULL && wan_tensor_at(d, -1) == NULL, "%s: out-of-range index", model);
}

/* Rejections, each naming the tensor: the last block's ffn.2 bias left out; an unknown
 * extra tensor (a LoRA key); one block-7 weight transposed. */
static void check_rejections(const char *what, const keyset *k, int last_block) {
    char victim_key[64];
    snprintf(victim_key, sizeof victim_key, "blocks.%d.", last_block);
    int victim = -1, sq = -1;
    for (int i = 0; i < k->n; i++) {
        if (strstr(k->names[i], victim_key) && strstr(k->names[i], "ffn") && strstr(k->names[i], "2.bias"))
            victim = i;
        if (strstr(k->names[i], "blocks.7.") && k->t[i].ndim == 2 && k->t[i].shape[0] != k->t[i].shape[1])
            sq = i;
    }
    TS_CHECK(victim >= 0 && sq >= 0, "%s: found the victim tensors", what);
    if (victim < 0 || sq < 0) return;
    wan_model *m = NULL;
    ts_err e = {0};
    keyset v = {0};
    v.t = malloc((size_t)(k->n + 1) * sizeof *v.t);

    for (int i = 0, j = 0; i < k->n; i++)
        if (i != victim) v.t[j++] = k->t[i];
    v.n = k->n - 1;
    ts_status s = bind(&v, &m, &e);
    TS_CHECK(s == TS_ERR_MISSING && strstr(e.msg, k->names[victim]), "%s: missing named: %s", what, e.msg);
    wan_free(m);

    memcpy(v.t, k->t, (size_t)k->n * sizeof *v.t);
    int64_t s1[1] = {7};
    v.t[k->n] = ts_tensor_make(TS_DTYPE_BF16, 1, s1, NULL);
    v.t[k->n].name = "blocks.3.self_attn.lora_A.weight";
    v.n = k->n + 1;
    s = bind(&v, &m, &e);
    TS_CHECK(s == TS_ERR_UNEXPECTED && strstr(e.msg, "blocks.3.self_attn.lora_A.weight"), "%s: extra named: %s",
             what, e.msg);
    wan_free(m);

    memcpy(v.t, k->t, (size_t)k->n * sizeof *v.t);
    v.n = k->n;
    int64_t s2[2] = {k->t[sq].shape[1], k->t[sq].shape[0]};
    v.t[sq] = ts_tensor_make(TS_DTYPE_BF16, 2, s2, NULL);
    v.t[sq].name = k->names[sq];
    s = bind(&v, &m, &e);
    TS_CHECK(s == TS_ERR_SHAPE && strstr(e.msg, k->names[sq]), "%s: mis-shaped named: %s", what, e.msg);
    wan_free(m);
    free(v.t);
}

int main(void) {
    const struct { const char *model; int64_t dim, ffn, layers, heads; } models[] = {
        {"1.3B", 1536, 8960, 30, 12}, {"14B", 5120, 13824, 40, 40}};
    const char *layouts[2] = {"original", "diffusers"};
    const char *comfy = "model.diffusion_model.";
    for (int mi = 0; mi < 2; mi++) {
        /* [0] original, [1] diffusers, [2] original with the ComfyUI prefix */
        keyset k[3] = {{0}};
        wan_model *wm[3] = {NULL, NULL, NULL};
        for (int li = 0; li < 3; li++) {
            char what[64];
            snprintf(what, sizeof what, "%s %s%s", models[mi].model, layouts[li % 2], li == 2 ? " (ComfyUI)" : "");
            TS_CHECK(load_keys(models[mi].model, layouts[li % 2], &k[li]) == 0, "%s: keys", what);
            if (li == 2)
                for (int i = 0; i < k[li].n; i++) {
                    char *p = malloc(strlen(comfy) + strlen(k[li].names[i]) + 1);
                    strcpy(p, comfy), strcat(p, k[li].names[i]);
                    free(k[li].names[i]);
                    k[li].names[i] = p;
                    k[li].t[i].name = p;
                }

            /* the config straight from the shapes, then through a full bind */
            ts_weights *w = NULL;
            ts_err e = {0};
            wan_config c0 = {0};
            ts_status s = ts_weights_from_list(&w, k[li].t, k[li].n, &e);
            if (s == TS_OK) s = wan_config_from_weights(w, NULL, &c0, &e);
            ts_weights_close(w);
            TS_CHECK(s == TS_OK && c0.dim == models[mi].dim && c0.layers == models[mi].layers &&
                         c0.head_dim == 128,
                     "%s: wan_config_from_weights: %s (dim %lld, layers %lld)", what, e.msg, (long long)c0.dim,
                     (long long)c0.layers);
            s = bind(&k[li], &wm[li], &e);
            TS_CHECK(s == TS_OK, "%s binds: %s", what, e.msg);
            if (s == TS_OK) {
                const wan_config *c = wan_model_config(wm[li]);
                TS_CHECK(c->dim == models[mi].dim && c->ffn_dim == models[mi].ffn &&
                             c->layers == models[mi].layers && c->heads == models[mi].heads &&
                             c->head_dim == 128 && c->in_ch == 16 && c->out_ch == 16 && c->text_dim == 4096 &&
                             c->freq_dim == 256 && c->patch[0] == 1 && c->patch[1] == 2 && c->patch[2] == 2 &&
                             c->eps == 1e-6f,
                         "%s config: dim %lld ffn %lld layers %lld heads %lld", what, (long long)c->dim,
                         (long long)c->ffn_dim, (long long)c->layers, (long long)c->heads);
            }
            if (li < 2) check_rejections(what, &k[li], (int)models[mi].layers - 1);
        }
        TS_CHECK(k[0].n == k[1].n && k[0].n > 0, "%s: %d original vs %d diffusers keys", models[mi].model, k[0].n,
                 k[1].n);
        if (wm[0] && wm[1]) check_one_to_one(models[mi].model, wm[0], wm[1], "", k[1].n);
        if (wm[2] && wm[1]) check_one_to_one(models[mi].model, wm[2], wm[1], comfy, k[1].n);
        for (int li = 0; li < 3; li++) {
            wan_free(wm[li]);
            keyset_free(&k[li]);
        }
    }
    return ts_test_summary("wan_names");
}
