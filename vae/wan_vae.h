/*
 * wan_vae.h — the Wan-VAE (Wan2.1): causal 3-D convolutional encoder and decoder.
 *
 * Streams in time: the decoder runs one latent frame at a time and the encoder in
 * chunks of 1, 4, 4, ... frames; every causal convolution keeps the last two input
 * frames of the stream as its cache (the reference "feature cache"), so memory is
 * set by the frame size, not the frame count. Loads the original (Wan2.1_VAE) and the
 * diffusers (AutoencoderKLWan) key layouts; the config is read from tensor shapes.
 *
 * Letters: z latent channels (16), t/h/w latent frames/height/width,
 * T = 1 + 4(t − 1) video frames, H = 8h, W = 8w.
 */
#ifndef TS_VAE_WAN_VAE_H
#define TS_VAE_WAN_VAE_H

#include <stdint.h>

#include "../src/ctx.h"
#include "../src/safetensors.h"
#include "../src/status.h"

typedef struct wan_vae_config {
    int64_t base_dim, z_dim;
    int dim_mult[4];
    int num_res_blocks;
    int temporal_downsample[3]; /* encoder levels 0..2; the decoder uses the reverse */
} wan_vae_config;

typedef struct wan_vae wan_vae;

ts_status wan_vae_load(wan_vae **out, const char *path, ts_err *err);
/* Takes ownership of w (closed by wan_vae_free, or on failure). */
ts_status wan_vae_load_from(wan_vae **out, ts_weights *w, ts_err *err);
const wan_vae_config *wan_vae_model_config(const wan_vae *v);
/* Low-memory decoding: the decoder's causal-conv caches (two input frames per 3x3x3
 * conv, most of the decoder's memory at 480p and above) are stored as fp16 and widened
 * for each conv. Halves that memory; the result is no longer bit-faithful to the fp32
 * reference (tested to stay within rel-L2 1e-3 of it). Off by default. */
void wan_vae_set_half_cache(wan_vae *v, int on);
void wan_vae_free(wan_vae *v); /* NULL is a no-op */

/* Block outputs as they stream: name is diffusers' module path ("encoder.down_blocks.N" for
 * each of the encoder's flat modules, "encoder.mid_block", "decoder.mid_block",
 * "decoder.up_blocks.N"), x one chunk [C, T, H, W] of it. Chunks come in time order;
 * concatenated along T they are the block's output over the whole video, as diffusers'
 * forward hooks see it chunk by chunk. NULL: none. */
typedef void (*wan_vae_hook_fn)(void *user, const char *name, const float *x, int64_t C, int64_t T, int64_t H,
                                int64_t W);
void wan_vae_set_hook(wan_vae *v, wan_vae_hook_fn fn, void *user);

/* Receives decoded frames [3, n, H, W] (frames first .. first+n−1, values in [−1, 1]).
 * The buffer is only valid during the call. */
typedef ts_status (*wan_vae_frames_fn)(void *user, const float *frames, int64_t first, int64_t n,
                                       int64_t H, int64_t W, ts_err *err);

/* Decodes raw (not normalised) latents z [z_dim, t, h, w], streaming frames to fn. */
ts_status wan_vae_decode(ts_ctx *c, const wan_vae *v, const float *z, int64_t t, int64_t h,
                         int64_t w, wan_vae_frames_fn fn, void *user, ts_err *err);
/* Same into out [3, 1 + 4(t − 1), 8h, 8w]. */
ts_status wan_vae_decode_to(ts_ctx *c, const wan_vae *v, const float *z, int64_t t, int64_t h,
                            int64_t w, float *out, ts_err *err);
/* Encodes video [3, T, H, W] in [−1, 1] (H, W multiples of 8) to the raw latent mean
 * [z_dim, 1 + (T − 1)/4, H/8, W/8]; frames past the last full 1 + 4k chunk are dropped,
 * as the reference does. */
ts_status wan_vae_encode(ts_ctx *c, const wan_vae *v, const float *video, int64_t T, int64_t H,
                         int64_t W, float *mean, ts_err *err);

/* Latent normalisation: z_n = (z − mean)/std per channel, and its inverse; z [z_dim, t, h, w].
 * mean/std are the "latents_mean"/"latents_std" of a config.json beside the weights when it
 * has them (diffusers' AutoencoderKLWan config), else Wan2.1's (z_dim 16), else 0 and 1. */
void wan_vae_normalize(const wan_vae *v, float *z, int64_t t, int64_t h, int64_t w);
void wan_vae_denormalize(const wan_vae *v, float *z, int64_t t, int64_t h, int64_t w);

#endif
