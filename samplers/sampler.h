/*
 * sampler.h — flow-matching samplers (Euler, UniPC) and classifier-free guidance.
 *
 * The sampler takes the model as a callback (ts_denoise_fn) that returns the velocity
 * v ≈ ε − x0 for a latent x at a timestep; the sigma grids and the update rules
 * reproduce diffusers' FlowMatchEulerDiscreteScheduler(shift) and
 * UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
 * flow_shift, solver_order=2, bh2, predict_x0, lower_order_final). See
 * shared/docs/models.md §6.
 */
#ifndef TS_SAMPLERS_SAMPLER_H
#define TS_SAMPLERS_SAMPLER_H

#include <stdint.h>

#include "../src/ctx.h"
#include "../src/status.h"

typedef enum ts_sampler_kind { TS_SAMPLER_EULER = 0, TS_SAMPLER_UNIPC, TS_SAMPLER_COUNT } ts_sampler_kind;

const char *ts_sampler_name(ts_sampler_kind k);
/* "euler" / "unipc" → kind; returns 0, or -1 when unknown. */
int ts_sampler_from_name(const char *s, ts_sampler_kind *out);

/* The model: v_out[n] = velocity at x[n] for the model timestep (what the reference
 * pipeline passes to the transformer). */
typedef ts_status (*ts_denoise_fn)(void *user, const float *x, int64_t n, float timestep,
                                   int step, int n_steps, float *v_out, ts_err *err);
/* Called after each step with the updated latent (may be NULL). */
typedef void (*ts_step_fn)(void *user, int step, int n_steps, const float *x);

/* sigmas[n_steps + 1] (last is 0) and model timesteps[n_steps] as diffusers computes
 * them for this sampler (Euler: σ·1000 as float; UniPC: σ·1000 truncated to an integer). */
ts_status ts_flow_sigmas(ts_sampler_kind kind, int n_steps, double shift, double *sigmas,
                         float *timesteps, ts_err *err);

/* Runs the sampler from x (the initial noise, overwritten with the final latent, n
 * floats). Allocates its state (a few n-sized buffers) once before the loop. */
ts_status ts_sample_flow(ts_ctx *c, ts_sampler_kind kind, int n_steps, double shift, float *x,
                         int64_t n, ts_denoise_fn model, void *model_user, ts_step_fn on_step,
                         void *step_user, ts_err *err);

/* Classifier-free guidance around a model that can run with or without its condition
 * (uncond = 0: the prompt's context, 1: the negative/empty one):
 * v = v_uncond + scale·(v_cond − v_uncond); scale == 1 runs the conditional pass only.
 * Any other finite scale runs both passes (diffusers' WanPipeline instead skips the
 * unconditional pass for every scale <= 1). */
typedef ts_status (*ts_cond_model_fn)(void *user, const float *x, int64_t n, float timestep,
                                      int step, int n_steps, int uncond, float *v_out,
                                      ts_err *err);
typedef struct ts_cfg {
    ts_cond_model_fn model;
    void *user;
    float scale;
    float *scratch; /* n floats for the unconditional output, owned by the caller */
} ts_cfg;

/* A ts_denoise_fn; user is a ts_cfg*. */
ts_status ts_cfg_denoise(void *user, const float *x, int64_t n, float timestep, int step,
                         int n_steps, float *v_out, ts_err *err);

#endif
