-- Per-step cost of the layer-contrast decoders against plain greedy decoding.
--
-- Usage: slua bench/decoders.lua --model DIR [--threads 2] [--steps 32] [--runs 5] [--prompt-len 64]
-- Reports medians over runs of the time per decode step for: greedy; DoLa with the "high"
-- candidates (final + candidate layers through one LM-head product, divergences, contrast,
-- repetition penalty; its ratio to greedy is the median of per-run ratios);
-- SkipLayerCD's expert and amateur as rows of one pass (as recipes run them); the amateur
-- alone, forked below its span (it runs blocks >= start only) and, for
-- comparison, the same amateur as an unforked session; and the expert alone. The ideal amateur
-- cost with sharing is (N - start) / N of the expert.
local sl = require "slua"
local dola = require "slua.decoders.dola"

local opt = sl.options(arg, { model = "", threads = 2, steps = 32, runs = 5, prompt_len = 64, span = "" })
sl.set_threads(opt.threads)
local model <close> = sl.check(sl.load(opt.model ~= "" and opt.model or nil, { tokenizer = false }))
local N = model.n_layer
local prompt = {}
for i = 1, opt.prompt_len do prompt[i] = (i * 7919) % model.n_vocab end
local span = opt.span ~= "" and sl.parse_ints(opt.span, "span")
  or { N // 2, N // 2 + math.max(1, sl.core.round_half_even(N / 8)) }

local function median(xs)
  table.sort(xs)
  local n = #xs
  return n % 2 == 1 and xs[(n + 1) // 2] or (xs[n // 2] + xs[n // 2 + 1]) / 2
end

-- time per step of `step(s, id)` after a prefill (one run)
local function time_once(make, step)
  local sessions = make()
  local outs = {}
  for i, s in ipairs(sessions) do outs[i] = s:prefill(prompt) end
  local id = 1
  local t0 = sl.clock()
  for _ = 1, opt.steps do id = step(sessions, outs, id) end
  local t = (sl.clock() - t0) / opt.steps
  for _, s in ipairs(sessions) do s:close() end
  return t
end

local function greedy_step(ss, outs)
  local id = outs[1].logits:argmax()
  outs[1] = ss[1]:step(id)
  return id
end

local cand = dola.layers("high", model)
local penalty = sl.processors.repetition_penalty(1.2)
local function dola_step(ss, outs)
  local scores = dola.contrast(outs[1], cand, { relative_top = 0.1 })
  penalty.fn({ session = ss[1], prompt_len = #prompt }, scores)
  local id = scores:argmax()
  outs[1] = ss[1]:step(id)
  return id
end

-- Greedy and DoLa alternate run by run, so that drifts of the machine's memory bandwidth hit
-- both; the ratio is the median of the per-run ratios.
local greedy_times, dola_times, ratios = {}, {}, {}
for r = 1, opt.runs do
  greedy_times[r] = time_once(function() return { model:session() } end, greedy_step)
  dola_times[r] = time_once(function() return { model:session(dola.session_layers(cand)) } end, dola_step)
  ratios[r] = dola_times[r] / greedy_times[r]
end
local greedy, dola_t, dola_ratio = median(greedy_times), median(dola_times), median(ratios)

-- SkipLayerCD: expert + forked amateur, both stepped; the amateur's share is timed apart.
local function pair_time(forked)
  local amateur_times, total_times = {}, {}
  for r = 1, opt.runs do
    local expert = model:session()
    local amateur = forked and expert:fork{ skip = require("slua.decoders.skiplayer").blocks(span) }
      or model:session{ skip = require("slua.decoders.skiplayer").blocks(span) }
    local e, a = expert:prefill(prompt), amateur:prefill(prompt)
    local ta, t0 = 0, sl.clock()
    for _ = 1, opt.steps do
      local scores = sl.core.contrast_skiplayer(e.logits, a.logits, 0.1, 0.5, 1.0)
      local id = scores:argmax()
      e = expert:step(id)
      local t1 = sl.clock()
      a = amateur:step(id)
      ta = ta + sl.clock() - t1
    end
    total_times[r] = (sl.clock() - t0) / opt.steps
    amateur_times[r] = ta / opt.steps
    amateur:close()
    expert:close()
  end
  return median(amateur_times), median(total_times)
end
local amateur_forked, pair_forked = pair_time(true)
local amateur_plain = pair_time(false)

-- SkipLayerCD as the generation loop runs it: expert and forked amateur as rows of one pass
-- (sl.eval_batch), alternating run by run with greedy; the ratio is the median of per-run ratios.
local function batched_pair_step(ss, outs)
  local scores = sl.core.contrast_skiplayer(outs[1].logits, outs[2].logits, 0.1, 0.5, 1.0)
  local id = scores:argmax()
  outs[1], outs[2] = table.unpack(sl.eval_batch{ { ss[1], id }, { ss[2], id } })
  return id
end
local function batched_pair()
  local expert = model:session()
  return { expert, expert:fork{ skip = require("slua.decoders.skiplayer").blocks(span) } }
end
local pair_times, pair_ratios = {}, {}
for r = 1, opt.runs do
  local g = time_once(function() return { model:session() } end, greedy_step)
  pair_times[r] = time_once(batched_pair, batched_pair_step)
  pair_ratios[r] = pair_times[r] / g
end
local pair_batched, pair_batched_ratio = median(pair_times), median(pair_ratios)

local function ms(x) return x * 1e3 end
print(("model %s: %d layers, vocab %d, %s, threads %d, prompt %d, %d steps x %d runs (medians)")
  :format(model.path, N, model.n_vocab, model.config.dtype, opt.threads, opt.prompt_len, opt.steps, opt.runs))
print(("greedy step                 %8.3f ms"):format(ms(greedy)))
print(("DoLa high step (%d cands)    %8.3f ms   %.2fx greedy"):format(#cand, ms(dola_t), dola_ratio))
print(("SkipLayerCD span [%d,%d), one pass: expert+amateur step %8.3f ms   %.2fx greedy"):format(span[1], span[2],
  ms(pair_batched), pair_batched_ratio))
print(("  stepped one after the other   %8.3f ms   %.2fx greedy"):format(ms(pair_forked), pair_forked / greedy))
print(("  amateur, forked           %8.3f ms   %.2f of greedy (ideal (N-start)/N = %.2f)")
  :format(ms(amateur_forked), amateur_forked / greedy, (N - span[1]) / N))
print(("  amateur, unforked         %8.3f ms   %.2f of greedy"):format(ms(amateur_plain), amateur_plain / greedy))
print(sl.json.encode{ model = model.path, threads = opt.threads, greedy_ms = ms(greedy), dola_ms = ms(dola_t), dola_over_greedy = dola_ratio,
  dola_candidates = #cand, skiplayer_one_pass_ms = ms(pair_batched), skiplayer_one_pass_over_greedy = pair_batched_ratio,
  skiplayer_pair_ms = ms(pair_forked), amateur_forked_ms = ms(amateur_forked),
  amateur_unforked_ms = ms(amateur_plain), span = span, ideal_amateur_fraction = (N - span[1]) / N })
