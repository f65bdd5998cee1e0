-- Cost of beam reordering: beam search with copies of only the rows after the beams' shared
-- prefix (what slua.decoders.beam does) against copies of whole KV caches, and the time of the search.
--
-- Usage: slua bench/beam.lua --model DIR [--threads 1] [--beams 4] [--new-tokens 32]
--        [--prompt-len 128] [--runs 3]
-- Prints positions copied per step, the median search time of each scheme and their ratio.
local sl = require "slua"
local beam = require "slua.decoders.beam"

local opt = sl.options(arg, { model = "", threads = 1, beams = 4, new_tokens = 32, prompt_len = 128, runs = 3 })
sl.set_threads(opt.threads)
local model <close> = sl.check(sl.load(opt.model ~= "" and opt.model or nil, { tokenizer = false }))
local prompt = {}
for i = 1, opt.prompt_len do prompt[i] = (i * 7919) % model.n_vocab end

local function median(xs)
  table.sort(xs)
  local n = #xs
  return n % 2 == 1 and xs[(n + 1) // 2] or (xs[n // 2] + xs[n // 2 + 1]) / 2
end

local function once(full)
  local t0 = sl.clock()
  local r = beam.search{ model = model, prompt = prompt, num_beams = opt.beams, max_new_tokens = opt.new_tokens,
                         eos = { model.n_vocab }, full_copies = full }
  return sl.clock() - t0, r
end

once(false)
local shared, full, result = {}, {}, nil
for i = 1, opt.runs do
  shared[i], result = once(false)
  full[i] = once(true)
end
local ts, tf = median(shared), median(full)
print(("%d beams, %d new tokens, prompt %d, %d threads"):format(opt.beams, opt.new_tokens, opt.prompt_len, opt.threads))
print(("positions copied: %d with prefix sharing, %d as whole caches (%.1f%%)"):format(
  result.kv_rows_copied, result.kv_rows_full_copy, 100 * result.kv_rows_copied / result.kv_rows_full_copy))
print(("search time: %.3f s with prefix sharing, %.3f s with whole copies (%.2fx)"):format(ts, tf, tf / ts))
print(sl.json.encode{ beams = opt.beams, new_tokens = opt.new_tokens, prompt_len = opt.prompt_len,
                      rows_copied = result.kv_rows_copied, rows_full_copy = result.kv_rows_full_copy,
                      seconds_shared = ts, seconds_full = tf })
