/* Internal layout of sl_tokenizer, shared by tokenizer*.c. Mirrors the pipeline of HF
 * `tokenizers`: added tokens -> normalizer -> pre-tokenizer -> BPE model -> post-processor,
 * and decoders for the way back. */
#ifndef SLUA_CORE_TOKENIZER_INTERNAL_H
#define SLUA_CORE_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <json-c/json.h>
#include <pcre2.h>
#include <stdbool.h>

#include "util/error.h"
#include "util/utf8.h"
#include "slua/sl_tokenizer.h"

/* Token ids must lie below 2 x (vocabulary entries + added tokens) + this slack. */
#define SL_TOK_ID_SLACK 1024

/* ---------------------------------------------------------------- string lists
 * A list of byte strings in one buffer. Allocation failure is sticky (oom) so that long chains of
 * appends need a single check at the end. */
typedef struct sl_strlist {
    char *buf;
    size_t len, cap;
    size_t *off, *slen;
    unsigned char *first; /* per item: begins at offset 0 of the original text (Metaspace "first") */
    size_t n, ncap;
    size_t open; /* start of the item being built */
    bool oom;
} sl_strlist;

void sl_strlist_free(sl_strlist *l);
void sl_strlist_clear(sl_strlist *l);
void sl_strlist_bytes(sl_strlist *l, const char *s, size_t n); /* append to the open item */
void sl_strlist_end(sl_strlist *l, bool first);                /* close the open item */
void sl_strlist_push(sl_strlist *l, const char *s, size_t n, bool first);

/* ---------------------------------------------------------------- UTF-8 helpers */
/* Appends s to out as String::from_utf8_lossy does: each maximal invalid subpart -> U+FFFD. */
void sl_utf8_lossy(sl_strlist *out, const char *s, size_t n);
bool sl_unicode_is_whitespace(int32_t cp); /* Rust char::is_whitespace */

/* ---------------------------------------------------------------- regex */
typedef struct sl_regex {
    pcre2_code *code;
    pcre2_match_data *md;
} sl_regex;

/* Compiles pattern (UTF|UCP, JIT when available); on failure fills err naming file and jpath. */
sl_status sl_regex_compile(sl_regex *re, const char *pattern, const char *file, const char *jpath,
                           sl_error *err);
void sl_regex_free(sl_regex *re);

/* Calls cb for each match of re in s[0..n), left to right and non-overlapping like onig's
 * find_iter (an empty match moves the search on by one character). Invalid UTF-8 bytes never
 * match: the regex runs on each maximal valid run separately. */
void sl_regex_foreach(const sl_regex *re, const char *s, size_t n,
                      void (*cb)(void *ctx, size_t start, size_t end), void *ctx);

/* ---------------------------------------------------------------- JSON helpers
 * Each fails with "<file>: <what> at <jpath>..." when the member is missing or mistyped. */
sl_status sl_json_type(json_object *o, const char *file, const char *jpath, const char **type,
                       sl_error *err);
sl_status sl_json_string(json_object *o, const char *key, const char *file, const char *jpath,
                         const char **out, sl_error *err);
bool sl_json_bool(json_object *o, const char *key, bool dflt);
/* A Split/Replace pattern {"String": s} or {"Regex": r}: *is_regex tells which. */
sl_status sl_json_pattern(json_object *o, const char *file, const char *jpath, const char **pat,
                          bool *is_regex, sl_error *err);

/* ---------------------------------------------------------------- normalizers */
typedef enum {
    SL_NORM_NFC, SL_NORM_NFKC, SL_NORM_NFD, SL_NORM_NFKD, SL_NORM_PREPEND, SL_NORM_REPLACE,
    SL_NORM_LOWERCASE, SL_NORM_STRIP, SL_NORM_SEQUENCE
} sl_norm_type;

typedef struct sl_norm {
    sl_norm_type type;
    char *str;       /* Prepend text, Replace content */
    char *pat;       /* Replace literal pattern (NULL when regex) */
    sl_regex re;     /* Replace regex pattern */
    bool left, right; /* Strip */
    struct sl_norm *items;
    size_t n_items;
} sl_norm;

sl_status sl_norm_parse(sl_norm *nm, json_object *o, const char *file, const char *jpath,
                        sl_error *err);
void sl_norm_free(sl_norm *nm);
/* Normalizes s[0..n) into a fresh item of out (which must have no open item). */
void sl_norm_apply(const sl_norm *nm, const char *s, size_t n, sl_strlist *out);

/* ---------------------------------------------------------------- pre-tokenizers */
typedef enum {
    SL_PRE_SPLIT, SL_PRE_BYTELEVEL, SL_PRE_DIGITS, SL_PRE_METASPACE, SL_PRE_SEQUENCE
} sl_pre_type;

typedef enum {
    SL_SPLIT_ISOLATED, SL_SPLIT_REMOVED, SL_SPLIT_MERGED_PREV, SL_SPLIT_MERGED_NEXT,
    SL_SPLIT_CONTIGUOUS
} sl_split_behavior;

typedef enum { SL_PREPEND_ALWAYS, SL_PREPEND_FIRST, SL_PREPEND_NEVER } sl_prepend_scheme;

typedef struct sl_pretok {
    sl_pre_type type;
    sl_regex re;           /* Split (regex), ByteLevel with use_regex */
    char *literal;         /* Split with a String pattern */
    size_t literal_len;
    sl_split_behavior behavior;
    bool invert;
    bool add_prefix_space; /* ByteLevel */
    bool use_regex;        /* ByteLevel */
    bool individual;       /* Digits */
    char repl[8];          /* Metaspace replacement (UTF-8) */
    size_t repl_len;
    sl_prepend_scheme scheme;
    bool split;            /* Metaspace */
    struct sl_pretok *items;
    size_t n_items;
} sl_pretok;

sl_status sl_pretok_parse(sl_pretok *pt, json_object *o, const char *file, const char *jpath,
                          sl_error *err);
void sl_pretok_free(sl_pretok *pt);
/* Splits every item of *in; the result replaces *in (tmp is scratch). */
void sl_pretok_apply(const sl_pretok *pt, sl_strlist *in, sl_strlist *tmp);

/* GPT-2 byte <-> printable character map used by ByteLevel. */
extern const char *const sl_bytelevel_enc[256]; /* byte -> UTF-8 of its character */
int sl_bytelevel_dec(int32_t cp);               /* character -> byte, or -1 */

/* ---------------------------------------------------------------- decoders */
typedef enum {
    SL_DEC_BYTELEVEL, SL_DEC_BYTEFALLBACK, SL_DEC_FUSE, SL_DEC_STRIP, SL_DEC_REPLACE,
    SL_DEC_METASPACE, SL_DEC_SEQUENCE
} sl_dec_type;

typedef struct sl_decoder {
    sl_dec_type type;
    char *pat, *content; /* Replace (literal pattern), Strip content char */
    sl_regex re;         /* Replace with a Regex pattern */
    size_t pat_len, content_len;
    size_t start, stop;  /* Strip */
    char repl[8];        /* Metaspace */
    size_t repl_len;
    sl_prepend_scheme scheme;
    struct sl_decoder *items;
    size_t n_items;
} sl_decoder;

sl_status sl_decoder_parse(sl_decoder *d, json_object *o, const char *file, const char *jpath,
                           sl_error *err);
void sl_decoder_free(sl_decoder *d);
bool sl_decoder_has(const sl_decoder *d, sl_dec_type type);

/* ---------------------------------------------------------------- the tokenizer */
typedef struct sl_added_token {
    char *content;
    size_t len;
    sl_token id;
    bool special, lstrip, rstrip, single_word, normalized;
} sl_added_token;

typedef struct sl_merge_map {
    uint64_t *keys; /* (left << 32 | right) + 1; 0 = empty slot */
    uint32_t *rank;
    sl_token *merged;
    size_t mask;
} sl_merge_map;

typedef struct sl_word_cache_entry {
    char *key;
    size_t key_len;
    sl_token *ids;
    size_t n;
} sl_word_cache_entry;

struct sl_tokenizer {
    char *path;
    size_t n_ids;           /* vocabulary size: max id + 1 */
    /* model vocabulary: id -> piece in one arena, and an open-addressing hash piece -> id */
    char *arena;
    size_t *piece_off;      /* SIZE_MAX: no model piece for this id */
    uint32_t *piece_len;
    sl_token *vocab_slots;  /* -1 = empty */
    size_t vocab_mask;
    sl_merge_map merges;
    sl_token byte_tok[256]; /* "<0xNN>" ids for byte fallback, -1 if missing */
    bool byte_fallback, ignore_merges, fuse_unk;
    bool meta_split; /* no piece has U+2581 after another character: words may split before it */
    sl_token model_unk;
    char *cont_prefix, *eow_suffix;
    size_t cont_prefix_len, eow_suffix_len;

    sl_added_token *added;
    size_t n_added;
    int32_t *added_of_id;   /* id -> index in added, or -1 */
    int32_t *added_by_byte[256]; /* added indices by first byte, -1 terminated (NULL if none) */

    bool has_norm, has_pretok, has_decoder;
    sl_norm norm;
    sl_pretok pretok;
    sl_decoder decoder;

    sl_token *tmpl_pre, *tmpl_post; /* ids added before/after the sequence */
    size_t n_tmpl_pre, n_tmpl_post;
    sl_token bos, eos, unk;

    sl_word_cache_entry *cache;
    size_t cache_mask;
    /* BPE scratch, grown on demand */
    void *bpe_sym, *bpe_heap;
    size_t bpe_sym_cap, bpe_heap_cap;
    char *bpe_buf;
    size_t bpe_buf_cap;
    /* scratch reused across encode calls */
    sl_strlist s_norm, s_pieces, s_tmp;
};

uint64_t sl_hash_bytes(const char *s, size_t n);
sl_token sl_vocab_lookup(const sl_tokenizer *tok, const char *s, size_t n);
/* BPE-encodes one pre-token, appending ids to *out (*n, *cap grow). */
sl_status sl_bpe_word(sl_tokenizer *tok, const char *s, size_t n, sl_token **out, size_t *n_out,
                      size_t *cap);
sl_status sl_bpe_build_merges(sl_tokenizer *tok, json_object *merges, const char *file,
                              sl_error *err);
void sl_bpe_free(sl_tokenizer *tok);

/* Piece of id for decoding (added-token text first), or NULL. */
const char *sl_tok_piece(const sl_tokenizer *tok, sl_token id, size_t *len);

/* Runs the decoder over ids; appends the text as one item of out. Returns E_RANGE on bad ids. */
sl_status sl_decode_into(const sl_tokenizer *tok, const sl_token *ids, size_t n, unsigned flags,
                         sl_strlist *out, sl_strlist *tmp, sl_error *err);

/* A tokenizer from the text of a tokenizer.json already in memory (label names it in errors; no
 * tokenizer_config.json is read). */
sl_tokenizer *sl_tok_load_text(const char *label, const char *text, size_t len, sl_error *err);

#endif
