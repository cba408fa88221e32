/*
 * tokenizer.h — the SentencePiece (unigram) tokenizer of T5 / UMT5 text encoders, giving the
 * ids transformers' T5Tokenizer gives, as WanPipeline calls it.
 *
 * Reads a checkpoint's spiece.model, or, where only that is present, its tokenizer.json
 * (a Unigram model: vocabulary, scores and the precompiled normaliser are turned into a
 * SentencePiece model in memory); a directory holding either works too. Both run through
 * libsentencepiece.
 *
 * Encoding follows the reference: special tokens written in the text (<pad>, </s>, <unk>,
 * <extra_id_N>, ...) are matched first and give their ids, the text between them is
 * encoded by SentencePiece, </s> is appended, and truncation to max_len keeps the final
 * </s>. ts_text_clean is the prompt cleaning diffusers and Wan apply first.
 */
#ifndef TS_SRC_TEXT_TOKENIZER_H
#define TS_SRC_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "../status.h"

typedef struct ts_tokenizer ts_tokenizer;

/* path: spiece.model (any SentencePiece model file), tokenizer.json, or a directory with
 * spiece.model (preferred) or tokenizer.json. */
ts_status ts_tokenizer_open(ts_tokenizer **out, const char *path, ts_err *err);
void ts_tokenizer_free(ts_tokenizer *t); /* NULL is a no-op */

int ts_tokenizer_vocab_size(const ts_tokenizer *t);
int ts_tokenizer_eos_id(const ts_tokenizer *t);
int ts_tokenizer_pad_id(const ts_tokenizer *t);
/* model_max_length from a tokenizer_config.json beside the model (0: none given). */
int64_t ts_tokenizer_max_length(const ts_tokenizer *t);

/* Encodes NUL-terminated UTF-8 text into ids[0 .. *n_out) (at most max_len >= 1 ids, the
 * last one </s>). Invalid UTF-8 is an error. */
ts_status ts_tokenize(const ts_tokenizer *t, const char *text, int32_t *ids, int max_len,
                      int *n_out, ts_err *err);

/* The prompt cleaning of diffusers' WanPipeline (prompt_clean) and Wan's tokenizer
 * (clean='whitespace'): HTML entities unescaped twice, then every run of whitespace (as
 * Python's str.isspace) made one space, and the ends stripped. Covers numeric entities
 * (with Python's replacements for invalid code points) and the common named ones; ftfy's
 * mojibake repair, which the references apply only where ftfy is installed, is not done.
 * *out is malloc'd (caller frees). */
ts_status ts_text_clean(const char *text, char **out, ts_err *err);

#endif
