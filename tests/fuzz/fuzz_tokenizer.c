/*
 * fuzz_tokenizer.c — libFuzzer target for the prompt path: ts_text_clean and ts_tokenize
 * on arbitrary bytes, through both tokenizer files of the fixtures (spiece.model and
 * tokenizer.json; the first input byte picks one and the length limit).
 *
 * Invalid UTF-8 must be rejected with a message; anything else must give 1..max_len ids,
 * every one inside the vocabulary, the last one </s>. Build and run: README.md here.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ts_tokenizer *tok[2];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    ts_err e;
    if (ts_tokenizer_open(&tok[0], TS_FUZZ_FIXTURES "/spm_tiny.model", &e) != TS_OK ||
        ts_tokenizer_open(&tok[1], TS_FUZZ_FIXTURES "/spm_tiny_tokenizer.json", &e) != TS_OK)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 8192) return 0;
    const ts_tokenizer *t = tok[data[0] & 1];
    int max_len = (data[0] >> 1) & 1 ? 16 : 512;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0; /* a NUL inside ends the string early, as in C */
    ts_err e;
    e.msg[0] = 0;
    char *clean = NULL;
    const char *in = (data[0] >> 2) & 1 ? text : NULL;
    if (!in) {
        if (ts_text_clean(text, &clean, &e) != TS_OK) {
            if (!e.msg[0] || clean) __builtin_trap();
            free(text);
            return 0;
        }
        in = clean;
    }
    int32_t ids[512];
    int n = -1;
    ts_status st = ts_tokenize(t, in, ids, max_len, &n, &e);
    if (st != TS_OK) {
        if (st != TS_ERR_INVALID_ARG || !e.msg[0]) __builtin_trap();
    } else {
        if (n < 1 || n > max_len || ids[n - 1] != ts_tokenizer_eos_id(t)) __builtin_trap();
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= ts_tokenizer_vocab_size(t)) __builtin_trap();
    }
    free(clean);
    free(text);
    return 0;
}
