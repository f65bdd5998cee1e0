-- Sampling with HF's warpers: temperature, top-k, top-p, min-p (HF generate, do_sample=True).
--
-- Usage: slua recipes/sample.lua [--temperature 1.0] [--top-k 50] [--top-p 1.0] [--min-p 0]
--        [--seed 42] [--repetition-penalty 1.0] plus the common flags (--model, --prompt, ...)
-- Order as in HF: repetition penalty, then temperature → top-k → top-p → min-p, then a draw
-- from softmax(scores) with the seeded xoshiro256** generator (same seed, same text, on any
-- thread count). top_k = 50 is HF's default whenever sampling; --top-k 0 turns it off.
local sl = require "slua"

local opt = sl.run_options(arg, {
  temperature = 1.0, top_k = 50, top_p = 1.0, min_p = 0.0, repetition_penalty = 1.0, do_sample = true,
})
sl.generate{ recipe = "sample", opt = opt, sample = true }
