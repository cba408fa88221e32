/*
 * namemap.h — binding checkpoint tensors to a model's weights struct through
 * one name table per model, for both key layouts (original and diffusers).
 *
 * A model declares a table of entries; each entry names a ts_tensor field of its
 * weights struct (by byte offset) and the key in each layout. Keys of per-block
 * entries contain "%d", replaced by the block index; their offsets are relative
 * to the start of block i, at base + block_off + i·block_stride.
 *
 * ts_namemap_bind:
 *   - detects the layout (the one whose keys match more tensors) after stripping a
 *     known prefix ("model.diffusion_model." of ComfyUI files, etc.),
 *   - fills every field with a view of the tensor (no copy),
 *   - fails with TS_ERR_MISSING naming the first missing required key, and with
 *     TS_ERR_UNEXPECTED naming the first checkpoint tensor no entry consumed.
 * Shapes are checked by the model afterwards (it knows its config).
 */
#ifndef TS_SRC_NAMEMAP_H
#define TS_SRC_NAMEMAP_H

#include <stddef.h>

#include "safetensors.h"

typedef enum ts_layout { TS_LAYOUT_ORIGINAL = 0, TS_LAYOUT_DIFFUSERS = 1 } ts_layout;

typedef struct ts_name_entry {
    size_t offset;        /* offsetof the ts_tensor field (in the block struct for per-block) */
    const char *key[2];   /* [TS_LAYOUT_ORIGINAL], [TS_LAYOUT_DIFFUSERS]; NULL = not in that layout */
    int per_block;        /* 1: key has one %d (block index) */
    int optional;         /* 1: may be absent (field left with data == NULL) */
} ts_name_entry;

typedef struct ts_namemap {
    const ts_name_entry *entries;
    int n_entries;
    int n_blocks;         /* for per-block entries */
    size_t block_off;     /* offset of block 0 inside the weights struct */
    size_t block_stride;  /* sizeof one block struct */
    const char *const *strip_prefixes; /* NULL-terminated list, or NULL */
    const char *model_name; /* for messages, e.g. "Wan DiT" */
} ts_namemap;

/* Binds into weights (a struct base pointer). On success *layout_out (may be NULL)
 * tells which layout matched. */
ts_status ts_namemap_bind(const ts_namemap *map, ts_weights *w, void *weights,
                          ts_layout *layout_out, ts_err *err);

/* Counts tensors named like "<prefix><int>." (after prefix stripping) to find the
 * block count: returns max index + 1, or 0. E.g. prefix "blocks.". */
int ts_namemap_count_blocks(const ts_weights *w, const char *const *strip_prefixes,
                            const char *prefix);

/* Shape check helper: TS_ERR_SHAPE naming the tensor, expected and actual shapes. */
ts_status ts_check_shape(const ts_tensor *t, const char *what, int ndim, const int64_t *shape,
                         ts_err *err);

/* The text of the config.json in path (a directory) or beside it (a file), malloc'd and
 * NUL-terminated (at most 1 MB read), or NULL when there is none. */
char *ts_config_json_near(const char *path);

/* Copies a small float tensor (bias, norm weight, modulation table) to a new
 * malloc'd fp32 array (*out owned by the caller, free()); NULL tensor → *out NULL. */
ts_status ts_tensor_to_f32_alloc(const ts_tensor *t, float **out, ts_err *err);

#endif
