/* Helpers of the binding suites (tests/lua/test_*.c), which drive a lua_State from C. */
#ifndef SLUA_TEST_LUA_H
#define SLUA_TEST_LUA_H

#include <lua.h>

/* A new state with Lua's standard libraries and slua.core loaded as the global `core`. */
lua_State *tl_new_state(void);

#endif
