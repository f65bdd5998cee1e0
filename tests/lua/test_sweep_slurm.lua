-- slua sweep --slurm on a real one-node Slurm: a 2x3 sweep as a job array gives the same results
-- as one process; an array task killed mid-run is completed by --resubmit-missing with every
-- pair exactly once. Uses the cluster in $SLURM_CONF when one answers (.ci/run starts one), else
-- starts a private one with scripts/slurm-local.sh and stops it; skips (exit 77) when neither
-- works.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"

local sh, read, tmpdir = T.run, T.read_file, T.tmpdir

local own_cluster, conf
if not (os.getenv("SLURM_CONF") and select(2, sh("sinfo -h -o %T"))) then
  own_cluster = tmpdir() .. "/slurm"
  local out, ok = sh(("%s/scripts/slurm-local.sh up %s"):format(SLUA_ROOT, own_cluster))
  conf = out:match("export SLURM_CONF=(%S+)")
  if not ok or not conf then
    io.write("skip: no Slurm cluster (SLURM_CONF unset and scripts/slurm-local.sh up failed: ",
             out:gsub("%s+$", ""), ")\n")
    sh(("%s/scripts/slurm-local.sh down %s"):format(SLUA_ROOT, own_cluster))
    os.exit(77, true)
  end
end
-- Child processes (sbatch, squeue, the sweep) read the cluster from the environment.
local env = conf and ("SLURM_CONF=%s "):format(conf) or ""

local function lines_canonical(path)
  local out, seen, dup = {}, {}, 0
  for line in (read(path) or ""):gmatch("([^\n]*)\n") do
    local r = assert(sl.json.decode(line))
    local key = r.point .. "/" .. tostring(r.item)
    if seen[key] then dup = dup + 1 end
    seen[key] = true
    r.timings = nil
    out[#out + 1] = sl.json.encode(r)
  end
  return out, dup
end

-- Waits until none of the job ids is pending or running.
local function wait_jobs(ids, timeout)
  local t0 = sl.clock()
  while sl.clock() - t0 < timeout do
    local out = sh(("%ssqueue -h -o %%i -j %s"):format(env, table.concat(ids, ",")))
    if not out:find("%d") then return true end
    os.execute("sleep 0.1")
  end
  return false
end

local dir = tmpdir()
local file = dir .. "/grid.lua"
local f = assert(io.open(file, "w"))
f:write([[
return {
  name = "slurm-2x3", model = "models/stories260K", recipe = "greedy",
  prompts = { { prompt = "Once upon a time" }, { prompt = "The cat" }, { prompt = "One day" }, { prompt = "Lily" } },
  fixed = { threads = 1 },
  grid = { repetition_penalty = { 1.0, 1.3 }, max_new_tokens = { 8, 16, 24 } },
  -- each run lasts at least 0.15 s, so an array task can be caught mid-run
  metrics = { "distinct_2", pause = function() os.execute("sleep 0.15") return 0 end },
}
]])
f:close()

local function sweep(args)
  return sh(("cd %s && %s%s sweep %s"):format(SLUA_ROOT, env, slua, args))
end

local ref_out, ref_ok = sweep(("%s --out %s/ref --quiet --no-report"):format(file, dir))
local ref = lines_canonical(dir .. "/ref/results.jsonl")

T.case("a 2x3 sweep as a Slurm array equals the single-process run", function()
  T.truthy(ref_ok and #ref == 24, ref_out)
  local out, ok = sweep(("%s --out %s/array --slurm --array-size 3"):format(file, dir))
  T.truthy(ok, out)
  local array, merge = out:match("submitted array job (%d+) %(tasks 0%-2 of 3%) and merge job (%d+)")
  T.truthy(array and merge, out)
  T.truthy(wait_jobs({ array, merge }, 240), "jobs finished")
  local got, dup = lines_canonical(dir .. "/array/results.jsonl")
  T.eq(dup, 0, "no duplicates")
  T.eq(table.concat(got, "\n"), table.concat(ref, "\n"), "merged array results = single process")
  T.truthy(read(dir .. "/array/report.md"), "the merge job wrote the report")
end)

T.case("an array task killed mid-run is completed by --resubmit-missing", function()
  local out, ok = sweep(("%s --out %s/killed --slurm --array-size 3"):format(file, dir))
  T.truthy(ok, out)
  local array, merge = out:match("submitted array job (%d+) .- merge job (%d+)")
  T.truthy(array, out)
  local t0 = sl.clock()
  local caught = false
  while sl.clock() - t0 < 120 do   -- task 1 has written a line and is still running
    local text = read(dir .. "/killed/shard-1/results.jsonl") or ""
    if text:find("\n") then
      sh(("%sscancel %s_1"):format(env, array))
      caught = true
      break
    end
    os.execute("sleep 0.05")
  end
  T.truthy(caught, "task 1 started")
  T.truthy(wait_jobs({ array, merge }, 240), "array and merge job gone")
  local status = sweep("status " .. dir .. "/killed")
  T.truthy(status:find("shards to rerun: 1", 1, true), status)
  out, ok = sweep(("%s --out %s/killed --slurm --resubmit-missing"):format(file, dir))
  T.truthy(ok, out)
  local again, merge2 = out:match("submitted array job (%d+) %(tasks 1 of 3%) and merge job (%d+)")
  T.truthy(again, out)
  T.truthy(wait_jobs({ again, merge2 }, 240), "resubmitted jobs finished")
  local got, dup = lines_canonical(dir .. "/killed/results.jsonl")
  T.eq(dup, 0, "every pair exactly once")
  T.eq(table.concat(got, "\n"), table.concat(ref, "\n"), "complete and equal to the single-process run")
  status, ok = sweep("status " .. dir .. "/killed")
  T.truthy(ok and status:find("24 of 24 pairs finished", 1, true), status)
end)

if own_cluster then sh(("%s/scripts/slurm-local.sh down %s"):format(SLUA_ROOT, own_cluster)) end
T.remove_tmpdirs()
T.finish()
