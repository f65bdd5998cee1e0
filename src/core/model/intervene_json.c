/* The JSON spec of an intervention (docs/spec/interventions.md): a list of ops such as
 *   {"hook": "blocks.6.hook_resid_post", "op": "add", "vector": "caa.safetensors:layer6",
 *    "scale": 4.0, "positions": "generated"}
 * parsed strictly: every field is checked against the op it belongs to, and each message names
 * the op's index and field. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks.h"
#include "internal.h"
#include "safetensors.h"
#include "util/error.h"
#include "util/json_util.h"

#define MAX_OPS 4096

typedef struct parse_ctx {
    const sl_model *m;
    const char *label, *base_dir;
    int32_t index;
    sl_error *err;
} parse_ctx;

#define FAIL(ctx, code, field, ...) field_error(ctx, code, field, __VA_ARGS__)

static sl_status field_error(const parse_ctx *c, sl_status code, const char *field, const char *fmt, ...)
    SL_PRINTF(4, 5);
static sl_status field_error(const parse_ctx *c, sl_status code, const char *field, const char *fmt, ...)
{
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return sl_error_set(c->err, code, "%s: op %d: field '%s': %s", c->label, c->index, field, what);
}

static sl_status get_float(const parse_ctx *c, json_object *v, const char *field, float *out)
{
    double d;
    if (!sl_json_as_double(v, &d) || !isfinite(d) || fabs(d) > 3.4e38)
        return FAIL(c, SL_STATUS_E_ARG, field, "expected a finite number");
    *out = (float)d;
    return SL_STATUS_OK;
}

static sl_status get_int(const parse_ctx *c, json_object *v, const char *field, int32_t lo, int32_t *out)
{
    int64_t i;
    if (!sl_json_as_int64(v, &i) || i < lo || i > INT32_MAX)
        return FAIL(c, SL_STATUS_E_ARG, field, "expected an integer >= %d", lo);
    *out = (int32_t)i;
    return SL_STATUS_OK;
}

static sl_status get_ints(const parse_ctx *c, json_object *v, const char *field, int32_t **out, int32_t *n)
{
    if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0)
        return FAIL(c, SL_STATUS_E_ARG, field, "expected a non-empty list of integers");
    size_t len = json_object_array_length(v);
    if (len > (1u << 20))
        return FAIL(c, SL_STATUS_E_RANGE, field, "more than %u entries", 1u << 20);
    int32_t *list = malloc(len * sizeof *list);
    if (!list)
        return FAIL(c, SL_STATUS_E_NOMEM, field, "out of memory");
    for (size_t i = 0; i < len; i++) {
        sl_status rc = get_int(c, json_object_array_get_idx(v, i), field, 0, &list[i]);
        if (rc != SL_STATUS_OK) {
            free(list);
            return rc;
        }
    }
    *out = list;
    *n = (int32_t)len;
    return SL_STATUS_OK;
}

/* "FILE.safetensors:NAME" relative to base_dir: the tensor's values as float32. */
static sl_status load_tensor(const parse_ctx *c, const char *ref, const char *field, float **out, int64_t *count)
{
    const char *colon = strrchr(ref, ':');
    if (!colon || colon == ref || !colon[1])
        return FAIL(c, SL_STATUS_E_ARG, field, "expected a list of numbers or \"FILE.safetensors:NAME\" (got \"%.120s\")",
                    ref);
    char path[4096];
    int len = (int)(colon - ref);
    int w = ref[0] == '/' || !c->base_dir || !c->base_dir[0]
                ? snprintf(path, sizeof path, "%.*s", len, ref)
                : snprintf(path, sizeof path, "%s/%.*s", c->base_dir, len, ref);
    if (w < 0 || (size_t)w >= sizeof path)
        return FAIL(c, SL_STATUS_E_ARG, field, "path too long");
    sl_error e = {0};
    sl_st_set *st = sl_st_open_file(path, false, &e);
    if (!st)
        return FAIL(c, SL_STATUS_E_IO, field, "%s", e.msg);
    const sl_st_tensor *t = sl_st_find(st, colon + 1);
    sl_status rc = SL_STATUS_OK;
    if (!t) {
        rc = FAIL(c, SL_STATUS_E_ARG, field, "%s has no tensor '%.120s'", path, colon + 1);
    } else if (t->dtype != SL_ST_F32 && t->dtype != SL_ST_F16 && t->dtype != SL_ST_BF16) {
        rc = FAIL(c, SL_STATUS_E_FORMAT, field, "tensor '%.120s' of %s is %s (want F32, F16 or BF16)", colon + 1, path,
                  sl_st_dtype_name(t->dtype));
    } else {
        int64_t n = (int64_t)(t->nbytes / sl_st_dtype_size(t->dtype));
        float *v = malloc((size_t)(n ? n : 1) * sizeof *v);
        if (!v) {
            rc = FAIL(c, SL_STATUS_E_NOMEM, field, "out of memory");
        } else {
            for (int64_t i = 0; i < n; i++) {
                if (t->dtype == SL_ST_F32)
                    memcpy(&v[i], (const char *)t->data + i * 4, 4);
                else {
                    uint16_t h;
                    memcpy(&h, (const char *)t->data + i * 2, 2);
                    v[i] = t->dtype == SL_ST_F16 ? sl_f16_to_f32(h) : sl_bf16_to_f32(h);
                }
            }
            *out = v;
            *count = n;
        }
    }
    sl_st_close(st);
    return rc;
}

/* A list of numbers, a list of such lists (rows, flattened) when rows is set, or a tensor file. */
static sl_status get_floats(const parse_ctx *c, json_object *v, const char *field, bool rows, float **out,
                            int64_t *count, int32_t *n_rows)
{
    if (json_object_is_type(v, json_type_string)) {
        if (n_rows)
            *n_rows = -1; /* from the width */
        return load_tensor(c, json_object_get_string(v), field, out, count);
    }
    if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0)
        return FAIL(c, SL_STATUS_E_ARG, field, "expected a list of numbers or \"FILE.safetensors:NAME\"");
    size_t len = json_object_array_length(v), width = len, nr = 1;
    json_object *first = json_object_array_get_idx(v, 0);
    bool nested = rows && json_object_is_type(first, json_type_array);
    if (nested) {
        nr = len;
        width = json_object_array_length(first);
        if (width == 0)
            return FAIL(c, SL_STATUS_E_ARG, field, "row 0 is empty");
    }
    if (width > (1u << 24) || nr > (1u << 20) || width * nr > (1u << 26))
        return FAIL(c, SL_STATUS_E_RANGE, field, "too many values");
    float *vals = malloc(width * nr * sizeof *vals);
    if (!vals)
        return FAIL(c, SL_STATUS_E_NOMEM, field, "out of memory");
    for (size_t r = 0; r < nr; r++) {
        json_object *row = nested ? json_object_array_get_idx(v, r) : v;
        if (!json_object_is_type(row, json_type_array) || json_object_array_length(row) != width) {
            free(vals);
            return FAIL(c, SL_STATUS_E_ARG, field, "row %zu has %zu values, row 0 has %zu", r,
                        json_object_is_type(row, json_type_array) ? json_object_array_length(row) : 0, width);
        }
        for (size_t k = 0; k < width; k++) {
            sl_status rc = get_float(c, json_object_array_get_idx(row, k), field, &vals[r * width + k]);
            if (rc != SL_STATUS_OK) {
                free(vals);
                return rc;
            }
        }
    }
    *out = vals;
    *count = (int64_t)(width * nr);
    if (n_rows)
        *n_rows = (int32_t)nr;
    return SL_STATUS_OK;
}

static sl_status get_positions(const parse_ctx *c, json_object *v, sl_positions *out)
{
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        static const char *const names[] = {"all", "prompt", "generated"};
        for (int k = 0; k < 3; k++)
            if (strcmp(s, names[k]) == 0) {
                out->kind = (sl_positions_kind)k;
                return SL_STATUS_OK;
            }
        return FAIL(c, SL_STATUS_E_ARG, "positions", "expected \"all\", \"prompt\", \"generated\" or a list (got \"%.60s\")",
                    s);
    }
    int32_t *list = NULL, n = 0;
    sl_status rc = get_ints(c, v, "positions", &list, &n);
    if (rc != SL_STATUS_OK)
        return rc;
    *out = (sl_positions){SL_POSITIONS_LIST, list, n};
    return SL_STATUS_OK;
}

/* Fields each op kind takes, beyond hook, op and positions. */
static bool field_allowed(sl_op_kind kind, sl_hook_point pt, const char *key)
{
    static const char *const add_resid[] = {"vector", "scale", NULL}, *const add_z[] = {"vector", "scale", "head", NULL},
                             *const add_scores[] = {"heads", "keys", "value", NULL}, *const scale_z[] = {"heads", "factor", NULL},
                             *const set[] = {"values", NULL};
    const char *const *ok = kind == SL_OP_SET     ? set
                            : kind == SL_OP_SCALE ? scale_z /* the same fields on hook_attn_scores */
                            : pt == SL_HOOK_Z     ? add_z
                            : pt == SL_HOOK_ATTN_SCORES ? add_scores
                                                        : add_resid;
    if (!strcmp(key, "hook") || !strcmp(key, "op") || !strcmp(key, "positions"))
        return true;
    for (int k = 0; ok[k]; k++)
        if (!strcmp(key, ok[k]))
            return true;
    return false;
}

static sl_status parse_op(const parse_ctx *c, json_object *obj, sl_op *o)
{
    *o = sl_op_default();
    if (!json_object_is_type(obj, json_type_object))
        return sl_error_set(c->err, SL_STATUS_E_ARG, "%s: op %d: expected an object {\"hook\", \"op\", ...}", c->label,
                            c->index);
    json_object *hook, *op;
    if (!json_object_object_get_ex(obj, "hook", &hook) || !json_object_is_type(hook, json_type_string))
        return FAIL(c, SL_STATUS_E_ARG, "hook", "missing (a hook name such as \"blocks.6.hook_resid_post\")");
    sl_error e = {0};
    if (sl_hook_parse(c->m, json_object_get_string(hook), &o->hook, &e) != SL_STATUS_OK)
        return FAIL(c, e.code, "hook", "%s", e.msg);
    if (!json_object_object_get_ex(obj, "op", &op) || !json_object_is_type(op, json_type_string))
        return FAIL(c, SL_STATUS_E_ARG, "op", "missing (\"add\", \"scale\" or \"set\")");
    const char *kind = json_object_get_string(op);
    if (!strcmp(kind, "add"))
        o->kind = SL_OP_ADD;
    else if (!strcmp(kind, "scale"))
        o->kind = SL_OP_SCALE;
    else if (!strcmp(kind, "set"))
        o->kind = SL_OP_SET;
    else
        return FAIL(c, SL_STATUS_E_ARG, "op", "expected \"add\", \"scale\" or \"set\" (got \"%.40s\")", kind);
    int64_t width = sl_hook_width(c->m, o->hook);
    bool has_keys = false, has_value = false, has_head = false;
    json_object_object_foreach(obj, key, val)
    {
        if (!field_allowed(o->kind, o->hook.point, key))
            return FAIL(c, SL_STATUS_E_ARG, key, "not a field of '%s' on %s", kind, json_object_get_string(hook));
        sl_status rc = SL_STATUS_OK;
        if (!strcmp(key, "positions")) {
            rc = get_positions(c, val, &o->positions);
        } else if (!strcmp(key, "vector")) {
            float *v = NULL;
            rc = get_floats(c, val, key, false, &v, &o->n_vector, NULL);
            o->vector = v;
        } else if (!strcmp(key, "values")) {
            float *v = NULL;
            int64_t count = 0;
            rc = get_floats(c, val, key, true, &v, &count, &o->n_rows);
            o->values = v;
            if (rc == SL_STATUS_OK && count % width != 0)
                rc = FAIL(c, SL_STATUS_E_ARG, key, "%lld values are not rows of %lld", (long long)count, (long long)width);
            else if (rc == SL_STATUS_OK && o->n_rows > 0 && count != (int64_t)o->n_rows * width)
                rc = FAIL(c, SL_STATUS_E_ARG, key, "rows of %lld values, expected %lld", (long long)(count / o->n_rows),
                          (long long)width);
            if (rc == SL_STATUS_OK)
                o->n_rows = (int32_t)(count / width);
        } else if (!strcmp(key, "scale")) {
            rc = get_float(c, val, key, &o->scale);
        } else if (!strcmp(key, "factor")) {
            rc = get_float(c, val, key, &o->factor);
        } else if (!strcmp(key, "value")) {
            rc = get_float(c, val, key, &o->value);
            has_value = true;
        } else if (!strcmp(key, "head")) {
            rc = get_int(c, val, key, 0, &o->head);
            has_head = true;
        } else if (!strcmp(key, "heads")) {
            if (json_object_is_type(val, json_type_string) && !strcmp(json_object_get_string(val), "all"))
                continue;
            int32_t *heads = NULL;
            rc = get_ints(c, val, key, &heads, &o->n_heads);
            o->heads = heads;
        } else if (!strcmp(key, "keys")) {
            if (!json_object_is_type(val, json_type_array) || json_object_array_length(val) != 2)
                return FAIL(c, SL_STATUS_E_ARG, key, "expected [start, end)");
            if ((rc = get_int(c, json_object_array_get_idx(val, 0), key, 0, &o->key_begin)) == SL_STATUS_OK)
                rc = get_int(c, json_object_array_get_idx(val, 1), key, 0, &o->key_end);
            has_keys = true;
        }
        if (rc != SL_STATUS_OK)
            return rc;
    }
    if (o->kind == SL_OP_ADD && o->hook.point == SL_HOOK_ATTN_SCORES) {
        if (!has_keys)
            return FAIL(c, SL_STATUS_E_ARG, "keys", "missing ([start, end) of the keys to bias)");
        if (!has_value)
            return FAIL(c, SL_STATUS_E_ARG, "value", "missing (the bias, e.g. log(alpha))");
    } else if (o->kind == SL_OP_ADD && o->hook.point == SL_HOOK_Z && !has_head) {
        return FAIL(c, SL_STATUS_E_ARG, "head", "missing (the head whose slice the vector is added to)");
    }
    return SL_STATUS_OK;
}

static void free_parsed(sl_op *ops, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        free((void *)ops[i].vector);
        free((void *)ops[i].heads);
        free((void *)ops[i].values);
        free((void *)ops[i].positions.list);
    }
    free(ops);
}

/* Names and values quoted from the spec may hold control characters (JSON escapes): a message
 * stays one line. */
static void one_line(sl_error *err)
{
    if (!err)
        return;
    for (char *c = err->msg; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
}

static sl_intervention *parse_spec(const sl_model *m, const char *json, size_t len, const char *label,
                                   const char *base_dir, sl_error *err);

sl_intervention *sl_intervention_parse(const sl_model *m, const char *json, size_t len, const char *label,
                                       const char *base_dir, sl_error *err)
{
    sl_intervention *iv = parse_spec(m, json, len, label, base_dir, err);
    if (!iv)
        one_line(err);
    return iv;
}

static sl_intervention *parse_spec(const sl_model *m, const char *json, size_t len, const char *label,
                                   const char *base_dir, sl_error *err)
{
    sl_error_clear(err);
    label = label ? label : "intervention";
    if (!m || !json) {
        sl_error_set(err, SL_STATUS_E_ARG, "%s: no model or no text", label);
        return NULL;
    }
    json_object *root = NULL;
    if (sl_json_parse(label, json, len, &root, err) != SL_STATUS_OK)
        return NULL;
    if (!json_object_is_type(root, json_type_array)) {
        json_object_put(root);
        sl_error_set(err, SL_STATUS_E_ARG, "%s: expected a list of ops [{\"hook\": ..., \"op\": ...}, ...]", label);
        return NULL;
    }
    size_t n = json_object_array_length(root);
    if (n > MAX_OPS) {
        json_object_put(root);
        sl_error_set(err, SL_STATUS_E_RANGE, "%s: %zu ops (at most %d)", label, n, MAX_OPS);
        return NULL;
    }
    sl_op *ops = calloc(n ? n : 1, sizeof *ops);
    if (!ops) {
        json_object_put(root);
        sl_error_set(err, SL_STATUS_E_NOMEM, "%s: out of memory", label);
        return NULL;
    }
    parse_ctx c = {m, label, base_dir, 0, err};
    sl_intervention *iv = NULL;
    int32_t parsed = 0;
    for (; parsed < (int32_t)n; parsed++) {
        c.index = parsed;
        if (parse_op(&c, json_object_array_get_idx(root, (size_t)parsed), &ops[parsed]) != SL_STATUS_OK) {
            parsed++; /* its arrays are freed too */
            goto done;
        }
    }
    iv = sl_intervention_build(m, ops, (int32_t)n, label, err);
done:
    free_parsed(ops, parsed);
    json_object_put(root);
    return iv;
}
