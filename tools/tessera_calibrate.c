/*
 * tessera_calibrate.c — tessera-calibrate: makes a PARO calibration file for one model and
 * one video size. It samples the calibration prompts with dense attention, records every
 * self-attention call's map per timestep group, layer and head (attention/paro.h), picks
 * each head's axis order and writes the block masks at the target density.
 *
 * Bad arguments: one line, exit 2. A failure while running: one line, exit 1, no file left.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attention/paro.h"
#include "attention/schedule.h"
#include "pipeline.h"
#include "ts_git_version.h"
#include "tessera.h"
#include "blas_core.h"

#define PROG "tessera-calibrate"
#define MAX_PROMPTS 256
#define ONE_PASS_GIB 4 /* --passes 0: one pass when its maps fit in this */

typedef struct opts {
    const char *model, *output, *negative, *prompts_file;
    const char *prompts[MAX_PROMPTS];
    int n_prompts;
    ts_wan_params p;
    long long seed;
    int groups, block, row_stride, threads, quiet, passes;
    double density;
} opts;

static void usage(FILE *f) {
    ts_wan_params d = ts_wan_params_default();
    fprintf(f,
            "usage: %s -m DIR -o FILE (-p PROMPT ... | --prompts FILE) [options]\n"
            "Makes a PARO calibration file (attention/paro.h) for one model at one video size: samples\n"
            "the prompts with dense attention, records each self-attention head's map per timestep group,\n"
            "picks each head's axis order (FHW, FWH, HWF, HFW, WHF, WFH) and writes block masks at the\n"
            "target density. A schedule then uses it: {\"method\": \"paro\", \"params\": {\"calibration\": FILE}}\n"
            "or --attn paro:calibration=FILE. Render at the size and step count calibrated for.\n\n"
            "  -m, --model DIR             Wan2.1 checkpoint directory (with its text encoder)\n"
            "  -o, --output FILE           the calibration file (.safetensors)\n"
            "  -p, --prompt TEXT           a calibration prompt (repeat for more; up to %d)\n"
            "      --prompts FILE          calibration prompts, one per line\n"
            "  -n, --negative-prompt TEXT  (default: \"\")\n"
            "  -W, --width N / -H, --height N  pixels, multiples of 16 (default: %lld x %lld)\n"
            "      --video-frames N        1 + 4k (default: %lld)\n"
            "      --steps N               sampling steps (default: %d)\n"
            "      --cfg-scale X           (default: %g)\n"
            "      --sampling-method NAME  euler or unipc (default: unipc)\n"
            "      --flow-shift X          (default: %g)\n"
            "  -s, --seed N                noise seed of prompt 1; prompt i uses N + i - 1 (default: 0)\n"
            "      --groups N              timestep groups, one mask each (default: min(steps, 10))\n"
            "      --density X             target fraction of key blocks per head, (0, 1] (default: 0.5)\n"
            "      --block N               block size in tokens, a multiple of 16 in [16, 256] (default: 64)\n"
            "      --row-stride N          use every N-th query row for the maps (default: 1)\n"
            "      --passes N              1: every group's map under all six orders at once; 2: the prompts\n"
            "                              twice, the orders from maps summed over the groups, then each\n"
            "                              group's map under its head's order (1/groups and 1/6 of the maps);\n"
            "                              0: 1 when its maps fit in %d GiB, else 2 (default: 0)\n"
            "  -t, --threads N             CPU threads, <= 0 = all cores (default: 0)\n"
            "      --quiet                 no progress lines\n"
            "  -h, --help / --version\n",
            PROG, MAX_PROMPTS, (long long)d.width, (long long)d.height, (long long)d.frames, d.steps,
            (double)d.cfg_scale, d.flow_shift, ONE_PASS_GIB);
}

static int bad(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "%s: ", PROG);
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, " (see --help)\n");
    return 2;
}

static int to_int(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static int to_num(const char *s, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end) return 0;
    *out = v;
    return 1;
}

static char *prompt_store; /* the --prompts file's text */

static int read_prompts(opts *o) {
    FILE *f = fopen(o->prompts_file, "rb");
    if (!f) return bad("cannot open the prompts file '%s'%s", o->prompts_file, "");
    size_t cap = 1 << 16, n = 0;
    prompt_store = malloc(cap + 1);
    for (size_t r; prompt_store && (r = fread(prompt_store + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) prompt_store = realloc(prompt_store, (cap *= 2) + 1);
    }
    fclose(f);
    if (!prompt_store) return bad("out of memory reading '%s'%s", o->prompts_file, "");
    prompt_store[n] = 0;
    for (char *save = NULL, *line = strtok_r(prompt_store, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        if (!line[0]) continue;
        if (o->n_prompts == MAX_PROMPTS) return bad("more than 256 prompts in '%s'%s", o->prompts_file, "");
        o->prompts[o->n_prompts++] = line;
    }
    return 0;
}

static int parse(int argc, char **argv, opts *o) {
    memset(o, 0, sizeof *o);
    o->p = ts_wan_params_default();
    o->negative = "";
    o->block = 64, o->row_stride = 1, o->density = 0.5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), -1;
        if (!strcmp(a, "--version")) return printf("%s %s (%s)\n", PROG, tessera_version(), TS_GIT_VERSION), -1;
        if (!strcmp(a, "--quiet")) {
            o->quiet = 1;
            continue;
        }
        if (i + 1 >= argc) return bad("%s needs a value%s", a, "");
        const char *v = argv[++i];
        long long n;
        double x;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) o->output = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (o->n_prompts == MAX_PROMPTS) return bad("more than 256 prompts%s%s", "", "");
            o->prompts[o->n_prompts++] = v;
        } else if (!strcmp(a, "--prompts")) o->prompts_file = v;
        else if (!strcmp(a, "-n") || !strcmp(a, "--negative-prompt")) o->negative = v;
        else if (!strcmp(a, "-W") || !strcmp(a, "--width") || !strcmp(a, "-H") || !strcmp(a, "--height") ||
                 !strcmp(a, "--video-frames")) {
            if (!to_int(v, 1, 8192, &n)) return bad("%s must be a positive integer, got '%s'", a, v);
            if (a[1] == 'W' || !strcmp(a, "--width")) o->p.width = n;
            else if (a[1] == 'H' || !strcmp(a, "--height")) o->p.height = n;
            else o->p.frames = n;
        } else if (!strcmp(a, "--steps")) {
            if (!to_int(v, 1, 10000, &n)) return bad("--steps must be in [1, 10000], got '%s'%s", v, "");
            o->p.steps = (int)n;
        } else if (!strcmp(a, "--cfg-scale")) {
            if (!to_num(v, &x) || x < 0) return bad("--cfg-scale must be a number >= 0, got '%s'%s", v, "");
            o->p.cfg_scale = (float)x;
        } else if (!strcmp(a, "--flow-shift")) {
            if (!to_num(v, &x) || !(x > 0 && x < 1000)) return bad("--flow-shift must be in (0, 1000), got '%s'%s", v, "");
            o->p.flow_shift = x;
        } else if (!strcmp(a, "--sampling-method")) {
            if (!strcmp(v, "euler")) o->p.sampler = TS_SAMPLER_EULER;
            else if (!strcmp(v, "unipc")) o->p.sampler = TS_SAMPLER_UNIPC;
            else return bad("--sampling-method must be euler or unipc, got '%s'%s", v, "");
        } else if (!strcmp(a, "-s") || !strcmp(a, "--seed")) {
            if (!to_int(v, 0, (1LL << 62), &n)) return bad("--seed must be a non-negative integer, got '%s'%s", v, "");
            o->seed = n;
        } else if (!strcmp(a, "--groups")) {
            if (!to_int(v, 1, 10000, &n)) return bad("--groups must be a positive integer, got '%s'%s", v, "");
            o->groups = (int)n;
        } else if (!strcmp(a, "--density")) {
            if (!to_num(v, &x) || !(x > 0 && x <= 1)) return bad("--density must be in (0, 1], got '%s'%s", v, "");
            o->density = x;
        } else if (!strcmp(a, "--block")) {
            if (!to_int(v, 16, 256, &n) || n % 16) return bad("--block must be a multiple of 16 in [16, 256], got '%s'%s", v, "");
            o->block = (int)n;
        } else if (!strcmp(a, "--row-stride")) {
            if (!to_int(v, 1, 1 << 20, &n)) return bad("--row-stride must be a positive integer, got '%s'%s", v, "");
            o->row_stride = (int)n;
        } else if (!strcmp(a, "--passes")) {
            if (!to_int(v, 0, 2, &n)) return bad("--passes must be 0, 1 or 2, got '%s'%s", v, "");
            o->passes = (int)n;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!to_int(v, -1024, 1024, &n)) return bad("--threads must be an integer, got '%s'%s", v, "");
            o->threads = (int)n;
        } else {
            return bad("unknown option '%s'%s", a, "");
        }
    }
    if (!o->model) return bad("no model: give -m DIR%s%s", "", "");
    if (!o->output) return bad("no output: give -o FILE%s%s", "", "");
    if (o->prompts_file && read_prompts(o)) return 2;
    if (!o->n_prompts) return bad("no prompts: give -p PROMPT or --prompts FILE%s%s", "", "");
    if (o->p.frames < 1 || (o->p.frames - 1) % 4) return bad("--video-frames must be 1 + 4k%s%s", "", "");
    if (o->p.width % 16 || o->p.height % 16) return bad("width and height must be multiples of 16%s%s", "", "");
    if (!o->groups) o->groups = o->p.steps < 10 ? o->p.steps : 10;
    if (o->groups > o->p.steps) return bad("--groups cannot exceed --steps%s%s", "", "");
    return 0;
}

typedef struct progress {
    int quiet, prompt, n_prompts;
    double t0;
    int pass, passes;
} progress;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void on_step(void *user, int step, int n_steps, const float *x) {
    (void)x;
    progress *pr = user;
    if (!pr->quiet && pr->passes > 1)
        fprintf(stderr, "%s: pass %d/%d, prompt %d/%d, step %d/%d (%.1f s)\n", PROG, pr->pass, pr->passes,
                pr->prompt + 1, pr->n_prompts, step + 1, n_steps, now_s() - pr->t0);
    else if (!pr->quiet)
        fprintf(stderr, "%s: prompt %d/%d, step %d/%d (%.1f s)\n", PROG, pr->prompt + 1, pr->n_prompts, step + 1,
                n_steps, now_s() - pr->t0);
}

static int fail(const ts_err *e) {
    fprintf(stderr, "%s: %s\n", PROG, e->msg[0] ? e->msg : "failed");
    return 1;
}

int main(int argc, char **argv) {
    ts_tool_blas_core(argv);
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    ts_err e = {0};
    ts_wan_pipeline pl;
    memset(&pl, 0, sizeof pl);
    if (ts_wan_pipeline_open(&pl, o.model, &e) != TS_OK) return fail(&e);
    if (!pl.te) {
        ts_wan_pipeline_close(&pl);
        TS_ERR(&e, TS_ERR_MISSING, "%s has no text encoder and tokenizer", o.model);
        return fail(&e);
    }
    ts_ctx c;
    ts_ctx_init(&c, 0);
    if (o.threads > 0) c.n_threads = o.threads;
    ts_workspace ws = {0}; /* the kernels' buffers, kept from one call to the next */
    c.ws = &ws;
    const wan_config *cfg = wan_model_config(pl.dit);
    int64_t s[4];
    if (ts_wan_latent_shape(&o.p, s, &e) != TS_OK) return ts_wan_pipeline_close(&pl), fail(&e);
    int64_t grid[3];
    wan_token_grid(cfg, s[1], s[2], s[3], grid);
    const int64_t LH = cfg->layers * cfg->heads;
    const int64_t one_pass = ts_paro_calib_bytes(grid, o.block, (int)cfg->layers, (int)cfg->heads, o.groups,
                                                 TS_PARO_CALIB_ONE_PASS);
    const int passes = o.passes ? o.passes : one_pass <= ((int64_t)ONE_PASS_GIB << 30) ? 1 : 2;
    ts_paro_calib *cal = NULL;
    ts_attn_schedule *sched = NULL;
    int32_t *orders = malloc((size_t)LH * sizeof(int32_t));
    ts_status st = orders ? ts_attn_schedule_from_spec(&sched, "dense", &e) : TS_ERR(&e, TS_ERR_NOMEM, "out of memory");
    o.p.sched = sched;
    o.p.text_len = ts_wan_text_len(&pl, o.p.text_len);
    const int64_t L = o.p.text_len, n_lat = s[0] * s[1] * s[2] * s[3];
    float *pe = malloc((size_t)(L * cfg->text_dim) * sizeof(float)), *ne = malloc((size_t)(L * cfg->text_dim) * sizeof(float));
    float *lat = malloc((size_t)n_lat * sizeof(float));
    if (st == TS_OK && (!pe || !ne || !lat)) st = TS_ERR(&e, TS_ERR_NOMEM, "out of memory");
    const int guided = o.p.cfg_scale != 1.0f;
    progress pr = {o.quiet, 0, o.n_prompts, now_s(), 1, passes};
    if (st == TS_OK && !o.quiet)
        fprintf(stderr, "%s: %d prompts, %lldx%lldx%lld tokens (%lld blocks of %d), %d layers x %lld heads, %d steps in %d groups\n",
                PROG, o.n_prompts, (long long)grid[0], (long long)grid[1], (long long)grid[2],
                (long long)((grid[0] * grid[1] * grid[2] + o.block - 1) / o.block), o.block, (int)cfg->layers,
                (long long)cfg->heads, o.p.steps, o.groups);
    if (st == TS_OK && !o.quiet && passes == 2)
        fprintf(stderr, "%s: two passes over the prompts (the maps of one would take %.1f MiB; these %.1f and %.1f MiB)\n",
                PROG, (double)one_pass / (1 << 20),
                (double)ts_paro_calib_bytes(grid, o.block, (int)cfg->layers, (int)cfg->heads, o.groups,
                                            TS_PARO_CALIB_ORDERS) / (1 << 20),
                (double)ts_paro_calib_bytes(grid, o.block, (int)cfg->layers, (int)cfg->heads, o.groups,
                                            TS_PARO_CALIB_MASKS) / (1 << 20));
    if (st == TS_OK && guided) st = ts_wan_encode_prompt(&c, &pl, o.negative, L, ne, NULL, &e);
    for (int pass = 1; pass <= passes && st == TS_OK; pass++) {
        /* one pass, or the orders and then the masks */
        const ts_paro_calib_mode mode = passes == 1 ? TS_PARO_CALIB_ONE_PASS : pass == 1 ? TS_PARO_CALIB_ORDERS
                                                                                         : TS_PARO_CALIB_MASKS;
        ts_paro_calib_free(cal), cal = NULL;
        st = ts_paro_calib_new(&cal, grid, o.block, (int)cfg->layers, (int)cfg->heads, o.groups, o.row_stride, mode,
                               mode == TS_PARO_CALIB_MASKS ? orders : NULL, &e);
        if (st == TS_OK) ts_attn_schedule_set_observer(sched, ts_paro_calib_observe, cal);
        pr.pass = pass;
        for (int i = 0; i < o.n_prompts && st == TS_OK; i++) {
            pr.prompt = i;
            o.p.seed = (uint64_t)(o.seed + i);
            st = ts_wan_encode_prompt(&c, &pl, o.prompts[i], L, pe, NULL, &e);
            if (st == TS_OK) st = ts_wan_generate(&c, &pl, &o.p, pe, L, guided ? ne : NULL, L, NULL, lat, on_step, &pr, &e);
            if (st == TS_OK) st = ts_paro_calib_status(cal, &e);
        }
        if (st == TS_OK && mode == TS_PARO_CALIB_ORDERS) st = ts_paro_calib_finish(cal, o.density, orders, NULL, NULL, &e);
    }
    const int64_t nb = (grid[0] * grid[1] * grid[2] + o.block - 1) / o.block;
    uint8_t *masks = st == TS_OK ? malloc((size_t)(o.groups * LH * nb * nb)) : NULL;
    double *cap = st == TS_OK ? malloc((size_t)LH * sizeof(double)) : NULL;
    if (st == TS_OK && (!masks || !cap)) st = TS_ERR(&e, TS_ERR_NOMEM, "out of memory");
    if (st == TS_OK) st = ts_paro_calib_finish(cal, o.density, orders, masks, cap, &e);
    if (st == TS_OK) {
        ts_paro_desc d = {{grid[0], grid[1], grid[2]}, o.block, o.groups, (int)cfg->layers, (int)cfg->heads, o.p.steps,
                          o.density};
        char np[16], size[64], stride[16], seed[32], cfgs[32], shift[32];
        snprintf(np, sizeof np, "%d", o.n_prompts);
        snprintf(size, sizeof size, "%lldx%lld, %lld frames", (long long)o.p.width, (long long)o.p.height,
                 (long long)o.p.frames);
        snprintf(stride, sizeof stride, "%d", o.row_stride);
        snprintf(seed, sizeof seed, "%lld", o.seed);
        snprintf(cfgs, sizeof cfgs, "%g", (double)o.p.cfg_scale);
        snprintf(shift, sizeof shift, "%g", o.p.flow_shift);
        const char *meta[] = {"model", o.model, "prompts", np, "size", size, "seed", seed, "cfg_scale", cfgs,
                              "flow_shift", shift, "sampler", o.p.sampler == TS_SAMPLER_EULER ? "euler" : "unipc",
                              "row_stride", stride, "tessera_version", TS_GIT_VERSION};
        st = ts_paro_write(o.output, &d, orders, masks, meta, 9, &e);
    }
    if (st == TS_OK && !o.quiet) {
        int hist[TS_PARO_ORDERS] = {0};
        double mean = 0;
        int64_t on = 0;
        for (int64_t i = 0; i < LH; i++) hist[orders[i]]++, mean += cap[i] / (double)LH;
        for (int64_t i = 0; i < o.groups * LH * nb * nb; i++) on += masks[i];
        fprintf(stderr, "%s: orders:", PROG);
        for (int k = 0; k < TS_PARO_ORDERS; k++) fprintf(stderr, " %s %d", ts_paro_order_name(k), hist[k]);
        fprintf(stderr, "; blocks kept %.3f (target %.3f); attention mass kept %.3f\n",
                (double)on / (double)(o.groups * LH * nb * nb), o.density, mean);
        fprintf(stderr, "%s: wrote %s (%lld attention calls observed)\n", PROG, o.output,
                (long long)ts_paro_calib_calls(cal));
    }
    free(orders), free(masks), free(cap), free(pe), free(ne), free(lat), free(prompt_store);
    ts_attn_schedule_free(sched);
    ts_paro_calib_free(cal);
    ts_wan_pipeline_close(&pl);
    ts_workspace_free(&ws);
    return st == TS_OK ? 0 : fail(&e);
}
