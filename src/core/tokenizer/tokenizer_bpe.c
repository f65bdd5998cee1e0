/* The BPE model: merge table, per-word merging (HF Word::merge_all: a min-heap of (rank, position)
 * over a linked list of symbols) and a direct-mapped cache of encoded words. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

#define CACHE_SLOTS (1u << 15)
#define CACHE_MAX_KEY 128

uint64_t sl_hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    return h;
}

sl_token sl_vocab_lookup(const sl_tokenizer *tok, const char *s, size_t n)
{
    if (!tok->vocab_slots)
        return -1;
    size_t i = sl_hash_bytes(s, n) & tok->vocab_mask;
    for (;;) {
        sl_token id = tok->vocab_slots[i];
        if (id < 0)
            return -1;
        if (tok->piece_len[id] == n && !memcmp(tok->arena + tok->piece_off[id], s, n))
            return id;
        i = (i + 1) & tok->vocab_mask;
    }
}

/* ---------------------------------------------------------------- merge table */

static size_t pair_slot(uint64_t key, size_t mask)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 29)) & mask;
}

static bool merge_get(const sl_merge_map *m, sl_token l, sl_token r, uint32_t *rank, sl_token *merged)
{
    if (!m->keys)
        return false;
    uint64_t key = (((uint64_t)(uint32_t)l << 32) | (uint32_t)r) + 1;
    for (size_t i = pair_slot(key, m->mask);; i = (i + 1) & m->mask) {
        if (m->keys[i] == key) {
            *rank = m->rank[i];
            *merged = m->merged[i];
            return true;
        }
        if (!m->keys[i])
            return false;
    }
}

static void merge_put(sl_merge_map *m, sl_token l, sl_token r, uint32_t rank, sl_token merged)
{
    uint64_t key = (((uint64_t)(uint32_t)l << 32) | (uint32_t)r) + 1;
    size_t i = pair_slot(key, m->mask);
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & m->mask;
    /* a repeated pair takes its last rank, as HF's HashMap collect does */
    m->keys[i] = key;
    m->rank[i] = rank;
    m->merged[i] = merged;
}

sl_status sl_bpe_build_merges(sl_tokenizer *tok, json_object *merges, const char *file,
                              sl_error *err)
{
    size_t n = json_object_array_length(merges), cap = 16;
    while (cap < 2 * n + 16)
        cap *= 2;
    sl_merge_map *m = &tok->merges;
    m->keys = calloc(cap, sizeof *m->keys);
    m->rank = malloc(cap * sizeof *m->rank);
    m->merged = malloc(cap * sizeof *m->merged);
    m->mask = cap - 1;
    if (!m->keys || !m->rank || !m->merged)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory for %zu merges", file, n);
    char *buf = NULL;
    size_t buf_cap = 0;
    sl_status st = SL_STATUS_OK;
    for (size_t i = 0; i < n && !st; i++) {
        json_object *e = json_object_array_get_idx(merges, i);
        const char *a, *b;
        size_t la, lb;
        if (json_object_is_type(e, json_type_string)) {
            a = json_object_get_string(e);
            const char *sp = strchr(a, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                st = sl_error_set(err, SL_STATUS_E_FORMAT,
                                  "%s: expected \"left right\" at model.merges[%zu] (\"%s\")", file, i, a);
                break;
            }
            la = (size_t)(sp - a);
            b = sp + 1;
            lb = strlen(b);
        } else if (json_object_is_type(e, json_type_array) && json_object_array_length(e) == 2 &&
                   json_object_is_type(json_object_array_get_idx(e, 0), json_type_string) &&
                   json_object_is_type(json_object_array_get_idx(e, 1), json_type_string)) {
            json_object *ea = json_object_array_get_idx(e, 0), *eb = json_object_array_get_idx(e, 1);
            a = json_object_get_string(ea);
            la = (size_t)json_object_get_string_len(ea);
            b = json_object_get_string(eb);
            lb = (size_t)json_object_get_string_len(eb);
        } else {
            st = sl_error_set(err, SL_STATUS_E_FORMAT,
                              "%s: expected a string or a pair of strings at model.merges[%zu]", file, i);
            break;
        }
        sl_token ia = sl_vocab_lookup(tok, a, la), ib = sl_vocab_lookup(tok, b, lb);
        if (ia < 0 || ib < 0) {
            st = sl_error_set(err, SL_STATUS_E_FORMAT, "%s: merge token not in vocab at model.merges[%zu] (\"%.*s\")",
                              file, i, (int)(ia < 0 ? la : lb), ia < 0 ? a : b);
            break;
        }
        size_t skip = tok->cont_prefix_len <= lb ? tok->cont_prefix_len : lb;
        size_t lm = la + lb - skip;
        if (lm > buf_cap) {
            char *p = realloc(buf, lm * 2 + 16);
            if (!p) {
                st = sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", file);
                break;
            }
            buf = p;
            buf_cap = lm * 2 + 16;
        }
        memcpy(buf, a, la);
        memcpy(buf + la, b + skip, lb - skip);
        sl_token im = sl_vocab_lookup(tok, buf, lm);
        if (im < 0) {
            st = sl_error_set(err, SL_STATUS_E_FORMAT,
                              "%s: merged token not in vocab at model.merges[%zu] (\"%.*s\")", file, i,
                              (int)lm, buf);
            break;
        }
        merge_put(m, ia, ib, (uint32_t)i, im);
    }
    free(buf);
    return st;
}

void sl_bpe_free(sl_tokenizer *tok)
{
    free(tok->merges.keys);
    free(tok->merges.rank);
    free(tok->merges.merged);
    if (tok->cache) {
        for (size_t i = 0; i <= tok->cache_mask; i++) {
            free(tok->cache[i].key);
            free(tok->cache[i].ids);
        }
        free(tok->cache);
    }
    free(tok->bpe_sym);
    free(tok->bpe_heap);
    free(tok->bpe_buf);
}

/* ---------------------------------------------------------------- merging one word */

typedef struct sym {
    sl_token id;
    int32_t prev, next;
    bool dead;
} sym;

typedef struct cand {
    uint32_t rank, pos;
    sl_token merged;
} cand;

static bool cand_less(cand a, cand b)
{
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(cand *h, size_t *n, cand c)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(c, h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static cand heap_pop(cand *h, size_t *n)
{
    cand top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, b = i;
        cand bc = last;
        if (l < m && cand_less(h[l], bc)) {
            b = l;
            bc = h[l];
        }
        if (r < m && cand_less(h[r], bc))
            b = r;
        if (b == i)
            break;
        h[i] = h[b];
        i = b;
    }
    if (m)
        h[i] = last;
    return top;
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (*cap >= need)
        return true;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}

static bool out_push(sl_token **out, size_t *n, size_t *cap, sl_token id)
{
    if (*n == *cap && !grow((void **)out, cap, *n + 1, sizeof **out))
        return false;
    (*out)[(*n)++] = id;
    return true;
}

static sl_status word_merge(sl_tokenizer *tok, const char *s, size_t n, sl_token **out,
                            size_t *n_out, size_t *cap)
{
    const unsigned char *u = (const unsigned char *)s;
    if (!grow(&tok->bpe_sym, &tok->bpe_sym_cap, n + 1, sizeof(sym)))
        return SL_STATUS_E_NOMEM;
    sym *sy = tok->bpe_sym;
    size_t ns = 0;
    sl_token unk = -1; /* pending unk (fused runs of unknown characters) */
    bool have_unk = false;
    size_t deco_cap = tok->cont_prefix_len + tok->eow_suffix_len + 4;
    if (!grow((void **)&tok->bpe_buf, &tok->bpe_buf_cap, deco_cap, 1))
        return SL_STATUS_E_NOMEM;
    for (size_t i = 0; i < n;) {
        size_t cl = sl_utf8_char_len(u + i, n - i);
        if (!cl)
            cl = 1; /* an invalid byte stands alone: byte fallback or unk */
        const char *c = s + i;
        size_t clen = cl;
        if ((i > 0 && tok->cont_prefix_len) || (i + cl == n && tok->eow_suffix_len)) {
            char *b = tok->bpe_buf;
            clen = 0;
            /* either affix may be absent (NULL, length 0): memcpy must not see NULL */
            if (i > 0 && tok->cont_prefix_len) {
                memcpy(b, tok->cont_prefix, tok->cont_prefix_len);
                clen = tok->cont_prefix_len;
            }
            memcpy(b + clen, s + i, cl);
            clen += cl;
            if (i + cl == n && tok->eow_suffix_len) {
                memcpy(b + clen, tok->eow_suffix, tok->eow_suffix_len);
                clen += tok->eow_suffix_len;
            }
            c = b;
        }
        i += cl;
        sl_token id = sl_vocab_lookup(tok, c, clen);
        if (id >= 0) {
            if (have_unk) {
                sy[ns++] = (sym){unk, 0, 0, false};
                have_unk = false;
            }
            sy[ns++] = (sym){id, 0, 0, false};
            continue;
        }
        if (tok->byte_fallback) {
            bool all = true;
            for (size_t k = 0; k < clen; k++)
                all = all && tok->byte_tok[(unsigned char)c[k]] >= 0;
            if (all) {
                if (!grow(&tok->bpe_sym, &tok->bpe_sym_cap, ns + clen + (n - i) + 2, sizeof(sym)))
                    return SL_STATUS_E_NOMEM;
                sy = tok->bpe_sym;
                for (size_t k = 0; k < clen; k++)
                    sy[ns++] = (sym){tok->byte_tok[(unsigned char)c[k]], 0, 0, false};
                continue;
            }
        }
        if (tok->model_unk >= 0) {
            if (have_unk && !tok->fuse_unk)
                sy[ns++] = (sym){unk, 0, 0, false};
            unk = tok->model_unk;
            have_unk = true;
        }
        /* without an unk token HF drops the character */
    }
    if (have_unk)
        sy[ns++] = (sym){unk, 0, 0, false};
    for (size_t k = 0; k < ns; k++) {
        sy[k].prev = (int32_t)k - 1;
        sy[k].next = k + 1 < ns ? (int32_t)k + 1 : -1;
    }
    if (ns > 1) {
        if (!grow(&tok->bpe_heap, &tok->bpe_heap_cap, 3 * ns + 4, sizeof(cand)))
            return SL_STATUS_E_NOMEM;
        cand *h = tok->bpe_heap;
        size_t nh = 0;
        uint32_t rank;
        sl_token merged;
        for (size_t k = 0; k + 1 < ns; k++)
            if (merge_get(&tok->merges, sy[k].id, sy[k + 1].id, &rank, &merged))
                heap_push(h, &nh, (cand){rank, (uint32_t)k, merged});
        while (nh) {
            cand t = heap_pop(h, &nh);
            sym *a = &sy[t.pos];
            if (a->dead || a->next < 0)
                continue;
            sym *b = &sy[a->next];
            if (!merge_get(&tok->merges, a->id, b->id, &rank, &merged) || merged != t.merged)
                continue; /* stale: one side changed since this pair was queued */
            a->id = t.merged;
            b->dead = true;
            a->next = b->next;
            if (b->next >= 0)
                sy[b->next].prev = (int32_t)t.pos;
            if (a->prev >= 0 && merge_get(&tok->merges, sy[a->prev].id, a->id, &rank, &merged))
                heap_push(h, &nh, (cand){rank, (uint32_t)a->prev, merged});
            if (a->next >= 0 && merge_get(&tok->merges, a->id, sy[a->next].id, &rank, &merged))
                heap_push(h, &nh, (cand){rank, t.pos, merged});
        }
    }
    for (size_t k = 0; k < ns; k++)
        if (!sy[k].dead && !out_push(out, n_out, cap, sy[k].id))
            return SL_STATUS_E_NOMEM;
    return SL_STATUS_OK;
}

sl_status sl_bpe_word(sl_tokenizer *tok, const char *s, size_t n, sl_token **out, size_t *n_out,
                      size_t *cap)
{
    if (n == 0)
        return SL_STATUS_OK;
    if (tok->ignore_merges) {
        sl_token id = sl_vocab_lookup(tok, s, n);
        if (id >= 0)
            return out_push(out, n_out, cap, id) ? SL_STATUS_OK : SL_STATUS_E_NOMEM;
    }
    sl_word_cache_entry *e = NULL;
    if (n <= CACHE_MAX_KEY) {
        if (!tok->cache) {
            tok->cache = calloc(CACHE_SLOTS, sizeof *tok->cache);
            tok->cache_mask = CACHE_SLOTS - 1;
        }
        if (tok->cache) {
            e = &tok->cache[sl_hash_bytes(s, n) & tok->cache_mask];
            if (e->key && e->key_len == n && !memcmp(e->key, s, n)) {
                for (size_t k = 0; k < e->n; k++)
                    if (!out_push(out, n_out, cap, e->ids[k]))
                        return SL_STATUS_E_NOMEM;
                return SL_STATUS_OK;
            }
        }
    }
    size_t start = *n_out;
    sl_status st = word_merge(tok, s, n, out, n_out, cap);
    if (st || !e)
        return st;
    /* Replace the slot's entry; a failed allocation just leaves the slot empty. */
    free(e->key);
    free(e->ids);
    e->key = malloc(n);
    e->ids = malloc((*n_out - start + 1) * sizeof *e->ids);
    if (!e->key || !e->ids) {
        free(e->key);
        free(e->ids);
        e->key = NULL;
        e->ids = NULL;
        return SL_STATUS_OK;
    }
    memcpy(e->key, s, n);
    e->key_len = n;
    e->n = *n_out - start;
    if (e->n)
        memcpy(e->ids, *out + start, e->n * sizeof *e->ids);
    return SL_STATUS_OK;
}
