/* schedule_internal.h — the schedule's entry for ts_attention (attention.c). */
#ifndef TS_ATTENTION_SCHEDULE_INTERNAL_H
#define TS_ATTENTION_SCHEDULE_INTERNAL_H

#include "attention.h"
#include "schedule.h"

/* Runs one attention call as the schedule says: per head, the last matching rule's method
 * (consecutive heads with the same rule in one kernel call), and records the density. */
ts_status ts_attn_schedule_run(ts_ctx *c, ts_attn_schedule *s, const ts_attn_site *site, int64_t nq, int64_t nk,
                               int64_t heads, int64_t head_dim, const float *q, const float *k, const float *v,
                               float *out, ts_err *err);

#endif
