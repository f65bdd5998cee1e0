-- slua eval and slua sweep guard the research workflow: bad values exit 2 with the valid range
-- (shards, early-exit layers, --recipe-options, --lang), --merge refuses incomplete or
-- duplicated sets (exit 3), one run per output (a lock naming its owner; a stale lock is named
-- and taken over), a damaged middle line names its file and line and --repair reruns it, and
-- progress written to a file has no terminal control codes.
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local tmp = T.tmpdir()

local function shell(cmd)
  local ok, _, code = os.execute(cmd)
  return ok and 0 or code
end

local function lines(path)
  local n = 0
  for _ in T.read(path):gmatch("\n") do n = n + 1 end
  return n
end

-- Runs `slua ARGS`, returning stdout, stderr and the exit code.
local function slua_run(args) return T.exec(slua, args, tmp) end

-- Waits (bounded) until cond() holds: readiness is a line or a file, never a fixed delay.
local function wait_for(cond, what)
  for _ = 1, 1200 do
    if cond() then return end
    os.execute("sleep 0.05")
  end
  error("timed out waiting for " .. what)
end

T.case("bad values exit 2 with one line naming the valid values", function()
  local cases = {
    { { "eval", "truthfulqa_mc", "--shard", "3/3" }, "0 <= I < N" },
    { { "eval", "truthfulqa_mc", "--shard", "abc" }, "expected I/N" },
    { { "eval" }, "tasks: truthfulqa_mc" },
    { { "eval", "gsm8k", "--recipe-options", "{bad" }, "option --recipe-options" },
    { { "eval", "mgsm", "--lang", "xx" }, "languages: bn, de, en" },
    { { "eval", "truthfulqa_mc", "--early-exit-layers", "9" }, "-1 or 5" },
    { { "eval", "truthfulqa_mc", "--early-exit-layers", "5,2" }, "premature layer 5 is not below the mature layer 2" },
    { { "eval", "truthfulqa_mc", "--early-exit-layers", "0,2,9" }, "out of range [0, 5]" },
  }
  for _, c in ipairs(cases) do
    local _, err, code = slua_run(c[1])
    local what = table.concat(c[1], " ")
    T.eq(code, 2, what .. ": exit code")
    T.truthy(err:find(c[2], 1, true), what .. ": message names the rule: " .. err)
    T.eq(select(2, err:gsub("\n", "")), 1, what .. ": one line")
  end
  -- the final layer written out is the baseline, as -1
  local out, err, code = slua_run({ "eval", "truthfulqa_mc", "--limit", "1", "--early-exit-layers", "5", "--threads", "1" })
  T.eq(code, 0, "--early-exit-layers 5: " .. err)
  T.eq(sl.json.decode(out).settings.mode, "baseline", "one entry N is the baseline")
end)

T.case("--merge lists missing and duplicated shards and exits 3", function()
  local p = {}
  for i = 0, 2 do
    p[i] = ("%s/part%d.jsonl"):format(tmp, i)
    local _, err, code = slua_run({ "eval", "truthfulqa_mc", "--limit", "6", "--shard", i .. "/3", "--output", p[i],
                                    "--threads", "1" })
    T.eq(code, 0, "shard " .. i .. ": " .. err)
  end
  local out, err, code = slua_run({ "eval", "--merge", p[0], p[1] })
  T.eq(code, 3, "shard 2/3 missing: exit code")
  T.truthy(err:find("missing: shard 2/3", 1, true), "the missing shard is named: " .. err)
  T.eq(sl.json.decode(out).complete, false, "summary says incomplete")
  _, err, code = slua_run({ "eval", "--merge", p[0], p[0], p[1], p[2] })
  T.eq(code, 3, "a file twice: exit code")
  T.truthy(err:find(p[0] .. " is given twice", 1, true), "the duplicate is named: " .. err)
  -- a shard cut short
  local f = assert(io.open(tmp .. "/part0-head.jsonl", "w"))
  f:write((T.read(p[0]):match("^[^\n]*\n")))
  f:close()
  _, err, code = slua_run({ "eval", "--merge", tmp .. "/part0-head.jsonl", p[1], p[2] })
  T.eq(code, 3, "a partial shard: exit code")
  T.truthy(err:find("missing: shard 0/3 has 1 of its 2 items", 1, true), "the partial shard is named: " .. err)
  out, err, code = slua_run({ "eval", "--merge", p[0], p[1], p[2] })
  T.eq(code, 0, "the complete set: " .. err)
  local m = sl.json.decode(out)
  T.eq(m.n, 6, "every item once")
  T.eq(m.complete, true, "complete")
end)

T.case("a second run on an output in use exits 2 naming the first; a stale lock is named", function()
  local out_path = tmp .. "/locked.jsonl"
  local pid_file = tmp .. "/first.pid"
  os.execute(("%s eval truthfulqa_mc --limit 3 --pause 60 --threads 1 --output %s >/dev/null 2>&1 & echo $! > %s"):format(
    T.q(slua), T.q(out_path), T.q(pid_file)))
  local pid = T.read(pid_file):match("%d+")
  wait_for(function() return lines(out_path) >= 1 end, "the first run's first line")
  local _, err, code = slua_run({ "eval", "truthfulqa_mc", "--limit", "3", "--threads", "1", "--output", out_path })
  T.eq(code, 2, "second run: exit code")
  T.truthy(err:find("in use by another run (pid=" .. pid, 1, true), "names the first run: " .. err)
  T.eq(lines(out_path), 1, "the second run wrote nothing")
  os.execute("kill -9 " .. pid .. "; wait " .. pid .. " 2>/dev/null")
  wait_for(function() return shell("kill -0 " .. pid .. " 2>/dev/null") ~= 0 end, "the first run to end")
  local _, err2, code2 = slua_run({ "eval", "truthfulqa_mc", "--limit", "3", "--threads", "1", "--output", out_path })
  T.eq(code2, 0, "after a kill: " .. err2)
  T.truthy(err2:find("stale lock", 1, true) and err2:find("pid=" .. pid, 1, true), "the stale lock is named: " .. err2)
  T.eq(lines(out_path), 3, "each item once")
  T.eq(T.read(out_path .. ".lock"), "", "the lock is removed at the end")
end)

T.case("a second sweep on one output folder exits 2 naming the first", function()
  local file = tmp .. "/slow_sweep.lua"
  local f = assert(io.open(file, "w"))
  f:write(([[return { name = "slow", recipe = %q, prompts = { { prompt = "Once upon a time" }, { prompt = "The cat" } },
    fixed = { max_new_tokens = 4, delay = 30 }, grid = { seed = { 1 } } }]]):format(
    SLUA_ROOT .. "/tests/data/recipes/slow_greedy.lua"))
  f:close()
  local dir, log, pid_file = tmp .. "/sweep-out", tmp .. "/sweep1.err", tmp .. "/sweep1.pid"
  os.execute(("%s sweep %s --out %s --quiet >/dev/null 2>%s & echo $! > %s"):format(T.q(slua), T.q(file), T.q(dir),
    T.q(log), T.q(pid_file)))
  local pid = T.read(pid_file):match("%d+")
  wait_for(function() return T.read(log):find("slow_greedy: started", 1, true) end, "the first sweep's first run")
  local _, err, code = slua_run({ "sweep", file, "--out", dir, "--quiet" })
  os.execute("kill -9 " .. pid .. " 2>/dev/null")
  T.eq(code, 2, "second sweep: exit code")
  T.truthy(err:find("in use by another run (pid=" .. pid, 1, true), "names the first sweep: " .. err)
  T.eq(lines(dir .. "/results.jsonl"), 0, "the second sweep ran nothing")
end)

T.case("a damaged middle line names file and line; --repair moves it aside and reruns its item", function()
  local path = tmp .. "/damaged.jsonl"
  local _, err, code = slua_run({ "eval", "truthfulqa_mc", "--limit", "4", "--threads", "1", "--output", path })
  T.eq(code, 0, "first run: " .. err)
  local text = T.read(path)
  local l1, l2, rest = text:match("^([^\n]*\n)([^\n]*\n)(.*)$")
  local f = assert(io.open(path, "w"))
  f:write(l1, "{garbage\n", rest)   -- line 2 damaged, its item lost
  f:close()
  _, err, code = slua_run({ "eval", "truthfulqa_mc", "--limit", "4", "--threads", "1", "--output", path })
  T.eq(code, 1, "resume over a damaged line fails")
  T.truthy(err:find(path .. ": line 2: not a result line", 1, true), "file and line are named: " .. err)
  T.truthy(err:find("--repair", 1, true), "the repair is offered: " .. err)
  local out
  out, err, code = slua_run({ "eval", "truthfulqa_mc", "--limit", "4", "--threads", "1", "--output", path, "--repair" })
  T.eq(code, 0, "--repair: " .. err)
  T.eq(T.read(path .. ".damaged"), "{garbage\n", "the damaged line is kept aside")
  local summary = sl.json.decode(out)
  T.eq(summary.n_run, 1, "the damaged line's item ran again")
  T.eq(lines(path), 4, "every item once")
  local before, again = sl.json.decode(l2), nil
  for line in T.read(path):gmatch("[^\n]+") do
    local r = sl.json.decode(line)
    if r.id == before.id then again = r end
  end
  T.truthy(again, "the damaged line's item is back")
  T.eq(again.MC1, before.MC1, "its MC1")
  T.near(again.MC2, before.MC2, 1e-6, "its MC2")
end)

T.case("--progress always into a file writes plain lines", function()
  local _, err, code = slua_run({ "eval", "truthfulqa_mc", "--limit", "3", "--threads", "1", "--progress", "always" })
  T.eq(code, 0, "run: " .. err)
  T.truthy(not err:find("[\r\27]"), "no carriage returns or escape codes: " .. ("%q"):format(err))
  T.truthy(err:find("eval: 3/3 items", 1, true), "a final plain progress line: " .. err)
end)

T.case("every slua eval option has help text", function()
  local out, _, code = slua_run({ "eval", "truthfulqa_mc", "--help" })
  T.eq(code, 0, "--help exits 0")
  local n = 0
  for line in out:sub((out:find("Options", 1, true))):gmatch("[^\n]+") do
    local name, rest = line:match("^  (%-%-[%w%-]+)%s+(.*)$")
    if name and name ~= "--config" and name ~= "--help" then
      n = n + 1
      local help = rest:match("^%S+%s%s+(%S.*)$") or rest:match('^""%s%s+(%S.*)$')
      T.truthy(help and not help:match("^%[") , name .. " has help text: '" .. rest .. "'")
    end
  end
  T.truthy(n >= 20, "options listed: " .. n)
end)

os.execute("rm -rf " .. T.q(tmp))
T.finish()
