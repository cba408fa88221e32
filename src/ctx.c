/* ctx.c — context defaults, workspace, logging, rng; see ctx.h. */
#include "ctx.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "arena.h"
#include "backend.h"

void ts_ctx_init(ts_ctx *c, uint64_t seed) {
    memset(c, 0, sizeof *c);
#ifdef _OPENMP
    c->n_threads = omp_get_max_threads();
#else
    c->n_threads = 1;
#endif
    if (c->n_threads < 1) c->n_threads = 1;
    c->backend = ts_backend_cpu();
    c->log_level = TS_LOG_INFO;
    ts_rng_seed(&c->rng, seed);
}

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define TS_WS_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define TS_WS_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define TS_WS_POISON(p, n) ((void)(p), (void)(n))
#define TS_WS_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

void *ts_workspace_get(ts_workspace *w, int slot, size_t n) {
    if (slot < 0 || slot >= TS_WS_SLOTS || n == 0) return NULL;
    if (w->cap[slot] < n) {
        TS_WS_UNPOISON(w->p[slot], w->cap[slot]);
        free(w->p[slot]);
        w->p[slot] = ts_alloc_big(n, &w->cap[slot]); /* as the arena's: its bf16 copies of q, k, v too */
        if (!w->p[slot]) return NULL;
    }
    /* under AddressSanitizer the bytes past n read as out of bounds, as a malloc of n would */
    TS_WS_UNPOISON(w->p[slot], n);
    TS_WS_POISON((char *)w->p[slot] + n, w->cap[slot] - n);
    return w->p[slot];
}

void ts_workspace_free(ts_workspace *w) {
    for (int i = 0; i < TS_WS_SLOTS; i++) {
        TS_WS_UNPOISON(w->p[i], w->cap[i]);
        free(w->p[i]);
        w->p[i] = NULL, w->cap[i] = 0;
    }
}

void ts_log(const ts_ctx *c, ts_log_level level, const char *fmt, ...) {
    if (!c || !c->log || level > c->log_level) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->log(c->log_user, level, buf);
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void ts_rng_seed(ts_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ts_rng_u64(ts_rng *r) {
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

double ts_rng_uniform(ts_rng *r) { return (double)(ts_rng_u64(r) >> 11) * 0x1.0p-53; }

void ts_rng_normal(ts_rng *r, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = ts_rng_uniform(r), u2 = ts_rng_uniform(r);
        if (u1 < 1e-300) u1 = 1e-300;
        double m = sqrt(-2.0 * log(u1));
        out[i] = (float)(m * cos(2.0 * M_PI * u2));
        if (i + 1 < n) out[i + 1] = (float)(m * sin(2.0 * M_PI * u2));
    }
}
