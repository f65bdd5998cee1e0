/* Interventions: hook names, and checked, immutable op lists (sl_intervene.h). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks.h"
#include "internal.h"
#include "util/error.h"

static const struct {
    const char *name;
    bool attn; /* under blocks.L.attn */
} point_names[SL_HOOK_POINTS] = {
    [SL_HOOK_RESID_PRE] = {"hook_resid_pre", false},     [SL_HOOK_ATTN_OUT] = {"hook_attn_out", false},
    [SL_HOOK_RESID_MID] = {"hook_resid_mid", false},     [SL_HOOK_MLP_OUT] = {"hook_mlp_out", false},
    [SL_HOOK_RESID_POST] = {"hook_resid_post", false},   [SL_HOOK_Q] = {"hook_q", true},
    [SL_HOOK_K] = {"hook_k", true},                      [SL_HOOK_V] = {"hook_v", true},
    [SL_HOOK_Z] = {"hook_z", true},                      [SL_HOOK_ATTN_SCORES] = {"hook_attn_scores", true},
    [SL_HOOK_PATTERN] = {"hook_pattern", true},
};

#define HOOK_FORMS                                                                                                     \
    "blocks.L.hook_resid_pre|hook_attn_out|hook_resid_mid|hook_mlp_out|hook_resid_post or "                           \
    "blocks.L.attn.hook_q|hook_k|hook_v|hook_z|hook_attn_scores|hook_pattern"

sl_status sl_hook_parse(const sl_model *m, const char *name, sl_hook *out, sl_error *err)
{
    int32_t N = m->cfg.n_layer;
    if (!name)
        return sl_error_set(err, SL_STATUS_E_ARG, "hook: no name");
    const char *p = name;
    if (strncmp(p, "blocks.", 7) != 0)
        goto unknown;
    p += 7;
    if (*p < '0' || *p > '9')
        goto unknown;
    long block = 0;
    while (*p >= '0' && *p <= '9' && block <= 1000000)
        block = block * 10 + (*p++ - '0');
    if (*p++ != '.')
        goto unknown;
    bool attn = strncmp(p, "attn.", 5) == 0;
    if (attn)
        p += 5;
    for (int k = 0; k < SL_HOOK_POINTS; k++) {
        if (point_names[k].attn != attn || strcmp(p, point_names[k].name) != 0)
            continue;
        if (block >= N)
            return sl_error_set(err, SL_STATUS_E_RANGE, "hook '%s': block %ld out of range [0, %d]", name, block,
                                N - 1);
        *out = (sl_hook){(int32_t)block, (sl_hook_point)k};
        return SL_STATUS_OK;
    }
unknown:;
    char shown[81]; /* one line whatever the name holds */
    size_t k = 0;
    for (; name[k] && k < sizeof shown - 1; k++)
        shown[k] = (unsigned char)name[k] < 0x20 || name[k] == 0x7f ? '?' : name[k];
    shown[k] = 0;
    return sl_error_set(err, SL_STATUS_E_ARG, "unknown hook '%s' (valid: " HOOK_FORMS ", L in [0, %d])", shown, N - 1);
}

void sl_hook_name(sl_hook h, char *buf, size_t size)
{
    if (size == 0)
        return;
    if (h.point < 0 || h.point >= SL_HOOK_POINTS) {
        snprintf(buf, size, "blocks.%d.?", h.block);
        return;
    }
    snprintf(buf, size, "blocks.%d.%s%s", h.block, point_names[h.point].attn ? "attn." : "",
             point_names[h.point].name);
}

int64_t sl_hook_width(const sl_model *m, sl_hook h)
{
    const sl_model_config *c = &m->cfg;
    switch (h.point) {
    case SL_HOOK_Q:
    case SL_HOOK_Z:
        return (int64_t)c->n_head * c->head_dim;
    case SL_HOOK_K:
    case SL_HOOK_V:
        return (int64_t)c->n_head_kv * c->head_dim;
    case SL_HOOK_ATTN_SCORES:
    case SL_HOOK_PATTERN:
        return c->n_head;
    default:
        return c->n_embd;
    }
}

sl_op sl_op_default(void)
{
    return (sl_op){.kind = SL_OP_ADD, .positions = {SL_POSITIONS_ALL, NULL, 0}, .scale = 1.0f, .head = -1,
                   .factor = 1.0f};
}

static bool residual(sl_hook_point p) { return p <= SL_HOOK_RESID_POST; }

static void free_op(sl_op *o)
{
    free((void *)o->vector);
    free((void *)o->heads);
    free((void *)o->values);
    free((void *)o->positions.list);
}

void sl_intervention_free(sl_intervention *iv)
{
    if (!iv || atomic_fetch_sub(&iv->refs, 1) != 1)
        return;
    for (int32_t i = 0; i < iv->n; i++)
        free_op(&iv->ops[i]);
    free(iv->ops);
    free(iv->label);
    free(iv);
}

sl_intervention *sl_intervention_retain(sl_intervention *iv)
{
    if (iv)
        atomic_fetch_add(&iv->refs, 1);
    return iv;
}

int32_t sl_intervention_count(const sl_intervention *iv) { return iv ? iv->n : 0; }

const sl_op *sl_intervention_op(const sl_intervention *iv, int32_t i)
{
    return iv && i >= 0 && i < iv->n ? &iv->ops[i] : NULL;
}

static void *dup_array(const void *src, size_t bytes, bool *ok)
{
    if (!src || bytes == 0)
        return NULL;
    void *d = malloc(bytes);
    if (!d) {
        *ok = false;
        return NULL;
    }
    memcpy(d, src, bytes);
    return d;
}

/* Checks one op against the model; messages start "<label>: op <i>: field '<name>': ". */
static sl_status check_op(const sl_model *m, const sl_op *o, const char *label, int32_t i, sl_error *err)
{
    const sl_model_config *c = &m->cfg;
    char hook[64];
    if (o->hook.point < 0 || o->hook.point >= SL_HOOK_POINTS || o->hook.block < 0 || o->hook.block >= c->n_layer)
        return sl_error_set(err, SL_STATUS_E_RANGE, "%s: op %d: field 'hook': block %d out of range [0, %d]", label,
                            i, o->hook.block, c->n_layer - 1);
    sl_hook_name(o->hook, hook, sizeof hook);
    sl_hook_point pt = o->hook.point;
    const sl_positions *ps = &o->positions;
    if (ps->kind < SL_POSITIONS_ALL || ps->kind > SL_POSITIONS_LIST || (ps->kind == SL_POSITIONS_LIST && ps->n > 0 && !ps->list) ||
        ps->n < 0)
        return sl_error_set(err, SL_STATUS_E_ARG, "%s: op %d: field 'positions': invalid on %s", label, i, hook);
    if (ps->kind == SL_POSITIONS_LIST)
        for (int32_t k = 0; k < ps->n; k++)
            if (ps->list[k] < 0)
                return sl_error_set(err, SL_STATUS_E_RANGE, "%s: op %d: field 'positions': %d is negative", label, i,
                                    ps->list[k]);
    if (o->heads || o->n_heads) {
        if (o->n_heads <= 0 || !o->heads)
            return sl_error_set(err, SL_STATUS_E_ARG, "%s: op %d: field 'heads': empty list", label, i);
        for (int32_t k = 0; k < o->n_heads; k++)
            if (o->heads[k] < 0 || o->heads[k] >= c->n_head)
                return sl_error_set(err, SL_STATUS_E_RANGE, "%s: op %d: field 'heads': head %d out of range [0, %d] (%s)",
                                    label, i, o->heads[k], c->n_head - 1, hook);
    }
    int64_t width = sl_hook_width(m, o->hook);
    switch (o->kind) {
    case SL_OP_ADD:
        if (pt == SL_HOOK_ATTN_SCORES) {
            if (o->key_begin < 0 || o->key_end <= o->key_begin)
                return sl_error_set(err, SL_STATUS_E_RANGE, "%s: op %d: field 'keys': empty span [%d, %d)", label, i,
                                    o->key_begin, o->key_end);
            if (o->key_end > c->max_position)
                return sl_error_set(err, SL_STATUS_E_RANGE,
                                    "%s: op %d: field 'keys': span [%d, %d) goes beyond the model's context of %d "
                                    "positions",
                                    label, i, o->key_begin, o->key_end, c->max_position);
            return SL_STATUS_OK;
        }
        if (pt == SL_HOOK_Z) {
            if (o->head < 0 || o->head >= c->n_head)
                return sl_error_set(err, SL_STATUS_E_RANGE, "%s: op %d: field 'head': head %d out of range [0, %d] (%s)",
                                    label, i, o->head, c->n_head - 1, hook);
            width = c->head_dim;
        } else if (!residual(pt)) {
            break;
        }
        if (!o->vector || o->n_vector != width)
            return sl_error_set(err, SL_STATUS_E_ARG, "%s: op %d: field 'vector': %lld values, expected %lld (%s of %s)",
                                label, i, (long long)(o->vector ? o->n_vector : 0), (long long)width,
                                pt == SL_HOOK_Z ? "head_dim" : "d_model", hook);
        return SL_STATUS_OK;
    case SL_OP_SCALE:
        if (pt != SL_HOOK_Z && pt != SL_HOOK_ATTN_SCORES)
            return sl_error_set(err, SL_STATUS_E_ARG,
                                "%s: op %d: field 'op': 'scale' applies to blocks.L.attn.hook_z and "
                                "blocks.L.attn.hook_attn_scores (not %s)",
                                label, i, hook);
        return SL_STATUS_OK;
    case SL_OP_SET:
        if (!residual(pt) && pt != SL_HOOK_Z)
            break;
        if (!o->values || o->n_rows <= 0)
            return sl_error_set(err, SL_STATUS_E_ARG, "%s: op %d: field 'values': no rows", label, i);
        if (o->n_rows != 1 && !(ps->kind == SL_POSITIONS_LIST && ps->n == o->n_rows))
            return sl_error_set(err, SL_STATUS_E_ARG,
                                "%s: op %d: field 'values': %d rows; give one row, or one per listed position",
                                label, i, o->n_rows);
        return SL_STATUS_OK;
    default:
        return sl_error_set(err, SL_STATUS_E_ARG, "%s: op %d: field 'op': unknown kind %d", label, i, (int)o->kind);
    }
    return sl_error_set(err, SL_STATUS_E_ARG,
                        "%s: op %d: field 'op': '%s' is not defined on %s (it can be captured; writes go to the "
                        "residual hooks, hook_z and hook_attn_scores)",
                        label, i, o->kind == SL_OP_SET ? "set" : "add", hook);
}

sl_intervention *sl_intervention_build(const sl_model *m, const sl_op *ops, int32_t n, const char *label,
                                       sl_error *err)
{
    sl_error_clear(err);
    if (!m || n < 0 || (n > 0 && !ops)) {
        sl_error_set(err, SL_STATUS_E_ARG, "%s: invalid op list", label);
        return NULL;
    }
    for (int32_t i = 0; i < n; i++)
        if (check_op(m, &ops[i], label, i, err) != SL_STATUS_OK)
            return NULL;
    sl_intervention *iv = calloc(1, sizeof *iv);
    sl_op *copy = calloc((size_t)(n ? n : 1), sizeof *copy);
    if (!iv || !copy) {
        free(iv);
        free(copy);
        sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", label);
        return NULL;
    }
    atomic_init(&iv->refs, 1);
    iv->ops = copy;
    iv->n = n;
    iv->label = dup_array(label, strlen(label) + 1, &(bool){true});
    bool ok = iv->label != NULL;
    for (int32_t i = 0; i < n; i++) {
        const sl_op *o = &ops[i];
        sl_op *d = &copy[i];
        *d = *o;
        d->vector = NULL, d->heads = NULL, d->values = NULL, d->positions.list = NULL;
        if (o->kind == SL_OP_ADD && o->vector) {
            /* HF computes scale * v as a tensor, then adds it: keep the product */
            float *sv = malloc((size_t)o->n_vector * sizeof *sv);
            ok &= sv != NULL;
            for (int64_t k = 0; sv && k < o->n_vector; k++)
                sv[k] = o->scale * o->vector[k];
            d->vector = sv;
        }
        d->heads = dup_array(o->heads, (size_t)o->n_heads * sizeof *o->heads, &ok);
        if (o->kind == SL_OP_SET)
            d->values = dup_array(o->values, (size_t)o->n_rows * (size_t)sl_hook_width(m, o->hook) * sizeof(float), &ok);
        if (o->positions.kind == SL_POSITIONS_LIST)
            d->positions.list = dup_array(o->positions.list, (size_t)o->positions.n * sizeof(int32_t), &ok);
        else
            d->positions.n = 0;
    }
    if (!ok) {
        sl_intervention_free(iv);
        sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", label);
        return NULL;
    }
    return iv;
}

sl_intervention *sl_intervention_new(const sl_model *m, const sl_op *ops, int32_t n, sl_error *err)
{
    return sl_intervention_build(m, ops, n, "intervention", err);
}

static bool same_array(const void *a, const void *b, size_t bytes)
{
    if (!a || !b)
        return a == b;
    return memcmp(a, b, bytes) == 0;
}

/* Ops are stored with their vector already scaled, so equal effects compare equal. */
static bool same_op(const sl_model *m, const sl_op *a, const sl_op *b)
{
    if (a->hook.block != b->hook.block || a->hook.point != b->hook.point || a->kind != b->kind ||
        a->positions.kind != b->positions.kind || a->positions.n != b->positions.n || a->n_vector != b->n_vector ||
        a->head != b->head || a->n_heads != b->n_heads || a->key_begin != b->key_begin || a->key_end != b->key_end ||
        a->n_rows != b->n_rows)
        return false;
    if (a->kind == SL_OP_SCALE && memcmp(&a->factor, &b->factor, sizeof a->factor) != 0)
        return false;
    if (a->kind == SL_OP_ADD && memcmp(&a->value, &b->value, sizeof a->value) != 0)
        return false;
    return same_array(a->positions.list, b->positions.list, (size_t)a->positions.n * sizeof(int32_t)) &&
           same_array(a->vector, b->vector, (size_t)a->n_vector * sizeof(float)) &&
           same_array(a->heads, b->heads, (size_t)a->n_heads * sizeof(int32_t)) &&
           same_array(a->values, b->values, (size_t)a->n_rows * (size_t)sl_hook_width(m, a->hook) * sizeof(float));
}

int32_t sl_intervention_first_difference(const sl_model *m, const sl_intervention *a, const sl_intervention *b)
{
    int32_t N = m->cfg.n_layer;
    for (int32_t l = 0; l < N; l++) {
        /* the ops of block l, in order, must be the same */
        int32_t i = 0, j = 0;
        for (;;) {
            while (a && i < a->n && a->ops[i].hook.block != l)
                i++;
            while (b && j < b->n && b->ops[j].hook.block != l)
                j++;
            bool ea = !a || i >= a->n, eb = !b || j >= b->n;
            if (ea || eb) {
                if (ea != eb)
                    return l;
                break;
            }
            if (!same_op(m, &a->ops[i], &b->ops[j]))
                return l;
            i++, j++;
        }
    }
    return N;
}
