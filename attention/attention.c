/* attention.c — schedule → plan → backend; see attention.h. */
#include "attention.h"

#include "../src/backend.h"
#include "schedule_internal.h"

ts_status ts_attention(ts_ctx *c, ts_attn_schedule *sched, const ts_attn_site *site,
                       int64_t nq, int64_t nk, int64_t heads, int64_t head_dim, const float *q,
                       const float *k, const float *v, float *out, ts_err *err) {
    if (nq <= 0 || nk <= 0 || heads <= 0 || head_dim <= 0)
        return TS_ERR(err, TS_ERR_INVALID_ARG, "attention: bad shape nq=%lld nk=%lld h=%lld d=%lld",
                      (long long)nq, (long long)nk, (long long)heads, (long long)head_dim);
    if (!c->backend->attn)
        return TS_ERR(err, TS_ERR_UNSUPPORTED, "backend %s has no attention kernel", c->backend->name);
    if (sched) return ts_attn_schedule_run(c, sched, site, nq, nk, heads, head_dim, q, k, v, out, err);
    ts_attn_plan plan = ts_attn_plan_dense(nq, nk, heads, head_dim, TS_ATTN_BLK_Q, TS_ATTN_BLK_K);
    ts_status s = c->backend->attn(c, &plan, q, k, v, out);
    if (s != TS_OK) return TS_ERR(err, s, "attention kernel failed (%s)", ts_status_str(s));
    return TS_OK;
}
