-- slua.eval.uncertainty: how sure an evaluation's numbers are. Every metric that is a mean over
-- items (a task's item_metrics, each item's value from task.item_value) gets its standard
-- error and a seeded 95 % percentile bootstrap interval over the items; two runs of one task
-- compare by the paired difference over the items both hold. The resampling is C's
-- (core.bootstrap_mean); this module only gathers the per-item values.
--
--   uncertainty.of(task, records, {bootstrap = 1000, seed = 42})
--     -> {MC1 = {se = ..., ci95 = {lo, hi}}, ...}   (ci95 absent with bootstrap = 0)
--   uncertainty.paired(task, records_a, records_b, opts)
--     -> {n_shared, MC1 = {diff = mean(b - a), se = ..., ci95 = {lo, hi}}, ...}
local core = require "slua.core"

local M = {}

M.default_resamples = 1000

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end

-- The per-item values of each mean metric of a task, in record order.
function M.item_values(task, records)
  local out = {}
  for _, name in ipairs(task.item_metrics or {}) do
    local values = {}
    for i, r in ipairs(records) do
      local v = task.item_value(r, name)
      if type(v) == "boolean" then v = v and 1 or 0 end
      values[i] = tonumber(v) or 0
    end
    out[name] = values
  end
  return out
end

local function summary(values, opts, seed_offset)
  local resamples = opts.bootstrap or M.default_resamples
  local u = core.bootstrap_mean(values, { resamples = resamples, seed = (opts.seed or 42) + seed_offset })
  local entry = { se = finite(u.se) and u.se or nil }
  if resamples > 0 and finite(u.lo) then entry.ci95 = { u.lo, u.hi } end
  return entry, u.mean
end

-- The metrics of a task in a stable order, each resampled from its own seed (seed + index), so
-- adding a metric leaves the others' intervals as they were.
function M.of(task, records, opts)
  opts = opts or {}
  local out = {}
  local by_metric = M.item_values(task, records)
  for i, name in ipairs(task.item_metrics or {}) do
    if #records > 0 then out[name] = (summary(by_metric[name], opts, i - 1)) end
  end
  return out
end

-- The paired difference b - a over the items (by id) both runs hold.
function M.paired(task, records_a, records_b, opts)
  opts = opts or {}
  local by_id = {}
  for _, r in ipairs(records_a) do by_id[tostring(r.id)] = r end
  local shared_a, shared_b = {}, {}
  for _, r in ipairs(records_b) do
    local a = by_id[tostring(r.id)]
    if a then shared_a[#shared_a + 1], shared_b[#shared_b + 1] = a, r end
  end
  local out = { n_shared = #shared_a }
  local va, vb = M.item_values(task, shared_a), M.item_values(task, shared_b)
  for i, name in ipairs(task.item_metrics or {}) do
    if #shared_a > 0 then
      local diffs = {}
      for k = 1, #shared_a do diffs[k] = vb[name][k] - va[name][k] end
      local entry, mean = summary(diffs, opts, i - 1)
      entry.diff = mean
      out[name] = entry
    end
  end
  return out
end

return M
