/*
 * fuzz_safetensors.c — libFuzzer target for the safetensors reader.
 *
 * Feeds arbitrary bytes to ts_st_open_mem and, when they parse, walks every tensor
 * and metadata entry (touching the first and last byte of each tensor's data, so an
 * out-of-range view would trip ASan), then reads it as a PARO calibration file (the
 * corpus has one), whose loader takes its grid and shapes from the file. Build and run: see
 * README.md beside this file.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../attention/paro.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Sink for the bytes read, so the reads are not optimised away. */
static volatile unsigned fuzz_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ts_st_file *f = NULL;
    ts_err err = {0};
    if (ts_st_open_mem(&f, data, size, "fuzz", &err) != TS_OK) {
        if (strlen(err.msg) == 0) __builtin_trap(); /* every rejection must say why */
        return 0;
    }
    for (int i = 0; i < ts_st_count(f); i++) {
        const ts_tensor *t = ts_st_tensor(f, i);
        size_t nb = ts_tensor_nbytes(t);
        if (nb) fuzz_sink += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[nb - 1];
        if (ts_st_find(f, t->name) == NULL) __builtin_trap();
    }
    (void)ts_st_meta(f, "format");
    ts_paro *p = NULL;
    err.msg[0] = 0;
    if (ts_paro_read(&p, f, "fuzz", &err) != TS_OK) {
        if (p || strlen(err.msg) == 0) __builtin_trap();
    } else {
        const ts_paro_desc *d = ts_paro_info(p);
        if (d->layers < 1 || d->heads < 1) __builtin_trap();
        fuzz_sink += (unsigned)ts_paro_block_on(p, d->groups - 1, d->layers - 1, d->heads - 1, 0, 0);
        ts_attn_plan plan;
        if (ts_paro_plan(p, d->groups - 1, d->layers - 1, d->heads - 1, d->heads, 16, TS_QUANT_NONE, &plan, &err) ==
            TS_OK)
            fuzz_sink += (unsigned)plan.n_qblk;
        ts_paro_free(p);
    }
    ts_st_close(f);
    return 0;
}
