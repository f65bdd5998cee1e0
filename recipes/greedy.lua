-- Greedy decoding: always take the highest-scoring token (HF generate, do_sample=False).
--
-- Usage: slua recipes/greedy.lua [--model DIR] [--prompt TEXT | --prompt-ids 1,2,3]
--        [--max-new-tokens 64] [--repetition-penalty 1.0] [--stop "a|b"] [--format text|json]
-- Ties go to the lowest token id, as torch.argmax does. Stops at any EOS id of the model's
-- config.json / generation_config.json (the EOS token is kept, as HF does), at a stop string
-- or after --max-new-tokens. This file is also the anatomy of every recipe: slua.run owns
-- the loop (prefill, one step per token, streaming, JSON), the recipe value says what each step does.
local sl = require "slua"

return sl.recipe{
  name = "greedy",
  options = { repetition_penalty = 1.0 },
  -- 1. the scores of a step: here the final logits at the last position (a fresh copy)
  scores = function(ctx) return ctx.out.logits end,
  -- 2. HF's logits processors, in HF's order (only the penalty matters without sampling)
  processors = function(ctx) return sl.processors.standard(ctx.opt) end,
  -- 3. argmax instead of a draw from softmax(scores)
  sample = false,
}
