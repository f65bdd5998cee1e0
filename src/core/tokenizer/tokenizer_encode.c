/* The encode pipeline: added tokens (HF AddedVocabulary), normalizer, pre-tokenizer, BPE and the
 * post-processor template. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer_internal.h"

/* ---------------------------------------------------------------- added tokens */

static bool is_word_char(int32_t cp)
{
    if (cp == '_')
        return true;
    utf8proc_category_t c = utf8proc_category(cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_ME) || c == UTF8PROC_CATEGORY_ND ||
           c == UTF8PROC_CATEGORY_PC;
}

static int32_t last_char(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t k = n;
    while (k > 0 && n - k < 4) {
        k--;
        size_t cl = sl_utf8_char_len(u + k, n - k);
        if (cl == n - k)
            return sl_utf8_decode(u + k, cl);
        if ((u[k] & 0xC0) != 0x80)
            break;
    }
    return -1;
}

static int32_t first_char(const char *s, size_t n)
{
    size_t cl = sl_utf8_char_len((const unsigned char *)s, n);
    return cl ? sl_utf8_decode((const unsigned char *)s, cl) : -1;
}

typedef struct chunk {
    size_t a, b;
    sl_token id; /* -1: text */
} chunk;

typedef struct chunks {
    chunk *v;
    size_t n, cap;
} chunks;

static bool chunk_push(chunks *c, size_t a, size_t b, sl_token id)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        chunk *v = realloc(c->v, cap * sizeof *v);
        if (!v)
            return false;
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = (chunk){a, b, id};
    return true;
}

/* HF AddedVocabulary::find_matches: leftmost-longest matches of the added tokens whose
 * `normalized` flag equals norm, with lstrip/rstrip/single_word; text between them as chunks. */
static bool split_added(const sl_tokenizer *tok, const char *s, size_t n, bool norm, bool split_special,
                        chunks *out)
{
    size_t start_off = 0, pos = 0;
    while (pos < n) {
        size_t i, best_len = 0;
        int32_t best = -1;
        for (i = pos; i < n; i++) {
            const int32_t *cand = tok->added_by_byte[(unsigned char)s[i]];
            if (!cand)
                continue;
            for (; *cand >= 0; cand++) {
                const sl_added_token *a = &tok->added[*cand];
                if (a->normalized == norm && a->len > best_len && a->len <= n - i &&
                    !memcmp(s + i, a->content, a->len)) {
                    best = *cand;
                    best_len = a->len;
                }
            }
            if (best >= 0)
                break;
        }
        if (best < 0)
            break;
        const sl_added_token *a = &tok->added[best];
        size_t start = i, stop = i + best_len;
        pos = stop;
        if (split_special && a->special)
            continue;
        if (a->single_word) {
            int32_t lc = start ? last_char(s, start) : -1, nc = stop < n ? first_char(s + stop, n - stop) : -1;
            if ((lc >= 0 && is_word_char(lc)) || (nc >= 0 && is_word_char(nc)))
                continue;
        }
        if (a->lstrip) {
            size_t ns = start;
            for (;;) {
                int32_t c = ns ? last_char(s, ns) : -1;
                if (c < 0 || !sl_unicode_is_whitespace(c))
                    break;
                char tmp[4];
                ns -= sl_utf8_encode(c, tmp);
            }
            start = ns > start_off ? ns : start_off;
        }
        if (a->rstrip) {
            for (;;) {
                int32_t c = stop < n ? first_char(s + stop, n - stop) : -1;
                if (c < 0 || !sl_unicode_is_whitespace(c))
                    break;
                char tmp[4];
                stop += sl_utf8_encode(c, tmp);
            }
            pos = stop;
        }
        if (start_off < start && !chunk_push(out, start_off, start, -1))
            return false;
        if (!chunk_push(out, start, stop, a->id))
            return false;
        start_off = stop;
    }
    if (start_off < n && !chunk_push(out, start_off, n, -1))
        return false;
    return true;
}

/* ---------------------------------------------------------------- encode */

static sl_status encode_text(sl_tokenizer *tok, const char *s, size_t n, bool first, sl_token **out,
                             size_t *n_out, size_t *cap)
{
    sl_strlist *pieces = &tok->s_pieces;
    sl_strlist_clear(pieces);
    sl_strlist_push(pieces, s, n, first);
    if (tok->has_pretok)
        sl_pretok_apply(&tok->pretok, pieces, &tok->s_tmp);
    else if (tok->meta_split) {
        sl_strlist_clear(pieces);
        size_t a = 0;
        for (size_t i = 1; i + 3 <= n; i++)
            if (!memcmp(s + i, "\xe2\x96\x81", 3) && memcmp(s + i - 3 * (i >= 3), "\xe2\x96\x81", 3)) {
                sl_strlist_push(pieces, s + a, i - a, false);
                a = i;
            }
        sl_strlist_push(pieces, s + a, n - a, false);
    }
    if (pieces->oom) {
        pieces->oom = false;
        tok->s_tmp.oom = false;
        return SL_STATUS_E_NOMEM;
    }
    for (size_t i = 0; i < pieces->n; i++) {
        sl_status st = sl_bpe_word(tok, pieces->buf + pieces->off[i], pieces->slen[i], out, n_out, cap);
        if (st)
            return st;
    }
    return SL_STATUS_OK;
}

static bool ids_push(sl_token **out, size_t *n, size_t *cap, const sl_token *ids, size_t k)
{
    if (*n + k > *cap) {
        size_t c = *cap ? *cap : 64;
        while (c < *n + k)
            c *= 2;
        sl_token *p = realloc(*out, c * sizeof *p);
        if (!p)
            return false;
        *out = p;
        *cap = c;
    }
    if (k)
        memcpy(*out + *n, ids, k * sizeof *ids);
    *n += k;
    return true;
}

sl_status sl_tokenizer_encode(sl_tokenizer *tok, const char *text, size_t len, unsigned flags,
                              sl_token **ids, size_t *n_ids, sl_error *err)
{
    if (ids)
        *ids = NULL;
    if (n_ids)
        *n_ids = 0;
    if (!tok || !ids || !n_ids || (!text && len))
        return sl_error_set(err, SL_STATUS_E_ARG, "sl_tokenizer_encode: NULL argument");
    bool split_special = flags & SL_ENCODE_SPLIT_SPECIAL;
    sl_token *out = NULL;
    size_t n = 0, cap = 0;
    chunks raw = {0}, sub = {0};
    sl_status st = SL_STATUS_OK;
    if ((flags & SL_ENCODE_ADD_SPECIAL) && !ids_push(&out, &n, &cap, tok->tmpl_pre, tok->n_tmpl_pre))
        goto oom;
    if (len && !split_added(tok, text, len, false, split_special, &raw))
        goto oom;
    for (size_t c = 0; c < raw.n; c++) {
        if (raw.v[c].id >= 0) {
            if (!ids_push(&out, &n, &cap, &raw.v[c].id, 1))
                goto oom;
            continue;
        }
        const char *s = text + raw.v[c].a;
        size_t sn = raw.v[c].b - raw.v[c].a;
        sl_strlist *nb = &tok->s_norm;
        sl_strlist_clear(nb);
        if (tok->has_norm) {
            sl_norm_apply(&tok->norm, s, sn, nb);
            if (nb->oom) {
                nb->oom = false;
                goto oom;
            }
            s = nb->buf ? nb->buf : "";
            sn = nb->len;
        }
        sub.n = 0;
        if (sn && !split_added(tok, s, sn, true, split_special, &sub))
            goto oom;
        for (size_t k = 0; k < sub.n; k++) {
            if (sub.v[k].id >= 0)
                st = ids_push(&out, &n, &cap, &sub.v[k].id, 1) ? SL_STATUS_OK : SL_STATUS_E_NOMEM;
            else
                st = encode_text(tok, s + sub.v[k].a, sub.v[k].b - sub.v[k].a,
                                 raw.v[c].a == 0 && sub.v[k].a == 0, &out, &n, &cap);
            if (st)
                goto oom;
        }
    }
    if ((flags & SL_ENCODE_ADD_SPECIAL) && !ids_push(&out, &n, &cap, tok->tmpl_post, tok->n_tmpl_post))
        goto oom;
    free(raw.v);
    free(sub.v);
    *ids = out;
    *n_ids = n;
    return SL_STATUS_OK;
oom:
    free(raw.v);
    free(sub.v);
    free(out);
    return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory encoding %zu bytes", tok->path, len);
}
