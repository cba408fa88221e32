/* arena.c — bump allocator; see arena.h. */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define TS_ARENA_ALIGN 64
#define TS_BIG_PAGE ((size_t)2 << 20) /* x86-64's huge page */
#define TS_BIG_MIN ((size_t)32 << 20)  /* buffers from this size up: on huge pages */

void *ts_alloc_big(size_t n, size_t *cap) {
    const size_t al = n >= TS_BIG_MIN ? TS_BIG_PAGE : TS_ARENA_ALIGN;
    if (cap) *cap = 0;
    if (n == 0 || n > SIZE_MAX - al) return NULL;
    const size_t c = (n + al - 1) / al * al;
    void *p = aligned_alloc(al, c);
#ifdef MADV_HUGEPAGE
    if (p && al == TS_BIG_PAGE) (void)madvise(p, c, MADV_HUGEPAGE); /* advice: failure changes nothing */
#endif
    if (cap) *cap = p ? c : 0;
    return p;
}

int ts_arena_init(ts_arena *a, size_t cap) {
    memset(a, 0, sizeof *a);
    if (cap == 0) return 0;
    cap = (cap + TS_ARENA_ALIGN - 1) & ~(size_t)(TS_ARENA_ALIGN - 1);
    a->base = ts_alloc_big(cap, NULL); /* maybe more than cap: the arena hands out cap */
    if (!a->base) return -1;
    a->cap = cap;
    return 0;
}

void ts_arena_free(ts_arena *a) {
    if (!a) return;
    free(a->base);
    memset(a, 0, sizeof *a);
}

void *ts_arena_alloc(ts_arena *a, size_t n) {
    size_t start = (a->used + TS_ARENA_ALIGN - 1) & ~(size_t)(TS_ARENA_ALIGN - 1);
    size_t end = start + n;
    if (end < start) return NULL; /* overflow */
    if (!a->base || end > a->cap) {
        if (!a->base) { /* measuring: record the high-water mark only */
            a->used = end;
            if (end > a->peak) a->peak = end;
        } else {
            a->used = a->cap; /* sticky: later allocations fail too, until a reset */
        }
        return NULL;
    }
    a->used = end;
    if (end > a->peak) a->peak = end;
    return a->base + start;
}

size_t ts_arena_mark(const ts_arena *a) { return a->used; }

void ts_arena_reset(ts_arena *a, size_t mark) {
    if (mark <= a->used) a->used = mark;
}

size_t ts_arena_peak(const ts_arena *a) { return a->peak; }
