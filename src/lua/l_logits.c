/* slua.Logits (a float vector indexed by 0-based token id), slua.Mask and slua.Rng.
 *
 * Named methods mutate in place and return self, so they chain with the processors and warpers
 * of l_processors.c: scores:add(bias):temperature(0.7):keep_top_k(50).
 * Operators (a - b, a * 2) and :clone() allocate new vectors. Token ids are 0-based as in
 * tokenizer.json and are only reached through :get(id) / :set(id, v). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "l_util.h"

static sl_token check_id(lua_State *L, int idx, const l_logits *x)
{
    lua_Integer id = luaL_checkinteger(L, idx);
    if (id < 0 || id >= x->n)
        luaL_argerror(L, idx, lua_pushfstring(L, "token id %d out of range [0, %d]", (int)id, (int)x->n - 1));
    return (sl_token)id;
}

static l_logits *check_same_size(lua_State *L, int idx, const l_logits *x)
{
    l_logits *y = l_checklogits(L, idx);
    if (y->n != x->n)
        luaL_argerror(L, idx, lua_pushfstring(L, "size %d does not match %d", (int)y->n, (int)x->n));
    return y;
}

/* ------------------------------------------------------------------ construction */

/* core.logits(n [, fill]) or core.logits({v1, v2, ...}) -> Logits */
static int l_logits_new(lua_State *L)
{
    if (lua_istable(L, 1)) {
        lua_Integer n = luaL_len(L, 1);
        if (n < 1 || n > INT32_MAX / 8)
            return luaL_argerror(L, 1, "empty or too long");
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, 1, i);
            if (!lua_isnumber(L, -1))
                return luaL_argerror(L, 1, lua_pushfstring(L, "entry %d is not a number", (int)i));
            lua_pop(L, 1);
        }
        l_logits *x = l_newlogits(L, (int32_t)n);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, 1, i);
            x->v[i - 1] = (float)lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
        return 1;
    }
    lua_Integer n = luaL_checkinteger(L, 1);
    float fill = (float)luaL_optnumber(L, 2, 0.0);
    if (n < 1 || n > INT32_MAX / 8)
        return luaL_argerror(L, 1, "size out of range");
    l_logits *x = l_newlogits(L, (int32_t)n);
    for (int32_t i = 0; i < x->n; i++)
        x->v[i] = fill;
    return 1;
}

static int l_logits_clone(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    l_logits *y = l_newlogits(L, x->n);
    memcpy(y->v, x->v, (size_t)x->n * sizeof(float));
    return 1;
}

static int l_logits_len(lua_State *L)
{
    lua_pushinteger(L, l_checklogits(L, 1)->n);
    return 1;
}

static int l_logits_get(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    lua_pushnumber(L, x->v[check_id(L, 2, x)]);
    return 1;
}

static int l_logits_set(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    sl_token id = check_id(L, 2, x);
    x->v[id] = (float)luaL_checknumber(L, 3);
    lua_settop(L, 1);
    return 1;
}

/* x:totable() -> Lua array; entry i + 1 holds token id i. */
static int l_logits_totable(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    lua_createtable(L, x->n, 0);
    for (int32_t i = 0; i < x->n; i++) {
        lua_pushnumber(L, x->v[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_logits_tostring(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    lua_pushfstring(L, "slua.Logits(n=%d)", (int)x->n);
    return 1;
}

/* ------------------------------------------------------------------ reductions */

static int l_logits_argmax(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    lua_pushinteger(L, sl_ops_argmax(x->v, x->n));
    return 1;
}

/* x:top(k) -> { {id, value}, ... } best first, ties by lower id */
static int l_logits_top(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    lua_Integer k = luaL_optinteger(L, 2, 8);
    if (k < 1)
        return luaL_argerror(L, 2, "k must be >= 1");
    if (k > x->n)
        k = x->n;
    luaL_checkstack(L, 4, "top");
    sl_token *ids = lua_newuserdatauv(L, (size_t)k * sizeof *ids, 0);
    float *vals = lua_newuserdatauv(L, (size_t)k * sizeof *vals, 0);
    int32_t got = sl_ops_top_k(x->v, x->n, (int32_t)k, ids, vals);
    lua_createtable(L, got, 0);
    for (int32_t i = 0; i < got; i++) {
        lua_createtable(L, 2, 0);
        lua_pushinteger(L, ids[i]);
        lua_rawseti(L, -2, 1);
        lua_pushnumber(L, vals[i]);
        lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_logits_max(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    sl_token id = sl_ops_argmax(x->v, x->n);
    lua_pushnumber(L, id >= 0 ? x->v[id] : NAN);
    lua_pushinteger(L, id);
    return 2;
}

/* x:nonfinite() -> number of NaN, +inf and -inf entries (a health check on model outputs) */
static int l_logits_nonfinite(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    lua_Integer nan = 0, pos = 0, neg = 0;
    for (int32_t i = 0; i < x->n; i++) {
        float v = x->v[i];
        nan += isnan(v);
        pos += isinf(v) && v > 0;
        neg += isinf(v) && v < 0;
    }
    lua_pushinteger(L, nan);
    lua_pushinteger(L, pos);
    lua_pushinteger(L, neg);
    return 3;
}

static int l_logits_entropy(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    lua_pushnumber(L, sl_ops_entropy(x->v, x->n));
    return 1;
}

static int l_logits_logsumexp(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    lua_pushnumber(L, sl_ops_logsumexp(x->v, x->n));
    return 1;
}

static int l_logits_kl(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    l_logits *y = check_same_size(L, 2, x);
    lua_pushnumber(L, sl_ops_kl(x->v, y->v, x->n));
    return 1;
}

static int l_logits_js(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    l_logits *y = check_same_size(L, 2, x);
    lua_pushnumber(L, sl_ops_js(x->v, y->v, x->n));
    return 1;
}

/* final:dola_divergence(premature) -> HF's ½[KL(M‖P)+KL(M‖Q)]/V */
static int l_logits_dola_divergence(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    l_logits *y = check_same_size(L, 2, x);
    lua_pushnumber(L, sl_ops_dola_divergence(x->v, y->v, x->n));
    return 1;
}

/* ------------------------------------------------------------------ in-place transforms */

static int l_logits_softmax(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    sl_ops_softmax(x->v, x->v, x->n);
    lua_settop(L, 1);
    return 1;
}

static int l_logits_log_softmax(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    sl_ops_log_softmax(x->v, x->v, x->n);
    lua_settop(L, 1);
    return 1;
}

/* Elementwise in place with a number or a same-sized Logits. */
enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV };

static void apply_op(l_logits *x, const float *y, float c, int op)
{
    for (int32_t i = 0; i < x->n; i++) {
        float b = y ? y[i] : c;
        switch (op) {
        case OP_ADD: x->v[i] += b; break;
        case OP_SUB: x->v[i] -= b; break;
        case OP_MUL: x->v[i] *= b; break;
        case OP_DIV: x->v[i] /= b; break;
        }
    }
}

static int inplace_op(lua_State *L, int op)
{
    l_logits *x = l_checklogits(L, 1);
    if (lua_isnumber(L, 2))
        apply_op(x, NULL, (float)lua_tonumber(L, 2), op);
    else
        apply_op(x, check_same_size(L, 2, x)->v, 0, op);
    lua_settop(L, 1);
    return 1;
}

static int l_logits_add(lua_State *L) { return inplace_op(L, OP_ADD); }
static int l_logits_sub(lua_State *L) { return inplace_op(L, OP_SUB); }
static int l_logits_mul(lua_State *L) { return inplace_op(L, OP_MUL); }
static int l_logits_div(lua_State *L) { return inplace_op(L, OP_DIV); }

/* x:fill(v) */
static int l_logits_fill(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    float v = (float)luaL_checknumber(L, 2);
    for (int32_t i = 0; i < x->n; i++)
        x->v[i] = v;
    lua_settop(L, 1);
    return 1;
}

/* Operators allocate: a + b, a - b, a * b, a / b with numbers or same-sized Logits. */
static int binary_op(lua_State *L, int op)
{
    int xi = luaL_testudata(L, 1, L_LOGITS) ? 1 : 2;
    int yi = 3 - xi;
    l_logits *x = l_checklogits(L, xi);
    const float *y = NULL;
    float c = 0;
    if (lua_isnumber(L, yi))
        c = (float)lua_tonumber(L, yi);
    else
        y = check_same_size(L, yi, x)->v;
    l_logits *out = l_newlogits(L, x->n);
    for (int32_t i = 0; i < x->n; i++) {
        float a = xi == 1 ? x->v[i] : (y ? y[i] : c);
        float b = xi == 1 ? (y ? y[i] : c) : x->v[i];
        switch (op) {
        case OP_ADD: out->v[i] = a + b; break;
        case OP_SUB: out->v[i] = a - b; break;
        case OP_MUL: out->v[i] = a * b; break;
        case OP_DIV: out->v[i] = a / b; break;
        }
    }
    return 1;
}

static int l_logits__add(lua_State *L) { return binary_op(L, OP_ADD); }
static int l_logits__sub(lua_State *L) { return binary_op(L, OP_SUB); }
static int l_logits__mul(lua_State *L) { return binary_op(L, OP_MUL); }
static int l_logits__div(lua_State *L) { return binary_op(L, OP_DIV); }

static int l_logits__unm(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    l_logits *out = l_newlogits(L, x->n);
    for (int32_t i = 0; i < x->n; i++)
        out->v[i] = -x->v[i];
    return 1;
}

/* ------------------------------------------------------------------ masks */

/* logprobs:relative_top_mask(alpha [, min_keep]) -> Mask of tokens with p >= alpha * max p */
static int l_logits_relative_top_mask(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    lua_Number alpha = luaL_checknumber(L, 2);
    lua_Integer min_keep = luaL_optinteger(L, 3, 1);
    luaL_argcheck(L, alpha > 0 && alpha <= 1, 2, "alpha must be in (0, 1]");
    luaL_argcheck(L, min_keep >= 1, 3, "min_keep must be >= 1");
    l_mask *m = l_newmask(L, x->n);
    sl_ops_relative_top_mask(x->v, x->n, (float)alpha, min_keep > x->n ? x->n : (int32_t)min_keep, m->keep);
    return 1;
}

/* x:masked_fill(mask, value [, where]) sets entries whose mask is `where` (default false,
 * i.e. the tokens the mask does not keep) to value. */
static int l_logits_masked_fill(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    l_mask *m = l_checkmask(L, 2);
    float value = (float)luaL_checknumber(L, 3);
    int where = lua_toboolean(L, 4);
    luaL_argcheck(L, m->n == x->n, 2, "mask size does not match");
    sl_ops_masked_fill(x->v, x->n, m->keep, where, value);
    lua_settop(L, 1);
    return 1;
}

static int l_mask_count(lua_State *L)
{
    l_mask *m = l_checkmask(L, 1);
    lua_Integer c = 0;
    for (int32_t i = 0; i < m->n; i++)
        c += m->keep[i] != 0;
    lua_pushinteger(L, c);
    return 1;
}

static int l_mask_get(lua_State *L)
{
    l_mask *m = l_checkmask(L, 1);
    lua_Integer id = luaL_checkinteger(L, 2);
    luaL_argcheck(L, id >= 0 && id < m->n, 2, "token id out of range");
    lua_pushboolean(L, m->keep[id]);
    return 1;
}

/* mask:ids() -> array of kept ids (ascending) */
static int l_mask_ids(lua_State *L)
{
    l_mask *m = l_checkmask(L, 1);
    lua_newtable(L);
    int k = 1;
    for (int32_t i = 0; i < m->n; i++)
        if (m->keep[i]) {
            lua_pushinteger(L, i);
            lua_rawseti(L, -2, k++);
        }
    return 1;
}

static int l_mask_len(lua_State *L)
{
    lua_pushinteger(L, l_checkmask(L, 1)->n);
    return 1;
}

/* ------------------------------------------------------------------ sampling */

static int l_rng_new(lua_State *L)
{
    lua_Integer seed = luaL_checkinteger(L, 1);
    sl_rng *r = lua_newuserdatauv(L, sizeof *r, 0);
    luaL_setmetatable(L, L_RNG);
    sl_rng_seed(r, (uint64_t)seed);
    return 1;
}

static int l_rng_uniform(lua_State *L)
{
    sl_rng *r = luaL_checkudata(L, 1, L_RNG);
    lua_pushnumber(L, sl_rng_uniform(r));
    return 1;
}

/* x:sample(rng) -> id drawn from softmax(x) */
static int l_logits_sample(lua_State *L)
{
    l_logits *x = l_checklogits(L, 1);
    sl_rng *r = luaL_checkudata(L, 2, L_RNG);
    sl_token id = sl_sample(x->v, x->n, r);
    if (id < 0)
        return luaL_error(L, "sample: every token is masked");
    lua_pushinteger(L, id);
    return 1;
}

/* p:sample_residual(q, rng) -> id drawn from norm(max(0, softmax(p) - softmax(q))) */
static int l_logits_sample_residual(lua_State *L)
{
    l_logits *p = l_checklogits(L, 1);
    l_logits *q = l_checklogits(L, 2);
    sl_rng *r = luaL_checkudata(L, 3, L_RNG);
    luaL_argcheck(L, q->n == p->n, 2, "sizes differ");
    sl_token id = sl_sample_residual(p->v, q->v, p->n, r);
    if (id < 0)
        return luaL_error(L, "sample_residual: every token is masked");
    lua_pushinteger(L, id);
    return 1;
}

/* ------------------------------------------------------------------ registration */

void sl_lua_open_logits(lua_State *L)
{
    static const luaL_Reg methods[] = {{"clone", l_logits_clone},
                                       {"len", l_logits_len},
                                       {"get", l_logits_get},
                                       {"set", l_logits_set},
                                       {"totable", l_logits_totable},
                                       {"argmax", l_logits_argmax},
                                       {"max", l_logits_max},
                                       {"top", l_logits_top},
                                       {"entropy", l_logits_entropy},
                                       {"nonfinite", l_logits_nonfinite},
                                       {"logsumexp", l_logits_logsumexp},
                                       {"kl", l_logits_kl},
                                       {"js", l_logits_js},
                                       {"dola_divergence", l_logits_dola_divergence},
                                       {"softmax", l_logits_softmax},
                                       {"log_softmax", l_logits_log_softmax},
                                       {"add", l_logits_add},
                                       {"sub", l_logits_sub},
                                       {"mul", l_logits_mul},
                                       {"div", l_logits_div},
                                       {"fill", l_logits_fill},
                                       {"relative_top_mask", l_logits_relative_top_mask},
                                       {"masked_fill", l_logits_masked_fill},
                                       {"sample", l_logits_sample},
                                       {"sample_residual", l_logits_sample_residual},
                                       {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__len", l_logits_len},   {"__tostring", l_logits_tostring},
                                    {"__add", l_logits__add},  {"__sub", l_logits__sub},
                                    {"__mul", l_logits__mul},  {"__div", l_logits__div},
                                    {"__unm", l_logits__unm},  {NULL, NULL}};
    l_newclass(L, L_LOGITS, methods, meta);
    static const luaL_Reg mask_methods[] = {
        {"count", l_mask_count}, {"get", l_mask_get}, {"ids", l_mask_ids}, {NULL, NULL}};
    static const luaL_Reg mask_meta[] = {{"__len", l_mask_len}, {NULL, NULL}};
    l_newclass(L, L_MASK, mask_methods, mask_meta);
    static const luaL_Reg rng_methods[] = {{"uniform", l_rng_uniform}, {NULL, NULL}};
    l_newclass(L, L_RNG, rng_methods, NULL);
}

/* core.is_logits(v) -> whether v is a slua.Logits */
static int l_is_logits(lua_State *L)
{
    lua_pushboolean(L, luaL_testudata(L, 1, L_LOGITS) != NULL);
    return 1;
}

void sl_lua_register_logits(lua_State *L)
{
    lua_pushcfunction(L, l_is_logits);
    lua_setfield(L, -2, "is_logits");
    lua_pushcfunction(L, l_logits_new);
    lua_setfield(L, -2, "logits");
    lua_pushcfunction(L, l_rng_new);
    lua_setfield(L, -2, "rng");
}
