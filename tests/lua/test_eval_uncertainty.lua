-- Uncertainty of evaluation results: standard errors and seeded percentile bootstrap intervals
-- (core.bootstrap_mean) in `slua eval` summaries and --merge, and `slua eval report` comparing
-- runs by paired differences. The checks hold the numbers to what statistics says they must be
-- (the analytic standard error of a Bernoulli mean, a zero difference of a run with itself,
-- intervals that cover their mean), never to our own earlier output.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"
local core = require "slua.core"

local slua = arg[1] or "build/slua"
local tmp = T.tmpdir()
local cli = T.cli(slua, tmp)

-- A result file of task `task` as slua eval writes it: one line per item.
local function results_file(name, task, values)
  local lines = {}
  for i, v in ipairs(values) do
    local r = { id = "q" .. i, index = i - 1, task = task, settings_hash = "0123456789abcdef", shard = "0/1",
                shard_items = #values }
    if task == "truthfulqa_mc" then r.MC1, r.MC2, r.MC3 = v[1], v[2], v[3] else r.is_correct = v == 1 end
    lines[i] = r
  end
  local path = tmp .. "/" .. name
  T.write_json_lines(path, lines)
  return path
end

-- Whether a file parses as strict RFC 8259 JSON (Python's parser, NaN and Infinity refused).
local function strict_json(path)
  local _, ok = T.run(("python3 -c 'import json,sys; json.loads(sys.stdin.read(), parse_constant=lambda c: sys.exit(1))' < %s"):format(T.q(path)))
  return ok
end

-- n Bernoulli items with exactly round(p n) ones, spread evenly (a set whose variance is known).
local function bernoulli(p, n)
  local out, ones = {}, 0
  for i = 1, n do
    local want = math.floor(p * i + 0.5)
    out[i] = want > ones and 1 or 0
    ones = ones + out[i]
  end
  return out, ones
end

T.case("the standard error and the bootstrap's spread match sqrt(p(1-p)/n) within 5 %", function()
  for _, case in ipairs{ { 0.3, 400 }, { 0.5, 1000 }, { 0.85, 250 } } do
    local p, n = case[1], case[2]
    local values, ones = bernoulli(p, n)
    local phat = ones / n
    local analytic = math.sqrt(phat * (1 - phat) / n)
    local u = core.bootstrap_mean(values, { resamples = 4000, seed = 7 })
    T.near(u.mean, phat, 1e-12, "mean")
    T.near(u.se, analytic, 0.05 * analytic, ("SE at p=%g n=%d"):format(p, n))
    T.near(u.boot_se, analytic, 0.05 * analytic, ("bootstrap SD at p=%g n=%d"):format(p, n))
    -- a 95 % interval of a near-normal mean spans about ±1.96 SE around it
    T.truthy(u.lo < phat and phat < u.hi, "the interval covers the mean")
    T.near(u.hi - u.lo, 2 * 1.96 * analytic, 0.1 * 2 * 1.96 * analytic, "interval width ~ 3.92 SE")
  end
end)

T.case("the bootstrap is reproducible with a seed and changes with it", function()
  local values = bernoulli(0.4, 300)
  local a = core.bootstrap_mean(values, { resamples = 500, seed = 11 })
  local b = core.bootstrap_mean(values, { resamples = 500, seed = 11 })
  local c = core.bootstrap_mean(values, { resamples = 500, seed = 12 })
  T.eq(a.lo, b.lo, "same seed, same lower bound")
  T.eq(a.hi, b.hi, "same seed, same upper bound")
  T.truthy(a.lo ~= c.lo or a.hi ~= c.hi, "another seed, another draw")
  local off = core.bootstrap_mean(values, { resamples = 0 })
  T.truthy(off.lo ~= off.lo and off.se == a.se, "no resamples: no interval, the same SE")
  local one = core.bootstrap_mean({ 0.5 })
  T.truthy(one.se ~= one.se, "one item: no standard error")
  local constant = core.bootstrap_mean({ 2, 2, 2, 2 }, { resamples = 50 })
  T.eq(constant.lo, 2, "constant values: the interval is the value")
  T.eq(constant.hi, 2, "constant values: the interval is the value")
  T.raises(function() core.bootstrap_mean({ 1, 0 / 0 }) end, "values[2] is not a finite number", "NaN refused")
  T.raises(function() core.bootstrap_mean({ 1 }, { resamples = -1 }) end, "resamples", "negative resamples")
  T.raises(function() core.bootstrap_mean({ 1 }, { level = 1 }) end, "level", "level outside (0, 1)")
end)

T.case("--merge reports se and ci95 beside the metrics, strictly parsable and reproducible", function()
  local values = bernoulli(0.3, 400)
  local path = results_file("factor_a.jsonl", "factor", values)
  local out, err, code = cli.exec{ "eval", "--merge", path }
  T.eq(code, 0, err)
  T.truthy(strict_json(tmp .. "/out"), "the summary is strict JSON (no NaN or Infinity)")
  local m = assert(sl.json.decode(out))
  T.near(m.metrics.accuracy, 0.3, 1e-12, "accuracy")
  local u = m.uncertainty.accuracy
  T.near(u.se, math.sqrt(0.3 * 0.7 / 400), 0.05 * math.sqrt(0.3 * 0.7 / 400), "SE")
  T.truthy(u.ci95[1] < 0.3 and 0.3 < u.ci95[2], "ci95 covers the accuracy")
  local again = cli.exec{ "eval", "--merge", path }
  T.eq(again, out, "the same seed gives the same summary")
  local other = cli.exec{ "eval", "--merge", path, "--seed", "5" }
  T.truthy(other ~= out, "--seed changes the interval")
  local none = assert(sl.json.decode((cli.exec{ "eval", "--merge", path, "--bootstrap", "0" })))
  T.eq(none.uncertainty.accuracy.ci95, nil, "--bootstrap 0: no interval")
  T.near(none.uncertainty.accuracy.se, u.se, 1e-15, "--bootstrap 0: the SE stays")
  cli.usage_error({ "eval", "--merge", path, "--bootstrap", "-3" }, "slua: option --bootstrap must be >= 0 (got -3)")
end)

T.case("a real slua eval summary carries the uncertainty of its metric", function()
  local out, err, code = cli.exec{ "eval", "gsm8k", "--limit", "3", "--max-new-tokens", "4", "--progress", "never",
                                   "--threads", "1", "--bootstrap", "200" }
  T.eq(code, 0, err)
  local s = assert(sl.json.decode(out))
  local u = s.uncertainty.accuracy
  T.truthy(u ~= nil, "uncertainty.accuracy present: " .. out)
  T.eq(type(u.se), "number", "se")
  T.eq(#u.ci95, 2, "ci95 [lo, hi]")
  T.truthy(u.ci95[1] <= s.metrics.accuracy and s.metrics.accuracy <= u.ci95[2], "covers the accuracy")
end)

T.case("eval report: a run against itself differs by 0 in [0, 0]; paired differences over shared items", function()
  local tq = {}
  for i = 1, 60 do tq[i] = { i % 3 == 0 and 1 or 0, (i % 7) / 7, (i % 5) / 5 } end
  local a = results_file("tq_a.jsonl", "truthfulqa_mc", tq)
  local better = {}
  for i = 1, 50 do better[i] = { 1, tq[i][2] + 0.1, tq[i][3] } end   -- ten items fewer, MC2 +0.1 each
  local b = results_file("tq_b.jsonl", "truthfulqa_mc", better)
  local out, err, code = cli.exec{ "eval", "report", a, a:gsub("tq_a", "tq_a_copy"), "--format", "json" }
  T.eq(code, 1, "a missing file fails")
  T.truthy(err:find("tq_a_copy.jsonl: no such file", 1, true), err)
  os.execute(("cp %s %s/tq_a_copy.jsonl"):format(T.q(a), T.q(tmp)))
  out, err, code = cli.exec{ "eval", "report", a, tmp .. "/tq_a_copy.jsonl", b, "--format", "json", "--svg", tmp .. "/cmp.svg" }
  T.eq(code, 0, err)
  local rep = assert(sl.json.decode(out))
  T.truthy(strict_json(tmp .. "/out"), "the report is strict JSON")
  T.eq(rep.task, "truthfulqa_mc", "task")
  T.eq(#rep.runs, 3, "three runs")
  local self = rep.runs[2].vs_baseline
  T.eq(self.n_shared, 60, "a copy shares every item")
  for _, m in ipairs{ "MC1", "MC2", "MC3" } do
    T.eq(self[m].diff, 0, m .. ": difference with itself")
    T.eq(self[m].ci95[1], 0, m .. ": interval [0, 0]")
    T.eq(self[m].ci95[2], 0, m .. ": interval [0, 0]")
  end
  local vs = rep.runs[3].vs_baseline
  T.eq(vs.n_shared, 50, "paired over the 50 items both hold")
  T.near(vs.MC2.diff, 0.1, 1e-9, "MC2 +0.1 on every shared item")
  T.near(vs.MC2.ci95[1], 0.1, 1e-9, "a constant difference has a point interval")
  local mc1_a = 0
  for i = 1, 50 do mc1_a = mc1_a + tq[i][1] end
  T.near(vs.MC1.diff, 1 - mc1_a / 50, 1e-12, "MC1 difference over the shared items, not all of A")
  T.truthy(vs.MC1.ci95[1] < vs.MC1.diff and vs.MC1.diff < vs.MC1.ci95[2], "interval covers the difference")
  local md = cli.exec{ "eval", "report", a, b }
  T.truthy(md:find("| run | metric | n | value | SE | 95 % CI | Δ vs tq_a |", 1, true), md)
  T.truthy(md:find("| tq_b | MC2 | 50 |", 1, true), md)
  local csv = cli.exec{ "eval", "report", a, b, "--format", "csv" }
  local header = csv:match("^[^\n]*")
  T.eq(header, "run,metric,n,value,se,ci95_lo,ci95_hi,diff,diff_se,diff_ci95_lo,diff_ci95_hi,n_shared", "CSV header")
  T.eq(select(2, csv:gsub("\n", "")), 7, "header and 2 runs x 3 metrics")
  local svg = T.read(tmp .. "/cmp.svg")
  T.truthy(svg:find("^<svg"), "an SVG")
  T.eq(select(2, svg:gsub('class="bar"', "")), 9, "3 runs x 3 metrics bars")
  T.truthy(select(2, svg:gsub('class="errorbar"', "")) >= 6, "error bars where the interval is not a point")
  cli.usage_error({ "eval", "report", a, "--format", "xml" }, "slua: option --format must be one of md, csv, json (got 'xml')")
  out, err, code = cli.exec{ "eval", "report", tmp }
  T.eq(code, 1, "a folder is no result file")
  T.truthy(err:find(tmp .. ": cannot read", 1, true), err)
  local f = results_file("factor_b.jsonl", "factor", { 1, 0 })
  out, err, code = cli.exec{ "eval", "report", a, f }
  T.eq(code, 1, "two tasks do not compare")
  T.truthy(err:find("results of task factor", 1, true), err)
end)

T.remove_tmpdirs()
T.finish()
