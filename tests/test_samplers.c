/*
 * test_samplers.c — Euler and UniPC against diffusers' schedulers (sched_*.safetensors
 * from tools/golden/make_schedulers.py): sigma and timestep grids to 1e-6, and the
 * trajectories of a fake model (guided and plain), step by step, to rel-L2 2e-6; CFG
 * against a float64 combination; error paths (bad steps/shift/arguments, a failing model).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "samplers/sampler.h"
#include "test.h"

typedef struct fake {
    const float *c, *cu;
    int calls[2];  /* per context: 0 cond, 1 uncond */
    int fail_at;   /* step at which to return an error; -1 never */
} fake;

/* v = tanh(x)·(t/1000) + c — the same fake model as the fixture script. */
static ts_status fake_model(void *user, const float *x, int64_t n, float t, int step, int n_steps,
                            int uncond, float *v, ts_err *err) {
    (void)n_steps;
    fake *f = user;
    f->calls[uncond != 0]++;
    if (step == f->fail_at) return TS_ERR(err, TS_ERR_IO, "fake model failed at step %d", step);
    const float *c = uncond ? f->cu : f->c;
    float tt = t / 1000.0f;
    for (int64_t i = 0; i < n; i++) v[i] = tanhf(x[i]) * tt + c[i];
    return TS_OK;
}

/* The conditional fake alone, as a plain ts_denoise_fn. */
static ts_status plain_model(void *user, const float *x, int64_t n, float t, int step, int n_steps,
                             float *v, ts_err *err) {
    return fake_model(user, x, n, t, step, n_steps, 0, v, err);
}

typedef struct traj {
    const ts_st_file *fx;
    const char *key, *kind, *variant; /* variant: "" (guided) or ".plain" */
    int64_t n;
    int seen;      /* on_step calls, to check every step reports in order */
    double worst;  /* largest rel-L2 over the trajectory */
} traj;

static void on_step(void *user, int step, int n_steps, const float *x) {
    traj *t = user;
    TS_CHECK(step == t->seen && step < n_steps, "%s %s: on_step %d of %d, expected step %d", t->kind,
             t->key, step, n_steps, t->seen);
    t->seen++;
    char name[96], what[128];
    snprintf(name, sizeof name, "%s%s.x_%d", t->key, t->variant, step);
    const ts_tensor *ref = ts_st_find(t->fx, name);
    snprintf(what, sizeof what, "%s %s", t->kind, name);
    TS_CHECK(ref != NULL, "fixture has %s", name);
    if (!ref) return;
    /* Measured: 5e-8 (Euler), 2e-7 (UniPC: diffusers computes its coefficients in float32,
     * we in float64). The fake model is smooth, so UniPC's second-order corrector term is
     * small: 2e-6 rather than 1e-5 keeps a 10% error in it visible. */
    ts_test_stats st;
    ts_test_compare(what, x, ref->data, t->n, 2e-6, &st);
    if (st.rel_l2 > t->worst) t->worst = st.rel_l2;
}

static const float *tensor(const ts_st_file *fx, const char *name) {
    const ts_tensor *t = ts_st_find(fx, name);
    TS_CHECK(t != NULL, "fixture has %s", name);
    return t ? t->data : NULL;
}

static void run(ts_sampler_kind kind) {
    const char *kname = ts_sampler_name(kind);
    char fname[64];
    snprintf(fname, sizeof fname, "sched_%s.safetensors", kname);
    ts_st_file *fx = NULL;
    ts_err e = {0};
    if (ts_st_open(&fx, ts_test_fixture(fname), &e) != TS_OK) {
        TS_CHECK(0, "%s", e.msg);
        return;
    }
    const ts_tensor *x0 = ts_st_find(fx, "x0");
    fake f = {tensor(fx, "c"), tensor(fx, "c_uncond"), {0, 0}, -1};
    TS_CHECK(x0 && f.c && f.cu, "fixture inputs");
    if (!x0 || !f.c || !f.cu) {
        ts_st_close(fx);
        return;
    }
    const int64_t n = ts_tensor_numel(x0);
    float *x = malloc((size_t)n * sizeof *x), *scratch = malloc((size_t)n * sizeof *scratch);
    ts_ctx c;
    ts_ctx_init(&c, 0);
    const struct { int steps; double shift; } cases[] = {{4, 3.0},  {10, 5.0}, {50, 5.0},
                                                         {7, 1.0},  {1, 5.0},  {2, 3.0}};
    double worst = 0, worst_s = 0, worst_t = 0;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int N = cases[ci].steps;
        const double shift = cases[ci].shift;
        char key[32], name[64];
        snprintf(key, sizeof key, "%d_%g", N, shift);

        double sg[64];
        float ts[64];
        TS_CHECK(ts_flow_sigmas(kind, N, shift, sg, ts, &e) == TS_OK, "%s", e.msg);
        snprintf(name, sizeof name, "%s.sigmas", key);
        const ts_tensor *rs = ts_st_find(fx, name);
        snprintf(name, sizeof name, "%s.timesteps", key);
        const ts_tensor *rt = ts_st_find(fx, name);
        TS_CHECK(rs && rt && ts_tensor_numel(rs) == N + 1 && ts_tensor_numel(rt) == N,
                 "%s %s: fixture grids of %d steps", kname, key, N);
        if (!rs || !rt || ts_tensor_numel(rs) != N + 1 || ts_tensor_numel(rt) != N) continue;
        double max_s = 0, max_t = 0;
        for (int i = 0; i <= N; i++) max_s = fmax(max_s, fabs(sg[i] - ((const float *)rs->data)[i]));
        for (int i = 0; i < N; i++) max_t = fmax(max_t, fabs((double)ts[i] - ((const float *)rt->data)[i]));
        TS_CHECK(max_s <= 1e-6, "%s %s sigmas: max diff %.3e", kname, key, max_s);
        TS_CHECK(max_t <= 1e-6, "%s %s timesteps: max diff %.3e", kname, key, max_t);
        worst_s = fmax(worst_s, max_s), worst_t = fmax(worst_t, max_t);

        /* guided trajectory (g = 5), and the plain one where the fixture has it */
        for (int plain = 0; plain < 2; plain++) {
            snprintf(name, sizeof name, "%s.plain.x_0", key);
            if (plain && !ts_st_find(fx, name)) continue;
            memcpy(x, x0->data, (size_t)n * sizeof *x);
            ts_cfg g = {fake_model, &f, 5.0f, scratch};
            traj t = {fx, key, kname, plain ? ".plain" : "", n, 0, 0};
            ts_status s = plain ? ts_sample_flow(&c, kind, N, shift, x, n, plain_model, &f, on_step, &t, &e)
                                : ts_sample_flow(&c, kind, N, shift, x, n, ts_cfg_denoise, &g, on_step, &t, &e);
            TS_CHECK(s == TS_OK, "%s %s: %s", kname, key, e.msg);
            TS_CHECK(t.seen == N, "%s %s%s: %d steps reported, expected %d", kname, key, t.variant, t.seen, N);
            worst = fmax(worst, t.worst);
        }
    }
    printf("%s: worst sigma diff %.2e, timestep diff %.2e, trajectory rel-L2 %.2e\n", kname, worst_s,
           worst_t, worst);
    free(x), free(scratch);
    ts_st_close(fx);
}

/* CFG on random inputs against a float64 combination; scale 1 makes a single pass. */
static void test_cfg(void) {
    enum { N = 257 };
    float x[N], c[N], cu[N], v[N], scratch[N];
    ts_test_randn(x, N, 1, 1.5f);
    ts_test_randn(c, N, 2, 1.0f);
    ts_test_randn(cu, N, 3, 1.0f);
    fake f = {c, cu, {0, 0}, -1};
    ts_err e = {0};
    const float t = 731.0f, scale = 5.0f;
    ts_cfg g = {fake_model, &f, scale, scratch};
    TS_CHECK(ts_cfg_denoise(&g, x, N, t, 3, 10, v, &e) == TS_OK, "cfg: %s", e.msg);
    TS_CHECK(f.calls[0] == 1 && f.calls[1] == 1, "cfg g=5: one pass each (cond %d, uncond %d)",
             f.calls[0], f.calls[1]);
    float ref[N];
    for (int i = 0; i < N; i++) {
        double th = tanh((double)x[i]) * (t / 1000.0);
        double vc = th + c[i], vu = th + cu[i];
        ref[i] = (float)(vu + scale * (vc - vu));
    }
    ts_test_compare("cfg g=5 vs float64", v, ref, N, 1e-6, NULL);

    g.scale = 1.0f, g.scratch = NULL, f.calls[0] = f.calls[1] = 0;
    TS_CHECK(ts_cfg_denoise(&g, x, N, t, 3, 10, v, &e) == TS_OK, "cfg g=1: %s", e.msg);
    TS_CHECK(f.calls[0] == 1 && f.calls[1] == 0, "cfg g=1: conditional pass only (cond %d, uncond %d)",
             f.calls[0], f.calls[1]);
    for (int i = 0; i < N; i++) ref[i] = tanhf(x[i]) * (t / 1000.0f) + c[i];
    TS_CHECK(memcmp(v, ref, sizeof v) == 0, "cfg g=1 is the conditional model");

    g.scale = 3.0f, f.calls[0] = 0;
    TS_CHECK(ts_cfg_denoise(&g, x, N, t, 3, 10, v, &e) == TS_ERR_INVALID_ARG && strstr(e.msg, "scratch") &&
                 f.calls[0] == 0,
             "cfg without scratch rejected before any pass: %s", e.msg);
    g.scale = NAN, g.scratch = scratch;
    TS_CHECK(ts_cfg_denoise(&g, x, N, t, 3, 10, v, &e) == TS_ERR_INVALID_ARG && strstr(e.msg, "scale"),
             "cfg NaN scale rejected: %s", e.msg);
    g.scale = 5.0f, f.fail_at = 3;
    TS_CHECK(ts_cfg_denoise(&g, x, N, t, 3, 10, v, &e) == TS_ERR_IO && strstr(e.msg, "fake model failed"),
             "cfg passes the model's error on: %s", e.msg);
}

static void count_steps(void *user, int step, int n_steps, const float *x) {
    (void)step, (void)n_steps, (void)x;
    (*(int *)user)++;
}

static void test_errors(void) {
    ts_err e = {0};
    double sg[8];
    float ts[8];
    TS_CHECK(ts_flow_sigmas(TS_SAMPLER_EULER, 0, 3.0, sg, ts, &e) == TS_ERR_INVALID_ARG && strstr(e.msg, "steps"),
             "0 steps rejected: %s", e.msg);
    TS_CHECK(ts_flow_sigmas(TS_SAMPLER_UNIPC, 4, -1.0, sg, ts, &e) == TS_ERR_INVALID_ARG && strstr(e.msg, "shift"),
             "negative shift rejected: %s", e.msg);
    TS_CHECK(ts_flow_sigmas(TS_SAMPLER_EULER, 4, 0.0, sg, ts, &e) == TS_ERR_INVALID_ARG && strstr(e.msg, "shift"),
             "zero shift rejected: %s", e.msg);
    TS_CHECK(ts_flow_sigmas(TS_SAMPLER_EULER, 4, NAN, sg, ts, &e) == TS_ERR_INVALID_ARG && strstr(e.msg, "shift"),
             "NaN shift rejected: %s", e.msg);
    TS_CHECK(ts_flow_sigmas((ts_sampler_kind)7, 4, 3.0, sg, ts, &e) == TS_ERR_INVALID_ARG && strstr(e.msg, "sampler"),
             "unknown sampler rejected: %s", e.msg);

    enum { N = 40 };
    float x[N], c[N];
    ts_test_randn(x, N, 11, 1.0f);
    ts_test_randn(c, N, 12, 1.0f);
    fake f = {c, c, {0, 0}, -1};
    ts_ctx ctx;
    ts_ctx_init(&ctx, 0);
    for (int k = 0; k < TS_SAMPLER_COUNT; k++) {
        const char *kn = ts_sampler_name((ts_sampler_kind)k);
        TS_CHECK(ts_sample_flow(&ctx, k, 0, 3.0, x, N, plain_model, &f, NULL, NULL, &e) == TS_ERR_INVALID_ARG &&
                     strstr(e.msg, "steps"), "%s: 0 steps rejected: %s", kn, e.msg);
        TS_CHECK(ts_sample_flow(&ctx, k, 4, -2.0, x, N, plain_model, &f, NULL, NULL, &e) == TS_ERR_INVALID_ARG &&
                     strstr(e.msg, "shift"), "%s: negative shift rejected: %s", kn, e.msg);
        TS_CHECK(ts_sample_flow(&ctx, k, 4, 3.0, x, 0, plain_model, &f, NULL, NULL, &e) == TS_ERR_INVALID_ARG,
                 "%s: empty latent rejected: %s", kn, e.msg);
        TS_CHECK(ts_sample_flow(&ctx, k, 4, 3.0, x, N, NULL, &f, NULL, NULL, &e) == TS_ERR_INVALID_ARG &&
                     strstr(e.msg, "model"), "%s: no model rejected: %s", kn, e.msg);
        /* a model failing at step 2 stops the run with its own error, after two steps */
        int steps = 0;
        f.fail_at = 2, f.calls[0] = 0;
        TS_CHECK(ts_sample_flow(&ctx, k, 6, 3.0, x, N, plain_model, &f, count_steps, &steps, &e) == TS_ERR_IO &&
                     strstr(e.msg, "step 2") && steps == 2 && f.calls[0] == 3,
                 "%s: model error stops the run (steps %d, calls %d): %s", kn, steps, f.calls[0], e.msg);
        f.fail_at = -1;
    }
    TS_CHECK(ts_sample_flow(&ctx, (ts_sampler_kind)9, 4, 3.0, x, N, plain_model, &f, NULL, NULL, &e) ==
                 TS_ERR_INVALID_ARG, "unknown sampler rejected: %s", e.msg);

    ts_sampler_kind k;
    TS_CHECK(ts_sampler_from_name("unipc", &k) == 0 && k == TS_SAMPLER_UNIPC && ts_sampler_from_name("euler", &k) == 0 &&
                 k == TS_SAMPLER_EULER && ts_sampler_from_name("dpm", &k) == -1,
             "sampler names");
    TS_CHECK(strcmp(ts_sampler_name(TS_SAMPLER_UNIPC), "unipc") == 0 && strcmp(ts_sampler_name(TS_SAMPLER_COUNT), "?") == 0,
             "sampler name of an unknown kind");
}

int main(void) {
    run(TS_SAMPLER_EULER);
    run(TS_SAMPLER_UNIPC);
    test_cfg();
    test_errors();
    return ts_test_summary("samplers");
}
