/*
 * tokenizer.c — T5/UMT5 SentencePiece tokenizer: special-token matching, </s>, truncation,
 * tokenizer.json → SentencePiece model, and the references' prompt cleaning.
 *
 * Reference behaviour: transformers' T5Tokenizer (tokenizers backend) as WanPipeline calls
 * it, tokenizer(text, truncation=True, max_length=L, add_special_tokens=True), and
 * diffusers' prompt_clean / Wan's HuggingfaceTokenizer(clean='whitespace').
 */
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spm_shim.h"

typedef struct special {
    char *text;
    size_t len;
    int id;
} special;

/* The segmenter's vocabulary: every piece the lattice may use, in an open-addressing
 * hash table of ids (-1 = empty). */
typedef struct lexicon {
    int32_t *slot;
    size_t mask;
    int max_len;   /* longest piece in bytes */
    double unk_score;
} lexicon;

struct ts_tokenizer {
    ts_spm *spm;
    special *sp;
    int n_sp;
    int vocab; /* spm pieces + sentinels added beside them */
    int eos, pad, unk;
    int64_t max_length; /* tokenizer_config.json's model_max_length, 0: none */
    lexicon lex;
    char **piece; /* [n pieces] piece strings */
    float *score; /* [n pieces] */
    int n_pieces;
};

/* ------------------------------------------------------------------ UTF-8 */

/* Decodes one code point; returns its byte length, or -1 for invalid UTF-8. */
static int utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    if (n == 0) return -1;
    unsigned c = s[0];
    int len;
    uint32_t v, min;
    if (c < 0x80) return *cp = c, 1;
    if ((c & 0xE0) == 0xC0) len = 2, v = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, v = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, v = c & 0x07, min = 0x10000;
    else return -1;
    if ((size_t)len > n) return -1;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return -1;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return -1;
    *cp = v;
    return len;
}

static int utf8_put(char *o, uint32_t cp) {
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)), o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)), o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int utf8_valid(const char *s, size_t n) {
    uint32_t cp;
    for (size_t i = 0; i < n;) {
        int l = utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (l < 0) return 0;
        i += (size_t)l;
    }
    return 1;
}

/* ------------------------------------------------------------------ cleaning */

/* Python's str.isspace (what re's \s and str.strip use for str). */
static int py_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Named entities: the common ones of the HTML5 table; legacy = also valid without ';'. */
static const struct { const char *name; uint32_t cp; int legacy; } entities[] = {
    {"amp", '&', 1}, {"lt", '<', 1}, {"gt", '>', 1}, {"quot", '"', 1}, {"apos", '\'', 0},
    {"nbsp", 0xA0, 1}, {"copy", 0xA9, 1}, {"reg", 0xAE, 1}, {"deg", 0xB0, 1},
    {"plusmn", 0xB1, 1}, {"times", 0xD7, 1}, {"divide", 0xF7, 1}, {"middot", 0xB7, 1},
    {"laquo", 0xAB, 1}, {"raquo", 0xBB, 1}, {"sect", 0xA7, 1}, {"para", 0xB6, 1},
    {"cent", 0xA2, 1}, {"pound", 0xA3, 1}, {"yen", 0xA5, 1}, {"iexcl", 0xA1, 1},
    {"iquest", 0xBF, 1}, {"micro", 0xB5, 1}, {"frac12", 0xBD, 1}, {"frac14", 0xBC, 1},
    {"frac34", 0xBE, 1}, {"sup2", 0xB2, 1}, {"sup3", 0xB3, 1}, {"eacute", 0xE9, 1},
    {"egrave", 0xE8, 1}, {"agrave", 0xE0, 1}, {"aacute", 0xE1, 1}, {"ouml", 0xF6, 1},
    {"uuml", 0xFC, 1}, {"auml", 0xE4, 1}, {"szlig", 0xDF, 1}, {"ccedil", 0xE7, 1},
    {"ntilde", 0xF1, 1}, {"euro", 0x20AC, 0}, {"trade", 0x2122, 0}, {"hellip", 0x2026, 0},
    {"mdash", 0x2014, 0}, {"ndash", 0x2013, 0}, {"lsquo", 0x2018, 0}, {"rsquo", 0x2019, 0},
    {"ldquo", 0x201C, 0}, {"rdquo", 0x201D, 0}, {"bull", 0x2022, 0}, {"rarr", 0x2192, 0},
    {"larr", 0x2190, 0}, {"hearts", 0x2665, 0}, {"star", 0x2606, 0},
};

/* Python's html._invalid_charrefs: what a numeric reference to these code points gives. */
static uint32_t charref_fixup(uint32_t n, int *empty) {
    static const uint32_t cp1252[32] = {
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
        0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178};
    *empty = 0;
    if (n == 0) return 0xFFFD;
    if (n == 0x0D) return 0x0D;
    if (n >= 0x80 && n <= 0x9F) return cp1252[n - 0x80];
    if ((n >= 0xD800 && n <= 0xDFFF) || n > 0x10FFFF) return 0xFFFD;
    /* html._invalid_codepoints: dropped */
    if ((n >= 0x1 && n <= 0x8) || (n >= 0xE && n <= 0x1F) || (n >= 0x7F && n <= 0x9F) ||
        (n >= 0xFDD0 && n <= 0xFDEF) || n == 0xB || (n & 0xFFFE) == 0xFFFE)
        *empty = 1;
    return n;
}

/* One pass of Python's html.unescape over s (n bytes) into o (at least n + 1 bytes: no
 * replacement is longer than its reference). Returns the output length. */
static size_t html_unescape(const char *s, size_t n, char *o) {
    size_t i = 0, k = 0;
    while (i < n) {
        if (s[i] != '&') {
            o[k++] = s[i++];
            continue;
        }
        size_t j = i + 1;
        if (j < n && s[j] == '#') { /* &#123; &#x1F; (the ';' is optional) */
            int hex = j + 1 < n && (s[j + 1] == 'x' || s[j + 1] == 'X');
            size_t d = j + 1 + (size_t)hex, e = d;
            uint64_t v = 0;
            while (e < n && (hex ? strchr("0123456789abcdefABCDEF", s[e]) != NULL && s[e]
                                 : (s[e] >= '0' && s[e] <= '9'))) {
                int dig = s[e] <= '9' ? s[e] - '0' : (s[e] | 0x20) - 'a' + 10;
                if (v <= 0x7FFFFFFF) v = v * (hex ? 16 : 10) + (uint64_t)dig;
                e++;
            }
            if (e == d) { /* no digits: not a reference */
                o[k++] = s[i++];
                continue;
            }
            if (e < n && s[e] == ';') e++;
            int empty;
            uint32_t cp = charref_fixup(v > 0x10FFFF ? 0x110000 : (uint32_t)v, &empty);
            if (!empty) k += (size_t)utf8_put(o + k, cp);
            i = e;
            continue;
        }
        /* named: the longest known name, with ';' or (legacy names) without */
        size_t e = j;
        while (e < n && e - j < 32 && !strchr("\t\n\f <&#;", s[e])) e++;
        int done = 0;
        for (size_t len = e - j; len >= 2 && !done; len--) {
            for (size_t t = 0; t < sizeof entities / sizeof entities[0]; t++) {
                if (strlen(entities[t].name) != len || memcmp(entities[t].name, s + j, len)) continue;
                int semi = j + len < n && s[j + len] == ';';
                if (!semi && !entities[t].legacy) continue;
                k += (size_t)utf8_put(o + k, entities[t].cp);
                i = j + len + (size_t)semi;
                done = 1;
                break;
            }
        }
        if (!done) o[k++] = s[i++];
    }
    o[k] = 0;
    return k;
}

ts_status ts_text_clean(const char *text, char **out, ts_err *err) {
    *out = NULL;
    size_t n = strlen(text);
    if (!utf8_valid(text, n)) return TS_ERR(err, TS_ERR_INVALID_ARG, "prompt is not valid UTF-8");
    char *a = malloc(n + 1), *b = malloc(n + 1);
    if (!a || !b) {
        free(a), free(b);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    size_t na = html_unescape(text, n, a);
    size_t nb = html_unescape(a, na, b);
    /* collapse whitespace runs to one space, drop leading and trailing whitespace */
    size_t k = 0;
    int pending = 0;
    for (size_t i = 0; i < nb;) {
        uint32_t cp;
        int l = utf8_next((const unsigned char *)b + i, nb - i, &cp);
        if (l < 0) { /* cannot happen: unescaping writes valid UTF-8 */
            free(a), free(b);
            return TS_ERR(err, TS_ERR_INTERNAL, "text cleaning produced invalid UTF-8");
        }
        if (py_space(cp)) {
            pending = k > 0;
        } else {
            if (pending) a[k++] = ' ';
            pending = 0;
            memcpy(a + k, b + i, (size_t)l);
            k += (size_t)l;
        }
        i += (size_t)l;
    }
    a[k] = 0;
    free(b);
    *out = a;
    return TS_OK;
}

/* ------------------------------------------------------------------ protobuf writer */

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
    int oom;
} buf;

static void put(buf *b, const void *d, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q, b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_varint(buf *b, uint64_t v) {
    unsigned char t[10];
    int k = 0;
    do {
        t[k] = (unsigned char)(v & 0x7F);
        v >>= 7;
        if (v) t[k] |= 0x80;
        k++;
    } while (v);
    put(b, t, (size_t)k);
}

static void put_field_varint(buf *b, int field, int64_t v) {
    put_varint(b, (uint64_t)field << 3);
    put_varint(b, (uint64_t)v); /* negative int32 → 10-byte two's complement, as protobuf */
}

static void put_field_bytes(buf *b, int field, const void *d, size_t n) {
    put_varint(b, ((uint64_t)field << 3) | 2);
    put_varint(b, n);
    put(b, d, n);
}

static void put_field_float(buf *b, int field, float f) {
    put_varint(b, ((uint64_t)field << 3) | 5);
    unsigned char t[4];
    memcpy(t, &f, 4); /* little-endian hosts only (x86-64, aarch64) */
    put(b, t, 4);
}

/* ------------------------------------------------------------------ tokenizer.json */

static int b64_val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Decodes base64 text into a malloc'd buffer; -1 on a bad character. */
static int b64_decode(const char *s, unsigned char **out, size_t *n_out) {
    size_t n = strlen(s);
    unsigned char *o = malloc(n / 4 * 3 + 3);
    if (!o) return -1;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=' || s[i] == '\n' || s[i] == '\r') continue;
        int v = b64_val((unsigned char)s[i]);
        if (v < 0) {
            free(o);
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (unsigned char)((acc >> bits) & 0xFF);
        }
    }
    *out = o, *n_out = k;
    return 0;
}

/* The Precompiled normaliser's charsmap, searched through a Sequence; NULL if none. */
static const char *find_charsmap(const cJSON *norm) {
    if (!cJSON_IsObject(norm)) return NULL;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(norm, "type");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "Precompiled") == 0) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(norm, "precompiled_charsmap");
        return cJSON_IsString(m) ? m->valuestring : NULL;
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(norm, "normalizers");
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        const char *m = find_charsmap(it);
        if (m) return m;
    }
    return NULL;
}

static char *read_file(const char *path, size_t *n_out) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *d = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (d && fread(d, 1, (size_t)n, fp) != (size_t)n) {
        free(d);
        d = NULL;
    }
    fclose(fp);
    if (d) d[n] = 0, *n_out = (size_t)n;
    return d;
}

static ts_status add_special(ts_tokenizer *t, const char *text, int id, ts_err *err) {
    if (!text[0]) return TS_OK;
    for (int i = 0; i < t->n_sp; i++)
        if (strcmp(t->sp[i].text, text) == 0) return TS_OK;
    special *q = realloc(t->sp, (size_t)(t->n_sp + 1) * sizeof *q);
    if (!q) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    t->sp = q;
    q[t->n_sp].text = strdup(text);
    if (!q[t->n_sp].text) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    q[t->n_sp].len = strlen(text);
    q[t->n_sp].id = id;
    t->n_sp++;
    return TS_OK;
}

/* Builds the SentencePiece ModelProto for a tokenizer.json Unigram model and loads it. */
static ts_status open_tokenizer_json(ts_tokenizer *t, const char *path, ts_err *err) {
    size_t n = 0;
    char *text = read_file(path, &n);
    if (!text) return TS_ERR(err, TS_ERR_IO, "cannot read tokenizer '%s'", path);
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    if (!j) return TS_ERR(err, TS_ERR_FORMAT, "tokenizer '%s' is not valid JSON", path);
    ts_status st = TS_OK;
    buf pb = {0}, piece = {0}, spec = {0};
    unsigned char *cmap = NULL;
    size_t cmap_n = 0;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_id");
    const cJSON *bytefb = cJSON_GetObjectItemCaseSensitive(model, "byte_fallback");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(j, "added_tokens");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "Unigram") != 0) {
        st = TS_ERR(err, TS_ERR_UNSUPPORTED, "tokenizer '%s': model type %s, only Unigram (T5/UMT5) is supported",
                    path, cJSON_IsString(type) ? type->valuestring : "missing");
        goto done;
    }
    int nv = cJSON_GetArraySize(vocab);
    if (!cJSON_IsArray(vocab) || nv < 1 || !cJSON_IsNumber(unk) || unk->valueint < 0 || unk->valueint >= nv) {
        st = TS_ERR(err, TS_ERR_FORMAT, "tokenizer '%s': Unigram model without a vocabulary or unk_id", path);
        goto done;
    }
    /* which ids are special tokens (never produced by the unigram lattice) */
    char *is_special = calloc((size_t)nv, 1);
    if (!is_special) {
        st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        goto done;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "special");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(content)) continue;
        if (id->valueint >= 0 && id->valueint < nv && cJSON_IsTrue(sp)) is_special[id->valueint] = 1;
        if (st == TS_OK) st = add_special(t, content->valuestring, id->valueint, err);
    }
    int i = 0, byte_fallback = cJSON_IsTrue(bytefb);
    cJSON_ArrayForEach(it, vocab) {
        const cJSON *p = cJSON_GetArrayItem(it, 0), *s = cJSON_GetArrayItem(it, 1);
        if (!cJSON_IsString(p) || !cJSON_IsNumber(s)) {
            st = TS_ERR(err, TS_ERR_FORMAT, "tokenizer '%s': vocabulary entry %d is not [piece, score]", path, i);
            break;
        }
        const char *ps = p->valuestring;
        int ptype = i == unk->valueint ? TS_SPM_UNKNOWN : is_special[i] ? TS_SPM_CONTROL
                  : (byte_fallback && strlen(ps) == 6 && strncmp(ps, "<0x", 3) == 0 && ps[5] == '>') ? TS_SPM_BYTE
                  : TS_SPM_NORMAL;
        piece.n = 0;
        put_field_bytes(&piece, 1, ps, strlen(ps));
        put_field_float(&piece, 2, (float)s->valuedouble);
        if (ptype != TS_SPM_NORMAL) put_field_varint(&piece, 3, ptype);
        put_field_bytes(&pb, 1, piece.p, piece.n);
        i++;
    }
    free(is_special);
    if (st != TS_OK) goto done;
    /* TrainerSpec: model_type UNIGRAM (3), vocab_size (4), byte_fallback (35), unk_id (40),
     * bos_id (41) = -1; the ids of eos/pad are found by piece below */
    put_field_varint(&spec, 3, 1);
    put_field_varint(&spec, 4, nv);
    if (byte_fallback) put_field_varint(&spec, 35, 1);
    put_field_varint(&spec, 40, unk->valueint);
    put_field_varint(&spec, 41, -1);
    put_field_bytes(&pb, 2, spec.p, spec.n);
    /* NormalizerSpec: name (1), precompiled_charsmap (2); add_dummy_prefix,
     * remove_extra_whitespaces and escape_whitespaces keep their default (true): the
     * Metaspace pre-tokenizer's prefix and whitespace split */
    const char *cm64 = find_charsmap(cJSON_GetObjectItemCaseSensitive(j, "normalizer"));
    if (cm64 && b64_decode(cm64, &cmap, &cmap_n) != 0) {
        st = TS_ERR(err, TS_ERR_FORMAT, "tokenizer '%s': precompiled_charsmap is not base64", path);
        goto done;
    }
    spec.n = 0;
    const char *nname = cm64 ? "nmt_nfkc" : "identity";
    put_field_bytes(&spec, 1, nname, strlen(nname));
    if (cmap) put_field_bytes(&spec, 2, cmap, cmap_n);
    put_field_bytes(&pb, 3, spec.p, spec.n);
    if (pb.oom || piece.oom || spec.oom) {
        st = TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        goto done;
    }
    char msg[256];
    if (ts_spm_load_proto(&t->spm, pb.p, pb.n, msg, sizeof msg) != 0)
        st = TS_ERR(err, TS_ERR_FORMAT, "tokenizer '%s': SentencePiece rejected the model: %s", path, msg);
done:
    free(pb.p), free(piece.p), free(spec.p), free(cmap);
    cJSON_Delete(j);
    return st;
}

/* From a tokenizer_config.json in dir: the sentinels <extra_id_N> that transformers adds
 * beside spiece.model ("extra_ids", else 0) and "model_max_length" (0 when absent or not
 * below 2^31: google/umt5-xxl says 10^30, i.e. none). */
static void read_tokenizer_config(const char *dir, int *extra_ids, int64_t *max_length) {
    *extra_ids = 0, *max_length = 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    size_t n;
    char *text = read_file(path, &n);
    if (!text) return;
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "extra_ids");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model_max_length");
    *extra_ids = cJSON_IsNumber(e) && e->valueint > 0 && e->valueint < 100000 ? e->valueint : 0;
    *max_length = cJSON_IsNumber(m) && m->valuedouble >= 1 && m->valuedouble < 2147483648.0 ? (int64_t)m->valuedouble : 0;
    cJSON_Delete(j);
}

static int is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

static int exists(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* ------------------------------------------------------------------ segmentation */

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int lex_find(const ts_tokenizer *t, const char *s, size_t n) {
    for (size_t i = fnv1a(s, n) & t->lex.mask;; i = (i + 1) & t->lex.mask) {
        int32_t id = t->lex.slot[i];
        if (id < 0) return -1;
        if (strlen(t->piece[id]) == n && memcmp(t->piece[id], s, n) == 0) return id;
    }
}

/* Copies pieces and scores out of SentencePiece and indexes the ones the lattice may use
 * (normal and user-defined pieces; not control, unknown, unused or byte pieces). The
 * unknown score is the lowest piece score minus 10, as SentencePiece and tokenizers set it. */
static ts_status build_lexicon(ts_tokenizer *t, ts_err *err) {
    int np = ts_spm_piece_count(t->spm);
    t->n_pieces = np;
    t->piece = calloc((size_t)np, sizeof *t->piece);
    t->score = calloc((size_t)np, sizeof *t->score);
    size_t cap = 16;
    while (cap < (size_t)np * 2) cap *= 2;
    t->lex.slot = malloc(cap * sizeof *t->lex.slot);
    if (!t->piece || !t->score || !t->lex.slot) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    t->lex.mask = cap - 1;
    for (size_t i = 0; i < cap; i++) t->lex.slot[i] = -1;
    double min_score = 0;
    for (int id = 0; id < np; id++) {
        int len = ts_spm_piece(t->spm, id, NULL, 0);
        if (len < 0) return TS_ERR(err, TS_ERR_FORMAT, "tokenizer: piece %d unreadable", id);
        t->piece[id] = malloc((size_t)len + 1);
        if (!t->piece[id]) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
        ts_spm_piece(t->spm, id, t->piece[id], (size_t)len + 1);
        t->score[id] = ts_spm_score(t->spm, id);
        int ty = ts_spm_piece_type(t->spm, id);
        if (ty != TS_SPM_NORMAL || len == 0) continue;
        if (t->score[id] < min_score) min_score = t->score[id];
        if (len > t->lex.max_len) t->lex.max_len = len;
        size_t h = fnv1a(t->piece[id], (size_t)len) & t->lex.mask;
        while (t->lex.slot[h] >= 0) h = (h + 1) & t->lex.mask;
        t->lex.slot[h] = id;
    }
    t->lex.unk_score = min_score - 10.0;
    return TS_OK;
}

/* Best segmentation of the normalised text s[0 .. n) (Viterbi over the piece lattice),
 * appended to ids. Ties go to the path whose last piece starts earliest, as in
 * SentencePiece >= 0.2 and tokenizers (Debian's 0.1.97 breaks them the other way, so the
 * segmentation is done here and only normalisation is left to the library); characters no
 * piece covers are unknown, and runs of unknowns fuse into one <unk>. */
static ts_status segment(const ts_tokenizer *t, const char *s, size_t n, int32_t *ids, int cap,
                         int *k, ts_err *err) {
    double *best = malloc((n + 1) * sizeof *best);
    int64_t *from = malloc((n + 1) * sizeof *from);
    int32_t *via = malloc((n + 1) * sizeof *via);
    if (!best || !from || !via) {
        free(best), free(from), free(via);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i <= n; i++) from[i] = -1;
    from[0] = 0, best[0] = 0;
    for (size_t start = 0; start < n;) {
        uint32_t cp;
        int mb = utf8_next((const unsigned char *)s + start, n - start, &cp);
        if (mb < 0) mb = 1; /* cannot happen: the normaliser writes valid UTF-8 */
        if (from[start] >= 0) {
            int single = 0;
            for (int len = 1; len <= t->lex.max_len && start + (size_t)len <= n; len++) {
                int id = lex_find(t, s + start, (size_t)len);
                if (id < 0) continue;
                size_t end = start + (size_t)len;
                double cand = best[start] + t->score[id];
                if (from[end] < 0 || cand > best[end]) best[end] = cand, from[end] = (int64_t)start, via[end] = id;
                if (len == mb) single = 1;
            }
            if (!single) {
                size_t end = start + (size_t)mb;
                double cand = best[start] + t->lex.unk_score;
                if (from[end] < 0 || cand > best[end]) best[end] = cand, from[end] = (int64_t)start, via[end] = t->unk;
            }
        }
        start += (size_t)mb;
    }
    /* backtrack into via[] order reversed, then emit with unknown runs fused */
    int count = 0;
    for (size_t e = n; e > 0; e = (size_t)from[e]) count++;
    int32_t *path = malloc((size_t)(count ? count : 1) * sizeof *path);
    if (!path) {
        free(best), free(from), free(via);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    int c = count;
    for (size_t e = n; e > 0; e = (size_t)from[e]) path[--c] = via[e];
    for (int i = 0; i < count; i++) {
        if (path[i] == t->unk && i > 0 && path[i - 1] == t->unk) continue;
        if (*k < cap) ids[*k] = path[i];
        (*k)++;
    }
    free(path), free(best), free(from), free(via);
    return TS_OK;
}

ts_status ts_tokenizer_open(ts_tokenizer **out, const char *path, ts_err *err) {
    *out = NULL;
    char file[4200], dir[4096];
    if (is_dir(path)) {
        snprintf(dir, sizeof dir, "%s", path);
        snprintf(file, sizeof file, "%s/spiece.model", path);
        if (!exists(file)) snprintf(file, sizeof file, "%s/tokenizer.json", path);
        if (!exists(file))
            return TS_ERR(err, TS_ERR_MISSING, "tokenizer: '%s' has neither spiece.model nor tokenizer.json", path);
    } else {
        if (!exists(path)) return TS_ERR(err, TS_ERR_IO, "tokenizer: cannot open '%s'", path);
        snprintf(file, sizeof file, "%s", path);
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
    }
    ts_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    ts_status st = TS_OK;
    int json = ends_with(file, ".json");
    if (json) {
        st = open_tokenizer_json(t, file, err);
    } else {
        char msg[256];
        if (ts_spm_load_file(&t->spm, file, msg, sizeof msg) != 0)
            st = TS_ERR(err, TS_ERR_FORMAT, "tokenizer: '%s' is not a SentencePiece model (%s)", file, msg);
    }
    if (st == TS_OK) {
        int np = ts_spm_piece_count(t->spm);
        t->vocab = np;
        t->eos = t->pad = t->unk = -1;
        char piece[64];
        for (int i = 0; i < np && st == TS_OK; i++) {
            int ty = ts_spm_piece_type(t->spm, i);
            if (ty != TS_SPM_CONTROL && ty != TS_SPM_UNKNOWN) continue;
            if (ts_spm_piece(t->spm, i, piece, sizeof piece) < 0) continue;
            if (ty == TS_SPM_UNKNOWN) t->unk = i;
            if (strcmp(piece, "</s>") == 0) t->eos = i;
            if (strcmp(piece, "<pad>") == 0) t->pad = i;
            if (!json) st = add_special(t, piece, i, err); /* as transformers' added tokens */
        }
        int extra = 0;
        read_tokenizer_config(dir, &extra, &t->max_length);
        if (json) extra = 0;
        if (!json && st == TS_OK) {
            for (int i = 0; i < extra && st == TS_OK; i++) {
                snprintf(piece, sizeof piece, "<extra_id_%d>", i);
                st = add_special(t, piece, np + extra - 1 - i, err);
            }
            t->vocab = np + extra;
        }
        if (st == TS_OK && t->eos < 0)
            st = TS_ERR(err, TS_ERR_FORMAT, "tokenizer '%s' has no </s> piece (not a T5-style tokenizer)", file);
        if (t->pad < 0) t->pad = 0;
        if (st == TS_OK && t->unk < 0)
            st = TS_ERR(err, TS_ERR_FORMAT, "tokenizer '%s' has no unknown piece", file);
        if (st == TS_OK) st = build_lexicon(t, err);
    }
    if (st != TS_OK) {
        ts_tokenizer_free(t);
        return st;
    }
    *out = t;
    return TS_OK;
}

void ts_tokenizer_free(ts_tokenizer *t) {
    if (!t) return;
    for (int i = 0; t->piece && i < t->n_pieces; i++) free(t->piece[i]);
    free(t->piece), free(t->score), free(t->lex.slot);
    for (int i = 0; i < t->n_sp; i++) free(t->sp[i].text);
    free(t->sp);
    ts_spm_free(t->spm);
    free(t);
}

int ts_tokenizer_vocab_size(const ts_tokenizer *t) { return t->vocab; }
int ts_tokenizer_eos_id(const ts_tokenizer *t) { return t->eos; }
int ts_tokenizer_pad_id(const ts_tokenizer *t) { return t->pad; }

/* Appends the ids of s[0 .. n) to ids (capacity cap; *k counts past cap, so the caller can
 * tell truncation happened): SentencePiece normalises, segment() picks the pieces. */
static ts_status encode_segment(const ts_tokenizer *t, const char *s, size_t n, int32_t *ids,
                                int cap, int *k, ts_err *err) {
    if (n == 0) return TS_OK;
    char *norm = NULL, msg[256];
    size_t nn = 0;
    if (ts_spm_normalize(t->spm, s, n, &norm, &nn, msg, sizeof msg) != 0)
        return TS_ERR(err, TS_ERR_INTERNAL, "tokenizer: SentencePiece failed: %s", msg);
    ts_status st = segment(t, norm, nn, ids, cap, k, err);
    free(norm);
    return st;
}

ts_status ts_tokenize(const ts_tokenizer *t, const char *text, int32_t *ids, int max_len,
                      int *n_out, ts_err *err) {
    *n_out = 0;
    if (max_len < 1) return TS_ERR(err, TS_ERR_INVALID_ARG, "tokenizer: max_len %d < 1", max_len);
    size_t n = strlen(text);
    if (!utf8_valid(text, n)) return TS_ERR(err, TS_ERR_INVALID_ARG, "prompt is not valid UTF-8");
    int cap = max_len - 1, k = 0;
    size_t seg = 0;
    for (size_t i = 0; i < n && k < cap;) {
        /* the longest special token starting here */
        int best = -1;
        for (int s = 0; s < t->n_sp; s++)
            if (t->sp[s].len <= n - i && memcmp(text + i, t->sp[s].text, t->sp[s].len) == 0 &&
                (best < 0 || t->sp[s].len > t->sp[best].len))
                best = s;
        if (best < 0) {
            i++;
            continue;
        }
        TS_TRY(encode_segment(t, text + seg, i - seg, ids, cap, &k, err));
        if (k < cap) ids[k] = t->sp[best].id;
        k++;
        i += t->sp[best].len;
        seg = i;
    }
    if (k < cap) TS_TRY(encode_segment(t, text + seg, n - seg, ids, cap, &k, err));
    if (k > cap) k = cap;
    ids[k++] = t->eos;
    *n_out = k;
    return TS_OK;
}

int64_t ts_tokenizer_max_length(const ts_tokenizer *t) { return t->max_length; }
