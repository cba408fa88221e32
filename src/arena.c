/* arena.c — bump allocator; see arena.h. */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

#define TS_ARENA_ALIGN 64

int ts_arena_init(ts_arena *a, size_t cap) {
    memset(a, 0, sizeof *a);
    if (cap == 0) return 0;
    cap = (cap + TS_ARENA_ALIGN - 1) & ~(size_t)(TS_ARENA_ALIGN - 1);
    a->base = aligned_alloc(TS_ARENA_ALIGN, cap);
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
