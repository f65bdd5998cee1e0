/* slua — embedding API: the Lua 5.4 module behind `require "slua.core"`. */
#ifndef SLUA_SL_LUA_H
#define SLUA_SL_LUA_H

#include <lua.h>

#include "slua/sl_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opens the core module and leaves its table on the stack (for luaL_requiref or package.preload). */
SL_API int luaopen_slua_core(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
