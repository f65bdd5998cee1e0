/* The chat-template engine (lua/slua/jinja through slua.chat.render) on arbitrary template text.
 * Input: a template; it renders against a fixed conversation with tools. Every input must come
 * back as text or as a template error (syntax, runtime or raise_exception): a Lua error escaping
 * render, an "internal" error kind, or a crash is a finding.
 *
 * The engine is Lua, which the compiler does not instrument, so a line hook feeds libFuzzer's
 * extra counters with (previous line, line) pairs of the Lua code: coverage of the engine's own
 * branches guides the mutations. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "fuzz_util.h"
#include "slua/sl_lua.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const CONTEXT =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
    " {\"role\": \"user\", \"content\": \"Hi {{ there }} \\u00e9\"},"
    " {\"role\": \"assistant\", \"content\": \"Hello!\", \"tool_calls\": [{\"id\": \"call_1\", \"function\":"
    " {\"name\": \"f\", \"arguments\": {\"a\": 1, \"b\": [2.5, null]}}}]}, {\"role\": \"tool\", \"content\": \"42\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {}}}],"
    " \"documents\": null, \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";

/* Returns true, or false and the message of an engine failure. A step budget keeps every input
 * well under libFuzzer's per-input timeout. */
static const char *const HARNESS =
    "local chat = require 'slua.chat'\n"
    "return function(template, context)\n"
    "  local out, err, kind = chat.render(template, context, {now = '2025-07-10T12:00:00Z', max_steps = 20000})\n"
    "  if out == nil and kind ~= 'template' and kind ~= 'raise' then\n"
    "    return false, tostring(kind) .. ': ' .. tostring(err)\n"
    "  end\n"
    "  return true\n"
    "end\n";

static lua_State *L;
static int harness_ref;

/* Lua line coverage, AFL-style edges hashed into libFuzzer's extra counters. */
#define SL_EDGES (1u << 16)
__attribute__((section("__libfuzzer_extra_counters"))) static uint8_t edges[SL_EDGES];
static uint32_t previous_line;

static void line_hook(lua_State *state, lua_Debug *ar)
{
    if (!lua_getinfo(state, "S", ar))
        return;
    uint32_t here = (uint32_t)(uintptr_t)ar->source * 2654435761u ^ (uint32_t)ar->currentline * 40503u;
    uint32_t slot = (here ^ previous_line) & (SL_EDGES - 1);
    if (edges[slot] < 255)
        edges[slot]++;
    previous_line = here >> 1;
}

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
    /* slua.chat sits on slua.util, which loads the C module */
    luaL_getsubtable(L, -1, "preload");
    lua_pushcfunction(L, luaopen_slua_core);
    lua_setfield(L, -2, "slua.core");
    lua_pop(L, 2);
    if (luaL_dostring(L, HARNESS) != LUA_OK)
        FUZZ_CHECK(0, "%s", lua_tostring(L, -1));
    FUZZ_CHECK(lua_isfunction(L, -1), "the harness returns a function");
    harness_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_sethook(L, line_hook, LUA_MASKLINE, 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    previous_line = 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, harness_ref);
    lua_pushlstring(L, (const char *)data, size);
    lua_pushstring(L, CONTEXT);
    if (lua_pcall(L, 2, 2, 0) != LUA_OK)
        FUZZ_CHECK(0, "harness error: %s", lua_tostring(L, -1));
    FUZZ_CHECK(lua_toboolean(L, -2), "the template engine failed: %s", lua_tostring(L, -1));
    lua_pop(L, 2);
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
