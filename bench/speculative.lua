-- Wall-time speed-up of speculative decoding over greedy decoding, with a self-draft that
-- skips blocks, for several draft lengths k; and the same loop with acceptance forced to fixed
-- rates (each proposal accepted with that probability whatever the tokens), which gives the
-- speed-up as a function of acceptance on random weights, where real acceptance is low.
--
-- Usage: slua bench/speculative.lua --model DIR [--threads 1] [--new-tokens 64] [--runs 3]
--        [--prompt-len 32] [--k 2,4,8] [--skip 15-28] [--rates 0,0.5,0.8,0.9,1]
-- Prints one line per configuration (median seconds over runs, tokens/s, speed-up against the
-- greedy median, measured mean accepted tokens per round) and a JSON line at the end.
local sl = require "slua"
local speculative = require "slua.decoders.speculative"

local opt = sl.options(arg, { model = "", threads = 1, new_tokens = 64, runs = 3, prompt_len = 32,
                              k = "2,4,8", skip = "", rates = "0,0.5,0.8,0.9,1" })
sl.set_threads(opt.threads)
local model <close> = sl.check(sl.load(opt.model ~= "" and opt.model or nil, { tokenizer = false }))
local N = model.n_layer
local skip = speculative.parse_blocks(opt.skip ~= "" and opt.skip or ("%d-%d"):format(N // 2, N - 2), N)
local prompt = {}
for i = 1, opt.prompt_len do prompt[i] = (i * 7919) % model.n_vocab end

local function median(xs)
  table.sort(xs)
  local n = #xs
  return n % 2 == 1 and xs[(n + 1) // 2] or (xs[n // 2] + xs[n // 2 + 1]) / 2
end

local function greedy_once()
  local s <close> = model:session()
  local t0 = sl.clock()
  local out = s:prefill(prompt)
  for _ = 1, opt.new_tokens - 1 do out = s:step(out.logits:argmax()) end
  return sl.clock() - t0
end

local function speculative_once(k, rate)
  local main <close> = model:session()
  local draft <close> = model:session{ skip = skip }
  local t0 = sl.clock()
  local r = speculative.generate{ model = model, main = main, draft = draft, prompt = prompt, k = k,
                                  max_new_tokens = opt.new_tokens, eos = {}, rng = sl.rng(1), force_accept = rate }
  local t = sl.clock() - t0
  local acc = 0
  for _, round in ipairs(r.rounds) do acc = acc + round.accepted end
  return t, acc / #r.rounds
end

-- Greedy and the configuration alternate, so a busy machine slows both alike: the speed-up is
-- the median of per-run ratios, the times are medians.
local function measure(...)
  local tg, ts, ratios, extra = {}, {}, {}, nil
  speculative_once(...) -- warm-up: faults the mapped weights in
  for i = 1, opt.runs do
    tg[i] = greedy_once()
    ts[i], extra = speculative_once(...)
    ratios[i] = tg[i] / ts[i]
  end
  return median(ts), median(ratios), median(tg), extra
end

local results = {}
greedy_once()
print(("self-draft skips %d of %d blocks; %d new tokens, %d threads"):format(#skip, N, opt.new_tokens, opt.threads))
for _, k in ipairs(sl.parse_ints(opt.k, "k")) do
  local rates = { false }
  for part in opt.rates:gmatch("[^,]+") do rates[#rates + 1] = tonumber(part) end
  for _, rate in ipairs(rates) do
    local t, speedup, tg, acc = measure(k, rate or nil)
    local row = { k = k, forced_acceptance = rate or sl.json.null, seconds = t, greedy_seconds = tg,
                  speedup = speedup, mean_accepted = acc }
    results[#results + 1] = row
    print(("k=%d %-16s %.3f s (greedy %.3f s)  speed-up %.2fx  mean accepted %.2f / %d"):format(
      k, rate and ("forced " .. rate) or "real acceptance", t, tg, speedup, acc, k))
  end
end
print(sl.json.encode{ model = model.path, threads = opt.threads, new_tokens = opt.new_tokens, skip = skip,
                      results = results })
