-- slua.sweep.report: a sweep's results as a pivot table (points as rows, metrics as columns,
-- mean ± standard error over items; a task's own summary for task metrics) in Markdown, CSV
-- and JSON, and one SVG plot per metric.
--
--   OUT/report.md, OUT/report.csv, OUT/plots/<metric>.svg
-- A plot puts the metric against the sweep's `plot.x` (default: the first swept key whose
-- values are all numbers, else the first swept key), one line per value of `plot.series`
-- (default: the next swept key); items of points that differ in other keys are pooled.
local sl = require "slua.util"
local store = require "slua.sweep.store"
local plot = require "slua.sweep.plot"
local spec = require "slua.sweep.spec"
local ev = require "slua.eval"

local report = {}

local function stats(values)
  local n = #values
  if n == 0 then return { n = 0 } end
  local sum = 0
  for _, v in ipairs(values) do sum = sum + v end
  local mean = sum / n
  local ss = 0
  for _, v in ipairs(values) do ss = ss + (v - mean) ^ 2 end
  local se = n > 1 and math.sqrt(ss / (n - 1) / n) or 0
  return { n = n, mean = mean, se = se }
end

local function fmt(v) return ("%.4g"):format(v) end

local function display(v)
  if v == nil then return "" end
  if type(v) == "table" then return spec.flag_value(v) end
  if type(v) == "number" then return fmt(v) end
  return tostring(v)
end

-- A task's aggregate of one point's records: task.summarize where the task is known here (its
-- metric need not be a plain mean over items), else nil.
local function summarizer(task_name)
  if not task_name then return nil end
  local mod = ev.tasks[task_name]
  return mod and mod.summarize
end

-- report.build(dir) -> {name, recipe, task, swept, metrics, units, rows = {{id, params, n, stats}}}
-- stats = {n, mean, se}: mean is the task's summary for task metrics, else the mean over items;
-- se is the standard error of the per-item values.
function report.build(dir)
  local m = store.read_manifest(dir)
  local records = store.read(dir, false)
  local summarize = summarizer(m.task)
  local by_point = {}
  for _, r in ipairs(records) do
    by_point[r.point] = by_point[r.point] or {}
    table.insert(by_point[r.point], r)
  end
  local rows, total = {}, 0
  for _, p in ipairs(m.points) do
    local rs = by_point[p.id] or {}
    local row = { id = p.id, params = p.params, n = #rs, metrics = {} }
    for _, name in ipairs(m.metrics) do
      local values = {}
      for _, r in ipairs(rs) do
        local v = r.metrics and r.metrics[name]
        if v == nil and r.timings then v = r.timings[name] end   -- a timing metric (tokens_per_s)
        values[#values + 1] = v
      end
      row.metrics[name] = stats(values)
    end
    if summarize and #rs > 0 then
      local summary = summarize(rs)
      for _, name in ipairs(m.metrics) do
        if type(summary[name]) == "number" then row.metrics[name].mean = summary[name] end
      end
    end
    total = total + #rs
    rows[#rows + 1] = row
  end
  return { name = m.name, recipe = m.recipe, task = m.task, model = m.model, swept = m.swept, plot = m.plot,
           metrics = m.metrics, units = m.units or {}, rows = rows, runs = total,
           expected = #m.points * #m.items, records = records, manifest = m, summarize = summarize }
end

-- "recipe `dola`", "task `truthfulqa_mc`" or both (a generating task's fixed recipe).
function report.what(rep)
  local parts = {}
  if rep.task then parts[#parts + 1] = ("task `%s`"):format(rep.task) end
  if rep.recipe then parts[#parts + 1] = ("recipe `%s`"):format(rep.recipe) end
  return table.concat(parts, ", ")
end

function report.markdown(rep)
  local out = {}
  out[#out + 1] = ("Sweep **%s**: %s, %d points, %d of %d runs; %s ± standard error over items."):format(
    rep.name, report.what(rep), #rep.rows, rep.runs, rep.expected, rep.task and "the task's metrics" or "mean")
  out[#out + 1] = ""
  local head = {}
  for _, k in ipairs(rep.swept) do head[#head + 1] = k end
  head[#head + 1] = "n"
  for _, name in ipairs(rep.metrics) do head[#head + 1] = name end
  head[#head + 1] = "point"
  out[#out + 1] = "| " .. table.concat(head, " | ") .. " |"
  local rule = {}
  for i = 1, #head do rule[i] = i <= #rep.swept and "---" or "---:" end
  out[#out + 1] = "| " .. table.concat(rule, " | ") .. " |"
  for _, row in ipairs(rep.rows) do
    local cells = {}
    for _, k in ipairs(rep.swept) do cells[#cells + 1] = (display(row.params[k]):gsub("|", "\\|")) end
    cells[#cells + 1] = tostring(row.n)
    for _, name in ipairs(rep.metrics) do
      local s = row.metrics[name]
      cells[#cells + 1] = s.n > 0 and (fmt(s.mean) .. " ± " .. fmt(s.se)) or "—"
    end
    cells[#cells + 1] = "`" .. row.id:sub(1, 8) .. "`"
    out[#out + 1] = "| " .. table.concat(cells, " | ") .. " |"
  end
  return table.concat(out, "\n") .. "\n"
end

local function csv_cell(v)
  v = tostring(v)
  if v:find('[,"\n]') then v = '"' .. v:gsub('"', '""') .. '"' end
  return v
end

function report.csv(rep)
  local head = { "point" }
  for _, k in ipairs(rep.swept) do head[#head + 1] = k end
  head[#head + 1] = "n"
  for _, name in ipairs(rep.metrics) do
    head[#head + 1] = name .. "_mean"
    head[#head + 1] = name .. "_se"
  end
  local out = { table.concat(head, ",") }
  for _, row in ipairs(rep.rows) do
    local cells = { row.id }
    for _, k in ipairs(rep.swept) do cells[#cells + 1] = csv_cell(display(row.params[k])) end
    cells[#cells + 1] = row.n
    for _, name in ipairs(rep.metrics) do
      local s = row.metrics[name]
      cells[#cells + 1] = s.n > 0 and ("%.17g"):format(s.mean) or ""
      cells[#cells + 1] = s.n > 0 and ("%.17g"):format(s.se) or ""
    end
    out[#out + 1] = table.concat(cells, ",")
  end
  return table.concat(out, "\n") .. "\n"
end

function report.json(rep)
  local rows = {}
  for i, row in ipairs(rep.rows) do
    rows[i] = { point = row.id, params = row.params, n = row.n, metrics = row.metrics }
  end
  return sl.json.encode({ name = rep.name, recipe = rep.recipe, task = rep.task, swept = rep.swept, metrics = rep.metrics,
                          runs = rep.runs, expected = rep.expected, points = rows }) .. "\n"
end

-- The plot axes: x and series keys.
local function axes(rep)
  local x, series = rep.plot and rep.plot.x, rep.plot and rep.plot.series
  if not x then
    for _, k in ipairs(rep.swept) do
      local all = true
      for _, row in ipairs(rep.rows) do if type(row.params[k]) ~= "number" then all = false end end
      if all then x = k; break end
    end
    x = x or rep.swept[1]
  end
  if not series then
    for _, k in ipairs(rep.swept) do if k ~= x then series = k; break end end
  end
  return x, series
end

-- A plot's y label: what the metric is (its unit) and over how many items each point is (the
-- least to the most, when pooling or missing runs make them differ).
function report.y_label(rep, metric, series)
  local unit = rep.units[metric]
  local what = rep.summarize and "the task's summary" or "mean"
  local lo, hi = math.huge, 0
  for _, s in ipairs(series) do
    for _, pt in ipairs(s.points) do lo, hi = math.min(lo, pt[4]), math.max(hi, pt[4]) end
  end
  local count = lo == math.huge and "no" or lo == hi and tostring(lo) or ("%d to %d"):format(lo, hi)
  return ("%s%s, %s over %s items"):format(metric, unit and (" (" .. unit .. ")") or "", what, count)
end

-- report.plots(rep) -> {{metric, svg}} (none when nothing is swept)
function report.plots(rep)
  local x, series_key = axes(rep)
  if not x then return {} end
  local xs, seen_x, names, seen_s = {}, {}, {}, {}
  local per_point = {}
  for _, r in ipairs(rep.records) do
    per_point[r.point] = per_point[r.point] or {}
    table.insert(per_point[r.point], r)
  end
  for _, row in ipairs(rep.rows) do
    local xv = row.params[x]
    if type(xv) == "table" then xv = display(xv) end
    if xv ~= nil and not seen_x[xv] then seen_x[xv] = true; xs[#xs + 1] = xv end
    local sv = series_key and display(row.params[series_key]) or "all"
    if not seen_s[sv] then seen_s[sv] = true; names[#names + 1] = sv end
  end
  local numeric = true
  for _, v in ipairs(xs) do if type(v) ~= "number" then numeric = false end end
  if numeric then table.sort(xs) end
  local out = {}
  for _, metric in ipairs(rep.metrics) do
    local series = {}
    for _, sv in ipairs(names) do
      local pts = {}
      for _, xv in ipairs(xs) do
        local values, pooled_records = {}, {}
        for _, row in ipairs(rep.rows) do
          local rx = row.params[x]
          if type(rx) == "table" then rx = display(rx) end
          local rs = series_key and display(row.params[series_key]) or "all"
          if rx == xv and rs == sv then
            for _, r in ipairs(per_point[row.id] or {}) do
              values[#values + 1] = r.metrics[metric]
              pooled_records[#pooled_records + 1] = r
            end
          end
        end
        local s = stats(values)
        if rep.summarize and s.n > 0 then
          local summary = rep.summarize(pooled_records)
          if type(summary[metric]) == "number" then s.mean = summary[metric] end
        end
        if s.n > 0 then pts[#pts + 1] = { xv, s.mean, s.se, s.n } end
      end
      series[#series + 1] = { name = sv, points = pts }
    end
    local pooled = #rep.swept > (series_key and 2 or 1) and "; other swept keys pooled" or ""
    out[#out + 1] = {
      metric = metric,
      svg = plot.svg{
        title = ("%s by %s"):format(metric, x),
        subtitle = ("sweep %s, %s: %s ± s.e. over items%s"):format(rep.name, (report.what(rep):gsub("`", "")),
          rep.summarize and "the task's summary" or "mean", pooled),
        x_label = x, y_label = report.y_label(rep, metric, series),
        x = xs, series = series, legend_title = series_key,
      },
    }
  end
  return out
end

-- Writes report.md, report.csv and plots/*.svg into dir; returns the report and the file list.
function report.write(dir)
  local rep = report.build(dir)
  local files = {}
  store.write_atomic(dir .. "/report.md", report.markdown(rep))
  files[#files + 1] = dir .. "/report.md"
  store.write_atomic(dir .. "/report.csv", report.csv(rep))
  files[#files + 1] = dir .. "/report.csv"
  local plots = report.plots(rep)
  if #plots > 0 then store.mkdirs(dir .. "/plots") end
  for _, p in ipairs(plots) do
    local path = ("%s/plots/%s.svg"):format(dir, p.metric:gsub("[^%w_%-]", "_"))
    store.write_atomic(path, p.svg)
    files[#files + 1] = path
  end
  return rep, files
end

return report
