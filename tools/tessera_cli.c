/*
 * tessera_cli.c — tessera-t2v, tessera-t2i and tessera-compare (built from this file with TS_T2I
 * 0 / 1, and TS_COMPARE 1 for the comparison harness: a render with an attention schedule
 * against a reference render, dense by default, from the same seed): flag parsing, progress,
 * timings and the output files, over the public API (tessera.h).
 *
 * Flag names follow stable-diffusion.cpp where the meaning is the same. Every argument is
 * checked before the model loads; a bad one gives one line and exit status 2; a failure
 * while running gives one line and status 1.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tessera.h"
#include "blas_core.h"
#include "peak_rss.h"
#include "ts_git_version.h"

#ifndef TS_T2I
#define TS_T2I 0
#endif
#ifndef TS_COMPARE
#define TS_COMPARE 0
#endif
#define PROG (TS_COMPARE ? "tessera-compare" : TS_T2I ? "tessera-t2i" : "tessera-t2v")

typedef struct opts {
    tessera_params p;
    tessera_model_files files;
    const char *output;
    int fps, threads, verbose, quiet, json;
    const char *show_metadata;
    const char *against, *ref_output; /* tessera-compare: the reference's schedule, its file */
    int attn_error;                   /* tessera-compare: measure each attention call's error */
} opts;

static void usage(FILE *f) {
    tessera_params d;
    tessera_params_init(&d);
    fprintf(f,
            "usage: %s -p PROMPT%s [options]\n"
            "%s\n\n"
            "Model (a checkpoint directory, or the component files; a file overrides the directory's part;\n"
            "without them the bundled tiny model, assets/tiny, at its own size, frames and steps):\n"
            "  -m, --model DIR             Wan2.1 checkpoint: diffusers layout (model_index.json, transformer/,\n"
            "                              vae/, text_encoder/, tokenizer/) or the original Wan layout\n"
            "      --diffusion-model FILE  DiT weights (.safetensors, sharded .index.json, or a directory)\n"
            "      --vae FILE              Wan-VAE weights\n"
            "      --text-encoder FILE     UMT5 encoder weights\n"
            "      --tokenizer FILE        spiece.model or tokenizer.json (or their directory)\n\n"
            "Generation:\n"
            "  -p, --prompt TEXT           what to generate (required)\n"
            "  -n, --negative-prompt TEXT  what to steer away from (default: \"\")\n"
            "  -W, --width N               width in pixels, a multiple of 16 (default: %d)\n"
            "  -H, --height N              height in pixels, a multiple of 16 (default: %d)\n",
            PROG, TS_COMPARE ? " (--attn METHOD[:k=v,...] | --attn-schedule FILE)" : "",
            TS_COMPARE ? "Renders the prompt twice from the same seed, with an attention schedule (the candidate) and\n"
                         "with a reference (dense attention unless --against names another), and reports what the\n"
                         "schedule costs: PSNR and SSIM of its frames against the reference's, both sampling times,\n"
                         "attention density and, with --attn-error, each layer's attention error against dense."
            : TS_T2I ? "Generates an image from text with a diffusion transformer (Wan2.1, one frame)."
                     : "Generates a video from text with a diffusion transformer (Wan2.1).",
            d.width, d.height);
    if (!TS_T2I)
        fprintf(f,
                "      --video-frames N        frames, 1 + 4k (default: %d)\n"
                "      --fps N                 frames per second of the video file (default: 16)\n",
                d.frames);
    fprintf(f,
            "      --steps N               denoising steps (default: %d)\n"
            "      --cfg-scale X           classifier-free guidance scale, 1 = off (default: %g)\n"
            "      --sampling-method NAME  euler or unipc (default: %s)\n"
            "      --flow-shift X          flow-matching timestep shift (default: %g)\n"
            "  -s, --seed N                noise seed, < 0 = random, printed (default: -1)\n"
            "      --attn-schedule FILE    attention schedule: JSON rules choosing the method per layer,\n"
            "                              step and head (see attention/schedule.h; assets/schedules/)\n"
            "      --attn METHOD[:k=v,...] one method everywhere: dense, gna (window=3x7x7, stride, dilation,\n"
            "                              causal, tile, block), clear (radius, tile, block), draft (pool=8x16,\n"
            "                              sparsity), sla (topk, block_q, block_k, variant), paro\n"
            "                              (calibration=FILE from tessera-calibrate, quant=int8|none)\n"
            "                              (default: dense). Any method: precision=bf16 runs its kernel\n"
            "                              on q, k, v rounded to bf16 (faster where AVX512-FP16 is, e.g.\n"
            "                              Intel Xeons since Sapphire Rapids; paro needs quant=none)\n\n"
            "%s"
            "Output and running:\n"
            "  -o, --output FILE           %s (default: %s)\n"
            "  -t, --threads N             CPU threads, <= 0 = all cores (default: 0)\n"
            "      --quiet                 no progress bar\n"
            "      --json                  print one JSON object with the %s to stdout\n"
            "  -v, --verbose               more detail on stderr\n",
            d.steps, (double)d.cfg_scale, tessera_sampler_name(d.sampler), d.flow_shift,
            TS_COMPARE ? "Comparison:\n"
                         "      --against METHOD[:k=v,...] | FILE.json\n"
                         "                              the reference's attention (default: dense)\n"
                         "      --attn-error            also run dense attention beside every self-attention call of\n"
                         "                              the candidate and report each layer's and step's relative L2\n"
                         "                              error (slower: the candidate's time then includes it)\n"
                         "      --reference-output FILE write the reference's render too\n\n"
                       : "",
            TS_COMPARE ? "write the candidate's render (.mp4, .webm, .gif, name_%03d.png, .png)"
            : TS_T2I   ? ".png, or .mp4/.webm/.gif"
                       : ".mp4 (H.264), .webm (VP9), .gif, name_%03d.png (frames)",
            TS_COMPARE ? "none" : TS_T2I ? "output.png" : "output.mp4", TS_COMPARE ? "comparison" : "timings");
    if (TS_T2I) fprintf(f, "      --show-metadata FILE    print the generation parameters stored in FILE and exit\n");
    fprintf(f, "  -h, --help                  this help\n      --version               the version\n");
}

static int bad(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "%s: ", PROG);
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, " (see %s --help)\n", PROG);
    return 2;
}

static int parse_int(const char *flag, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno) return bad("%s: '%s' is not an integer", flag, v);
    if (x < lo || x > hi) {
        fprintf(stderr, "%s: %s: %ld is out of range [%ld, %ld]\n", PROG, flag, x, lo, hi);
        return 2;
    }
    *out = x;
    return 0;
}

static int parse_float(const char *flag, const char *v, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno || x != x) return bad("%s: '%s' is not a number", flag, v);
    *out = x;
    return 0;
}

/* Returns 0 to run, -1 to exit 0 (help, version), else the exit status. */
static int parse(int argc, char **argv, opts *o) {
    tessera_params_init(&o->p);
    /* the model's own defaults (the bundled model's size and steps) go under the flags */
    const char *dir = NULL;
    int files = 0;
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) dir = argv[i + 1];
        files |= !strcmp(argv[i], "--diffusion-model");
    }
    if (!dir && !files) o->files.model_dir = dir = tessera_bundled_model(); /* NULL: none here */
    tessera_error de = {0};
    if (dir && tessera_model_defaults(dir, &o->p, &de) != TESSERA_OK) return bad("%s%s", de.msg, "");
    if (TS_T2I) o->p.frames = 1;
    o->output = TS_COMPARE ? NULL : TS_T2I ? "output.png" : "output.mp4";
    o->fps = 16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), -1;
        if (!strcmp(a, "--version")) return printf("%s %s (%s)\n", PROG, tessera_version(), TS_GIT_VERSION), -1;
        if (!strcmp(a, "--quiet")) { o->quiet = 1; continue; }
        if (!strcmp(a, "--json")) { o->json = 1; continue; }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) { o->verbose = 1; continue; }
        if (TS_COMPARE && !strcmp(a, "--attn-error")) { o->attn_error = 1; continue; }
        static const char *const with_value[] = {
            "-p", "--prompt", "-n", "--negative-prompt", "-W", "--width", "-H", "--height", "--video-frames",
            "--fps", "--steps", "--cfg-scale", "--sampling-method", "--flow-shift", "-s", "--seed",
            "--attn-schedule", "--attn", "-o", "--output", "-t", "--threads", "-m", "--model", "--diffusion-model",
            "--vae", "--text-encoder", "--tokenizer", "--show-metadata", "--against", "--reference-output", NULL};
        int known = 0;
        for (int k = 0; with_value[k]; k++) known |= !strcmp(a, with_value[k]);
        if (!known || ((!TS_T2I || TS_COMPARE) && !strcmp(a, "--show-metadata")) ||
            (!TS_COMPARE && (!strcmp(a, "--against") || !strcmp(a, "--reference-output"))) ||
            (TS_T2I && (!strcmp(a, "--video-frames") || !strcmp(a, "--fps"))))
            return bad("unknown option '%s'%s", a, "");
        if (i + 1 >= argc) return bad("%s needs a value%s", a, "");
        const char *v = argv[++i];
        long n = 0;
        double x = 0;
        int rc = 0;
        if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) o->p.prompt = v;
        else if (!strcmp(a, "-n") || !strcmp(a, "--negative-prompt")) o->p.negative_prompt = v;
        else if (!strcmp(a, "-W") || !strcmp(a, "--width")) rc = parse_int(a, v, 16, 8192, &n), o->p.width = (int)n;
        else if (!strcmp(a, "-H") || !strcmp(a, "--height")) rc = parse_int(a, v, 16, 8192, &n), o->p.height = (int)n;
        else if (!strcmp(a, "--video-frames")) rc = parse_int(a, v, 1, 1021, &n), o->p.frames = (int)n;
        else if (!strcmp(a, "--fps")) rc = parse_int(a, v, 1, 240, &n), o->fps = (int)n;
        else if (!strcmp(a, "--steps")) rc = parse_int(a, v, 1, 10000, &n), o->p.steps = (int)n;
        else if (!strcmp(a, "--cfg-scale")) rc = parse_float(a, v, &x), o->p.cfg_scale = (float)x;
        else if (!strcmp(a, "--flow-shift")) rc = parse_float(a, v, &x), o->p.flow_shift = x;
        else if (!strcmp(a, "-s") || !strcmp(a, "--seed")) rc = parse_int(a, v, LONG_MIN, (long)INT64_MAX, &n), o->p.seed = n;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) rc = parse_int(a, v, -1, 1024, &n), o->threads = (int)n;
        else if (!strcmp(a, "--sampling-method")) {
            if (tessera_sampler_from_name(v, &o->p.sampler) != 0)
                return bad("--sampling-method: '%s' is not a sampler (euler, unipc)%s", v, "");
        } else if (!strcmp(a, "--attn-schedule")) o->p.attn_schedule = v;
        else if (!strcmp(a, "--attn")) o->p.attn = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) o->output = v;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->files.model_dir = v;
        else if (!strcmp(a, "--diffusion-model")) o->files.diffusion_model = v;
        else if (!strcmp(a, "--vae")) o->files.vae = v;
        else if (!strcmp(a, "--text-encoder")) o->files.text_encoder = v;
        else if (!strcmp(a, "--tokenizer")) o->files.tokenizer = v;
        else if (!strcmp(a, "--show-metadata")) o->show_metadata = v;
        else if (!strcmp(a, "--against")) o->against = v;
        else if (!strcmp(a, "--reference-output")) o->ref_output = v;
        if (rc) return rc;
    }
    if (o->p.seed < 0) o->p.seed = -1;
    return 0;
}

/* ------------------------------------------------------------------ progress */

typedef struct progress {
    int tty, quiet;
    double t0, last_print;
    tessera_stage stage;
    int started;
} progress;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void on_progress(void *user, tessera_stage stage, int done, int total) {
    progress *pr = user;
    if (pr->quiet) return;
    static const char *names[] = {"text encoder", "sampling", "VAE decode"};
    double t = now_s();
    if (!pr->started || stage != pr->stage) { /* a stage starts with done = 0 */
        if (pr->started && pr->tty) fputc('\n', stderr);
        pr->started = 1, pr->stage = stage, pr->t0 = t;
    }
    if (done == 0 && !pr->tty) return;
    double el = t - pr->t0, per = done > 0 ? el / done : 0, eta = per * (total - done);
    if (pr->tty) {
        int width = 30, fill = total > 0 ? width * done / total : width;
        char bar[64];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        if (stage == TESSERA_STAGE_SAMPLE)
            fprintf(stderr, "\r%-12s [%s] %d/%d  %.2f s/it  ETA %.0f s   ", names[stage], bar, done, total, per, eta);
        else
            fprintf(stderr, "\r%-12s [%s] %d/%d  %.1f s   ", names[stage], bar, done, total, el);
        if (stage == TESSERA_STAGE_DECODE && done == total) fputc('\n', stderr);
    } else if (stage == TESSERA_STAGE_SAMPLE) {
        fprintf(stderr, "%s: step %d/%d, %.2f s/it, ETA %.0f s\n", names[stage], done, total, per, eta);
    } else if (done == total) {
        fprintf(stderr, "%s: %d/%d in %.2f s\n", names[stage], done, total, el);
    }
    fflush(stderr);
}

static double peak_rss_mb(void) { return ts_tool_peak_rss_mb(); }

/* The output name and directory are checked before any work starts. */
static int check_output(const char *out, int frames) {
    if (!tessera_output_name_ok(out))
        return bad("-o: '%s': unknown output format (%s)", out,
                   TS_T2I ? ".png, .mp4, .webm, .gif" : ".mp4, .webm, .gif, name_%03d.png");
    size_t l = strlen(out);
    if (frames > 1 && l >= 4 && !strcasecmp(out + l - 4, ".png") && !strchr(out, '%'))
        return bad("-o: '%s' holds one image: name it like out_%%03d.png for one PNG per frame, or use .mp4, "
                   ".webm or .gif%s", out, "");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (!slash) return 0;
    *slash = 0;
    struct stat sb;
    if (dir[0] && (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))) {
        fprintf(stderr, "%s: output directory '%s' does not exist\n", PROG, dir);
        return 2;
    }
    return 0;
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static void print_notes(const tessera_output *out) {
    for (const char *s = out->notes; s && *s;) { /* the run's notes, a line each */
        const char *nl = strchr(s, '\n');
        const int len = nl ? (int)(nl - s) : (int)strlen(s);
        fprintf(stderr, "%s: note: %.*s\n", PROG, len, s);
        s += len + (nl != NULL);
    }
}

/* The output with its generation parameters in the file; 0 or 1 (said why). */
static int write_output(tessera *t, const tessera_params *p, const tessera_output *out, const char *path, int fps) {
    char *meta = tessera_format_parameters(t, p, out);
    char note[256];
    tessera_error e = {0};
    int rc = 0;
    if (tessera_write(out, path, meta, fps, note, sizeof note, &e) != TESSERA_OK) {
        fprintf(stderr, "%s: %s\n", PROG, e.msg);
        rc = 1;
    } else if (note[0]) {
        fprintf(stderr, "%s: note: %s\n", PROG, note);
    }
    free(meta);
    return rc;
}

static const char *attn_label(const tessera_params *p) {
    return p->attn_schedule ? p->attn_schedule : p->attn ? p->attn : "dense";
}

/* v [rows][cols] (steps by layers) as a JSON array of arrays, each value %.6f (fixed) or %.6g. */
static void json_grid(const double *v, int rows, int cols, int fixed) {
    printf("[");
    for (int i = 0; i < rows; i++) {
        printf("%s[", i ? ", " : "");
        for (int j = 0; j < cols; j++) printf(fixed ? "%s%.6f" : "%s%.6g", j ? ", " : "", v[i * cols + j]);
        printf("]");
    }
    printf("]");
}

/* "PROG: step i WHAT per layer: a b ..." for each step of v [steps][layers], %.3f (fixed) or %.3g. */
static void print_by_step(const char *what, const double *v, int steps, int layers, int fixed) {
    for (int i = 0; i < steps; i++) {
        fprintf(stderr, "%s: step %d %s per layer:", PROG, i, what);
        for (int l = 0; l < layers; l++) fprintf(stderr, fixed ? " %.3f" : " %.3g", v[i * layers + l]);
        fputc('\n', stderr);
    }
}

#if TS_COMPARE
/* ------------------------------------------------------------------ tessera-compare */

/* NaN and infinities as JSON's null (an infinite PSNR: equal frames). */
static void json_num(double x) {
    if (isfinite(x)) printf("%.6g", x);
    else printf("null");
}

static void json_run(const char *name, const tessera_params *p, const tessera_output *o) {
    printf("\"%s\": {\"attn\": ", name);
    json_str(stdout, attn_label(p));
    printf(", \"text_s\": %.4f, \"sample_s\": %.4f, \"decode_s\": %.4f, \"step_s\": [", o->text_s, o->sample_s,
           o->decode_s);
    for (int i = 0; i < o->n_steps; i++) printf("%s%.4f", i ? ", " : "", o->step_s[i]);
    printf("], \"attn_mean_density\": %.6f, \"attn_density\": ", o->attn_mean);
    json_grid(o->attn_density, o->n_steps, o->attn_layers, 0);
    printf(", \"attn_error_mean\": ");
    if (o->attn_error) printf("%.6g, \"attn_error\": ", o->attn_error_mean), json_grid(o->attn_error, o->n_steps, o->attn_layers, 0);
    else printf("null, \"attn_error\": null");
    printf("}");
}

/* The reference: the candidate's params with --against's attention (a .json schedule file, a
 * METHOD[:k=v,...] spec, or dense: no schedule). */
static tessera_params reference_params(const opts *o) {
    tessera_params ref = o->p;
    ref.attn = ref.attn_schedule = NULL;
    if (o->against && strcmp(o->against, "dense")) {
        size_t l = strlen(o->against);
        if (l >= 5 && !strcasecmp(o->against + l - 5, ".json")) ref.attn_schedule = o->against;
        else ref.attn = o->against;
    }
    return ref;
}

/* The candidate, then the reference from the candidate's seed; their frames compared. The
 * candidate goes first so that what a first render pays alone (weights paged in, buffers
 * grown) falls on it: the speedup errs low, never high. */
static int compare(const opts *o, tessera *t, double load_s) {
    tessera_params ref = reference_params(o), cand = o->p;
    cand.attn_error = o->attn_error;
    tessera_output *out[2] = {NULL, NULL};
    const tessera_params *ps[2] = {&ref, &cand};
    static const char *const role[2] = {"reference", "candidate"};
    tessera_error e = {0};
    int rc = 0;
    for (int k = 0; k < 2 && !rc; k++) {
        const int r = 1 - k;
        if (!o->quiet) fprintf(stderr, "%s: %s: %s\n", PROG, role[r], attn_label(ps[r]));
        progress pr = {isatty(2), o->quiet, 0, 0, TESSERA_STAGE_TEXT, 0};
        if (tessera_generate(t, ps[r], on_progress, &pr, &out[r], &e) != TESSERA_OK) {
            if (pr.started && pr.tty && !o->quiet) fputc('\n', stderr);
            fprintf(stderr, "%s: %s: %s\n", PROG, role[r], e.msg);
            rc = 1;
        }
        if (!rc) print_notes(out[r]);
        if (r == 1 && !rc) ref.seed = out[1]->seed; /* the same noise */
    }
    const int nf = rc ? 0 : out[0]->frames;
    double *psnr = calloc((size_t)(nf ? nf : 1), sizeof *psnr), *ssim = calloc((size_t)(nf ? nf : 1), sizeof *ssim);
    if (!rc && (!psnr || !ssim)) fprintf(stderr, "%s: out of memory\n", PROG), rc = 1;
    if (!rc && tessera_compare(out[0], out[1], psnr, ssim, &e) != TESSERA_OK)
        fprintf(stderr, "%s: %s\n", PROG, e.msg), rc = 1;
    if (!rc && o->output) rc = write_output(t, &cand, out[1], o->output, o->fps);
    if (!rc && o->ref_output) rc = write_output(t, &ref, out[0], o->ref_output, o->fps);
    if (rc) goto done;
    /* the video's PSNR from its mean squared error over every frame; the lowest frame; mean SSIM */
    double mse = 0, ssim_mean = 0;
    int worst_p = 0, worst_s = 0;
    for (int f = 0; f < nf; f++) {
        mse += isfinite(psnr[f]) ? 255.0 * 255.0 / pow(10.0, psnr[f] / 10.0) / nf : 0;
        ssim_mean += ssim[f] / nf;
        if (psnr[f] < psnr[worst_p]) worst_p = f;
        if (ssim[f] < ssim[worst_s]) worst_s = f;
    }
    const double psnr_all = mse > 0 ? 10.0 * log10(255.0 * 255.0 / mse) : INFINITY;
    const double speedup = o->attn_error || out[1]->sample_s <= 0 ? NAN : out[0]->sample_s / out[1]->sample_s;
    for (int r = 0; r < 2; r++)
        fprintf(stderr, "%s: %-9s %s: sampling %.2f s (%.3f s/step), attention density %.3f\n", PROG, role[r],
                attn_label(ps[r]), out[r]->sample_s, out[r]->n_steps ? out[r]->sample_s / out[r]->n_steps : 0,
                out[r]->attn_mean);
    if (isfinite(speedup)) fprintf(stderr, "%s: sampling speedup %.2fx\n", PROG, speedup);
    else fprintf(stderr, "%s: no speedup: the candidate's time includes dense attention beside each call (--attn-error)\n", PROG);
    fprintf(stderr, "%s: PSNR %.2f dB (lowest frame %d: %.2f dB), SSIM %.4f (lowest frame %d: %.4f), %d frame%s of %dx%d, "
            "seed %lld\n", PROG, psnr_all, worst_p, psnr[worst_p], ssim_mean, worst_s, ssim[worst_s], nf, nf == 1 ? "" : "s",
            out[0]->width, out[0]->height, (long long)out[0]->seed);
    const tessera_output *c = out[1];
    if (c->attn_error) {
        fprintf(stderr, "%s: attention error against dense (relative L2), mean %.4g; by layer:", PROG, c->attn_error_mean);
        for (int l = 0; l < c->attn_layers; l++) {
            double m = 0;
            for (int i = 0; i < c->n_steps; i++) m += c->attn_error[i * c->attn_layers + l] / c->n_steps;
            fprintf(stderr, " %.3g", m);
        }
        fputc('\n', stderr);
        if (o->verbose) print_by_step("attention error", c->attn_error, c->n_steps, c->attn_layers, 0);
    }
    for (int f = 0; o->verbose && f < nf; f++)
        fprintf(stderr, "%s: frame %d: PSNR %.2f dB, SSIM %.4f\n", PROG, f, psnr[f], ssim[f]);
    if (o->json) {
        printf("{\"model\": ");
        json_str(stdout, tessera_model_name(t));
        printf(", \"prompt\": ");
        json_str(stdout, o->p.prompt);
        printf(", \"seed\": %lld, \"width\": %d, \"height\": %d, \"frames\": %d, \"steps\": %d, \"sampler\": \"%s\", "
               "\"cfg_scale\": %g, \"flow_shift\": %g, \"load_s\": %.4f, ", (long long)out[0]->seed, out[0]->width,
               out[0]->height, nf, out[0]->n_steps, tessera_sampler_name(o->p.sampler), (double)o->p.cfg_scale,
               o->p.flow_shift, load_s);
        json_run("reference", &ref, out[0]);
        printf(", ");
        json_run("candidate", &cand, out[1]);
        printf(", \"speedup_sampling\": ");
        json_num(speedup);
        printf(", \"psnr\": ");
        json_num(psnr_all);
        printf(", \"psnr_frames\": [");
        for (int f = 0; f < nf; f++) printf("%s", f ? ", " : ""), json_num(psnr[f]);
        printf("], \"ssim\": %.6f, \"ssim_frames\": [", ssim_mean);
        for (int f = 0; f < nf; f++) printf("%s%.6f", f ? ", " : "", ssim[f]);
        printf("], \"peak_rss_mb\": %.1f}\n", peak_rss_mb());
    }
done:
    free(psnr), free(ssim);
    tessera_output_free(out[0]), tessera_output_free(out[1]);
    return rc;
}
#endif

int main(int argc, char **argv) {
    ts_tool_blas_core(argv);
    opts o;
    memset(&o, 0, sizeof o);
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    tessera_error e = {0};
    if (o.show_metadata) {
        char *text = NULL;
        if (tessera_read_parameters(o.show_metadata, &text, &e) != TESSERA_OK) {
            fprintf(stderr, "%s: %s\n", PROG, e.msg);
            return 1;
        }
        if (!text) {
            fprintf(stderr, "%s: '%s' has no generation parameters\n", PROG, o.show_metadata);
            return 1;
        }
        printf("%s\n", text);
        free(text);
        return 0;
    }
    if (!o.p.prompt) return bad("no prompt: give -p TEXT%s%s", "", "");
    if (!o.files.model_dir && !o.files.diffusion_model)
        return bad("no model: give -m DIR (or --diffusion-model, --vae, --text-encoder, --tokenizer); the bundled "
                   "model (assets/tiny) is not here%s%s", "", "");
    if (TS_COMPARE && !o.p.attn && !o.p.attn_schedule)
        return bad("nothing to compare: give the candidate's --attn METHOD[:k=v,...] or --attn-schedule FILE%s%s", "", "");
    if (o.output && (rc = check_output(o.output, o.p.frames))) return rc;
    if (o.ref_output && (rc = check_output(o.ref_output, o.p.frames))) return rc;
    if (tessera_check(NULL, &o.p, &e) != TESSERA_OK) {
        fprintf(stderr, "%s: %s\n", PROG, e.msg);
        return 2;
    }
#if TS_COMPARE
    tessera_params ref = reference_params(&o); /* checked before the model loads */
    if (tessera_check(NULL, &ref, &e) != TESSERA_OK) {
        fprintf(stderr, "%s: --against: %s\n", PROG, e.msg);
        return 2;
    }
#endif
    double t0 = now_s();
    tessera *t = NULL;
    if (tessera_open(&t, &o.files, o.threads, &e) != TESSERA_OK) {
        fprintf(stderr, "%s: %s\n", PROG, e.msg);
        return 1;
    }
    double load_s = now_s() - t0;
    if (o.verbose) {
        fprintf(stderr, "%s: loaded %s in %.2f s\n", PROG, tessera_model_name(t), load_s);
        ts_tool_blas_core_note(PROG);
    }
#if TS_COMPARE
    rc = compare(&o, t, load_s);
    tessera_close(t);
    return rc;
#endif
    progress pr = {isatty(2), o.quiet, 0, 0, TESSERA_STAGE_TEXT, 0};
    tessera_output *out = NULL;
    if (tessera_generate(t, &o.p, on_progress, &pr, &out, &e) != TESSERA_OK) {
        if (pr.started && pr.tty && !o.quiet) fputc('\n', stderr);
        fprintf(stderr, "%s: %s\n", PROG, e.msg);
        tessera_close(t);
        return 1;
    }
    rc = write_output(t, &o.p, out, o.output, o.fps);
    if (rc == 0) {
        print_notes(out);
        double step_avg = out->n_steps ? out->sample_s / out->n_steps : 0;
        if (o.verbose && (o.p.attn || o.p.attn_schedule))
            print_by_step("attention density", out->attn_density, out->n_steps, out->attn_layers, 1);
        if (!o.quiet || o.verbose)
            fprintf(stderr, "%s: wrote %s (%dx%d, %d frame%s, seed %lld): load %.2f s, text %.2f s, sampling %.2f s "
                    "(%.3f s/step), VAE %.2f s, peak memory %.0f MB, attention density %.3f\n", PROG, o.output,
                    out->width, out->height, out->frames, out->frames == 1 ? "" : "s", (long long)out->seed, load_s,
                    out->text_s, out->sample_s, step_avg, out->decode_s, peak_rss_mb(), out->attn_mean);
        else
            fprintf(stderr, "%s: wrote %s (seed %lld)\n", PROG, o.output, (long long)out->seed);
        if (o.json) {
            printf("{\"output\": ");
            json_str(stdout, o.output);
            printf(", \"model\": ");
            json_str(stdout, tessera_model_name(t));
            printf(", \"prompt\": ");
            json_str(stdout, o.p.prompt);
            printf(", \"seed\": %lld, \"width\": %d, \"height\": %d, \"frames\": %d, \"steps\": %d, \"sampler\": \"%s\", "
                   "\"cfg_scale\": %g, \"flow_shift\": %g, \"load_s\": %.4f, \"text_s\": %.4f, \"sample_s\": %.4f, "
                   "\"step_s\": [", (long long)out->seed, out->width, out->height, out->frames, out->n_steps,
                   tessera_sampler_name(o.p.sampler), (double)o.p.cfg_scale, o.p.flow_shift, load_s, out->text_s,
                   out->sample_s);
            for (int i = 0; i < out->n_steps; i++) printf("%s%.4f", i ? ", " : "", out->step_s[i]);
            printf("], \"decode_s\": %.4f, \"peak_rss_mb\": %.1f, \"blas_core\": ", out->decode_s, peak_rss_mb());
            json_str(stdout, tessera_blas_core());
            printf(", \"attn_schedule\": ");
            json_str(stdout, attn_label(&o.p));
            printf(", \"attn_mean_density\": %.6f, \"attn_density\": ", out->attn_mean);
            json_grid(out->attn_density, out->n_steps, out->attn_layers, 1);
            printf(", \"notes\": [");
            for (const char *s = out->notes, *sep = ""; s && *s; sep = ", ") {
                const char *nl = strchr(s, '\n');
                const size_t len = nl ? (size_t)(nl - s) : strlen(s);
                char *line = strndup(s, len);
                printf("%s", sep);
                json_str(stdout, line ? line : "");
                free(line);
                s += len + (nl != NULL);
            }
            printf("]}\n");
        }
    }
    tessera_output_free(out);
    tessera_close(t);
    return rc;
}
