/*
 * sigmas.c — sigma/timestep grids of diffusers' flow-matching schedulers.
 *
 * Euler (FlowMatchEulerDiscreteScheduler, static shift s): the init grid is shifted in
 * float32, so σ_max = 1 and σ_min = shift(0.001) in float32; set_timesteps takes a
 * float64 linspace between σ_max·1000 and σ_min·1000, divides by 1000 and shifts
 * again (the double shift of models.md §6.1); σ and t = σ·1000 are float32.
 * UniPC (use_flow_sigmas): linspace(1, 1/1000, N+1)[:N] in float64, shifted once,
 * σ0 −= 1e-6 when it is 1, timesteps = int64(σ·1000) (truncation), σ stored float32.
 */
#include <math.h>
#include <string.h>

#include "sampler.h"

static const char *const names[TS_SAMPLER_COUNT] = {"euler", "unipc"};

const char *ts_sampler_name(ts_sampler_kind k) {
    return (unsigned)k < TS_SAMPLER_COUNT ? names[k] : "?";
}

int ts_sampler_from_name(const char *s, ts_sampler_kind *out) {
    for (int i = 0; i < TS_SAMPLER_COUNT; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (ts_sampler_kind)i;
            return 0;
        }
    return -1;
}

static double shift_d(double s, double sigma) { return s * sigma / (1.0 + (s - 1.0) * sigma); }

/* numpy.linspace(a, b, n)[i]: start + i·step, with the last point exactly b. */
static double linspace(double a, double b, int n, int i) {
    if (n == 1) return a;
    if (i == n - 1) return b;
    return a + (double)i * ((b - a) / (double)(n - 1));
}

ts_status ts_flow_sigmas(ts_sampler_kind kind, int n, double shift, double *sigmas,
                         float *timesteps, ts_err *err) {
    if (n < 1) return TS_ERR(err, TS_ERR_INVALID_ARG, "steps must be at least 1 (got %d)", n);
    if (!(shift > 0) || !isfinite(shift))
        return TS_ERR(err, TS_ERR_INVALID_ARG, "flow shift must be positive (got %g)", shift);
    if (kind == TS_SAMPLER_EULER) {
        float s = (float)shift;
        float smin = 1.0f / 1000.0f;
        smin = s * smin / (1.0f + (s - 1.0f) * smin);
        float smax = s * 1.0f / (1.0f + (s - 1.0f) * 1.0f);
        for (int i = 0; i < n; i++) {
            double t = linspace((double)smax * 1000.0, (double)smin * 1000.0, n, i);
            float sg = (float)shift_d(shift, t / 1000.0);
            sigmas[i] = sg;
            timesteps[i] = sg * 1000.0f;
        }
    } else if (kind == TS_SAMPLER_UNIPC) {
        for (int i = 0; i < n; i++) {
            double sg = shift_d(shift, linspace(1.0, 1.0 / 1000.0, n + 1, i));
            if (i == 0 && fabs(sg - 1.0) < 1e-6) sg -= 1e-6;
            timesteps[i] = (float)(int64_t)(sg * 1000.0);
            sigmas[i] = (float)sg;
        }
    } else {
        return TS_ERR(err, TS_ERR_INVALID_ARG, "unknown sampler %d", (int)kind);
    }
    sigmas[n] = 0.0;
    return TS_OK;
}
