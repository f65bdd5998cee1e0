-- Batched answer scores (ev.score_answers, sl_lm_score_many) against the per-answer path
-- (--no-batched-score), on TruthfulQA-MC as `slua eval` runs it.
--
-- Usage: build/slua bench/eval_batched_score.lua [--model build/bench-models/smollm2-135m-v32k]
--          [--tokenizer build/data/tokenizers/llama2] [--questions 20] [--runs 3] [--threads 2]
--          [--batches 1,4]
--
-- The model is random weights at the SmolLM2-135M shape with a 32,000-token vocabulary (Llama
-- 2's, whose tokenizer encodes the text); it is written once with sl_make_checkpoint (BF16,
-- seed 1) when --model does not exist. The first --questions questions are scored in baseline
-- and in dynamic DoLa (candidates 16, 18, ..., 28, mature 30), each through the eval runner's
-- batch.map with --batch 1 and 4, per answer and batched, every run from a cold prefix cache;
-- the configurations alternate run by run so that a busy machine slows them alike. Prints one
-- JSON line per configuration (median wall time of --runs, items/s, token-forwards) on stderr
-- and a Markdown table on stdout, and fails if any score differs between the paths.
local sl = require "slua"
local ev = require "slua.eval"
local core = require "slua.core"
local batch = require "slua.batch"

local opt = sl.options(arg, {
  model = sl.root .. "/build/bench-models/smollm2-135m-v32k", tokenizer = sl.root .. "/build/data/tokenizers/llama2",
  questions = 20, runs = 3, threads = 2, batches = "1,4",
})
sl.set_threads(opt.threads)

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- The bench shape with Llama 2's vocabulary (BOS 1, EOS 2), written once.
if not exists(opt.model .. "/config.json") then
  local cfg = sl.json.decode(assert(io.open(sl.root .. "/bench/configs/smollm2-135m.json")):read("a"))
  cfg.vocab_size, cfg.bos_token_id, cfg.eos_token_id = 32000, 1, 2
  os.execute("mkdir -p " .. q(opt.model))
  local path = opt.model .. ".config.json"
  local f = assert(io.open(path, "w"))
  f:write(sl.json.encode(cfg))
  f:close()
  local cmd = ("%s %s %s --dtype bf16 --seed 1"):format(q(sl.root .. "/build/sl_make_checkpoint"),
    q(path), q(opt.model))
  if not os.execute(cmd) then sl.fail("could not write the checkpoint: " .. cmd) end
  os.remove(path)
end
local model = sl.check(sl.load(opt.model))
local tok = sl.check(sl.load_tokenizer(opt.tokenizer .. "/tokenizer.json"))
local task = ev.tasks.truthfulqa_mc

-- The first questions as pre-tokenised items (the official joint tokenisation).
local items = {}
for i, item in ipairs(task.load(require("slua.eval.data").root .. "/" .. task.data)) do
  if i > opt.questions then break end
  local prompt = task.prompt(item.question)
  local n_prefix = #tok:encode(prompt, { special = true })
  local obj = { id = item.id, index = item.index, ref_true = item.ref_true, ref_best = item.ref_best, answers = {} }
  for _, kind in ipairs{ "true", "false" } do
    for _, a in ipairs(kind == "true" and item.ref_true or item.ref_false) do
      obj.answers[#obj.answers + 1] = { kind = kind, n_prefix = n_prefix,
                                        full_ids = tok:encode(prompt .. task.continuation(a), { special = true }) }
    end
  end
  items[#items + 1] = task.from_ids(obj, "question " .. i)
end

local modes = {
  { name = "baseline", setting = ev.layers_setting{ -1 } },
  { name = "dola", setting = ev.layers_setting{ 16, 18, 20, 22, 24, 26, 28, 30 } },
}
local configs = {}
for _, mode in ipairs(modes) do
  for _, width in ipairs(sl.parse_ints(opt.batches, "batches")) do
    for _, batched in ipairs{ false, true } do
      local setting = { batched_score = batched }
      for k, v in pairs(mode.setting) do setting[k] = v end
      for k, v in pairs(task.settings) do setting[k] = v end
      configs[#configs + 1] = { mode = mode.name, batch = width, batched = batched, setting = setting, times = {} }
    end
  end
end

-- One run: every item from a cold prefix cache, as `slua eval --batch N` runs them.
local function run(c)
  ev.drop_cache(model)
  ev.reset_stats()
  local t0 = core.clock()
  local records = batch.map(items, function(item) return task.evaluate(model, item, c.setting) end,
    { batch = c.batch })
  c.forwards = ev.stats.n_forwarded
  return core.clock() - t0, records
end

local function scores_of(records)
  local t = {}
  for _, r in ipairs(records) do t[#t + 1] = sl.json.encode{ r.scores_true, r.scores_false } end
  return table.concat(t, "\n")
end

local reference = {}
for _ = 1, opt.runs do
  for _, c in ipairs(configs) do
    local wall, records = run(c)
    c.times[#c.times + 1] = wall
    local s = scores_of(records)
    reference[c.mode] = reference[c.mode] or s
    if s ~= reference[c.mode] then
      sl.fail(("%s, --batch %d, %s: scores differ from the first run"):format(c.mode, c.batch,
        c.batched and "batched" or "per answer"))
    end
  end
end

local function median(xs)
  local t = table.move(xs, 1, #xs, 1, {})
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

local answers = 0
for _, item in ipairs(items) do answers = answers + #item.true_answers + #item.false_answers end
local base = {}
for _, c in ipairs(configs) do
  c.median_s = median(c.times)
  if not c.batched then base[c.mode .. c.batch] = c.median_s end
end
print("| mode | --batch | per answer s | batched s | per answer items/s | batched items/s | speed-up |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for _, c in ipairs(configs) do
  io.stderr:write(sl.json.encode{ mode = c.mode, batch = c.batch, batched = c.batched, runs = c.times,
    token_forwards = c.forwards,
    median_s = c.median_s, items_per_s = #items / c.median_s, questions = #items, answers = answers,
    threads = opt.threads }, "\n")
  if c.batched then
    local b = base[c.mode .. c.batch]
    print(("| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2fx |"):format(c.mode, c.batch, b, c.median_s, #items / b,
      #items / c.median_s, b / c.median_s))
  end
end
