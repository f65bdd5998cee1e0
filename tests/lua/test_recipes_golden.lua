-- Recipes against HF transformers 4.47.1 goldens, through the command line a user types:
-- greedy.lua, repetition_penalty.lua and logits.lua with --format json on the hf-tiny models.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local data = SLUA_ROOT .. "/tests/data/hf-tiny/"
local models = { "tiny-llama", "tiny-llama-tied", "tiny-qwen2" }
local TOL = 1e-4

local function run_json(recipe, model, args)
  local out, ok = T.run(("%s %s/recipes/%s --model %s%s --format json %s"):format(slua, SLUA_ROOT, recipe, data, model, args))
  if not ok then error(recipe .. " failed:\n" .. out) end
  return assert(sl.json.decode(out))
end

-- Every result of a golden file reproduced token for token, with the processed top-8 scores
-- (and, for DoLa, the candidate layers, divergences, premature layer and kept count per step).
local function check_generation(model, golden_file, recipe, args, tol, rel)
  tol, rel = tol or TOL, rel or 0
  local g = T.json_file(data .. model .. "/golden/" .. golden_file)
  local max_new = g.generate_kwargs.max_new_tokens
  for r, res in ipairs(g.results) do
    T.case(("%s %s prompt %d"):format(recipe, model, r), function()
      local got = run_json(recipe, model, ("--prompt-ids %s --max-new-tokens %d %s"):format(
        table.concat(res.prompt, ","), max_new, args))
      T.eq(#got.new_ids, #res.new_token_ids, "number of new tokens")
      for i, id in ipairs(res.new_token_ids) do T.eq(got.new_ids[i], id, "token " .. i) end
      T.eq(got.stop_reason == "eos", res.stopped_on_eos, "stopped on eos")
      for i, step in ipairs(res.steps) do
        for k, pair in ipairs(step.top_scores) do
          if pair[2] == "-inf" or pair[2] == -math.huge then
            -- filtered tokens were not candidates: `top` lists only those that were
            T.eq(got.steps[i].top[k], nil, ("step %d top %d: a filtered token is not listed"):format(i, k))
          else
            T.eq(got.steps[i].top[k][1], pair[1], ("step %d top %d id"):format(i, k))
            T.near(got.steps[i].top[k][2], pair[2], tol + rel * math.abs(pair[2]), ("step %d top %d score"):format(i, k))
          end
        end
        local d, mine = step.dola, got.steps[i]
        if d then
          T.eq(mine.premature_layer, d.premature_layer, ("step %d premature layer"):format(i))
          T.eq(table.concat(mine.candidate_layers, ","), table.concat(d.candidate_layers, ","), "candidates")
          T.eq(mine.relative_top_kept, d.relative_top_kept, ("step %d relative-top kept"):format(i))
          if d.js_divs ~= sl.json.null then
            for k, v in ipairs(d.js_divs) do T.near(mine.js_divs[k], v, 1e-5, ("step %d js_divs[%d]"):format(i, k)) end
          else
            T.eq(mine.js_divs, sl.json.null, "js_divs of static DoLa")
          end
        end
      end
    end)
  end
end

local function max_diff(a, b)
  local d = 0
  for i = 1, #b do d = math.max(d, math.abs(a[i] - b[i])) end
  return d
end

for _, m in ipairs(models) do
  check_generation(m, "greedy.json", "greedy.lua", "")
  check_generation(m, "rep_penalty_1.2.json", "repetition_penalty.lua", "--repetition-penalty 1.2")
  for _, file in ipairs{ "dola_high_rep_1.2.json", "dola_low.json", "dola_layers_2_4.json" } do
    local kw = T.json_file(data .. m .. "/golden/" .. file).generate_kwargs
    local layers = type(kw.dola_layers) == "table" and table.concat(kw.dola_layers, ",") or kw.dola_layers
    -- DoLa scores subtract log-softmaxed raw early-exit logits, which carry HF's own float32
    -- rounding of up to ~1e-4 (tests/unit/test_forward.c), and the penalty scales negative
    -- scores by 1.2, so scores are held to 3e-4 plus float32's relative rounding of a score
    -- (1e-5 of scores near 20: their log-softmax terms are sums over the vocabulary). Tokens,
    -- premature layers, kept counts are exact and divergences within 1e-5.
    check_generation(m, file, "dola.lua",
      ("--dola-layers %s --repetition-penalty %s"):format(layers, kw.repetition_penalty or 1.0), 3e-4, 1e-5)
  end
  T.case("logits.lua " .. m, function()
    local g = T.json_file(data .. m .. "/golden/logit_lens.json")
    local N = g.num_hidden_layers
    local layers = {}
    for l = 0, N do layers[#layers + 1] = l end
    local got = run_json("logits.lua", m, ("--prompt-ids %s --layers %s"):format(
      table.concat(g.prompt, ","), table.concat(layers, ",")))
    for pos, row in ipairs(g.final_logits_all_positions) do
      T.truthy(max_diff(got.final[pos], row) <= TOL, "final logits at position " .. pos)
    end
    for l = 0, N do
      local lay = got.layers[tostring(l)]
      T.truthy(max_diff(lay.norm, g.per_layer_last_pos_logits_final_norm[l + 1]) <= TOL, "norm logits layer " .. l)
      -- raw early exits: see tests/unit/test_forward.c for why 2e-4 (HF's own rounding)
      T.truthy(max_diff(lay.raw, g.per_layer_last_pos_logits_no_norm_as_used_by_hf_dola[l + 1]) <= 2e-4,
        "raw logits layer " .. l)
      T.truthy(max_diff(lay.hidden, g.per_layer_last_pos_hidden_state[l + 1]) <= TOL, "hidden layer " .. l)
    end
  end)
end
T.finish()
