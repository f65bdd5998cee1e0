-- Contrastive search (Su et al., NeurIPS 2022, arXiv 2202.06417), HF-exact (HF generate with
-- penalty_alpha > 0 and top_k > 1).
--
-- Usage: slua recipes/contrastive_search.lua [--penalty-alpha 0.6] [--top-k 4]
--        [--eos-token-id ID[,ID...]] [--repetition-penalty 1.0] plus the common flags
-- Each step takes the top-k tokens of softmax(processed logits), evaluates each one, and picks
-- argmax (1 - alpha) p - alpha * max cos(h, h_j): h is the candidate's last hidden state after
-- the final norm (HF's hidden_states[-1]) and h_j those of every earlier position, prompt
-- included (session{keep_hidden = true} records them). The k candidates go through the model
-- in one pass (session:eval_branches, as HF's batch of k); the chosen one is then evaluated
-- for good. JSON steps add top_k_ids, top_k_probs and degeneration_penalty.
local sl = require "slua"
local decode = require "slua.decoders.decode"
local P = sl.processors

return sl.recipe{
  name = "contrastive_search",
  options = {
    penalty_alpha = 0.6, eos_token_id = "", repetition_penalty = 1.0,
    top_k = { default = 4, min = 1, help = "candidates evaluated at each step" },
  },
  sample = false, processors = {},            -- the chain runs inside scores, before the softmax
  session = { keep_hidden = true },
  eos = function(ctx) return decode.eos_ids(ctx.opt, ctx.model) end,
  scores = function(ctx)
    local opt, alpha = ctx.opt, ctx.opt.penalty_alpha
    ctx.candidate_chain = ctx.candidate_chain or sl.chain(P.standard(opt))
    local probs = ctx.candidate_chain(ctx, ctx.out.logits):softmax()
    local scores = sl.logits(#probs, -math.huge)
    local info = { top_k_ids = {}, top_k_probs = {}, degeneration_penalty = {} }
    for i, pair in ipairs(probs:top(opt.top_k)) do info.top_k_ids[i], info.top_k_probs[i] = pair[1], pair[2] end
    local penalties = ctx.session:eval_branches(info.top_k_ids).penalties
    for i, id in ipairs(info.top_k_ids) do
      scores:set(id, (1 - alpha) * info.top_k_probs[i] - alpha * penalties[i])
      info.degeneration_penalty[i] = penalties[i]
    end
    return scores, info
  end,
}
