/* libFuzzer target: the chat-template engine (lua/slua/jinja) on arbitrary template text.
 *
 * The input is a template; it renders against a fixed conversation. Any input must come back
 * as text or as a template error: a Lua error escaping slua.chat.render, an "internal" error
 * kind, or a crash is a finding. The engine is Lua, which the compiler does not instrument, so a
 * line hook feeds libFuzzer's extra counters with (previous line, line) pairs of the Lua code:
 * coverage of the engine's own branches guides the mutations.
 *
 *   clang -g -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_chat_template.c \
 *         $(pkg-config --cflags --libs lua5.4) -DSL_SOURCE_ROOT="\"$PWD\"" -o fuzz_chat_template
 *   ./fuzz_chat_template tests/fuzz/corpus/chat_template -max_len=4096 -timeout=10
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#ifndef SL_SOURCE_ROOT
#define SL_SOURCE_ROOT "."
#endif

static const char *const CONTEXT =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
    " {\"role\": \"user\", \"content\": \"Hi {{ there }}\"},"
    " {\"role\": \"assistant\", \"content\": \"Hello!\", \"tool_calls\": [{\"function\":"
    " {\"name\": \"f\", \"arguments\": {\"a\": 1}}}]}, {\"role\": \"tool\", \"content\": \"42\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {}}}],"
    " \"documents\": null, \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";

/* Renders the template on the stack top; returns 0 when the engine behaved. */
static const char *const DRIVER =
    "local template, context = ...\n"
    "local chat = require 'slua.chat'\n"
    "local out, err, kind = chat.render(template, context, {now = '2025-07-10T12:00:00Z', max_steps = 200000})\n"
    "if out == nil and kind ~= 'template' and kind ~= 'raise' then\n"
    "  error('engine failure (' .. tostring(kind) .. '): ' .. tostring(err))\n"
    "end\n";

static lua_State *state;

/* Lua line coverage, AFL-style edges hashed into libFuzzer's extra counters. */
#define SL_EDGES (1u << 16)
__attribute__((section("__libfuzzer_extra_counters"))) static uint8_t edges[SL_EDGES];
static uint32_t previous_line;

static void line_hook(lua_State *L, lua_Debug *ar)
{
    if (!lua_getinfo(L, "S", ar))
        return;
    uint32_t here = (uint32_t)(uintptr_t)ar->source * 2654435761u ^ (uint32_t)ar->currentline * 40503u;
    uint32_t slot = (here ^ previous_line) & (SL_EDGES - 1);
    if (edges[slot] < 255)
        edges[slot]++;
    previous_line = here >> 1;
}

static lua_State *setup(void)
{
    lua_State *L = luaL_newstate();
    if (!L)
        abort();
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushstring(L, SL_SOURCE_ROOT "/lua/?.lua;" SL_SOURCE_ROOT "/lua/?/init.lua");
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    if (luaL_loadstring(L, DRIVER) != LUA_OK) {
        fprintf(stderr, "fuzz_chat_template: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz_chat_template.driver");
    lua_sethook(L, line_hook, LUA_MASKLINE, 0);
    return L;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!state)
        state = setup();
    lua_State *L = state;
    previous_line = 0;
    lua_getfield(L, LUA_REGISTRYINDEX, "fuzz_chat_template.driver");
    lua_pushlstring(L, (const char *)data, size);
    lua_pushstring(L, CONTEXT);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        fprintf(stderr, "fuzz_chat_template: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
