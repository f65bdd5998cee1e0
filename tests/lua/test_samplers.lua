-- The Lua faces of the HF warpers and llama.cpp's samplers: processors in chains, mirostat's
-- state update by hand, DRY on a session's history, and the recipes' option checks.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"
local P = sl.processors

local slua = arg[1] or "build/slua"
local function logs(p)
  local t = {}
  for i, v in ipairs(p) do t[i] = math.log(v) end
  return sl.logits(t)
end
local function kept(x)
  local s = {}
  for id = 0, #x - 1 do s[#s + 1] = x:get(id) > -math.huge and "1" or "0" end
  return table.concat(s)
end

T.case("typical, epsilon and eta in one chain, HF's order", function()
  local chain = sl.chain{ P.typical_p(0.9), P.epsilon(0.1), P.eta(0.25) }
  T.eq(kept(chain({}, logs{ 0.5, 0.3, 0.15, 0.05 })), "1100", "kept")
  T.eq(table.concat(sl.chain(P.standard{ do_sample = true, typical_p = 0.9, epsilon_cutoff = 3e-4,
    eta_cutoff = 2e-3 }):names(), ","), "typical_p,epsilon,eta", "standard chain")
end)

T.case("mirostat v2 updates mu from the surprise of the drawn token", function()
  local p, state = P.mirostat_v2(3, 0.5)
  T.eq(state.mu, 6, "mu starts at 2 tau")
  local ctx = { generated = {} }
  p.fn(ctx, logs{ 0.5, 0.25, 0.125, 0.125 })
  ctx.generated[1] = 1 -- surprise 2 bits in the kept distribution
  local scores = logs{ 0.5, 0.25, 0.125, 0.125 }
  p.fn(ctx, scores)
  T.near(state.mu, 6 - 0.5 * (2 - 3), 1e-6, "mu after one draw")
end)

T.case("xtc and top-n-sigma faces", function()
  local x = logs{ 0.4, 0.3, 0.2, 0.1 }
  local _, masked = x:xtc(0.25, 1.0, 0.0)
  T.eq(masked, 1, "one top choice masked")
  T.eq(kept(x), "0111", "xtc")
  T.eq(kept(sl.logits{ 1, 2, 3, 4 }:keep_top_n_sigma(1)), "0011", "top-n-sigma")
  T.raises(function() x:xtc(2, 0.5, 0.1) end, "threshold", "bad threshold")
end)

T.case("dry reads the session's history", function()
  local model <close> = sl.check(sl.load(SLUA_ROOT .. "/tests/data/hf-tiny/tiny-llama"))
  local s <close> = model:session()
  s:prefill{ 5, 1, 2, 3, 7, 5, 1, 2 }
  local scores = sl.logits(model.n_vocab, 0)
  P.dry(1.0, { base = 2, allowed_length = 2 }).fn({ session = s }, scores)
  T.eq(scores:get(3), -2, "token 3 repeats 5 1 2 3")
  T.eq(scores:get(4), 0, "others untouched")
  scores = sl.logits(model.n_vocab, 0)
  P.dry(1.0, { base = 2, allowed_length = 2, window = 4 }).fn({ session = s }, scores)
  T.eq(scores:get(3), 0, "outside the window")
end)

T.case("recipes reject bad sampler options", function()
  for _, c in ipairs{ { "sample.lua --typical-p 0", "option --typical-p must be in (0, 1] (got 0" },
                      { "sample.lua --eta-cutoff 1", "option --eta-cutoff must be in [0, 1)" },
                      { "llama_samplers.lua --dry-base 0.5", "option --dry-base must be >= 1 (got 0.5)" },
                      { "llama_samplers.lua --mirostat-tau -1", "option --mirostat-tau must be >= 0" },
                      { "beam_search.lua --num-beams 0", "option --num-beams must be >= 1 (got 0)" },
                      { "beam_search.lua --num-beams 2 --num-return-sequences 3", "must be <= --num-beams" },
                      { "contrastive_search.lua --top-k 0", "option --top-k must be >= 1 (got 0)" } } do
    local out, ok = T.run(("%s %s/recipes/%s"):format(slua, SLUA_ROOT, c[1]))
    T.truthy(not ok, c[1] .. " fails")
    T.truthy(out:find(c[2], 1, true) and not out:find("traceback", 1, true), c[1] .. ": " .. out)
  end
end)
T.finish()
