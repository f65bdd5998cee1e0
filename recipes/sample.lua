-- Sampling with HF's warpers: temperature, top-k, top-p, min-p, typical, epsilon and eta
-- (HF generate, do_sample=True).
--
-- Usage: slua recipes/sample.lua [--temperature 1.0] [--top-k 50] [--top-p 1.0] [--min-p 0]
--        [--typical-p 1.0] [--epsilon-cutoff 0] [--eta-cutoff 0] [--seed 42]
--        [--repetition-penalty 1.0] plus the common flags (--model, --prompt, ...)
-- Order as in HF: repetition penalty, then temperature → top-k → top-p → min-p → typical
-- (Meister et al. 2022) → epsilon → eta (Hewitt et al. 2022), then a draw from softmax(scores)
-- with the seeded xoshiro256** generator (same seed, same text, on any thread count).
-- top_k = 50 is HF's default whenever sampling; --top-k 0 turns it off, as do --top-p 1,
-- --min-p 0, --typical-p 1 and the cutoffs 0. Ties at the top-k threshold are kept; top-p
-- keeps the token that crosses p.
local sl = require "slua"
local P = sl.processors

return sl.recipe{
  name = "sample", sample = true,
  options = {
    temperature = 1.0, top_k = 50, top_p = 1.0, min_p = 0.0, repetition_penalty = 1.0,
    typical_p = 1.0, epsilon_cutoff = 0.0, eta_cutoff = 0.0,
  },
  processors = function(ctx)
    local opt, chain = ctx.opt, sl.chain{}
    if opt.repetition_penalty ~= 1 then chain:insert(P.repetition_penalty(opt.repetition_penalty)) end
    if opt.temperature ~= 1 then chain:insert(P.temperature(opt.temperature)) end
    if opt.top_k > 0 then chain:insert(P.top_k(opt.top_k)) end
    if opt.top_p < 1 then chain:insert(P.top_p(opt.top_p)) end
    if opt.min_p > 0 then chain:insert(P.min_p(opt.min_p)) end
    if opt.typical_p < 1 then chain:insert(P.typical_p(opt.typical_p)) end
    if opt.epsilon_cutoff > 0 then chain:insert(P.epsilon(opt.epsilon_cutoff)) end
    if opt.eta_cutoff > 0 then chain:insert(P.eta(opt.eta_cutoff)) end
    return chain
  end,
}
