-- slua.sweep.shard: a deterministic split of a plan's pairs into N shards, and the merge of
-- shard outputs back into one results file.
--
-- Whole points go to shards (a shard runs every item of its points), largest estimated cost
-- first, each to the least loaded shard (lowest index on ties). A point's cost is the sweep's
-- cost(options) if given, else its max_new_tokens, times the number of items. When there are
-- fewer points than shards, pairs are dealt out one by one instead.
local sl = require "slua.util"
local store = require "slua.sweep.store"

local shard = {}

-- "2/3" -> 2, 3 (0-based index)
function shard.parse(text)
  local i, n = tostring(text):match("^(%d+)/(%d+)$")
  i, n = tonumber(i), tonumber(n)
  if not i or n < 1 or i >= n then
    sl.fail(("option --shard: expected I/N with 0 <= I < N (got '%s')"):format(tostring(text)))
  end
  return math.tointeger(i), math.tointeger(n)
end

-- shard.assign(plan, n) -> list of n lists of pairs (in plan order within each shard)
function shard.assign(plan, n)
  local shards = {}
  for s = 1, n do shards[s] = {} end
  if #plan.points < n then
    for k, pr in ipairs(plan.pairs) do table.insert(shards[(k - 1) % n + 1], pr) end
    return shards
  end
  local costs, order = {}, {}
  for i, p in ipairs(plan.points) do
    local c = plan.cost and plan.cost(p.options) or (p.options.max_new_tokens or 64) + 1
    if type(c) ~= "number" or c < 0 then sl.fail(("%s: cost: must return a number >= 0"):format(plan.file)) end
    costs[p.id] = c * #plan.items
    order[i] = p
  end
  table.sort(order, function(a, b)
    if costs[a.id] ~= costs[b.id] then return costs[a.id] > costs[b.id] end
    return a.index < b.index
  end)
  local load, owner = {}, {}
  for s = 1, n do load[s] = 0 end
  for _, p in ipairs(order) do
    local best = 1
    for s = 2, n do if load[s] < load[best] then best = s end end
    load[best] = load[best] + costs[p.id]
    owner[p.id] = best
  end
  for _, pr in ipairs(plan.pairs) do table.insert(shards[owner[pr.point.id]], pr) end
  return shards
end

-- The expected pairs of a stored plan, in plan order: list of {point, item, key}.
function shard.expected(manifest)
  local out = {}
  for _, p in ipairs(manifest.points) do
    for _, item in ipairs(manifest.items) do
      out[#out + 1] = { point = p.id, item = item, key = store.key(p.id, item) }
    end
  end
  return out
end

-- shard.merge(dirs, out_dir) -> {written, duplicates, conflicts, missing = {pairs}}
-- Results of every shard directory, deduplicated (first wins; a duplicate that differs beyond
-- its timings is a conflict), written to out_dir/results.jsonl in plan order.
function shard.merge(dirs, out_dir)
  if #dirs == 0 then sl.fail("sweep merge: no shard directories given") end
  local manifest
  local found, dup, conflicts = {}, 0, {}
  for _, dir in ipairs(dirs) do
    local m = store.read_manifest(dir)
    if manifest and m.name ~= manifest.name then
      sl.fail(("%s: shard of sweep '%s', not '%s'"):format(dir, m.name, manifest.name))
    end
    if not manifest or #m.points > #manifest.points then manifest = m end
    local records = store.read(dir, false)
    for _, r in ipairs(records) do
      local k = store.key(r.point, r.item)
      if found[k] then
        dup = dup + 1
        local a, b = found[k], r
        local ta, tb = a.timings, b.timings
        a.timings, b.timings = nil, nil
        if sl.json.encode(a) ~= sl.json.encode(b) then conflicts[#conflicts + 1] = k end
        a.timings, b.timings = ta, tb
      else
        found[k] = r
      end
    end
  end
  local lines, missing = {}, {}
  for _, e in ipairs(shard.expected(manifest)) do
    local r = found[e.key]
    if r then lines[#lines + 1] = r._line else missing[#missing + 1] = e end
  end
  manifest.shard = nil
  store.mkdirs(out_dir)
  store.write_atomic(out_dir .. "/sweep.json", sl.json.encode(manifest) .. "\n")
  store.write_atomic(out_dir .. "/results.jsonl", #lines > 0 and table.concat(lines, "\n") .. "\n" or "")
  return { written = #lines, duplicates = dup, conflicts = conflicts, missing = missing, manifest = manifest }
end

return shard
