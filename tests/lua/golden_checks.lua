-- Checks of a model directory's HF goldens through the command line a user types: greedy.lua,
-- repetition_penalty.lua, dola.lua and logits.lua with --prompt-ids and --format json.
-- Shared by the hf-tiny (test_recipes_golden.lua) and architecture (test_arch_golden.lua) tests.
local T = require "harness"
local sl = require "slua"

local M = {}

local function run_json(slua, recipe, dir, args)
  local out, ok = T.run(("%s %s/recipes/%s --model %s --format json %s"):format(slua, SLUA_ROOT, recipe, dir, args))
  if not ok then error(recipe .. " failed:\n" .. out) end
  return assert(sl.json.decode(out))
end

local function max_diff(a, b)
  local d = 0
  for i = 1, #b do d = math.max(d, math.abs(a[i] - b[i])) end
  return d
end
M.max_diff = max_diff

local function max_abs(a)
  local d = 0
  for i = 1, #a do d = math.max(d, math.abs(a[i])) end
  return d
end

-- Every result of a golden file reproduced token for token, with the processed top-8 scores
-- (and, for DoLa, the candidate layers, divergences, premature layer and kept count per step).
-- opts: slua, dir (the model), name (in case names), tol, rel, extra (more CLI arguments),
-- label (a case-name suffix), rank_scores (ids below the top one are not held).
function M.generation(opts, golden_file, recipe, args)
  local tol, rel = opts.tol or 1e-4, opts.rel or 0
  local g = T.json_file(opts.dir .. "/golden/" .. golden_file)
  local max_new = g.generate_kwargs.max_new_tokens
  for r, res in ipairs(g.results) do
    T.case(("%s %s prompt %d%s"):format(recipe, opts.name, r, opts.label or ""), function()
      local got = run_json(opts.slua, recipe, opts.dir, ("--prompt-ids %s --max-new-tokens %d %s %s"):format(
        table.concat(res.prompt, ","), max_new, args, opts.extra or ""))
      T.eq(#got.new_ids, #res.new_token_ids, "number of new tokens")
      for i, id in ipairs(res.new_token_ids) do T.eq(got.new_ids[i], id, "token " .. i) end
      T.eq(got.stop_reason == "eos", res.stopped_on_eos, "stopped on eos")
      if opts.tokens_only then return end
      for i, step in ipairs(res.steps) do
        for k, pair in ipairs(step.top_scores) do
          if pair[2] == "-inf" or pair[2] == -math.huge then
            -- filtered tokens were not candidates: `top` lists only those that were
            T.eq(got.steps[i].top[k], nil, ("step %d top %d: a filtered token is not listed"):format(i, k))
          else
            -- with rank_scores (lossy options) only the chosen token's id is held; the k-th
            -- largest score moves no further than every score does, so scores still are
            if k == 1 or not opts.rank_scores then
              T.eq(got.steps[i].top[k][1], pair[1], ("step %d top %d id"):format(i, k))
            end
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

-- DoLa golden files: the recipe with the file's layers and repetition penalty. DoLa scores
-- subtract log-softmaxed raw early-exit logits, which carry HF's own float32 rounding of up to
-- ~1e-4 (tests/unit/test_forward.c), and the penalty scales negative scores by 1.2, so scores
-- are held to 3e-4 plus float32's relative rounding of a score (1e-5 of scores near 20: their
-- log-softmax terms are sums over the vocabulary). Tokens, premature layers, kept counts are
-- exact and divergences within 1e-5.
function M.dola(opts, file)
  local kw = T.json_file(opts.dir .. "/golden/" .. file).generate_kwargs
  local layers = type(kw.dola_layers) == "table" and table.concat(kw.dola_layers, ",") or kw.dola_layers
  local o = setmetatable({ tol = 3e-4, rel = 1e-5 }, { __index = opts })
  M.generation(o, file, "dola.lua", ("--dola-layers %s --repetition-penalty %s"):format(layers,
    kw.repetition_penalty or 1.0))
end

-- logits.lua over every layer: final logits at every position, normed (logit-lens) and raw
-- early-exit logits and hidden states of the last position. raw_tol(max |raw|) gives the raw
-- rows' tolerance. Returns the largest differences seen.
function M.logit_lens(opts, raw_tol)
  local seen = { final = 0, norm = 0, raw = 0, hidden = 0 }
  T.case("logits.lua " .. opts.name .. (opts.label or ""), function()
    local g = T.json_file(opts.dir .. "/golden/logit_lens.json")
    local N = g.num_hidden_layers
    local layers = {}
    for l = 0, N do layers[#layers + 1] = l end
    local got = run_json(opts.slua, "logits.lua", opts.dir, ("--prompt-ids %s --layers %s %s"):format(
      table.concat(g.prompt, ","), table.concat(layers, ","), opts.extra or ""))
    local tol = opts.tol or 1e-4
    for pos, row in ipairs(g.final_logits_all_positions) do
      local d = max_diff(got.final[pos], row)
      seen.final = math.max(seen.final, d)
      T.truthy(d <= tol, ("final logits at position %d (|d| %.3g)"):format(pos, d))
    end
    for l = 0, N do
      local lay = got.layers[tostring(l)]
      local want_raw = g.per_layer_last_pos_logits_no_norm_as_used_by_hf_dola[l + 1]
      local dn = max_diff(lay.norm, g.per_layer_last_pos_logits_final_norm[l + 1])
      local dr = max_diff(lay.raw, want_raw)
      local dh = max_diff(lay.hidden, g.per_layer_last_pos_hidden_state[l + 1])
      seen.norm, seen.raw, seen.hidden = math.max(seen.norm, dn), math.max(seen.raw, dr), math.max(seen.hidden, dh)
      T.truthy(dn <= tol, ("norm logits layer %d (|d| %.3g)"):format(l, dn))
      T.truthy(dr <= raw_tol(max_abs(want_raw)), ("raw logits layer %d (|d| %.3g)"):format(l, dr))
      T.truthy(dh <= tol,
        ("hidden layer %d (|d| %.3g)"):format(l, dh))
    end
  end)
  return seen
end

return M
