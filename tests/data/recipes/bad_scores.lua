-- A recipe whose scores function or processor returns the wrong thing (--mode): for tests of the
-- checks on what user code returns.
local sl = require "slua"

local opt = sl.run_options(arg, {
  mode = { default = "short", choices = { "short", "long", "string", "nil", "p_short", "p_string", "p_nil" } },
})
local returns = {
  short = function() return sl.logits(10) end,
  long = function() return sl.logits(100000) end,
  string = function() return "scores" end,
  ["nil"] = function() end,
}
local kind = opt.mode:gsub("^p_", "")
if opt.mode:match("^p_") then
  sl.generate{ recipe = "bad_scores", opt = opt, chain = sl.chain{ sl.processors.fn("reshape", returns[kind]) } }
else
  sl.generate{ recipe = "bad_scores", opt = opt, scores = returns[kind] }
end
