#!/usr/bin/env python3
"""train_tiny.py — trains the bundled tiny text-to-video model (assets/tiny/) on CPU.

The model has Wan2.1's architecture and diffusers file layout, only small: a Wan-VAE
(AutoencoderKLWan, base_dim 8, 8x spatial and 4x temporal compression, 16 latent
channels), a UMT5 encoder (2 layers, d_model 64) with its own SentencePiece tokenizer, and
a Wan DiT (WanTransformer3DModel, 4 layers, 2 heads x 64, patch size (1, 1, 1), so a
96 x 96 x 17-frame clip is 5 x 12 x 12 = 720 tokens). Tessera runs it through the same code
as the real checkpoints.

Stages (all by default; each reads the previous ones' files from --work):
  tokenizer  SentencePiece unigram model over every caption the templates make, each caption
             word added as one piece
  vae        the VAE on crops: 48 x 48 single frames, then 64 x 64 9-frame clips (MSE + L1 + a
             small KL term)
  latents    encodes the training clips once; per-channel latent mean/std go to the VAE config
  dit        the text encoder and the DiT with the flow-matching objective (x_t = (1-s) x0 +
             s noise, target noise - x0, timestep 1000 s) on centred clips, captions dropped 10%
             of the time so classifier-free guidance works; a linear probe on the tokens after
             block 1 learns to read each token's frame, row and column, which teaches the
             DiT (relative positions only) where in the clip a token is (the probe is not
             exported); the weights' moving average is kept
  export     writes --out in the diffusers layout + tessera.json (its CLI defaults) and the
             example schedules for its grid (schedules/ here -> --out/../schedules), and the
             model card --out/README.md (its numbers also in work/card.json; work/results.md,
             the renders' measurements, goes in when it exists); paro-tiny.json then needs
             tessera-calibrate's --out/paro.safetensors

Fixed seeds and step counts: the same command on the same library versions gives the same
weights. evaluate.py reads a DiT checkpoint before the export: test_tiny's prompts sampled in
PyTorch and measured as the test measures them. Sized for a 2-core CPU (see assets/tiny/README.md for the measured times).

    .venv/bin/python tools/train-tiny/train_tiny.py --work /tmp/tiny --out assets/tiny
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402

S, FRAMES, CLIP_T = 96, 17, 5  # clip size, video frames, latent frames
TEXT_LEN = 32                  # prompt embeddings padded to this many rows (Wan: 512); the
                               # tokenizer_config's model_max_length tells Tessera
VAE_CFG = dict(base_dim=8, z_dim=16, dim_mult=[1, 2, 2, 2], num_res_blocks=1, attn_scales=[],
               temperal_downsample=[False, True, True], dropout=0.0)
TE_CFG = dict(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
              relative_attention_num_buckets=32, relative_attention_max_distance=128,
              feed_forward_proj="gated-gelu", dropout_rate=0.0, layer_norm_epsilon=1e-6,
              pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
              tie_word_embeddings=False, is_encoder_decoder=False)
DIT_CFG = dict(patch_size=(1, 1, 1), num_attention_heads=2, attention_head_dim=64, in_channels=16,
               out_channels=16, text_dim=64, freq_dim=256, ffn_dim=256, num_layers=4,
               cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
SHIFT = 3.0
POS_AUX_BLOCK = 1  # the block whose output the position probe reads (see stage_dit)
POS_CLASSES = (CLIP_T, S // 8, S // 8)  # what it reads: a token's latent frame, row, column


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def to_tensor(frames):
    """uint8 [F, S, S, 3] -> float [3, F, S, S] in [-1, 1]."""
    return torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1.0


def shape_pixels(x):
    """Bool [B, 1, F, H, W]: the shape's pixels of clips x [B, 3, F, H, W] (to_tensor's values).
    Pixel (0, 0) is always background (data.sample keeps the shape a pixel inside the frame)."""
    return (x - x[:, :, :1, :1, :1]).abs().sum(1, keepdim=True) > 0.1


def make_set(seed, n_video, n_image):
    rng = np.random.default_rng(seed)
    clips = [data.sample(rng, S, FRAMES, True, centred=True) for _ in range(n_video)]
    images = [data.sample(rng, S, 1, False, centred=True) for _ in range(n_image)]
    return clips, images


# ------------------------------------------------------------------ stages

def stage_tokenizer(a):
    import sentencepiece as spm
    import io
    model = io.BytesIO()
    caps = data.all_captions()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(caps * 4), model_writer=model, model_type="unigram", vocab_size=a.vocab,
        character_coverage=1.0, normalization_rule_name="nmt_nfkc", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        num_threads=1, shuffle_input_sentence=False, minloglevel=2, hard_vocab_limit=False)
    # SentencePiece's unigram trainer, on a corpus this small, keeps most words as runs of
    # single letters ("white" -> w h i t e), which leaves a 2-layer encoder to spell; every
    # caption word becomes one piece, scored above any spelling of it, so the encoder sees words
    from sentencepiece import sentencepiece_model_pb2 as pb
    proto = pb.ModelProto()
    proto.ParseFromString(model.getvalue())
    have = {p.piece for p in proto.pieces}
    for w in sorted({w for c in caps for w in c.split()}):
        if "\u2581" + w not in have:
            proto.pieces.add(piece="\u2581" + w, score=-1.0, type=pb.ModelProto.SentencePiece.NORMAL)
    proto.trainer_spec.vocab_size = len(proto.pieces)
    blob = proto.SerializeToString()
    with open(os.path.join(a.work, "spiece.model"), "wb") as f:
        f.write(blob)
    sp = spm.SentencePieceProcessor(model_proto=blob)
    log(f"tokenizer: {len(caps)} captions, vocab {sp.get_piece_size()}; "
        f"'{caps[0]}' -> {sp.encode(caps[0], out_type=str)}")


def vae_model():
    from diffusers import AutoencoderKLWan
    return AutoencoderKLWan(**VAE_CFG)


def decode_raw(vae, z):
    """AutoencoderKLWan._decode without its final clamp to [-1, 1] (a clamp passes no gradient
    to saturated pixels, and the decoder then stalls there)."""
    vae.clear_cache()
    x = vae.post_quant_conv(z)
    outs = []
    for i in range(z.shape[2]):
        vae._conv_idx = [0]
        outs.append(vae.decoder(x[:, :, i:i + 1], feat_cache=vae._feat_map, feat_idx=vae._conv_idx,
                                first_chunk=i == 0))
    vae.clear_cache()
    return torch.cat(outs, 2)


def causal_init(vae):
    """Starts the VAE as a per-frame model: the causal 3-D convolutions' taps on earlier frames
    are zero and the temporal resamplers pass a frame through (downsampling keeps the latest
    of each pair, upsampling repeats it). Single frames train only the current-frame taps (the
    earlier ones see the zero padding), so when the clips start, the model already
    reconstructs every frame and learns time from there instead of from random taps."""
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d, WanResample
    with torch.no_grad():
        for m in vae.modules():
            if isinstance(m, WanCausalConv3d) and m.kernel_size[0] == 3:
                m.weight[:, :, :2] = 0
        for m in vae.modules():
            if isinstance(m, WanResample) and hasattr(m, "time_conv"):
                w, c = m.time_conv.weight, m.time_conv.weight.shape[1]
                w.zero_(), m.time_conv.bias.zero_()
                for half in range(w.shape[0] // c):  # upsampling: 2 halves, each one output frame
                    w[half * c:(half + 1) * c, :, 2, 0, 0] = torch.eye(c)


def stage_vae(a):
    torch.manual_seed(a.seed)
    vae = vae_model().train()
    causal_init(vae)
    rng = np.random.default_rng(a.seed + 1)
    opt = torch.optim.AdamW(vae.parameters(), lr=a.vae_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / a.vae_steps)))
    t0, avg = time.time(), None
    for step in range(a.vae_steps):
        # single frames first (cheap: the spatial path), then 1 + 4 + 4-frame clips so the
        # causal time convolutions, their caches in the steady state (a chunk after a 4-frame
        # chunk) and the temporal up/downsampling learn too
        frames = 1 if step < a.vae_steps // 3 else 9
        batch = a.vae_batch if frames == 1 else max(1, a.vae_batch // 4)
        crop = a.vae_crop if frames == 1 else a.vae_clip_crop
        clips = [data.sample(rng, S, frames, frames > 1) for _ in range(batch)]
        x = torch.stack([to_tensor(f) for f, _, _ in clips])
        # the shape's pixels weigh 1 + vae_fg_weight: it covers a tenth of the frame, and an
        # unweighted loss fits the backgrounds and the bright colours first (red, green and
        # blue came back as the purple-grey mean after 2,200 steps)
        shape = shape_pixels(x)
        w = 1 + a.vae_fg_weight * shape.float()
        if crop < S:  # the VAE is convolutional (its attention is per latent frame): crops
            # train it; each crop holds its clip's shape (a background-only crop teaches little)
            xs, ws = [], []
            for b in range(len(clips)):
                ys, xs_ = np.nonzero(shape[b, 0, 0].numpy())  # the first frame's shape
                cy, cx = (int(ys.mean()), int(xs_.mean())) if len(ys) else (S // 2, S // 2)
                c = crop
                oy = int(np.clip(cy - c // 2 + rng.integers(-c // 4, c // 4 + 1), 0, S - c)) // 8 * 8
                ox = int(np.clip(cx - c // 2 + rng.integers(-c // 4, c // 4 + 1), 0, S - c)) // 8 * 8
                xs.append(x[b, :, :, oy:oy + c, ox:ox + c])
                ws.append(w[b, :, :, oy:oy + c, ox:ox + c])
            x, w = torch.stack(xs), torch.stack(ws)
        dist = vae.encode(x).latent_dist
        z = dist.mean
        if step > 100:  # a little latent noise, so the decoder tolerates the DiT's small errors
            z = z + 0.05 * z.detach().std() * torch.randn_like(z)
        rec = decode_raw(vae, z)
        mse = F.mse_loss(rec, x)
        l1 = (w * (rec - x).abs()).mean()
        kl = 0.5 * (dist.mean.pow(2) + dist.var - 1 - dist.logvar).mean()
        loss = (w * (rec - x) ** 2).mean() + l1 + a.vae_kl * kl
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        sched.step()
        avg = mse.item() if avg is None else 0.95 * avg + 0.05 * mse.item()
        if step % 50 == 0 or step == a.vae_steps - 1:
            log(f"vae step {step}/{a.vae_steps}: mse {mse.item():.5f} (avg {avg:.5f}) kl {kl.item():.3f} "
                f"({(time.time() - t0) / (step + 1):.2f} s/step)")
    torch.save(vae.state_dict(), os.path.join(a.work, "vae.pt"))
    json.dump({"vae_steps": a.vae_steps, "vae_final_mse_avg": avg, "vae_s": time.time() - t0},
              open(os.path.join(a.work, "vae_log.json"), "w"))


@torch.no_grad()
def stage_latents(a):
    vae = vae_model().eval()
    vae.load_state_dict(torch.load(os.path.join(a.work, "vae.pt")))
    clips, images = make_set(a.seed + 2, a.n_video, a.n_image)
    t0 = time.time()
    out = {}
    for name, items, frames in (("video", clips, FRAMES), ("image", images, 1)):
        lat = []
        for i in range(0, len(items), 16):
            x = torch.stack([to_tensor(f) for f, _, _ in items[i:i + 16]])
            lat.append(vae.encode(x).latent_dist.mean)
        out[name] = torch.cat(lat)
        out[name + "_captions"] = [c for _, c, _ in items]
    allz = torch.cat([out["video"].permute(1, 0, 2, 3, 4).reshape(16, -1),
                      out["image"].permute(1, 0, 2, 3, 4).reshape(16, -1)], 1)
    mean, std = allz.mean(1), allz.std(1)
    out["mean"], out["std"] = mean, std
    torch.save(out, os.path.join(a.work, "latents.pt"))
    # reconstruction error on held-out clips, through the pipeline's decode path
    rng = np.random.default_rng(a.seed + 99)
    x = torch.stack([to_tensor(data.sample(rng, S, FRAMES, True)[0]) for _ in range(8)])
    rec = vae.decode(vae.encode(x).latent_dist.mean).sample
    psnr = 10 * math.log10(4.0 / F.mse_loss(rec, x).item())
    shape = shape_pixels(x).expand_as(x)
    psnr_fg = 10 * math.log10(4.0 / (rec - x)[shape].pow(2).mean().item())
    log(f"latents: {len(clips)} clips + {len(images)} frames in {time.time() - t0:.0f} s; "
        f"latent std per channel {std.min().item():.3f}..{std.max().item():.3f}; held-out 17-frame PSNR {psnr:.1f} dB "
        f"(on the shape {psnr_fg:.1f} dB)")
    json.dump({"vae_psnr_17f_db": psnr, "vae_psnr_17f_shape_db": psnr_fg, "latents_s": time.time() - t0,
               "latents_mean": mean.tolist(), "latents_std": std.tolist()},
              open(os.path.join(a.work, "latents_log.json"), "w"))


def te_model(vocab):
    from transformers import UMT5Config, UMT5EncoderModel
    return UMT5EncoderModel(UMT5Config(vocab_size=vocab, **TE_CFG))


def dit_model():
    from diffusers import WanTransformer3DModel
    return WanTransformer3DModel(**DIT_CFG)


def encode_text(te, sp, captions):
    """Wan's prompt embeddings: the encoder's rows for the real tokens, zeros up to TEXT_LEN."""
    ids = [(sp.encode(c) + [1])[-TEXT_LEN:] for c in captions]  # + </s>
    L = max(len(i) for i in ids)
    tok = torch.zeros(len(ids), L, dtype=torch.long)
    mask = torch.zeros(len(ids), L, dtype=torch.long)
    for b, i in enumerate(ids):
        tok[b, :len(i)] = torch.tensor(i)
        mask[b, :len(i)] = 1
    h = te(tok, attention_mask=mask).last_hidden_state * mask[..., None]
    return F.pad(h, (0, 0, 0, TEXT_LEN - L))


def fg_weight(x0, w):
    """Per-position loss weights [B, 1, F, H, W]: 1 on the background, up to 1 + w on the shape.
    The shape covers a tenth of the frame, so an unweighted loss is mostly background and the
    text's colour and shape words are learnt last; here a position counts by how far its
    latent lies from its frame's background (the per-channel median of the frame)."""
    bg = x0.flatten(3).median(3).values[..., None, None]
    d = (x0 - bg).norm(dim=1, keepdim=True)
    return 1 + w * d / d.amax(dim=(3, 4), keepdim=True).clamp_min(1e-6)


def pos_loss(probe, h, grid):
    """Cross-entropy of the probe's reading of each token's (frame, row, column) from the
    hidden states h [B, F*H*W, D] (Wan's token order: frame, then row, then column)."""
    f, hh, ww = grid
    logits = probe(h).flatten(0, 1)
    pos = torch.arange(f * hh * ww)
    idx = [pos // (hh * ww), pos // ww % hh, pos % ww]
    idx = [i.repeat(h.shape[0]) for i in idx]
    parts = logits.split(list(POS_CLASSES), dim=1)
    return sum(F.cross_entropy(p, i) for p, i in zip(parts, idx)) / 3


def stage_dit(a):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(a.work, "spiece.model"))
    lat = torch.load(os.path.join(a.work, "latents.pt"))
    mean, std = lat["mean"].view(1, 16, 1, 1, 1), lat["std"].view(1, 16, 1, 1, 1)
    sets = {k: ((lat[k] - mean) / std, lat[k + "_captions"]) for k in ("video", "image")}
    torch.manual_seed(a.seed + 3)
    te, dit = te_model(sp.get_piece_size()).train(), dit_model().train()
    # Wan's DiT knows positions only relative to each other (3-D RoPE): from pure noise it
    # cannot tell the first latent frame from the last, so it draws every frame as the
    # clip's average, a moving shape as one that stands still. A linear probe on the tokens
    # after block POS_AUX_BLOCK is trained to read each token's frame, row and column, and
    # its loss makes the first blocks work them out (from where the grid's edges fall in
    # attention). The probe is training scaffolding: it is not part of the exported model.
    probe, hidden = None, {}
    if a.dit_pos_aux:
        torch.manual_seed(a.seed + 5)
        probe = torch.nn.Linear(DIT_CFG["num_attention_heads"] * DIT_CFG["attention_head_dim"], sum(POS_CLASSES))
        dit.blocks[POS_AUX_BLOCK].register_forward_hook(lambda m, i, o: hidden.__setitem__("h", o))
    params = list(te.parameters()) + list(dit.parameters()) + (list(probe.parameters()) if probe else [])
    opt = torch.optim.AdamW(params, lr=a.dit_lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / a.dit_steps))))
    # an exponential moving average of the weights is what gets exported: with batches this
    # small the raw weights are noisy, and the average samples cleaner
    import copy
    te_avg, dit_avg = copy.deepcopy(te).eval(), copy.deepcopy(dit).eval()
    avg_params = list(te_avg.parameters()) + list(dit_avg.parameters())
    params_avg = params[:len(avg_params)]  # the probe is not averaged
    g = torch.Generator().manual_seed(a.seed + 4)
    t0, ema = time.time(), None
    losses = []

    def save():  # the averaged weights (exported) and the raw ones
        torch.save({"te": te_avg.state_dict(), "dit": dit_avg.state_dict(), "te_raw": te.state_dict(),
                    "dit_raw": dit.state_dict()}, os.path.join(a.work, "dit.pt"))

    for step in range(a.dit_steps):
        kind = "image" if step % 5 == 4 else "video"
        x0s, caps = sets[kind]
        idx = torch.randint(0, len(caps), (a.dit_batch,), generator=g)
        x0 = x0s[idx]
        c = [caps[i] if torch.rand((), generator=g).item() > 0.1 else "" for i in idx.tolist()]
        u = torch.rand(a.dit_batch, generator=g)
        sigma = SHIFT * u / (1 + (SHIFT - 1) * u)
        if a.dit_uniform:  # the first part of the batch at unshifted noise levels (more low ones)
            k = int(round(a.dit_uniform * a.dit_batch))
            sigma = torch.cat([u[:k], sigma[k:]])
        noise = torch.randn(x0.shape, generator=g)
        s5 = sigma.view(-1, 1, 1, 1, 1)
        xt = (1 - s5) * x0 + s5 * noise
        ctx = encode_text(te, sp, c)
        v = dit(xt, sigma * 1000, ctx, return_dict=False)[0]
        loss = (fg_weight(x0, a.dit_fg_weight) * (v - (noise - x0)) ** 2).mean()
        aux = pos_loss(probe, hidden.pop("h"), x0.shape[2:]) if probe is not None else torch.zeros(())
        opt.zero_grad()
        (loss + a.dit_pos_aux * aux).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            d = min(a.dit_ema, (1 + step) / (10 + step))
            for pa, p in zip(avg_params, params_avg):
                pa.lerp_(p, 1 - d)
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        aux_ema = aux.item() if step == 0 else 0.98 * aux_ema + 0.02 * aux.item()
        losses.append(loss.item())
        if a.dit_save_every and step % a.dit_save_every == a.dit_save_every - 1:  # to look at early
            save()
        if step % 50 == 0 or step == a.dit_steps - 1:
            log(f"dit step {step}/{a.dit_steps}: loss {loss.item():.4f} (ema {ema:.4f}) "
                f"position probe {aux_ema:.3f} ({(time.time() - t0) / (step + 1):.2f} s/step)")
    save()
    json.dump({"dit_steps": a.dit_steps, "dit_loss_ema": ema, "dit_s": time.time() - t0,
               "dit_loss_first100": float(np.mean(losses[:100])), "dit_loss_last100": float(np.mean(losses[-100:])),
               "dit_pos_aux_ema": aux_ema},
              open(os.path.join(a.work, "dit_log.json"), "w"))


def stage_export(a):
    import shutil
    import sentencepiece as spm
    from safetensors.torch import save_file
    sp = spm.SentencePieceProcessor(model_file=os.path.join(a.work, "spiece.model"))
    os.makedirs(a.out, exist_ok=True)
    for d in ("transformer", "vae", "text_encoder", "tokenizer"):
        os.makedirs(os.path.join(a.out, d), exist_ok=True)
    latlog = json.load(open(os.path.join(a.work, "latents_log.json")))
    vae = vae_model()
    vae.load_state_dict(torch.load(os.path.join(a.work, "vae.pt")))
    vae.register_to_config(latents_mean=latlog["latents_mean"], latents_std=latlog["latents_std"])
    ck = torch.load(os.path.join(a.work, "dit.pt"))
    te, dit = te_model(sp.get_piece_size()), dit_model()
    te.load_state_dict(ck["te"])
    dit.load_state_dict(ck["dit"])
    meta = {"generator": "tools/train-tiny/train_tiny.py", "seed": str(a.seed),
            "torch": torch.__version__}

    def save(sd, path):
        save_file({k: v.detach().contiguous().float() for k, v in sd.items()}, path, metadata=meta)

    save(dit.state_dict(), os.path.join(a.out, "transformer", "diffusion_pytorch_model.safetensors"))
    save(vae.state_dict(), os.path.join(a.out, "vae", "diffusion_pytorch_model.safetensors"))
    save({k: v for k, v in te.state_dict().items() if k != "encoder.embed_tokens.weight"},
         os.path.join(a.out, "text_encoder", "model.safetensors"))
    dit.save_config(os.path.join(a.out, "transformer"))
    vae.save_config(os.path.join(a.out, "vae"))
    te.config.save_pretrained(os.path.join(a.out, "text_encoder"))
    shutil.copy(os.path.join(a.work, "spiece.model"), os.path.join(a.out, "tokenizer", "spiece.model"))
    json.dump({"extra_ids": 0, "model_max_length": TEXT_LEN, "tokenizer_class": "T5Tokenizer"},
              open(os.path.join(a.out, "tokenizer", "tokenizer_config.json"), "w"), indent=1)
    json.dump({"_class_name": "WanPipeline", "scheduler": ["diffusers", "UniPCMultistepScheduler"],
               "text_encoder": ["transformers", "UMT5EncoderModel"], "tokenizer": ["transformers", "T5Tokenizer"],
               "transformer": ["diffusers", "WanTransformer3DModel"], "vae": ["diffusers", "AutoencoderKLWan"]},
              open(os.path.join(a.out, "model_index.json"), "w"), indent=1)
    # the model's own CLI defaults, and the example schedules sized for its 5x12x12 grid
    here = os.path.dirname(os.path.abspath(__file__))
    shutil.copy(os.path.join(here, "tessera.json"), os.path.join(a.out, "tessera.json"))
    sched_dir = os.path.join(os.path.dirname(os.path.abspath(a.out)), "schedules")
    os.makedirs(sched_dir, exist_ok=True)
    for f in sorted(os.listdir(os.path.join(here, "schedules"))):
        shutil.copy(os.path.join(here, "schedules", f), os.path.join(sched_dir, f))
    card = {}
    for f in ("vae_log.json", "latents_log.json", "dit_log.json"):
        p = os.path.join(a.work, f)
        if os.path.exists(p):
            card.update(json.load(open(p)))
    card.pop("latents_mean", None), card.pop("latents_std", None)
    card.update({"vocab": sp.get_piece_size(), "n_video": a.n_video, "n_image": a.n_image, "seed": a.seed,
                 "vae_config": VAE_CFG, "te_config": TE_CFG, "dit_config": {k: list(v) if isinstance(v, tuple) else v
                                                                          for k, v in DIT_CFG.items()},
                 "params": {"vae_decoder": sum(p.numel() for n, p in vae.named_parameters() if "decoder" in n),
                            "text_encoder": sum(p.numel() for p in te.parameters()),
                            "transformer": sum(p.numel() for p in dit.parameters())},
                 "torch": torch.__version__})
    # the stages' own options (every one but where and how the script runs): what a whole run
    # with the defaults did, unless a stage was given others
    card["options"] = {k: v for k, v in vars(a).items()
                       if k not in ("work", "out", "stage", "threads", "dit_save_every")}
    json.dump(card, open(os.path.join(a.work, "card.json"), "w"), indent=1)
    write_card(a, card)
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(a.out) for f in fs)
    log(f"export: {a.out} ({size / 1e6:.1f} MB); card {a.out}/README.md, its numbers in {a.work}/card.json")


def write_card(a, c):
    """assets/tiny/README.md from the run's numbers (and work/results.md, the renders'
    measurements, when it exists)."""
    files = []
    for d, f in (("transformer", "diffusion_pytorch_model.safetensors"), ("vae", "diffusion_pytorch_model.safetensors"),
                 ("text_encoder", "model.safetensors"), ("tokenizer", "spiece.model")):
        files.append(f"| `{d}/{f}` | {os.path.getsize(os.path.join(a.out, d, f)) / 1e6:.2f} MB |")
    g = lambda k, fmt="{}": fmt.format(c[k]) if k in c else "(stage not run)"  # noqa: E731
    results = os.path.join(a.work, "results.md")
    lines = [
        "# The bundled tiny model", "",
        "A text-to-video model with Wan2.1's architecture and diffusers file layout, small enough",
        "to ship and to train on a 2-core CPU, so that Tessera renders something real where no",
        "checkpoint can be downloaded. It draws one shape (circle, square, triangle) of a named",
        "colour (red, green, blue, yellow, white) on a plain background (black, gray, purple),",
        "moving left, right, up, down or standing still, at 96x96, 17 frames; single frames for",
        "text-to-image. Tessera's CLIs use it when no `-m` is given (its own defaults are in",
        "`tessera.json`: 96x96, 17 frames, 25 UniPC steps, guidance 5, flow shift 3).", "",
        "Made by `tools/train-tiny/train_tiny.py` (PyTorch " + c["torch"] + ", diffusers / transformers",
        "classes, fixed seeds, 2 CPU threads):", "",
        "    .venv/bin/python tools/train-tiny/train_tiny.py --work /tmp/tiny --out assets/tiny", "",
        "(the defaults; " + (f"its stages took {(c['vae_s'] + c.get('latents_s', 0) + c['dit_s']) / 60:.0f} minutes in the run"
                             " that made these files, 2 threads" if "dit_s" in c else "stage times unknown")
        + "). Each stage also runs alone (`--stage`), reading the",
        "previous stages' files from --work.", "",
        "## Data", "",
        "`tools/train-tiny/data.py`: procedural clips, 96x96 x 17 frames, the shape moving 2 pixels a",
        "frame in the named direction. The VAE learns from shapes anywhere in the frame (size 0.13-0.19",
        "of it, half-extent); the DiT from paths centred in the frame"
        + (f" (within {data.CENTRED_JITTER * S:g} pixels)" if data.CENTRED_JITTER else "") + " and larger",
        "shapes (size " + "-".join(f"{v:g}" for v in sorted(set(data.CENTRED_SIZE)))
        + ", 6 latent pixels across, where the VAE keeps a triangle's",
        "corners), so that a caption " + ("all but fixes" if data.CENTRED_JITTER or len(set(data.CENTRED_SIZE)) > 1
                                          else "fixes") + " its clip and a model this small samples one",
        "coherent shape instead of a blend of layouts. Captions from templates, e.g. \"a red circle moving to the right on a gray",
        "background\" (the background phrase left out 30% of the time; the DiT's clips are then on "
        f"{data.DEFAULT_BG}). "
        f"{c['n_video']} clips and {c['n_image']} single frames for the",
        "DiT (seed + 2); the VAE draws fresh ones every step.", "",
        "## Components", "",
        "| part | config | parameters |", "|---|---|---|",
        f"| VAE (`AutoencoderKLWan`) | base_dim {VAE_CFG['base_dim']}, dim_mult {VAE_CFG['dim_mult']}, z {VAE_CFG['z_dim']}, "
        "8x spatial / 4x temporal | " + f"{c['params']['vae_decoder']:,} (decoder) |",
        f"| text encoder (`UMT5EncoderModel`) | d_model {TE_CFG['d_model']}, {TE_CFG['num_layers']} layers, "
        f"{TE_CFG['num_heads']} heads, vocab {c['vocab']} (own SentencePiece unigram, every caption word one piece) "
        f"| {c['params']['text_encoder']:,} |",
        f"| DiT (`WanTransformer3DModel`) | {DIT_CFG['num_layers']} layers, {DIT_CFG['num_attention_heads']} heads x "
        f"{DIT_CFG['attention_head_dim']}, ffn {DIT_CFG['ffn_dim']}, patch (1,1,1): 5x12x12 = 720 tokens a clip "
        f"| {c['params']['transformer']:,} |", "",
        "| file | size |", "|---|---|", *files, "",
        f"Prompts are padded to {TEXT_LEN} tokens (`tokenizer/tokenizer_config.json`'s model_max_length).",
        "The VAE's latents_mean / latents_std (`vae/config.json`) are the per-channel statistics of",
        "the training latents.", "",
        "## Training", "",
        f"1. VAE: {g('vae_steps')} AdamW steps (lr {a.vae_lr}, cosine to a tenth), MSE + L1 + {a.vae_kl} x KL,",
        f"   the shape's pixels weighted {1 + a.vae_fg_weight:g}x,",
        f"   the first third on {a.vae_crop}x{a.vae_crop} crops of single frames (batch {a.vae_batch}), then"
        f" {a.vae_clip_crop}x{a.vae_clip_crop}",
        f"   crops of 9-frame clips (batch {max(1, a.vae_batch // 4)}), the causal taps started at zero (a per-frame model);",
        f"   final training MSE (moving average) {g('vae_final_mse_avg', '{:.4f}')}; {g('vae_s', '{:.0f}')} s.",
        f"   Held-out 17-frame clips decode at {g('vae_psnr_17f_db', '{:.1f}')} dB PSNR "
        f"({g('vae_psnr_17f_shape_db', '{:.1f}')} dB on the shape's pixels).",
        f"2. Text encoder + DiT together: {g('dit_steps')} steps, batch {a.dit_batch}, AdamW lr {a.dit_lr}",
        "   (100-step warm-up, cosine), flow matching on the normalised latents (x_t = (1-s) x0 + s",
        f"   noise, s shifted by {SHIFT}" + (f" in {1 - a.dit_uniform:.0%} of each batch and uniform in the rest" if a.dit_uniform else "")
        + ", target noise - x0, timestep 1000 s; the squared error weighted up",
        f"   to {1 + a.dit_fg_weight:g}x on the shape, see fg_weight), every fifth batch single",
        "   frames, captions dropped 10% of the time (classifier-free guidance); the exported weights",
        f"   are the moving average of the trained ones (decay {a.dit_ema}).",
        *([f"   A linear probe on the tokens after block {POS_AUX_BLOCK} is trained with them to read each token's latent",
           f"   frame, row and column (cross-entropy, weight {a.dit_pos_aux:g}; final {g('dit_pos_aux_ema', '{:.3f}')},"
           f" {math.log(math.prod(POS_CLASSES)) / 3:.3f} is a guess):",
           "   the DiT's 3-D RoPE gives only relative positions, and without the probe the model",
           "   did not learn which latent frame a token is in, so it drew every frame as the clip's",
           "   average, a moving shape standing still. The probe is not exported."] if a.dit_pos_aux else []),
        f"   Loss: first 100 steps {g('dit_loss_first100', '{:.3f}')}, last 100 {g('dit_loss_last100', '{:.3f}')};"
        f" {g('dit_s', '{:.0f}')} s.", "",
        "## Renders", "",
    ]
    if os.path.exists(results):
        lines += open(results).read().rstrip().split("\n")
    else:
        lines += ["`meson test -C build tiny --verbose` renders 15 fixed prompts and measures colour, shape and",
                  "motion (tests/test_tiny.c)."]
    lines += ["", "PARO: `paro.safetensors` is this model's calibration for assets/schedules/paro-tiny.json,",
              "made with tessera-calibrate (the command is in the Renders section)."]
    with open(os.path.join(a.out, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", required=True, help="working directory (checkpoints, latents, logs)")
    ap.add_argument("--out", default="assets/tiny")
    ap.add_argument("--stage", default="all", choices=["all", "tokenizer", "vae", "latents", "dit", "export"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=96)
    ap.add_argument("--vae-steps", type=int, default=2200)
    ap.add_argument("--vae-batch", type=int, default=8)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--vae-kl", type=float, default=1e-4)
    ap.add_argument("--vae-fg-weight", type=float, default=4.0, help="extra loss weight on the shape's pixels")
    ap.add_argument("--vae-crop", type=int, default=48)
    ap.add_argument("--vae-clip-crop", type=int, default=64)
    ap.add_argument("--n-video", type=int, default=1200)
    ap.add_argument("--n-image", type=int, default=400)
    ap.add_argument("--dit-steps", type=int, default=7000)
    ap.add_argument("--dit-batch", type=int, default=4)
    ap.add_argument("--dit-lr", type=float, default=1e-3)
    ap.add_argument("--dit-fg-weight", type=float, default=4.0, help="extra loss weight on the shape (see fg_weight)")
    ap.add_argument("--dit-uniform", type=float, default=0.0,
                    help="fraction of each batch whose noise level is drawn unshifted")
    ap.add_argument("--dit-pos-aux", type=float, default=0.5,
                    help="weight of the position probe's loss (0: none; see stage_dit)")
    ap.add_argument("--dit-ema", type=float, default=0.998, help="decay of the exported weights' moving average")
    ap.add_argument("--dit-save-every", type=int, default=0, help="also write dit.pt every N steps")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.work, exist_ok=True)
    stages = ["tokenizer", "vae", "latents", "dit", "export"] if a.stage == "all" else [a.stage]
    for s in stages:
        t0 = time.time()
        globals()["stage_" + s](a)
        log(f"stage {s}: {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
