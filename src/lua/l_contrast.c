/* Lua side of the contrast primitives: SkipLayerCD / contrastive decoding scores, CPython
 * randomness for SL-H spans, SL-D span rules. */
#include <string.h>

#include "l_util.h"

static l_logits *pair_check(lua_State *L)
{
    l_logits *e = l_checklogits(L, 1), *a = l_checklogits(L, 2);
    if (a->n != e->n)
        luaL_argerror(L, 2, lua_pushfstring(L, "size %d does not match %d", (int)a->n, (int)e->n));
    return a;
}

/* core.contrast_skiplayer(expert, amateur [, alpha, beta, amateur_temperature]) -> Logits, kept */
static int l_contrast_skiplayer(lua_State *L)
{
    l_logits *e = l_checklogits(L, 1), *a = pair_check(L);
    float alpha = (float)luaL_optnumber(L, 3, 0.1), beta = (float)luaL_optnumber(L, 4, 0.5);
    float temp = (float)luaL_optnumber(L, 5, 1.0);
    luaL_argcheck(L, alpha > 0 && alpha <= 1, 3, "alpha must be in (0, 1]");
    luaL_argcheck(L, temp > 0, 5, "amateur temperature must be > 0");
    l_logits *out = l_newlogits(L, e->n);
    lua_pushinteger(L, sl_contrast_skiplayer(out->v, e->v, a->v, e->n, alpha, beta, temp));
    return 2;
}

/* core.contrast_logprob(expert, amateur [, alpha, amateur_temperature]) -> Logits, kept */
static int l_contrast_logprob(lua_State *L)
{
    l_logits *e = l_checklogits(L, 1), *a = pair_check(L);
    float alpha = (float)luaL_optnumber(L, 3, 0.1), temp = (float)luaL_optnumber(L, 4, 1.0);
    luaL_argcheck(L, alpha > 0 && alpha <= 1, 3, "alpha must be in (0, 1]");
    luaL_argcheck(L, temp > 0, 4, "amateur temperature must be > 0");
    l_logits *out = l_newlogits(L, e->n);
    int32_t kept = sl_contrast_logprob(out->v, e->v, a->v, e->n, alpha, temp);
    if (kept < 0)
        return luaL_error(L, "contrast_logprob: out of memory");
    lua_pushinteger(L, kept);
    return 2;
}

#define L_PYRANDOM "slua.PyRandom"

static int l_pyrandom_new(lua_State *L)
{
    lua_Integer seed = luaL_checkinteger(L, 1);
    luaL_argcheck(L, seed >= 0, 1, "seed must be >= 0");
    sl_pyrandom *r = lua_newuserdatauv(L, sizeof *r, 0);
    luaL_setmetatable(L, L_PYRANDOM);
    sl_pyrandom_seed(r, (uint64_t)seed);
    return 1;
}

/* r:randrange(a, b) -> int | nil, message (CPython's ValueError text) */
static int l_pyrandom_randrange(lua_State *L)
{
    sl_pyrandom *r = luaL_checkudata(L, 1, L_PYRANDOM);
    lua_Integer a = luaL_checkinteger(L, 2), b = luaL_checkinteger(L, 3);
    int64_t v;
    sl_error err;
    if (sl_pyrandom_randrange(r, a, b, &v, &err) != SL_STATUS_OK)
        return l_pushfail(L, &err);
    lua_pushinteger(L, v);
    return 1;
}

static int l_pyrandom_getrandbits(lua_State *L)
{
    sl_pyrandom *r = luaL_checkudata(L, 1, L_PYRANDOM);
    lua_Integer k = luaL_checkinteger(L, 2);
    luaL_argcheck(L, k >= 1 && k <= 32, 2, "k must be in [1, 32]");
    lua_pushinteger(L, sl_pyrandom_getrandbits(r, (int32_t)k));
    return 1;
}

/* core.sld_select(Y, "official" | "community") -> start, end | nil */
static int l_sld_select(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    static const char *rules[] = {"official", "community", NULL};
    int rule = luaL_checkoption(L, 2, "official", rules);
    lua_Integer n = luaL_len(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 4096, 1, "profile must have 1 to 4096 entries");
    float Y[4096];
    for (lua_Integer i = 0; i < n; i++) {
        lua_geti(L, 1, i + 1);
        Y[i] = (float)luaL_checknumber(L, -1);
        lua_pop(L, 1);
    }
    int32_t start, end;
    bool found = rule == 0 ? sl_sld_select_official(Y, (int32_t)n, &start, &end)
                           : sl_sld_select_community(Y, (int32_t)n, &start, &end);
    if (!found) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, start);
    lua_pushinteger(L, end);
    return 2;
}

static int l_round_half_even(lua_State *L)
{
    lua_pushinteger(L, sl_round_half_even(luaL_checknumber(L, 1)));
    return 1;
}

void sl_lua_register_contrast(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"randrange", l_pyrandom_randrange}, {"getrandbits", l_pyrandom_getrandbits}, {NULL, NULL}};
    l_newclass(L, L_PYRANDOM, methods, NULL);
    static const luaL_Reg funcs[] = {{"contrast_skiplayer", l_contrast_skiplayer},
                                     {"contrast_logprob", l_contrast_logprob},
                                     {"pyrandom", l_pyrandom_new},
                                     {"sld_select", l_sld_select},
                                     {"round_half_even", l_round_half_even},
                                     {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
}
