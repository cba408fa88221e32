/*
 * safetensors.h — mmap reader (fully validated) and atomic writer.
 *
 * Format: u64 little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end)}, "__metadata__": {str: str}},
 * then the data section; offsets are relative to the data section.
 *
 * ts_st_open validates everything before returning: header length within the
 * file, JSON parses, every entry has a known dtype, a shape of non-negative
 * ints, offsets inside the data section, end - begin == numel·dtype_size, no
 * two entries overlap, no duplicate names. Anything else is TS_ERR_FORMAT with
 * a message naming the file and tensor. Never crashes on bad input.
 *
 * ts_weights groups one or more files (a single file, a sharded checkpoint via
 * *.safetensors.index.json, or every *.safetensors in a directory) into one
 * name → tensor lookup, with a "used" flag per tensor so a model loader can
 * report tensors it did not consume.
 */
#ifndef TS_SRC_SAFETENSORS_H
#define TS_SRC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tensor.h"

typedef struct ts_st_file ts_st_file;

/* Opens and validates path (mmap, read-only). *out owned by the caller: ts_st_close. */
ts_status ts_st_open(ts_st_file **out, const char *path, ts_err *err);
/* Same over a caller-owned buffer (kept alive until close; used by the fuzzer). */
ts_status ts_st_open_mem(ts_st_file **out, const void *data, size_t size, const char *label,
                         ts_err *err);
void ts_st_close(ts_st_file *f); /* NULL is a no-op */

int ts_st_count(const ts_st_file *f);
/* i-th tensor in file order (sorted by data offset); view into the mapping. */
const ts_tensor *ts_st_tensor(const ts_st_file *f, int i);
/* By name, or NULL. */
const ts_tensor *ts_st_find(const ts_st_file *f, const char *name);
/* __metadata__ value, or NULL. */
const char *ts_st_meta(const ts_st_file *f, const char *key);
const char *ts_st_path(const ts_st_file *f);
/* Token ids: f's tensor name, [B, L] of any integer dtype (or F32 holding integers), as a
 * malloc'd int32 copy in *out (*t_out: the tensor, when t_out). Absent: an error naming it
 * when required, else TS_OK with *out NULL. B >= 0: the shape must be [B, L]. */
ts_status ts_st_ids(const ts_st_file *f, const char *name, int required, int64_t B, int64_t L, int32_t **out,
                    const ts_tensor **t_out, ts_err *err);

/* --- a set of files as one checkpoint --- */
typedef struct ts_weights ts_weights;

/* path: a .safetensors file, a *.safetensors.index.json, or a directory holding
 * either (an index.json is preferred; otherwise every *.safetensors in it).
 * Duplicate tensor names across files are an error. */
ts_status ts_weights_open(ts_weights **out, const char *path, ts_err *err);
/* A weights set from a list of views (names, dtypes, shapes; data may be NULL), for
 * checking a checkpoint's key set without its data. Names and views are copied. */
ts_status ts_weights_from_list(ts_weights **out, const ts_tensor *list, int n, ts_err *err);
void ts_weights_close(ts_weights *w); /* NULL is a no-op */
int ts_weights_count(const ts_weights *w);
const ts_tensor *ts_weights_at(const ts_weights *w, int i);
/* Looks a name up and marks it used; NULL if absent. */
const ts_tensor *ts_weights_get(ts_weights *w, const char *name);
/* Looks a name up without marking it. */
const ts_tensor *ts_weights_peek(const ts_weights *w, const char *name);
int ts_weights_is_used(const ts_weights *w, int i);
void ts_weights_clear_used(ts_weights *w);
/* First metadata value for key across files, or NULL. */
const char *ts_weights_meta(const ts_weights *w, const char *key);
/* Hands the pages of [data, data + n) back to the kernel where they are part of one of w's
 * file mappings (madvise MADV_DONTNEED): the process stops holding them, the page cache
 * keeps them, and the next read faults them in again unchanged (the mappings are
 * read-only, private and never written). For a model that streams through its weights once
 * per call (the VAE) this keeps the resident set to the weights in use. Anything outside a
 * mapping (a memory buffer, a converted copy) is left alone. */
void ts_weights_release(const ts_weights *w, const void *data, size_t n);
/* The same for every page of w's mappings (NULL: nothing): for weights done with for a
 * while, e.g. a text encoder's once a render's prompts are encoded. */
void ts_weights_release_all(const ts_weights *w);

/* --- writer --- */
typedef struct ts_st_item {
    const char *name;
    ts_tensor t; /* contiguous; data read from t.data */
} ts_st_item;

/* Writes items (+ optional metadata key/value pairs, n_meta pairs in meta[2*i], meta[2*i+1])
 * to path through a temporary file in the same directory and rename(), so a
 * failure never leaves a partial file under path. */
ts_status ts_st_write(const char *path, const ts_st_item *items, int n_items,
                      const char *const *meta, int n_meta, ts_err *err);

#endif
