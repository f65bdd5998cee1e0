-- slua.lockfile: one run per output. `take(path)` holds PATH.lock (pid and host of the owner)
-- until `release()` or the end of the process; a second run on the same output fails with exit
-- 2 naming the first. A lock file left by a run that was killed is stale (the kernel dropped
-- its lock): it is named on stderr and taken over.
local sl = require "slua.util"
local core = require "slua.core"

local lockfile = {}

function lockfile.take(path)
  local lock_path = path .. ".lock"
  local lock, info, state = core.fs.lock(lock_path)
  if not lock then
    if state == "held" then
      sl.fail(("%s: in use by another run (%s; lock file %s)"):format(path, info, lock_path), 2)
    end
    sl.fail(info)
  end
  if info then
    io.stderr:write(("slua: %s: stale lock of a run that ended without removing it (%s); taken over\n"):format(
      lock_path, info))
  end
  return lock
end

return lockfile
