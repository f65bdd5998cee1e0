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

-- Read and decode a JSON file.
function T.json_file(path)
  local sl = require "slua"
  local f = assert(io.open(path))
  local v = assert(sl.json.decode(f:read("a")))
  f:close()
  return v
end

-- A fresh temporary directory.
function T.tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  return dir
end

-- s quoted for the shell.
function T.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- A file's bytes, or "" when it cannot be read.
function T.read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

-- Runs the slua binary with args (each quoted), stdout and stderr into files under dir;
-- returns stdout, stderr and the exit code.
function T.exec(slua, args, dir)
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = T.q(a) end
  local _, _, code = os.execute(("%s %s >%s/out 2>%s/err"):format(T.q(slua), table.concat(quoted, " "), dir, dir))
  return T.read(dir .. "/out"), T.read(dir .. "/err"), code
end

-- Run a command, return its stdout and whether it exited 0.
function T.run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

return T
