/* Many answers scored at once: per session, the prefix its answers share is evaluated once and
 * the answers' own tokens become the rows of shared passes (branches off that prefix, each row
 * attending to the prefix and its own answer's earlier rows). Each row's arithmetic is that of
 * sl_lm_score's eval of the same answer: the matrix kernels sum every output in one order
 * whatever the number of rows, and branch attention walks the keys as a contiguous cache would,
 * so the terms agree bit for bit. */
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "model/internal.h"
#include "slua/sl_eval.h"
#include "score_internal.h"

/* Rows of one pass (more only for a single longer answer): bounds the activations' scratch. */
#define PASS_ROWS 512
#define HEAD_ROWS 64

typedef struct group_plan {
    bool batched;      /* some of its answers run as branches */
    uint8_t *branch;   /* [n_items]: this answer is a branch (else scored alone, or nothing to score) */
    int32_t prefix;    /* shared positions, evaluated once */
    bool last_row;     /* the prefix's last row scores some answers' first token */
    int32_t first;     /* first branch answer: it is charged the prefix's forwards */
    int32_t max_set;   /* rows of the group in one pass (cache rows past the prefix) */
    int32_t longest;   /* rows of its longest branch answer */
    int64_t total;     /* rows of all its branch answers */
    int32_t next;      /* next answer to place */
    sl_token *tokens;  /* [max_set]: the rows of the current pass */
    int32_t *depth;    /* [max_set]: each row's position after the prefix */
    int32_t *set_items; /* [n_items]: the answers of the current pass, in row order */
    int32_t n_set_items;
    sl_rows_work work;
} group_plan;

static int32_t branch_rows(const sl_score_item *it, int32_t prefix) { return it->n_full - 1 - prefix; }

static sl_status check_groups(const sl_score_group *g, int32_t n, const sl_score_params *p, sl_error *err)
{
    if (!g || n < 1)
        return sl_error_set(err, SL_STATUS_E_ARG, "lm_score_many: no groups");
    if (!p)
        return sl_error_set(err, SL_STATUS_E_ARG, "lm_score_many: no parameters");
    for (int32_t i = 0; i < n; i++) {
        const sl_session *s = g[i].session;
        if (!s)
            return sl_error_set(err, SL_STATUS_E_ARG, "lm_score_many: group %d has no session", i + 1);
        if (s->model != g[0].session->model)
            return sl_error_set(err, SL_STATUS_E_ARG, "lm_score_many: group %d is a session of %s, group 1 of %s",
                                i + 1, s->model->path, g[0].session->model->path);
        for (int32_t j = 0; j < i; j++)
            if (g[j].session == s)
                return sl_error_set(err, SL_STATUS_E_ARG, "lm_score_many: group %d repeats the session of group %d",
                                    i + 1, j + 1);
        if (g[i].n_items < 0 || (g[i].n_items > 0 && !g[i].items))
            return sl_error_set(err, SL_STATUS_E_ARG, "lm_score_many: group %d has no items", i + 1);
        for (int32_t k = 0; k < g[i].n_items; k++) {
            const sl_score_item *it = &g[i].items[k];
            sl_score_params pi = *p;
            pi.top_ids = it->top_ids;
            pi.top_scores = it->top_scores;
            sl_error inner;
            if (sl_score_check(s, it->full_ids, it->n_full, it->n_prefix, &pi, &inner) != SL_STATUS_OK)
                return sl_error_set(err, inner.code, "lm_score_many: group %d, item %d: %s", i + 1, k + 1,
                                    inner.msg + (strncmp(inner.msg, "lm_score: ", 10) == 0 ? 10 : 0));
        }
    }
    return SL_STATUS_OK;
}

/* Which answers of a group branch off which shared prefix: the positions every scored answer
 * holds before its first answer token (so the prompt's last token, whose row scores every
 * answer's first token, runs once). A session with hooks or forks scores alone, as does an
 * answer whose length puts longrope on other factors than the prefix's (its prefix would be
 * computed with those). */
static void plan_group(const sl_score_group *g, group_plan *gp)
{
    const sl_session *s = g->session;
    const sl_arch *a = &s->model->arch;
    gp->first = -1;
    if (s->hooks || s->parent || s->n_forks > 0)
        return;
    int32_t prefix = -1, first = -1;
    for (int32_t k = 0; k < g->n_items; k++) {
        const sl_score_item *it = &g->items[k];
        if (it->n_prefix == it->n_full)
            continue;
        if (first < 0)
            first = k, prefix = it->n_prefix;
        int32_t l = 0, limit = it->n_prefix < prefix ? it->n_prefix : prefix;
        while (l < limit && it->full_ids[l] == g->items[first].full_ids[l])
            l++;
        prefix = l;
    }
    if (first < 0)
        return;
    int32_t longest = 0;
    int64_t total = 0;
    for (int32_t k = 0; k < g->n_items; k++) {
        const sl_score_item *it = &g->items[k];
        if (it->n_prefix < it->n_full && sl_arch_rope_long(a, it->n_full - 1) == sl_arch_rope_long(a, prefix)) {
            gp->branch[k] = 1;
            gp->first = gp->first < 0 ? k : gp->first;
            gp->last_row |= it->n_prefix == prefix;
            longest = branch_rows(it, prefix) > longest ? branch_rows(it, prefix) : longest;
            total += branch_rows(it, prefix);
        }
    }
    gp->batched = gp->first >= 0;
    gp->prefix = prefix;
    gp->next = 0;
    gp->longest = longest;
    gp->total = total;
    int32_t room = s->n_ctx - prefix;
    int64_t most = longest > PASS_ROWS ? longest : PASS_ROWS;
    most = most < total ? most : total;
    gp->max_set = (int32_t)(most < room ? most : room);
}

/* The answers scored one by one: sl_lm_score with the item's own outputs. */
static sl_status score_alone(sl_score_group *g, const group_plan *gp, const sl_score_params *p, sl_error *err)
{
    for (int32_t k = 0; k < g->n_items; k++) {
        sl_score_item *it = &g->items[k];
        if (gp->branch[k])
            continue;
        sl_score_params pi = *p;
        pi.top_ids = it->top_ids;
        pi.top_scores = it->top_scores;
        sl_status rc = sl_lm_score(g->session, it->full_ids, it->n_full, it->n_prefix, &pi, it->per_token,
                                   it->premature, &it->result, err);
        if (rc != SL_STATUS_OK)
            return rc;
    }
    return SL_STATUS_OK;
}

static int32_t common_prefix(const sl_token *a, const sl_token *b, int32_t limit)
{
    int32_t n = 0;
    while (n < limit && a[n] == b[n])
        n++;
    return n;
}

/* Whether group i's session can take the first rows of group d's once d has evaluated its
 * prefix: sl_session_copy's conditions, the same RoPE factors, and nothing of d's state that
 * the copy would carry over (per-layer requests, hidden-state history) differs. */
static bool can_share(const sl_score_group *g, const group_plan *gp, int32_t i, int32_t d)
{
    const sl_session *a = g[i].session, *b = g[d].session;
    const sl_arch *arch = &a->model->arch;
    size_t req_bytes = (size_t)a->n_req * sizeof *a->req_layers;
    bool same_request = a->n_req == b->n_req && a->req_what == b->req_what &&
                        (a->n_req == 0 || memcmp(a->req_layers, b->req_layers, req_bytes) == 0);
    return same_request && a->keep_hidden == b->keep_hidden && a->params.kv_type == b->params.kv_type &&
           gp[d].prefix <= a->n_ctx &&
           memcmp(a->skip, b->skip, (size_t)a->model->cfg.n_layer) == 0 &&
           sl_arch_rope_long(arch, gp[i].prefix) == sl_arch_rope_long(arch, gp[d].prefix);
}

/* The prefix's last row into the answers whose first token it scores. */
typedef struct last_row_sink {
    sl_score_group *g;
    const group_plan *gp;
    sl_score_ctx *ctx;
} last_row_sink;

static sl_status on_last_row(void *user, int32_t row, int32_t n_rows, int32_t n_out, const float *logits,
                             sl_error *err)
{
    (void)row, (void)n_rows, (void)n_out, (void)err;
    last_row_sink *k = user;
    sl_score_ctx *c = k->ctx;
    for (int32_t i = 0; i < k->g->n_items; i++) {
        sl_score_item *it = &k->g->items[i];
        if (!k->gp->branch[i] || it->n_prefix != k->gp->prefix)
            continue;
        c->targets = it->full_ids + it->n_prefix;
        c->premature = it->premature;
        c->top_ids = it->top_ids;
        c->top_scores = it->top_scores;
        float term = sl_score_row(c, logits, 0);
        if (it->per_token)
            it->per_token[0] = term;
        it->result.log_prob += term;
    }
    return SL_STATUS_OK;
}

/* Evaluates the listed groups' prefixes from what each session holds, in one batched eval,
 * capturing each scored last row for the LM head. */
static sl_status eval_prefixes(sl_score_group *g, group_plan *gp, const int32_t *list, int32_t n, sl_batch_entry *e,
                               const sl_rows_request *req, sl_score_ctx *ctx, sl_error *err)
{
    int32_t n_e = 0;
    for (int32_t k = 0; k < n; k++) {
        int32_t i = list[k];
        sl_session *s = g[i].session;
        int32_t pos = sl_session_pos(s);
        if (gp[i].prefix > pos) {
            e[n_e++] = (sl_batch_entry){.session = s, .tokens = g[i].items[gp[i].first].full_ids + pos,
                                        .n_tokens = gp[i].prefix - pos};
            if (gp[i].last_row) {
                gp[i].work.cap.pos0 = pos;
                gp[i].work.cap.row0 = gp[i].prefix - 1 - pos;
                s->rows = &gp[i].work.cap;
            }
        }
    }
    sl_status rc = n_e > 0 ? sl_session_eval_batch(e, n_e, err) : SL_STATUS_OK;
    for (int32_t k = 0; k < n_e; k++)
        e[k].session->rows = NULL;
    for (int32_t k = 0; k < n && rc == SL_STATUS_OK; k++) {
        int32_t i = list[k];
        last_row_sink sink = {.g = &g[i], .gp = &gp[i], .ctx = ctx};
        if (gp[i].last_row)
            rc = sl_rows_work_emit(g[i].session, req, &gp[i].work, 1, on_last_row, &sink, err);
    }
    return rc;
}

/* Keep what each session holds of its shared prefix and evaluate the rest of it. Prompts
 * often share more than any session holds (every question of a task begins with one few-shot
 * demo): a group takes what it can from another group's session once that one has evaluated
 * its prefix (equal tokens at equal positions are equal keys and values), so the demo is
 * evaluated once per call, not once per session. */
static sl_status commit_prefixes(sl_score_group *g, group_plan *gp, int32_t n, bool reuse, const sl_rows_request *req,
                                 sl_score_ctx *ctx, sl_error *err)
{
    sl_batch_entry *e = malloc((size_t)n * sizeof *e);
    int32_t *keep = malloc((size_t)n * sizeof *keep), *donor = malloc((size_t)n * sizeof *donor);
    int32_t *taken = malloc((size_t)n * sizeof *taken); /* positions a group takes from its donor */
    int32_t *first = calloc((size_t)n, sizeof *first), *second = calloc((size_t)n, sizeof *second);
    sl_status rc = SL_STATUS_OK;
    if (!e || !keep || !donor || !taken || !first || !second)
        rc = sl_error_set(err, SL_STATUS_E_NOMEM, "lm_score_many: out of memory for %d groups", n);
    int32_t n_first = 0, n_second = 0;
    for (int32_t i = 0; i < n && rc == SL_STATUS_OK; i++) {
        if (!gp[i].batched)
            continue;
        sl_session *s = g[i].session;
        const sl_token *lead = g[i].items[gp[i].first].full_ids;
        keep[i] = 0;
        if (reuse) {
            int32_t held;
            const sl_token *have = sl_session_tokens(s, &held);
            int32_t limit = gp[i].prefix - gp[i].last_row; /* a scored last row is run again */
            keep[i] = common_prefix(have, lead, limit < held ? limit : held);
        }
        donor[i] = -1;
        for (int32_t k = 0; k < n_first; k++) { /* the group that gives the most beyond what it holds */
            int32_t d = first[k], own = gp[i].prefix - gp[i].last_row;
            int32_t cap = own < gp[d].prefix ? own : gp[d].prefix;
            int32_t c = common_prefix(lead, g[d].items[gp[d].first].full_ids, cap);
            if (c > keep[i] && can_share(g, gp, i, d) && (donor[i] < 0 || c > taken[i])) {
                donor[i] = d;
                taken[i] = c;
            }
        }
        if (donor[i] < 0)
            first[n_first++] = i;
        else
            second[n_second++] = i;
        rc = sl_session_rewind(s, keep[i], err);
        if (rc == SL_STATUS_OK) /* the factors the prefix and its answers' rows are computed with */
            rc = sl_session_match_rope(s, gp[i].prefix, "lm_score_many", err);
    }
    if (rc == SL_STATUS_OK)
        rc = eval_prefixes(g, gp, first, n_first, e, req, ctx, err);
    for (int32_t k = 0; k < n_second && rc == SL_STATUS_OK; k++) {
        int32_t i = second[k];
        rc = sl_session_copy(g[i].session, g[donor[i]].session, NULL, err);
        if (rc == SL_STATUS_OK)
            rc = sl_session_rewind(g[i].session, taken[i], err);
    }
    if (rc == SL_STATUS_OK)
        rc = eval_prefixes(g, gp, second, n_second, e, req, ctx, err);
    for (int32_t i = 0; i < n && rc == SL_STATUS_OK; i++)
        if (gp[i].batched)
            g[i].items[gp[i].first].result.n_forwarded = gp[i].prefix - (donor[i] < 0 ? keep[i] : taken[i]);
    free(e);
    free(keep);
    free(donor);
    free(taken);
    free(first);
    free(second);
    return rc;
}

/* Places the group's next answers into this pass as one set of rows; false when none fit. */
static bool fill_set(const sl_score_group *g, group_plan *gp, int32_t pass_rows, int32_t cap_rows, int32_t *n_rows)
{
    int32_t rows = 0;
    gp->n_set_items = 0;
    while (gp->next < g->n_items) {
        const sl_score_item *it = &g->items[gp->next];
        if (!gp->branch[gp->next]) {
            gp->next++;
            continue;
        }
        int32_t L = branch_rows(it, gp->prefix);
        if (L == 0) { /* a one-token answer: the prefix's last row scored it */
            gp->next++;
            continue;
        }
        if ((rows + L > gp->max_set || pass_rows + rows + L > cap_rows) && (rows > 0 || pass_rows > 0))
            break;
        memcpy(gp->tokens + rows, it->full_ids + gp->prefix, (size_t)L * sizeof *gp->tokens);
        for (int32_t j = 0; j < L; j++)
            gp->depth[rows + j] = j;
        gp->set_items[gp->n_set_items++] = gp->next++;
        rows += L;
    }
    *n_rows = rows;
    return rows > 0;
}

/* Hands a set's rows to the answers they score. */
typedef struct set_sink {
    sl_score_group *g;
    group_plan *gp;
    sl_score_ctx *ctx;
    int32_t cursor, start; /* set_items index of the answer at row `start` */
} set_sink;

static sl_status on_set_rows(void *user, int32_t row, int32_t n_rows, int32_t n_out, const float *logits,
                             sl_error *err)
{
    (void)err;
    set_sink *k = user;
    sl_score_ctx *c = k->ctx;
    for (int32_t r = row; r < row + n_rows; r++) {
        sl_score_item *it = &k->g->items[k->gp->set_items[k->cursor]];
        while (r >= k->start + branch_rows(it, k->gp->prefix)) {
            k->start += branch_rows(it, k->gp->prefix);
            it = &k->g->items[k->gp->set_items[++k->cursor]];
        }
        int32_t at = r - k->start - (it->n_prefix - 1 - k->gp->prefix); /* answer position */
        if (at < 0)
            continue;
        c->targets = it->full_ids + it->n_prefix;
        c->premature = it->premature;
        c->top_ids = it->top_ids;
        c->top_scores = it->top_scores;
        float term = sl_score_row(c, logits + (size_t)(r - row) * (size_t)n_out * (size_t)c->V, at);
        if (it->per_token)
            it->per_token[at] = term;
        it->result.log_prob += term;
    }
    return SL_STATUS_OK;
}

/* Every branch answer, in passes of whole answers; each pass's rows go through each block
 * together, then each group's rows through the LM head in chunks. */
static sl_status run_branches(sl_score_group *g, group_plan *gp, int32_t n, const sl_rows_request *req,
                              sl_score_ctx *ctx, sl_error *err)
{
    const sl_model *m = g[0].session->model;
    int64_t longest = 0, total = 0;
    sl_status rc = SL_STATUS_OK;
    for (int32_t i = 0; i < n && rc == SL_STATUS_OK; i++) {
        if (!gp[i].batched)
            continue;
        longest = gp[i].longest > longest ? gp[i].longest : longest;
        total += gp[i].total;
        gp[i].tokens = malloc((size_t)(gp[i].max_set + 1) * sizeof *gp[i].tokens);
        gp[i].depth = malloc((size_t)(gp[i].max_set + 1) * sizeof *gp[i].depth);
        gp[i].set_items = malloc((size_t)(g[i].n_items + 1) * sizeof *gp[i].set_items);
        if (!gp[i].tokens || !gp[i].depth || !gp[i].set_items)
            rc = sl_error_set(err, SL_STATUS_E_NOMEM, "lm_score_many: out of memory for %d rows", gp[i].max_set);
        if (rc == SL_STATUS_OK)
            rc = sl_session_reserve(g[i].session, gp[i].prefix + gp[i].max_set, err);
    }
    /* a pass of up to PASS_ROWS rows, or one longer answer */
    int64_t cap = longest > PASS_ROWS ? longest : PASS_ROWS;
    int32_t cap_rows = (int32_t)(cap < total ? cap : total);
    for (int32_t i = 0; i < n; i++)
        cap_rows = gp[i].batched && gp[i].max_set > cap_rows ? gp[i].max_set : cap_rows;
    if (rc != SL_STATUS_OK || cap_rows == 0)
        return rc;
    sl_fw_bufs bufs = {0};
    sl_matmul_scratch scratch = {0};
    sl_fw_set *sets = malloc((size_t)n * sizeof *sets);
    int32_t *owner = malloc((size_t)n * sizeof *owner);
    if (!sets || !owner || sl_fw_bufs_alloc(&bufs, &scratch, m, cap_rows, 0, n) != SL_STATUS_OK)
        rc = sl_error_set(err, SL_STATUS_E_NOMEM, "lm_score_many: out of memory for a pass of %d rows", cap_rows);
    while (rc == SL_STATUS_OK) {
        int32_t n_sets = 0, rows = 0, set_n;
        for (int32_t i = 0; i < n; i++) {
            if (!gp[i].batched || !fill_set(&g[i], &gp[i], rows, cap_rows, &set_n))
                continue;
            sl_session *s = g[i].session;
            owner[n_sets] = i;
            sets[n_sets++] = (sl_fw_set){.s = s, .tokens = gp[i].tokens, .n = set_n, .p = s->pos, .row = rows,
                                         .src = -1};
            rows += set_n;
            s->branching = true;
            s->branch_depth = gp[i].depth;
            gp[i].work.cap.pos0 = s->pos;
            gp[i].work.cap.row0 = 0;
            s->rows = &gp[i].work.cap;
        }
        if (n_sets == 0)
            break;
        bool ok = sl_forward_sets(sets, n_sets, &bufs);
        for (int32_t j = 0; j < n_sets; j++) {
            sets[j].s->branching = false;
            sets[j].s->branch_depth = NULL;
            sets[j].s->rows = NULL;
        }
        if (!ok)
            rc = sl_error_set(err, SL_STATUS_E_NOMEM, "lm_score_many: out of memory for a pass of %d rows", rows);
        for (int32_t j = 0; j < n_sets && rc == SL_STATUS_OK; j++) {
            int32_t i = owner[j];
            set_sink sink = {.g = &g[i], .gp = &gp[i], .ctx = ctx};
            rc = sl_rows_work_emit(sets[j].s, req, &gp[i].work, sets[j].n, on_set_rows, &sink, err);
        }
    }
    free(sets);
    free(owner);
    sl_fw_bufs_free(&bufs);
    return rc;
}

static void plans_free(group_plan *gp, int32_t n)
{
    for (int32_t i = 0; gp && i < n; i++) {
        free(gp[i].branch);
        free(gp[i].tokens);
        free(gp[i].depth);
        free(gp[i].set_items);
        sl_rows_work_free(&gp[i].work);
    }
    free(gp);
}

sl_status sl_lm_score_many(sl_score_group *g, int32_t n, const sl_score_params *p, sl_error *err)
{
    sl_error_clear(err);
    sl_status rc = check_groups(g, n, p, err);
    if (rc != SL_STATUS_OK)
        return rc;
    const sl_model_config *c = &g[0].session->model->cfg;
    int32_t n_pre = p->mode == SL_SCORE_BASELINE ? 0 : p->n_premature;
    int32_t *layers = malloc((size_t)(1 + n_pre) * sizeof *layers);
    group_plan *gp = calloc((size_t)n, sizeof *gp);
    sl_score_ctx ctx;
    rc = sl_score_ctx_init(&ctx, p, c->n_vocab, err);
    for (int32_t i = 0; gp && i < n && rc == SL_STATUS_OK; i++)
        if (!(gp[i].branch = calloc((size_t)g[i].n_items + 1, 1)))
            rc = sl_error_set(err, SL_STATUS_E_NOMEM, "lm_score_many: out of memory for %d items", g[i].n_items);
    if (rc == SL_STATUS_OK && (!layers || !gp))
        rc = sl_error_set(err, SL_STATUS_E_NOMEM, "lm_score_many: out of memory for %d groups", n);
    if (rc != SL_STATUS_OK)
        goto done;
    for (int32_t i = 0; i < n; i++) {
        for (int32_t k = 0; k < g[i].n_items; k++)
            g[i].items[k].result = (sl_score_result){0.0, 0};
        plan_group(&g[i], &gp[i]);
    }
    /* Answers scored alone go first, so that each session ends holding its shared prefix. */
    for (int32_t i = 0; i < n && rc == SL_STATUS_OK; i++)
        rc = score_alone(&g[i], &gp[i], p, err);
    /* LM-head products of at most HEAD_ROWS rows: the outputs' buffer stays small (they are as
     * fast as larger ones: the rows already hide the head's weight reads) */
    sl_rows_request req = {.row0 = 0, .layers = layers, .n_layers = sl_score_layers(p, c->n_layer, layers),
                           .what = SL_LAYER_RAW, .max_rows = HEAD_ROWS};
    for (int32_t i = 0; i < n && rc == SL_STATUS_OK; i++) /* a group's captured rows, its last row first */
        if (gp[i].batched)
            rc = sl_rows_work_init(&gp[i].work, g[i].session, &req, gp[i].max_set > 0 ? gp[i].max_set : 1, err);
    if (rc == SL_STATUS_OK)
        rc = commit_prefixes(g, gp, n, p->reuse_prefix, &req, &ctx, err);
    if (rc == SL_STATUS_OK)
        rc = run_branches(g, gp, n, &req, &ctx, err);
    for (int32_t i = 0; i < n; i++) {
        if (!gp[i].batched)
            continue;
        for (int32_t k = 0; k < g[i].n_items; k++)
            if (gp[i].branch[k])
                g[i].items[k].result.n_forwarded += branch_rows(&g[i].items[k], gp[i].prefix);
        /* the branches' cache rows were scratch: the session holds the prefix (outputs cleared) */
        int32_t pos = sl_session_pos(g[i].session);
        sl_session_rewind(g[i].session, pos < gp[i].prefix ? pos : gp[i].prefix, NULL);
    }
done:
    free(layers);
    plans_free(gp, n);
    sl_score_ctx_free(&ctx);
    return rc;
}
