/*
 * spm_shim.h — a C view of libsentencepiece (the shim is the only C++ in Tessera).
 *
 * Every call catches C++ exceptions; failures return -1 with a message in msg.
 */
#ifndef TS_SRC_TEXT_SPM_SHIM_H
#define TS_SRC_TEXT_SPM_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ts_spm ts_spm;

/* Piece types, as in sentencepiece_model.proto. */
enum { TS_SPM_NORMAL = 1, TS_SPM_UNKNOWN = 2, TS_SPM_CONTROL = 3, TS_SPM_USER_DEFINED = 4,
       TS_SPM_UNUSED = 5, TS_SPM_BYTE = 6 };

/* From a model file (spiece.model) or a serialized ModelProto in memory. */
int ts_spm_load_file(ts_spm **out, const char *path, char *msg, size_t msg_n);
int ts_spm_load_proto(ts_spm **out, const void *data, size_t n, char *msg, size_t msg_n);
void ts_spm_free(ts_spm *s); /* NULL is a no-op */

int ts_spm_piece_count(const ts_spm *s);
/* Piece type of id (TS_SPM_*), or 0 when out of range. */
int ts_spm_piece_type(const ts_spm *s, int id);
/* Copies piece id into buf (NUL-terminated, truncated to n); returns its length or -1. */
int ts_spm_piece(const ts_spm *s, int id, char *buf, size_t n);

float ts_spm_score(const ts_spm *s, int id);

/* The normalised text SentencePiece segments (its charsmap, whitespace handling and the ▁
 * marks), as the concatenation of the pieces it encodes the text into (unknown pieces
 * carry their surface); *out malloc'd and NUL-terminated. */
int ts_spm_normalize(const ts_spm *s, const char *text, size_t len, char **out, size_t *n_out,
                     char *msg, size_t msg_n);

#ifdef __cplusplus
}
#endif

#endif
