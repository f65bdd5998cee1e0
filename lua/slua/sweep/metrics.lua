-- slua.sweep.metrics: numbers computed from one run's result, for the report.
--
-- A sweep's `metrics` list names built-ins and adds functions under a name:
--   metrics = { "distinct_2", "length", novelty = function(ctx, result) return ... end }
-- A function gets ctx = {point, item, options, params, tokenizer} and the result (the recipe's
-- JSON fields: prompt_ids, new_ids, text, stop_reason, steps, ...) and returns a number (or a
-- boolean, counted as 1/0). A metric that raises or returns anything else stops the sweep with
-- the metric named; it is first tried on a short check run, before the sweep's runs start.
local sl = require "slua.util"

local metrics = {}

local function distinct(ids, n)
  local total, seen, unique = 0, {}, 0
  for i = 1, #ids - n + 1 do
    local key = table.concat(ids, ",", i, i + n - 1)
    total = total + 1
    if not seen[key] then seen[key] = true; unique = unique + 1 end
  end
  return total > 0 and unique / total or 0
end

-- Built-ins: {fn, unit} (the unit labels plot axes). A built-in without fn is a timing: its
-- value is the run's entry of the same name in the result line's `timings` (never in
-- `metrics`, so that lines stay equal between reruns, timings aside).
metrics.builtin = {
  length = { fn = function(_, r) return #r.new_ids end, unit = "tokens" },
  tokens_per_s = { unit = "tokens/s" },
  distinct_1 = { fn = function(_, r) return distinct(r.new_ids, 1) end, unit = "fraction" },
  distinct_2 = { fn = function(_, r) return distinct(r.new_ids, 2) end, unit = "fraction" },
  distinct_3 = { fn = function(_, r) return distinct(r.new_ids, 3) end, unit = "fraction" },
  -- Share of generated tokens that complete a 3-gram already seen in prompt + continuation.
  rep_rate = {
    fn = function(_, r)
      local all = {}
      for _, id in ipairs(r.prompt_ids) do all[#all + 1] = id end
      local start = #all
      for _, id in ipairs(r.new_ids) do all[#all + 1] = id end
      local seen, repeats, total = {}, 0, 0
      for i = 3, #all do
        local key = all[i - 2] .. "," .. all[i - 1] .. "," .. all[i]
        if i > start then
          total = total + 1
          if seen[key] then repeats = repeats + 1 end
        end
        seen[key] = true
      end
      return total > 0 and repeats / total or 0
    end,
    unit = "fraction",
  },
  eos = { fn = function(_, r) return r.stop_reason == "eos" and 1 or 0 end, unit = "fraction" },
}

-- What a recipe sweep that names no metrics reports: new tokens, speed, distinct-2 and the
-- repetition rate, so that every report has its plots.
metrics.default = { "length", "tokens_per_s", "distinct_2", "rep_rate" }

-- The metrics of a list, {{name, fn, unit}} in a stable order (list order, then named
-- functions sorted).
local function resolve_list(file, list)
  local out, seen = {}, {}
  local function add(name, fn, unit, where)
    if seen[name] then sl.fail(("%s: %s: metric '%s' given twice"):format(file, where, name)) end
    seen[name] = true
    out[#out + 1] = { name = name, fn = fn, unit = unit, where = where }
  end
  list = list or {}
  for i, m in ipairs(list) do
    local where = ("metrics[%d]"):format(i)
    if type(m) == "string" then
      local b = metrics.builtin[m]
      if not b then
        local names = {}
        for k in pairs(metrics.builtin) do names[#names + 1] = k end
        table.sort(names)
        sl.fail(("%s: %s: unknown metric '%s' (built-ins: %s)"):format(file, where, m, table.concat(names, ", ")))
      end
      add(m, b.fn, b.unit, where)
    elseif type(m) == "function" then
      sl.fail(("%s: %s: a function metric needs a name (metrics = { name = function(ctx, r) ... end })"):format(file, where))
    else
      sl.fail(("%s: %s: a metric is a built-in name or a named function"):format(file, where))
    end
  end
  local named = {}
  for k, v in pairs(list) do
    if math.type(k) ~= "integer" then
      if type(k) ~= "string" or type(v) ~= "function" then
        sl.fail(("%s: metrics.%s: expected a function(ctx, result) -> number"):format(file, tostring(k)))
      end
      named[#named + 1] = k
    end
  end
  table.sort(named)
  for _, k in ipairs(named) do add(k, list[k], nil, "metrics." .. k) end
  return out
end

-- metrics.resolve(file, list) -> the list's metrics; no list (or an empty one) gives
-- metrics.default.
function metrics.resolve(file, list)
  if list == nil or next(list) == nil then list = metrics.default end
  return resolve_list(file, list)
end

-- metrics.resolve_task(file, list, task) -> the task's metrics (computed by the task itself, no
-- fn), then the sweep's named functions, which get ctx and the task's record of the item.
function metrics.resolve_task(file, list, task)
  local out, seen = {}, {}
  for _, m in ipairs(task.metrics) do
    out[#out + 1] = { name = m.name, unit = m.unit, where = "task metric " .. m.name }
    seen[m.name] = true
  end
  for k, v in pairs(list or {}) do
    if math.type(k) == "integer" then
      sl.fail(("%s: metrics[%d]: a task sweep reports the task's metrics; add others as named functions"):format(file, k))
    end
  end
  for _, m in ipairs(resolve_list(file, list)) do
    if seen[m.name] then sl.fail(("%s: %s: task %s already has a metric '%s'"):format(file, m.where, task.name, m.name)) end
    out[#out + 1] = m
  end
  return out
end

-- metrics.compute(plan, list, ctx, result) -> {name = number} | nil, message naming the metric
function metrics.compute(file, list, ctx, result)
  local values = {}
  for _, m in ipairs(list) do
    if not m.fn then goto next end
    local ok, v = pcall(m.fn, ctx, result)
    if not ok then
      return nil, ("%s: %s: %s"):format(file, m.where, type(v) == "table" and tostring(v.message) or tostring(v))
    end
    if type(v) == "boolean" then v = v and 1 or 0 end
    if type(v) ~= "number" or v ~= v then
      return nil, ("%s: %s: returned %s, not a number"):format(file, m.where, tostring(v))
    end
    values[m.name] = v
    ::next::
  end
  return values
end

return metrics
