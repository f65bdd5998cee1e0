/* Pre-tokenizers: Split, ByteLevel, Digits, Metaspace, Sequence. The splitting follows HF's
 * NormalizedString::split: the pattern yields (range, is_match) segments covering the piece, the
 * behaviour merges or drops them, and empty pieces vanish. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer_internal.h"

#define GPT2_PATTERN                                                                               \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

static sl_status parse_scheme(json_object *o, const char *file, const char *jpath,
                              sl_prepend_scheme *scheme, char repl[8], size_t *repl_len,
                              sl_error *err)
{
    json_object *v;
    const char *r;
    sl_status st = sl_json_string(o, "replacement", file, jpath, &r, err);
    if (st)
        return st;
    size_t rl = strlen(r);
    if (rl == 0 || rl > 4 || sl_utf8_char_len((const unsigned char *)r, rl) != rl)
        return sl_error_set(err, SL_STATUS_E_FORMAT,
                            "%s: expected a single character at %s.replacement (\"%s\")", file, jpath,
                            r);
    memcpy(repl, r, rl);
    repl[rl] = '\0';
    *repl_len = rl;
    if (json_object_object_get_ex(o, "prepend_scheme", &v) && json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        if (!strcmp(s, "always"))
            *scheme = SL_PREPEND_ALWAYS;
        else if (!strcmp(s, "first"))
            *scheme = SL_PREPEND_FIRST;
        else if (!strcmp(s, "never"))
            *scheme = SL_PREPEND_NEVER;
        else
            return sl_error_set(err, SL_STATUS_E_FORMAT,
                                "%s: unsupported prepend_scheme at %s.prepend_scheme (\"%s\")", file,
                                jpath, s);
    } else /* files older than prepend_scheme carry add_prefix_space */
        *scheme = sl_json_bool(o, "add_prefix_space", true) ? SL_PREPEND_ALWAYS : SL_PREPEND_NEVER;
    return SL_STATUS_OK;
}

/* Shared with the decoders, which read the same Metaspace fields. */
sl_status sl_metaspace_parse(json_object *o, const char *file, const char *jpath,
                             sl_prepend_scheme *scheme, char repl[8], size_t *repl_len,
                             sl_error *err);
sl_status sl_metaspace_parse(json_object *o, const char *file, const char *jpath,
                             sl_prepend_scheme *scheme, char repl[8], size_t *repl_len, sl_error *err)
{
    return parse_scheme(o, file, jpath, scheme, repl, repl_len, err);
}

sl_status sl_pretok_parse(sl_pretok *pt, json_object *o, const char *file, const char *jpath,
                          sl_error *err)
{
    const char *type;
    char sub[256];
    memset(pt, 0, sizeof *pt);
    sl_status st = sl_json_type(o, file, jpath, &type, err);
    if (st)
        return st;
    if (!strcmp(type, "Split")) {
        const char *pat, *beh;
        bool is_re;
        pt->type = SL_PRE_SPLIT;
        if ((st = sl_json_pattern(o, file, jpath, &pat, &is_re, err)) ||
            (st = sl_json_string(o, "behavior", file, jpath, &beh, err)))
            return st;
        if (!strcmp(beh, "Isolated"))
            pt->behavior = SL_SPLIT_ISOLATED;
        else if (!strcmp(beh, "Removed"))
            pt->behavior = SL_SPLIT_REMOVED;
        else if (!strcmp(beh, "MergedWithPrevious"))
            pt->behavior = SL_SPLIT_MERGED_PREV;
        else if (!strcmp(beh, "MergedWithNext"))
            pt->behavior = SL_SPLIT_MERGED_NEXT;
        else if (!strcmp(beh, "Contiguous"))
            pt->behavior = SL_SPLIT_CONTIGUOUS;
        else
            return sl_error_set(err, SL_STATUS_E_FORMAT,
                                "%s: unsupported split behavior at %s.behavior (\"%s\")", file, jpath,
                                beh);
        pt->invert = sl_json_bool(o, "invert", false);
        if (is_re) {
            snprintf(sub, sizeof sub, "%s.pattern.Regex", jpath);
            if ((st = sl_regex_compile(&pt->re, pat, file, sub, err)))
                return st;
        } else {
            pt->literal_len = strlen(pat);
            if (!pt->literal_len)
                return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: empty pattern at %s.pattern.String",
                                    file, jpath);
            if (!(pt->literal = malloc(pt->literal_len + 1)))
                return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", file);
            memcpy(pt->literal, pat, pt->literal_len + 1);
        }
    } else if (!strcmp(type, "ByteLevel")) {
        pt->type = SL_PRE_BYTELEVEL;
        pt->add_prefix_space = sl_json_bool(o, "add_prefix_space", true);
        pt->use_regex = sl_json_bool(o, "use_regex", true);
        if (pt->use_regex) {
            snprintf(sub, sizeof sub, "%s (ByteLevel regex)", jpath);
            if ((st = sl_regex_compile(&pt->re, GPT2_PATTERN, file, sub, err)))
                return st;
        }
    } else if (!strcmp(type, "Digits")) {
        pt->type = SL_PRE_DIGITS;
        pt->individual = sl_json_bool(o, "individual_digits", false);
    } else if (!strcmp(type, "Metaspace")) {
        pt->type = SL_PRE_METASPACE;
        pt->split = sl_json_bool(o, "split", true);
        if ((st = parse_scheme(o, file, jpath, &pt->scheme, pt->repl, &pt->repl_len, err)))
            return st;
    } else if (!strcmp(type, "Sequence")) {
        json_object *arr;
        pt->type = SL_PRE_SEQUENCE;
        if (!json_object_object_get_ex(o, "pretokenizers", &arr) ||
            !json_object_is_type(arr, json_type_array))
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: missing array at %s.pretokenizers", file,
                                jpath);
        size_t n = json_object_array_length(arr);
        pt->items = calloc(n ? n : 1, sizeof *pt->items);
        if (!pt->items)
            return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", file);
        for (size_t i = 0; i < n; i++) {
            snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", jpath, i);
            pt->n_items = i + 1;
            if ((st = sl_pretok_parse(&pt->items[i], json_object_array_get_idx(arr, i), file, sub, err)))
                return st;
        }
    } else
        return sl_error_set(err, SL_STATUS_E_FORMAT,
                            "%s: unsupported pre_tokenizer type at %s.type (\"%s\")", file, jpath, type);
    return SL_STATUS_OK;
}

void sl_pretok_free(sl_pretok *pt)
{
    for (size_t i = 0; i < pt->n_items; i++)
        sl_pretok_free(&pt->items[i]);
    free(pt->items);
    free(pt->literal);
    sl_regex_free(&pt->re);
    memset(pt, 0, sizeof *pt);
}

/* ---------------------------------------------------------------- segments */

typedef struct seg {
    size_t a, b;
    bool m; /* is a match (or, after the behaviour, "remove") */
} seg;

typedef struct segs {
    seg *v;
    size_t n, cap;
    size_t last; /* end of the previous match */
    bool oom;
} segs;

static void segs_push(segs *s, size_t a, size_t b, bool m)
{
    if (s->oom)
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        seg *v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            s->oom = true;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (seg){a, b, m};
}

/* A match [a, b): the gap before it becomes a non-match segment. */
static void match_cb(void *ctx, size_t a, size_t b)
{
    segs *s = ctx;
    if (s->last != a)
        segs_push(s, s->last, a, false);
    segs_push(s, a, b, true);
    s->last = b;
}

static void segs_finish(segs *s, size_t n)
{
    if (s->last != n)
        segs_push(s, s->last, n, false);
}

static void find_literal(segs *s, const char *p, size_t n, const char *lit, size_t ll)
{
    size_t i = 0;
    while (i + ll <= n) {
        if (!memcmp(p + i, lit, ll)) {
            match_cb(s, i, i + ll);
            i += ll;
        } else
            i++;
    }
}

static bool is_numeric(int32_t cp)
{
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

static void find_digits(segs *s, const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    for (size_t i = 0; i < n;) {
        size_t cl = sl_utf8_char_len(u + i, n - i);
        if (!cl) {
            i++;
            continue;
        }
        if (is_numeric(sl_utf8_decode(u + i, cl)))
            match_cb(s, i, i + cl);
        i += cl;
    }
}

/* Applies the behaviour in place (HF SplitDelimiterBehavior); afterwards m means "remove". */
static void apply_behavior(segs *s, sl_split_behavior beh, bool invert)
{
    if (invert)
        for (size_t i = 0; i < s->n; i++)
            s->v[i].m = !s->v[i].m;
    size_t k = 0;
    bool prev = false;
    switch (beh) {
    case SL_SPLIT_ISOLATED:
        for (size_t i = 0; i < s->n; i++)
            s->v[i].m = false;
        return;
    case SL_SPLIT_REMOVED: return;
    case SL_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < s->n; i++) {
            bool m = s->v[i].m;
            if (m == prev && k > 0)
                s->v[k - 1].b = s->v[i].b;
            else
                s->v[k++] = (seg){s->v[i].a, s->v[i].b, false};
            prev = m;
        }
        break;
    case SL_SPLIT_MERGED_PREV:
        for (size_t i = 0; i < s->n; i++) {
            bool m = s->v[i].m;
            if (m && !prev && k > 0)
                s->v[k - 1].b = s->v[i].b;
            else
                s->v[k++] = (seg){s->v[i].a, s->v[i].b, false};
            prev = m;
        }
        break;
    case SL_SPLIT_MERGED_NEXT: {
        /* Walk backwards, merging each match into the piece that follows it. */
        size_t n = s->n;
        k = n;
        for (size_t j = n; j-- > 0;) {
            bool m = s->v[j].m;
            if (m && !prev && k < n)
                s->v[k].a = s->v[j].a;
            else
                s->v[--k] = (seg){s->v[j].a, s->v[j].b, false};
            prev = m;
        }
        memmove(s->v, s->v + k, (n - k) * sizeof *s->v);
        k = n - k;
        break;
    }
    }
    s->n = k;
}

static void emit_segs(const segs *s, const char *p, bool first, sl_strlist *out)
{
    for (size_t i = 0; i < s->n; i++)
        if (!s->v[i].m && s->v[i].b > s->v[i].a)
            sl_strlist_push(out, p + s->v[i].a, s->v[i].b - s->v[i].a, first && s->v[i].a == 0);
}

static void bytelevel_map(const char *p, size_t n, sl_strlist *out, bool first)
{
    for (size_t i = 0; i < n; i++) {
        const char *e = sl_bytelevel_enc[(unsigned char)p[i]];
        sl_strlist_bytes(out, e, e[1] ? 2 : 1);
    }
    sl_strlist_end(out, first);
}

static void pretok_piece(const sl_pretok *pt, const char *p, size_t n, bool first, sl_strlist *out,
                         segs *sg, sl_strlist *scratch)
{
    sg->n = 0;
    sg->last = 0;
    switch (pt->type) {
    case SL_PRE_SPLIT:
        if (pt->literal)
            find_literal(sg, p, n, pt->literal, pt->literal_len);
        else
            sl_regex_foreach(&pt->re, p, n, match_cb, sg);
        segs_finish(sg, n);
        apply_behavior(sg, pt->behavior, pt->invert);
        emit_segs(sg, p, first, out);
        break;
    case SL_PRE_DIGITS:
        find_digits(sg, p, n);
        segs_finish(sg, n);
        apply_behavior(sg, pt->individual ? SL_SPLIT_ISOLATED : SL_SPLIT_CONTIGUOUS, false);
        emit_segs(sg, p, first, out);
        break;
    case SL_PRE_BYTELEVEL: {
        sl_strlist_clear(scratch);
        if (pt->add_prefix_space && (n == 0 || p[0] != ' '))
            sl_strlist_bytes(scratch, " ", 1);
        sl_strlist_bytes(scratch, p, n);
        const char *q = scratch->buf;
        size_t qn = scratch->len;
        if (scratch->oom) {
            out->oom = true;
            break;
        }
        if (!pt->use_regex) {
            if (qn)
                bytelevel_map(q, qn, out, first);
            break;
        }
        sl_regex_foreach(&pt->re, q, qn, match_cb, sg);
        segs_finish(sg, qn);
        for (size_t i = 0; i < sg->n; i++)
            if (sg->v[i].b > sg->v[i].a)
                bytelevel_map(q + sg->v[i].a, sg->v[i].b - sg->v[i].a, out, first && sg->v[i].a == 0);
        break;
    }
    case SL_PRE_METASPACE: {
        sl_strlist_clear(scratch);
        bool starts = n >= pt->repl_len && !memcmp(p, pt->repl, pt->repl_len);
        if (!starts && n && p[0] == ' ')
            starts = true; /* the space is about to become the replacement */
        if (!starts && (pt->scheme == SL_PREPEND_ALWAYS || (pt->scheme == SL_PREPEND_FIRST && first)))
            sl_strlist_bytes(scratch, pt->repl, pt->repl_len);
        for (size_t i = 0; i < n; i++) {
            if (p[i] == ' ')
                sl_strlist_bytes(scratch, pt->repl, pt->repl_len);
            else
                sl_strlist_bytes(scratch, p + i, 1);
        }
        if (scratch->oom) {
            out->oom = true;
            break;
        }
        if (!pt->split) {
            if (scratch->len)
                sl_strlist_push(out, scratch->buf, scratch->len, first);
            break;
        }
        find_literal(sg, scratch->buf, scratch->len, pt->repl, pt->repl_len);
        segs_finish(sg, scratch->len);
        apply_behavior(sg, SL_SPLIT_MERGED_NEXT, false);
        emit_segs(sg, scratch->buf, first, out);
        break;
    }
    case SL_PRE_SEQUENCE: break; /* handled by sl_pretok_apply */
    }
    if (sg->oom)
        out->oom = true;
}

static void swap_lists(sl_strlist *a, sl_strlist *b)
{
    sl_strlist t = *a;
    *a = *b;
    *b = t;
}

void sl_pretok_apply(const sl_pretok *pt, sl_strlist *in, sl_strlist *tmp)
{
    if (pt->type == SL_PRE_SEQUENCE) {
        for (size_t i = 0; i < pt->n_items; i++)
            sl_pretok_apply(&pt->items[i], in, tmp);
        return;
    }
    segs sg = {0};
    sl_strlist scratch = {0};
    sl_strlist_clear(tmp);
    tmp->oom = in->oom;
    for (size_t i = 0; i < in->n; i++)
        pretok_piece(pt, in->buf + in->off[i], in->slen[i], in->first[i], tmp, &sg, &scratch);
    if (scratch.oom)
        tmp->oom = true;
    free(sg.v);
    sl_strlist_free(&scratch);
    swap_lists(in, tmp);
}
