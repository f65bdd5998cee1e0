-- Beam search, diverse beam search and contrastive search against HF transformers 4.47.1
-- generate() (tests/data/decoders), through the command line in JSON mode: every returned
-- sequence token for token, its score within 1e-4, the EOS that ended it; for contrastive
-- search also each step's candidates, probabilities and degeneration penalties.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local TOL = 1e-4

local function run_json(recipe, model, args)
  local cmd = ("%s %s/recipes/%s --model %s/tests/data/hf-tiny/%s --format json --threads 1 %s"):format(
    slua, SLUA_ROOT, recipe, SLUA_ROOT, model, args)
  local out, ok = T.run(cmd)
  if not ok then error(recipe .. " failed:\n" .. out) end
  return assert(sl.json.decode(out))
end

local function ids(v) return type(v) == "table" and table.concat(v, ",") or tostring(v) end

-- generate_kwargs -> recipe flags (eos per prompt).
local function flags(kw, eos)
  local f = { ("--max-new-tokens %d --eos-token-id %s"):format(kw.max_new_tokens, ids(eos)) }
  local map = { "num_beams", "length_penalty", "num_return_sequences", "no_repeat_ngram_size",
                "repetition_penalty", "num_beam_groups", "diversity_penalty", "penalty_alpha", "top_k" }
  for _, k in ipairs(map) do
    if kw[k] ~= nil then f[#f + 1] = ("--%s %s"):format(k:gsub("_", "-"), tostring(kw[k])) end
  end
  if kw.early_stopping ~= nil then f[#f + 1] = "--early-stopping " .. tostring(kw.early_stopping) end
  return table.concat(f, " ")
end

local function check_beams(model, file)
  local g = T.json_file(("%s/tests/data/decoders/%s/%s.json"):format(SLUA_ROOT, model, file))
  for r, res in ipairs(g.results) do
    T.case(("%s %s prompt %d"):format(file, model, r), function()
      local got = run_json("beam_search.lua", model, ("--prompt-ids %s %s"):format(
        ids(res.input_ids), flags(g.generate_kwargs, res.eos_token_id)))
      T.eq(#got.sequences, #res.new_token_ids, "number of sequences")
      for k, want in ipairs(res.new_token_ids) do
        local seq = got.sequences[k]
        T.eq(ids(seq.new_ids), ids(want), ("sequence %d"):format(k))
        T.near(seq.score, res.sequences_scores[k], TOL, ("score of sequence %d"):format(k))
        local ended = res.eos_that_ended and res.eos_that_ended[k]
        if ended and ended ~= sl.json.null then
          T.eq(seq.eos, type(ended) == "table" and ended[1] or ended, ("EOS of sequence %d"):format(k))
        else
          T.eq(seq.eos, sl.json.null, ("sequence %d ends without EOS"):format(k))
        end
      end
    end)
  end
end

local function check_contrastive(model, file)
  local g = T.json_file(("%s/tests/data/decoders/%s/%s.json"):format(SLUA_ROOT, model, file))
  for r, res in ipairs(g.results) do
    T.case(("%s %s prompt %d"):format(file, model, r), function()
      local got = run_json("contrastive_search.lua", model, ("--prompt-ids %s %s"):format(
        ids(res.input_ids), flags(g.generate_kwargs, res.eos_token_id)))
      T.eq(ids(got.new_ids), ids(res.new_token_ids[1]), "tokens")
      for i, step in ipairs(res.steps) do
        local c, mine = step.contrastive, got.steps[i]
        T.eq(ids(mine.top_k_ids), ids(c.top_k_ids), ("step %d candidates"):format(i))
        for k = 1, #c.top_k_ids do
          T.near(mine.top_k_probs[k], c.top_k_probs[k], 1e-5, ("step %d prob %d"):format(i, k))
          T.near(mine.degeneration_penalty[k], c.degeneration_penalty[k], 1e-4, ("step %d penalty %d"):format(i, k))
        end
      end
    end)
  end
end

for _, model in ipairs{ "tiny-llama", "tiny-llama-tied" } do
  for _, file in ipairs{ "beam4", "beam3_lp0.6_nrs3", "beam4_ngram2_rep1.3", "beam4_eos", "beam3_lp0.6_nrs3_eos",
                         "beam4_earlystop_eos", "beam4_lp0_multi_eos", "diverse_beam4_g2_dp0.5",
                         "diverse_beam4_g2_dp0.5_nrs4" } do
    check_beams(model, file)
  end
  check_contrastive(model, "contrastive_a0.6_k4")
end
T.finish()
