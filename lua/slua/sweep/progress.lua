-- slua.sweep.progress: a progress bar on stderr when it is a terminal, plain periodic lines when
-- it is not (CI logs): pairs and points done/total, runs per second, ETA, the current point.
local core = require "slua.core"

local progress = {}
progress.__index = progress

local function clock_text(s)
  if s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return ("%d:%02d:%02d"):format(s // 3600, s % 3600 // 60, s % 60) end
  return ("%d:%02d"):format(s // 60, s % 60)
end

-- total: pairs to run now; points: distinct points among them; quiet: no output at all.
function progress.new(total, points, opts)
  opts = opts or {}
  return setmetatable({
    total = total, points = points, done = 0, points_done = 0, start = core.clock(),
    last = -math.huge, tty = core.fs.isatty(2), quiet = opts.quiet, every = opts.every or 10,
  }, progress)
end

function progress:update(label, point_finished)
  self.done = self.done + 1
  if point_finished then self.points_done = self.points_done + 1 end
  if self.quiet then return end
  local now = core.clock()
  local elapsed = now - self.start
  local rate = self.done / math.max(elapsed, 1e-9)
  local eta = (self.total - self.done) / rate
  if self.tty then
    local width = 24
    local filled = math.floor(width * self.done / math.max(self.total, 1))
    io.stderr:write(("\r\27[K[%s%s] %d/%d runs, %d/%d points, %.1f/s, ETA %s  %s"):format(
      ("="):rep(filled), (" "):rep(width - filled), self.done, self.total, self.points_done,
      self.points, rate, clock_text(eta), label:sub(1, 60)))
    if self.done == self.total then io.stderr:write("\n") end
  elseif now - self.last >= self.every or self.done == self.total then
    self.last = now
    io.stderr:write(("sweep: %d/%d runs (%d%%), %d/%d points, %.1f/s, ETA %s, %s\n"):format(
      self.done, self.total, math.floor(100 * self.done / math.max(self.total, 1)), self.points_done,
      self.points, rate, clock_text(eta), label))
  end
  io.stderr:flush()
end

return progress
