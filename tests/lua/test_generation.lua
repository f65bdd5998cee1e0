-- The generation loop and processors through the recipes: seeded sampling is reproducible across
-- runs and thread counts, stop strings and EOS stop, custom processors mix with built-ins, and
-- command-line misuse fails with one clean message.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local function recipe(name, args)
  local out, ok = T.run(("%s %s/recipes/%s.lua %s"):format(slua, SLUA_ROOT, name, args))
  return out, ok
end
local function json_of(name, args)
  local out, ok = recipe(name, args .. " --format json")
  if not ok then error(name .. " failed:\n" .. out, 2) end
  return assert(sl.json.decode(out))
end

T.case("same seed, same samples, on 1 and 2 threads", function()
  local a = json_of("sample", "--seed 7 --max-new-tokens 40 --temperature 1.3 --threads 1")
  local b = json_of("sample", "--seed 7 --max-new-tokens 40 --temperature 1.3 --threads 2")
  local c = json_of("sample", "--seed 8 --max-new-tokens 40 --temperature 1.3 --threads 1")
  T.eq(table.concat(a.new_ids, ","), table.concat(b.new_ids, ","), "threads do not change samples")
  T.truthy(table.concat(a.new_ids, ",") ~= table.concat(c.new_ids, ","), "another seed gives another text")
  local g = json_of("greedy", "--max-new-tokens 40")
  T.truthy(table.concat(a.new_ids, ",") ~= table.concat(g.new_ids, ","), "sampling is not greedy here")
end)

T.case("top-k 1 sampling is greedy", function()
  local a = json_of("sample", "--seed 3 --top-k 1 --max-new-tokens 30")
  local g = json_of("greedy", "--max-new-tokens 30")
  T.eq(table.concat(a.new_ids, ","), table.concat(g.new_ids, ","), "top-k 1")
end)

T.case("stop strings match across token boundaries", function()
  local r = json_of("greedy", "--max-new-tokens 60 --stop 'girl named'")
  T.eq(r.stop_reason, "stop_string", "stop reason")
  T.truthy(r.text:find("girl named", 1, true), "text ends at the stop string: " .. r.text)
  T.truthy(#r.new_ids < 60, "stopped early")
end)

T.case("a strong EOS reward ends generation on EOS", function()
  local r = json_of("eos_reward", "--mode exp --start 3 --factor 50 --max-new-tokens 40")
  T.eq(r.stop_reason, "eos", "stop reason")
  T.eq(r.new_ids[#r.new_ids], 2, "the EOS id is kept, as HF does")
  T.eq(#r.new_ids, 5, "reward starts after start_index + prompt: the 5th new token")
  local lin = json_of("eos_reward", "--mode linear --start 0 --bonus 100 --max-new-tokens 40")
  T.eq(lin.stop_reason, "eos", "linear reward stops too")
end)

T.case("custom processors sit in the chain with the built-ins", function()
  local plain = json_of("greedy", "--max-new-tokens 12")
  local banned = json_of("custom_processor", "--ban 'Lily,girl' --boost-prompt 0 --repetition-penalty 1.0 --max-new-tokens 12")
  T.truthy(not banned.text:find("Lily", 1, true) and not banned.text:find("girl", 1, true), banned.text)
  T.truthy(plain.text:find("girl", 1, true), "the unconstrained text has the word")
end)

T.case("chains run in order and report their names", function()
  local P = sl.processors
  local calls = {}
  local chain = sl.chain{ P.temperature(2), function(_, s) calls[#calls + 1] = s:get(0) end }
  chain:insert(1, P.fn("first", function(_, s) s:set(0, 4) end))
  local scores = chain({}, sl.logits{ 1, 2 })
  T.eq(calls[1], 2, "temperature ran after the inserted processor")
  T.eq(scores:get(1), 1, "2 / 2")
  T.eq(table.concat(chain:names(), ","), "first,temperature,fn", "names")
end)

T.case("bad flags fail with one message", function()
  local out, ok = recipe("greedy", "--max-new-tokens lots")
  T.truthy(not ok, "non-zero exit")
  T.eq(out, "slua: option --max-new-tokens expects an integer (got 'lots')\n", "message")
  out, ok = recipe("greedy", "--model /nonexistent")
  T.eq(out, "slua: /nonexistent/config.json: cannot open (No such file or directory)\n", "load failure")
  out, ok = recipe("dola", "--dola-layers 2,9")
  T.truthy(not ok and out:find("slua: dola layers: layer 9 out of range [0, 4] (layer 5 is the mature layer)", 1, true), out)
  out, ok = recipe("greedy", "--prompt-ids 1,999")
  T.eq(out, "slua: option --prompt-ids: id 999 out of range [0, 511]\n", "bad id")
  out, ok = T.run(slua .. " --list")
  T.truthy(ok and out:find("dola%s+DoLa") and out:find("skiplayer_sld"), "--list names the recipes")
end)

T.case("usable as a plain module from the lua5.4 interpreter", function()
  local lua = io.popen("command -v lua5.4"):read("l")
  if not lua then return end -- the interpreter is optional; the host covers the rest
  -- a sanitizer-built module cannot load into the stock (uninstrumented) interpreter
  if (os.getenv("SL_SANITIZE") or "") ~= "" then return end
  local cmd = ("%s -e \"package.cpath='%s/?.so;'..package.cpath; package.path='%s/lua/?.lua;%s/lua/?/init.lua;'"
    .. "..package.path; local sl = require 'slua'; local m = assert(sl.load()); "
    .. "print(m:session():prefill{1}.logits:argmax())\""):format(lua, slua:gsub("/slua$", "/lua"), SLUA_ROOT, SLUA_ROOT)
  local out, ok = T.run(cmd)
  T.truthy(ok, out)
  T.eq(out, "403\n", "greedy first token from BOS")
end)
T.case("a recipe invoked in process returns what its JSON mode prints, and prints nothing", function()
  local cli = json_of("dola", "--max-new-tokens 6 --dola-layers low --repetition-penalty 1.2")
  local model <close> = sl.check(sl.load())
  local results = sl.invoke("dola", { max_new_tokens = 6, dola_layers = "low", repetition_penalty = 1.2 },
                            { model = model })
  T.eq(#results, 1, "one generation")
  local r = results[1]
  T.eq(table.concat(r.new_ids, ","), table.concat(cli.new_ids, ","), "same tokens")
  T.eq(r.text, cli.text, "same text")
  T.eq(r.stop_reason, cli.stop_reason, "same stop reason")
  T.eq(r.steps[1].premature_layer, cli.steps[1].premature_layer, "same per-step details")
  T.eq(r.options.dola_layers, "low", "options as given")
  local again = sl.invoke("greedy", { "--max-new-tokens", "4", "--prompt", "Once upon" }, { model = model })
  T.eq(#again[1].new_ids, 4, "flags as a list")
  T.truthy(not pcall(sl.invoke, "greedy", { "--bogus", "1" }, { model = model }), "errors reach the caller")
end)

T.finish()
