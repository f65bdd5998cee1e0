-- Writing your own logits processor: a plain Lua function (ctx, scores) in the same chain as HF's.
--
-- Usage: slua recipes/custom_processor.lua [--ban "the,a"] [--boost-prompt 0.5]
--        [--repetition-penalty 1.1] plus the common flags
-- The example bans words (every token spelling them) and adds a small bonus to tokens of the
-- prompt. A processor gets ctx (session, prompt_len, step, generated, out with the step's
-- outputs, model) and scores (a slua.Logits of the vocabulary). Change scores in place with C
-- methods (scores:set, scores:bias, scores:add, ...), never with a Lua loop over the vocabulary.
local sl = require "slua"
local P = sl.processors

local function ban_words(words)
  local ids = {}
  return P.fn("ban_words", function(ctx, scores)
    if not next(ids) and ctx.tokenizer then           -- first call: find the ids once
      for w in words:gmatch("[^,]+") do
        for _, variant in ipairs{ w, " " .. w } do
          for _, id in ipairs(ctx.tokenizer:encode(variant)) do ids[id] = -math.huge end
        end
      end
    end
    scores:bias(ids)                                  -- -inf bias: never chosen
  end)
end

local function boost_prompt(bonus)
  return function(ctx, scores)                        -- a bare function is a processor too
    local prompt = {}
    for i, id in ipairs(ctx.session:tokens()) do
      if i > ctx.prompt_len then break end
      prompt[id] = bonus
    end
    scores:bias(prompt)
  end
end

return sl.recipe{
  name = "custom_processor",
  options = {
    ban = { default = "", type = "string", help = "comma-separated words never generated" },
    boost_prompt = { default = 0.5, help = "bonus added to the prompt's tokens" },
    repetition_penalty = 1.1,
  },
  -- built once per run, so each run has its own processors (and their state)
  processors = function(ctx)
    local opt = ctx.opt
    return { P.repetition_penalty(opt.repetition_penalty), ban_words(opt.ban), boost_prompt(opt.boost_prompt) }
  end,
}
