/*
 * test_tokenizer.c — the SentencePiece tokenizer and the prompt cleaning against the
 * Python references (tools/golden/make_tokenizer.py, tests/fixtures/tokenizer_cases.json).
 *
 * For 212 strings (captions, generic text, Unicode, whitespace runs, HTML entities, special
 * tokens written in the text, the empty string, texts far past 512 tokens): ts_text_clean
 * equals diffusers' prompt_clean; the ids equal transformers' T5Tokenizer for the raw text,
 * the cleaned text, and the cleaned text truncated to 16; the same through spiece.model and
 * through tokenizer.json. Known divergences are listed with the reason and checked against
 * the sentencepiece package instead. Also: bad paths and files, invalid UTF-8, sentinels
 * from tokenizer_config.json.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "text/tokenizer.h"

/* Where transformers and SentencePiece disagree, Tessera follows SentencePiece. */
static const struct { const char *text; const char *why; } known[] = {
    /* e + U+0301 + U+0302 is one grapheme; the tokenizers library's Precompiled normaliser
     * maps a grapheme by its longest matching prefix (e + U+0301 → é) and drops the rest,
     * SentencePiece keeps U+0302 (as <unk>) */
    {"combining e\xcc\x81\xcc\x82", "tokenizers drops a combining mark after a composed prefix"},
};

static int is_known(const char *text) {
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(text, known[i].text) == 0) return 1;
    return 0;
}

static char *slurp(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *d = malloc((size_t)n + 1);
    if (d && fread(d, 1, (size_t)n, fp) != (size_t)n) {
        free(d);
        d = NULL;
    }
    fclose(fp);
    if (d) d[n] = 0;
    return d;
}

/* 1 when ids[0..n) equals the JSON int array ref; prints both on a mismatch. */
static int same_ids(const char *what, const char *text, const int32_t *ids, int n, const cJSON *ref) {
    int m = cJSON_GetArraySize(ref), ok = m == n;
    for (int i = 0; ok && i < n; i++) ok = cJSON_GetArrayItem(ref, i)->valueint == ids[i];
    if (!ok) {
        fprintf(stderr, "  %s: '%.60s'\n    got (%d):", what, text, n);
        for (int i = 0; i < n && i < 24; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n    ref (%d):", m);
        for (int i = 0; i < m && i < 24; i++) fprintf(stderr, " %d", cJSON_GetArrayItem(ref, i)->valueint);
        fprintf(stderr, "\n");
    }
    return ok;
}

static void test_cases(const char *tok_path, const cJSON *cases, int *n_checked) {
    ts_tokenizer *t = NULL;
    ts_err e = {0};
    TS_CHECK(ts_tokenizer_open(&t, tok_path, &e) == TS_OK, "open %s: %s", tok_path, e.msg);
    if (!t) return;
    TS_CHECK(ts_tokenizer_vocab_size(t) == 600 && ts_tokenizer_eos_id(t) == 1 && ts_tokenizer_pad_id(t) == 0,
             "%s: vocab %d eos %d pad %d", tok_path, ts_tokenizer_vocab_size(t), ts_tokenizer_eos_id(t),
             ts_tokenizer_pad_id(t));
    int32_t *ids = malloc(512 * sizeof *ids);
    int bad_raw = 0, bad_clean = 0, bad_short = 0, bad_known = 0, n = 0, long_seen = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *text = cJSON_GetObjectItemCaseSensitive(c, "text")->valuestring;
        const char *ref_clean = cJSON_GetObjectItemCaseSensitive(c, "cleaned")->valuestring;
        char *clean = NULL;
        if (ts_text_clean(text, &clean, &e) != TS_OK) {
            TS_CHECK(0, "clean '%s': %s", text, e.msg);
            continue;
        }
        int k = 0;
        if (is_known(text)) {
            /* the sentencepiece package's ids (this text has no special tokens) */
            ts_tokenize(t, text, ids, 512, &k, &e);
            bad_known += !same_ids("known divergence vs sentencepiece", text, ids, k,
                                   cJSON_GetObjectItemCaseSensitive(c, "spm"));
            free(clean);
            continue;
        }
        ts_status s1 = ts_tokenize(t, text, ids, 512, &k, &e);
        bad_raw += s1 != TS_OK || !same_ids("raw", text, ids, k, cJSON_GetObjectItemCaseSensitive(c, "raw"));
        long_seen += k == 512;
        ts_status s2 = ts_tokenize(t, clean, ids, 512, &k, &e);
        bad_clean += s2 != TS_OK || !same_ids("clean", text, ids, k, cJSON_GetObjectItemCaseSensitive(c, "clean"));
        ts_status s3 = ts_tokenize(t, clean, ids, 16, &k, &e);
        bad_short += s3 != TS_OK || !same_ids("max 16", text, ids, k, cJSON_GetObjectItemCaseSensitive(c, "short"));
        if (tok_path == NULL || strstr(tok_path, ".model")) /* once is enough */
            TS_CHECK(strcmp(clean, ref_clean) == 0, "clean('%s') = '%s', prompt_clean gives '%s'", text, clean, ref_clean);
        free(clean);
        n++;
    }
    TS_CHECK(n >= 200, "%s: only %d cases", tok_path, n);
    TS_CHECK(long_seen >= 2, "%s: %d cases reach the 512-token limit", tok_path, long_seen);
    TS_CHECK(bad_raw == 0 && bad_clean == 0 && bad_short == 0 && bad_known == 0,
             "%s: ids differ from transformers in %d raw, %d clean, %d truncated, %d known cases (of %d)",
             tok_path, bad_raw, bad_clean, bad_short, bad_known, n);
    printf("  %s: %d strings x 3 encodings equal transformers\n", tok_path, n);
    *n_checked += n;
    free(ids);
    ts_tokenizer_free(t);
}

static void test_errors(const char *tmpdir) {
    ts_tokenizer *t = NULL;
    ts_err e = {0};
    ts_status s = ts_tokenizer_open(&t, "/nonexistent/spiece.model", &e);
    TS_CHECK(s == TS_ERR_IO && strstr(e.msg, "/nonexistent/spiece.model"), "missing file: %s", e.msg);
    s = ts_tokenizer_open(&t, tmpdir, &e);
    TS_CHECK(s == TS_ERR_MISSING && strstr(e.msg, "spiece.model"), "empty dir: %s", e.msg);
    char p[600];
    snprintf(p, sizeof p, "%s/garbage.model", tmpdir);
    FILE *fp = fopen(p, "w");
    fputs("not a model", fp);
    fclose(fp);
    s = ts_tokenizer_open(&t, p, &e);
    TS_CHECK(s == TS_ERR_FORMAT && strstr(e.msg, "not a SentencePiece model"), "garbage model: %s", e.msg);
    unlink(p);
    snprintf(p, sizeof p, "%s/bpe.json", tmpdir);
    fp = fopen(p, "w");
    fputs("{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}", fp);
    fclose(fp);
    s = ts_tokenizer_open(&t, p, &e);
    TS_CHECK(s == TS_ERR_UNSUPPORTED && strstr(e.msg, "BPE"), "BPE tokenizer.json: %s", e.msg);
    fp = fopen(p, "w");
    fputs("{\"model\": ", fp);
    fclose(fp);
    s = ts_tokenizer_open(&t, p, &e);
    TS_CHECK(s == TS_ERR_FORMAT && strstr(e.msg, "not valid JSON"), "truncated JSON: %s", e.msg);
    unlink(p);

    /* a checkpoint folder: spiece.model + tokenizer_config.json with sentinels */
    char sp[600], cfg[600];
    snprintf(sp, sizeof sp, "%s/spiece.model", tmpdir);
    char *model = NULL;
    {
        FILE *in = fopen(ts_test_fixture("spm_tiny.model"), "rb");
        FILE *out = fopen(sp, "wb");
        char b[65536];
        size_t r;
        while (in && out && (r = fread(b, 1, sizeof b, in)) > 0) fwrite(b, 1, r, out);
        if (in) fclose(in);
        if (out) fclose(out);
    }
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", tmpdir);
    fp = fopen(cfg, "w");
    fputs("{\"extra_ids\": 5}", fp);
    fclose(fp);
    s = ts_tokenizer_open(&t, tmpdir, &e);
    TS_CHECK(s == TS_OK, "folder with spiece.model: %s", e.msg);
    if (t) {
        TS_CHECK(ts_tokenizer_vocab_size(t) == 605, "vocab with 5 sentinels: %d", ts_tokenizer_vocab_size(t));
        int32_t ids[8];
        int k = 0;
        ts_tokenize(t, "<extra_id_0><extra_id_4>", ids, 8, &k, &e);
        /* as transformers numbers them: <extra_id_0> is the last id */
        TS_CHECK(k == 3 && ids[0] == 604 && ids[1] == 600 && ids[2] == 1, "sentinels: k %d ids %d %d %d", k,
                 ids[0], ids[1], ids[2]);
        ts_tokenize(t, "", ids, 8, &k, &e);
        TS_CHECK(k == 1 && ids[0] == 1, "empty text gives </s> only (k %d)", k);
        ts_tokenize(t, "a red circle", ids, 1, &k, &e);
        TS_CHECK(k == 1 && ids[0] == 1, "max_len 1 gives </s> only (k %d)", k);
        s = ts_tokenize(t, "bad \xff utf8", ids, 8, &k, &e);
        TS_CHECK(s == TS_ERR_INVALID_ARG && strstr(e.msg, "UTF-8"), "invalid UTF-8: %s", e.msg);
        s = ts_tokenize(t, "x", ids, 0, &k, &e);
        TS_CHECK(s == TS_ERR_INVALID_ARG, "max_len 0: %s", ts_status_str(s));
        ts_tokenizer_free(t);
    }
    char *cl = NULL;
    s = ts_text_clean("\xc3\x28", &cl, &e);
    TS_CHECK(s == TS_ERR_INVALID_ARG && !cl, "clean of invalid UTF-8: %s", e.msg);
    free(model);
    unlink(cfg);
    unlink(sp);
}

int main(void) {
    char tmpdir[] = "/tmp/ts_tok_XXXXXX";
    if (!mkdtemp(tmpdir)) return 1;
    { /* model_max_length from tokenizer_config.json: a real cap, or none (umt5-xxl's 1e30) */
        char dir[700], path[800];
        snprintf(dir, sizeof dir, "%s/cfg", tmpdir);
        mkdir(dir, 0700);
        snprintf(path, sizeof path, "%s/spiece.model", dir);
        TS_CHECK(symlink(ts_test_fixture("spm_tiny.model"), path) == 0, "link spiece.model");
        const char *cfgs[] = {"{\"model_max_length\": 32, \"extra_ids\": 0}", "{\"model_max_length\": 1e30}", "{}"};
        const int64_t want[] = {32, 0, 0};
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        for (int i = 0; i < 3; i++) {
            FILE *f = fopen(path, "w");
            if (f) fputs(cfgs[i], f), fclose(f);
            ts_tokenizer *t = NULL;
            ts_err e = {0};
            TS_CHECK(ts_tokenizer_open(&t, dir, &e) == TS_OK, "open with %s: %s", cfgs[i], e.msg);
            TS_CHECK(t && ts_tokenizer_max_length(t) == want[i], "model_max_length of %s: %lld", cfgs[i],
                     t ? (long long)ts_tokenizer_max_length(t) : -1LL);
            ts_tokenizer_free(t);
        }
        remove(path);
        snprintf(path, sizeof path, "%s/spiece.model", dir), remove(path);
        rmdir(dir);
    }
    char *text = slurp(ts_test_fixture("tokenizer_cases.json"));
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    TS_CHECK(j != NULL, "cannot read tokenizer_cases.json");
    if (j) {
        const cJSON *cases = cJSON_GetObjectItemCaseSensitive(j, "cases");
        int n = 0;
        char model[600], json[600];
        snprintf(model, sizeof model, "%s", ts_test_fixture("spm_tiny.model"));
        snprintf(json, sizeof json, "%s", ts_test_fixture("spm_tiny_tokenizer.json"));
        test_cases(model, cases, &n);
        test_cases(json, cases, &n);
        cJSON_Delete(j);
    }
    test_errors(tmpdir);
    rmdir(tmpdir);
    return ts_test_summary("tokenizer");
}
