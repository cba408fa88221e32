/*
 * tessera_bench.c — benchmark driver (a tool, not a test).
 *
 *   tessera-bench dit --model W.safetensors --inputs in.safetensors [--out out.safetensors]
 *                     [--threads N] [--repeats N] [--json]
 *       one Wan DiT forward on inputs x [1,C,F,H,W], t [1], context [1,L,D]; prints the
 *       best time over the repeats (and the output, for checking against PyTorch).
 *   tessera-bench vae --model W.safetensors --inputs in.safetensors [--threads N] [--json]
 *                     [--half-cache]
 *       Wan-VAE decode of latents [1,16,t,h,w] (frames streamed and dropped); prints the
 *       time and the process's peak RSS. --half-cache: fp16 conv caches (low memory).
 *
 * tools/bench/bench_dit.py and bench_vae.py make the weights and run the PyTorch side in
 * the same run. Unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for benchmark runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "ctx.h"
#include "dit/wan.h"
#include "safetensors.h"
#include "vae/wan_vae.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: tessera-bench dit|vae --model FILE --inputs FILE [--out FILE] "
               "[--threads N] [--repeats N] [--json] [--half-cache (vae)]\n");
}

typedef struct opts {
    const char *mode, *model, *inputs, *out;
    int threads, repeats, json, half_cache;
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
        t0 = now_s();
        if (wan_forward(c, m, NULL, 0, 1, x->data, F, H, W, ((float *)t->data)[0], ctxt->data, L,
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
    if (o->json)
        printf("{\"load_s\": %.4f, \"forward_s\": %.4f, \"tokens\": %lld, \"threads\": %d, "
               "\"peak_rss_mb\": %.1f}\n",
               t_load, best, (long long)(F * H * W / 4), c->n_threads, peak_rss_mb());
    else
        printf("dit forward: %.3f s (load %.2f s), peak RSS %.0f MB\n", best, t_load,
               peak_rss_mb());
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

int main(int argc, char **argv) {
    opts o = {0};
    o.repeats = 1;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    o.mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            o.json = 1;
            continue;
        }
        if (strcmp(a, "--half-cache") == 0) {
            o.half_cache = 1;
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
        else {
            fprintf(stderr, "tessera-bench: unknown flag %s\n", a);
            return 2;
        }
        i++;
    }
    if (!o.model || !o.inputs || o.repeats < 1) {
        usage(stderr);
        return 2;
    }
    ts_ctx c;
    ts_ctx_init(&c, 0);
    if (o.threads > 0) c.n_threads = o.threads;
    if (strcmp(o.mode, "dit") == 0) return bench_dit(&o, &c);
    if (strcmp(o.mode, "vae") == 0) return bench_vae(&o, &c);
    fprintf(stderr, "tessera-bench: unknown mode '%s' (dit or vae)\n", o.mode);
    return 2;
}
