-- Contrastive decoding with a smaller amateur model (Li et al., ACL 2023, arXiv 2210.15097).
--
-- Usage: slua recipes/contrastive.lua --amateur DIR [--contrast logprob|official] [--alpha 0.1]
--        [--beta 0.5] [--amateur-temperature 0.5] plus the common flags (--model is the expert)
-- logprob (the paper): log p_E - log p_A(./tau) on tokens with p_E >= alpha * max p_E, -inf
-- elsewhere; the amateur temperature tau = 0.5 follows the authors' README. official: the
-- logit-space form (O'Brien & Lewis 2023, arXiv 2309.09117) e + beta (e - a) on e >= max e +
-- ln alpha. Both models must share the vocabulary (checked). Without --amateur, the expert is
-- its own amateur (a degenerate but runnable check).
local sl = require "slua"
local contrast = require "slua.decoders.contrast"

return contrast.recipe{
  name = "contrastive",
  options = contrast.options_with{
    amateur = { default = "", type = "string", help = "the amateur model's directory (\"\" = the expert)" },
    contrast = "logprob", amateur_temperature = 0.5,
  },
  amateur = function(ctx)
    local dir = ctx.opt.amateur ~= "" and ctx.opt.amateur or ctx.model.path
    local amateur = sl.check(sl.load(dir, { weights = ctx.model.weights }))
    if amateur.n_vocab ~= ctx.model.n_vocab then
      sl.fail(("%s: vocabulary of %d ids, the expert has %d"):format(dir, amateur.n_vocab, ctx.model.n_vocab))
    end
    if amateur.tokenizer and ctx.tokenizer then
      local same, at = amateur.tokenizer:same_vocab(ctx.tokenizer)
      if not same then sl.fail(("%s: tokenizer differs from the expert's at id %d"):format(dir, at)) end
    end
    ctx.extra.amateur = dir
    return amateur:session{ kv_type = ctx.opt.kv_type }
  end,
}
