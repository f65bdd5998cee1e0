-- The Markdown table of bench/peer_compare.sh's JSON lines: slua / llama.cpp per phase (rows) and
-- shape x threads (columns), each cell "ratio (slua tok/s / llama.cpp tok/s)" with the medians
-- over runs. The ratio is the median of the per-run ratios (run r of slua against run r of
-- llama.cpp, which ran next to it), so drift between rounds cancels; without pairs it is the
-- ratio of the medians.
--
-- Usage: build/slua bench/peer_table.lua --input FILE.jsonl [--batch 1,8,16,32] [--keep-disturbed]
-- Records marked disturbed (other processes above --max-foreign in every attempt) are left out
-- unless --keep-disturbed; the notes under the table count them.
local sl = require "slua"

local opt = sl.options(arg, {
  input = { default = "", help = "JSON lines written by bench/peer_compare.sh" },
  batch = { default = "1,8,16,32", help = "sequence counts shown for the many-sequences rows" },
  keep_disturbed = { default = false, help = "also use measurements marked disturbed" },
})
if opt.input == "" then sl.fail("option --input FILE.jsonl is required", 2) end

local f = io.open(opt.input, "r")
if not f then sl.fail(("%s: cannot open the results file"):format(opt.input)) end
local records, line_no, dropped = {}, 0, 0
for line in f:lines() do
  line_no = line_no + 1
  if line:match("%S") then
    local r, err = sl.json.decode(line)
    if type(r) ~= "table" then
      f:close()
      sl.fail(("%s: line %d is not a JSON object (%s)"):format(opt.input, line_no, err or "not an object"))
    end
    if r.disturbed == true and not opt.keep_disturbed then
      dropped = dropped + 1
    else
      records[#records + 1] = r
    end
  end
end
f:close()

local shown_batch = {}
for _, b in ipairs(sl.parse_ints(opt.batch, "batch")) do shown_batch[b] = true end

local function median(xs)
  local s = table.move(xs, 1, #xs, 1, {})
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

local shape_names = {
  ["smollm2-135m"] = "SmolLM2-135M", ["llama-3.2-1b"] = "Llama-3.2-1B", ["qwen3-0.6b"] = "Qwen3-0.6B",
  ["gemma-3-1b"] = "Gemma-3-1B", ["gemma-2-2b"] = "Gemma-2-2B", ["phi-3.5-mini"] = "Phi-3.5-mini",
  ["olmo-2-1b"] = "OLMo-2-1B", ["mixtral-8x0.3b"] = "Mixtral-style MoE",
}
local phase_names = { prefill = "prefill", decode = "decode", batch_prefill = "prefill", batch_decode = "decode" }
local phase_order = { prefill = 1, decode = 2, batch_prefill = 3, batch_decode = 4 }
local dtype_order = { BF16 = 1, F16 = 2, Q8_0 = 3 }
local level_order = { native = 1, avx2 = 2 }

-- cells[row][column][engine][run] = tok/s
local cells, rows, columns, row_keys, column_keys = {}, {}, {}, {}, {}
local bandwidth, meta = {}, {}
for _, r in ipairs(records) do
  if r.phase == "meta" then
    meta[#meta + 1] = r
  elseif r.phase == "bandwidth" then
    local key = r.threads
    bandwidth[key] = bandwidth[key] or { before = {}, after = {} }
    table.insert(bandwidth[key][r.when] or {}, r.gb_s)
  elseif r.tok_s and phase_order[r.phase] and (not r.batch or shown_batch[r.batch]) then
    local row = table.concat({ r.level, r.dtype, r.phase, r.batch or 0 }, "|")
    local col = r.shape .. "|" .. r.threads
    if not cells[row] then
      cells[row] = {}
      row_keys[#row_keys + 1] = row
      rows[row] = r
    end
    if not columns[col] then
      columns[col] = r
      column_keys[#column_keys + 1] = col
    end
    local c = cells[row][col] or { ["slua"] = {}, ["llama.cpp"] = {} }
    cells[row][col] = c
    if c[r.engine] then c[r.engine][r.run or (#c[r.engine] + 1)] = r.tok_s end
  end
end

local shape_seen, shape_rank = {}, 0
for _, k in ipairs(column_keys) do
  local s = columns[k].shape
  if not shape_seen[s] then shape_rank = shape_rank + 1; shape_seen[s] = shape_rank end
end
table.sort(column_keys, function(a, b)
  local x, y = columns[a], columns[b]
  if x.shape ~= y.shape then return shape_seen[x.shape] < shape_seen[y.shape] end
  return x.threads < y.threads
end)
table.sort(row_keys, function(a, b)
  local x, y = rows[a], rows[b]
  local kx = { level_order[x.level] or 9, dtype_order[x.dtype] or 9, phase_order[x.phase], x.batch or 0 }
  local ky = { level_order[y.level] or 9, dtype_order[y.dtype] or 9, phase_order[y.phase], y.batch or 0 }
  for i = 1, 4 do
    if kx[i] ~= ky[i] then return kx[i] < ky[i] end
  end
  return false
end)

local function values(t)
  local v = {}
  for _, x in pairs(t) do v[#v + 1] = x end
  return v
end

local function fmt(x)
  if not x then return "–" end
  return x >= 100 and ("%.0f"):format(x) or x >= 10 and ("%.1f"):format(x) or ("%.2f"):format(x)
end

local function cell(c)
  if not c then return "" end
  local ms, mp = median(values(c["slua"])), median(values(c["llama.cpp"]))
  local ratios = {}
  for run, s in pairs(c["slua"]) do
    local p = c["llama.cpp"][run]
    if p and p > 0 then ratios[#ratios + 1] = s / p end
  end
  local ratio = median(ratios) or (ms and mp and mp > 0 and ms / mp)
  return ("%s (%s / %s)"):format(ratio and ("%.2f"):format(ratio) or "–", fmt(ms), fmt(mp))
end

local runs_seen = {}
local out = {}
local header = { "slua ÷ llama.cpp (slua / llama.cpp tok/s)" }
for _, k in ipairs(column_keys) do
  local c = columns[k]
  header[#header + 1] = ("%s %d thr"):format(shape_names[c.shape] or c.shape, c.threads)
end
out[#out + 1] = "| " .. table.concat(header, " | ") .. " |"
out[#out + 1] = "|" .. string.rep("---|", #header)
for _, rk in ipairs(row_keys) do
  local r = rows[rk]
  local label = ("%s, %s, %s"):format(phase_names[r.phase], r.dtype, r.level == "avx2" and "AVX2" or r.level)
  if r.batch then label = ("%s, B = %d"):format(label, r.batch) end
  local line = { label }
  for _, ck in ipairs(column_keys) do
    local c = cells[rk][ck]
    line[#line + 1] = cell(c)
    if c then
      for _, e in ipairs({ "slua", "llama.cpp" }) do
        local n = #values(c[e])
        if n > 0 then runs_seen[n] = true end
      end
    end
  end
  out[#out + 1] = "| " .. table.concat(line, " | ") .. " |"
end
if #row_keys == 0 then out = { "(no measurements in " .. opt.input .. ")" } end

local notes = {}
local counts = {}
for n in pairs(runs_seen) do counts[#counts + 1] = n end
table.sort(counts)
if #counts > 0 then
  notes[#notes + 1] = ("Medians of %s run(s) per engine and cell; many-sequences rows give aggregate tok/s over "
    .. "all sequences."):format(table.concat(counts, " or "))
end
local threads = {}
for t in pairs(bandwidth) do threads[#threads + 1] = t end
table.sort(threads)
for _, t in ipairs(threads) do
  local b = bandwidth[t]
  notes[#notes + 1] = ("Read bandwidth (bwprobe, %d thread(s), median GB/s): %s before, %s after."):format(t,
    fmt(median(b.before)), fmt(median(b.after)))
end
if meta[1] then
  notes[#notes + 1] = ("CPU: %s (%s CPUs); slua %s; load average at the start %s."):format(tostring(meta[1].cpu),
    tostring(meta[1].ncpu), tostring(meta[1].slua_commit), tostring(meta[1].loadavg))
end
if dropped > 0 then
  notes[#notes + 1] = ("%d measurement(s) left out: other processes used more than the allowed CPU share in "
    .. "every attempt (--keep-disturbed uses them)."):format(dropped)
end
io.write(table.concat(out, "\n"), "\n")
if #notes > 0 then io.write("\n", table.concat(notes, "\n"), "\n") end
