-- slua.sweep.task: a sweep over an evaluation task (lua/slua/eval/init.lua) instead of a recipe over
-- prompts: every (point, item) is one task.evaluate(model, item, setting), exactly as `slua eval`
-- runs it, and the report shows the task's own metrics (MC1/MC2/MC3, accuracy) per point.
--
--   task = "truthfulqa_mc"                                      -- its bundled data, every item
--   task = { name = "gsm8k", limit = 20, data = "my.jsonl" }    -- limit, data | items, lang (mgsm)
--   task = { name = "mine", kind = "score", load = ..., evaluate = ..., summarize = ... }  -- your own
--
-- A point's options are those of `slua eval` (lua/slua/eval/setting.lua): early_exit_layers
-- ("-1", "2,5", "0,2,4,5" or a list), relative_top, relative_top_value, post_softmax for scoring
-- tasks; recipe, recipe_options, repetition_penalty, max_new_tokens, seed for generating ones,
-- where any other key is an option of the recipe; model and threads for both. A point's id
-- hashes the task and the settings `slua eval` would hash, so the same setting is the same point.
-- Each result line is the task's record plus point, item, task, options (those settings),
-- metrics (the task's metrics of that item alone) and timings. Reports aggregate a bundled
-- task's metrics with its summarize; an own task's metrics are averaged over items.
local sl = require "slua.util"
local core = require "slua.core"
local ev = require "slua.eval"
local evs = require "slua.eval.setting"
local run = require "slua.run"
local recipe_of = require "slua.recipe"

local task = {}

-- Keys of the sweep's task table that pick items; anything else belongs to an own task module.
local item_keys = { name = true, data = true, items = true, limit = true, lang = true }

-- A failure raised inside f, reported as "<file>: <where>: <message>".
local function guard(file, where, f, ...)
  local ok, a, b = pcall(f, ...)
  if ok then return a, b end
  local msg = type(a) == "table" and a.message or tostring(a)
  if type(where) == "function" then where = where(msg) end
  sl.fail(("%s: %s: %s"):format(file, where, msg))
end

local models = {}
-- Each model is loaded once per process (the plan checks layer numbers against it).
function task.model(path)
  if not models[path] then models[path] = sl.check(sl.load(path)) end
  return models[path]
end

-- The metric names of a task: its own list, else the fractional entries of summarize({}), sorted
-- (counts such as n are left out).
function task.metric_names(file, mod)
  if mod.metric_names then return mod.metric_names end
  local names = {}
  for k, v in pairs(guard(file, "task.summarize", mod.summarize, {})) do if math.type(v) == "float" then names[#names + 1] = k end end
  table.sort(names)
  return names
end

-- task.resolve(file, t, resolve_path) -> {name, module, kind, items = {{id, options = {}, eval_item}},
-- settings (what the items add to every point's settings), metrics = {{name, unit}}}
function task.resolve(file, t, resolve_path)
  if type(t) == "string" then t = { name = t } end
  if t.items ~= nil and type(t.items) ~= "string" then
    sl.fail(("%s: task.items: the path of a pre-tokenised items file (prompts of a recipe sweep go in `prompts`)"):format(file))
  end
  local mod
  if t.evaluate ~= nil then
    mod = {}
    for k, v in pairs(t) do if not item_keys[k] then mod[k] = v end end
    mod.name = t.name or "custom"
    for _, f in ipairs({ "load", "evaluate", "summarize" }) do
      if type(mod[f]) ~= "function" then sl.fail(("%s: task.%s: an own task needs a function %s"):format(file, f, f)) end
    end
    if mod.kind ~= "score" and mod.kind ~= "generate" then
      sl.fail(("%s: task.kind: \"score\" or \"generate\" (got %s)"):format(file, tostring(mod.kind)))
    end
  else
    if type(t.name) ~= "string" then sl.fail(("%s: task: a task name, or a table with name and options"):format(file)) end
    for k in pairs(t) do
      if not item_keys[k] then
        sl.fail(("%s: task.%s: unknown task option (known: data, items, lang, limit, name)"):format(file, tostring(k)))
      end
    end
    mod = ev.tasks[t.name]
    if not mod then
      sl.fail(("%s: task: unknown task '%s' (tasks: %s)"):format(file, t.name, table.concat(ev.task_names, ", ")))
    end
  end
  local opts = { limit = t.limit, lang = t.lang, data = t.data and resolve_path(t.data),
                 items = t.items and resolve_path(t.items) }
  local items, extra = guard(file, function(msg)
    local key = msg:match("^option %-%-(%w+)") or (t.items and "items" or "data")
    return "task." .. key
  end, evs.items, mod, opts)
  if #items == 0 then sl.fail(("%s: task: no items"):format(file)) end
  local list = {}
  for i, item in ipairs(items) do list[i] = { id = item.id, options = {}, eval_item = item } end
  local metrics = {}
  local bundled = ev.tasks[mod.name] == mod   -- their metrics are all fractions; an own task may say
  for i, name in ipairs(task.metric_names(file, mod)) do
    metrics[i] = { name = name, unit = bundled and "fraction" or (mod.units or {})[name] }
  end
  return { name = mod.name, module = mod, kind = mod.kind, items = list, settings = extra, lang = t.lang,
           metrics = metrics }
end

-- task.point(plan, p) -> options (the settings), setting, identity: a point's values as the
-- evaluation setting; keys are checked against the task's kind (and, for generating tasks, the
-- recipe's own options), each problem named by where the key came from.
function task.point(plan, p)
  local t, file = plan.task, plan.file
  local accepted = evs.keys[t.kind]
  local opts, recipe_options = { lang = t.lang }, {}
  for k, v in pairs(p.values) do
    if k == "model" or k == "threads" then
      -- the model is loaded below; threads change speed, not results
    elseif accepted[k] then
      opts[k] = v
    elseif t.kind == "generate" then
      recipe_options[k] = v
    else
      local known = {}
      for name in pairs(accepted) do known[#known + 1] = name end
      table.sort(known)
      sl.fail(("%s: %s: unknown option of task %s (known: %s)"):format(file, p.from[k] or k, t.name,
        table.concat(known, ", ")))
    end
  end
  if next(recipe_options) then
    if opts.recipe_options ~= nil and type(opts.recipe_options) ~= "table" then
      sl.fail(("%s: %s: a table when other keys are recipe options"):format(file, p.from.recipe_options))
    end
    for k, v in pairs(opts.recipe_options or {}) do recipe_options[k] = v end
    opts.recipe_options = recipe_options
  end
  local model = guard(file, p.from.model or "model", task.model, p.values.model)
  local setting, settings = guard(file, function(msg)
    local key = msg:match("option %-%-([%w%-]+)")
    return key and p.from[(key:gsub("%-", "_"))] or "task"
  end, evs.build, t.module, model, opts)
  for k, v in pairs(t.settings) do settings[k] = v end
  if t.kind == "generate" then
    local argv = { "--format", "json" }
    for _, a in ipairs(run.argv(settings.recipe_options)) do argv[#argv + 1] = a end
    guard(file, function(msg)
      local key = msg:match("option %-%-([%w%-_]+)")
      local where = key and (p.from[(key:gsub("%-", "_"))] or p.from.recipe_options) or p.from.recipe or "recipe"
      return where
    end, function() return recipe_of.load(settings.recipe):options(argv) end)
  end
  return settings, setting, require("slua.sweep.spec").task_identity(t.name, settings)
end

-- The result line of one (point, item): the task's record, its metrics, the time it took.
function task.evaluate(plan, point, item)
  local t = plan.task
  if point.values.threads then sl.set_threads(point.values.threads) end
  local model = task.model(point.values.model)
  local t0 = core.clock()
  local ok, rec = pcall(t.module.evaluate, model, item.eval_item, point.setting)
  local run_s = core.clock() - t0
  if not ok then
    local msg = type(rec) == "table" and rec.message or tostring(rec)
    if msg:find("interrupted", 1, true) and #msg < 80 then error("interrupted", 0) end
    sl.fail(("%s: point %s, item %s: %s"):format(plan.file, point.id, tostring(item.id), msg))
  end
  local alone = t.module.summarize({ rec })
  local values = {}
  for _, m in ipairs(t.metrics) do
    local v = alone[m.name]
    if type(v) == "boolean" then v = v and 1 or 0 end
    values[m.name] = v
  end
  return rec, values, run_s
end

return task
