-- Every architecture family against HF transformers' float32 goldens (tests/data/arch/<family>,
-- tiny random checkpoints; see docs/adding-an-architecture.md), through the command line:
-- greedy, repetition penalty and DoLa token for token with their top-8 scores and DoLa layers,
-- and logits.lua's final, logit-lens (within 1e-4) and raw early-exit logits (within
-- 1e-4 + 5e-6 * max |raw|: HF's own float32 rounding grows with the logits' size).
-- NEAR_TIES.json lists the steps where HF itself is at a near-tie; none of them decides a token
-- or a DoLa layer of the families below (it is checked here), so all steps are held exactly.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local G = require "golden_checks"

local slua = arg[1] or "build/slua"
local data = SLUA_ROOT .. "/tests/data/arch/"
local families = { "qwen3", "olmo2" }

local near = T.json_file(data .. "NEAR_TIES.json")
local function raw_tol(max_raw) return 1e-4 + 5e-6 * max_raw end

for _, f in ipairs(families) do
  local opts = { slua = slua, dir = data .. f, name = f }
  T.case("no near-tie of " .. f .. " turns a token or a DoLa layer", function()
    local m = near.per_model_minimum[f]
    T.truthy(m.min_margin_top1_top2.value > 1e-4, "greedy margin " .. m.min_margin_top1_top2.value)
    local js = m.min_dola_js_gap
    T.truthy(js.value > 1e-5 or not js.runner_up_changes_argmax_before_processors, "DoLa JS gap " .. js.value)
  end)
  G.generation(opts, "greedy.json", "greedy.lua", "")
  G.generation(opts, "rep_penalty_1.2.json", "repetition_penalty.lua", "--repetition-penalty 1.2")
  G.dola(opts, "dola_high_rep_1.2.json")
  local seen = G.logit_lens(opts, raw_tol)
  io.write(("%s: max |d| final %.3g, norm %.3g, raw %.3g, hidden %.3g\n"):format(f, seen.final, seen.norm, seen.raw,
    seen.hidden))
end
T.finish()
