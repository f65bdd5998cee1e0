-- Greedy decoding with an EOS reward that grows as generation nears its budget, so answers end.
--
-- Usage: slua recipes/eos_reward.lua [--mode exp|linear] [--start 32] [--factor 1.05]
--        [--bonus 5.0] [--repetition-penalty 1.0] plus the common flags
-- exp:    HF ExponentialDecayLengthPenalty((start, factor)): once prompt + generated exceeds
--         prompt_len + start tokens, each EOS score s gets s + |s| * (factor^excess - 1).
-- linear: bonus * max(0, g - start) / (max_new_tokens - start) added to each EOS score, with g
--         the tokens generated so far.
-- Runs after the repetition penalty and before any sampling warper, as a user processor in HF.
local sl = require "slua"
local P = sl.processors

return sl.recipe{
  name = "eos_reward",
  options = {
    mode = { default = "exp", choices = { "exp", "linear" }, help = "the reward's shape" },
    start = { default = 32, min = 0, help = "tokens generated before the reward starts" },
    factor = { default = 1.05, gt = 0, help = "exp: growth factor per token past start" },
    bonus = { default = 5.0, help = "linear: the reward at max_new_tokens" },
    repetition_penalty = 1.0,
  },
  processors = function(ctx)
    local opt = ctx.opt
    local reward = opt.mode == "exp" and P.exp_decay_length(opt.start, opt.factor) or P.eos_linear(opt.bonus, opt.start)
    return P.standard(opt, { reward })
  end,
}
