/*
 * fuzz_schedule.c — libFuzzer target for the attention schedule: arbitrary bytes as a
 * schedule file (ts_attn_schedule_parse) and as an --attn spec (ts_attn_schedule_from_spec);
 * the first byte picks which. A rejection must say why; an accepted schedule must have rules.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schedule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 65536) return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    ts_attn_schedule *s = NULL;
    ts_err e;
    e.msg[0] = 0;
    ts_status st = data[0] & 1 ? ts_attn_schedule_from_spec(&s, text, &e) : ts_attn_schedule_parse(&s, text, "fuzz", &e);
    if (st != TS_OK) {
        if (!e.msg[0] || s) __builtin_trap();
    } else if (!s || ts_attn_schedule_rules(s) < 0) {
        __builtin_trap();
    }
    ts_attn_schedule_free(s);
    free(text);
    return 0;
}
