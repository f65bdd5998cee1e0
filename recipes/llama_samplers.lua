-- llama.cpp's samplers that HF lacks, with llama.cpp's defaults and order (common/sampling):
-- DRY (p-e-w, llama.cpp PR #9702), top-n-sigma (Tang et al. 2024, arXiv 2411.07641), XTC
-- (p-e-w, PR #9742) and mirostat v2 (Basu et al. 2021, arXiv 2007.14966).
--
-- Usage: slua recipes/llama_samplers.lua [--temperature 0.8] [--top-k 40] [--top-p 0.95]
--        [--min-p 0.05] [--top-n-sigma 0] [--xtc-probability 0 --xtc-threshold 0.1]
--        [--dry-multiplier 0 --dry-base 1.75 --dry-allowed-length 2 --dry-penalty-last-n 0
--        --dry-breakers '\n|:|"|*'] [--mirostat-tau 0 --mirostat-eta 0.1]
--        [--repetition-penalty 1.0] plus the common flags
-- Chain: repetition penalty → DRY → top-n-sigma → top-k → top-p → min-p → XTC → temperature,
-- then a seeded draw; with --mirostat-tau > 0: repetition penalty → DRY → temperature →
-- mirostat v2 (llama.cpp drops the other truncations then). Zeros turn a sampler off. DRY
-- breakers are strings separated by "|", each standing for the tokens it encodes to.
local sl = require "slua"
local P = sl.processors

return sl.recipe{
  name = "llama_samplers", sample = true,
  options = {
    temperature = 0.8, top_k = 40, top_p = 0.95, min_p = 0.05, repetition_penalty = 1.0,
    top_n_sigma = { default = 0.0, min = 0, help = "keep tokens within n standard deviations of the best (0 = off)" },
    xtc_probability = { default = 0.0, min = 0, max = 1, help = "XTC: chance per step of excluding the top choices (0 = off)" },
    xtc_threshold = { default = 0.1, min = 0, max = 1, help = "XTC: tokens with p >= this are top choices" },
    dry_multiplier = { default = 0.0, min = 0, help = "DRY: penalty scale (0 = off)" },
    dry_base = { default = 1.75, min = 1, help = "DRY: penalty base, raised to the repeat length past the allowed one" },
    dry_allowed_length = { default = 2, min = 1, help = "DRY: repeats this long go unpenalised" },
    dry_penalty_last_n = { default = 0, min = 0, help = "DRY: look at the last N tokens only (0 = all)" },
    dry_breakers = { default = '\n|:|"|*', help = "DRY: strings that end a repeat, separated by |" },
    mirostat_tau = { default = 0.0, min = 0, help = "mirostat v2: target surprise (0 = off)" },
    mirostat_eta = { default = 0.1, min = 0, help = "mirostat v2: learning rate" },
},
  processors = function(ctx)
    local opt, model = ctx.opt, ctx.model
    local chain = sl.chain{}
    if opt.repetition_penalty ~= 1 then chain:insert(P.repetition_penalty(opt.repetition_penalty)) end
    if opt.dry_multiplier > 0 then
      local breakers = {}
      for s in opt.dry_breakers:gsub("\\n", "\n"):gmatch("[^|]+") do
        for _, id in ipairs(model.tokenizer and model.tokenizer:encode(s) or {}) do breakers[#breakers + 1] = id end
      end
      chain:insert(P.dry(opt.dry_multiplier, { base = opt.dry_base, allowed_length = opt.dry_allowed_length,
                                               window = opt.dry_penalty_last_n, breakers = breakers }))
    end
    local mirostat = opt.mirostat_tau > 0
    if not mirostat then
      if opt.top_n_sigma > 0 then chain:insert(P.top_n_sigma(opt.top_n_sigma)) end
      if opt.top_k > 0 then chain:insert(P.top_k(opt.top_k)) end
      if opt.top_p < 1 then chain:insert(P.top_p(opt.top_p)) end
      if opt.min_p > 0 then chain:insert(P.min_p(opt.min_p)) end
      if opt.xtc_probability > 0 then chain:insert(P.xtc(opt.xtc_threshold, opt.xtc_probability, { seed = opt.seed + 1 })) end
    end
    if opt.temperature ~= 1 then chain:insert(P.temperature(opt.temperature)) end
    if mirostat then chain:insert((P.mirostat_v2(opt.mirostat_tau, opt.mirostat_eta))) end
    return chain
  end,
}
