/* luaopen_slua_core: the one entry point of the Lua module. */
#include "l_util.h"
#include "slua/sl_lua.h"

static int l_set_threads(lua_State *L)
{
    sl_set_num_threads((int)luaL_checkinteger(L, 1));
    return 0;
}

static int l_threads(lua_State *L)
{
    lua_pushinteger(L, sl_get_num_threads());
    return 1;
}

int luaopen_slua_core(lua_State *L)
{
    sl_lua_open_model(L);
    sl_lua_open_session(L);
    sl_lua_open_logits(L);
    sl_lua_open_tokenizer(L);
    sl_lua_open_json(L);
    lua_newtable(L);
    sl_lua_register_model(L);
    sl_lua_register_logits(L);
    sl_lua_register_tokenizer(L);
    sl_lua_register_json(L);
    lua_pushcfunction(L, l_set_threads);
    lua_setfield(L, -2, "set_threads");
    lua_pushcfunction(L, l_threads);
    lua_setfield(L, -2, "threads");
    lua_pushstring(L, sl_version());
    lua_setfield(L, -2, "version");
    return 1;
}
