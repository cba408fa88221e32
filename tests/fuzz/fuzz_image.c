/*
 * fuzz_image.c — libFuzzer target for the input-image loader (ts_image_load_mem over
 * stb_image, whose implementation is compiled into the target so the fuzzer sees it).
 *
 * Anything must either load as RGB within the size limit or be rejected with a message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "io/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned fuzz_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    ts_err e;
    e.msg[0] = 0;
    if (ts_image_load_mem(data, size, 512, &rgb, &w, &h, &e) != TS_OK) {
        if (!e.msg[0] || rgb) __builtin_trap();
        return 0;
    }
    if (w < 1 || h < 1 || w > 512 || h > 512) __builtin_trap();
    fuzz_sink += rgb[0] + rgb[(size_t)w * h * 3 - 1];
    free(rgb);
    return 0;
}
