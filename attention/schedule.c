/*
 * schedule.c — schedule files (cJSON), rule matching per call and head, the methods'
 * plans (cached for the static ones) and the density records; see schedule.h.
 */
#include "schedule.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/backend.h"
#include "../src/tensor.h"
#include "attention.h"
#include "build.h"
#include "draft.h"
#include "paro.h"
#include "schedule_internal.h"
#include "sla.h"

typedef enum method { M_DENSE = 0, M_GNA, M_CLEAR, M_DRAFT, M_SLA, M_PARO, M_COUNT } method;
static const char *const method_names[] = {"dense", "gna", "clear", "draft", "sla", "paro"};

typedef struct range {
    int64_t lo, hi; /* inclusive */
} range;

typedef struct rule {
    int cross;
    range *layers, *steps, *heads;
    int n_layers, n_steps, n_heads; /* 0: any */
    int has_frac, has_ts, ts_lo_open; /* ts_lo_open: t > ts_lo ({"above": a}) */
    double frac_lo, frac_hi, ts_lo, ts_hi;
    method m;
    int window[3], stride[3], dilation[3], causal[3], tile[3], block;
    double radius;
    int pool[2];
    double sparsity;
    double topk;
    int block_q, block_k, complement; /* complement -1: the site's (the checkpoint's) */
    char *calibration; /* paro: the file as given */
    ts_paro *paro;     /* paro: loaded at parse time */
    ts_quant quant;    /* paro: TS_QUANT_INT8_QK (default) or none */
    int bf16;          /* "precision": "bf16": the kernel runs on bf16 copies of q, k, v */
} rule;

typedef struct cached {
    int rule;
    int64_t n, grid[3], img0;
    ts_attn_plan plan;
    ts_plan_store store;
    double tile_density; /* ts_attn_plan_tile_density, once per shape */
} cached;

struct ts_attn_schedule {
    rule *rules;
    int n_rules;
    int warned_no_proj; /* SLA without proj_l said once */
    int said_complement; /* SLA's paper branch taken from the checkpoint said once */
    char notes[512];    /* ts_attn_schedule_notes: lines, "\n" after each */
    cached *cache;
    int n_cache, cap_cache;
    ts_attn_record *rec;
    int n_rec, cap_rec;
    ts_attn_observer observer;
    void *observer_user;
    int measure_error; /* ts_attn_schedule_set_error */
};

/* ------------------------------------------------------------------ parsing */

#define FAIL(...) (TS_ERR(err, TS_ERR_FORMAT, __VA_ARGS__))

/* A list of ints and "a-b" strings (or one of them alone; "all" = NULL list). */
static ts_status parse_ranges(const cJSON *j, range **out, int *n_out, const char *label, int ri,
                              const char *field, ts_err *err) {
    *out = NULL, *n_out = 0;
    if (cJSON_IsString(j) && strcmp(j->valuestring, "all") == 0) return TS_OK;
    int n = cJSON_IsArray(j) ? cJSON_GetArraySize(j) : 1;
    if (n < 1) return FAIL("%s: rule %d: '%s' is an empty list", label, ri, field);
    range *r = calloc((size_t)n, sizeof *r);
    if (!r) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const cJSON *it = cJSON_IsArray(j) ? cJSON_GetArrayItem(j, i) : j;
        long long a, b;
        char tail;
        /* bounded before the cast: a double past the integer range has no defined conversion */
        if (cJSON_IsNumber(it) && it->valuedouble == floor(it->valuedouble) && it->valuedouble >= 0 &&
            it->valuedouble <= INT_MAX) {
            r[i].lo = r[i].hi = (int64_t)it->valuedouble;
        } else if (cJSON_IsString(it) && sscanf(it->valuestring, "%lld-%lld%c", &a, &b, &tail) == 2 && a >= 0 && b >= a) {
            r[i].lo = a, r[i].hi = b;
        } else {
            free(r);
            return FAIL("%s: rule %d: '%s' entry %d is not a non-negative integer or an \"a-b\" range (a <= b)",
                        label, ri, field, i + 1);
        }
    }
    *out = r, *n_out = n;
    return TS_OK;
}

/* One int or [t, h, w] of ints in [lo, hi]. */
static ts_status parse_ivec3(const cJSON *j, int *v, int lo, int hi, const char *label, int ri, const char *field,
                             ts_err *err) {
    if (cJSON_IsNumber(j)) {
        if (j->valuedouble != floor(j->valuedouble) || j->valuedouble < lo || j->valuedouble > hi)
            return FAIL("%s: rule %d: '%s' must be an integer in [%d, %d]", label, ri, field, lo, hi);
        v[0] = v[1] = v[2] = (int)j->valuedouble;
        return TS_OK;
    }
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != 3)
        return FAIL("%s: rule %d: '%s' must be one integer or three [t, h, w]", label, ri, field);
    for (int i = 0; i < 3; i++) {
        const cJSON *it = cJSON_GetArrayItem(j, i);
        if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) || it->valuedouble < lo || it->valuedouble > hi)
            return FAIL("%s: rule %d: '%s' entry %d must be an integer in [%d, %d]", label, ri, field, i + 1, lo, hi);
        v[i] = (int)it->valuedouble;
    }
    return TS_OK;
}

static ts_status parse_bvec3(const cJSON *j, int *v, const char *label, int ri, ts_err *err) {
    if (cJSON_IsBool(j)) {
        v[0] = v[1] = v[2] = cJSON_IsTrue(j);
        return TS_OK;
    }
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != 3)
        return FAIL("%s: rule %d: 'causal' must be true/false or three of them", label, ri);
    for (int i = 0; i < 3; i++) {
        const cJSON *it = cJSON_GetArrayItem(j, i);
        if (!cJSON_IsBool(it)) return FAIL("%s: rule %d: 'causal' entry %d must be true or false", label, ri, i + 1);
        v[i] = cJSON_IsTrue(it);
    }
    return TS_OK;
}

static ts_status parse_pair(const cJSON *j, double *a, double *b, double lo, double hi, const char *label, int ri,
                            const char *field, ts_err *err) {
    const cJSON *x = cJSON_GetArrayItem(j, 0), *y = cJSON_GetArrayItem(j, 1);
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != 2 || !cJSON_IsNumber(x) || !cJSON_IsNumber(y) ||
        x->valuedouble < lo || y->valuedouble > hi || x->valuedouble > y->valuedouble)
        return FAIL("%s: rule %d: '%s' must be [a, b] with %g <= a <= b <= %g", label, ri, field, lo, hi);
    *a = x->valuedouble, *b = y->valuedouble;
    return TS_OK;
}

static void rule_defaults(rule *r) {
    memset(r, 0, sizeof *r);
    int w[3] = {3, 7, 7};
    for (int i = 0; i < 3; i++)
        r->window[i] = w[i], r->stride[i] = 1, r->dilation[i] = 1, r->causal[i] = 0, r->tile[i] = i ? 8 : 1;
    r->block = 64;
    r->radius = 8;
    r->pool[0] = 8, r->pool[1] = 16;
    r->sparsity = 0.75;
    r->topk = 0.1; /* TurboDiffusion's sla_topk */
    r->block_q = 128, r->block_k = 64;
    r->complement = -1; /* the site's: what the checkpoint was trained with */
    r->quant = TS_QUANT_INT8_QK;
}

static const char *const gna_params[] = {"window", "stride", "dilation", "causal", "tile", "block", NULL};
static const char *const clear_params[] = {"radius", "tile", "block", NULL};
static const char *const draft_params[] = {"pool", "sparsity", NULL};
static const char *const sla_params[] = {"topk", "block_q", "block_k", "variant", NULL};
static const char *const paro_params[] = {"calibration", "quant", NULL};

/* 1 when an earlier member of obj has its name (the callers refuse unknown names first, so a
 * few members at most come before it). */
static int given_before(const cJSON *obj, const cJSON *it) {
    for (const cJSON *b = obj->child; b != it; b = b->next)
        if (!strcmp(b->string, it->string)) return 1;
    return 0;
}

static ts_status parse_params(const cJSON *pj, rule *r, const char *label, int ri, const char *base, ts_err *err) {
    if (r->m == M_PARO && !cJSON_GetObjectItemCaseSensitive(pj, "calibration"))
        return FAIL("%s: rule %d: method paro needs 'calibration' (a file made by tessera-calibrate)", label, ri);
    if (!pj) return TS_OK;
    if (!cJSON_IsObject(pj)) return FAIL("%s: rule %d: 'params' must be an object", label, ri);
    const char *const *known = r->m == M_GNA ? gna_params : r->m == M_CLEAR ? clear_params
                             : r->m == M_DRAFT ? draft_params : r->m == M_SLA ? sla_params
                             : r->m == M_PARO ? paro_params : NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, pj) {
        int ok = !strcmp(it->string, "precision"); /* every method's */
        for (int i = 0; known && known[i]; i++) ok |= strcmp(it->string, known[i]) == 0;
        if (!ok) return FAIL("%s: rule %d: method %s has no parameter '%s'", label, ri, method_names[r->m], it->string);
        if (given_before(pj, it)) return FAIL("%s: rule %d: parameter '%s' is given twice", label, ri, it->string);
        if (!strcmp(it->string, "window")) TS_TRY(parse_ivec3(it, r->window, 1, 4096, label, ri, "window", err));
        else if (!strcmp(it->string, "stride")) TS_TRY(parse_ivec3(it, r->stride, 1, 4096, label, ri, "stride", err));
        else if (!strcmp(it->string, "dilation")) TS_TRY(parse_ivec3(it, r->dilation, 1, 4096, label, ri, "dilation", err));
        else if (!strcmp(it->string, "tile")) TS_TRY(parse_ivec3(it, r->tile, 1, 1024, label, ri, "tile", err));
        else if (!strcmp(it->string, "causal")) TS_TRY(parse_bvec3(it, r->causal, label, ri, err));
        else if (!strcmp(it->string, "block")) {
            int b[3];
            TS_TRY(parse_ivec3(it, b, 16, 256, label, ri, "block", err));
            if (b[0] % 16) return FAIL("%s: rule %d: 'block' must be a multiple of 16", label, ri);
            r->block = b[0];
        } else if (!strcmp(it->string, "pool")) {
            const cJSON *a = cJSON_GetArrayItem(it, 0), *b = cJSON_GetArrayItem(it, 1);
            int ok2 = cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsNumber(a) && cJSON_IsNumber(b) &&
                      a->valuedouble == floor(a->valuedouble) && b->valuedouble == floor(b->valuedouble) &&
                      a->valuedouble >= 1 && b->valuedouble >= 1 && a->valuedouble * b->valuedouble <= 256;
            if (!ok2) return FAIL("%s: rule %d: 'pool' must be [h, w], positive integers with h·w <= 256", label, ri);
            r->pool[0] = (int)a->valuedouble, r->pool[1] = (int)b->valuedouble;
        } else if (!strcmp(it->string, "topk")) {
            if (!cJSON_IsNumber(it) || !(it->valuedouble > 0 && it->valuedouble <= 1))
                return FAIL("%s: rule %d: 'topk' must be a number in (0, 1]", label, ri);
            r->topk = it->valuedouble;
        } else if (!strcmp(it->string, "block_q") || !strcmp(it->string, "block_k")) {
            int q = !strcmp(it->string, "block_q"), lim = q ? 1024 : 256;
            if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) || it->valuedouble < 16 ||
                it->valuedouble > lim || (int)it->valuedouble % 16)
                return FAIL("%s: rule %d: '%s' must be a multiple of 16 in [16, %d]", label, ri, it->string, lim);
            if (q) r->block_q = (int)it->valuedouble;
            else r->block_k = (int)it->valuedouble;
        } else if (!strcmp(it->string, "variant")) {
            if (!cJSON_IsString(it) || (strcmp(it->valuestring, "all") && strcmp(it->valuestring, "complement")))
                return FAIL("%s: rule %d: 'variant' must be \"all\" (TurboDiffusion) or \"complement\" (the paper)", label, ri);
            r->complement = !strcmp(it->valuestring, "complement");
        } else if (!strcmp(it->string, "sparsity")) {
            if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0 && it->valuedouble < 1))
                return FAIL("%s: rule %d: 'sparsity' must be a number in [0, 1)", label, ri);
            r->sparsity = it->valuedouble;
        } else if (!strcmp(it->string, "quant")) {
            if (!cJSON_IsString(it) || (strcmp(it->valuestring, "int8") && strcmp(it->valuestring, "none")))
                return FAIL("%s: rule %d: 'quant' must be \"int8\" (Q·Kᵀ in INT8, the paper) or \"none\" (fp32)", label, ri);
            r->quant = strcmp(it->valuestring, "int8") ? TS_QUANT_NONE : TS_QUANT_INT8_QK;
        } else if (!strcmp(it->string, "calibration")) {
            if (!cJSON_IsString(it) || !it->valuestring[0])
                return FAIL("%s: rule %d: 'calibration' must be a file name", label, ri);
            const char *f = it->valuestring;
            size_t nb = base && f[0] != '/' ? strlen(base) : 0, n = nb + strlen(f) + 2;
            r->calibration = malloc(n);
            if (!r->calibration) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
            if (nb) snprintf(r->calibration, n, "%s/%s", base, f); /* relative to the schedule file */
            else snprintf(r->calibration, n, "%s", f);
            ts_err e2 = {0};
            ts_status st = ts_paro_load(&r->paro, r->calibration, &e2);
            if (st != TS_OK)
                return TS_ERR(err, st, "%s: rule %d: 'calibration': %s", label, ri, e2.msg);
        } else if (!strcmp(it->string, "precision")) {
            if (!cJSON_IsString(it) || (strcmp(it->valuestring, "fp32") && strcmp(it->valuestring, "bf16")))
                return FAIL("%s: rule %d: 'precision' must be \"fp32\" (the default) or \"bf16\" (q, k, v rounded to "
                            "bf16 for the kernel)", label, ri);
            r->bf16 = !strcmp(it->valuestring, "bf16");
        } else if (!strcmp(it->string, "radius")) {
            if (!cJSON_IsNumber(it) || !(it->valuedouble > 0 && it->valuedouble <= 4096))
                return FAIL("%s: rule %d: 'radius' must be a number in (0, 4096]", label, ri);
            r->radius = it->valuedouble;
        }
    }
    if (r->m == M_PARO && r->bf16 && r->quant == TS_QUANT_INT8_QK)
        return FAIL("%s: rule %d: 'precision' \"bf16\" needs paro's 'quant' \"none\" (with INT8 Q·Kᵀ the scores "
                    "are INT8 and P·V fp32: bf16 operands would only add rounding)", label, ri);
    return TS_OK;
}

static void rule_free(rule *r) {
    free(r->layers), free(r->steps), free(r->heads), free(r->calibration);
    ts_paro_free(r->paro);
}

static ts_status parse_rule(const cJSON *j, rule *r, const char *label, int ri, const char *base, ts_err *err) {
    rule_defaults(r);
    if (!cJSON_IsObject(j)) return FAIL("%s: rule %d is not an object", label, ri);
    static const char *const fields[] = {"layers", "steps", "timesteps", "heads", "attention", "method", "params",
                                         "comment", NULL};
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        int ok = 0;
        for (int i = 0; fields[i]; i++) ok |= strcmp(it->string, fields[i]) == 0;
        if (!ok) return FAIL("%s: rule %d: unknown field '%s'", label, ri, it->string);
        if (given_before(j, it)) return FAIL("%s: rule %d: '%s' is given twice", label, ri, it->string);
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "method");
    if (!cJSON_IsString(m)) return FAIL("%s: rule %d: 'method' is missing (dense, gna, clear, draft, sla, paro)", label, ri);
    int found = -1;
    for (int i = 0; i < M_COUNT; i++)
        if (!strcmp(m->valuestring, method_names[i])) found = i;
    if (found < 0)
        return FAIL("%s: rule %d: unknown method '%s' (dense, gna, clear, draft, sla, paro)", label, ri, m->valuestring);
    r->m = (method)found;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "attention");
    if (a) {
        if (!cJSON_IsString(a) || (strcmp(a->valuestring, "self") && strcmp(a->valuestring, "cross")))
            return FAIL("%s: rule %d: 'attention' must be \"self\" or \"cross\"", label, ri);
        r->cross = !strcmp(a->valuestring, "cross");
    }
    if (r->cross && r->m != M_DENSE)
        return FAIL("%s: rule %d: method %s needs self-attention (its mask lives on the video grid)", label, ri,
                    method_names[r->m]);
    const cJSON *x;
    if ((x = cJSON_GetObjectItemCaseSensitive(j, "layers"))) TS_TRY(parse_ranges(x, &r->layers, &r->n_layers, label, ri, "layers", err));
    if ((x = cJSON_GetObjectItemCaseSensitive(j, "heads"))) TS_TRY(parse_ranges(x, &r->heads, &r->n_heads, label, ri, "heads", err));
    if ((x = cJSON_GetObjectItemCaseSensitive(j, "steps"))) {
        const cJSON *fr = cJSON_GetObjectItemCaseSensitive(x, "fraction");
        if (cJSON_IsObject(x)) {
            if (!fr || cJSON_GetArraySize(x) != 1) return FAIL("%s: rule %d: 'steps' as an object takes only \"fraction\"", label, ri);
            TS_TRY(parse_pair(fr, &r->frac_lo, &r->frac_hi, 0, 1, label, ri, "steps.fraction", err));
            r->has_frac = 1;
        } else {
            TS_TRY(parse_ranges(x, &r->steps, &r->n_steps, label, ri, "steps", err));
        }
    }
    if ((x = cJSON_GetObjectItemCaseSensitive(j, "timesteps"))) {
        const cJSON *above = cJSON_GetObjectItemCaseSensitive(x, "above");
        if (cJSON_IsObject(x)) {
            if (!cJSON_IsNumber(above) || cJSON_GetArraySize(x) != 1 || above->valuedouble < 0 || above->valuedouble > 1000)
                return FAIL("%s: rule %d: 'timesteps' as an object is {\"above\": t} with t in [0, 1000]", label, ri);
            r->ts_lo = above->valuedouble, r->ts_hi = 1000, r->ts_lo_open = 1;
        } else {
            TS_TRY(parse_pair(x, &r->ts_lo, &r->ts_hi, 0, 1000, label, ri, "timesteps", err));
        }
        r->has_ts = 1;
    }
    return parse_params(cJSON_GetObjectItemCaseSensitive(j, "params"), r, label, ri, base, err);
}

/* base: the directory file names in the rules are relative to (NULL: the working directory). */
static ts_status parse_in(ts_attn_schedule **out, const char *json, const char *label, const char *base, ts_err *err) {
    *out = NULL;
    cJSON *j = cJSON_Parse(json);
    if (!j) return FAIL("%s: not valid JSON (near byte %ld)", label, (long)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - json : 0));
    ts_status st = TS_OK;
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(j, "rules");
    const cJSON *it;
    if (!cJSON_IsObject(j)) st = FAIL("%s: the schedule must be an object {\"rules\": [...]}", label);
    const cJSON *top = cJSON_IsObject(j) ? j : NULL;
    cJSON_ArrayForEach(it, top) {
        if (st == TS_OK && strcmp(it->string, "rules") && strcmp(it->string, "comment") && strcmp(it->string, "version"))
            st = FAIL("%s: unknown top-level field '%s' (rules, comment, version)", label, it->string);
        else if (st == TS_OK && given_before(top, it)) st = FAIL("%s: '%s' is given twice", label, it->string);
    }
    if (st == TS_OK && !cJSON_IsArray(rules)) st = FAIL("%s: 'rules' must be a list of rules", label);
    ts_attn_schedule *s = st == TS_OK ? calloc(1, sizeof *s) : NULL;
    if (st == TS_OK && !s) st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    if (st == TS_OK) {
        int n = cJSON_GetArraySize(rules);
        s->rules = calloc((size_t)(n ? n : 1), sizeof *s->rules);
        if (!s->rules) st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        for (int i = 0; i < n && st == TS_OK; i++) {
            st = parse_rule(cJSON_GetArrayItem(rules, i), &s->rules[i], label, i + 1, base, err);
            s->n_rules = i + 1; /* so a partly parsed rule is freed */
        }
    }
    cJSON_Delete(j);
    if (st != TS_OK) {
        ts_attn_schedule_free(s);
        return st;
    }
    *out = s;
    return TS_OK;
}

ts_status ts_attn_schedule_load(ts_attn_schedule **out, const char *path, ts_err *err) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return TS_ERR(err, TS_ERR_IO, "cannot open the attention schedule '%s'", path);
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, fp) : 0;
    int more = buf && fgetc(fp) != EOF;
    fclose(fp);
    if (!buf) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    if (more) {
        free(buf);
        return TS_ERR(err, TS_ERR_FORMAT, "%s: larger than 1 MB", path);
    }
    buf[n] = 0;
    char base[4096];
    snprintf(base, sizeof base, "%s", path);
    char *slash = strrchr(base, '/');
    if (slash) *slash = 0;
    ts_status st = parse_in(out, buf, path, slash ? (base[0] ? base : "/") : NULL, err);
    free(buf);
    return st;
}

ts_status ts_attn_schedule_parse(ts_attn_schedule **out, const char *json, const char *label, ts_err *err) {
    return parse_in(out, json, label, NULL, err);
}

void ts_attn_schedule_set_observer(ts_attn_schedule *s, ts_attn_observer fn, void *user) {
    s->observer = fn, s->observer_user = user;
}

/* "gna:window=3x7x7,stride=1,causal=0x0x0" → one rule; numbers joined by 'x' are vectors. */
ts_status ts_attn_schedule_from_spec(ts_attn_schedule **out, const char *spec, ts_err *err) {
    *out = NULL;
    cJSON *root = cJSON_CreateObject(), *rules = cJSON_AddArrayToObject(root, "rules");
    cJSON *r = cJSON_CreateObject(), *params = cJSON_CreateObject();
    cJSON_AddItemToArray(rules, r);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", spec);
    char *colon = strchr(buf, ':');
    if (colon) *colon = 0;
    cJSON_AddStringToObject(r, "method", buf);
    ts_status st = TS_OK;
    char *save_kv = NULL;
    for (char *kv = colon ? strtok_r(colon + 1, ",", &save_kv) : NULL; kv && st == TS_OK;
         kv = strtok_r(NULL, ",", &save_kv)) {
        char *eq = strchr(kv, '=');
        if (!eq || eq == kv || !eq[1]) {
            st = TS_ERR(err, TS_ERR_INVALID_ARG, "--attn %s: '%s' is not key=value", spec, kv);
            break;
        }
        *eq = 0;
        const char *val = eq + 1;
        if (!strcmp(kv, "calibration") || !strcmp(kv, "quant") || !strcmp(kv, "variant") ||
            !strcmp(kv, "precision")) { /* string values */
            cJSON_AddStringToObject(params, kv, val);
            continue;
        }
        if (!strcmp(val, "true") || !strcmp(val, "false")) {
            cJSON_AddBoolToObject(params, kv, !strcmp(val, "true"));
            continue;
        }
        double v[3];
        int nv = 0, bad = 0;
        char part[64], *save = NULL;
        snprintf(part, sizeof part, "%s", val);
        for (char *t = strtok_r(part, "x", &save); t && !bad; t = strtok_r(NULL, "x", &save)) {
            char *end;
            if (nv == 3) bad = 1;
            else v[nv++] = strtod(t, &end), bad |= *end != 0 || end == t;
        }
        if (bad || nv < 1 || strstr(val, "xx") || val[0] == 'x' || val[strlen(val) - 1] == 'x') {
            st = TS_ERR(err, TS_ERR_INVALID_ARG, "--attn %s: '%s=%s' is not a number or AxB[xC]", spec, kv, val);
            break;
        }
        if (!strcmp(kv, "causal") && nv == 2) {
            st = TS_ERR(err, TS_ERR_INVALID_ARG, "--attn %s: 'causal' takes one or three 0/1 values", spec);
            break;
        }
        if (!strcmp(kv, "causal")) { /* 0/1 for booleans */
            cJSON *a = cJSON_CreateArray();
            for (int i = 0; i < 3; i++) cJSON_AddItemToArray(a, cJSON_CreateBool(v[nv == 3 ? i : 0] != 0));
            cJSON_AddItemToObject(params, kv, a);
        } else if (nv > 1) {
            cJSON_AddItemToObject(params, kv, cJSON_CreateDoubleArray(v, nv));
        } else {
            cJSON_AddNumberToObject(params, kv, v[0]);
        }
    }
    if (cJSON_GetArraySize(params)) cJSON_AddItemToObject(r, "params", params);
    else cJSON_Delete(params);
    char *text = st == TS_OK ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (st == TS_OK) {
        char label[1100];
        snprintf(label, sizeof label, "--attn %s", spec);
        st = text ? ts_attn_schedule_parse(out, text, label, err) : TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    free(text);
    return st;
}

ts_status ts_attn_schedule_open(ts_attn_schedule **out, const char *s, ts_err *err) {
    const size_t l = strlen(s);
    return l > 5 && !strcmp(s + l - 5, ".json") ? ts_attn_schedule_load(out, s, err)
                                                : ts_attn_schedule_from_spec(out, s, err);
}

void ts_attn_schedule_free(ts_attn_schedule *s) {
    if (!s) return;
    for (int i = 0; i < s->n_rules; i++) rule_free(&s->rules[i]);
    for (int i = 0; i < s->n_cache; i++) ts_plan_store_free(&s->cache[i].store);
    free(s->rules), free(s->cache), free(s->rec);
    free(s);
}

int ts_attn_schedule_rules(const ts_attn_schedule *s) { return s->n_rules; }
int ts_attn_schedule_n_records(const ts_attn_schedule *s) { return s->n_rec; }
const ts_attn_record *ts_attn_schedule_record(const ts_attn_schedule *s, int i) {
    return i >= 0 && i < s->n_rec ? &s->rec[i] : NULL;
}
/* The mean over the records of the double at byte offset off of a record (1 without any). */
static double mean_record(const ts_attn_schedule *s, size_t off) {
    if (!s || !s->n_rec) return 1.0;
    double sum = 0;
    for (int i = 0; i < s->n_rec; i++) sum += *(const double *)((const char *)&s->rec[i] + off);
    return sum / s->n_rec;
}
double ts_attn_schedule_mean_density(const ts_attn_schedule *s) {
    return mean_record(s, offsetof(ts_attn_record, density));
}
double ts_attn_schedule_mean_block_density(const ts_attn_schedule *s) {
    return mean_record(s, offsetof(ts_attn_record, block_density));
}
double ts_attn_schedule_mean_tile_density(const ts_attn_schedule *s) {
    return mean_record(s, offsetof(ts_attn_record, tile_density));
}
void ts_attn_schedule_clear_records(ts_attn_schedule *s) { s->n_rec = 0; }
void ts_attn_schedule_set_error(ts_attn_schedule *s, int on) { s->measure_error = on != 0; }
double ts_attn_schedule_mean_error(const ts_attn_schedule *s) {
    double sum = 0;
    int n = 0;
    for (int i = 0; s && i < s->n_rec; i++)
        if (s->rec[i].error >= 0) sum += s->rec[i].error, n++;
    return n ? sum / n : -1.0;
}
const char *ts_attn_schedule_notes(const ts_attn_schedule *s) { return s && s->notes[0] ? s->notes : NULL; }

/* A note for ts_attn_schedule_notes (dropped when there is no room left) and the logger. */
static void note(ts_ctx *c, ts_attn_schedule *s, const char *msg) {
    ts_log(c, TS_LOG_WARN, "%s", msg);
    const size_t used = strlen(s->notes), len = strlen(msg);
    if (used + len + 2 <= sizeof s->notes) memcpy(s->notes + used, msg, len), memcpy(s->notes + used + len, "\n", 2);
}

/* ------------------------------------------------------------------ matching and running */

static int in_ranges(const range *r, int n, int64_t v) {
    if (!n) return 1;
    for (int i = 0; i < n; i++)
        if (v >= r[i].lo && v <= r[i].hi) return 1;
    return 0;
}

ts_status ts_attn_schedule_check(const ts_attn_schedule *s, int layers, int64_t heads, const int64_t grid[3],
                                 ts_err *err) {
    for (int i = 0; s && i < s->n_rules; i++) {
        const rule *r = &s->rules[i];
        if (r->m == M_DRAFT && ts_draft_regions(grid, r->pool) > TS_DRAFT_MAX_REGIONS)
            return TS_ERR(err, TS_ERR_INVALID_ARG, "attention schedule: rule %d: 'pool' %dx%d makes %lld regions on "
                          "this video's %lldx%lldx%lld token grid (at most %d): use a larger pool", i + 1, r->pool[0],
                          r->pool[1], (long long)ts_draft_regions(grid, r->pool), (long long)grid[0],
                          (long long)grid[1], (long long)grid[2], TS_DRAFT_MAX_REGIONS);
        if (r->m != M_PARO) continue;
        const ts_paro_desc *d = ts_paro_info(r->paro);
        if (d->grid[0] != grid[0] || d->grid[1] != grid[1] || d->grid[2] != grid[2])
            return TS_ERR(err, TS_ERR_SHAPE, "attention schedule: rule %d: %s was calibrated for a %lldx%lldx%lld token "
                          "grid; this video's is %lldx%lldx%lld: calibrate for this size (tessera-calibrate)", i + 1,
                          r->calibration, (long long)d->grid[0], (long long)d->grid[1], (long long)d->grid[2],
                          (long long)grid[0], (long long)grid[1], (long long)grid[2]);
        if (d->heads != heads)
            return TS_ERR(err, TS_ERR_SHAPE, "attention schedule: rule %d: %s covers %d heads; this model has %lld", i + 1,
                          r->calibration, d->heads, (long long)heads);
        for (int l = d->layers; l < layers; l++)
            if (in_ranges(r->layers, r->n_layers, l))
                return TS_ERR(err, TS_ERR_SHAPE, "attention schedule: rule %d: %s covers %d layers; the rule reaches "
                              "layer %d of this model's %d", i + 1, r->calibration, d->layers, l, layers);
    }
    return TS_OK;
}

/* The rule index for head h at this site, or -1 (dense). */
static int match(const ts_attn_schedule *s, const ts_attn_site *site, int64_t h) {
    int best = -1;
    for (int i = 0; i < s->n_rules; i++) {
        const rule *r = &s->rules[i];
        if (r->cross != (site->kind == TS_ATTN_CROSS)) continue;
        if (!in_ranges(r->layers, r->n_layers, site->layer)) continue;
        if (!in_ranges(r->heads, r->n_heads, h)) continue;
        if ((r->n_steps || r->has_frac) && site->step < 0) continue;
        if (!in_ranges(r->steps, r->n_steps, site->step)) continue;
        if (r->has_frac) {
            if (site->n_steps <= 0) continue;
            double f = (double)site->step / (double)site->n_steps;
            if (!(f >= r->frac_lo && f < r->frac_hi)) continue;
        }
        if (r->has_ts && !((r->ts_lo_open ? site->timestep > r->ts_lo : site->timestep >= r->ts_lo) &&
                           site->timestep <= r->ts_hi))
            continue;
        best = i;
    }
    return best;
}

/* The static plan of rule ri for an n-token grid (with its tile density), built once and cached. */
static ts_status plan_for(ts_attn_schedule *s, int ri, const ts_attn_site *site, int64_t n, const cached **out,
                          ts_err *err) {
    for (int i = 0; i < s->n_cache; i++) {
        const cached *c = &s->cache[i];
        if (c->rule == ri && c->n == n && c->img0 == site->img0 && !memcmp(c->grid, site->grid, sizeof c->grid)) {
            *out = c;
            return TS_OK;
        }
    }
    const rule *r = &s->rules[ri];
    const int64_t *g = site->grid;
    if (g[0] <= 0 || g[1] <= 0 || g[2] <= 0 || site->img0 < 0 || site->img0 + g[0] * g[1] * g[2] > n)
        return TS_ERR(err, TS_ERR_SHAPE, "method %s needs the token grid (got %lldx%lldx%lld from token %lld "
                      "for %lld tokens)", method_names[r->m], (long long)g[0], (long long)g[1], (long long)g[2],
                      (long long)site->img0, (long long)n);
    if (s->n_cache == s->cap_cache) {
        int cap = s->cap_cache ? 2 * s->cap_cache : 8;
        cached *nc = realloc(s->cache, (size_t)cap * sizeof *nc);
        if (!nc) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        s->cache = nc, s->cap_cache = cap;
    }
    cached *c = &s->cache[s->n_cache];
    memset(c, 0, sizeof *c);
    c->rule = ri, c->n = n, c->img0 = site->img0;
    memcpy(c->grid, g, sizeof c->grid);
    ts_attn_plan p = ts_attn_plan_dense(n, n, 1, 1, r->block, r->block);
    p.mask.kind = r->m == M_GNA ? TS_MASK_NA : TS_MASK_CLEAR;
    memcpy(p.mask.grid, g, sizeof p.mask.grid);
    p.mask.img0 = site->img0;
    p.mask.radius = r->radius;
    for (int i = 0; i < 3; i++) { /* clamp the window geometry to the grid */
        int64_t L = g[i];
        int d = r->dilation[i] < L ? r->dilation[i] : (int)L;
        int w = r->window[i] < L / d ? r->window[i] : (int)(L / d);
        p.mask.dilation[i] = d, p.mask.window[i] = w;
        p.mask.stride[i] = r->stride[i] < w ? r->stride[i] : w;
        p.mask.causal[i] = r->causal[i];
    }
    /* tiles start blocks (edge tiles padded) where the tile is a multiple of the block: on a
     * grid the tiles do not divide (Wan's 30 x 52 latent frames with 8 x 8 tiles), blocks then
     * still hold one tile each and stay full wherever the window covers their tile */
    const int64_t len = ts_plan_tile_len(&p.mask, n, r->tile, r->block);
    if (len < n) return TS_ERR(err, TS_ERR_INVALID_ARG, "method %s: bad tile", method_names[r->m]);
    c->store.perm = malloc((size_t)len * sizeof *c->store.perm);
    if (!c->store.perm) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    /* GNA and CLEAR lay each tile out in 4 x 4 sub-tiles (ts_plan_tile_perm_sub). Counted in
     * the kernels' units (query tiles of 8 rows, run as two halves of 4 where their panels
     * differ, x 16 keys), a plan then costs, per allowed score (a model of the plans):
     * - CLEAR r 12 on the Wan grid 1.40x instead of 1.47x, r 11.42 on 32 x 32 frames 1.41x
     *   instead of 1.46x in row-major order;
     * - stride-1 GNA on 32 x 32 frames, windows 15 / 19 / 25: 1.36x / 1.32x / 1.25x instead of
     *   1.42x / 1.44x / 1.33x; on the Wan grid about the same (10x14x24: 1.25x, 1.26x).
     * Blocks that are whole tiles (GNA with stride = tile) do not change. */
    static const int sub44[3] = {1, 4, 4};
    /* The tiles nested so that the axis along which a window spans the most tiles is the
     * innermost (ts_plan_tile_nest): a thread's consecutive query blocks then share the most
     * key blocks, which its L2 still holds. On the Wan grid (21 x 30 x 52, 2 heads) GNA
     * 17x8x24 at stride 1x8x8 ran 11 % faster with the frames innermost, stride-1 GNA 10x14x24
     * 3-8 %; at 4,096 and 16,384 tokens no change beyond the noise. */
    int nest[3];
    ts_plan_tile_nest(&p.mask, r->tile, nest);
    ts_status st = ts_plan_tile_perm_nest(&p.mask, n, r->tile, sub44, nest, r->block, c->store.perm, err);
    p.perm = c->store.perm;
    if (len > n) {
        p.n_kern = len;
        p.n_qblk = p.n_kblk = (int32_t)((len + r->block - 1) / r->block);
    }
    if (st == TS_OK) st = ts_plan_build_masked(&p, &c->store, err);
    if (st != TS_OK) {
        ts_plan_store_free(&c->store);
        return st;
    }
    c->plan = p;
    c->tile_density = ts_attn_plan_tile_density(&p);
    s->n_cache++;
    *out = c;
    return TS_OK;
}

static ts_status record(ts_attn_schedule *s, const ts_attn_site *site, double density, double block_density,
                        double tile_density, double error, ts_err *err) {
    if (s->n_rec == s->cap_rec) {
        int cap = s->cap_rec ? 2 * s->cap_rec : 64;
        ts_attn_record *nr = realloc(s->rec, (size_t)cap * sizeof *nr);
        if (!nr) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        s->rec = nr, s->cap_rec = cap;
    }
    s->rec[s->n_rec++] = (ts_attn_record){site->layer, site->step, density, block_density, tile_density, error};
    return TS_OK;
}

/* *error = ||out - dense|| / ||dense||, dense attention (ts_attention without a schedule) on the same
 * q, k, v run into the context's workspace (or a buffer of its own without one). */
static ts_status dense_error(ts_ctx *c, const ts_attn_site *site, int64_t nq, int64_t nk, int64_t heads,
                             int64_t head_dim, const float *q, const float *k, const float *v, const float *out,
                             double *error, ts_err *err) {
    const int64_t n = nq * heads * head_dim;
    float *own = NULL;
    float *ref = c->ws ? ts_workspace_get(c->ws, TS_WS_ATTN_DENSE, (size_t)n * sizeof *ref)
                       : (own = malloc((size_t)n * sizeof *ref));
    if (!ref) return TS_ERR(err, TS_ERR_NOMEM, "attention: out of memory for the dense output to measure the error");
    ts_status st = ts_attention(c, NULL, site, nq, nk, heads, head_dim, q, k, v, ref, err);
    if (st != TS_OK) {
        free(own);
        return st;
    }
    double d2 = 0, r2 = 0;
    const int nt = c->n_threads > 0 ? c->n_threads : 1;
    (void)nt;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(+ : d2, r2)
    for (int64_t i = 0; i < n; i++) {
        const double r = ref[i], d = (double)out[i] - r;
        d2 += d * d, r2 += r * r;
    }
    free(own);
    *error = r2 > 0 ? sqrt(d2 / r2) : d2 > 0 ? INFINITY : 0;
    return TS_OK;
}

/* bf16 copies of q [nq, HD] and k, v [nk, HD] for the rules whose precision is bf16: in the
 * context's workspace, or in *own (the caller frees it) when it has none. */
static ts_status bf16_operands(ts_ctx *c, int64_t nq, int64_t nk, int64_t HD, const float *q, const float *k,
                               const float *v, ts_attn_operands *ops, void **own, ts_err *err) {
    const int64_t nqe = nq * HD, nke = nk * HD, ne = nqe + 2 * nke;
    uint16_t *b = c->ws ? ts_workspace_get(c->ws, TS_WS_ATTN_BF16, (size_t)ne * sizeof *b)
                        : (*own = malloc((size_t)ne * sizeof *b));
    if (!b) return TS_ERR(err, TS_ERR_NOMEM, "attention: out of memory for the bf16 copies of q, k, v");
    *ops = (ts_attn_operands){b, b + nqe, b + nqe + nke, 1};
    const float *const src[3] = {q, k, v};
    uint16_t *const dst[3] = {b, b + nqe, b + nqe + nke};
    const int64_t len[3] = {nqe, nke, nke};
    enum { CH = 1 << 16 };
    const int nt = c->n_threads > 0 ? c->n_threads : 1;
    (void)nt;
    for (int a = 0; a < 3; a++) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < (len[a] + CH - 1) / CH; i++)
            ts_f32_to_bf16_n(src[a] + i * CH, dst[a] + i * CH, len[a] - i * CH < CH ? len[a] - i * CH : CH);
    }
    return TS_OK;
}

/* Heads [h0, h1) by rule r (NULL: dense); *d, *bd, *td: their density, block density and tile
 * density (-1: *d). */
static ts_status run_heads(ts_ctx *c, ts_attn_schedule *s, int ri, const ts_attn_site *site, int64_t nq, int64_t nk,
                           int64_t heads, int64_t head_dim, int64_t h0, int64_t h1, const float *q, const float *k,
                           const float *v, const ts_attn_operands *kop, float *out, double *d, double *bd,
                           double *td, ts_err *err) {
    const rule *r = ri >= 0 ? &s->rules[ri] : NULL;
    const method m = r ? r->m : M_DENSE;
    if (m != M_DENSE && nq != nk)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "method %s is for self-attention", method_names[m]);
    *d = 1, *bd = -1, *td = -1;
    if (m == M_SLA) {
        ts_sla_params sp = {r->topk, r->block_q, r->block_k, r->complement >= 0 ? r->complement : site->lin_complement};
        if (!site->lin_w && !s->warned_no_proj) {
            note(c, s, "sla: this model has no proj_l weights (an SLA fine-tuned checkpoint has them): running plain "
                       "top-k block-sparse attention, no linear branch");
            s->warned_no_proj = 1;
        }
        if (site->lin_w && r->complement < 0 && site->lin_complement && !s->said_complement) {
            /* the rule left the variant to the checkpoint: the schedule's text alone does not say which ran */
            note(c, s, "sla: the checkpoint's proj_l was trained with the paper's linear branch (its metadata "
                       "sla_variant \"complement\"): running that variant");
            s->said_complement = 1;
        }
        return ts_sla_attention(c, nq, heads, head_dim, h0, h1, &sp, q, k, v, kop, site->lin_w, site->lin_b, out, d,
                                err);
    }
    if (m == M_PARO)
        return ts_paro_attention(c, r->paro, site, nq, heads, head_dim, h0, h1, r->quant, q, k, v, kop, out, d, err);
    if (m == M_DRAFT) {
        ts_draft_params dp = {{r->pool[0], r->pool[1]}, r->sparsity};
        return ts_draft_attention(c, site->grid, nq, site->img0, heads, head_dim, h0, h1, &dp, q, k, v, kop, out, d,
                                  err);
    }
    ts_attn_plan p;
    double tile = 1;
    if (m == M_DENSE) {
        p = ts_attn_plan_dense(nq, nk, heads, head_dim, TS_ATTN_BLK_Q, TS_ATTN_BLK_K);
    } else { /* a static plan, built once per shape */
        const cached *cp = NULL;
        TS_TRY(plan_for(s, ri, site, nq, &cp, err));
        p = cp->plan;
        tile = cp->tile_density;
        p.heads = heads, p.head_dim = head_dim;
        p.scale = (float)(1.0 / sqrt((double)head_dim));
    }
    p.h0 = h0, p.h1 = h1;
    const ts_attn_operands ops = kop ? *kop : (ts_attn_operands){q, k, v, 0};
    p.in_bf16 = ops.bf16;
    ts_status st = c->backend->attn(c, &p, ops.q, ops.k, ops.v, out);
    if (st != TS_OK) return TS_ERR(err, st, "attention kernel failed (%s)", ts_status_str(st));
    *d = p.density;
    *bd = ts_attn_plan_block_density(&p);
    *td = tile;
    return TS_OK;
}

ts_status ts_attn_schedule_run(ts_ctx *c, ts_attn_schedule *s, const ts_attn_site *site, int64_t nq, int64_t nk,
                               int64_t heads, int64_t head_dim, const float *q, const float *k, const float *v,
                               float *out, ts_err *err) {
    double density = 0, bdensity = 0, tdensity = 0;
    if (s->observer && site->kind == TS_ATTN_SELF) s->observer(s->observer_user, site, nq, heads, head_dim, q, k);
    ts_attn_operands bf = {0}; /* made by the first head range that runs in bf16 */
    void *own = NULL;
    ts_status st = TS_OK;
    int dense = 1; /* every head ran dense in fp32: the output is dense attention's, bit for bit */
    for (int64_t h0 = 0; h0 < heads && st == TS_OK;) {
        int ri = match(s, site, h0);
        int64_t h1 = h0 + 1;
        while (h1 < heads && match(s, site, h1) == ri) h1++;
        const int bf16 = ri >= 0 && s->rules[ri].bf16;
        dense &= ri < 0 || (s->rules[ri].m == M_DENSE && !bf16);
        if (bf16 && !bf.q) st = bf16_operands(c, nq, nk, heads * head_dim, q, k, v, &bf, &own, err);
        double d = 1, bd = -1, td = -1;
        if (st == TS_OK) {
            st = run_heads(c, s, ri, site, nq, nk, heads, head_dim, h0, h1, q, k, v, bf16 ? &bf : NULL, out, &d, &bd,
                           &td, err);
            if (st != TS_OK && ri >= 0 && err) { /* name the rule that failed, and where */
                char m[sizeof err->msg]; /* cut short where it must be */
                if (snprintf(m, sizeof m, "attention schedule: rule %d at layer %d, step %d: %s", ri + 1, site->layer,
                             site->step, err->msg) > 0)
                    memcpy(err->msg, m, sizeof m);
            }
        }
        density += d * (double)(h1 - h0) / (double)heads;
        bdensity += (bd >= 0 ? bd : d) * (double)(h1 - h0) / (double)heads;
        tdensity += (td >= 0 ? td : bd >= 0 ? bd : d) * (double)(h1 - h0) / (double)heads;
        h0 = h1;
    }
    free(own);
    double error = -1;
    if (st == TS_OK && s->measure_error && site->kind == TS_ATTN_SELF) {
        if (dense) error = 0;
        else st = dense_error(c, site, nq, nk, heads, head_dim, q, k, v, out, &error, err);
    }
    if (st == TS_OK && site->kind == TS_ATTN_SELF) st = record(s, site, density, bdensity, tdensity, error, err);
    return st;
}
