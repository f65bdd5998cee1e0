/* slua.Intervention, slua.Tensor and the session's hook methods: interventions, prompt length,
 * captures and Lua hook functions (sl_intervene.h).
 *
 *   local iv = model:intervention(json_text [, label [, base_dir]])
 *   session:intervene(iv | nil)            session:set_prompt_length(n)
 *   session:capture({"blocks.1.hook_resid_post", ...} [, positions])
 *   session:captured("blocks.1.hook_resid_post") -> Tensor
 *   session:hook("blocks.1.hook_resid_post", function(view) ... end | nil)
 * Tensors are float32 arrays with a shape, indexed from 1 as Lua tables are. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "l_util.h"

#define L_INTERVENTION "slua.Intervention"
#define L_HOOKVIEW "slua.HookView"

/* ------------------------------------------------------------------ tensors */

l_tensor *l_newtensor(lua_State *L, int32_t ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int32_t d = 0; d < ndim; d++) {
        if (shape[d] < 0 || (shape[d] > 0 && n > (INT64_C(1) << 31) / shape[d]))
            luaL_error(L, "tensor: shape too large");
        n *= shape[d];
    }
    l_tensor *t = lua_newuserdatauv(L, sizeof *t + (size_t)n * sizeof(float), 0);
    t->ndim = ndim;
    for (int32_t d = 0; d < 4; d++)
        t->shape[d] = d < ndim ? shape[d] : 1;
    t->n = n;
    luaL_setmetatable(L, L_TENSOR);
    return t;
}

l_tensor *l_checktensor(lua_State *L, int idx) { return luaL_checkudata(L, idx, L_TENSOR); }

/* Depth and sizes of a nested table of numbers; raises on ragged or non-numeric entries. */
static void table_shape(lua_State *L, int idx, int32_t depth, int32_t *ndim, int64_t *shape)
{
    lua_Integer n = luaL_len(L, idx);
    if (n < 1)
        luaL_error(L, "tensor: empty list at depth %d", (int)depth + 1);
    if (depth >= 4) {
        luaL_error(L, "tensor: more than 4 dimensions");
        return;
    }
    if (depth >= *ndim) {
        *ndim = depth + 1;
        shape[depth] = n;
    } else if (shape[depth] != n) {
        luaL_error(L, "tensor: ragged list at depth %d (%d entries, expected %d)", (int)depth + 1, (int)n,
                   (int)shape[depth]);
    }
    lua_geti(L, idx, 1);
    bool nested = lua_istable(L, -1);
    lua_pop(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, idx, i);
        if (nested != (lua_istable(L, -1) != 0) || (!nested && !lua_isnumber(L, -1)))
            luaL_error(L, "tensor: entry %d at depth %d is not %s", (int)i, (int)depth + 1,
                       nested ? "a list" : "a number");
        if (nested)
            table_shape(L, lua_gettop(L), depth + 1, ndim, shape);
        lua_pop(L, 1);
    }
}

static void table_fill(lua_State *L, int idx, float **dst)
{
    lua_Integer n = luaL_len(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, idx, i);
        if (lua_istable(L, -1))
            table_fill(L, lua_gettop(L), dst);
        else
            *(*dst)++ = (float)lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
}

/* core.tensor({...} | {{...}, ...}) -> Tensor */
static int l_tensor_new(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int32_t ndim = 0;
    int64_t shape[4] = {0};
    table_shape(L, 1, 0, &ndim, shape);
    l_tensor *t = l_newtensor(L, ndim, shape);
    float *p = t->v;
    table_fill(L, 1, &p);
    return 1;
}

static int l_tensor_shape(lua_State *L)
{
    l_tensor *t = l_checktensor(L, 1);
    lua_createtable(L, t->ndim, 0);
    for (int32_t d = 0; d < t->ndim; d++) {
        lua_pushinteger(L, t->shape[d]);
        lua_rawseti(L, -2, d + 1);
    }
    return 1;
}

static int l_tensor_len(lua_State *L)
{
    lua_pushinteger(L, l_checktensor(L, 1)->n);
    return 1;
}

static void push_nested(lua_State *L, const l_tensor *t, int32_t d, const float **p)
{
    luaL_checkstack(L, 3, "tensor");
    if (d < 0 || d >= 4)
        return;
    lua_createtable(L, (int)t->shape[d], 0);
    for (int64_t i = 0; i < t->shape[d]; i++) {
        if (d + 1 < t->ndim)
            push_nested(L, t, d + 1, p);
        else
            lua_pushnumber(L, *(*p)++);
        lua_rawseti(L, -2, i + 1);
    }
}

/* t:totable() -> nested tables of numbers (a 0-d tensor: a number) */
static int l_tensor_totable(lua_State *L)
{
    l_tensor *t = l_checktensor(L, 1);
    const float *p = t->v;
    if (t->ndim == 0)
        lua_pushnumber(L, t->v[0]);
    else
        push_nested(L, t, 0, &p);
    return 1;
}

/* t:get(i, j, ...) with 1-based indices, one per dimension */
static int l_tensor_get(lua_State *L)
{
    l_tensor *t = l_checktensor(L, 1);
    int64_t off = 0;
    for (int32_t d = 0; d < t->ndim; d++) {
        lua_Integer i = luaL_checkinteger(L, d + 2);
        if (i < 1 || i > t->shape[d])
            return luaL_argerror(L, d + 2, lua_pushfstring(L, "index %d out of range [1, %d]", (int)i, (int)t->shape[d]));
        off = off * t->shape[d] + (i - 1);
    }
    lua_pushnumber(L, t->v[off]);
    return 1;
}

/* t:row(i) -> Tensor: entry i (1-based) of the first dimension */
static int l_tensor_row(lua_State *L)
{
    l_tensor *t = l_checktensor(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    if (t->ndim < 1 || i < 1 || i > t->shape[0])
        return luaL_argerror(L, 2, lua_pushfstring(L, "row %d out of range [1, %d]", (int)i, (int)t->shape[0]));
    int64_t per = t->n / t->shape[0];
    l_tensor *r = l_newtensor(L, t->ndim - 1, t->shape + 1);
    memcpy(r->v, t->v + (i - 1) * per, (size_t)per * sizeof(float));
    return 1;
}

/* t:flat() -> Tensor of one dimension */
static int l_tensor_flat(lua_State *L)
{
    l_tensor *t = l_checktensor(L, 1);
    l_tensor *r = l_newtensor(L, 1, &t->n);
    memcpy(r->v, t->v, (size_t)t->n * sizeof(float));
    return 1;
}

/* t:mean() -> Tensor: the mean over the first dimension (in double, rounded once) */
static int l_tensor_mean(lua_State *L)
{
    l_tensor *t = l_checktensor(L, 1);
    if (t->ndim < 1 || t->shape[0] < 1)
        return luaL_argerror(L, 1, "mean of an empty tensor");
    int64_t rows = t->shape[0], per = t->n / rows;
    double *acc = calloc((size_t)per, sizeof *acc);
    if (!acc)
        return luaL_error(L, "tensor: out of memory");
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < per; k++)
            acc[k] += t->v[r * per + k];
    lua_settop(L, 1);
    void **box = l_newcbox(L);
    *box = acc;
    l_tensor *m = l_newtensor(L, t->ndim - 1, t->shape + 1);
    for (int64_t k = 0; k < per; k++)
        m->v[k] = (float)(acc[k] / (double)rows);
    return 1;
}

static l_tensor *check_same(lua_State *L, int idx, const l_tensor *t)
{
    l_tensor *u = l_checktensor(L, idx);
    if (u->n != t->n)
        luaL_argerror(L, idx, lua_pushfstring(L, "%d values, expected %d", (int)u->n, (int)t->n));
    return u;
}

/* t:add(u [, scale]) / t:sub(u) -> new Tensor t + scale * u (t's shape) */
static int tensor_axpy(lua_State *L, float sign)
{
    l_tensor *t = l_checktensor(L, 1);
    l_tensor *u = check_same(L, 2, t);
    float s = sign * (float)luaL_optnumber(L, 3, 1.0);
    l_tensor *r = l_newtensor(L, t->ndim, t->shape);
    for (int64_t k = 0; k < t->n; k++)
        r->v[k] = t->v[k] + s * u->v[k];
    return 1;
}
static int l_tensor_add(lua_State *L) { return tensor_axpy(L, 1.0f); }
static int l_tensor_sub(lua_State *L) { return tensor_axpy(L, -1.0f); }

/* t:scale(s) -> new Tensor s * t */
static int l_tensor_scale(lua_State *L)
{
    l_tensor *t = l_checktensor(L, 1);
    float s = (float)luaL_checknumber(L, 2);
    l_tensor *r = l_newtensor(L, t->ndim, t->shape);
    for (int64_t k = 0; k < t->n; k++)
        r->v[k] = s * t->v[k];
    return 1;
}

static double dot(const float *a, const float *b, int64_t n)
{
    double d = 0;
    for (int64_t k = 0; k < n; k++)
        d += (double)a[k] * b[k];
    return d;
}

/* t:dot(u) -> number; t:norm() -> number (Euclidean, in double) */
static int l_tensor_dot(lua_State *L)
{
    l_tensor *t = l_checktensor(L, 1);
    l_tensor *u = check_same(L, 2, t);
    lua_pushnumber(L, dot(t->v, u->v, t->n));
    return 1;
}

static int l_tensor_norm(lua_State *L)
{
    l_tensor *t = l_checktensor(L, 1);
    lua_pushnumber(L, sqrt(dot(t->v, t->v, t->n)));
    return 1;
}

/* t:project(u) -> new Tensor (t·u / u·u) u: t's component along u (zero when u is zero) */
static int l_tensor_project(lua_State *L)
{
    l_tensor *t = l_checktensor(L, 1);
    l_tensor *u = check_same(L, 2, t);
    double uu = dot(u->v, u->v, u->n), c = uu > 0 ? dot(t->v, u->v, t->n) / uu : 0.0;
    l_tensor *r = l_newtensor(L, t->ndim, t->shape);
    for (int64_t k = 0; k < t->n; k++)
        r->v[k] = (float)(c * u->v[k]);
    return 1;
}

static int l_tensor_tostring(lua_State *L)
{
    l_tensor *t = l_checktensor(L, 1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "Tensor[");
    for (int32_t d = 0; d < t->ndim; d++) {
        lua_pushfstring(L, d ? "x%d" : "%d", (int)t->shape[d]);
        luaL_addvalue(&b);
    }
    luaL_addstring(&b, "]");
    luaL_pushresult(&b);
    return 1;
}

/* core.load_tensors(path) -> {name = Tensor, ...} (F16 and BF16 widened to float32), or nil,
 * message for a file that cannot be read. At most 4 dimensions. */
static int l_load_tensors(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    sl_tensor_f32 *ts = NULL;
    int32_t n = 0;
    sl_error err;
    if (sl_safetensors_read(path, &ts, &n, &err) != SL_STATUS_OK)
        return l_pushfail(L, &err);
    for (int32_t i = 0; i < n; i++)
        if (ts[i].ndim > 4) {
            lua_pushnil(L);
            lua_pushfstring(L, "%s: tensor '%s' has %d dimensions (at most 4)", path, ts[i].name, (int)ts[i].ndim);
            sl_tensors_f32_free(ts, n);
            return 2;
        }
    lua_createtable(L, 0, n);
    for (int32_t i = 0; i < n; i++) {
        l_tensor *t = lua_newuserdatauv(L, sizeof *t + (size_t)ts[i].n * sizeof(float), 0);
        t->ndim = ts[i].ndim;
        for (int32_t d = 0; d < 4; d++)
            t->shape[d] = d < ts[i].ndim ? ts[i].shape[d] : 1;
        t->n = ts[i].n;
        memcpy(t->v, ts[i].data, (size_t)ts[i].n * sizeof(float));
        luaL_setmetatable(L, L_TENSOR);
        lua_setfield(L, -2, ts[i].name);
    }
    sl_tensors_f32_free(ts, n);
    return 1;
}

/* t:top(k) -> { {index, value}, ... }: the k largest values of the flattened tensor, descending
 * (ties by ascending index), indices 1-based. */
static int l_tensor_top(lua_State *L)
{
    l_tensor *t = l_checktensor(L, 1);
    lua_Integer k = luaL_checkinteger(L, 2);
    luaL_argcheck(L, k >= 0, 2, "k must be >= 0");
    luaL_argcheck(L, t->n <= INT32_MAX, 1, "tensor too large");
    if (k > t->n)
        k = t->n;
    sl_token *ids = lua_newuserdatauv(L, (size_t)(k ? k : 1) * sizeof *ids, 0);
    float *vals = lua_newuserdatauv(L, (size_t)(k ? k : 1) * sizeof *vals, 0);
    int32_t got = sl_ops_top_k(t->v, (int32_t)t->n, (int32_t)k, ids, vals);
    lua_createtable(L, got, 0);
    for (int32_t i = 0; i < got; i++) {
        lua_createtable(L, 2, 0);
        lua_pushinteger(L, (lua_Integer)ids[i] + 1);
        lua_rawseti(L, -2, 1);
        lua_pushnumber(L, vals[i]);
        lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* core.save_tensors(path, {name = Tensor, ...}) -> true | nil, message */
static int l_save_tensors(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int32_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) != LUA_TSTRING || !luaL_testudata(L, -1, L_TENSOR))
            return luaL_argerror(L, 2, "expected {name = Tensor, ...}");
        n++;
        lua_pop(L, 1);
    }
    /* names sorted, so the file does not depend on table order */
    lua_createtable(L, n, 0);
    int list = lua_gettop(L);
    int32_t k = 0;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, list, ++k);
    }
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, list);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    const char **names = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *names, 0);
    const float **data = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *data, 0);
    const int64_t **shapes = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *shapes, 0);
    int32_t *ndims = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *ndims, 0);
    for (int32_t i = 0; i < n; i++) {
        lua_rawgeti(L, list, i + 1);
        names[i] = lua_tostring(L, -1);
        lua_gettable(L, 2);
        l_tensor *t = lua_touserdata(L, -1);
        data[i] = t->v;
        shapes[i] = t->shape;
        ndims[i] = t->ndim;
        lua_pop(L, 1);
    }
    sl_error err;
    if (sl_safetensors_write(path, names, data, shapes, ndims, n, &err) != SL_STATUS_OK)
        return l_pushfail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

/* ------------------------------------------------------------------ interventions */

static sl_intervention *check_intervention(lua_State *L, int idx) { return l_checkopen(L, idx, L_INTERVENTION); }

static int l_intervention_gc(lua_State *L)
{
    l_box *b = luaL_checkudata(L, 1, L_INTERVENTION);
    sl_intervention_free(b->ptr);
    b->ptr = NULL;
    return 0;
}

static int l_intervention_len(lua_State *L)
{
    lua_pushinteger(L, sl_intervention_count(check_intervention(L, 1)));
    return 1;
}

/* Hooks of the ops, in order: {"blocks.1.hook_resid_post", ...} */
static int l_intervention_hooks(lua_State *L)
{
    sl_intervention *iv = check_intervention(L, 1);
    int32_t n = sl_intervention_count(iv);
    lua_createtable(L, n, 0);
    for (int32_t i = 0; i < n; i++) {
        char name[64];
        sl_hook_name(sl_intervention_op(iv, i)->hook, name, sizeof name);
        lua_pushstring(L, name);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* model:intervention(json_text [, label [, base_dir]]) -> Intervention (raises with the
 * message naming the op and field) */
int l_model_intervention(lua_State *L)
{
    sl_model *m = l_checkopen(L, 1, L_MODEL);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    const char *label = luaL_optstring(L, 3, "intervention");
    const char *base = luaL_optstring(L, 4, NULL);
    l_box *b = l_newbox(L, L_INTERVENTION, 0);
    sl_error err;
    b->ptr = sl_intervention_parse(m, text, len, label, base, &err);
    if (!b->ptr)
        return l_raise(L, &err);
    return 1;
}

sl_intervention *l_optintervention(lua_State *L, int idx)
{
    return lua_isnoneornil(L, idx) || (lua_isboolean(L, idx) && !lua_toboolean(L, idx)) ? NULL
                                                                                         : check_intervention(L, idx);
}

static int failure_tostring(lua_State *L)
{
    lua_getfield(L, 1, "message");
    return 1;
}

/* An op of the spec on a block the session skips is the spec's fault, as a bad field is: a
 * clean usage failure (the host prints the message alone and exits 2); other errors raise. */
int l_raise_intervention(lua_State *L, const sl_intervention *iv, const uint8_t *skipped, const sl_error *err)
{
    bool spec = false;
    for (int32_t k = 0; k < sl_intervention_count(iv) && !spec; k++)
        spec = skipped[sl_intervention_op(iv, k)->hook.block] != 0;
    if (!spec)
        return l_raise(L, err);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, err->msg);
    lua_setfield(L, -2, "message");
    lua_pushinteger(L, 2);
    lua_setfield(L, -2, "code");
    if (luaL_newmetatable(L, "slua.UsageFailure")) {
        lua_pushcfunction(L, failure_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_setmetatable(L, -2);
    return lua_error(L);
}

/* session:intervene(iv | nil) -> session */
static int l_session_intervene(lua_State *L)
{
    l_session_box *s = l_checksession(L, 1);
    sl_intervention *iv = l_optintervention(L, 2);
    sl_error err;
    if (sl_session_set_intervention(s->s, iv, &err) != SL_STATUS_OK) {
        uint8_t *skipped = lua_newuserdatauv(L, (size_t)sl_model_n_layer(sl_session_model(s->s)), 0);
        sl_session_get_skip(s->s, skipped);
        return l_raise_intervention(L, iv, skipped, &err);
    }
    lua_settop(L, 1);
    return 1;
}

/* session:set_prompt_length(n | nil): nil = the end of the next eval from position 0 */
static int l_session_set_prompt_length(lua_State *L)
{
    l_session_box *s = l_checksession(L, 1);
    lua_Integer n = luaL_optinteger(L, 2, -1);
    if (n < -1 || n > INT32_MAX)
        return luaL_argerror(L, 2, "negative or too large");
    sl_error err;
    if (sl_session_set_prompt_length(s->s, (int32_t)n, &err) != SL_STATUS_OK)
        return l_raise(L, &err);
    lua_settop(L, 1);
    return 1;
}

static int l_session_prompt_length(lua_State *L)
{
    lua_pushinteger(L, sl_session_prompt_length(l_checksession(L, 1)->s));
    return 1;
}

static sl_hook check_hook(lua_State *L, int idx, const sl_session *s)
{
    const char *name = luaL_checkstring(L, idx);
    sl_hook h;
    sl_error err;
    if (sl_hook_parse(sl_session_model(s), name, &h, &err) != SL_STATUS_OK)
        l_raise(L, &err);
    return h;
}

/* "all" | "prompt" | "generated" | {positions...}; a list is left on the stack */
static sl_positions check_positions(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return (sl_positions){SL_POSITIONS_ALL, NULL, 0};
    if (lua_type(L, idx) == LUA_TSTRING) {
        static const char *const names[] = {"all", "prompt", "generated", NULL};
        return (sl_positions){(sl_positions_kind)luaL_checkoption(L, idx, NULL, names), NULL, 0};
    }
    int32_t n;
    int32_t *list = l_checkintarray(L, idx, &n, "positions");
    for (int32_t i = 0; i < n; i++)
        if (list[i] < 0)
            luaL_argerror(L, idx, "negative position");
    return (sl_positions){SL_POSITIONS_LIST, list, n};
}

/* session:capture({hook names} [, positions]) -> session; an empty list stops capturing */
static int l_session_capture(lua_State *L)
{
    lua_settop(L, 3);
    l_session_box *s = l_checksession(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 2);
    if (n > 4096)
        return luaL_argerror(L, 2, "too many hooks");
    sl_hook *hooks = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *hooks, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 2, i);
        hooks[i - 1] = check_hook(L, lua_gettop(L), s->s);
        lua_pop(L, 1);
    }
    sl_positions pos = check_positions(L, 3);
    sl_error err;
    if (sl_session_capture(s->s, hooks, (int32_t)n, pos, &err) != SL_STATUS_OK)
        return l_raise(L, &err);
    lua_settop(L, 1);
    return 1;
}

/* session:captured(hook) -> Tensor, {positions} */
static int l_session_captured(lua_State *L)
{
    l_session_box *s = l_checksession(L, 1);
    sl_hook h = check_hook(L, 2, s->s);
    sl_capture_view v;
    sl_error err;
    if (sl_session_captured(s->s, h, &v, &err) != SL_STATUS_OK)
        return l_raise(L, &err);
    l_tensor *t = l_newtensor(L, v.ndim, v.shape);
    memcpy(t->v, v.data, (size_t)t->n * sizeof(float));
    l_pushintarray(L, v.positions, v.n_pos);
    return 2;
}

/* ------------------------------------------------------------------ Lua hook functions */

/* The rows handed to a Lua function for the length of its call. */
typedef struct l_hookview {
    float *rows;
    int32_t n_rows;
    int64_t width;
    const int32_t *positions;
} l_hookview;

static l_hookview *check_view(lua_State *L)
{
    l_hookview *v = luaL_checkudata(L, 1, L_HOOKVIEW);
    if (!v->rows)
        luaL_error(L, "hook view used after its hook returned");
    return v;
}

static int view_row_index(lua_State *L, const l_hookview *v, int idx)
{
    lua_Integer i = luaL_checkinteger(L, idx);
    if (i < 1 || i > v->n_rows)
        luaL_argerror(L, idx, lua_pushfstring(L, "row %d out of range [1, %d]", (int)i, (int)v->n_rows));
    return (int)i - 1;
}

/* view:rows(), view:width(), view:position(i) */
static int l_view_rows(lua_State *L)
{
    lua_pushinteger(L, check_view(L)->n_rows);
    return 1;
}
static int l_view_width(lua_State *L)
{
    lua_pushinteger(L, check_view(L)->width);
    return 1;
}
static int l_view_position(lua_State *L)
{
    l_hookview *v = check_view(L);
    lua_pushinteger(L, v->positions[view_row_index(L, v, 2)]);
    return 1;
}

/* view:row(i) -> Tensor copy of row i */
static int l_view_row(lua_State *L)
{
    l_hookview *v = check_view(L);
    int i = view_row_index(L, v, 2);
    l_tensor *t = l_newtensor(L, 1, &v->width);
    memcpy(t->v, v->rows + (int64_t)i * v->width, (size_t)v->width * sizeof(float));
    return 1;
}

/* view:set_row(i, tensor) and view:add_row(i, tensor [, scale]): in place */
static int view_write(lua_State *L, bool add)
{
    l_hookview *v = check_view(L);
    int i = view_row_index(L, v, 2);
    l_tensor *t = l_checktensor(L, 3);
    if (t->n != v->width)
        return luaL_argerror(L, 3, lua_pushfstring(L, "%d values, the row has %d", (int)t->n, (int)v->width));
    float s = (float)luaL_optnumber(L, 4, 1.0);
    float *row = v->rows + (int64_t)i * v->width;
    for (int64_t k = 0; k < v->width; k++)
        row[k] = add ? row[k] + s * t->v[k] : t->v[k];
    return 0;
}
static int l_view_set_row(lua_State *L) { return view_write(L, false); }
static int l_view_add_row(lua_State *L) { return view_write(L, true); }

/* A registered function runs on its own Lua thread, which holds the function at stack index 1
 * and is kept alive by the function's box (reachable from the session), so it can be called
 * whatever coroutine evaluates the session. */
typedef struct l_hookfn {
    lua_State *T;
} l_hookfn;

static bool call_lua_hook(void *user, sl_hook hook, float *rows, int32_t n_rows, int64_t width,
                          const int32_t *positions, sl_error *err)
{
    lua_State *T = ((l_hookfn *)user)->T;
    lua_settop(T, 1);
    lua_pushvalue(T, 1);
    l_hookview *v = lua_newuserdatauv(T, sizeof *v, 0);
    *v = (l_hookview){rows, n_rows, width, positions};
    luaL_setmetatable(T, L_HOOKVIEW);
    char name[64];
    sl_hook_name(hook, name, sizeof name);
    lua_pushstring(T, name);
    int rc = lua_pcall(T, 2, 0, 0);
    v->rows = NULL; /* the view dies with the call */
    if (rc != LUA_OK) {
        const char *msg = lua_tostring(T, -1);
        err->code = SL_STATUS_E_STATE;
        snprintf(err->msg, sizeof err->msg, "hook function at %s: %s", name, msg ? msg : "(error object)");
    }
    lua_settop(T, 1);
    return rc == LUA_OK;
}

/* session:hook(name, fn(view, hook_name) | nil) -> session */
static int l_session_hook(lua_State *L)
{
    lua_settop(L, 3);
    l_session_box *s = l_checksession(L, 1);
    sl_hook h = check_hook(L, 2, s->s);
    if (!lua_isnil(L, 3))
        luaL_checktype(L, 3, LUA_TFUNCTION);
    /* the session's table of function boxes (its uservalue 3), by hook name */
    lua_getiuservalue(L, 1, 3);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, 3);
    }
    int fns = lua_gettop(L);
    l_hookfn *f = NULL;
    if (!lua_isnil(L, 3)) {
        f = lua_newuserdatauv(L, sizeof *f, 1);
        f->T = lua_newthread(L);
        lua_setiuservalue(L, -2, 1);
        lua_pushvalue(L, 3);
        lua_xmove(L, f->T, 1);
    }
    sl_error err;
    if (sl_session_set_hook_fn(s->s, h, f ? call_lua_hook : NULL, f, &err) != SL_STATUS_OK)
        return l_raise(L, &err);
    char name[64];
    sl_hook_name(h, name, sizeof name);
    if (!f)
        lua_pushnil(L);
    lua_setfield(L, fns, name);
    lua_settop(L, 1);
    return 1;
}

/* ------------------------------------------------------------------ registration */

void sl_lua_open_intervene(lua_State *L)
{
    static const luaL_Reg tensor_methods[] = {
        {"shape", l_tensor_shape}, {"len", l_tensor_len},     {"totable", l_tensor_totable}, {"get", l_tensor_get},
        {"row", l_tensor_row},     {"flat", l_tensor_flat},   {"mean", l_tensor_mean},       {"add", l_tensor_add},
        {"sub", l_tensor_sub},     {"scale", l_tensor_scale}, {"dot", l_tensor_dot},         {"norm", l_tensor_norm},
        {"project", l_tensor_project}, {"top", l_tensor_top}, {NULL, NULL}};
    static const luaL_Reg tensor_meta[] = {{"__len", l_tensor_len}, {"__tostring", l_tensor_tostring}, {NULL, NULL}};
    l_newclass(L, L_TENSOR, tensor_methods, tensor_meta);
    static const luaL_Reg iv_methods[] = {{"hooks", l_intervention_hooks}, {NULL, NULL}};
    static const luaL_Reg iv_meta[] = {{"__gc", l_intervention_gc}, {"__len", l_intervention_len}, {NULL, NULL}};
    l_newclass(L, L_INTERVENTION, iv_methods, iv_meta);
    static const luaL_Reg view_methods[] = {{"rows", l_view_rows},       {"width", l_view_width},
                                            {"position", l_view_position}, {"row", l_view_row},
                                            {"set_row", l_view_set_row}, {"add_row", l_view_add_row},
                                            {NULL, NULL}};
    l_newclass(L, L_HOOKVIEW, view_methods, NULL);
    static const luaL_Reg session_methods[] = {{"intervene", l_session_intervene},
                                               {"set_prompt_length", l_session_set_prompt_length},
                                               {"prompt_length", l_session_prompt_length},
                                               {"capture", l_session_capture},
                                               {"captured", l_session_captured},
                                               {"hook", l_session_hook},
                                               {NULL, NULL}};
    l_addmethods(L, L_SESSION, session_methods);
}

void sl_lua_register_intervene(lua_State *L)
{
    static const luaL_Reg fns[] = {{"tensor", l_tensor_new}, {"save_tensors", l_save_tensors},
                                   {"load_tensors", l_load_tensors}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
