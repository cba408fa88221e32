/*
 * wan_run.h — one Wan DiT forward on a golden fixture's inputs (x, t, context of its
 * _io.safetensors), with its own arena; shared by the DiT tests (header-only, tests).
 */
#ifndef TS_TESTS_WAN_RUN_H
#define TS_TESTS_WAN_RUN_H

#include <stdlib.h>

#include "dit/wan.h"
#include "safetensors.h"

/* Runs m on io's inputs at denoising step `step` of `steps` under sched (NULL: dense), hook
 * as wan_forward's; returns the output (malloc'd, *n_out values) or NULL with *err set. */
static inline float *ts_test_wan_forward(const wan_model *m, const ts_st_file *io, ts_attn_schedule *sched,
                                         int step, int steps, wan_hook_fn hook, void *hook_user, int64_t *n_out,
                                         ts_err *err) {
    const ts_tensor *x = ts_st_find(io, "x"), *t = ts_st_find(io, "t"), *ctx = ts_st_find(io, "context");
    if (!x || !t || !ctx) {
        TS_ERR(err, TS_ERR_FORMAT, "fixture inputs: want tensors x, t and context");
        return NULL;
    }
    const wan_config *cfg = wan_model_config(m);
    int64_t F = x->shape[2], H = x->shape[3], W = x->shape[4], L = ctx->shape[1];
    ts_ctx c;
    ts_ctx_init(&c, 0);
    ts_arena arena;
    ts_arena_init(&arena, wan_arena_bytes(cfg, F, H, W, L));
    c.arena = &arena;
    int64_t n = cfg->out_ch * F * H * W;
    float *out = malloc((size_t)n * sizeof(float));
    ts_status st = out ? wan_forward(&c, m, sched, step, steps, x->data, F, H, W, ((float *)t->data)[0], ctx->data, L,
                                     out, hook, hook_user, err)
                       : TS_ERR(err, TS_ERR_NOMEM, "fixture output: out of memory");
    ts_arena_free(&arena);
    if (st != TS_OK) {
        free(out);
        return NULL;
    }
    if (n_out) *n_out = n;
    return out;
}

#endif
