#!/usr/bin/env python3
"""make_umt5.py — golden fixtures for the UMT5 / T5 text encoders (transformers).

For each tiny config writes tests/fixtures/<name>.safetensors (weights, transformers key
names, fp32) and <name>_io.safetensors with:
  input_ids [B,L] (I32), attention_mask [B,L] (I32; batch 0 full, batch 1 padded),
  out [B,L,D] (last_hidden_state), blocks.i [B,L,D] (each encoder block's output).
The rows past a padded sequence's length are what the reference computes for pad
queries; Wan drops them, and so does the C test.

Also umt5_buckets.safetensors: the reference relative-position buckets
(UMT5Attention._relative_position_bucket, bidirectional) for key - query in [-600, 600]
at (num_buckets, max_distance) = (32, 128) (the real UMT5-XXL / T5-XXL) and (8, 20), as I32.
"""
import torch

from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel
from fixture import rerandomize, save

CONFIGS = {
    # transformers' UMT5 tester config (shared/docs/models.md §7), 8 buckets over 20
    # positions so that a 40-token input reaches the log-spaced and the clamped buckets
    "umt5_a": dict(cls="umt5", cfg=dict(vocab_size=99, d_model=32, d_kv=8, d_ff=37,
                                        num_layers=5, num_heads=4,
                                        relative_attention_num_buckets=8,
                                        relative_attention_max_distance=20),
                   L=40, len1=23),
    # inner dim (heads x d_kv = 64) != d_model (48); the real model's 32 buckets / 128
    "umt5_b": dict(cls="umt5", cfg=dict(vocab_size=300, d_model=48, d_kv=16, d_ff=64,
                                        num_layers=2, num_heads=4,
                                        relative_attention_num_buckets=32,
                                        relative_attention_max_distance=128),
                   L=160, len1=131),
    # T5 (v1.1 style, gated-gelu): one bias table in layer 0, shared by every layer
    "t5_c": dict(cls="t5", cfg=dict(vocab_size=120, d_model=32, d_kv=8, d_ff=40,
                                    num_layers=3, num_heads=4,
                                    relative_attention_num_buckets=32,
                                    relative_attention_max_distance=128),
                 L=50, len1=17),
}


def build(spec, seed):
    torch.manual_seed(seed)
    common = dict(feed_forward_proj="gated-gelu", dropout_rate=0.0, layer_norm_epsilon=1e-6,
                  pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                  tie_word_embeddings=False, is_encoder_decoder=False)
    if spec["cls"] == "umt5":
        m = UMT5EncoderModel(UMT5Config(**spec["cfg"], **common))
    else:
        m = T5EncoderModel(T5Config(**spec["cfg"], **common))
    m = m.eval()
    # T5's initializer_factor gives ~0 outputs; every parameter gets a seeded value
    rerandomize(m, seed)
    return m


def buckets(nb, md):
    cfg = UMT5Config(vocab_size=8, d_model=8, d_kv=2, d_ff=8, num_layers=1, num_heads=4,
                     relative_attention_num_buckets=nb, relative_attention_max_distance=md)
    attn = UMT5EncoderModel(cfg).encoder.block[0].layer[0].SelfAttention
    rel = torch.arange(-600, 601)
    return attn._relative_position_bucket(rel).to(torch.int32)


def main():
    torch.set_num_threads(2)
    for i, (name, spec) in enumerate(CONFIGS.items()):
        seed = 300 + i
        m = build(spec, seed)
        g = torch.Generator("cpu").manual_seed(seed)
        L, V = spec["L"], spec["cfg"]["vocab_size"]
        ids = torch.randint(2, V, (2, L), generator=g)
        mask = torch.ones(2, L, dtype=torch.int64)
        ids[0, -1] = 1                      # eos
        ids[1, spec["len1"] - 1] = 1
        ids[1, spec["len1"]:] = 0           # pad
        mask[1, spec["len1"]:] = 0
        inter = {}
        hs = []
        for bi, blk in enumerate(m.encoder.block):
            def h(_mod, _inp, out, key=f"blocks.{bi}"):
                # a tensor in transformers 5, a tuple (hidden, ...) before
                inter[key] = (out[0] if isinstance(out, tuple) else out).detach().clone()
            hs.append(blk.register_forward_hook(h))
        with torch.no_grad():
            out = m(input_ids=ids, attention_mask=mask).last_hidden_state
        for hk in hs:
            hk.remove()
        config = m.config.to_dict()
        for k in ("transformers_version", "_name_or_path", "architectures"):
            config.pop(k, None)
        config["model_class"] = type(m).__name__
        # encoder.embed_tokens is the shared table; save_pretrained writes it once, as "shared"
        sd = {k: v for k, v in m.state_dict().items() if k != "encoder.embed_tokens.weight"}
        save(f"{name}.safetensors", sd, seed, config, "make_umt5.py")
        save(f"{name}_io.safetensors",
             dict(input_ids=ids.to(torch.int32), attention_mask=mask.to(torch.int32), out=out,
                  **inter), seed, config, "make_umt5.py")
    save("umt5_buckets.safetensors", {"b32_128": buckets(32, 128), "b8_20": buckets(8, 20)},
         0, {"rel": "key - query in [-600, 600]"}, "make_umt5.py")


if __name__ == "__main__":
    main()
