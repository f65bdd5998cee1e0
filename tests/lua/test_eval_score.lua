-- lm_score against the official DoLa code (voidism/DoLa dola.py, float32 on CPU) on the tiny
-- random models: 32 cases x 9 modes x 2 models, every per-token term, every dynamic premature
-- layer; prefix reuse gives the same scores as a full recompute with fewer token-forwards.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"
local ev = require "slua.eval"

local slua = arg[1] or "build/slua"
local data = slua:gsub("[^/]+$", "") .. "data/evals/"

local function options(sc)
  local o = { mode = sc.mode, mature_layer = sc.mature_layer, relative_top = sc.relative_top or 0.1,
              post_softmax = sc.post_softmax }
  if sc.mode == "dola-static" then o.premature_layer = sc.premature_layer end
  if sc.mode == "dola" then o.candidate_layers = sc.candidate_premature_layers end
  return o
end

local function rel(a, b) return math.abs(a - b) / math.max(1, math.abs(b)) end

for _, name in ipairs{ "tiny-llama", "tiny-llama-tied" } do
  local fx = T.json_file(data .. name .. "/lm_score.json")
  local model = sl.check(sl.load(SLUA_ROOT .. "/tests/data/hf-tiny/" .. name))

  T.case(name .. ": 32 cases x 9 modes, per-token terms and premature layers", function()
    local n, worst = 0, 0
    for _, c in ipairs(fx.cases) do
      for _, sc in ipairs(c.scores) do
        local r = ev.lm_score(model, c.full_ids, c.n_prefix, options(sc))
        local d = rel(r.log_prob, sc.log_prob)
        worst = math.max(worst, d)
        if d > 1e-4 then
          error(("case %d %s rt=%s ps=%s: %.9g, expected %.9g"):format(c.id, sc.mode, tostring(sc.relative_top),
            tostring(sc.post_softmax), r.log_prob, sc.log_prob))
        end
        T.eq(#r.per_token, #sc.per_token, "per-token count")
        for i, t in ipairs(sc.per_token) do
          if rel(r.per_token[i], t) > 1e-4 then
            error(("case %d %s token %d: %.9g, expected %.9g"):format(c.id, sc.mode, i, r.per_token[i], t))
          end
        end
        if sc.mode == "dola" then
          T.eq(table.concat(r.premature_layers, ","), table.concat(c.premature_layers, ","),
            ("case %d premature layers"):format(c.id))
        end
        n = n + 1
      end
    end
    T.eq(n, 32 * 9, "scores checked")
    T.truthy(worst < 1e-4, "worst relative difference " .. worst)
  end)

  T.case(name .. ": prefix reuse equals a full recompute, with fewer forwards", function()
    ev.reset_stats()
    local cached, plain = {}, {}
    local o = { mode = "dola", candidate_layers = fx.layer_sets.dynamic_candidates, relative_top = 0.1 }
    for i, c in ipairs(fx.cases) do cached[i] = ev.lm_score(model, c.full_ids, c.n_prefix, o).log_prob end
    local with_cache = ev.stats.n_forwarded
    o.prefix_cache = false
    ev.reset_stats()
    for i, c in ipairs(fx.cases) do plain[i] = ev.lm_score(model, c.full_ids, c.n_prefix, o).log_prob end
    for i = 1, #cached do T.truthy(rel(cached[i], plain[i]) <= 1e-5, ("case %d: %.9g vs %.9g"):format(i, cached[i], plain[i])) end
    T.truthy(with_cache < ev.stats.n_forwarded, ("forwards %d with the cache, %d without"):format(with_cache, ev.stats.n_forwarded))
  end)
end

T.case("a score is the sum of its terms, not a mean (evals.md §2); clean errors", function()
  local model = sl.check(sl.load(SLUA_ROOT .. "/tests/data/hf-tiny/tiny-llama"))
  local r = ev.lm_score(model, { 1, 5, 6, 7 }, 2, {})
  T.near(r.log_prob, r.per_token[1] + r.per_token[2], 1e-4, "sum of the terms")
  T.eq(ev.lm_score(model, { 1, 5 }, 2, {}).log_prob, 0.0, "empty answer")
  T.raises(function() ev.lm_score(model, { 1, 5 }, 1, { mode = "greedy" }) end, "mode must be")
  T.raises(function() ev.lm_score(model, { 1, 5 }, 1, { mode = "dola" }) end, "candidate_layers")
  T.raises(function() ev.lm_score(model, { 1, 5 }, 1, { mode = "dola-static", premature_layer = 99 }) end,
    "premature layer 99 out of range")
  T.raises(function() ev.lm_score(model, { 1, 5 }, 0, {}) end, "n_prefix")
end)

T.case("--early-exit-layers means what the official scripts mean", function()
  T.eq(ev.layers_setting({ -1 }).mode, "baseline", "one entry")
  local s = ev.layers_setting({ 2, 8 })
  T.eq(s.mode .. s.premature_layer .. s.mature_layer, "dola-static28", "two entries")
  local d = ev.layers_setting({ 4, 0, 2, 8 })
  T.eq(d.mode .. table.concat(d.candidate_layers, ",") .. d.mature_layer, "dola4,0,28", "order kept")
end)

T.finish()
