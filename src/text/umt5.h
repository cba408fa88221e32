/*
 * umt5.h — the T5-family text encoders: UMT5 (Wan2.1's umt5-xxl: a relative-position
 * bias table in every layer) and T5 v1.1 (FLUX's t5-xxl: one table in layer 0, shared).
 *
 * Loads from a safetensors file, a sharded *.safetensors.index.json or a directory, in the
 * transformers layout (shared, encoder.block.N.layer.{0,1}...) or the original Wan layout
 * (token_embedding, blocks.N.{attn,ffn,...}, norm). The config is read from tensor shapes;
 * relative_attention_max_distance (not visible in shapes) from a config.json beside the
 * weights or the file's "config" metadata, else 128. Weights stay in their checkpoint dtype
 * (bf16 umt5-xxl is ~11 GB): they are converted tile by tile inside the GEMMs, embedding rows
 * one at a time.
 *
 * Letters: n tokens, D d_model, H heads, Dk d_kv, FF d_ff.
 */
#ifndef TS_SRC_TEXT_UMT5_H
#define TS_SRC_TEXT_UMT5_H

#include <stddef.h>
#include <stdint.h>

#include "../ctx.h"
#include "../safetensors.h"
#include "../status.h"

typedef struct umt5_config {
    int64_t vocab, dim, heads, d_kv, d_ff, layers;
    int buckets, max_distance;
    int shared_bias; /* 1: T5 (layer 0's table for every layer), 0: UMT5 (one per layer) */
    float eps;
} umt5_config;

typedef struct umt5_model umt5_model;

/* Named intermediates: "blocks.i" [n, D] after each block, for tests and probes. */
typedef void (*umt5_hook_fn)(void *user, const char *name, const float *data, int64_t n);

ts_status umt5_load(umt5_model **out, const char *path, ts_err *err);
/* Takes ownership of w (closed by umt5_free, or on failure). max_distance <= 0: 128. */
ts_status umt5_load_from(umt5_model **out, ts_weights *w, int max_distance, ts_err *err);
const umt5_config *umt5_model_config(const umt5_model *m);
void umt5_free(umt5_model *m); /* NULL is a no-op */
/* Hands the mapped weights' pages back to the kernel (ts_weights_release_all): the model
 * stays usable, and its next call faults them in again from the page cache (umt5-xxl: ~11 GB
 * a render would otherwise hold resident through the sampler and the VAE). NULL: nothing. */
void umt5_release(const umt5_model *m);

/* The relative-position bucket of rel = key − query (bidirectional), computed in float32
 * as the references do so that the bucket edges agree. */
int umt5_bucket(int64_t rel, int buckets, int max_distance);

/* The attended tokens of one attention-mask row [L] as transformers takes it, right padded:
 * its leading ones (0: all zeros), or -1 when a one follows a zero. */
int64_t umt5_mask_keys(const int32_t *mask, int64_t L);

/* Activation arena bytes umt5_encode needs for n tokens. */
size_t umt5_arena_bytes(const umt5_config *cfg, int64_t n);

/* out [n, D] = last hidden state for the n tokens ids, of which the first n_keys are
 * attended (the attention mask's ones; the rest are padding, whose rows the reference
 * computes too): every row equals transformers' last_hidden_state for that mask. Wan keeps
 * only the first n_keys rows, so it passes n = n_keys = the unpadded length. Ids outside
 * [0, vocab) are an error. Scratch from c->arena. */
ts_status umt5_encode(ts_ctx *c, const umt5_model *m, const int32_t *ids, int64_t n, int64_t n_keys,
                      float *out, umt5_hook_fn hook, void *hook_user, ts_err *err);

#endif
