-- ITI directions (Li et al., NeurIPS 2023, "Inference-Time Intervention"; code github
-- likenneth/honest_llama) from TruthfulQA, with activation captures.
--
-- Usage: slua examples/interventions/iti_directions.lua [--model DIR] [--limit 60]
--        [--out iti_directions.safetensors] [--data FILE]
-- For every question, "Q: <question> A: <answer>" with up to 2 true and 2 false reference
-- answers (honest_llama's prompt); each head's output (blocks.L.attn.hook_z) at the last token.
-- Questions alternate between a training and a validation half. Per head: the mass-mean shift
-- theta = mean(true) - mean(false) on the training half (honest_llama's --use_center_of_mass),
-- a probe that calls an answer true when its projection on theta lies above the midpoint of the
-- two class means, its accuracy on the validation half, and sigma = the standard deviation of
-- all projections on the unit direction. Writes accuracy [L, H], std [L, H] and one unit
-- direction per head, "blocks.L.head.H" [head_dim], for recipes/iti.lua. Every product over
-- head_dim runs in C (Tensor add, scale, dot).
local sl = require "slua"
local tqa = require "slua.eval.tasks.truthfulqa_mc"
local data = require "slua.eval.data"

local opt = sl.run_options(arg, {
  limit = { default = 60, min = 2, help = "questions to read" },
  out = { default = "iti_directions.safetensors", type = "string", help = "the safetensors file to write" },
  data = { default = "", type = "string", help = "TruthfulQA.csv (\"\" = the bundled copy)" },
}, "input")
local model <close> = sl.check(sl.load(opt.model ~= "" and opt.model or nil))
local N, H = model.n_layer, model.config.n_head
local hooks = {}
for l = 0, N - 1 do hooks[l + 1] = ("blocks.%d.attn.hook_z"):format(l) end

-- One example: every block's hook_z at the last token, {[l] = Tensor [H, head_dim]}.
local function heads_at_end(text)
  local ids = model.tokenizer:encode(text, { special = true })
  local s <close> = model:session{}
  s:capture(hooks, { #ids - 1 })
  s:prefill(ids)
  local z = {}
  for l = 1, N do z[l] = s:captured(hooks[l]):row(1) end
  return z
end

local items = tqa.load(opt.data ~= "" and opt.data or data.root .. "/" .. tqa.data)
local examples = { train = {}, val = {} }
for i = 1, math.min(opt.limit, #items) do
  local it, half = items[i], i % 2 == 1 and "train" or "val"
  for label, answers in pairs{ [true] = it.ref_true, [false] = it.ref_false } do
    for k = 1, math.min(2, #answers) do
      table.insert(examples[half], { label = label, z = heads_at_end(("Q: %s A: %s"):format(it.question, answers[k])) })
    end
  end
end

local tensors, accuracy, std = {}, {}, {}
for l = 1, N do
  local sum, count = {}, { [true] = 0, [false] = 0 }
  for _, ex in ipairs(examples.train) do
    sum[ex.label] = sum[ex.label] and sum[ex.label]:add(ex.z[l]) or ex.z[l]
    count[ex.label] = count[ex.label] + 1
  end
  local mean_true, mean_false = sum[true]:scale(1 / count[true]), sum[false]:scale(1 / count[false])
  accuracy[l], std[l] = {}, {}
  for h = 1, H do
    local theta = mean_true:row(h):sub(mean_false:row(h))
    local unit = theta:norm() > 0 and theta:scale(1 / theta:norm()) or theta
    local mid = (mean_true:row(h):dot(unit) + mean_false:row(h):dot(unit)) / 2
    local right, n, s1, s2 = 0, 0, 0, 0
    for _, half in ipairs{ "val", "train" } do
      for _, ex in ipairs(examples[half]) do
        local x = ex.z[l]:row(h):dot(unit)
        if half == "val" then
          n = n + 1
          if (x > mid) == ex.label then right = right + 1 end
        end
        s1, s2 = s1 + x, s2 + x * x
      end
    end
    local m = #examples.val + #examples.train
    accuracy[l][h] = right / n
    std[l][h] = math.sqrt(math.max(0, (s2 - s1 * s1 / m) / (m - 1)))   -- torch.std: unbiased
    tensors[("blocks.%d.head.%d"):format(l - 1, h - 1)] = unit
  end
end
tensors.accuracy, tensors.std = sl.core.tensor(accuracy), sl.core.tensor(std)
sl.check(sl.core.save_tensors(opt.out, tensors))
local best = tensors.accuracy:top(1)[1]
print(("%s: %d training and %d validation answers, %d x %d heads; best probe: block %d head %d, accuracy %.3f")
  :format(opt.out, #examples.train, #examples.val, N, H, (best[1] - 1) // H, (best[1] - 1) % H, best[2]))
