/*
 * unipc.c — UniPC, bh2, order 2, data prediction, for flow matching (α = 1 − σ).
 *
 * Follows diffusers' UniPCMultistepScheduler.step: at step i convert the velocity to a
 * data prediction m_i = x − σ_i·v, correct x with UniC (order of the previous step)
 * using m_i, then predict toward σ_{i+1} with UniP; lower_order_final drops to order 1
 * on the last step, which lands exactly on σ = 0 as x = m_i (handled analytically,
 * λ is infinite there). Coefficients in double; see models.md §6.3.
 */
#include <math.h>
#include <string.h>

#include "sampler_internal.h"

static double lambda_of(double sigma) { return log(1.0 - sigma) - log(sigma); }

ts_status ts_sample_unipc(const double *sg, const float *timesteps, int N, float *x, int64_t n,
                          float *buf, ts_denoise_fn model, void *user, ts_step_fn on_step,
                          void *step_user, ts_err *err) {
    float *v = buf, *m = buf + n, *m1 = buf + 2 * n, *m2 = buf + 3 * n, *last = buf + 4 * n;
    int prev_order = 0, lower_order_nums = 0;
    for (int i = 0; i < N; i++) {
        TS_TRY(model(user, x, n, timesteps[i], i, N, v, err));
        const float si = (float)sg[i];
        for (int64_t j = 0; j < n; j++) m[j] = x[j] - si * v[j];

        if (i > 0) { /* UniC corrector with the previous step's order */
            double h = lambda_of(sg[i]) - lambda_of(sg[i - 1]), hh = -h;
            double phi1 = expm1(hh), Bh = expm1(hh), at = 1.0 - sg[i];
            double ratio = sg[i] / sg[i - 1];
            double r0, r1 = 0.5, rk = 1.0;
            if (prev_order == 2) {
                rk = (lambda_of(sg[i - 2]) - lambda_of(sg[i - 1])) / h;
                double hk = phi1 / hh - 1.0;
                double b1 = hk / Bh;
                hk = hk / hh - 0.5;
                double b2 = hk * 2.0 / Bh;
                r0 = (b1 - b2) / (1.0 - rk);
                r1 = b1 - r0;
            } else {
                r0 = 0.0;
            }
            for (int64_t j = 0; j < n; j++) {
                double m0 = m1[j];
                double corr = r1 * ((double)m[j] - m0);
                if (prev_order == 2) corr += r0 * ((double)m2[j] - m0) / rk;
                x[j] = (float)(ratio * last[j] - at * phi1 * m0 - at * Bh * corr);
            }
        }
        /* history: m2 <- m1 <- m */
        memcpy(m2, m1, (size_t)n * sizeof *m2);
        memcpy(m1, m, (size_t)n * sizeof *m1);
        int order = N - i < 2 ? N - i : 2;
        if (order > lower_order_nums + 1) order = lower_order_nums + 1;
        memcpy(last, x, (size_t)n * sizeof *last);

        /* UniP predictor toward σ_{i+1} */
        if (sg[i + 1] == 0.0) {
            /* σ_t = 0: h → ∞, φ1 = B_h = −1, so x = m0 at order 1 */
            if (order != 1) /* lower_order_final makes the last step order 1 */
                return TS_ERR(err, TS_ERR_INTERNAL, "UniPC: order-2 step onto sigma 0");
            memcpy(x, m1, (size_t)n * sizeof *x);
        } else {
            double h = lambda_of(sg[i + 1]) - lambda_of(sg[i]), hh = -h;
            double phi1 = expm1(hh), Bh = expm1(hh), at = 1.0 - sg[i + 1];
            double ratio = sg[i + 1] / sg[i];
            double rk = order == 2 ? (lambda_of(sg[i - 1]) - lambda_of(sg[i])) / h : 1.0;
            for (int64_t j = 0; j < n; j++) {
                double m0 = m1[j];
                double pred = order == 2 ? 0.5 * ((double)m2[j] - m0) / rk : 0.0;
                x[j] = (float)(ratio * x[j] - at * phi1 * m0 - at * Bh * pred);
            }
        }
        prev_order = order;
        if (lower_order_nums < 2) lower_order_nums++;
        if (on_step) on_step(step_user, i, N, x);
    }
    return TS_OK;
}
