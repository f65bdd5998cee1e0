#include "l_util.h"

#include <stdlib.h>
#include <string.h>

l_box *l_newbox(lua_State *L, const char *tname, int nuv)
{
    l_box *b = lua_newuserdatauv(L, sizeof *b, nuv);
    b->ptr = NULL;
    luaL_setmetatable(L, tname);
    return b;
}

void *l_checkopen(lua_State *L, int idx, const char *tname)
{
    l_box *b = luaL_checkudata(L, idx, tname);
    if (!b->ptr)
        luaL_error(L, "attempt to use a closed %s", tname);
    return b->ptr;
}

l_session_box *l_checksession(lua_State *L, int idx)
{
    l_session_box *b = luaL_checkudata(L, idx, L_SESSION);
    if (!b->s)
        luaL_error(L, "attempt to use a closed %s", L_SESSION);
    return b;
}

l_logits *l_checklogits(lua_State *L, int idx) { return luaL_checkudata(L, idx, L_LOGITS); }

l_logits *l_newlogits(lua_State *L, int32_t n)
{
    l_logits *x = lua_newuserdatauv(L, sizeof *x + (size_t)n * sizeof(float), 0);
    x->n = n;
    luaL_setmetatable(L, L_LOGITS);
    return x;
}

l_mask *l_checkmask(lua_State *L, int idx) { return luaL_checkudata(L, idx, L_MASK); }

l_mask *l_newmask(lua_State *L, int32_t n)
{
    l_mask *m = lua_newuserdatauv(L, sizeof *m + (size_t)n, 0);
    m->n = n;
    luaL_setmetatable(L, L_MASK);
    return m;
}

int l_pushfail(lua_State *L, const sl_error *err)
{
    luaL_pushfail(L);
    lua_pushstring(L, err->msg);
    lua_pushstring(L, sl_status_name(err->code));
    return 3;
}

int l_raise(lua_State *L, const sl_error *err) { return luaL_error(L, "%s", err->msg); }

int32_t *l_checkintarray(lua_State *L, int idx, int32_t *n, const char *what)
{
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer len = luaL_len(L, idx);
    if (len < 0 || len > INT32_MAX / 4)
        luaL_argerror(L, idx, lua_pushfstring(L, "too many %s", what));
    int32_t *out = lua_newuserdatauv(L, (size_t)(len ? len : 1) * sizeof *out, 0);
    for (lua_Integer i = 1; i <= len; i++) {
        lua_geti(L, idx, i);
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < INT32_MIN || v > INT32_MAX)
            luaL_argerror(L, idx, lua_pushfstring(L, "%s[%d] is not an integer", what, (int)i));
        out[i - 1] = (int32_t)v;
        lua_pop(L, 1);
    }
    *n = (int32_t)len;
    return out;
}

void l_pushintarray(lua_State *L, const int32_t *v, int32_t n)
{
    lua_createtable(L, n, 0);
    for (int32_t i = 0; i < n; i++) {
        lua_pushinteger(L, v[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static int getfield(lua_State *L, int idx, const char *key)
{
    if (lua_isnoneornil(L, idx))
        return LUA_TNIL;
    luaL_checktype(L, idx, LUA_TTABLE);
    return lua_getfield(L, idx, key);
}

lua_Integer l_optfield_integer(lua_State *L, int idx, const char *key, lua_Integer dflt)
{
    idx = lua_absindex(L, idx);
    int t = getfield(L, idx, key);
    lua_Integer v = dflt;
    if (t != LUA_TNIL) {
        int ok;
        v = lua_tointegerx(L, -1, &ok);
        if (!ok)
            luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be an integer", key));
    }
    if (!lua_isnoneornil(L, idx))
        lua_pop(L, 1);
    return v;
}

lua_Number l_optfield_number(lua_State *L, int idx, const char *key, lua_Number dflt)
{
    idx = lua_absindex(L, idx);
    int t = getfield(L, idx, key);
    lua_Number v = dflt;
    if (t != LUA_TNIL) {
        int ok;
        v = lua_tonumberx(L, -1, &ok);
        if (!ok)
            luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a number", key));
    }
    if (!lua_isnoneornil(L, idx))
        lua_pop(L, 1);
    return v;
}

int l_optfield_boolean(lua_State *L, int idx, const char *key, int dflt)
{
    idx = lua_absindex(L, idx);
    int t = getfield(L, idx, key);
    int v = t == LUA_TNIL ? dflt : lua_toboolean(L, -1);
    if (!lua_isnoneornil(L, idx))
        lua_pop(L, 1);
    return v;
}

void l_newclass(lua_State *L, const char *tname, const luaL_Reg *methods, const luaL_Reg *meta)
{
    luaL_newmetatable(L, tname);
    if (meta)
        luaL_setfuncs(L, meta, 0);
    if (methods) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}

static int cbox_gc(lua_State *L)
{
    void **slot = lua_touserdata(L, 1);
    free(*slot);
    *slot = NULL;
    return 0;
}

void **l_newcbox(lua_State *L)
{
    void **slot = lua_newuserdatauv(L, sizeof *slot, 0);
    *slot = NULL;
    if (luaL_newmetatable(L, "slua.CBox")) {
        lua_pushcfunction(L, cbox_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return slot;
}

void l_addmethods(lua_State *L, const char *tname, const luaL_Reg *methods)
{
    luaL_getmetatable(L, tname);
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
}
