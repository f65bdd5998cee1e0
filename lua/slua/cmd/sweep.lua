-- slua sweep: run a grid of recipe settings over prompts, or of evaluation settings over a
-- task's items, in one process, resumably.
--
-- Usage: slua sweep FILE.lua [--out DIR] [--shard I/N] [--steps] [--quiet] [--no-report]
--                   [--sync-every SECONDS] [--batch N] [--threads N]
--        slua sweep FILE.lua --slurm [--array-size N] [--partition P] [--time T]
--                   [--cpus-per-task C] [--sbatch-arg ARG]... [--dry-run] [--resubmit-missing]
--        slua sweep report OUT [--format md|json]
--        slua sweep merge OUT | OUT/shard-* [--out OUT]
--        slua sweep status OUT
-- FILE.lua returns the sweep table (see lua/slua/sweep/spec.lua): recipe, model, prompts (or
-- task, see lua/slua/sweep/task.lua), fixed options, grid/zip/points, metrics. Results go to OUT/results.jsonl (default runs/<name>), one
-- line per (point, item); rerunning skips finished pairs. --shard I/N runs one deterministic
-- part into OUT/shard-I; merge joins shards (those given, or every OUT/shard-* of OUT, into OUT)
-- and lists missing pairs. --slurm hands the shards
-- to a Slurm job array; --backend NAME picks lua/slua/sweep/backend/NAME.lua, which also
-- declares its own flags (slurm.lua: the Slurm ones above). --batch N runs N pairs' generations
-- together (continuous batching; same tokens, scores up to float32 summation order). --threads N
-- sets every run's thread count (0 = all CPUs), over the sweep file's; point ids do not include it.
local sl = require "slua"
local spec = require "slua.sweep.spec"
local runner = require "slua.sweep.runner"
local store = require "slua.sweep.store"
local shard = require "slua.sweep.shard"
local report = require "slua.sweep.report"
local status = require "slua.sweep.status"

local USAGE = "usage: slua sweep FILE.lua [--out DIR] [--shard I/N] [--slurm ...] | report OUT | merge DIR... | status OUT"

-- Flags: {name = "value" | "flag" | "list"}; the rest are positional.
local function parse(argv, first, known)
  local opt, pos = {}, {}
  for k, kind in pairs(known) do if kind == "list" then opt[k] = {} end end
  local i = first
  while i <= #argv do
    local a = argv[i]
    local key, value = a:match("^%-%-([%w%-]+)=(.*)$")
    key = key or a:match("^%-%-([%w%-]+)$")
    if key then
      key = key:gsub("%-", "_")
      local kind = known[key]
      if not kind then sl.fail(("sweep: unknown option --%s (%s)"):format(key:gsub("_", "-"), USAGE)) end
      if kind == "flag" then
        opt[key] = true
      else
        if value == nil then
          i = i + 1
          value = argv[i]
          if value == nil then sl.fail(("sweep: option --%s needs a value"):format(key:gsub("_", "-"))) end
        end
        if kind == "list" then table.insert(opt[key], value) else opt[key] = value end
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opt, pos
end

local run_flags = {
  out = "value", shard = "value", steps = "flag", quiet = "flag", no_report = "flag", sync_every = "value",
  batch = "value", threads = "value",
  backend = "value", slurm = "flag",   -- --slurm = --backend slurm
}

-- The backend named by --backend NAME or --NAME (a module slua.sweep.backend.NAME with
-- flags = {name = kind} and main(plan, out, opt, file)), or nil to run here.
local function find_backend(argv)
  local name
  for i, a in ipairs(argv) do
    if a == "--backend" then name = argv[i + 1] end
    name = name or a:match("^%-%-backend=(.+)$")
    if a == "--slurm" then name = name or "slurm" end
  end
  if not name then return nil end
  if not name:match("^[%w_]+$") or not package.searchpath("slua.sweep.backend." .. name, package.path) then
    sl.fail(("sweep: unknown backend '%s'"):format(name))
  end
  return require("slua.sweep.backend." .. name)
end

local function default_out(plan) return plan.out or ("runs/" .. plan.name) end

local function print_merge(res, out)
  io.write(("merged %d results into %s/results.jsonl (%d duplicates dropped)\n"):format(res.written, out, res.duplicates))
  for _, k in ipairs(res.conflicts) do
    io.stderr:write(("sweep merge: %s: duplicates differ beyond their timings (the first is kept)\n"):format(k:gsub("\t", " item ")))
  end
  if #res.missing > 0 then
    io.write(("%d pairs missing:\n"):format(#res.missing))
    for _, e in ipairs(res.missing) do io.write(("  point %s item %s\n"):format(e.point, tostring(e.item))) end
  end
end

local commands = {}

function commands.report(argv)
  local opt, pos = parse(argv, 2, { format = "value" })
  if #pos ~= 1 then sl.fail("usage: slua sweep report OUT [--format md|json]") end
  local fmt = opt.format or "md"
  if fmt ~= "md" and fmt ~= "json" then sl.fail("sweep report: --format must be md or json") end
  local rep, files = report.write(pos[1])
  if fmt == "json" then
    io.write(report.json(rep))
  else
    io.write(report.markdown(rep))
    io.stderr:write(("sweep: wrote %s\n"):format(table.concat(files, ", ")))
  end
end

function commands.merge(argv)
  local opt, pos = parse(argv, 2, { out = "value" })
  if #pos == 0 then sl.fail("usage: slua sweep merge OUT | OUT/shard-* [--out OUT]", 2) end
  local dirs, out = pos, nil
  -- One directory that holds shards: merge all of them into it.
  local held = #pos == 1 and status.shard_dirs((pos[1]:gsub("/+$", ""))) or {}
  if #held > 0 then
    dirs, out = {}, pos[1]:gsub("/+$", "")
    for i, d in ipairs(held) do dirs[i] = d.dir end
  end
  out = opt.out or out or pos[1]:match("^(.*)/[^/]+/?$") or "."
  local res = shard.merge(dirs, out)
  print_merge(res, out)
  if #res.missing > 0 then os.exit(3, true) end
end

function commands.status(argv)
  local _, pos = parse(argv, 2, {})
  if #pos ~= 1 then sl.fail("usage: slua sweep status OUT") end
  local status = require("slua.sweep.status")
  local st = status.of(pos[1])
  io.write(status.text(st))
  if st.missing > 0 then os.exit(3, true) end
end

local function run_sweep(argv)
  local backend = find_backend(argv)
  local flags = {}
  for k, v in pairs(run_flags) do flags[k] = v end
  for k, v in pairs(backend and backend.flags or {}) do flags[k] = v end
  local opt, pos = parse(argv, 1, flags)
  if #pos ~= 1 then sl.fail(USAGE) end
  local run_options = {}
  if opt.threads then
    local n = math.tointeger(tonumber(opt.threads))
    if not n or n < 0 or n > sl.core.max_threads then
      sl.fail(("sweep: option --threads expects an integer in [0, %d] (got '%s')"):format(sl.core.max_threads,
        opt.threads), 2)
    end
    run_options.threads = n
  end
  local plan = spec.load(pos[1], run_options)
  if opt.steps then plan.steps = true end
  local out = opt.out or default_out(plan)
  if backend then return backend.main(plan, out, opt, pos[1]) end
  local pairs_to_run, dir = plan.pairs, out
  if opt.shard then
    local i, n = shard.parse(opt.shard)
    pairs_to_run = shard.assign(plan, n)[i + 1]
    dir = ("%s/shard-%d"):format(out, i)
    local keys = {}
    for k, pr in ipairs(pairs_to_run) do keys[k] = { pr.point.id, pr.item.id } end
    plan.shard = { index = i, count = n, pairs = keys }
  end
  local sync_every = tonumber(opt.sync_every or 1)
  if not sync_every or sync_every < 0 then sl.fail("sweep: --sync-every expects seconds >= 0") end
  local width = math.tointeger(tonumber(opt.batch or 1))
  if not width or width < 1 or width > 256 then
    sl.fail(("sweep: option --batch expects an integer in [1, 256] (got '%s')"):format(tostring(opt.batch)), 2)
  end
  local n = runner.run(plan, dir, { pairs = pairs_to_run, quiet = opt.quiet, sync_every = sync_every,
                                    batch = width })
  io.stderr:write(("sweep: %d runs made, %d pairs in %s/results.jsonl\n"):format(n, #pairs_to_run, dir))
  if not opt.shard and not opt.no_report then
    local _, files = report.write(dir)
    io.stderr:write(("sweep: wrote %s\n"):format(table.concat(files, ", ")))
  end
end

local argv = arg
local sub = argv[1]
if sub == nil or sub == "--help" or sub == "-h" then
  if not sub then io.stderr:write(USAGE, "\n"); os.exit(2, true) end
  for line in io.lines(arg[0]) do        -- this file's header comment
    local text = line:match("^%-%-%s?(.*)$")
    if not text then break end
    io.write(text, "\n")
  end
  os.exit(0, true)
elseif commands[sub] then
  commands[sub](argv)
else
  run_sweep(argv)
end
