-- slua.batch: many generations at once, each weight read once for all of them.
--
--   local outs = batch.eval{ {session, ids}, {amateur, ids} }   -- one pass (sl.eval_batch)
--   local results = batch.map(prompts, function(p) return run_one(p) end, { batch = 8 })
--
-- Code that evaluates its sessions through batch.eval (the generation loop every recipe shares
-- does) runs unchanged alone or as a job of batch.map. batch.map runs up to `batch` jobs as
-- coroutines: each runs until it needs an evaluation; when every running job waits, all their
-- requests go to the C core as one pass, prompts of newly started jobs mixed with the single
-- steps of the others; a finished job's slot takes the next item at once (continuous
-- batching). Results equal those of running the jobs one after the other, up to float32
-- summation order (see sl_session_eval_batch), since each job keeps its own sessions, options,
-- processors and random generator.
local core = require "slua.core"

local M = {}

local WAIT = {}                                        -- what a job yields with its requests
local slots = setmetatable({}, { __mode = "k" })       -- job coroutine -> its slot in batch.map

-- The answers of score requests ({score = {session, sequences}, opts = core options, key =
-- their text}) into outs: requests of one model and the same options share a pass per group of
-- their sessions (core.lm_score_many).
local function score_now(requests, outs)
  local groups, order = {}, {}
  for i, r in ipairs(requests) do
    if r.score then
      local key = tostring(r.score[1]:model()) .. "\0" .. r.key
      if not groups[key] then groups[key] = {}; order[#order + 1] = key end
      local g = groups[key]
      g[#g + 1] = i
    end
  end
  for _, key in ipairs(order) do
    local list, g = {}, groups[key]
    for k, i in ipairs(g) do list[k] = requests[i].score end
    for k, o in ipairs(core.lm_score_many(list, requests[g[1]].opts)) do outs[g[k]] = o end
  end
end

-- The requests of one pass, grouped by model (sessions of different models cannot share a
-- product), outputs in request order; score requests go to core.lm_score_many.
local function eval_now(requests)
  local scores = false
  for _, r in ipairs(requests) do scores = scores or (type(r) == "table" and r.score ~= nil) end
  if scores then
    local outs, rest, at = {}, {}, {}
    score_now(requests, outs)
    for i, r in ipairs(requests) do
      if not r.score then rest[#rest + 1] = r; at[#rest] = i end
    end
    if #rest > 0 then
      for k, o in ipairs(eval_now(rest)) do outs[at[k]] = o end
    end
    return outs
  end
  if #requests == 1 or requests[1] == nil then return core.eval_batch(requests) end
  local groups, order = {}, {}
  for i, r in ipairs(requests) do
    local session = type(r) == "table" and r[1]
    local model = type(session) == "userdata" and session:model() or false
    if not groups[model] then groups[model] = {}; order[#order + 1] = model end
    local g = groups[model]
    g[#g + 1] = i
  end
  if #order == 1 then return core.eval_batch(requests) end
  local outs = {}
  for _, model in ipairs(order) do
    local list = {}
    for k, i in ipairs(groups[model]) do list[k] = requests[i] end
    for k, o in ipairs(core.eval_batch(list)) do outs[groups[model][k]] = o end
  end
  return outs
end

-- batch.eval(requests) -> outputs: requests are {session, ids | id [, all_logits = true]}; the
-- outputs those of session:prefill/step, in order. Inside a job of batch.map the requests wait
-- for the pass shared with the other jobs.
function M.eval(requests)
  if slots[coroutine.running()] then return coroutine.yield(WAIT, requests) end
  return eval_now(requests)
end

-- The text of score options: requests with equal texts share a pass.
local function options_key(opts)
  local keys, parts = {}, {}
  for k in pairs(opts) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = opts[k]
    parts[#parts + 1] = k .. "=" .. (type(v) == "table" and table.concat(v, ",") or tostring(v))
  end
  return table.concat(parts, ";")
end

-- batch.score(session, sequences, opts) -> results: core.lm_score_many of one session's
-- {full_ids, n_prefix} list; inside a job of batch.map it waits for the pass shared with the
-- other jobs' score requests of the same options (each job on its own session).
function M.score(session, sequences, opts)
  local request = { score = { session, sequences }, opts = opts, key = options_key(opts) }
  return M.eval({ request })[1]
end

-- The slot (1 .. batch) of the running job of batch.map, or nil outside one: jobs in the same
-- slot run one after the other, so a per-slot cache (a prefix cache's session) is never in
-- use by two jobs at once.
function M.slot() return slots[coroutine.running()] end

-- batch.map(items, fn, opts) -> results, results[i] = fn(items[i], i)
-- opts.batch: jobs at once (default 8); opts.on_result(i, result): called as each job finishes,
-- in the order they finish. An error in a job stops the others and is raised again here.
function M.map(items, fn, opts)
  opts = opts or {}
  local width = math.max(1, math.floor(opts.batch or 8))
  local results, running, free, next_item = {}, {}, {}, 1
  for s = width, 1, -1 do free[#free + 1] = s end

  -- Resumes a job; false once it has finished (its slot is free again).
  local function resume(job, outs)
    local ok, tag, requests = coroutine.resume(job.co, outs)
    if not ok then error(tag, 0) end
    if coroutine.status(job.co) == "dead" then
      results[job.i] = tag
      free[#free + 1] = job.slot
      if opts.on_result then opts.on_result(job.i, tag) end
      return false
    end
    if tag ~= WAIT then error("slua.batch: a job yielded outside batch.eval", 0) end
    job.requests = requests
    return true
  end

  local ok, err = pcall(function()
    while true do
      while #free > 0 and next_item <= #items do
        local i = next_item
        next_item = i + 1
        local job = { i = i, slot = table.remove(free), co = coroutine.create(function() return fn(items[i], i) end) }
        slots[job.co] = job.slot
        if resume(job, nil) then running[#running + 1] = job end
      end
      if #running == 0 then break end
      local all, first = {}, {}
      for j, job in ipairs(running) do
        first[j] = #all + 1
        table.move(job.requests, 1, #job.requests, #all + 1, all)
      end
      local outs = M.eval(all)
      local still = {}
      for j, job in ipairs(running) do
        local mine = table.move(outs, first[j], first[j] + #job.requests - 1, 1, {})
        job.requests = nil
        if resume(job, mine) then still[#still + 1] = job end
      end
      running = still
    end
  end)
  if not ok then
    for _, job in ipairs(running) do coroutine.close(job.co) end
    error(err, 0)
  end
  return results
end

-- batch.scheduler(width) -> a continuous batch that takes jobs at any time (slua serve):
--   sched:add(fn, on_done [, cancelled]) queues fn() as a job; on_done(ok, result | error) is
--     called when it ends; cancelled() is asked before each pass, and true ends the job there
--     (its coroutine is closed, on_done(false, "cancelled")).
--   sched:step() admits queued jobs into free slots and runs one pass shared by all running
--     jobs; sched:busy() -> running, queued.
-- Unlike batch.map, an error ends only the job that raised it; an evaluation that fails in a
-- shared pass is retried per job, so the error reaches the job it belongs to.
function M.scheduler(width)
  width = math.max(1, math.floor(width or 8))
  local self, queue, running, free = {}, {}, {}, {}
  for s = width, 1, -1 do free[#free + 1] = s end

  local function finish(job, ok, value)
    slots[job.co] = nil
    free[#free + 1] = job.slot
    job.on_done(ok, value)
  end

  -- Resumes a job; true while it waits for an evaluation.
  local function resume(job, outs)
    local ok, tag, requests = coroutine.resume(job.co, outs)
    if not ok then
      coroutine.close(job.co)
      finish(job, false, tag)
      return false
    end
    if coroutine.status(job.co) == "dead" then
      finish(job, true, tag)
      return false
    end
    if tag ~= WAIT then
      coroutine.close(job.co)
      finish(job, false, "slua.batch: a job yielded outside batch.eval")
      return false
    end
    job.requests = requests
    return true
  end

  function self:add(fn, on_done, cancelled)
    queue[#queue + 1] = { fn = fn, on_done = on_done, cancelled = cancelled }
  end

  function self:busy() return #running, #queue end

  function self:step()
    local waiting = {}
    for _, job in ipairs(queue) do
      if job.cancelled and job.cancelled() then job.on_done(false, "cancelled") else waiting[#waiting + 1] = job end
    end
    queue = waiting
    local still = {}
    for _, job in ipairs(running) do
      if job.cancelled and job.cancelled() then
        coroutine.close(job.co)
        finish(job, false, "cancelled")
      else
        still[#still + 1] = job
      end
    end
    running = still
    while #free > 0 and #queue > 0 do
      local job = table.remove(queue, 1)
      job.slot, job.co = table.remove(free), coroutine.create(job.fn)
      slots[job.co] = job.slot
      if resume(job, nil) then running[#running + 1] = job end
    end
    if #running == 0 then return end
    local all, first = {}, {}
    for j, job in ipairs(running) do
      first[j] = #all + 1
      table.move(job.requests, 1, #job.requests, #all + 1, all)
    end
    local ok, outs = pcall(eval_now, all)
    local next_running = {}
    for j, job in ipairs(running) do
      local mine, err
      if ok then
        mine = table.move(outs, first[j], first[j] + #job.requests - 1, 1, {})
      else
        local ok1, o = pcall(eval_now, job.requests)
        if ok1 then mine = o else err = o end
      end
      job.requests = nil
      if err then
        coroutine.close(job.co)
        finish(job, false, err)
      elseif resume(job, mine) then
        next_running[#next_running + 1] = job
      end
    end
    running = next_running
  end

  return self
end

return M
