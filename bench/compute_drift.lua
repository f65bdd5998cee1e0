-- How far --compute bf16 moves a model from the exact mode: for each model directory, the
-- final-position logits of a few prompts (max |delta| and the largest |logit| beside it) and
-- greedy decoding from them (tokens that agree with the exact mode's, and the first step where
-- they part). Prints a Markdown table, one row per model.
--
--   slua bench/compute_drift.lua [DIR ...]   (default: the test fixtures' models and stories260K)
--   SL_NO_AVX512=1 slua bench/compute_drift.lua ...   (the emulated mode)
local sl = require "slua"
local core = require "slua.core"

local dirs = { table.unpack(arg) }
if #dirs == 0 then
  dirs = { sl.root .. "/models/stories260K" }
  for _, name in ipairs{ "hf-tiny/tiny-llama", "hf-tiny/tiny-llama-tied", "hf-tiny/tiny-qwen2", "arch/gemma2",
                         "arch/gemma3", "arch/qwen3", "arch/phi3", "arch/olmo2", "arch/mixtral", "arch/qwen2moe" } do
    dirs[#dirs + 1] = sl.root .. "/tests/data/" .. name
  end
end
sl.set_threads(1)

local PROMPTS, PROMPT_LEN, STEPS = 4, 12, 32
local function prompt_ids(model, p)
  local ids, s = {}, 2654435761 * p
  for i = 1, PROMPT_LEN do
    s = (s * 1103515245 + 12345) % 2147483648
    ids[i] = 3 + s % (model.n_vocab - 3)
  end
  return ids
end

local function greedy(model, ids)
  local r = sl.recipe.load("greedy"):run({ prompt_ids = table.concat(ids, ","), max_new_tokens = STEPS, format = "json" },
                                         { model = model })
  return r.new_ids
end

print(("level: %s; %d prompts of %d random ids, greedy %d tokens, 1 thread"):format(
  os.getenv("SL_NO_AVX2") and "generic (emulated)" or os.getenv("SL_NO_AVX512") and "avx2 (emulated)"
  or core.compute_bf16_native() and "avx512 (vdpbf16ps)" or "avx512 (emulated)", PROMPTS, PROMPT_LEN, STEPS))
print("| model | max abs delta of logits | max abs logit | greedy tokens equal | first parting step (median) |")
print("|---|---:|---:|---:|---:|")
for _, dir in ipairs(dirs) do
  local exact = sl.check(sl.load(dir, { tokenizer = false }))
  local bf16 = sl.check(sl.load(dir, { tokenizer = false, compute = "bf16" }))
  local worst, scale, same, total, parts = 0, 0, 0, 0, {}
  for p = 1, PROMPTS do
    local ids = prompt_ids(exact, p)
    local se <close> = exact:session()
    local sb <close> = bf16:session()
    local a, b = se:prefill(ids).logits, sb:prefill(ids).logits
    for id = 0, exact.n_vocab - 1 do
      worst = math.max(worst, math.abs(a:get(id) - b:get(id)))
      scale = math.max(scale, math.abs(a:get(id)))
    end
    local ga, gb = greedy(exact, ids), greedy(bf16, ids)
    local parted = nil
    for i = 1, math.max(#ga, #gb) do
      total = total + 1
      if ga[i] == gb[i] then same = same + 1 elseif not parted then parted = i end
    end
    parts[#parts + 1] = parted or (STEPS + 1)
  end
  table.sort(parts)
  local median = parts[(#parts + 1) // 2]
  print(("| %s | %.3g | %.3g | %d / %d | %s |"):format(dir:match("[^/]+/[^/]+$"), worst, scale, same, total,
    median > STEPS and "none" or tostring(median)))
  exact:close()
  bf16:close()
end
