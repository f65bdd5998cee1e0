-- slua.sweep.runner: runs a plan's pairs in this process, each model loaded once, appending one
-- result line per (point, item) and skipping pairs already in the results.
--
-- A result line of a recipe sweep: point, item, recipe, model, options (the full option set),
-- the recipe's JSON fields (prompt_ids, new_ids, text, stop_reason, its extras; `steps` only
-- with steps = true), metrics, and timings (the recipe's load, prefill and decode times, with run_s
-- and tokens_per_s of the whole run: the only field that differs
-- between reruns). A task sweep's line is the task's record instead (slua.sweep.task).
-- Ctrl-C lets the current run finish and its line be written (with --batch N, the first of the
-- running ones to finish), then exits 130; a second Ctrl-C stops at once (the resume drops a
-- torn line and reruns the unfinished pairs).
local sl = require "slua.util"
local core = require "slua.core"
local spec = require "slua.sweep.spec"
local store = require "slua.sweep.store"
local metrics = require "slua.sweep.metrics"
local progress = require "slua.sweep.progress"
local task = require "slua.sweep.task"
local ev = require "slua.eval"
local batch = require "slua.batch"
local recipe_of = require "slua.recipe"
local lockfile = require "slua.lockfile"

local runner = {}

local function load_model(cache, path)
  if not cache[path] then cache[path] = sl.check(sl.load(path)) end
  return cache[path]
end

-- One run: the recipe in process, its single result; errors name the point and item.
local function run_pair(plan, model, point, item, argv)
  local ok, result = pcall(function()
    return recipe_of.load(plan.recipe):run(argv or spec.run_argv(point, item), { model = model })
  end)
  if not ok then
    local msg = type(result) == "table" and result.message or tostring(result)
    if msg:find("interrupted", 1, true) and #msg < 80 then error("interrupted", 0) end
    sl.fail(("%s: point %s (%s), item %s: %s"):format(plan.file, point.id, spec.describe(plan, point),
      tostring(item.id), msg))
  end
  return result
end

local function metric_ctx(plan, model, point, item, result)
  return { point = point.id, item = item, options = result.options, params = point.params,
           tokenizer = model.tokenizer, plan = plan }
end

-- Tries the metrics on a short run of the first pair (at most 2 new tokens), so a metric that
-- raises stops the sweep before any of its runs.
-- Options a results line of an older slua recorded under a name the recipe now declares as an
-- alias (--skip-layers of --skip-blocks), in their older form: as the options they became, so
-- the line re-keys to this version's point.
local function current_names(recipe, recorded)
  local ok, value = pcall(recipe_of.load, recipe)
  local declared = ok and value.spec and value.spec.options
  if type(declared) ~= "table" then return recorded end
  local out = {}
  for k, v in pairs(recorded) do out[k] = v end
  for k, v in pairs(recorded) do
    local d = declared[k]
    if type(d) == "table" and d.alias and d.translate and recorded[d.alias] == nil then
      out[k] = nil
      if v ~= "" then out[d.alias] = d.translate(tostring(v)) or v else out[d.alias] = "" end
    end
  end
  return out
end

function runner.check_metrics(plan, models)
  if plan.task then return end   -- a task sweep computes them before its first line is written
  local own = false
  for _, m in ipairs(plan.metrics) do if not metrics.builtin[m.name] or metrics.builtin[m.name].fn ~= m.fn then own = true end end
  if not own then return end
  local pair = plan.pairs[1]
  local values = {}
  for k, v in pairs(pair.point.values) do values[k] = v end
  for k, v in pairs(pair.item.options) do values[k] = v end
  values.max_new_tokens = math.min(2, pair.point.options.max_new_tokens or 2)
  local model = load_model(models, pair.point.options.model ~= "" and pair.point.options.model or sl.default_model)
  local result = run_pair(plan, model, pair.point, pair.item, spec.argv(values))
  local _, err = metrics.compute(plan.file, plan.metrics, metric_ctx(plan, model, pair.point, pair.item, result), result)
  if err then sl.fail(err .. " (on a check run, before the sweep started)") end
end

local runs_since_collect = 0

-- The result line of a recipe run.
local function recipe_record(plan, models, point, item)
  local model = load_model(models, point.options.model ~= "" and point.options.model or sl.default_model)
  local t0 = core.clock()
  local result = run_pair(plan, model, point, item)
  local run_s = core.clock() - t0
  -- A run's sessions hold C memory (KV caches, logits) behind small userdata that the
  -- collector does not weigh: a full collection frees them, after every long run and every
  -- 16th short one, so at most a few runs' buffers wait and short runs do not pay for it.
  runs_since_collect = runs_since_collect + 1
  if runs_since_collect >= 16 or run_s > 0.05 then
    collectgarbage("collect")
    runs_since_collect = 0
  end
  local values, merr = metrics.compute(plan.file, plan.metrics, metric_ctx(plan, model, point, item, result), result)
  if not values then sl.fail(merr) end
  local record = {}
  for k, v in pairs(result) do record[k] = v end
  if not plan.steps then record.steps = nil end
  record.point, record.item, record.metrics = point.id, item.id, values
  -- the recipe's own timings (load, prefill, decode) with the run's wall time beside them
  record.timings = result.timings or {}
  record.timings.run_s, record.timings.tokens_per_s = run_s, #result.new_ids / math.max(run_s, 1e-9)
  return record
end

-- The result line of a task item: its record, the task's metrics and the sweep's own ones.
local function task_record(plan, point, item)
  local rec, values, run_s = task.evaluate(plan, point, item)
  local own, merr = metrics.compute(plan.file, plan.metrics, { point = point.id, item = item,
    options = point.options, params = point.params, plan = plan }, rec)
  if not own then sl.fail(merr) end
  for k, v in pairs(own) do values[k] = v end
  rec.point, rec.item, rec.task, rec.options, rec.metrics = point.id, item.id, plan.task.name, point.options, values
  rec.timings = { run_s = run_s }
  return rec
end

-- runner.run(plan, dir, {pairs = subset, quiet, sync_every, batch}) -> number of runs made
function runner.run(plan, dir, opts)
  opts = opts or {}
  local pairs_to_run = opts.pairs or plan.pairs
  local models = {}
  store.mkdirs(dir)
  local lock = lockfile.take(dir .. "/results.jsonl")   -- one run per output folder
  store.write_manifest(dir, plan)
  local ids = {}
  for _, p in ipairs(plan.points) do ids[p.id] = true end
  store.migrate(dir, ids, function(r)
    if type(r.options) ~= "table" then return nil end
    local identity = plan.task and spec.task_identity(plan.task.name, r.options)
      or spec.recipe_identity(r.recipe or plan.recipe, current_names(r.recipe or plan.recipe, r.options))
    return spec.hash(sl.json.encode(identity))
  end)
  local out = store.open(dir, opts.sync_every)
  local todo, points, last_of = {}, 0, {}
  for _, pr in ipairs(pairs_to_run) do
    local done = out.done[store.key(pr.point.id, pr.item.id)]
    if done then
      local prompt = done.options and (done.options.prompt_ids ~= "" and done.options.prompt_ids or done.options.prompt)
      local want = pr.item.options.prompt_ids or pr.item.options.prompt
      if want and prompt ~= want then
        sl.fail(("%s: item %s has another prompt than in %s (use another --out)"):format(plan.file,
          tostring(pr.item.id), out.path))
      end
    else
      todo[#todo + 1] = pr
      if last_of[pr.point.id] == nil then points = points + 1 end
      last_of[pr.point.id] = #todo
    end
  end
  if #todo == 0 then lock:release() return 0 end
  runner.check_metrics(plan, models)
  local bar = progress.new(#todo, points, { quiet = opts.quiet })
  core.fs.trap_interrupt(true)
  -- Pairs run as jobs of slua.batch: with opts.batch > 1 the generations of that many pairs
  -- share each forward pass, and lines are appended as runs finish.
  local ok, err = pcall(function()
    local current, n_done = nil, 0
    batch.map(todo, function(pr)
      local point, item = pr.point, pr.item
      if plan.task and point ~= current then
        -- every point starts from an empty prefix cache, as `slua eval` run alone does
        ev.drop_cache(task.model(point.values.model))
        current = point
      end
      return plan.task and task_record(plan, point, item) or recipe_record(plan, models, point, item)
    end, { batch = opts.batch or 1, on_result = function(i, record)
      local point = todo[i].point
      out:append(record)
      n_done = n_done + 1
      bar:update(spec.describe(plan, point), last_of[point.id] == i)
      if core.fs.interrupted() and n_done < #todo then error("interrupted", 0) end
    end })
  end)
  core.fs.trap_interrupt(false)
  out:close()
  lock:release()
  if not ok then error(err, 0) end
  return #todo
end

return runner
