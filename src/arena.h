/*
 * arena.h — bump allocator for activations.
 *
 * A model step takes all its scratch memory from one arena; nothing is
 * malloc'd inside a step. An arena created with capacity 0 is a *measuring*
 * arena: allocations return NULL-free dummy pointers are never handed out;
 * instead ts_arena_alloc returns NULL and only the high-water mark grows, so a
 * caller can run a "measure" pass of its allocation sequence (no compute) and
 * then create a real arena of ts_arena_peak() bytes.
 *
 * Usage inside a function: size_t m = ts_arena_mark(a); ... allocs ...;
 * ts_arena_reset(a, m); — a stack discipline. Alignment is 64 bytes.
 */
#ifndef TS_SRC_ARENA_H
#define TS_SRC_ARENA_H

#include <stddef.h>

typedef struct ts_arena {
    unsigned char *base; /* owned; NULL for a measuring arena */
    size_t cap;
    size_t used;
    size_t peak;
} ts_arena;

/* Allocates cap bytes (cap == 0: measuring arena). Returns 0 on success. */
int ts_arena_init(ts_arena *a, size_t cap);
void ts_arena_free(ts_arena *a);
/* 64-byte aligned block of n bytes, or NULL when the arena is full (or measuring). A
 * failure is sticky: every later allocation fails as well until ts_arena_reset, so a
 * caller may allocate a whole set and check only the last pointer. */
void *ts_arena_alloc(ts_arena *a, size_t n);
/* Typed helper: n floats. */
#define ts_arena_f32(a, n) ((float *)ts_arena_alloc((a), (size_t)(n) * sizeof(float)))
size_t ts_arena_mark(const ts_arena *a);
void ts_arena_reset(ts_arena *a, size_t mark);
size_t ts_arena_peak(const ts_arena *a);

#endif
