/* attention.c — schedule → plan → backend; see attention.h. */
#include "attention.h"

#include <stdlib.h>

#include "../src/backend.h"
#include "build.h"
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

void ts_head_plans_free(ts_head_plans *hp) {
    for (int64_t i = 0; hp->st && i < hp->nh; i++) ts_plan_store_free(&hp->st[i]);
    free(hp->st), free(hp->p);
    hp->st = NULL, hp->p = NULL, hp->nh = 0;
}

ts_status ts_plan_heads_run(ts_ctx *c, int64_t h0, int64_t nh, ts_head_plan_fn fn, const void *user, const float *q,
                            const float *k, const ts_attn_operands *ops, const ts_lin_branch *lin, float *out,
                            ts_head_plans *hp, ts_err *err) {
    *hp = (ts_head_plans){nh, malloc((size_t)nh * sizeof *hp->p), calloc((size_t)nh, sizeof *hp->st), 0};
    ts_status *rc = malloc((size_t)nh * sizeof *rc);
    ts_err *errs = calloc((size_t)nh, sizeof *errs);
    if (!hp->p || !hp->st || !rc || !errs) {
        free(rc), free(errs);
        return TS_ERR(err, TS_ERR_NOMEM, "out of memory");
    }
    const int nt = c->n_threads > 0 ? c->n_threads : 1;
    (void)nt;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t i = 0; i < nh; i++) rc[i] = fn(user, h0 + i, q, k, &hp->p[i], &hp->st[i], &errs[i]);
    ts_status st = TS_OK;
    for (int64_t i = 0; i < nh && st == TS_OK; i++)
        if (rc[i] != TS_OK) *err = errs[i], st = rc[i];
    free(rc), free(errs);
    ts_plan_store js = {0};
    ts_attn_plan all;
    if (st == TS_OK) st = ts_plan_join_heads(hp->p, nh, &all, &js, err);
    if (st == TS_OK) {
        all.in_bf16 = ops->bf16;
        if (lin) {
            all.lin_w = lin->w, all.lin_b = lin->b, all.lin_all = lin->all;
            all.lin_q = q, all.lin_k = k, all.lin_v = lin->v;
        }
        hp->density = all.density;
        ts_status s = c->backend->attn(c, &all, ops->q, ops->k, ops->v, out);
        if (s != TS_OK) st = TS_ERR(err, s, "attention kernel failed (%s)", ts_status_str(s));
    }
    ts_plan_store_free(&js);
    return st;
}
