/* Session state for decoders that branch: copies between sessions (beam search reorders its
 * beams by copying), the final-normed hidden state of every position, and evaluating several
 * alternative next tokens in one pass (contrastive search). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "internal.h"
#include "kernels/attention.h"
#include "slua/sl_ops.h"

static bool same_request(const sl_session *a, const sl_session *b)
{
    return a->n_req == b->n_req && a->req_what == b->req_what &&
           (a->n_req == 0 || memcmp(a->req_layers, b->req_layers, (size_t)a->n_req * sizeof *a->req_layers) == 0);
}

sl_status sl_session_keep_hidden(sl_session *s, bool on, sl_error *err)
{
    if (on == s->keep_hidden)
        return SL_STATUS_OK;
    if (on && s->pos != 0)
        return sl_error_set(err, SL_STATUS_E_STATE, "keep_hidden: turn it on at position 0 (session is at %d)",
                            s->pos);
    if (on && s->cap > 0) {
        float *rows = malloc((size_t)s->cap * (size_t)s->model->cfg.n_embd * sizeof *rows);
        if (!rows)
            return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory for hidden states", s->model->path);
        s->final_hidden = rows;
    }
    if (!on) {
        free(s->final_hidden);
        s->final_hidden = NULL;
    }
    s->keep_hidden = on;
    return SL_STATUS_OK;
}

const float *sl_session_hidden_rows(const sl_session *s, int32_t *n)
{
    if (n)
        *n = s->keep_hidden ? s->pos : 0;
    return s->keep_hidden && s->pos > 0 ? s->final_hidden : NULL;
}

double sl_session_degeneration_penalty(const sl_session *s)
{
    int32_t D = s->model->cfg.n_embd;
    if (!s->keep_hidden || s->pos < 2)
        return NAN;
    const float *last = s->final_hidden + (int64_t)(s->pos - 1) * D;
    return sl_ops_max_cosine(s->final_hidden, s->pos - 1, D, last);
}

static sl_status check_copy(const sl_session *dst, const sl_session *src, sl_error *err)
{
    if (!dst || !src)
        return sl_error_set(err, SL_STATUS_E_ARG, "session copy: session is NULL");
    if (dst->model != src->model)
        return sl_error_set(err, SL_STATUS_E_ARG, "session copy: sessions of different models (%s, %s)",
                            dst->model->path, src->model->path);
    if (dst->parent || src->parent || dst->n_forks > 0 || src->n_forks > 0)
        return sl_error_set(err, SL_STATUS_E_STATE, "session copy: forks and sessions with forks are not copied");
    if (memcmp(dst->skip, src->skip, (size_t)src->model->cfg.n_layer) != 0)
        return sl_error_set(err, SL_STATUS_E_STATE, "session copy: the skip masks differ");
    if (src->pos > dst->n_ctx)
        return sl_error_set(err, SL_STATUS_E_RANGE, "session copy: %d positions exceed the destination's n_ctx %d",
                            src->pos, dst->n_ctx);
    if (dst->params.kv_type != src->params.kv_type)
        return sl_error_set(err, SL_STATUS_E_ARG, "session copy: the KV cache types differ (kv_type)");
    if (sl_intervention_first_difference(src->model, sl_session_intervention(dst), sl_session_intervention(src)) <
        src->model->cfg.n_layer)
        return sl_error_set(err, SL_STATUS_E_STATE, "session copy: the interventions differ");
    return SL_STATUS_OK;
}

sl_status sl_session_copy(sl_session *dst, const sl_session *src, int32_t *n_copied, sl_error *err)
{
    if (n_copied)
        *n_copied = 0;
    sl_status rc = check_copy(dst, src, err);
    if (rc != SL_STATUS_OK || dst == src)
        return rc;
    if (!same_request(dst, src) &&
        (rc = sl_session_set_layers(dst, src->req_layers, src->n_req, src->req_what, err)) != SL_STATUS_OK)
        return rc;
    if (src->keep_hidden && !dst->keep_hidden) {
        dst->pos = 0; /* keep_hidden starts at position 0; everything is copied below anyway */
        if ((rc = sl_session_keep_hidden(dst, true, err)) != SL_STATUS_OK)
            return rc;
    }
    if (src->pos > 0 && (rc = sl_session_reserve(dst, src->pos, err)) != SL_STATUS_OK)
        return rc;
    /* Rows of equal positions under equal token prefixes hold the same keys and values, so only
     * the rows after the common prefix move (for beams: the few tokens since they split). */
    int32_t common = 0, limit = dst->pos < src->pos ? dst->pos : src->pos;
    while (common < limit && dst->tokens[common] == src->tokens[common] && dst->rope_long == src->rope_long)
        common++;
    dst->rope_long = src->rope_long;
    const sl_model_config *c = &src->model->cfg;
    size_t rows = (size_t)(src->pos - common), es = (size_t)sl_session_kv_size(src);
    size_t head_row = (size_t)c->head_dim * es, B = SL_ATTN_KEY_BLOCK;
    size_t key_from = (size_t)common / B * B, key_rows = ((size_t)src->pos + B - 1) / B * B - key_from;
    for (int32_t l = 0; l < c->n_layer && rows > 0; l++) {
        if (!src->k_cache[l])
            continue;
        for (int32_t g = 0; g < c->n_head_kv; g++) { /* head-major; keys in whole blocks */
            char *dk = (char *)dst->k_cache[l] + (size_t)g * (size_t)dst->cap * head_row;
            char *dv = (char *)dst->v_cache[l] + (size_t)g * (size_t)dst->cap * head_row;
            const char *sk = (const char *)src->k_cache[l] + (size_t)g * (size_t)src->cap * head_row;
            const char *sv = (const char *)src->v_cache[l] + (size_t)g * (size_t)src->cap * head_row;
            memcpy(dk + key_from * head_row, sk + key_from * head_row, key_rows * head_row);
            memcpy(dv + common * head_row, sv + common * head_row, rows * head_row);
        }
    }
    if (src->keep_hidden && rows > 0)
        memcpy(dst->final_hidden + (size_t)common * (size_t)c->n_embd,
               src->final_hidden + (size_t)common * (size_t)c->n_embd, rows * (size_t)c->n_embd * sizeof(float));
    if (rows > 0)
        memcpy(dst->tokens + common, src->tokens + common, rows * sizeof *src->tokens);
    /* The outputs of the last eval: final logits, then the per-layer rows that share its buffer. */
    size_t n_raw = (src->req_what & SL_LAYER_RAW) ? (size_t)src->n_req : 0;
    size_t n_norm = (src->req_what & SL_LAYER_NORM) ? (size_t)src->n_req : 0;
    memcpy(dst->logits, src->logits, (1 + n_raw + n_norm) * (size_t)c->n_vocab * sizeof(float));
    if (src->n_req > 0)
        memcpy(dst->layer_hidden, src->layer_hidden, (size_t)src->n_req * (size_t)c->n_embd * sizeof(float));
    dst->pos = src->pos;
    dst->prompt_len = src->prompt_len;
    dst->prompt_len_set = src->prompt_len_set;
    dst->has_logits = src->has_logits;
    dst->has_layers = src->has_layers;
    dst->n_all = 0;
    dst->n_branches = 0;
    if (n_copied)
        *n_copied = (int32_t)rows;
    return SL_STATUS_OK;
}

sl_session *sl_session_clone(const sl_session *src, sl_error *err)
{
    sl_error_clear(err);
    if (!src) {
        sl_error_set(err, SL_STATUS_E_ARG, "sl_session_clone: session is NULL");
        return NULL;
    }
    if (src->parent || src->n_forks > 0) {
        sl_error_set(err, SL_STATUS_E_STATE, "sl_session_clone: forks and sessions with forks are not cloned");
        return NULL;
    }
    sl_session *s = sl_session_init(src->model, &src->params, err);
    if (!s)
        return NULL;
    int32_t N = src->model->cfg.n_layer, n_skip = 0;
    int32_t *blocks = malloc((size_t)(N > 0 ? N : 1) * sizeof *blocks);
    if (!blocks) {
        sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory for a session", src->model->path);
        sl_session_free(s);
        return NULL;
    }
    for (int32_t l = 0; l < N; l++)
        if (src->skip[l])
            blocks[n_skip++] = l;
    sl_status rc = sl_session_set_skip(s, blocks, n_skip, err);
    free(blocks);
    if (rc == SL_STATUS_OK)
        rc = sl_hooks_adopt(s, (sl_intervention *)sl_session_intervention(src), err);
    if (rc == SL_STATUS_OK)
        rc = sl_session_copy(s, src, NULL, err);
    if (rc != SL_STATUS_OK) {
        sl_session_free(s);
        return NULL;
    }
    return s;
}

sl_status sl_session_eval_branches(sl_session *s, const sl_token *tokens, int32_t n, sl_error *err)
{
    const sl_model_config *c = &s->model->cfg;
    if (n <= 0 || !tokens)
        return sl_error_set(err, SL_STATUS_E_ARG, "eval_branches: no tokens");
    if (n > s->params.n_batch)
        return sl_error_set(err, SL_STATUS_E_RANGE, "eval_branches: %d branches exceed the batch of %d", n,
                            s->params.n_batch);
    for (int32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->n_vocab)
            return sl_error_set(err, SL_STATUS_E_RANGE, "eval_branches: token id %d out of range [0, %d]", tokens[i],
                                c->n_vocab - 1);
    if (s->parent || s->n_forks > 0)
        return sl_error_set(err, SL_STATUS_E_STATE, "eval_branches: not on forks or sessions with forks");
    if (n > s->n_ctx - s->pos)
        return sl_error_set(err, SL_STATUS_E_RANGE, "eval_branches: context full (%d + %d rows > n_ctx %d)", s->pos,
                            n, s->n_ctx);
    sl_status rc = sl_session_reserve(s, s->pos + n, err);
    if (rc != SL_STATUS_OK)
        return rc;
    rc = sl_session_grow_all_logits(s, n, "eval_branches", err);
    if (rc == SL_STATUS_OK) /* each branch is one more position */
        rc = sl_session_match_rope(s, s->pos + 1, "eval_branches", err);
    if (rc != SL_STATUS_OK)
        return rc;
    sl_hooks_begin_eval(s, 0);
    s->branching = true;
    rc = sl_forward_chunk(s, tokens, n, true, true, 0, err);
    s->branching = false;
    if (rc != SL_STATUS_OK) {
        sl_session_rewind(s, s->pos, NULL); /* the outputs may be half written: clear them */
        return rc;
    }
    s->n_all = n;
    s->n_branches = n;
    s->has_logits = true;
    s->has_layers = false;
    return SL_STATUS_OK;
}

const float *sl_session_branch_hidden(const sl_session *s, int32_t i)
{
    if (!s->keep_hidden || i < 0 || i >= s->n_branches)
        return NULL;
    return s->final_hidden + (size_t)(s->pos + i) * (size_t)s->model->cfg.n_embd;
}
