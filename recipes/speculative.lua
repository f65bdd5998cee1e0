-- Speculative decoding (Leviathan et al. 2023, arXiv 2211.17192; Chen et al. 2023, arXiv
-- 2302.01318) with a self-speculative draft that skips blocks (Draft & Verify, Zhang et al.
-- 2023, arXiv 2309.08168) or a smaller draft model with the same vocabulary.
--
-- Usage: slua recipes/speculative.lua [--draft-skip-blocks 2,3 | 8:16] [--draft-model DIR]
--        [--draft-tokens 4] [--do-sample] [--temperature 1.0] [--top-k 50] [--top-p 1.0]
--        [--repetition-penalty 1.0] [--eos-token-id ID[,ID...]] plus the common flags
-- The draft proposes --draft-tokens tokens, the model verifies them in one multi-token eval
-- and both sessions rewind past the first refusal. Greedy (the default) gives greedy.lua's
-- tokens; --do-sample uses the rejection rule, so the text follows the model's own sampling
-- distribution. Without a draft option the draft skips the upper half of the blocks but the
-- last. JSON adds rounds ({drafted, accepted} per verification) and mean_accepted.
local sl = require "slua"
local decode = require "slua.decoders.decode"
local speculative = require "slua.decoders.speculative"
local blocks = require "slua.decoders.blocks"

return sl.recipe{
  name = "speculative",
  options = {
    draft_skip_blocks = { default = "", help = "blocks the draft skips, e.g. 2,3 or 8:16 (\"\" = the upper half but the last)",
                          check = blocks.syntax, rule = blocks.help_rule, model_check = speculative.blocks_rule },
    draft_skip_layers = { alias = "draft_skip_blocks", translate = blocks.from_closed_ranges,
                          help = "older name of --draft-skip-blocks: 8-15 (closed) means 8:16" },
    draft_model = { default = "", help = "a smaller draft model with the same vocabulary (instead of skipping blocks)" },
    draft_tokens = { default = 4, min = 1, help = "tokens the draft proposes per round" },
    do_sample = false, eos_token_id = "", temperature = 1.0, top_k = 50, top_p = 1.0, min_p = 0.0, repetition_penalty = 1.0,
  },
  run = decode.search(function(ctx, progress)
    local opt, model = ctx.opt, ctx.model
    local draft
    if opt.draft_model ~= "" then
      draft = decode.load_draft(opt.draft_model, model):session{ kv_type = opt.kv_type }
    else
      local N = model.n_layer
      local spec = opt.draft_skip_blocks ~= "" and opt.draft_skip_blocks or ("%d:%d"):format(N // 2, N - 1)
      draft = sl.session(ctx, { skip = speculative.parse_blocks(spec, N), kv_type = opt.kv_type })
    end
    local eos = {}
    for _, id in ipairs(decode.eos_ids(opt, model)) do eos[id] = true end
    return decode.speculative({
      model = model, main = sl.session(ctx, { kv_type = opt.kv_type }), draft = draft, prompt = ctx.prompt, k = opt.draft_tokens,
      max_new_tokens = opt.max_new_tokens, chain = sl.chain(sl.processors.standard(opt)), eos = eos,
      sample = opt.do_sample, rng = sl.rng(opt.seed), draft_name = opt.draft_model ~= "" and opt.draft_model or nil,
    }, progress)
  end),
}
