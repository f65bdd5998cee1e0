/* Hook points at run time: the ops of a session's intervention, its captures and its hook
 * functions, applied where the forward pass produces each hook's value; and the session calls
 * that set them (sl_intervene.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util/error.h"

int32_t sl_hooks_prompt_len(const sl_session *s)
{
    while (s->parent)
        s = s->parent;
    return s->prompt_len;
}

void sl_hooks_begin_eval(sl_session *s, int32_t n)
{
    if (!s->prompt_len_set && s->prompt_len < 0)
        s->prompt_len = s->pos + n;
}

static bool selected(const sl_positions *ps, int32_t pos, int32_t prompt_len)
{
    switch (ps->kind) {
    case SL_POSITIONS_PROMPT:
        return pos < prompt_len;
    case SL_POSITIONS_GENERATED:
        return pos >= prompt_len;
    case SL_POSITIONS_LIST:
        for (int32_t i = 0; i < ps->n; i++)
            if (ps->list[i] == pos)
                return true;
        return false;
    default:
        return true;
    }
}

static bool has_head(const sl_op *o, int32_t h)
{
    if (!o->heads)
        return true;
    for (int32_t i = 0; i < o->n_heads; i++)
        if (o->heads[i] == h)
            return true;
    return false;
}

static bool same_hook(sl_hook a, sl_hook b) { return a.block == b.block && a.point == b.point; }

static bool score_point(sl_hook_point p) { return p == SL_HOOK_ATTN_SCORES || p == SL_HOOK_PATTERN; }

/* Floats of position pos's record of a capture. */
static int64_t record_floats(const sl_session *s, const sl_capture *c, int32_t pos)
{
    if (score_point(c->hook.point))
        return (int64_t)s->model->cfg.n_head * (pos + 1);
    return sl_hook_width(s->model, c->hook);
}

/* ------------------------------------------------------------------ the forward pass's side */

static void apply_op(const sl_model *m, const sl_op *o, float *x, int32_t pos)
{
    const sl_model_config *c = &m->cfg;
    int32_t hd = c->head_dim;
    int64_t width = sl_hook_width(m, o->hook);
    switch (o->kind) {
    case SL_OP_ADD: {
        float *dst = o->hook.point == SL_HOOK_Z ? x + (int64_t)o->head * hd : x;
        for (int64_t k = 0; k < o->n_vector; k++)
            dst[k] += o->vector[k];
        break;
    }
    case SL_OP_SCALE:
        for (int32_t h = 0; h < c->n_head; h++)
            if (has_head(o, h))
                for (int32_t k = 0; k < hd; k++)
                    x[(int64_t)h * hd + k] *= o->factor;
        break;
    case SL_OP_SET: {
        int32_t row = 0;
        if (o->n_rows > 1)
            for (int32_t i = 0; i < o->positions.n; i++)
                if (o->positions.list[i] == pos) {
                    row = i;
                    break;
                }
        memcpy(x, o->values + (int64_t)row * width, (size_t)width * sizeof *x);
        break;
    }
    }
}

void sl_hooks_rows(sl_session *s, int32_t l, sl_hook_point pt, float *rows, int32_t n, int32_t p, int64_t width,
                   bool branching)
{
    sl_hooks *h = s->hooks;
    int32_t P = sl_hooks_prompt_len(s);
    if (h->iv)
        for (int32_t k = 0; k < h->iv->n; k++) {
            const sl_op *o = &h->iv->ops[k];
            if (o->hook.block != l || o->hook.point != pt)
                continue;
            for (int32_t i = 0; i < n; i++) {
                int32_t pos = branching ? p : p + i;
                if (selected(&o->positions, pos, P))
                    apply_op(s->model, o, rows + (int64_t)i * width, pos);
            }
        }
    if (branching) /* alternatives at one position are not the sequence: nothing is recorded */
        return;
    for (int32_t k = 0; k < h->n_caps; k++) {
        sl_capture *c = &h->caps[k];
        if (c->hook.block != l || c->hook.point != pt)
            continue;
        for (int32_t i = 0; i < n; i++)
            if (p + i < c->n_offset && c->offset[p + i] >= 0)
                memcpy(c->pool + c->offset[p + i], rows + (int64_t)i * width, (size_t)width * sizeof(float));
    }
    for (int32_t k = 0; k < h->n_fns && !h->failed; k++) {
        sl_hook_fn_entry *f = &h->fns[k];
        if (f->hook.block != l || f->hook.point != pt)
            continue;
        int32_t stack[64], *pos = n <= 64 ? stack : malloc((size_t)n * sizeof *pos);
        if (!pos) {
            h->failed = true;
            sl_error_set(&h->error, SL_STATUS_E_NOMEM, "%s: out of memory for a hook function", s->model->path);
            return;
        }
        for (int32_t i = 0; i < n; i++)
            pos[i] = p + i;
        sl_error e = {0};
        bool ok = f->fn(f->user, f->hook, rows, n, width, pos, &e);
        if (pos != stack)
            free(pos);
        if (!ok) {
            h->failed = true;
            h->error = e;
            if (h->error.code == SL_STATUS_OK)
                sl_error_set(&h->error, SL_STATUS_E_STATE, "a hook function failed");
        }
    }
}

sl_status sl_hooks_take_failure(sl_session *s, sl_error *err)
{
    sl_hooks *h = s->hooks;
    if (!h || !h->failed)
        return SL_STATUS_OK;
    h->failed = false;
    if (err)
        *err = h->error;
    return h->error.code;
}

bool sl_hooks_reserve(sl_session *s, int32_t p, int32_t n)
{
    sl_hooks *h = s->hooks;
    if (!h || h->n_caps == 0)
        return true;
    int32_t P = sl_hooks_prompt_len(s);
    for (int32_t k = 0; k < h->n_caps; k++) {
        sl_capture *c = &h->caps[k];
        if (p + n > c->n_offset) {
            int32_t grown_n = c->n_offset ? c->n_offset : 64;
            while (grown_n < p + n)
                grown_n *= 2;
            int64_t *grown = realloc(c->offset, (size_t)grown_n * sizeof *grown);
            if (!grown)
                return false;
            for (int32_t i = c->n_offset; i < grown_n; i++)
                grown[i] = -1;
            c->offset = grown;
            c->n_offset = grown_n;
        }
        int64_t need = c->used;
        for (int32_t i = p; i < p + n; i++)
            if (selected(&h->cap_positions, i, P))
                need += record_floats(s, c, i);
        if (need > c->cap) {
            int64_t cap = c->cap ? c->cap : 1024;
            while (cap < need)
                cap *= 2;
            float *pool = realloc(c->pool, (size_t)cap * sizeof *pool);
            if (!pool)
                return false;
            c->pool = pool;
            c->cap = cap;
        }
        for (int32_t i = p; i < p + n; i++) {
            c->offset[i] = -1;
            if (!selected(&h->cap_positions, i, P))
                continue;
            int64_t size = record_floats(s, c, i);
            float fill = c->hook.point == SL_HOOK_ATTN_SCORES ? -INFINITY : 0.0f;
            for (int64_t j = 0; j < size; j++)
                c->pool[c->used + j] = fill;
            c->offset[i] = c->used;
            c->used += size;
        }
    }
    return true;
}

static const sl_capture *find_capture(const sl_hooks *h, sl_hook hook)
{
    for (int32_t k = 0; k < h->n_caps; k++)
        if (same_hook(h->caps[k].hook, hook))
            return &h->caps[k];
    return NULL;
}

static void record_scores(const sl_hooks_attn_ctx *c, sl_hook_point pt, int32_t head, const float *sc, int32_t n)
{
    const sl_capture *cap = find_capture(c->s->hooks, (sl_hook){c->layer, pt});
    if (!cap || c->qpos >= cap->n_offset || cap->offset[c->qpos] < 0)
        return;
    float *rec = cap->pool + cap->offset[c->qpos] + (int64_t)(c->h0 + head) * (c->qpos + 1) + c->j0;
    memcpy(rec, sc, (size_t)n * sizeof *sc);
}

static void scores_hook(void *user, int32_t head, float *sc, int32_t n)
{
    const sl_hooks_attn_ctx *c = user;
    const sl_intervention *iv = c->s->hooks->iv;
    int32_t P = sl_hooks_prompt_len(c->s), h = c->h0 + head;
    for (int32_t k = 0; iv && k < iv->n; k++) {
        const sl_op *o = &iv->ops[k];
        if (o->hook.block != c->layer || o->hook.point != SL_HOOK_ATTN_SCORES || !has_head(o, h) ||
            !selected(&o->positions, c->qpos, P))
            continue;
        if (o->kind == SL_OP_SCALE) { /* masked keys stay -inf: -inf * 0 would be NaN */
            for (int32_t j = 0; j < n; j++)
                if (sc[j] != -INFINITY)
                    sc[j] *= o->factor;
            continue;
        }
        int32_t a = o->key_begin > c->j0 ? o->key_begin : c->j0;
        int32_t b = o->key_end < c->j0 + n ? o->key_end : c->j0 + n;
        for (int32_t j = a; j < b; j++)
            sc[j - c->j0] += o->value;
    }
    if (c->capture)
        record_scores(c, SL_HOOK_ATTN_SCORES, head, sc, n);
}

static void pattern_hook(void *user, int32_t head, const float *p, int32_t n)
{
    record_scores(user, SL_HOOK_PATTERN, head, p, n);
}

const sl_attn_hook *sl_hooks_attention(sl_session *s, int32_t l, int32_t qpos, int32_t j0, int32_t h0, bool branching,
                                       sl_hooks_attn_ctx *ctx)
{
    bool edit = false;
    const sl_intervention *iv = s->hooks->iv;
    int32_t P = sl_hooks_prompt_len(s);
    for (int32_t k = 0; iv && k < iv->n && !edit; k++)
        edit = iv->ops[k].hook.block == l && iv->ops[k].hook.point == SL_HOOK_ATTN_SCORES &&
               selected(&iv->ops[k].positions, qpos, P);
    bool cap_scores = false, cap_pattern = false;
    if (!branching && selected(&s->hooks->cap_positions, qpos, P)) {
        cap_scores = find_capture(s->hooks, (sl_hook){l, SL_HOOK_ATTN_SCORES}) != NULL;
        cap_pattern = find_capture(s->hooks, (sl_hook){l, SL_HOOK_PATTERN}) != NULL;
    }
    if (!edit && !cap_scores && !cap_pattern)
        return NULL;
    *ctx = (sl_hooks_attn_ctx){.s = s, .layer = l, .qpos = qpos, .j0 = j0, .h0 = h0, .capture = cap_scores};
    ctx->hook = (sl_attn_hook){edit || cap_scores ? scores_hook : NULL, cap_pattern ? pattern_hook : NULL, ctx};
    return &ctx->hook;
}

void sl_hooks_rewind(sl_session *s, int32_t pos)
{
    if (!s->prompt_len_set && s->prompt_len > pos)
        s->prompt_len = -1;
    sl_hooks *h = s->hooks;
    for (int32_t k = 0; h && k < h->n_caps; k++) {
        sl_capture *c = &h->caps[k];
        for (int32_t i = pos; i < c->n_offset; i++)
            c->offset[i] = -1;
        if (pos == 0)
            c->used = 0;
    }
}

static void free_captures(sl_hooks *h)
{
    for (int32_t k = 0; k < h->n_caps; k++) {
        free(h->caps[k].offset);
        free(h->caps[k].pool);
        free(h->caps[k].view);
        free(h->caps[k].view_pos);
    }
    free(h->caps);
    free((void *)h->cap_positions.list);
    h->caps = NULL;
    h->n_caps = 0;
    h->cap_positions = (sl_positions){SL_POSITIONS_ALL, NULL, 0};
}

void sl_hooks_free(sl_session *s)
{
    sl_hooks *h = s->hooks;
    if (!h)
        return;
    free_captures(h);
    sl_intervention_free(h->iv);
    free(h->fns);
    free(h->mask);
    free(h);
    s->hooks = NULL;
}

/* ------------------------------------------------------------------ the session's side */

static sl_hooks *hooks_of(sl_session *s)
{
    if (s->hooks)
        return s->hooks;
    sl_hooks *h = calloc(1, sizeof *h);
    uint16_t *mask = h ? calloc((size_t)s->model->cfg.n_layer, sizeof *mask) : NULL;
    if (!mask) {
        free(h);
        return NULL;
    }
    h->mask = mask;
    s->hooks = h;
    return h;
}

static void update_mask(sl_session *s)
{
    sl_hooks *h = s->hooks;
    memset(h->mask, 0, (size_t)s->model->cfg.n_layer * sizeof *h->mask);
    for (int32_t k = 0; h->iv && k < h->iv->n; k++)
        h->mask[h->iv->ops[k].hook.block] |= (uint16_t)(1u << h->iv->ops[k].hook.point);
    for (int32_t k = 0; k < h->n_caps; k++)
        h->mask[h->caps[k].hook.block] |= (uint16_t)(1u << h->caps[k].hook.point);
    for (int32_t k = 0; k < h->n_fns; k++)
        h->mask[h->fns[k].hook.block] |= (uint16_t)(1u << h->fns[k].hook.point);
}

/* An op, capture or function on a block the session skips is an error. */
static sl_status check_not_skipped(const sl_session *s, sl_hook hook, const char *what, sl_error *err)
{
    if (!s->skip[hook.block])
        return SL_STATUS_OK;
    char name[64];
    sl_hook_name(hook, name, sizeof name);
    return sl_error_set(err, SL_STATUS_E_STATE, "%s (%s): block %d is skipped by this session", what, name,
                        hook.block);
}

sl_status sl_hooks_check_skip(const sl_session *s, const sl_intervention *iv, sl_error *err)
{
    for (int32_t k = 0; iv && k < iv->n; k++) {
        sl_hook hook = iv->ops[k].hook;
        if (!s->skip[hook.block])
            continue;
        char name[64];
        sl_hook_name(hook, name, sizeof name);
        return sl_error_set(err, SL_STATUS_E_STATE, "%s: op %d: field 'hook': %s is in block %d, which this session skips",
                            iv->label, k, name, hook.block);
    }
    return SL_STATUS_OK;
}

/* Whether the session's hooks touch any block the mask skips (set_skip refuses it). */
sl_status sl_hooks_check_mask(const sl_session *s, const uint8_t *skip, sl_error *err)
{
    const sl_hooks *h = s->hooks;
    if (!h)
        return SL_STATUS_OK;
    for (int32_t l = 0; l < s->model->cfg.n_layer; l++)
        if (skip[l] && h->mask[l])
            return sl_error_set(err, SL_STATUS_E_STATE,
                                "skip mask: block %d has an intervention, capture or hook function", l);
    return SL_STATUS_OK;
}

sl_status sl_hooks_adopt(sl_session *s, sl_intervention *iv, sl_error *err)
{
    if (!iv && !s->hooks)
        return SL_STATUS_OK;
    sl_hooks *h = hooks_of(s);
    if (!h)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory for an intervention", s->model->path);
    sl_intervention_retain(iv);
    sl_intervention_free(h->iv);
    h->iv = iv;
    update_mask(s);
    return SL_STATUS_OK;
}

sl_status sl_session_set_intervention(sl_session *s, sl_intervention *iv, sl_error *err)
{
    sl_error_clear(err);
    if (!s)
        return sl_error_set(err, SL_STATUS_E_ARG, "intervention: session is NULL");
    sl_status rc = sl_hooks_check_skip(s, iv, err);
    if (rc != SL_STATUS_OK)
        return rc;
    const sl_intervention *old = s->hooks ? s->hooks->iv : NULL;
    int32_t N = s->model->cfg.n_layer;
    if (s->n_forks > 0 && sl_intervention_first_difference(s->model, old, iv) < N)
        return sl_error_set(err, SL_STATUS_E_STATE, "intervention: cannot change it on a session that has forks");
    if (s->parent) {
        const sl_intervention *theirs = s->parent->hooks ? s->parent->hooks->iv : NULL;
        int32_t b = sl_intervention_first_difference(s->model, theirs, iv);
        if (b < s->branch)
            return sl_error_set(err, SL_STATUS_E_STATE,
                                "intervention: a fork shares blocks below %d with its parent, and this one differs "
                                "from the parent's at block %d (fork with sl_session_fork_intervened)",
                                s->branch, b);
    }
    return sl_hooks_adopt(s, iv, err);
}

const sl_intervention *sl_session_intervention(const sl_session *s) { return s && s->hooks ? s->hooks->iv : NULL; }

sl_status sl_session_set_prompt_length(sl_session *s, int32_t n, sl_error *err)
{
    if (!s)
        return sl_error_set(err, SL_STATUS_E_ARG, "prompt length: session is NULL");
    if (s->parent)
        return sl_error_set(err, SL_STATUS_E_STATE, "prompt length: a fork uses its parent's");
    if (n < -1)
        return sl_error_set(err, SL_STATUS_E_RANGE, "prompt length: %d is negative", n);
    s->prompt_len = n;
    s->prompt_len_set = n >= 0;
    return SL_STATUS_OK;
}

int32_t sl_session_prompt_length(const sl_session *s) { return sl_hooks_prompt_len(s); }

sl_status sl_session_capture(sl_session *s, const sl_hook *hooks, int32_t n, sl_positions positions, sl_error *err)
{
    sl_error_clear(err);
    if (!s || n < 0 || (n > 0 && !hooks))
        return sl_error_set(err, SL_STATUS_E_ARG, "capture: invalid hook list");
    if (positions.kind < SL_POSITIONS_ALL || positions.kind > SL_POSITIONS_LIST || positions.n < 0 ||
        (positions.kind == SL_POSITIONS_LIST && positions.n > 0 && !positions.list))
        return sl_error_set(err, SL_STATUS_E_ARG, "capture: invalid positions");
    for (int32_t i = 0; i < positions.n && positions.kind == SL_POSITIONS_LIST; i++)
        if (positions.list[i] < 0)
            return sl_error_set(err, SL_STATUS_E_RANGE, "capture: position %d is negative", positions.list[i]);
    for (int32_t i = 0; i < n; i++) {
        if (hooks[i].block < 0 || hooks[i].block >= s->model->cfg.n_layer || hooks[i].point < 0 ||
            hooks[i].point >= SL_HOOK_POINTS)
            return sl_error_set(err, SL_STATUS_E_RANGE, "capture: hook %d: block %d out of range [0, %d]", i,
                                hooks[i].block, s->model->cfg.n_layer - 1);
        sl_status rc = check_not_skipped(s, hooks[i], "capture", err);
        if (rc != SL_STATUS_OK)
            return rc;
    }
    if (n == 0 && !s->hooks)
        return SL_STATUS_OK;
    sl_hooks *h = hooks_of(s);
    sl_capture *caps = calloc((size_t)(n ? n : 1), sizeof *caps);
    int32_t *list = NULL;
    if (positions.kind == SL_POSITIONS_LIST && positions.n > 0) {
        list = malloc((size_t)positions.n * sizeof *list);
        if (list)
            memcpy(list, positions.list, (size_t)positions.n * sizeof *list);
    }
    if (!h || !caps || (positions.kind == SL_POSITIONS_LIST && positions.n > 0 && !list)) {
        free(caps);
        free(list);
        return sl_error_set(err, SL_STATUS_E_NOMEM, "capture: out of memory");
    }
    free_captures(h);
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++) {
        bool dup = false;
        for (int32_t k = 0; k < m; k++)
            dup |= same_hook(caps[k].hook, hooks[i]);
        if (!dup)
            caps[m++].hook = hooks[i];
    }
    h->caps = caps;
    h->n_caps = m;
    h->cap_positions = (sl_positions){positions.kind, list, positions.kind == SL_POSITIONS_LIST ? positions.n : 0};
    update_mask(s);
    return SL_STATUS_OK;
}

sl_status sl_session_captured(sl_session *s, sl_hook hook, sl_capture_view *out, sl_error *err)
{
    char name[64];
    sl_hook_name(hook, name, sizeof name);
    sl_capture *c = s && s->hooks ? (sl_capture *)find_capture(s->hooks, hook) : NULL;
    if (!c)
        return sl_error_set(err, SL_STATUS_E_STATE, "capture: %s was not requested", name);
    const sl_model_config *cfg = &s->model->cfg;
    int32_t n_pos = 0, last = -1;
    for (int32_t i = 0; i < c->n_offset && i < s->pos; i++)
        if (c->offset[i] >= 0)
            n_pos++, last = i;
    int64_t width = sl_hook_width(s->model, hook);
    bool scores = score_point(hook.point);
    int64_t n_keys = last + 1;
    int64_t total = scores ? (int64_t)cfg->n_head * n_pos * n_keys : (int64_t)n_pos * width;
    free(c->view);
    free(c->view_pos);
    c->view = malloc((size_t)(total ? total : 1) * sizeof *c->view);
    c->view_pos = malloc((size_t)(n_pos ? n_pos : 1) * sizeof *c->view_pos);
    if (!c->view || !c->view_pos)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "capture: out of memory for %s", name);
    float fill = hook.point == SL_HOOK_ATTN_SCORES ? -INFINITY : 0.0f;
    for (int32_t i = 0, k = 0; k < n_pos; i++) {
        if (c->offset[i] < 0)
            continue;
        c->view_pos[k] = i;
        const float *rec = c->pool + c->offset[i];
        if (!scores) {
            memcpy(c->view + (int64_t)k * width, rec, (size_t)width * sizeof *rec);
        } else {
            for (int32_t h = 0; h < cfg->n_head; h++) {
                float *dst = c->view + ((int64_t)h * n_pos + k) * n_keys;
                memcpy(dst, rec + (int64_t)h * (i + 1), (size_t)(i + 1) * sizeof *rec);
                for (int64_t j = i + 1; j < n_keys; j++)
                    dst[j] = fill;
            }
        }
        k++;
    }
    *out = (sl_capture_view){.hook = hook, .n_pos = n_pos, .positions = c->view_pos, .data = c->view};
    if (scores) {
        out->ndim = 3;
        out->shape[0] = cfg->n_head, out->shape[1] = n_pos, out->shape[2] = n_keys;
    } else if (hook.point == SL_HOOK_Q || hook.point == SL_HOOK_Z || hook.point == SL_HOOK_K ||
               hook.point == SL_HOOK_V) {
        out->ndim = 3;
        out->shape[0] = n_pos, out->shape[1] = width / cfg->head_dim, out->shape[2] = cfg->head_dim;
    } else {
        out->ndim = 2;
        out->shape[0] = n_pos, out->shape[1] = width;
    }
    return SL_STATUS_OK;
}

sl_status sl_session_set_hook_fn(sl_session *s, sl_hook hook, sl_hook_fn fn, void *user, sl_error *err)
{
    sl_error_clear(err);
    if (!s || hook.block < 0 || hook.block >= s->model->cfg.n_layer || hook.point < 0 ||
        hook.point >= SL_HOOK_POINTS)
        return sl_error_set(err, SL_STATUS_E_RANGE, "hook function: invalid hook");
    char name[64];
    sl_hook_name(hook, name, sizeof name);
    if (score_point(hook.point))
        return sl_error_set(err, SL_STATUS_E_ARG,
                            "hook function: %s is not offered to functions (edit scores with an 'add' op, read them "
                            "with a capture)",
                            name);
    sl_status rc = fn ? check_not_skipped(s, hook, "hook function", err) : SL_STATUS_OK;
    if (rc != SL_STATUS_OK)
        return rc;
    sl_hooks *h = hooks_of(s);
    if (!h)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "hook function: out of memory");
    for (int32_t k = 0; k < h->n_fns; k++) {
        if (!same_hook(h->fns[k].hook, hook))
            continue;
        if (fn)
            h->fns[k] = (sl_hook_fn_entry){hook, fn, user};
        else
            h->fns[k] = h->fns[--h->n_fns];
        update_mask(s);
        return SL_STATUS_OK;
    }
    if (!fn)
        return SL_STATUS_OK;
    sl_hook_fn_entry *grown = realloc(h->fns, (size_t)(h->n_fns + 1) * sizeof *grown);
    if (!grown)
        return sl_error_set(err, SL_STATUS_E_NOMEM, "hook function: out of memory");
    h->fns = grown;
    h->fns[h->n_fns++] = (sl_hook_fn_entry){hook, fn, user};
    update_mask(s);
    return SL_STATUS_OK;
}
