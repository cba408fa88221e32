/*
 * pipeline.h — the Wan2.1 text-to-video pipeline driver (DiT + sampler with CFG + VAE).
 *
 * Opens a checkpoint directory in either layout:
 *   diffusers: DIR/transformer/ (safetensors, sharded or not, + config.json) and DIR/vae/
 *   original:  DIR/diffusion_pytorch_model*.safetensors (+ .index.json, config.json) and
 *              the VAE as DIR/Wan2.1_VAE.safetensors (or another *vae*.safetensors; the
 *              original Wan2.1_VAE.pth is a pickle and must be converted first)
 * and the text encoder with its tokenizer, when present:
 *   diffusers: DIR/text_encoder/ (UMT5, transformers names) and DIR/tokenizer/ (spiece.model
 *              or tokenizer.json)
 *   original:  a DIR/...t5...safetensors (Wan's names; the shipped models_t5_umt5-xxl-enc-bf16.pth
 *              is a pickle and must be converted) and DIR/google/umt5-xxl/ (the tokenizer)
 * Without them callers pass the text context (UMT5 hidden states) directly.
 */
#ifndef TS_SRC_PIPELINE_H
#define TS_SRC_PIPELINE_H

#include <stdint.h>

#include "../dit/wan.h"
#include "../samplers/sampler.h"
#include "../vae/wan_vae.h"
#include "text/tokenizer.h"
#include "text/umt5.h"
#include "ctx.h"
#include "status.h"

typedef struct ts_wan_pipeline {
    wan_model *dit;
    wan_vae *vae;
    umt5_model *te;    /* NULL when the checkpoint has no text encoder */
    ts_tokenizer *tok; /* NULL with te */
} ts_wan_pipeline;

/* Component paths; text_encoder and tokenizer are "" when absent. */
typedef struct ts_wan_paths {
    char dit[4096], vae[4096], text_encoder[4096], tokenizer[4096];
} ts_wan_paths;

typedef struct ts_wan_params {
    int64_t frames, height, width; /* video: frames = 1 + 4k, H and W multiples of 16 */
    int steps;
    float cfg_scale;               /* 1 = no guidance (one pass per step) */
    double flow_shift;
    ts_sampler_kind sampler;
    uint64_t seed;                 /* initial noise (ignored when noise is given) */
    int64_t text_len;              /* zero-pad contexts to this many rows (512 for Wan2.1;
                                      0 = use them as given) */
    ts_attn_schedule *sched;       /* attention schedule for the DiT's calls, NULL: dense */
} ts_wan_params;

/* Defaults of the reference pipeline: 81 frames 480x832, 50 UniPC steps, cfg 5, shift 5. */
ts_wan_params ts_wan_params_default(void);

/* The DiT and VAE paths inside a checkpoint directory of either layout (n bytes each). */
ts_status ts_wan_find_components(const char *dir, char *dit, char *vae, size_t n, ts_err *err);
/* Every component of a checkpoint directory (the text ones may be absent: ""). */
ts_status ts_wan_find_paths(const char *dir, ts_wan_paths *paths, ts_err *err);
ts_status ts_wan_pipeline_open(ts_wan_pipeline *p, const char *dir, ts_err *err);
/* From explicit paths; an empty text_encoder / tokenizer leaves that part out, but one
 * needs the other. The text encoder's width must be the DiT's text_dim. */
ts_status ts_wan_pipeline_open_paths(ts_wan_pipeline *p, const ts_wan_paths *paths, ts_err *err);
/* The prompt's text context as WanPipeline computes it: cleaned, tokenized (at most
 * max_len tokens with </s>), encoded, and zero-padded: ctx [max_len, text_dim]. *n_tokens
 * (may be NULL) gets the token count. Needs the text encoder. */
ts_status ts_wan_encode_prompt(ts_ctx *c, const ts_wan_pipeline *p, const char *prompt,
                               int64_t max_len, float *ctx, int64_t *n_tokens, ts_err *err);
/* The context length to encode and pad prompts to: text_len, capped by the tokenizer's
 * model_max_length when that is smaller (the bundled model's 32: the DiT attends as many
 * rows as it was trained with). */
int64_t ts_wan_text_len(const ts_wan_pipeline *p, int64_t text_len);
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
