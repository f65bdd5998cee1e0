-- PASTA: Post-hoc Attention Steering (Zhang et al., ICLR 2024, arXiv 2311.02262); official code
-- github QingruZhang/PASTA (head_config, alpha = 0.01, scale_position "exclude").
--
-- Usage: slua recipes/pasta.lua --prompt "Text with an **emphasised span**." [--marker "**"]
--        [--head-config 2:0,2:3 | 2:*] [--alpha 0.01] [--span START:END] plus the common flags
-- The span between the two markers (removed from the prompt) is emphasised: in the chosen heads
-- (block:head pairs, block:* for all of a block's heads; "" = every head of block N // 2) the
-- attention of every query to the prompt tokens outside the span is scaled by alpha and
-- renormalised, i.e. log(alpha) is added to those keys' scores before the softmax. The span's
-- tokens are [#encode(text before it), #encode(text through it)); --span START:END gives token
-- positions instead (for --prompt-ids). Generated tokens are never down-weighted.
local sl = require "slua"
local steering = require "slua.decoders.steering"

return sl.recipe{
  name = "pasta",
  options = {
    prompt = "Once upon a time, **Tom had a red ball**. Lily",
    marker = { default = "**", type = "string", help = "the emphasised span's delimiter in --prompt" },
    head_config = { default = "", type = "string", help = "steered heads: block:head pairs or block:* (\"\" = block N // 2, every head)" },
    alpha = { default = 0.01, gt = 0, max = 1, help = "attention scale of the keys outside the span" },
    span = { default = "", type = "string", help = "START:END token positions of the span (instead of markers)" },
    repetition_penalty = 1.0,
  },
  session = function(ctx)
    local opt, model, span = ctx.opt, ctx.model, {}
    local a, b = opt.span:match("^(%d+):(%d+)$")
    if a then
      span = { tonumber(a), tonumber(b) }
    else
      local m = opt.marker:gsub("%p", "%%%0")
      local before, inside, after = opt.prompt:match("^(.-)" .. m .. "(.-)" .. m .. "(.*)$")
      if not before or opt.span ~= "" then sl.option_error(opt.span ~= "" and "span" or "prompt", "START:END, or a prompt with a span between two " .. opt.marker, opt.span ~= "" and opt.span or opt.prompt) end
      local encode = function(text) return #model.tokenizer:encode(text, { special = true }) end
      span, opt.prompt = { before == "" and 0 or encode(before), encode(before .. inside) }, before .. inside .. after
    end
    local P, heads = #sl.prompt_ids(model, opt), {}
    for block, head in (opt.head_config == "" and (model.n_layer // 2) .. ":*" or opt.head_config):gmatch("(%d+):([%d*]+)") do
      heads[#heads + 1] = { hook = ("blocks.%s.attn.hook_attn_scores"):format(block), heads = head == "*" and "all" or { tonumber(head) } }
    end
    local ops = {}
    for _, h in ipairs(heads) do
      for _, keys in ipairs{ { 0, span[1] }, { span[2], P } } do
        if keys[2] > keys[1] then ops[#ops + 1] = { hook = h.hook, op = "add", heads = h.heads, keys = keys, value = math.log(opt.alpha) } end
      end
    end
    ctx.extra.emphasised_span = span
    return steering.install(ctx, ops)
  end,
}
