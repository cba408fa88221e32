/*
 * pipeline.h — the Wan2.1 text-to-video pipeline driver (DiT + sampler with CFG + VAE).
 *
 * Opens a checkpoint directory in either layout:
 *   diffusers: DIR/transformer/ (safetensors, sharded or not, + config.json) and DIR/vae/
 *   original:  DIR/diffusion_pytorch_model*.safetensors (+ .index.json, config.json) and
 *              the VAE as DIR/Wan2.1_VAE.safetensors (or another *vae*.safetensors; the
 *              original Wan2.1_VAE.pth is a pickle and must be converted first)
 * The text encoder arrives with the next issue; until then callers pass the text
 * context (UMT5 hidden states) directly.
 */
#ifndef TS_SRC_PIPELINE_H
#define TS_SRC_PIPELINE_H

#include <stdint.h>

#include "../dit/wan.h"
#include "../samplers/sampler.h"
#include "../vae/wan_vae.h"
#include "ctx.h"
#include "status.h"

typedef struct ts_wan_pipeline {
    wan_model *dit;
    wan_vae *vae;
} ts_wan_pipeline;

typedef struct ts_wan_params {
    int64_t frames, height, width; /* video: frames = 1 + 4k, H and W multiples of 16 */
    int steps;
    float cfg_scale;               /* 1 = no guidance (one pass per step) */
    double flow_shift;
    ts_sampler_kind sampler;
    uint64_t seed;                 /* initial noise (ignored when noise is given) */
    int64_t text_len;              /* zero-pad contexts to this many rows (512 for Wan2.1;
                                      0 = use them as given) */
} ts_wan_params;

/* Defaults of the reference pipeline: 81 frames 480x832, 50 UniPC steps, cfg 5, shift 5. */
ts_wan_params ts_wan_params_default(void);

/* The DiT and VAE paths inside a checkpoint directory of either layout (n bytes each). */
ts_status ts_wan_find_components(const char *dir, char *dit, char *vae, size_t n, ts_err *err);
ts_status ts_wan_pipeline_open(ts_wan_pipeline *p, const char *dir, ts_err *err);
void ts_wan_pipeline_close(ts_wan_pipeline *p);

/* Latent shape for the params: [16, 1 + (frames−1)/4, H/8, W/8]. Checks the params. */
ts_status ts_wan_latent_shape(const ts_wan_params *prm, int64_t shape[4], ts_err *err);

/* Runs the sampler: latents [16, t, h, w] (raw VAE latents out). ctx/ctx_uncond are
 * [L, text_dim] text hidden states (ctx_uncond may be NULL when cfg_scale == 1); noise
 * (may be NULL: drawn from params.seed) has the latent shape. on_step may be NULL. */
ts_status ts_wan_generate(ts_ctx *c, const ts_wan_pipeline *p, const ts_wan_params *prm,
                          const float *ctx, int64_t L, const float *ctx_uncond, int64_t L_uncond,
                          const float *noise, float *latents, ts_step_fn on_step, void *step_user,
                          ts_err *err);

#endif
