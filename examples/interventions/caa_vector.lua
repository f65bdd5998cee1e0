-- A CAA steering vector (Rimsky et al., ACL 2024, "Steering Llama 2 via Contrastive Activation
-- Addition"; code github nrimsky/CAA) from TruthfulQA A/B questions, with activation captures.
--
-- Usage: slua examples/interventions/caa_vector.lua [--model DIR] [--limit 100]
--        [--out caa_truthful.safetensors] [--data FILE]
-- Each question becomes an A/B choice between its best answer and its first incorrect one (the
-- truthful answer alternates between A and B), written as CAA writes its data:
-- "<question>\n\nChoices:\n(A) ...\n(B) ...\n\nAnswer: (" followed by the letter. The vector of
-- block L is the mean over questions of blocks.L.hook_resid_post at the letter's token, for the
-- truthful letter minus the other (CAA's matching minus non-matching behaviour). Writes one
-- d_model vector per block, "layer0" ... "layer{N-1}", for
--   slua recipes/steer.lua --vector caa_truthful.safetensors:layer2 --layer 2 --hook resid_post
-- Sums and means run in C (Tensor add, scale).
local sl = require "slua"
local tqa = require "slua.eval.tasks.truthfulqa_mc"
local data = require "slua.eval.data"

local opt = sl.run_options(arg, {
  limit = { default = 100, min = 1, help = "questions to read" },
  out = { default = "caa_truthful.safetensors", type = "string", help = "the safetensors file to write" },
  data = { default = "", type = "string", help = "TruthfulQA.csv (\"\" = the bundled copy)" },
}, "input")
local model <close> = sl.check(sl.load(opt.model ~= "" and opt.model or nil))
local N = model.n_layer
local hooks = {}
for l = 0, N - 1 do hooks[l + 1] = ("blocks.%d.hook_resid_post"):format(l) end

-- Every block's resid_post at the last token of text: {[l] = Tensor [d_model]}.
local function at_end(text)
  local ids = model.tokenizer:encode(text, { special = true })
  local s <close> = model:session{}
  s:capture(hooks, { #ids - 1 })
  s:prefill(ids)
  local h = {}
  for l = 1, N do h[l] = s:captured(hooks[l]):row(1) end
  return h
end

local items = tqa.load(opt.data ~= "" and opt.data or data.root .. "/" .. tqa.data)
local sum, n = {}, 0
for i = 1, math.min(opt.limit, #items) do
  local it = items[i]
  local truthful_is_a = i % 2 == 1
  local a, b = it.ref_best, it.ref_false[1]
  if not truthful_is_a then a, b = b, a end
  local stem = ("%s\n\nChoices:\n(A) %s\n(B) %s\n\nAnswer: ("):format(it.question, a, b)
  local matching = at_end(stem .. (truthful_is_a and "A" or "B"))
  local other = at_end(stem .. (truthful_is_a and "B" or "A"))
  for l = 1, N do
    local diff = matching[l]:sub(other[l])
    sum[l] = sum[l] and sum[l]:add(diff) or diff
  end
  n = n + 1
end
local tensors = {}
for l = 1, N do tensors["layer" .. (l - 1)] = sum[l]:scale(1 / n) end
sl.check(sl.core.save_tensors(opt.out, tensors))
print(("%s: %d A/B pairs, one vector per block 0..%d (norm at block %d: %.3f)"):format(opt.out, n, N - 1, N // 2,
  tensors["layer" .. N // 2]:norm()))
