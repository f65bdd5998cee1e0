-- A tiny test harness for Lua-side tests run by the slua host under CTest.
-- Each case runs under pcall; the last line is "N passed, M failed" and the exit code is 0
-- only when nothing failed.
local T = { passed = 0, failed = 0 }

function T.case(name, fn)
  local ok, err = xpcall(fn, debug.traceback)
  if ok then
    T.passed = T.passed + 1
  else
    T.failed = T.failed + 1
    io.stderr:write(("FAIL %s\n%s\n"):format(name, tostring(err)))
  end
end

function T.eq(a, b, what)
  if a ~= b then error(("%s: expected %s, got %s"):format(what or "value", tostring(b), tostring(a)), 2) end
end

function T.near(a, b, tol, what)
  if not (math.abs(a - b) <= tol) then
    error(("%s: expected %.9g, got %.9g (tolerance %g)"):format(what or "value", b, a, tol), 2)
  end
end

function T.truthy(v, what)
  if not v then error((what or "condition") .. " does not hold", 2) end
end

-- err must be raised by fn and contain `needle` (plain text).
function T.raises(fn, needle, what)
  local ok, err = pcall(fn)
  if ok then error((what or "call") .. " did not raise", 2) end
  local msg = type(err) == "table" and err.message or tostring(err)
  if not msg:find(needle, 1, true) then
    error(("%s: error '%s' does not contain '%s'"):format(what or "call", msg, needle), 2)
  end
end

function T.finish()
  print(("%d passed, %d failed"):format(T.passed, T.failed))
  os.exit(T.failed == 0 and 0 or 1, true)
end

-- A result's JSON without its "timings" (which differ between any two runs).
function T.untimed_json(result)
  local sl = require "slua"
  local copy = {}
  for k, v in pairs(result) do if k ~= "timings" then copy[k] = v end end
  return sl.json.encode(copy)
end

-- Read and decode a JSON file.
function T.json_file(path)
  local sl = require "slua"
  local f = assert(io.open(path))
  local v = assert(sl.json.decode(f:read("a")))
  f:close()
  return v
end

-- A fresh temporary directory (T.remove_tmpdirs() removes every one made so far).
local made = {}
function T.tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  made[#made + 1] = dir
  return dir
end

function T.remove_tmpdirs()
  for _, dir in ipairs(made) do os.execute("rm -rf " .. T.q(dir)) end
  made = {}
end

-- s quoted for the shell.
function T.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- A file's bytes, or nil when it cannot be read.
function T.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- A file's bytes, or "" when it cannot be read.
function T.read(path) return T.read_file(path) or "" end

-- Writes text to path, replacing it.
function T.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- The values of a JSON-lines file, in order (none when it cannot be read); a line that is not
-- JSON fails the test.
function T.json_lines(path)
  local sl = require "slua"
  local text, out = T.read(path), {}
  if text ~= "" and text:sub(-1) ~= "\n" then text = text .. "\n" end
  for line in text:gmatch("([^\n]*)\n") do out[#out + 1] = assert(sl.json.decode(line), line) end
  return out
end

-- Writes each value as one line of JSON.
function T.write_json_lines(path, values)
  local sl = require "slua"
  local f = assert(io.open(path, "wb"))
  for _, v in ipairs(values) do f:write(sl.json.encode(v), "\n") end
  f:close()
end

-- Runs the slua binary with args (each quoted), stdout and stderr into files under dir;
-- returns stdout, stderr and the exit code.
function T.exec(slua, args, dir)
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = T.q(a) end
  local _, _, code = os.execute(("%s %s >%s/out 2>%s/err"):format(T.q(slua), table.concat(quoted, " "), dir, dir))
  return T.read(dir .. "/out"), T.read(dir .. "/err"), code
end

-- The slua binary under test as a command line, its outputs kept under dir:
--   cli.exec(args) -> stdout, stderr, exit code
--   cli.json(args) -> the JSON object on stdout, stderr (a failed run fails the test)
--   cli.usage_error(args, line): exit 2, nothing on stdout, exactly `line` on stderr
function T.cli(slua, dir)
  local cli = {}
  function cli.exec(args) return T.exec(slua, args, dir) end
  function cli.json(args)
    local out, err, code = cli.exec(args)
    if code ~= 0 then error(table.concat(args, " ") .. " failed:\n" .. err, 2) end
    local sl = require "slua"
    return assert(sl.json.decode(out)), err
  end
  function cli.usage_error(args, line)
    local out, err, code = cli.exec(args)
    local what = table.concat(args, " ")
    T.eq(code, 2, what .. ": exit status")
    T.eq(out, "", what .. ": stdout")
    T.eq(err, line .. "\n", what .. ": message")
  end
  return cli
end

-- Run a command, return its stdout and whether it exited 0.
function T.run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

return T
