/* The Lua surface driven from C: exact error messages for misuse, closed handles and failed
 * loads, and GC stress over models, sessions and forks freed in both orders. */
#include <string.h>

#include <criterion/criterion.h>
#include <lauxlib.h>

#include "test_lua.h"

static lua_State *L;

static void setup(void)
{
    L = tl_new_state();
    lua_getglobal(L, "package");
    lua_pushstring(L, SL_SOURCE_ROOT "/lua/?.lua;" SL_SOURCE_ROOT "/lua/?/init.lua");
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    lua_pushstring(L, SL_SOURCE_ROOT);
    lua_setglobal(L, "SLUA_ROOT");
    luaL_dostring(L, "sl = require 'slua'; STORIES = SLUA_ROOT .. '/models/stories260K'; "
                     "TINY = SLUA_ROOT .. '/tests/data/hf-tiny/tiny-llama'");
}

static void teardown(void) { lua_close(L); }

TestSuite(binding, .init = setup, .fini = teardown);

/* Runs chunk; it must succeed. */
static void ok(const char *chunk)
{
    if (luaL_dostring(L, chunk) != LUA_OK)
        cr_assert_fail("chunk failed: %s\n%s", lua_tostring(L, -1), chunk);
}

/* Runs chunk; it must raise an error whose message contains expected. */
static void raises(const char *chunk, const char *expected)
{
    int rc = luaL_dostring(L, chunk);
    cr_assert_neq(rc, LUA_OK, "chunk should fail: %s", chunk);
    if (lua_istable(L, -1)) /* clean failures (sl.fail) carry their text in .message */
        lua_getfield(L, -1, "message");
    const char *msg = lua_tostring(L, -1);
    cr_assert(msg && strstr(msg, expected), "error '%s' lacks '%s'", msg ? msg : "(not a string)", expected);
    lua_settop(L, 0);
}

Test(binding, failed_load_returns_fail_tuple)
{
    ok("local m, msg, code = sl.load('/nonexistent/model')\n"
       "assert(m == nil)\n"
       "assert(msg == '/nonexistent/model/config.json: cannot open (No such file or directory)', msg)\n"
       "assert(code == 'IO', code)");
    ok("local t, msg, code = core.load_tokenizer('/nonexistent/tokenizer.json')\n"
       "assert(t == nil and code == 'IO' and msg:find('/nonexistent/tokenizer.json', 1, true), msg)");
}

Test(binding, bad_arguments_name_the_argument)
{
    ok("m = sl.check(sl.load(STORIES)); s = m:session{layers = {1, 5}, norm = true}; "
       "out = s:prefill{1, 403}");
    raises("out.logits:get(512)", "bad argument #1 to 'get' (token id 512 out of range [0, 511])");
    raises("out.logits:set(-1, 0)", "bad argument #1 to 'set' (token id -1 out of range [0, 511])");
    raises("out:layer_logits(6)", "bad argument #1 to 'layer_logits' (layer 6 out of range [0, 5])");
    raises("out:layer_logits(3)", "bad argument #1 to 'layer_logits' (layer 3 was not requested with raw logits)");
    raises("out:layer_logits(1, 'lens')", "bad argument #2 to 'layer_logits' (invalid option 'lens')");
    raises("s:step(512)", "eval: token id 512 out of range [0, 511]");
    raises("s:prefill{}", "bad argument #1 to 'prefill' (no tokens)");
    raises("s:prefill{1, 'x'}", "bad argument #1 to 'prefill' (ids[2] is not an integer)");
    raises("m:session{layers = {9}}", "layers: layer 9 out of range [0, 5]");
    raises("s:fork{skip = {5}}", "skip mask: block 5 out of range [0, 4]");
    raises("out.logits:temperature(0)", "bad argument #1 to 'temperature' (temperature must be > 0)");
    raises("out.logits:keep_top_p(1.5)", "bad argument #1 to 'keep_top_p' (top_p must be in [0, 1])");
    raises("out.logits:kl(sl.logits(3))", "bad argument #1 to 'kl' (size 3 does not match 512)");
    raises("s:rewind(7)", "bad argument #1 to 'rewind' (position 7 out of range [0, 2])");
    raises("sl.chain{42}", "chain: entry 1 is not a processor");
}

Test(binding, closed_handles_refuse_use)
{
    ok("m = sl.check(sl.load(STORIES)); s = m:session(); m:close(); m:close()");
    raises("m:session()", "attempt to use a closed slua.Model");
    ok("assert(tostring(m) == 'slua.Model(closed)')");
    /* The session keeps the weights alive after the model handle closed. */
    ok("local out = s:prefill{1}; assert(out.logits:argmax() == 403)");
    ok("s:close()");
    raises("s:step(1)", "attempt to use a closed slua.Session");
    ok("do local t <close> = sl.check(sl.load(STORIES)).tokenizer end");
    raises("local m2 = sl.check(sl.load(STORIES)); local t = m2.tokenizer; t:close(); t:encode('x')",
           "attempt to use a closed slua.Tokenizer");
}

Test(binding, stale_outputs_are_refused)
{
    ok("m = sl.check(sl.load(STORIES)); s = m:session{layers = {2}}; old = s:prefill{1}; s:step(403)");
    raises("old:layer_logits(2)", "stale slua.Output: its session has moved on since this step");
    ok("assert(old.logits:argmax() == 403)"); /* the copied logits stay valid */
}

Test(binding, logits_math_and_json)
{
    ok("local x = sl.logits{1, 3, 3, 2}\n"
       "assert(x:argmax() == 1 and #x == 4)\n"
       "local y = (x - 1) * 2\n"
       "assert(y:get(1) == 4 and x:get(1) == 3)\n"
       "x:keep_top_k(2)\n"
       "assert(x:get(0) == -math.huge and x:get(3) == -math.huge and x:get(2) == 3)\n"
       "local top = sl.logits{0.5, 2, 2}:top(2)\n"
       "assert(top[1][1] == 1 and top[2][1] == 2)\n"
       "local j = sl.json.encode{a = sl.logits{1.5, -math.huge}, b = {1, 2}, c = 'q\"'}\n"
       "assert(j == '{\"a\":[1.5,null],\"b\":[1,2],\"c\":\"q\\\\\"\"}', j)\n"
       "local back = sl.json.decode('{\"x\": [1, 2.5, null]}')\n"
       "assert(back.x[2] == 2.5 and back.x[3] == sl.json.null)");
}

Test(binding, tokenizer_round_trip_and_stream)
{
    ok("local tok = sl.check(sl.load(STORIES)).tokenizer\n"
       "local ids = tok:encode('Once upon a time', {special = true})\n"
       "assert(ids[1] == 1 and ids[2] == 403, table.concat(ids, ','))\n"
       "assert(tok:decode(ids, {skip_special = true}) == 'Once upon a time')\n"
       "local st = tok:stream{skip_special = true}\n"
       "local parts = {}\n"
       "for _, id in ipairs(ids) do parts[#parts + 1] = st:put(id) end\n"
       "parts[#parts + 1] = st:finish()\n"
       "assert(table.concat(parts) == 'Once upon a time', table.concat(parts))");
}

Test(binding, options_parse_and_reject)
{
    ok("local o = sl.options({[0] = 'x.lua', '--max-new-tokens', '5', '--greedy', '--name=a-b', '--no-flag'},\n"
       "  {max_new_tokens = 64, greedy = false, name = '', flag = true})\n"
       "assert(o.max_new_tokens == 5 and math.type(o.max_new_tokens) == 'integer')\n"
       "assert(o.greedy == true and o.name == 'a-b' and o.flag == false)");
    raises("sl.options({[0] = 'x.lua', '--bogus', '1'}, {a = 1})", "unknown option --bogus");
    raises("sl.options({[0] = 'x.lua', '--a', 'z'}, {a = 1})", "option --a expects an integer (got 'z')");
    raises("sl.options({[0] = 'x.lua', '--a', 'z'}, {a = 1.0})", "option --a expects a number (got 'z')");
    raises("sl.options({[0] = 'x.lua', '--a', '0x10'}, {a = 1})", "option --a expects an integer (got '0x10')");
    raises("sl.options({[0] = 'x.lua', '--a', '1e2'}, {a = 1})", "option --a expects an integer (got '1e2')");
    raises("sl.options({[0] = 'x.lua', '--p', '2'}, {p = {default = 1.0, min = 0, max = 1}})",
           "option --p must be in [0, 1] (got 2)");
    raises("sl.options({[0] = 'x.lua', '--top-p', '2'}, {top_p = 1.0})", "option --top-p must be in [0, 1] (got 2)");
    raises("sl.options({[0] = 'x.lua', '--m', 'c'}, {m = {default = 'a', choices = {'a', 'b'}}})",
           "option --m must be one of a, b (got 'c')");
    raises("sl.options({[0] = 'x.lua', '--t', '0'}, {t = {default = 1.0, check = function(v) return v <= 0 and '> 0' end}})",
           "option --t must be > 0 (got 0)");
    raises("sl.options({[0] = 'x.lua', '--a', '1.5'}, {a = 1})", "option --a expects an integer (got '1.5')");
    raises("sl.options({[0] = 'x.lua', '--a'}, {a = 1})", "option --a needs a value");
}

/* Models, sessions and forks dropped in every order, collected repeatedly (run under ASan). */
Test(binding, gc_stress_any_free_order)
{
    ok("for round = 1, 6 do\n"
       "  local m = sl.check(sl.load(TINY))\n"
       "  local parent = m:session{layers = {1, 8}, norm = true}\n"
       "  local fork = parent:fork{skip = {2, 3}, layers = {0, 5}}\n"
       "  local ids = {1, 5, 9, 40}\n"
       "  parent:prefill(ids); local out = fork:prefill(ids)\n"
       "  parent:step(7); fork:step(7)\n"
       "  if round % 3 == 0 then m = nil; collectgarbage(); parent:step(8); fork:step(8) end\n"
       "  if round % 3 == 1 then parent = nil; collectgarbage(); assert(fork:pos() == 5) end\n"
       "  if round % 3 == 2 then fork:close(); parent:close(); m:close() end\n"
       "  out = nil; fork = nil; parent = nil; m = nil\n"
       "  collectgarbage(); collectgarbage()\n"
       "end");
    ok("do\n"
       "  local m <close> = sl.check(sl.load(TINY))\n"
       "  local s <close> = m:session()\n"
       "  s:prefill{1, 2, 3}\n"
       "end\n"
       "collectgarbage()");
}
