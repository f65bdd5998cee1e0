-- Speculative decoding (Leviathan et al. 2023, arXiv 2211.17192; Chen et al. 2023, arXiv
-- 2302.01318) with a self-speculative draft that skips blocks (Draft & Verify, Zhang et al.
-- 2023, arXiv 2309.08168) or a smaller draft model with the same vocabulary.
--
-- Usage: slua recipes/speculative.lua [--draft-skip-layers 2,3 | 8-15] [--draft-model DIR]
--        [--draft-tokens 4] [--do-sample] [--temperature 1.0] [--top-k 50] [--top-p 1.0]
--        [--repetition-penalty 1.0] [--eos-token-id ID[,ID...]] plus the common flags
-- The draft proposes --draft-tokens tokens, the model verifies them in one multi-token eval
-- and both sessions rewind past the first refusal. Greedy (the default) gives greedy.lua's
-- tokens; --do-sample uses the rejection rule, so the text follows the model's own sampling
-- distribution. Without a draft option the draft skips the upper half of the blocks but the
-- last. JSON adds rounds ({drafted, accepted} per verification) and mean_accepted.
local sl = require "slua"
local decode = require "slua.decode"
local speculative = require "slua.speculative"

local opt = sl.run_options(arg, {
  draft_skip_layers = "", draft_model = "", draft_tokens = 4, do_sample = false, eos_token_id = "",
  temperature = 1.0, top_k = 50, top_p = 1.0, min_p = 0.0, repetition_penalty = 1.0,
})
if opt.draft_tokens < 1 then sl.fail(("option --draft-tokens must be >= 1 (got %d)"):format(opt.draft_tokens)) end

decode.run("speculative", opt, function(model, prompt)
  local draft
  if opt.draft_model ~= "" then
    draft = decode.load_draft(opt.draft_model, model):session()
  else
    local N = model.n_layer
    local spec = opt.draft_skip_layers ~= "" and opt.draft_skip_layers or ("%d-%d"):format(N // 2, N - 2)
    draft = model:session{ skip = speculative.parse_blocks(spec, N) }
  end
  local eos = {}
  for _, id in ipairs(decode.eos_ids(opt, model)) do eos[id] = true end
  local r = speculative.generate{
    model = model, main = model:session(), draft = draft, prompt = prompt, k = opt.draft_tokens,
    max_new_tokens = opt.max_new_tokens, chain = sl.chain(sl.processors.standard(opt)), eos = eos,
    sample = opt.do_sample, rng = sl.rng(opt.seed),
  }
  return decode.speculative_result(r)
end)
