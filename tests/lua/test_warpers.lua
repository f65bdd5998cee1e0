-- HF's warpers (Typical, Epsilon, Eta, TopK, TopP, Temperature and HF's chain of them) on the
-- fixed logit vectors of tests/data/decoders/*/warpers.json (HF transformers 4.47.1): the kept
-- index sets exactly and the kept values within 1e-5. Inside a tie group that HF's unstable sort
-- cut arbitrarily (split_tie_groups), only the number kept is compared.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local warpers = {
  ["typical_0.9"] = function(x) return x:keep_typical(0.9) end,
  ["typical_0.2"] = function(x) return x:keep_typical(0.2) end,
  ["epsilon_3e-4"] = function(x) return x:keep_epsilon(3e-4) end,
  ["eta_2e-3"] = function(x) return x:keep_eta(2e-3) end,
  ["top_k_5"] = function(x) return x:keep_top_k(5) end,
  ["top_p_0.8"] = function(x) return x:keep_top_p(0.8) end,
  ["temperature_0.7"] = function(x) return x:temperature(0.7) end,
  ["chain_t0.7_k10_p0.9_typ0.9"] = function(x)
    return x:temperature(0.7):keep_top_k(10):keep_top_p(0.9):keep_typical(0.9)
  end,
}

for _, model in ipairs{ "tiny-llama", "tiny-llama-tied" } do
  local g = T.json_file(SLUA_ROOT .. "/tests/data/decoders/" .. model .. "/warpers.json")
  for _, vec in ipairs(g.vectors) do
    for name, want in pairs(vec.results) do
      T.case(("%s vector %d %s"):format(model, vec.vector_index, name), function()
        local fn = assert(warpers[name], "no warper for " .. name)
        local x = fn(sl.logits(vec.logits))
        local split = {}
        for _, grp in ipairs(want.split_tie_groups or {}) do
          local kept = 0
          for _, id in ipairs(grp.ids) do
            split[id] = true
            if x:get(id) > -math.huge then kept = kept + 1 end
          end
          T.eq(kept, grp.n_kept_in_group, "kept inside the split tie group")
        end
        local wanted = {}
        for i, id in ipairs(want.kept_indices) do wanted[id] = want.kept_values[i] end
        local n = 0
        for id = 0, #x - 1 do
          local v = x:get(id)
          if not split[id] then
            if wanted[id] then
              T.truthy(v > -math.huge, ("id %d kept"):format(id))
              T.near(v, wanted[id], 1e-5, ("value of id %d"):format(id))
            else
              T.eq(v, -math.huge, ("id %d masked"):format(id))
            end
          end
          if v > -math.huge then n = n + 1 end
        end
        T.eq(n, want.n_kept, "number kept")
      end)
    end
  end
end
T.finish()
