-- slua.sweep.backend.slurm: a sweep as a Slurm job array.
--
-- Array task i runs `slua sweep FILE --out OUT --shard i/N` (several points per task); a merge
-- job (afterok on the array, --kill-on-invalid-dep=yes so a failed array does not leave it
-- pending forever) joins the shards and writes the report. Scripts and job ids go to
-- OUT/slurm/. --resubmit-missing submits only the array indices whose pairs are missing, and a
-- new merge job. A backend is a module with main(plan, out, opt, file); nothing else in the
-- sweep knows about Slurm.
local sl = require "slua.util"
local core = require "slua.core"
local store = require "slua.sweep.store"
local status = require "slua.sweep.status"

local slurm = {}

-- The flags `slua sweep FILE --slurm` accepts on top of the common ones.
slurm.flags = {
  array_size = "value", partition = "value", time = "value", cpus_per_task = "value",
  sbatch_arg = "list", dry_run = "flag", resubmit_missing = "flag",
}

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  local p = io.popen("pwd")
  local cwd = p:read("l")
  p:close()
  return cwd .. "/" .. path:gsub("^%./", "")
end

-- Runs a command, returns its stdout (trimmed); fails cleanly with its output otherwise.
local function run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  if not ok then sl.fail(("sweep --slurm: `%s` failed (exit %s): %s"):format(cmd, tostring(code), out:gsub("%s+$", ""))) end
  return (out:gsub("%s+$", ""))
end

local function header(lines, opt)
  if opt.partition then lines[#lines + 1] = "#SBATCH --partition=" .. opt.partition end
  if opt.time then lines[#lines + 1] = "#SBATCH --time=" .. opt.time end
  if opt.cpus_per_task then lines[#lines + 1] = "#SBATCH --cpus-per-task=" .. opt.cpus_per_task end
  for _, a in ipairs(opt.sbatch_arg or {}) do lines[#lines + 1] = "#SBATCH " .. a end
end

-- The array script and the merge script.
function slurm.scripts(plan, out, opt, file, n)
  local exe = core.fs.exe() or "slua"
  local env = ("SLUA_PATH=%s"):format(quote(sl.root))
  local array = {
    "#!/bin/sh",
    ("#SBATCH --job-name=%s"):format(("slua-" .. plan.name):gsub("%s", "_")),
    ("#SBATCH --array=0-%d"):format(n - 1),
    ("#SBATCH --output=%s/slurm/%%A_%%a.log"):format(out),
  }
  header(array, opt)
  array[#array + 1] = ("# array task i runs shard i of %d: its share of the (point, item) pairs"):format(n)
  array[#array + 1] = ("%s exec %s sweep %s --out %s --shard \"$SLURM_ARRAY_TASK_ID/%d\" --quiet%s%s"):format(
    env, quote(exe), quote(file), quote(out), n, opt.batch and (" --batch " .. quote(opt.batch)) or "",
    opt.threads and (" --threads " .. quote(opt.threads)) or "")
  local merge = {
    "#!/bin/sh",
    ("#SBATCH --job-name=%s-merge"):format(("slua-" .. plan.name):gsub("%s", "_")),
    ("#SBATCH --output=%s/slurm/merge-%%j.log"):format(out),
  }
  header(merge, opt)
  merge[#merge + 1] = "# join the shards (missing pairs make it fail), then the report"
  merge[#merge + 1] = ("%s %s sweep merge %s/shard-* --out %s && %s exec %s sweep report %s"):format(
    env, quote(exe), quote(out), quote(out), env, quote(exe), quote(out))
  return table.concat(array, "\n") .. "\n", table.concat(merge, "\n") .. "\n"
end

local function jobs_file(out) return out .. "/slurm/jobs.json" end

local function read_jobs(out)
  local f = io.open(jobs_file(out))
  if not f then return nil end
  local j = sl.json.decode(f:read("a"))
  f:close()
  return j
end

local function submit(out, array_flag)
  local array_id = run(("sbatch --parsable %s%s/slurm/sweep.sbatch"):format(
    array_flag and ("--array=" .. array_flag .. " ") or "", quote(out))):match("^(%d+)")
  if not array_id then sl.fail("sweep --slurm: sbatch printed no job id") end
  local merge_id = run(("sbatch --parsable --dependency=afterok:%s --kill-on-invalid-dep=yes %s/slurm/merge.sbatch"):format(
    array_id, quote(out))):match("^(%d+)")
  return array_id, merge_id
end

function slurm.main(plan, out, opt, file)
  out, file = absolute(out), absolute(file)
  local n = tonumber(opt.array_size) or math.min(#plan.points, 8)
  n = math.tointeger(n)
  if not n or n < 1 then sl.fail("sweep --slurm: --array-size must be a positive integer") end
  local jobs = read_jobs(out) or { submissions = {} }
  if opt.resubmit_missing then
    -- The shards are those of the first submission: same count, same split.
    if jobs.array_size and opt.array_size and jobs.array_size ~= n then
      sl.fail(("sweep --slurm: %s was submitted with --array-size %d"):format(out, jobs.array_size))
    end
    n = jobs.array_size or n
  end
  local array, merge = slurm.scripts(plan, out, opt, file, n)
  if opt.dry_run then
    io.write("# ", out, "/slurm/sweep.sbatch\n", array, "\n# ", out, "/slurm/merge.sbatch\n", merge)
    return
  end
  store.mkdirs(out .. "/slurm")
  store.write_manifest(out, plan)
  store.write_atomic(out .. "/slurm/sweep.sbatch", array)
  store.write_atomic(out .. "/slurm/merge.sbatch", merge)
  local indices
  if opt.resubmit_missing then
    local st = status.of(out)
    local missing = status.missing_shards(st, n)
    if #missing == 0 then
      io.write(("sweep %s: nothing missing (%d of %d pairs finished)\n"):format(plan.name, st.done, st.total))
      return
    end
    local list = {}
    for i, v in ipairs(missing) do list[i] = tostring(v) end
    indices = table.concat(list, ",")
  end
  local array_id, merge_id = submit(out, indices)
  jobs.array_size = n
  jobs.submissions[#jobs.submissions + 1] = { array = array_id, merge = merge_id, indices = indices or ("0-" .. (n - 1)) }
  store.write_atomic(jobs_file(out), sl.json.encode(jobs) .. "\n")
  io.write(("submitted array job %s (tasks %s of %d) and merge job %s; results in %s\n"):format(
    array_id, indices or ("0-" .. (n - 1)), n, merge_id or "?", out))
end

return slurm
