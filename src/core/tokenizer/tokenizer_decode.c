/* Decoders (ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace, Sequence), one-shot decoding
 * and the streaming decoder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

sl_status sl_metaspace_parse(json_object *o, const char *file, const char *jpath,
                             sl_prepend_scheme *scheme, char repl[8], size_t *repl_len, sl_error *err);

static size_t json_count(json_object *o, const char *key, size_t dflt)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) < 0)
        return dflt;
    return (size_t)json_object_get_int64(v);
}

sl_status sl_decoder_parse(sl_decoder *d, json_object *o, const char *file, const char *jpath,
                           sl_error *err)
{
    const char *type, *s;
    char sub[256];
    memset(d, 0, sizeof *d);
    sl_status st = sl_json_type(o, file, jpath, &type, err);
    if (st)
        return st;
    if (!strcmp(type, "ByteLevel"))
        d->type = SL_DEC_BYTELEVEL;
    else if (!strcmp(type, "ByteFallback"))
        d->type = SL_DEC_BYTEFALLBACK;
    else if (!strcmp(type, "Fuse"))
        d->type = SL_DEC_FUSE;
    else if (!strcmp(type, "Strip")) {
        d->type = SL_DEC_STRIP;
        if ((st = sl_json_string(o, "content", file, jpath, &s, err)))
            return st;
        d->content_len = strlen(s);
        if (!d->content_len || sl_utf8_char_len((const unsigned char *)s, d->content_len) != d->content_len)
            return sl_error_set(err, SL_STATUS_E_FORMAT,
                                "%s: expected a single character at %s.content (\"%s\")", file, jpath, s);
        if (!(d->content = malloc(d->content_len + 1)))
            return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", file);
        memcpy(d->content, s, d->content_len + 1);
        d->start = json_count(o, "start", 0);
        d->stop = json_count(o, "stop", 0);
    } else if (!strcmp(type, "Replace")) {
        const char *pat;
        bool is_re;
        d->type = SL_DEC_REPLACE;
        if ((st = sl_json_string(o, "content", file, jpath, &s, err)) ||
            (st = sl_json_pattern(o, file, jpath, &pat, &is_re, err)))
            return st;
        d->content_len = strlen(s);
        if (!(d->content = malloc(d->content_len + 1)))
            return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", file);
        memcpy(d->content, s, d->content_len + 1);
        if (is_re) {
            snprintf(sub, sizeof sub, "%s.pattern.Regex", jpath);
            if ((st = sl_regex_compile(&d->re, pat, file, sub, err)))
                return st;
        } else {
            d->pat_len = strlen(pat);
            if (!d->pat_len)
                return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: empty pattern at %s.pattern.String",
                                    file, jpath);
            if (!(d->pat = malloc(d->pat_len + 1)))
                return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", file);
            memcpy(d->pat, pat, d->pat_len + 1);
        }
    } else if (!strcmp(type, "Metaspace")) {
        d->type = SL_DEC_METASPACE;
        if ((st = sl_metaspace_parse(o, file, jpath, &d->scheme, d->repl, &d->repl_len, err)))
            return st;
    } else if (!strcmp(type, "Sequence")) {
        json_object *arr;
        d->type = SL_DEC_SEQUENCE;
        if (!json_object_object_get_ex(o, "decoders", &arr) || !json_object_is_type(arr, json_type_array))
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: missing array at %s.decoders", file, jpath);
        size_t n = json_object_array_length(arr);
        d->items = calloc(n ? n : 1, sizeof *d->items);
        if (!d->items)
            return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", file);
        for (size_t i = 0; i < n; i++) {
            snprintf(sub, sizeof sub, "%s.decoders[%zu]", jpath, i);
            d->n_items = i + 1;
            if ((st = sl_decoder_parse(&d->items[i], json_object_array_get_idx(arr, i), file, sub, err)))
                return st;
        }
    } else
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: unsupported decoder type at %s.type (\"%s\")",
                            file, jpath, type);
    return SL_STATUS_OK;
}

void sl_decoder_free(sl_decoder *d)
{
    for (size_t i = 0; i < d->n_items; i++)
        sl_decoder_free(&d->items[i]);
    free(d->items);
    free(d->pat);
    free(d->content);
    sl_regex_free(&d->re);
    memset(d, 0, sizeof *d);
}

bool sl_decoder_has(const sl_decoder *d, sl_dec_type type)
{
    if (d->type == type)
        return true;
    for (size_t i = 0; i < d->n_items; i++)
        if (sl_decoder_has(&d->items[i], type))
            return true;
    return false;
}

/* ---------------------------------------------------------------- decode chain */

static int byte_token(const char *s, size_t n)
{
    /* "<0xNN>" with upper- or lower-case hex, as u8::from_str_radix accepts */
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

typedef struct replace_ctx {
    const char *s;
    size_t last;
    const sl_decoder *d;
    sl_strlist *out;
} replace_ctx;

static void replace_cb(void *ctx, size_t a, size_t b)
{
    replace_ctx *c = ctx;
    sl_strlist_bytes(c->out, c->s + c->last, a - c->last);
    sl_strlist_bytes(c->out, c->d->content, c->d->content_len);
    c->last = b;
}

static void flush_bytes(sl_strlist *out, const char *bytes, size_t n)
{
    /* HF keeps a run of byte tokens only if it is valid UTF-8 as a whole, else one U+FFFD each */
    if (!n)
        return;
    const unsigned char *u = (const unsigned char *)bytes;
    size_t i = 0;
    while (i < n) {
        size_t cl = sl_utf8_char_len(u + i, n - i);
        if (!cl)
            break;
        i += cl;
    }
    if (i == n)
        sl_strlist_push(out, bytes, n, false);
    else
        for (size_t k = 0; k < n; k++)
            sl_strlist_push(out, "\xEF\xBF\xBD", 3, false);
}

/* One decoder step: items of in -> items of out. */
static void dec_step(const sl_decoder *d, const sl_strlist *in, sl_strlist *out)
{
    sl_strlist_clear(out);
    out->oom = in->oom;
    switch (d->type) {
    case SL_DEC_BYTELEVEL: {
        sl_strlist raw = {0};
        for (size_t i = 0; i < in->n; i++) {
            const unsigned char *u = (const unsigned char *)in->buf + in->off[i];
            size_t n = in->slen[i], k = 0, start = raw.len;
            while (k < n) {
                size_t cl = sl_utf8_char_len(u + k, n - k);
                int b = cl ? sl_bytelevel_dec(sl_utf8_decode(u + k, cl)) : -1;
                if (b < 0)
                    break;
                char c = (char)b;
                sl_strlist_bytes(&raw, &c, 1);
                k += cl;
            }
            if (k < n) { /* a character outside the map: the token's own bytes */
                raw.len = start;
                sl_strlist_bytes(&raw, (const char *)u, n);
            }
        }
        sl_utf8_lossy(out, raw.buf, raw.len);
        sl_strlist_end(out, false);
        if (raw.oom)
            out->oom = true;
        sl_strlist_free(&raw);
        break;
    }
    case SL_DEC_BYTEFALLBACK: {
        char pend[256];
        size_t np = 0;
        sl_strlist big = {0}; /* long byte runs */
        for (size_t i = 0; i < in->n; i++) {
            const char *s = in->buf + in->off[i];
            int b = byte_token(s, in->slen[i]);
            if (b >= 0) {
                if (np == sizeof pend) {
                    sl_strlist_bytes(&big, pend, np);
                    np = 0;
                }
                pend[np++] = (char)b;
                continue;
            }
            if (big.len || np) {
                sl_strlist_bytes(&big, pend, np);
                flush_bytes(out, big.buf, big.len);
                big.len = 0;
                np = 0;
            }
            sl_strlist_push(out, s, in->slen[i], false);
        }
        sl_strlist_bytes(&big, pend, np);
        flush_bytes(out, big.buf, big.len);
        if (big.oom)
            out->oom = true;
        sl_strlist_free(&big);
        break;
    }
    case SL_DEC_FUSE:
        sl_strlist_bytes(out, in->buf, in->len); /* items are contiguous in order */
        sl_strlist_end(out, false);
        break;
    case SL_DEC_STRIP:
        for (size_t i = 0; i < in->n; i++) {
            const char *s = in->buf + in->off[i];
            size_t a = 0, b = in->slen[i], cl = d->content_len;
            for (size_t k = 0; k < d->start && b - a >= cl && !memcmp(s + a, d->content, cl); k++)
                a += cl;
            for (size_t k = 0; k < d->stop && b - a >= cl && !memcmp(s + b - cl, d->content, cl); k++)
                b -= cl;
            sl_strlist_push(out, s + a, b - a, false);
        }
        break;
    case SL_DEC_REPLACE:
        for (size_t i = 0; i < in->n; i++) {
            const char *s = in->buf + in->off[i];
            size_t n = in->slen[i];
            if (d->pat) {
                size_t k = 0, last = 0;
                while (k + d->pat_len <= n) {
                    if (!memcmp(s + k, d->pat, d->pat_len)) {
                        sl_strlist_bytes(out, s + last, k - last);
                        sl_strlist_bytes(out, d->content, d->content_len);
                        k += d->pat_len;
                        last = k;
                    } else
                        k++;
                }
                sl_strlist_bytes(out, s + last, n - last);
            } else {
                replace_ctx c = {s, 0, d, out};
                sl_regex_foreach(&d->re, s, n, replace_cb, &c);
                sl_strlist_bytes(out, s + c.last, n - c.last);
            }
            sl_strlist_end(out, false);
        }
        break;
    case SL_DEC_METASPACE:
        for (size_t i = 0; i < in->n; i++) {
            const char *s = in->buf + in->off[i];
            size_t n = in->slen[i], k = 0, last = 0, rl = d->repl_len;
            if (i == 0 && d->scheme != SL_PREPEND_NEVER && n >= rl && !memcmp(s, d->repl, rl))
                k = last = rl; /* the prefix added at encoding time */
            while (k + rl <= n) {
                if (!memcmp(s + k, d->repl, rl)) {
                    sl_strlist_bytes(out, s + last, k - last);
                    sl_strlist_bytes(out, " ", 1);
                    k += rl;
                    last = k;
                } else
                    k++;
            }
            sl_strlist_bytes(out, s + last, n - last);
            sl_strlist_end(out, false);
        }
        break;
    case SL_DEC_SEQUENCE: break; /* handled by dec_chain */
    }
}

static void swap_lists(sl_strlist *a, sl_strlist *b)
{
    sl_strlist t = *a;
    *a = *b;
    *b = t;
}

/* Applies d to the items of *a; the result ends in *a. */
static void dec_chain(const sl_decoder *d, sl_strlist *a, sl_strlist *b)
{
    if (d->type == SL_DEC_SEQUENCE) {
        for (size_t i = 0; i < d->n_items; i++)
            dec_chain(&d->items[i], a, b);
        return;
    }
    dec_step(d, a, b);
    swap_lists(a, b);
}

sl_status sl_decode_into(const sl_tokenizer *tok, const sl_token *ids, size_t n, unsigned flags,
                         sl_strlist *out, sl_strlist *tmp, sl_error *err)
{
    sl_strlist_clear(out);
    sl_strlist_clear(tmp);
    out->oom = tmp->oom = false;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= tok->n_ids)
            return sl_error_set(err, SL_STATUS_E_RANGE, "%s: token id %d out of range (vocabulary size %zu)",
                                tok->path, (int)ids[i], tok->n_ids);
        size_t len;
        const char *p = sl_tok_piece(tok, ids[i], &len);
        if (!p || ((flags & SL_DECODE_SKIP_SPECIAL) && sl_tokenizer_is_special(tok, ids[i])))
            continue;
        if (!tok->has_decoder && out->n)
            sl_strlist_bytes(out, " ", 1); /* HF joins with spaces when there is no decoder */
        sl_strlist_push(out, p, len, false);
    }
    if (tok->has_decoder)
        dec_chain(&tok->decoder, out, tmp);
    if (out->oom || tmp->oom)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory decoding", tok->path);
    /* make the text contiguous and NUL-terminated */
    sl_strlist_bytes(out, "", 1);
    if (out->oom)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory decoding", tok->path);
    out->len--;
    return SL_STATUS_OK;
}

sl_status sl_tokenizer_decode(const sl_tokenizer *tok, const sl_token *ids, size_t n, unsigned flags,
                              char **text, size_t *len, sl_error *err)
{
    if (text)
        *text = NULL;
    if (len)
        *len = 0;
    if (!tok || !text || (!ids && n))
        return sl_error_set(err, SL_STATUS_E_ARG, "sl_tokenizer_decode: NULL argument");
    sl_strlist a = {0}, b = {0};
    sl_status st = sl_decode_into(tok, ids, n, flags, &a, &b, err);
    if (!st) {
        *text = malloc(a.len + 1);
        if (!*text)
            st = sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory decoding", tok->path);
        else {
            memcpy(*text, a.buf ? a.buf : "", a.len);
            (*text)[a.len] = '\0';
            if (len)
                *len = a.len;
        }
    }
    sl_strlist_free(&a);
    sl_strlist_free(&b);
    return st;
}

/* ---------------------------------------------------------------- streaming
 * The stream keeps a window of ids: ids[0..read) decode to `prefix`, text already emitted. Each new
 * id re-decodes the window and emits what follows the prefix once it is complete: not ending in
 * U+FFFD (an unfinished UTF-8 sequence) and not ending in a byte-fallback token (HF judges a run
 * of byte tokens as a whole). The window then restarts at the old read point, so the first-token
 * rules of Metaspace/Strip apply to text already emitted and never to new text. */

struct sl_tokenizer_stream {
    const sl_tokenizer *tok;
    unsigned flags;
    bool hold_bytes;
    sl_token *ids;
    size_t n, cap, read;
    char *prefix;
    size_t prefix_len, prefix_cap;
    sl_strlist a, b;
    char *out;
    size_t out_cap;
};

sl_tokenizer_stream *sl_tokenizer_stream_new(const sl_tokenizer *tok, unsigned flags, sl_error *err)
{
    if (!tok) {
        sl_error_set(err, SL_STATUS_E_ARG, "sl_tokenizer_stream_new: tokenizer is NULL");
        return NULL;
    }
    sl_tokenizer_stream *s = calloc(1, sizeof *s);
    if (!s) {
        sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", tok->path);
        return NULL;
    }
    s->tok = tok;
    s->flags = flags;
    s->hold_bytes = tok->has_decoder && sl_decoder_has(&tok->decoder, SL_DEC_BYTEFALLBACK);
    return s;
}

void sl_tokenizer_stream_free(sl_tokenizer_stream *s)
{
    if (!s)
        return;
    free(s->ids);
    free(s->prefix);
    free(s->out);
    sl_strlist_free(&s->a);
    sl_strlist_free(&s->b);
    free(s);
}

void sl_tokenizer_stream_reset(sl_tokenizer_stream *s)
{
    if (s)
        s->n = s->read = s->prefix_len = 0;
}

static bool set_buf(char **buf, size_t *cap, const char *src, size_t n)
{
    if (n + 1 > *cap) {
        char *p = realloc(*buf, n + 1);
        if (!p)
            return false;
        *buf = p;
        *cap = n + 1;
    }
    if (n)
        memcpy(*buf, src, n);
    (*buf)[n] = '\0';
    return true;
}

/* Emits the part of a.buf after the prefix. */
static sl_status emit_tail(sl_tokenizer_stream *s, const char **text, size_t *len, sl_error *err)
{
    const sl_strlist *f = &s->a;
    if (f->len < s->prefix_len || (s->prefix_len && memcmp(f->buf, s->prefix, s->prefix_len)))
        return sl_error_set(err, SL_STATUS_E_STATE, "%s: streaming decode lost its prefix", s->tok->path);
    if (!set_buf(&s->out, &s->out_cap, f->buf + s->prefix_len, f->len - s->prefix_len))
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", s->tok->path);
    *text = s->out;
    *len = f->len - s->prefix_len;
    return SL_STATUS_OK;
}

sl_status sl_tokenizer_stream_put(sl_tokenizer_stream *s, sl_token id, const char **text, size_t *len,
                                  sl_error *err)
{
    static const char empty[] = "";
    if (!s || !text || !len)
        return sl_error_set(err, SL_STATUS_E_ARG, "sl_tokenizer_stream_put: NULL argument");
    *text = empty;
    *len = 0;
    const sl_tokenizer *tok = s->tok;
    if (id < 0 || (size_t)id >= tok->n_ids)
        return sl_error_set(err, SL_STATUS_E_RANGE, "%s: token id %d out of range (vocabulary size %zu)",
                            tok->path, (int)id, tok->n_ids);
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        sl_token *p = realloc(s->ids, cap * sizeof *p);
        if (!p)
            return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", tok->path);
        s->ids = p;
        s->cap = cap;
    }
    s->ids[s->n++] = id;
    if (s->hold_bytes) {
        /* the last id the decode sees: skipped specials vanish, so byte tokens on both sides of
         * one form a single run */
        size_t k = s->n;
        while (k > 0 && (s->flags & SL_DECODE_SKIP_SPECIAL) && sl_tokenizer_is_special(tok, s->ids[k - 1]))
            k--;
        size_t pl;
        const char *p = k > 0 ? sl_tok_piece(tok, s->ids[k - 1], &pl) : NULL;
        if (p && byte_token(p, pl) >= 0)
            return SL_STATUS_OK;
    }
    sl_status st = sl_decode_into(tok, s->ids, s->n, s->flags, &s->a, &s->b, err);
    if (st)
        return st;
    const sl_strlist *f = &s->a;
    if (f->len <= s->prefix_len || (f->len >= 3 && !memcmp(f->buf + f->len - 3, "\xEF\xBF\xBD", 3)))
        return SL_STATUS_OK;
    if ((st = emit_tail(s, text, len, err)))
        return st;
    /* Move the window: the ids since the last emission become the new prefix, unless they decode
     * to nothing (skipped specials), which would leave no context for first-token rules. */
    size_t old_read = s->read;
    if (!set_buf(&s->prefix, &s->prefix_cap, f->buf, f->len))
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", tok->path);
    s->prefix_len = f->len;
    s->read = s->n;
    if (old_read > 0) {
        if ((st = sl_decode_into(tok, s->ids + old_read, s->n - old_read, s->flags, &s->a, &s->b, err)))
            return st;
        if (s->a.len > 0) {
            memmove(s->ids, s->ids + old_read, (s->n - old_read) * sizeof *s->ids);
            s->n -= old_read;
            s->read = s->n;
            if (!set_buf(&s->prefix, &s->prefix_cap, s->a.buf, s->a.len))
                return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", tok->path);
            s->prefix_len = s->a.len;
        }
    }
    return SL_STATUS_OK;
}

sl_status sl_tokenizer_stream_finish(sl_tokenizer_stream *s, const char **text, size_t *len,
                                     sl_error *err)
{
    static const char empty[] = "";
    if (!s || !text || !len)
        return sl_error_set(err, SL_STATUS_E_ARG, "sl_tokenizer_stream_finish: NULL argument");
    *text = empty;
    *len = 0;
    sl_status st = SL_STATUS_OK;
    if (s->n > s->read) {
        st = sl_decode_into(s->tok, s->ids, s->n, s->flags, &s->a, &s->b, err);
        if (!st && s->a.len > s->prefix_len)
            st = emit_tail(s, text, len, err);
    }
    sl_tokenizer_stream_reset(s);
    return st;
}
