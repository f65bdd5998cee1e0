-- Greedy decoding: always take the highest-scoring token (HF generate, do_sample=False).
--
-- Usage: slua recipes/greedy.lua [--model DIR] [--prompt TEXT | --prompt-ids 1,2,3]
--        [--max-new-tokens 64] [--repetition-penalty 1.0] [--format text|json]
-- Ties go to the lowest token id, as torch.argmax does. Stops at any of the model's EOS ids.
local sl = require "slua"

local opt = sl.run_options(arg, { repetition_penalty = 1.0 })
sl.generate{ recipe = "greedy", opt = opt }
