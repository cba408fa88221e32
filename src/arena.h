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

/* n bytes for a large buffer, to be released with free(): from 32 MiB up, aligned to 2 MiB,
 * rounded up to a multiple of it and advised as transparent huge pages (Linux madvise; where
 * the kernel's THP setting is "never" the advice does nothing), else 64-byte aligned.
 * Attention reads a head's rows of q, k and v H·D floats apart, each in another 4 KiB page:
 * with 2 MiB pages the TLB covers them (tessera-bench attn, 12 heads: top-k block-sparse at
 * 10 % 1-4 % faster at 4,096 and 16,384 tokens, SLA 0-3 %; bench/README). The first touch of
 * a huge page can cost more (the kernel may compact memory to find one; the Wan DiT's first
 * forward at 7,800 tokens took 0.2-0.6 s longer on this VM, the later ones the same), hence
 * only the large buffers, which a render touches over and over. *cap (may be NULL) gets the
 * size allocated. NULL when out of memory. */
void *ts_alloc_big(size_t n, size_t *cap);
/* Allocates cap bytes (cap == 0: measuring arena), through ts_alloc_big. Returns 0 on success. */
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
