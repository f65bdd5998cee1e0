/* Loading tokenizer.json and tokenizer_config.json; vocabulary lookups. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/file_io.h"
#include "tokenizer_internal.h"

/* ---------------------------------------------------------------- file helpers */

static sl_status parse_json(const char *path, const char *buf, size_t len, json_object **out, sl_error *err)
{
    *out = NULL;
    if (len > 0x7FFFFFFF)
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: file too large (%zu bytes)", path, len);
    json_tokener *tk = json_tokener_new();
    if (!tk)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory parsing", path);
    json_object *o = json_tokener_parse_ex(tk, buf, (int)len);
    enum json_tokener_error je = json_tokener_get_error(tk);
    size_t end = json_tokener_get_parse_end(tk);
    while (o && end < len && (buf[end] == ' ' || buf[end] == '\n' || buf[end] == '\r' || buf[end] == '\t'))
        end++;
    sl_status st = SL_STATUS_OK;
    if (!o || je != json_tokener_success || end != len) {
        st = sl_error_set(err, SL_STATUS_E_FORMAT, "%s: not valid JSON (%s at byte %zu)", path,
                          je == json_tokener_continue       ? "unexpected end of input"
                          : !o || je != json_tokener_success ? json_tokener_error_desc(je)
                                                             : "trailing data",
                          end);
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tk);
    *out = o;
    return st;
}

static sl_status read_json(const char *path, json_object **out, sl_error *err)
{
    *out = NULL;
    char *buf;
    size_t len;
    sl_status st = sl_file_read_all(path, &buf, &len, err);
    if (st != SL_STATUS_OK)
        return st;
    st = parse_json(path, buf, len, out, err);
    free(buf);
    return st;
}


static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* ---------------------------------------------------------------- lookups */

const char *sl_tok_piece(const sl_tokenizer *tok, sl_token id, size_t *len)
{
    if (id < 0 || (size_t)id >= tok->n_ids)
        return NULL;
    int32_t a = tok->added_of_id[id];
    if (a >= 0) {
        if (len)
            *len = tok->added[a].len;
        return tok->added[a].content;
    }
    if (tok->piece_off[id] == SIZE_MAX)
        return NULL;
    if (len)
        *len = tok->piece_len[id];
    return tok->arena + tok->piece_off[id];
}

size_t sl_tokenizer_vocab_size(const sl_tokenizer *tok) { return tok ? tok->n_ids : 0; }

sl_status sl_tokenizer_check_vocab(const sl_tokenizer *tok, int32_t n_vocab, const char *model_label,
                                   sl_error *err)
{
    sl_error_clear(err);
    if (!tok)
        return sl_error_set(err, SL_STATUS_E_ARG, "sl_tokenizer_check_vocab: tokenizer is NULL");
    if (n_vocab < 0 || tok->n_ids > (size_t)n_vocab)
        return sl_error_set(err, SL_STATUS_E_FORMAT,
                            "%s: token id out of range for the model (ids up to %zu; %s has vocab_size %d)",
                            tok->path, tok->n_ids - 1, model_label ? model_label : "the model", (int)n_vocab);
    return SL_STATUS_OK;
}

const char *sl_tokenizer_piece(const sl_tokenizer *tok, sl_token id, size_t *len)
{
    return tok ? sl_tok_piece(tok, id, len) : NULL;
}

sl_token sl_tokenizer_token_id(const sl_tokenizer *tok, const char *piece, size_t len)
{
    if (!tok || !piece)
        return -1;
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].len == len && !memcmp(tok->added[i].content, piece, len))
            return tok->added[i].id;
    return sl_vocab_lookup(tok, piece, len);
}

sl_token sl_tokenizer_bos(const sl_tokenizer *tok) { return tok ? tok->bos : -1; }
sl_token sl_tokenizer_eos(const sl_tokenizer *tok) { return tok ? tok->eos : -1; }
sl_token sl_tokenizer_unk(const sl_tokenizer *tok) { return tok ? tok->unk : -1; }

bool sl_tokenizer_is_special(const sl_tokenizer *tok, sl_token id)
{
    if (!tok || id < 0 || (size_t)id >= tok->n_ids || tok->added_of_id[id] < 0)
        return false;
    return tok->added[tok->added_of_id[id]].special;
}

/* ---------------------------------------------------------------- loading */

void sl_tokenizer_free(sl_tokenizer *tok)
{
    if (!tok)
        return;
    sl_bpe_free(tok);
    free(tok->arena);
    free(tok->piece_off);
    free(tok->piece_len);
    free(tok->vocab_slots);
    free(tok->cont_prefix);
    free(tok->eow_suffix);
    for (size_t i = 0; i < tok->n_added; i++)
        free(tok->added[i].content);
    free(tok->added);
    free(tok->added_of_id);
    for (int b = 0; b < 256; b++)
        free(tok->added_by_byte[b]);
    if (tok->has_norm)
        sl_norm_free(&tok->norm);
    if (tok->has_pretok)
        sl_pretok_free(&tok->pretok);
    if (tok->has_decoder)
        sl_decoder_free(&tok->decoder);
    free(tok->tmpl_pre);
    free(tok->tmpl_post);
    sl_strlist_free(&tok->s_norm);
    sl_strlist_free(&tok->s_pieces);
    sl_strlist_free(&tok->s_tmp);
    free(tok->path);
    free(tok);
}

static sl_status nomem(const char *file, sl_error *err)
{
    return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", file);
}

/* Optional string member: NULL when absent or null; error when present with another type. */
static sl_status opt_string(json_object *o, const char *key, const char *file, const char *jpath,
                            const char **out, sl_error *err)
{
    json_object *v;
    *out = NULL;
    if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
        return SL_STATUS_OK;
    if (!json_object_is_type(v, json_type_string))
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: expected a string at %s%s%s", file, jpath,
                            *jpath ? "." : "", key);
    *out = json_object_get_string(v);
    return SL_STATUS_OK;
}

static sl_status load_vocab(sl_tokenizer *tok, json_object *vocab, json_object *added, const char *file,
                            sl_error *err)
{
    size_t total = 0, n = (size_t)json_object_object_length(vocab);
    int64_t max_id = -1;
    size_t na = added ? json_object_array_length(added) : 0;
    /* Ids index dense per-id tables, so they are bounded by the number of entries before
     * anything is sized by them (a stray 1000000000 would otherwise cost gigabytes). Real
     * vocabularies are dense or nearly so; the slack admits reserved gaps. */
    int64_t limit = (int64_t)(2 * (n + na) + SL_TOK_ID_SLACK);
    json_object_object_foreach(vocab, key, val)
    {
        if (!json_object_is_type(val, json_type_int) || json_object_get_int64(val) < 0 ||
            json_object_get_int64(val) >= INT32_MAX)
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: expected a token id at model.vocab[\"%s\"]",
                                file, key);
        int64_t id = json_object_get_int64(val);
        if (id >= limit)
            return sl_error_set(err, SL_STATUS_E_FORMAT,
                                "%s: token id out of range at model.vocab[\"%s\"] (%lld; %zu entries allow ids "
                                "below %lld)",
                                file, key, (long long)id, n + na, (long long)limit);
        if (id > max_id)
            max_id = id;
        total += strlen(key) + 1;
    }
    for (size_t i = 0; i < na; i++) {
        json_object *t = json_object_array_get_idx(added, i), *v;
        if (!json_object_is_type(t, json_type_object) || !json_object_object_get_ex(t, "id", &v) ||
            !json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
            json_object_get_int64(v) >= INT32_MAX)
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: expected a token id at added_tokens[%zu].id",
                                file, i);
        if (json_object_get_int64(v) >= limit)
            return sl_error_set(err, SL_STATUS_E_FORMAT,
                                "%s: token id out of range at added_tokens[%zu].id (%lld; %zu entries allow ids "
                                "below %lld)",
                                file, i, (long long)json_object_get_int64(v), n + na, (long long)limit);
        if (json_object_get_int64(v) > max_id)
            max_id = json_object_get_int64(v);
    }
    tok->n_ids = (size_t)max_id + 1;
    tok->arena = malloc(total ? total : 1);
    tok->piece_off = malloc(tok->n_ids * sizeof *tok->piece_off);
    tok->piece_len = calloc(tok->n_ids, sizeof *tok->piece_len);
    tok->added_of_id = malloc(tok->n_ids * sizeof *tok->added_of_id);
    size_t cap = 16;
    while (cap < 2 * n + 16)
        cap *= 2;
    tok->vocab_slots = malloc(cap * sizeof *tok->vocab_slots);
    tok->vocab_mask = cap - 1;
    if (!tok->arena || !tok->piece_off || !tok->piece_len || !tok->added_of_id || !tok->vocab_slots)
        return nomem(file, err);
    memset(tok->vocab_slots, 0xFF, cap * sizeof *tok->vocab_slots);
    for (size_t i = 0; i < tok->n_ids; i++) {
        tok->piece_off[i] = SIZE_MAX;
        tok->added_of_id[i] = -1;
    }
    size_t pos = 0;
    json_object_object_foreach(vocab, k2, v2)
    {
        sl_token id = (sl_token)json_object_get_int64(v2);
        size_t kl = strlen(k2);
        if (tok->piece_off[id] != SIZE_MAX)
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: duplicate id %d at model.vocab[\"%s\"]",
                                file, (int)id, k2);
        memcpy(tok->arena + pos, k2, kl + 1);
        tok->piece_off[id] = pos;
        tok->piece_len[id] = (uint32_t)kl;
        pos += kl + 1;
        size_t s = sl_hash_bytes(k2, kl) & tok->vocab_mask;
        while (tok->vocab_slots[s] >= 0)
            s = (s + 1) & tok->vocab_mask;
        tok->vocab_slots[s] = id;
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        tok->byte_tok[b] = sl_vocab_lookup(tok, name, 6);
    }
    return SL_STATUS_OK;
}

static sl_status load_added(sl_tokenizer *tok, json_object *added, const char *file, sl_error *err)
{
    size_t na = added ? json_object_array_length(added) : 0;
    tok->added = calloc(na ? na : 1, sizeof *tok->added);
    if (!tok->added)
        return nomem(file, err);
    char jp[64];
    for (size_t i = 0; i < na; i++) {
        json_object *t = json_object_array_get_idx(added, i), *v;
        sl_added_token *a = &tok->added[i];
        snprintf(jp, sizeof jp, "added_tokens[%zu]", i);
        if (!json_object_object_get_ex(t, "content", &v) || !json_object_is_type(v, json_type_string) ||
            json_object_get_string_len(v) == 0)
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: missing string at %s.content", file, jp);
        json_object_object_get_ex(t, "id", &v);
        a->id = (sl_token)json_object_get_int64(v);
        a->special = sl_json_bool(t, "special", false);
        a->lstrip = sl_json_bool(t, "lstrip", false);
        a->rstrip = sl_json_bool(t, "rstrip", false);
        a->single_word = sl_json_bool(t, "single_word", false);
        a->normalized = sl_json_bool(t, "normalized", !a->special);
        json_object_object_get_ex(t, "content", &v);
        const char *c = json_object_get_string(v);
        size_t cl = (size_t)json_object_get_string_len(v);
        if (a->normalized && tok->has_norm) {
            /* normalized tokens are matched against normalized text, so store them normalized */
            sl_strlist tmp = {0};
            sl_norm_apply(&tok->norm, c, cl, &tmp);
            a->content = tmp.oom ? NULL : dup_n(tmp.buf ? tmp.buf : "", tmp.len);
            a->len = tmp.len;
            sl_strlist_free(&tmp);
        } else {
            a->content = dup_n(c, cl);
            a->len = cl;
        }
        tok->n_added = i + 1;
        if (!a->content)
            return nomem(file, err);
        if (a->len == 0)
            continue;
        tok->added_of_id[a->id] = (int32_t)i;
    }
    /* index by first byte for the leftmost-longest scan */
    size_t count[256] = {0};
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].len)
            count[(unsigned char)tok->added[i].content[0]]++;
    for (int b = 0; b < 256; b++) {
        if (!count[b])
            continue;
        if (!(tok->added_by_byte[b] = malloc((count[b] + 1) * sizeof(int32_t))))
            return nomem(file, err);
        size_t k = 0;
        for (size_t i = 0; i < tok->n_added; i++)
            if (tok->added[i].len && (unsigned char)tok->added[i].content[0] == b)
                tok->added_by_byte[b][k++] = (int32_t)i;
        tok->added_by_byte[b][k] = -1;
    }
    return SL_STATUS_OK;
}

static sl_status push_tmpl(sl_token **v, size_t *n, sl_token id)
{
    sl_token *p = realloc(*v, (*n + 1) * sizeof *p);
    if (!p)
        return SL_STATUS_E_NOMEM;
    p[(*n)++] = id;
    *v = p;
    return SL_STATUS_OK;
}

static sl_status load_post(sl_tokenizer *tok, json_object *o, const char *file, const char *jpath,
                           sl_error *err)
{
    const char *type;
    char sub[256];
    sl_status st = sl_json_type(o, file, jpath, &type, err);
    if (st)
        return st;
    if (!strcmp(type, "ByteLevel"))
        return SL_STATUS_OK; /* only adjusts offsets */
    if (!strcmp(type, "Sequence")) {
        json_object *arr;
        if (!json_object_object_get_ex(o, "processors", &arr) || !json_object_is_type(arr, json_type_array))
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: missing array at %s.processors", file, jpath);
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            snprintf(sub, sizeof sub, "%s.processors[%zu]", jpath, i);
            if ((st = load_post(tok, json_object_array_get_idx(arr, i), file, sub, err)))
                return st;
        }
        return SL_STATUS_OK;
    }
    if (strcmp(type, "TemplateProcessing"))
        return sl_error_set(err, SL_STATUS_E_FORMAT,
                            "%s: unsupported post_processor type at %s.type (\"%s\")", file, jpath, type);
    json_object *single, *specials;
    if (!json_object_object_get_ex(o, "single", &single) || !json_object_is_type(single, json_type_array))
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: missing array at %s.single", file, jpath);
    if (!json_object_object_get_ex(o, "special_tokens", &specials))
        specials = NULL;
    bool seen_seq = false;
    for (size_t i = 0; i < json_object_array_length(single); i++) {
        json_object *piece = json_object_array_get_idx(single, i), *sp, *idv, *ids;
        if (json_object_object_get_ex(piece, "Sequence", &sp)) {
            seen_seq = true;
            continue;
        }
        if (!json_object_object_get_ex(piece, "SpecialToken", &sp) ||
            !json_object_object_get_ex(sp, "id", &idv) || !json_object_is_type(idv, json_type_string))
            return sl_error_set(err, SL_STATUS_E_FORMAT,
                                "%s: expected SpecialToken or Sequence at %s.single[%zu]", file, jpath, i);
        const char *name = json_object_get_string(idv);
        json_object *ent;
        if (!specials || !json_object_object_get_ex(specials, name, &ent) ||
            !json_object_object_get_ex(ent, "ids", &ids) || !json_object_is_type(ids, json_type_array))
            return sl_error_set(err, SL_STATUS_E_FORMAT,
                                "%s: unknown special token at %s.single[%zu] (\"%s\")", file, jpath, i, name);
        for (size_t k = 0; k < json_object_array_length(ids); k++) {
            json_object *jid = json_object_array_get_idx(ids, k);
            int64_t id = json_object_get_int64(jid);
            if (!json_object_is_type(jid, json_type_int) || id < 0 || (size_t)id >= tok->n_ids)
                return sl_error_set(err, SL_STATUS_E_FORMAT,
                                    "%s: token id out of range at %s.special_tokens[\"%s\"].ids[%zu]",
                                    file, jpath, name, k);
            st = seen_seq ? push_tmpl(&tok->tmpl_post, &tok->n_tmpl_post, (sl_token)id)
                          : push_tmpl(&tok->tmpl_pre, &tok->n_tmpl_pre, (sl_token)id);
            if (st)
                return nomem(file, err);
        }
    }
    return SL_STATUS_OK;
}

/* bos_token etc. are a string or an AddedToken object {"content": ...}. */
static sl_status config_token(sl_tokenizer *tok, json_object *cfg, const char *key, const char *cfile,
                              sl_token *out, sl_error *err)
{
    json_object *v, *c;
    *out = -1;
    if (!json_object_object_get_ex(cfg, key, &v) || json_object_is_type(v, json_type_null))
        return SL_STATUS_OK;
    if (json_object_is_type(v, json_type_object) && json_object_object_get_ex(v, "content", &c))
        v = c;
    if (!json_object_is_type(v, json_type_string))
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: expected a string at %s", cfile, key);
    const char *s = json_object_get_string(v);
    *out = sl_tokenizer_token_id(tok, s, strlen(s));
    if (*out < 0)
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: token not in the vocabulary at %s (\"%s\")",
                            cfile, key, s);
    return SL_STATUS_OK;
}

static sl_status load_config(sl_tokenizer *tok, const char *path, sl_error *err)
{
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path + 1) : 0;
    char *cfile = malloc(dl + sizeof "tokenizer_config.json");
    if (!cfile)
        return nomem(path, err);
    memcpy(cfile, path, dl);
    memcpy(cfile + dl, "tokenizer_config.json", sizeof "tokenizer_config.json");
    json_object *cfg = NULL;
    sl_status st = SL_STATUS_OK;
    if (sl_file_kind_of(cfile) == SL_FILE_MISSING) { /* a FIFO or directory is refused below */
        free(cfile);
        return SL_STATUS_OK;
    }
    if ((st = read_json(cfile, &cfg, err)))
        goto done;
    if (!json_object_is_type(cfg, json_type_object)) {
        st = sl_error_set(err, SL_STATUS_E_FORMAT, "%s: expected an object at the top level", cfile);
        goto done;
    }
    sl_token unk;
    if ((st = config_token(tok, cfg, "bos_token", cfile, &tok->bos, err)) ||
        (st = config_token(tok, cfg, "eos_token", cfile, &tok->eos, err)) ||
        (st = config_token(tok, cfg, "unk_token", cfile, &unk, err)))
        goto done;
    if (unk >= 0)
        tok->unk = unk;
    json_object *ab, *ae;
    bool has_ab = json_object_object_get_ex(cfg, "add_bos_token", &ab) && json_object_is_type(ab, json_type_boolean);
    bool has_ae = json_object_object_get_ex(cfg, "add_eos_token", &ae) && json_object_is_type(ae, json_type_boolean);
    if (has_ab || has_ae) {
        /* as transformers does, explicit flags rebuild the template: [bos] $A [eos] */
        bool want_b = has_ab && json_object_get_boolean(ab), want_e = has_ae && json_object_get_boolean(ae);
        if ((want_b && tok->bos < 0) || (want_e && tok->eos < 0)) {
            st = sl_error_set(err, SL_STATUS_E_FORMAT, "%s: %s is true but %s is missing", cfile,
                              want_b && tok->bos < 0 ? "add_bos_token" : "add_eos_token",
                              want_b && tok->bos < 0 ? "bos_token" : "eos_token");
            goto done;
        }
        tok->n_tmpl_pre = tok->n_tmpl_post = 0;
        if ((want_b && push_tmpl(&tok->tmpl_pre, &tok->n_tmpl_pre, tok->bos)) ||
            (want_e && push_tmpl(&tok->tmpl_post, &tok->n_tmpl_post, tok->eos)))
            st = nomem(cfile, err);
    }
done:
    json_object_put(cfg);
    free(cfile);
    return st;
}

/* Without a pre-tokenizer (SentencePiece-style vocabularies) the whole text is one BPE word, which
 * is slow and defeats the word cache. If no vocabulary piece holds U+2581 after another character,
 * no merge can cross the point before a U+2581 that follows another character, so splitting there
 * gives the same ids. */
static void check_meta_split(sl_tokenizer *tok)
{
    static const char meta[] = "\xe2\x96\x81";
    tok->meta_split = false;
    if (tok->has_pretok || tok->ignore_merges || sl_vocab_lookup(tok, meta, 3) < 0)
        return;
    for (size_t id = 0; id < tok->n_ids; id++) {
        if (tok->piece_off[id] == SIZE_MAX)
            continue;
        const char *p = tok->arena + tok->piece_off[id];
        size_t n = tok->piece_len[id], i = 0;
        while (i + 3 <= n && !memcmp(p + i, meta, 3))
            i += 3;
        for (; i + 3 <= n; i++)
            if (!memcmp(p + i, meta, 3))
                return;
    }
    tok->meta_split = true;
}

static sl_status load_model(sl_tokenizer *tok, json_object *root, const char *file, sl_error *err)
{
    json_object *model, *vocab, *merges, *added = NULL, *v;
    const char *type = NULL, *s;
    sl_status st;
    if (!json_object_object_get_ex(root, "model", &model) || !json_object_is_type(model, json_type_object))
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: missing object at model", file);
    if ((st = opt_string(model, "type", file, "model", &type, err)))
        return st;
    if (type && strcmp(type, "BPE"))
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: unsupported model type at model.type (\"%s\")",
                            file, type);
    if (!json_object_object_get_ex(model, "vocab", &vocab) || !json_object_is_type(vocab, json_type_object))
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: missing object at model.vocab", file);
    if (!json_object_object_get_ex(model, "merges", &merges) || !json_object_is_type(merges, json_type_array))
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: missing array at model.merges", file);
    if (json_object_object_get_ex(model, "dropout", &v) && !json_object_is_type(v, json_type_null) &&
        json_object_get_double(v) > 0.0)
        return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: unsupported BPE dropout at model.dropout (%g)",
                            file, json_object_get_double(v));
    if (json_object_object_get_ex(root, "added_tokens", &added) && !json_object_is_type(added, json_type_null)) {
        if (!json_object_is_type(added, json_type_array))
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: expected an array at added_tokens", file);
    } else
        added = NULL;
    tok->byte_fallback = sl_json_bool(model, "byte_fallback", false);
    tok->ignore_merges = sl_json_bool(model, "ignore_merges", false);
    tok->fuse_unk = sl_json_bool(model, "fuse_unk", false);
    if ((st = opt_string(model, "continuing_subword_prefix", file, "model", &s, err)))
        return st;
    if (s && *s) {
        if (!(tok->cont_prefix = dup_n(s, strlen(s))))
            return nomem(file, err);
        tok->cont_prefix_len = strlen(s);
    }
    if ((st = opt_string(model, "end_of_word_suffix", file, "model", &s, err)))
        return st;
    if (s && *s) {
        if (!(tok->eow_suffix = dup_n(s, strlen(s))))
            return nomem(file, err);
        tok->eow_suffix_len = strlen(s);
    }
    if ((st = load_vocab(tok, vocab, added, file, err)))
        return st;
    tok->model_unk = -1;
    if ((st = opt_string(model, "unk_token", file, "model", &s, err)))
        return st;
    if (s) {
        tok->model_unk = sl_vocab_lookup(tok, s, strlen(s));
        if (tok->model_unk < 0)
            return sl_error_set(err, SL_STATUS_E_FORMAT, "%s: token not in vocab at model.unk_token (\"%s\")",
                                file, s);
    }
    tok->unk = tok->model_unk;
    if ((st = sl_bpe_build_merges(tok, merges, file, err)))
        return st;
    /* the normalizer goes first: normalized added tokens are stored in normalized form */
    if (json_object_object_get_ex(root, "normalizer", &v) && !json_object_is_type(v, json_type_null)) {
        tok->has_norm = true;
        if ((st = sl_norm_parse(&tok->norm, v, file, "normalizer", err)))
            return st;
    }
    if ((st = load_added(tok, added, file, err)))
        return st;
    if (json_object_object_get_ex(root, "pre_tokenizer", &v) && !json_object_is_type(v, json_type_null)) {
        tok->has_pretok = true;
        if ((st = sl_pretok_parse(&tok->pretok, v, file, "pre_tokenizer", err)))
            return st;
    }
    if (json_object_object_get_ex(root, "decoder", &v) && !json_object_is_type(v, json_type_null)) {
        tok->has_decoder = true;
        if ((st = sl_decoder_parse(&tok->decoder, v, file, "decoder", err)))
            return st;
    }
    if (json_object_object_get_ex(root, "post_processor", &v) && !json_object_is_type(v, json_type_null) &&
        (st = load_post(tok, v, file, "post_processor", err)))
        return st;
    if (tok->n_tmpl_pre)
        tok->bos = tok->tmpl_pre[0];
    check_meta_split(tok);
    return SL_STATUS_OK;
}

/* The tokenizer described by root; tokenizer_config.json beside path is read when with_config. */
static sl_tokenizer *load_root(const char *path, json_object *root, bool with_config, sl_error *err)
{
    sl_status st;
    sl_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok || !(tok->path = dup_n(path, strlen(path)))) {
        st = nomem(path, err);
        goto fail;
    }
    tok->bos = tok->eos = tok->unk = tok->model_unk = -1;
    if (!json_object_is_type(root, json_type_object)) {
        st = sl_error_set(err, SL_STATUS_E_FORMAT, "%s: expected an object at the top level", path);
        goto fail;
    }
    if ((st = load_model(tok, root, path, err)) || (with_config && (st = load_config(tok, path, err))))
        goto fail;
    json_object_put(root);
    return tok;
fail:
    json_object_put(root);
    sl_tokenizer_free(tok);
    return NULL;
}

sl_tokenizer *sl_tokenizer_load(const char *path, sl_error *err)
{
    sl_error_clear(err);
    if (!path) {
        sl_error_set(err, SL_STATUS_E_ARG, "sl_tokenizer_load: path is NULL");
        return NULL;
    }
    json_object *root = NULL;
    if (read_json(path, &root, err))
        return NULL;
    return load_root(path, root, true, err);
}

sl_tokenizer *sl_tok_load_text(const char *label, const char *text, size_t len, sl_error *err)
{
    sl_error_clear(err);
    json_object *root = NULL;
    if (parse_json(label, text, len, &root, err))
        return NULL;
    return load_root(label, root, false, err);
}
