-- slua.sweep.status: which pairs of a sweep's output are finished, per shard when it ran in
-- shards (OUT/shard-I), and which shards still have missing pairs.
local store = require "slua.sweep.store"
local shard = require "slua.sweep.shard"

local status = {}

local function shard_dirs(out)
  local dirs = {}
  local p = io.popen(("ls -d '%s'/shard-* 2>/dev/null"):format(out:gsub("'", "'\\''")))
  if p then
    for line in p:lines() do
      local i = tonumber(line:match("/shard%-(%d+)$"))
      if i then dirs[#dirs + 1] = { index = math.tointeger(i), dir = line } end
    end
    p:close()
  end
  table.sort(dirs, function(a, b) return a.index < b.index end)
  return dirs
end
status.shard_dirs = shard_dirs

-- status.of(out) -> {total, done, missing, shards = {{index, dir, expected, done, missing}}, count}
-- A shard directory lists its own pairs in sweep.json; results of the main directory and of
-- every shard count as done.
function status.of(out)
  local dirs = shard_dirs(out)
  local manifest
  local ok = pcall(function() manifest = store.read_manifest(out) end)
  local done = {}
  if ok then
    local _, by_key = store.read(out, false)
    for k in pairs(by_key) do done[k] = true end
  end
  local shards, count = {}, nil
  for _, d in ipairs(dirs) do
    local m = store.read_manifest(d.dir)
    manifest = manifest or m
    local _, by_key = store.read(d.dir, false)
    for k in pairs(by_key) do done[k] = true end
    if m.shard then count = m.shard.count end
    shards[#shards + 1] = { index = d.index, dir = d.dir, pairs = m.shard and m.shard.pairs or {} }
  end
  if not manifest then store.read_manifest(out) end   -- fails with the message
  local st = { total = 0, done = 0, missing = 0, shards = shards, count = count, name = manifest.name,
               missing_pairs = {} }
  for _, e in ipairs(shard.expected(manifest)) do
    st.total = st.total + 1
    if done[e.key] then st.done = st.done + 1 else
      st.missing = st.missing + 1
      st.missing_pairs[#st.missing_pairs + 1] = e
    end
  end
  for _, s in ipairs(shards) do
    s.expected, s.done = #s.pairs, 0
    for _, pr in ipairs(s.pairs) do
      if done[store.key(pr[1], pr[2])] then s.done = s.done + 1 end
    end
    s.missing = s.expected - s.done
  end
  return st
end

-- Shard indices (0-based) with missing pairs; shards never started count as missing when the
-- shard count is known.
function status.missing_shards(st, count)
  count = count or st.count
  local seen, out = {}, {}
  for _, s in ipairs(st.shards) do
    seen[s.index] = true
    if s.missing > 0 then out[#out + 1] = s.index end
  end
  for i = 0, (count or 0) - 1 do
    if not seen[i] then out[#out + 1] = i end
  end
  table.sort(out)
  return out
end

function status.text(st)
  local lines = { ("sweep %s: %d of %d pairs finished, %d missing"):format(st.name, st.done, st.total, st.missing) }
  for _, s in ipairs(st.shards) do
    lines[#lines + 1] = ("  shard %d/%s: %d of %d finished%s"):format(s.index, tostring(st.count or "?"), s.done,
      s.expected, s.missing > 0 and (", %d missing"):format(s.missing) or "")
  end
  local ms = status.missing_shards(st)
  if st.count and #ms > 0 then
    local list = {}
    for i, v in ipairs(ms) do list[i] = tostring(v) end
    lines[#lines + 1] = "  shards to rerun: " .. table.concat(list, ",")
  end
  return table.concat(lines, "\n") .. "\n"
end

return status
