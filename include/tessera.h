/*
 * tessera.h — Tessera's public C API.
 *
 * Tessera generates videos and images from text with diffusion transformers; every
 * attention call of the DiT is planned by a schedule. Today's model: Wan2.1 text-to-video
 * (an image is a one-frame video). The CLIs (tessera-t2v, tessera-t2i) are thin programs
 * over this API; any program can embed Tessera the same way:
 *
 *     tessera *t;  tessera_error e;
 *     tessera_model_files files = {.model_dir = "Wan2.1-T2V-1.3B-Diffusers"};
 *     if (tessera_open(&t, &files, 0, &e) != TESSERA_OK) { puts(e.msg); return 1; }
 *     tessera_params p;  tessera_params_init(&p);
 *     p.prompt = "a red circle moving to the right";
 *     tessera_output *o;
 *     if (tessera_generate(t, &p, NULL, NULL, &o, &e) == TESSERA_OK) {
 *         char *meta = tessera_format_parameters(t, &p, o);
 *         tessera_write(o, "out.mp4", meta, 16, NULL, 0, &e);
 *         free(meta);
 *         tessera_output_free(o);
 *     }
 *     tessera_close(t);
 *
 * Calls return a status and fill a tessera_error with one line naming the problem; the
 * library never exits. Internal modules (src/, dit/, vae/, samplers/, attention/) are not
 * part of this API. Link with pkg-config's `tessera`.
 */
#ifndef TESSERA_H
#define TESSERA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TESSERA_VERSION_MAJOR 0
#define TESSERA_VERSION_MINOR 1
#define TESSERA_VERSION_PATCH 0

/* "0.1.0" */
const char *tessera_version(void);

typedef enum tessera_status {
    TESSERA_OK = 0,
    TESSERA_ERR_INVALID_ARG, /* a parameter that cannot work */
    TESSERA_ERR_IO,          /* open/read/write failed */
    TESSERA_ERR_FORMAT,      /* a malformed file */
    TESSERA_ERR_SHAPE,       /* tensor or image sizes that do not fit together */
    TESSERA_ERR_MISSING,     /* a required file or tensor is absent */
    TESSERA_ERR_UNEXPECTED,  /* a tensor the model does not know */
    TESSERA_ERR_NOMEM,       /* out of memory */
    TESSERA_ERR_UNSUPPORTED, /* valid input this build cannot run */
    TESSERA_ERR_INTERNAL     /* a bug in Tessera */
} tessera_status;

typedef struct tessera_error {
    tessera_status code;
    char msg[512]; /* one line */
} tessera_error;

/* Where the model comes from: a checkpoint directory (diffusers layout with
 * model_index.json, or the original Wan layout) and/or explicit component files, each of
 * which overrides the directory's part. text_encoder and tokenizer go together. */
typedef struct tessera_model_files {
    const char *model_dir;
    const char *diffusion_model, *vae, *text_encoder, *tokenizer;
} tessera_model_files;

typedef enum tessera_sampler { TESSERA_SAMPLER_EULER = 0, TESSERA_SAMPLER_UNIPC = 1 } tessera_sampler;

typedef struct tessera_params {
    const char *prompt;          /* UTF-8; cleaned as the reference pipeline does */
    const char *negative_prompt; /* "" (diffusers' default) */
    int width, height;           /* multiples of 16 */
    int frames;                  /* 1 + 4k; 1 is an image */
    int steps;
    float cfg_scale;             /* 1 = no guidance (one DiT pass per step) */
    double flow_shift;
    tessera_sampler sampler;
    int64_t seed;                /* < 0: a random seed (reported in the output) */
    const char *attn_schedule;   /* attention schedule file (JSON rules; see
                                  * attention/schedule.h), or NULL */
    const char *attn;            /* or a one-rule schedule "METHOD[:k=v,...]", e.g.
                                  * "gna:window=3x7x7"; NULL with no schedule = dense */
    int text_len;                /* text tokens (512 for Wan2.1) */
    int attn_error;              /* 1: with a schedule, also run dense attention beside every
                                  * self-attention call and report each call's error against it
                                  * (tessera_output.attn_error; one more dense attention a call) */
} tessera_params;

/* Wan2.1 text-to-video defaults: 832x480, 81 frames, 50 UniPC steps, cfg 5, shift 5,
 * random seed, empty negative prompt, 512 text tokens. */
void tessera_params_init(tessera_params *p);
/* Applies the generation defaults a model directory names for itself (a tessera.json beside
 * model_index.json: width, height, frames, steps, cfg_scale, flow_shift, sampler, text_len)
 * over p's; a directory without one leaves p as it is. The bundled tiny model has one. */
tessera_status tessera_model_defaults(const char *model_dir, tessera_params *p, tessera_error *err);
/* The bundled tiny model's directory (assets/tiny of the source tree Tessera was built
 * from, else the installed copy), or NULL when neither is there. */
const char *tessera_bundled_model(void);
const char *tessera_sampler_name(tessera_sampler s);
/* "euler" / "unipc" → 0, unknown → -1. */
int tessera_sampler_from_name(const char *name, tessera_sampler *out);

typedef enum tessera_stage {
    TESSERA_STAGE_TEXT = 0, /* encoding the prompts: done/total prompts */
    TESSERA_STAGE_SAMPLE,   /* denoising: done/total steps */
    TESSERA_STAGE_DECODE    /* VAE decode: done/total frames */
} tessera_stage;
typedef void (*tessera_progress_fn)(void *user, tessera_stage stage, int done, int total);

typedef struct tessera_output {
    int frames, width, height;
    uint8_t *rgb;             /* [frames][height][width][3] */
    int64_t seed;             /* the seed used */
    double text_s, sample_s, decode_s;
    int n_steps;
    double *step_s;           /* [n_steps] seconds per denoising step */
    int attn_layers;          /* DiT layers */
    double *attn_density;     /* [n_steps][attn_layers]: fraction of the self-attention
                               * scores computed (1 = dense), averaged over the guidance passes */
    double attn_mean;         /* mean of attn_density */
    double *attn_error;       /* with params.attn_error and a schedule, [n_steps][attn_layers]: the
                               * self-attention output's relative L2 error against dense attention
                               * on the same inputs (0 where dense ran), averaged over the guidance
                               * passes; else NULL */
    double attn_error_mean;   /* mean of attn_error (-1 when it is NULL) */
    char *notes;              /* what the run did that the user should know of, a line each
                               * ("\n" after each), or NULL: e.g. an SLA schedule on a model
                               * without SLA's proj_l weights ran plain top-k block-sparse */
} tessera_output;

typedef struct tessera tessera;

/* Loads every component (weights stay memory-mapped in their dtype). threads <= 0: all
 * cores. Missing files, wrong model types and mismatched components are errors. */
tessera_status tessera_open(tessera **out, const tessera_model_files *files, int threads,
                            tessera_error *err);
void tessera_close(tessera *t); /* NULL is a no-op */
/* A short model name for metadata (the checkpoint directory's or file's base name). */
const char *tessera_model_name(const tessera *t);
/* Every check tessera_generate makes before heavy work: sizes, frames, steps, scales,
 * prompt encoding, the attention schedule (loaded and validated; with t, also against the
 * model and the video size, e.g. a PARO calibration's grid, heads and layers). t may be NULL. */
tessera_status tessera_check(const tessera *t, const tessera_params *p, tessera_error *err);
tessera_status tessera_generate(tessera *t, const tessera_params *p, tessera_progress_fn progress,
                                void *user, tessera_output **out, tessera_error *err);
void tessera_output_free(tessera_output *o); /* NULL is a no-op */

/* The generation parameters of output o (its seed and attention density) as one text, in the
 * format stable-diffusion.cpp and the common web UIs write ("prompt\nNegative prompt:
 * ...\nSteps: ..., Sampler: ..., CFG scale: ..., Seed: ..., Size: WxH, Model: ..., ..."); with
 * an attention schedule also each step's density per layer ("Attention density by step and
 * layer: 0.375 1.000; 0.375 1.000; ..."; past 4,096 values each step's mean, "Attention
 * density by step: 0.688; ...") and the run's notes ("Attention notes: \"a; b\"", quoted
 * as JSON quotes a string). malloc'd; free(). */
char *tessera_format_parameters(const tessera *t, const tessera_params *p, const tessera_output *o);

/* Writes the output by the name: .png (one image: the output must have one frame),
 * name_%03d.png (one PNG per frame), .mp4/.mov/.mkv (H.264, or MPEG-4 part 2 when FFmpeg
 * lacks libx264: then note says so), .webm (VP9), .gif. parameters (may be NULL) go into
 * the PNG "parameters" chunk or the container's comment. Through a temporary file and a
 * rename: a failure never leaves a partial file under path. note may be NULL. */
tessera_status tessera_write(const tessera_output *o, const char *path, const char *parameters,
                             int fps, char *note, size_t note_n, tessera_error *err);
/* 1 when tessera_write knows the name's format. */
int tessera_output_name_ok(const char *path);
/* The parameters text of a file tessera_write wrote (PNG chunk or video comment);
 * *out malloc'd, NULL when the file has none. */
tessera_status tessera_read_parameters(const char *path, char **out, tessera_error *err);

/* How far output b is from output a (the same size and frame count): per frame, the PSNR
 * in dB of the 8-bit RGB values (peak 255; INFINITY for equal frames) and the SSIM of Wang
 * et al. (2004) on each color channel, averaged: an 11 x 11 Gaussian window of sigma 1.5,
 * K1 = 0.01, K2 = 0.03, the mean over the pixels whose window lies inside the frame (as
 * scikit-image's structural_similarity with gaussian_weights=True, sigma=1.5,
 * use_sample_covariance=False, data_range=255 computes it). psnr and ssim have a.frames
 * values each; either may be NULL. Frames under 11 pixels across have no SSIM: an error. */
tessera_status tessera_compare(const tessera_output *a, const tessera_output *b, double *psnr, double *ssim,
                               tessera_error *err);

/* The OpenBLAS kernels the matrix products run ("SkylakeX", "Haswell", "Prescott", ...). */
const char *tessera_blas_core(void);
/* OpenBLAS picks its kernels by the CPU's model when it loads, and an OpenBLAS older than the
 * CPU falls back to generic ones without AVX (Debian 12's 0.3.21 on an Intel Emerald Rapids:
 * Prescott, a fifth of the rate). Returns the OPENBLAS_CORETYPE to start the process with
 * instead ("SkylakeX", "Haswell", "SandyBridge"), or NULL: OPENBLAS_CORETYPE is set already,
 * OpenBLAS runs kernels of the AVX era, or the CPU has no AVX. It takes effect only in a new
 * process; the CLIs start themselves again with it. */
const char *tessera_blas_core_advice(void);

#ifdef __cplusplus
}
#endif

#endif
