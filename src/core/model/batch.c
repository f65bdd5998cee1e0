/* Batched evaluation: the next tokens of several sessions of one model in one pass per chunk,
 * so that every weight is read once for all of their rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "internal.h"

/* Rows of one pass: entries are added in order while they fit (a prompt's chunk with its
 * forks counts whole), so scratch stays bounded when many prompts arrive together. */
#define PASS_ROWS 512

typedef struct batch_plan {
    int32_t *parent;  /* [n]: entry of a fork's parent evaluated with it, or -1 */
    int32_t *done;    /* [n]: tokens evaluated so far */
    sl_fw_set *sets;  /* [n] */
    sl_fw_bufs bufs;
    sl_matmul_scratch scratch;
    const sl_model *model;
} batch_plan;

void sl_fw_bufs_free(sl_fw_bufs *b)
{
    free(b->x);
    free(b->xn);
    free(b->q);
    free(b->k);
    free(b->v);
    free(b->att);
    free(b->ff_gate);
    free(b->ff_up);
    free(b->moe);
    free(b->gather);
    free(b->head_rows);
    free(b->head_logits);
    free(b->active);
    free(b->rows);
    if (b->scratch)
        sl_matmul_scratch_free(b->scratch);
    *b = (sl_fw_bufs){0};
}

static void plan_free(batch_plan *p)
{
    free(p->parent);
    free(p->done);
    free(p->sets);
    sl_fw_bufs_free(&p->bufs);
}

static int32_t find_entry(const sl_batch_entry *e, int32_t n, const sl_session *s)
{
    for (int32_t i = 0; i < n; i++)
        if (e[i].session == s)
            return i;
    return -1;
}

/* The checks of sl_session_eval for entry i, and those of a batch: one model, each session
 * once, a fork with its parent only when both evaluate the same tokens from the same point. */
static sl_status check_entry(const sl_batch_entry *e, int32_t n, int32_t i, int32_t *parent, sl_error *err)
{
    const sl_session *s = e[i].session;
    if (!s)
        return sl_error_set(err, SL_STATUS_E_ARG, "eval_batch: entry %d has no session", i + 1);
    if (s->model != e[0].session->model)
        return sl_error_set(err, SL_STATUS_E_ARG, "eval_batch: entry %d is a session of %s, entry 1 of %s", i + 1,
                            s->model->path, e[0].session->model->path);
    if (find_entry(e, i, s) >= 0)
        return sl_error_set(err, SL_STATUS_E_ARG, "eval_batch: entry %d repeats the session of entry %d", i + 1,
                            find_entry(e, i, s) + 1);
    if (e[i].n_tokens <= 0 || !e[i].tokens)
        return sl_error_set(err, SL_STATUS_E_ARG, "eval_batch: entry %d has no tokens", i + 1);
    char what[48];
    snprintf(what, sizeof what, "eval_batch: entry %d", i + 1);
    int32_t j = s->parent ? find_entry(e, n, s->parent) : -1;
    sl_status rc = sl_session_check_eval(s, e[i].tokens, e[i].n_tokens, j < 0, what, err);
    if (rc != SL_STATUS_OK)
        return rc;
    parent[i] = -1;
    if (j >= 0) { /* evaluated with its parent: it joins the parent's rows */
        const sl_session *p = s->parent;
        if (p->pos != s->pos || e[j].n_tokens != e[i].n_tokens || p->params.n_batch != s->params.n_batch ||
            memcmp(e[j].tokens, e[i].tokens, (size_t)e[i].n_tokens * sizeof *e[i].tokens) != 0 ||
            (s->pos > 0 && memcmp(p->tokens, s->tokens, (size_t)s->pos * sizeof *s->tokens) != 0))
            return sl_error_set(err, SL_STATUS_E_STATE,
                                "eval_batch: entry %d is a fork of entry %d and must evaluate the same tokens from "
                                "the same position (fork at %d, parent at %d)",
                                i + 1, j + 1, s->pos, p->pos);
        parent[i] = j;
    }
    return SL_STATUS_OK;
}

static int32_t chunk_of(const sl_batch_entry *e, const int32_t *done, int32_t i)
{
    int32_t left = e[i].n_tokens - done[i], nb = e[i].session->params.n_batch;
    return left < nb ? left : nb;
}

/* Rows entry i takes in its next pass: its chunk, and the same again for each fork with it. */
static int32_t group_rows(const sl_batch_entry *e, int32_t n, const int32_t *parent, const int32_t *done, int32_t i)
{
    int32_t chunk = chunk_of(e, done, i), rows = chunk;
    for (int32_t k = 0; k < n; k++)
        if (parent[k] == i)
            rows += chunk;
    return rows;
}

sl_status sl_fw_bufs_alloc(sl_fw_bufs *b, sl_matmul_scratch *scratch, const sl_model *m, int32_t rows, int32_t head,
                           int32_t n_sets)
{
    const sl_model_config *c = &m->cfg;
    size_t R = (size_t)rows, D = (size_t)c->n_embd, qd = (size_t)c->n_head * (size_t)c->head_dim;
    size_t kvd = (size_t)c->n_head_kv * (size_t)c->head_dim, F = (size_t)sl_fw_ff_width(m);
    b->x = malloc(R * D * sizeof(float));
    b->xn = malloc(R * D * sizeof(float));
    b->gather = malloc(R * D * sizeof(float));
    b->q = malloc(R * qd * sizeof(float));
    b->att = malloc(R * qd * sizeof(float));
    b->k = malloc(R * kvd * sizeof(float));
    b->v = malloc(R * kvd * sizeof(float));
    b->ff_gate = malloc(R * F * sizeof(float));
    b->ff_up = malloc(R * F * sizeof(float));
    b->moe = malloc(R * (size_t)sl_fw_moe_floats(m) * sizeof(float));
    b->head_rows = malloc((size_t)(head > 0 ? head : 1) * D * sizeof(float));
    b->head_logits = malloc((size_t)(head > 0 ? head : 1) * (size_t)c->n_vocab * sizeof(float));
    b->active = malloc((size_t)n_sets * sizeof *b->active);
    b->rows = malloc((size_t)n_sets * sizeof *b->rows);
    b->scratch = scratch;
    bool ok = b->x && b->xn && b->gather && b->q && b->att && b->k && b->v && b->ff_gate && b->ff_up && b->moe &&
              b->head_rows && b->head_logits && b->active && b->rows &&
              sl_fw_reserve_scratch(b->scratch, m, rows > head ? rows : head);
    return ok ? SL_STATUS_OK : SL_STATUS_E_NOMEM;
}

/* Entry k's next `chunk` tokens as a set of this pass; src: the set of its parent, or -1. */
static void add_set(batch_plan *p, const sl_batch_entry *e, int32_t k, int32_t chunk, int32_t src, int32_t *n_sets,
                    int32_t *rows)
{
    sl_session *s = e[k].session;
    p->sets[(*n_sets)++] = (sl_fw_set){.s = s, .tokens = e[k].tokens + p->done[k], .n = chunk, .p = s->pos,
                                       .row = *rows, .first = src >= 0 ? s->branch : 0, .src = src,
                                       .last_chunk = p->done[k] + chunk == e[k].n_tokens,
                                       .all_logits = (e[k].flags & SL_EVAL_ALL_LOGITS) != 0,
                                       .all_offset = p->done[k]};
    *rows += chunk;
}

sl_status sl_session_eval_batch(const sl_batch_entry *e, int32_t n, sl_error *err)
{
    if (n <= 0 || !e)
        return sl_error_set(err, SL_STATUS_E_ARG, "eval_batch: no entries");
    if (n == 1 && e[0].session)
        return sl_session_eval(e[0].session, e[0].tokens, e[0].n_tokens, e[0].flags, err);
    batch_plan p = {0};
    p.parent = malloc((size_t)n * sizeof *p.parent);
    p.done = calloc((size_t)n, sizeof *p.done);
    p.sets = malloc((size_t)n * sizeof *p.sets);
    if (!p.parent || !p.done || !p.sets) {
        plan_free(&p);
        return sl_error_set(err, SL_STATUS_E_NOMEM, "eval_batch: out of memory for %d entries", n);
    }
    sl_status rc = SL_STATUS_OK;
    for (int32_t i = 0; i < n && rc == SL_STATUS_OK; i++)
        rc = check_entry(e, n, i, p.parent, err);
    int32_t max_rows = 0, total_rows = 0, head = 0;
    for (int32_t i = 0; i < n && rc == SL_STATUS_OK; i++) {
        sl_session *s = e[i].session;
        rc = sl_session_reserve(s, s->pos + e[i].n_tokens, err);
        if (rc == SL_STATUS_OK && (e[i].flags & SL_EVAL_ALL_LOGITS))
            rc = sl_session_grow_all_logits(s, e[i].n_tokens, "eval_batch", err);
        if (p.parent[i] < 0) {
            int32_t rows = group_rows(e, n, p.parent, p.done, i);
            max_rows = rows > max_rows ? rows : max_rows;
            total_rows += rows;
        }
        head += sl_fw_head_rows(s);
    }
    /* longrope switches: parents before forks, which read their parents' caches */
    for (int pass = 0; pass < 2; pass++)
        for (int32_t i = 0; i < n && rc == SL_STATUS_OK; i++)
            if ((e[i].session->parent != NULL) == (pass == 1))
                rc = sl_session_match_rope(e[i].session, e[i].session->pos + e[i].n_tokens, "eval_batch", err);
    /* a pass holds every first chunk when they fit in PASS_ROWS, else up to PASS_ROWS rows or
     * the largest single group */
    if (max_rows < PASS_ROWS)
        max_rows = total_rows < PASS_ROWS ? total_rows : PASS_ROWS;
    p.model = rc == SL_STATUS_OK ? e[0].session->model : NULL;
    if (rc == SL_STATUS_OK && sl_fw_bufs_alloc(&p.bufs, &p.scratch, p.model, max_rows, head, n) != SL_STATUS_OK)
        rc = sl_error_set(err, SL_STATUS_E_NOMEM, "eval_batch: out of memory for a pass of %d rows", max_rows);
    if (rc != SL_STATUS_OK) {
        plan_free(&p);
        return rc;
    }

    /* Nothing below fails but a hook function: the sessions only change from here on. */
    int32_t *pos0 = malloc((size_t)n * sizeof *pos0);
    if (!pos0) {
        plan_free(&p);
        return sl_error_set(err, SL_STATUS_E_NOMEM, "eval_batch: out of memory for %d entries", n);
    }
    for (int32_t i = 0; i < n; i++) {
        pos0[i] = e[i].session->pos;
        sl_hooks_begin_eval(e[i].session, e[i].n_tokens);
    }
    for (;;) {
        int32_t n_sets = 0, rows = 0;
        for (int32_t i = 0; i < n; i++) {
            if (p.parent[i] >= 0 || p.done[i] == e[i].n_tokens)
                continue;
            int32_t need = group_rows(e, n, p.parent, p.done, i);
            if (rows > 0 && rows + need > max_rows)
                continue;
            int32_t chunk = chunk_of(e, p.done, i), at = n_sets;
            add_set(&p, e, i, chunk, -1, &n_sets, &rows);
            for (int32_t k = 0; k < n; k++)
                if (p.parent[k] == i)
                    add_set(&p, e, k, chunk, at, &n_sets, &rows);
        }
        if (n_sets == 0)
            break;
        if (!sl_forward_sets(p.sets, n_sets, &p.bufs)) { /* its scratch is reserved: only captures can fail */
            for (int32_t i = 0; i < n; i++)
                sl_session_rewind(e[i].session, pos0[i], NULL);
            free(pos0);
            plan_free(&p);
            return sl_error_set(err, SL_STATUS_E_NOMEM, "eval_batch: out of memory for the captures");
        }
        for (int32_t j = 0; j < n_sets; j++) {
            sl_session *s = p.sets[j].s;
            int32_t i = find_entry(e, n, s);
            memcpy(s->tokens + s->pos, p.sets[j].tokens, (size_t)p.sets[j].n * sizeof *s->tokens);
            s->pos += p.sets[j].n;
            p.done[i] += p.sets[j].n;
        }
    }
    for (int32_t i = 0; i < n; i++) { /* a failed hook function discards every entry's pass */
        if (rc == SL_STATUS_OK)
            rc = sl_hooks_take_failure(e[i].session, err);
        else
            sl_hooks_take_failure(e[i].session, NULL);
    }
    if (rc != SL_STATUS_OK) {
        for (int32_t i = 0; i < n; i++)
            sl_session_rewind(e[i].session, pos0[i], NULL);
        free(pos0);
        plan_free(&p);
        return rc;
    }
    free(pos0);
    for (int32_t i = 0; i < n; i++) {
        sl_session *s = e[i].session;
        s->n_all = (e[i].flags & SL_EVAL_ALL_LOGITS) ? e[i].n_tokens : 0;
        s->n_branches = 0;
        s->has_logits = true;
        s->has_layers = true;
    }
    plan_free(&p);
    return SL_STATUS_OK;
}
