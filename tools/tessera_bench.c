/*
 * tessera_bench.c — benchmark driver (a tool, not a test).
 *
 *   tessera-bench dit --model W.safetensors --inputs in.safetensors [--out out.safetensors]
 *                     [--threads N] [--repeats N] [--json] [--attn SCHEDULE] [--step S/N]
 *       one Wan DiT forward on inputs x [1,C,F,H,W], t [1], context [1,L,D]; prints the
 *       best time over the repeats (and the output, for checking against PyTorch). --attn: an
 *       attention schedule file (.json) or a METHOD[:k=v,...] spec, as the CLIs take, for the
 *       forward of denoising step S of N (--step, default 0/1: a schedule's rules on steps see
 *       that; its rules on timesteps see the inputs' t); its mean self-attention density goes
 *       in the report (1: the schedule ran dense there).
 *   tessera-bench vae --model W.safetensors --inputs in.safetensors [--threads N] [--json]
 *                     [--half-cache]
 *       Wan-VAE decode of latents [1,16,t,h,w] (frames streamed and dropped); prints the
 *       time and the process's peak RSS. --half-cache: fp16 conv caches (low memory).
 *
 *   tessera-bench text --model PATH --inputs in.safetensors [--out out.safetensors] [--threads N]
 *                      [--repeats N] [--json]
 *       the UMT5/T5 text encoder (a file, an index.json or a directory) on one prompt:
 *       input_ids [1,L] and attention_mask [1,L] (right padding). Times the forward over all L
 *       rows, as transformers computes them (best of the repeats after a first call, which
 *       faults the mapped weights in), and over the unpadded tokens alone, which is what the
 *       pipeline runs; --out: the L rows' output, "out" [1,L,D].
 *   tessera-bench t2v --model DIR --inputs noise.safetensors -p PROMPT [-n NEGATIVE] [--steps N]
 *                     [--cfg-scale S] [--flow-shift F] [--sampling-method unipc|euler]
 *                     [--out out.safetensors] [--threads N] [--json]
 *       the whole Wan pipeline of a checkpoint directory from the given initial noise
 *       [1,16,t,h,w] (so that it can be checked against diffusers' WanPipeline on the same
 *       noise): the prompts encoded (512 rows), the sampler, the VAE decode; each stage's time
 *       and the peak RSS. --out: "video" [T,H,W,3] in [0,1], as output_type="np" gives it.
 *   tessera-bench attn --grid T,H,W [--heads N] [--head-dim N] [--threads N] [--repeats N]
 *                      [--methods dense,dense-bf16,dense-bf16-dots,dense-bf16-fp16,gna,gna-tiled,clear,draft,paro,paro-fp32,
 *                                 sla,sla-paper,sla-sparse,METHOD@bf16]
 *                      [--densities 0.5,0.2,0.1,0.05] [--spec SCHEDULE]... [--json]
 *       self-attention over the T·H·W token grid (random q, k, v): the sgemm rate of the same
 *       run (and which of OpenBLAS's kernels ran it), dense, and each method set for each
 *       target density; time, effective GFLOP/s (4·N²·D·heads·density), speedup vs dense,
 *       achieved density, the fraction of 4-query x 16-key tiles and of blocks the kernel ran
 *       (tiles, the finest unit the AVX-512 kernel skips: a bound of 1 / tiles on the speedup
 *       at dense's rate per tile; both above density where blocks are partly masked), rel-L2
 *       error vs dense. dense-bf16: the dense plan on the same q, k, v
 *       rounded to bf16, on the path the backend takes for bf16 operands on this CPU (the spec
 *       says which); dense-bf16-dots / dense-bf16-fp16: the same on the AVX512-BF16 dots or
 *       the AVX512-FP16 products, where built. METHOD@bf16 (dense@bf16, gna@bf16, clear@bf16,
 *       draft@bf16, paro-fp32@bf16, ...): the method's spec with precision=bf16, the route a
 *       schedule takes (bf16 copies of q, k, v made in the call). sla / sla-paper: SLA with a
 *       random proj_l, its linear branch over all keys (TurboDiffusion's) or over the blocks
 *       not selected (the paper's); the density is the sparse branch's; sla-sparse: without
 *       proj_l (a model not trained for SLA), plain top-k block-sparse attention. --paired
 *       (for machines whose speed drifts from one second to the next): the sgemm is timed in
 *       turn with dense, and dense again in turn with every other method, best of each; ratios
 *       come from those pairs. --spec (up to 16): a row for each schedule as given, a file or a
 *       METHOD[:k=v,...] spec as the CLIs take (its rules see layer 0 of step 0 of 1), after the
 *       --methods rows (dense alone unless --methods says otherwise); SLA there takes the random
 *       proj_l.
 *   tessera-bench isa [--repeats N]
 *       one core's rate of each product instruction the attention kernel can use (AVX-512 fp32
 *       FMA, AVX512-BF16 dot, AVX512-VNNI int16 dot, AVX512-FP16 FMA; 12 independent
 *       accumulators), best of the repeats: which is why bf16 operands take the BF16 dots on
 *       AMD (ts_cpu_bf16_dots_fast), the fp16 products where AVX512-FP16 is built, and the
 *       fp32 tiles elsewhere.
 *
 * tools/bench/bench_dit.py, bench_vae.py, bench_umt5.py, bench_t2v.py and bench_attn.py make the inputs and run the
 * PyTorch side in the same run. Unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for benchmark
 * runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>
#include <math.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "blas_core.h"
#include "peak_rss.h"
#include "attention.h"
#include "backend.h"
#include "cpu/cpu_internal.h"
#include "ctx.h"
#include "dit/wan.h"
#include "paro.h"
#include "pipeline.h"
#include "schedule.h"
#include "safetensors.h"
#include "text/umt5.h"
#include "vae/wan_vae.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mb(void) { return ts_tool_peak_rss_mb(); }

static void usage(FILE *f) {
    fprintf(f, "usage: tessera-bench dit|vae|text --model FILE --inputs FILE [--out FILE] "
               "[--threads N] [--repeats N] [--json] [--half-cache (vae)] [--attn SCHEDULE (dit)]\n"
               "                          (text: the UMT5/T5 encoder on input_ids [1,L] and attention_mask [1,L])\n"
               "       tessera-bench t2v --model DIR --inputs noise.safetensors -p PROMPT [-n NEGATIVE] [--steps N]\n"
               "                         [--cfg-scale S] [--flow-shift F] [--sampling-method unipc|euler] [--out FILE]\n"
               "                         [--threads N] [--json]\n"
               "                          [--step S/N (dit: the denoising step the forward is, for the schedule)]\n"
               "       tessera-bench attn --grid T,H,W [--heads N] [--head-dim N] [--threads N] [--repeats N]\n"
               "                          [--methods dense,dense-bf16,dense-bf16-dots,dense-bf16-fp16,gna,gna-tiled,clear,draft,paro,\n"
               "                                     paro-fp32,sla,sla-paper,sla-sparse; METHOD@bf16: with precision=bf16]\n"
               "                          [--densities 0.5,0.2,0.1,0.05] [--spec SCHEDULE]... [--paired] [--json]\n"
               "       tessera-bench isa [--repeats N]\n");
}

typedef struct opts {
    const char *mode, *model, *inputs, *out;
    int threads, repeats, json, half_cache, paired;
    const char *grid, *methods, *densities;
    const char *specs[16]; /* attn: --spec, rows run as given */
    int n_specs;
    const char *attn; /* dit: a schedule file (.json) or a METHOD[:k=v,...] spec */
    int step, n_steps; /* dit: the denoising step the forward stands for (--step S/N) */
    int heads, head_dim;
    const char *prompt, *negative, *sampler; /* t2v */
    int steps;
    double cfg_scale, flow_shift;
} opts;

static int die(const char *what, const ts_err *e) {
    fprintf(stderr, "tessera-bench: %s: %s\n", what, e->msg);
    return 1;
}

static const ts_tensor *need(const ts_st_file *f, const char *name, int ndim) {
    const ts_tensor *t = ts_st_find(f, name);
    if (!t || t->ndim != ndim || t->dtype != TS_DTYPE_F32) {
        fprintf(stderr, "tessera-bench: inputs need F32 tensor '%s' with %d dims\n", name, ndim);
        return NULL;
    }
    return t;
}

static int bench_dit(const opts *o, ts_ctx *c) {
    ts_err e = {0};
    ts_st_file *in = NULL;
    if (ts_st_open(&in, o->inputs, &e) != TS_OK) return die("inputs", &e);
    const ts_tensor *x = need(in, "x", 5), *t = need(in, "t", 1), *ctxt = need(in, "context", 3);
    if (!x || !t || !ctxt) return 1;
    double t0 = now_s();
    wan_model *m = NULL;
    if (wan_load(&m, o->model, NULL, &e) != TS_OK) return die("load", &e);
    double t_load = now_s() - t0;
    const wan_config *cfg = wan_model_config(m);
    int64_t F = x->shape[2], H = x->shape[3], W = x->shape[4], L = ctxt->shape[1];
    ts_attn_schedule *sched = NULL;
    if (o->attn && ts_attn_schedule_open(&sched, o->attn, &e) != TS_OK) return die("--attn", &e);
    ts_arena arena;
    if (ts_arena_init(&arena, wan_arena_bytes(cfg, F, H, W, L)) != 0) {
        fprintf(stderr, "tessera-bench: cannot allocate the activation arena\n");
        return 1;
    }
    c->arena = &arena;
    size_t n_out = (size_t)(cfg->out_ch * F * H * W);
    float *out = malloc(n_out * sizeof *out);
    if (!out) return 1;
    double best = 1e30;
    for (int r = 0; r < o->repeats; r++) {
        if (sched) ts_attn_schedule_clear_records(sched);
        t0 = now_s();
        if (wan_forward(c, m, sched, o->step, o->n_steps, x->data, F, H, W, ((float *)t->data)[0], ctxt->data, L,
                        out, NULL, NULL, &e) != TS_OK)
            return die("forward", &e);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
        fprintf(stderr, "tessera-bench: dit forward %d/%d: %.3f s\n", r + 1, o->repeats, dt);
    }
    if (o->out) {
        int64_t shape[5] = {1, cfg->out_ch, F, H, W};
        ts_st_item item = {"out", ts_tensor_make(TS_DTYPE_F32, 5, shape, out)};
        if (ts_st_write(o->out, &item, 1, NULL, 0, &e) != TS_OK) return die("write", &e);
    }
    const double dens = ts_attn_schedule_mean_density(sched); /* 1 without one */
    if (o->json)
        printf("{\"load_s\": %.4f, \"forward_s\": %.4f, \"tokens\": %lld, \"threads\": %d, "
               "\"peak_rss_mb\": %.1f, \"attn\": \"%s\", \"attn_density\": %.5f}\n",
               t_load, best, (long long)(F * H * W / 4), c->n_threads, peak_rss_mb(), o->attn ? o->attn : "dense", dens);
    else
        printf("dit forward: %.3f s (load %.2f s), peak RSS %.0f MB, attention %s (density %.4f)\n", best, t_load,
               peak_rss_mb(), o->attn ? o->attn : "dense", dens);
    ts_attn_schedule_free(sched);
    free(out);
    ts_arena_free(&arena);
    wan_free(m);
    ts_st_close(in);
    return 0;
}

typedef struct frame_count {
    int64_t frames, H, W;
} frame_count;

static ts_status count_frames(void *user, const float *frames, int64_t first, int64_t n, int64_t H,
                              int64_t W, ts_err *err) {
    (void)frames;
    (void)err;
    frame_count *fc = user;
    if (first != fc->frames) return TS_ERR_INTERNAL;
    fc->frames += n;
    fc->H = H;
    fc->W = W;
    return TS_OK;
}

static int bench_vae(const opts *o, ts_ctx *c) {
    ts_err e = {0};
    ts_st_file *in = NULL;
    if (ts_st_open(&in, o->inputs, &e) != TS_OK) return die("inputs", &e);
    const ts_tensor *z = need(in, "latents", 5);
    if (!z) return 1;
    wan_vae *v = NULL;
    if (wan_vae_load(&v, o->model, &e) != TS_OK) return die("load", &e);
    wan_vae_set_half_cache(v, o->half_cache);
    frame_count fc = {0, 0, 0};
    double t0 = now_s();
    if (wan_vae_decode(c, v, z->data, z->shape[2], z->shape[3], z->shape[4], count_frames, &fc,
                       &e) != TS_OK)
        return die("decode", &e);
    double dt = now_s() - t0;
    if (o->json)
        printf("{\"decode_s\": %.3f, \"frames\": %lld, \"height\": %lld, \"width\": %lld, "
               "\"threads\": %d, \"peak_rss_mb\": %.1f}\n",
               dt, (long long)fc.frames, (long long)fc.H, (long long)fc.W, c->n_threads,
               peak_rss_mb());
    else
        printf("vae decode: %lld frames %lldx%lld in %.2f s, peak RSS %.0f MB\n",
               (long long)fc.frames, (long long)fc.H, (long long)fc.W, dt, peak_rss_mb());
    wan_vae_free(v);
    ts_st_close(in);
    return 0;
}

/* The text encoder on one prompt: input_ids [1, L] and attention_mask [1, L] (right padding;
 * none: every token). Times the forward over all L rows, as transformers computes them (the
 * first call apart: it faults the mapped weights in), and over the unpadded tokens only, which
 * is what the pipeline runs. */
static int bench_text(const opts *o, ts_ctx *c) {
    ts_err e = {0};
    ts_st_file *in = NULL;
    int32_t *ids = NULL, *mask = NULL;
    const ts_tensor *ti = NULL;
    umt5_model *m = NULL;
    float *out = NULL;
    ts_arena arena = {0};
    int rc = 1; /* every exit goes through done: nothing left open */
    if (ts_st_open(&in, o->inputs, &e) != TS_OK || ts_st_ids(in, "input_ids", 1, -1, -1, &ids, &ti, &e) != TS_OK) {
        die("inputs", &e);
        goto done;
    }
    if (ti->shape[0] != 1 || ti->shape[1] < 1) {
        fprintf(stderr, "tessera-bench: text takes one prompt: input_ids [1, L]\n");
        goto done;
    }
    const int64_t L = ti->shape[1];
    if (ts_st_ids(in, "attention_mask", 0, 1, L, &mask, NULL, &e) != TS_OK) {
        die("inputs", &e);
        goto done;
    }
    const int64_t nk = mask ? umt5_mask_keys(mask, L) : L;
    if (nk <= 0) {
        fprintf(stderr, "tessera-bench: attention_mask must be ones, then zeros, with at least one one\n");
        goto done;
    }
    double t0 = now_s();
    if (umt5_load(&m, o->model, &e) != TS_OK) {
        die("load", &e);
        goto done;
    }
    const double t_load = now_s() - t0;
    const umt5_config *cfg = umt5_model_config(m);
    out = malloc((size_t)(L * cfg->dim) * sizeof *out);
    if (!out || ts_arena_init(&arena, umt5_arena_bytes(cfg, L)) != 0) {
        fprintf(stderr, "tessera-bench: out of memory for %lld tokens\n", (long long)L);
        goto done;
    }
    c->arena = &arena;
    double first = 0, best = 1e30, best_prompt = 1e30;
    for (int r = 0; r <= o->repeats; r++) { /* r = 0: the first call */
        t0 = now_s();
        if (umt5_encode(c, m, ids, L, nk, out, NULL, NULL, &e) != TS_OK) {
            die("forward", &e);
            goto done;
        }
        const double dt = now_s() - t0;
        if (r == 0) first = dt;
        else if (dt < best) best = dt;
        fprintf(stderr, "tessera-bench: text forward, %lld tokens, %s: %.3f s\n", (long long)L,
                r ? "again" : "first call", dt);
    }
    if (o->out) {
        int64_t shape[3] = {1, L, cfg->dim};
        ts_st_item item = {"out", ts_tensor_make(TS_DTYPE_F32, 3, shape, out)};
        if (ts_st_write(o->out, &item, 1, NULL, 0, &e) != TS_OK) {
            die("write", &e);
            goto done;
        }
    }
    for (int r = 0; r < o->repeats; r++) {
        t0 = now_s();
        if (umt5_encode(c, m, ids, nk, nk, out, NULL, NULL, &e) != TS_OK) {
            die("forward", &e);
            goto done;
        }
        const double dt = now_s() - t0;
        if (dt < best_prompt) best_prompt = dt;
    }
    if (o->json)
        printf("{\"load_s\": %.4f, \"first_s\": %.6f, \"forward_s\": %.6f, \"prompt_s\": %.6f, \"tokens\": %lld, "
               "\"prompt_tokens\": %lld, \"threads\": %d, \"peak_rss_mb\": %.1f}\n",
               t_load, first, best, best_prompt, (long long)L, (long long)nk, c->n_threads, peak_rss_mb());
    else
        printf("text forward: %lld tokens %.3f s (first call %.3f s, load %.2f s); the %lld unpadded tokens %.3f s; "
               "peak RSS %.0f MB\n",
               (long long)L, best, first, t_load, (long long)nk, best_prompt, peak_rss_mb());
    rc = 0;
done:
    c->arena = NULL;
    free(out);
    free(ids), free(mask);
    ts_arena_free(&arena);
    umt5_free(m);
    ts_st_close(in);
    return rc;
}

/* The whole pipeline from given noise: prompts, sampler, VAE decode (see the top). */
static int bench_t2v(const opts *o, ts_ctx *c) {
    ts_err e = {0};
    if (!o->prompt) {
        fprintf(stderr, "tessera-bench: t2v needs -p PROMPT\n");
        return 2;
    }
    ts_wan_params prm = ts_wan_params_default();
    if (o->sampler && ts_sampler_from_name(o->sampler, &prm.sampler) != 0) {
        fprintf(stderr, "tessera-bench: --sampling-method takes unipc or euler (got '%s')\n", o->sampler);
        return 2;
    }
    if (o->steps > 0) prm.steps = o->steps;
    if (o->cfg_scale > 0) prm.cfg_scale = (float)o->cfg_scale;
    if (o->flow_shift > 0) prm.flow_shift = o->flow_shift;
    ts_st_file *in = NULL;
    ts_wan_pipeline p;
    memset(&p, 0, sizeof p);
    float *pe = NULL, *ne = NULL, *lat = NULL, *frames = NULL, *rgb = NULL;
    int rc = 1; /* every exit from here goes through done: nothing left open */
    const ts_tensor *noise = NULL;
    if (ts_st_open(&in, o->inputs, &e) != TS_OK) {
        die("inputs", &e);
        goto done;
    }
    if (!(noise = need(in, "noise", 5))) goto done;
    const int64_t t = noise->shape[2], h = noise->shape[3], w = noise->shape[4];
    prm.frames = 1 + 4 * (t - 1), prm.height = 8 * h, prm.width = 8 * w;
    int64_t shape[4];
    if (ts_wan_latent_shape(&prm, shape, &e) != TS_OK) {
        die("noise", &e);
        goto done;
    }
    if (noise->shape[0] != 1 || noise->shape[1] != shape[0]) {
        fprintf(stderr, "tessera-bench: noise must be [1, %lld, t, h, w]\n", (long long)shape[0]);
        goto done;
    }
    double t0 = now_s();
    if (ts_wan_pipeline_open(&p, o->model, &e) != TS_OK) {
        die("load", &e);
        goto done;
    }
    const double t_load = now_s() - t0;
    if (!p.te) {
        fprintf(stderr, "tessera-bench: %s has no text encoder\n", o->model);
        goto done;
    }
    const int64_t L = ts_wan_text_len(&p, 512), D = wan_model_config(p.dit)->text_dim;
    const int64_t n = ts_tensor_numel(noise), T = prm.frames, H = prm.height, W = prm.width;
    pe = malloc((size_t)(L * D) * sizeof *pe), ne = malloc((size_t)(L * D) * sizeof *ne);
    lat = malloc((size_t)n * sizeof *lat), frames = malloc((size_t)(3 * T * H * W) * sizeof *frames);
    rgb = malloc((size_t)(3 * T * H * W) * sizeof *rgb);
    if (!pe || !ne || !lat || !frames || !rgb) {
        fprintf(stderr, "tessera-bench: out of memory\n");
        goto done;
    }
    int64_t n_pos = 0, n_neg = 0;
    t0 = now_s();
    const int guided = prm.cfg_scale != 1.0f;
    if (ts_wan_encode_prompt(c, &p, o->prompt, L, pe, &n_pos, &e) != TS_OK ||
        (guided && ts_wan_encode_prompt(c, &p, o->negative ? o->negative : "", L, ne, &n_neg, &e) != TS_OK)) {
        die("text", &e);
        goto done;
    }
    umt5_release(p.te); /* as tessera_generate does */
    const double t_text = now_s() - t0;
    t0 = now_s();
    if (ts_wan_generate(c, &p, &prm, pe, L, guided ? ne : NULL, L, noise->data, lat, NULL, NULL, &e) != TS_OK) {
        die("sample", &e);
        goto done;
    }
    const double t_sample = now_s() - t0;
    t0 = now_s();
    wan_vae_denormalize(p.vae, lat, t, h, w); /* the sampler's latents are normalised; the VAE takes raw ones */
    if (wan_vae_decode_to(c, p.vae, lat, t, h, w, frames, &e) != TS_OK) {
        die("decode", &e);
        goto done;
    }
    const double t_decode = now_s() - t0;
    if (o->out) { /* [3, T, H, W] in [-1, 1] → [T, H, W, 3] in [0, 1], as diffusers' postprocess_video */
        for (int64_t ch = 0; ch < 3; ch++)
            for (int64_t i = 0; i < T * H * W; i++) {
                const float v = frames[ch * T * H * W + i] * 0.5f + 0.5f;
                rgb[i * 3 + ch] = v < 0 ? 0 : v > 1 ? 1 : v;
            }
        int64_t vs[4] = {T, H, W, 3};
        ts_st_item item = {"video", ts_tensor_make(TS_DTYPE_F32, 4, vs, rgb)};
        if (ts_st_write(o->out, &item, 1, NULL, 0, &e) != TS_OK) {
            die("write", &e);
            goto done;
        }
    }
    if (o->json)
        printf("{\"load_s\": %.4f, \"text_s\": %.4f, \"sample_s\": %.4f, \"decode_s\": %.4f, \"total_s\": %.4f, "
               "\"prompt_tokens\": %lld, \"negative_tokens\": %lld, \"frames\": %lld, \"height\": %lld, "
               "\"width\": %lld, \"steps\": %d, \"threads\": %d, \"peak_rss_mb\": %.1f}\n",
               t_load, t_text, t_sample, t_decode, t_text + t_sample + t_decode, (long long)n_pos, (long long)n_neg,
               (long long)T, (long long)H, (long long)W, prm.steps, c->n_threads, peak_rss_mb());
    else
        printf("t2v %lldx%lld, %lld frames, %d steps: text %.2f s, sampling %.2f s, decode %.2f s (load %.2f s), "
               "peak RSS %.0f MB\n",
               (long long)W, (long long)H, (long long)T, prm.steps, t_text, t_sample, t_decode, t_load, peak_rss_mb());
    rc = 0;
done:
    free(pe), free(ne), free(lat), free(frames), free(rgb);
    ts_wan_pipeline_close(&p);
    ts_st_close(in);
    return rc;
}

/* ------------------------------------------------------------------ attention */

/* A synthetic PARO calibration for one layer of H heads on grid g at block density d (the
 * kernel's speed does not depend on which blocks a head keeps, only on how many): head h
 * in order h mod 6, each query block keeping the band of ~d·nb key blocks around its own. */
static int paro_file(const int64_t g[3], int64_t H, double d, char *path, size_t n) {
    snprintf(path, n, "/tmp/tessera-bench-paro-%ld-%.3f.safetensors", (long)getpid(), d);
    const int64_t N = g[0] * g[1] * g[2], nb = (N + 63) / 64;
    int64_t band = (int64_t)llround(d * (double)nb);
    if (band < 1) band = 1;
    int32_t *orders = malloc((size_t)H * sizeof *orders);
    uint8_t *m = calloc((size_t)(H * nb * nb), 1);
    if (!orders || !m) return free(orders), free(m), 0;
    for (int64_t h = 0; h < H; h++) {
        orders[h] = (int32_t)(h % TS_PARO_ORDERS);
        for (int64_t i = 0; i < nb; i++) {
            int64_t j0 = i - band / 2;
            if (j0 < 0) j0 = 0;
            if (j0 + band > nb) j0 = nb - band;
            for (int64_t j = j0; j < j0 + band; j++) m[(h * nb + i) * nb + j] = 1;
        }
    }
    ts_paro_desc pd = {{g[0], g[1], g[2]}, 64, 1, 1, (int)H, 1, d};
    ts_err e = {0};
    int ok = ts_paro_write(path, &pd, orders, m, NULL, 0, &e) == TS_OK;
    free(orders), free(m);
    return ok;
}

/* The --attn spec of method m at roughly density d on grid g (NULL: not reachable). */
static int spec_for(const char *m, double d, const int64_t g[3], int64_t H, char *buf, size_t n) {
    const char *at = strchr(m, '@');
    if (at && !strcmp(at, "@bf16")) { /* the method with precision=bf16 (the pipeline's route) */
        char base[64];
        snprintf(base, sizeof base, "%.*s", (int)(at - m), m);
        /* paro's INT8 Q·Kᵀ takes no bf16 operands: paro-fp32@bf16 (quant none) */
        if (!strcmp(base, "paro") || !spec_for(base, d, g, H, buf, n)) return 0;
        const size_t len = strlen(buf);
        return snprintf(buf + len, n - len, "%sprecision=bf16", strchr(buf, ':') ? "," : ":") < (int)(n - len);
    }
    if (at) return 0;
    if (!strcmp(m, "paro") || !strcmp(m, "paro-fp32")) {
        char path[256];
        if (!paro_file(g, H, d, path, sizeof path)) return 0;
        return snprintf(buf, n, "paro:calibration=%s,quant=%s", path, strcmp(m, "paro") ? "none" : "int8"), 1;
    }
    if (!strcmp(m, "dense")) return snprintf(buf, n, "dense"), 1;
    if (!strcmp(m, "gna")) { /* a window of volume ~ d · grid, scaled alike in every dim */
        double f = cbrt(d);
        int w[3];
        for (int i = 0; i < 3; i++) {
            w[i] = (int)lround(f * (double)g[i]);
            if (w[i] < 1) w[i] = 1;
        }
        return snprintf(buf, n, "gna:window=%dx%dx%d,tile=1x8x8,block=64", w[0], w[1], w[2]), 1;
    }
    if (!strcmp(m, "gna-tiled")) {
        /* GNA's "perfectly block-sparse" setting (its paper's speed runs): stride = the 1x8x8
         * tile, H and W windows odd multiples of 8 so each stride group's window starts on a
         * tile edge, and the frame window picked so the volume is nearest d · grid */
        int best[3] = {0, 0, 0};
        double err = 1e30;
        for (int wh = 8; wh <= g[1]; wh += 16)
            for (int ww = 8; ww <= g[2]; ww += 16)
                for (int wt = 1; wt <= g[0]; wt++) {
                    double f = (double)wt * wh * ww / ((double)g[0] * (double)g[1] * (double)g[2]);
                    double e = fabs(log(f / d)) + 1e-3 * fabs(log((double)wh / ww)); /* ties: squarer */
                    if (e < err) err = e, best[0] = wt, best[1] = wh, best[2] = ww;
                }
        if (!best[0] || err > log(1.5)) return 0; /* the grid is too small for 8x8 windows */
        return snprintf(buf, n, "gna:window=%dx%dx%d,stride=1x8x8,tile=1x8x8,block=64", best[0], best[1], best[2]), 1;
    }
    if (!strcmp(m, "clear")) { /* same frame only: at most 1/T; a circle of area d·T·H·W */
        double area = d * (double)g[0] * (double)g[1] * (double)g[2];
        if (d * (double)g[0] > 0.8) return 0;
        return snprintf(buf, n, "clear:radius=%.2f,tile=1x8x8,block=64", sqrt(area / M_PI)), 1;
    }
    if (!strcmp(m, "draft")) return snprintf(buf, n, "draft:pool=8x16,sparsity=%.3f", 1.0 - d), 1;
    /* SLA with a random proj_l (bench_attn): its linear branch over all keys (TurboDiffusion)
     * or over the unselected blocks (the paper) */
    if (!strcmp(m, "sla") || !strcmp(m, "sla-sparse")) return snprintf(buf, n, "sla:topk=%.3f", d), 1;
    if (!strcmp(m, "sla-paper")) return snprintf(buf, n, "sla:topk=%.3f,variant=complement", d), 1;
    return 0;
}

/* A pause between timings taken in turn: OpenBLAS's threads keep spinning for a while after
 * an sgemm (and OpenMP's after a parallel region), and would take the other's cores. */
static void settle(void) {
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static double sgemm_time(ts_ctx *c, int S, const float *a, const float *b, float *cc) {
    openblas_set_num_threads(c->n_threads);
    settle();
    double t0 = now_s();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, S, S, S, 1.0f, a, S, b, S, 0.0f, cc, S);
    double dt = now_s() - t0;
    settle();
    return dt;
}

static void print_sgemm(const opts *o, const ts_ctx *c, int S, double best) {
    double gf = 2.0 * S * S * (double)S / best * 1e-9;
    if (o->json)
        printf("{\"kind\": \"sgemm\", \"size\": %d, \"threads\": %d, \"blas_core\": \"%s\", \"gflops\": %.2f, "
               "\"paired\": %s}\n", S, c->n_threads, tessera_blas_core(), gf, o->paired ? "true" : "false");
    else
        printf("sgemm %dx%dx%d, %d threads, OpenBLAS %s kernels: %.1f GFLOP/s%s\n", S, S, S, c->n_threads,
               tessera_blas_core(), gf, o->paired ? " (paired)" : "");
    fflush(stdout);
}

/* rel-L2 of x against ref */
static double rel_l2(const float *x, const float *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double dd = (double)x[i] - ref[i];
        num += dd * dd, den += (double)ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* s as a JSON string. */
static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        const unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 0x20) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}

/* One row of the attention table; sgemm_gf >= 0 also goes in the JSON row as sgemm_gflops.
 * speedup and err < 0: not measured (no "dense" ran before this method). */
typedef struct attn_row {
    const char *method, *spec;
    double target, time_s, speedup, density, err, sgemm_gf, blocks, tiles;
} attn_row;

static void print_attn_row(const opts *o, const ts_ctx *c, int64_t N, const int64_t g[3], int64_t H, int64_t D,
                           const attn_row *r) {
    const double gf = 4.0 * (double)N * (double)N * (double)D * (double)H * r->density / r->time_s * 1e-9;
    if (o->json) {
        printf("{\"kind\": \"attn\", \"method\": \"%s\", \"spec\": ", r->method);
        json_str(r->spec); /* --spec: a file name as given */
        printf(", \"target_density\": ");
        if (r->target >= 0) printf("%.3f, ", r->target);
        else printf("null, ");
        printf("\"tokens\": %lld, \"grid\": [%lld, %lld, %lld], \"heads\": %lld, \"head_dim\": %lld, "
               "\"threads\": %d, \"time_s\": %.5f, \"gflops\": %.2f, \"density\": %.5f, \"block_density\": %.5f, "
               "\"tile_density\": %.5f",
               (long long)N, (long long)g[0], (long long)g[1], (long long)g[2],
               (long long)H, (long long)D, c->n_threads, r->time_s, gf, r->density, r->blocks, r->tiles);
        if (r->speedup >= 0) printf(", \"speedup\": %.3f, \"rel_err\": %.3e", r->speedup, r->err);
        else printf(", \"speedup\": null, \"rel_err\": null");
        if (r->sgemm_gf >= 0) printf(", \"sgemm_gflops\": %.2f", r->sgemm_gf);
        printf("}\n");
    } else {
        char sp[16] = "-", er[16] = "-";
        if (r->speedup >= 0) snprintf(sp, sizeof sp, "%.2f", r->speedup), snprintf(er, sizeof er, "%.2e", r->err);
        printf("%-8s %-44s %9.4f %9.1f %8s %8.4f %8.4f %8.4f %9s\n", r->method, r->spec, r->time_s, gf, sp,
               r->density, r->tiles, r->blocks, er);
    }
    fflush(stdout);
}

/* The dense plan on q, k, v rounded to bf16, through the backend (dense-bf16) or on the BF16
 * dots (dense-bf16-dots); rel-L2 vs the fp32 dense output (ref, from an earlier "dense" in
 * --methods; not measured without one). --paired: the sgemm in turn with it (its rate goes in
 * the row as sgemm_gflops). */
static int bench_dense_bf16(const opts *o, ts_ctx *c, const char *m, int64_t N, int64_t H, int64_t D,
                            const int64_t g[3], const float *q, const float *k, const float *v, const float *ref,
                            float *out, double t_dense, int S, const float *sa, const float *sb, float *sc) {
    const int64_t n = N * H * D;
    ts_attn_plan p = ts_attn_plan_dense(N, N, H, D, TS_ATTN_BLK_Q, TS_ATTN_BLK_K);
    p.in_bf16 = 1;
    const int path = !strcmp(m, "dense-bf16-dots")   ? TS_ATTN_PATH_BF16
                     : !strcmp(m, "dense-bf16-fp16") ? TS_ATTN_PATH_FP16
                                                     : TS_ATTN_PATH_BEST;
    const int runs = ts_cpu_attn_runs(&p, path);
    if (runs < 0) {
        if (!o->json)
            printf("%-8s (this build has no %s)\n", m, path == TS_ATTN_PATH_FP16 ? "AVX512-FP16" : "AVX512-BF16 dots");
        return 0;
    }
    uint16_t *b = malloc((size_t)(3 * n) * 2);
    if (!b) return fprintf(stderr, "tessera-bench: out of memory\n"), 1;
    for (int64_t i = 0; i < n; i++)
        b[i] = ts_f32_to_bf16(q[i]), b[n + i] = ts_f32_to_bf16(k[i]), b[2 * n + i] = ts_f32_to_bf16(v[i]);
    double best = 1e30, sg = 1e30;
    for (int r = 0; r < o->repeats + 1; r++) {
        if (o->paired) {
            double dt = sgemm_time(c, S, sa, sb, sc);
            if (r > 0 && dt < sg) sg = dt;
        }
        double t0 = now_s();
        ts_status st = path != TS_ATTN_PATH_BEST ? ts_cpu_attn_path(c, &p, b, b + n, b + 2 * n, out, path)
                                                 : c->backend->attn(c, &p, b, b + n, b + 2 * n, out);
        double dt = now_s() - t0;
        if (st != TS_OK) {
            free(b);
            return fprintf(stderr, "tessera-bench: %s: %s\n", m, ts_status_str(st)), 1;
        }
        if (r > 0 && dt < best) best = dt;
    }
    free(b);
    const char *how = runs == TS_ATTN_RUN_BF16   ? "dense, bf16 q/k/v, bf16 dots"
                      : runs == TS_ATTN_RUN_FP16 ? "dense, bf16 q/k/v, fp16 products"
                      : runs == TS_ATTN_RUN_AVX512 ? "dense, bf16 q/k/v, fp32 avx512 tiles"
                      : runs == TS_ATTN_RUN_AVX2 ? "dense, bf16 q/k/v, fp32 avx2 tiles"
                                                 : "dense, bf16 q/k/v, sgemm";
    const attn_row row = {m, how, 1.0, best, t_dense > 0 ? t_dense / best : -1, 1.0,
                          t_dense > 0 ? rel_l2(out, ref, n) : -1, o->paired ? 2.0 * S * S * (double)S / sg * 1e-9 : 0.0,
                          1.0, 1.0};
    print_attn_row(o, c, N, g, H, D, &row);
    return 0;
}

/* What the rows of one attention benchmark share: the shape, the random q, k, v (and SLA's
 * proj_l), dense's output (ref) and time (t_dense, 0 before dense ran), the sgemm operands
 * for --paired and its best time, and the call site. */
typedef struct attn_run {
    int64_t N, H, D, g[3];
    const float *q, *k, *v, *proj;
    float *ref, *out;
    int S;
    const float *sa, *sb;
    float *sc;
    double t_dense, sg_best;
    ts_attn_site site;
} attn_run;

/* One row: schedule s (opened from sched, a file or a METHOD[:k=v,...] spec) timed over the
 * repeats, the first run (which builds static plans) left out; lin: SLA's linear branch
 * through the random proj_l. "dense" keeps its output and time for the rows after it. */
static int bench_schedule(const opts *o, ts_ctx *c, attn_run *a, const char *m, const char *sched,
                          ts_attn_schedule *s, double target, int lin) {
    const int64_t N = a->N, H = a->H, D = a->D;
    ts_err e = {0};
    a->site.lin_w = lin ? a->proj : NULL, a->site.lin_b = lin ? a->proj + D * D : NULL;
    double best = 1e30, density = 1, blocks = 1, tiles = 1, pair_best = 1e30;
    const int is_dense = !strcmp(m, "dense");
    float *dst = is_dense ? a->ref : a->out;
    int rc = 0;
    for (int r = 0; r < o->repeats + 1 && !rc; r++) {
        if (o->paired && is_dense) {
            double dt = sgemm_time(c, a->S, a->sa, a->sb, a->sc);
            if (r > 0 && dt < a->sg_best) a->sg_best = dt;
        } else if (o->paired && a->t_dense > 0) { /* dense again, right before */
            double t0 = now_s();
            if (ts_attention(c, NULL, &a->site, N, N, H, D, a->q, a->k, a->v, a->ref, &e) != TS_OK) {
                rc = die("dense", &e);
                break;
            }
            double dt = now_s() - t0;
            if (r > 0 && dt < pair_best) pair_best = dt;
        }
        ts_attn_schedule_clear_records(s);
        double t0 = now_s();
        if (ts_attention(c, s, &a->site, N, N, H, D, a->q, a->k, a->v, dst, &e) != TS_OK) {
            rc = die(sched, &e);
            break;
        }
        double dt = now_s() - t0;
        if (r > 0 && dt < best) best = dt;
        density = ts_attn_schedule_mean_density(s);
        blocks = ts_attn_schedule_mean_block_density(s);
        tiles = ts_attn_schedule_mean_tile_density(s);
    }
    if (rc) return rc;
    if (o->paired && is_dense) print_sgemm(o, c, a->S, a->sg_best);
    if (is_dense) a->t_dense = best;
    const double td = a->t_dense;
    const attn_row row = {m, sched, target, best, td > 0 ? (pair_best < 1e30 ? pair_best : td) / best : -1, density,
                          td > 0 ? rel_l2(dst, a->ref, N * H * D) : -1, -1, blocks, tiles};
    print_attn_row(o, c, N, a->g, H, D, &row);
    return 0;
}

static int bench_attn(const opts *o, ts_ctx *c) {
    int64_t g[3];
    if (!o->grid || sscanf(o->grid, "%lld,%lld,%lld", (long long *)&g[0], (long long *)&g[1], (long long *)&g[2]) != 3 ||
        g[0] < 1 || g[1] < 1 || g[2] < 1) {
        fprintf(stderr, "tessera-bench attn: --grid T,H,W is required\n");
        return 2;
    }
    ts_attn_schedule *spec_s[sizeof o->specs / sizeof o->specs[0]] = {NULL};
    for (int i = 0; i < o->n_specs; i++) { /* a bad --spec before any work (the message names it) */
        ts_err e = {0};
        if (ts_attn_schedule_open(&spec_s[i], o->specs[i], &e) != TS_OK) {
            for (int j = 0; j < i; j++) ts_attn_schedule_free(spec_s[j]);
            return fprintf(stderr, "tessera-bench: %s\n", e.msg), 1;
        }
    }
    const int64_t N = g[0] * g[1] * g[2], H = o->heads > 0 ? o->heads : 12, D = o->head_dim > 0 ? o->head_dim : 128;
    const int64_t HD = H * D;
    /* q, k, v and the outputs from an arena, as the DiT's are (dit/wan.c): 64-byte aligned,
     * on huge pages from 32 MiB up (ts_alloc_big) */
    ts_arena ar;
    if (ts_arena_init(&ar, 5 * ((size_t)(N * HD) * 4 + 64)) != 0)
        return fprintf(stderr, "tessera-bench: out of memory\n"), 1;
    float *q = ts_arena_f32(&ar, N * HD), *k = ts_arena_f32(&ar, N * HD), *v = ts_arena_f32(&ar, N * HD);
    float *ref = ts_arena_f32(&ar, N * HD), *out = ts_arena_f32(&ar, N * HD);
    ts_rng_normal(&c->rng, q, N * HD);
    ts_rng_normal(&c->rng, k, N * HD);
    ts_rng_normal(&c->rng, v, N * HD);
    /* the sgemm rate this run reaches (all threads, a square 2048 problem; --paired: in turn
     * with dense, below) */
    enum { S = 2048 };
    float *sa = malloc((size_t)S * S * 4), *sb = malloc((size_t)S * S * 4), *sc = malloc((size_t)S * S * 4);
    if (!sa || !sb || !sc) return fprintf(stderr, "tessera-bench: out of memory\n"), 1;
    ts_rng_normal(&c->rng, sa, (int64_t)S * S);
    ts_rng_normal(&c->rng, sb, (int64_t)S * S);
    double sg_best = 1e30;
    if (!o->paired) {
        for (int r = 0; r < 3; r++) {
            double dt = sgemm_time(c, S, sa, sb, sc);
            if (dt < sg_best) sg_best = dt;
        }
        print_sgemm(o, c, S, sg_best);
    }
    if (!o->json)
        printf("%-8s %-44s %9s %9s %8s %8s %8s %8s %9s\n", "method", "spec", "time_s", "GFLOP/s", "speedup",
               "density", "tiles", "blocks", "rel_err");
    ts_attn_site site = {TS_ATTN_SELF, 0, 0, 1, {g[0], g[1], g[2]}, 500.0f, NULL, NULL, 0, 0};
    float *proj = malloc((size_t)(D * D + D) * 4); /* SLA's proj_l [D, D] and bias [D], random */
    if (!proj) return fprintf(stderr, "tessera-bench: out of memory\n"), 1;
    ts_rng_normal(&c->rng, proj, D * D + D);
    for (int64_t i = 0; i < D * D + D; i++) proj[i] *= (float)(1.0 / sqrt((double)D));
    char methods[256], dens[256];
    snprintf(methods, sizeof methods, "%s", o->methods ? o->methods : o->n_specs ? "dense" : "dense,gna,clear,draft");
    snprintf(dens, sizeof dens, "%s", o->densities ? o->densities : "0.5,0.2,0.1,0.05");
    attn_run a = {N, H, D, {g[0], g[1], g[2]}, q, k, v, proj, ref, out, S, sa, sb, sc, 0.0, sg_best, site};
    int rc = 0;
    char *save_m = NULL;
    for (char *m = strtok_r(methods, ",", &save_m); m && !rc; m = strtok_r(NULL, ",", &save_m)) {
        char dcopy[256], *save_d = NULL;
        snprintf(dcopy, sizeof dcopy, "%s", !strncmp(m, "dense", 5) ? "1" : dens);
        for (char *ds = strtok_r(dcopy, ",", &save_d); ds && !rc; ds = strtok_r(NULL, ",", &save_d)) {
            double target = atof(ds);
            char spec[320];
            if (!strcmp(m, "dense-bf16") || !strcmp(m, "dense-bf16-dots") || !strcmp(m, "dense-bf16-fp16")) {
                rc = bench_dense_bf16(o, c, m, N, H, D, g, q, k, v, ref, out, a.t_dense, S, sa, sb, sc);
                continue;
            }
            if (!spec_for(m, target, g, H, spec, sizeof spec)) {
                if (!o->json) printf("%-8s (density %.2f is out of this method's reach on this grid)\n", m, target);
                continue;
            }
            /* sla-sparse(@bf16): no proj_l */
            ts_attn_schedule *s = NULL;
            ts_err e = {0};
            if (ts_attn_schedule_open(&s, spec, &e) != TS_OK) rc = die(spec, &e);
            else rc = bench_schedule(o, c, &a, m, spec, s, target,
                                     !strncmp(spec, "sla:", 4) && strncmp(m, "sla-sparse", 10));
            ts_attn_schedule_free(s);
            if (!strncmp(spec, "paro:calibration=", 17)) { /* the synthetic calibration */
                char path[320];
                snprintf(path, sizeof path, "%s", spec + 17);
                if (strchr(path, ',')) *strchr(path, ',') = 0;
                remove(path);
            }
        }
    }
    for (int i = 0; i < o->n_specs && !rc; i++) rc = bench_schedule(o, c, &a, "spec", o->specs[i], spec_s[i], -1.0, 1);
    for (int i = 0; i < o->n_specs; i++) ts_attn_schedule_free(spec_s[i]);
    ts_arena_free(&ar);
    free(sa), free(sb), free(sc), free(proj);
    return rc;
}

#if defined(__AVX512F__)
/* 12 independent accumulators (more than any of these instructions' latency x issue rate
 * needs); the empty asm keeps them in registers and the loop from being folded. */
#define ISA_KEEP(a)                                                                                   \
    __asm__ volatile("" ::"v"(a[0]), "v"(a[1]), "v"(a[2]), "v"(a[3]), "v"(a[4]), "v"(a[5]), "v"(a[6]), \
                     "v"(a[7]), "v"(a[8]), "v"(a[9]), "v"(a[10]), "v"(a[11]))
#define ISA_12(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11)

/* Instructions a second (on the calling thread) of kind: 0 fp32 FMA, 1 BF16 dot, 2 int16 dot,
 * 3 fp16 FMA (AVX512-FP16: 32 lanes). */
static double isa_rate(int kind, long iters) {
    __m512 a[12];
    __m512i ai[12];
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps(1e-9f * (float)i), ai[i] = _mm512_set1_epi32(i);
    const __m512 x = _mm512_set1_ps(1.0001f), y = _mm512_set1_ps(0.9999f);
    const __m512i xi = _mm512_set1_epi32(0x00030002), yi = _mm512_set1_epi32(0x00010001);
    (void)xi, (void)yi;
    double t0 = now_s();
    if (kind == 0) {
#define ISA_FMA(k) a[k] = _mm512_fmadd_ps(x, y, a[k]);
        for (long i = 0; i < iters; i++) {
            ISA_12(ISA_FMA)
            ISA_KEEP(a);
        }
    } else if (kind == 1) {
#if defined(__AVX512BF16__)
        const __m512bh xb = (__m512bh)_mm512_set1_epi32(0x3f803f80), yb = (__m512bh)_mm512_set1_epi32(0x3f803f80);
#define ISA_BF(k) a[k] = _mm512_dpbf16_ps(a[k], xb, yb);
        for (long i = 0; i < iters; i++) {
            ISA_12(ISA_BF)
            ISA_KEEP(a);
        }
#else
        return 0;
#endif
    } else if (kind == 3) {
#if defined(__AVX512FP16__)
        __m512h ah[12];
        for (int i = 0; i < 12; i++) ah[i] = _mm512_set1_ph((_Float16)(1e-3f * (float)i));
        const __m512h xh = _mm512_set1_ph((_Float16)1.0f), yh = _mm512_set1_ph((_Float16)1e-4f);
#define ISA_FH(k) ah[k] = _mm512_fmadd_ph(xh, yh, ah[k]);
        for (long i = 0; i < iters; i++) {
            ISA_12(ISA_FH)
            ISA_KEEP(ah);
        }
        for (int i = 0; i < 12; i++) a[i] = _mm512_add_ps(a[i], _mm512_cvtxph_ps(_mm512_castph512_ph256(ah[i])));
#else
        return 0;
#endif
    } else {
#if defined(__AVX512VNNI__)
#define ISA_VNNI(k) ai[k] = _mm512_dpwssd_epi32(ai[k], xi, yi);
        for (long i = 0; i < iters; i++) {
            ISA_12(ISA_VNNI)
            ISA_KEEP(ai);
        }
#else
        return 0;
#endif
    }
    double dt = now_s() - t0;
    float sum = 0;
    for (int i = 0; i < 12; i++) sum += _mm512_reduce_add_ps(a[i]) + (float)_mm512_reduce_add_epi32(ai[i]);
    return sum == 12345.0f ? 0 : 12.0 * (double)iters / dt; /* uses the sums */
}
#endif

/* One core's rate of the attention kernel's product instructions, best of the repeats. */
static int bench_isa(const opts *o) {
#if defined(__AVX512F__)
    static const char *const name[4] = {"fp32 FMA (vfmadd231ps)", "bf16 dot (vdpbf16ps)", "int16 dot (vpdpwssd)",
                                        "fp16 FMA (vfmadd231ph)"};
    static const int ops[4] = {32, 64, 64, 64}; /* per instruction: 16 lanes x 2, x 2 products; 32 lanes x 2 */
    double best[4] = {0, 0, 0, 0};
    for (int r = 0; r < o->repeats; r++)
        for (int kd = 0; kd < 4; kd++) {
            double g = isa_rate(kd, 20000000) * 1e-9;
            if (g > best[kd]) best[kd] = g;
        }
    for (int kd = 0; kd < 4; kd++) {
        if (best[kd] <= 0) {
            fprintf(o->json ? stderr : stdout, "%-24s not built (the CPU or compiler lacks it)\n", name[kd]);
            continue;
        }
        if (o->json)
            printf("{\"kind\": \"isa\", \"instruction\": \"%s\", \"ginstr_per_s\": %.3f, \"gops\": %.2f}\n", name[kd],
                   best[kd], best[kd] * ops[kd]);
        else printf("%-24s %6.2f G/s  %7.1f G(FL)OP/s, zmm, one core\n", name[kd], best[kd], best[kd] * ops[kd]);
    }
    if (!o->json) {
        ts_attn_plan t = ts_attn_plan_dense(64, 64, 1, 64, 64, 64);
        t.in_bf16 = 1;
        const int run = ts_cpu_attn_runs(&t, TS_ATTN_PATH_BEST);
        printf("bf16 operands run the %s here\n", run == TS_ATTN_RUN_BF16   ? "BF16 dots (AMD)"
                                                  : run == TS_ATTN_RUN_FP16 ? "fp16 products (AVX512-FP16)"
                                                                            : "fp32 tiles");
    }
    return 0;
#else
    (void)o;
    fprintf(stderr, "tessera-bench isa: this build has no AVX-512\n");
    return 1;
#endif
}

int main(int argc, char **argv) {
    ts_tool_blas_core(argv);
    opts o = {0};
    o.repeats = 1, o.n_steps = 1;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    o.mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--json") == 0) {
            o.json = 1;
            continue;
        }
        if (strcmp(a, "--half-cache") == 0) {
            o.half_cache = 1;
            continue;
        }
        if (strcmp(a, "--paired") == 0) {
            o.paired = 1;
            continue;
        }
        if (!val) {
            fprintf(stderr, "tessera-bench: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--model") == 0) o.model = val;
        else if (strcmp(a, "--inputs") == 0) o.inputs = val;
        else if (strcmp(a, "--out") == 0) o.out = val;
        else if (strcmp(a, "--threads") == 0) o.threads = atoi(val);
        else if (strcmp(a, "--repeats") == 0) o.repeats = atoi(val);
        else if (strcmp(a, "--grid") == 0) o.grid = val;
        else if (strcmp(a, "--heads") == 0) o.heads = atoi(val);
        else if (strcmp(a, "--head-dim") == 0) o.head_dim = atoi(val);
        else if (strcmp(a, "--methods") == 0) o.methods = val;
        else if (strcmp(a, "--densities") == 0) o.densities = val;
        else if (strcmp(a, "--spec") == 0) {
            if (o.n_specs == (int)(sizeof o.specs / sizeof o.specs[0])) {
                fprintf(stderr, "tessera-bench: at most %d --spec\n", (int)(sizeof o.specs / sizeof o.specs[0]));
                return 2;
            }
            o.specs[o.n_specs++] = val;
        }
        else if (strcmp(a, "--attn") == 0) o.attn = val;
        else if (strcmp(a, "-p") == 0 || strcmp(a, "--prompt") == 0) o.prompt = val;
        else if (strcmp(a, "-n") == 0 || strcmp(a, "--negative-prompt") == 0) o.negative = val;
        else if (strcmp(a, "--steps") == 0) o.steps = atoi(val);
        else if (strcmp(a, "--cfg-scale") == 0) o.cfg_scale = atof(val);
        else if (strcmp(a, "--flow-shift") == 0) o.flow_shift = atof(val);
        else if (strcmp(a, "--sampling-method") == 0) o.sampler = val;
        else if (strcmp(a, "--step") == 0) {
            char tail;
            if (sscanf(val, "%d/%d%c", &o.step, &o.n_steps, &tail) != 2 || o.n_steps < 1 || o.step < 0 ||
                o.step >= o.n_steps) {
                fprintf(stderr, "tessera-bench: --step takes S/N with 0 <= S < N (got '%s')\n", val);
                return 2;
            }
        } else {
            fprintf(stderr, "tessera-bench: unknown flag %s\n", a);
            return 2;
        }
        i++;
    }
    ts_ctx c;
    ts_ctx_init(&c, 0);
    if (o.threads > 0) c.n_threads = o.threads;
    ts_workspace ws = {0}; /* as the library's handle keeps it (tessera_open) */
    c.ws = &ws;
    int rc = 2;
    if (strcmp(o.mode, "attn") == 0) rc = o.repeats < 1 ? 2 : bench_attn(&o, &c);
    else if (strcmp(o.mode, "isa") == 0) rc = o.repeats < 1 ? 2 : bench_isa(&o);
    else if (!o.model || !o.inputs || o.repeats < 1) usage(stderr);
    else if (strcmp(o.mode, "dit") == 0) rc = bench_dit(&o, &c);
    else if (strcmp(o.mode, "vae") == 0) rc = bench_vae(&o, &c);
    else if (strcmp(o.mode, "text") == 0) rc = bench_text(&o, &c);
    else if (strcmp(o.mode, "t2v") == 0) rc = bench_t2v(&o, &c);
    else fprintf(stderr, "tessera-bench: unknown mode '%s' (dit, vae, text, t2v, attn or isa)\n", o.mode);
    ts_workspace_free(&ws);
    return rc;
}
