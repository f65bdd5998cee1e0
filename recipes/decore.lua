-- DeCoRe: Decoding by Contrasting Retrieval Heads (Gema et al. 2024, arXiv 2410.18860), the
-- DeCoRe-entropy variant; official code github awesomealex1/faithful-reasoning
-- (src/models/decore_entropy.py, generate_self_contrast), followed step for step.
--
-- Usage: slua recipes/decore.lua --retrieval-heads 6:0,6:2 [--alpha-cap 0] [--scale-alpha]
--        plus the common flags
-- A fork of the session masks the retrieval heads (block:head pairs, 0-based): their attention
-- scores are set to 0, i.e. uniform attention over every key, as the official "torch" path
-- does (its flash path zeroes the head's query: the same), only in the decode steps: from the
-- last prompt token on, the prompt before it is shared. Base and fork run in one batched pass.
-- Each step: alpha = entropy of the base distribution (nats; / ln V with --scale-alpha; capped
-- by --alpha-cap when > 0), score = (1 + alpha) log_softmax(base) - alpha log_softmax(masked).
local sl = require "slua"
local steering = require "slua.decoders.steering"

return sl.recipe{
  name = "decore",
  options = {
    retrieval_heads = { default = "", type = "string", help = "the masked heads, block:head pairs (6:0,6:2)" },
    alpha_cap = { default = 0.0, min = 0, help = "cap of alpha (0 = none, the official default null)" },
    scale_alpha = { default = false, help = "divide the entropy by ln(vocabulary size)" },
    repetition_penalty = 1.0,
  },
  amateurs = function(ctx)
    local model, spec, by_block, order = ctx.model, ctx.opt.retrieval_heads, {}, {}
    for b, h in spec:gmatch("(%d+):(%d+)") do
      b, h = tonumber(b), tonumber(h)
      if not by_block[b] then by_block[b] = {}; order[#order + 1] = b end
      table.insert(by_block[b], h)
    end
    if #order == 0 or spec:gsub("%d+:%d+", ""):gsub(",", "") ~= "" then
      sl.option_error("retrieval_heads", "block:head pairs such as 6:0,6:2", spec)
    end
    local ops, decoded, first = {}, {}, #sl.prompt_ids(model, ctx.opt) - 1   -- from the last prompt token on
    for p = first, math.min(first + ctx.opt.max_new_tokens, model.config.max_position) - 1 do decoded[#decoded + 1] = p end
    for _, b in ipairs(order) do
      ops[#ops + 1] = { hook = ("blocks.%d.attn.hook_attn_scores"):format(b), op = "scale", factor = 0,
                        heads = by_block[b], positions = decoded }
    end
    return { ctx.session:fork{ skip = {}, intervene = steering.intervention(ctx, ops) } }   -- after the run's --intervene
  end,
  scores = function(ctx)
    local base, masked = ctx.out.logits:clone(), ctx.amateur_outs[1].logits:clone()
    local alpha = base:entropy()
    if ctx.opt.scale_alpha then alpha = alpha / math.log(#base) end
    if ctx.opt.alpha_cap > 0 then alpha = math.min(alpha, ctx.opt.alpha_cap) end
    return base:log_softmax():mul(1 + alpha):sub(masked:log_softmax():mul(alpha)), { alpha = alpha }
  end,
}
