/*
 * tessera.c — the public API (include/tessera.h) over the Wan2.1 pipeline driver, the
 * output writers and the text stack.
 */
#include "tessera.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../attention/schedule.h"
#include "io/io.h"
#include "metrics.h"
#include "pipeline.h"

_Static_assert((int)TESSERA_ERR_INTERNAL == (int)TS_ERR_INTERNAL && (int)TESSERA_ERR_IO == (int)TS_ERR_IO,
               "tessera_status mirrors ts_status");

struct tessera {
    ts_wan_pipeline p;
    ts_ctx c;
    ts_workspace ws; /* c.ws: the kernels' buffers, kept from one call to the next */
    char name[256];
};

static tessera_status fail(tessera_error *out, const ts_err *e) {
    if (out) {
        out->code = (tessera_status)e->code;
        snprintf(out->msg, sizeof out->msg, "%s", e->msg);
    }
    return (tessera_status)e->code;
}

static tessera_status fail_msg(tessera_error *out, tessera_status code, const char *msg) {
    if (out) {
        out->code = code;
        snprintf(out->msg, sizeof out->msg, "%s", msg);
    }
    return code;
}

static tessera_status fail_fmt(tessera_error *out, tessera_status code, const char *fmt, const char *a, const char *b) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a, b);
    return fail_msg(out, code, msg);
}

void tessera_params_init(tessera_params *p) {
    ts_wan_params d = ts_wan_params_default();
    memset(p, 0, sizeof *p);
    p->prompt = NULL;
    p->negative_prompt = "";
    p->width = (int)d.width, p->height = (int)d.height, p->frames = (int)d.frames;
    p->steps = d.steps;
    p->cfg_scale = d.cfg_scale;
    p->flow_shift = d.flow_shift;
    p->sampler = TESSERA_SAMPLER_UNIPC;
    p->seed = -1;
    p->attn_schedule = NULL;
    p->attn = NULL;
    p->text_len = (int)d.text_len;
}

tessera_status tessera_model_defaults(const char *model_dir, tessera_params *p, tessera_error *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/tessera.json", model_dir);
    FILE *f = fopen(path, "rb");
    if (!f) return TESSERA_OK; /* no defaults of its own */
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return fail_fmt(err, TESSERA_ERR_FORMAT, "model defaults: '%.400s' is not a JSON object%s", path, "");
    }
    struct { const char *key; int *i; double *d; float *f; double lo, hi; } num[] = {
        {"width", &p->width, NULL, NULL, 16, 8192}, {"height", &p->height, NULL, NULL, 16, 8192},
        {"frames", &p->frames, NULL, NULL, 1, 1021}, {"steps", &p->steps, NULL, NULL, 1, 10000},
        {"text_len", &p->text_len, NULL, NULL, 1, 4096}, {"cfg_scale", NULL, NULL, &p->cfg_scale, 0, 100},
        {"flow_shift", NULL, &p->flow_shift, NULL, 1e-3, 1000}};
    tessera_status rc = TESSERA_OK;
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        int known = !strcmp(it->string, "sampler") || !strcmp(it->string, "comment");
        for (size_t k = 0; k < sizeof num / sizeof num[0]; k++) {
            if (strcmp(it->string, num[k].key)) continue;
            known = 1;
            double v = it->valuedouble;
            if (!cJSON_IsNumber(it) || v < num[k].lo || v > num[k].hi || (num[k].i && v != (int)v)) {
                rc = fail_fmt(err, TESSERA_ERR_FORMAT, "model defaults: '%.40s' in %.400s is out of range", it->string, path);
                break;
            }
            if (num[k].i) *num[k].i = (int)v;
            else if (num[k].d) *num[k].d = v;
            else *num[k].f = (float)v;
        }
        if (rc == TESSERA_OK && !strcmp(it->string, "sampler") &&
            (!cJSON_IsString(it) || tessera_sampler_from_name(it->valuestring, &p->sampler) != 0))
            rc = fail_fmt(err, TESSERA_ERR_FORMAT, "model defaults: 'sampler' in %.400s must be euler or unipc%s", path, "");
        if (rc == TESSERA_OK && !known)
            rc = fail_fmt(err, TESSERA_ERR_FORMAT, "model defaults: unknown key '%.40s' in %.400s", it->string, path);
        if (rc != TESSERA_OK) break;
    }
    cJSON_Delete(j);
    return rc;
}

const char *tessera_bundled_model(void) {
    static const char *const where[] = {TS_BUNDLED_SRC, TS_BUNDLED_INSTALLED};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/model_index.json", where[i]);
        if (access(path, R_OK) == 0) return where[i];
    }
    return NULL;
}

const char *tessera_sampler_name(tessera_sampler s) {
    return s == TESSERA_SAMPLER_EULER ? "euler" : s == TESSERA_SAMPLER_UNIPC ? "unipc" : "unknown";
}

int tessera_sampler_from_name(const char *name, tessera_sampler *out) {
    if (strcmp(name, "euler") == 0) return *out = TESSERA_SAMPLER_EULER, 0;
    if (strcmp(name, "unipc") == 0) return *out = TESSERA_SAMPLER_UNIPC, 0;
    return -1;
}

static int is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

static int readable(const char *p) { return access(p, R_OK) == 0; }

/* base name of path without a trailing slash */
static void base_name(const char *path, char *out, size_t n) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    size_t l = strlen(tmp);
    while (l > 1 && tmp[l - 1] == '/') tmp[--l] = 0;
    const char *b = strrchr(tmp, '/');
    snprintf(out, n, "%s", b ? b + 1 : tmp);
}

tessera_status tessera_open(tessera **out, const tessera_model_files *f, int threads, tessera_error *err) {
    *out = NULL;
    ts_err e = {0};
    ts_wan_paths *paths = calloc(1, sizeof *paths);
    tessera *t = calloc(1, sizeof *t);
    if (!paths || !t) {
        free(paths), free(t);
        return fail_msg(err, TESSERA_ERR_NOMEM, "out of memory");
    }
    ts_status st = TS_OK;
    struct { const char *flag, *path; } given[] = {{"diffusion model", f->diffusion_model}, {"VAE", f->vae},
                                                   {"text encoder", f->text_encoder}, {"tokenizer", f->tokenizer}};
    for (size_t i = 0; i < 4 && st == TS_OK; i++)
        if (given[i].path && !readable(given[i].path))
            st = TS_ERR(&e, TS_ERR_IO, "cannot open the %s '%s'", given[i].flag, given[i].path);
    if (st == TS_OK && f->model_dir) {
        if (!is_dir(f->model_dir)) st = TS_ERR(&e, TS_ERR_IO, "model directory '%s' does not exist", f->model_dir);
        else st = ts_wan_find_paths(f->model_dir, paths, &e);
        /* a directory that lacks parts the flags give is fine */
        if (st != TS_OK && is_dir(f->model_dir) && f->diffusion_model && f->vae) st = TS_OK;
    } else if (st == TS_OK && (!f->diffusion_model || !f->vae)) {
        st = TS_ERR(&e, TS_ERR_INVALID_ARG, "no model: give a checkpoint directory, or the diffusion model and the VAE");
    }
    if (st == TS_OK) {
        size_t n = sizeof paths->dit;
        if (f->diffusion_model) snprintf(paths->dit, n, "%s", f->diffusion_model);
        if (f->vae) snprintf(paths->vae, n, "%s", f->vae);
        if (f->text_encoder) snprintf(paths->text_encoder, n, "%s", f->text_encoder);
        if (f->tokenizer) snprintf(paths->tokenizer, n, "%s", f->tokenizer);
        if (!paths->text_encoder[0] || !paths->tokenizer[0])
            st = TS_ERR(&e, TS_ERR_MISSING, "no text encoder%s%s: give the text encoder and its tokenizer "
                        "(a diffusers checkpoint has text_encoder/ and tokenizer/)",
                        f->model_dir ? " in " : "", f->model_dir ? f->model_dir : "");
    }
    if (st == TS_OK) st = ts_wan_pipeline_open_paths(&t->p, paths, &e);
    free(paths);
    if (st != TS_OK) {
        free(t);
        return fail(err, &e);
    }
    ts_ctx_init(&t->c, 0);
    memset(&t->ws, 0, sizeof t->ws);
    t->c.ws = &t->ws;
    if (threads > 0) t->c.n_threads = threads;
    base_name(f->model_dir ? f->model_dir : f->diffusion_model, t->name, sizeof t->name);
    *out = t;
    return TESSERA_OK;
}

void tessera_close(tessera *t) {
    if (!t) return;
    ts_wan_pipeline_close(&t->p);
    ts_workspace_free(&t->ws);
    free(t);
}

const char *tessera_model_name(const tessera *t) { return t->name; }

static ts_wan_params to_wan(const tessera_params *p) {
    ts_wan_params w = ts_wan_params_default();
    w.frames = p->frames, w.height = p->height, w.width = p->width;
    w.steps = p->steps;
    w.cfg_scale = p->cfg_scale;
    w.flow_shift = p->flow_shift;
    w.sampler = p->sampler == TESSERA_SAMPLER_EULER ? TS_SAMPLER_EULER : TS_SAMPLER_UNIPC;
    w.seed = (uint64_t)p->seed;
    w.text_len = p->text_len;
    return w;
}

/* The schedule the params name (NULL when they name none). */
static ts_status open_schedule(const tessera_params *p, ts_attn_schedule **out, ts_err *e) {
    *out = NULL;
    if (p->attn_schedule) return ts_attn_schedule_load(out, p->attn_schedule, e);
    if (p->attn) return ts_attn_schedule_from_spec(out, p->attn, e);
    return TS_OK;
}

tessera_status tessera_check(const tessera *t, const tessera_params *p, tessera_error *err) {
    ts_err e = {0};
    if (!p->prompt) return fail_msg(err, TESSERA_ERR_INVALID_ARG, "no prompt");
    if (p->width > 8192 || p->height > 8192 || p->frames > 1021)
        return fail_msg(err, TESSERA_ERR_INVALID_ARG, "size out of range (at most 8192x8192 and 1021 frames)");
    if (p->steps > 10000) return fail_msg(err, TESSERA_ERR_INVALID_ARG, "steps out of range (at most 10000)");
    if (!(p->flow_shift > 0 && p->flow_shift < 1000))
        return fail_msg(err, TESSERA_ERR_INVALID_ARG, "flow shift must be in (0, 1000)");
    if (!(p->cfg_scale >= 0 && p->cfg_scale <= 100))
        return fail_msg(err, TESSERA_ERR_INVALID_ARG, "cfg scale must be in [0, 100]");
    if (p->sampler != TESSERA_SAMPLER_EULER && p->sampler != TESSERA_SAMPLER_UNIPC)
        return fail_msg(err, TESSERA_ERR_INVALID_ARG, "unknown sampler");
    if (p->text_len < 1 || p->text_len > 4096) return fail_msg(err, TESSERA_ERR_INVALID_ARG, "text length must be in [1, 4096]");
    ts_wan_params w = to_wan(p);
    int64_t shape[4];
    if (ts_wan_latent_shape(&w, shape, &e) != TS_OK) return fail(err, &e);
    const char *texts[2] = {p->prompt, p->negative_prompt ? p->negative_prompt : ""};
    for (int i = 0; i < 2; i++) {
        char *clean = NULL;
        if (ts_text_clean(texts[i], &clean, &e) != TS_OK) {
            snprintf(e.msg, sizeof e.msg, "%s is not valid UTF-8", i ? "the negative prompt" : "the prompt");
            return fail(err, &e);
        }
        free(clean);
    }
    if (p->attn_schedule && p->attn)
        return fail_msg(err, TESSERA_ERR_INVALID_ARG, "give an attention schedule file or an --attn method, not both");
    ts_attn_schedule *sched = NULL;
    if (open_schedule(p, &sched, &e) != TS_OK) return fail(err, &e);
    if (t) { /* the model's blocks, heads and the video's token grid: a calibration made for another fails here */
        const wan_config *cfg = wan_model_config(t->p.dit);
        int64_t grid[3];
        wan_token_grid(cfg, shape[1], shape[2], shape[3], grid);
        ts_status st = ts_attn_schedule_check(sched, (int)cfg->layers, cfg->heads, grid, &e);
        if (st != TS_OK) {
            ts_attn_schedule_free(sched);
            return fail(err, &e);
        }
    }
    ts_attn_schedule_free(sched);
    return TESSERA_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int64_t random_seed(void) {
    uint64_t s = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd >= 0) {
        if (read(fd, &s, sizeof s) != (ssize_t)sizeof s) s = 0;
        close(fd);
    }
    if (!s) s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    return (int64_t)(s >> 33); /* a positive 31-bit seed: short to print and type */
}

typedef struct gen_state {
    tessera_output *o;
    tessera_progress_fn progress;
    void *user;
    double t_prev;
    int64_t frames_done;
} gen_state;

static void on_step(void *user, int step, int n_steps, const float *x) {
    (void)x;
    gen_state *g = user;
    double t = now_s();
    if (step >= 0 && step < g->o->n_steps) g->o->step_s[step] = t - g->t_prev;
    g->t_prev = t;
    if (g->progress) g->progress(g->user, TESSERA_STAGE_SAMPLE, step + 1, n_steps);
}

/* [3, n, H, W] in [-1, 1] → uint8 RGB, as diffusers' postprocess (x/2 + 0.5, ×255, round). */
static ts_status on_frames(void *user, const float *frames, int64_t first, int64_t n, int64_t H,
                           int64_t W, ts_err *err) {
    (void)err;
    gen_state *g = user;
    int64_t plane = n * H * W;
    for (int64_t f = 0; f < n; f++) {
        uint8_t *dst = g->o->rgb + (size_t)(first + f) * (size_t)(H * W * 3);
        for (int64_t i = 0; i < H * W; i++)
            for (int ch = 0; ch < 3; ch++) {
                float v = (frames[ch * plane + f * H * W + i] * 0.5f + 0.5f) * 255.0f;
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                dst[i * 3 + ch] = (uint8_t)(v + 0.5f);
            }
    }
    g->frames_done = first + n;
    if (g->progress) g->progress(g->user, TESSERA_STAGE_DECODE, (int)(first + n), g->o->frames);
    return TS_OK;
}

/* out[step][layer] = the mean over a step's and layer's records (the guidance passes) of the
 * record's double at byte offset off, skipping negative values (not measured); fill where none;
 * *mean the mean of out. */
static ts_status by_step_layer(const tessera_output *o, const ts_attn_schedule *s, int layers, size_t off,
                               double fill, double **out, double *mean, ts_err *e) {
    int64_t n = (int64_t)o->n_steps * layers;
    double *v = calloc((size_t)(n ? n : 1), sizeof *v);
    int *cnt = calloc((size_t)(n ? n : 1), sizeof *cnt);
    if (!v || !cnt) {
        free(v), free(cnt);
        return TS_ERR(e, TS_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; s && i < ts_attn_schedule_n_records(s); i++) {
        const ts_attn_record *r = ts_attn_schedule_record(s, i);
        const double x = *(const double *)((const char *)r + off);
        if (r->step < 0 || r->step >= o->n_steps || r->layer < 0 || r->layer >= layers || x < 0) continue;
        v[(int64_t)r->step * layers + r->layer] += x;
        cnt[(int64_t)r->step * layers + r->layer]++;
    }
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        v[i] = cnt[i] ? v[i] / cnt[i] : fill;
        sum += v[i];
    }
    *mean = n ? sum / (double)n : fill;
    *out = v;
    free(cnt);
    return TS_OK;
}

/* density[step][layer] from the schedule's records (all ones without a schedule) and, when the
 * params asked for it and a schedule ran, the error against dense. */
static ts_status collect_records(tessera_output *o, const tessera_params *p, const ts_attn_schedule *s, int layers,
                                 ts_err *e) {
    o->attn_layers = layers;
    o->attn_error_mean = -1;
    TS_TRY(by_step_layer(o, s, layers, offsetof(ts_attn_record, density), 1.0, &o->attn_density, &o->attn_mean, e));
    if (!p->attn_error || !s) return TS_OK;
    return by_step_layer(o, s, layers, offsetof(ts_attn_record, error), 0.0, &o->attn_error, &o->attn_error_mean, e);
}

tessera_status tessera_generate(tessera *t, const tessera_params *p, tessera_progress_fn progress,
                                void *user, tessera_output **out, tessera_error *err) {
    *out = NULL;
    tessera_status rc = tessera_check(t, p, err);
    if (rc != TESSERA_OK) return rc;
    ts_err e = {0};
    ts_wan_params w = to_wan(p);
    int64_t s[4];
    ts_wan_latent_shape(&w, s, &e);
    tessera_output *o = calloc(1, sizeof *o);
    w.text_len = ts_wan_text_len(&t->p, p->text_len);
    int64_t L = w.text_len, D = wan_model_config(t->p.dit)->text_dim, n = s[0] * s[1] * s[2] * s[3];
    float *pe = malloc((size_t)(L * D) * sizeof *pe), *ne = malloc((size_t)(L * D) * sizeof *ne);
    float *lat = malloc((size_t)n * sizeof *lat);
    if (o) {
        o->frames = p->frames, o->width = p->width, o->height = p->height;
        o->seed = p->seed >= 0 ? p->seed : random_seed();
        o->n_steps = p->steps;
        o->step_s = calloc((size_t)p->steps, sizeof *o->step_s);
        o->rgb = malloc((size_t)p->frames * (size_t)p->width * (size_t)p->height * 3);
    }
    ts_status st = TS_OK;
    if (!o || !o->step_s || !o->rgb || !pe || !ne || !lat) st = TS_ERR(&e, TS_ERR_NOMEM, "out of memory");
    ts_attn_schedule *sched = NULL;
    if (st == TS_OK) st = open_schedule(p, &sched, &e);
    if (sched && p->attn_error) ts_attn_schedule_set_error(sched, 1);
    w.sched = sched;
    gen_state g = {o, progress, user, 0, 0};
    int guided = p->cfg_scale != 1.0f;
    if (st == TS_OK) {
        double t0 = now_s();
        if (progress) progress(user, TESSERA_STAGE_TEXT, 0, 1 + guided);
        st = ts_wan_encode_prompt(&t->c, &t->p, p->prompt, L, pe, NULL, &e);
        if (st == TS_OK && guided) {
            if (progress) progress(user, TESSERA_STAGE_TEXT, 1, 2);
            st = ts_wan_encode_prompt(&t->c, &t->p, p->negative_prompt ? p->negative_prompt : "", L, ne, NULL, &e);
        }
        if (st == TS_OK && progress) progress(user, TESSERA_STAGE_TEXT, 1 + guided, 1 + guided);
        umt5_release(t->p.te); /* done with until the next render's prompts */
        o->text_s = now_s() - t0;
    }
    if (st == TS_OK) {
        w.seed = (uint64_t)o->seed;
        double t0 = now_s();
        g.t_prev = t0;
        if (progress) progress(user, TESSERA_STAGE_SAMPLE, 0, p->steps);
        st = ts_wan_generate(&t->c, &t->p, &w, pe, L, guided ? ne : NULL, L, NULL, lat, on_step, &g, &e);
        o->sample_s = now_s() - t0;
    }
    if (st == TS_OK) st = collect_records(o, p, sched, (int)wan_model_config(t->p.dit)->layers, &e);
    if (st == TS_OK && ts_attn_schedule_notes(sched) && !(o->notes = strdup(ts_attn_schedule_notes(sched))))
        st = TS_ERR(&e, TS_ERR_NOMEM, "out of memory");
    ts_attn_schedule_free(sched);
    if (st == TS_OK) {
        double t0 = now_s();
        wan_vae_denormalize(t->p.vae, lat, s[1], s[2], s[3]); /* the sampler works on normalised latents */
        if (progress) progress(user, TESSERA_STAGE_DECODE, 0, o->frames);
        st = wan_vae_decode(&t->c, t->p.vae, lat, s[1], s[2], s[3], on_frames, &g, &e);
        if (st == TS_OK && g.frames_done != o->frames)
            st = TS_ERR(&e, TS_ERR_INTERNAL, "the VAE decoded %lld of %d frames", (long long)g.frames_done, o->frames);
        o->decode_s = now_s() - t0;
    }
    free(pe), free(ne), free(lat);
    if (st != TS_OK) {
        tessera_output_free(o);
        return fail(err, &e);
    }
    *out = o;
    return TESSERA_OK;
}

tessera_status tessera_compare(const tessera_output *a, const tessera_output *b, double *psnr, double *ssim,
                               tessera_error *err) {
    if (!a || !b || !a->rgb || !b->rgb) return fail_msg(err, TESSERA_ERR_INVALID_ARG, "compare: no output");
    if (a->frames != b->frames || a->width != b->width || a->height != b->height) {
        char m[512];
        snprintf(m, sizeof m, "compare: the outputs differ in size: %dx%d, %d frames against %dx%d, %d frames", a->width,
                 a->height, a->frames, b->width, b->height, b->frames);
        return fail_msg(err, TESSERA_ERR_SHAPE, m);
    }
    const int64_t fsz = (int64_t)a->width * a->height * 3;
    ts_status st = TS_OK;
    ts_err e = {0};
#pragma omp parallel for schedule(dynamic, 1)
    for (int f = 0; f < a->frames; f++) {
        const uint8_t *x = a->rgb + f * fsz, *y = b->rgb + f * fsz;
        if (psnr) psnr[f] = ts_psnr_u8(x, y, fsz);
        if (!ssim) continue;
        ts_err fe = {0};
        ts_status fs = ts_ssim_rgb(x, y, a->height, a->width, &ssim[f], &fe);
        if (fs != TS_OK) {
#pragma omp critical(tessera_compare)
            if (st == TS_OK) st = fs, e = fe;
        }
    }
    return st == TS_OK ? TESSERA_OK : fail(err, &e);
}

void tessera_output_free(tessera_output *o) {
    if (!o) return;
    free(o->attn_density);
    free(o->attn_error);
    free(o->notes);
    free(o->rgb);
    free(o->step_s);
    free(o);
}

#define TS_META_DENSITIES 4096 /* past this many steps x layers, each step's mean over the layers */

/* ", Attention density by step and layer: a b ...; c d ..." (three decimals, steps apart by
 * "; ") for a run with a schedule, or where that is over TS_META_DENSITIES values (a long run
 * of a deep model; a .mov comment holds 64 KiB) ", Attention density by step: a; c; ..."
 * (each step's mean over the layers); "" without a schedule. malloc'd. */
static char *density_table(const tessera_params *p, const tessera_output *o) {
    const int on = o && o->attn_density && (p->attn || p->attn_schedule) && o->n_steps > 0 && o->attn_layers > 0;
    const int64_t n = on ? (int64_t)o->n_steps * o->attn_layers : 0;
    const int per_step = n > TS_META_DENSITIES;
    const char *head = per_step ? ", Attention density by step:" : ", Attention density by step and layer:";
    char *s = malloc(strlen(head) + (size_t)(per_step ? o->n_steps : n) * 8 + 1), *e = s;
    if (!s) return NULL;
    *s = 0;
    if (!n) return s;
    e += sprintf(e, "%s", head);
    for (int i = 0; i < o->n_steps; i++) {
        double mean = 0;
        for (int l = 0; l < o->attn_layers; l++) {
            double d = o->attn_density[(int64_t)i * o->attn_layers + l];
            d = d > 0 ? (d < 1 ? d : 1.0) : 0.0; /* a fraction: 6 characters */
            if (!per_step) e += sprintf(e, "%s%.3f", l ? " " : i ? "; " : " ", d);
            mean += d / o->attn_layers;
        }
        if (per_step) e += sprintf(e, "%s%.3f", i ? "; " : " ", mean > 0 ? (mean < 1 ? mean : 1.0) : 0.0);
    }
    return s;
}

/* ", Attention notes: \"a; b\"" for a run whose schedule left notes (one a line: joined by
 * "; ", quoted as JSON quotes a string, since a note may hold commas); "" otherwise. malloc'd. */
static char *notes_text(const tessera_output *o) {
    const char *n = o && o->notes ? o->notes : "";
    while (*n == '\n') n++;
    char *s = malloc(strlen(", Attention notes: \"\"") + 6 * strlen(n) + 1), *e = s; /* \u00XX at most */
    if (!s) return NULL;
    *s = 0;
    if (!*n) return s;
    e += sprintf(e, ", Attention notes: \"");
    for (const char *c = n; *c; c++) {
        if (*c == '\n') { /* between notes; none after the last */
            const char *r = c;
            while (*r == '\n') r++;
            if (*r) *e++ = ';', *e++ = ' ';
            c = r - 1;
        } else if (*c == '"' || *c == '\\') *e++ = '\\', *e++ = *c;
        else if ((unsigned char)*c < 0x20) e += sprintf(e, "\\u%04x", (unsigned)(unsigned char)*c);
        else *e++ = *c;
    }
    *e++ = '"', *e = 0;
    return s;
}

char *tessera_format_parameters(const tessera *t, const tessera_params *p, const tessera_output *o) {
    const char *neg = p->negative_prompt ? p->negative_prompt : "";
    const char *sched = p->attn_schedule ? p->attn_schedule : p->attn ? p->attn : "dense";
    long long seed = o ? (long long)o->seed : (long long)p->seed;
    double density = o ? o->attn_mean : 1.0;
    char *table = density_table(p, o), *notes = notes_text(o);
    if (!table || !notes) {
        free(table), free(notes);
        return NULL;
    }
    const char *fmt = "%s\nNegative prompt: %s\nSteps: %d, Sampler: %s, CFG scale: %g, Seed: %lld, Size: %dx%d, "
                      "Model: %s, Frames: %d, Flow shift: %g, Attention schedule: %s, Attention density: %.4f%s%s, "
                      "Version: Tessera %s";
#define ARGS p->prompt, neg, p->steps, tessera_sampler_name(p->sampler), (double)p->cfg_scale, seed, p->width, \
             p->height, t ? t->name : "unknown", p->frames, p->flow_shift, sched, density, table, notes, \
             tessera_version()
    int n = snprintf(NULL, 0, fmt, ARGS);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) snprintf(s, (size_t)n + 1, fmt, ARGS);
#undef ARGS
    free(table), free(notes);
    return s;
}

int tessera_output_name_ok(const char *path) { return ts_output_kind(path) != TS_OUT_UNKNOWN; }

tessera_status tessera_write(const tessera_output *o, const char *path, const char *parameters,
                             int fps, char *note, size_t note_n, tessera_error *err) {
    ts_err e = {0};
    ts_status st = TS_OK;
    if (note && note_n) note[0] = 0;
    switch (ts_output_kind(path)) {
    case TS_OUT_PNG:
        if (o->frames != 1)
            st = TS_ERR(&e, TS_ERR_INVALID_ARG, "'%s' holds one image but there are %d frames: name it like out_%%03d.png "
                        "for one PNG per frame, or .mp4/.webm/.gif", path, o->frames);
        else st = ts_png_write(path, o->rgb, o->width, o->height, parameters, &e);
        break;
    case TS_OUT_PNG_SEQ:
        st = ts_png_write_seq(path, o->rgb, o->frames, o->width, o->height, parameters, &e);
        break;
    case TS_OUT_MP4:
    case TS_OUT_WEBM:
    case TS_OUT_GIF:
        st = ts_video_write(path, o->rgb, o->frames, o->width, o->height, fps, parameters, note, note_n, &e);
        break;
    default:
        st = TS_ERR(&e, TS_ERR_INVALID_ARG, "'%s': unknown output format (use .png, name_%%03d.png, .mp4, .webm or .gif)", path);
    }
    return st == TS_OK ? TESSERA_OK : fail(err, &e);
}

tessera_status tessera_read_parameters(const char *path, char **out, tessera_error *err) {
    ts_err e = {0};
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        TS_ERR(&e, TS_ERR_IO, "cannot open '%s'", path);
        return fail(err, &e);
    }
    unsigned char sig[8] = {0};
    size_t n = fread(sig, 1, 8, fp);
    fclose(fp);
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    ts_status st = n == 8 && memcmp(sig, png_sig, 8) == 0 ? ts_png_read_text(path, "parameters", out, &e)
                                                          : ts_video_read_comment(path, out, &e);
    return st == TS_OK ? TESSERA_OK : fail(err, &e);
}
