-- slua sweep: a grid of recipe runs in one process equals the same recipe run alone from the
-- command line, resumes after kill -9 with every pair exactly once, shards merge to the same
-- results, reports render, and bad sweep files fail before any run, naming file and key.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local DATA = SLUA_ROOT .. "/tests/data/sweep"

local tmpdir, write, read, lines_of = T.tmpdir, T.write, T.read_file, T.json_lines

-- A result without its timings, as canonical JSON.
local function canonical(r)
  local c = {}
  for k, v in pairs(r) do if k ~= "timings" then c[k] = v end end
  return sl.json.encode(c)
end

local function canonical_file(path)
  local out = {}
  for i, r in ipairs(lines_of(path)) do out[i] = canonical(r) end
  return out
end

local function sweep(args) return T.run(("%s sweep %s"):format(slua, args)) end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local dola_out = tmpdir()
local swept_ok, swept_log = sweep(("%s/dola12.lua --out %s --quiet"):format(DATA, dola_out))

T.case("the 12-run sweep equals each recipe run alone from the command line", function()
  T.truthy(swept_ok, swept_log)
  local results = lines_of(dola_out .. "/results.jsonl")
  T.eq(#results, 12, "3 layer sets x 2 penalties x 2 prompts")
  local prompts = {}
  for line in io.lines(DATA .. "/prompts.jsonl") do
    local p = sl.json.decode(line)
    prompts[p.id] = p.prompt
  end
  local seen = {}
  for _, r in ipairs(results) do
    local key = r.point .. "/" .. r.item
    T.truthy(not seen[key], "each pair once: " .. key)
    seen[key] = true
    local cmd = ("%s dola --model models/stories260K --max-new-tokens 12 --threads 1 --dola-layers %s --repetition-penalty %s --prompt %s --format json"):format(
      slua, r.options.dola_layers, tostring(r.options.repetition_penalty), quote(prompts[r.item]))
    local out, ok = T.run(cmd)
    T.truthy(ok, out)
    local cli = assert(sl.json.decode(out))
    local extra = { point = true, item = true, metrics = true, timings = true }
    for k, v in pairs(cli) do   -- timings aside: they differ between any two runs
      if k ~= "timings" then T.eq(sl.json.encode(r[k]), sl.json.encode(v), ("%s: field %s"):format(key, k)) end
    end
    for k in pairs(r) do T.truthy(cli[k] ~= nil or extra[k], "no unexpected field " .. k) end
    T.truthy(#r.steps == #r.new_ids and r.steps[1].premature_layer ~= nil, "per-step details kept")
    T.eq(r.metrics.length, #r.new_ids, "length metric")
    T.truthy(r.timings.run_s > 0, "timings")
  end
end)

T.case("rerunning skips finished pairs; a torn last line is dropped and redone", function()
  local path = dola_out .. "/results.jsonl"
  local before = read(path)
  local out, ok = sweep(("%s/dola12.lua --out %s --quiet"):format(DATA, dola_out))
  T.truthy(ok, out)
  T.truthy(out:find("0 runs made", 1, true), out)
  T.eq(read(path), before, "file unchanged")
  -- Cut the last line in half, as a kill during the write would.
  local last_start = #before - #(before:match("([^\n]*\n)$")) + 1
  write(path, before:sub(1, last_start + 40))
  out, ok = sweep(("%s/dola12.lua --out %s --quiet"):format(DATA, dola_out))
  T.truthy(ok, out)
  T.truthy(out:find("dropped a torn last line", 1, true), out)
  T.truthy(out:find("1 runs made", 1, true), out)
  local a, b = canonical_file(path), {}
  for line in before:gmatch("([^\n]*)\n") do b[#b + 1] = canonical(sl.json.decode(line)) end
  T.eq(table.concat(a, "\n"), table.concat(b, "\n"), "same results after the repair")
end)

T.case("report: Markdown and CSV pivot, SVG plots that render", function()
  local out, ok = sweep("report " .. dola_out)
  T.truthy(ok, out)
  T.truthy(out:find("| dola_layers | repetition_penalty | n | distinct_2 | length | rep_rate | point |", 1, true), out)
  T.truthy(out:find("| low | 1.2 | 2 |", 1, true), out)
  local csv = read(dola_out .. "/report.csv")
  T.truthy(csv:find("^point,dola_layers,repetition_penalty,n,distinct_2_mean,distinct_2_se"), csv)
  T.eq(select(2, csv:gsub("\n", "")), 7, "header + 6 points")
  local svg = read(dola_out .. "/plots/length.svg")
  T.truthy(svg and svg:find("<svg", 1, true) and svg:find("repetition_penalty", 1, true), "plot written")
  T.truthy(svg:find(">low<", 1, true) and svg:find(">2,4<", 1, true), "legend names the series")
  T.truthy(svg:find(", mean over 2 items", 1, true), "the y axis counts the items per point")
  local json = sl.json.decode((sweep("report " .. dola_out .. " --format json")))
  T.eq(#json.points, 6, "json report rows")
  T.eq(json.points[1].metrics.length.n, 2, "two items per point")
  if os.execute("command -v rsvg-convert >/dev/null") then
    local png = dola_out .. "/length.png"
    local r = os.execute(("rsvg-convert %s/plots/length.svg -o %s"):format(dola_out, png))
    T.truthy(r, "rsvg-convert renders the plot")
    T.eq(read(png):sub(2, 4), "PNG", "a PNG came out")
  else
    io.stderr:write("skip: rsvg-convert not installed (scripts/install-deps.sh installs librsvg2-bin)\n")
  end
end)

T.case("a sweep that names no metrics reports new tokens, tok/s, distinct-2 and the repetition rate, with plots", function()
  local dir = tmpdir()
  write(dir .. "/plain.lua", [[
return {
  name = "plain", model = "models/stories260K", recipe = "greedy",
  prompts = { { prompt = "Once upon a time" }, { prompt = "The cat" } },
  fixed = { max_new_tokens = 6, threads = 1 },
  grid = { repetition_penalty = { 1.0, 1.3 } },
}
]])
  local out, ok = sweep(("%s/plain.lua --out %s/out --quiet"):format(dir, dir))
  T.truthy(ok, out)
  local md = read(dir .. "/out/report.md")
  T.truthy(md and md:find("| repetition_penalty | n | length | tokens_per_s | distinct_2 | rep_rate | point |", 1, true), md)
  for _, name in ipairs{ "length", "tokens_per_s", "distinct_2", "rep_rate" } do
    local svg = read(("%s/out/plots/%s.svg"):format(dir, name))
    T.truthy(svg and svg:find("<svg", 1, true), "a plot of " .. name)
  end
  local json = sl.json.decode((sweep("report " .. dir .. "/out --format json")))
  local speed = json.points[1].metrics.tokens_per_s
  T.truthy(speed.n == 2 and speed.mean > 0, "tok/s from the runs' timings: " .. sl.json.encode(speed))
  for _, r in ipairs(lines_of(dir .. "/out/results.jsonl")) do
    T.eq(r.metrics.length, #r.new_ids, "length = new tokens")
    T.eq(r.metrics.tokens_per_s, nil, "a timing stays out of metrics (lines equal between reruns, timings aside)")
    T.truthy(r.timings.tokens_per_s > 0, "and sits in timings")
  end
end)

T.case("three shards merged equal the single-process results", function()
  local dir = tmpdir()
  for i = 0, 2 do
    local out, ok = sweep(("%s/dola12.lua --out %s --shard %d/3 --quiet"):format(DATA, dir, i))
    T.truthy(ok, out)
    local n = #lines_of(("%s/shard-%d/results.jsonl"):format(dir, i))
    T.truthy(n >= 2 and n % 2 == 0, "whole points per shard: " .. n)
  end
  local st = sweep("status " .. dir)
  T.truthy(st:find("12 of 12 pairs finished, 0 missing", 1, true), st)
  local out, ok = sweep(("merge %s/shard-0 %s/shard-1 %s/shard-2"):format(dir, dir, dir))
  T.truthy(ok, out)
  T.eq(table.concat(canonical_file(dir .. "/results.jsonl"), "\n"),
       table.concat(canonical_file(dola_out .. "/results.jsonl"), "\n"), "merged = single process")
  -- The directory that holds the shards merges all of them, into itself.
  os.remove(dir .. "/results.jsonl")
  out, ok = sweep("merge " .. dir)
  T.truthy(ok and out:find("merged 12 results into " .. dir .. "/results.jsonl", 1, true), out)
  T.eq(table.concat(canonical_file(dir .. "/results.jsonl"), "\n"),
       table.concat(canonical_file(dola_out .. "/results.jsonl"), "\n"), "merge DIR = merge DIR/shard-*")
  -- A missing shard is reported, with its pairs.
  out, ok = sweep(("merge %s/shard-0 %s/shard-2 --out %s/partial"):format(dir, dir, dir))
  T.truthy(not ok and out:find("pairs missing", 1, true), out)
  os.remove(dir .. "/shard-1/results.jsonl")
  os.remove(dir .. "/results.jsonl")
  st, ok = sweep("status " .. dir)
  T.truthy(not ok and st:find("shards to rerun: 1", 1, true), st)
end)

T.case("--batch 5 runs the pairs' generations together: the same tokens as one at a time", function()
  local dir = tmpdir()
  local out, ok = sweep(("%s/dola12.lua --out %s --quiet --batch 5"):format(DATA, dir))
  T.truthy(ok, out)
  local by_key = {}
  for _, r in ipairs(lines_of(dola_out .. "/results.jsonl")) do by_key[r.point .. "/" .. r.item] = r end
  local batched = lines_of(dir .. "/results.jsonl")
  T.eq(#batched, 12, "every pair once")
  for _, r in ipairs(batched) do
    local one = by_key[r.point .. "/" .. r.item]
    T.eq(sl.json.encode(r.new_ids), sl.json.encode(one.new_ids), r.point .. "/" .. r.item .. " tokens")
    T.eq(r.text, one.text, "text")
    for i, step in ipairs(one.steps) do
      T.eq(r.steps[i].premature_layer, step.premature_layer, "premature layer")
      T.near(r.steps[i].top[1][2], step.top[1][2], 1e-4, "top score")
    end
  end
  out, ok = sweep(("%s/dola12.lua --out %s --quiet --batch 0"):format(DATA, dir))
  T.truthy(not ok and out:find("--batch expects an integer in [1, 256]", 1, true), out)
end)

-- 5 points x 8 prompts of long greedy runs, killed at random moments.
local function resume_sweep(dir)
  local prompts = {}
  local starts = { "Once upon a time", "The cat", "Lily and Tom", "One day", "The sun was", "A big dog",
                   "There was a boy", "Mom said" }
  for i, p in ipairs(starts) do prompts[i] = ("{ id = %d, prompt = %q }"):format(i, p) end
  local file = dir .. "/resume.lua"
  write(file, ([[
return {
  name = "resume", model = "models/stories260K", recipe = "greedy",
  prompts = { %s },
  fixed = { max_new_tokens = 160, threads = 1 },
  grid = { repetition_penalty = { 1.0, 1.1, 1.2, 1.3, 1.5 } },
  metrics = { "distinct_2" },
}
]]):format(table.concat(prompts, ", ")))
  return file
end

-- Starts `slua sweep ARGS` and signals it once results.jsonl in out holds `lines` whole lines
-- (a count, not a delay); returns the sweep's exit status and what it printed.
local function signal_at_lines(args, out, lines, signal)
  local cmd = ("%s sweep %s >%s.log 2>&1 & p=$!; "
    .. "for i in $(seq 2400); do [ \"$(cat %s/results.jsonl 2>/dev/null | wc -l)\" -ge %d ] && break; sleep 0.02; done; "
    .. "kill -%s $p 2>/dev/null; wait $p 2>/dev/null; echo rc=$?"):format(slua, args, T.q(out), T.q(out), lines, signal)
  return tonumber(T.run(cmd):match("rc=(%d+)")), read(out .. ".log") or ""
end

T.case("kill -9 at random points 5 times: every pair exactly once, equal to an uninterrupted run", function()
  local dir = tmpdir()
  local file = resume_sweep(dir)
  local out, ok = sweep(("%s --out %s/ref --quiet --no-report"):format(file, dir))
  T.truthy(ok, out)
  local ref = canonical_file(dir .. "/ref/results.jsonl")
  T.eq(#ref, 40, "40 pairs")
  math.randomseed(20240611)
  local partial, target = 0, 0
  for _ = 1, 5 do
    target = math.min(38, target + math.random(1, 7))   -- a random line count, rising over the kills
    signal_at_lines(("%s --out %s/killed --quiet --no-report"):format(file, dir), dir .. "/killed", target, 9)
    local n = #(read(dir .. "/killed/results.jsonl") or ""):gsub("[^\n]", "")
    if n >= target and n < 40 then partial = partial + 1 end
  end
  T.eq(partial, 5, "every kill landed mid-sweep")
  out, ok = sweep(("%s --out %s/killed --quiet --no-report"):format(file, dir))
  T.truthy(ok, out)
  local got = canonical_file(dir .. "/killed/results.jsonl")
  local seen = {}
  for _, line in ipairs(got) do
    local r = sl.json.decode(line)
    local key = r.point .. "/" .. r.item
    T.truthy(not seen[key], "pair once: " .. key)
    seen[key] = true
  end
  T.eq(table.concat(got, "\n"), table.concat(ref, "\n"), "same as the uninterrupted run")
end)

T.case("Ctrl-C finishes the current run's line and exits 130", function()
  local dir = tmpdir()
  local file = resume_sweep(dir)
  local code, log = signal_at_lines(("%s --out %s/int --quiet --no-report"):format(file, dir), dir .. "/int", 2, "INT")
  T.eq(code, 130, "exit status: " .. log)
  T.truthy(log:find("interrupted", 1, true), log)
  local text = read(dir .. "/int/results.jsonl") or ""
  local n = #text:gsub("[^\n]", "")
  T.truthy(n >= 2 and n < 40, "stopped mid-sweep after its lines: " .. n)
  T.truthy(text:sub(-1) == "\n", "only whole lines")
  for line in text:gmatch("([^\n]*)\n") do T.truthy(sl.json.decode(line), "a whole JSON line") end
end)

T.case("bad sweep files fail before any run, naming file and key", function()
  local dir = tmpdir()
  local function bad(name, body, needle)
    local file = ("%s/%s.lua"):format(dir, name)
    -- task sweeps set their own recipe, if any
    local head = name:match("^task") and "fixed = { threads = 1 }," or "recipe = 'greedy', fixed = { max_new_tokens = 4, threads = 1 },"
    write(file, "return {\n  model = 'models/stories260K', " .. head .. "\n" .. body .. "\n}\n")
    local out, ok = sweep(("%s --out %s/out-%s"):format(file, dir, name))
    T.truthy(not ok, name .. " must fail")
    T.truthy(out:find("slua: " .. file .. ": " .. needle, 1, true), name .. ": " .. out)
    T.truthy(not out:find("traceback", 1, true), "no traceback: " .. out)
    T.truthy(not read(("%s/out-%s/results.jsonl"):format(dir, name)), name .. ": no results written")
  end
  bad("recipe", "recipe = 'nope', grid = { seed = {1} },", "recipe: unknown recipe 'nope'")
  bad("option", "grid = { dola_layerz = {'low'} },", "grid.dola_layerz: unknown option of recipe greedy")
  bad("fixed_option", "fixed = { max_new_tokenz = 3 }, grid = { seed = {1} },", "fixed.max_new_tokenz: unknown option")
  bad("value", "grid = { max_new_tokens = {4, 'many'} },", "grid.max_new_tokens: option --max-new-tokens expects an integer")
  bad("empty", "grid = { repetition_penalty = {} },", "grid.repetition_penalty: empty list")
  bad("zip", "zip = { seed = {1, 2}, repetition_penalty = {1.0} },", "zip.seed: 2 values")
  bad("metric", "grid = { seed = {1, 2} }, metrics = { 'length', broken = function(ctx, r) return r.nope.x end },",
      "metrics.broken: ")
  bad("metric_nan", "grid = { seed = {1} }, metrics = { odd = function() return 'x' end },", "metrics.odd: returned x, not a number")
  bad("metric_name", "grid = { seed = {1} }, metrics = { 'lenght' },", "metrics[1]: unknown metric 'lenght'")
  bad("field", "grdi = { seed = {1} },", "grdi: unknown field")
  bad("prompts", "prompts = 'missing.jsonl',", "prompts: cannot open 'missing.jsonl'")
  bad("task", "task = 'gsm8k_x',", "task: unknown task 'gsm8k_x'")
  bad("task_option", "task = { name = 'truthfulqa_mc', limt = 2 },", "task.limt: unknown task option")
  bad("task_limit", "task = { name = 'truthfulqa_mc', limit = -1 },", "task.limit: option --limit must be >= 0")
  bad("task_key", "task = 'truthfulqa_mc', grid = { early_exit_layers = {'-1'}, dola_layers = {'low'} },",
      "grid.dola_layers: unknown option of task truthfulqa_mc")
  bad("task_layers", "task = 'truthfulqa_mc', grid = { early_exit_layers = {'-1', '2,9'} },",
      "grid.early_exit_layers: option --early-exit-layers: layer 9 out of range [0, 5]")
  bad("task_recipe_option", "task = { name = 'gsm8k', limit = 1 }, recipe = 'greedy', grid = { dola_layerz = {'low'} },",
      "grid.dola_layerz: ")
  bad("task_scoring_recipe", "task = 'truthfulqa_mc', recipe = 'greedy', grid = { early_exit_layers = {'-1'} },",
      "recipe: task truthfulqa_mc scores answers; it runs no recipe")
end)

T.case("zip, points and a prompt list expand as documented", function()
  local dir = tmpdir()
  local file = dir .. "/shapes.lua"
  write(file, [[
return {
  name = "shapes", model = "models/stories260K", recipe = "greedy",
  prompts = { { id = "a", prompt = "Once upon a time" }, { id = "b", prompt_ids = { 1, 403 } } },
  fixed = { max_new_tokens = 3, threads = 1 },
  zip = { seed = { 1, 2 }, repetition_penalty = { 1.0, 1.3 } },
  points = function() return { { seed = 9, repetition_penalty = 2.0 } } end,
  metrics = { "length", starts_with_space = function(ctx, r) return r.text:sub(1, 1) == " " end },
}
]])
  local out, ok = sweep(("%s --out %s/o --quiet"):format(file, dir))
  T.truthy(ok, out)
  local rs = lines_of(dir .. "/o/results.jsonl")
  T.eq(#rs, 6, "(2 zipped + 1 extra point) x 2 items")
  T.eq(rs[1].options.seed, 1, "zip pairs seed 1 ...")
  T.eq(rs[1].options.repetition_penalty, 1, "... with penalty 1.0")
  T.eq(rs[3].options.repetition_penalty, 1.3, "seed 2 with 1.3")
  T.eq(rs[5].options.seed, 9, "the extra point last")
  T.eq(rs[2].options.prompt_ids, "1,403", "prompt ids item")
  T.eq(table.concat(rs[2].prompt_ids, ","), "1,403", "used as given")
  T.truthy(rs[1].metrics.starts_with_space ~= nil and rs[1].metrics.length == 3, "built-in and own metrics")
end)

T.case("an own task module runs through the task interface, its summary in the report", function()
  local dir = tmpdir()
  local file = dir .. "/own.lua"
  -- A scoring task of its own: the log-prob of " time" after "Once upon a"; its metric is a
  -- median (not a plain mean), so the report must take it from summarize.
  write(file, [[
local ev = require "slua.eval"
return {
  name = "own",
  task = {
    name = "own", kind = "score", limit = 3,
    load = function(path)
      return { { id = "a", p = "Once upon a", c = " time" }, { id = "b", p = "The cat", c = " sat" },
               { id = "c", p = "One day", c = "," }, { id = "d", p = "never", c = " used" } }
    end,
    evaluate = function(model, item, setting)
      local r = ev.score_answer(model, { prompt = item.p, continuation = item.c }, setting)
      return { id = item.id, log_prob = r.log_prob, likely = r.log_prob > -6 and 1.0 or 0.0 }
    end,
    summarize = function(records)
      local lp = {}
      for i, r in ipairs(records) do lp[i] = r.log_prob end
      table.sort(lp)
      local likely = 0.0
      for _, r in ipairs(records) do likely = likely + r.likely end
      return { median_log_prob = #lp > 0 and lp[(#lp + 1) // 2] or 0.0, likely = #lp > 0 and likely / #lp or 0.0,
               n = #records }
    end,
  },
  fixed = { threads = 1 },
  grid = { early_exit_layers = { "-1", "2,5" } },
  metrics = { prompt_chars = function(ctx, r) return #ctx.item.eval_item.p end },
}
]])
  local out, ok = sweep(("%s --out %s/o --quiet"):format(file, dir))
  T.truthy(ok, out)
  local rs = lines_of(dir .. "/o/results.jsonl")
  T.eq(#rs, 6, "2 points x 3 items (limit 3)")
  T.eq(rs[1].item, "a", "item ids from the task")
  T.eq(rs[1].task, "own", "task named in every line")
  T.eq(rs[1].options.mode, "baseline", "-1 is the baseline")
  T.eq(rs[4].options.mode, "dola-static", "2,5 is static DoLa")
  T.truthy(rs[1].log_prob ~= rs[4].log_prob, "the settings score differently")
  T.eq(rs[1].metrics.median_log_prob, rs[1].log_prob, "per-item metric: the summary of the item alone")
  T.eq(rs[2].metrics.prompt_chars, 7, "the sweep's own metric sees the item")
  local rep = sl.json.decode((sweep(("report %s/o --format json"):format(dir))))
  T.eq(rep.task, "own", "the report names the task")
  -- an own task is not known to the report: its metrics are plain means over items
  local lp = { rs[1].log_prob, rs[2].log_prob, rs[3].log_prob }
  T.near(rep.points[1].metrics.median_log_prob.mean, (lp[1] + lp[2] + lp[3]) / 3, 1e-12, "plain mean")
end)

T.case("a changed sweep file runs only its new points; changed settings get new ids", function()
  local dir = tmpdir()
  local file = dir .. "/grow.lua"
  local body = [[return { name = "grow", model = "models/stories260K", recipe = "greedy",
    prompts = { { prompt = "Once upon a time" }, { prompt = "The cat" } },
    fixed = { max_new_tokens = %d, threads = 1 }, grid = { repetition_penalty = { %s } } }]]
  write(file, body:format(4, "1.0, 1.2"))
  local out, ok = sweep(("%s --out %s/o --quiet"):format(file, dir))
  T.truthy(ok and out:find("4 runs made", 1, true), out)
  write(file, body:format(4, "1.0, 1.2, 1.5"))
  out, ok = sweep(("%s --out %s/o --quiet"):format(file, dir))
  T.truthy(ok and out:find("2 runs made", 1, true), "only the new point runs: " .. out)
  write(file, body:format(5, "1.0, 1.2, 1.5"))
  out, ok = sweep(("%s --out %s/o --quiet"):format(file, dir))
  T.truthy(ok and out:find("6 runs made", 1, true), "a changed fixed option makes every point new: " .. out)
  local ids = {}
  for _, r in ipairs(lines_of(dir .. "/o/results.jsonl")) do
    ids[r.point] = ids[r.point] or #r.new_ids
    T.eq(ids[r.point], #r.new_ids, "one setting per id")
  end
  local rep = sl.json.decode((sweep(("report %s/o --format json"):format(dir))))
  T.eq(#rep.points, 3, "the report shows the current points")
  T.eq(rep.runs, 6, "and their runs only")
end)

T.remove_tmpdirs()
T.finish()
