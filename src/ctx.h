/*
 * ctx.h — the context passed down every call: threads, backend, rng, logger,
 * activation arena, kernels' workspace. There are no mutable globals in Tessera; everything a
 * call needs to know about "where and how to run" lives here.
 */
#ifndef TS_SRC_CTX_H
#define TS_SRC_CTX_H

#include <stdint.h>

#include "arena.h"
#include "status.h"

typedef struct ts_backend ts_backend;

typedef enum ts_log_level { TS_LOG_ERROR = 0, TS_LOG_WARN, TS_LOG_INFO, TS_LOG_DEBUG } ts_log_level;

typedef void (*ts_log_fn)(void *user, ts_log_level level, const char *msg);

/* xoshiro256** state; see ts_rng_*. */
typedef struct ts_rng {
    uint64_t s[4];
} ts_rng;

/* Buffers a kernel keeps from one call to the next, one per slot (TS_WS_*): the CPU
 * attention's K and V panels are tens of MiB a call, and glibc maps a block over 32 MiB
 * afresh on every malloc, so each call faulted its pages in again (8,862 minor faults a call
 * at 16,384 tokens). TS_WS_ATTN_BF16 holds the schedule's bf16 copies of q, k, v (a rule with
 * precision bf16), TS_WS_ATTN_LIN SLA's linear-branch sums (for the paper's variant 6 MB a head at
 * 4,096 tokens, 51 MB at 32,760), TS_WS_ATTN_DENSE the dense output beside a scheduled call whose
 * error is measured (ts_attn_schedule_set_error). Owned by the caller; one call at a time; contents are
 * undefined between calls. */
enum { TS_WS_ATTN_SCRATCH, TS_WS_ATTN_KV, TS_WS_ATTN_K16, TS_WS_ATTN_KPK, TS_WS_ATTN_BF16, TS_WS_ATTN_LIN,
       TS_WS_ATTN_DENSE, TS_WS_SLOTS };
typedef struct ts_workspace {
    void *p[TS_WS_SLOTS];
    size_t cap[TS_WS_SLOTS];
} ts_workspace;

/* Slot's buffer, 64-byte aligned, at least n bytes (n > 0), grown where it is smaller (its
 * old contents dropped); NULL when out of memory (the slot is then empty). */
void *ts_workspace_get(ts_workspace *w, int slot, size_t n);
void ts_workspace_free(ts_workspace *w);

typedef struct ts_ctx {
    int n_threads;             /* OpenMP threads for CPU kernels (>= 1) */
    const ts_backend *backend; /* never NULL after ts_ctx_init */
    ts_rng rng;
    ts_log_fn log;             /* NULL: messages are dropped */
    void *log_user;
    ts_log_level log_level;    /* messages above this level are dropped */
    ts_arena *arena;           /* activation scratch; owned by the caller */
    ts_workspace *ws;          /* kernels' buffers kept between calls; owned by the caller;
                                * NULL: they are allocated and freed in every call */
} ts_ctx;

/* Defaults: CPU backend, n_threads = OpenMP's default (or 1), rng seeded with seed,
 * no logger, no arena. */
void ts_ctx_init(ts_ctx *c, uint64_t seed);

void ts_log(const ts_ctx *c, ts_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void ts_rng_seed(ts_rng *r, uint64_t seed);
uint64_t ts_rng_u64(ts_rng *r);
/* Uniform in [0, 1). */
double ts_rng_uniform(ts_rng *r);
/* n standard normal samples (Box-Muller). */
void ts_rng_normal(ts_rng *r, float *out, int64_t n);

#endif
