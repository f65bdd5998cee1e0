-- Speculative decoding: greedy speculative output equals HF greedy (the hf-tiny goldens, with
-- and without repetition penalty) and the stories260K 200-token reference, with a self-draft
-- (skipped blocks, several k) and with a second draft model; the rejection rule reproduces the
-- model's distribution (Monte Carlo on a three-token vocabulary).
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local data = SLUA_ROOT .. "/tests/data/hf-tiny/"

local function run_json(args)
  local out, ok = T.run(("%s %s/recipes/speculative.lua --format json --threads 1 %s"):format(slua, SLUA_ROOT, args))
  if not ok then error("speculative.lua failed:\n" .. out) end
  return assert(sl.json.decode(out))
end

local function ids(v) return table.concat(v, ",") end

local drafts = { ["tiny-llama"] = "tiny-llama-tied", ["tiny-llama-tied"] = "tiny-llama", ["tiny-qwen2"] = "tiny-llama" }
for model, other in pairs(drafts) do
  for _, golden in ipairs{ "greedy.json", "rep_penalty_1.2.json" } do
    local g = T.json_file(data .. model .. "/golden/" .. golden)
    local penalty = g.generate_kwargs.repetition_penalty or 1.0
    for r, res in ipairs(g.results) do
      local base = ("--model %s%s --prompt-ids %s --max-new-tokens %d --repetition-penalty %s"):format(
        data, model, ids(res.prompt), g.generate_kwargs.max_new_tokens, penalty)
      local variants = {
        { "self-draft k=4", "--draft-tokens 4" },
        { "self-draft k=2, blocks 1,2", "--draft-tokens 2 --draft-skip-layers 1,2" },
        { "draft model k=3", ("--draft-tokens 3 --draft-model %s%s"):format(data, other) },
      }
      for _, v in ipairs(variants) do
        T.case(("%s %s prompt %d, %s"):format(model, golden, r, v[1]), function()
          local got = run_json(base .. " " .. v[2])
          T.eq(ids(got.new_ids), ids(res.new_token_ids), "tokens")
          T.truthy(#got.rounds >= 1 and got.mean_accepted >= 0, "rounds reported")
        end)
      end
    end
  end
end

local ref = T.json_file(SLUA_ROOT .. "/tests/data/stories260K/reference_outputs.json").greedy_from_bos
for _, v in ipairs{ { "self-draft k=4", "" }, { "self-draft k=8, block 3", "--draft-tokens 8 --draft-skip-layers 3" },
                    { "draft model k=4", "--draft-model " .. data .. "tiny-llama" } } do
  T.case("stories260K 200 tokens, " .. v[1], function()
    local got = run_json(("--prompt-ids 1 --max-new-tokens 200 %s"):format(v[2]))
    T.eq(ids(got.new_ids), ids(ref.generated_ids), "tokens")
    local n = 0
    for _, round in ipairs(got.rounds) do n = n + round.accepted + 1 end
    T.eq(n, 200, "accepted + one per round = tokens")
  end)
end

-- One round with k = 1 by hand: draft token d ~ q, accepted with probability min(1, p/q),
-- else a draw from norm(max(0, p - q)). The result must be distributed as p.
T.case("rejection rule gives the model's distribution", function()
  local p = sl.logits{ math.log(0.6), math.log(0.3), math.log(0.1) }
  local q = sl.logits{ math.log(0.2), math.log(0.3), math.log(0.5) }
  local pp, qp = p:clone():softmax(), q:clone():softmax()
  local rng, counts, trials = sl.rng(7), { 0, 0, 0 }, 30000
  for _ = 1, trials do
    local d = q:sample(rng)
    local id = d
    if rng:uniform() >= pp:get(d) / qp:get(d) then id = p:sample_residual(q, rng) end
    counts[id + 1] = counts[id + 1] + 1
  end
  for i, want in ipairs{ 0.6, 0.3, 0.1 } do T.near(counts[i] / trials, want, 0.01, "frequency of id " .. (i - 1)) end
end)

T.case("residual draw by hand", function()
  local p = sl.logits{ math.log(0.5), math.log(0.3), math.log(0.2) }
  local q = sl.logits{ math.log(0.2), math.log(0.5), math.log(0.3) }
  local rng = sl.rng(1)
  for _ = 1, 50 do T.eq(p:sample_residual(q, rng), 0, "only id 0 has p > q") end
  T.eq(p:sample_residual(p, sl.rng(3)), p:sample(sl.rng(3)), "p == q draws from p")
end)

T.case("sampling runs to the requested length with rounds that add up", function()
  local got = run_json("--do-sample --temperature 0.8 --top-k 20 --seed 3 --max-new-tokens 40 --draft-tokens 3 --eos-token-id 9999")
  T.eq(#got.new_ids, 40, "tokens")
  local n = 0
  for _, round in ipairs(got.rounds) do
    T.truthy(round.accepted >= 0 and round.accepted <= round.drafted, "accepted within drafted")
    n = n + round.accepted + 1
  end
  T.eq(n, 40, "accepted + one per round = tokens")
  local again = run_json("--do-sample --temperature 0.8 --top-k 20 --seed 3 --max-new-tokens 40 --draft-tokens 3 --eos-token-id 9999")
  T.eq(ids(again.new_ids), ids(got.new_ids), "same seed, same tokens")
end)

T.case("bad draft options fail cleanly", function()
  local out, ok = T.run(("%s %s/recipes/speculative.lua --draft-skip-blocks 9"):format(slua, SLUA_ROOT))
  T.truthy(not ok and out:find("option --draft-skip-blocks", 1, true), out)
  out, ok = T.run(("%s %s/recipes/speculative.lua --draft-tokens 0"):format(slua, SLUA_ROOT))
  T.truthy(not ok and out:find("option --draft-tokens must be >= 1 (got 0)", 1, true), out)
  out, ok = T.run(("%s %s/recipes/speculative.lua --draft-model %s/tests/data/stories260K"):format(slua, SLUA_ROOT, SLUA_ROOT))
  T.truthy(not ok and not out:find("traceback", 1, true), out)
end)
T.finish()
