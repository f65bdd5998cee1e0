-- slua eval report A.jsonl B.jsonl ...: result files of one task side by side. Each run's mean
-- metrics with their standard error and 95 % bootstrap interval, and every run after the first
-- against the first: the paired difference (run - first) over the items both hold, with its own
-- bootstrap interval. Markdown (default), CSV or JSON on stdout; --svg FILE writes a bar chart
-- with the intervals as error bars.
local sl = require "slua.util"
local core = require "slua.core"
local ev = require "slua.eval"
local runner = require "slua.eval.runner"
local uncertainty = require "slua.eval.uncertainty"
local bars = require "slua.eval.bars"

local M = {}

local function label_of(path, taken)
  local base = path:match("([^/]+)$"):gsub("%.jsonl?$", ""):gsub("%.out$", "")
  if taken[base] then base = path end
  taken[base] = true
  return base
end

-- report.build(paths, {bootstrap, seed}) -> {task, baseline, runs = {{run, path, n, metrics,
-- uncertainty, vs_baseline = {n_shared, <metric> = {diff, se, ci95}}}}}
function M.build(paths, opts)
  local runs, task_name, taken = {}, nil, {}
  for _, path in ipairs(paths) do
    local records, existed = runner.read_results(path)
    if not existed then sl.fail(path .. ": no such file") end
    if #records == 0 then sl.fail(path .. ": no result lines") end
    local name = records[1].task
    task_name = task_name or name
    if name ~= task_name then
      sl.fail(("%s: results of task %s; %s holds %s (a report compares runs of one task)"):format(path, tostring(name), paths[1], task_name))
    end
    runs[#runs + 1] = { path = path, run = label_of(path, taken), records = records }
  end
  local task = ev.tasks[task_name] or sl.fail(("%s: unknown task '%s'"):format(paths[1], tostring(task_name)))
  local out = { task = task_name, baseline = runs[1].run, metric_names = task.item_metrics, runs = {} }
  for i, r in ipairs(runs) do
    local entry = { run = r.run, path = r.path, n = #r.records, metrics = task.summarize(r.records),
                    uncertainty = uncertainty.of(task, r.records, opts) }
    if i > 1 then entry.vs_baseline = uncertainty.paired(task, runs[1].records, r.records, opts) end
    out.runs[i] = entry
  end
  return out
end

local function num(v) return v == nil and "" or ("%.4f"):format(v) end
local function signed(v) return v == nil and "" or ("%+.4f"):format(v) end
local function interval(ci, f) return ci and ("[%s, %s]"):format((f or num)(ci[1]), (f or num)(ci[2])) or "" end

-- One row per (run, metric).
local function rows(rep)
  local out = {}
  for i, r in ipairs(rep.runs) do
    for _, m in ipairs(rep.metric_names) do
      local u, d = r.uncertainty[m] or {}, r.vs_baseline and r.vs_baseline[m] or nil
      out[#out + 1] = { run = r.run, metric = m, n = r.n, value = r.metrics[m], se = u.se, ci = u.ci95,
                        diff = d and d.diff, diff_ci = d and d.ci95, diff_se = d and d.se,
                        shared = r.vs_baseline and r.vs_baseline.n_shared, first = i == 1 }
    end
  end
  return out
end

function M.markdown(rep)
  local o = { ("%s: %d runs; differences are paired, against %s, over the items both hold"):format(rep.task, #rep.runs, rep.baseline), "",
              ("| run | metric | n | value | SE | 95 %% CI | Δ vs %s | Δ 95 %% CI | shared |"):format(rep.baseline),
              "| --- | --- | ---: | ---: | ---: | --- | ---: | --- | ---: |" }
  for _, r in ipairs(rows(rep)) do
    o[#o + 1] = ("| %s | %s | %d | %s | %s | %s | %s | %s | %s |"):format(r.run, r.metric, r.n, num(r.value), num(r.se),
      interval(r.ci), r.first and "—" or signed(r.diff), interval(r.diff_ci, signed), r.shared or "")
  end
  return table.concat(o, "\n") .. "\n"
end

local function csv_field(v)
  v = v == nil and "" or tostring(v)
  if v:find('[",\n]') then v = '"' .. v:gsub('"', '""') .. '"' end
  return v
end

function M.csv(rep)
  local o = { "run,metric,n,value,se,ci95_lo,ci95_hi,diff,diff_se,diff_ci95_lo,diff_ci95_hi,n_shared" }
  local function g(v) return v == nil and "" or ("%.17g"):format(v) end
  for _, r in ipairs(rows(rep)) do
    o[#o + 1] = table.concat({ csv_field(r.run), csv_field(r.metric), r.n, g(r.value), g(r.se), g(r.ci and r.ci[1]),
      g(r.ci and r.ci[2]), g(r.diff), g(r.diff_se), g(r.diff_ci and r.diff_ci[1]), g(r.diff_ci and r.diff_ci[2]),
      r.shared or "" }, ",")
  end
  return table.concat(o, "\n") .. "\n"
end

function M.json(rep)
  local copy = { task = rep.task, baseline = rep.baseline, metrics = rep.metric_names, runs = rep.runs }
  return core.json_encode(copy) .. "\n"
end

-- The bar chart: one group per metric, one bar per run, the 95 % interval as the error bar
-- (± 1.96 SE without resamples).
function M.svg(rep)
  local groups = {}
  for _, m in ipairs(rep.metric_names) do
    local g = { name = m, bars = {} }
    for _, r in ipairs(rep.runs) do
      local u = r.uncertainty[m] or {}
      local v = r.metrics[m]
      local lo, hi = v, v
      if u.ci95 then lo, hi = u.ci95[1], u.ci95[2]
      elseif u.se then lo, hi = v - 1.96 * u.se, v + 1.96 * u.se end
      g.bars[#g.bars + 1] = { name = r.run, value = v, lo = lo, hi = hi, n = r.n }
    end
    groups[#groups + 1] = g
  end
  local n_text, same = {}, true
  for _, r in ipairs(rep.runs) do
    n_text[#n_text + 1] = tostring(r.n)
    same = same and r.n == rep.runs[1].n
  end
  if same then n_text = { n_text[1] } end
  return bars.svg{
    title = ("%s: %s"):format(rep.task, table.concat(rep.metric_names, ", ")),
    subtitle = ("error bars: 95 %% bootstrap interval over items; differences vs %s in the table"):format(rep.baseline),
    y_label = ("mean over %s items"):format(table.concat(n_text, ", ")),
    groups = groups,
  }
end

function M.main(argv, integer_flag)
  local paths, opts, format, svg = {}, { bootstrap = uncertainty.default_resamples, seed = 42 }, "md", nil
  local i = 2
  while i <= #argv do
    local a = argv[i]
    if a == "--format" then
      format = argv[i + 1] or sl.fail("option --format needs a value", 2)
      if format ~= "md" and format ~= "csv" and format ~= "json" then
        sl.fail(("option --format must be one of md, csv, json (got '%s')"):format(format), 2)
      end
      i = i + 1
    elseif a == "--svg" then
      svg = argv[i + 1] or sl.fail("option --svg needs a value", 2)
      i = i + 1
    elseif a == "--bootstrap" or a == "--seed" then
      local name = a:sub(3)
      opts[name] = integer_flag(name, argv[i + 1], name == "bootstrap" and 0 or nil)
      i = i + 1
    elseif a:match("^%-%-") then
      sl.fail(("eval report: unknown option %s (options: --format, --svg, --bootstrap, --seed)"):format(a), 2)
    else
      paths[#paths + 1] = a
    end
    i = i + 1
  end
  if #paths == 0 then sl.fail("usage: slua eval report A.jsonl B.jsonl ... [--format md|csv|json] [--svg FILE]", 2) end
  local rep = M.build(paths, opts)
  if svg then
    local f = io.open(svg, "wb") or sl.fail(("option --svg: cannot write %s"):format(svg))
    f:write(M.svg(rep))
    f:close()
  end
  io.write(M[format == "md" and "markdown" or format](rep))
end

return M
