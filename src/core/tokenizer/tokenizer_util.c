/* Small building blocks of the tokenizer: string lists, UTF-8, PCRE2 regexes, the byte-level map. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* ---------------------------------------------------------------- string lists */

void sl_strlist_free(sl_strlist *l)
{
    free(l->buf);
    free(l->off);
    free(l->slen);
    free(l->first);
    memset(l, 0, sizeof *l);
}

void sl_strlist_clear(sl_strlist *l)
{
    l->len = 0;
    l->n = 0;
    l->open = 0;
}

void sl_strlist_bytes(sl_strlist *l, const char *s, size_t n)
{
    if (l->oom || n == 0)
        return;
    if (l->len + n > l->cap) {
        size_t cap = l->cap ? l->cap : 256;
        while (cap < l->len + n)
            cap *= 2;
        char *p = realloc(l->buf, cap);
        if (!p) {
            l->oom = true;
            return;
        }
        l->buf = p;
        l->cap = cap;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

void sl_strlist_end(sl_strlist *l, bool first)
{
    if (l->oom)
        return;
    if (!l->buf) { /* items index buf even when every one is empty */
        if (!(l->buf = malloc(256))) {
            l->oom = true;
            return;
        }
        l->cap = 256;
    }
    if (l->n == l->ncap) {
        size_t cap = l->ncap ? l->ncap * 2 : 64;
        size_t *off = realloc(l->off, cap * sizeof *off);
        if (off)
            l->off = off;
        size_t *slen = realloc(l->slen, cap * sizeof *slen);
        if (slen)
            l->slen = slen;
        unsigned char *fi = realloc(l->first, cap);
        if (fi)
            l->first = fi;
        if (!off || !slen || !fi) {
            l->oom = true;
            return;
        }
        l->ncap = cap;
    }
    l->off[l->n] = l->open;
    l->slen[l->n] = l->len - l->open;
    l->first[l->n] = first;
    l->n++;
    l->open = l->len;
}

void sl_strlist_push(sl_strlist *l, const char *s, size_t n, bool first)
{
    sl_strlist_bytes(l, s, n);
    sl_strlist_end(l, first);
}

/* ---------------------------------------------------------------- UTF-8 */

void sl_utf8_lossy(sl_strlist *out, const char *s, size_t n)
{
    if (n == 0)
        return;
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;
    while (i < n) {
        size_t cl = sl_utf8_char_len(u + i, n - i);
        if (cl) {
            i += cl;
            continue;
        }
        sl_strlist_bytes(out, s + run, i - run);
        sl_strlist_bytes(out, SL_UTF8_REPLACEMENT, 3);
        i += sl_utf8_invalid_len(u + i, n - i);
        run = i;
    }
    sl_strlist_bytes(out, s + run, n - run);
}

bool sl_unicode_is_whitespace(int32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

/* ---------------------------------------------------------------- regex */

sl_status sl_regex_compile(sl_regex *re, const char *pattern, const char *file, const char *jpath,
                           sl_error *err)
{
    int ec;
    PCRE2_SIZE eoff;
    re->md = NULL;
    re->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec,
                             &eoff, NULL);
    if (!re->code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: bad regex at %s (%s at offset %zu)", file,
                            jpath, (const char *)msg, (size_t)eoff);
    }
    (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* the interpreter is the fallback */
    re->md = pcre2_match_data_create_from_pattern(re->code, NULL);
    if (!re->md) {
        pcre2_code_free(re->code);
        re->code = NULL;
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory compiling %s", file, jpath);
    }
    return SL_STATUS_OK;
}

void sl_regex_free(sl_regex *re)
{
    if (re->md)
        pcre2_match_data_free(re->md);
    if (re->code)
        pcre2_code_free(re->code);
    re->md = NULL;
    re->code = NULL;
}

/* ---------------------------------------------------------------- byte-level map (GPT-2) */

/* Printable bytes map to themselves, the other 68 to U+0100.. in byte order. */
const char *const sl_bytelevel_enc[256] = {
    "\xC4\x80", "\xC4\x81", "\xC4\x82", "\xC4\x83", "\xC4\x84", "\xC4\x85", "\xC4\x86", "\xC4\x87",
    "\xC4\x88", "\xC4\x89", "\xC4\x8A", "\xC4\x8B", "\xC4\x8C", "\xC4\x8D", "\xC4\x8E", "\xC4\x8F",
    "\xC4\x90", "\xC4\x91", "\xC4\x92", "\xC4\x93", "\xC4\x94", "\xC4\x95", "\xC4\x96", "\xC4\x97",
    "\xC4\x98", "\xC4\x99", "\xC4\x9A", "\xC4\x9B", "\xC4\x9C", "\xC4\x9D", "\xC4\x9E", "\xC4\x9F",
    "\xC4\xA0", "!", "\"", "#", "$", "%", "&", "'", "(", ")", "*", "+", ",", "-", ".", "/",
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ":", ";", "<", "=", ">", "?",
    "@", "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O",
    "P", "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z", "[", "\\", "]", "^", "_",
    "`", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o",
    "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z", "{", "|", "}", "~", "\xC4\xA1",
    "\xC4\xA2", "\xC4\xA3", "\xC4\xA4", "\xC4\xA5", "\xC4\xA6", "\xC4\xA7", "\xC4\xA8", "\xC4\xA9",
    "\xC4\xAA", "\xC4\xAB", "\xC4\xAC", "\xC4\xAD", "\xC4\xAE", "\xC4\xAF", "\xC4\xB0", "\xC4\xB1",
    "\xC4\xB2", "\xC4\xB3", "\xC4\xB4", "\xC4\xB5", "\xC4\xB6", "\xC4\xB7", "\xC4\xB8", "\xC4\xB9",
    "\xC4\xBA", "\xC4\xBB", "\xC4\xBC", "\xC4\xBD", "\xC4\xBE", "\xC4\xBF", "\xC5\x80", "\xC5\x81",
    "\xC5\x82", "\xC2\xA1", "\xC2\xA2", "\xC2\xA3", "\xC2\xA4", "\xC2\xA5", "\xC2\xA6", "\xC2\xA7",
    "\xC2\xA8", "\xC2\xA9", "\xC2\xAA", "\xC2\xAB", "\xC2\xAC", "\xC5\x83", "\xC2\xAE", "\xC2\xAF",
    "\xC2\xB0", "\xC2\xB1", "\xC2\xB2", "\xC2\xB3", "\xC2\xB4", "\xC2\xB5", "\xC2\xB6", "\xC2\xB7",
    "\xC2\xB8", "\xC2\xB9", "\xC2\xBA", "\xC2\xBB", "\xC2\xBC", "\xC2\xBD", "\xC2\xBE", "\xC2\xBF",
    "\xC3\x80", "\xC3\x81", "\xC3\x82", "\xC3\x83", "\xC3\x84", "\xC3\x85", "\xC3\x86", "\xC3\x87",
    "\xC3\x88", "\xC3\x89", "\xC3\x8A", "\xC3\x8B", "\xC3\x8C", "\xC3\x8D", "\xC3\x8E", "\xC3\x8F",
    "\xC3\x90", "\xC3\x91", "\xC3\x92", "\xC3\x93", "\xC3\x94", "\xC3\x95", "\xC3\x96", "\xC3\x97",
    "\xC3\x98", "\xC3\x99", "\xC3\x9A", "\xC3\x9B", "\xC3\x9C", "\xC3\x9D", "\xC3\x9E", "\xC3\x9F",
    "\xC3\xA0", "\xC3\xA1", "\xC3\xA2", "\xC3\xA3", "\xC3\xA4", "\xC3\xA5", "\xC3\xA6", "\xC3\xA7",
    "\xC3\xA8", "\xC3\xA9", "\xC3\xAA", "\xC3\xAB", "\xC3\xAC", "\xC3\xAD", "\xC3\xAE", "\xC3\xAF",
    "\xC3\xB0", "\xC3\xB1", "\xC3\xB2", "\xC3\xB3", "\xC3\xB4", "\xC3\xB5", "\xC3\xB6", "\xC3\xB7",
    "\xC3\xB8", "\xC3\xB9", "\xC3\xBA", "\xC3\xBB", "\xC3\xBC", "\xC3\xBD", "\xC3\xBE", "\xC3\xBF",
};

int sl_bytelevel_dec(int32_t cp)
{
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp >= 0x100 && cp <= 0x143) {
        /* U+0100 + k is the k-th byte outside the printable ranges: 0..32, 127..160, 173 */
        int k = cp - 0x100;
        return k < 33 ? k : k < 67 ? 127 + (k - 33) : 173;
    }
    return -1;
}

void sl_regex_foreach(const sl_regex *re, const char *s, size_t n,
                      void (*cb)(void *ctx, size_t start, size_t end), void *ctx)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t a = 0;
    while (a < n) {
        size_t b = sl_utf8_valid_run_end(u, a, n);
        size_t off = 0, len = b - a;
        while (off < len) {
            int rc = pcre2_match(re->code, (PCRE2_SPTR)(s + a), len, off, PCRE2_NO_UTF_CHECK, re->md,
                                 NULL);
            if (rc < 0)
                break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);
            cb(ctx, a + ov[0], a + ov[1]);
            if (ov[1] > ov[0])
                off = ov[1];
            else {
                off = ov[1];
                if (off >= len)
                    break;
                off += sl_utf8_char_len(u + a + off, len - off);
            }
        }
        if (b < n)
            b += sl_utf8_invalid_len(u + b, n - b);
        a = b;
    }
}

/* ---------------------------------------------------------------- JSON helpers */

sl_status sl_json_type(json_object *o, const char *file, const char *jpath, const char **type,
                       sl_error *err)
{
    json_object *t;
    if (!json_object_is_type(o, json_type_object))
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: expected an object at %s", file, jpath);
    if (!json_object_object_get_ex(o, "type", &t) || !json_object_is_type(t, json_type_string))
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: missing string at %s.type", file, jpath);
    *type = json_object_get_string(t);
    return SL_STATUS_OK;
}

sl_status sl_json_string(json_object *o, const char *key, const char *file, const char *jpath,
                         const char **out, sl_error *err)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: missing string at %s.%s", file, jpath, key);
    *out = json_object_get_string(v);
    return SL_STATUS_OK;
}

bool sl_json_bool(json_object *o, const char *key, bool dflt)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
        return dflt;
    return json_object_get_boolean(v);
}

sl_status sl_json_pattern(json_object *o, const char *file, const char *jpath, const char **pat,
                          bool *is_regex, sl_error *err)
{
    json_object *p, *v;
    if (!json_object_object_get_ex(o, "pattern", &p) || !json_object_is_type(p, json_type_object))
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: missing object at %s.pattern", file, jpath);
    if (json_object_object_get_ex(p, "String", &v) && json_object_is_type(v, json_type_string))
        *is_regex = false;
    else if (json_object_object_get_ex(p, "Regex", &v) && json_object_is_type(v, json_type_string))
        *is_regex = true;
    else
        return sl_error_set(err, SL_STATUS_E_FORMAT,
                            "%s: expected {\"String\": ...} or {\"Regex\": ...} at %s.pattern", file,
                            jpath);
    *pat = json_object_get_string(v);
    return SL_STATUS_OK;
}
