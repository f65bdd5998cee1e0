-- BF16 compute (--compute bf16, sl.load{compute = "bf16"}): an explicit lossy mode. Its results
-- stay batch-invariant within the mode (batched = alone, chunked = whole, 1 = 2 threads, bit for
-- bit), move the logits by a bounded amount from the exact mode, and it reaches every driver
-- (recipes, slua eval's settings, slua serve), refusing Q8_0 weights with a usage error. CTest
-- runs this file at the native level (vdpbf16ps where the CPU has AVX512-BF16) and with
-- SL_NO_AVX512=1 (emulated).
package.path = SLUA_ROOT .. "/tests/lua/?.lua;" .. package.path
local T = require "harness"
local sl = require "slua"

local slua = arg[1] or "build/slua"
local tmp = T.tmpdir()
local level = os.getenv("SL_NO_AVX2") and "generic" or os.getenv("SL_NO_AVX512") and "avx2" or "native"

local exact = sl.check(sl.load())
local bf16 = sl.check(sl.load(nil, { compute = "bf16" }))

T.case("a model reports its compute mode", function()
  T.eq(exact.compute, "exact")
  T.eq(bf16.compute, "bf16")
  T.raises(function() sl.load(nil, { compute = "fp8" }) end, "fp8", "an unknown mode")
  local m, message = sl.load(nil, { compute = "bf16", weights = "q8_0" })
  T.eq(m, nil, "bf16 compute with q8_0 weights loads nothing")
  T.truthy(message:find("q8_0", 1, true), "the message names q8_0: " .. tostring(message))
end)

local ids = { 1, 403, 407, 261, 378, 29, 90, 14, 312, 77, 5, 260, 119 }
local function logits_of(session, tokens) return session:prefill(tokens).logits end
local function max_diff(a, b, n)
  local worst, scale = 0, 0
  for id = 0, n - 1 do
    worst = math.max(worst, math.abs(a:get(id) - b:get(id)))
    scale = math.max(scale, math.abs(b:get(id)))
  end
  return worst, scale
end

T.case(("bf16 logits move from the exact ones, by little (%s)"):format(level), function()
  local se <close> = exact:session()
  local sb <close> = bf16:session()
  local worst, scale = max_diff(logits_of(sb, ids), logits_of(se, ids), exact.n_vocab)
  T.truthy(worst > 0, "bf16 compute gave the exact logits")
  -- every product input rounded to 8 significant bits (relative error <= 2^-9), through 5 blocks
  T.truthy(worst < 0.05 * scale, ("max |delta| %.4g against logits up to %.4g"):format(worst, scale))
end)

T.case(("bf16: chunked prefill, steps and 2 threads give the whole prefill's logits bit for bit (%s)"):format(level),
  function()
  local function same(a, b, what)
    for id = 0, bf16.n_vocab - 1 do
      if a:get(id) ~= b:get(id) then error(("%s: logit %d differs (%.9g vs %.9g)"):format(what, id, a:get(id), b:get(id))) end
    end
  end
  sl.set_threads(1)
  local whole <close> = bf16:session()
  local want = logits_of(whole, ids)
  local chunked <close> = bf16:session{ n_batch = 3 }
  same(logits_of(chunked, ids), want, "chunks of 3")
  local stepped <close> = bf16:session()
  local out = stepped:prefill({ table.unpack(ids, 1, 4) })
  for i = 5, #ids do out = stepped:step(ids[i]) end
  same(out.logits, want, "steps")
  sl.set_threads(2)
  local two <close> = bf16:session()
  same(logits_of(two, ids), want, "2 threads")
  sl.set_threads(1)
end)

local function decided(r) return sl.json.encode{ r.new_ids or false, r.steps or false, r.stop_reason or false } end
local prompts = { "Once upon a time", "The cat sat", "Lily and Tom went to the park. They", "One day", "Sue" }
local runs = {}
for i, p in ipairs(prompts) do runs[i] = { prompt = p, max_new_tokens = 5 + 2 * i } end
for _, d in ipairs{ { "greedy", {} }, { "dola", { dola_layers = "high" } } } do
  T.case(("bf16: %s batched 3 and 5 wide equals each run alone (%s)"):format(d[1], level), function()
    local value = sl.recipe.load(d[1])
    for _, width in ipairs{ 3, 5 } do
      local results = sl.generate_many{ recipe = d[1], runs = runs, options = d[2], model = bf16, batch = width }
      for r, one in ipairs(runs) do
        local opts = { threads = 1 }
        for k, v in pairs(d[2]) do opts[k] = v end
        for k, v in pairs(one) do opts[k] = v end
        T.eq(decided(results[r]), decided(value:run(opts, { model = bf16 })), ("batch %d, run %d"):format(width, r))
      end
    end
  end)
end

T.case("--compute on the command line: recipes, slua eval's settings, a usage error with q8_0", function()
  local text, ok = T.run(("%s greedy --compute bf16 --max-new-tokens 6 --format json"):format(T.q(slua)))
  T.truthy(ok, "greedy --compute bf16 runs: " .. text)
  local r = sl.json.decode(text)
  T.eq(#r.new_ids, 6)
  local steps_bf16 = r.steps
  text, ok = T.run(("%s greedy --compute bf16 --max-new-tokens 6 --format json --threads 2"):format(T.q(slua)))
  T.truthy(ok)
  T.eq(sl.json.encode(sl.json.decode(text).steps), sl.json.encode(steps_bf16), "1 and 2 threads")
  text, ok = T.run(("%s greedy --compute bf16 --weights q8_0 2>&1"):format(T.q(slua)))
  T.truthy(not ok, "bf16 with q8_0 fails")
  T.truthy(text:find("^slua: option %-%-compute") and select(2, text:gsub("\n", "")) == 1, "one line: " .. text)
  local _, _, code = os.execute(("%s greedy --compute bf16 --weights q8_0 >/dev/null 2>&1"):format(T.q(slua)))
  T.eq(code, 2, "exit status of a usage error")
  text, ok = T.run(("%s greedy --compute fp8 2>&1"):format(T.q(slua)))
  T.truthy(not ok and text:find("exact, bf16", 1, true), "an unknown mode names the choices: " .. text)
  -- slua eval records the mode in its settings (and so in the hash that guards a results file)
  local out = tmp .. "/tfqa_bf16.jsonl"
  text, ok = T.run(("%s eval truthfulqa_mc --limit 2 --compute bf16 --output %s 2>/dev/null"):format(T.q(slua), T.q(out)))
  T.truthy(ok, "eval --compute bf16: " .. text)
  local summary = sl.json.decode(text)
  T.eq(summary.settings.compute, "bf16")
  local exact_text = T.run(("%s eval truthfulqa_mc --limit 2 2>/dev/null"):format(T.q(slua)))
  local exact_summary = sl.json.decode(exact_text)
  T.eq(exact_summary.settings.compute, nil, "the exact mode adds nothing to the settings")
  T.truthy(exact_summary.settings_hash ~= summary.settings_hash, "the modes hash apart")
  text, ok = T.run(("%s eval truthfulqa_mc --limit 2 --output %s 2>&1"):format(T.q(slua), T.q(out)))
  T.truthy(not ok, "an exact run refuses the bf16 results file: " .. text)
end)

T.finish()
