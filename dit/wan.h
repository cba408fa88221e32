/*
 * wan.h — the Wan2.1 diffusion transformer (T2V 1.3B, 14B and any size between).
 *
 * Load from a safetensors file, a sharded *.safetensors.index.json, or a directory,
 * in the original Wan key layout (optionally ComfyUI-prefixed) or the diffusers
 * layout; the config is read from tensor shapes. Forward runs one batch element.
 *
 * Letters: C channels, F/H/W latent frames/height/width, N tokens = F/pt · H/ph · W/pw,
 * L text tokens, D dim, Dh head dim.
 */
#ifndef TS_DIT_WAN_H
#define TS_DIT_WAN_H

#include <stddef.h>
#include <stdint.h>

#include "../attention/attention.h"
#include "../src/ctx.h"
#include "../src/safetensors.h"
#include "../src/status.h"

typedef struct wan_config {
    int64_t dim, ffn_dim, heads, head_dim, layers;
    int64_t in_ch, out_ch, text_dim, freq_dim;
    int patch[3]; /* t, h, w */
    float eps;
    /* SLA's linear branch as the checkpoint was trained (with proj_l): 0 over all keys
     * (TurboDiffusion's, the default), 1 over each query block's non-selected blocks (the
     * paper's SLA-1 branch). From the safetensors metadata "sla_variant" ("all" or
     * "complement"); a schedule's sla rule without 'variant' runs this one. */
    int sla_complement;
} wan_config;

typedef struct wan_load_opts {
    int64_t head_dim; /* 0: from a config.json in/beside the path (wan_load), else from a
                       * "config" JSON in the safetensors metadata, else 128 */
} wan_load_opts;

typedef struct wan_model wan_model;

/* Named intermediate results ("patch_embedding" [N,D], "temb" [D], "timestep_proj" [6D],
 * "text_emb" [L,D], "blocks.i" [N,D]), for tests and probes. */
typedef void (*wan_hook_fn)(void *user, const char *name, const float *data, int64_t n);

/* The config read from tensor shapes of either layout (with or without the ComfyUI prefix):
 * dim, in_ch and patch from patch_embedding, text_dim, freq_dim, ffn_dim, out_ch from the
 * head, layers by counting blocks.N. head_dim cannot be told from shapes: opts->head_dim if
 * set, else a "config" JSON in the file metadata (attention_head_dim, or dim / num_heads),
 * else 128 (dim must be a multiple). wan_load also looks for a config.json. sla_complement
 * from the metadata "sla_variant" (absent: 0; wan_load refuses a value other than "all" or
 * "complement" in a checkpoint with proj_l weights). */
ts_status wan_config_from_weights(const ts_weights *w, const wan_load_opts *opts, wan_config *cfg,
                                  ts_err *err);

ts_status wan_load(wan_model **out, const char *path, const wan_load_opts *opts, ts_err *err);
/* Takes ownership of w (closed by wan_free, or on failure). */
ts_status wan_load_from(wan_model **out, ts_weights *w, const wan_load_opts *opts, ts_err *err);
const wan_config *wan_model_config(const wan_model *m);
void wan_free(wan_model *m); /* NULL is a no-op */

/* The bound checkpoint tensors in name-table order (globals, then block 0, 1, ...), each a
 * view carrying its checkpoint name; for tests and tools that check the name mapping.
 * wan_tensor_at returns NULL for i out of range. */
int64_t wan_tensor_count(const wan_model *m);
const ts_tensor *wan_tensor_at(const wan_model *m, int64_t i);

/* The token grid of a latent of F x H x W (frames, rows, columns): each divided by the patch.
 * The self-attention calls' site grid, which schedules and PARO calibrations are made for. */
static inline void wan_token_grid(const wan_config *c, int64_t F, int64_t H, int64_t W, int64_t g[3]) {
    g[0] = F / c->patch[0], g[1] = H / c->patch[1], g[2] = W / c->patch[2];
}

/* Activation arena bytes one forward needs at latent size F x H x W with L text tokens. */
size_t wan_arena_bytes(const wan_config *cfg, int64_t F, int64_t H, int64_t W, int64_t L);

/* out [out_ch, F, H, W] = velocity for x [in_ch, F, H, W] at timestep t (0..1000) with
 * text context [L, text_dim]. Scratch from c->arena (wan_arena_bytes). step/n_steps
 * and sched go to the attention planner. */
ts_status wan_forward(ts_ctx *c, const wan_model *m, ts_attn_schedule *sched, int step,
                      int n_steps, const float *x, int64_t F, int64_t H, int64_t W, float t,
                      const float *context, int64_t L, float *out, wan_hook_fn hook,
                      void *hook_user, ts_err *err);

#endif
