/*
 * test_samplers.c — Euler and UniPC against diffusers' schedulers (sched_*.safetensors
 * from tools/golden/make_schedulers.py): sigma and timestep grids to 1e-6, and the
 * trajectory of a fake guided model, step by step, to rel-L2 1e-5.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "samplers/sampler.h"
#include "test.h"

typedef struct fake {
    const float *c, *cu;
} fake;

/* v = tanh(x)·(t/1000) + c — the same fake model as the fixture script. */
static ts_status fake_model(void *user, const float *x, int64_t n, float t, int step, int n_steps,
                            int uncond, float *v, ts_err *err) {
    (void)step, (void)n_steps, (void)err;
    const fake *f = user;
    const float *c = uncond ? f->cu : f->c;
    float tt = t / 1000.0f;
    for (int64_t i = 0; i < n; i++) v[i] = tanhf(x[i]) * tt + c[i];
    return TS_OK;
}

typedef struct traj {
    const ts_st_file *fx;
    const char *key, *kind;
    int64_t n;
} traj;

static void on_step(void *user, int step, int n_steps, const float *x) {
    (void)n_steps;
    traj *t = user;
    char name[64];
    snprintf(name, sizeof name, "%s.x_%d", t->key, step);
    const ts_tensor *ref = ts_st_find(t->fx, name);
    char what[96];
    snprintf(what, sizeof what, "%s %s", t->kind, name);
    TS_CHECK(ref != NULL, "fixture has %s", name);
    if (ref) ts_test_compare(what, x, ref->data, t->n, 1e-5, NULL);
}

static void run(ts_sampler_kind kind) {
    char fname[64];
    snprintf(fname, sizeof fname, "sched_%s.safetensors", ts_sampler_name(kind));
    ts_st_file *fx = NULL;
    ts_err e = {0};
    if (ts_st_open(&fx, ts_test_fixture(fname), &e) != TS_OK) {
        TS_CHECK(0, "%s", e.msg);
        return;
    }
    const ts_tensor *x0 = ts_st_find(fx, "x0");
    int64_t n = ts_tensor_numel(x0);
    fake f = {ts_st_find(fx, "c")->data, ts_st_find(fx, "c_uncond")->data};
    const struct { int steps; double shift; } cases[] = {{4, 3.0}, {10, 5.0}, {50, 5.0}, {7, 1.0}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int N = cases[ci].steps;
        char key[32], name[64];
        snprintf(key, sizeof key, "%d_%g", N, cases[ci].shift);
        double sg[64];
        float ts[64];
        TS_CHECK(ts_flow_sigmas(kind, N, cases[ci].shift, sg, ts, &e) == TS_OK, "%s", e.msg);
        snprintf(name, sizeof name, "%s.sigmas", key);
        const ts_tensor *rs = ts_st_find(fx, name);
        snprintf(name, sizeof name, "%s.timesteps", key);
        const ts_tensor *rt = ts_st_find(fx, name);
        double max_s = 0, max_t = 0;
        for (int i = 0; i <= N; i++) max_s = fmax(max_s, fabs(sg[i] - ((const float *)rs->data)[i]));
        for (int i = 0; i < N; i++) max_t = fmax(max_t, fabs(ts[i] - ((const float *)rt->data)[i]) / 1000.0);
        TS_CHECK(ts_tensor_numel(rs) == N + 1 && max_s <= 1e-6, "%s %s sigmas: max diff %.3e",
                 ts_sampler_name(kind), key, max_s);
        TS_CHECK(ts_tensor_numel(rt) == N && max_t <= 1e-6, "%s %s timesteps/1000: max diff %.3e",
                 ts_sampler_name(kind), key, max_t);
        float *x = malloc((size_t)n * sizeof *x), *scratch = malloc((size_t)n * sizeof *scratch);
        memcpy(x, x0->data, (size_t)n * sizeof *x);
        ts_cfg g = {fake_model, &f, 5.0f, scratch};
        traj t = {fx, key, ts_sampler_name(kind), n};
        ts_ctx c;
        ts_ctx_init(&c, 0);
        TS_CHECK(ts_sample_flow(&c, kind, N, cases[ci].shift, x, n, ts_cfg_denoise, &g, on_step, &t,
                                &e) == TS_OK, "%s", e.msg);
        free(x), free(scratch);
    }
    ts_st_close(fx);
}

int main(void) {
    run(TS_SAMPLER_EULER);
    run(TS_SAMPLER_UNIPC);
    ts_err e = {0};
    double sg[8];
    float ts[8];
    TS_CHECK(ts_flow_sigmas(TS_SAMPLER_EULER, 0, 3.0, sg, ts, &e) == TS_ERR_INVALID_ARG && strstr(e.msg, "steps"),
             "0 steps rejected: %s", e.msg);
    TS_CHECK(ts_flow_sigmas(TS_SAMPLER_UNIPC, 4, -1.0, sg, ts, &e) == TS_ERR_INVALID_ARG && strstr(e.msg, "shift"),
             "negative shift rejected: %s", e.msg);
    ts_sampler_kind k;
    TS_CHECK(ts_sampler_from_name("unipc", &k) == 0 && k == TS_SAMPLER_UNIPC && ts_sampler_from_name("dpm", &k) == -1,
             "sampler names");
    return ts_test_summary("samplers");
}
