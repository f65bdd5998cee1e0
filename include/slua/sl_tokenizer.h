/* slua — Hugging Face `tokenizer.json` tokenizers (BPE with byte-level or byte-fallback
 * vocabularies): encoding, decoding and streaming decoding that match HF `tokenizers`.
 *
 * A tokenizer keeps a small cache of encoded words, so one sl_tokenizer must not be used by
 * two threads at once; load one per thread instead. Text is UTF-8; invalid bytes never make a
 * call fail (byte-level vocabularies encode them as raw bytes, others use byte fallback or unk). */
#ifndef SLUA_SL_TOKENIZER_H
#define SLUA_SL_TOKENIZER_H

#include <stdbool.h>

#include "slua/sl_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_tokenizer sl_tokenizer;
typedef struct sl_tokenizer_stream sl_tokenizer_stream;

/* Flags of sl_tokenizer_encode. */
enum {
    SL_ENCODE_ADD_SPECIAL = 1u << 0,  /* add BOS/EOS as the post-processor / tokenizer_config.json say */
    SL_ENCODE_SPLIT_SPECIAL = 1u << 1 /* special-token text in the input is plain text, not a token */
};

/* Flags of sl_tokenizer_decode and sl_tokenizer_stream_new. */
enum {
    SL_DECODE_SKIP_SPECIAL = 1u << 0 /* leave special tokens (BOS, EOS, ...) out of the text */
};

/* Loads `tokenizer.json` at path, and `tokenizer_config.json` from the same folder when present.
 * Returns NULL and fills err if a file is missing, malformed or uses an unsupported component.
 * The caller owns the result; release it with sl_tokenizer_free. */
SL_API sl_tokenizer *sl_tokenizer_load(const char *path, sl_error *err);

/* Releases tok and everything it owns. NULL is allowed. */
SL_API void sl_tokenizer_free(sl_tokenizer *tok);

/* Encodes len bytes of text. On success *ids is a malloc'd array of *n_ids tokens (NULL when
 * empty) that the caller releases with free(). flags: SL_ENCODE_*. */
SL_API sl_status sl_tokenizer_encode(sl_tokenizer *tok, const char *text, size_t len, unsigned flags,
                                     sl_token **ids, size_t *n_ids, sl_error *err);

/* Decodes n ids to text. On success *text is a malloc'd NUL-terminated string of *len bytes that
 * the caller releases with free(). flags: SL_DECODE_*. Ids outside the vocabulary give E_RANGE. */
SL_API sl_status sl_tokenizer_decode(const sl_tokenizer *tok, const sl_token *ids, size_t n,
                                     unsigned flags, char **text, size_t *len, sl_error *err);

/* Number of ids (the largest id of the vocabulary or of the added tokens, plus one). */
SL_API size_t sl_tokenizer_vocab_size(const sl_tokenizer *tok);

/* E_FORMAT unless every id of tok is below n_vocab, the vocab_size of the model it is paired
 * with (model_label names that model's config in the message). */
SL_API sl_status sl_tokenizer_check_vocab(const sl_tokenizer *tok, int32_t n_vocab, const char *model_label,
                                          sl_error *err);

/* The vocabulary string of id (byte-level form, e.g. "Ġthe"), NUL-terminated; *len gets its length
 * when len is not NULL. NULL if id has no string. Owned by tok, valid until sl_tokenizer_free. */
SL_API const char *sl_tokenizer_piece(const sl_tokenizer *tok, sl_token id, size_t *len);

/* The id whose vocabulary string (or added-token text) is exactly piece[0..len), or -1. */
SL_API sl_token sl_tokenizer_token_id(const sl_tokenizer *tok, const char *piece, size_t len);

/* BOS/EOS ids from tokenizer_config.json (else from the post-processor template for BOS), the
 * unk id from the config or the model; -1 when the tokenizer has none. */
SL_API sl_token sl_tokenizer_bos(const sl_tokenizer *tok);
SL_API sl_token sl_tokenizer_eos(const sl_tokenizer *tok);
SL_API sl_token sl_tokenizer_unk(const sl_tokenizer *tok);

/* True if id is an added token marked special (skipped by SL_DECODE_SKIP_SPECIAL). */
SL_API bool sl_tokenizer_is_special(const sl_tokenizer *tok, sl_token id);

/* A streaming decoder: feed ids one by one, get text as soon as it is complete UTF-8. The total
 * text equals sl_tokenizer_decode of all ids fed since creation or the last reset. tok must
 * outlive the stream. Release with sl_tokenizer_stream_free. flags: SL_DECODE_*. */
SL_API sl_tokenizer_stream *sl_tokenizer_stream_new(const sl_tokenizer *tok, unsigned flags,
                                                    sl_error *err);

/* Releases s. NULL is allowed. */
SL_API void sl_tokenizer_stream_free(sl_tokenizer_stream *s);

/* Feeds one id. *text receives the new text (NUL-terminated, *len bytes, possibly empty), owned by
 * s and valid until the next call on s. An id outside the vocabulary gives E_RANGE. */
SL_API sl_status sl_tokenizer_stream_put(sl_tokenizer_stream *s, sl_token id, const char **text,
                                         size_t *len, sl_error *err);

/* Ends the stream: returns the text still held back (e.g. an incomplete UTF-8 sequence, as
 * U+FFFD like the one-shot decode), owned by s like above, and resets s for a new text. */
SL_API sl_status sl_tokenizer_stream_finish(sl_tokenizer_stream *s, const char **text, size_t *len,
                                            sl_error *err);

/* Forgets every id fed so far without returning text. */
SL_API void sl_tokenizer_stream_reset(sl_tokenizer_stream *s);

#ifdef __cplusplus
}
#endif

#endif
