-- Decode speed per byte of weights: each shape's median decode tok/s (bench/peer_compare.sh's
-- JSON lines) times the bytes of weights one decode step reads, against a baseline shape's. A
-- step reads every weight once except the embedding table (one row; all of it when it is also
-- the LM head) and, in a mixture of experts, only num_experts_per_tok of the experts. KV-cache
-- reads (under 200 positions here) are left out.
--
-- Usage: build/slua bench/per_byte.lua --input FILE.jsonl --models DIR [--baseline llama-3.2-1b]
--   [--engine slua] [--keep-disturbed]
-- DIR holds SHAPE-bf16/ (config.json and model.safetensors) for each shape in the results.
local sl = require "slua"

local opt = sl.options(arg, {
  input = { default = "", help = "JSON lines written by bench/peer_compare.sh" },
  models = { default = "", help = "the --models directory of bench/peer_compare.sh" },
  baseline = { default = "llama-3.2-1b", help = "the shape the others are compared with" },
  engine = { default = "slua", help = "slua or llama.cpp" },
  keep_disturbed = { default = false, help = "also use measurements marked disturbed" },
})
if opt.input == "" or opt.models == "" then sl.fail("options --input FILE.jsonl and --models DIR are required", 2) end

local function read_json(path)
  local f = io.open(path, "rb")
  if not f then sl.fail(("%s: cannot open"):format(path)) end
  local v, err = sl.json.decode(f:read("a"))
  f:close()
  if type(v) ~= "table" then sl.fail(("%s: not JSON (%s)"):format(path, err)) end
  return v
end

-- The safetensors header of dir/model.safetensors: name -> {dtype, shape, data_offsets}.
local function header_of(dir)
  local path = dir .. "/model.safetensors"
  local f = io.open(path, "rb")
  if not f then sl.fail(("%s: cannot open"):format(path)) end
  local len = string.unpack("<I8", f:read(8))
  local h, err = sl.json.decode(f:read(len))
  f:close()
  if type(h) ~= "table" then sl.fail(("%s: bad header (%s)"):format(path, err)) end
  return h
end

-- Bytes of weights one decode step reads.
local function bytes_per_token(dir)
  local cfg, h = read_json(dir .. "/config.json"), header_of(dir)
  local gemma = tostring(cfg.model_type):match("^gemma") ~= nil
  local tied = cfg.tie_word_embeddings
  if tied == nil then tied = gemma end -- Gemma's configs default to tied
  local experts = cfg.num_local_experts or cfg.num_experts
  local active = experts and (cfg.num_experts_per_tok or 2) / experts or 1
  local total = 0
  for name, t in pairs(h) do
    if name ~= "__metadata__" then
      local bytes = t.data_offsets[2] - t.data_offsets[1]
      if name == "model.embed_tokens.weight" and not tied then
        bytes = bytes // t.shape[1] -- one row
      elseif name:find("%.experts%.") then
        bytes = bytes * active
      end
      total = total + bytes
    end
  end
  return total
end

local function median(xs)
  table.sort(xs)
  local n = #xs
  if n == 0 then return nil end
  return n % 2 == 1 and xs[(n + 1) // 2] or (xs[n // 2] + xs[n // 2 + 1]) / 2
end

-- decode[shape][level] = {tok/s, ...}
local decode, order = {}, {}
local f = io.open(opt.input, "r")
if not f then sl.fail(("%s: cannot open the results file"):format(opt.input)) end
for line in f:lines() do
  local r = line:match("%S") and sl.json.decode(line)
  if type(r) == "table" and r.phase == "decode" and r.engine == opt.engine and r.dtype == "BF16"
      and (opt.keep_disturbed or r.disturbed ~= true) then
    if not decode[r.shape] then
      decode[r.shape] = {}
      order[#order + 1] = r.shape
    end
    decode[r.shape][r.level] = decode[r.shape][r.level] or {}
    table.insert(decode[r.shape][r.level], r.tok_s)
  end
end
f:close()
if not decode[opt.baseline] then sl.fail(("%s: no %s decode figures for the baseline %s"):format(opt.input, opt.engine,
  opt.baseline)) end

local levels = { "native", "avx2" }
local rate = {} -- rate[shape][level] = GB/s read
for _, shape in ipairs(order) do
  local b = bytes_per_token(opt.models .. "/" .. shape .. "-bf16")
  rate[shape] = { bytes = b }
  for _, level in ipairs(levels) do
    local tps = decode[shape][level] and median(decode[shape][level])
    if tps then rate[shape][level] = { tok_s = tps, gb_s = tps * b / 1e9 } end
  end
end

local out = { ("| %s, BF16 decode | GB read per token | native: tok/s, GB/s, ÷ %s | AVX2: tok/s, GB/s, ÷ %s |")
  :format(opt.engine, opt.baseline, opt.baseline), "|---|---|---|---|" }
for _, shape in ipairs(order) do
  local cells = { shape, ("%.3f"):format(rate[shape].bytes / 1e9) }
  for _, level in ipairs(levels) do
    local x, base = rate[shape][level], rate[opt.baseline][level]
    cells[#cells + 1] = x and base and ("%.2f, %.1f, %.2f"):format(x.tok_s, x.gb_s, x.gb_s / base.gb_s) or "–"
  end
  out[#out + 1] = "| " .. table.concat(cells, " | ") .. " |"
end
io.write(table.concat(out, "\n"), "\n")
