/*
 * cfg.c — classifier-free guidance: two passes, v = v_u + g·(v_c − v_u).
 *
 * The conditional pass runs first, as in diffusers' WanPipeline (it matters only to a
 * model that keeps state between calls). scale == 1 skips the unconditional pass.
 */
#include <math.h>

#include "sampler.h"

ts_status ts_cfg_denoise(void *user, const float *x, int64_t n, float timestep, int step,
                         int n_steps, float *v_out, ts_err *err) {
    const ts_cfg *g = user;
    if (!g || !g->model) return TS_ERR(err, TS_ERR_INVALID_ARG, "CFG: no model callback");
    if (!isfinite(g->scale))
        return TS_ERR(err, TS_ERR_INVALID_ARG, "CFG: guidance scale is not finite");
    if (g->scale != 1.0f && !g->scratch)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "CFG needs a scratch buffer");
    TS_TRY(g->model(g->user, x, n, timestep, step, n_steps, 0, v_out, err));
    if (g->scale == 1.0f) return TS_OK;
    TS_TRY(g->model(g->user, x, n, timestep, step, n_steps, 1, g->scratch, err));
    const float s = g->scale;
    for (int64_t i = 0; i < n; i++) v_out[i] = g->scratch[i] + s * (v_out[i] - g->scratch[i]);
    return TS_OK;
}
