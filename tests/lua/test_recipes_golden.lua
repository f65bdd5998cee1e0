-- Recipes against HF transformers 4.47.1 goldens, through the command line a user types:
-- greedy.lua, repetition_penalty.lua, dola.lua and logits.lua with --format json on the hf-tiny
-- models (the checks are in golden_checks.lua).
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local G = require "golden_checks"

local slua = arg[1] or "build/slua"
local data = SLUA_ROOT .. "/tests/data/hf-tiny/"

for _, m in ipairs{ "tiny-llama", "tiny-llama-tied", "tiny-qwen2" } do
  local opts = { slua = slua, dir = data .. m, name = m }
  G.generation(opts, "greedy.json", "greedy.lua", "")
  G.generation(opts, "rep_penalty_1.2.json", "repetition_penalty.lua", "--repetition-penalty 1.2")
  for _, file in ipairs{ "dola_high_rep_1.2.json", "dola_low.json", "dola_layers_2_4.json" } do G.dola(opts, file) end
  -- raw early exits: see tests/unit/test_forward.c for why 2e-4 (HF's own rounding)
  G.logit_lens(opts, function() return 2e-4 end)
end
T.finish()
