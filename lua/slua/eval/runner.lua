-- The evaluation driver behind `slua eval`: a deterministic shard of the items, one JSON line
-- per finished item (flushed and fsync'd), resume that skips finished items and refuses to mix
-- settings, a progress line on a terminal, merging of shard files, and the summary.
--
--   runner.run{ task = mod, model = m, items = {...}, setting = {...}, settings = {...},
--               output = "results.jsonl", shard = {i, n}, progress = "auto", pause = 0,
--               batch = 1, repair = false, bootstrap = 1000, seed = 42 } -> summary
--
-- The summary (and a merge's) holds the task's metrics and, beside them, `uncertainty`: each
-- mean metric's standard error and seeded 95 % bootstrap interval (slua.eval.uncertainty;
-- bootstrap = 0 leaves the interval out).
--
-- `settings` is everything that decides the results (hashed into every line); `setting` is what
-- task.evaluate receives.
local sl = require "slua.util"
local core = require "slua.core"
local batch = require "slua.batch"
local ev = require "slua.eval"
local lockfile = require "slua.lockfile"
local uncertainty = require "slua.eval.uncertainty"

local runner = {}

-- Canonical JSON (sorted keys) of plain tables, for hashing.
local function canonical(v)
  local t = type(v)
  if t == "table" then
    if #v > 0 or next(v) == nil then
      local parts = {}
      for i, x in ipairs(v) do parts[i] = canonical(x) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do parts[i] = core.json_encode(k) .. ":" .. canonical(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "number" and math.type(v) == "float" then
    return ("%.17g"):format(v)
  end
  return core.json_encode(v)
end
runner.canonical = canonical

runner.hash = sl.fnv1a64

function runner.settings_hash(settings) return runner.hash(canonical(settings)) end

-- "I/N" -> {i, n}
function runner.parse_shard(text)
  if text == nil or text == "" then return { 0, 1 } end
  local i, n = text:match("^(%d+)/(%d+)$")
  i, n = tonumber(i), tonumber(n)
  if not i or n < 1 or i >= n then sl.fail(("option --shard: expected I/N with 0 <= I < N (got '%s')"):format(text), 2) end
  return { i, n }
end

-- Items i (0-based position in the list) with i % n == shard index.
function runner.shard(items, shard)
  local out = {}
  for pos, item in ipairs(items) do
    if (pos - 1) % shard[2] == shard[1] then out[#out + 1] = item end
  end
  return out
end

-- The complete lines of a results file (a line cut short by a kill is dropped and the file
-- rewritten without it). A damaged line before the last one fails naming the file and line,
-- unless `repair`: then damaged lines move to PATH.damaged (appended) and the file is rewritten
-- without them, so their items run again. Returns records, whether the file existed.
function runner.read_results(path, repair)
  local f = io.open(path, "rb")
  if not f then return {}, false end
  local text, read_err = f:read("a")
  f:close()
  if not text then sl.fail(("%s: cannot read (%s)"):format(path, tostring(read_err))) end
  local records, good, damaged, lineno = {}, {}, {}, 0
  local pos = 1
  while pos <= #text do
    local nl = text:find("\n", pos, true)
    if not nl then break end -- an unterminated tail: a write cut short
    local line = text:sub(pos, nl - 1)
    lineno = lineno + 1
    if line:match("%S") then
      local v = sl.json.decode(line)
      if type(v) ~= "table" or v.id == nil or v.settings_hash == nil then
        if not repair then
          -- "file: line N" rather than "file:N", which reads as a Lua position and gets stripped
          sl.fail(("%s: line %d: not a result line of slua eval (%q...); --repair moves damaged lines to %s.damaged "
            .. "and runs their items again"):format(path, lineno, line:sub(1, 40), path))
        end
        damaged[#damaged + 1] = line
      else
        records[#records + 1] = v
        good[#good + 1] = line
      end
    end
    pos = nl + 1
  end
  if #damaged > 0 then
    local f = io.open(path .. ".damaged", "ab") or sl.fail(("%s.damaged: cannot open for writing"):format(path))
    for _, line in ipairs(damaged) do f:write(line, "\n") end
    f:close()
    io.stderr:write(("slua: %s: moved %d damaged line%s to %s.damaged; their items run again\n"):format(path,
      #damaged, #damaged == 1 and "" or "s", path))
  end
  if pos <= #text or #damaged > 0 then
    local tmp = path .. ".tmp"
    local out = io.open(tmp, "wb") or sl.fail(("%s: cannot write"):format(tmp))
    for _, line in ipairs(good) do out:write(line, "\n") end
    out:close()
    local ok, err = os.rename(tmp, path)
    if not ok then sl.fail(("%s: cannot replace (%s)"):format(path, err)) end
  end
  return records, true
end

local function fmt_time(s)
  if s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return ("%dh%02dm"):format(s // 3600, s % 3600 // 60) end
  if s >= 60 then return ("%dm%02ds"):format(s // 60, s % 60) end
  return ("%ds"):format(s)
end

-- On a terminal a bar redrawn in place; elsewhere (a log file) a plain line.
local function progress_line(done, total, rate, metric_name, metric, tty)
  local eta = rate > 0 and (total - done) / rate or math.huge
  local m = metric and ("  %s %.4f"):format(metric_name, metric) or ""
  if not tty then
    return ("eval: %d/%d items  %.2f it/s  ETA %s%s\n"):format(done, total, rate, fmt_time(eta), m)
  end
  local width = 24
  local filled = total > 0 and math.floor(width * done / total) or width
  return ("\r[%s%s] %d/%d  %.2f it/s  ETA %s%s\27[K"):format(("#"):rep(filled), ("."):rep(width - filled), done,
    total, rate, fmt_time(eta), m)
end

-- Records of the item set, in item order.
local function in_order(items, by_id)
  local out = {}
  for _, item in ipairs(items) do
    local r = by_id[item.id]
    if r then out[#out + 1] = r end
  end
  return out
end

function runner.run(spec)
  local task, items = spec.task, runner.shard(spec.items, spec.shard or { 0, 1 })
  local hash = runner.settings_hash(spec.settings)
  local by_id, n_prior = {}, 0
  local lock
  if spec.output then
    lock = lockfile.take(spec.output)   -- before reading: another run may be appending
    local prior = runner.read_results(spec.output, spec.repair)
    for _, r in ipairs(prior) do
      if r.settings_hash ~= hash then
        sl.fail(("%s: holds results of other settings (hash %s, this run %s); use another --output"):format(
          spec.output, r.settings_hash, hash))
      end
      if by_id[r.id] == nil then n_prior = n_prior + 1 end
      by_id[r.id] = r
    end
  end
  local todo = {}
  for _, item in ipairs(items) do if not by_id[item.id] then todo[#todo + 1] = item end end

  local tty = core.isatty(2)
  local show = spec.progress == "always" or (spec.progress ~= "never" and tty)
  local last_line = -math.huge   -- plain lines (not a terminal) every 10 s and at the end
  local out
  if spec.output and #todo > 0 then
    out = io.open(spec.output, "ab") or sl.fail(("%s: cannot open for writing"):format(spec.output))
  end
  local t0 = core.clock()
  local done_here = 0
  local shard_text = ("%d/%d"):format((spec.shard or { 0, 1 })[1], (spec.shard or { 0, 1 })[2])
  local done_before = #items - #todo
  -- Items run as jobs of slua.batch: with spec.batch > 1 the generations of that many items
  -- share each forward pass; lines are written as items finish.
  local function finished(_, rec)
    by_id[rec.id] = rec
    if out then
      out:write(core.json_encode(rec), "\n")
      local ok, err = core.fsync(out)
      if not ok then sl.fail(("%s: cannot write (%s)"):format(spec.output, err)) end
    end
    done_here = done_here + 1
    local now = core.clock()
    if show and (tty or now - last_line >= 10 or done_here == #todo) then
      last_line = now
      local running = task.summarize(in_order(items, by_id))
      io.stderr:write(progress_line(done_before + done_here, #items, done_here / math.max(now - t0, 1e-9),
        task.metric, running[task.metric], tty))
      io.stderr:flush()
    end
    if spec.pause and spec.pause > 0 then core.sleep(spec.pause) end
  end
  batch.map(todo, function(item)
    local rec = task.evaluate(spec.model, item, spec.setting)
    rec.id, rec.task, rec.settings_hash, rec.shard = item.id, task.name, hash, shard_text
    rec.shard_items = #items   -- lets a merge tell a complete shard from a partial one
    return rec
  end, { batch = spec.batch or 1, on_result = finished })
  if show and tty then io.stderr:write("\n") end
  if out then out:close() end
  if lock then lock:release() end
  local records = in_order(items, by_id)
  local forwarded, tokens = 0, 0
  for _, r in ipairs(records) do forwarded, tokens = forwarded + (r.n_forwarded or 0), tokens + (r.n_tokens or 0) end
  return {
    task = task.name, metrics = task.summarize(records),
    uncertainty = uncertainty.of(task, records, { bootstrap = spec.bootstrap, seed = spec.seed }), n = #records, n_items = #items, n_resumed = done_before,
    n_run = done_here, settings = spec.settings, settings_hash = hash, shard = shard_text, output = spec.output,
    batch = spec.batch or 1,
    wall_s = core.clock() - t0, token_forwards = forwarded > 0 and forwarded or nil,
    tokens_scored = tokens > 0 and tokens or nil,
  }
end

-- Merges result files of one setting (shards, resumed runs): every id once, metrics recomputed.
-- The merge is complete when every shard I/N of the files is there with all its items (lines
-- carry their shard's item count) and no file or item comes twice; otherwise `problems` lists
-- what is missing or duplicated (the CLI prints them and exits 3). opts: {bootstrap, seed} of
-- the uncertainty.
function runner.merge(paths, output, opts)
  opts = opts or {}
  local by_id, order, hash, task_name = {}, {}, nil, nil
  local problems, seen_path, shards = {}, {}, {}
  for _, path in ipairs(paths) do
    local records, existed = runner.read_results(path)
    if not existed then sl.fail(path .. ": no such file") end
    local key = path:gsub("^%./", ""):gsub("/+", "/")
    if seen_path[key] then
      problems[#problems + 1] = ("duplicated: %s is given twice"):format(path)
      records = {}
    end
    seen_path[key] = true
    local dup_here = 0
    for _, r in ipairs(records) do
      hash = hash or r.settings_hash
      task_name = task_name or r.task
      if r.settings_hash ~= hash then
        sl.fail(("%s: settings hash %s differs from %s; only runs of one setting merge"):format(path, r.settings_hash, hash))
      end
      local shard = tostring(r.shard or "0/1")
      local sh = shards[shard] or { ids = 0 }
      shards[shard] = sh
      sh.expected = sh.expected or tonumber(r.shard_items)
      if by_id[r.id] == nil then
        by_id[r.id] = path
        order[#order + 1] = r
        sh.ids = sh.ids + 1
      elseif by_id[r.id] ~= path then
        dup_here = dup_here + 1
      end
    end
    if dup_here > 0 then
      problems[#problems + 1] = ("duplicated: %d items of %s are also in an earlier file"):format(dup_here, path)
    end
  end
  local task = task_name and ev.tasks[task_name]
  if not task then sl.fail("--merge: no result lines of a known task") end
  -- every shard of the split, each with all its items
  local count
  for key in pairs(shards) do
    local n = tonumber(key:match("^%d+/(%d+)$"))
    if count and n ~= count then sl.fail(("--merge: shards of different splits (%s and ?/%d)"):format(key, count)) end
    count = n
  end
  count = count or 1
  for i = 0, count - 1 do
    local key = ("%d/%d"):format(i, count)
    local sh = shards[key]
    if not sh then
      problems[#problems + 1] = ("missing: shard %s (no file holds it)"):format(key)
    elseif sh.expected and sh.ids < sh.expected then
      problems[#problems + 1] = ("missing: shard %s has %d of its %d items"):format(key, sh.ids, sh.expected)
    end
  end
  table.sort(order, function(a, b)
    local ia, ib = tonumber(a.index) or math.huge, tonumber(b.index) or math.huge
    if ia ~= ib then return ia < ib end
    return tostring(a.id) < tostring(b.id)
  end)
  if output then
    local f = io.open(output, "wb") or sl.fail(output .. ": cannot open for writing")
    for _, r in ipairs(order) do f:write(core.json_encode(r), "\n") end
    f:close()
  end
  return { task = task_name, metrics = task.summarize(order),
           uncertainty = uncertainty.of(task, order, { bootstrap = opts.bootstrap, seed = opts.seed }), n = #order, settings_hash = hash, merged = paths,
           output = output, complete = #problems == 0, problems = #problems > 0 and problems or nil }
end

return runner
