#include "test_lua.h"

#include <criterion/criterion.h>
#include <lauxlib.h>
#include <lualib.h>

#include "slua/sl_lua.h"

lua_State *tl_new_state(void)
{
    lua_State *L = luaL_newstate();
    cr_assert_not_null(L, "no memory for a lua_State");
    luaL_openlibs(L);
    luaL_requiref(L, "slua.core", luaopen_slua_core, 0);
    lua_setglobal(L, "core");
    return L;
}
