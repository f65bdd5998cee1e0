/* Normalizers: NFC, NFKC, NFD, NFKD, Prepend, Replace, Lowercase, Strip, Sequence. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer_internal.h"

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

sl_status sl_norm_parse(sl_norm *nm, json_object *o, const char *file, const char *jpath,
                        sl_error *err)
{
    const char *type, *s;
    char sub[256];
    memset(nm, 0, sizeof *nm);
    sl_status st = sl_json_type(o, file, jpath, &type, err);
    if (st)
        return st;
    if (!strcmp(type, "NFC"))
        nm->type = SL_NORM_NFC;
    else if (!strcmp(type, "NFKC"))
        nm->type = SL_NORM_NFKC;
    else if (!strcmp(type, "NFD"))
        nm->type = SL_NORM_NFD;
    else if (!strcmp(type, "NFKD"))
        nm->type = SL_NORM_NFKD;
    else if (!strcmp(type, "Lowercase"))
        nm->type = SL_NORM_LOWERCASE;
    else if (!strcmp(type, "Strip")) {
        nm->type = SL_NORM_STRIP;
        nm->left = sl_json_bool(o, "strip_left", true);
        nm->right = sl_json_bool(o, "strip_right", true);
    } else if (!strcmp(type, "Prepend")) {
        nm->type = SL_NORM_PREPEND;
        if ((st = sl_json_string(o, "prepend", file, jpath, &s, err)))
            return st;
        if (!(nm->str = dup_str(s)))
            return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", file);
    } else if (!strcmp(type, "Replace")) {
        const char *pat;
        bool is_re;
        nm->type = SL_NORM_REPLACE;
        if ((st = sl_json_string(o, "content", file, jpath, &s, err)) ||
            (st = sl_json_pattern(o, file, jpath, &pat, &is_re, err)))
            return st;
        if (!(nm->str = dup_str(s)))
            return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", file);
        if (is_re) {
            snprintf(sub, sizeof sub, "%s.pattern.Regex", jpath);
            if ((st = sl_regex_compile(&nm->re, pat, file, sub, err)))
                return st;
        } else {
            if (!*pat)
                return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: empty pattern at %s.pattern.String",
                                    file, jpath);
            if (!(nm->pat = dup_str(pat)))
                return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", file);
        }
    } else if (!strcmp(type, "Sequence")) {
        json_object *arr;
        nm->type = SL_NORM_SEQUENCE;
        if (!json_object_object_get_ex(o, "normalizers", &arr) ||
            !json_object_is_type(arr, json_type_array))
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: missing array at %s.normalizers", file,
                                jpath);
        size_t n = json_object_array_length(arr);
        nm->items = calloc(n ? n : 1, sizeof *nm->items);
        if (!nm->items)
            return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", file);
        for (size_t i = 0; i < n; i++) {
            snprintf(sub, sizeof sub, "%s.normalizers[%zu]", jpath, i);
            nm->n_items = i + 1;
            if ((st = sl_norm_parse(&nm->items[i], json_object_array_get_idx(arr, i), file, sub, err)))
                return st;
        }
    } else
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: unsupported normalizer type at %s.type (\"%s\")",
                            file, jpath, type);
    return SL_STATUS_OK;
}

void sl_norm_free(sl_norm *nm)
{
    for (size_t i = 0; i < nm->n_items; i++)
        sl_norm_free(&nm->items[i]);
    free(nm->items);
    free(nm->str);
    free(nm->pat);
    sl_regex_free(&nm->re);
    memset(nm, 0, sizeof *nm);
}

/* Unicode normalization of each valid UTF-8 run; invalid bytes pass through unchanged. */
static void unicode_norm(const char *s, size_t n, int options, sl_strlist *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t a = 0;
    while (a < n) {
        size_t b = sl_utf8_valid_run_end(u, a, n);
        if (b > a) {
            utf8proc_uint8_t *dst = NULL;
            utf8proc_ssize_t r = utf8proc_map(u + a, (utf8proc_ssize_t)(b - a), &dst, options);
            if (r >= 0)
                sl_strlist_bytes(out, (const char *)dst, (size_t)r);
            else if (r == UTF8PROC_ERROR_NOMEM)
                out->oom = true;
            else
                sl_strlist_bytes(out, s + a, b - a);
            free(dst);
        }
        if (b < n) {
            size_t bad = sl_utf8_invalid_len(u + b, n - b);
            sl_strlist_bytes(out, s + b, bad);
            b += bad;
        }
        a = b;
    }
}

typedef struct replace_ctx {
    const char *s;
    size_t last;
    const char *content;
    sl_strlist *out;
} replace_ctx;

static void replace_cb(void *ctx, size_t start, size_t end)
{
    replace_ctx *c = ctx;
    sl_strlist_bytes(c->out, c->s + c->last, start - c->last);
    sl_strlist_bytes(c->out, c->content, strlen(c->content));
    c->last = end;
}

static void apply_one(const sl_norm *nm, const char *s, size_t n, sl_strlist *out)
{
    const unsigned char *u = (const unsigned char *)s;
    switch (nm->type) {
    case SL_NORM_NFC: unicode_norm(s, n, UTF8PROC_STABLE | UTF8PROC_COMPOSE, out); break;
    case SL_NORM_NFD: unicode_norm(s, n, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE, out); break;
    case SL_NORM_NFKC:
        unicode_norm(s, n, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT, out);
        break;
    case SL_NORM_NFKD:
        unicode_norm(s, n, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, out);
        break;
    case SL_NORM_PREPEND:
        if (n)
            sl_strlist_bytes(out, nm->str, strlen(nm->str));
        sl_strlist_bytes(out, s, n);
        break;
    case SL_NORM_REPLACE:
        if (nm->pat) {
            size_t pl = strlen(nm->pat), i = 0, last = 0;
            while (i + pl <= n) {
                if (!memcmp(s + i, nm->pat, pl)) {
                    sl_strlist_bytes(out, s + last, i - last);
                    sl_strlist_bytes(out, nm->str, strlen(nm->str));
                    i += pl;
                    last = i;
                } else
                    i++;
            }
            sl_strlist_bytes(out, s + last, n - last);
        } else {
            replace_ctx c = {s, 0, nm->str, out};
            sl_regex_foreach(&nm->re, s, n, replace_cb, &c);
            sl_strlist_bytes(out, s + c.last, n - c.last);
        }
        break;
    case SL_NORM_LOWERCASE:
        for (size_t i = 0; i < n;) {
            size_t cl = sl_utf8_char_len(u + i, n - i);
            if (!cl) {
                sl_strlist_bytes(out, s + i, 1);
                i++;
                continue;
            }
            char buf[4];
            int32_t lc = utf8proc_tolower(sl_utf8_decode(u + i, cl));
            sl_strlist_bytes(out, buf, sl_utf8_encode(lc, buf));
            i += cl;
        }
        break;
    case SL_NORM_STRIP: {
        size_t a = 0, b = n;
        while (nm->left && a < b) {
            size_t cl = sl_utf8_char_len(u + a, b - a);
            if (!cl || !sl_unicode_is_whitespace(sl_utf8_decode(u + a, cl)))
                break;
            a += cl;
        }
        while (nm->right && b > a) {
            size_t k = b - 1;
            while (k > a && (u[k] & 0xC0) == 0x80 && b - k < 4)
                k--;
            size_t cl = sl_utf8_char_len(u + k, b - k);
            if (cl != b - k || !sl_unicode_is_whitespace(sl_utf8_decode(u + k, cl)))
                break;
            b = k;
        }
        sl_strlist_bytes(out, s + a, b - a);
        break;
    }
    case SL_NORM_SEQUENCE: {
        /* Ping-pong between two scratch buffers, one normalizer at a time. */
        sl_strlist x = {0}, y = {0};
        sl_strlist_bytes(&x, s, n);
        for (size_t i = 0; i < nm->n_items && !x.oom; i++) {
            sl_strlist_clear(&y);
            apply_one(&nm->items[i], x.buf, x.len, &y);
            sl_strlist t = x;
            x = y;
            y = t;
        }
        if (x.oom || y.oom)
            out->oom = true;
        sl_strlist_bytes(out, x.buf, x.len);
        sl_strlist_free(&x);
        sl_strlist_free(&y);
        break;
    }
    }
}

void sl_norm_apply(const sl_norm *nm, const char *s, size_t n, sl_strlist *out)
{
    apply_one(nm, s, n, out);
}
