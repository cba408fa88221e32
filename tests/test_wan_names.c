/*
 * test_wan_names.c — the Wan DiT name table against the real Wan2.1-T2V 1.3B and 14B
 * key sets (tests/fixtures/wan_dit_keys.txt: names and shapes, no data), in both the
 * original and the diffusers layout: every key binds, the config read from shapes is
 * the real one, both layouts bind the same number of tensors, and a set with a missing,
 * an extra or a mis-shaped tensor is rejected naming it.
 */
#include <stdlib.h>
#include <string.h>

#include "dit/wan.h"
#include "safetensors.h"
#include "test.h"

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

int main(void) {
    const struct { const char *model; int64_t dim, ffn, layers, heads; } models[] = {
        {"1.3B", 1536, 8960, 30, 12}, {"14B", 5120, 13824, 40, 40}};
    for (int mi = 0; mi < 2; mi++) {
        int counts[2] = {0, 0};
        const char *layouts[2] = {"original", "diffusers"};
        for (int li = 0; li < 2; li++) {
            keyset k = {0};
            TS_CHECK(load_keys(models[mi].model, layouts[li], &k) == 0, "keys for %s %s", models[mi].model, layouts[li]);
            counts[li] = k.n;
            wan_model *m = NULL;
            ts_err e = {0};
            ts_status s = bind(&k, &m, &e);
            TS_CHECK(s == TS_OK, "%s %s binds: %s", models[mi].model, layouts[li], e.msg);
            if (s == TS_OK) {
                const wan_config *c = wan_model_config(m);
                TS_CHECK(c->dim == models[mi].dim && c->ffn_dim == models[mi].ffn &&
                             c->layers == models[mi].layers && c->heads == models[mi].heads &&
                             c->in_ch == 16 && c->out_ch == 16 && c->text_dim == 4096 &&
                             c->freq_dim == 256 && c->patch[0] == 1 && c->patch[1] == 2 && c->patch[2] == 2,
                         "%s %s config: dim %lld ffn %lld layers %lld heads %lld", models[mi].model,
                         layouts[li], (long long)c->dim, (long long)c->ffn_dim, (long long)c->layers,
                         (long long)c->heads);
            }
            wan_free(m);
            /* missing: drop the last block's ffn.2 bias; extra: rename one tensor to an unknown
             * name (which also makes its own key missing, so drop-and-add is tested via the
             * unexpected path with a duplicate-free extra); mis-shaped: transpose one weight. */
            int victim = -1;
            for (int i = 0; i < k.n; i++)
                if (strstr(k.names[i], "blocks.29.") && strstr(k.names[i], "ffn") && strstr(k.names[i], "2.bias")) victim = i;
            TS_CHECK(victim >= 0, "found the victim tensor");
            if (victim >= 0) {
                keyset miss = {0};
                miss.t = malloc((size_t)k.n * sizeof *miss.t);
                for (int i = 0, j = 0; i < k.n; i++)
                    if (i != victim) miss.t[j++] = k.t[i];
                miss.n = k.n - 1;
                s = bind(&miss, &m, &e);
                TS_CHECK(s == TS_ERR_MISSING && strstr(e.msg, k.names[victim]), "missing named: %s", e.msg);
                wan_free(m);
                free(miss.t);

                keyset extra = {0};
                extra.t = malloc((size_t)(k.n + 1) * sizeof *extra.t);
                memcpy(extra.t, k.t, (size_t)k.n * sizeof *extra.t);
                int64_t s1[1] = {7};
                extra.t[k.n] = ts_tensor_make(TS_DTYPE_BF16, 1, s1, NULL);
                extra.t[k.n].name = "blocks.3.self_attn.lora_A.weight";
                extra.n = k.n + 1;
                s = bind(&extra, &m, &e);
                TS_CHECK(s == TS_ERR_UNEXPECTED && strstr(e.msg, "blocks.3.self_attn.lora_A.weight"), "extra named: %s", e.msg);
                wan_free(m);

                int sq = -1;
                for (int i = 0; i < k.n; i++)
                    if (strstr(k.names[i], "blocks.7.") && k.t[i].ndim == 2 && k.t[i].shape[0] != k.t[i].shape[1]) sq = i;
                memcpy(extra.t, k.t, (size_t)k.n * sizeof *extra.t);
                extra.n = k.n;
                int64_t s2[2] = {k.t[sq].shape[1], k.t[sq].shape[0]};
                extra.t[sq] = ts_tensor_make(TS_DTYPE_BF16, 2, s2, NULL);
                extra.t[sq].name = k.names[sq];
                s = bind(&extra, &m, &e);
                TS_CHECK(s == TS_ERR_SHAPE && strstr(e.msg, k.names[sq]), "mis-shaped named: %s", e.msg);
                wan_free(m);
                free(extra.t);
            }
            keyset_free(&k);
        }
        TS_CHECK(counts[0] == counts[1] && counts[0] > 0, "%s: %d original vs %d diffusers keys",
                 models[mi].model, counts[0], counts[1]);
    }
    return ts_test_summary("wan_names");
}
