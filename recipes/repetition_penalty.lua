-- Greedy decoding with the CTRL repetition penalty (Keskar et al. 2019, arXiv 1909.05858;
-- HF RepetitionPenaltyLogitsProcessor).
--
-- Usage: slua recipes/repetition_penalty.lua [--repetition-penalty 1.2] [--window 0]
--        [--exclude-prompt] [--exempt 13,29889] plus the common flags
-- Every distinct token of prompt + generated text is penalised once per step: positive scores
-- are divided by the penalty, negative ones multiplied (so the penalty depends on the sign,
-- and a contrast that shifts scores changes its effect). Options beyond HF's: --window N looks
-- at the last N tokens only, --exclude-prompt ignores the prompt, --exempt lists ids that are
-- never penalised (newline, punctuation).
local sl = require "slua"
local P = sl.processors

return sl.recipe{
  name = "repetition_penalty", sample = false,
  options = {
    repetition_penalty = 1.2,
    window = { default = 0, min = 0, help = "look at the last N tokens only (0 = all)" },
    exclude_prompt = { default = false, help = "do not penalise the prompt's tokens" },
    exempt = { default = "", type = "ids", model_check = sl.option_rules.vocab_ids, help = "ids never penalised" },
  },
  processors = function(ctx)
    local opt = ctx.opt
    return { P.repetition_penalty(opt.repetition_penalty, {
      window = opt.window > 0 and opt.window or nil,
      include_prompt = not opt.exclude_prompt,
      exempt = sl.parse_ids(opt.exempt, "exempt"),
    }) }
  end,
}
