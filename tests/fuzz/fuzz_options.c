/* The option parser (sl.run_options in lua/slua, with --config files) on arbitrary command lines.
 * Input: arguments separated by NUL bytes; after a double NUL, the text any --config file reads.
 * A user's bad command line must end in a clean failure, never a Lua error with a traceback. */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "fuzz_util.h"
#include "slua/sl_lua.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;
static int harness_ref;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    L = luaL_newstate();
    FUZZ_CHECK(L != NULL, "no Lua state");
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushstring(L, SL_SOURCE_DIR "/lua/?.lua;" SL_SOURCE_DIR "/lua/?/init.lua");
    lua_setfield(L, -2, "path");
    luaL_getsubtable(L, -1, "preload");
    lua_pushcfunction(L, luaopen_slua_core);
    lua_setfield(L, -2, "slua.core");
    lua_pop(L, 2);
    lua_pushstring(L, SL_SOURCE_DIR);
    lua_setglobal(L, "SLUA_ROOT");
    if (luaL_dofile(L, SL_SOURCE_DIR "/tests/fuzz/options_harness.lua") != LUA_OK)
        FUZZ_CHECK(0, "%s", lua_tostring(L, -1));
    FUZZ_CHECK(lua_isfunction(L, -1), "the harness returns a function");
    harness_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, harness_ref);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 2, 0) != LUA_OK)
        FUZZ_CHECK(0, "harness error: %s", lua_tostring(L, -1));
    FUZZ_CHECK(lua_toboolean(L, -2), "a command line ends in a Lua error, not a clean failure: %s",
               lua_tostring(L, -1));
    lua_pop(L, 2);
    return 0;
}
