-- slua.sweep.store: one sweep's output directory.
--
--   DIR/sweep.json      the plan: name, recipe or task, swept keys, metrics, points (id, values, options),
--                       items (ids), written before the first run (replaced atomically)
--   DIR/results.jsonl   one JSON object per finished (point, item) pair, appended whole with one
--                       write(2); a torn last line (the process killed mid-write) is cut off when
--                       the store is opened again. A written line survives the process being
--                       killed; fsync, which only matters if the machine goes down, runs at most
--                       every `sync_every` seconds (default 1; 0 = after every line) and on close,
--                       because a busy disk can make a per-line fsync cost more than a short run.
local sl = require "slua.util"
local core = require "slua.core"
local fs = core.fs

local store = {}
store.__index = store

-- mkdir -p
function store.mkdirs(path)
  local sofar = path:sub(1, 1) == "/" and "" or "."
  for part in path:gmatch("[^/]+") do
    sofar = sofar .. "/" .. part
    sl.check(fs.mkdir(sofar))
  end
end

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

-- Writes a whole file through a temporary name and rename(2), so readers never see half of it.
function store.write_atomic(path, text)
  local tmp = ("%s.tmp-%d"):format(path, fs.pid())
  local f = io.open(tmp, "wb")
  if not f then sl.fail(("%s: cannot write"):format(tmp)) end
  f:write(text)
  f:close()
  local ok, err = os.rename(tmp, path)
  if not ok then sl.fail(("%s: cannot rename (%s)"):format(path, err)) end
end

function store.key(point, item) return point .. "\t" .. tostring(item) end

-- Reads DIR/results.jsonl: records in file order and a map key -> record. A torn last line is
-- dropped (and cut from the file when `repair`); any other bad line is an error.
function store.read(dir, repair)
  local path = dir .. "/results.jsonl"
  local text = read_all(path)
  local records, by_key, torn = {}, {}, false
  if not text then return records, by_key, torn end
  local complete = text:match("^(.*\n)") or ""
  if #complete < #text then
    torn = true
    if repair then sl.check(fs.truncate(path, #complete)) end
  end
  local n = 0
  for line in complete:gmatch("([^\n]*)\n") do
    n = n + 1
    local r = sl.json.decode(line)
    if type(r) ~= "table" or r.point == nil or r.item == nil then
      sl.fail(("%s:%d: not a result line"):format(path, n))
    end
    r._line = line
    local k = store.key(r.point, r.item)
    if not by_key[k] then
      records[#records + 1] = r
      by_key[k] = r
    end
  end
  return records, by_key, torn
end

-- Lines whose point is not one of `ids` but whose recorded options give one under rekey(line)
-- (results of an older version, whose ids hashed other things) get that id: the file is
-- rewritten once, with a message. Returns the number of lines re-keyed.
function store.migrate(dir, ids, rekey)
  local path = dir .. "/results.jsonl"
  local text = read_all(path)
  if not text then return 0 end
  local out, n = {}, 0
  for line in (text:match("^(.*\n)") or ""):gmatch("([^\n]*)\n") do
    local r = sl.json.decode(line)
    if type(r) == "table" and r.point ~= nil and not ids[r.point] then
      local id = rekey(r)
      if id and ids[id] then
        r.point = id
        line = sl.json.encode(r)
        n = n + 1
      end
    end
    out[#out + 1] = line
  end
  if n > 0 then
    local tail = text:sub(#(text:match("^(.*\n)") or "") + 1)  -- a torn last line stays for store.read
    store.write_atomic(path, table.concat(out, "\n") .. "\n" .. tail)
    io.stderr:write(("sweep: %s: %d lines of an older slua re-keyed to this version's point ids\n"):format(path, n))
  end
  return n
end

-- Opens (creating) DIR for appending results; returns the store and the finished pairs.
function store.open(dir, sync_every)
  store.mkdirs(dir)
  local records, by_key, torn = store.read(dir, true)
  local s = setmetatable({ dir = dir, path = dir .. "/results.jsonl", done = by_key, records = records,
                           sync_every = sync_every or 1, synced = core.clock() }, store)
  if torn then io.stderr:write(("sweep: %s: dropped a torn last line (an interrupted write)\n"):format(s.path)) end
  return s
end

function store:append(record)
  local line = sl.json.encode(record)
  local now = core.clock()
  local sync = now - self.synced >= self.sync_every
  sl.check(fs.append(self.path, line .. "\n", sync))
  if sync then self.synced = now end
  return line
end

-- fsync whatever was appended since the last one.
function store:close()
  sl.check(fs.append(self.path, "", true))
  self.synced = core.clock()
end

-- The plan as stored in sweep.json (what report, merge and status read back).
function store.manifest(plan)
  local points = {}
  for i, p in ipairs(plan.points) do
    points[i] = { id = p.id, params = p.params, options = p.options }
  end
  local items = {}
  for i, it in ipairs(plan.items) do items[i] = it.id end
  local ms, units = {}, {}
  for i, m in ipairs(plan.metrics) do ms[i] = m.name; units[m.name] = m.unit end
  return {
    name = plan.name, file = plan.file, recipe = plan.recipe, task = plan.task and plan.task.name, model = plan.model,
    swept = plan.swept, plot = plan.plot, metrics = ms, units = units, points = points, items = items,
    shard = plan.shard,
  }
end

function store.write_manifest(dir, plan)
  store.mkdirs(dir)
  store.write_atomic(dir .. "/sweep.json", sl.json.encode(store.manifest(plan)) .. "\n")
end

function store.read_manifest(dir)
  local text = read_all(dir .. "/sweep.json")
  if not text then sl.fail(("%s: no sweep.json (not a sweep output directory)"):format(dir)) end
  local m = sl.json.decode(text)
  if type(m) ~= "table" or type(m.points) ~= "table" then sl.fail(("%s/sweep.json: not a sweep plan"):format(dir)) end
  return m
end

return store
