/*
 * wan_rename.h — diffusers → original Wan key renaming, written independently of the
 * models' name tables so tests can check those tables against it (header-only, tests).
 */
#ifndef TS_TESTS_WAN_RENAME_H
#define TS_TESTS_WAN_RENAME_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "st_variant.h"

static const char *const d2o[][2] = {
    {"condition_embedder.text_embedder.linear_1.", "text_embedding.0."},
    {"condition_embedder.text_embedder.linear_2.", "text_embedding.2."},
    {"condition_embedder.time_embedder.linear_1.", "time_embedding.0."},
    {"condition_embedder.time_embedder.linear_2.", "time_embedding.2."},
    {"condition_embedder.time_proj.", "time_projection.1."},
    {"proj_out.", "head.head."},
    {"attn1.to_out.0.", "self_attn.o."}, {"attn1.to_", "self_attn."}, {"attn1.", "self_attn."},
    {"attn2.to_out.0.", "cross_attn.o."}, {"attn2.to_", "cross_attn."}, {"attn2.", "cross_attn."},
    {"norm2.", "norm3."}, {"ffn.net.0.proj.", "ffn.0."}, {"ffn.net.2.", "ffn.2."},
    {"scale_shift_table", "modulation"},
};

/* Wan DiT: diffusers → original names (models.md §1.8). */
static inline void wan_dit_to_original(const char *in, char *out, size_t n) {
    if (strcmp(in, "scale_shift_table") == 0) {
        snprintf(out, n, "head.modulation");
        return;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", in);
    for (size_t i = 0; i < sizeof d2o / sizeof d2o[0]; i++) {
        char *p = strstr(buf, d2o[i][0]);
        if (!p) continue;
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%.*s%s%s", (int)(p - buf), buf, d2o[i][1], p + strlen(d2o[i][0]));
        snprintf(buf, sizeof buf, "%s", tmp);
    }
    snprintf(out, n, "%s", buf);
}

/* Wan VAE: diffusers → original names (models.md §2.7); nrb = residual blocks per level. */
static inline void wan_vae_to_original(const char *in, char *out, size_t n, int nrb) {
    char b[256];
    snprintf(b, sizeof b, "%s", in);
    struct { const char *d, *o; } r[] = {
        {"encoder.conv_in.", "encoder.conv1."}, {"decoder.conv_in.", "decoder.conv1."},
        {"quant_conv.", "conv1."}, {"post_quant_conv.", "conv2."},
        {"mid_block.resnets.0.", "middle.0."}, {"mid_block.attentions.0.", "middle.1."},
        {"mid_block.resnets.1.", "middle.2."}, {"norm_out.gamma", "head.0.gamma"},
        {"conv_out.", "head.2."}, {"encoder.down_blocks.", "encoder.downsamples."},
        {".norm1.gamma", ".residual.0.gamma"}, {".conv1.", ".residual.2."},
        {".norm2.gamma", ".residual.3.gamma"}, {".conv2.", ".residual.6."},
        {".conv_shortcut.", ".shortcut."},
    };
    int i, j, len;
    if (sscanf(b, "decoder.up_blocks.%d.resnets.%d.%n", &i, &j, &len) == 2) {
        char t[256];
        snprintf(t, sizeof t, "decoder.upsamples.%d.%s", i * (nrb + 2) + j, b + len);
        snprintf(b, sizeof b, "%s", t);
    } else if (sscanf(b, "decoder.up_blocks.%d.upsamplers.0.%n", &i, &len) == 1 && len > 0) {
        char t[256];
        snprintf(t, sizeof t, "decoder.upsamples.%d.%s", i * (nrb + 2) + nrb + 1, b + len);
        snprintf(b, sizeof b, "%s", t);
    }
    for (size_t k = 0; k < sizeof r / sizeof r[0]; k++) {
        if (!strcmp(r[k].d, "quant_conv.") || !strcmp(r[k].d, "post_quant_conv.")) {
            if (strncmp(b, r[k].d, strlen(r[k].d)) == 0) {
                char t[256];
                snprintf(t, sizeof t, "%s%s", r[k].o, b + strlen(r[k].d));
                snprintf(b, sizeof b, "%s", t);
                break;
            }
            continue;
        }
        char *p = strstr(b, r[k].d);
        if (!p) continue;
        /* residual-block renames only inside residual blocks */
        if (r[k].d[0] == '.' && !strstr(b, "samples.") && !strstr(b, "middle.0.") && !strstr(b, "middle.2."))
            continue;
        char t[256];
        snprintf(t, sizeof t, "%.*s%s%s", (int)(p - b), b, r[k].o, p + strlen(r[k].d));
        snprintf(b, sizeof b, "%s", t);
    }
    snprintf(out, n, "%s", b);
}

/* Copies the safetensors file src to dst with every name passed through rename(name,
 * out, n, arg) (arg: e.g. the VAE's residual blocks per level). Returns 0 on success. */
static inline int st_copy_renamed(const char *src, const char *dst,
                                  void (*rename)(const char *, char *, size_t, int), int arg) {
    return ts_test_write_variant(src, dst, &(ts_test_rewrite){.rename = rename, .rename_arg = arg});
}

/* transformers → Wan original names, written independently of the model's name table. */
static inline void t5_to_original(const char *in, char *out, size_t n) {
    int blk;
    char rest[200];
    if (strcmp(in, "shared.weight") == 0) snprintf(out, n, "token_embedding.weight");
    else if (strcmp(in, "encoder.final_layer_norm.weight") == 0) snprintf(out, n, "norm.weight");
    else if (sscanf(in, "encoder.block.%d.layer.0.%199s", &blk, rest) == 2) {
        if (strcmp(rest, "layer_norm.weight") == 0) snprintf(out, n, "blocks.%d.norm1.weight", blk);
        else if (strcmp(rest, "SelfAttention.relative_attention_bias.weight") == 0)
            snprintf(out, n, "blocks.%d.pos_embedding.embedding.weight", blk);
        else snprintf(out, n, "blocks.%d.attn.%s", blk, rest + strlen("SelfAttention."));
    } else if (sscanf(in, "encoder.block.%d.layer.1.%199s", &blk, rest) == 2) {
        if (strcmp(rest, "layer_norm.weight") == 0) snprintf(out, n, "blocks.%d.norm2.weight", blk);
        else if (strcmp(rest, "DenseReluDense.wi_0.weight") == 0) snprintf(out, n, "blocks.%d.ffn.gate.0.weight", blk);
        else if (strcmp(rest, "DenseReluDense.wi_1.weight") == 0) snprintf(out, n, "blocks.%d.ffn.fc1.weight", blk);
        else snprintf(out, n, "blocks.%d.ffn.fc2.weight", blk);
    } else snprintf(out, n, "%s", in);
}

static inline void t5_rename_cb(const char *in, char *out, size_t n, int unused) {
    (void)unused;
    t5_to_original(in, out, n);
}

static inline void wan_dit_rename_cb(const char *in, char *out, size_t n, int unused) {
    (void)unused;
    wan_dit_to_original(in, out, n);
}

#endif
