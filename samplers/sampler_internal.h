/* sampler_internal.h — the sampler loops behind ts_sample_flow. */
#ifndef TS_SAMPLERS_SAMPLER_INTERNAL_H
#define TS_SAMPLERS_SAMPLER_INTERNAL_H

#include "sampler.h"

/* buf: n floats (the model output). */
ts_status ts_sample_euler(const double *sigmas, const float *timesteps, int n_steps, float *x,
                          int64_t n, float *buf, ts_denoise_fn model, void *user,
                          ts_step_fn on_step, void *step_user, ts_err *err);
/* buf: 5·n floats (model output, current and two previous data predictions, last sample). */
ts_status ts_sample_unipc(const double *sigmas, const float *timesteps, int n_steps, float *x,
                          int64_t n, float *buf, ts_denoise_fn model, void *user,
                          ts_step_fn on_step, void *step_user, ts_err *err);

#endif
