/* UTF-8 as the Unicode Standard defines it (chapter 3.9): the well-formed byte sequences of
 * Table 3-7 (no overlong forms, no surrogates, nothing above U+10FFFF), and for ill-formed input
 * the "maximal subpart" rule, one U+FFFD per maximal subpart (Python's and Rust's lossy decoding;
 * HF tokenizers decode this way). The tokenizer and the JSON writer both read text through here. */
#ifndef SLUA_CORE_UTF8_H
#define SLUA_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length (1-4) of the well-formed character at s[0..n), or 0 if the bytes there are not one. */
size_t sl_utf8_char_len(const unsigned char *s, size_t n);
/* Length (>= 1) of the maximal subpart at s[0..n), n >= 1: the longest prefix of a well-formed
 * sequence there, or 1 when s[0] starts none. Call it where sl_utf8_char_len gave 0. */
size_t sl_utf8_invalid_len(const unsigned char *s, size_t n);
/* End of the run of well-formed characters starting at offset a of u[0..n). */
size_t sl_utf8_valid_run_end(const unsigned char *u, size_t a, size_t n);
/* Code point of the well-formed character at s (clen from sl_utf8_char_len). */
int32_t sl_utf8_decode(const unsigned char *s, size_t clen);
/* Bytes of code point cp (a scalar value) into out; returns their count. */
size_t sl_utf8_encode(int32_t cp, char out[4]);

#define SL_UTF8_REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD REPLACEMENT CHARACTER */

#endif
