-- slua.sweep.task: a sweep's `task` — items and task metrics from an evaluation task instead of
-- a prompt file.
--
--   task = "gsm8k"                             -- require("slua.eval").tasks.gsm8k, defaults
--   task = { name = "gsm8k", limit = 50, ... } -- the same with options for the task
--   task = { items = {...} | function() ... end, metrics = { name = function(ctx, r) ... end } }
--
-- What a named task module is expected to provide (the evaluation harness's task interface):
--   load(opts)                 -> list of examples (plain tables; `id` optional)
--   prompt(example, opts)      -> the prompt text of one example
--   extract(text, example)     -> the answer found in a generated continuation
--   is_correct(answer, example)-> boolean
--   metrics                    -> optional {name = function(ctx, result) -> number}
-- Each example becomes an item {id, options = {prompt = ...}, example = example}; the metric
-- `correct` (1/0, its mean is the accuracy) comes from extract + is_correct. Tasks that score
-- answers by likelihood (multiple choice) rather than by generation need a scoring recipe.
local sl = require "slua"

local task = {}

local function adapt_items(file, list)
  local items, seen = {}, {}
  for i, it in ipairs(list) do
    if type(it) ~= "table" then sl.fail(("%s: task.items[%d]: not a table"):format(file, i)) end
    local o = {}
    if it.prompt_ids ~= nil then
      o.prompt_ids = type(it.prompt_ids) == "table" and table.concat(it.prompt_ids, ",") or tostring(it.prompt_ids)
    elseif type(it.prompt) == "string" then
      o.prompt = it.prompt
    else
      sl.fail(("%s: task.items[%d]: needs prompt or prompt_ids"):format(file, i))
    end
    local id = it.id == nil and i or it.id
    if seen[tostring(id)] then sl.fail(("%s: task.items[%d]: duplicate id %s"):format(file, i, tostring(id))) end
    seen[tostring(id)] = true
    items[i] = { id = id, options = o, example = it.example or it }
  end
  if #items == 0 then sl.fail(("%s: task: no items"):format(file)) end
  return items
end

local function named_metrics(file, t)
  local out, names = {}, {}
  for k in pairs(t or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    if type(t[k]) ~= "function" then sl.fail(("%s: task.metrics.%s: expected a function"):format(file, k)) end
    out[#out + 1] = { name = k, fn = t[k], unit = nil }
  end
  return out
end

-- A task module (the evaluation harness's interface) as items and metrics.
local function from_module(file, name, mod, opts)
  for _, f in ipairs({ "load", "prompt", "extract", "is_correct" }) do
    if type(mod[f]) ~= "function" then sl.fail(("%s: task: task '%s' has no %s()"):format(file, name, f)) end
  end
  local examples = mod.load(opts)
  local list = {}
  for i, ex in ipairs(examples) do
    list[i] = { id = ex.id, prompt = mod.prompt(ex, opts), example = ex }
  end
  local ms = named_metrics(file, mod.metrics)
  table.insert(ms, 1, {
    name = "correct", unit = "fraction",
    fn = function(ctx, r)
      local ex = ctx.item.example
      return mod.is_correct(mod.extract(r.text, ex), ex) and 1 or 0
    end,
  })
  return { name = name, items = adapt_items(file, list), metrics = ms }
end

function task.resolve(file, t)
  if type(t) == "table" and t.items then
    local items = t.items
    if type(items) == "function" then items = items() end
    if type(items) ~= "table" then sl.fail(("%s: task.items: expected a list or a function returning one"):format(file)) end
    return { name = t.name or "custom", items = adapt_items(file, items), metrics = named_metrics(file, t.metrics) }
  end
  local name = type(t) == "string" and t or t.name
  if type(name) ~= "string" then sl.fail(("%s: task: a task name, {name = ..., options}, or {items = ...}"):format(file)) end
  local ok, eval = pcall(require, "slua.eval")
  if not ok or type(eval) ~= "table" or type(eval.tasks) ~= "table" then
    sl.fail(("%s: task: '%s' needs the evaluation harness (slua.eval), which is not installed"):format(file, name))
  end
  local mod = eval.tasks[name]
  if type(mod) ~= "table" then sl.fail(("%s: task: unknown task '%s'"):format(file, name)) end
  return from_module(file, name, mod, type(t) == "table" and t or {})
end

return task
