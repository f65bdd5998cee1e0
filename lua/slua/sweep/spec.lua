-- slua.sweep.spec: a sweep file → a checked plan of (point, item) pairs, before anything runs.
--
-- A sweep file returns a table:
--   name     = "dola-layers"            -- default: the file name without .lua
--   model    = "models/stories260K"     -- default: the bundled model
--   recipe   = "dola"                   -- a bundled recipe name or a path to your own (a task
--                                          sweep: only a generating task's, optional)
--   prompts  = "prompts.jsonl"          -- JSONL {prompt | prompt_ids, id?}, or a Lua list of such
--   task     = "truthfulqa_mc" | {name = "gsm8k", limit = 20, ...}  -- instead of recipe and
--                                          prompts: an evaluation task, see slua.sweep.task
--   fixed    = { max_new_tokens = 64 }  -- options every point shares
--   grid     = { dola_layers = {"low", "high", "2,4"}, repetition_penalty = {1.0, 1.2} }
--   zip      = { a = {1, 2}, b = {"x", "y"} }   -- paired lists (same length), crossed with grid
--   points   = function() return { {...}, ... } end  -- extra points, each an option table
--   metrics  = { "distinct_2", "length", novelty = function(ctx, result) return ... end }
--              (none: length, tokens_per_s, distinct_2, rep_rate; slua.sweep.metrics)
--   steps    = false                    -- keep the recipe's per-step details in results
--   plot     = { x = "repetition_penalty", series = "dola_layers" }  -- default: swept keys
--   A field of an intervention spec is an axis too: with fixed.intervene = "steer.json",
--   grid = { ["intervene.0.scale"] = {1, 2, 4} } sets field `scale` of op 0 (ops count from
--   0, as the spec's messages do); each point runs the spec so edited, passed inline.
--   cost     = function(options) return n end  -- relative cost of a run, for sharding
--
-- A point is the recipe plus its full option set (the recipe's defaults filled in); its id is
-- a hash of both, so a changed setting is a new point and results never mix under one id.
-- Every problem is reported as "<file>: <key>: <what>" before any run starts.
local sl = require "slua.util"
local recipe_of = require "slua.recipe"
local metrics = require "slua.sweep.metrics"
local task = require "slua.sweep.task"
local intervene = require "slua.intervene"

local spec = {}

local known_fields = {
  name = "string", model = "string", recipe = "string", prompts = "string|table",
  task = "string|table", fixed = "table", grid = "table", zip = "table", points = "function",
  metrics = "table", steps = "boolean", plot = "table", cost = "function", out = "string",
}
-- Options that come from the items (prompt) or from the sweep itself (format), not from points.
local item_options = { prompt = true, prompt_ids = true }

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end
spec.sorted_keys = sorted_keys

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

-- What a point's id is a hash of. Stable across versions and places: options that change how a
-- run goes but not its results (threads, output format, mapping the checkpoint, --stats, the
-- HTML view's options) are left out;
-- an option at its "off" value is left out, so a version that adds one keeps the ids of every
-- point that does not set it; and a model under the slua root (the bundled one) is named
-- relative to it, so a checkout and an installed prefix, run from any folder, agree.
local run_only = { threads = true, format = true, mmap = true, stats = true,
                   html = true, target = true, target_id = true, view_top = true, wrap = true }
local off_values = { truncate_prompt = false, weights = "stored", compute = "exact", n_ctx = 0, kv_type = "f32", chat = "",
                     messages = "", system = "", chat_template = "", no_chat_template = false, intervene = "",
                     logprobs = 0 }

function spec.model_name(path)
  if type(path) ~= "string" then return path end
  local root = sl.root .. "/"
  if path:sub(1, #root) == root then path = path:sub(#root + 1) end
  return (path:gsub("^%./", ""))
end

function spec.recipe_identity(recipe, options)
  local kept = {}
  for k, v in pairs(options) do
    if not item_options[k] and not run_only[k] and off_values[k] ~= v then kept[k] = v end
  end
  kept.model = spec.model_name(kept.model)
  if kept.intervene then kept.intervene = intervene.identity(kept.intervene) end
  return { recipe = recipe, options = kept }
end

function spec.task_identity(task_name, settings)
  local kept = {}
  for k, v in pairs(settings) do kept[k] = v end
  kept.model = spec.model_name(kept.model)
  return { task = task_name, settings = kept }
end

-- 64-bit FNV-1a of a string (slua.util).
spec.hash = sl.fnv1a64


-- An option value as a flag value: lists join with commas, floats keep every bit.
local function flag_value(v)
  if type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = flag_value(x) end
    return table.concat(parts, ",")
  elseif math.type(v) == "float" then
    local s = ("%.17g"):format(v)
    for prec = 15, 17 do   -- the shortest text that reads back exactly
      local t = ("%." .. prec .. "g"):format(v)
      if tonumber(t) == v then s = t; break end
    end
    if not s:find("[%.eEn]") then s = s .. ".0" end
    return s
  end
  return tostring(v)
end
spec.flag_value = flag_value

-- Options table → argv in sorted key order.
function spec.argv(options)
  local argv = {}
  for _, k in ipairs(sorted_keys(options)) do
    argv[#argv + 1] = "--" .. k:gsub("_", "-")
    argv[#argv + 1] = flag_value(options[k])
  end
  return argv
end

-- Keys "intervene.<op>.<field>" of a point fold into its `intervene` spec (a file or inline
-- JSON), which becomes the edited spec, inline, with its vector files made absolute. The keys
-- move to p.axis, where reports read them.
local function fold_intervene(file, p, base, resolve_path)
  local keys = {}
  for k in pairs(p.values) do
    if type(k) == "string" and k:find("^intervene%.") then keys[#keys + 1] = k end
  end
  if #keys == 0 then return end
  table.sort(keys)
  local src = p.values.intervene
  if type(src) ~= "string" or src == "" then
    sl.fail(("%s: %s: an intervention field needs a spec in intervene (e.g. fixed.intervene = \"steer.json\")")
      :format(file, p.from[keys[1]]))
  end
  local inline = src:find("^%s*%[") ~= nil
  local path = not inline and resolve_path(src, base) or nil
  local text = inline and src or sl.core.fs.read(path)
  if not text then sl.fail(("%s: %s: cannot read %s"):format(file, p.from.intervene, path)) end
  local ops = sl.json.decode(text)
  if type(ops) ~= "table" then sl.fail(("%s: %s: not a JSON list of ops"):format(file, p.from.intervene)) end
  local dir = path and (path:match("^(.*)/[^/]*$") or ".") or "."
  p.axis = p.axis or {}
  for _, k in ipairs(keys) do
    local i, field = k:match("^intervene%.(%d+)%.([%w_]+)$")
    if not i or type(ops[tonumber(i) + 1]) ~= "table" then
      sl.fail(("%s: %s: no op %s in the spec (it has %d; keys are intervene.<op>.<field>, ops from 0)")
        :format(file, p.from[k], tostring(i or k), #ops))
    end
    ops[tonumber(i) + 1][field] = p.values[k]
    p.axis[k], p.values[k] = p.values[k], nil
  end
  for _, op in ipairs(ops) do
    for _, field in ipairs{ "vector", "values" } do
      local ref = op[field]
      if type(ref) == "string" and ref:sub(1, 1) ~= "/" then op[field] = dir .. "/" .. ref end
    end
  end
  p.values.intervene = sl.json.encode(ops)
end

-- Resolve a relative path: as given (the current directory), else next to the sweep file,
-- else under the slua root (the bundled model).
local function resolve(path, base)
  if path:sub(1, 1) == "/" or exists(path) then return path end
  if exists(base .. "/" .. path) then return base .. "/" .. path end
  if exists(sl.root .. "/" .. path) then return sl.root .. "/" .. path end
  return path
end

-- Items from a JSONL file or a Lua list: {id, options = {prompt | prompt_ids}}.
local function load_items(file, where, source, base)
  local items, seen = {}, {}
  local function add(entry, n, at)
    if type(entry) ~= "table" then sl.fail(("%s: %s: not an object"):format(file, at)) end
    local o = {}
    if entry.prompt_ids ~= nil then
      o.prompt_ids = flag_value(entry.prompt_ids)
    elseif type(entry.prompt) == "string" then
      o.prompt = entry.prompt
    else
      sl.fail(("%s: %s: needs \"prompt\" (text) or \"prompt_ids\""):format(file, at))
    end
    local id = entry.id
    if id == nil or id == sl.json.null then id = n end
    if type(id) ~= "string" and math.type(id) ~= "integer" then
      sl.fail(("%s: %s: \"id\" must be a string or an integer"):format(file, at))
    end
    if seen[tostring(id)] then sl.fail(("%s: %s: duplicate id %s"):format(file, at, tostring(id))) end
    seen[tostring(id)] = true
    items[#items + 1] = { id = id, options = o }
  end
  if type(source) == "table" then
    for i, entry in ipairs(source) do add(entry, i, ("%s[%d]"):format(where, i)) end
  else
    local path = resolve(source, base)
    local f = io.open(path, "r")
    if not f then sl.fail(("%s: %s: cannot open '%s'"):format(file, where, source)) end
    local n = 0
    for line in f:lines() do
      n = n + 1
      if line:find("%S") then
        local entry, err = sl.json.decode(line)
        if type(entry) ~= "table" then
          f:close()
          sl.fail(("%s: %s: line %d: %s"):format(file, path, n, err or "not a JSON object"))
        end
        add(entry, n, ("%s line %d"):format(path, n))
      end
    end
    f:close()
  end
  if #items == 0 then sl.fail(("%s: %s: no prompts"):format(file, where)) end
  return items
end

-- The point option tables (sweep-level values only) with where each key came from.
local function expand(file, s)
  local fixed = s.fixed or {}
  local combos = { { values = {}, from = {} } }
  local swept = {}
  local function cross(list)
    local out = {}
    for _, c in ipairs(combos) do
      for _, add in ipairs(list) do
        local v, f = {}, {}
        for k, x in pairs(c.values) do v[k] = x end
        for k, x in pairs(c.from) do f[k] = x end
        for k, x in pairs(add.values) do v[k] = x end
        for k, x in pairs(add.from) do f[k] = x end
        out[#out + 1] = { values = v, from = f }
      end
    end
    combos = out
  end
  if s.grid then
    for _, k in ipairs(sorted_keys(s.grid)) do
      local list = s.grid[k]
      if type(k) ~= "string" then sl.fail(("%s: grid: keys must be option names"):format(file)) end
      if type(list) ~= "table" then list = { list } end
      if #list == 0 then sl.fail(("%s: grid.%s: empty list (no points)"):format(file, k)) end
      local entries = {}
      for i, v in ipairs(list) do entries[i] = { values = { [k] = v }, from = { [k] = "grid." .. k } } end
      cross(entries)
      swept[#swept + 1] = k
    end
  end
  if s.zip then
    local keys, n = sorted_keys(s.zip), nil
    for _, k in ipairs(keys) do
      local list = s.zip[k]
      if type(list) ~= "table" or #list == 0 then sl.fail(("%s: zip.%s: empty list (no points)"):format(file, k)) end
      if n and #list ~= n then
        sl.fail(("%s: zip.%s: %d values where zip.%s has %d (zipped lists pair up)"):format(file, k, #list, keys[1], n))
      end
      n = #list
      swept[#swept + 1] = k
    end
    local entries = {}
    for i = 1, n or 0 do
      local v, f = {}, {}
      for _, k in ipairs(keys) do v[k], f[k] = s.zip[k][i], "zip." .. k end
      entries[i] = { values = v, from = f }
    end
    cross(entries)
  end
  if not s.grid and not s.zip and s.points then combos = {} end
  if s.points then
    local ok, list = pcall(s.points)
    if not ok then sl.fail(("%s: points: %s"):format(file, tostring(type(list) == "table" and list.message or list))) end
    if type(list) ~= "table" then sl.fail(("%s: points: must return a list of option tables"):format(file)) end
    local seen = {}
    for _, k in ipairs(swept) do seen[k] = true end
    for i, p in ipairs(list) do
      if type(p) ~= "table" then sl.fail(("%s: points[%d]: not an option table"):format(file, i)) end
      local f = {}
      for k in pairs(p) do
        f[k] = ("points[%d].%s"):format(i, k)
        if not seen[k] then seen[k] = true; swept[#swept + 1] = k end
      end
      combos[#combos + 1] = { values = p, from = f }
    end
  end
  if #combos == 0 then sl.fail(("%s: grid: no points (grid, zip and points are all empty)"):format(file)) end
  local points = {}
  for i, c in ipairs(combos) do
    local values, from = {}, {}
    for k, v in pairs(fixed) do values[k], from[k] = v, "fixed." .. k end
    for k, v in pairs(c.values) do values[k], from[k] = v, c.from[k] end
    points[i] = { values = values, from = from }
  end
  return points, swept
end

local function check_type(file, s, key)
  local want, v = known_fields[key], s[key]
  if not want then sl.fail(("%s: %s: unknown field (known: %s)"):format(file, key, table.concat(sorted_keys(known_fields), ", "))) end
  if v ~= nil and not want:find(type(v), 1, true) then
    sl.fail(("%s: %s: expected %s, got %s"):format(file, key, want:gsub("|", " or "), type(v)))
  end
end

-- spec.load(path [, run_options]) -> plan
-- plan = {file, name, recipe, model, steps, metrics, swept, plot, points = {{id, index, values,
--         options, from}}, items = {{id, options}}, pairs = {{point, item}} in run order}
-- run_options (the command line's, e.g. {threads = 2}) apply to every run over the file's fixed
-- values; they change how runs go, not their results, so point ids do not see them.
function spec.load(file, run_options)
  local chunk, err = loadfile(file)
  if not chunk then sl.fail(err) end
  local ok, s = pcall(chunk)
  if not ok then sl.fail(type(s) == "table" and s.message or tostring(s)) end
  if type(s) ~= "table" then sl.fail(("%s: must return a table (the sweep)"):format(file)) end
  if run_options and next(run_options) then
    local fixed = {}
    for k, v in pairs(type(s.fixed) == "table" and s.fixed or {}) do fixed[k] = v end
    for k, v in pairs(run_options) do fixed[k] = v end
    s.fixed = fixed
  end
  for key in pairs(s) do check_type(file, s, key) end
  if not s.recipe and not s.task then sl.fail(("%s: recipe: missing (a recipe name or path)"):format(file)) end
  local base = file:match("^(.*)/[^/]*$") or "."
  local plan = {
    file = file, recipe = s.recipe, steps = s.steps or false, plot = s.plot or {}, cost = s.cost,
    name = s.name or file:match("([^/]+)%.lua$") or file, out = s.out,
  }
  if s.recipe then
    local recipe_path = recipe_of.path(s.recipe)
    if not exists(recipe_path) then
      sl.fail(("%s: recipe: unknown recipe '%s' (no %s)"):format(file, s.recipe, recipe_path))
    end
  end
  plan.model = s.model and resolve(s.model, base) or sl.default_model
  if s.prompts and s.task then sl.fail(("%s: task: give prompts or task, not both"):format(file)) end
  if s.task then
    plan.task = task.resolve(file, s.task, function(path) return resolve(path, base) end)
    if s.recipe and plan.task.kind == "score" then
      sl.fail(("%s: recipe: task %s scores answers; it runs no recipe"):format(file, plan.task.name))
    end
    plan.items = plan.task.items
    plan.metrics = metrics.resolve_task(file, s.metrics, plan.task)
  else
    plan.items = s.prompts and load_items(file, "prompts", s.prompts, base) or { { id = 1, options = {} } }
    plan.metrics = metrics.resolve(file, s.metrics)
  end

  local points, swept = expand(file, s)
  plan.swept = swept
  plan.points, plan.pairs = {}, {}
  local by_id = {}
  for i, p in ipairs(points) do
    for k, where in pairs(p.from) do
      if item_options[k] then
        sl.fail(("%s: %s: prompts come from the prompt file or task, not from points"):format(file, where))
      elseif k == "format" then
        sl.fail(("%s: %s: the sweep sets --format itself"):format(file, where))
      end
    end
    -- A model may be swept too (each is loaded once); paths resolve as the sweep's own.
    p.values.model = p.values.model and resolve(tostring(p.values.model), base) or plan.model
    fold_intervene(file, p, base, resolve)
    local full, setting, identity
    if plan.task then
      if s.recipe and p.values.recipe == nil then p.values.recipe = s.recipe end
      full, setting, identity = task.point(plan, p)
    else
      p.values.format = "json"
      local argv = spec.argv(p.values)
      local okp
      okp, full = pcall(function() return recipe_of.load(s.recipe):options(argv) end)
      if not okp then
        local msg = type(full) == "table" and full.message or tostring(full)
        local key = msg:match("option %-%-([%w%-_]+)")
        local where = key and p.from[key:gsub("%-", "_")] or "recipe"
        if msg:find("^unknown option") then
          msg = ("unknown option of recipe %s (see slua %s --help)"):format(s.recipe, s.recipe)
        end
        sl.fail(("%s: %s: %s"):format(file, where, msg))
      end
      identity = spec.recipe_identity(s.recipe, full)
    end
    local id = spec.hash(sl.json.encode(identity))
    if by_id[id] then
      sl.fail(("%s: points %d and %d have the same settings"):format(file, by_id[id].index, i))
    end
    local params = {}
    for _, k in ipairs(swept) do
      if p.values[k] ~= nil then params[k] = p.values[k] else params[k] = (p.axis or {})[k] end
    end
    local point = { id = id, index = i, values = p.values, from = p.from, options = full, params = params,
                    setting = setting }
    by_id[id] = point
    plan.points[i] = point
  end
  for _, p in ipairs(plan.points) do
    for _, it in ipairs(plan.items) do plan.pairs[#plan.pairs + 1] = { point = p, item = it } end
  end
  return plan
end

-- The flags of one run: the point's sweep-level values and the item's prompt.
function spec.run_argv(point, item)
  local o = {}
  for k, v in pairs(point.values) do o[k] = v end
  for k, v in pairs(item.options) do o[k] = v end
  return spec.argv(o)
end

-- A short text for a point's swept values: "dola_layers=low repetition_penalty=1.2".
function spec.describe(plan, point)
  local parts = {}
  for _, k in ipairs(plan.swept) do
    if point.params[k] ~= nil then parts[#parts + 1] = k .. "=" .. flag_value(point.params[k]) end
  end
  return #parts > 0 and table.concat(parts, " ") or point.id
end

return spec
