/*
 * euler_flow.c — flow-matching Euler (x += (σ_next − σ)·v) and the sampler entry point.
 */
#include <stdlib.h>

#include "sampler.h"
#include "sampler_internal.h"

ts_status ts_sample_euler(const double *sigmas, const float *timesteps, int n_steps, float *x,
                          int64_t n, float *v, ts_denoise_fn model, void *user,
                          ts_step_fn on_step, void *step_user, ts_err *err) {
    for (int i = 0; i < n_steps; i++) {
        TS_TRY(model(user, x, n, timesteps[i], i, n_steps, v, err));
        const float dt = (float)(sigmas[i + 1] - sigmas[i]);
        for (int64_t j = 0; j < n; j++) x[j] += dt * v[j];
        if (on_step) on_step(step_user, i, n_steps, x);
    }
    return TS_OK;
}

ts_status ts_sample_flow(ts_ctx *c, ts_sampler_kind kind, int n_steps, double shift, float *x,
                         int64_t n, ts_denoise_fn model, void *model_user, ts_step_fn on_step,
                         void *step_user, ts_err *err) {
    (void)c; /* the per-step vector updates are negligible next to the model */
    if ((unsigned)kind >= TS_SAMPLER_COUNT)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "unknown sampler %d", (int)kind);
    if (n <= 0 || !x) return TS_ERR(err, TS_ERR_INVALID_ARG, "sampler: empty latent");
    if (!model) return TS_ERR(err, TS_ERR_INVALID_ARG, "sampler: no model callback");
    if (n_steps < 1) return TS_ERR(err, TS_ERR_INVALID_ARG, "steps must be at least 1 (got %d)", n_steps);
    double *sigmas = malloc((size_t)(n_steps + 1) * sizeof *sigmas);
    float *ts = malloc((size_t)n_steps * sizeof *ts);
    /* state: v, and for UniPC two previous data predictions, the last sample and m */
    int nbuf = kind == TS_SAMPLER_UNIPC ? 5 : 1;
    float *buf = malloc((size_t)n * (size_t)nbuf * sizeof *buf);
    ts_status st;
    if (!sigmas || !ts || !buf) {
        st = TS_ERR(err, TS_ERR_NOMEM, "sampler: out of memory");
    } else {
        st = ts_flow_sigmas(kind, n_steps, shift, sigmas, ts, err);
        if (st == TS_OK) {
            if (kind == TS_SAMPLER_EULER)
                st = ts_sample_euler(sigmas, ts, n_steps, x, n, buf, model, model_user, on_step,
                                     step_user, err);
            else
                st = ts_sample_unipc(sigmas, ts, n_steps, x, n, buf, model, model_user, on_step,
                                     step_user, err);
        }
    }
    free(sigmas);
    free(ts);
    free(buf);
    return st;
}
